//! What the binary holds and what it does when the system says no: `--lines` streams any
//! input in bounded memory, its results in order as they come, `--jobs` past the cap never aborts, and standard output
//! failing in the demo is an error (exit 1, one line), not a panic.

use crate::common;

use std::ffi::OsStr;
use std::fs::File;
use std::num::NonZeroUsize;
use std::process::Stdio;

use common::{guest_path, run_measured_with, temp_file, wasm};
use memhost::{Error, GuestModule, Limits};

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

/// A guide-ABI guest whose string is at 0, in a static buffer of `capacity` bytes in a
/// memory of `pages`: `set_len` adopts what the host wrote, `load` reports it, and
/// `transform` runs `body` (which leaves the new length on the stack).
fn buffer_guest(pages: u32, capacity: u32, body: &str) -> Vec<u8> {
    wasm(&format!(
        r#"(module
      (memory (export "mem") {pages})
      (global $len (mut i32) (i32.const 0))
      (func (export "load") (result i32 i32) i32.const 0 global.get $len)
      (func (export "capacity") (result i32) i32.const {capacity})
      (func (export "set_len") (param i32) (result i32) (global.set $len (local.get 0)) i32.const 0)
      (func (export "transform") (result i32) {body}))"#
    ))
}

/// A guest whose every result is 16 MiB: the results go out as they come, and the memory
/// held stays a few results' worth (before streaming: 150 lines held 2.47 GB until the
/// end).
#[test]
fn results_of_any_size_stream_through() {
    // `load` says 16 MiB at 0 once `transform` ran; the static buffer takes each line.
    let path = temp_file(
        "sixteen-mib-results.wasm",
        &buffer_guest(
            257,
            1000,
            "(global.set $len (i32.const 16777216)) global.get $len",
        ),
    );
    let input = temp_file("150-lines.txt", &b"line\n".repeat(150));
    let args: [&OsStr; 5] = [
        "transform".as_ref(),
        "--lines".as_ref(),
        "--jobs=2".as_ref(),
        "--max-memory=33554432".as_ref(),
        path.as_os_str(),
    ];
    let (usage, stderr) =
        run_measured_with(&args, File::open(&input).unwrap().into(), Stdio::null());
    println!(
        "16 MiB results: exit {}, peak {} MiB",
        usage.code,
        usage.peak_rss / MIB
    );
    assert_eq!(usage.code, 0, "{stderr}");
    // A result being made, one waiting, one being written, and the guest's memory.
    assert!(usage.peak_rss < 200 * MIB, "{} MiB", usage.peak_rss / MIB);
}

/// 1.5 GiB of lines, generated on the fly, streams through with the host's
/// peak memory under 128 MiB, and comes back exact (checked as it comes, against the
/// lines regenerated). Before streaming, 1.5 GiB in took 4.37 GiB at peak.
#[test]
fn a_gigabyte_streams_through_in_bounded_memory() {
    use std::io::{Read as _, Write as _};
    const LINE: usize = 64 << 10;
    const LINES: usize = 24_576; // 1.5 GiB of input
    let line = |i: usize| {
        let mut l = vec![b'a' + u8::try_from(i % 26).unwrap(); LINE];
        l[..8].copy_from_slice(format!("{:08}", i % 100_000_000).as_bytes());
        l
    };
    let mut child = common::spawn_piped(
        common::memhost()
            .args([
                "transform",
                "--lines",
                "--jobs=2",
                "--no-cache",
                "--peak-memory",
            ])
            .arg(guest_path()),
    );
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..LINES {
            stdin.write_all(&line(i)).unwrap();
            stdin.write_all(b"\n").unwrap();
        }
    });
    let mut stdout = std::io::BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let suffix = abi::SUFFIX;
    let mut got = vec![0; LINE + suffix.len() + 1];
    for i in 0..LINES {
        stdout.read_exact(&mut got).unwrap();
        let mut want = line(i);
        want.extend_from_slice(suffix);
        want.push(b'\n');
        assert!(got == want, "line {} differs", i + 1);
    }
    assert_eq!(
        stdout.read(&mut [0; 1]).unwrap(),
        0,
        "output past the last line"
    );
    feeder.join().unwrap();
    let (usage, _) = common::reap_piped(child);
    assert_eq!(usage.code, 0);
    let peak = usage.peak_rss;
    println!(
        "{} MiB of lines through, peak {} MiB",
        (LINE * LINES) >> 20,
        peak / MIB
    );
    assert!(peak < 128 * MIB, "peak {} MiB", peak / MIB);
}

