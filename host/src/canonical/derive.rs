//! What `#[derive(ComponentType, Lower, Lift)]` (the `host-derive` crate) expands to:
//! the checks and layouts of records, variants, enums and flags, read from the type table
//! compiled at admission, so that the generated code holds no ABI of its own. Not an API:
//! its shape follows the derive crate, which is of the same version.

use wit_parser::TypeDefKind;

use super::layout;
use super::ty::{WitType, WitWorld, types};
use super::values::{self, FlatSrc, LiftCx, LowerCx, TypesOf};
use crate::Error;

/// A record `ty` whose fields are `names`, in order: their types.
///
/// # Errors
/// Why not, in words, for a type that is not that record.
pub fn typecheck_record<const N: usize>(
    world: WitWorld<'_>,
    ty: WitType,
    rust: &str,
    names: [&str; N],
) -> Result<[WitType; N], String> {
    let fields = match layout::kind(world.0, ty) {
        Some(TypeDefKind::Record(r)) if r.fields.iter().map(|f| &f.name).eq(names) => {
            types(r.fields.iter().map(|f| &f.ty))
        }
        _ => None,
    };
    fields.ok_or_else(|| {
        format!(
            "`{rust}` (a record of {}) for a value of type {}",
            names.join(", "),
            super::val::type_name(world.0, ty)
        )
    })
}

/// A variant or enum `ty` whose cases are `cases` (name, and whether the Rust case has a
/// payload), in order: each case's payload type. A Rust enum without payloads stands for
/// a WIT `enum`, or a `variant` of no payloads.
///
/// # Errors
/// Why not, in words.
pub fn typecheck_cases<const N: usize>(
    world: WitWorld<'_>,
    ty: WitType,
    rust: &str,
    cases: [(&str, bool); N],
) -> Result<[Option<WitType>; N], String> {
    let mut payloads = [None; N];
    let found = match layout::kind(world.0, ty) {
        Some(TypeDefKind::Variant(v))
            if v.cases.len() == N
                && v.cases
                    .iter()
                    .zip(cases)
                    .all(|(c, (n, p))| c.name == n && c.ty.is_some() == p) =>
        {
            for (slot, case) in payloads.iter_mut().zip(&v.cases) {
                *slot = case.ty.as_ref().map(WitType::from);
            }
            true
        }
        Some(TypeDefKind::Enum(e)) => e.cases.iter().map(|c| (c.name.as_str(), false)).eq(cases),
        _ => false,
    };
    if found {
        return Ok(payloads);
    }
    let names: Vec<String> = cases
        .iter()
        .map(|(n, p)| {
            if *p {
                format!("{n}(_)")
            } else {
                (*n).to_string()
            }
        })
        .collect();
    Err(format!(
        "`{rust}` (cases {}) for a value of type {}",
        names.join(", "),
        super::val::type_name(world.0, ty)
    ))
}

