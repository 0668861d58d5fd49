//! `Val` as WAVE, the notation of `wasmtime run --invoke` (the `wasm-wave` crate): the
//! `WasmValue` implementation that parses a call's arguments and writes its result.

use std::borrow::Cow;

use wasm_wave::ast::Node;
use wasm_wave::lex::Span;
use wasm_wave::parser::{ParserError, ParserErrorKind};
use wasm_wave::untyped::{UntypedFuncCall, UntypedValue};
use wasm_wave::value::Type;
use wasm_wave::wasm::{WasmType as _, WasmTypeKind, WasmValue, WasmValueError};

use super::val::Val;

/// The type of a [`Val`], as WAVE needs it to parse one: from
/// [`Guest::param_types`](crate::Guest::param_types) and
/// [`Guest::result_type`](crate::Guest::result_type). Displays in WIT syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValType(pub(crate) Type);

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
        let error = |problem| WaveError {
            ty: quote_type(&ty.0),
            problem,
        };
        let value = UntypedValue::parse(text).map_err(|e| error(syntax_error(text, &e, &[])))?;
        value.to_wasm_value(&ty.0).map_err(|e| {
            let line = mismatch(value.node(), &ty.0, text, &e);
            // `mismatch` writes what follows a parameter's name: `, at ...` or `: ...`.
            let line = line.strip_prefix(", ").or(line.strip_prefix(": "));
            error(line.unwrap_or_default().to_string())
        })
    }
}

/// The most characters of a type, or of a value's text, that an error quotes.
const QUOTE_CHARS: usize = 60;

/// The arguments `(a, b, ...)` of a call of a function of signature `signature`, parsed
/// as values of its parameters `params` (name and type each). Trailing `option`
/// parameters may be left out, as `wasmtime run --invoke` allows. An error names the
/// parameter, the type expected and the text found, down to the field, element or payload
/// that is wrong (`parameter `text`: expected `string`, found `42``); a syntax error says
/// where, with a hint when a variant case was given several values.
pub(crate) fn parse_args(
    args: &str,
    signature: &str,
    params: &[(&str, Type)],
) -> Result<Vec<Val>, String> {
    // The name goes its own way (WAVE's labels cannot hold `ns:pkg/iface#name`); the
    // arguments parse as a call of a stand-in name.
    let src = format!("f{args}");
    let types: Vec<&Type> = params.iter().map(|(_, ty)| ty).collect();
    let call = UntypedFuncCall::parse(&src).map_err(|e| syntax_error(&src, &e, &types))?;
    let nodes: Vec<&Node> = match call.params_node() {
        None => Vec::new(),
        Some(tuple) => match tuple.as_tuple() {
            Ok(nodes) => nodes.collect(),
            Err(e) => return Err(syntax_error(&src, &e, &types)),
        },
    };
    if nodes.len() > params.len() {
        return Err(format!(
            "{} values for `{}`",
            nodes.len(),
            quote(signature, 4 * QUOTE_CHARS)
        ));
    }
    let mut values = Vec::with_capacity(params.len());
    for (i, (name, ty)) in params.iter().enumerate() {
        match nodes.get(i) {
            Some(node) => values.push(
                node.to_wasm_value::<Val>(ty, &src)
                    .map_err(|e| format!("parameter `{name}`{}", mismatch(node, ty, &src, &e)))?,
            ),
            None if ty.kind() == WasmTypeKind::Option => values.push(Val::Option(None)),
            None => {
                return Err(format!(
                    "no value for parameter `{name}` of type `{}` (`{}`)",
                    quote_type(ty),
                    quote(signature, 4 * QUOTE_CHARS)
                ));
            }
        }
    }
    Ok(values)
}

