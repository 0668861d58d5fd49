//! The WIT types that the typed traits ([`ComponentType`](super::ComponentType),
//! [`Lower`](super::Lower), [`Lift`](super::Lift) and the traits of parameters and results)
//! are handed, opaque: `wit-parser`'s types stay inside this crate, so that neither an
//! implementation of the traits nor the code `#[derive]` writes names them, and a new
//! `wit-parser` is not a change of this crate's API. Only this crate reads them.

use wit_parser::{Resolve, Type};

/// One WIT type of the world a value is checked against, lowered or lifted as. Opaque.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WitType(pub(crate) Type);

/// The world whose types a typecheck reads. Opaque.
#[derive(Clone, Copy)]
pub struct WitWorld<'a>(pub(crate) &'a Resolve);

impl std::fmt::Debug for WitWorld<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitWorld").finish_non_exhaustive()
    }
}

/// A function's parameters, as a typecheck reads them: names (for errors) and types, in
/// order. Opaque.
#[derive(Clone, Copy, Debug)]
pub struct WitParams<'a>(pub(crate) &'a [(String, Type)]);

impl WitParams<'_> {
    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The type of parameter `i`.
    pub fn ty(&self, i: usize) -> Option<WitType> {
        self.0.get(i).map(|(_, ty)| WitType(*ty))
    }

    /// The name of parameter `i`.
    pub fn name(&self, i: usize) -> &str {
        self.0.get(i).map_or("", |(name, _)| name.as_str())
    }

    /// The type of each parameter, `N` of them, or `None` when there are not `N`.
    pub fn types<const N: usize>(&self) -> Option<[WitType; N]> {
        types(self.0.iter().map(|(_, ty)| ty))
    }
}

/// The types of `N` parameters (a function's, as lowered or lifted), or `None` for another
/// count: an array, so that code indexing it by a constant cannot go out of bounds.
pub(crate) fn types<'t, const N: usize>(
    all: impl ExactSizeIterator<Item = &'t Type>,
) -> Option<[WitType; N]> {
    if all.len() != N {
        return None;
    }
    let mut out = [WitType(Type::Bool); N];
    for (slot, ty) in out.iter_mut().zip(all) {
        *slot = WitType(*ty);
    }
    Some(out)
}

impl From<&Type> for WitType {
    fn from(ty: &Type) -> WitType {
        WitType(*ty)
    }
}

/// What the layout table and the type walkers take: a WIT type, ours or `wit-parser`'s.
pub(crate) trait AsType: Copy {
    /// The `wit-parser` type.
    fn wit(self) -> Type;
}

impl AsType for &Type {
    fn wit(self) -> Type {
        *self
    }
}

impl AsType for WitType {
    fn wit(self) -> Type {
        self.0
    }
}

impl AsType for &WitType {
    fn wit(self) -> Type {
        self.0
    }
}
