//! The canonical ABI, side by side in one run: a wit-bindgen guest's `transform: func(s:
//! string) -> string` called (a) through the library's typed API, (b) with the same steps
//! on raw wasmer (no checks, no fuel), (c) through wasmtime's Component Model on the same
//! core module componentized; a guest calling the host (the plugin's `map` and the host's
//! `callback`), in the library and in wasmtime; and `--lines` through the canonical path
//! against the guide's 4-call path.
//!
//! Needs `cargo xtask build-guest --all` (`cargo xtask bench canonical` runs it).

#[path = "support/sample.rs"]
mod sample;

use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memhost::{GuestModule, Limits, Transformer};
use wasmer::{Instance, Memory, Module, Store, TypedFunction, imports};

fn artifact(path: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} ({e}): run `cargo xtask build-guest --all`",
            path.display()
        )
    })
}

/// The same steps as the library's, on plain wasmer: allocate, write, call, read the
/// return area and the string, post-return. No checks, no fuel.
struct Raw {
    store: Store,
    memory: Memory,
    realloc: TypedFunction<(i32, i32, i32, i32), i32>,
    transform: TypedFunction<(i32, i32), i32>,
    post: TypedFunction<i32, ()>,
}

impl Raw {
    fn new(bytes: &[u8]) -> Raw {
        let mut store = Store::default();
        let module = Module::new(&store, bytes).unwrap();
        let instance = Instance::new(&mut store, &module, &imports! {}).unwrap();
        let e = &instance.exports;
        Raw {
            memory: e.get_memory("memory").unwrap().clone(),
            realloc: e.get_typed_function(&store, "cabi_realloc").unwrap(),
            transform: e.get_typed_function(&store, "transform").unwrap(),
            post: e.get_typed_function(&store, "cabi_post_transform").unwrap(),
            store,
        }
    }

    fn call(&mut self, input: &str) -> usize {
        let len = i32::try_from(input.len()).unwrap();
        let ptr = self.realloc.call(&mut self.store, 0, 0, 1, len).unwrap();
        let view = self.memory.view(&self.store);
        view.write(u64::try_from(ptr).unwrap(), input.as_bytes())
            .unwrap();
        let ret = self.transform.call(&mut self.store, ptr, len).unwrap();
        let view = self.memory.view(&self.store);
        let mut pair = [0u8; 8];
        view.read(u64::try_from(ret).unwrap(), &mut pair).unwrap();
        let p = u32::from_le_bytes(pair[..4].try_into().unwrap());
        let l = u32::from_le_bytes(pair[4..].try_into().unwrap());
        let mut out = vec![0; l as usize];
        view.read(u64::from(p), &mut out).unwrap();
        let n = String::from_utf8(out).unwrap().len();
        self.post.call(&mut self.store, ret).unwrap();
        n
    }
}

/// wasmtime's Component Model over the same core module.
struct Wasmtime {
    store: wasmtime::Store<()>,
    func: wasmtime::component::TypedFunc<(&'static str,), (String,)>,
}

impl Wasmtime {
    fn new(core: &[u8]) -> Wasmtime {
        let component = wit_component::ComponentEncoder::default()
            .module(core)
            .unwrap()
            .encode()
            .unwrap();
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let component = wasmtime::component::Component::new(&engine, component).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::component::Linker::new(&engine)
            .instantiate(&mut store, &component)
            .unwrap();
        let func = instance.get_typed_func(&mut store, "transform").unwrap();
        Wasmtime { store, func }
    }

