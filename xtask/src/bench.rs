//! `cargo xtask bench`: run the host's criterion benchmarks and summarise them as
//! `target/bench/summary.json` and a table of medians with the ratios that matter.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{build_guest, callgrind, cargo};

const SIZES: [&str; 3] = ["13B", "1KiB", "60KiB"];
const WAYS: [&str; 4] = ["library", "wasmer_safe", "per_element", "memcpy"];
/// The cases besides the copies, as criterion names them.
const OTHER_CASES: [&str; 25] = [
    "load/library",
    "load/library_unmetered",
    "load/raw",
    "load/raw_metered",
    "roundtrip/1KiB/library",
    "roundtrip/1KiB/raw",
    "roundtrip/1KiB/memcpy",
    "roundtrip/1MiB/library",
    "roundtrip/1MiB/raw",
    "roundtrip/1MiB/memcpy",
    "roundtrip/8MiB/library",
    "roundtrip/8MiB/raw",
    "roundtrip/8MiB/memcpy",
    "roundtrip/8MiB/fresh",
    "startup/compile_instantiate",
    "startup/demo_process/cold",
    "startup/demo_process/warm",
    "startup/large_module/compile",
    "startup/large_module/warm",
    "transform_process/10MiB",
    "throughput/lines/1threads",
    "throughput/lines/Nthreads",
    "throughput/lines/native",
    "throughput/spin/1threads",
    "throughput/spin/Nthreads",
];

/// The large module of `startup/large_module/*`, in MB of code (the issue asks for 10 MB or
/// more).
const LARGE_MODULE_MB: &str = "10";

/// Rounds of the interleaved scaling measurement.
const SCALING_ROUNDS: &str = "15";

/// Every case the summary reports, in order.
fn case_names() -> Vec<String> {
    let mut names = Vec::new();
    for op in ["read", "write"] {
        for size in SIZES {
            for way in WAYS {
                names.push(format!("{op}/{size}/{way}"));
            }
        }
    }
    names.extend(OTHER_CASES.map(String::from));
    names
}

use crate::build_guest::target_dir;

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("canonical") => return canonical(),
        Some("stream") => return stream(),
        _ => {}
    }
    build_guest::run_all()?;
    let criterion = target_dir().join("criterion");
    // Results of an earlier run must not pass for this run's.
    if criterion.exists() {
        fs::remove_dir_all(&criterion)
            .with_context(|| format!("cannot clear {}", criterion.display()))?;
    }
    crate::run(
        cargo()
            .args(["bench", "--package", "host", "--bench", "transfer", "--"])
            .args(args),
    )?;

    let mut medians = collect(&criterion)?;
    // Compiling a large module takes seconds, too long for criterion's ten samples: the
    // `warm_start` example times it once, and the warm loads seven times.
    if args.is_empty()
        || args
            .iter()
            .any(|a| "startup/large_module".contains(a.as_str()))
    {
        let json = run_example("warm_start", LARGE_MODULE_MB)?;
        let found: Value = serde_json::from_slice(&fs::read(&json)?)?;
        for case in ["startup/large_module/compile", "startup/large_module/warm"] {
            let ns = found[case]
                .as_f64()
                .with_context(|| format!("{case} in {}", json.display()))?;
            medians.insert(case.to_string(), ns);
        }
    }
    // The scaling target on this shared machine: criterion's ten samples on one thread,
    // then ten on all, can land in different phases of the machine's drift; the `scaling`
    // example alternates them round after round.
    let scaling = if args.is_empty() || args.iter().any(|a| "throughput/lines".contains(a.as_str()))
    {
        let json = run_example("scaling", SCALING_ROUNDS)?;
        serde_json::from_slice::<Value>(&fs::read(&json)?)?
    } else {
        Value::Null
    };
    // Fixed costs as instruction counts too: the same from run to run, where a median of
    // 20 ns moves by 15%.
    let instructions = if args.is_empty() || args.iter().any(|a| a == "instructions") {
        callgrind::instructions()?
    } else {
        BTreeMap::new()
    };
    let mut cases = Vec::new();
    let mut missing = Vec::new();
    for name in case_names() {
        let (median, count) = (medians.get(&name), instructions.get(&name));
        if median.is_none() {
            missing.push(name.clone());
        }
        if median.is_none() && count.is_none() {
            continue;
        }
        let mut case = json!({ "name": name });
        if let Some(ns) = median {
            case["median_ns"] = json!(ns);
        }
        if let Some(count) = count {
            case["instructions"] = json!(count);
        }
        cases.push(case);
    }
    let machine = machine();
    let summary = json!({ "machine": machine, "cases": cases, "interleaved_scaling": scaling });
    let out = target_dir().join("bench").join("summary.json");
    fs::create_dir_all(out.parent().expect("has a parent"))?;
    fs::write(&out, serde_json::to_string_pretty(&summary)? + "\n")?;

    let table = table(&medians, &instructions, &scaling, &machine);
    let table_path = out.with_file_name("table.md");
    fs::write(&table_path, &table)?;
    println!("{table}");
    println!("wrote {} and {}", out.display(), table_path.display());
    if !missing.is_empty() && args.is_empty() {
        bail!("criterion reported no result for {missing:?}");
    }
    Ok(())
}

