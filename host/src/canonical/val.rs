//! [`Val`], a value of any WIT type known only at run time (for the CLI and for tools),
//! lifted and lowered by the same rules as Rust types; written and read as WAVE in
//! `wave.rs`.

#![allow(
    clippy::cast_possible_truncation,
    reason = "flat values are raw bits: the spec takes the low bits of a wider place (its `wrap_i64_to_i32`, `lift_flat_unsigned`)"
)]

use wit_parser::{Flags, Record, Resolve, Type, TypeDefKind};

use super::layout::{self, Shape};
use super::ty::{AsType, WitType, WitWorld};
use super::values::{
    ComponentType, FlatSrc, Lift, LiftCx, Lower, LowerCx, TypesOf, lift_case_flat, load_case,
    lower_case_flat, store_case,
};
use crate::{Error, Region, Violation};

/// A value of a WIT type, as the canonical ABI carries it: what [`Guest::call`](crate::Guest::call)
/// (crate::Guest::call) takes and returns.
///
/// Records, variants, enums and flags carry their labels, so that a value prints as WAVE
/// and is checked against its type by name.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Val {
    /// `bool`
    Bool(bool),
    /// `s8`
    S8(i8),
    /// `u8`
    U8(u8),
    /// `s16`
    S16(i16),
    /// `u16`
    U16(u16),
    /// `s32`
    S32(i32),
    /// `u32`
    U32(u32),
    /// `s64`
    S64(i64),
    /// `u64`
    U64(u64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
    /// `char`
    Char(char),
    /// `string`
    String(String),
    /// `list<T>`
    List(Vec<Val>),
    /// A record's fields, in the type's order, with their names.
    Record(Vec<(String, Val)>),
    /// `tuple<...>`
    Tuple(Vec<Val>),
    /// A variant's case, and its payload if the case has one.
    Variant(String, Option<Box<Val>>),
    /// An enum's case.
    Enum(String),
    /// `option<T>`
    Option(Option<Box<Val>>),
    /// `result<T, E>`: each side's payload if it has one.
    Result(Result<Option<Box<Val>>, Option<Box<Val>>>),
    /// The flags that are set, in the type's order.
    Flags(Vec<String>),
}

/// The WIT name of `ty`, for messages: `u32`, `list<string>`, a named type's name.
pub(crate) fn type_name(resolve: &Resolve, ty: impl AsType) -> String {
    let ty = &ty.wit();
    let name = match ty {
        Type::Bool => "bool",
        Type::U8 => "u8",
        Type::U16 => "u16",
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::S8 => "s8",
        Type::S16 => "s16",
        Type::S32 => "s32",
        Type::S64 => "s64",
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::ErrorContext => "error-context",
        Type::Id(id) => {
            let def = &resolve.types[*id];
            if let Some(name) = &def.name {
                return name.clone();
            }
            let name = |t: &Type| type_name(resolve, t);
            let opt = |t: &Option<Type>| t.as_ref().map_or("_".into(), name);
            return match &def.kind {
                TypeDefKind::List(t) => format!("list<{}>", name(t)),
                TypeDefKind::Option(t) => format!("option<{}>", name(t)),
                TypeDefKind::Result(r) => format!("result<{}, {}>", opt(&r.ok), opt(&r.err)),
                TypeDefKind::Tuple(t) => format!(
                    "tuple<{}>",
                    t.types.iter().map(name).collect::<Vec<_>>().join(", ")
                ),
                TypeDefKind::Type(t) => name(t),
                _ => "a type".into(),
            };
        }
    };
    name.into()
}

