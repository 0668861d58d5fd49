//! The canonical ABI on generated worlds (`common/worlds.rs`), against wasmtime's Component
//! Model on the same module componentized: for each value drawn, both lower it into the
//! same bytes (through memory and flat), and both lift those bytes back to the value.
//!
//! `cargo xtask test` runs 20 fixed seeds, 200 values of each tested type.
//! `cargo xtask generated --seconds N` runs new seeds until N seconds have passed
//! (`MEMHOST_GENERATED_SECONDS`, from `MEMHOST_GENERATED_SEED`), and prints the seed of any
//! mismatch with the world's WIT.

mod common;
#[path = "common/oracle.rs"]
mod oracle;
#[path = "common/worlds.rs"]
mod worlds;

use std::time::{Duration, Instant};

use host::{GuestModule, Limits, Val};

use oracle::{Gen, Oracle, same};
use worlds::{Coverage, World};

const FIXED_SEEDS: u64 = 20;
const VALUES: usize = 200;

/// What one world's run found wrong, if anything.
fn check_world(w: &World, values: usize) -> Result<usize, String> {
    let mut ours = GuestModule::from_bytes(&w.module, &Limits::default())
        .map_err(|e| format!("the library refuses the module: {e}: {:#?}", e.problems()))?
        .instantiate()
        .map_err(|e| format!("the library cannot instantiate it: {e}"))?;
    let mut theirs = Oracle::new(&w.module);
    let mut draw = Gen(w.seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    let mut calls = 0;
    let mut both = |name: &str, params: &[Val]| -> Result<Option<Val>, String> {
        let a = ours
            .call(name, params)
            .map_err(|e| format!("{name}({params:?}): the library: {e}"))?;
        let b = theirs
            .try_call(name, params)
            .map_err(|e| format!("{name}({params:?}): wasmtime: {e}"))?;
        calls += 1;
        match (&a, &b) {
            (Some(x), Some(y)) if same(x, y) => Ok(a),
            _ => Err(format!(
                "{}:\n  the library: {}\n  wasmtime:    {}",
                short(&format!("{name}({params:?})")),
                short(&format!("{a:?}")),
                short(&format!("{b:?}"))
            )),
        }
    };
    for t in &w.tested {
        for _ in 0..values {
            let v = draw.val(&w.resolve, &t.ty, 0);
            let pad = Val::Tuple((0..16).map(|_| Val::U64(draw.next())).collect());
            // Lowered through memory: the same bytes in the same places.
            let Some(Val::Tuple(image)) = both(&t.mem, &[v.clone(), pad])? else {
                return Err(format!("{}: not a tuple", t.mem));
            };
            // Lowered flat: the same core values.
            both(&t.flat, std::slice::from_ref(&v))?;
            // Lifted from those bytes: the value itself.
            let back = both(&t.get, &image)?;
            if !back.as_ref().is_some_and(|b| same(b, &v)) {
                return Err(format!(
                    "{}: lowered {}, lifted back {} (both engines)",
                    t.get,
                    short(&format!("{v:?}")),
                    short(&format!("{back:?}"))
                ));
            }
        }
    }
    Ok(calls)
}

/// `text`, cut to 4000 characters.
fn short(text: &str) -> String {
    match text.char_indices().nth(4000) {
        Some((at, _)) => format!("{}… ({} characters)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

fn run(seed: u64, values: usize) -> usize {
    let w = World::generate(seed);
    check_world(&w, values).unwrap_or_else(|e| {
        let path = common::temp_file(&format!("generated-{seed}.wit"), w.wit.as_bytes());
        panic!(
            "seed {seed} (world written to {}): {e}\n\
             rerun it alone: MEMHOST_GENERATED_SEED={seed} MEMHOST_GENERATED_SECONDS=1 \
             cargo xtask generated",
            path.display()
        )
    })
}

/// 20 fixed worlds × 200 values of each tested type; and the worlds cover what the module
/// docs of `common/worlds.rs` say they do.
#[test]
fn generated_worlds_agree_with_wasmtime() {
    if let Some(secs) = std::env::var_os("MEMHOST_GENERATED_SECONDS") {
        return run_for(Duration::from_secs(
            secs.to_str().and_then(|s| s.parse().ok()).expect("seconds"),
        ));
    }
    let mut coverage = Coverage::default();
    let mut calls = 0;
    for seed in 0..FIXED_SEEDS {
        calls += run(seed, VALUES);
        coverage.add(&World::generate(seed));
    }
    eprintln!("{FIXED_SEEDS} worlds, {calls} calls agree with wasmtime; {coverage:#?}");
    assert!(coverage.depth >= 4, "{coverage:?}");
    assert!(coverage.max_variant_cases > 256, "{coverage:?}");
    assert!(coverage.max_enum_cases > 256, "{coverage:?}");
    assert!(coverage.max_flags > 16, "{coverage:?}");
    assert!(coverage.aliases_of_builtins > 0, "{coverage:?}");
    assert!(coverage.aliases_of_aliases > 0, "{coverage:?}");
    assert!(coverage.options_and_results_as_params > 0, "{coverage:?}");
    assert!(coverage.return_areas > 0, "{coverage:?}");
    assert!(coverage.spilled_params > 0, "{coverage:?}");
    assert!(coverage.variant_joins_to_i64 > 0, "{coverage:?}");
}

/// New worlds until `budget` has passed, from `MEMHOST_GENERATED_SEED` (else from the
/// clock), each seed printed as it starts.
fn run_for(budget: Duration) {
    let start = Instant::now();
    let first = std::env::var("MEMHOST_GENERATED_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        },
        |s| s.parse().expect("a seed"),
    );
    let (mut worlds, mut calls) = (0, 0);
    for seed in first.. {
        if start.elapsed() >= budget {
            break;
        }
        eprintln!("seed {seed}");
        calls += run(seed, VALUES);
        worlds += 1;
    }
    eprintln!(
        "{worlds} worlds (seeds {first}..{}), {calls} calls agree with wasmtime in {:.0?}",
        first + worlds,
        start.elapsed()
    );
}
