//! The guests of the canonical ABI's test world (`wit/guest.wit`): the Rust one
//! (`guests/canonical`, wit-bindgen's macro) and the C one (`guests/canonical-c`,
//! wit-bindgen's C generator and clang); and the plugin (`guests/plugin`, `wit/plugin`), each
//! written to `target/guest/` with only the sections a host needs: the code, and the
//! `component-type` section that says its world.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use wasm_encoder::{Module, RawSection};
use wasmparser::{Parser, Payload};

use crate::build_guest::{TARGET, target_dir};
use crate::{cargo, project_root, run as run_cmd};

/// Builds the Rust guest; returns where it was written.
pub fn rust() -> Result<PathBuf> {
    build_rust("canonical-guest", TARGET, abi::CANONICAL_ARTIFACT)
}

/// Builds the plugin guest, whose world imports functions (`wit/plugin`); returns where it
/// was written.
pub fn plugin() -> Result<PathBuf> {
    build_rust("plugin-guest", TARGET, abi::PLUGIN_ARTIFACT)
}

/// Builds the Rust guest for `wasm32-wasip1` (adding the target when the toolchain lacks
/// it): the same code, with Rust `std` importing WASI preview 1.
pub fn rust_wasip1() -> Result<PathBuf> {
    const WASIP1: &str = "wasm32-wasip1";
    crate::build_guest::ensure_target(WASIP1)?;
    build_rust("canonical-guest", WASIP1, abi::CANONICAL_WASIP1_ARTIFACT)
}

/// Builds the wit-bindgen guest `package` for `target` in release, and writes it to
/// `artifact` (relative to the workspace's root); returns where.
fn build_rust(package: &str, target: &str, artifact: &str) -> Result<PathBuf> {
    run_cmd(cargo().args([
        "build",
        "--package",
        package,
        "--target",
        target,
        "--release",
    ]))?;
    let linked = target_dir()
        .join(target)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    write_artifact(&linked, &project_root().join(artifact))
}

/// The wit-bindgen CLI whose C generator the C guest uses (the version of the Rust guest's
/// `wit-bindgen` crate).
const WIT_BINDGEN_CLI: &str = "0.46.0";
/// The `ziglang` package (PyPI) whose clang compiles the C guest: clang, lld and wasi-libc in
/// one download, no system packages.
const ZIGLANG: &str = "0.17.1";

/// Where the tools the C guest needs are installed: `target/tools`.
fn tools() -> PathBuf {
    target_dir().join("tools")
}

/// The wit-bindgen CLI, installed into `target/tools` when missing.
fn wit_bindgen() -> Result<PathBuf> {
    let bin = tools().join("bin").join("wit-bindgen");
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(WIT_BINDGEN_CLI));
    if !installed {
        eprintln!(
            "xtask: installing wit-bindgen-cli {WIT_BINDGEN_CLI} into {} (once; a few minutes)",
            tools().display()
        );
        run_cmd(
            cargo()
                .args([
                    "install",
                    "wit-bindgen-cli",
                    "--version",
                    WIT_BINDGEN_CLI,
                    "--locked",
                    "--root",
                ])
                .arg(tools()),
        )
        .context("cannot install wit-bindgen-cli")?;
    }
    Ok(bin)
}

/// The Python of the virtual environment in `target/tools/venv`, made when missing.
pub fn venv_python() -> Result<PathBuf> {
    let venv = tools().join("venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context(
            "cannot make a Python virtual environment (is python3 with venv installed?)",
        )?;
    }
    Ok(python)
}

/// The Python of `target/tools/venv` with `package` at `version` installed from PyPI when
/// `probe` (Python arguments that print the installed version) does not print it; `what`
/// says what it is for, in the message shown while it installs.
pub fn python_with(package: &str, version: &str, probe: &[&str], what: &str) -> Result<PathBuf> {
    let python = venv_python()?;
    let installed = Command::new(&python).args(probe).output().is_ok_and(|out| {
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == version
    });
    if !installed {
        eprintln!("xtask: installing {package} {version} ({what}; once)");
        run_cmd(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .arg(format!("{package}=={version}")),
        )
        .with_context(|| format!("cannot install {package} from PyPI"))?;
    }
    Ok(python)
}

/// A Python with the `ziglang` package.
fn zig_python() -> Result<PathBuf> {
    python_with(
        "ziglang",
        ZIGLANG,
        &["-m", "ziglang", "version"],
        "clang for wasm32, about 100 MB",
    )
}

/// Builds the C guest: wit-bindgen's C bindings of `wit/guest.wit` and
/// `guests/canonical-c/guest.c`, compiled by zig's clang for `wasm32-wasi` as a library
/// (no entry point; a 64 KiB stack, so that its memory starts small). Returns where it was
/// written.
pub fn c() -> Result<PathBuf> {
    build_c(
        &project_root().join("wit"),
        "guest",
        &project_root()
            .join("guests")
            .join("canonical-c")
            .join("guest.c"),
        abi::CANONICAL_C_ARTIFACT,
    )
}

/// Builds the C guest of `wit/wasi-c`, which prints with wasi-libc: `guests/wasi-c`.
pub fn wasi_c() -> Result<PathBuf> {
    build_c(
        &project_root().join("wit").join("wasi-c"),
        "wasi-c",
        &project_root().join("guests").join("wasi-c").join("greet.c"),
        abi::WASI_C_ARTIFACT,
    )
}

/// wit-bindgen's C bindings of `world` (in the WIT package at `wit`) and `source`, compiled
/// by zig's clang for `wasm32-wasi` (wasi-libc) as a library, written to `artifact`.
fn build_c(wit: &Path, world: &str, source: &Path, artifact: &str) -> Result<PathBuf> {
    let gen_dir = target_dir().join(format!("c-{world}"));
    fs::create_dir_all(&gen_dir)?;
    run_cmd(
        Command::new(wit_bindgen()?)
            .args(["c", "--world", world, "--out-dir"])
            .arg(&gen_dir)
            .arg(wit),
    )?;
    let stem = world.replace('-', "_");
    let linked = gen_dir.join(format!("{stem}.wasm"));
    run_cmd(
        Command::new(zig_python()?)
            .args([
                "-m",
                "ziglang",
                "cc",
                "-target",
                "wasm32-wasi",
                "-O2",
                "-Wall",
                "-Werror",
            ])
            .args([
                "-mexec-model=reactor",
                "-Wl,--no-entry",
                "-Wl,-z,stack-size=65536",
            ])
            .arg("-I")
            .arg(&gen_dir)
            .arg(source)
            .arg(gen_dir.join(format!("{stem}.c")))
            .arg(gen_dir.join(format!("{stem}_component_type.o")))
            .arg("-o")
            .arg(&linked),
    )?;
    write_artifact(&linked, &project_root().join(artifact))
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
            let (start, end) = (usize::try_from(range.start)?, usize::try_from(range.end)?);
            module.section(&RawSection {
                id,
                data: &wasm[start..end],
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
