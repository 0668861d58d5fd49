//! Shared by the integration tests: the built guest, and small modules written as WAT.
#![allow(dead_code, reason = "each test crate uses part of this module")]

use std::path::{Path, PathBuf};

use host::{Guest, GuestModule, Limits};

/// `target/guest/guest.wasm`, written by `cargo xtask build-guest`.
pub fn guest_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guest/guest.wasm")
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

pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("test WAT parses")
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
    guest.read(host::Region { offset: 0, len }).unwrap()
}