/// `: expected T, found X` for the error `e` of parsing `node` (text in `src`) as a value
/// of type `ty`, the place inside the value named when the error is deeper than its top:
/// `, at `.points[2].x`: expected `u32`, found `-1``.
fn mismatch(node: &Node, ty: &Type, src: &str, e: &ParserError) -> String {
    let at = e.span();
    let mut path = String::new();
    let expected = locate(node, ty, src, &at, &mut path);
    let found = src.get(at).unwrap_or_default();
    let mut line = String::new();
    if !path.is_empty() {
        line.push_str(&format!(", at `{}`", quote(&path, QUOTE_CHARS)));
    }
    line.push_str(&format!(
        ": expected `{}`, found `{}`",
        quote_type(&expected),
        quote(found, QUOTE_CHARS)
    ));
    if e.kind() != ParserErrorKind::InvalidType {
        line.push_str(&format!(" ({})", problem(e)));
    }
    line
}

/// The type at the innermost part of `node` (of type `ty`) that holds the span `at`, its
/// path from `node` appended to `path` (`[2]`, `.field`, `.0`, `.case`, `.some`, `.ok`).
/// WAVE's parser bounds the nesting, so the recursion is bounded too.
fn locate(node: &Node, ty: &Type, src: &str, at: &Span, path: &mut String) -> Type {
    let holds = |n: &Node| {
        let span = n.span();
        span.start <= at.start && at.end <= span.end && span != node.span()
    };
    let inner: Option<(String, &Node, Type)> = match ty.kind() {
        WasmTypeKind::List => node.as_list().ok().and_then(|mut items| {
            let (i, n) = items.by_ref().enumerate().find(|(_, n)| holds(n))?;
            Some((format!("[{i}]"), n, ty.list_element_type()?))
        }),
        WasmTypeKind::Tuple => node.as_tuple().ok().and_then(|mut items| {
            let (i, n) = items.by_ref().enumerate().find(|(_, n)| holds(n))?;
            Some((format!(".{i}"), n, ty.tuple_element_types().nth(i)?))
        }),
        WasmTypeKind::Record => node.as_record(src).ok().and_then(|mut fields| {
            let (name, n) = fields.find(|(_, n)| holds(n))?;
            let (_, field) = ty.record_fields().find(|(f, _)| f == name)?;
            Some((format!(".{name}"), n, field))
        }),
        WasmTypeKind::Variant => node.as_variant(src).ok().and_then(|(case, payload)| {
            let n = payload.filter(|n| holds(n))?;
            let (_, payload) = ty.variant_cases().find(|(c, _)| c == case)?;
            Some((format!(".{case}"), n, payload?))
        }),
        WasmTypeKind::Option => node.as_option().ok().and_then(|some| {
            let n = some.filter(|n| holds(n))?;
            Some((".some".to_string(), n, ty.option_some_type()?))
        }),
        WasmTypeKind::Result => node.as_result().ok().and_then(|result| {
            let (ok, err) = ty.result_types()?;
            match result {
                Ok(n) => Some((".ok".to_string(), n.filter(|n| holds(n))?, ok?)),
                Err(n) => Some((".err".to_string(), n.filter(|n| holds(n))?, err?)),
            }
        }),
        _ => None,
    };
    match inner {
        Some((step, n, inner_ty)) => {
            path.push_str(&step);
            locate(n, &inner_ty, src, at, path)
        }
        None => ty.clone(),
    }
}

/// `not WAVE: ...` for text `src` that does not parse: what was wrong and the text before
/// it, and, for a variant case given several values, that a case holds one (its type
/// looked up among `types`).
fn syntax_error(src: &str, e: &ParserError, types: &[&Type]) -> String {
    let at = e.span();
    let before = src.get(..at.start).unwrap_or_default();
    let token = src.get(at.clone()).unwrap_or_default();
    // The text is quoted in place of the error's own detail (`unexpected token: Comma`).
    let mut line = if token.is_empty() {
        format!("not WAVE: {}", problem(e))
    } else {
        format!("not WAVE: {} `{}`", e.kind(), quote(token, QUOTE_CHARS))
    };
    if !before.is_empty() {
        // The stand-in name `f` of a call is not the user's text.
        let before = before
            .strip_prefix('f')
            .filter(|b| b.starts_with('('))
            .unwrap_or(before);
        line.push_str(&format!(" after `{}`", quote_end(before, QUOTE_CHARS)));
    }
    if token == ","
        && let Some(hint) = payload_hint(src, at.start, types)
    {
        line.push_str(&format!(" ({hint})"));
    }
    line
}