impl Val {
    /// Whether `self` is a value of `ty`; what is wrong otherwise.
    pub(crate) fn check(&self, resolve: &Resolve, ty: &Type) -> Result<(), String> {
        let ty = layout::unalias(resolve, ty);
        let wrong = || {
            Err(format!(
                "{} for a value of type {}",
                self.describe(),
                type_name(resolve, &ty)
            ))
        };
        let scalar = match (&ty, self) {
            (Type::Bool, Val::Bool(_))
            | (Type::S8, Val::S8(_))
            | (Type::U8, Val::U8(_))
            | (Type::S16, Val::S16(_))
            | (Type::U16, Val::U16(_))
            | (Type::S32, Val::S32(_))
            | (Type::U32, Val::U32(_))
            | (Type::S64, Val::S64(_))
            | (Type::U64, Val::U64(_))
            | (Type::F32, Val::F32(_))
            | (Type::F64, Val::F64(_))
            | (Type::Char, Val::Char(_))
            | (Type::String, Val::String(_)) => return Ok(()),
            (Type::Id(id), _) => &resolve.types[*id].kind,
            _ => return wrong(),
        };
        let payload = |want: Option<&Type>, have: &Option<Box<Val>>| match (want, have) {
            (Some(t), Some(v)) => v.check(resolve, t),
            (None, None) => Ok(()),
            (Some(t), None) => Err(format!(
                "no payload where {} is expected",
                type_name(resolve, t)
            )),
            (None, Some(_)) => Err("a payload where the case has none".into()),
        };
        match (scalar, self) {
            (TypeDefKind::List(elem), Val::List(items)) => {
                items.iter().try_for_each(|v| v.check(resolve, elem))
            }
            (TypeDefKind::Record(r), Val::Record(fields)) => {
                if r.fields.len() != fields.len()
                    || r.fields
                        .iter()
                        .zip(fields)
                        .any(|(f, (name, _))| f.name != *name)
                {
                    return Err(format!(
                        "a record with fields {} for one with fields {}",
                        fields
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        r.fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                r.fields
                    .iter()
                    .zip(fields)
                    .try_for_each(|(f, (_, v))| v.check(resolve, &f.ty))
            }
            (TypeDefKind::Tuple(t), Val::Tuple(items)) if t.types.len() == items.len() => t
                .types
                .iter()
                .zip(items)
                .try_for_each(|(t, v)| v.check(resolve, t)),
            (TypeDefKind::Variant(v), Val::Variant(name, value)) => {
                match v.cases.iter().find(|c| c.name == *name) {
                    Some(case) => payload(case.ty.as_ref(), value),
                    None => Err(format!("no case `{name}` in {}", type_name(resolve, &ty))),
                }
            }
            (TypeDefKind::Enum(e), Val::Enum(name)) => {
                if e.cases.iter().any(|c| c.name == *name) {
                    Ok(())
                } else {
                    Err(format!("no case `{name}` in {}", type_name(resolve, &ty)))
                }
            }
            (TypeDefKind::Option(t), Val::Option(v)) => match v {
                Some(v) => v.check(resolve, t),
                None => Ok(()),
            },
            (TypeDefKind::Result(r), Val::Result(v)) => match v {
                Ok(v) => payload(r.ok.as_ref(), v),
                Err(v) => payload(r.err.as_ref(), v),
            },
            (TypeDefKind::Flags(f), Val::Flags(names)) => {
                match names
                    .iter()
                    .find(|n| !f.flags.iter().any(|flag| flag.name == **n))
                {
                    Some(n) => Err(format!("no flag `{n}` in {}", type_name(resolve, &ty))),
                    None => Ok(()),
                }
            }
            _ => wrong(),
        }
    }

    /// What kind of value this is, for messages.
    fn describe(&self) -> &'static str {
        match self {
            Val::Bool(_) => "a bool",
            Val::S8(_) => "an s8",
            Val::U8(_) => "a u8",
            Val::S16(_) => "an s16",
            Val::U16(_) => "a u16",
            Val::S32(_) => "an s32",
            Val::U32(_) => "a u32",
            Val::S64(_) => "an s64",
            Val::U64(_) => "a u64",
            Val::F32(_) => "an f32",
            Val::F64(_) => "an f64",
            Val::Char(_) => "a char",
            Val::String(_) => "a string",
            Val::List(_) => "a list",
            Val::Record(_) => "a record",
            Val::Tuple(_) => "a tuple",
            Val::Variant(..) => "a variant",
            Val::Enum(_) => "an enum",
            Val::Option(_) => "an option",
            Val::Result(_) => "a result",
            Val::Flags(_) => "flags",
        }
    }
}

/// What a variant-shaped kind is called in messages.
fn what(kind: &TypeDefKind) -> &'static str {
    match kind {
        TypeDefKind::Variant(_) => "a variant",
        TypeDefKind::Enum(_) => "an enum",
        TypeDefKind::Option(_) => "an option",
        _ => "a result",
    }
}

/// The case index and payload of a variant-shaped value of `kind`, if it is one (checked
/// before).
fn case_of<'v>(kind: &TypeDefKind, val: &'v Val) -> Option<(usize, Option<&'v Val>)> {
    fn by_name<'a>(mut names: impl Iterator<Item = &'a str>, name: &str) -> Option<usize> {
        names.position(|n| n == name)
    }
    match (kind, val) {
        (TypeDefKind::Variant(v), Val::Variant(name, p)) => Some((
            by_name(v.cases.iter().map(|c| c.name.as_str()), name)?,
            p.as_deref(),
        )),
        (TypeDefKind::Enum(e), Val::Enum(name)) => Some((
            by_name(e.cases.iter().map(|c| c.name.as_str()), name)?,
            None,
        )),
        (TypeDefKind::Option(_), Val::Option(p)) => Some((usize::from(p.is_some()), p.as_deref())),
        (TypeDefKind::Result(_), Val::Result(Ok(p))) => Some((0, p.as_deref())),
        (TypeDefKind::Result(_), Val::Result(Err(p))) => Some((1, p.as_deref())),
        _ => None,
    }
}

