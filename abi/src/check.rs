//! The check of a module's bytes against the ABI, without compiling it.
//!
//! [`Summary::parse`] reads what the check needs (imports, exports and their types,
//! memories, tables, the start function) and walks every other section without decoding
//! function bodies: it takes microseconds per megabyte, where compiling takes about a
//! second. Bytes it cannot read are an error: the caller refuses them.
//!
//! [`check`] compares a summary with [`EXPORTS`], listing every problem.

use alloc::format;
use alloc::string::String;
use alloc::string::ToString as _;
use alloc::vec::Vec;

pub use wasmparser;
use wasmparser::{
    BinaryReaderError, Encoding, ExternalKind, FuncType, GlobalType, MemoryType, Parser, Payload,
    TableType, TypeRef,
};

/// Why [`Summary::parse`] cannot read bytes as a core module.
#[derive(Debug, Clone)]
pub enum ParseError {
    /// Not well-formed, as wasmparser reads it.
    Wasm(BinaryReaderError),
    /// A component binary (the Component Model's), not a core module.
    Component,
}

impl From<BinaryReaderError> for ParseError {
    fn from(e: BinaryReaderError) -> Self {
        ParseError::Wasm(e)
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::Wasm(e) => e.fmt(f),
            ParseError::Component => f.write_str("a component binary, not a core module"),
        }
    }
}

impl core::error::Error for ParseError {}

use crate::{EXPORTS, Export, IMPORTS_ALLOWED, Kind, MEMORY_RULES, Presence};

/// How strictly [`check`] reads the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// What a host accepts: the required exports present, optional ones typed when present,
    /// other exports ignored; one 32-bit memory, shared or not, of any size.
    Host,
    /// What `cargo xtask build-guest` ships: every export of the ABI and nothing else, the
    /// memory exactly as [`MEMORY_RULES`] says.
    Artifact,
}

/// An import: its module, name and type.
#[derive(Debug, Clone)]
pub struct Import {
    /// The module it is imported from.
    pub module: String,
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: TypeRef,
}

/// What a module imports, exports, and declares, as far as the ABI and a host's limits
/// need to know.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Function types by type index (a module with GC types is refused by [`Summary::parse`]).
    pub types: Vec<FuncType>,
    /// The type index of every function, imported ones first.
    pub funcs: Vec<u32>,
    /// Every import.
    pub imports: Vec<Import>,
    /// Every export: name, kind, index.
    pub exports: Vec<(String, ExternalKind, u32)>,
    /// Every memory, imported ones first.
    pub memories: Vec<MemoryType>,
    /// Every table, imported ones first.
    pub tables: Vec<TableType>,
    /// Every global, imported ones first.
    pub globals: Vec<GlobalType>,
    /// The start function, if any.
    pub start: Option<u32>,
}

