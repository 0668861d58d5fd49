//! What happens to a module's bytes before wasmer compiles them. Nothing is compiled until
//! all of this has passed.
//!
//! 1. **The bytes are read** with [`Summary::parse`]: imports, exports and their types,
//!    memories, tables, the start function; every other section is walked to the end
//!    without decoding function bodies (microseconds per megabyte, where compiling takes
//!    about a second). It parses with the very wasmparser wasmer validates with. Bytes it
//!    cannot read are refused ([`Refusal::Unreadable`]), never passed on.
//! 2. **The ABI**, checked by the `abi` crate's [`check`](abi::check::check) in
//!    [`Strictness::Host`]: no imports, `mem` and `load` present, the optional exports
//!    (`capacity`, `set_len`, `transform`, `cabi_realloc`, `adopt`: [`abi::EXPORTS`]) typed
//!    when present, the memory 32-bit.
//! 3. **Static limits**, as CosmWasm's `check_wasm` does, so that a module that could never
//!    run within [`Limits`] costs no compilation: at most one memory, at most
//!    [`MAX_TABLES`] 32-bit tables, and no memory or table that starts above its cap.
//!    ([`Limits`] are also enforced at run time, through wasmer's tunables.)
//! 4. **Operators that fuel cannot bound** are refused, found by reading every function
//!    body's operators (only once the ABI and the limits passed; about 10 ms per MB):
//!    - `memory.atomic.wait32` and `memory.atomic.wait64` (threads): a wait can only block
//!      or sleep, since the host runs no other thread on a guest's memory that could wake
//!      it, and fuel does not run while a thread waits. The rest of the threads proposal
//!      (shared memories, atomic loads, stores and read-modify-writes, `notify`, which finds
//!      no waiter) runs and is metered.
//!    - exception handling (`try_table`, `throw`, `throw_ref`, the legacy `try`, `catch`,
//!      `rethrow`, `delegate`, and the tag section): exception objects are kept in host
//!      memory, outside the memory cap, as long as the store lives. The engine has the
//!      proposal turned off as well, so wasmer's validator refuses what this scan missed.
//! 5. **A start function becomes an ordinary call.** wasmer runs the start function inside
//!    `Instance::new`; when it traps, the instance is gone, and with it the metering points
//!    that tell an exhausted budget from a genuine `unreachable`. So the start section is
//!    removed and its function exported as [`START_EXPORT`]; [`crate::GuestModule`] calls it
//!    right after instantiating, under the same budget, which is what the start section
//!    would have done (data and element segments are still applied first).

use std::borrow::Cow;

use abi::check::wasmparser::{self, ExternalKind, Operator, Parser, Payload, TypeRef};
use abi::check::{Strictness, Summary};

use crate::canonical::{self, Wit, World};
use crate::wasi;
use crate::{HostFunctions, Limits};

// The check must read modules as wasmer's validator does: the two must be one crate. (This
// stops compiling when `abi`'s pinned wasmparser and wasmer's differ.)
#[allow(
    unused_qualifications,
    reason = "both paths are spelled out: they must name one type"
)]
const _: fn(wasmer::sys::wasmparser::Parser) -> wasmparser::Parser = |parser| parser;

/// The export under which a module's start function is called.
pub const START_EXPORT: &str = "__host_start";

/// The most tables a module may declare: bounds the memory tables take at their caps.
pub const MAX_TABLES: usize = 100;

/// Which of the ABI's optional exports a guest has (with the right types).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// `capacity` is exported.
    pub capacity: bool,
    /// `set_len` is exported.
    pub set_len: bool,
    /// `transform` is exported.
    pub transform: bool,
    /// `cabi_realloc` is exported.
    pub cabi_realloc: bool,
    /// `adopt` is exported.
    pub adopt: bool,
}

/// A module that passed: the bytes to compile, and what the check found.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub bytes: Cow<'a, [u8]>,
    /// The start function was moved to [`START_EXPORT`].
    pub deferred_start: bool,
    /// Whether it speaks the guide's ABI (`mem` and `load`), and which optional exports of
    /// it it has.
    pub guide: bool,
    pub extras: Extras,
    /// Its canonical-ABI side, when it has a WIT world.
    pub world: Option<World>,
    /// Whether it imports WASI preview 1 (all it may import: see [`import_problems`]).
    pub wasi: bool,
}

