//! Shared by the integration tests: the built guest, and small modules written as WAT.
#![allow(dead_code, reason = "each test crate uses part of this module")]

use std::path::{Path, PathBuf};

use memhost::{Guest, GuestModule, Limits};

pub mod large;

/// The `memhost` binary, as a command to run: its default module cache under this test
/// binary's scratch directory, never the user's own (a test that names `--cache-dir`, or
/// sets `XDG_CACHE_HOME` itself, overrides it).
pub fn memhost() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_memhost"));
    cmd.env(
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"),
    );
    cmd
}

/// `memhost call --no-cache --wit WIT MODULE --invoke CALL`, run to its end with no input.
pub fn call_with_wit(
    wit: impl AsRef<std::ffi::OsStr>,
    module: impl AsRef<std::ffi::OsStr>,
    invoke: &str,
) -> std::process::Output {
    memhost()
        .args(["call", "--no-cache", "--wit"])
        .arg(wit)
        .arg(module)
        .args(["--invoke", invoke])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs")
}

/// `target/guest/guest.wasm`, written by `cargo xtask build-guest`.
pub fn guest_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(abi::GUEST_ARTIFACT)
}

/// The built guest's bytes. Fails the test, naming the command, when it was not built:
/// these tests never pass by skipping.
pub fn guest_wasm() -> Vec<u8> {
    let path = guest_path();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the guest artifact {} is missing ({e}).\n\
             Run the tests with `cargo xtask test`, or build it first with `cargo xtask build-guest`.",
            path.display()
        )
    })
}

/// A fresh instance of the built guest.
pub fn guest() -> Guest {
    GuestModule::from_bytes(&guest_wasm(), &Limits::default())
        .expect("the built guest compiles")
        .instantiate()
        .expect("the built guest instantiates")
}

/// The module of the Wasmer guide's own example: only `mem` and `load`, string at 42.
pub const SEED_WAT: &str = r#"
(module
  (memory (export "mem") 1)
  (global $offset i32 (i32.const 42))
  (global $length (mut i32) (i32.const 13))
  (func (export "load") (result i32 i32)
    global.get $offset
    global.get $length)
  (data (i32.const 42) "Hello, World!"))
"#;

/// The guide's module with a static buffer of 100 bytes the host may fill: `set_len`
/// (refusing more than 100 with -2), `capacity`, and a `transform` that changes nothing.
pub fn static_buffer_wat() -> String {
    SEED_WAT.replace(
        "(data (i32.const 42)",
        r#"(func (export "set_len") (param i32) (result i32)
             (if (i32.gt_u (local.get 0) (i32.const 100)) (then (return (i32.const -2))))
             (global.set $length (local.get 0)) i32.const 0)
           (func (export "capacity") (result i32) i32.const 100)
           (func (export "transform") (result i32) global.get $length)
           (data (i32.const 42)"#,
    )
}

pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("test WAT parses")
}

/// An empty directory `group/name` of its own under cargo's scratch directory for tests
/// (emptied first, should an earlier run have left it).
#[allow(
    dead_code,
    reason = "not every test binary that shares this module needs it"
)]
pub fn scratch(group: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A module whose one function `f` takes one `(i32, i32)` (a string or list) and returns
/// an `i32` (its length), for `--wit` worlds to describe: `f: func(s: string) -> u32`.
#[allow(
    dead_code,
    reason = "not every test binary that shares this module needs it"
)]
pub fn pair_module() -> Vec<u8> {
    wasm(
        r#"(module
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
            (func (export "f") (param i32 i32) (result i32) local.get 1))"#,
    )
}

