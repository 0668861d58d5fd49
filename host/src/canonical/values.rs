//! Lifting and lowering, as the canonical ABI's spec says (its "Loading", "Storing", "Flat
//! Lifting" and "Flat Lowering" sections), for the dynamic [`Val`](super::Val) and for Rust
//! types alike: each type implements [`Lower`] and [`Lift`] over one context each, and the
//! checks the spec makes (alignment, bounds, string length, UTF-8, char range,
//! discriminant range) are made here, once, as [`Violation`]s naming the export.
//!
//! Flat values are kept as raw bits in a `u64` (an `i32` zero-extended, a float's bits), so
//! that the spec's coercions between a variant's joined places are the identity: a case's
//! `f32` in an `i64` place is its bits, an `i32` its zero-extended bits, and reading takes
//! the low 32 bits back.

#![allow(
    clippy::cast_possible_truncation,
    reason = "flat values are raw bits: the spec takes the low bits of a wider place (its `wrap_i64_to_i32`, `lift_flat_unsigned`)"
)]

use std::borrow::Cow;
use std::cell::Cell;

use wit_parser::{Resolve, Type, TypeDefKind};

use super::layout::{self, Cases, Info, MAX_STRING_BYTES, Types};
use super::ty::{AsType, WitType, WitWorld};
use crate::instance::{ReadGuest, WriteGuest};
use crate::{Error, Region, Violation};

/// What lowering (host values into the guest) works with: the guest's core, the types, and
/// the export being called. Opaque: its methods are the library's own.
pub struct LowerCx<'a> {
    pub(crate) core: &'a mut dyn WriteGuest,
    pub(crate) resolve: &'a Resolve,
    pub(crate) types: &'a Types,
    pub(crate) export: &'a str,
}

/// What lifting (guest values out to the host) works with: the guest's core, the types, the
/// export, and what is left of the host memory one value may take. Opaque.
pub struct LiftCx<'a> {
    pub(crate) core: &'a dyn ReadGuest,
    pub(crate) resolve: &'a Resolve,
    pub(crate) types: &'a Types,
    pub(crate) export: &'a str,
    pub(crate) budget: Cell<u64>,
}

impl std::fmt::Debug for LowerCx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LowerCx")
            .field("export", &self.export)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LiftCx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiftCx")
            .field("export", &self.export)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// Flat values being lifted, in order. Opaque.
#[derive(Debug)]
pub struct FlatSrc<'a> {
    values: &'a [u64],
    next: usize,
}

impl<'a> FlatSrc<'a> {
    pub(crate) fn new(values: &'a [u64]) -> FlatSrc<'a> {
        FlatSrc { values, next: 0 }
    }

    /// The next flat value's bits (admission made the counts agree; a short list reads 0).
    pub(crate) fn next_bits(&mut self) -> u64 {
        let v = self.values.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        v
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        // The low 32 bits: the spec's `wrap_i64_to_i32` where an i64 place holds an i32.
        (self.next_bits() & 0xFFFF_FFFF) as u32
    }

    fn skip(&mut self, n: usize) {
        self.next += n;
    }
}

/// The types of the call a context lifts or lowers for: the world, its compiled table, and
/// the export (for errors). Both contexts answer the same questions of them here, once.
pub(crate) trait TypesOf<'a> {
    /// The world, its table, and the export being called.
    fn types_of(&self) -> (&'a Resolve, &'a Types, &'a str);

    /// The layout of `ty` from the table compiled at admission, or the error for a type
    /// the host refused (which admission keeps from every function it lets through).
    fn info(&self, ty: impl AsType) -> Result<&'a Info, Error> {
        let (_, types, export) = self.types_of();
        types.get(ty).map_err(|why| Error::Call {
            export: export.to_string().into(),
            problem: format!("cannot pass {why}"),
        })
    }

    /// The layout of the cases of a variant-shaped `ty`.
    fn cases(&self, ty: impl AsType) -> Result<&'a Cases, Error> {
        self.info(ty)?
            .cases()
            .ok_or_else(|| self.wrong_type("a variant-shaped type"))
    }

    /// What `ty` is, past aliases, in one step through the table.
    fn kind(&self, ty: impl AsType) -> Option<&'a TypeDefKind> {
        let (resolve, types, _) = self.types_of();
        match types.unalias(ty) {
            Type::Id(id) => resolve.types.get(id).map(|def| &def.kind),
            _ => None,
        }
    }

    /// The error for a value handed over as a type it is not (the typecheck keeps it
    /// away).
    fn wrong_type(&self, expected: &str) -> Error {
        let (_, _, export) = self.types_of();
        Error::Call {
            export: export.to_string().into(),
            problem: format!("a value for {expected} given a type that is not one"),
        }
    }
}

impl<'a> TypesOf<'a> for LowerCx<'a> {
    fn types_of(&self) -> (&'a Resolve, &'a Types, &'a str) {
        (self.resolve, self.types, self.export)
    }
}

impl<'a> TypesOf<'a> for LiftCx<'a> {
    fn types_of(&self) -> (&'a Resolve, &'a Types, &'a str) {
        (self.resolve, self.types, self.export)
    }
}