/// The bits of flags `names` of type `flags` (checked before).
fn flag_bits(flags: &Flags, names: &[String]) -> u32 {
    flags
        .flags
        .iter()
        .enumerate()
        .filter(|(_, flag)| names.contains(&flag.name))
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// A value's scalar lowered, if it is one: its bits. `s8` and `s16` are sign-extended to 32
/// bits, as the spec's `lower_flat_signed` does (see the typed `scalar!`s).
fn scalar_bits(val: &Val) -> Option<u64> {
    Some(match *val {
        Val::Bool(v) => u64::from(v),
        Val::S8(v) => u64::from(i32::from(v).cast_unsigned()),
        Val::U8(v) => u64::from(v),
        Val::S16(v) => u64::from(i32::from(v).cast_unsigned()),
        Val::U16(v) => u64::from(v),
        Val::S32(v) => u64::from(v.cast_unsigned()),
        Val::U32(v) => u64::from(v),
        Val::S64(v) => v.cast_unsigned(),
        Val::U64(v) => v,
        Val::F32(v) => u64::from(v.to_bits()),
        Val::F64(v) => v.to_bits(),
        Val::Char(v) => u64::from(u32::from(v)),
        _ => return None,
    })
}

impl ComponentType for Val {
    /// Any type: a `Val` is checked value by value ([`Val::check`]) before it is lowered.
    fn typecheck(_: WitWorld<'_>, _: WitType) -> Result<(), String> {
        Ok(())
    }

    /// Any payload, but not an absent one: a `Val` cannot stand for none (`()` does).
    fn typecheck_payload(_: WitWorld<'_>, ty: Option<WitType>) -> Result<(), String> {
        match ty {
            Some(_) => Ok(()),
            None => Err("a `Val` for a case without a payload (`()` stands for none)".into()),
        }
    }
}

/// The error for a value that is not of its type (checked before it is lowered).
fn not_of(cx: &LowerCx<'_>, val: &Val) -> Error {
    cx.wrong_type(val.describe())
}

/// The case a variant-shaped value of `kind` chose, its payload's type, and its payload.
fn chosen_case<'k, 'v>(
    cx: &LowerCx<'_>,
    kind: &'k TypeDefKind,
    val: &'v Val,
) -> Result<(usize, Option<&'k Type>, Option<&'v Val>), Error> {
    let (case, payload) = case_of(kind, val).ok_or_else(|| not_of(cx, val))?;
    Ok((case, layout::case_payload(kind, case), payload))
}

/// The size in memory of `ty` when it is a scalar (a number, `bool` or `char`): lists of
/// those move through one copy of the whole range, not one an element.
fn scalar_size<'a>(cx: &impl TypesOf<'a>, ty: &Type) -> Option<usize> {
    match ty {
        Type::String | Type::ErrorContext | Type::Id(_) => None,
        _ => cx.info(ty).ok().map(|info| info.size as usize),
    }
}

impl Lower for Val {
    fn store_list(items: &[Val], cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
        let ty = cx.types.unalias(ty);
        let Some(size) = scalar_size(cx, &ty).filter(|&s| (1..=8).contains(&s)) else {
            let size = cx.info(&ty)?.size;
            let mut at = ptr;
            for item in items {
                item.store(cx, WitType(ty), at)?;
                at = at.wrapping_add(size);
            }
            return Ok(());
        };
        let mut buf = [0u8; 4096];
        let mut at = ptr;
        for chunk in items.chunks(buf.len() / size) {
            for (slot, item) in buf.chunks_exact_mut(size).zip(chunk) {
                let bits = scalar_bits(item).ok_or_else(|| not_of(cx, item))?;
                slot.copy_from_slice(&bits.to_le_bytes()[..size]);
            }
            let bytes = chunk.len() * size;
            cx.write(at, &buf[..bytes])?;
            // Within the block the caller allocated, which is within memory.
            at = at.wrapping_add(bytes as u32);
        }
        Ok(())
    }

