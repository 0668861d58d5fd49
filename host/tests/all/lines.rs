//! One compiled module, many threads: `GuestModule::transform_lines` and
//! `host transform --lines --jobs N` give the same bytes as a plain loop, in input order,
//! whatever the number of threads; and a failing line is named.

use crate::common;

use std::num::NonZeroUsize;

use common::{guest_wasm, temp_file, wasm};
use memhost::{Error, GuestModule, Limits};

/// Lines of every length from empty to 100 KB, the last without a newline.
fn input() -> Vec<u8> {
    let mut input = Vec::new();
    for i in 0..2000usize {
        let len = match i % 50 {
            0 => 0,
            49 => 100_000,
            n => n * 7,
        };
        input.extend((0..len).map(|j| b'a' + u8::try_from((i + j) % 26).unwrap()));
        input.push(b'\n');
    }
    input.extend_from_slice(b"the last line");
    input
}

/// What the guest does to each line, as a plain loop.
fn expected(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (text, newline) = line
            .strip_suffix(b"\n")
            .map_or((line, false), |t| (t, true));
        out.extend_from_slice(text);
        out.extend_from_slice(b" Wasm is cool!");
        if newline {
            out.push(b'\n');
        }
    }
    out
}

fn jobs(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

#[test]
fn every_thread_count_gives_the_plain_loops_bytes_in_order() {
    let module = GuestModule::from_bytes(&guest_wasm(), &Limits::default()).unwrap();
    let input = input();
    let expected = expected(&input);
    for n in [1, 2, 3, 7] {
        let out = module.transform_lines(&input, jobs(n)).unwrap();
        assert!(out == expected, "{n} threads");
    }
    assert_eq!(module.transform_lines(b"", jobs(2)).unwrap(), b"");
    assert_eq!(
        module.transform_lines(b"\n", jobs(2)).unwrap(),
        b" Wasm is cool!\n"
    );
}

#[test]
fn a_failing_line_is_named_whatever_the_threads() {
    // A static buffer of 100 bytes: line 37 is one byte too long.
    let module =
        GuestModule::from_bytes(&wasm(&common::static_buffer_wat()), &Limits::default()).unwrap();
    let mut input = Vec::new();
    for i in 1..=60 {
        let len = if i == 37 { 101 } else { 100 };
        input.extend(std::iter::repeat_n(b'x', len));
        input.push(b'\n');
    }
    for n in [1, 2, 4] {
        let err = module.transform_lines(&input, jobs(n)).unwrap_err();
        let Error::Line { line, source } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, 37, "{n} threads");
        assert!(
            matches!(
                **source,
                Error::OverCapacity {
                    len: 101,
                    capacity: 100
                }
            ),
            "{source:?}"
        );
    }
    // Through the binary: exit 4, the line named, the results of the 36 lines before it
    // written, complete.
    let before = module.transform_lines(&input[..36 * 101], jobs(1)).unwrap();
    let module = temp_file("lines-static.wasm", &wasm(&common::static_buffer_wat()));
    let args = ["transform", "--lines", "--jobs", "2"].map(std::ffi::OsStr::new);
    let out = common::run_with_stdin(&[&args[..], &[module.as_os_str()]].concat(), &input);
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout == before, "the results before line 37 differ");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: line 37: 101 bytes do not fit the guest's buffer of 100 bytes (from `capacity`)\n"
    );
}

#[test]
fn the_binary_pipes_lines_on_every_core() {
    assert!(
        common::guest_path().exists(),
        "run `cargo xtask build-guest` first"
    );
    let input = input();
    for args in [
        &["transform", "--lines"][..],
        &["transform", "--lines", "--jobs", "3"],
    ] {
        let args: Vec<_> = args.iter().map(std::ffi::OsStr::new).collect();
        let out = common::run_with_stdin(&args, &input);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == expected(&input), "{args:?}");
    }
}
