//! How long one unit of fuel takes, for each kind of work a guest can do: plain operators,
//! and each bulk operator at small and large lengths. A unit should cost about the same
//! time whatever the operator, so that the budget bounds time whatever the guest does.
//!
//! ```sh
//! cargo run --release -p host --example fuel_calibration
//! ```
//!
//! Each case is a guest whose `load` repeats one operator; the example runs it a few times
//! and prints the median time per call, the fuel the call used (`Guest::fuel_used`), and
//! their ratio.

use std::time::Instant;

use memhost::{GuestModule, Limits};

/// `load` runs `body` `n` times; memory of 64 pages (4 MiB), a 10 000-element table, and a
/// 64 KiB passive data segment.
fn module(n: u32, body: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
          (memory (export "mem") 64 64)
          (table $t 10000 funcref)
          (elem $e func $f)
          (data $d "{zeros}")
          (func $f)
          (func (export "load") (result i32 i32) (local $i i32)
            (local.set $i (i32.const {n}))
            (loop $l
              {body}
              (local.set $i (i32.sub (local.get $i) (i32.const 1)))
              (br_if $l (local.get $i)))
            i32.const 0 i32.const 0))"#,
        zeros = "\\00".repeat(64 * 1024)
    );
    wat::parse_str(wat).expect("calibration WAT parses")
}

fn main() {
    const MIB: u32 = 1 << 20;
    let cases: Vec<(&str, u32, String)> = vec![
        (
            "plain i32 operators",
            1_000_000,
            "(drop (i32.add (i32.mul (local.get $i) (i32.const 3)) (i32.const 7)))".into(),
        ),
        ("memory.copy 8 B", 100_000, copy(8)),
        ("memory.copy 1 KiB", 100_000, copy(1024)),
        ("memory.copy 64 KiB", 5_000, copy(64 * 1024)),
        ("memory.copy 1 MiB", 300, copy(MIB)),
        ("memory.fill 8 B", 100_000, fill(8)),
        ("memory.fill 64 KiB", 5_000, fill(64 * 1024)),
        ("memory.fill 1 MiB", 300, fill(MIB)),
        (
            "memory.init 64 KiB",
            5_000,
            "(memory.init $d (i32.const 0) (i32.const 0) (i32.const 65536))".into(),
        ),
        (
            "table.fill 10000",
            2_000,
            "(table.fill $t (i32.const 0) (ref.null func) (i32.const 10000))".into(),
        ),
        (
            "table.copy 5000",
            2_000,
            "(table.copy $t $t (i32.const 0) (i32.const 5000) (i32.const 5000))".into(),
        ),
        // Operators that call into the runtime and move nothing: each costs RUNTIME_CALL.
        ("data.drop", 1_000_000, "(data.drop $d)".into()),
        ("elem.drop", 1_000_000, "(elem.drop $e)".into()),
        ("memory.size", 1_000_000, "(drop (memory.size))".into()),
        (
            "memory.grow 0",
            1_000_000,
            "(drop (memory.grow (i32.const 0)))".into(),
        ),
        (
            "memory.grow past cap",
            1_000_000,
            "(drop (memory.grow (i32.const 1)))".into(),
        ),
        ("table.size", 1_000_000, "(drop (table.size $t))".into()),
        (
            "table.grow 0",
            1_000_000,
            "(drop (table.grow $t (ref.null func) (i32.const 0)))".into(),
        ),
        (
            "table.get",
            1_000_000,
            "(drop (table.get $t (i32.const 5)))".into(),
        ),
        (
            "table.set",
            1_000_000,
            "(table.set $t (i32.const 5) (ref.func $f))".into(),
        ),
        ("ref.func", 1_000_000, "(drop (ref.func $f))".into()),
        (
            "memory.atomic.notify",
            1_000_000,
            "(drop (memory.atomic.notify (i32.const 0) (i32.const 1)))".into(),
        ),
    ];
    println!(
        "bytes per unit {}, units per element {}, cost of a runtime call {} units",
        memhost::BYTES_PER_UNIT,
        memhost::UNITS_PER_ELEMENT,
        memhost::RUNTIME_CALL
    );
    println!(
        "{:<22} {:>12} {:>14} {:>10}",
        "case", "ms per call", "units per call", "ns per unit"
    );
    let mut limits = Limits::default();
    limits.fuel = Some(u64::MAX / 4);
    limits.max_memory_bytes = 64 << 16;
    for (name, n, body) in cases {
        let module = GuestModule::from_bytes(&module(n, &body), &limits).expect("compiles");
        let mut guest = module.instantiate().expect("instantiates");
        let mut times = Vec::new();
        let mut units = 0;
        for _ in 0..7 {
            let start = Instant::now();
            guest.load().expect("runs");
            times.push(start.elapsed());
            units = guest.fuel_used().expect("metered");
        }
        times.sort();
        let median = times[times.len() / 2];
        #[allow(clippy::cast_precision_loss, reason = "a printed ratio")]
        let per_unit = median.as_nanos() as f64 / units as f64;
        println!(
            "{name:<22} {:>12.3} {units:>14} {per_unit:>10.3}",
            median.as_secs_f64() * 1e3
        );
    }
}

fn copy(len: u32) -> String {
    format!("(memory.copy (i32.const 2097152) (i32.const 0) (i32.const {len}))")
}

fn fill(len: u32) -> String {
    format!("(memory.fill (i32.const 0) (i32.const 7) (i32.const {len}))")
}