/// Why a module is refused before compiling.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The bytes are not a module the check can read: why.
    Unreadable(String),
    /// ABI problems, followed by any limit problems.
    Abi(Vec<String>),
    /// Limit problems only.
    OverLimit(Vec<String>),
}

/// Checks `bytes` against the ABIs it speaks and `limits`, and defers its start function.
/// A module speaks the guide's ABI when it exports `mem` or `load`, or has no WIT world;
/// the canonical ABI when it has a world (its `component-type` section, or `wit`).
pub(crate) fn prepare<'a>(
    bytes: &'a [u8],
    limits: &Limits,
    wit: Option<&Wit>,
    host: &HostFunctions,
) -> Result<Prepared<'a>, Refusal> {
    let summary = Summary::parse(bytes).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    let mut problems = Vec::new();
    let wit = match wit {
        Some(wit) => Some(wit.clone()),
        None => Wit::from_module(bytes).unwrap_or_else(|why| {
            problems.push(format!(
                "its component-type section cannot be decoded: {why}"
            ));
            None
        }),
    };
    let guide = wit.is_none()
        || summary
            .exports
            .iter()
            .any(|(name, ..)| name == abi::MEMORY.name || name == abi::LOAD.name);
    let mut present = Vec::new();
    if guide {
        let (found, wrong) = abi::check::exports(&summary, Strictness::Host);
        present = found;
        problems.extend(wrong);
    }
    let wasi = summary.imports.iter().any(|i| i.module == wasi::MODULE);
    // The imports that stand for functions of the world are judged with it.
    let mut of_world = Vec::new();
    let world = match wit.map(|wit| {
        of_world = canonical::world_imports(&wit);
        canonical::admit(wit, &summary, host)
    }) {
        Some(Ok(world)) => Some(world),
        Some(Err(found)) => {
            problems.extend(found);
            None
        }
        None => None,
    };
    problems.extend(import_problems(&summary, host, &of_world));
    let over = over_limits(&summary, limits);
    if !problems.is_empty() {
        problems.extend(over);
        return Err(Refusal::Abi(problems));
    }
    if !over.is_empty() {
        return Err(Refusal::OverLimit(over));
    }
    let has = |export: &abi::Export| present.iter().any(|p| p.name == export.name);
    let extras = Extras {
        capacity: has(&abi::CAPACITY),
        set_len: has(&abi::SET_LEN),
        transform: has(&abi::TRANSFORM),
        cabi_realloc: has(&abi::CABI_REALLOC),
        adopt: has(&abi::ADOPT),
    };
    let refused = refused_operators(bytes).map_err(Refusal::Unreadable)?;
    if !refused.is_empty() {
        return Err(Refusal::OverLimit(refused));
    }
    let (bytes, deferred_start) = match summary.start {
        None => (Cow::Borrowed(bytes), false),
        Some(start) => (
            Cow::Owned(defer_start(bytes, start).map_err(Refusal::Unreadable)?),
            true,
        ),
    };
    Ok(Prepared {
        bytes,
        deferred_start,
        guide,
        extras,
        world,
        wasi,
    })
}

/// Every import of `summary` the host does not provide, one sentence each, but those that
/// stand for functions of the world (`of_world`, judged by admission). It provides
/// WASI preview 1 ([`crate::wasi`]) and the embedder's `host` functions; an unknown WASI
/// function is named with those it does provide.
fn import_problems(
    summary: &Summary,
    host: &HostFunctions,
    of_world: &[(String, String)],
) -> Vec<String> {
    summary
        .imports
        .iter()
        .filter(|import| {
            !of_world
                .iter()
                .any(|(m, n)| *m == import.module && *n == import.name)
        })
        .filter_map(|import| {
            let provided = match import.ty {
                TypeRef::Func(index) => summary.types.get(index as usize).is_some_and(|ty| {
                    let (params, results) = (ty.params(), ty.results());
                    wasi::provides(&import.module, &import.name, params, results)
                        || host.provides(&import.module, &import.name, params, results)
                }),
                _ => false,
            };
            if provided {
                return None;
            }
            let mut problem = abi::check::unprovided(summary, import);
            if import.module == wasi::MODULE {
                problem.push_str(&format!(
                    " (of WASI preview 1 it provides, with no files or sockets: {})",
                    wasi::provided_names()
                ));
            }
            Some(problem)
        })
        .collect()
}