impl LowerCx<'_> {
    /// A block of `len` bytes aligned to `align` from the guest's `cabi_realloc`, checked as
    /// the spec checks it (aligned, within memory).
    pub(crate) fn alloc(&mut self, len: u64, align: u32) -> Result<u32, Error> {
        const WHAT: &str = "the block `cabi_realloc` returned";
        let len = u32::try_from(len).map_err(|_| self.violation(Violation::TooLong { len }))?;
        match self.core.alloc(len, align) {
            Ok(block) => Ok(block.region().offset),
            Err(Error::Misaligned { offset, align, .. }) => {
                Err(self.violation(Violation::Misaligned {
                    what: WHAT,
                    ptr: offset,
                    align,
                }))
            }
            Err(Error::OutOfBounds { offset, .. } | Error::RangeOverflow { offset, .. }) => {
                Err(self.violation(Violation::OutOfBounds {
                    what: WHAT,
                    ptr: offset,
                    len: u64::from(len),
                    memory_size: self.core.memory_size(),
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes `bytes` at `ptr` (within a block this lowering allocated).
    pub(crate) fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), Error> {
        self.core.write(ptr, bytes)
    }

    fn violation(&self, violation: Violation) -> Error {
        Error::canonical(self.export, violation)
    }

    /// Lowers a string: copied into a block of its own; returns `(ptr, len)`.
    pub(crate) fn string(&mut self, s: &str) -> Result<(u32, u32), Error> {
        self.bytes(s.as_bytes(), 1)
    }

    /// Copies `bytes` into a block aligned to `align`; returns `(ptr, len)`.
    fn bytes(&mut self, bytes: &[u8], align: u32) -> Result<(u32, u32), Error> {
        let ptr = self.alloc(bytes.len() as u64, align)?;
        self.write(ptr, bytes)?;
        // `alloc` refused a length past u32.
        Ok((ptr, u32::try_from(bytes.len()).unwrap_or(u32::MAX)))
    }

    /// Lowers a list of `items` of element type `elem`; returns `(ptr, len)`.
    pub(crate) fn list<T: Lower>(
        &mut self,
        items: &[T],
        elem: WitType,
    ) -> Result<(u32, u32), Error> {
        let Info { size, align, .. } = *self.info(elem)?;
        let len = items.len() as u64;
        let bytes = len
            .checked_mul(u64::from(size))
            .ok_or_else(|| self.violation(Violation::TooLong { len: u64::MAX }))?;
        let ptr = self.alloc(bytes, align)?;
        T::store_list(items, self, elem, ptr)?;
        Ok((ptr, u32::try_from(len).unwrap_or(u32::MAX)))
    }
}

impl LiftCx<'_> {
    pub(crate) fn violation(&self, violation: Violation) -> Error {
        Error::canonical(self.export, violation)
    }

    /// Counts `bytes` of host memory against what one lifted value may take.
    pub(crate) fn spend(&self, bytes: u64) -> Result<(), Error> {
        match self.budget.get().checked_sub(bytes) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(self.violation(Violation::ValueTooLarge)),
        }
    }

    /// A label of the type (a field, case or flag name) copied into a lifted value, and
    /// counted like the value's own bytes: a guest cannot make the host copy a long name
    /// once for each of many values.
    pub(crate) fn name(&self, name: &str) -> Result<String, Error> {
        self.spend(name.len() as u64)?;
        Ok(name.to_owned())
    }

    /// `N` bytes at `ptr`.
    pub(crate) fn load<const N: usize>(&self, ptr: u32) -> Result<[u8; N], Error> {
        let mut buf = [0; N];
        self.check_range("a value", ptr, N as u64, 1)?;
        self.core.read_into(ptr, &mut buf)?;
        Ok(buf)
    }

    fn load_u32(&self, ptr: u32) -> Result<u32, Error> {
        self.load::<4>(ptr).map(u32::from_le_bytes)
    }

    /// The spec's checks of a range the guest names: aligned, and within memory.
    pub(crate) fn check_range(
        &self,
        what: &'static str,
        ptr: u32,
        len: u64,
        align: u32,
    ) -> Result<(), Error> {
        if !ptr.is_multiple_of(align) {
            return Err(self.violation(Violation::Misaligned { what, ptr, align }));
        }
        let memory_size = self.core.memory_size();
        if u64::from(ptr) + len > memory_size {
            return Err(self.violation(Violation::OutOfBounds {
                what,
                ptr,
                len,
                memory_size,
            }));
        }
        Ok(())
    }

    /// The bytes of a string at `(ptr, len)`, checked as the spec checks them, borrowed
    /// from guest memory.
    pub(crate) fn str(&self, ptr: u32, len: u32) -> Result<&str, Error> {
        if len > MAX_STRING_BYTES {
            return Err(self.violation(Violation::StringTooLong { len }));
        }
        self.check_range("a string", ptr, u64::from(len), 1)?;
        let bytes = match self.core.bytes(Region { offset: ptr, len })? {
            Cow::Borrowed(bytes) => bytes,
            // A shared memory is copied out; strings from one are lifted through `string`.
            Cow::Owned(_) => return Err(self.violation(Violation::SharedMemory)),
        };
        std::str::from_utf8(bytes).map_err(|e| {
            self.violation(Violation::InvalidUtf8 {
                ptr,
                len,
                valid_up_to: u32::try_from(e.valid_up_to()).unwrap_or(u32::MAX),
            })
        })
    }

    /// A string at `(ptr, len)`, copied out (and counted).
    pub(crate) fn string(&self, ptr: u32, len: u32) -> Result<String, Error> {
        if len > MAX_STRING_BYTES {
            return Err(self.violation(Violation::StringTooLong { len }));
        }
        self.check_range("a string", ptr, u64::from(len), 1)?;
        self.spend(u64::from(len))?;
        if self.core.memory_is_shared() {
            let bytes = self.core.bytes(Region { offset: ptr, len })?.into_owned();
            return String::from_utf8(bytes).map_err(|e| {
                self.violation(Violation::InvalidUtf8 {
                    ptr,
                    len,
                    valid_up_to: u32::try_from(e.utf8_error().valid_up_to()).unwrap_or(u32::MAX),
                })
            });
        }
        self.str(ptr, len).map(str::to_owned)
    }

    /// Where a list of `len` elements of `elem` at `ptr` lies, checked: the element
    /// alignment, the size in 32 bits, within memory. Returns the element size.
    pub(crate) fn list_range(&self, ptr: u32, len: u32, elem: WitType) -> Result<u32, Error> {
        let Info { size, align, .. } = *self.info(elem)?;
        let bytes = u64::from(len) * u64::from(size);
        if bytes > u64::from(u32::MAX) {
            return Err(self.violation(Violation::ListTooLong { len, size }));
        }
        self.check_range("a list", ptr, bytes, align)?;
        Ok(size)
    }

    /// A char from its scalar value, or the spec's trap.
    fn char(&self, i: u32) -> Result<char, Error> {
        char::from_u32(i).ok_or_else(|| self.violation(Violation::InvalidChar { value: i }))
    }

    /// A discriminant in range, or the spec's trap.
    pub(crate) fn case(
        &self,
        what: &'static str,
        value: u32,
        cases: usize,
    ) -> Result<usize, Error> {
        let case = value as usize;
        if case >= cases {
            return Err(self.violation(Violation::Discriminant { what, value, cases }));
        }
        Ok(case)
    }

    /// The discriminant of a variant laid out as `cases` at `ptr`.
    pub(crate) fn load_case(
        &self,
        what: &'static str,
        ptr: u32,
        cases: &Cases,
    ) -> Result<usize, Error> {
        let value = match cases.disc {
            1 => u32::from(self.load::<1>(ptr)?[0]),
            2 => u32::from(u16::from_le_bytes(self.load::<2>(ptr)?)),
            _ => self.load_u32(ptr)?,
        };
        self.case(what, value, cases.widths.len())
    }
}

/// A Rust type, or [`Val`](super::Val), that stands for a WIT type.
pub trait ComponentType {
    /// Whether values of `Self` are values of `ty`; why not otherwise.
    #[doc(hidden)]
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String>;

    /// As `typecheck`, for a variant case's payload, which may be absent (only `()` stands
    /// for none).
    #[doc(hidden)]
    fn typecheck_payload(world: WitWorld<'_>, ty: Option<WitType>) -> Result<(), String> {
        match ty {
            Some(ty) => Self::typecheck(world, ty),
            None => Err("a payload where the type has none".into()),
        }
    }
}

/// A value the host can hand a guest (checked against the type before any is lowered).
pub trait Lower: ComponentType {
    /// Appends the flat form of `self` as `ty`.
    #[doc(hidden)]
    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        ty: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error>;

    /// Writes `self` as `ty` at `ptr`.
    #[doc(hidden)]
    fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error>;

    /// Writes each of `items` as `ty` from `ptr` on (a list's elements); bytes in one copy.
    #[doc(hidden)]
    fn store_list(items: &[Self], cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error>
    where
        Self: Sized,
    {
        let size = cx.info(ty)?.size;
        let mut at = ptr;
        for item in items {
            item.store(cx, ty, at)?;
            at = at.wrapping_add(size);
        }
        Ok(())
    }
}

/// A value the host can take from a guest, every check of the spec made.
pub trait Lift: ComponentType + Sized {
    /// Lifts `ty` from flat values.
    #[doc(hidden)]
    fn lift_flat(cx: &LiftCx<'_>, ty: WitType, src: &mut FlatSrc<'_>) -> Result<Self, Error>;

    /// Lifts `ty` from memory at `ptr` (in bounds: the caller checked the whole range).
    #[doc(hidden)]
    fn load(cx: &LiftCx<'_>, ty: WitType, ptr: u32) -> Result<Self, Error>;

    /// The value of an absent payload (a `result` case without one): only `()` has one;
    /// the typecheck keeps every other type away.
    #[doc(hidden)]
    fn lift_absent(cx: &LiftCx<'_>) -> Result<Self, Error> {
        Err(cx.wrong_type("a case without a payload"))
    }

    /// Lifts `len` elements of `ty` from `ptr` on (checked by the caller).
    #[doc(hidden)]
    fn load_list(cx: &LiftCx<'_>, ty: WitType, ptr: u32, len: u32) -> Result<Vec<Self>, Error> {
        let size = cx.info(ty)?.size;
        cx.spend(u64::from(len) * size_of::<Self>() as u64)?;
        let mut items = Vec::with_capacity(len as usize);
        for i in 0..len {
            items.push(Self::load(cx, ty, ptr + i * size)?);
        }
        Ok(items)
    }
}

fn mismatch(expected: &str, world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
    Err(format!(
        "{expected} for a value of type {}",
        super::val::type_name(world.0, ty)
    ))
}

/// Integers, floats, bool and char: one flat value, `N` bytes in memory.
macro_rules! scalar {
    // Lists of them move through one bounds-checked copy of the whole range each way (in
    // chunks of 4 KiB when lowered), not one check and copy an element.
    ($rust:ty, $wit:ident, $n:literal, |$v:ident| $to_bits:expr, |$cx:ident, $b:ident| $from_bits:expr) => {
        scalar!($rust, $wit, $n, |$v| $to_bits, |$cx, $b| $from_bits,
            lists:
            fn store_list(items: &[$rust], cx: &mut LowerCx<'_>, _ty: WitType, ptr: u32) -> Result<(), Error> {
                const CHUNK: usize = 4096 / $n;
                let mut buf = [0u8; CHUNK * $n];
                let mut at = ptr;
                for chunk in items.chunks(CHUNK) {
                    for (slot, item) in buf.chunks_exact_mut($n).zip(chunk) {
                        let $v = *item;
                        let bits: u64 = $to_bits;
                        slot.copy_from_slice(&bits.to_le_bytes()[..$n]);
                    }
                    let bytes = chunk.len() * $n;
                    cx.write(at, &buf[..bytes])?;
                    // Within the block the caller allocated, which is within memory.
                    at = at.wrapping_add(bytes as u32);
                }
                Ok(())
            }
            fn load_list(cx: &LiftCx<'_>, _ty: WitType, ptr: u32, len: u32) -> Result<Vec<$rust>, Error> {
                cx.spend(u64::from(len) * size_of::<$rust>() as u64)?;
                let total = len
                    .checked_mul($n)
                    .ok_or_else(|| cx.violation(Violation::ListTooLong { len, size: $n }))?;
                let bytes = cx.core.bytes(Region { offset: ptr, len: total })?;
                bytes
                    .chunks_exact($n)
                    .map(|c| {
                        let mut all = [0u8; 8];
                        all[..$n].copy_from_slice(c);
                        let $cx = cx;
                        let $b: u64 = u64::from_le_bytes(all);
                        $from_bits
                    })
                    .collect()
            }
        );
    };
    ($rust:ty, $wit:ident, $n:literal, |$v:ident| $to_bits:expr, |$cx:ident, $b:ident| $from_bits:expr,
     lists: $store_list:item $load_list:item) => {
        impl ComponentType for $rust {
            fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
                if layout::unalias(world.0, ty) == Type::$wit {
                    Ok(())
                } else {
                    mismatch(stringify!($rust), world, ty)
                }
            }
        }

        impl Lower for $rust {
            fn lower_flat(
                &self,
                _cx: &mut LowerCx<'_>,
                _ty: WitType,
                out: &mut Vec<u64>,
            ) -> Result<(), Error> {
                let $v = *self;
                out.push($to_bits);
                Ok(())
            }

            fn store(&self, cx: &mut LowerCx<'_>, _ty: WitType, ptr: u32) -> Result<(), Error> {
                let $v = *self;
                let bits: u64 = $to_bits;
                cx.write(ptr, &bits.to_le_bytes()[..$n])
            }

            $store_list
        }

        impl Lift for $rust {
            fn lift_flat(cx: &LiftCx<'_>, _ty: WitType, src: &mut FlatSrc<'_>) -> Result<Self, Error> {
                let $cx = cx;
                let $b: u64 = src.next_bits();
                $from_bits
            }

            fn load(cx: &LiftCx<'_>, _ty: WitType, ptr: u32) -> Result<Self, Error> {
                let bytes = cx.load::<$n>(ptr)?;
                let mut all = [0u8; 8];
                all[..$n].copy_from_slice(&bytes);
                let $cx = cx;
                let $b: u64 = u64::from_le_bytes(all);
                $from_bits
            }

            $load_list
        }
    };
}

scalar!(bool, Bool, 1, |v| u64::from(v), |_cx, b| Ok((b
    & 0xFFFF_FFFF)
    != 0));
// Bytes move in one copy each way.
scalar!(u8, U8, 1, |v| u64::from(v), |_cx, b| Ok(b as u8),
    lists:
    fn store_list(items: &[u8], cx: &mut LowerCx<'_>, _ty: WitType, ptr: u32) -> Result<(), Error> {
        cx.write(ptr, items)
    }
    fn load_list(cx: &LiftCx<'_>, _ty: WitType, ptr: u32, len: u32) -> Result<Vec<u8>, Error> {
        cx.spend(u64::from(len))?;
        Ok(cx.core.bytes(Region { offset: ptr, len })?.into_owned())
    }
);
// Signed scalars narrower than 32 bits are sign-extended to an `i32`, as the spec's
// `lower_flat_signed` does; a wider slot (a variant's joined `i64`) then extends with zeros.
scalar!(
    i8,
    S8,
    1,
    |v| u64::from(i32::from(v).cast_unsigned()),
    |_cx, b| Ok(b as u8 as i8)
);
scalar!(u16, U16, 2, |v| u64::from(v), |_cx, b| Ok(b as u16));
scalar!(
    i16,
    S16,
    2,
    |v| u64::from(i32::from(v).cast_unsigned()),
    |_cx, b| Ok(b as u16 as i16)
);
scalar!(u32, U32, 4, |v| u64::from(v), |_cx, b| Ok(b as u32));
scalar!(i32, S32, 4, |v| u64::from(v.cast_unsigned()), |_cx, b| Ok(
    b as u32 as i32
));
scalar!(u64, U64, 8, |v| v, |_cx, b| Ok(b));
scalar!(i64, S64, 8, |v| v.cast_unsigned(), |_cx, b| Ok(
    b.cast_signed()
));
scalar!(f32, F32, 4, |v| u64::from(v.to_bits()), |_cx, b| Ok(
    f32::from_bits(b as u32)
));
scalar!(f64, F64, 8, |v| v.to_bits(), |_cx, b| Ok(f64::from_bits(b)));
scalar!(char, Char, 4, |v| u64::from(u32::from(v)), |cx, b| cx
    .char(b as u32));

/// The pair of a string or list, flat.
fn push_pair(out: &mut Vec<u64>, (ptr, len): (u32, u32)) {
    out.extend([u64::from(ptr), u64::from(len)]);
}

/// The pair of a string or list, in memory.
fn store_pair(cx: &mut LowerCx<'_>, ptr: u32, (p, l): (u32, u32)) -> Result<(), Error> {
    let mut bytes = [0; 8];
    bytes[..4].copy_from_slice(&p.to_le_bytes());
    bytes[4..].copy_from_slice(&l.to_le_bytes());
    cx.write(ptr, &bytes)
}

pub(crate) fn load_pair(cx: &LiftCx<'_>, ptr: u32) -> Result<(u32, u32), Error> {
    let bytes = cx.load::<8>(ptr)?;
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Ok((word(0), word(4)))
}

fn is_string(world: WitWorld<'_>, ty: WitType) -> bool {
    layout::unalias(world.0, ty) == Type::String
}

impl ComponentType for str {
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        if is_string(world, ty) {
            Ok(())
        } else {
            mismatch("a string", world, ty)
        }
    }
}

impl Lower for str {
    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        _: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        push_pair(out, cx.string(self)?);
        Ok(())
    }

    fn store(&self, cx: &mut LowerCx<'_>, _: WitType, ptr: u32) -> Result<(), Error> {
        let pair = cx.string(self)?;
        store_pair(cx, ptr, pair)
    }
}

impl ComponentType for String {
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        str::typecheck(world, ty)
    }
}

