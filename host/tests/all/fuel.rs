//! Fuel is charged for the work done: bulk operators cost what they move, read at run time,
//! so an honest guest that makes many small copies runs, and a guest that moves gigabytes
//! or fills memory forever is still stopped.

use crate::common;

use common::wasm;
use memhost::{
    BYTES_PER_UNIT, DEFAULT_FUEL, Error, GuestModule, Limits, RUNTIME_CALL, Region,
    UNITS_PER_ELEMENT, UNITS_PER_PAGE,
};

fn guest(wat: &str, limits: &Limits) -> memhost::Guest {
    GuestModule::from_bytes(&wasm(wat), limits)
        .unwrap()
        .instantiate()
        .unwrap()
}

/// What rustc 1.95 (`-C opt-level=z`, bulk memory on by default) emits for
///
/// ```ignore
/// let len = len.min(2048);
/// for i in 0..n { buf.copy_within(0..len, (i % 8) + 1); }
/// ```
///
/// (`$shift` below is its output, renamed), called by `load` with `n = 200`, `len = 8`: the
/// issue's 200 small copies, as a Rust guest that moves strings in a loop makes them.
const RUSTC_COPY_WITHIN: &str = r#"(module
  (memory (export "mem") 17)
  (func $shift (param i32 i32) (result i32)
    (local i32)
    local.get 1 i32.const 2048 local.get 1 i32.const 2048 i32.lt_u select local.set 2
    i32.const 0 local.set 1
    block
      loop
        local.get 0 local.get 1 i32.eq br_if 1
        block
          local.get 2 i32.eqz br_if 0
          local.get 1 i32.const 7 i32.and i32.const 1048577 i32.add
          i32.const 1048576 local.get 2 memory.copy
        end
        local.get 1 i32.const 1 i32.add local.set 1
        br 0
      end
    end
    local.get 2)
  (func (export "load") (result i32 i32)
    i32.const 1048576 (call $shift (i32.const 200) (i32.const 8))))"#;

#[test]
fn two_hundred_small_copies_run_with_the_default_budget() {
    let mut g = guest(RUSTC_COPY_WITHIN, &Limits::default());
    let region = g.load().unwrap();
    assert_eq!(
        region,
        Region {
            offset: 1 << 20,
            len: 8
        }
    );
    let used = g.fuel_used().unwrap();
    println!("200 copies of 8 bytes used {used} units of {DEFAULT_FUEL}");
    // Each copy costs its base and two units for its 8 bytes, plus the loop's operators.
    let copies = 200 * (RUNTIME_CALL + 8 / u64::from(BYTES_PER_UNIT));
    assert!(used >= copies && used < copies + 200 * 30, "{used}");
}

/// `load` runs `op` once; the fuel it used, less that of the same call with `op` at length
/// zero, is what the length cost.
fn cost_of(op: &str, len: u32) -> u64 {
    let wat = format!(
        r#"(module
             (memory (export "mem") 32)
             (table $t 10000 funcref)
             (elem $e func $f $f $f $f $f $f $f $f)
             (data $d "0123456789abcdef0123456789abcdef")
             (func $f)
             (func (export "load") (result i32 i32)
               {op}
               i32.const 0 i32.const 0))"#,
        op = op.replace("LEN", &len.to_string())
    );
    let mut g = guest(&wat, &Limits::default());
    g.load().unwrap();
    g.fuel_used().unwrap()
}

#[test]
fn each_bulk_operator_costs_what_it_moves() {
    let bytes = u64::from(BYTES_PER_UNIT);
    let elements = u64::from(UNITS_PER_ELEMENT);
    enum Unit {
        Bytes,
        Elements,
    }
    for (op, lengths, unit) in [
        (
            "(memory.copy (i32.const 1048576) (i32.const 0) (i32.const LEN))",
            &[0, 3, 4, 1000, 1 << 20][..],
            Unit::Bytes,
        ),
        (
            "(memory.fill (i32.const 0) (i32.const 7) (i32.const LEN))",
            &[0, 4, 65536, 2 << 20],
            Unit::Bytes,
        ),
        (
            "(memory.init $d (i32.const 0) (i32.const 0) (i32.const LEN))",
            &[0, 8, 32],
            Unit::Bytes,
        ),
        (
            "(table.fill $t (i32.const 0) (ref.null func) (i32.const LEN))",
            &[0, 1, 10_000],
            Unit::Elements,
        ),
        (
            "(table.copy $t $t (i32.const 0) (i32.const 5000) (i32.const LEN))",
            &[0, 5000],
            Unit::Elements,
        ),
        (
            "(table.init $t $e (i32.const 0) (i32.const 0) (i32.const LEN))",
            &[0, 8],
            Unit::Elements,
        ),
    ] {
        let base = cost_of(op, 0);
        for &len in lengths {
            assert_eq!(
                cost_of(op, len) - base,
                match unit {
                    Unit::Bytes => u64::from(len) / bytes,
                    Unit::Elements => u64::from(len) * elements,
                },
                "{op} of {len}"
            );
        }
    }
}

