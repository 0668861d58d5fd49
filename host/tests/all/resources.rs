//! Memory- and table-hungry guests, run through the `host` binary: its peak resident memory
//! (its own `VmHWM`, printed by `--peak-memory`) must stay within what the cap allows plus what the host needs anyway.
//! The figures are printed; run with `--nocapture` to see them.

use crate::common;

use common::{guest_path, peak_rss, temp_file, wasm};

const MIB: i64 = 1 << 20;

/// `load` grows the memory a page at a time until `memory.grow` fails, then writes a byte
/// into every 4 KiB of it, so that every page the cap allows is resident.
const MEMORY_HOG: &str = r#"
(module
  (memory (export "mem") 1)
  (func (export "load") (result i32 i32) (local $addr i32)
    (block $full
      (loop $grow
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $grow)))
    (local.set $addr (i32.const 65536))
    (block $done
      (loop $touch
        (br_if $done (i32.ge_u (local.get $addr) (i32.mul (memory.size) (i32.const 65536))))
        (i32.store8 (local.get $addr) (i32.const 1))
        (local.set $addr (i32.add (local.get $addr) (i32.const 4096)))
        (br $touch)))
    i32.const 0 i32.const 0))
"#;

/// `load` grows an unbounded table by ten million entries (about 80 MB uncapped), then by
/// as many as the cap allows.
const TABLE_HOG: &str = r#"
(module
  (memory (export "mem") 1)
  (table $t 1 funcref)
  (func (export "load") (result i32 i32)
    (i32.store (i32.const 0) (table.grow $t (ref.null func) (i32.const 10000000)))
    (i32.store (i32.const 4) (table.grow $t (ref.null func) (i32.const 9999)))
    i32.const 0 i32.const 0))
"#;

#[test]
fn hungry_guests_stay_within_the_caps() {
    assert!(guest_path().exists(), "run `cargo xtask build-guest` first");
    let (code, base) = peak_rss(&[]);
    assert_eq!(code, 0);

    let memory_hog = temp_file("memory-hog.wasm", &wasm(MEMORY_HOG));
    let (code, capped) = peak_rss(&[memory_hog.as_os_str()]);
    assert_eq!(code, 0);
    let (code, capped_4) = peak_rss(&[
        "--max-memory".as_ref(),
        "4194304".as_ref(),
        memory_hog.as_os_str(),
    ]);
    assert_eq!(code, 0);

    let table_hog = temp_file("table-hog.wasm", &wasm(TABLE_HOG));
    let (code, table) = peak_rss(&[table_hog.as_os_str()]);
    assert_eq!(code, 0);

    println!(
        "peak RSS: demo {} KiB; memory hog (16 MiB cap) {} KiB; memory hog (4 MiB cap) {} KiB; table hog {} KiB",
        base / 1024,
        capped / 1024,
        capped_4 / 1024,
        table / 1024
    );
    // The hog touches every page it may have: its peak is the demo's plus the cap, give or
    // take what the allocator and the compiler do differently (a few MiB).
    let slack = 8 * MIB;
    assert!(
        capped <= base + 16 * MIB + slack,
        "memory hog: {capped} > {base} + 16 MiB"
    );
    assert!(
        capped >= base + 12 * MIB,
        "the hog did not touch its memory: {capped} vs {base}"
    );
    assert!(
        capped_4 <= base + 4 * MIB + slack,
        "memory hog at 4 MiB: {capped_4}"
    );
    assert!(table <= base + slack, "table hog: {table} > {base}");
}

#[test]
fn table_grow_past_the_cap_returns_minus_one_in_the_guest() {
    let module =
        memhost::GuestModule::from_bytes(&wasm(TABLE_HOG), &memhost::Limits::default()).unwrap();
    let mut g = module.instantiate().unwrap();
    g.load().unwrap();
    let results = g.read(memhost::Region { offset: 0, len: 8 }).unwrap();
    // Ten million: refused. 9999 more on top of 1: exactly the 10 000 cap, granted (old size 1).
    assert_eq!(
        results,
        [(-1i32).to_le_bytes(), 1i32.to_le_bytes()].concat()
    );
}