impl Lower for String {
    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        ty: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        self.as_str().lower_flat(cx, ty, out)
    }

    fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
        self.as_str().store(cx, ty, ptr)
    }
}

impl Lift for String {
    fn lift_flat(cx: &LiftCx<'_>, _: WitType, src: &mut FlatSrc<'_>) -> Result<Self, Error> {
        let (ptr, len) = (src.next_u32(), src.next_u32());
        cx.string(ptr, len)
    }

    fn load(cx: &LiftCx<'_>, _: WitType, ptr: u32) -> Result<Self, Error> {
        let (p, l) = load_pair(cx, ptr)?;
        cx.string(p, l)
    }
}

impl<T: ComponentType + ?Sized> ComponentType for &T {
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        T::typecheck(world, ty)
    }
}

impl<T: Lower + ?Sized> Lower for &T {
    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        ty: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        (**self).lower_flat(cx, ty, out)
    }

    fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
        (**self).store(cx, ty, ptr)
    }
}

/// The element type of a list type.
fn list_elem(resolve: &Resolve, ty: WitType) -> Option<&Type> {
    match layout::kind(resolve, ty) {
        Some(TypeDefKind::List(elem)) => Some(elem),
        _ => None,
    }
}

/// The element type of a list type, through the table.
fn elem_of(kind: Option<&TypeDefKind>) -> Option<Type> {
    match kind {
        Some(TypeDefKind::List(elem)) => Some(*elem),
        _ => None,
    }
}