/// `full_id -> median in ns` for every benchmark criterion saved under `dir`.
fn collect(dir: &Path) -> Result<BTreeMap<String, f64>> {
    let mut medians = BTreeMap::new();
    // A filter that matches no criterion case leaves no directory: no medians.
    if !dir.exists() {
        return Ok(medians);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    let read = |f: &str| -> Result<Value> {
                        let p = path.join(f);
                        Ok(serde_json::from_slice(
                            &fs::read(&p).with_context(|| p.display().to_string())?,
                        )?)
                    };
                    let id = read("benchmark.json")?["full_id"]
                        .as_str()
                        .context("no full_id")?
                        .to_string();
                    let median = read("estimates.json")?["median"]["point_estimate"]
                        .as_f64()
                        .context("no median")?;
                    medians.insert(id, median);
                } else {
                    stack.push(path);
                }
            }
        }
    }
    Ok(medians)
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!(
        "{cpu}, {cores} cores, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// A ratio as the table writes it.
fn times(x: f64) -> String {
    format!("{x:.2} x")
}

/// What the table writes where a figure is missing.
fn no_figure() -> String {
    "-".to_string()
}

fn show_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// The medians as a markdown table, with the ratios and the targets of BENCHMARKS.md.
fn table(
    m: &BTreeMap<String, f64>,
    instructions: &BTreeMap<String, f64>,
    rounds: &Value,
    machine: &str,
) -> String {
    let get = |k: &str| m.get(k).copied();
    let count = |k: &str| instructions.get(k).copied();
    // `a / b` as medians and, where callgrind measured both, as instruction counts.
    let both = |a: &str, b: &str| {
        let median = get(a).zip(get(b)).map(|(a, b)| a / b);
        let instr = count(a).zip(count(b)).map(|(a, b)| a / b);
        let text = match (median, instr) {
            (Some(m), Some(i)) => format!("{m:.2} x ({i:.2} x in instructions)"),
            (Some(m), None) => format!("{m:.2} x"),
            (None, Some(i)) => format!("{i:.2} x in instructions"),
            (None, None) => "-".to_string(),
        };
        (median, instr, text)
    };
    let cell = |k: &str| get(k).map_or("-".to_string(), show_ns);
    let ratio = |a: &str, b: &str| match (get(a), get(b)) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "-".to_string(),
    };
    let mut t = String::new();
    let _ = writeln!(t, "Machine: {machine}\n");
    let _ = writeln!(
        t,
        "| case | library | wasmer_safe | per_element | memcpy | library/memcpy | library/wasmer_safe |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|");
    for op in ["read", "write"] {
        for size in SIZES {
            let k = |way: &str| format!("{op}/{size}/{way}");
            let _ = writeln!(
                t,
                "| {op}/{size} | {} | {} | {} | {} | {} | {} |",
                cell(&k("library")),
                cell(&k("wasmer_safe")),
                cell(&k("per_element")),
                cell(&k("memcpy")),
                ratio(&k("library"), &k("memcpy")),
                ratio(&k("library"), &k("wasmer_safe")),
            );
        }
    }
    let _ = writeln!(t, "\n| case | median | instructions |\n|---|---:|---:|");
    for k in OTHER_CASES {
        let _ = writeln!(
            t,
            "| {k} | {} | {} |",
            cell(k),
            count(k).map_or("-".to_string(), |c| format!("{c:.0}"))
        );
    }
    if !instructions.is_empty() {
        let _ = writeln!(t, "\n| copy of 13 B | instructions |\n|---|---:|");
        for k in [
            "read/13B/library",
            "read/13B/memcpy",
            "write/13B/library",
            "write/13B/memcpy",
        ] {
            let _ = writeln!(
                t,
                "| {k} | {} |",
                count(k).map_or("-".to_string(), |c| format!("{c:.0}"))
            );
        }
    }

    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    };
    let throughput = |op: &str| {
        let (lib, memcpy) = (
            get(&format!("{op}/60KiB/library")),
            get(&format!("{op}/60KiB/memcpy")),
        );
        lib.zip(memcpy).map(|(l, c)| c / l)
    };
    let _ = writeln!(t, "\n| target | measured | verdict |\n|---|---:|---|");
    for op in ["write", "read"] {
        let x = throughput(op);
        let _ = writeln!(
            t,
            "| {op} 60 KiB: library throughput >= 0.8 x memcpy | {} | {} |",
            x.map_or_else(no_figure, times),
            verdict(x.map(|x| x >= 0.8))
        );
    }
    // Met when both measures meet it (or the one there is).
    let within = |(median, instr, text): (Option<f64>, Option<f64>, String), limit: f64| {
        let ok = match (median, instr) {
            (None, None) => None,
            _ => Some(median.is_none_or(|m| m <= limit) && instr.is_none_or(|i| i <= limit)),
        };
        (text, verdict(ok))
    };
    for op in ["read", "write"] {
        let (text, met) = within(
            both(&format!("{op}/13B/library"), &format!("{op}/13B/memcpy")),
            2.0,
        );
        let _ = writeln!(
            t,
            "| {op} 13 B: library within 2 x memcpy | {text} | {met} |"
        );
    }
    for (library, label) in [
        (
            "load/library",
            "load: library (metered, the default) within 1.10 x a raw typed call",
        ),
        (
            "load/library_unmetered",
            "load: library without fuel (`fuel: None`) within 1.10 x a raw call",
        ),
    ] {
        let (text, met) = within(both(library, "load/raw"), 1.10);
        let _ = writeln!(t, "| {label} | {text} | {met} |");
    }
    let (text, met) = within(both("roundtrip/1KiB/library", "roundtrip/1KiB/raw"), 1.3);
    let _ = writeln!(
        t,
        "| round trip of 1 KiB: library within 1.3 x the same steps on raw wasmer | {text} | {met} |"
    );
    let rt = get("roundtrip/1KiB/library");
    let _ = writeln!(
        t,
        "| round trip of 1 KiB < 1 µs | {} | {} |",
        cell("roundtrip/1KiB/library"),
        verdict(rt.map(|ns| ns < 1e3))
    );
    let big = get("roundtrip/8MiB/library")
        .zip(get("roundtrip/8MiB/memcpy"))
        .map(|(l, c)| l / c);
    let _ = writeln!(
        t,
        "| round trip of 8 MiB, reused instance, within 3 x one memcpy of 8 MiB | {} | {} |",
        big.map_or_else(no_figure, times),
        verdict(big.map(|x| x <= 3.0))
    );
    for size in ["1KiB", "1MiB", "8MiB"] {
        let _ = writeln!(
            t,
            "| round trip of {size}: library / raw wasmer (safe API), library / memcpy | {} , {} | (reported) |",
            ratio(
                &format!("roundtrip/{size}/library"),
                &format!("roundtrip/{size}/raw")
            ),
            ratio(
                &format!("roundtrip/{size}/library"),
                &format!("roundtrip/{size}/memcpy")
            ),
        );
    }
    // A row of a target that a ratio must reach.
    let at_least = |t: &mut String, label: &str, x: Option<f64>, floor: f64| {
        let _ = writeln!(
            t,
            "| {label} | {} | {} |",
            x.map_or_else(no_figure, times),
            verdict(x.map(|x| x >= floor))
        );
    };
    let scaling = get("throughput/lines/1threads")
        .zip(get("throughput/lines/Nthreads"))
        .map(|(one, all)| one / all);
    at_least(
        &mut t,
        "100 000 lines: all threads at least 1.8 x one thread (2 cores)",
        scaling,
        1.8,
    );
    let _ = writeln!(
        t,
        "| the machine's own scaling: register-only work on all threads / one thread | {} | (the ceiling) |",
        ratio("throughput/spin/1threads", "throughput/spin/Nthreads"),
    );
    let interleaved = |one: &str, all: &str| {
        rounds[one]
            .as_f64()
            .zip(rounds[all].as_f64())
            .map(|(one, all)| one / all)
    };
    let rounds = rounds["rounds"].as_u64().unwrap_or(0);
    at_least(
        &mut t,
        &format!(
            "100 000 lines, {rounds} interleaved rounds (medians): all threads at least 1.8 x one thread"
        ),
        interleaved("lines_1", "lines_n"),
        1.8,
    );
    let _ = writeln!(
        t,
        "| register-only work, {rounds} interleaved rounds: all threads / one thread | {} | (the ceiling) |",
        interleaved("spin_1", "spin_n").map_or_else(no_figure, times),
    );
    let _ = writeln!(
        t,
        "| 100 000 lines: all threads / native loop | {} | (reported) |",
        ratio("throughput/lines/Nthreads", "throughput/lines/native"),
    );
    let demo = get("startup/demo_process/cold");
    let _ = writeln!(
        t,
        "| demo process, compiled (`--no-cache`) < 30 ms | {} | {} |",
        cell("startup/demo_process/cold"),
        verdict(demo.map(|ns| ns < 30e6))
    );
    let warm = get("startup/demo_process/warm")
        .zip(demo)
        .map(|(w, c)| w / c);
    let _ = writeln!(
        t,
        "| demo process from a warm cache at most 0.7 x compiled | {} | {} |",
        warm.map_or_else(no_figure, times),
        verdict(warm.map(|x| x <= 0.7))
    );
    let large = get("startup/large_module/warm")
        .zip(get("startup/large_module/compile"))
        .map(|(w, c)| w / c);
    let _ = writeln!(
        t,
        "| {LARGE_MODULE_MB} MB module from a warm cache under 5% of its compile | {} | {} |",
        large.map_or("-".to_string(), |x| format!("{:.2}%", x * 100.0)),
        verdict(large.map(|x| x < 0.05))
    );
    t
}