/// Flags `ty` whose labels are `names`, in order.
///
/// # Errors
/// Why not, in words.
pub fn typecheck_flags(
    world: WitWorld<'_>,
    ty: WitType,
    rust: &str,
    names: &[&str],
) -> Result<(), String> {
    match layout::kind(world.0, ty) {
        Some(TypeDefKind::Flags(f))
            if f.flags
                .iter()
                .map(|f| f.name.as_str())
                .eq(names.iter().copied()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{rust}` (flags {}) for a value of type {}",
            names.join(", "),
            super::val::type_name(world.0, ty)
        )),
    }
}

/// The types of the `N` fields of record `ty`, as the typecheck found them.
fn fields<'a, const N: usize>(cx: &impl TypesOf<'a>, ty: WitType) -> Result<[WitType; N], Error> {
    match cx.kind(ty) {
        Some(TypeDefKind::Record(r)) => types(r.fields.iter().map(|f| &f.ty)),
        _ => None,
    }
    .ok_or_else(|| cx.wrong_type("a record"))
}

/// The types of the `N` fields of record `ty`, and their offsets.
fn laid_out<'a, const N: usize>(
    cx: &impl TypesOf<'a>,
    ty: WitType,
) -> Result<([WitType; N], [u32; N]), Error> {
    let fields = fields(cx, ty)?;
    let offsets = cx
        .info(ty)?
        .offsets()
        .and_then(|o| <[u32; N]>::try_from(o).ok())
        .ok_or_else(|| cx.wrong_type("a record"))?;
    Ok((fields, offsets))
}

/// The types of the fields of record `ty`, for lowering flat.
///
/// # Errors
/// A typed error where `ty` is not a record of `N` fields (the typecheck keeps it away).
pub fn record_lower<const N: usize>(cx: &LowerCx<'_>, ty: WitType) -> Result<[WitType; N], Error> {
    fields(cx, ty)
}

/// The types of the fields of record `ty` and their offsets, for storing.
///
/// # Errors
/// As [`record_lower`].
pub fn record_store<const N: usize>(
    cx: &LowerCx<'_>,
    ty: WitType,
) -> Result<([WitType; N], [u32; N]), Error> {
    laid_out(cx, ty)
}

/// The types of the fields of record `ty`, for lifting flat.
///
/// # Errors
/// As [`record_lower`].
pub fn record_lift<const N: usize>(cx: &LiftCx<'_>, ty: WitType) -> Result<[WitType; N], Error> {
    fields(cx, ty)
}

/// The types of the fields of record `ty` and their offsets, for loading.
///
/// # Errors
/// As [`record_lower`].
pub fn record_load<const N: usize>(
    cx: &LiftCx<'_>,
    ty: WitType,
) -> Result<([WitType; N], [u32; N]), Error> {
    laid_out(cx, ty)
}

pub use super::values::{lower_either_flat as case_lower_flat, store_either as case_store};

/// Lifts a variant or enum `ty` flat: its case checked, then `payload` given the case
/// and its payload's type.
///
/// # Errors
/// A case out of range ([`Error::Canonical`]), or the payload's error.
pub fn case_lift_flat<T>(
    cx: &LiftCx<'_>,
    ty: WitType,
    src: &mut FlatSrc<'_>,
    payload: impl FnOnce(usize, Option<WitType>, &mut FlatSrc<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let kind = cx.kind(ty).ok_or_else(|| cx.wrong_type("a variant"))?;
    values::lift_case_flat(cx, "a variant", kind, cx.cases(ty)?, src, payload)
}

/// Lifts a variant or enum `ty` at `ptr`, as [`case_lift_flat`].
///
/// # Errors
/// As [`case_lift_flat`].
pub fn case_load<T>(
    cx: &LiftCx<'_>,
    ty: WitType,
    ptr: u32,
    payload: impl FnOnce(usize, Option<WitType>, u32) -> Result<T, Error>,
) -> Result<T, Error> {
    let kind = cx.kind(ty).ok_or_else(|| cx.wrong_type("a variant"))?;
    values::load_case(cx, "a variant", kind, cx.cases(ty)?, ptr, payload)
}

/// The type of a case's payload, which the typecheck made sure is there.
///
/// # Errors
/// A typed error where it is not.
pub fn payload(cx: &LiftCx<'_>, ty: Option<WitType>) -> Result<WitType, Error> {
    ty.ok_or_else(|| cx.wrong_type("a case with a payload"))
}

/// The error for a case the type has and the Rust enum has not (kept away by the
/// typecheck and the case check).
pub fn no_case(cx: &LiftCx<'_>) -> Error {
    cx.wrong_type("a case of this enum")
}

/// Lowers flags `bits` flat.
pub fn flags_lower_flat(out: &mut Vec<u64>, bits: u32) {
    out.push(u64::from(bits));
}

/// Stores flags `bits` of `ty` at `ptr`, in as many bytes as the type takes.
///
/// # Errors
/// As the guest memory's writes, or a typed error where `ty` is not flags.
pub fn flags_store(cx: &mut LowerCx<'_>, ty: WitType, ptr: u32, bits: u32) -> Result<(), Error> {
    let size = cx.info(ty)?.size as usize;
    let bytes = bits.to_le_bytes();
    let bytes = bytes.get(..size).ok_or_else(|| cx.wrong_type("flags"))?;
    cx.write(ptr, bytes)
}

/// Lifts flags flat: their bits (those past the labels are ignored, as the spec's
/// `unpack_flags_from_int` does).
pub fn flags_lift_flat(src: &mut FlatSrc<'_>) -> u32 {
    src.next_u32()
}

/// Lifts flags of `ty` at `ptr`: their bits.
///
/// # Errors
/// As the guest memory's reads, or a typed error where `ty` is not flags.
pub fn flags_load(cx: &LiftCx<'_>, ty: WitType, ptr: u32) -> Result<u32, Error> {
    Ok(match cx.info(ty)?.size {
        1 => u32::from(cx.load::<1>(ptr)?[0]),
        2 => u32::from(u16::from_le_bytes(cx.load::<2>(ptr)?)),
        4 => u32::from_le_bytes(cx.load::<4>(ptr)?),
        _ => return Err(cx.wrong_type("flags")),
    })
}
