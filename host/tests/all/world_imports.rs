//! Functions a guest's WIT world imports, given by the embedder in the canonical ABI
//! (`HostFunctions::func`): arguments lifted out of guest memory with every check, results
//! lowered back into it through the guest's own `cabi_realloc`, called while the guest is
//! on the stack; a function that fails, panics or returns the wrong type stops the guest
//! naming it; a guest that lies about its memory or whose allocator misbehaves is stopped
//! the same way; a world whose imports are not all given is refused, each one named.

use std::sync::{Arc, Mutex};

use memhost::{Error, GuestModule, HostFunctions, Limits, Val, Wit};

use crate::common;

const WIT: &str = "package t:imports;\n\
    interface config { get: func(key: string) -> option<string>; }\n\
    world w {\n\
      import log: func(msg: string);\n\
      import add: func(a: u32, b: u32) -> u32;\n\
      import config;\n\
      export run: func(s: string) -> string;\n\
      export sum: func(a: u32, b: u32) -> u32;\n\
      export lie: func(at: u32) -> u32;\n\
      export forever: func();\n\
    }\n";

/// `run(s)` logs `s`, looks it up in the configuration, and returns the value found, else
/// `s`. `sum` asks the host to add. `lie(at)` logs 10 bytes at `at`. The allocator bumps
/// from 4096, except that from its second call on (the first is the host's, for `run`'s
/// parameter), `$bad` makes it return that instead (when not -1), or spin (when -2).
const WAT: &str = r#"(module
  (import "$root" "log" (func $log (param i32 i32)))
  (import "$root" "add" (func $add (param i32 i32) (result i32)))
  (import "t:imports/config" "get" (func $get (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 4096))
  (global $bad (mut i32) (i32.const -1))
  (global $calls (mut i32) (i32.const 0))
  (global $call_out (mut i32) (i32.const 0))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    ;; From its `$call_out`th call on (0: never), it logs.
    (if (i32.and (i32.ne (global.get $call_out) (i32.const 0))
                 (i32.ge_u (global.get $calls) (global.get $call_out)))
      (then (call $log (i32.const 0) (i32.const 0))))
    (if (i32.gt_u (global.get $calls) (i32.const 1))
      (then
        (if (i32.eq (global.get $bad) (i32.const -2)) (then (loop $spin (br $spin))))
        (if (i32.ne (global.get $bad) (i32.const -1)) (then (return (global.get $bad))))))
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get 3)))
    (local.get $p))
  (func (export "run") (param $p i32) (param $l i32) (result i32)
    (call $log (local.get $p) (local.get $l))
    ;; option<string> comes back at 1024: discriminant, pointer, length.
    (call $get (local.get $p) (local.get $l) (i32.const 1024))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 1))
      (then
        (i32.store (i32.const 2048) (i32.load (i32.const 1028)))
        (i32.store (i32.const 2052) (i32.load (i32.const 1032))))
      (else
        (i32.store (i32.const 2048) (local.get $p))
        (i32.store (i32.const 2052) (local.get $l))))
    (i32.const 2048))
  (func (export "sum") (param i32 i32) (result i32)
    (call $add (local.get 0) (local.get 1)))
  (func (export "forever")
    (loop $again (drop (call $add (i32.const 1) (i32.const 2))) (br $again)))
  (func (export "lie") (param i32) (result i32)
    (call $log (local.get 0) (i32.const 10))
    (i32.const 0)))"#;

/// The world, read once (tests run side by side: one file, written once).
fn wit() -> Wit {
    static WORLD: std::sync::OnceLock<Wit> = std::sync::OnceLock::new();
    WORLD
        .get_or_init(|| {
            let path = common::temp_file("world-imports.wit", WIT.as_bytes());
            Wit::from_path(path, None).unwrap()
        })
        .clone()
}

fn load_wat(wat: &str, host: &HostFunctions, limits: &Limits) -> Result<GuestModule, Error> {
    GuestModule::from_bytes_with_imports(&common::wasm(wat), limits, Some(&wit()), None, host)
        .map(|(m, _)| m)
}