    fn lower_flat(
        &self,
        cx: &mut LowerCx<'_>,
        ty: WitType,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        if let Some(bits) = scalar_bits(self) {
            out.push(bits);
            return Ok(());
        }
        let ty = cx.types.unalias(ty);
        if let Val::String(s) = self {
            return s.lower_flat(cx, WitType(ty), out);
        }
        let kind = cx.kind(&ty).ok_or_else(|| not_of(cx, self))?;
        match (kind, self) {
            (TypeDefKind::List(elem), Val::List(items)) => {
                let (ptr, len) = cx.list(items, WitType::from(elem))?;
                out.extend([u64::from(ptr), u64::from(len)]);
                Ok(())
            }
            (TypeDefKind::Record(r), Val::Record(fields)) => {
                for (f, (_, v)) in r.fields.iter().zip(fields) {
                    v.lower_flat(cx, WitType(f.ty), out)?;
                }
                Ok(())
            }
            (TypeDefKind::Tuple(t), Val::Tuple(items)) => {
                for (t, v) in t.types.iter().zip(items) {
                    v.lower_flat(cx, WitType::from(t), out)?;
                }
                Ok(())
            }
            (TypeDefKind::Flags(f), Val::Flags(names)) => {
                out.push(u64::from(flag_bits(f, names)));
                Ok(())
            }
            _ => {
                let cases = cx.cases(&ty)?;
                let (case, payload_ty, payload) = chosen_case(cx, kind, self)?;
                lower_case_flat(
                    cx,
                    cases,
                    case,
                    payload_ty.map(WitType::from),
                    out,
                    |cx, ty, out| match payload {
                        Some(v) => v.lower_flat(cx, ty, out),
                        None => Ok(()),
                    },
                )
            }
        }
    }

    fn store(&self, cx: &mut LowerCx<'_>, ty: WitType, ptr: u32) -> Result<(), Error> {
        let ty = cx.types.unalias(ty);
        if let Some(bits) = scalar_bits(self) {
            let size = cx.info(&ty)?.size as usize;
            let bytes = bits.to_le_bytes();
            let bytes = bytes.get(..size).ok_or_else(|| not_of(cx, self))?;
            return cx.write(ptr, bytes);
        }
        if let Val::String(s) = self {
            return s.store(cx, WitType(ty), ptr);
        }
        let kind = cx.kind(&ty).ok_or_else(|| not_of(cx, self))?;
        let info = cx.info(&ty)?;
        match (kind, self, &info.shape) {
            (TypeDefKind::List(elem), Val::List(items), _) => {
                let (p, l) = cx.list(items, WitType::from(elem))?;
                let mut pair = [0; 8];
                pair[..4].copy_from_slice(&p.to_le_bytes());
                pair[4..].copy_from_slice(&l.to_le_bytes());
                cx.write(ptr, &pair)
            }
            (TypeDefKind::Record(r), Val::Record(fields), Shape::Fields(offsets)) => {
                for ((f, (_, v)), at) in r.fields.iter().zip(fields).zip(offsets) {
                    v.store(cx, WitType(f.ty), ptr + at)?;
                }
                Ok(())
            }
            (TypeDefKind::Tuple(t), Val::Tuple(items), Shape::Fields(offsets)) => {
                for ((t, v), at) in t.types.iter().zip(items).zip(offsets) {
                    v.store(cx, WitType::from(t), ptr + at)?;
                }
                Ok(())
            }
            (TypeDefKind::Flags(f), Val::Flags(names), _) => {
                let bits = flag_bits(f, names).to_le_bytes();
                let bytes = bits
                    .get(..info.size as usize)
                    .ok_or_else(|| not_of(cx, self))?;
                cx.write(ptr, bytes)
            }
            (_, _, Shape::Cases(cases)) => {
                let (case, payload_ty, payload) = chosen_case(cx, kind, self)?;
                store_case(
                    cx,
                    cases,
                    case,
                    payload_ty.map(WitType::from),
                    ptr,
                    |cx, ty, at| match payload {
                        Some(v) => v.store(cx, ty, at),
                        None => Ok(()),
                    },
                )
            }
            _ => Err(not_of(cx, self)),
        }
    }
}

