//! The typed API's parameters and results: tuples of Rust types for a function's
//! parameters, `()` or `(T,)` for its result, checked against the world's types once, when
//! a handle is made, and lowered or lifted through [`Lower`] and [`Lift`] at each call; for
//! the functions a guest exports (`TypedFunc`) and for those it imports (a host function
//! of `HostFunctions::typed`).

use super::values::TypesOf as _;
use super::{FlatSrc, Lift, LiftCx, Lower, LowerCx, WitParams, WitType, WitWorld};
use crate::Error;

/// A function's parameters, as Rust values: tuples of [`Lower`] types.
pub trait ComponentParams {
    /// Whether these are values of `params`' types.
    #[doc(hidden)]
    fn typecheck_params(world: WitWorld<'_>, params: WitParams<'_>) -> Result<(), String>;
    /// Lowers each, flat.
    #[doc(hidden)]
    fn lower_params(
        &self,
        cx: &mut LowerCx<'_>,
        types: &[WitType],
        out: &mut Vec<u64>,
    ) -> Result<(), Error>;
    /// Stores each at its offset from `ptr`.
    #[doc(hidden)]
    fn store_params(
        &self,
        cx: &mut LowerCx<'_>,
        types: &[WitType],
        offsets: &[u32],
        ptr: u32,
    ) -> Result<(), Error>;
}