fn load(host: &HostFunctions) -> Result<GuestModule, Error> {
    load_wat(WAT, host, &Limits::default())
}

/// A logger, an adder, and a configuration of one key: what they were given, and them.
fn host() -> (HostFunctions, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let host = HostFunctions::default()
        .func("log", move |args| match args {
            [Val::String(s)] => {
                sink.lock().unwrap().push(s.clone());
                Ok(None)
            }
            other => Err(format!("unexpected {other:?}")),
        })
        .func("add", |args| match args {
            [Val::U32(a), Val::U32(b)] => Ok(Some(Val::U32(a.wrapping_add(*b)))),
            other => Err(format!("unexpected {other:?}")),
        })
        .func("t:imports/config#get", |args| match args {
            [Val::String(key)] if key == "greeting" => Ok(Some(Val::Option(Some(Box::new(
                Val::String("hello from the host".into()),
            ))))),
            [Val::String(_)] => Ok(Some(Val::Option(None))),
            other => Err(format!("unexpected {other:?}")),
        });
    (host, log)
}

fn string(s: &str) -> Val {
    Val::String(s.into())
}

#[test]
fn the_guest_calls_the_host_and_gets_values_back_in_its_memory() {
    let (host, log) = host();
    let mut guest = load(&host).unwrap().instantiate().unwrap();
    // The result lowered through the guest's `cabi_realloc`, re-entered while `run` ran.
    assert_eq!(
        guest.call("run", &[string("greeting")]).unwrap(),
        Some(string("hello from the host"))
    );
    assert_eq!(
        guest.call("run", &[string("other")]).unwrap(),
        Some(string("other"))
    );
    assert_eq!(*log.lock().unwrap(), ["greeting", "other"]);
    assert_eq!(
        guest.call("sum", &[Val::U32(40), Val::U32(2)]).unwrap(),
        Some(Val::U32(42))
    );
    assert_eq!(
        guest.invoke("sum(4294967295, 2)").unwrap().as_deref(),
        Some("1")
    );
}

#[test]
fn a_world_whose_imports_are_not_all_given_is_refused_naming_each() {
    let only_log = HostFunctions::default().func("log", |_| Ok(None));
    let Err(Error::Abi { problems, .. }) = load(&only_log) else {
        panic!("admitted without `add` and `get`");
    };
    let text = problems.join("\n");
    assert!(
        text.contains("`add: func(a: u32, b: u32) -> u32`"),
        "{text}"
    );
    assert!(
        text.contains("`t:imports/config#get: func(key: string) -> option<string>`"),
        "{text}"
    );
    assert!(!text.contains("`log"), "{text}");
}

#[test]
fn an_import_of_the_wrong_core_type_is_refused_saying_what_was_expected() {
    let (host, _) = host();
    let wat = WAT.replace(
        r#"(import "t:imports/config" "get" (func $get (param i32 i32 i32)))"#,
        r#"(import "t:imports/config" "get" (func $get (param i32 i32) (result i32)))"#,
    );
    let wat = wat.replace(
        "(call $get (local.get $p) (local.get $l) (i32.const 1024))",
        "(drop (call $get (local.get $p) (local.get $l)))",
    );
    let Err(Error::Abi { problems, .. }) = load_wat(&wat, &host, &Limits::default()) else {
        panic!("admitted an import of the wrong type");
    };
    let text = problems.join("\n");
    assert!(
        text.contains("import `t:imports/config.get` is (func (param i32 i32) (result i32)), expected (func (param i32 i32 i32))"),
        "{text}"
    );
}

/// The `HostFunction` error of a call, its import and why.
fn host_failure(result: Result<Option<Val>, Error>) -> (String, String) {
    match result {
        Err(Error::HostFunction { import, why, .. }) => (import, why),
        other => panic!("expected a host function's failure, got {other:?}"),
    }
}

