//! Many lines a call: a batch export (`func(list<string>) -> list<string>`,
//! `func(list<list<u8>>) -> list<list<u8>>`) and a whole-chunk export give, byte for byte,
//! what one call a line gives, on 1 to 7 threads, through the library and the binary;
//! lines that are not UTF-8, and batches that come back one result short or long, are
//! named, after every earlier result; a batch's results are checked as a whole; one
//! canonical call, `cabi_realloc` included, runs on one fuel budget.

use crate::common;

use std::io::Cursor;
use std::num::NonZeroUsize;

use memhost::{Error, GuestModule, Limits, StreamOptions, Transformer, Violation, Wit};

use common::{canonical_wasm, memhost, temp_file};

const GUESTS: [&str; 2] = [
    "target/guest/canonical.wasm",
    "target/guest/canonical-c.wasm",
];

/// About 2.6 MB of lines, so that they span several chunks and batches: empty lines, CRLF
/// kept as data, non-ASCII, one line longer than a batch takes, and no final newline.
fn input() -> Vec<u8> {
    let mut input = Vec::new();
    for i in 0..30_000usize {
        match i % 97 {
            0 => {}
            1 => input.extend_from_slice(b"carriage\r"),
            2 => input.extend_from_slice("héllo wörld 漢字 🦀".as_bytes()),
            n => input.extend((0..n + i % 13).map(|j| b'a' + u8::try_from((i + j) % 26).unwrap())),
        }
        if i == 12_345 {
            // Longer than BATCH_BYTES: a batch of its own.
            input.extend(std::iter::repeat_n(b'z', memhost::BATCH_BYTES + 1000));
        }
        input.push(b'\n');
    }
    input.extend_from_slice(b"the last line");
    input
}

/// What one call a line of `transform` (`text`) or `reverse` gives, as a plain loop.
fn expected(input: &[u8], text: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (body, newline) = line
            .strip_suffix(b"\n")
            .map_or((line, false), |t| (t, true));
        if text {
            out.extend_from_slice(body);
            out.extend_from_slice(b" Wasm is cool!");
        } else {
            out.extend(body.iter().rev());
        }
        if newline {
            out.push(b'\n');
        }
    }
    out
}

fn module(artifact: &str) -> GuestModule {
    GuestModule::from_bytes(&canonical_wasm(artifact), &Limits::default()).unwrap()
}

/// Streams `input` through `transformer` on `jobs` threads: what was written, and how it
/// ended.
fn stream(
    module: &GuestModule,
    transformer: &Transformer,
    input: &[u8],
    jobs: usize,
) -> (Vec<u8>, Result<memhost::StreamStats, Error>) {
    let mut out = Vec::new();
    let result = module.transform_stream(
        Cursor::new(input.to_vec()),
        &mut out,
        StreamOptions::new(NonZeroUsize::new(jobs).unwrap(), transformer),
        &mut |_| {},
    );
    (out, result)
}

/// The transformers of every mode, for `transform` and for `reverse`.
fn modes(module: &GuestModule) -> Vec<(Transformer, bool)> {
    vec![
        (module.transformer(Some("transform")).unwrap(), true),
        (module.transformer(Some("transform-lines")).unwrap(), true),
        (module.chunk_transformer("transform-chunk").unwrap(), true),
        (module.transformer(Some("reverse")).unwrap(), false),
        (module.transformer(Some("reverse-lines")).unwrap(), false),
        (module.chunk_transformer("reverse-chunk").unwrap(), false),
    ]
}

#[test]
fn every_mode_gives_one_call_a_lines_bytes_on_every_thread_count() {
    let input = input();
    let want = [expected(&input, false), expected(&input, true)];
    for artifact in GUESTS {
        let module = module(artifact);
        assert_eq!(
            module.transformer(Some("transform-lines")).unwrap(),
            Transformer::Batch("transform-lines".into())
        );
        assert_eq!(
            module.chunk_transformer("transform-chunk").unwrap(),
            Transformer::Chunks("transform-chunk".into())
        );
        for (transformer, text) in modes(&module) {
            for jobs in 1..=7 {
                let (out, result) = stream(&module, &transformer, &input, jobs);
                let stats = result.unwrap_or_else(|e| panic!("{artifact} {transformer:?}: {e}"));
                assert!(
                    out == want[usize::from(text)],
                    "{artifact}, {transformer:?}, {jobs} threads: the output differs"
                );
                assert_eq!(stats.lines, 30_001);
                assert_eq!(stats.bytes_in, input.len() as u64);
                let calls = match transformer {
                    Transformer::Batch(_) | Transformer::Chunks(_) => 3..=40,
                    _ => 30_001..=30_001,
                };
                assert!(
                    calls.contains(&stats.calls),
                    "{artifact}, {transformer:?}: {} calls",
                    stats.calls
                );
            }
        }
        // Nothing, one empty line, and one line without a newline.
        for (transformer, text) in modes(&module) {
            for small in [&b""[..], b"\n", b"x", b"\n\n"] {
                let (out, result) = stream(&module, &transformer, small, 2);
                result.unwrap();
                assert_eq!(out, expected(small, text), "{transformer:?} {small:?}");
            }
        }
        // The in-memory batch API takes every mode too.
        let batch = module.transformer(Some("transform-lines")).unwrap();
        let out = module
            .transform_lines_with(&input, NonZeroUsize::new(3).unwrap(), &batch)
            .unwrap();
        assert!(out == want[1]);
    }
}

