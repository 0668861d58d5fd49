//! The canonical ABI's tables for a WIT type: its size and alignment in linear memory, how
//! many flat core values it takes, and whether this host supports it. (The spec's
//! "Alignment", "Element Size" and "Flattening" sections.)

use wit_parser::{Resolve, Type, TypeDefKind};

/// The most flat core values a function's parameters may take before they go through
/// memory.
pub(crate) const MAX_FLAT_PARAMS: usize = 16;
/// The most flat core values a function's result may take before it goes through memory.
pub(crate) const MAX_FLAT_RESULTS: usize = 1;
/// The longest string the canonical ABI lets a guest hand over, in bytes (UTF-8).
pub(crate) const MAX_STRING_BYTES: u32 = (1 << 31) - 1;
/// The most labels a `flags` type may have.
pub(crate) const MAX_FLAGS: usize = 32;

/// A core value type of the flat form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flat {
    I32,
    I64,
    F32,
    F64,
}

impl Flat {
    /// The name the Wasm text format uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Flat::I32 => "i32",
            Flat::I64 => "i64",
            Flat::F32 => "f32",
            Flat::F64 => "f64",
        }
    }

    /// The spec's `join` of two flat types at the same place of a variant's cases.
    fn join(self, other: Flat) -> Flat {
        match (self, other) {
            (a, b) if a == b => a,
            (Flat::I32, Flat::F32) | (Flat::F32, Flat::I32) => Flat::I32,
            _ => Flat::I64,
        }
    }
}

impl std::fmt::Display for Flat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The type `ty` names, past aliases (`type a = b`).
pub(crate) fn kind<'r>(resolve: &'r Resolve, ty: &Type) -> Option<&'r TypeDefKind> {
    let mut ty = *ty;
    loop {
        let Type::Id(id) = ty else { return None };
        match &resolve.types[id].kind {
            TypeDefKind::Type(inner) => ty = *inner,
            kind => return Some(kind),
        }
    }
}

/// `ty` past aliases: the type it names.
pub(crate) fn unalias(resolve: &Resolve, ty: &Type) -> Type {
    let mut ty = *ty;
    while let Type::Id(id) = ty
        && let TypeDefKind::Type(inner) = &resolve.types[id].kind
    {
        ty = *inner;
    }
    ty
}

/// Why this host cannot pass values of `ty`, if it cannot.
pub(crate) fn unsupported(resolve: &Resolve, ty: &Type) -> Option<String> {
    let ty = &unalias(resolve, ty);
    match ty {
        Type::ErrorContext => {
            return Some("`error-context` (an async value, which this host does not run)".into());
        }
        Type::Id(_) => {}
        _ => return None,
    }
    let kind = kind(resolve, ty)?;
    let first = |tys: &[&Type]| tys.iter().find_map(|t| unsupported(resolve, t));
    match kind {
        TypeDefKind::Record(r) => first(&r.fields.iter().map(|f| &f.ty).collect::<Vec<_>>()),
        TypeDefKind::Tuple(t) => first(&t.types.iter().collect::<Vec<_>>()),
        TypeDefKind::Variant(v) => first(
            &v.cases
                .iter()
                .filter_map(|c| c.ty.as_ref())
                .collect::<Vec<_>>(),
        ),
        TypeDefKind::Option(t) | TypeDefKind::List(t) => unsupported(resolve, t),
        TypeDefKind::Result(r) => first(&r.ok.iter().chain(r.err.iter()).collect::<Vec<_>>()),
        TypeDefKind::Enum(_) => None,
        TypeDefKind::Flags(f) if f.flags.len() > MAX_FLAGS => Some(format!(
            "`flags` with {} labels (the canonical ABI allows at most {MAX_FLAGS})",
            f.flags.len()
        )),
        TypeDefKind::Flags(_) => None,
        TypeDefKind::Resource | TypeDefKind::Handle(_) => Some(
            "a resource (`own`/`borrow` handles need a component runtime's handle tables)".into(),
        ),
        TypeDefKind::Future(_) => Some("`future` (async, which this host does not run)".into()),
        TypeDefKind::Stream(_) => Some("`stream` (async, which this host does not run)".into()),
        TypeDefKind::Map(..) => {
            Some("`map` (not yet in the canonical ABI this host follows)".into())
        }
        TypeDefKind::FixedLengthList(..) => {
            Some("a fixed-length list (a gated feature this host does not follow)".into())
        }
        TypeDefKind::Type(_) | TypeDefKind::Unknown => Some("an unknown type".into()),
    }
}

