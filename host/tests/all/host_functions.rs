//! The embedder's functions in the guide's ABI (`HostFunctions`): a guest hands the host a
//! region of its memory (`env.log(ptr, len)`), as the Wasmer guide's host reads `load`'s.
//! The region is checked and charged before the function sees it; a function that fails or
//! panics stops the guest with a typed error naming it; a module importing a function
//! nobody gives, or giving it another type, is refused at admission.

use std::sync::{Arc, Mutex};

use memhost::{Error, ErrorKind, GuestModule, HostFunctions, Limits};

/// The guide's module, whose `transform` logs the region `load` reports through `env.log`
/// and returns its length; the region starts as (`ptr`, `len`), its string at 42.
fn module_wat(import_ty: &str, ptr: i32, len: i32) -> String {
    format!(
        r#"(module
  (import "env" "log" (func $log {import_ty}))
  (memory (export "mem") 1)
  (global $ptr (mut i32) (i32.const {ptr}))
  (global $len (mut i32) (i32.const {len}))
  (func (export "load") (result i32 i32) global.get $ptr global.get $len)
  (func (export "set_len") (param i32) (result i32) (global.set $len (local.get 0)) i32.const 0)
  (func (export "capacity") (result i32) i32.const 65000)
  (func (export "transform") (result i32)
    (call $log (global.get $ptr) (global.get $len))
    global.get $len)
  (data (i32.const 42) "Hello, World!"))"#
    )
}

fn wasm() -> Vec<u8> {
    wat::parse_str(module_wat("(param i32 i32)", 42, 13)).unwrap()
}

fn load(host: &HostFunctions, limits: &Limits) -> Result<GuestModule, Error> {
    load_bytes(&wasm(), host, limits)
}

fn load_bytes(bytes: &[u8], host: &HostFunctions, limits: &Limits) -> Result<GuestModule, Error> {
    GuestModule::from_bytes_with_imports(bytes, limits, None, None, host).map(|(m, _)| m)
}

fn logger() -> (HostFunctions, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let host = HostFunctions::default().bytes("env", "log", move |bytes| {
        let line = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        sink.lock().unwrap().push(line.to_string());
        Ok(())
    });
    (host, lines)
}

#[test]
fn the_guest_hands_the_host_a_region_to_read() {
    let (host, lines) = logger();
    let mut guest = load(&host, &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap();
    assert_eq!(guest.transform().unwrap(), 13);
    guest.replace_string("Hello, Wasmer!").unwrap();
    assert_eq!(guest.transform().unwrap(), 14);
    assert_eq!(*lines.lock().unwrap(), ["Hello, World!", "Hello, Wasmer!"]);
}

#[test]
fn an_import_nobody_gives_or_of_another_type_is_refused_at_admission() {
    let err = GuestModule::from_bytes(&wasm(), &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::Abi { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("imports `env.log` (func (param i32 i32))"),
        "{err}"
    );
    let (host, _) = logger();
    let other = wat::parse_str(module_wat("(param i32)", 42, 13)).unwrap();
    let err = GuestModule::from_bytes_with_imports(&other, &Limits::default(), None, None, &host)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("imports `env.log` (func (param i32))"),
        "{err}"
    );
    let named_otherwise = HostFunctions::default().bytes("env", "print", |_| Ok(()));
    assert!(load(&named_otherwise, &Limits::default()).is_err());
}

/// A function that fails, or panics, stops the guest with its error, naming the import;
/// so does a region outside guest memory, which the function never sees.
#[test]
fn failures_panics_and_bad_regions_stop_the_guest_naming_the_import() {
    let calls = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&calls);
    let host = HostFunctions::default().bytes("env", "log", move |bytes| {
        *counted.lock().unwrap() += 1;
        match bytes {
            b"Hello, World!" => Err("not today".into()),
            _ => panic!("boom"),
        }
    });
    let module = load(&host, &Limits::default()).unwrap();
    let err = module.instantiate().unwrap().transform().unwrap_err();
    assert!(
        matches!(&err, Error::HostFunction { import, why, .. } if import == "env.log" && why == "not today"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Guest);
    assert_eq!(
        err.to_string(),
        "guest `transform`: host function `env.log` failed: not today"
    );
    let mut guest = module.instantiate().unwrap();
    guest.replace_string("other").unwrap();
    let err = guest.transform().unwrap_err();
    assert!(
        err.to_string().ends_with("failed: it panicked: boom"),
        "{err}"
    );
    assert_eq!(*calls.lock().unwrap(), 2);
    for (ptr, len) in [(65530, 7), (65536, 1), (-1, 2)] {
        let bad = wat::parse_str(module_wat("(param i32 i32)", ptr, len)).unwrap();
        let module = load_bytes(&bad, &host, &Limits::default()).unwrap();
        let err = module.instantiate().unwrap().transform().unwrap_err();
        assert!(err.to_string().contains("outside guest memory"), "{err}");
    }
    assert_eq!(*calls.lock().unwrap(), 2, "the function saw no bad region");
}

/// Each call costs fuel for the bytes it hands over: a guest handing the host 60 000 bytes
/// a call, endlessly, is stopped by fuel.
#[test]
fn the_bytes_handed_over_are_charged_to_fuel() {
    let wat = module_wat("(param i32 i32)", 0, 60_000).replace(
        "(call $log (global.get $ptr) (global.get $len))",
        "(loop $l (call $log (global.get $ptr) (global.get $len)) (br $l))",
    );
    let bytes = wat::parse_str(wat).unwrap();
    let seen = Arc::new(Mutex::new(0u64));
    let counted = Arc::clone(&seen);
    let host = HostFunctions::default().bytes("env", "log", move |b| {
        *counted.lock().unwrap() += b.len() as u64;
        Ok(())
    });
    let limits = Limits::default().with_fuel(Some(1_000_000));
    let err = load_bytes(&bytes, &host, &limits)
        .unwrap()
        .instantiate()
        .unwrap()
        .transform()
        .unwrap_err();
    assert!(matches!(err, Error::OutOfFuel { .. }), "{err:?}");
    let seen = *seen.lock().unwrap();
    assert!(
        seen > 0 && seen <= 1_000_000 * u64::from(memhost::BYTES_PER_UNIT),
        "{seen} bytes handed over"
    );
}
