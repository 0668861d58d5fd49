//! A wit-bindgen guest's `transform` through the typed API, in a loop: for a profiler.
//!
//! ```sh
//! cargo run --release -p host --example canonical_loop -- [SECONDS] [unmetered]
//! ```
fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map_or(3, |a| a.parse().expect("seconds"));
    let mut limits = host::Limits::default();
    if args.next().as_deref() == Some("unmetered") {
        limits.fuel = None;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(abi::CANONICAL_ARTIFACT);
    let module = host::GuestModule::from_file(path, &limits).expect("cargo xtask build-guest");
    let mut guest = module.instantiate().expect("instantiates");
    let f = guest
        .typed::<(&str,), (String,)>("transform")
        .expect("transform");
    let input = "x".repeat(1024);
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs() < secs {
        for _ in 0..10_000 {
            std::hint::black_box(f.call(&mut guest, (&input,)).expect("calls"));
        }
        n += 10_000;
    }
    println!(
        "{:.1} ns a call",
        start.elapsed().as_nanos() as f64 / n as f64
    );
}
