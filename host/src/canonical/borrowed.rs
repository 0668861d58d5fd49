//! Results read in place: a `string`, a `list<u8>` or a list of numbers handed to the caller
//! straight from guest memory, with every check of the spec (bounds, alignment, length,
//! UTF-8) and no copy, valid until the function's post-return frees them. wasmtime's
//! `WasmStr` and `WasmList`, scoped to a closure so that no borrow outlives the call.

use std::marker::PhantomData;

use super::ty::{WitType, WitWorld};
use super::values::{ComponentType, LiftCx};
use crate::{Error, Region, Violation};

/// A result type that can be borrowed from guest memory: `str` (a `string`), `[u8]` (a
/// `list<u8>`), or `[T]` for the numbers `T` of [`Number`] (a `list<T>`, read as
/// [`Numbers`]). Used by [`Guest::typed_borrowed`](crate::Guest::typed_borrowed).
pub trait Borrowed {
    /// What the caller's closure is given: a `&str`, a `&[u8]`, or [`Numbers`].
    type Ref<'a>;
    /// Whether this stands for `ty`.
    #[doc(hidden)]
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String>;
    /// The value of the pair `(ptr, len)`, checked, in place.
    #[doc(hidden)]
    fn borrow<'a>(cx: &'a LiftCx<'_>, ptr: u32, len: u32) -> Result<Self::Ref<'a>, Error>;
}

impl Borrowed for str {
    type Ref<'a> = &'a str;

    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        <str as ComponentType>::typecheck(world, ty)
    }

    fn borrow<'a>(cx: &'a LiftCx<'_>, ptr: u32, len: u32) -> Result<&'a str, Error> {
        cx.str(ptr, len)
    }
}

impl Borrowed for [u8] {
    type Ref<'a> = &'a [u8];

    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        <[u8] as ComponentType>::typecheck(world, ty)
    }

    fn borrow<'a>(cx: &'a LiftCx<'_>, ptr: u32, len: u32) -> Result<&'a [u8], Error> {
        cx.list_in_place(ptr, len, 1)
    }
}

impl<T: Number> Borrowed for [T] {
    type Ref<'a> = Numbers<'a, T>;

    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        <[T] as ComponentType>::typecheck(world, ty)
    }

    fn borrow<'a>(cx: &'a LiftCx<'_>, ptr: u32, len: u32) -> Result<Numbers<'a, T>, Error> {
        let bytes = cx.list_in_place(ptr, len, T::SIZE)?;
        Ok(Numbers {
            bytes,
            number: PhantomData,
        })
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A number whose every bit pattern is a value (`s8`, `u16`, `s16`, `u32`, `s32`, `u64`,
/// `s64`, `f32`, `f64`), so that a list of them is read in place with no check per element.
/// (`u8` lists are `[u8]`; `bool` and `char` have invalid patterns, and lift as `Vec`.)
pub trait Number: ComponentType + Copy + sealed::Sealed {
    /// Its size in memory, which is also its alignment.
    #[doc(hidden)]
    const SIZE: u32;
    /// It from its `SIZE` little-endian bytes.
    #[doc(hidden)]
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t {
            #[allow(clippy::cast_possible_truncation, reason = "at most 8")]
            const SIZE: u32 = size_of::<$t>() as u32;
            fn from_le(bytes: &[u8]) -> Self {
                let mut le = [0; size_of::<$t>()];
                le.copy_from_slice(bytes);
                <$t>::from_le_bytes(le)
            }
        }
    )*};
}
numbers!(i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// A `list<T>` of numbers in guest memory, checked (in bounds, aligned) and not copied: the
/// spec stores them little-endian, and each is read as it is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Numbers<'a, T> {
    bytes: &'a [u8],
    number: PhantomData<T>,
}

impl<'a, T: Number + 'a> Numbers<'a, T> {
    /// How many numbers the list holds.
    pub fn len(&self) -> usize {
        self.bytes.len() / T::SIZE as usize
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The number at `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<T> {
        let size = T::SIZE as usize;
        let at = index.checked_mul(size)?;
        self.bytes.get(at..at.checked_add(size)?).map(T::from_le)
    }

    /// The numbers, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = T> + 'a {
        self.bytes.chunks_exact(T::SIZE as usize).map(T::from_le)
    }

    /// The list's bytes as the guest holds them (little-endian).
    pub fn as_le_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl LiftCx<'_> {
    /// The bytes of a list of `len` elements of `size` bytes (and alignment) at `ptr`,
    /// checked, in place.
    pub(crate) fn list_in_place(&self, ptr: u32, len: u32, size: u32) -> Result<&[u8], Error> {
        let bytes = len
            .checked_mul(size)
            .ok_or_else(|| self.violation(Violation::ListTooLong { len, size }))?;
        self.check_range("a list", ptr, u64::from(bytes), size)?;
        match self.core.bytes(Region {
            offset: ptr,
            len: bytes,
        })? {
            std::borrow::Cow::Borrowed(bytes) => Ok(bytes),
            // A shared memory can change under a borrow: it is lifted by copy, or not at all.
            std::borrow::Cow::Owned(_) => Err(self.violation(Violation::SharedMemory)),
        }
    }
}