/// `load` repeats `op` `rounds` times (`u32::MAX`: forever), counting them at address 0.
fn repeat(op: &str, rounds: u32) -> String {
    format!(
        r#"(module
             (memory (export "mem") 32)
             (func (export "load") (result i32 i32)
               (loop $l
                 {op}
                 (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
                 (br_if $l (i32.lt_u (i32.load (i32.const 0)) (i32.const {rounds}))))
               i32.const 0 i32.const 0))"#,
        rounds = rounds.cast_signed()
    )
}

/// Runs `op` `rounds` times under the default budget: it must run out of fuel having moved
/// no more than the budget pays for. Returns the rounds done.
fn stopped_by_fuel(op: &str, rounds: u32, bytes_per_round: u64) -> u32 {
    let mut g = guest(&repeat(op, rounds), &Limits::default());
    let start = std::time::Instant::now();
    let err = g.load().unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(
            &err,
            Error::OutOfFuel {
                export,
                fuel: DEFAULT_FUEL
            } if export == "load"
        ),
        "{err:?}"
    );
    let mut rounds = [0; 4];
    g.read_into(0, &mut rounds).unwrap();
    let rounds = u32::from_le_bytes(rounds);
    let moved = u64::from(rounds) * bytes_per_round;
    println!(
        "{op}: stopped after {rounds} rounds, {} MiB moved, in {elapsed:?}",
        moved >> 20
    );
    assert!(rounds > 0);
    assert!(
        moved <= DEFAULT_FUEL * u64::from(BYTES_PER_UNIT),
        "{moved} bytes"
    );
    rounds
}

#[test]
fn moving_100_gb_a_mebibyte_at_a_time_is_stopped_by_fuel() {
    // 102 400 copies of 1 MiB are 100 GiB; the budget pays for 2 GB.
    let rounds = stopped_by_fuel(
        "(memory.copy (i32.const 1048576) (i32.const 0) (i32.const 1048576))",
        102_400,
        1 << 20,
    );
    assert!(rounds < 102_400);
}

#[test]
fn an_endless_fill_is_stopped_by_fuel() {
    stopped_by_fuel(
        "(memory.fill (i32.const 1048576) (i32.const 0) (i32.const 1048576))",
        u32::MAX,
        1 << 20,
    );
    // A fill of nothing still costs its base.
    stopped_by_fuel(
        "(memory.fill (i32.const 0) (i32.const 0) (i32.const 0))",
        u32::MAX,
        0,
    );
}

#[test]
fn after_running_out_a_genuine_trap_is_a_trap() {
    // `load` loops forever while byte 8 is 0, and traps with `unreachable` once it is 1.
    let wat = r#"(module
        (memory (export "mem") 1)
        (func (export "load") (result i32 i32)
          (loop $l (br_if $l (i32.eqz (i32.load8_u (i32.const 8)))))
          unreachable))"#;
    let mut limits = Limits::default();
    limits.fuel = Some(1_000_000);
    let mut g = guest(wat, &limits);
    assert!(matches!(g.load(), Err(Error::OutOfFuel { .. })));
    assert_eq!(g.fuel_used(), Some(1_000_000));
    g.write(8, &[1]).unwrap();
    let err = g.load().unwrap_err();
    assert!(
        matches!(&err, Error::Trap { export, trap } if trap == "unreachable" && export == "load"),
        "{err:?}"
    );
}