/// Writes `bytes` to a file of its own under cargo's scratch directory for tests.
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("host-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A copy of the whole of the guest's memory.
pub fn snapshot(guest: &Guest) -> Vec<u8> {
    let len = u32::try_from(guest.memory_size()).expect("test memories are small");
    guest.read(memhost::Region { offset: 0, len }).unwrap()
}

/// What a run of the binary cost: its exit code, peak resident set and CPU time.
pub struct Usage {
    pub code: i32,
    /// Bytes: the binary's own `VmHWM`, which it prints at exit (`--peak-memory`). Not
    /// `wait4`'s `ru_maxrss`: Linux counts in that the peak of the process that started the
    /// child, when higher (it carries over `exec`), so it measured the test binary too.
    pub peak_rss: i64,
    /// User plus system time.
    pub cpu: std::time::Duration,
}

/// Runs the binary with `args` and returns what it cost. It compiles the module every time
/// (`--no-cache`), so that runs compare alike whatever the cache holds.
pub fn run_measured(args: &[&std::ffi::OsStr]) -> Usage {
    run_measured_with(
        args,
        std::process::Stdio::null(),
        std::process::Stdio::null(),
    )
    .0
}

/// As [`run_measured`], with standard input and output given; also returns standard error
/// (without the line of the peak).
pub fn run_measured_with(
    args: &[&std::ffi::OsStr],
    stdin: std::process::Stdio,
    stdout: std::process::Stdio,
) -> (Usage, String) {
    #[allow(
        clippy::zombie_processes,
        reason = "reaped by `wait4` below, which also gives its usage"
    )]
    let child = memhost()
        .args(args)
        .args(["--no-cache", "--peak-memory"])
        .stdin(stdin)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    reap_piped(child)
}

/// [`reap`], reading the child's piped standard error whole first.
pub fn reap_piped(mut child: std::process::Child) -> (Usage, String) {
    use std::io::Read as _;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    reap(child, stderr)
}

/// Waits for `child` (not yet waited for, started with `--peak-memory`, its standard error
/// read whole) and returns what it cost and its standard error less the peak's line; fails
/// the test if a signal killed it or it printed no peak.
pub fn reap(child: std::process::Child, mut stderr: String) -> (Usage, String) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills in; zeroed is a valid value of it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status),
        "the binary was killed by a signal: {stderr}"
    );
    let time = |t: libc::timeval| {
        std::time::Duration::from_secs(u64::try_from(t.tv_sec).unwrap())
            + std::time::Duration::from_micros(u64::try_from(t.tv_usec).unwrap())
    };
    let body = stderr.trim_end_matches('\n');
    let (rest, last) = body.rsplit_once('\n').unwrap_or(("", body));
    let peak = last
        .strip_prefix("peak memory: ")
        .and_then(|l| l.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `peak memory` line last on standard error: {stderr}"));
    stderr = if rest.is_empty() {
        String::new()
    } else {
        format!("{rest}\n")
    };
    let usage = Usage {
        code: libc::WEXITSTATUS(status),
        peak_rss: peak,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    };
    (usage, stderr)
}

/// Runs the binary with `args`: its exit code and peak resident set in bytes.
pub fn peak_rss(args: &[&std::ffi::OsStr]) -> (i32, i64) {
    let usage = run_measured(args);
    (usage.code, usage.peak_rss)
}

/// Starts `cmd` with its standard input, output and error all piped.
pub fn spawn_piped(cmd: &mut std::process::Command) -> std::process::Child {
    use std::process::Stdio;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the binary with `args`, `input` written to its standard input from a thread of its
/// own (so that neither side can block the other), and returns what it printed.
pub fn run_with_stdin(args: &[&std::ffi::OsStr], input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = spawn_piped(memhost().args(args));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // The binary may stop reading early (past the memory cap): a broken pipe is fine here.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// `target/guest/canonical.wasm` (the Rust wit-bindgen guest) or
/// `target/guest/canonical-c.wasm` (the C one), written by `cargo xtask build-guest --all`. Fails
/// the test, naming the command, when it was not built.
pub fn canonical_wasm(artifact: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(artifact);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the canonical guest {} is missing ({e}).\n\
             Run the tests with `cargo xtask test`, or build it first with `cargo xtask build-guest --all`.",
            path.display()
        )
    })
}

/// The WIT world of the canonical guests, parsed: `wit/guest.wit`.
pub fn test_world() -> (wit_parser::Resolve, wit_parser::WorldId) {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit"))
        .expect("wit/ parses");
    let world = resolve
        .select_world(&[pkg], Some("guest"))
        .expect("the world");
    (resolve, world)
}