/// Whether values of `ty` hold strings or lists, which live in linear memory.
pub(crate) fn uses_memory(resolve: &Resolve, ty: &Type) -> bool {
    let ty = &unalias(resolve, ty);
    match ty {
        Type::String => true,
        Type::Id(_) => match kind(resolve, ty) {
            Some(TypeDefKind::List(_)) => true,
            Some(TypeDefKind::Record(r)) => r.fields.iter().any(|f| uses_memory(resolve, &f.ty)),
            Some(TypeDefKind::Tuple(t)) => t.types.iter().any(|t| uses_memory(resolve, t)),
            Some(TypeDefKind::Variant(v)) => v
                .cases
                .iter()
                .filter_map(|c| c.ty.as_ref())
                .any(|t| uses_memory(resolve, t)),
            Some(TypeDefKind::Option(t)) => uses_memory(resolve, t),
            Some(TypeDefKind::Result(r)) => {
                r.ok.iter()
                    .chain(r.err.iter())
                    .any(|t| uses_memory(resolve, t))
            }
            _ => false,
        },
        _ => false,
    }
}

/// The size in bytes of a variant's discriminant with `cases` cases.
pub(crate) fn discriminant_size(cases: usize) -> u32 {
    match cases {
        0..=0x100 => 1,
        0x101..=0x1_0000 => 2,
        _ => 4,
    }
}

/// `n` rounded up to a multiple of `align` (a power of two).
pub(crate) fn align_to(n: u32, align: u32) -> u32 {
    n.div_ceil(align) * align
}

/// The size and alignment of a variant's cases laid out after their discriminant, and
/// where the payload starts.
pub(crate) struct VariantLayout {
    pub(crate) size: u32,
    pub(crate) align: u32,
    pub(crate) payload: u32,
}

/// The layout of a variant whose cases carry `payloads`.
pub(crate) fn variant_layout<'a>(
    resolve: &Resolve,
    payloads: impl Iterator<Item = Option<&'a Type>> + Clone,
) -> VariantLayout {
    let cases = payloads.clone().count();
    let disc = discriminant_size(cases);
    let (mut max_size, mut max_align) = (0, 1);
    for ty in payloads.flatten() {
        let (size, align) = size_align(resolve, ty);
        max_size = max_size.max(size);
        max_align = max_align.max(align);
    }
    let payload = align_to(disc, max_align);
    let align = disc.max(max_align);
    VariantLayout {
        size: align_to(payload + max_size, align),
        align,
        payload,
    }
}

/// The size and alignment of a record or tuple of `fields`, and each field's offset.
pub(crate) fn record_layout<'a>(
    resolve: &Resolve,
    fields: impl Iterator<Item = &'a Type>,
    offsets: Option<&mut Vec<u32>>,
) -> (u32, u32) {
    let (mut size, mut align) = (0, 1);
    let mut offsets = offsets;
    for ty in fields {
        let (s, a) = size_align(resolve, ty);
        size = align_to(size, a);
        if let Some(offsets) = offsets.as_deref_mut() {
            offsets.push(size);
        }
        size += s;
        align = align.max(a);
    }
    (align_to(size, align), align)
}

