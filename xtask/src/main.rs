//! Project tasks, run as `cargo xtask <task>` (the cargo-xtask convention: plain Rust, no
//! tools to install beyond cargo and rustup).
//!
//! - `build-guest`: build the guest for wasm32, rewrite and check it, write
//!   `target/guest/guest.wasm`; with `--all`, also the guests of the canonical ABI's test
//!   world (`target/guest/canonical.wasm`, `target/guest/canonical-c.wasm`).
//! - `generated`: the canonical ABI against wasmtime on generated worlds, for a given time.
//! - `test`: `build-guest --all`, then every test of the workspace.
//! - `bench`: `build-guest --all`, then the host's benchmarks, summarised in
//!   `target/bench/summary.json`.
//! - `release`: the `memhost` release binary, checked to be stripped and to run.

mod bench;
mod build_canonical;
mod build_guest;
mod callgrind;
mod generated;
mod release;
mod rewrite;
mod spark;
mod test;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  build-guest   build the demo's guest for wasm32-unknown-unknown, rewrite `load` as a
                multi-value export, check the ABI, and write target/guest/guest.wasm
  build-guest --all
                that, and the canonical ABI's test guests from wit/guest.wit (Rust with
                wit-bindgen, C with wit-bindgen-cli and clang, both installed under
                target/tools when missing) into target/guest/canonical*.wasm
  test [ARGS]   build-guest --all, then `cargo test --workspace [ARGS]`, then `spark`
  spark         Apache Spark's RDD.pipe through `memhost transform --lines` in local mode
                (installs pyspark under target/tools; needs Java 17)
  bench [ARGS]  build-guest --all, then the host's criterion benchmarks (ARGS go to criterion,
                e.g. a filter), the large-module warm start, and instruction counts under
                callgrind (installs valgrind and gungraun-runner when missing); writes
                target/bench/summary.json and table.md
  bench canonical
                the canonical ABI side by side: the library's typed API, raw wasmer,
                wasmtime's Component Model; --lines through a wit-bindgen guest
  bench stream  1 GiB of lines through the release binary on 1 and N threads and through
                `cat`, interleaved, with peak RSS; one Spark partition's process
  generated [--seconds N] [--seed S] [--release]
                the canonical ABI against wasmtime on new generated WIT worlds for N
                seconds (default 1800); prints the seed and world of any mismatch
  release       build the memhost release binary and check that it is stripped and runs
  help          this text";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-guest") if args.len() == 1 => build_guest::run().map(|_| ()),
        Some("build-guest") if args.len() == 2 && args[1] == "--all" => build_guest::run_all(),
        Some("test") => test::run(&args[1..]),
        Some("spark") if args.len() == 1 => spark::run(true),
        Some("bench") => bench::run(&args[1..]),
        Some("generated") => generated::run(&args[1..]),
        Some("release") if args.len() == 1 => release::run_check(),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The cargo that runs this task (`$CARGO`), so that the toolchain stays the same.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// Runs `cmd`, failing with its command line when it does not succeed.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}
