//! Arbitrary modules and arbitrary `load` results through the host library.
//!
//! Each input is one of:
//! - raw bytes, as a module (not Wasm, truncated, anything);
//! - a module from `wasm-smith` with the ABI's exports (`mem`, `load`, and a random subset of
//!   `capacity`, `set_len`, `transform`), whose code is random;
//! - a fixed guest whose `load` returns a fuzzed `(offset, length)` over fuzzed bytes.
//!
//! The library must never panic, and must stop every guest within its limits; for the
//! fixed guest, what it reads must be exactly the bytes in memory.
//!
//! Run it without AddressSanitizer (`cargo +nightly fuzz run -s none guest`): wasmer's trap
//! handling trips ASan's stack checks on the first guest trap (wasmerio/wasmer#5260).
#![no_main]

use std::sync::OnceLock;

use memhost::{Error, GuestModule, Limits, Region};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.fuel = Some(100_000);
    limits.max_memory_bytes = 1 << 20;
    limits.max_table_elements = 1000;
    limits
}

/// The ABI's exports, for `wasm-smith` to reproduce; bit i of `mask` keeps optional export i.
fn abi_exports(mask: u8) -> Vec<u8> {
    let optional = [
        r#"(func (export "capacity") (result i32) unreachable)"#,
        r#"(func (export "set_len") (param i32) (result i32) unreachable)"#,
        r#"(func (export "transform") (result i32) unreachable)"#,
    ];
    let mut wat = String::from(
        r#"(module (memory (export "mem") 1 2) (func (export "load") (result i32 i32) unreachable)"#,
    );
    for (i, export) in optional.iter().enumerate() {
        if mask & (1 << i) != 0 {
            wat.push_str(export);
        }
    }
    wat.push(')');
    wat::parse_str(&wat).expect("the ABI module parses")
}

/// Drives a guest through every operation of the library; errors are fine, panics are not.
fn exercise(module: &GuestModule, text: &str) {
    let Ok(mut g) = module.instantiate() else {
        return;
    };
    let _ = g.string();
    let _ = g.capacity();
    if let Ok(region) = g.load() {
        let _ = g.str(region);
        let _ = g.bytes(region);
    }
    let _ = g.write_string(text);
    let _ = g.replace_string(text);
    let _ = g.transform();
    let _ = g.string();
}

fn fixed_guest() -> &'static GuestModule {
    static MODULE: OnceLock<GuestModule> = OnceLock::new();
    MODULE.get_or_init(|| {
        let wat = r#"(module
            (memory (export "mem") 1)
            (func (export "load") (result i32 i32) (i32.load (i32.const 0)) (i32.load (i32.const 4))))"#;
        GuestModule::from_bytes(&wat::parse_str(wat).unwrap(), &limits()).unwrap()
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    match u.int_in_range(0..=2u8)? {
        0 => {
            let bytes: &[u8] = u.arbitrary()?;
            if let Ok(module) = GuestModule::from_bytes(bytes, &limits()) {
                exercise(&module, "Hello, Wasmer!");
            }
        }
        1 => {
            let mut config: wasm_smith::Config = u.arbitrary()?;
            config.exports = Some(abi_exports(u.arbitrary()?));
            config.max_memories = 1;
            config.max_imports = 0;
            let module = wasm_smith::Module::new(config, u)?;
            let text: String = u.arbitrary()?;
            if let Ok(module) = GuestModule::from_bytes(&module.to_bytes(), &limits()) {
                exercise(&module, &text);
            }
        }
        _ => {
            let mut g = fixed_guest()
                .instantiate()
                .expect("the fixed guest instantiates");
            let (offset, len): (u32, i32) = u.arbitrary()?;
            let at: u16 = u.arbitrary()?;
            let bytes: &[u8] = u.arbitrary()?;
            let at = 8 + u32::from(at);
            let _ = g.write(at, bytes);
            g.write(0, &[offset.to_le_bytes(), len.to_le_bytes()].concat())
                .unwrap();
            let memory = g
                .read(Region {
                    offset: 0,
                    len: 65536,
                })
                .unwrap();
            match g.string() {
                Ok(s) => {
                    let start = offset as usize;
                    assert_eq!(s.as_bytes(), &memory[start..start + s.len()]);
                    assert_eq!(s.len() as i64, i64::from(len));
                }
                Err(Error::NegativeLength { .. }) => assert!(len < 0),
                Err(Error::RangeOverflow { .. } | Error::OutOfBounds { .. }) => {
                    assert!(len >= 0 && u64::from(offset) + len as u64 > 65536);
                }
                Err(Error::InvalidUtf8 { valid_up_to, .. }) => {
                    let start = offset as usize;
                    let e = std::str::from_utf8(&memory[start..start + len as usize]).unwrap_err();
                    assert_eq!(valid_up_to as usize, e.valid_up_to());
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
