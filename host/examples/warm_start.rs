//! What the module cache saves on a large module: generates a module of compiler-shaped code
//! (the tests' generator, `tests/common/large.rs`), compiles it without the cache, then
//! loads it from a warm cache several times, each through the library as a user would.
//!
//! ```sh
//! cargo run --release -p host --example warm_start -- 10 [summary.json]
//! ```
//!
//! The first argument is the size in MB of code (default 10); with a second, the medians
//! are also written there as JSON, as `startup/large_module/{compile,warm}` (which
//! `cargo xtask bench` adds to its summary).

#[allow(dead_code, reason = "the tests use the rest of the generator")]
#[path = "../tests/common/large.rs"]
mod large;

use std::time::{Duration, Instant};

use memhost::{GuestModule, Limits, ModuleCache};

/// Warm loads timed; the median is reported.
const WARM_RUNS: usize = 7;

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args
        .next()
        .map_or(10, |a| a.parse().expect("the size is a whole number of MB"));
    let json = args.next();
    let bytes = large::module(mb << 20, large::Abi::Follows);
    let mut limits = Limits::default();
    limits.max_module_bytes = bytes.len() as u64 + 1;
    let dir = std::env::temp_dir().join(format!("host-warm-start-{}", std::process::id()));
    let cache = ModuleCache::open(&dir).expect("a cache directory");

    let timed = |f: &dyn Fn() -> GuestModule| {
        let start = Instant::now();
        let module = f();
        let took = start.elapsed();
        let mut guest = module.instantiate().expect("instantiates");
        guest.load().expect("runs");
        took
    };
    let compile = timed(&|| GuestModule::from_bytes(&bytes, &limits).expect("compiles"));
    let store = timed(&|| {
        let (module, outcome) =
            GuestModule::from_bytes_cached(&bytes, &limits, &cache).expect("compiles");
        assert!(!outcome.hit && outcome.warnings.is_empty(), "{outcome:?}");
        module
    });
    let mut warm: Vec<Duration> = (0..WARM_RUNS)
        .map(|_| {
            timed(&|| {
                let (module, outcome) =
                    GuestModule::from_bytes_cached(&bytes, &limits, &cache).expect("loads");
                assert!(outcome.hit && outcome.warnings.is_empty(), "{outcome:?}");
                module
            })
        })
        .collect();
    warm.sort();
    let warm = warm[WARM_RUNS / 2];
    let entry = std::fs::read_dir(&dir)
        .expect("the cache")
        .map(|e| e.expect("an entry").metadata().expect("its size").len())
        .sum::<u64>();
    let _ = std::fs::remove_dir_all(&dir);

    let ratio = warm.as_secs_f64() / compile.as_secs_f64();
    println!("module: {} bytes; cache entry: {entry} bytes", bytes.len());
    println!("compile (no cache):          {compile:>10.3?}");
    println!("compile and store (a miss):  {store:>10.3?}");
    println!("load from a warm cache:      {warm:>10.3?} (median of {WARM_RUNS})");
    println!("warm / compile:              {ratio:>10.4} (target < 0.05)");
    if let Some(path) = json {
        let ns = |d: Duration| d.as_nanos();
        let text = format!(
            "{{\"startup/large_module/compile\": {}, \"startup/large_module/warm\": {}, \
             \"module_bytes\": {}, \"entry_bytes\": {entry}}}\n",
            ns(compile),
            ns(warm),
            bytes.len()
        );
        std::fs::write(&path, text).expect("writes the JSON");
    }
}
