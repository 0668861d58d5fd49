//! A wit-bindgen guest's `transform` through the typed API, in a loop: for a profiler.
//!
//! ```sh
//! cargo run --release -p host --example canonical_loop -- [SECONDS] [unmetered]
//! cargo run --release -p host --example canonical_loop -- n=CALLS [unmetered|raw]   # for callgrind
//! ```
//! With `n=CALLS` it makes exactly that many calls: under callgrind, the difference of two
//! counts (say n=2000 and n=1000) divided by the difference of calls is the instructions a
//! call, setup excluded.
/// The same steps on raw wasmer (no checks, no fuel), as `benches/canonical.rs` has them.
fn raw(calls: u64, bytes: &[u8], input: &str) {
    use wasmer::{Instance, Module, Store, TypedFunction, imports};
    let mut store = Store::default();
    let module = Module::new(&store, bytes).expect("compiles");
    let instance = Instance::new(&mut store, &module, &imports! {}).expect("instantiates");
    let e = &instance.exports;
    let memory = e.get_memory("memory").expect("memory").clone();
    let realloc: TypedFunction<(i32, i32, i32, i32), i32> = e
        .get_typed_function(&store, "cabi_realloc")
        .expect("realloc");
    let transform: TypedFunction<(i32, i32), i32> = e
        .get_typed_function(&store, "transform")
        .expect("transform");
    let post: TypedFunction<i32, ()> = e
        .get_typed_function(&store, "cabi_post_transform")
        .expect("post");
    let len = i32::try_from(input.len()).expect("small");
    for _ in 0..calls {
        let ptr = realloc.call(&mut store, 0, 0, 1, len).expect("calls");
        memory
            .view(&store)
            .write(u64::try_from(ptr).expect("an address"), input.as_bytes())
            .expect("in bounds");
        let ret = transform.call(&mut store, ptr, len).expect("calls");
        let view = memory.view(&store);
        let mut pair = [0u8; 8];
        view.read(u64::try_from(ret).expect("an address"), &mut pair)
            .expect("in bounds");
        let p = u32::from_le_bytes(pair[..4].try_into().expect("4 bytes"));
        let l = u32::from_le_bytes(pair[4..].try_into().expect("4 bytes"));
        let mut out = vec![0; l as usize];
        view.read(u64::from(p), &mut out).expect("in bounds");
        std::hint::black_box(String::from_utf8(out).expect("UTF-8"));
        post.call(&mut store, ret).expect("calls");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next().unwrap_or_else(|| "3".into());
    let calls: Option<u64> = first
        .strip_prefix("n=")
        .map(|n| n.parse().expect("a count"));
    let secs: u64 = if calls.is_some() {
        0
    } else {
        first.parse().expect("seconds")
    };
    let mode = args.next();
    let mut limits = memhost::Limits::default();
    if mode.as_deref() == Some("unmetered") {
        limits.fuel = None;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(abi::CANONICAL_ARTIFACT);
    if mode.as_deref() == Some("raw") {
        let bytes = std::fs::read(&path).expect("cargo xtask build-guest --all");
        return raw(calls.unwrap_or(1_000_000), &bytes, &"x".repeat(1024));
    }
    let module =
        memhost::GuestModule::from_file(path, &limits).expect("cargo xtask build-guest --all");
    let mut guest = module.instantiate().expect("instantiates");
    let f = guest
        .typed::<(&str,), (String,)>("transform")
        .expect("transform");
    let input = "x".repeat(1024);
    if let Some(calls) = calls {
        for _ in 0..calls {
            std::hint::black_box(f.call(&mut guest, (&input,)).expect("calls"));
        }
        return;
    }
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
