//! `cargo xtask build-guest`: compile the guest for wasm32, rewrite it, check its ABI, and
//! write `target/guest/guest.wasm`: all the demo runs, with nothing to install but the
//! wasm32 target. `--all` also builds the canonical ABI's test guests and their tools.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use abi::check::{Strictness, Summary};
use anyhow::{Context, Result, bail};

use crate::rewrite::{Plan, rewrite};
use crate::{cargo, project_root, run as run_cmd};

pub const TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile of the guest (see the workspace `Cargo.toml`).
const PROFILE: &str = "guest";

/// Where the final artifact goes, whatever `CARGO_TARGET_DIR` says: the host looks there.
pub fn artifact_path() -> PathBuf {
    project_root().join(abi::GUEST_ARTIFACT)
}

/// Builds the guest and returns the artifact's path.
pub fn run() -> Result<PathBuf> {
    ensure_target(TARGET)?;
    run_cmd(cargo().args([
        "build",
        "--package",
        "guest",
        "--target",
        TARGET,
        "--profile",
        PROFILE,
    ]))?;

    let linked = target_dir().join(TARGET).join(PROFILE).join("guest.wasm");
    let wasm = fs::read(&linked)
        .with_context(|| format!("cannot read the linked guest {}", linked.display()))?;

    let names: Vec<_> = abi::EXPORTS.iter().map(|e| e.name).collect();
    let load_results = multi_value_results(&abi::LOAD)?;
    let plan = Plan {
        multi_value: &[(abi::LOAD.name, &load_results)],
        keep_exports: &names,
    };
    let (final_wasm, report) =
        rewrite(&wasm, &plan).context("post-link rewrite of the guest failed")?;
    let exports = check_artifact(&final_wasm).with_context(|| {
        format!(
            "the guest built from {} drifted from its ABI",
            project_root().join("guest").display()
        )
    })?;

    let out = artifact_path();
    fs::create_dir_all(out.parent().expect("artifact path has a parent"))?;
    fs::write(&out, &final_wasm).with_context(|| format!("cannot write {}", out.display()))?;

    eprintln!(
        "xtask: rewrote the linked module ({} bytes): multi-value {:?}; dropped exports {:?}, \
         {} zero bytes of data, custom sections {:?}",
        wasm.len(),
        report.wrapped,
        report.dropped_exports,
        report.zeros_dropped,
        report.dropped_custom,
    );
    for line in exports {
        eprintln!("xtask:   {line}");
    }
    println!("{} ({} bytes)", display_relative(&out), final_wasm.len());
    Ok(out)
}

/// The demo's guest, then the canonical ABI's test guests (Rust with wit-bindgen, C with
/// wit-bindgen-cli and clang), installing their tools under `target/tools` when missing:
/// what the tests and benchmarks run. `cargo xtask build-guest --all`.
pub fn run_all() -> Result<()> {
    run()?;
    crate::build_canonical::rust()?;
    crate::build_canonical::rust_wasip1()?;
    crate::build_canonical::plugin()?;
    crate::build_canonical::c()?;
    crate::build_canonical::wasi_c()?;
    Ok(())
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or the workspace's `target`.
pub fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| project_root().join("target"), PathBuf::from)
}

/// The results of `export`, a function of the ABI, as the rewrite's wasmparser names them.
fn multi_value_results(export: &abi::Export) -> Result<Vec<wasmparser::ValType>> {
    let abi::Kind::Func(ty) = export.kind else {
        bail!("`{}` is not a function in the ABI", export.name);
    };
    Ok(ty
        .results
        .iter()
        .map(|t| match t {
            abi::ValType::I32 => wasmparser::ValType::I32,
        })
        .collect())
}

/// Checks that `wasm` is a valid module with exactly the ABI's exports (the `abi` crate's
/// check in [`Strictness::Artifact`]). Returns the exports as Wasm text, one a line.
///
/// # Errors
/// Why the module is not valid, or one error that lists every difference from the ABI.
pub fn check_artifact(wasm: &[u8]) -> Result<Vec<String>> {
    if let Err(e) = wasmparser::Validator::new().validate_all(wasm) {
        bail!("not a valid module: {e}");
    }
    let summary = Summary::parse(wasm).context("the module does not parse")?;
    if let Err(problems) = abi::check::check(&summary, Strictness::Artifact) {
        bail!(
            "the module does not match the guest ABI:\n  - {}",
            problems.join("\n  - ")
        );
    }
    Ok(summary.export_lines())
}

fn display_relative(path: &Path) -> String {
    path.strip_prefix(project_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Installs `target` with rustup when the active toolchain lacks it. `RUSTUP_AUTO_INSTALL=0`
/// (and older rustups) ignore the `targets` of `rust-toolchain.toml`, so do it here.
pub(crate) fn ensure_target(target: &str) -> Result<()> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(project_root())
        .output()
        .context("cannot run rustc")?;
    if !output.status.success() {
        bail!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let sysroot = PathBuf::from(String::from_utf8(output.stdout)?.trim());
    if sysroot
        .join("lib")
        .join("rustlib")
        .join(target)
        .join("lib")
        .is_dir()
    {
        return Ok(());
    }
    eprintln!(
        "xtask: the Rust target {target} is not installed; installing it: rustup target add {target}"
    );
    run_cmd(
        Command::new("rustup")
            .args(["target", "add", target])
            .current_dir(project_root()),
    )
    .with_context(|| {
        format!("cannot install {target}; install it by hand: rustup target add {target}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_check_lists_every_difference() {
        let drifted = r#"
            (module
              (import "env" "log" (func (param i32)))
              (memory (export "mem") 1 2)
              (func (export "load") (param i32))
              (func (export "capacity") (result i32) i32.const 0)
              (func (export "set_len") (param i32) (result i32) i32.const 0)
              (func (export "extra") (result i32) i32.const 0))
        "#;
        let err = check_artifact(&wat::parse_str(drifted).unwrap())
            .unwrap_err()
            .to_string();
        for expected in [
            "imports `env.log` (func (param i32)), which the host does not provide",
            "export `mem` is (memory 1 2), expected (memory 1)",
            "export `load` is (func (param i32)), expected (func (result i32 i32))",
            "missing export `transform` (func (result i32))",
            "exports `extra` (func (result i32)), which is not in the ABI",
        ] {
            assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
        }
    }

    #[test]
    fn the_artifact_check_refuses_invalid_modules() {
        // Parses, but does not validate: `load` returns nothing of what it promises.
        let invalid = wat::parse_str(
            r#"(module (memory (export "mem") 1 1) (func (export "load") (result i32 i32)))"#,
        )
        .unwrap();
        let err = check_artifact(&invalid).unwrap_err().to_string();
        assert!(err.starts_with("not a valid module"), "{err}");
    }

    #[test]
    fn load_is_the_multi_value_export() {
        assert_eq!(
            multi_value_results(&abi::LOAD).unwrap(),
            [wasmparser::ValType::I32, wasmparser::ValType::I32]
        );
        assert!(multi_value_results(&abi::MEMORY).is_err());
    }
}
