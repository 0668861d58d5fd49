//! WASI preview 1, deny by default: a guest's output where the embedder says (the host's
//! standard error by default, never the binary's standard output), no arguments or
//! environment unless given, the clocks and random bytes, `proc_exit` as a typed error,
//! every bad pointer `EFAULT` with nothing written, fuel charged for what the host does for
//! the guest, and every other WASI function refused at admission, named. The Rust canonical
//! guest built for `wasm32-wasip1` is in `canonical.rs`.

use crate::common;

use std::sync::{Arc, Mutex};

use memhost::{Error, GuestModule, Limits, Val, Wasi};

use common::{temp_file, wasm};

const WIT: &str = "package t:wasi;\n\
    world w {\n\
      export write: func(fd: s32, ptr: u32, len: u32) -> s32;\n\
      export write-iovs: func(fd: s32, iovs: u32, count: u32, out: u32) -> s32;\n\
      export env: func() -> string;\n\
      export args: func() -> string;\n\
      export random: func(ptr: u32, len: u32) -> s32;\n\
      export peek: func(ptr: u32) -> u64;\n\
      export now: func(clock: s32) -> s32;\n\
      export bye: func(code: s32);\n\
      export spin: func();\n\
    }\n";

/// A guest of the world above, calling WASI directly. `write` writes one iovec (kept at
/// 0) of `len` bytes from `ptr`; `env` and `args` return the strings NUL-separated;
/// `random` fills `len` bytes at `ptr`; `peek` reads 8 bytes; `now` reads a clock into 8;
/// `spin` writes 64 KiB to standard output until stopped.
const WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 100) "hello from the guest\n")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 4096)
  (func (export "write") (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
  (func (export "write-iovs") (param i32 i32 i32 i32) (result i32)
    (call $fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "env") (result i32)
    (drop (call $env_sizes (i32.const 16) (i32.const 20)))
    (drop (call $env_get (i32.const 1024) (i32.const 2048)))
    (i32.store (i32.const 24) (i32.const 2048))
    (i32.store (i32.const 28) (i32.load (i32.const 20)))
    i32.const 24)
  (func (export "args") (result i32)
    (drop (call $args_sizes (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (i32.store (i32.const 24) (i32.const 2048))
    (i32.store (i32.const 28) (i32.load (i32.const 20)))
    i32.const 24)
  (func (export "random") (param i32 i32) (result i32)
    (call $random (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i64) (i64.load (local.get 0)))
  (func (export "now") (param i32) (result i32)
    (call $clock (local.get 0) (i64.const 1) (i32.const 8)))
  (func (export "bye") (param i32) (call $exit (local.get 0)))
  (func (export "spin")
    (i32.store (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $l (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))))"#;

/// The module, its world written to a file of `test`'s own (tests run side by side).
fn module(test: &str) -> GuestModule {
    let wit = memhost::Wit::from_path(temp_file(&format!("wasi-{test}.wit"), WIT.as_bytes()), None)
        .unwrap();
    let (module, _) =
        GuestModule::from_bytes_with(&wasm(WAT), &Limits::default(), Some(&wit), None).unwrap();
    assert!(module.uses_wasi());
    module
}

type Captured = Arc<Mutex<Vec<u8>>>;

fn captured() -> (Wasi, Captured, Captured) {
    let (out, err) = (Captured::default(), Captured::default());
    let wasi = Wasi::default()
        .stdout(Arc::clone(&out))
        .stderr(Arc::clone(&err));
    (wasi, out, err)
}

fn text(c: &Captured) -> String {
    String::from_utf8_lossy(&c.lock().unwrap()).into_owned()
}

fn call(g: &mut memhost::Guest, name: &str, params: &[Val]) -> Option<Val> {
    g.call(name, params)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

const EBADF: i32 = 8;
const EFAULT: i32 = 21;

#[test]
fn output_goes_where_the_embedder_says_and_bad_descriptors_are_ebadf() {
    let (wasi, out, err) = captured();
    let mut g = module("output").instantiate_with(&wasi).unwrap();
    let write =
        |g: &mut memhost::Guest, fd| call(g, "write", &[Val::S32(fd), Val::U32(100), Val::U32(21)]);
    assert_eq!(write(&mut g, 1), Some(Val::S32(0)));
    assert_eq!(write(&mut g, 2), Some(Val::S32(0)));
    assert_eq!(write(&mut g, 2), Some(Val::S32(0)));
    assert_eq!(text(&out), "hello from the guest\n");
    assert_eq!(text(&err), "hello from the guest\n".repeat(2));
    for fd in [0, 3, -1, 1000] {
        assert_eq!(write(&mut g, fd), Some(Val::S32(EBADF)), "fd {fd}");
    }
    assert_eq!(
        text(&out).len() + text(&err).len(),
        63,
        "nothing more went out"
    );
}

/// A bad pointer anywhere (the iovec array, a buffer, the count written back) is `EFAULT`,
/// and nothing of the call goes out.
#[test]
fn bad_pointers_are_efault_and_write_nothing() {
    let (wasi, out, _) = captured();
    let mut g = module("efault").instantiate_with(&wasi).unwrap();
    let end = 2 * 65536u32;
    for (iovs, count, written) in [
        (end - 4, 1, 8),      // the iovec array runs past the end
        (end, 1, 8),          // it starts at the end
        (u32::MAX - 3, 1, 8), // its end wraps
        (0, 0x2000_0001, 8),  // 8 * count overflows 32 bits
        (0, 1, end - 2),      // the count written back does not fit
    ] {
        // A valid iovec at 0, 21 bytes from 100.
        assert_eq!(
            call(&mut g, "write", &[Val::S32(7), Val::U32(100), Val::U32(21)]),
            Some(Val::S32(EBADF))
        );
        let errno = call(
            &mut g,
            "write-iovs",
            &[
                Val::S32(1),
                Val::U32(iovs),
                Val::U32(count),
                Val::U32(written),
            ],
        );
        assert_eq!(errno, Some(Val::S32(EFAULT)), "{iovs} {count} {written}");
    }
    // One good iovec and one past the end: neither goes out.
    for (ptr, len) in [(end - 10, 11), (end, 1), (u32::MAX, 2)] {
        let errno = call(
            &mut g,
            "write",
            &[Val::S32(1), Val::U32(ptr), Val::U32(len)],
        );
        assert_eq!(errno, Some(Val::S32(EFAULT)), "{ptr} {len}");
    }
    assert_eq!(text(&out), "", "nothing went out");
    // `random_get` past the end, and a clock written past the end.
    assert_eq!(
        call(&mut g, "random", &[Val::U32(end - 4), Val::U32(5)]),
        Some(Val::S32(EFAULT))
    );
}

#[test]
fn no_environment_or_arguments_unless_given() {
    let mut g = module("env").instantiate().unwrap();
    assert_eq!(call(&mut g, "env", &[]), Some(Val::String(String::new())));
    assert_eq!(call(&mut g, "args", &[]), Some(Val::String(String::new())));
    let wasi = Wasi::default()
        .arg("guest")
        .arg("--flag")
        .env("A", "1")
        .env("GREETING", "héllo");
    let mut g = module("env").instantiate_with(&wasi).unwrap();
    assert_eq!(
        call(&mut g, "env", &[]),
        Some(Val::String("A=1\0GREETING=héllo\0".into()))
    );
    assert_eq!(
        call(&mut g, "args", &[]),
        Some(Val::String("guest\0--flag\0".into()))
    );
}

#[test]
fn clocks_and_random_bytes() {
    let mut g = module("clocks").instantiate().unwrap();
    let peek = |g: &mut memhost::Guest, at| match call(g, "peek", &[Val::U32(at)]) {
        Some(Val::U64(v)) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(call(&mut g, "now", &[Val::S32(0)]), Some(Val::S32(0)));
    let realtime = peek(&mut g, 8);
    assert!(realtime > 1_700_000_000 * 1_000_000_000, "{realtime}");
    assert_eq!(call(&mut g, "now", &[Val::S32(1)]), Some(Val::S32(0)));
    let a = peek(&mut g, 8);
    assert_eq!(call(&mut g, "now", &[Val::S32(1)]), Some(Val::S32(0)));
    assert!(peek(&mut g, 8) >= a, "monotonic");
    // The CPU-time clocks are not given.
    assert_eq!(call(&mut g, "now", &[Val::S32(2)]), Some(Val::S32(28)));
    assert_eq!(
        call(&mut g, "random", &[Val::U32(512), Val::U32(16)]),
        Some(Val::S32(0))
    );
    let (x, y) = (peek(&mut g, 512), peek(&mut g, 520));
    assert!(x != 0 && y != 0 && x != y, "{x:x} {y:x}");
}

#[test]
fn proc_exit_is_a_typed_error_with_its_code() {
    let mut g = module("exit").instantiate().unwrap();
    let err = g.call("bye", &[Val::S32(3)]).unwrap_err();
    assert!(
        matches!(&err, Error::Exit { code: 3, export } if export == "bye"),
        "{err:?}"
    );
    assert_eq!(err.kind(), memhost::ErrorKind::Guest);
}

/// A guest writing without end is stopped by the call's fuel, as a loop is: the host's
/// work for it is charged by the byte, and none of it is kept.
#[test]
fn endless_output_is_stopped_by_fuel() {
    let mut limits = Limits::default();
    limits.fuel = Some(10_000_000);
    let wit = memhost::Wit::from_path(temp_file("wasi-fuel.wit", WIT.as_bytes()), None).unwrap();
    let (module, _) = GuestModule::from_bytes_with(&wasm(WAT), &limits, Some(&wit), None).unwrap();
    let counted = Arc::new(Mutex::new(Counter(0)));
    let wasi = Wasi::default().stdout(Arc::clone(&counted));
    let mut g = module.instantiate_with(&wasi).unwrap();
    let err = g.call("spin", &[]).unwrap_err();
    assert!(matches!(err, Error::OutOfFuel { .. }), "{err:?}");
    let written = counted.lock().unwrap().0;
    // At least a unit of fuel for every BYTES_PER_UNIT bytes.
    let most = 10_000_000 * u64::from(memhost::BYTES_PER_UNIT);
    assert!(written > 0 && written <= most, "{written} bytes went out");
}

/// Counts what is written, keeping none of it.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// WASI functions this host does not give (files, sockets) are refused at admission, each
/// named with those it gives; so is a WASI function of the wrong type.
#[test]
fn other_wasi_functions_are_refused_at_admission() {
    let bytes = wasm(
        r#"(module
            (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "f")))"#,
    );
    let wit = memhost::Wit::from_path(
        temp_file(
            "wasi-refused.wit",
            b"package t:r;\nworld w { export f: func(); }\n",
        ),
        None,
    )
    .unwrap();
    let err = GuestModule::from_bytes_with(&bytes, &Limits::default(), Some(&wit), None)
        .err()
        .unwrap();
    let problems = err.problems();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("imports `wasi_snapshot_preview1.path_open`"));
    assert!(problems[1].starts_with(
        "imports `wasi_snapshot_preview1.fd_write` (func (param i32 i32 i32) (result i32))"
    ));
    assert!(
        problems[0].contains("with no files or sockets: args_get"),
        "{}",
        problems[0]
    );
}

/// Through the binary: the guest's output on standard error, the result alone on
/// standard output; `proc_exit` is a guest error (exit 4) naming the code.
#[test]
fn the_binary_keeps_guest_output_off_standard_output() {
    let wat = temp_file("wasi-cli.wat", WAT.as_bytes());
    let wit = temp_file("wasi-cli.wit", WIT.as_bytes());
    let run = |invoke: &str| common::call_with_wit(&wit, &wat, invoke);
    let out = run("write(1, 100, 21)");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "hello from the guest\n"
    );
    let out = run("bye(3)");
    assert_eq!(out.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exited with code 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A C guest linked with wasi-libc as people link one (`guests/wasi-c`: `printf`,
/// `fprintf`, `clock_gettime`, `getenv`), through the library: its output where the
/// embedder says, its environment only what it was given.
#[test]
fn a_c_guest_that_prints_with_wasi_libc() {
    let bytes = common::canonical_wasm(abi::WASI_C_ARTIFACT);
    let module = GuestModule::from_bytes(&bytes, &Limits::default()).unwrap();
    assert!(module.uses_wasi());
    let (wasi, out, err) = captured();
    let mut guest = module
        .instantiate_with(&wasi.env("GREETING", "Hi"))
        .unwrap();
    assert_eq!(
        call(&mut guest, "greet", &[Val::String("Ada".into())]),
        Some(Val::String("Hi, Ada!".into()))
    );
    assert!(text(&out).starts_with("greet(Ada) at "), "{}", text(&out));
    assert_eq!(text(&err), "GREETING is Hi\n");
    let (wasi, _, err) = captured();
    let mut guest = module.instantiate_with(&wasi).unwrap();
    assert_eq!(
        call(&mut guest, "greet", &[Val::String("Ada".into())]),
        Some(Val::String("Hello, Ada!".into()))
    );
    assert_eq!(text(&err), "GREETING is not set\n");
}

/// The same guest through the binary: the result alone on standard output, the guest's
/// `printf` and `fprintf` on standard error, its environment from `--env`.
#[test]
fn the_binary_gives_a_wasi_guest_its_environment() {
    let path = temp_file("wasi-c.wasm", &common::canonical_wasm(abi::WASI_C_ARTIFACT));
    let out = common::memhost()
        .args([
            "call",
            "--no-cache",
            "--env",
            "GREETING=Bonjour",
            "--invoke",
        ])
        .arg(r#"greet("Ada")"#)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"Bonjour, Ada!\"\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("greet(Ada) at ") && stderr.ends_with("GREETING is Bonjour\n"),
        "{stderr}"
    );
    let out = common::memhost()
        .args([
            "call",
            "--no-cache",
            "--env",
            "GREETING",
            "--invoke",
            "greet(\"x\")",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A Rust guest built for `wasm32-wasip1` that panics: `std` writes the panic's text
/// through WASI, and it reaches the embedder's writer (the library) or standard error (the
/// binary), beside the trap that ends the call.
#[test]
fn a_rust_panic_reaches_standard_error() {
    let bytes = common::canonical_wasm(abi::CANONICAL_WASIP1_ARTIFACT);
    let module = GuestModule::from_bytes(&bytes, &Limits::default()).unwrap();
    let (wasi, _, err) = captured();
    let mut guest = module.instantiate_with(&wasi).unwrap();
    match guest.call("checked", &[Val::String("panic:the sky fell".into())]) {
        Err(Error::Trap { export, .. }) => assert_eq!(export, "checked"),
        other => panic!("expected a trap, got {other:?}"),
    }
    let text = text(&err);
    assert!(
        text.contains("panicked at") && text.contains("the sky fell"),
        "{text}"
    );

    let path = temp_file(
        "canonical-wasip1.wasm",
        &common::canonical_wasm(abi::CANONICAL_WASIP1_ARTIFACT),
    );
    let out = common::memhost()
        .args([
            "call",
            "--no-cache",
            "--invoke",
            r#"checked("panic:the sky fell")"#,
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("panicked at") && stderr.contains("the sky fell"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("error: "),
        "{stderr}"
    );
}