/// Every way `summary` exceeds `limits`, one sentence each.
fn over_limits(summary: &Summary, limits: &Limits) -> Vec<String> {
    let mut problems = Vec::new();
    let max_pages = u64::from(limits.max_memory_pages());
    for m in &summary.memories {
        if m.initial > max_pages {
            problems.push(format!(
                "declares a memory of {} pages at start, over the limit of {max_pages} pages ({} bytes)",
                m.initial, limits.max_memory_bytes
            ));
        }
    }
    if summary.memories.len() > 1 {
        problems.push(format!(
            "declares {} memories; the host allows one",
            summary.memories.len()
        ));
    }
    for t in &summary.tables {
        if t.table64 {
            problems.push("declares a 64-bit table; the host allows 32-bit tables only".into());
        }
        if t.initial > u64::from(limits.max_table_elements) {
            problems.push(format!(
                "declares a table of {} elements at start, over the limit of {}",
                t.initial, limits.max_table_elements
            ));
        }
    }
    if summary.tables.len() > MAX_TABLES {
        problems.push(format!(
            "declares {} tables; the host allows {MAX_TABLES}",
            summary.tables.len()
        ));
    }
    if summary
        .exports
        .iter()
        .any(|(name, ..)| name == START_EXPORT)
    {
        problems.push(format!(
            "exports `{START_EXPORT}`, a name the host reserves"
        ));
    }
    problems
}

/// Why the host refuses `op`, if it does: see the [module documentation](self).
fn refusal(op: &Operator<'_>) -> Option<&'static str> {
    const EXCEPTIONS: &str = "exception handling, whose exception objects are kept in host \
                              memory outside the memory cap";
    match op {
        Operator::MemoryAtomicWait32 { .. } | Operator::MemoryAtomicWait64 { .. } => Some(
            "a wait, which can only block: no other thread can wake it, and fuel does not \
             run while it waits",
        ),
        Operator::TryTable { .. }
        | Operator::Throw { .. }
        | Operator::ThrowRef
        | Operator::Try { .. }
        | Operator::Catch { .. }
        | Operator::CatchAll
        | Operator::Rethrow { .. }
        | Operator::Delegate { .. } => Some(EXCEPTIONS),
        _ => None,
    }
}

/// Every operator of `bytes` that the host refuses (each kind once, where it is first
/// found), and a tag section; an error for bytes that cannot be read.
fn refused_operators(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    let mut function = 0_u32;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TagSection(reader) => problems.push(format!(
                "declares exception tags (at offset {:#x}): the host refuses exception handling, \
                 whose exception objects are kept in host memory outside the memory cap",
                reader.range().start
            )),
            Payload::CodeSectionEntry(body) => {
                let mut reader = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !reader.eof() {
                    let at = reader.original_position();
                    let op = reader.read().map_err(|e| e.to_string())?;
                    let Some(why) = refusal(&op) else { continue };
                    let name = operator_name(&op);
                    if !seen.contains(&name) {
                        seen.push(name);
                        problems.push(format!(
                            "uses `{name}` (in the body of defined function {function}, at offset \
                             {at:#x}), {why}"
                        ));
                    }
                }
                function += 1;
            }
            _ => {}
        }
    }
    Ok(problems)
}

