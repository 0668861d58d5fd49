//! The guests of the canonical ABI's test world (`wit/guest.wit`): the Rust one
//! (`guests/canonical`, wit-bindgen's macro) and the C one (`guests/canonical-c`,
//! wit-bindgen's C generator and clang), each written to `target/guest/` with only the
//! sections a host needs: the code, and the `component-type` section that says its world.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasm_encoder::{Module, RawSection};
use wasmparser::{Parser, Payload};

use crate::build_guest::{TARGET, target_dir};
use crate::{cargo, project_root, run as run_cmd};

/// Builds the Rust guest; returns where it was written.
pub fn rust() -> Result<PathBuf> {
    run_cmd(cargo().args([
        "build",
        "--package",
        "canonical-guest",
        "--target",
        TARGET,
        "--release",
    ]))?;
    let linked = target_dir()
        .join(TARGET)
        .join("release")
        .join("canonical_guest.wasm");
    write_artifact(&linked, &project_root().join(abi::CANONICAL_ARTIFACT))
}

/// Copies the module at `from` to `to` without its custom sections but `component-type*`
/// (debug info and names are most of a Rust module's size).
pub fn write_artifact(from: &Path, to: &Path) -> Result<PathBuf> {
    let wasm = fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let stripped = strip(&wasm).with_context(|| format!("cannot read {}", from.display()))?;
    fs::create_dir_all(to.parent().expect("an artifact path has a parent"))?;
    fs::write(to, &stripped).with_context(|| format!("cannot write {}", to.display()))?;
    println!(
        "{} ({} bytes)",
        to.strip_prefix(project_root()).unwrap_or(to).display(),
        stripped.len()
    );
    Ok(to.to_path_buf())
}

/// `wasm` with only its non-custom sections and `component-type*` custom sections.
pub fn strip(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut module = Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        let keep = match &payload {
            Payload::CustomSection(c) => c.name().starts_with("component-type"),
            _ => true,
        };
        if let Some((id, range)) = payload.as_section()
            && keep
        {
            module.section(&RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_keeps_code_and_the_world() {
        let wasm = wat::parse_str(
            r#"(module (memory (export "memory") 1) (func (export "f") (result i32) i32.const 7)
                 (@custom "component-type:x" "abc") (@custom "debug" "zzzz"))"#,
        )
        .unwrap();
        let out = strip(&wasm).unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
        let customs: Vec<String> = Parser::new(0)
            .parse_all(&out)
            .filter_map(|p| match p.unwrap() {
                Payload::CustomSection(c) => Some(c.name().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(customs, ["component-type:x"]);
    }
}