impl<T: ComponentType> ComponentType for [T] {
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        match list_elem(world.0, ty) {
            Some(elem) => T::typecheck(world, WitType::from(elem)),
            None => mismatch("a list", world, ty),
        }
    }
}

impl<T: Lower> Lower for [T] {
    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        ty: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        let elem = elem_of(cx.kind(ty)).ok_or_else(|| cx.wrong_type("a list"))?;
        push_pair(out, cx.list(self, WitType(elem))?);
        Ok(())
    }

    fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
        let elem = elem_of(cx.kind(ty)).ok_or_else(|| cx.wrong_type("a list"))?;
        let pair = cx.list(self, WitType(elem))?;
        store_pair(cx, ptr, pair)
    }
}

impl<T: ComponentType> ComponentType for Vec<T> {
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        <[T]>::typecheck(world, ty)
    }
}

impl<T: Lower> Lower for Vec<T> {
    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        ty: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        self.as_slice().lower_flat(cx, ty, out)
    }

    fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
        self.as_slice().store(cx, ty, ptr)
    }
}

impl<T: Lift> Lift for Vec<T> {
    fn lift_flat(cx: &LiftCx<'_>, ty: WitType, src: &mut FlatSrc<'_>) -> Result<Self, Error> {
        let (ptr, len) = (src.next_u32(), src.next_u32());
        lift_list(cx, ty, ptr, len)
    }