impl Summary {
    /// Reads the parts of `bytes` the ABI needs, and walks the rest of the module to its
    /// end without decoding function bodies.
    ///
    /// # Errors
    /// [`ParseError::Wasm`], wasmparser's error, for bytes that are not a well-formed
    /// module (modules with GC types, which wasmer does not compile, are refused too);
    /// [`ParseError::Component`] for a component binary, whose nested core modules are
    /// never read as if they were the file.
    pub fn parse(bytes: &[u8]) -> Result<Summary, ParseError> {
        let mut s = Summary::default();
        for payload in Parser::new(0).parse_all(bytes) {
            match payload? {
                Payload::Version {
                    encoding: Encoding::Component,
                    ..
                } => return Err(ParseError::Component),
                Payload::TypeSection(reader) => {
                    for ty in reader.into_iter_err_on_gc_types() {
                        s.types.push(ty?);
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import?;
                        match import.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => s.funcs.push(t),
                            TypeRef::Memory(m) => s.memories.push(m),
                            TypeRef::Table(t) => s.tables.push(t),
                            TypeRef::Global(g) => s.globals.push(g),
                            TypeRef::Tag(_) => {}
                        }
                        s.imports.push(Import {
                            module: import.module.into(),
                            name: import.name.into(),
                            ty: import.ty,
                        });
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        s.funcs.push(ty?);
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        s.tables.push(table?.ty);
                    }
                }
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        s.memories.push(memory?);
                    }
                }
                Payload::GlobalSection(reader) => {
                    for global in reader {
                        s.globals.push(global?.ty);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let e = export?;
                        s.exports.push((e.name.into(), e.kind, e.index));
                    }
                }
                Payload::StartSection { func, .. } => s.start = Some(func),
                _ => {}
            }
        }
        Ok(s)
    }

    /// The type of function `index`, if both exist.
    pub fn func_type(&self, index: u32) -> Option<&FuncType> {
        let ty = self.funcs.get(usize::try_from(index).ok()?)?;
        self.types.get(usize::try_from(*ty).ok()?)
    }

    /// An export's type in Wasm text form: `(func (result i32))`, `(memory 1 1)`.
    pub fn show_export(&self, kind: ExternalKind, index: u32) -> String {
        let at = usize::try_from(index).ok();
        match kind {
            ExternalKind::Func | ExternalKind::FuncExact => self
                .func_type(index)
                .map_or_else(|| "(func)".into(), show_func),
            ExternalKind::Memory => at
                .and_then(|i| self.memories.get(i))
                .map_or_else(|| "(memory)".into(), show_memory),
            ExternalKind::Table => at
                .and_then(|i| self.tables.get(i))
                .map_or_else(|| "(table)".into(), show_table),
            ExternalKind::Global => at
                .and_then(|i| self.globals.get(i))
                .map_or_else(|| "(global)".into(), show_global),
            ExternalKind::Tag => "(tag)".into(),
        }
    }

    /// Every export as a line of Wasm text: `(export "load" (func (result i32 i32)))`.
    pub fn export_lines(&self) -> Vec<String> {
        self.exports
            .iter()
            .map(|(name, kind, index)| {
                format!(
                    "(export \"{}\" {})",
                    show_name(name),
                    self.show_export(*kind, *index)
                )
            })
            .collect()
    }
}

/// The ABI's exports that `summary` has, with the right types; or every problem found, one
/// sentence each: export problems in the ABI's order, then imports.
///
/// # Errors
/// The list of problems: imports, missing required exports, exports of the wrong kind or
/// type, a memory that does not follow [`MEMORY_RULES`], and in
/// [`Strictness::Artifact`] missing optional exports and exports outside the ABI.
pub fn check(
    summary: &Summary,
    strictness: Strictness,
) -> Result<Vec<&'static Export>, Vec<String>> {
    // Exports first: what a module lacks says more than what it imports.
    let (present, mut problems) = exports(summary, strictness);
    problems.extend(imports(summary));
    if problems.is_empty() {
        Ok(present)
    } else {
        Err(problems)
    }
}

/// The exports half of [`check`]: the ABI's exports that `summary` has with the right
/// types, and every problem with them, for a host that judges imports itself.
pub fn exports(summary: &Summary, strictness: Strictness) -> (Vec<&'static Export>, Vec<String>) {
    let mut problems = Vec::new();

    let mut present = Vec::new();
    for want in EXPORTS {
        let Some((_, kind, index)) = summary.exports.iter().find(|(n, ..)| n == want.name) else {
            let needed = want.presence == Presence::Required || strictness == Strictness::Artifact;
            if needed {
                problems.push(format!(
                    "missing export `{}` {}{}",
                    want.name,
                    show_want(want, strictness),
                    hint(summary, want)
                ));
            }
            continue;
        };
        if matches(summary, want, *kind, *index, strictness) {
            present.push(want);
        } else {
            problems.push(format!(
                "export `{}` is {}, expected {}",
                want.name,
                summary.show_export(*kind, *index),
                show_want(want, strictness)
            ));
        }
    }

    if strictness == Strictness::Artifact {
        for (name, kind, index) in &summary.exports {
            if !EXPORTS.iter().any(|e| e.name == name) {
                problems.push(format!(
                    "exports `{}` {}, which is not in the ABI",
                    show_name(name),
                    summary.show_export(*kind, *index)
                ));
            }
        }
    }

    (present, problems)
}