/// A line failing past the first results: those before it are written, complete, and
/// nothing after; the error names the line; nothing hangs.
#[test]
fn a_failing_line_stops_after_the_lines_before_it() {
    // `transform` traps on a line that starts with "x".
    let path = temp_file(
        "trap-on-x.wasm",
        &buffer_guest(
            1,
            60000,
            "(if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 120)) (then unreachable))
             global.get $len",
        ),
    );
    let mut input = Vec::new();
    for i in 0..100_000 {
        input.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    let tail = b"x marks the spot\nafter\n";
    input.extend_from_slice(tail);
    let out = common::run_with_stdin(
        &[
            "transform".as_ref(),
            "--lines".as_ref(),
            "--jobs=2".as_ref(),
            "--no-cache".as_ref(),
            path.as_os_str(),
        ],
        &input,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.starts_with("error: line 100001: guest `transform` trapped"),
        "{stderr}"
    );
    assert!(
        out.stdout == input[..input.len() - tail.len()],
        "the results before it differ"
    );
}

/// The first results come out while the input is still open: lines flow through.
#[test]
fn results_come_out_before_the_input_ends() {
    use std::io::{BufRead as _, Write as _};
    let mut child = common::memhost()
        .args(["transform", "--lines", "--no-cache"])
        .arg(guest_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        tx.send(line).unwrap();
    });
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("no result while the input is open");
    assert_eq!(first, "first Wasm is cool!\n");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// `--jobs` far past the number of lines and past the cap (before: 50 000 jobs on 100 000
/// lines aborted with SIGABRT; then 256 threads peaked at 4.3 GiB).
#[test]
fn jobs_past_what_fits_are_refused_never_abort() {
    // Each job holds an instance of up to the memory cap, and the run's whole memory is
    // bounded (--max-host-memory, 2 GiB by default): far more jobs than fit are refused in
    // one line, before anything is read, whatever the number.
    for jobs in ["50000", "100000", "18446744073709551615"] {
        let out = common::run_with_stdin(
            &[
                "transform".as_ref(),
                "--lines".as_ref(),
                "--jobs".as_ref(),
                jobs.as_ref(),
                guest_path().as_os_str(),
            ],
            b"1\n",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{jobs}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {jobs} jobs need up to "))
                && stderr.contains("at most 35 fit"),
            "{jobs}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    // The library: the same, and as many as fit go.
    let module = GuestModule::from_file(guest_path(), &Limits::default()).unwrap();
    let err = module
        .transform_lines(b"a\nb\n", NonZeroUsize::new(usize::MAX).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::HostMemory { fit: 35, .. }), "{err}");
    let out = module
        .transform_lines(b"a\nb\n", NonZeroUsize::new(35).unwrap())
        .unwrap();
    assert_eq!(out, b"a Wasm is cool!\nb Wasm is cool!\n");
    assert_eq!(memhost::MAX_JOBS, 256);
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

/// Standard input or output failing under `--lines` is exit 1 and one line, not a hang or
/// a panic: a directory for input, a full disk for output.
#[test]
fn lines_input_or_output_failing_is_exit_1() {
    let run = |stdin: Stdio, stdout: Stdio| {
        common::memhost()
            .args(["transform", "--lines", "--no-cache"])
            .arg(guest_path())
            .stdin(stdin)
            .stdout(stdout)
            .output()
            .unwrap()
    };
    let out = run(File::open("/tmp").unwrap().into(), Stdio::null());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: cannot read the input: Is a directory (os error 21)\n"
    );
    let input = temp_file("ten-lines.txt", &b"line\n".repeat(10));
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = run(File::open(&input).unwrap().into(), full.into());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: cannot write the results: No space left on device (os error 28)\n"
    );
}