/// The hint for a `,` at `comma` inside `label(...)`, where `label` is a case of a variant
/// among `types`: a case holds one value, so several are one tuple or one record.
fn payload_hint(src: &str, comma: usize, types: &[&Type]) -> Option<String> {
    let open = innermost_open(&src[..comma])?;
    let label_start = src[..open]
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '%'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let label = &src[label_start..open];
    // The first `(` of a call is the call's own.
    if label.is_empty() || label_start == 0 {
        return None;
    }
    let payload = find_case(types, label.trim_start_matches('%'))?;
    let close = open + matching_close(&src[open..])?;
    let inner = &src[open + 1..close];
    let fix = match payload.kind() {
        WasmTypeKind::Tuple => format!("{label}(({inner}))"),
        WasmTypeKind::Record => {
            let parts = split_top(inner);
            let fields: Vec<String> = payload
                .record_fields()
                .map(|(f, _)| f.into_owned())
                .collect();
            if parts.len() != fields.len() {
                return Some(format!(
                    "case `{label}` holds one value, of type `{}`",
                    quote_type(&payload)
                ));
            }
            let pairs: Vec<String> = fields
                .iter()
                .zip(parts)
                .map(|(f, v)| format!("{f}: {}", v.trim()))
                .collect();
            format!("{label}({{{}}})", pairs.join(", "))
        }
        _ => {
            return Some(format!(
                "case `{label}` holds one value, of type `{}`",
                quote_type(&payload)
            ));
        }
    };
    Some(format!(
        "case `{label}` holds one value, of type `{}`: write `{}`",
        quote_type(&payload),
        quote(&fix, 2 * QUOTE_CHARS)
    ))
}

/// The payload type of a variant case named `label` in any of `types`, searched breadth
/// first through at most a few thousand types (a type can be large).
fn find_case(types: &[&Type], label: &str) -> Option<Type> {
    let mut queue: std::collections::VecDeque<Type> = types.iter().map(|t| (*t).clone()).collect();
    let mut budget = 4096_usize;
    while let Some(ty) = queue.pop_front() {
        budget = budget.checked_sub(1)?;
        match ty.kind() {
            WasmTypeKind::Variant => {
                for (case, payload) in ty.variant_cases() {
                    match payload {
                        Some(p) if case == label => return Some(p),
                        Some(p) => queue.push_back(p),
                        None => {}
                    }
                }
            }
            WasmTypeKind::List => queue.extend(ty.list_element_type()),
            WasmTypeKind::Option => queue.extend(ty.option_some_type()),
            WasmTypeKind::Record => queue.extend(ty.record_fields().map(|(_, t)| t)),
            WasmTypeKind::Tuple => queue.extend(ty.tuple_element_types()),
            WasmTypeKind::Result => {
                if let Some((ok, err)) = ty.result_types() {
                    queue.extend(ok.into_iter().chain(err));
                }
            }
            _ => {}
        }
    }
    None
}

/// Walks WAVE text, calling `each(index, char, depth)` for every character outside string
/// and char literals, where `depth` counts the brackets open before it; stops when `each`
/// says so.
fn scan(text: &str, mut each: impl FnMut(usize, char, usize) -> bool) {
    let mut depth = 0_usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                if !each(i, c, depth) {
                    return;
                }
                depth += 1;
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if !each(i, c, depth) {
                    return;
                }
            }
            _ => {
                if !each(i, c, depth) {
                    return;
                }
            }
        }
    }
}