    fn load(cx: &LiftCx<'_>, ty: WitType, ptr: u32) -> Result<Self, Error> {
        let (p, l) = load_pair(cx, ptr)?;
        lift_list(cx, ty, p, l)
    }
}

fn lift_list<T: Lift>(cx: &LiftCx<'_>, ty: WitType, ptr: u32, len: u32) -> Result<Vec<T>, Error> {
    let elem = elem_of(cx.kind(ty)).ok_or_else(|| cx.wrong_type("a list"))?;
    cx.list_range(ptr, len, WitType(elem))?;
    T::load_list(cx, WitType(elem), ptr, len)
}

impl ComponentType for () {
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        match layout::kind(world.0, ty) {
            Some(TypeDefKind::Tuple(t)) if t.types.is_empty() => Ok(()),
            _ => mismatch("()", world, ty),
        }
    }

    fn typecheck_payload(world: WitWorld<'_>, ty: Option<WitType>) -> Result<(), String> {
        match ty {
            None => Ok(()),
            Some(ty) => Self::typecheck(world, ty),
        }
    }
}

impl Lower for () {
    fn lower_flat(&self, _: &mut LowerCx<'_>, _: WitType, _: &mut Vec<u64>) -> Result<(), Error> {
        Ok(())
    }

    fn store(&self, _: &mut LowerCx<'_>, _: WitType, _: u32) -> Result<(), Error> {
        Ok(())
    }
}