#[test]
fn a_function_that_fails_panics_or_returns_the_wrong_type_stops_the_guest_naming_it() {
    let cases: [(&str, HostFunctions, &str); 4] = [
        (
            "fails",
            host()
                .0
                .func("t:imports/config#get", |_| Err("no config".into())),
            "no config",
        ),
        (
            "panics",
            host().0.func("t:imports/config#get", |_| panic!("boom")),
            "it panicked: boom",
        ),
        (
            "wrong type",
            host()
                .0
                .func("t:imports/config#get", |_| Ok(Some(Val::U32(1)))),
            "its result",
        ),
        (
            "no value",
            host().0.func("t:imports/config#get", |_| Ok(None)),
            "it returned no value for a function that returns option<string>",
        ),
    ];
    for (label, host, expected) in cases {
        let mut guest = load(&host).unwrap().instantiate().unwrap();
        let (import, why) = host_failure(guest.call("run", &[string("greeting")]));
        assert_eq!(import, "t:imports/config#get", "{label}");
        assert!(why.contains(expected), "{label}: {why}");
    }
}

#[test]
fn a_guest_that_lies_about_its_memory_is_stopped() {
    let (host, log) = host();
    let mut guest = load(&host).unwrap().instantiate().unwrap();
    let (import, why) = host_failure(guest.call("lie", &[Val::U32(65_530)]));
    assert_eq!(import, "log");
    assert!(
        why.contains("a string at 65530 of 10 bytes is past the end of memory"),
        "{why}"
    );
    assert!(
        log.lock().unwrap().is_empty(),
        "the function ran on a bad string"
    );
}

#[test]
fn an_allocator_that_misbehaves_while_the_host_lowers_a_result_stops_the_guest() {
    let (host, _) = host();
    // A block outside memory; none at all (null).
    for (bad, expected) in [
        (70_000, "the block `cabi_realloc` returned at 70000"),
        (0, "could not allocate 19 bytes (it returned 0)"),
    ] {
        let mut guest = {
            let wat = WAT.replace(
                "(global $bad (mut i32) (i32.const -1))",
                &format!("(global $bad (mut i32) (i32.const {bad}))"),
            );
            load_wat(&wat, &host, &Limits::default())
                .unwrap()
                .instantiate()
                .unwrap()
        };
        let (import, why) = host_failure(guest.call("run", &[string("greeting")]));
        assert_eq!(import, "t:imports/config#get");
        assert!(why.contains(expected), "{bad}: {why}");
    }
}

#[test]
fn an_allocator_that_spins_while_the_host_lowers_a_result_runs_out_of_the_calls_fuel() {
    let (host, _) = host();
    let wat = WAT.replace(
        "(global $bad (mut i32) (i32.const -1))",
        "(global $bad (mut i32) (i32.const -2))",
    );
    let limits = Limits::default().with_fuel(Some(1_000_000));
    let mut guest = load_wat(&wat, &host, &limits)
        .unwrap()
        .instantiate()
        .unwrap();
    match guest.call("run", &[string("greeting")]) {
        Err(Error::OutOfFuel { .. }) => {}
        other => panic!("expected out of fuel, got {other:?}"),
    }
}

/// The same functions with Rust types: nothing goes through `Val`.
fn typed_host() -> (HostFunctions, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let host = HostFunctions::default()
        .typed("log", move |(s,): (String,)| {
            sink.lock().unwrap().push(s);
            Ok(())
        })
        .typed("add", |(a, b): (u32, u32)| Ok((a.wrapping_add(b),)))
        .typed("t:imports/config#get", |(key,): (String,)| {
            Ok(((key == "greeting").then(|| "hello, typed".to_string()),))
        });
    (host, log)
}

