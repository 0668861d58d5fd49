//! The guest's ABI, and the check that a built module has exactly it.
//!
//! `build-guest` runs [`check`] on every artifact, so a change to the guest's Rust source that
//! drifts from the ABI (a renamed export, a changed signature, a memory that grew, an import)
//! fails the build with every difference listed, instead of failing later in the host.

use anyhow::{Result, bail};
use wasmparser::{ExternalKind, FuncType, Parser, Payload, TypeRef, ValType};

use crate::rewrite::{kind_name, show_type};

/// One export of the ABI.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A 32-bit, unshared memory of exactly this many 64 KiB pages, not growable.
    Memory { pages: u64 },
    /// A function of this type.
    Func {
        params: &'static [ValType],
        results: &'static [ValType],
    },
}

use ValType::I32;

/// The exports of `target/guest/guest.wasm`, and nothing else: no imports, no other exports.
pub const GUEST: &[(&str, Kind)] = &[
    ("mem", Kind::Memory { pages: 1 }),
    (
        "load",
        Kind::Func {
            params: &[],
            results: &[I32, I32],
        },
    ),
    (
        "capacity",
        Kind::Func {
            params: &[],
            results: &[I32],
        },
    ),
    (
        "set_len",
        Kind::Func {
            params: &[I32],
            results: &[I32],
        },
    ),
    (
        "transform",
        Kind::Func {
            params: &[],
            results: &[I32],
        },
    ),
];

/// The export names of [`GUEST`].
pub fn export_names() -> Vec<&'static str> {
    GUEST.iter().map(|(name, _)| *name).collect()
}

/// Checks that `wasm` is a valid module with exactly the exports of `abi`, of the listed
/// kinds and types, and no imports. Returns the exports as Wasm text, one a line.
///
/// # Errors
/// One error that lists every difference found.
pub fn check(wasm: &[u8], abi: &[(&str, Kind)]) -> Result<Vec<String>> {
    if let Err(e) = wasmparser::Validator::new().validate_all(wasm) {
        bail!("not a valid module: {e}");
    }
    let mut types = Vec::new();
    let mut funcs = Vec::new();
    let mut memories = Vec::new();
    let mut exports = Vec::new();
    let mut problems = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(r) => {
                for ty in r.into_iter_err_on_gc_types() {
                    types.push(ty?);
                }
            }
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    let import = import?;
                    problems.push(format!(
                        "imports `{}.{}`; the guest may import nothing",
                        import.module, import.name
                    ));
                    match import.ty {
                        TypeRef::Func(t) | TypeRef::FuncExact(t) => funcs.push(t),
                        TypeRef::Memory(m) => memories.push(m),
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for ty in r {
                    funcs.push(ty?);
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    memories.push(m?);
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e?;
                    exports.push((e.name.to_string(), e.kind, e.index));
                }
            }
            _ => {}
        }
    }
    let func_type = |index: u32| -> Option<&FuncType> {
        let ty = funcs.get(usize::try_from(index).ok()?)?;
        types.get(usize::try_from(*ty).ok()?)
    };

    let mut lines = Vec::new();
    for (name, kind, index) in &exports {
        let found = match kind {
            ExternalKind::Func | ExternalKind::FuncExact => func_type(*index).map(show_type),
            ExternalKind::Memory => memories.get(usize::try_from(*index)?).map(show_memory),
            other => Some(format!("({})", kind_name(*other))),
        }
        .unwrap_or_else(|| "(?)".to_string());
        lines.push(format!("(export \"{name}\" {found})"));

        let Some((_, want)) = abi.iter().find(|(n, _)| n == name) else {
            problems.push(format!("exports `{name}` {found}, which is not in the ABI"));
            continue;
        };
        let ok = match (want, kind) {
            (Kind::Memory { pages }, ExternalKind::Memory) => {
                memories.get(usize::try_from(*index)?).is_some_and(|m| {
                    m.initial == *pages && m.maximum == Some(*pages) && !m.shared && !m.memory64
                })
            }
            (Kind::Func { params, results }, ExternalKind::Func | ExternalKind::FuncExact) => {
                func_type(*index).is_some_and(|t| t.params() == *params && t.results() == *results)
            }
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "export `{name}` is {found}, expected {}",
                show_kind(want)
            ));
        }
    }
    for (name, want) in abi {
        if !exports.iter().any(|(n, ..)| n == name) {
            problems.push(format!("missing export `{name}` {}", show_kind(want)));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the module does not match the guest ABI:\n  - {}",
            problems.join("\n  - ")
        );
    }
    Ok(lines)
}

fn show_memory(m: &wasmparser::MemoryType) -> String {
    let max = m.maximum.map(|max| format!(" {max}")).unwrap_or_default();
    let shared = if m.shared { " shared" } else { "" };
    let idx = if m.memory64 { " i64" } else { "" };
    format!("(memory{idx} {}{max}{shared})", m.initial)
}

fn show_kind(kind: &Kind) -> String {
    match kind {
        Kind::Memory { pages } => format!("(memory {pages} {pages})"),
        Kind::Func { params, results } => show_type(&FuncType::new(
            params.iter().copied(),
            results.iter().copied(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        (module
          (memory (export "mem") 1 1)
          (func (export "load") (result i32 i32) i32.const 0 i32.const 0)
          (func (export "capacity") (result i32) i32.const 0)
          (func (export "set_len") (param i32) (result i32) i32.const 0)
          (func (export "transform") (result i32) i32.const 0))
    "#;

    #[test]
    fn accepts_the_guest_abi_and_prints_it() {
        let lines = check(&wat::parse_str(GOOD).unwrap(), GUEST).unwrap();
        assert_eq!(
            lines,
            [
                r#"(export "mem" (memory 1 1))"#,
                r#"(export "load" (func (result i32 i32)))"#,
                r#"(export "capacity" (func (result i32)))"#,
                r#"(export "set_len" (func (param i32) (result i32)))"#,
                r#"(export "transform" (func (result i32)))"#,
            ]
        );
    }

    #[test]
    fn lists_every_difference() {
        let drifted = r#"
            (module
              (import "env" "log" (func (param i32)))
              (memory (export "mem") 1 2)
              (func (export "load") (param i32))
              (func (export "capacity") (result i32) i32.const 0)
              (func (export "set_len") (param i32) (result i32) i32.const 0)
              (func (export "extra") (result i32) i32.const 0))
        "#;
        let err = check(&wat::parse_str(drifted).unwrap(), GUEST)
            .unwrap_err()
            .to_string();
        for expected in [
            "imports `env.log`; the guest may import nothing",
            "export `mem` is (memory 1 2), expected (memory 1 1)",
            "export `load` is (func (param i32)), expected (func (result i32 i32))",
            "exports `extra` (func (result i32)), which is not in the ABI",
            "missing export `transform` (func (result i32))",
        ] {
            assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
        }
    }

    #[test]
    fn rejects_shared_and_64_bit_memories() {
        for wat in [
            r#"(module (memory (export "mem") 1 1 shared))"#,
            r#"(module (memory (export "mem") i64 1 1))"#,
        ] {
            let err = check(&wat::parse_str(wat).unwrap(), &GUEST[..1])
                .unwrap_err()
                .to_string();
            assert!(err.contains("expected (memory 1 1)"), "{err}");
        }
    }

    #[test]
    fn rejects_invalid_modules() {
        let err = check(b"\0asm\x01\0\0\0\x0a\x01", GUEST)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not a valid module"), "{err}");
    }
}