/// Every import of `summary` that the host does not provide (it provides none), one
/// sentence each: the part of [`check`] that applies to any module the host runs, whatever
/// convention it speaks.
pub fn imports(summary: &Summary) -> Vec<String> {
    if IMPORTS_ALLOWED {
        return Vec::new();
    }
    summary
        .imports
        .iter()
        .map(|import| unprovided(summary, import))
        .collect()
}

/// The name the Wasm text format gives an export's (or import's) kind.
pub fn kind_name(kind: ExternalKind) -> &'static str {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => "func",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

/// The sentence for an import of `summary` that the host does not provide.
pub fn unprovided(summary: &Summary, import: &Import) -> String {
    format!(
        "imports `{}.{}` {}, which the host does not provide",
        show_name(&import.module),
        show_name(&import.name),
        show_import(summary, import.ty)
    )
}

/// Whether the export `kind`/`index` is what `want` describes.
fn matches(
    summary: &Summary,
    want: &Export,
    kind: ExternalKind,
    index: u32,
    strictness: Strictness,
) -> bool {
    match (want.kind, kind) {
        (Kind::Memory, ExternalKind::Memory) => {
            let Some(m) = usize::try_from(index)
                .ok()
                .and_then(|i| summary.memories.get(i))
            else {
                return false;
            };
            !m.memory64
                && (strictness == Strictness::Host
                    || (m.initial == MEMORY_RULES.artifact_initial
                        && m.maximum == MEMORY_RULES.artifact_maximum
                        && m.shared == MEMORY_RULES.artifact_shared))
        }
        (Kind::Func(want), ExternalKind::Func | ExternalKind::FuncExact) => {
            summary.func_type(index).is_some_and(|found| {
                found.params().len() == want.params.len()
                    && found.results().len() == want.results.len()
                    && found
                        .params()
                        .iter()
                        .zip(want.params)
                        .all(|(f, w)| same(*f, *w))
                    && found
                        .results()
                        .iter()
                        .zip(want.results)
                        .all(|(f, w)| same(*f, *w))
            })
        }
        _ => false,
    }
}

fn same(found: wasmparser::ValType, want: crate::ValType) -> bool {
    match want {
        crate::ValType::I32 => found == wasmparser::ValType::I32,
    }
}

/// What `want` must be, in Wasm text form.
fn show_want(want: &Export, strictness: Strictness) -> String {
    match want.kind {
        Kind::Func(ty) => format!("{ty}"),
        Kind::Memory => match strictness {
            Strictness::Host => "(memory)".into(),
            Strictness::Artifact => show_memory(&MemoryType {
                memory64: false,
                shared: MEMORY_RULES.artifact_shared,
                initial: MEMORY_RULES.artifact_initial,
                maximum: MEMORY_RULES.artifact_maximum,
                page_size_log2: None,
            }),
        },
    }
}

/// For a missing memory: the name the module exports one under, if any.
fn hint(summary: &Summary, want: &Export) -> String {
    if want.kind != Kind::Memory {
        return String::new();
    }
    summary
        .exports
        .iter()
        .find(|(_, kind, _)| *kind == ExternalKind::Memory)
        .map(|(name, ..)| format!(" (the module exports a memory as `{}`)", show_name(name)))
        .unwrap_or_default()
}

/// The most characters of a module's own name that a message repeats.
const NAME_CHARS: usize = 40;
/// The most value types of one function type that a message lists.
const TYPES_SHOWN: usize = 8;

