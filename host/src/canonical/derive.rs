//! What `#[derive(ComponentType, Lower, Lift)]` (the `host-derive` crate) expands to:
//! the checks and layouts of records, variants, enums and flags, read from the type table
//! compiled at admission, so that the generated code holds no ABI of its own. Not an API:
//! its shape follows the derive crate, which is of the same version.

use wit_parser::{Field, Resolve, Type, TypeDefKind};

use super::layout;
use super::values::{self, FlatSrc, LiftCx, LowerCx, TypesOf};
use crate::Error;

/// A record `ty` whose fields are `names`, in order: their types.
///
/// # Errors
/// Why not, in words, for a type that is not that record.
pub fn typecheck_record<'r>(
    resolve: &'r Resolve,
    ty: &Type,
    rust: &str,
    names: &[&str],
) -> Result<&'r [Field], String> {
    match layout::kind(resolve, ty) {
        Some(TypeDefKind::Record(r))
            if r.fields.len() == names.len()
                && r.fields.iter().zip(names).all(|(f, n)| f.name == *n) =>
        {
            Ok(&r.fields)
        }
        _ => Err(format!(
            "`{rust}` (a record of {}) for a value of type {}",
            names.join(", "),
            super::val::type_name(resolve, ty)
        )),
    }
}

/// A variant or enum `ty` whose cases are `cases` (name, and whether the Rust case has a
/// payload), in order: each case's payload type. A Rust enum without payloads stands for
/// a WIT `enum`, or a `variant` of no payloads.
///
/// # Errors
/// Why not, in words.
pub fn typecheck_cases<'r>(
    resolve: &'r Resolve,
    ty: &Type,
    rust: &str,
    cases: &[(&str, bool)],
) -> Result<Vec<Option<&'r Type>>, String> {
    let found: Option<Vec<Option<&Type>>> = match layout::kind(resolve, ty) {
        Some(TypeDefKind::Variant(v))
            if v.cases.len() == cases.len()
                && v.cases
                    .iter()
                    .zip(cases)
                    .all(|(c, (n, p))| c.name == *n && c.ty.is_some() == *p) =>
        {
            Some(v.cases.iter().map(|c| c.ty.as_ref()).collect())
        }
        Some(TypeDefKind::Enum(e))
            if e.cases.len() == cases.len()
                && e.cases
                    .iter()
                    .zip(cases)
                    .all(|(c, (n, p))| c.name == *n && !p) =>
        {
            Some(vec![None; cases.len()])
        }
        _ => None,
    };
    found.ok_or_else(|| {
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
        format!(
            "`{rust}` (cases {}) for a value of type {}",
            names.join(", "),
            super::val::type_name(resolve, ty)
        )
    })
}

/// Flags `ty` whose labels are `names`, in order.
///
/// # Errors
/// Why not, in words.
pub fn typecheck_flags(
    resolve: &Resolve,
    ty: &Type,
    rust: &str,
    names: &[&str],
) -> Result<(), String> {
    match layout::kind(resolve, ty) {
        Some(TypeDefKind::Flags(f))
            if f.flags.len() == names.len()
                && f.flags.iter().zip(names).all(|(f, n)| f.name == *n) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{rust}` (flags {}) for a value of type {}",
            names.join(", "),
            super::val::type_name(resolve, ty)
        )),
    }
}

/// The `n` fields of record `ty`, as the typecheck found them.
fn fields<'a>(cx: &impl TypesOf<'a>, ty: &Type, n: usize) -> Result<&'a [Field], Error> {
    match cx.kind(ty) {
        Some(TypeDefKind::Record(r)) if r.fields.len() == n => Ok(&r.fields),
        _ => Err(cx.wrong_type("a record")),
    }
}

/// The `n` fields of record `ty`, and their offsets.
fn laid_out<'a>(
    cx: &impl TypesOf<'a>,
    ty: &Type,
    n: usize,
) -> Result<(&'a [Field], &'a [u32]), Error> {
    let fields = fields(cx, ty, n)?;
    match cx.info(ty)?.offsets() {
        Some(offsets) if offsets.len() == n => Ok((fields, offsets)),
        _ => Err(cx.wrong_type("a record")),
    }
}

/// The fields of record `ty` for lowering flat.
///
/// # Errors
/// A typed error where `ty` is not a record of `n` fields (the typecheck keeps it away).
pub fn record_lower<'a>(cx: &LowerCx<'a>, ty: &Type, n: usize) -> Result<&'a [Field], Error> {
    fields(cx, ty, n)
}

/// The fields of record `ty` and their offsets, for storing.
///
/// # Errors
/// As [`record_lower`].
pub fn record_store<'a>(
    cx: &LowerCx<'a>,
    ty: &Type,
    n: usize,
) -> Result<(&'a [Field], &'a [u32]), Error> {
    laid_out(cx, ty, n)
}

/// The fields of record `ty`, for lifting flat.
///
/// # Errors
/// As [`record_lower`].
pub fn record_lift<'a>(cx: &LiftCx<'a>, ty: &Type, n: usize) -> Result<&'a [Field], Error> {
    fields(cx, ty, n)
}

/// The fields of record `ty` and their offsets, for loading.
///
/// # Errors
/// As [`record_lower`].
pub fn record_load<'a>(
    cx: &LiftCx<'a>,
    ty: &Type,
    n: usize,
) -> Result<(&'a [Field], &'a [u32]), Error> {
    laid_out(cx, ty, n)
}

pub use super::values::{lower_either_flat as case_lower_flat, store_either as case_store};

/// Lifts a variant or enum `ty` flat: its case checked, then `payload` given the case
/// and its payload's type.
///
/// # Errors
/// A case out of range ([`Error::Canonical`]), or the payload's error.
pub fn case_lift_flat<T>(
    cx: &LiftCx<'_>,
    ty: &Type,
    src: &mut FlatSrc<'_>,
    payload: impl FnOnce(usize, Option<&Type>, &mut FlatSrc<'_>) -> Result<T, Error>,
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
    ty: &Type,
    ptr: u32,
    payload: impl FnOnce(usize, Option<&Type>, u32) -> Result<T, Error>,
) -> Result<T, Error> {
    let kind = cx.kind(ty).ok_or_else(|| cx.wrong_type("a variant"))?;
    values::load_case(cx, "a variant", kind, cx.cases(ty)?, ptr, payload)
}

/// The type of a case's payload, which the typecheck made sure is there.
///
/// # Errors
/// A typed error where it is not.
pub fn payload<'t>(cx: &LiftCx<'_>, ty: Option<&'t Type>) -> Result<&'t Type, Error> {
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
pub fn flags_store(cx: &mut LowerCx<'_>, ty: &Type, ptr: u32, bits: u32) -> Result<(), Error> {
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
pub fn flags_load(cx: &LiftCx<'_>, ty: &Type, ptr: u32) -> Result<u32, Error> {
    Ok(match cx.info(ty)?.size {
        1 => u32::from(cx.load::<1>(ptr)?[0]),
        2 => u32::from(u16::from_le_bytes(cx.load::<2>(ptr)?)),
        4 => u32::from_le_bytes(cx.load::<4>(ptr)?),
        _ => return Err(cx.wrong_type("flags")),
    })
}