    fn call(&mut self, input: &'static str) -> usize {
        self.func.call(&mut self.store, (input,)).unwrap().0.len()
    }
}

fn transform(c: &mut Criterion) {
    let core = artifact(abi::CANONICAL_ARTIFACT);
    let module = GuestModule::from_bytes(&core, &Limits::default()).unwrap();
    for (name, len) in [("1KiB", 1 << 10), ("1MiB", 1 << 20)] {
        let input: &'static str = Box::leak("x".repeat(len).into_boxed_str());
        let mut g = c.benchmark_group(format!("canonical/transform/{name}"));
        g.throughput(Throughput::Bytes(len as u64));
        let mut guest = module.instantiate().unwrap();
        let typed = guest.typed::<(&str,), (String,)>("transform").unwrap();
        g.bench_function("library", |b| {
            b.iter(|| typed.call(&mut guest, (black_box(input),)).unwrap().0.len());
        });
        // The same, compiled without fuel: what the metering of the guest's code costs.
        let mut unmetered_limits = Limits::default();
        unmetered_limits.fuel = None;
        let unmetered = GuestModule::from_bytes(&core, &unmetered_limits).unwrap();
        let mut plain = unmetered.instantiate().unwrap();
        let typed_plain = plain.typed::<(&str,), (String,)>("transform").unwrap();
        g.bench_function("library_unmetered", |b| {
            b.iter(|| {
                typed_plain
                    .call(&mut plain, (black_box(input),))
                    .unwrap()
                    .0
                    .len()
            });
        });
        let mut raw = Raw::new(&core);
        g.bench_function("raw", |b| b.iter(|| raw.call(black_box(input))));
        let mut wasmtime = Wasmtime::new(&core);
        g.bench_function("wasmtime", |b| b.iter(|| wasmtime.call(black_box(input))));
        g.finish();
    }
}

/// A guest calling the host, the round trip the plugin makes: `relay(s)` calls the host's
/// `shout(s)` (a string lifted out of guest memory, one lowered back through the guest's
/// `cabi_realloc`, re-entered while `relay` runs), and `map(values)` calls `scale(values)`
/// (256 `s64`s each way). The host functions are given by the library, typed and dynamic,
/// and by wasmtime's `Linker` (typed), on the same module.
fn imports(c: &mut Criterion) {
    use memhost::{HostFunctions, Val};
    let core = artifact(abi::PLUGIN_ARTIFACT);
    let others = |host: HostFunctions| {
        [
            "log",
            "wide",
            "fallible",
            "callback",
            "memhost:plugin/config#get",
        ]
        .into_iter()
        .fold(host, |host, name| {
            host.func(name, |_| Err("not called".into()))
        })
    };
    let typed = others(
        HostFunctions::default()
            .typed("shout", |(s,): (String,)| Ok((s,)))
            .typed("scale", |(values,): (Vec<i64>,)| {
                Ok((values
                    .iter()
                    .map(|v| v.wrapping_add(1))
                    .collect::<Vec<i64>>(),))
            }),
    );
    let dynamic = others(
        HostFunctions::default()
            .func("shout", |args| Ok(args.first().cloned()))
            .func("scale", |args| match args {
                [Val::List(values)] => Ok(Some(Val::List(
                    values
                        .iter()
                        .map(|v| match v {
                            Val::S64(v) => Val::S64(v.wrapping_add(1)),
                            other => other.clone(),
                        })
                        .collect(),
                ))),
                _ => Err("not a list".into()),
            }),
    );
    let library = |host: &HostFunctions| {
        GuestModule::from_bytes_with_imports(&core, &Limits::default(), None, None, host)
            .unwrap()
            .0
            .instantiate()
            .unwrap()
    };
    let (mut wasmtime, instance) = wasmtime_plugin(&core);
    let input: &'static str = Box::leak("x".repeat(1 << 10).into_boxed_str());
    let mut g = c.benchmark_group("canonical/import/1KiB");
    g.throughput(Throughput::Bytes(1 << 10));
    for (name, host) in [("library", &typed), ("library_dynamic", &dynamic)] {
        let mut guest = library(host);
        let relay = guest.typed::<(&str,), (String,)>("relay").unwrap();
        g.bench_function(name, |b| {
            b.iter(|| relay.call(&mut guest, (black_box(input),)).unwrap().0.len());
        });
    }
    let relay = instance
        .get_typed_func::<(&str,), (String,)>(&mut wasmtime, "relay")
        .unwrap();
    g.bench_function("wasmtime", |b| {
        b.iter(|| {
            relay
                .call(&mut wasmtime, (black_box(input),))
                .unwrap()
                .0
                .len()
        });
    });
    g.finish();

    let values: Vec<i64> = (0..256).collect();
    let mut g = c.benchmark_group("canonical/import/map/256");
    g.throughput(Throughput::Elements(256));
    for (name, host) in [("library", &typed), ("library_dynamic", &dynamic)] {
        let mut guest = library(host);
        let map = guest.typed::<(&[i64],), (Vec<i64>,)>("map").unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                map.call(&mut guest, (black_box(&values[..]),))
                    .unwrap()
                    .0
                    .len()
            });
        });
    }
    let map = instance
        .get_typed_func::<(&[i64],), (Vec<i64>,)>(&mut wasmtime, "map")
        .unwrap();
    g.bench_function("wasmtime", |b| {
        b.iter(|| {
            map.call(&mut wasmtime, (black_box(&values[..]),))
                .unwrap()
                .0
                .len()
        });
    });
    g.finish();
}