/// The size and alignment of `ty` in linear memory.
pub(crate) fn size_align(resolve: &Resolve, ty: &Type) -> (u32, u32) {
    // An alias (`type a = string`, of any depth) is laid out as the type it names.
    let ty = &unalias(resolve, ty);
    match ty {
        Type::Bool | Type::U8 | Type::S8 => (1, 1),
        Type::U16 | Type::S16 => (2, 2),
        Type::U32 | Type::S32 | Type::F32 | Type::Char | Type::ErrorContext => (4, 4),
        Type::U64 | Type::S64 | Type::F64 => (8, 8),
        Type::String => (8, 4),
        Type::Id(_) => match kind(resolve, ty) {
            Some(TypeDefKind::List(_)) => (8, 4),
            Some(TypeDefKind::Record(r)) => {
                record_layout(resolve, r.fields.iter().map(|f| &f.ty), None)
            }
            Some(TypeDefKind::Tuple(t)) => record_layout(resolve, t.types.iter(), None),
            Some(TypeDefKind::Variant(v)) => {
                let l = variant_layout(resolve, v.cases.iter().map(|c| c.ty.as_ref()));
                (l.size, l.align)
            }
            Some(TypeDefKind::Enum(e)) => {
                let d = discriminant_size(e.cases.len());
                (d, d)
            }
            Some(TypeDefKind::Option(t)) => {
                let l = variant_layout(resolve, [None, Some(t)].into_iter());
                (l.size, l.align)
            }
            Some(TypeDefKind::Result(r)) => {
                let l = variant_layout(resolve, [r.ok.as_ref(), r.err.as_ref()].into_iter());
                (l.size, l.align)
            }
            Some(TypeDefKind::Flags(f)) => match f.flags.len() {
                0..=8 => (1, 1),
                9..=16 => (2, 2),
                _ => (4, 4),
            },
            // Refused at admission.
            _ => (4, 4),
        },
    }
}

/// Appends the flat types of `ty` to `out`.
pub(crate) fn flatten(resolve: &Resolve, ty: &Type, out: &mut Vec<Flat>) {
    let ty = &unalias(resolve, ty);
    match ty {
        Type::Bool
        | Type::U8
        | Type::S8
        | Type::U16
        | Type::S16
        | Type::U32
        | Type::S32
        | Type::Char
        | Type::ErrorContext => out.push(Flat::I32),
        Type::U64 | Type::S64 => out.push(Flat::I64),
        Type::F32 => out.push(Flat::F32),
        Type::F64 => out.push(Flat::F64),
        Type::String => out.extend([Flat::I32, Flat::I32]),
        Type::Id(_) => match kind(resolve, ty) {
            Some(TypeDefKind::List(_)) => out.extend([Flat::I32, Flat::I32]),
            Some(TypeDefKind::Record(r)) => {
                for f in &r.fields {
                    flatten(resolve, &f.ty, out);
                }
            }
            Some(TypeDefKind::Tuple(t)) => {
                for t in &t.types {
                    flatten(resolve, t, out);
                }
            }
            Some(TypeDefKind::Variant(v)) => {
                flatten_variant(resolve, v.cases.iter().map(|c| c.ty.as_ref()), out);
            }
            Some(TypeDefKind::Enum(_)) | Some(TypeDefKind::Flags(_)) => out.push(Flat::I32),
            Some(TypeDefKind::Option(t)) => flatten_variant(resolve, [None, Some(t)], out),
            Some(TypeDefKind::Result(r)) => {
                flatten_variant(resolve, [r.ok.as_ref(), r.err.as_ref()], out);
            }
            // Refused at admission.
            _ => out.push(Flat::I32),
        },
    }
}

/// A variant's flat types: the discriminant, then each place joined over the cases.
fn flatten_variant<'a>(
    resolve: &Resolve,
    payloads: impl IntoIterator<Item = Option<&'a Type>>,
    out: &mut Vec<Flat>,
) {
    out.push(Flat::I32);
    let start = out.len();
    let mut case = Vec::new();
    for ty in payloads.into_iter().flatten() {
        case.clear();
        flatten(resolve, ty, &mut case);
        for (i, flat) in case.iter().enumerate() {
            match out.get_mut(start + i) {
                Some(have) => *have = have.join(*flat),
                None => out.push(*flat),
            }
        }
    }
}

