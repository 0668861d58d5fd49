//! A stream that stops when it must: a failing line or a closed standard output ends
//! `memhost transform --lines` at once while standard input stays open and silent; SIGINT
//! and SIGTERM leave a prefix of whole results and exit 130; the run's host memory has one
//! bound, which --max-host-memory lowers and which a run that cannot fit says before it
//! reads anything.

use crate::common;

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{canonical_wasm, guest_path, memhost, temp_file};

/// Waits for `child` to exit on its own, up to a minute (a run that waited for its input
/// to end would wait for ever here: the input stays open); its exit code.
fn exits_without_its_input_ending(child: &mut Child, what: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running with its input open");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `memhost` with `args`, its standard streams piped, and SIGINT and SIGTERM at
/// their defaults: `memhost` keeps a signal it was started ignoring ignored (as a
/// background job of a script is started), so a test run from such a job would otherwise
/// signal a process that cannot hear it.
fn spawn(args: &[&std::ffi::OsStr]) -> Child {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = memhost();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: runs in the child between fork and exec, and calls only `signal`, which is
    // async-signal-safe; it touches no memory of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

/// What `child` wrote to standard error.
fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

fn canonical() -> PathBuf {
    temp_file("stops.wasm", &canonical_wasm("target/guest/canonical.wasm"))
}

#[test]
fn a_failing_line_ends_the_run_while_the_input_stays_open() {
    let module = canonical();
    for (mode, export) in [
        ("--lines", "transform"),
        ("--lines", "transform-lines"),
        ("--chunks", "transform-chunk"),
    ] {
        let mut child = spawn(&[
            "transform".as_ref(),
            mode.as_ref(),
            "--export".as_ref(),
            export.as_ref(),
            "--no-cache".as_ref(),
            module.as_ref(),
        ]);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ok\n\xff\n").unwrap();
        stdin.flush().unwrap();
        let code = exits_without_its_input_ending(&mut child, export);
        drop(stdin);
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let err = stderr_of(&mut child);
        assert_eq!(code, 4, "{export}: {err}");
        assert_eq!(out, "ok Wasm is cool!\n", "{export}");
        assert!(err.starts_with("error: line 2: "), "{export}: {err}");
    }
}

#[test]
fn a_closed_output_ends_the_run_while_the_input_stays_open() {
    let mut child = spawn(&[
        "transform".as_ref(),
        "--lines".as_ref(),
        "--no-cache".as_ref(),
        guest_path().as_os_str(),
    ]);
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a\n").unwrap();
    stdin.flush().unwrap();
    let code = exits_without_its_input_ending(&mut child, "closed output");
    drop(stdin);
    assert_eq!(code, 1);
}

/// Sends `signal` to a run fed lines for as long as it reads them, once it has written
/// some results: it exits 130, and what it wrote is whole results of the first lines.
fn stopped_by(signal: libc::c_int, mode: &str, export: &str) {
    let mut child = spawn(&[
        "transform".as_ref(),
        mode.as_ref(),
        "--export".as_ref(),
        export.as_ref(),
        "--jobs".as_ref(),
        "2".as_ref(),
        "--no-cache".as_ref(),
        canonical().as_os_str(),
    ]);
    let mut stdin = child.stdin.take().unwrap();
    // At most 10^7 lines (about 90 MB): the run is stopped long before.
    let feeder = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..10_000_000u64 {
            buf.extend_from_slice(format!("{i:08}\n").as_bytes());
            if buf.len() >= 64 << 10 {
                if stdin.write_all(&buf).is_err() {
                    return;
                }
                buf.clear();
            }
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut out = vec![0u8; 200_000];
    stdout.read_exact(&mut out).unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: `pid` is our own child, still running (its output is not closed).
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    stdout.read_to_end(&mut out).unwrap();
    let code = exits_without_its_input_ending(&mut child, "signalled");
    let err = stderr_of(&mut child);
    assert_eq!(code, 130, "{export}: {err}");
    assert!(err.starts_with("error: stopped after "), "{err}");
    assert!(
        out.ends_with(b"\n"),
        "{export}: the output ends inside a result"
    );
    for (i, line) in out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        assert_eq!(
            line,
            format!("{i:08} Wasm is cool!").as_bytes(),
            "{export}: result {i}"
        );
    }
    drop(stdout);
    feeder.join().unwrap();
}

#[test]
fn sigint_and_sigterm_leave_whole_results() {
    stopped_by(libc::SIGTERM, "--lines", "transform");
    stopped_by(libc::SIGINT, "--lines", "transform-lines");
    stopped_by(libc::SIGTERM, "--chunks", "transform-chunk");
}

#[test]
fn jobs_that_cannot_fit_are_refused_before_anything_is_read() {
    for (args, fit) in [
        (&["--jobs", "256"][..], "at most 35 fit"),
        (&["--max-host-memory", "64MiB"], "at most 0 fit"),
        (
            &["--jobs", "5", "--max-host-memory", "300MiB"],
            "at most 4 fit",
        ),
    ] {
        let guest = guest_path();
        let mut all: Vec<&std::ffi::OsStr> = vec![
            "transform".as_ref(),
            "--lines".as_ref(),
            "--no-cache".as_ref(),
        ];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        all.push(guest.as_os_str());
        let mut child = spawn(&all);
        // Standard input stays open and empty: the refusal must not wait for it.
        let stdin = child.stdin.take().unwrap();
        let code = exits_without_its_input_ending(&mut child, "refused");
        drop(stdin);
        let err = stderr_of(&mut child);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(fit), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // The library says the same.
    let module =
        memhost::GuestModule::from_file(guest_path(), &memhost::Limits::default()).unwrap();
    assert_eq!(module.stream_jobs(), 35);
    let err = module
        .transform_lines(b"a\n", std::num::NonZeroUsize::new(36).unwrap())
        .unwrap_err();
    assert!(
        matches!(
            err,
            memhost::Error::HostMemory {
                jobs: 36,
                fit: 35,
                ..
            }
        ),
        "{err}"
    );
}

/// The figures of `--stats`: the peak memory, the bound, and the memory at start, in MiB.
fn peak_bound_start(stderr: &str) -> (f64, f64, f64) {
    let tail = stderr
        .split("peak memory ")
        .nth(1)
        .unwrap_or_else(|| panic!("no figures in {stderr}"));
    let numbers: Vec<f64> = tail
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn a_run_stays_within_its_memory_bound() {
    // Lines of 1 to 3 MiB: the guest grows toward its 16 MiB cap, results and chunks are
    // long, on 2 and 4 workers, through the guide's ABI and the canonical one.
    let mut input = Vec::new();
    for i in 0..24usize {
        input.extend(std::iter::repeat_n(
            b'a' + u8::try_from(i % 26).unwrap(),
            (1 + i % 3) << 20,
        ));
        input.push(b'\n');
    }
    let canonical = canonical();
    for (module, jobs) in [
        (guest_path(), "2"),
        (canonical.clone(), "2"),
        (canonical, "4"),
    ] {
        let out = common::run_with_stdin(
            &[
                "transform".as_ref(),
                "--lines".as_ref(),
                "--stats".as_ref(),
                "--jobs".as_ref(),
                jobs.as_ref(),
                "--no-cache".as_ref(),
                module.as_os_str(),
            ],
            &input,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(out.stdout.len(), input.len() + 24 * 14);
        let (peak, bound, start) = peak_bound_start(&err);
        assert!(
            peak - start <= bound,
            "{jobs} jobs: peak {peak} MiB, {start} MiB at start, bound {bound} MiB"
        );
        eprintln!(
            "{}: {jobs} jobs, peak {peak} MiB - {start} MiB at start <= {bound} MiB",
            module.display()
        );
    }
}
