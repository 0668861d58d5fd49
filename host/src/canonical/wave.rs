//! `Val` as WAVE, the notation of `wasmtime run --invoke` (the `wasm-wave` crate): the
//! `WasmValue` implementation that parses a call's arguments and writes its result.

use std::borrow::Cow;

use wasm_wave::wasm::{WasmType as _, WasmTypeKind, WasmValue, WasmValueError};

use super::val::Val;

/// The type of a [`Val`], as WAVE needs it to parse one: from
/// [`Guest::param_types`](crate::Guest::param_types) and
/// [`Guest::result_type`](crate::Guest::result_type). Displays in WIT syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValType(pub(crate) wasm_wave::value::Type);

impl std::fmt::Display for ValType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// WAVE text that is not a value of the type it was parsed as.
#[derive(Debug, thiserror::Error)]
#[error("not a value of type {ty}: {problem}")]
pub struct WaveError {
    ty: String,
    problem: String,
}

impl Val {
    /// The value of type `ty` that the WAVE text `text` writes (`"hi"`, `[1, 2]`,
    /// `{x: 1, y: 2}`, `some(circle(2.0))`): the notation of `wasmtime run --invoke` and of
    /// `memhost call`, and of [`Val`]'s `Display`.
    ///
    /// # Errors
    /// [`WaveError`] when `text` is not WAVE or not a value of `ty`.
    pub fn from_wave(ty: &ValType, text: &str) -> Result<Val, WaveError> {
        wasm_wave::from_str(&ty.0, text).map_err(|e| WaveError {
            ty: ty.to_string(),
            problem: e.to_string(),
        })
    }
}

/// WAVE, as `memhost call` prints results: `"hi"`, `[1, 2]`, `{x: 1, y: 2}`.
impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        wasm_wave::writer::Writer::new(f)
            .write_value(self)
            .map_err(|_| std::fmt::Error)
    }
}

/// The scalar `make_*` and `unwrap_*` methods of [`WasmValue`], one line a type. (An
/// `unwrap_*` of another kind is a caller's mistake the trait documents; it gives the
/// type's default here rather than panicking.)
macro_rules! scalars {
    (@each $what:ident) => {
        scalars!(@$what make_bool unwrap_bool Bool bool);
        scalars!(@$what make_s8 unwrap_s8 S8 i8);
        scalars!(@$what make_s16 unwrap_s16 S16 i16);
        scalars!(@$what make_s32 unwrap_s32 S32 i32);
        scalars!(@$what make_s64 unwrap_s64 S64 i64);
        scalars!(@$what make_u8 unwrap_u8 U8 u8);
        scalars!(@$what make_u16 unwrap_u16 U16 u16);
        scalars!(@$what make_u32 unwrap_u32 U32 u32);
        scalars!(@$what make_u64 unwrap_u64 U64 u64);
        scalars!(@$what make_f32 unwrap_f32 F32 f32);
        scalars!(@$what make_f64 unwrap_f64 F64 f64);
        scalars!(@$what make_char unwrap_char Char char);
    };
    (make) => { scalars!(@each make); };
    (unwrap) => { scalars!(@each unwrap); };
    (@make $make:ident $unwrap:ident $case:ident $ty:ty) => {
        fn $make(val: $ty) -> Self {
            Val::$case(val)
        }
    };
    (@unwrap $make:ident $unwrap:ident $case:ident $ty:ty) => {
        fn $unwrap(&self) -> $ty {
            if let Val::$case(v) = self { *v } else { <$ty>::default() }
        }
    };
}

impl WasmValue for Val {
    type Type = wasm_wave::value::Type;

    fn kind(&self) -> WasmTypeKind {
        match self {
            Val::Bool(_) => WasmTypeKind::Bool,
            Val::S8(_) => WasmTypeKind::S8,
            Val::U8(_) => WasmTypeKind::U8,
            Val::S16(_) => WasmTypeKind::S16,
            Val::U16(_) => WasmTypeKind::U16,
            Val::S32(_) => WasmTypeKind::S32,
            Val::U32(_) => WasmTypeKind::U32,
            Val::S64(_) => WasmTypeKind::S64,
            Val::U64(_) => WasmTypeKind::U64,
            Val::F32(_) => WasmTypeKind::F32,
            Val::F64(_) => WasmTypeKind::F64,
            Val::Char(_) => WasmTypeKind::Char,
            Val::String(_) => WasmTypeKind::String,
            Val::List(_) => WasmTypeKind::List,
            Val::Record(_) => WasmTypeKind::Record,
            Val::Tuple(_) => WasmTypeKind::Tuple,
            Val::Variant(..) => WasmTypeKind::Variant,
            Val::Enum(_) => WasmTypeKind::Enum,
            Val::Option(_) => WasmTypeKind::Option,
            Val::Result(_) => WasmTypeKind::Result,
            Val::Flags(_) => WasmTypeKind::Flags,
        }
    }