/// Where the innermost `(` still open at the end of `text` is, if the innermost open
/// bracket is one.
fn innermost_open(text: &str) -> Option<usize> {
    let mut open: Vec<(usize, char)> = Vec::new();
    scan(text, |i, c, _| {
        match c {
            '(' | '[' | '{' => open.push((i, c)),
            ')' | ']' | '}' => {
                open.pop();
            }
            _ => {}
        }
        true
    });
    match open.last() {
        Some(&(i, '(')) => Some(i),
        _ => None,
    }
}

/// Where the bracket that closes the one `text` starts with is.
fn matching_close(text: &str) -> Option<usize> {
    let mut close = None;
    scan(text, |i, c, depth| {
        if depth == 0 && matches!(c, ')' | ']' | '}') {
            close = Some(i);
            return false;
        }
        true
    });
    close
}

/// `text` split at its commas outside brackets and literals.
fn split_top(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    scan(text, |i, c, depth| {
        if depth == 0 && c == ',' {
            parts.push(&text[start..i]);
            start = i + 1;
        }
        true
    });
    parts.push(&text[start..]);
    parts
}

/// What a WAVE error says, without its byte span (the message quotes the text instead).
fn problem(e: &ParserError) -> String {
    match (std::error::Error::source(e), e.detail()) {
        (Some(source), _) => format!("{}: {source}", e.kind()),
        (None, Some(detail)) => format!("{}: {detail}", e.kind()),
        (None, None) => e.kind().to_string(),
    }
}

/// `text`, cut to `max` characters with `…` where it was cut.
fn quote(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The last `max` characters of `text`, `…` where it was cut.
fn quote_end(text: &str, max: usize) -> String {
    let count = text.chars().count();
    match text.char_indices().nth(count.saturating_sub(max)) {
        Some((cut, _)) if cut > 0 => format!("…{}", &text[cut..]),
        _ => text.to_string(),
    }
}

/// `ty` in WIT syntax, cut at [`QUOTE_CHARS`] characters: a type's text can be as large
/// as the type, and is written only that far.
fn quote_type(ty: &Type) -> String {
    struct Bounded(String, usize);
    impl std::fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.1 == 0 {
                    return Err(std::fmt::Error);
                }
                self.0.push(c);
                self.1 -= 1;
            }
            Ok(())
        }
    }
    let mut out = Bounded(String::new(), QUOTE_CHARS);
    match std::fmt::write(&mut out, format_args!("{ty}")) {
        Ok(()) => out.0,
        Err(_) => format!("{}…", out.0),
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
    type Type = Type;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Text of any shape, multi-byte characters and unclosed literals included, gets an
    /// error or values, never a panic, and an error of bounded length.
    #[test]
    fn any_text_gets_a_bounded_answer() {
        let shape = Type::variant([
            ("rect", Some(Type::tuple([Type::U32, Type::U32]).unwrap())),
            ("é", Some(Type::STRING)),
        ])
        .unwrap();
        let params = [("s", shape), ("t", Type::STRING)];
        let long = "x".repeat(10_000);
        let texts = [
            "(rect(3, 4), \"a\")".to_string(),
            "(é(1, 2), \"a\")".to_string(),
            "(%rect(1, 2))".to_string(),
            "(é(\"(\", 2))".to_string(),
            "(rect('(', 2".to_string(),
            "(\"\\\"\", 1, 2)".to_string(),
            "(,)".to_string(),
            "((((,".to_string(),
            format!("({long}({long}, 1))"),
            format!("(rect(({long}, 1)), \"a\")"),
            "(é)".to_string(),
            "".to_string(),
            "(".to_string(),
        ];
        for text in texts {
            if let Err(e) = parse_args(&text, "f: func(s: shape, t: string)", &params) {
                assert!(e.chars().count() < 600, "{} characters: {e}", e.len());
            }
        }
        let e = parse_args("(rect(3, 4), \"a\")", "f", &params).unwrap_err();
        assert!(e.ends_with("write `rect((3, 4))`)"), "{e}");
    }
}