#[test]
fn the_binary_takes_batches_and_chunks() {
    let input = input();
    for artifact in GUESTS {
        let path = temp_file("batches.wasm", &canonical_wasm(artifact));
        for (mode, export, text) in [
            ("--lines", "transform-lines", true),
            ("--lines", "reverse-lines", false),
            ("--chunks", "transform-chunk", true),
            ("--chunks", "reverse-chunk", false),
        ] {
            let out = common::run_with_stdin(
                &[
                    "transform".as_ref(),
                    mode.as_ref(),
                    "--export".as_ref(),
                    export.as_ref(),
                    "--jobs".as_ref(),
                    "3".as_ref(),
                    "--no-cache".as_ref(),
                    path.as_os_str(),
                ],
                &input,
            );
            assert!(
                out.status.success(),
                "{artifact} {mode} {export}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.stdout == expected(&input, text),
                "{artifact} {mode} {export}: the output differs"
            );
        }
        // A batch export is no chunk transform, and --chunks needs --export.
        for args in [
            &["transform", "--chunks", "--export", "transform-lines"][..],
            &["transform", "--chunks"],
            &["transform", "--jobs", "2"],
        ] {
            let out = memhost()
                .args(args)
                .arg("--no-cache")
                .arg(&path)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert!(out.stdout.is_empty());
        }
    }
}

/// Input whose line `bad` (from 1) is not UTF-8.
fn with_bad_line(bad: usize, lines: usize) -> Vec<u8> {
    let mut input = Vec::new();
    for i in 1..=lines {
        if i == bad {
            input.extend_from_slice(b"ab\xffcd");
        } else {
            input.extend_from_slice(format!("line {i}").as_bytes());
        }
        input.push(b'\n');
    }
    input
}

#[test]
fn a_line_that_is_not_utf8_is_named_after_the_lines_before_it() {
    // In the first batch and chunk, in the middle of a later one, and last.
    for (bad, lines) in [(1, 10), (70_000, 100_000), (100_000, 100_000)] {
        let input = with_bad_line(bad, lines);
        let before: usize = input
            .split_inclusive(|&b| b == b'\n')
            .take(bad - 1)
            .map(<[u8]>::len)
            .sum();
        for artifact in GUESTS {
            let module = module(artifact);
            for (transformer, text) in modes(&module) {
                let (out, result) = stream(&module, &transformer, &input, 3);
                if !text {
                    // Bytes are bytes.
                    assert!(out == expected(&input, false));
                    result.unwrap();
                    continue;
                }
                match result {
                    Err(Error::Line { line, source }) => {
                        assert_eq!(line, bad, "{transformer:?}");
                        assert!(
                            matches!(*source, Error::InputNotUtf8 { valid_up_to: 2, .. }),
                            "{transformer:?}: {source}"
                        );
                    }
                    other => panic!("{artifact} {transformer:?}: {other:?}"),
                }
                assert!(
                    out == expected(&input[..before], true),
                    "{artifact} {transformer:?}: the results before line {bad} differ"
                );
            }
        }
    }
}

#[test]
fn a_batch_of_too_few_or_too_many_results_names_its_lines_after_the_earlier_ones() {
    for (export, word, results) in [("drop-last", "drop", -1), ("dup-last", "dup", 1)] {
        // The word well past the first batch (of at most BATCH_LINES lines).
        let at = 3 * memhost::BATCH_LINES / 2 + 7;
        let lines: Vec<String> = (1..=3 * memhost::BATCH_LINES)
            .map(|i| {
                if i == at {
                    word.to_string()
                } else {
                    format!("{i}")
                }
            })
            .collect();
        let input = lines.join("\n").into_bytes();
        for artifact in GUESTS {
            let module = module(artifact);
            let transformer = module.transformer(Some(export)).unwrap();
            for jobs in [1, 4] {
                let (out, result) = stream(&module, &transformer, &input, jobs);
                let Err(Error::Lines {
                    first,
                    last,
                    source,
                }) = result
                else {
                    panic!("{artifact} {export}: {result:?}");
                };
                assert!(
                    first > 1 && first <= at && at <= last,
                    "{first}..{last} for the word at {at}"
                );
                let Error::BatchCount {
                    lines: n,
                    results: got,
                    ..
                } = *source
                else {
                    panic!("{source}");
                };
                assert_eq!(n, (last - first + 1) as u64);
                assert_eq!(got as i64 - n as i64, results);
                let done = lines[..first - 1].join("\n") + "\n";
                assert!(
                    out == expected(done.as_bytes(), true),
                    "{artifact} {export}: the results before line {first} differ"
                );
            }
        }
    }
    // Through the binary: exit 4, one line naming the lines and the counts.
    let path = temp_file("batches-count.wasm", &canonical_wasm(GUESTS[0]));
    let out = common::run_with_stdin(
        &[
            "transform".as_ref(),
            "--lines".as_ref(),
            "--export".as_ref(),
            "drop-last".as_ref(),
            "--no-cache".as_ref(),
            path.as_os_str(),
        ],
        b"a\ndrop\nc\n",
    );
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: lines 1 to 3 (one call): `drop-last` returned 2 results for a batch of 3 lines \
         (one a line, in order, is its contract)"
    );
}