impl Lift for () {
    fn lift_absent(_: &LiftCx<'_>) -> Result<Self, Error> {
        Ok(())
    }

    fn lift_flat(_: &LiftCx<'_>, _: WitType, _: &mut FlatSrc<'_>) -> Result<Self, Error> {
        Ok(())
    }

    fn load(_: &LiftCx<'_>, _: WitType, _: u32) -> Result<Self, Error> {
        Ok(())
    }
}

/// Lowers case `case` of a variant-shaped `ty` (option, result, variant, enum), flat, its
/// payload through `payload`.
///
/// # Errors
/// The payload's, or a typed error where `ty` is not variant-shaped.
pub fn lower_either_flat(
    cx: &mut LowerCx<'_>,
    ty: WitType,
    case: usize,
    out: &mut Vec<u64>,
    payload: impl FnOnce(&mut LowerCx<'_>, WitType, &mut Vec<u64>) -> Result<(), Error>,
) -> Result<(), Error> {
    let cases = cx.cases(ty)?;
    let payload_ty = cx.kind(ty).and_then(|k| layout::case_payload(k, case));
    lower_case_flat(cx, cases, case, payload_ty.map(WitType::from), out, payload)
}

/// Stores case `case` of a variant-shaped `ty` at `ptr`, its payload through `payload`.
///
/// # Errors
/// As [`lower_either_flat`].
pub fn store_either(
    cx: &mut LowerCx<'_>,
    ty: WitType,
    case: usize,
    ptr: u32,
    payload: impl FnOnce(&mut LowerCx<'_>, WitType, u32) -> Result<(), Error>,
) -> Result<(), Error> {
    let cases = cx.cases(ty)?;
    let payload_ty = cx.kind(ty).and_then(|k| layout::case_payload(k, case));
    store_case(cx, cases, case, payload_ty.map(WitType::from), ptr, payload)
}

/// Lowers case `case`, whose payload has type `ty`, of a variant laid out as `cases`,
/// flat: the discriminant, the payload through `payload`, zeros for the places it leaves.
pub(crate) fn lower_case_flat(
    cx: &mut LowerCx<'_>,
    cases: &Cases,
    case: usize,
    ty: Option<WitType>,
    out: &mut Vec<u64>,
    payload: impl FnOnce(&mut LowerCx<'_>, WitType, &mut Vec<u64>) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(case as u64);
    let start = out.len();
    if let Some(ty) = ty {
        payload(cx, ty, out)?;
    }
    out.resize(start + cases.width as usize, 0);
    Ok(())
}

/// Stores case `case`, whose payload has type `ty`, of a variant laid out as `cases` at
/// `ptr`.
pub(crate) fn store_case(
    cx: &mut LowerCx<'_>,
    cases: &Cases,
    case: usize,
    ty: Option<WitType>,
    ptr: u32,
    payload: impl FnOnce(&mut LowerCx<'_>, WitType, u32) -> Result<(), Error>,
) -> Result<(), Error> {
    let disc = (case as u32).to_le_bytes();
    cx.write(ptr, &disc[..cases.disc as usize])?;
    match ty {
        Some(ty) => payload(cx, ty, ptr + cases.payload),
        None => Ok(()),
    }
}

/// Lifts a variant of `kind`, laid out as `cases`, flat: the case, and its payload through
/// `payload`; the places the case does not use are skipped.
pub(crate) fn lift_case_flat<T>(
    cx: &LiftCx<'_>,
    what: &'static str,
    kind: &TypeDefKind,
    cases: &Cases,
    src: &mut FlatSrc<'_>,
    payload: impl FnOnce(usize, Option<WitType>, &mut FlatSrc<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let case = cx.case(what, src.next_u32(), cases.widths.len())?;
    let value = payload(
        case,
        layout::case_payload(kind, case).map(WitType::from),
        src,
    )?;
    let used = cases.widths.get(case).copied().unwrap_or(0);
    src.skip(cases.width.saturating_sub(used) as usize);
    Ok(value)
}

/// Lifts a variant of `kind`, laid out as `cases`, at `ptr`: the case, and its payload
/// through `payload`.
pub(crate) fn load_case<T>(
    cx: &LiftCx<'_>,
    what: &'static str,
    kind: &TypeDefKind,
    cases: &Cases,
    ptr: u32,
    payload: impl FnOnce(usize, Option<WitType>, u32) -> Result<T, Error>,
) -> Result<T, Error> {
    let case = cx.load_case(what, ptr, cases)?;
    payload(
        case,
        layout::case_payload(kind, case).map(WitType::from),
        ptr + cases.payload,
    )
}

/// The kind and case layout of an option or result `ty`, for lifting.
fn either<'a>(cx: &LiftCx<'a>, ty: WitType) -> Result<(&'a TypeDefKind, &'a Cases), Error> {
    let kind = cx
        .kind(ty)
        .ok_or_else(|| cx.wrong_type("an option or result"))?;
    Ok((kind, cx.cases(ty)?))
}

impl<T: ComponentType> ComponentType for Option<T> {
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        match layout::kind(world.0, ty) {
            Some(TypeDefKind::Option(t)) => T::typecheck(world, WitType::from(t)),
            _ => mismatch("an option", world, ty),
        }
    }
}

impl<T: Lower> Lower for Option<T> {
    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        ty: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        lower_either_flat(
            cx,
            ty,
            usize::from(self.is_some()),
            out,
            |cx, ty, out| match self {
                Some(v) => v.lower_flat(cx, ty, out),
                None => Ok(()),
            },
        )
    }

    fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
        store_either(
            cx,
            ty,
            usize::from(self.is_some()),
            ptr,
            |cx, ty, at| match self {
                Some(v) => v.store(cx, ty, at),
                None => Ok(()),
            },
        )
    }
}

impl<T: Lift> Lift for Option<T> {
    fn lift_flat(cx: &LiftCx<'_>, ty: WitType, src: &mut FlatSrc<'_>) -> Result<Self, Error> {
        let (kind, cases) = either(cx, ty)?;
        lift_case_flat(cx, "an option", kind, cases, src, |case, ty, src| {
            match (case, ty) {
                (1, Some(ty)) => T::lift_flat(cx, ty, src).map(Some),
                _ => Ok(None),
            }
        })
    }

    fn load(cx: &LiftCx<'_>, ty: WitType, ptr: u32) -> Result<Self, Error> {
        let (kind, cases) = either(cx, ty)?;
        load_case(cx, "an option", kind, cases, ptr, |case, ty, at| {
            match (case, ty) {
                (1, Some(ty)) => T::load(cx, ty, at).map(Some),
                _ => Ok(None),
            }
        })
    }
}

impl<T: ComponentType, E: ComponentType> ComponentType for Result<T, E> {
    fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
        match layout::kind(world.0, ty) {
            Some(TypeDefKind::Result(r)) => {
                T::typecheck_payload(world, r.ok.as_ref().map(WitType::from))?;
                E::typecheck_payload(world, r.err.as_ref().map(WitType::from))
            }
            _ => mismatch("a result", world, ty),
        }
    }
}