#[test]
fn typed_functions_serve_the_same_calls() {
    let (host, log) = typed_host();
    let mut guest = load(&host).unwrap().instantiate().unwrap();
    let run = guest.typed::<(&str,), (String,)>("run").unwrap();
    assert_eq!(
        run.call(&mut guest, ("greeting",)).unwrap().0,
        "hello, typed"
    );
    assert_eq!(run.call(&mut guest, ("other",)).unwrap().0, "other");
    let sum = guest.typed::<(u32, u32), (u32,)>("sum").unwrap();
    assert_eq!(sum.call(&mut guest, (40, 2)).unwrap(), (42,));
    assert_eq!(*log.lock().unwrap(), ["greeting", "other"]);
}

#[test]
fn a_typed_function_of_other_types_is_refused_at_admission_saying_why() {
    let (host, _) = typed_host();
    let host = host.typed("add", |(a,): (String,)| Ok((u32::from(a.is_empty()),)));
    let Err(Error::Abi { problems, .. }) = load(&host) else {
        panic!("admitted a function of other types");
    };
    let text = problems.join("\n");
    assert!(
        text.contains("the host's function for `add: func(a: u32, b: u32) -> u32` has other types: 1 parameters for a function of 2"),
        "{text}"
    );
    let (host, _) = typed_host();
    let host = host.typed("add", |(a, b): (u32, u32)| Ok((u64::from(a + b),)));
    let Err(Error::Abi { problems, .. }) = load(&host) else {
        panic!("admitted a function of another result type");
    };
    assert!(
        problems.join("\n").contains("has other types"),
        "{problems:?}"
    );
}

/// The canonical ABI forbids a guest to call out of its instance while the host has it in
/// `cabi_realloc` (lowering a value into it) or in a post-return function, as wasmtime
/// does: an allocator that logs is stopped, whether the host lowers an export's parameter
/// or an import's result.
#[test]
fn an_allocator_that_calls_the_host_is_stopped() {
    // From the first call (the export's parameter), and from the second (`get`'s result).
    for (from, logged) in [(1, 0), (2, 1)] {
        let (host, log) = host();
        let wat = WAT.replace(
            "(global $call_out (mut i32) (i32.const 0))",
            &format!("(global $call_out (mut i32) (i32.const {from}))"),
        );
        let mut guest = load_wat(&wat, &host, &Limits::default())
            .unwrap()
            .instantiate()
            .unwrap();
        let result = guest.call("run", &[string("greeting")]);
        let Err(Error::HostFunction { import, why, .. }) = &result else {
            panic!("{from}: expected a refusal, got {result:?}");
        };
        // The refused call is `log`'s; when it came from `get`'s lowering, `get` fails too.
        assert!(
            import == "log" || import == "t:imports/config#get",
            "{import}"
        );
        assert!(
            why.contains("forbids calling out of the instance"),
            "{from}: {why}"
        );
        assert_eq!(log.lock().unwrap().len(), logged, "{from}");
    }
    let (host, _) = host();
    let wat = WAT.replace(
        "(global $call_out (mut i32) (i32.const 0))",
        "(global $call_out (mut i32) (i32.const 1))",
    );
    // Outside `cabi_realloc`, the same guest may call out: `sum` allocates nothing.
    let mut guest = load_wat(&wat, &host, &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap();
    assert_eq!(
        guest.call("sum", &[Val::U32(1), Val::U32(2)]).unwrap(),
        Some(Val::U32(3))
    );
}

/// A guest that calls the host without end is stopped by the call's fuel alone: each host
/// call is charged to it, as guest code is.
#[test]
fn calling_the_host_without_end_runs_out_of_fuel() {
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Arc::clone(&calls);
    let host = host().0.typed("add", move |(a, b): (u32, u32)| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((a.wrapping_add(b),))
    });
    let limits = Limits::default().with_fuel(Some(1_000_000));
    let mut guest = load_wat(WAT, &host, &limits)
        .unwrap()
        .instantiate()
        .unwrap();
    match guest.call("forever", &[]) {
        Err(Error::OutOfFuel { export, .. }) => assert_eq!(export, "forever"),
        other => panic!("expected out of fuel, got {other:?}"),
    }
    let n = calls.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        n > 100 && n < 1_000_000,
        "{n} host calls on 1000000 units of fuel"
    );
}