/// A name from a module, fit for a one-line message: control characters (a newline, for
/// one) escaped, and cut after `NAME_CHARS` characters.
pub fn show_name(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == NAME_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A function type in Wasm text form, listing at most `TYPES_SHOWN` types of each list.
pub fn show_func(ty: &FuncType) -> String {
    crate::FuncText {
        params: ty.params(),
        results: ty.results(),
        shown: TYPES_SHOWN,
    }
    .to_string()
}

/// A memory type in Wasm text form: `(memory 1 1)`, `(memory i64 1 shared)`.
pub fn show_memory(m: &MemoryType) -> String {
    let idx = if m.memory64 { " i64" } else { "" };
    let max = m.maximum.map(|max| format!(" {max}")).unwrap_or_default();
    let shared = if m.shared { " shared" } else { "" };
    format!("(memory{idx} {}{max}{shared})", m.initial)
}

/// A table type in Wasm text form: `(table 1 funcref)`.
pub fn show_table(t: &TableType) -> String {
    let idx = if t.table64 { " i64" } else { "" };
    let max = t.maximum.map(|max| format!(" {max}")).unwrap_or_default();
    format!("(table{idx} {}{max} {})", t.initial, t.element_type)
}

/// A global type in Wasm text form: `(global i32)`, `(global (mut i64))`.
pub fn show_global(g: &GlobalType) -> String {
    if g.mutable {
        format!("(global (mut {}))", g.content_type)
    } else {
        format!("(global {})", g.content_type)
    }
}

fn show_import(summary: &Summary, ty: TypeRef) -> String {
    match ty {
        TypeRef::Func(t) | TypeRef::FuncExact(t) => usize::try_from(t)
            .ok()
            .and_then(|t| summary.types.get(t))
            .map_or_else(|| "(func)".into(), show_func),
        TypeRef::Memory(m) => show_memory(&m),
        TypeRef::Table(t) => show_table(&t),
        TypeRef::Global(g) => show_global(&g),
        TypeRef::Tag(_) => "(tag)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(wat: &str) -> Summary {
        Summary::parse(&wat::parse_str(wat).unwrap()).unwrap()
    }

    fn problems(wat: &str, strictness: Strictness) -> Vec<String> {
        check(&summary(wat), strictness).unwrap_err()
    }

    const GOOD: &str = r#"
        (module
          (memory (export "mem") 1)
          (func (export "load") (result i32 i32) i32.const 0 i32.const 0)
          (func (export "capacity") (result i32) i32.const 0)
          (func (export "set_len") (param i32) (result i32) i32.const 0)
          (func (export "transform") (result i32) i32.const 0)
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0)
          (func (export "adopt") (param i32 i32) (result i32) i32.const 0))
    "#;

    fn names(present: &[&Export]) -> Vec<&'static str> {
        present.iter().map(|e| e.name).collect()
    }

    #[test]
    fn the_whole_abi_passes_both_checks_and_prints_as_wasm_text() {
        let s = summary(GOOD);
        for strictness in [Strictness::Host, Strictness::Artifact] {
            let present = check(&s, strictness).unwrap();
            assert_eq!(
                names(&present),
                [
                    "mem",
                    "load",
                    "capacity",
                    "set_len",
                    "transform",
                    "cabi_realloc",
                    "adopt"
                ]
            );
        }
        assert_eq!(
            s.export_lines(),
            [
                r#"(export "mem" (memory 1))"#,
                r#"(export "load" (func (result i32 i32)))"#,
                r#"(export "capacity" (func (result i32)))"#,
                r#"(export "set_len" (func (param i32) (result i32)))"#,
                r#"(export "transform" (func (result i32)))"#,
                r#"(export "cabi_realloc" (func (param i32 i32 i32 i32) (result i32)))"#,
                r#"(export "adopt" (func (param i32 i32) (result i32)))"#,
            ]
        );
    }

    #[test]
    fn a_host_needs_only_the_guides_part_and_ignores_other_exports() {
        let wat = r#"(module
            (memory (export "mem") 2 4 shared)
            (func (export "load") (result i32 i32) i32.const 0 i32.const 0)
            (func (export "other") (param i64)))"#;
        assert_eq!(
            names(&check(&summary(wat), Strictness::Host).unwrap()),
            ["mem", "load"]
        );
        let artifact = problems(wat, Strictness::Artifact);
        assert_eq!(
            artifact,
            [
                "export `mem` is (memory 2 4 shared), expected (memory 1)",
                "missing export `capacity` (func (result i32))",
                "missing export `set_len` (func (param i32) (result i32))",
                "missing export `transform` (func (result i32))",
                "missing export `cabi_realloc` (func (param i32 i32 i32 i32) (result i32))",
                "missing export `adopt` (func (param i32 i32) (result i32))",
                "exports `other` (func (param i64)), which is not in the ABI",
            ]
        );
    }

    #[test]
    fn lists_every_problem_in_order() {
        let wat = r#"(module
            (import "env" "log" (func (param i32)))
            (memory (export "memory") 1)
            (func (export "load") (result i32) i32.const 0)
            (global (export "capacity") i32 (i32.const 0))
            (func (export "transform") (param i32) (result i32) i32.const 0))"#;
        assert_eq!(
            problems(wat, Strictness::Host),
            [
                "missing export `mem` (memory) (the module exports a memory as `memory`)",
                "export `load` is (func (result i32)), expected (func (result i32 i32))",
                "export `capacity` is (global i32), expected (func (result i32))",
                "export `transform` is (func (param i32) (result i32)), expected (func (result i32))",
                "imports `env.log` (func (param i32)), which the host does not provide",
            ]
        );
    }

    #[test]
    fn a_64_bit_memory_is_refused_by_both() {
        let wat = r#"(module
            (memory (export "mem") i64 1 1)
            (func (export "load") (result i32 i32) i32.const 0 i32.const 0))"#;
        assert_eq!(
            problems(wat, Strictness::Host),
            ["export `mem` is (memory i64 1 1), expected (memory)"]
        );
        assert!(problems(wat, Strictness::Artifact)[0].contains("expected (memory 1)"));
    }

    #[test]
    fn names_and_long_types_are_cut_for_one_line() {
        let long = "x".repeat(500);
        let wat = format!(
            r#"(module (import "a`\0a" "{long}" (func (param {params}))))"#,
            params = "i32 ".repeat(100)
        );
        let p = problems(&wat, Strictness::Host).pop().unwrap();
        let p = &p;
        assert!(p.starts_with("imports `a`\\n."), "{p}");
        assert!(p.contains(&format!(".{}…` (func", "x".repeat(40))), "{p}");
        assert!(
            p.contains("(param i32 i32 i32 i32 i32 i32 i32 i32 …92 more)"),
            "{p}"
        );
        assert!(p.len() < 200, "{} chars: {p}", p.len());
    }

    #[test]
    fn the_memory_and_tables_and_start_are_summarised() {
        let s = summary(
            r#"(module
                (import "m" "t" (table 3 funcref))
                (memory 2 5) (table 7 externref) (func $f) (start $f))"#,
        );
        assert_eq!(s.memories.len(), 1);
        assert_eq!((s.memories[0].initial, s.memories[0].maximum), (2, Some(5)));
        let tables: Vec<_> = s.tables.iter().map(show_table).collect();
        assert_eq!(tables, ["(table 3 funcref)", "(table 7 externref)"]);
        assert_eq!(s.start, Some(0));
    }

    #[test]
    fn bytes_that_do_not_parse_are_an_error_wherever_they_break() {
        let good = wat::parse_str(GOOD).unwrap();
        // (At 8 bytes the header alone is a valid, empty module.)
        for cut in [0, 4, 9, good.len() / 2, good.len() - 1] {
            assert!(Summary::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Summary::parse(b"(module)").is_err());
        assert!(Summary::parse(&good).is_ok());
        // Garbage after the last section is refused too.
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0x0b, 0xff]);
        assert!(Summary::parse(&trailing).is_err());
        assert_eq!(
            check(&Summary::parse(&good).unwrap(), Strictness::Host).map(|p| p.len()),
            Ok(7)
        );
    }
}
