//! What each Wasm proposal gets when fuel cannot bound it: threads' `memory.atomic.wait*` and
//! exception handling are refused on the module's bytes, before compiling, with an error that
//! names the operator and why; the rest of the threads proposal runs, metered.
//!
//! Before: a `memory.atomic.wait32` with an infinite timeout blocked `load` for good
//! (fuel does not run while a thread waits), and `throw` caught in a loop grew host memory
//! past 4 GB under a 16 MiB cap (exception objects live in the store).

use crate::common;

use std::time::{Duration, Instant};

use common::{temp_file, wasm};
use memhost::{Error, GuestModule, Limits};

/// A module whose `load` runs `body` first, with a shared memory and a tag.
fn module(body: &str, extra: &str) -> Vec<u8> {
    wasm(&format!(
        r#"(module
             (memory (export "mem") 1 1 shared)
             {extra}
             (func (export "load") (result i32 i32)
               {body}
               i32.const 0 i32.const 0))"#
    ))
}

/// Refused before compiling, with a problem that contains `what`; and through the binary:
/// exit 4, one line (whose first problem contains `line`), at once.
fn refused(name: &str, bytes: &[u8], what: &str) {
    let line = if what.starts_with("memory.atomic") {
        what
    } else {
        "exception"
    };
    let start = Instant::now();
    let err = GuestModule::from_bytes(bytes, &Limits::default()).unwrap_err();
    let Error::OverLimit { problems, .. } = &err else {
        panic!("{name}: {err:?}");
    };
    assert!(
        problems.iter().any(|p| p.contains(what)),
        "{name}: {problems:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(5), "{name}");
    let path = temp_file(&format!("proposal-{name}.wasm"), bytes);
    let start = Instant::now();
    let out = common::memhost()
        .arg("--no-cache")
        .arg(&path)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{name}: {stderr}");
    assert!(
        stderr.lines().count() == 1 && stderr.contains(line),
        "{name}: {stderr}"
    );
    assert!(out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("String"));
    println!("{name}: refused in {elapsed:?}: {stderr}");
}

#[test]
fn a_wait_is_refused_whatever_its_timeout() {
    for (name, body) in [
        (
            "wait32-forever",
            "(drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))",
        ),
        (
            "wait32-1ms-loop",
            "(loop $l (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 1000000))) (br $l))",
        ),
        (
            "wait64-forever",
            "(drop (memory.atomic.wait64 (i32.const 0) (i64.const 0) (i64.const -1)))",
        ),
    ] {
        let what = if name.starts_with("wait64") {
            "memory.atomic.wait64"
        } else {
            "memory.atomic.wait32"
        };
        refused(name, &module(body, ""), what);
    }
}

#[test]
fn exception_handling_is_refused() {
    let tag = "(tag $e (param i32))";
    refused(
        "throw-caught-in-a-loop",
        &module(
            "(loop $l (block $h (result i32) (try_table (catch $e $h) (throw $e (i32.const 1)))
                                 unreachable) drop (br $l))",
            tag,
        ),
        "try_table",
    );
    refused(
        "throw",
        &module("(throw $e (i32.const 1))", tag),
        "exception handling",
    );
    // A thousand parameters: each object of about 8 KB.
    let params = " i64".repeat(1000);
    let args = "(i64.const 0)".repeat(1000);
    refused(
        "throw-1000-params",
        &module(
            &format!("(loop $l (block $h (try_table (catch_all $h) (throw $big {args}))) (br $l))"),
            &format!("(tag $big (param{params}))"),
        ),
        "try_table",
    );
    // The tag section alone says the module means to throw.
    refused("tag-only", &module("", tag), "exception tags");
}

/// What the threads proposal keeps: a shared memory, atomic operators, and `notify` (which
/// finds no waiter); metered like any operator.
#[test]
fn the_rest_of_threads_runs() {
    let bytes = module(
        "(drop (memory.atomic.notify (i32.const 0) (i32.const 1)))
         (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 5)))",
        "",
    );
    let mut guest = GuestModule::from_bytes(&bytes, &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap();
    guest.load().unwrap();
    let mut word = [0; 4];
    guest.read_into(0, &mut word).unwrap();
    assert_eq!(u32::from_le_bytes(word), 5);
    assert!(guest.fuel_used().unwrap() >= memhost::RUNTIME_CALL);
}

/// Only a module whose ABI and limits pass has its function bodies read: a refused ABI is
/// still refused on the ABI, without the scan.
#[test]
fn the_abi_is_checked_first() {
    let bytes = wasm(
        r#"(module (memory (export "mem") 1 1 shared)
             (func (export "load") (result i32)
               (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))
               i32.const 0))"#,
    );
    let err = GuestModule::from_bytes(&bytes, &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::Abi { .. }), "{err:?}");
}