/// A world of one batch function, for modules written here.
const WIT: &str = "
package t:batch;
world w {
    export lines: func(l: list<string>) -> list<string>;
}
";

/// A module of that world: `cabi_realloc` a bump allocator (8-aligned) that first burns
/// `spin` loop rounds; `lines` runs `body` with the list at `$p`, `$n` and returns a return
/// area it lays out.
fn batch_module(spin: u32, body: &str) -> (GuestModule, memhost::Guest) {
    let wat = format!(
        r#"(module
            (memory (export "memory") 1)
            (global $bump (mut i32) (i32.const 1024))
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
                (local $i i32) (local $p i32)
                (local.set $i (i32.const {spin}))
                (block (loop
                    (br_if 1 (i32.eqz (local.get $i)))
                    (local.set $i (i32.sub (local.get $i) (i32.const 1)))
                    (br 0)))
                (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
                (global.set $bump (i32.add (local.get $p) (local.get 3)))
                (local.get $p))
            (func (export "lines") (param $p i32) (param $n i32) (result i32)
                (local $i i32)
                {body}
                (i32.const 0)))"#
    );
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("batches");
    std::fs::create_dir_all(&dir).unwrap();
    let wit_path = dir.join("w.wit");
    std::fs::write(&wit_path, WIT).unwrap();
    let wit = Wit::from_path(&wit_path, None).unwrap();
    let mut limits = Limits::default();
    limits.fuel = Some(1_000_000);
    let module = GuestModule::from_bytes_with(&common::wasm(&wat), &limits, Some(&wit), None)
        .unwrap()
        .0;
    let guest = module.instantiate().unwrap();
    (module, guest)
}

/// The return area at 0: the list the function was given, back as it came (an echo).
const ECHO: &str =
    "(i32.store (i32.const 0) (local.get $p)) (i32.store (i32.const 4) (local.get $n))";

#[test]
fn a_batch_echoes_through_a_module_written_here() {
    let (_, mut guest) = batch_module(0, ECHO);
    let mut got = Vec::new();
    guest
        .transform_batch("lines", &[b"one", b"", "ü".as_bytes()], |i, r| {
            got.push((i, r.to_vec()));
        })
        .unwrap();
    assert_eq!(
        got,
        [
            (0, b"one".to_vec()),
            (1, Vec::new()),
            (2, "ü".as_bytes().to_vec())
        ]
    );
}

#[test]
fn results_that_alias_past_the_memory_are_refused_before_any_is_handed_on() {
    // Every element is the whole memory: n results of 64 KiB from a memory of 64 KiB.
    let alias = "
        (local.set $i (i32.const 0))
        (block (loop
            (br_if 1 (i32.ge_u (local.get $i) (local.get $n)))
            (i32.store (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 8))) (i32.const 0))
            (i32.store (i32.add (i32.const 68) (i32.mul (local.get $i) (i32.const 8))) (i32.const 65536))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br 0)))
        (i32.store (i32.const 0) (i32.const 64))
        (i32.store (i32.const 4) (local.get $n))";
    let (_, mut guest) = batch_module(0, alias);
    let mut handed = 0;
    let err = guest
        .transform_batch("lines", &[b"a", b"b", b"c"], |_, _| handed += 1)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Canonical {
                violation: Violation::ResultsTooLarge {
                    total: 131_072,
                    memory_size: 65_536
                },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(handed, 0, "no result goes out before all are checked");
    // A batch of one result as large as the whole memory is within the bound.
    let (_, mut guest) = batch_module(0, alias);
    let mut lens = Vec::new();
    guest
        .transform_batch("lines", &[b"a"], |_, r| lens.push(r.len()))
        .unwrap();
    assert_eq!(lens, [65_536]);
}

#[test]
fn one_canonical_call_runs_on_one_fuel_budget() {
    // Each `cabi_realloc` burns about 60% of the budget of 1 000 000: one of them fits
    // (the list's array, for an empty batch), two do not, however the calls are split.
    let (_, mut guest) = batch_module(100_000, ECHO);
    guest.transform_batch("lines", &[], |_, _| {}).unwrap();
    let err = guest
        .transform_batch("lines", &[b"a"], |_, _| {})
        .unwrap_err();
    assert!(
        matches!(err, Error::OutOfFuel { .. }),
        "a realloc for the list and one for its line share the budget: {err}"
    );
    // The dynamic API too.
    let (_, mut guest) = batch_module(100_000, ECHO);
    let err = guest
        .call(
            "lines",
            &[memhost::Val::List(vec![
                memhost::Val::String("a".into()),
                memhost::Val::String("b".into()),
            ])],
        )
        .unwrap_err();
    assert!(matches!(err, Error::OutOfFuel { .. }), "{err}");
}