impl<T: Lower, E: Lower> Lower for Result<T, E> {
    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        ty: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        lower_either_flat(
            cx,
            ty,
            usize::from(self.is_err()),
            out,
            |cx, ty, out| match self {
                Ok(v) => v.lower_flat(cx, ty, out),
                Err(e) => e.lower_flat(cx, ty, out),
            },
        )
    }

    fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
        store_either(
            cx,
            ty,
            usize::from(self.is_err()),
            ptr,
            |cx, ty, at| match self {
                Ok(v) => v.store(cx, ty, at),
                Err(e) => e.store(cx, ty, at),
            },
        )
    }
}

/// Lifts a payload that may be absent (then only `()` is accepted, by the typecheck).
fn payload_flat<T: Lift>(
    cx: &LiftCx<'_>,
    ty: Option<WitType>,
    src: &mut FlatSrc<'_>,
) -> Result<T, Error> {
    match ty {
        Some(ty) => T::lift_flat(cx, ty, src),
        None => T::lift_absent(cx),
    }
}

fn payload_load<T: Lift>(cx: &LiftCx<'_>, ty: Option<WitType>, ptr: u32) -> Result<T, Error> {
    match ty {
        Some(ty) => T::load(cx, ty, ptr),
        None => T::lift_absent(cx),
    }
}

