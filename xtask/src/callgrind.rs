//! Part of `cargo xtask bench`: instruction counts of the host's fixed costs, from its
//! `instructions` bench (gungraun, which runs each case under valgrind's callgrind).
//! Installs what that needs when it is missing: valgrind (from apt, when this is a Debian
//! machine and we may) and `gungraun-runner` of the same version as the `gungraun` crate.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{cargo, project_root};

/// Each case of the bench, by its function name and bench id, and the cases of the summary
/// it measures (one copy of 13 B is the reference of both the read and the write).
const CASES: [(&str, &str, &[&str]); 8] = [
    ("read_13b_library", "library", &["read/13B/library"]),
    ("write_13b_library", "library", &["write/13B/library"]),
    (
        "copy_13b_memcpy",
        "memcpy",
        &["read/13B/memcpy", "write/13B/memcpy"],
    ),
    ("load_library", "library", &["load/library"]),
    (
        "load_library",
        "library_unmetered",
        &["load/library_unmetered"],
    ),
    ("load_raw", "raw", &["load/raw"]),
    (
        "roundtrip_1kib_library",
        "library",
        &["roundtrip/1KiB/library"],
    ),
    ("roundtrip_1kib_raw", "raw", &["roundtrip/1KiB/raw"]),
];

/// Instructions per operation for each case the bench measures, keyed by the summary's
/// case names.
pub fn instructions() -> Result<BTreeMap<String, f64>> {
    let reps = bench_constant("instructions", "REPS")?;
    let found = run("instructions")?;
    let mut counts = BTreeMap::new();
    for (function, id, count) in found {
        let Some(&(_, _, cases)) = CASES
            .iter()
            .find(|(f, i, _)| (*f, *i) == (&*function, &*id))
        else {
            continue;
        };
        for case in cases {
            counts.insert((*case).to_string(), count / reps);
        }
    }
    if let Some((function, id, _)) = CASES
        .iter()
        .find(|(_, _, cases)| cases.iter().any(|c| !counts.contains_key(*c)))
    {
        bail!("the instructions bench reported nothing for {function} {id}");
    }
    Ok(counts)
}

/// The modes of `transform --lines` that the `lines_instructions` bench measures.
pub const LINE_MODES: [&str; 5] = ["guide", "canonical", "batch", "chunk", "native"];

/// Instructions per line of each of [`LINE_MODES`], from the `lines_instructions` bench.
pub fn line_modes() -> Result<BTreeMap<String, f64>> {
    let lines = bench_constant("lines_instructions", "LINES")?;
    let mut counts = BTreeMap::new();
    for (function, id, count) in run("lines_instructions")? {
        if let Some(mode) = LINE_MODES
            .iter()
            .find(|m| function == format!("lines_{m}") && id == **m)
        {
            counts.insert((*mode).to_string(), count / lines);
        }
    }
    if let Some(mode) = LINE_MODES.iter().find(|m| !counts.contains_key(**m)) {
        bail!("the lines_instructions bench reported nothing for {mode}");
    }
    Ok(counts)
}

/// The value of `const NAME: usize = N;` in the bench `bench`: read, not repeated here.
fn bench_constant(bench: &str, name: &str) -> Result<f64> {
    let path = project_root().join(format!("host/benches/{bench}.rs"));
    let source = fs::read_to_string(&path)?;
    let prefix = format!("const {name}: usize = ");
    source
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim_end_matches(';').replace('_', "").parse().ok())
        .with_context(|| format!("no `const {name}: usize = N;` in {}", path.display()))
}

/// Runs the gungraun bench `bench`: each case's function, id and instruction count.
fn run(bench: &str) -> Result<Vec<(String, String, f64)>> {
    ensure_valgrind()?;
    ensure_runner()?;
    let output = cargo()
        .args(["bench", "--package", "host", "--bench", bench, "--"])
        .arg("--output-format=json")
        .output()
        .with_context(|| format!("cannot run the {bench} bench"))?;
    if !output.status.success() {
        bail!(
            "the {bench} bench failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut found = Vec::new();
    for line in String::from_utf8(output.stdout)?.lines() {
        let Ok(case) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let function = case["function_name"].as_str().unwrap_or_default();
        let id = case["id"].as_str().unwrap_or_default();
        let ir = &case["profiles"][0]["data"]["total"]["metrics"]["Ir"]["values"];
        // This run's count: `new` beside an `old` one, or the only number there.
        let count = ir["new"]
            .as_f64()
            .or_else(|| first_number(ir))
            .with_context(|| format!("no instruction count for {function} in {line}"))?;
        found.push((function.to_string(), id.to_string(), count));
    }
    Ok(found)
}

fn first_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Array(a) => a.iter().find_map(first_number),
        Value::Object(o) => o.values().find_map(first_number),
        _ => None,
    }
}

fn ensure_valgrind() -> Result<()> {
    if Command::new("valgrind").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask: valgrind is missing; installing it: apt-get install -y valgrind");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "valgrind"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        bail!(
            "valgrind is needed for instruction counts; install it (e.g. apt-get install valgrind)"
        );
    }
    Ok(())
}

/// `gungraun-runner` must be of the `gungraun` crate's version, as Cargo.lock has it.
fn ensure_runner() -> Result<()> {
    let lock = fs::read_to_string(project_root().join("Cargo.lock"))?;
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"gungraun\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_string())
        .context("gungraun is not in Cargo.lock")?;
    let have = Command::new("gungraun-runner")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if have.split_whitespace().any(|w| w == version) {
        return Ok(());
    }
    eprintln!(
        "xtask: gungraun-runner {version} is missing; installing it (a few minutes): \
         cargo install gungraun-runner --version {version} --locked"
    );
    crate::run(cargo().args([
        "install",
        "gungraun-runner",
        "--version",
        &version,
        "--locked",
    ]))
}