/// `load` grows by `delta` once and returns what the grow returned as its length; the
/// fuel used, and that result.
fn grow(grow: &str, delta: u32) -> (u64, i32) {
    let wat = format!(
        r#"(module
             (memory (export "mem") 1)
             (table $t 10 funcref)
             (func (export "load") (result i32 i32)
               i32.const 0
               {grow}))"#,
        grow = grow.replace("DELTA", &delta.cast_signed().to_string())
    );
    let mut g = guest(&wat, &Limits::default());
    let result = match g.load() {
        Ok(region) => region.len.cast_signed(),
        Err(Error::NegativeLength { len, .. }) => len,
        Err(e) => panic!("{grow} by {delta}: {e:?}"),
    };
    (g.fuel_used().unwrap(), result)
}

/// `memory.grow` and `table.grow` cost what they actually grow, read after they return:
/// growth past the cap returns -1 in the guest (as Wasm says) and costs only the call,
/// where charging the delta asked for ran out of fuel on `table.grow` by 0xFFFFFFFF.
#[test]
fn growth_costs_what_was_grown_and_past_the_cap_returns_minus_one() {
    let table = "(table.grow $t (ref.null func) (i32.const DELTA))";
    let memory = "(memory.grow (i32.const DELTA))";
    let (table_base, _) = grow(table, 0);
    let (memory_base, _) = grow(memory, 0);
    // Within the caps (10 elements of 10 000 at start; 1 page of 256): the old size, and
    // the units of what was grown.
    for (op, base, old, unit, deltas) in [
        (table, table_base, 10, UNITS_PER_ELEMENT, [1, 100, 9_990]),
        (memory, memory_base, 1, UNITS_PER_PAGE, [1, 16, 255]),
    ] {
        for delta in deltas {
            let (used, result) = grow(op, delta);
            assert_eq!(result, old, "{op} by {delta}: the old size");
            assert_eq!(
                used - base,
                u64::from(delta) * u64::from(unit),
                "{op} by {delta}"
            );
        }
    }
    // Past the caps (10 000 elements, 256 pages): -1, for the price of a call.
    for (op, delta) in [
        (table, 9_991),
        (table, u32::MAX),
        (memory, 256),
        (memory, 65_536),
        (memory, u32::MAX),
    ] {
        assert_eq!(
            grow(op, delta),
            (if op == table { table_base } else { memory_base }, -1),
            "{op} by {delta}"
        );
    }
}

/// A loop of an operator that calls into the runtime but moves nothing is stopped as soon
/// as any loop: each costs [`RUNTIME_CALL`], not one unit. (With one unit each, these loops
/// ran 3 to 8 s on a release build before fuel ran out.) Each round counts itself in
/// memory, so the bound is on rounds, not on a wall clock that a loaded machine stretches.
#[test]
fn loops_of_runtime_calls_are_stopped_within_the_budget() {
    let module = |op: &str| {
        format!(
            r#"(module
                 (memory (export "mem") 1)
                 (table $t 10 funcref)
                 (elem $e func $f)
                 (data $d "x")
                 (func $f)
                 (func (export "load") (result i32 i32)
                   (loop $l
                     {op}
                     (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
                     (br $l))
                   i32.const 0 i32.const 0))"#
        )
    };
    for op in [
        "(data.drop $d)",
        "(elem.drop $e)",
        "(drop (memory.size))",
        "(drop (memory.grow (i32.const 0)))",
        "(drop (memory.grow (i32.const 1000)))",
        "(drop (table.size $t))",
        "(drop (table.grow $t (ref.null func) (i32.const 0)))",
        "(drop (table.get $t (i32.const 1)))",
        "(table.set $t (i32.const 1) (ref.null func))",
        "(drop (ref.func $f))",
        "(drop (memory.atomic.notify (i32.const 0) (i32.const 1)))",
    ] {
        let mut g = guest(&module(op), &Limits::default());
        let start = std::time::Instant::now();
        let err = g.load().unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(err, Error::OutOfFuel { .. }), "{op}: {err:?}");
        let mut rounds = [0; 4];
        g.read_into(0, &mut rounds).unwrap();
        let rounds = u64::from(u32::from_le_bytes(rounds));
        println!("{op}: out of fuel after {rounds} rounds, {elapsed:?}");
        // Each round costs at least a call into the runtime: at most budget / RUNTIME_CALL
        // rounds (with one unit a call, there were RUNTIME_CALL times as many).
        assert!(rounds > 0, "{op}");
        assert!(
            rounds <= DEFAULT_FUEL / RUNTIME_CALL,
            "{op}: {rounds} rounds: a call into the runtime costs less than RUNTIME_CALL"
        );
    }
}