impl<T: Lift, E: Lift> Lift for Result<T, E> {
    fn lift_flat(cx: &LiftCx<'_>, ty: WitType, src: &mut FlatSrc<'_>) -> Result<Self, Error> {
        let (kind, cases) = either(cx, ty)?;
        lift_case_flat(cx, "a result", kind, cases, src, |case, ty, src| {
            Ok(match case {
                0 => Ok(payload_flat::<T>(cx, ty, src)?),
                _ => Err(payload_flat::<E>(cx, ty, src)?),
            })
        })
    }

    fn load(cx: &LiftCx<'_>, ty: WitType, ptr: u32) -> Result<Self, Error> {
        let (kind, cases) = either(cx, ty)?;
        load_case(cx, "a result", kind, cases, ptr, |case, ty, at| {
            Ok(match case {
                0 => Ok(payload_load::<T>(cx, ty, at)?),
                _ => Err(payload_load::<E>(cx, ty, at)?),
            })
        })
    }
}

/// The field types of a tuple type.
fn tuple_types(resolve: &Resolve, ty: WitType) -> Option<&[Type]> {
    match layout::kind(resolve, ty) {
        Some(TypeDefKind::Tuple(t)) => Some(&t.types),
        _ => None,
    }
}

/// The `n` field types of a tuple kind.
fn tuple_of(kind: Option<&TypeDefKind>, n: usize) -> Option<&[Type]> {
    match kind {
        Some(TypeDefKind::Tuple(t)) if t.types.len() == n => Some(&t.types),
        _ => None,
    }
}

/// The `n` field offsets of a record or tuple layout.
fn offsets_of(info: &Info, n: usize) -> Option<&[u32]> {
    info.offsets().filter(|o| o.len() == n)
}

macro_rules! tuple {
    ($n:literal: $($t:ident $i:tt),+) => {
        impl<$($t: ComponentType),+> ComponentType for ($($t,)+) {
            fn typecheck(world: WitWorld<'_>, ty: WitType) -> Result<(), String> {
                match tuple_types(world.0, ty) {
                    Some(types) if types.len() == $n => {
                        $($t::typecheck(world, WitType(types[$i]))?;)+
                        Ok(())
                    }
                    _ => mismatch(concat!("a tuple of ", $n), world, ty),
                }
            }
        }

        impl<$($t: Lower),+> Lower for ($($t,)+) {
            fn lower_flat(&self, cx: &mut LowerCx<'_>, ty: WitType, out: &mut Vec<u64>) -> Result<(), Error> {
                let types = tuple_of(cx.kind(ty), $n).ok_or_else(|| cx.wrong_type(concat!("a tuple of ", $n)))?;
                $(self.$i.lower_flat(cx, WitType(types[$i]), out)?;)+
                Ok(())
            }

            fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
                let types = tuple_of(cx.kind(ty), $n).ok_or_else(|| cx.wrong_type(concat!("a tuple of ", $n)))?;
                let offsets = offsets_of(cx.info(ty)?, $n).ok_or_else(|| cx.wrong_type(concat!("a tuple of ", $n)))?;
                $(self.$i.store(cx, WitType(types[$i]), ptr + offsets[$i])?;)+
                Ok(())
            }
        }

        impl<$($t: Lift),+> Lift for ($($t,)+) {
            fn lift_flat(cx: &LiftCx<'_>, ty: WitType, src: &mut FlatSrc<'_>) -> Result<Self, Error> {
                let types = tuple_of(cx.kind(ty), $n).ok_or_else(|| cx.wrong_type(concat!("a tuple of ", $n)))?;
                Ok(($($t::lift_flat(cx, WitType(types[$i]), src)?,)+))
            }

            fn load(cx: &LiftCx<'_>, ty: WitType, ptr: u32) -> Result<Self, Error> {
                let types = tuple_of(cx.kind(ty), $n).ok_or_else(|| cx.wrong_type(concat!("a tuple of ", $n)))?;
                let offsets = offsets_of(cx.info(ty)?, $n).ok_or_else(|| cx.wrong_type(concat!("a tuple of ", $n)))?;
                Ok(($($t::load(cx, WitType(types[$i]), ptr + offsets[$i])?,)+))
            }
        }
    };
}

/// Invokes `$m` for tuples of 1 to 6 elements (their type names and indexes).
macro_rules! for_tuples {
    ($m:ident) => {
        $m!(1: A 0);
        $m!(2: A 0, B 1);
        $m!(3: A 0, B 1, C 2);
        $m!(4: A 0, B 1, C 2, D 3);
        $m!(5: A 0, B 1, C 2, D 3, E 4);
        $m!(6: A 0, B 1, C 2, D 3, E 4, F 5);
    };
}
pub(crate) use for_tuples;

for_tuples!(tuple);