/// A scalar of `ty` from its bits.
fn scalar_from_bits(cx: &LiftCx<'_>, ty: &Type, b: u64) -> Result<Val, Error> {
    Ok(match ty {
        Type::Bool => Val::Bool((b & 0xFFFF_FFFF) != 0),
        Type::S8 => Val::S8(b as u8 as i8),
        Type::U8 => Val::U8(b as u8),
        Type::S16 => Val::S16(b as u16 as i16),
        Type::U16 => Val::U16(b as u16),
        Type::S32 => Val::S32(b as u32 as i32),
        Type::U32 => Val::U32(b as u32),
        Type::S64 => Val::S64(b.cast_signed()),
        Type::U64 => Val::U64(b),
        Type::F32 => Val::F32(f32::from_bits(b as u32)),
        Type::F64 => Val::F64(f64::from_bits(b)),
        Type::Char => {
            return char::lift_flat(cx, WitType::from(ty), &mut FlatSrc::new(&[b])).map(Val::Char);
        }
        Type::String | Type::ErrorContext | Type::Id(_) => return Err(cx.wrong_type("a scalar")),
    })
}

/// The flags set in `bits`, by the type's labels (bits past the labels are ignored, as the
/// spec's `unpack_flags_from_int` ignores them); every label copied is counted.
fn flags_from_bits(cx: &LiftCx<'_>, flags: &Flags, bits: u32) -> Result<Val, Error> {
    flags
        .flags
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, flag)| cx.name(&flag.name))
        .collect::<Result<_, Error>>()
        .map(Val::Flags)
}

/// A lifted variant-shaped value of `kind`, from its case and payload; the case's name
/// copied is counted.
fn make_case(
    cx: &LiftCx<'_>,
    kind: &TypeDefKind,
    case: usize,
    payload: Option<Val>,
) -> Result<Val, Error> {
    let payload = payload.map(Box::new);
    // The case was checked against the layout's count, which is the type's.
    let name = |name: Option<&str>| match name {
        Some(name) => cx.name(name),
        None => Err(cx.wrong_type("a case of the type")),
    };
    Ok(match kind {
        TypeDefKind::Variant(v) => {
            Val::Variant(name(v.cases.get(case).map(|c| c.name.as_str()))?, payload)
        }
        TypeDefKind::Enum(e) => Val::Enum(name(e.cases.get(case).map(|c| c.name.as_str()))?),
        TypeDefKind::Option(_) => Val::Option(payload),
        TypeDefKind::Result(_) if case == 0 => Val::Result(Ok(payload)),
        TypeDefKind::Result(_) => Val::Result(Err(payload)),
        _ => return Err(cx.wrong_type("a variant-shaped type")),
    })
}

/// The named fields of a record of type `r` lifted by `field` (each field's name copied
/// is counted).
fn record(
    cx: &LiftCx<'_>,
    r: &Record,
    mut field: impl FnMut(usize, &Type) -> Result<Val, Error>,
) -> Result<Val, Error> {
    cx.spend((r.fields.len() * size_of::<(String, Val)>()) as u64)?;
    r.fields
        .iter()
        .enumerate()
        .map(|(i, f)| Ok((cx.name(&f.name)?, field(i, &f.ty)?)))
        .collect::<Result<_, Error>>()
        .map(Val::Record)
}

