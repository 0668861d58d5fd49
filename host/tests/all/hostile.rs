//! Broken and hostile modules: each gets its own typed error, in bounded time, with memory
//! left as it was; through the library and through the `memhost` binary (exit code and the
//! one `error:` line).

use crate::common;

use std::path::Path;

use common::{snapshot, temp_file, wasm};
use memhost::{Error, GuestModule, Limits, Region};

/// Test budgets: far above what these fixtures need when they behave, small enough that an
/// endless loop in an unoptimised build stops in milliseconds.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.fuel = Some(2_000_000);
    limits
}

fn compile(wat: &str) -> Result<GuestModule, Error> {
    GuestModule::from_bytes(&wasm(wat), &limits())
}

fn guest(wat: &str) -> memhost::Guest {
    compile(wat).unwrap().instantiate().unwrap()
}

/// Runs the binary on `bytes` (written to a file named `name`) with `args` first.
fn run_binary(name: &str, bytes: &[u8], args: &[&str]) -> (i32, String) {
    let path = temp_file(name, bytes);
    run_path(&path, args)
}

fn run_path(path: &Path, args: &[&str]) -> (i32, String) {
    let out = common::memhost()
        .args(["--fuel", "2000000"])
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    let code = out
        .status
        .code()
        .expect("the binary exits; it is never killed by a signal");
    assert_ne!(
        code,
        101,
        "the binary panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    // One `error:` line and nothing else: no backtrace, no multi-line cause.
    let lines: Vec<_> = stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "one `error:` line and nothing else:\n{stderr}"
    );
    (code, lines[0].to_string())
}

/// A `load` that follows the ABI, for modules whose point is elsewhere.
const LOAD: &str = r#"(func (export "load") (result i32 i32) i32.const 0 i32.const 0)"#;

/// A guest whose `load` returns `(offset, len)` and whose memory holds `data` at 1024.
fn returning(offset: i64, len: i64, data: &str) -> String {
    format!(
        r#"(module
             (memory (export "mem") 1)
             (func (export "load") (result i32 i32) i32.const {offset} i32.const {len})
             (data (i32.const 1024) "{data}"))"#
    )
}

// ---- the ABI, checked before anything runs ----

#[test]
fn every_abi_problem_in_one_error_with_the_path() {
    let wat = r#"(module
        (import "env" "log" (func (param i32)))
        (memory (export "memory") 1)
        (func (export "load") (result i32) i32.const 0)
        (func (export "transform") (param i32) (result i32) i32.const 0))"#;
    let err = compile(wat).err().unwrap();
    let Error::Abi { problems, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        problems,
        &[
            "missing export `mem` (memory) (the module exports a memory as `memory`)",
            "export `load` is (func (result i32)), expected (func (result i32 i32))",
            "export `transform` is (func (param i32) (result i32)), expected (func (result i32))",
            "imports `env.log` (func (param i32)), which the host does not provide",
        ]
    );
    let (code, line) = run_binary("abi.wasm", &wasm(wat), &[]);
    assert_eq!(code, 4);
    assert!(
        line.contains("abi.wasm does not match the guest ABI: missing export `mem` (memory)"),
        "{line}"
    );
    assert!(
        line.contains("; export `load` is (func (result i32))"),
        "{line}"
    );
}

#[test]
fn missing_load_and_wrong_kinds() {
    for (wat, problem) in [
        (
            r#"(module (memory (export "mem") 1))"#,
            "missing export `load` (func (result i32 i32))",
        ),
        (
            r#"(module (memory (export "mem") 1) (global (export "load") i32 (i32.const 0)))"#,
            "export `load` is (global i32), expected (func (result i32 i32))",
        ),
        (
            r#"(module (func (export "mem")) (func (export "load") (result i32 i32) i32.const 0 i32.const 0))"#,
            "export `mem` is (func), expected (memory)",
        ),
    ] {
        let err = compile(wat).err().unwrap();
        assert!(err.to_string().contains(problem), "{err}");
        assert_eq!(run_binary("kinds.wasm", &wasm(wat), &[]).0, 4);
    }
}

// ---- values from the guest ----

/// `load` returns `(offset, len)` over `data`: is the error the right one, and its text.
type Case = (i64, i64, &'static str, fn(&Error) -> bool, &'static str);

