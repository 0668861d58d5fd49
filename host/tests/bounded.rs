//! What the binary holds and what it does when the system says no: `--lines` never holds
//! unbounded input or results, `--jobs` past the cap never aborts, and standard output
//! failing in the demo is an error (exit 1, one line), not a panic.

mod common;

use std::ffi::OsStr;
use std::fs::File;
use std::num::NonZeroUsize;
use std::process::Stdio;

use common::{guest_path, run_measured_with, temp_file, wasm};
use host::{Error, GuestModule, Limits};

const MIB: i64 = 1 << 20;

/// Prints what a run cost, and checks that it exited 4 (a limit).
fn exited_4(label: &str, usage: &common::Usage, stderr: &str) {
    println!(
        "{label}: exit {}, peak {} MiB: {stderr}",
        usage.code,
        usage.peak_rss / MIB
    );
    assert_eq!(usage.code, 4, "{label}: {stderr}");
}

/// `/dev/zero` has no newline: one line that grows forever. It is refused as soon as it
/// passes the memory cap, naming the line and the cap (before: 4.4 GB after 2 s; with
/// `--max-memory 1MiB`, 1.97 GB before the refusal).
#[test]
fn endless_input_without_a_newline_stops_at_the_memory_cap() {
    let guest = guest_path();
    for (cap, bound) in [("1MiB", 64 * MIB), ("16MiB", 96 * MIB)] {
        let cap_bytes = if cap == "1MiB" { 1 << 20 } else { 16 << 20 };
        let cap_arg = cap_bytes.to_string();
        let args: [&OsStr; 6] = [
            "transform".as_ref(),
            "--lines".as_ref(),
            "--max-memory".as_ref(),
            cap_arg.as_ref(),
            guest.as_os_str(),
            "--jobs=2".as_ref(),
        ];
        let (usage, stderr) = run_measured_with(
            &args,
            File::open("/dev/zero").unwrap().into(),
            Stdio::null(),
        );
        exited_4(cap, &usage, &stderr);
        assert!(
            stderr.contains(&format!(
                "line 1 of standard input is longer than the guest's memory cap of {cap_bytes} bytes"
            )),
            "{stderr}"
        );
        assert!(usage.peak_rss < bound, "{} MiB", usage.peak_rss / MIB);
    }
}

/// More standard input than `--max-input` is refused once it passes it.
#[test]
fn input_past_max_input_is_refused() {
    let input = b"a line of text\n".repeat(100_000);
    let out = common::run_with_stdin(
        &[
            "transform".as_ref(),
            "--lines".as_ref(),
            "--max-input=1000000".as_ref(),
            guest_path().as_os_str(),
        ],
        &input,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("--max-input"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// A guest whose every result is 16 MiB: the results held stop at the batch limit with an
/// error (before: 150 lines held 2.47 GB until the end).
#[test]
fn results_past_the_batch_limit_are_refused() {
    // `load` says 16 MiB at 0 once `transform` ran; the static buffer takes each line.
    let wat = r#"(module
      (memory (export "mem") 257)
      (global $len (mut i32) (i32.const 0))
      (func (export "load") (result i32 i32) i32.const 0 global.get $len)
      (func (export "capacity") (result i32) i32.const 1000)
      (func (export "set_len") (param i32) (result i32) (global.set $len (local.get 0)) i32.const 0)
      (func (export "transform") (result i32) (global.set $len (i32.const 16777216)) global.get $len))"#;
    let path = temp_file("sixteen-mib-results.wasm", &wasm(wat));
    let input = temp_file("150-lines.txt", &b"line\n".repeat(150));
    let args: [&OsStr; 6] = [
        "transform".as_ref(),
        "--lines".as_ref(),
        "--jobs=2".as_ref(),
        "--max-memory=33554432".as_ref(),
        "--max-input=67108864".as_ref(),
        path.as_os_str(),
    ];
    let (usage, stderr) =
        run_measured_with(&args, File::open(&input).unwrap().into(), Stdio::null());
    exited_4("16 MiB results", &usage, &stderr);
    assert!(
        stderr.contains("the results of a batch of lines would hold more than 67108864 bytes"),
        "{stderr}"
    );
    // 64 MiB of results, a result being copied on each thread, two guests' memories.
    assert!(usage.peak_rss < 300 * MIB, "{} MiB", usage.peak_rss / MIB);
}

/// `--jobs` far past the number of lines and past the cap: the threads are capped, the
/// output exact (before: 50 000 jobs on 100 000 lines aborted with SIGABRT).
#[test]
fn jobs_past_the_cap_never_abort() {
    let input: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let expected: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("{i} Wasm is cool!\n").into_bytes())
        .collect();
    for jobs in ["50000", "100000", "18446744073709551615"] {
        let out = common::run_with_stdin(
            &[
                "transform".as_ref(),
                "--lines".as_ref(),
                "--jobs".as_ref(),
                jobs.as_ref(),
                guest_path().as_os_str(),
            ],
            &input,
        );
        assert!(
            out.status.success(),
            "{jobs}: {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == expected, "{jobs}: the output differs");
    }
    // The library: more jobs than lines starts a thread a line at most.
    let module = GuestModule::from_file(guest_path(), &Limits::default()).unwrap();
    let out = module
        .transform_lines(b"a\nb\n", NonZeroUsize::new(usize::MAX).unwrap())
        .unwrap();
    assert_eq!(out, b"a Wasm is cool!\nb Wasm is cool!\n");
    assert_eq!(host::MAX_JOBS, 256);
}

/// The library refuses input past the batch limit before it starts a thread.
#[test]
fn the_library_refuses_input_past_the_batch_limit() {
    let mut limits = Limits::default();
    limits.max_batch_bytes = 10;
    let module = GuestModule::from_file(guest_path(), &limits).unwrap();
    let err = module
        .transform_lines(b"0123456789\n", NonZeroUsize::MIN)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BatchTooLarge {
                what: "input",
                limit: 10
            }
        ),
        "{err:?}"
    );
}

/// The demo with standard output on a full disk or a closed pipe: exit 1, one line, no
/// panic (before: exit 101 and a backtrace).
#[test]
fn the_demo_on_a_full_disk_or_a_closed_pipe_exits_1() {
    let guest = guest_path();
    let full = File::options().write(true).open("/dev/full").unwrap();
    let (usage, stderr) = run_measured_with(&[guest.as_os_str()], Stdio::null(), full.into());
    assert_eq!(usage.code, 1, "{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        ["error: cannot write standard output: No space left on device (os error 28)"]
    );
    // A pipe whose reader is gone.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let (usage, stderr) = run_measured_with(&[guest.as_os_str()], Stdio::null(), writer.into());
    assert_eq!(usage.code, 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write standard output: Broken pipe")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}