/// A function's result, as a Rust value: `()` for none, `(T,)` for one.
pub trait ComponentResults: Sized {
    /// Whether these stand for `result`.
    #[doc(hidden)]
    fn typecheck_results(world: WitWorld<'_>, result: Option<WitType>) -> Result<(), String>;
    /// Lifts from flat values.
    #[doc(hidden)]
    fn lift_results(
        cx: &LiftCx<'_>,
        result: Option<WitType>,
        src: &mut FlatSrc<'_>,
    ) -> Result<Self, Error>;
    /// Lifts from the return area at `ptr` (checked).
    #[doc(hidden)]
    fn load_results(cx: &LiftCx<'_>, result: WitType, ptr: u32) -> Result<Self, Error>;
}

impl ComponentResults for () {
    fn typecheck_results(_: WitWorld<'_>, result: Option<WitType>) -> Result<(), String> {
        match result {
            None => Ok(()),
            Some(_) => Err("`()` for a function that returns a value".into()),
        }
    }
    fn lift_results(_: &LiftCx<'_>, _: Option<WitType>, _: &mut FlatSrc<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn load_results(_: &LiftCx<'_>, _: WitType, _: u32) -> Result<(), Error> {
        Ok(())
    }
}

impl<T: Lift> ComponentResults for (T,) {
    fn typecheck_results(world: WitWorld<'_>, result: Option<WitType>) -> Result<(), String> {
        match result {
            Some(ty) => T::typecheck(world, ty),
            None => Err("a result for a function that returns none".into()),
        }
    }
    fn lift_results(
        cx: &LiftCx<'_>,
        result: Option<WitType>,
        src: &mut FlatSrc<'_>,
    ) -> Result<Self, Error> {
        let ty = result.ok_or_else(|| cx.wrong_type("a function with a result"))?;
        Ok((T::lift_flat(cx, ty, src)?,))
    }
    fn load_results(cx: &LiftCx<'_>, result: WitType, ptr: u32) -> Result<Self, Error> {
        Ok((T::load(cx, result, ptr)?,))
    }
}

/// The typecheck of a tuple of `$n` parameters (of a function the guest exports or
/// imports alike): the count, then each against its type in turn.
macro_rules! typecheck_params {
    ($n:literal: $($t:ident $i:tt),*) => {
        #[allow(unused_variables)]
        fn typecheck_params(world: WitWorld<'_>, params: WitParams<'_>) -> Result<(), String> {
            let Some(types) = params.types::<$n>() else {
                return Err(format!("{} parameters for a function of {}", $n, params.len()));
            };
            $($t::typecheck(world, types[$i])
                .map_err(|e| format!("parameter `{}`: {e}", params.name($i)))?;)*
            Ok(())
        }
    };
}

macro_rules! params {
    ($n:literal: $($t:ident $i:tt),*) => {
        impl<$($t: Lower),*> ComponentParams for ($($t,)*) {
            typecheck_params!($n: $($t $i),*);
            #[allow(unused_variables)]
            fn lower_params(&self, cx: &mut LowerCx<'_>, types: &[WitType], out: &mut Vec<u64>) -> Result<(), Error> {
                $(self.$i.lower_flat(cx, types[$i], out)?;)*
                Ok(())
            }
            #[allow(unused_variables)]
            fn store_params(&self, cx: &mut LowerCx<'_>, types: &[WitType], offsets: &[u32], ptr: u32) -> Result<(), Error> {
                $(self.$i.store(cx, types[$i], ptr + offsets[$i])?;)*
                Ok(())
            }
        }
    };
}

params!(0:);
crate::canonical::values::for_tuples!(params);

/// The parameters of a function the guest imports, as the Rust values the embedder's
/// function takes ([`HostFunctions::typed`](crate::HostFunctions::typed)): tuples of
/// [`Lift`] types.
pub trait HostParams: Sized {
    /// Whether these are values of `params`' types.
    #[doc(hidden)]
    fn typecheck_params(world: WitWorld<'_>, params: WitParams<'_>) -> Result<(), String>;
    /// Lifts each from flat values.
    #[doc(hidden)]
    fn lift_params(
        cx: &LiftCx<'_>,
        types: &[WitType],
        src: &mut FlatSrc<'_>,
    ) -> Result<Self, Error>;
    /// Lifts each from its offset from `ptr` (checked by the caller).
    #[doc(hidden)]
    fn load_params(
        cx: &LiftCx<'_>,
        types: &[WitType],
        offsets: &[u32],
        ptr: u32,
    ) -> Result<Self, Error>;
}

/// The result of a function the guest imports, as the Rust value the embedder's function
/// returns: `()` for none, `(T,)` of a [`Lower`] type for one.
pub trait HostResults {
    /// Whether these stand for `result`.
    #[doc(hidden)]
    fn typecheck_results(world: WitWorld<'_>, result: Option<WitType>) -> Result<(), String>;
    /// Lowers it, flat.
    #[doc(hidden)]
    fn lower_results(
        &self,
        cx: &mut LowerCx<'_>,
        result: Option<WitType>,
        out: &mut Vec<u64>,
    ) -> Result<(), Error>;
    /// Stores it in the return area at `ptr` (checked by the caller).
    #[doc(hidden)]
    fn store_results(&self, cx: &mut LowerCx<'_>, result: WitType, ptr: u32) -> Result<(), Error>;
}

impl HostResults for () {
    fn typecheck_results(world: WitWorld<'_>, result: Option<WitType>) -> Result<(), String> {
        <() as ComponentResults>::typecheck_results(world, result)
    }
    fn lower_results(
        &self,
        _: &mut LowerCx<'_>,
        _: Option<WitType>,
        _: &mut Vec<u64>,
    ) -> Result<(), Error> {
        Ok(())
    }
    fn store_results(&self, _: &mut LowerCx<'_>, _: WitType, _: u32) -> Result<(), Error> {
        Ok(())
    }
}

impl<T: Lower> HostResults for (T,) {
    fn typecheck_results(world: WitWorld<'_>, result: Option<WitType>) -> Result<(), String> {
        match result {
            Some(ty) => T::typecheck(world, ty),
            None => Err("a result for a function that returns none".into()),
        }
    }
    fn lower_results(
        &self,
        cx: &mut LowerCx<'_>,
        result: Option<WitType>,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        match result {
            Some(ty) => self.0.lower_flat(cx, ty, out),
            None => Ok(()),
        }
    }
    fn store_results(&self, cx: &mut LowerCx<'_>, result: WitType, ptr: u32) -> Result<(), Error> {
        self.0.store(cx, result, ptr)
    }
}

macro_rules! host_params {
    ($n:literal: $($t:ident $i:tt),*) => {
        impl<$($t: Lift),*> HostParams for ($($t,)*) {
            typecheck_params!($n: $($t $i),*);
            #[allow(unused_variables)]
            fn lift_params(cx: &LiftCx<'_>, types: &[WitType], src: &mut FlatSrc<'_>) -> Result<Self, Error> {
                Ok(($($t::lift_flat(cx, types[$i], src)?,)*))
            }
            #[allow(unused_variables)]
            fn load_params(cx: &LiftCx<'_>, types: &[WitType], offsets: &[u32], ptr: u32) -> Result<Self, Error> {
                Ok(($($t::load(cx, types[$i], ptr + offsets[$i])?,)*))
            }
        }
    };
}

host_params!(0:);
crate::canonical::values::for_tuples!(host_params);