#[test]
fn nothing_load_returns_is_trusted() {
    let cases: [Case; 5] = [
        (
            1024,
            -1,
            "",
            |e| {
                matches!(
                    &e,
                    Error::NegativeLength {
                        export,
                        len: -1
                    } if export == "load"
                )
            },
            "negative length -1",
        ),
        (
            65537,
            0,
            "",
            |e| {
                matches!(
                    e,
                    Error::OutOfBounds {
                        offset: 65537,
                        len: 0,
                        ..
                    }
                )
            },
            "65537..65537",
        ),
        (
            65000,
            1000,
            "",
            |e| {
                matches!(
                    e,
                    Error::OutOfBounds {
                        offset: 65000,
                        len: 1000,
                        memory_size: 65536
                    }
                )
            },
            "past the end of memory (65536 bytes)",
        ),
        (
            -1,
            2,
            "",
            |e| {
                matches!(
                    e,
                    Error::RangeOverflow {
                        offset: u32::MAX,
                        len: 2
                    }
                )
            },
            "overflows the 32-bit address space",
        ),
        (
            1024,
            5,
            "ab\\ffcd",
            |e| {
                matches!(
                    e,
                    Error::InvalidUtf8 {
                        offset: 1024,
                        len: 5,
                        valid_up_to: 2,
                        ..
                    }
                )
            },
            "invalid byte at offset 1026",
        ),
    ];
    for (offset, len, data, is, text) in cases {
        let wat = returning(offset, len, data);
        let mut g = guest(&wat);
        let err = g.string().unwrap_err();
        assert!(is(&err), "({offset}, {len}): {err:?}");
        assert!(err.to_string().contains(text), "{err}");
        let (code, line) = run_binary("values.wasm", &wasm(&wat), &[]);
        assert_eq!(code, 4, "{line}");
        assert!(line.contains(text), "{line}");
    }
}

#[test]
fn empty_string_exactly_at_the_end_of_memory_is_valid() {
    let mut g = guest(&returning(65536, 0, ""));
    assert_eq!(g.string().unwrap(), "");
}

// ---- writes are all or nothing ----

#[test]
fn a_write_past_the_end_of_memory_changes_nothing() {
    // The guest claims a large buffer near the end of memory.
    let wat = r#"(module
        (memory (export "mem") 1)
        (func (export "load") (result i32 i32) i32.const 65530 i32.const 0)
        (func (export "capacity") (result i32) i32.const 100000)
        (func (export "set_len") (param i32) (result i32) i32.const 0))"#;
    let mut g = guest(wat);
    let before = snapshot(&g);
    for result in [
        g.write_string("Hello, Wasmer!"),
        g.replace_string("Hello, Wasmer!"),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutOfBounds {
                    offset: 65530,
                    len: 14,
                    memory_size: 65536
                }
            ),
            "{err:?}"
        );
    }
    assert!(snapshot(&g) == before);
    let (code, line) = run_binary("past-end-write.wasm", &wasm(wat), &[]);
    assert_eq!(code, 4);
    assert!(
        line.contains("range 65530..65544 (length 14) is past the end of memory"),
        "{line}"
    );
}

#[test]
fn a_refusing_or_trapping_length_setter_changes_nothing() {
    for (setter, is) in [
        (
            "i32.const -7",
            (|e: &Error| {
                matches!(
                    &e,
                    Error::Refused {
                        export,
                        len: 14,
                        code: -7
                    } if export == "set_len"
                )
            }) as fn(&Error) -> bool,
        ),
        ("unreachable", |e| {
            matches!(
                &e,
                Error::Trap {
                    export,
                    ..
                } if export == "set_len"
            )
        }),
        ("(loop br 0) i32.const 0", |e| {
            matches!(
                &e,
                Error::OutOfFuel {
                    export,
                    ..
                } if export == "set_len"
            )
        }),
    ] {
        let wat = format!(
            r#"(module
                 (memory (export "mem") 1)
                 (func (export "load") (result i32 i32) i32.const 1024 i32.const 13)
                 (func (export "set_len") (param i32) (result i32) {setter})
                 (data (i32.const 1024) "Hello, World!"))"#
        );
        let mut g = guest(&wat);
        let before = snapshot(&g);
        let err = g.replace_string("Hello, Wasmer!").unwrap_err();
        assert!(is(&err), "{setter}: {err:?}");
        let (code, line) = run_binary("setter.wasm", &wasm(&wat), &[]);
        assert_eq!(code, 4);
        assert!(line.ends_with(&err.to_string()), "{line} vs {err}");
        assert!(snapshot(&g) == before, "{setter}: memory changed");
        assert_eq!(
            g.read_string(Region {
                offset: 1024,
                len: 13
            })
            .unwrap(),
            "Hello, World!"
        );
    }
}

