//! `memhost transform [MODULE] < input > output`, as a script calls it: the result and nothing
//! else on standard output, byte for byte; errors on standard error, with the exit codes.

use crate::common;

use std::fs::File;
use std::path::Path;
use std::process::Output;

use common::{guest_path, temp_file, wasm};

const SUFFIX: &[u8] = b" Wasm is cool!";

/// Bytes that are not text: every value, in no simple order.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect()
}

/// `memhost transform ARGS` with standard input from `file`.
fn from_file(file: &Path, args: &[&str]) -> Output {
    assert!(guest_path().exists(), "run `cargo xtask build-guest` first");
    common::memhost()
        .arg("transform")
        .args(args)
        .stdin(File::open(file).unwrap())
        .output()
        .unwrap()
}

/// `memhost transform ARGS` with `input` written into a pipe.
fn from_pipe(input: &[u8], args: &[&str]) -> Output {
    let args: Vec<_> = std::iter::once("transform")
        .chain(args.iter().copied())
        .map(std::ffi::OsStr::new)
        .collect();
    common::run_with_stdin(&args, input)
}

fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout after an error");
    stderr.trim_end().to_string()
}

#[test]
fn a_10_mib_file_comes_back_byte_for_byte_with_the_suffix() {
    let input = data(10 << 20);
    let path = temp_file("transform-10MiB.bin", &input);
    let out = from_file(&path, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    assert_eq!(out.stdout.len(), input.len() + SUFFIX.len());
    assert!(
        out.stdout[..input.len()] == input[..],
        "the input, unchanged"
    );
    assert!(out.stdout.ends_with(SUFFIX));
}

#[test]
fn a_pipe_and_an_empty_input_work_too() {
    let input = data(3 << 20);
    let out = from_pipe(&input, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, [&input[..], SUFFIX].concat());
    let out = from_pipe(b"", &[]);
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), SUFFIX)
    );
}

#[test]
fn past_the_memory_cap_the_error_names_the_cap_and_the_flag() {
    // A file over the cap: refused from its size, before reading.
    let path = temp_file("transform-17MiB.bin", b"");
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    let out = from_file(&path, &[]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        error_line(&out),
        "error: standard input (17825792 bytes) is larger than the guest's memory cap of 16777216 bytes (raise it with --max-memory)"
    );
    // A pipe over the cap: read up to the cap, then refused.
    let out = from_pipe(&data(300_000), &["--max-memory", "262144"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        error_line(&out),
        "error: standard input is larger than the guest's memory cap of 262144 bytes (raise it with --max-memory)"
    );
    // At the cap exactly: the guest's own data takes room too, so its allocator says no.
    let out = from_pipe(&data(262_144), &["--max-memory", "262144"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        error_line(&out),
        "error: putting standard input into the guest, whose memory is capped at 262144 bytes (raise it with --max-memory): guest `cabi_realloc` could not allocate 262144 bytes (it returned 0)"
    );
    // Raised, it goes through.
    let out = from_pipe(&data(262_144), &["--max-memory", "393216"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.len(), 262_144 + SUFFIX.len());
}

#[test]
fn a_guest_with_a_static_buffer_takes_what_fits() {
    let wat = common::static_buffer_wat();
    let module = temp_file("static-transform.wasm", &wasm(&wat));
    let module = module.to_str().unwrap();
    let out = from_pipe(b"fits", &[module]);
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"fits"[..])
    );
    let out = from_pipe(&[b'x'; 101], &[module]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        error_line(&out),
        "error: putting standard input into the guest: 101 bytes do not fit the guest's buffer of 100 bytes (from `capacity`)"
    );
}