/// The text name of a refused operator.
fn operator_name(op: &Operator<'_>) -> &'static str {
    match op {
        Operator::MemoryAtomicWait32 { .. } => "memory.atomic.wait32",
        Operator::MemoryAtomicWait64 { .. } => "memory.atomic.wait64",
        Operator::TryTable { .. } => "try_table",
        Operator::Throw { .. } => "throw",
        Operator::ThrowRef => "throw_ref",
        Operator::Try { .. } => "try",
        Operator::Catch { .. } => "catch",
        Operator::CatchAll => "catch_all",
        Operator::Rethrow { .. } => "rethrow",
        Operator::Delegate { .. } => "delegate",
        _ => "an operator",
    }
}

/// The constants of admission, as text: part of every cache key (with digests of this file
/// and of `limits.rs`, which the cache takes itself), so that code admitted under other
/// rules is never loaded.
pub(crate) fn rules() -> String {
    format!("admission: max tables {MAX_TABLES}")
}

/// The module without its start section, exporting the start function as [`START_EXPORT`].
fn defer_start(bytes: &[u8], start: u32) -> Result<Vec<u8>, String> {
    let mut out = wasm_encoder::Module::new();
    let mut exported = false;
    let export_start = |section: &mut wasm_encoder::ExportSection| {
        section.export(START_EXPORT, wasm_encoder::ExportKind::Func, start);
    };
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        let Some((id, range)) = payload.as_section() else {
            continue;
        };
        match payload {
            Payload::ExportSection(reader) => {
                let mut section = wasm_encoder::ExportSection::new();
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    let kind = match export.kind {
                        ExternalKind::Func => wasm_encoder::ExportKind::Func,
                        ExternalKind::Table => wasm_encoder::ExportKind::Table,
                        ExternalKind::Memory => wasm_encoder::ExportKind::Memory,
                        ExternalKind::Global => wasm_encoder::ExportKind::Global,
                        ExternalKind::Tag => wasm_encoder::ExportKind::Tag,
                        // Fail closed: an export kind this rewrite cannot write again.
                        ExternalKind::FuncExact => {
                            return Err(format!(
                                "exact function exports are not supported (at offset {:#x})",
                                range.start
                            ));
                        }
                    };
                    section.export(export.name, kind, export.index);
                }
                export_start(&mut section);
                out.section(&section);
                exported = true;
            }
            Payload::StartSection { .. } => {
                // The export section, when there is one, comes before the start section.
                if !exported {
                    let mut section = wasm_encoder::ExportSection::new();
                    export_start(&mut section);
                    out.section(&section);
                }
            }
            _ => {
                let start = usize::try_from(range.start).map_err(|e| e.to_string())?;
                let end = usize::try_from(range.end).map_err(|e| e.to_string())?;
                let data = bytes.get(start..end).ok_or("section past the end")?;
                out.section(&wasm_encoder::RawSection { id, data });
            }
        }
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"(module
        (memory (export "mem") 1)
        (func $s)
        (func (export "load") (result i32 i32) i32.const 0 i32.const 0)
        (start $s))"#;

    /// Fail closed: bytes the check cannot read are refused, never passed on to be compiled
    /// without their limits checked.
    #[test]
    fn bytes_that_do_not_parse_are_refused() {
        let good = wat::parse_str(MODULE).unwrap();
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0x0b, 0xff, 0xff]);
        for bytes in [
            &good[..good.len() - 1],
            &trailing,
            b"\0asm\x02\0\0\0",
            b"(module)",
        ] {
            match prepare(bytes, &Limits::default(), None, &HostFunctions::default()) {
                Err(Refusal::Unreadable(why)) => assert!(!why.is_empty()),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_start_function_becomes_an_export_and_nothing_else_changes() {
        let good = wat::parse_str(MODULE).unwrap();
        let prepared = prepare(&good, &Limits::default(), None, &HostFunctions::default()).unwrap();
        assert!(prepared.deferred_start);
        let summary = Summary::parse(&prepared.bytes).unwrap();
        assert_eq!(summary.start, None);
        assert_eq!(
            summary.export_lines(),
            [
                r#"(export "mem" (memory 1))"#,
                r#"(export "load" (func (result i32 i32)))"#,
                r#"(export "__host_start" (func))"#,
            ]
        );
        // Without a start function the bytes are passed on as they are.
        let plain = wat::parse_str(MODULE.replace("(start $s)", "")).unwrap();
        let prepared =
            prepare(&plain, &Limits::default(), None, &HostFunctions::default()).unwrap();
        assert!(matches!(prepared.bytes, Cow::Borrowed(b) if b == plain.as_slice()));
        assert!(!prepared.deferred_start);
    }
}