#[test]
fn a_trapping_or_negative_capacity_stops_the_write_before_any_byte() {
    for (body, is, text) in [
        (
            "unreachable",
            (|e: &Error| {
                matches!(
                    &e,
                    Error::Trap {
                        export,
                        ..
                    } if export == "capacity"
                )
            }) as fn(&Error) -> bool,
            "guest `capacity` trapped: unreachable",
        ),
        (
            "i32.const -5",
            |e| {
                matches!(
                    &e,
                    Error::NegativeLength {
                        export,
                        len: -5
                    } if export == "capacity"
                )
            },
            "guest `capacity` returned a negative length -5",
        ),
    ] {
        let wat = format!(
            r#"(module
                 (memory (export "mem") 1)
                 (func (export "load") (result i32 i32) i32.const 1024 i32.const 13)
                 (func (export "capacity") (result i32) {body})
                 (func (export "set_len") (param i32) (result i32) i32.const 0)
                 (data (i32.const 1024) "Hello, World!"))"#
        );
        let mut g = guest(&wat);
        let before = snapshot(&g);
        for result in [
            g.write_string("Hello, Wasmer!"),
            g.replace_string("Hello, Wasmer!"),
        ] {
            let err = result.unwrap_err();
            assert!(is(&err), "{body}: {err:?}");
            assert_eq!(err.to_string(), text);
        }
        assert!(snapshot(&g) == before, "{body}: memory changed");
        let (code, line) = run_binary("capacity.wasm", &wasm(&wat), &[]);
        assert_eq!(
            (code, line.as_str()),
            (4, format!("error: {text}").as_str())
        );
    }
}

#[test]
fn a_refused_transform_is_reported_as_refused_whatever_load_would_do() {
    // `transform` refuses with the ABI's over-capacity code; `load` would trap if called
    // to report the length: the refusal is what the caller learns.
    let wat = r#"(module
        (memory (export "mem") 1)
        (func (export "load") (result i32 i32) unreachable)
        (func (export "transform") (result i32) i32.const -2))"#;
    let err = guest(wat).transform().unwrap_err();
    assert!(
        matches!(
            &err,
            Error::ErrorCode {
                export,
                code: -2
            } if export == "transform"
        ),
        "{err:?}"
    );
    // A code outside the ABI is reported as such.
    let wat = wat.replace("i32.const -2", "i32.const -9");
    let err = guest(&wat).transform().unwrap_err();
    assert_eq!(
        err.to_string(),
        "guest `transform` returned error code -9 (not a code of the ABI)"
    );
}

// ---- traps ----

#[test]
fn traps_name_the_export_and_the_trap() {
    let cases = [
        (
            "load",
            "(func (export \"load\") (result i32 i32) unreachable)",
            "guest `load` trapped: unreachable",
        ),
        (
            "transform",
            "(func $r (export \"transform\") (result i32) call $r)",
            "guest `transform` trapped: call stack exhausted",
        ),
        (
            "start",
            "(func $s unreachable) (start $s)",
            "guest `start` trapped: unreachable",
        ),
        (
            "load",
            "(func (export \"load\") (result i32 i32) i32.const 1 i32.const 0 i32.div_u i32.const 0)",
            "guest `load` trapped: integer divide by zero",
        ),
    ];
    for (export, funcs, message) in cases {
        let mut wat = String::from(r#"(module (memory (export "mem") 1) "#);
        wat.push_str(funcs);
        if export != "load" {
            wat.push_str(r#" (func (export "load") (result i32 i32) i32.const 0 i32.const 0)"#);
            // The binary calls `transform` only when the guest can be told lengths.
            wat.push_str(r#" (func (export "set_len") (param i32) (result i32) i32.const 0)"#);
        }
        wat.push(')');
        let result = compile(&wat).unwrap().instantiate().and_then(|mut g| {
            g.load()?;
            g.transform().map(|_| ())
        });
        let err = result.unwrap_err();
        assert_eq!(err.to_string(), message);
        let (code, line) = run_binary("trap.wasm", &wasm(&wat), &[]);
        assert_eq!(
            (code, line.as_str()),
            (4, format!("error: {message}").as_str())
        );
    }
}

// ---- bounded time ----

#[test]
fn endless_loops_run_out_of_fuel() {
    let looping = "(loop br 0)";
    for (export, wat) in [
        (
            "load",
            format!(
                r#"(module (memory (export "mem") 1) (func (export "load") (result i32 i32) {looping} i32.const 0 i32.const 0))"#
            ),
        ),
        (
            "transform",
            format!(
                r#"(module (memory (export "mem") 1) (func (export "load") (result i32 i32) i32.const 0 i32.const 0) (func (export "set_len") (param i32) (result i32) i32.const 0) (func (export "transform") (result i32) {looping} i32.const 0))"#
            ),
        ),
        (
            "start",
            format!(
                r#"(module (memory (export "mem") 1) (func (export "load") (result i32 i32) i32.const 0 i32.const 0) (func $s {looping}) (start $s))"#
            ),
        ),
    ] {
        let result = compile(&wat).unwrap().instantiate().and_then(|mut g| {
            g.load()?;
            g.transform().map(|_| ())
        });
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::OutOfFuel { export: e, fuel: 2_000_000 } if e == export),
            "{err:?}"
        );
        let (code, line) = run_binary("loop.wasm", &wasm(&wat), &[]);
        assert_eq!(code, 4);
        assert_eq!(
            line,
            format!("error: guest `{export}` ran out of fuel after 2000000 units")
        );
    }
}

#[test]
fn each_call_gets_the_whole_budget() {
    // Each call burns most of the budget; many calls in a row must all succeed.
    let wat = r#"(module
        (memory (export "mem") 1)
        (func (export "load") (result i32 i32) (local i32)
          i32.const 200000 local.set 0
          (loop local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0)
          i32.const 0 i32.const 0))"#;
    let mut g = guest(wat);
    for _ in 0..20 {
        g.load().unwrap();
    }
}