/// The plugin componentized and instantiated in wasmtime, `shout` and `scale` given typed
/// as the library's are, the functions the benchmarks do not call failing.
fn wasmtime_plugin(core: &[u8]) -> (wasmtime::Store<()>, wasmtime::component::Instance) {
    let component = wit_component::ComponentEncoder::default()
        .module(core)
        .unwrap()
        .encode()
        .unwrap();
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = wasmtime::component::Component::new(&engine, component).unwrap();
    let mut linker = wasmtime::component::Linker::<()>::new(&engine);
    let mut root = linker.root();
    root.func_wrap("shout", |_, (s,): (String,)| Ok((s,)))
        .unwrap();
    root.func_wrap("scale", |_, (values,): (Vec<i64>,)| {
        Ok((values
            .iter()
            .map(|v| v.wrapping_add(1))
            .collect::<Vec<i64>>(),))
    })
    .unwrap();
    let never =
        |_: wasmtime::StoreContextMut<'_, ()>,
         _: wasmtime::component::types::ComponentFunc,
         _: &[wasmtime::component::Val],
         _: &mut [wasmtime::component::Val]| { Err(wasmtime::Error::msg("not called")) };
    for name in ["log", "wide", "fallible", "callback"] {
        root.func_new(name, never).unwrap();
    }
    linker
        .instance("memhost:plugin/config")
        .unwrap()
        .func_new("get", never)
        .unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    (store, instance)
}

/// What instantiating costs a WASI module beside a plain one: the same canonical guest,
/// built for `wasm32-wasip1` and for `wasm32-unknown-unknown`, each compiled once.
fn startup(c: &mut Criterion) {
    let mut g = c.benchmark_group("startup/wasi");
    for (name, path) in [
        ("plain", abi::CANONICAL_ARTIFACT),
        ("wasi", abi::CANONICAL_WASIP1_ARTIFACT),
    ] {
        let module = GuestModule::from_bytes(&artifact(path), &Limits::default()).unwrap();
        g.bench_function(name, |b| b.iter(|| module.instantiate().unwrap()));
    }
    g.finish();
}

fn lines(c: &mut Criterion) {
    let input = sample::input(100_000);
    let all = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let canonical =
        GuestModule::from_bytes(&artifact(abi::CANONICAL_ARTIFACT), &Limits::default()).unwrap();
    let guide =
        GuestModule::from_bytes(&artifact(abi::GUEST_ARTIFACT), &Limits::default()).unwrap();
    let through = Transformer::Canonical("transform".into());
    let mut g = c.benchmark_group("throughput/lines/canonical");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(10);
    g.bench_function("1threads", |b| {
        b.iter(|| {
            canonical
                .transform_lines_with(&input, NonZeroUsize::MIN, &through)
                .unwrap()
                .len()
        });
    });
    g.bench_function("Nthreads", |b| {
        b.iter(|| {
            canonical
                .transform_lines_with(&input, all, &through)
                .unwrap()
                .len()
        });
    });
    // The guide's 4-call path, in the same run, for the ratio.
    g.bench_function("guide_1threads", |b| {
        b.iter(|| {
            guide
                .transform_lines(&input, NonZeroUsize::MIN)
                .unwrap()
                .len()
        });
    });
    g.finish();
    // Many lines a call, on the same guest and input: a batch export
    // (`func(list<string>) -> list<string>`), and a whole-chunk export.
    for (group, through) in [
        (
            "throughput/lines/batch",
            Transformer::Batch("transform-lines".into()),
        ),
        (
            "throughput/lines/chunk",
            Transformer::Chunks("transform-chunk".into()),
        ),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.sample_size(10);
        for (name, jobs) in [("1threads", NonZeroUsize::MIN), ("Nthreads", all)] {
            g.bench_function(name, |b| {
                b.iter(|| {
                    canonical
                        .transform_lines_with(&input, jobs, &through)
                        .unwrap()
                        .len()
                });
            });
        }
        g.finish();
    }
    // The same transform as a native loop: the physical limit.
    let mut g = c.benchmark_group("throughput/lines");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(10);
    g.bench_function("native", |b| {
        b.iter(|| sample::native(&input, 100_000).len())
    });
    g.finish();
}

criterion_group!(benches, transform, imports, startup, lines);
criterion_main!(benches);
