//! `cargo xtask build-guest`: compile the guest for wasm32, rewrite it, check its ABI, and
//! write `target/guest/guest.wasm`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use wasmparser::ValType::I32;

use crate::rewrite::{Plan, rewrite};
use crate::{abi, cargo, project_root, run as run_cmd};

pub const TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile of the guest (see the workspace `Cargo.toml`).
const PROFILE: &str = "guest";

/// Where the final artifact goes, whatever `CARGO_TARGET_DIR` says: the host looks there.
pub fn artifact_path() -> PathBuf {
    project_root()
        .join("target")
        .join("guest")
        .join("guest.wasm")
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

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from);
    let linked = target_dir.join(TARGET).join(PROFILE).join("guest.wasm");
    let wasm = fs::read(&linked)
        .with_context(|| format!("cannot read the linked guest {}", linked.display()))?;

    let names = abi::export_names();
    let plan = Plan {
        multi_value: &[("load", &[I32, I32])],
        keep_exports: &names,
    };
    let (final_wasm, report) =
        rewrite(&wasm, &plan).context("post-link rewrite of the guest failed")?;
    let exports = abi::check(&final_wasm, abi::GUEST).with_context(|| {
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

fn display_relative(path: &Path) -> String {
    path.strip_prefix(project_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Installs `target` with rustup when the active toolchain lacks it. `RUSTUP_AUTO_INSTALL=0`
/// (and older rustups) ignore the `targets` of `rust-toolchain.toml`, so do it here.
fn ensure_target(target: &str) -> Result<()> {
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