// ---- bounded memory and tables ----

#[test]
fn memory_grow_past_the_cap_returns_minus_one_in_the_guest() {
    // `load` grows by 1000 pages (64 MiB, over the 16 MiB default), stores the result at 0.
    let wat = r#"(module
        (memory (export "mem") 1)
        (func (export "load") (result i32 i32)
          i32.const 0 i32.const 1000 memory.grow i32.store
          i32.const 0 i32.const 4))"#;
    let mut g = guest(wat);
    let region = g.load().unwrap();
    assert_eq!(g.read(region).unwrap(), (-1i32).to_le_bytes());
    assert_eq!(g.memory_size(), 65536);
}

#[test]
fn over_limit_modules_are_refused_before_compiling() {
    let tables = format!(
        r#"(module (memory (export "mem") 1) {} {{LOAD}})"#,
        "(table 0 funcref) ".repeat(101)
    );
    for (wat, problem) in [
        (
            r#"(module (memory (export "mem") 300) {LOAD})"#,
            "declares a memory of 300 pages at start, over the limit of 256 pages (16777216 bytes)",
        ),
        (
            r#"(module (memory (export "mem") 1) (memory 1) {LOAD})"#,
            "declares 2 memories; the host allows one",
        ),
        (
            r#"(module (memory (export "mem") 1) (table 20000 funcref) {LOAD})"#,
            "declares a table of 20000 elements at start, over the limit of 10000",
        ),
        (
            r#"(module (memory (export "mem") 1) (func (export "__host_start")) {LOAD})"#,
            "exports `__host_start`, a name the host reserves",
        ),
        (tables.as_str(), "declares 101 tables; the host allows 100"),
    ] {
        let wat = wat.replace("{LOAD}", LOAD);
        let err = compile(&wat).err().unwrap();
        assert!(matches!(err, Error::OverLimit { .. }), "{err:?}");
        assert!(err.to_string().contains(problem), "{err}");
        let (code, line) = run_binary("limit.wasm", &wasm(&wat), &[]);
        assert_eq!(code, 4);
        assert!(line.contains(problem), "{line}");
    }
    // A hundred tables are allowed.
    let hundred = format!(
        r#"(module (memory (export "mem") 1) {} {LOAD})"#,
        "(table 0 funcref) ".repeat(100)
    );
    compile(&hundred).unwrap().instantiate().unwrap();
    // The cap follows --max-memory.
    let (code, line) = run_binary(
        "cap.wasm",
        &wasm(&format!(r#"(module (memory (export "mem") 2) {LOAD})"#)),
        &["--max-memory", "65536"],
    );
    assert_eq!(code, 4);
    assert!(
        line.contains("declares a memory of 2 pages at start, over the limit of 1 pages"),
        "{line}"
    );
}

#[test]
fn module_size_is_checked_before_parsing() {
    // 101 bytes of zeros with a cap of 100: too large, not "not Wasm" (the size comes first).
    let mut limits = Limits::default();
    limits.max_module_bytes = 100;
    let err = GuestModule::from_bytes(&[0u8; 101], &limits).err().unwrap();
    assert!(
        matches!(
            err,
            Error::ModuleTooLarge {
                size: 101,
                limit: 100,
                ..
            }
        ),
        "{err:?}"
    );
}

// ---- not a module at all ----

#[test]
fn not_a_module_at_all() {
    let guest_bytes = common::guest_wasm();
    let truncated = &guest_bytes[..guest_bytes.len() / 2];
    let random: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24).to_le_bytes()[0])
        .collect();
    for (name, bytes, text) in [
        ("empty.wasm", &[][..], "is not a valid Wasm module"),
        ("random.wasm", &random[..], "is not a valid Wasm module"),
        ("truncated.wasm", truncated, "is not a valid Wasm module"),
        ("blank.wasm", b" \n\t", "is not a valid Wasm module"),
    ] {
        let err = GuestModule::from_bytes(bytes, &limits()).err().unwrap();
        assert!(matches!(err, Error::Compile { .. }), "{name}: {err:?}");
        let (code, line) = run_binary(name, bytes, &[]);
        assert_eq!(code, 3, "{name}: {line}");
        assert!(line.contains(text), "{name}: {line}");
    }
    // Text is read as WAT: text that does not assemble says so, and where.
    let err = GuestModule::from_bytes(b"(module", &limits())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Text { .. }), "{err:?}");
    let (code, line) = run_binary("text.wasm", b"(module", &[]);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.contains("is WAT text that does not assemble"),
        "{line}"
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (path, text) in [
        (dir.join("no-such.wasm"), "No such file"),
        (dir.to_path_buf(), "cannot read module"),
    ] {
        let err = GuestModule::from_file(&path, &limits()).err().unwrap();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
        let (code, line) = run_path(&path, &[]);
        assert_eq!(code, 3);
        assert!(line.contains(text), "{line}");
    }
}

