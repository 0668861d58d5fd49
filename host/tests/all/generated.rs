//! The canonical ABI on generated worlds (`worlds.rs`), against wasmtime's Component
//! Model on the same module componentized: for each value drawn, both lower it into the
//! same bytes (through memory and flat), and both lift those bytes back to the value; with
//! a few bytes or the pointer spoiled, both refuse the image or both lift the same value.
//!
//! `cargo xtask test` runs 20 fixed seeds, 200 values of each tested type.
//! `cargo xtask generated --seconds N` runs new seeds until N seconds have passed
//! (`MEMHOST_GENERATED_SECONDS`, from `MEMHOST_GENERATED_SEED`), and prints the seed of any
//! mismatch with the world's WIT.

use crate::common;
use crate::{oracle, worlds};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use memhost::{Guest, GuestModule, Limits, Val};

use oracle::{Gen, Oracle, same};
use worlds::{Coverage, World};

const FIXED_SEEDS: u64 = 20;
const VALUES: usize = 200;

/// Spoiled images lifted for each value drawn.
const SPOILED: usize = 2;

/// Spoiled images both engines refused, of all spoiled images lifted.
static REFUSED: AtomicUsize = AtomicUsize::new(0);
static SPOILED_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Calls `name` on both engines: the library's result, if both agree.
fn both(
    ours: &mut Guest,
    theirs: &mut Oracle,
    name: &str,
    params: &[Val],
) -> Result<Option<Val>, String> {
    let a = ours
        .call(name, params)
        .map_err(|e| format!("{name}({params:?}): the library: {e}"))?;
    let b = theirs
        .try_call(name, params)
        .map_err(|e| format!("{name}({params:?}): wasmtime: {e}"))?;
    match (&a, &b) {
        (Some(x), Some(y)) if same(x, y) => Ok(a),
        _ => Err(format!(
            "{}:\n  the library: {}\n  wasmtime:    {}",
            short(&format!("{name}({params:?})")),
            short(&format!("{a:?}")),
            short(&format!("{b:?}"))
        )),
    }
}

/// What one world's run found wrong, if anything; else how many calls it made.
fn check_world(w: &World, values: usize) -> Result<usize, String> {
    let module = GuestModule::from_bytes(&w.module, &Limits::default())
        .map_err(|e| format!("the library refuses the module: {e}: {:#?}", e.problems()))?;
    let instantiate = || {
        module
            .instantiate()
            .map_err(|e| format!("the library cannot instantiate it: {e}"))
    };
    let mut ours = instantiate()?;
    let mut theirs = Oracle::new(&w.module);
    let mut draw = Gen(w.seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    let mut calls = 0;
    for t in &w.tested {
        for _ in 0..values {
            let v = draw.val(&w.resolve, &t.ty, 0);
            let pad = Val::Tuple((0..16).map(|_| Val::U64(draw.next())).collect());
            // Lowered through memory: the same bytes in the same places.
            let Some(Val::Tuple(image)) = both(&mut ours, &mut theirs, &t.mem, &[v.clone(), pad])?
            else {
                return Err(format!("{}: not a tuple", t.mem));
            };
            // Lowered flat: the same core values.
            both(&mut ours, &mut theirs, &t.flat, std::slice::from_ref(&v))?;
            // Lifted from those bytes: the value itself.
            let back = both(&mut ours, &mut theirs, &t.get, &image)?;
            if !back.as_ref().is_some_and(|b| same(b, &v)) {
                return Err(format!(
                    "{}: lowered {}, lifted back {} (both engines)",
                    t.get,
                    short(&format!("{v:?}")),
                    short(&format!("{back:?}"))
                ));
            }
            calls += 3;
            // Lifted from memory the guest spoiled: both refuse it, or both lift one value.
            let [Val::U32(p), Val::List(bytes)] = &image[..] else {
                return Err(format!("{}: not (u32, list<u8>)", t.mem));
            };
            let bytes: Vec<u8> = bytes
                .iter()
                .map(|b| if let Val::U8(b) = b { *b } else { 0 })
                .collect();
            for _ in 0..SPOILED {
                let (mut p, mut bytes) = (*p, bytes.clone());
                spoil(&mut draw, &mut p, &mut bytes);
                let params = [
                    Val::U32(p),
                    Val::List(bytes.into_iter().map(Val::U8).collect()),
                ];
                let a = ours.call(&t.get, &params);
                let b = theirs.try_call(&t.get, &params);
                calls += 1;
                SPOILED_CALLS.fetch_add(1, Ordering::Relaxed);
                match (&a, &b) {
                    (Ok(Some(x)), Ok(Some(y))) if same(x, y) => {}
                    (Err(_), Err(_)) => {
                        REFUSED.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        return Err(format!(
                            "{} on spoiled memory:\n  the library: {}\n  wasmtime:    {}",
                            short(&format!("{}({params:?})", t.get)),
                            short(&format!("{a:?}")),
                            short(&format!("{b:?}"))
                        ));
                    }
                }
                // Each engine refuses to enter an instance whose guest lied: start again.
                if a.is_err() {
                    ours = instantiate()?;
                }
                if b.is_err() {
                    theirs.restart();
                }
            }
        }
    }
    Ok(calls)
}

/// Changes one to three things of a lowered image: its pointer, a byte, or a word to a
/// value a length or a pointer is likely to trip on.
#[allow(
    clippy::cast_possible_truncation,
    reason = "low bits of random words, and lengths of small images"
)]
fn spoil(g: &mut Gen, p: &mut u32, bytes: &mut [u8]) {
    let len = bytes.len() as u32;
    for _ in 0..=g.below(3) {
        match g.below(8) {
            0 => *p = p.wrapping_add(g.below(9) as u32).wrapping_sub(4),
            1 => *p = g.below(u64::from(len) + 64) as u32,
            2..=4 => {
                let at = g.below(u64::from(len)) as usize;
                bytes[at] = g.next() as u8;
            }
            _ => {
                let at = (16 + g.below(u64::from(len - 16)) as usize) & !3;
                let word: u32 = match g.below(8) {
                    0 => 0,
                    1 => 1,
                    2 => u32::MAX,
                    3 => len,
                    4 => len + 1,
                    5 => 0x8000_0000,
                    6 => g.below(300) as u32,
                    _ => g.next() as u32,
                };
                if let Some(place) = bytes.get_mut(at..at + 4) {
                    place.copy_from_slice(&word.to_le_bytes());
                }
            }
        }
    }
}

fn spoiled() -> String {
    format!(
        "of them {} on spoiled memory, {} refused by both",
        SPOILED_CALLS.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed)
    )
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
/// docs of `worlds.rs` say they do.
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
    eprintln!(
        "{FIXED_SEEDS} worlds, {calls} calls agree with wasmtime ({}); {coverage:#?}",
        spoiled()
    );
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
        "{worlds} worlds (seeds {first}..{}), {calls} calls agree with wasmtime ({}) in {:.0?}",
        first + worlds,
        spoiled(),
        start.elapsed()
    );
}