impl Lift for Val {
    fn load_list(cx: &LiftCx<'_>, ty: WitType, ptr: u32, len: u32) -> Result<Vec<Val>, Error> {
        let ty = cx.types.unalias(ty);
        let Some(size) = scalar_size(cx, &ty).filter(|&s| (1..=8).contains(&s)) else {
            let size = cx.info(&ty)?.size;
            cx.spend(u64::from(len) * size_of::<Val>() as u64)?;
            let mut items = Vec::with_capacity(len as usize);
            for i in 0..len {
                items.push(Val::load(cx, WitType(ty), ptr + i * size)?);
            }
            return Ok(items);
        };
        cx.spend(u64::from(len) * size_of::<Val>() as u64)?;
        let total = (len as usize)
            .checked_mul(size)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| {
                cx.violation(Violation::ListTooLong {
                    len,
                    size: size as u32,
                })
            })?;
        let bytes = cx.core.bytes(Region {
            offset: ptr,
            len: total,
        })?;
        bytes
            .chunks_exact(size)
            .map(|c| {
                let mut all = [0u8; 8];
                all[..size].copy_from_slice(c);
                scalar_from_bits(cx, &ty, u64::from_le_bytes(all))
            })
            .collect()
    }

    fn lift_flat(cx: &LiftCx<'_>, ty: WitType, src: &mut FlatSrc<'_>) -> Result<Self, Error> {
        cx.spend(size_of::<Val>() as u64)?;
        let ty = cx.types.unalias(ty);
        let kind = match ty {
            Type::String => return String::lift_flat(cx, WitType(ty), src).map(Val::String),
            Type::Id(_) => cx
                .kind(&ty)
                .ok_or_else(|| cx.wrong_type("a defined type"))?,
            _ => return scalar_from_bits(cx, &ty, src.next_bits()),
        };
        match kind {
            TypeDefKind::List(elem) => {
                let (ptr, len) = (src.next_u32(), src.next_u32());
                cx.list_range(ptr, len, WitType::from(elem))?;
                Val::load_list(cx, WitType::from(elem), ptr, len).map(Val::List)
            }
            TypeDefKind::Record(r) => {
                record(cx, r, |_, ty| Val::lift_flat(cx, WitType::from(ty), src))
            }
            TypeDefKind::Tuple(t) => t
                .types
                .iter()
                .map(|t| Val::lift_flat(cx, WitType::from(t), src))
                .collect::<Result<_, Error>>()
                .map(Val::Tuple),
            TypeDefKind::Flags(f) => flags_from_bits(cx, f, src.next_u32()),
            _ => {
                let cases = cx.cases(&ty)?;
                lift_case_flat(cx, what(kind), kind, cases, src, |case, ty, src| {
                    let payload = ty.map(|ty| Val::lift_flat(cx, ty, src)).transpose()?;
                    make_case(cx, kind, case, payload)
                })
            }
        }
    }

    fn load(cx: &LiftCx<'_>, ty: WitType, ptr: u32) -> Result<Self, Error> {
        cx.spend(size_of::<Val>() as u64)?;
        let ty = cx.types.unalias(ty);
        let info = cx.info(&ty)?;
        let kind = match ty {
            Type::String => return String::load(cx, WitType(ty), ptr).map(Val::String),
            Type::Id(_) => cx
                .kind(&ty)
                .ok_or_else(|| cx.wrong_type("a defined type"))?,
            _ => {
                let mut bytes = [0u8; 8];
                let size = bytes.len().min(info.size as usize);
                cx.core.read_into(ptr, &mut bytes[..size])?;
                return scalar_from_bits(cx, &ty, u64::from_le_bytes(bytes));
            }
        };
        match (kind, &info.shape) {
            (TypeDefKind::List(elem), _) => {
                let mut pair = [0u8; 8];
                cx.core.read_into(ptr, &mut pair)?;
                let word =
                    |i: usize| u32::from_le_bytes([pair[i], pair[i + 1], pair[i + 2], pair[i + 3]]);
                let (p, l) = (word(0), word(4));
                cx.list_range(p, l, WitType::from(elem))?;
                Val::load_list(cx, WitType::from(elem), p, l).map(Val::List)
            }
            (TypeDefKind::Record(r), Shape::Fields(offsets)) => record(cx, r, |i, ty| {
                let at = offsets.get(i).ok_or_else(|| cx.wrong_type("a record"))?;
                Val::load(cx, WitType::from(ty), ptr + at)
            }),
            (TypeDefKind::Tuple(t), Shape::Fields(offsets)) => t
                .types
                .iter()
                .zip(offsets)
                .map(|(t, at)| Val::load(cx, WitType::from(t), ptr + at))
                .collect::<Result<_, Error>>()
                .map(Val::Tuple),
            (TypeDefKind::Flags(f), _) => {
                let mut bytes = [0u8; 4];
                let size = bytes.len().min(info.size as usize);
                cx.core.read_into(ptr, &mut bytes[..size])?;
                flags_from_bits(cx, f, u32::from_le_bytes(bytes))
            }
            (_, Shape::Cases(cases)) => {
                load_case(cx, what(kind), kind, cases, ptr, |case, ty, at| {
                    let payload = ty.map(|ty| Val::load(cx, ty, at)).transpose()?;
                    make_case(cx, kind, case, payload)
                })
            }
            _ => Err(cx.wrong_type("a supported type")),
        }
    }
}