#[test]
fn the_error_line_stays_short_however_many_problems_and_verbose_lists_them_all() {
    // Fifty imports with long names, the memory under another name, no `load`: as a module
    // built for another host looks.
    let mut wat = String::from("(module\n");
    for i in 0..50 {
        wat.push_str(&format!(
            "(import \"wasi_snapshot_preview1\" \"a_rather_long_imported_function_name_number_{i:02}\" (func (param i32 i32 i32 i32) (result i32)))\n"
        ));
    }
    wat.push_str(r#"(memory (export "memory") 1))"#);
    let bytes = wasm(&wat);

    let err = compile(&wat).err().unwrap();
    assert_eq!(err.problems().len(), 52, "the library keeps every problem");
    assert_eq!(
        err.problems()[..2],
        [
            "missing export `mem` (memory) (the module exports a memory as `memory`)",
            "missing export `load` (func (result i32 i32))"
        ]
    );
    let message = err.to_string();
    assert!(message.ends_with("; and 50 more"), "{message}");

    let (code, line) = run_binary("many-problems.wasm", &bytes, &[]);
    assert_eq!(code, 4);
    assert!(
        line.chars().count() <= 400,
        "{} chars: {line}",
        line.chars().count()
    );
    assert!(
        line.contains("does not match the guest ABI: missing export `mem` (memory) (the module exports a memory as `memory`); missing export `load`"),
        "{line}"
    );

    // --verbose: the same line, then every problem on a line of its own.
    let path = temp_file("many-problems.wasm", &bytes);
    let out = common::memhost()
        .args(["--verbose"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines[0], line);
    assert_eq!(lines.len(), 1 + 52, "{stderr}");
    assert!(lines[1..].iter().all(|l| l.starts_with("  - ")), "{stderr}");
    assert_eq!(
        lines[2],
        "  - missing export `load` (func (result i32 i32))"
    );
    assert!(
        lines[52].starts_with("  - imports `wasi_snapshot_preview1.a_rather_long_imported_function_name_num…` (func (param i32 i32 i32 i32) (result i32))"),
        "names are cut: {}",
        lines[52]
    );
}

#[test]
fn the_module_size_cap_has_a_flag() {
    let bytes = wasm(common::SEED_WAT);
    let limit = (bytes.len() - 1).to_string();
    let (code, line) = run_binary("hostile-seed.wasm", &bytes, &["--max-module-bytes", &limit]);
    assert_eq!(code, 3);
    assert_eq!(
        line,
        format!(
            "error: module {} is {} bytes, over the limit of {limit} bytes",
            temp_file("hostile-seed.wasm", &bytes).display(),
            bytes.len()
        )
    );
    // At exactly its size it runs.
    let path = temp_file("seed-exact.wasm", &bytes);
    let out = common::memhost()
        .args(["--max-module-bytes", &bytes.len().to_string()])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