/// How many flat values `ty` takes.
pub(crate) fn flat_count(resolve: &Resolve, ty: &Type) -> usize {
    let mut out = Vec::new();
    flatten(resolve, ty, &mut out);
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(wit: &str) -> (Resolve, Vec<Type>) {
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("t.wit", wit).unwrap();
        let world = resolve.select_world(&[pkg], None).unwrap();
        let types = resolve.worlds[world]
            .exports
            .values()
            .filter_map(|item| match item {
                wit_parser::WorldItem::Function(f) => Some(f.params[0].ty),
                _ => None,
            })
            .collect();
        (resolve, types)
    }

    /// The flat types of each of `types`.
    fn flats(resolve: &Resolve, types: &[Type]) -> Vec<Vec<Flat>> {
        types
            .iter()
            .map(|t| {
                let mut out = Vec::new();
                flatten(resolve, t, &mut out);
                out
            })
            .collect()
    }

    /// The spec's examples: sizes, alignments and flat forms of composite types.
    #[test]
    fn layouts_follow_the_spec() {
        let (resolve, types) = world(
            "package t:t;
             world w {
               record r { a: u8, b: u32, c: u16 }
               variant v { x, y(f32), z(u64) }
               flags f { a, b, c, d, e, f, g, h, i }
               export a: func(p: r);
               export b: func(p: v);
               export c: func(p: option<string>);
               export d: func(p: result<u32, f32>);
               export e: func(p: f);
               export f: func(p: tuple<u8, u64>);
               export g: func(p: list<r>);
             }",
        );
        let layouts: Vec<_> = types.iter().map(|t| size_align(&resolve, t)).collect();
        assert_eq!(
            layouts,
            [(12, 4), (16, 8), (12, 4), (8, 4), (2, 2), (16, 8), (8, 4)]
        );
        let flats = flats(&resolve, &types);
        use Flat::*;
        assert_eq!(
            flats,
            [
                vec![I32, I32, I32],
                vec![I32, I64],
                vec![I32, I32, I32],
                vec![I32, I32],
                vec![I32],
                vec![I32, I64],
                vec![I32, I32],
            ]
        );
    }

    /// An alias, of any depth, is laid out and flattened as the type it names, primitive or
    /// not (once an alias of `string` was laid out as one `i32`).
    #[test]
    fn aliases_are_the_types_they_name() {
        let (resolve, types) = world(
            "package t:t;
             world w {
               type s = string;
               type s2 = s;
               type n = u64;
               type g = s64;
               type x = f32;
               type y = f64;
               type c = char;
               type l = list<s2>;
               type o = option<s2>;
               export a: func(p: s);
               export b: func(p: s2);
               export c: func(p: n);
               export d: func(p: g);
               export e: func(p: x);
               export f: func(p: y);
               export g: func(p: c);
               export h: func(p: l);
               export i: func(p: o);
             }",
        );
        let layouts: Vec<_> = types.iter().map(|t| size_align(&resolve, t)).collect();
        assert_eq!(
            layouts,
            [
                (8, 4),
                (8, 4),
                (8, 8),
                (8, 8),
                (4, 4),
                (8, 8),
                (4, 4),
                (8, 4),
                (12, 4)
            ]
        );
        let flats = flats(&resolve, &types);
        use Flat::*;
        assert_eq!(
            flats,
            [
                vec![I32, I32],
                vec![I32, I32],
                vec![I64],
                vec![I64],
                vec![F32],
                vec![F64],
                vec![I32],
                vec![I32, I32],
                vec![I32, I32, I32],
            ]
        );
        assert!(types.iter().all(|t| unsupported(&resolve, t).is_none()));
        let memory: Vec<bool> = types.iter().map(|t| uses_memory(&resolve, t)).collect();
        assert_eq!(
            memory,
            [true, true, false, false, false, false, false, true, true]
        );
    }
}