/// The canonical ABI's cases, in the order of the table.
const CANONICAL_CASES: [&str; 14] = [
    "canonical/transform/1KiB/library",
    "canonical/transform/1KiB/raw",
    "canonical/transform/1KiB/wasmtime",
    "canonical/transform/1MiB/library",
    "canonical/transform/1MiB/raw",
    "canonical/transform/1MiB/wasmtime",
    "throughput/lines/canonical/1threads",
    "throughput/lines/canonical/Nthreads",
    "throughput/lines/canonical/guide_1threads",
    "throughput/lines/batch/1threads",
    "throughput/lines/batch/Nthreads",
    "throughput/lines/chunk/1threads",
    "throughput/lines/chunk/Nthreads",
    "throughput/lines/native",
];

/// `cargo xtask bench canonical`: a wit-bindgen guest's `transform` through the library's
/// typed API, the same steps on raw wasmer, and wasmtime's Component Model, in one run; and
/// `--lines` through the canonical path against the guide's 4-call path. Writes
/// `target/bench/canonical.md`.
fn canonical() -> Result<()> {
    build_guest::run_all()?;
    let criterion = target_dir().join("criterion");
    if criterion.exists() {
        fs::remove_dir_all(&criterion)?;
    }
    crate::run(cargo().args(["bench", "--package", "host", "--bench", "canonical"]))?;
    let medians = collect(&criterion)?;
    let get = |case: &str| {
        medians
            .get(case)
            .copied()
            .with_context(|| format!("criterion reported no result for {case}"))
    };
    let mut table = String::from("| case | median | ratio |\n|---|---|---|\n");
    for case in CANONICAL_CASES {
        let ns = get(case)?;
        let ratio = match case.rsplit_once('/') {
            Some((group, "library")) => format!(
                "{} raw, {} wasmtime",
                times(ns / get(&format!("{group}/raw"))?),
                times(ns / get(&format!("{group}/wasmtime"))?)
            ),
            Some(("throughput/lines/canonical", "1threads")) => format!(
                "{} the guide's path",
                times(ns / get("throughput/lines/canonical/guide_1threads")?)
            ),
            // The targets: a batch at most 0.5x one call a line; a chunk within 1.5x the
            // native loop.
            Some(("throughput/lines/batch", "1threads")) => format!(
                "{} one call a line (target ≤ 0.5x)",
                times(ns / get("throughput/lines/canonical/1threads")?)
            ),
            Some(("throughput/lines/chunk", "1threads")) => format!(
                "{} the native loop (target ≤ 1.5x)",
                times(ns / get("throughput/lines/native")?)
            ),
            Some((group, "Nthreads")) => format!(
                "{} one thread",
                times(get(&format!("{group}/1threads"))? / ns)
            ),
            _ => String::new(),
        };
        let _ = writeln!(table, "| `{case}` | {} | {ratio} |", show_ns(ns));
    }
    // Where a line's time goes: instructions per line of each mode, the same from run to
    // run.
    let per_line = callgrind::line_modes()?;
    let _ = writeln!(
        table,
        "\n| instructions per line (callgrind, 1000 lines) | count | ratio to native |\n|---|---|---|"
    );
    for mode in callgrind::LINE_MODES {
        let count = per_line[mode];
        let _ = writeln!(
            table,
            "| `instructions/lines/{mode}` | {count:.0} | {} |",
            times(count / per_line["native"])
        );
    }
    let out = target_dir().join("bench").join("canonical.md");
    fs::create_dir_all(out.parent().expect("has a parent"))?;
    fs::write(&out, &table)?;
    println!("{table}");
    println!("wrote {}", out.display());
    Ok(())
}

/// `cargo xtask bench stream`: 1 GiB of lines through the release binary on one thread and
/// on every core, and through `cat`, interleaved; the peak RSS; one Spark partition's
/// process (the `stream` example). Writes `target/bench/stream.json`.
fn stream() -> Result<()> {
    build_guest::run_all()?;
    crate::run(cargo().args([
        "build",
        "--release",
        "--package",
        "host",
        "--bin",
        "memhost",
    ]))?;
    run_example("stream", "3").map(|_| ())
}

/// Runs the release example `name` with `arg` and a JSON file to write its figures to,
/// `target/bench/NAME.json`; returns that file's path.
fn run_example(name: &str, arg: &str) -> Result<std::path::PathBuf> {
    let json = target_dir().join("bench").join(format!("{name}.json"));
    fs::create_dir_all(json.parent().expect("has a parent"))?;
    crate::run(
        cargo()
            .args([
                "run",
                "--release",
                "--package",
                "host",
                "--example",
                name,
                "--",
            ])
            .args([arg.as_ref(), json.as_os_str()]),
    )?;
    Ok(json)
}
