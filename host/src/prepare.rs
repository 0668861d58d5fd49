//! What happens to a module's bytes before wasmer compiles them.
//!
//! 1. **Static limits**, checked on the bytes as CosmWasm's `check_wasm` does, so that a
//!    module that could never run within [`Limits`] costs no compilation: at most one
//!    memory, at most [`MAX_TABLES`] tables, and no memory or table that starts above its
//!    cap. ([`Limits`] are also enforced at run time, through wasmer's tunables.)
//! 2. **A start function becomes an ordinary call.** wasmer runs the start function inside
//!    `Instance::new`; when it traps, the instance is gone, and with it the metering points
//!    that tell an exhausted budget from a genuine `unreachable`. So the start section is
//!    removed and its function exported as [`START_EXPORT`]; [`crate::GuestModule`] calls it
//!    right after instantiating, under the same budget, which is what the start section
//!    would have done (data and element segments are still applied first).
//!
//! Bytes that do not parse are passed through unchanged: wasmer's compiler then reports why.

use std::borrow::Cow;

use wasm_encoder::reencode::{Reencode as _, RoundtripReencoder};
use wasmparser::{Parser, Payload, TypeRef};

use crate::Limits;

/// The export under which a module's start function is called.
pub const START_EXPORT: &str = "__host_start";

/// The most tables a module may declare: bounds the memory tables take at their caps.
pub const MAX_TABLES: usize = 100;

/// The bytes to compile and whether they carry a deferred start function; or every static
/// problem found.
pub(crate) fn prepare<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(Cow<'a, [u8]>, bool), Vec<String>> {
    let Ok(info) = scan(bytes, limits) else {
        return Ok((Cow::Borrowed(bytes), false));
    };
    if !info.problems.is_empty() {
        return Err(info.problems);
    }
    let Some(start) = info.start else {
        return Ok((Cow::Borrowed(bytes), false));
    };
    match defer_start(bytes, start) {
        Ok(rewritten) => Ok((Cow::Owned(rewritten), true)),
        // Not reachable for bytes that scanned; let the compiler have the original.
        Err(_) => Ok((Cow::Borrowed(bytes), false)),
    }
}

#[derive(Default)]
struct Scan {
    start: Option<u32>,
    problems: Vec<String>,
}

fn scan(bytes: &[u8], limits: &Limits) -> wasmparser::Result<Scan> {
    let mut scan = Scan::default();
    let (mut memories, mut tables) = (0usize, 0usize);
    let max_pages = u64::from(limits.max_memory_pages());
    let mut memory = |m: wasmparser::MemoryType, problems: &mut Vec<String>| {
        memories += 1;
        if m.initial > max_pages {
            problems.push(format!(
                "declares a memory of {} pages at start, over the limit of {max_pages} pages ({} bytes)",
                m.initial, limits.max_memory_bytes
            ));
        }
    };
    let mut table = |t: wasmparser::TableType, problems: &mut Vec<String>| {
        tables += 1;
        if t.initial > u64::from(limits.max_table_elements) {
            problems.push(format!(
                "declares a table of {} elements at start, over the limit of {}",
                t.initial, limits.max_table_elements
            ));
        }
    };
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import?.ty {
                        TypeRef::Memory(m) => memory(m, &mut scan.problems),
                        TypeRef::Table(t) => table(t, &mut scan.problems),
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for m in reader {
                    memory(m?, &mut scan.problems);
                }
            }
            Payload::TableSection(reader) => {
                for t in reader {
                    table(t?.ty, &mut scan.problems);
                }
            }
            Payload::ExportSection(reader) => {
                for e in reader {
                    if e?.name == START_EXPORT {
                        scan.problems.push(format!(
                            "exports `{START_EXPORT}`, a name the host reserves"
                        ));
                    }
                }
            }
            Payload::StartSection { func, .. } => scan.start = Some(func),
            _ => {}
        }
    }
    if memories > 1 {
        scan.problems
            .push(format!("declares {memories} memories; the host allows one"));
    }
    if tables > MAX_TABLES {
        scan.problems.push(format!(
            "declares {tables} tables; the host allows {MAX_TABLES}"
        ));
    }
    Ok(scan)
}

/// The module without its start section, exporting the start function as [`START_EXPORT`].
fn defer_start(bytes: &[u8], start: u32) -> anyhow::Result<Vec<u8>> {
    let mut out = wasm_encoder::Module::new();
    let mut exported = false;
    let export_start = |section: &mut wasm_encoder::ExportSection| {
        section.export(START_EXPORT, wasm_encoder::ExportKind::Func, start);
    };
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload?;
        let Some((id, range)) = payload.as_section() else {
            continue;
        };
        match payload {
            Payload::ExportSection(reader) => {
                let mut section = wasm_encoder::ExportSection::new();
                RoundtripReencoder.parse_export_section(&mut section, reader)?;
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
                let range = usize::try_from(range.start)?..usize::try_from(range.end)?;
                out.section(&wasm_encoder::RawSection {
                    id,
                    data: &bytes[range],
                });
            }
        }
    }
    Ok(out.finish())
}