    scalars!(make);
    fn make_string(val: Cow<'_, str>) -> Self {
        Val::String(val.into_owned())
    }
    fn make_list(
        _ty: &Self::Type,
        vals: impl IntoIterator<Item = Self>,
    ) -> Result<Self, WasmValueError> {
        Ok(Val::List(vals.into_iter().collect()))
    }
    fn make_record<'a>(
        ty: &Self::Type,
        fields: impl IntoIterator<Item = (&'a str, Self)>,
    ) -> Result<Self, WasmValueError> {
        let mut given: Vec<(&str, Val)> = fields.into_iter().collect();
        let mut ordered = Vec::with_capacity(given.len());
        for (name, _) in ty.record_fields() {
            let at = given
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| WasmValueError::MissingField(name.to_string()))?;
            ordered.push((name.into_owned(), given.swap_remove(at).1));
        }
        if let Some((name, _)) = given.first() {
            return Err(WasmValueError::UnknownField(name.to_string()));
        }
        Ok(Val::Record(ordered))
    }
    fn make_tuple(
        _ty: &Self::Type,
        vals: impl IntoIterator<Item = Self>,
    ) -> Result<Self, WasmValueError> {
        Ok(Val::Tuple(vals.into_iter().collect()))
    }
    fn make_variant(
        _ty: &Self::Type,
        case: &str,
        val: Option<Self>,
    ) -> Result<Self, WasmValueError> {
        Ok(Val::Variant(case.into(), val.map(Box::new)))
    }
    fn make_enum(_ty: &Self::Type, case: &str) -> Result<Self, WasmValueError> {
        Ok(Val::Enum(case.into()))
    }
    fn make_option(_ty: &Self::Type, val: Option<Self>) -> Result<Self, WasmValueError> {
        Ok(Val::Option(val.map(Box::new)))
    }
    fn make_result(
        _ty: &Self::Type,
        val: Result<Option<Self>, Option<Self>>,
    ) -> Result<Self, WasmValueError> {
        Ok(Val::Result(match val {
            Ok(v) => Ok(v.map(Box::new)),
            Err(e) => Err(e.map(Box::new)),
        }))
    }
    fn make_flags<'a>(
        ty: &Self::Type,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, WasmValueError> {
        let names: Vec<&str> = names.into_iter().collect();
        let all: Vec<Cow<'_, str>> = ty.flags_names().collect();
        if let Some(unknown) = names.iter().find(|n| !all.iter().any(|a| a == *n)) {
            return Err(WasmValueError::UnknownCase(unknown.to_string()));
        }
        Ok(Val::Flags(
            all.into_iter()
                .filter(|a| names.contains(&a.as_ref()))
                .map(Cow::into_owned)
                .collect(),
        ))
    }

    scalars!(unwrap);
    fn unwrap_string(&self) -> Cow<'_, str> {
        if let Val::String(v) = self {
            Cow::Borrowed(v)
        } else {
            Cow::Borrowed("")
        }
    }
    fn unwrap_list(&self) -> Box<dyn Iterator<Item = Cow<'_, Self>> + '_> {
        match self {
            Val::List(items) => Box::new(items.iter().map(Cow::Borrowed)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn unwrap_record(&self) -> Box<dyn Iterator<Item = (Cow<'_, str>, Cow<'_, Self>)> + '_> {
        match self {
            Val::Record(fields) => Box::new(
                fields
                    .iter()
                    .map(|(n, v)| (Cow::Borrowed(n.as_str()), Cow::Borrowed(v))),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn unwrap_tuple(&self) -> Box<dyn Iterator<Item = Cow<'_, Self>> + '_> {
        match self {
            Val::Tuple(items) => Box::new(items.iter().map(Cow::Borrowed)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn unwrap_variant(&self) -> (Cow<'_, str>, Option<Cow<'_, Self>>) {
        match self {
            Val::Variant(name, v) => (Cow::Borrowed(name), v.as_deref().map(Cow::Borrowed)),
            _ => (Cow::Borrowed(""), None),
        }
    }
    fn unwrap_enum(&self) -> Cow<'_, str> {
        match self {
            Val::Enum(name) => Cow::Borrowed(name),
            _ => Cow::Borrowed(""),
        }
    }
    fn unwrap_option(&self) -> Option<Cow<'_, Self>> {
        match self {
            Val::Option(v) => v.as_deref().map(Cow::Borrowed),
            _ => None,
        }
    }
    fn unwrap_result(&self) -> Result<Option<Cow<'_, Self>>, Option<Cow<'_, Self>>> {
        match self {
            Val::Result(Ok(v)) => Ok(v.as_deref().map(Cow::Borrowed)),
            Val::Result(Err(v)) => Err(v.as_deref().map(Cow::Borrowed)),
            _ => Ok(None),
        }
    }
    fn unwrap_flags(&self) -> Box<dyn Iterator<Item = Cow<'_, str>> + '_> {
        match self {
            Val::Flags(names) => Box::new(names.iter().map(|n| Cow::Borrowed(n.as_str()))),
            _ => Box::new(std::iter::empty()),
        }
    }
}
