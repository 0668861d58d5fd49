//! Host <-> guest transfer, side by side in one run: the library against wasmer's safe
//! accessors, the seed's per-element loop, and `copy_from_slice` between two host buffers
//! (the physical limit). `cargo xtask bench` runs this and summarises it.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/raw.rs"]
mod raw;
#[path = "support/sample.rs"]
mod sample;

use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memhost::{GuestModule, Limits};
use raw::{RawAlloc, raw, raw_metered};
use wasmer::WasmPtr;

const SIZES: [(&str, usize); 3] = [("13B", 13), ("1KiB", 1024), ("60KiB", 60 * 1024)];

fn transfers(c: &mut Criterion) {
    let bytes = common::guest_wasm();
    let mut guest = common::guest();
    let raw = raw(&bytes);
    for (name, size) in SIZES {
        let data: Vec<u8> = (0..size).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let mut buf = vec![0u8; size];
        let mut host_dst = vec![0u8; size];
        let len = u32::try_from(size).unwrap();

        let mut g = c.benchmark_group(format!("write/{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("library", |b| {
            b.iter(|| guest.write(0, black_box(&data)).unwrap())
        });
        g.bench_function("wasmer_safe", |b| {
            b.iter(|| {
                raw.memory
                    .view(&raw.store)
                    .write(0, black_box(&data))
                    .unwrap()
            })
        });
        g.bench_function("per_element", |b| {
            b.iter(|| {
                let view = raw.memory.view(&raw.store);
                let values = WasmPtr::<u8>::new(0).slice(&view, len).unwrap();
                for (i, byte) in black_box(&data).iter().enumerate() {
                    values.index(i as u64).write(*byte).unwrap();
                }
            })
        });
        g.bench_function("memcpy", |b| {
            b.iter(|| host_dst.copy_from_slice(black_box(&data)))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("read/{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("library", |b| {
            b.iter(|| guest.read_into(0, black_box(&mut buf)).unwrap())
        });
        g.bench_function("wasmer_safe", |b| {
            b.iter(|| {
                raw.memory
                    .view(&raw.store)
                    .read(0, black_box(&mut buf))
                    .unwrap()
            })
        });
        g.bench_function("per_element", |b| {
            b.iter(|| {
                let view = raw.memory.view(&raw.store);
                let values = WasmPtr::<u8>::new(0).slice(&view, len).unwrap();
                for (i, byte) in black_box(&mut buf).iter_mut().enumerate() {
                    *byte = values.index(i as u64).read().unwrap();
                }
            })
        });
        g.bench_function("memcpy", |b| {
            b.iter(|| black_box(&mut buf).copy_from_slice(&host_dst))
        });
        g.finish();
    }
}

fn calls(c: &mut Criterion) {
    let bytes = common::guest_wasm();
    let mut guest = common::guest();
    let mut raw = raw(&bytes);
    let mut unmetered = {
        let mut limits = Limits::default();
        limits.fuel = None;
        GuestModule::from_bytes(&bytes, &limits)
            .unwrap()
            .instantiate()
            .unwrap()
    };
    let mut g = c.benchmark_group("load");
    g.bench_function("library", |b| b.iter(|| black_box(guest.load().unwrap())));
    g.bench_function("library_unmetered", |b| {
        b.iter(|| black_box(unmetered.load().unwrap()))
    });
    g.bench_function("raw", |b| {
        b.iter(|| black_box(raw.load.call(&mut raw.store).unwrap()))
    });
    let mut metered = raw_metered(&bytes);
    g.bench_function("raw_metered", |b| {
        b.iter(|| black_box(metered.load.call(&mut metered.store).unwrap()))
    });
    g.finish();
}

/// Sizes of the round trips.
const ROUNDTRIP_SIZES: [(&str, usize); 3] = [("1KiB", 1024), ("1MiB", 1 << 20), ("8MiB", 8 << 20)];

/// Put, adopt, transform, borrowed read: the library picks the allocation convention.
fn roundtrip(guest: &mut memhost::Guest, data: &[u8]) {
    guest.put_bytes(data).unwrap();
    guest.transform().unwrap();
    let region = guest.load().unwrap();
    let out = guest.bytes(region).unwrap();
    assert_eq!(out.len(), data.len() + 14);
    black_box(out.last());
}

/// Limits with room for two 8 MiB strings at once: the one the guest holds and the one
/// handed over before it lets the old one go.
fn roomy() -> Limits {
    let mut limits = Limits::default();
    limits.max_memory_bytes = 64 << 20;
    limits
}

fn roundtrips(c: &mut Criterion) {
    let bytes = common::guest_wasm();
    let module = GuestModule::from_bytes(&bytes, &roomy()).unwrap();
    let mut guest = module.instantiate().unwrap();
    let mut raw = RawAlloc::new(&bytes);
    for (name, size) in ROUNDTRIP_SIZES {
        let data: Vec<u8> = (0..size).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let mut out = vec![0u8; size + 14];
        let mut dst = vec![0u8; size];
        let mut g = c.benchmark_group(format!("roundtrip/{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        if size > 1 << 20 {
            g.sample_size(20);
        }
        g.bench_function("library", |b| {
            b.iter(|| roundtrip(&mut guest, black_box(&data)))
        });
        g.bench_function("raw", |b| {
            b.iter(|| raw.roundtrip(black_box(&data), &mut out));
        });
        g.bench_function("memcpy", |b| {
            b.iter(|| dst.copy_from_slice(black_box(&data)));
        });
        if size == 8 << 20 {
            // A new instance each time: its memory grows, and the page faults count.
            g.bench_function("fresh", |b| {
                b.iter(|| {
                    let mut guest = module.instantiate().unwrap();
                    roundtrip(&mut guest, black_box(&data));
                });
            });
        }
        g.finish();
    }
}

/// 100 000 lines of about 100 bytes through `transform_lines`, on one thread and on every
/// core, beside a native loop that appends the same suffix (the physical limit).
fn lines(c: &mut Criterion) {
    let module = GuestModule::from_bytes(&common::guest_wasm(), &Limits::default()).unwrap();
    let input = sample::input(100_000);
    let cores = std::thread::available_parallelism().unwrap_or(std::num::NonZeroUsize::MIN);
    let mut g = c.benchmark_group("throughput/lines");
    g.sample_size(10)
        .throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("1threads", |b| {
        b.iter(|| {
            black_box(
                module
                    .transform_lines(&input, std::num::NonZeroUsize::MIN)
                    .unwrap(),
            )
        })
    });
    g.bench_function("Nthreads", |b| {
        b.iter(|| black_box(module.transform_lines(&input, cores).unwrap()))
    });
    g.bench_function("native", |b| b.iter(|| sample::native(&input, 100_000)));
    g.finish();

    // What this machine's cores give at best: the same register-only work on one thread,
    // and split among all of them. The lines cannot scale better than this.
    let spin = |n: u64| {
        let mut x = 1u64;
        for i in 0..n {
            x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
        x
    };
    const SPINS: u64 = 20_000_000;
    let mut g = c.benchmark_group("throughput/spin");
    g.sample_size(10);
    g.bench_function("1threads", |b| b.iter(|| black_box(spin(SPINS))));
    g.bench_function("Nthreads", |b| {
        b.iter(|| {
            let per = SPINS / cores.get() as u64;
            std::thread::scope(|s| {
                let handles: Vec<_> = (1..cores.get())
                    .map(|_| s.spawn(move || spin(per)))
                    .collect();
                black_box(spin(per));
                for h in handles {
                    black_box(h.join().unwrap());
                }
            });
        })
    });
}

fn startup(c: &mut Criterion) {
    let bytes = common::guest_wasm();
    let mut g = c.benchmark_group("startup");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("compile_instantiate", |b| {
        b.iter(|| {
            let module = GuestModule::from_bytes(black_box(&bytes), &Limits::default()).unwrap();
            let mut guest = module.instantiate().unwrap();
            black_box(guest.load().unwrap());
        })
    });
    // The demo as a user runs it: compiled every time (`--no-cache`), and loaded from a
    // warm cache (primed by one run first).
    let cache = std::env::temp_dir().join(format!("host-bench-cache-{}", std::process::id()));
    let demo = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_memhost"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    g.bench_function("demo_process/cold", |b| {
        b.iter(|| demo(&["--no-cache".as_ref()]))
    });
    let warm = ["--cache-dir".as_ref(), cache.as_os_str()];
    demo(&warm);
    g.bench_function("demo_process/warm", |b| b.iter(|| demo(&warm)));
    let _ = std::fs::remove_dir_all(&cache);
    g.finish();

    // `memhost transform < 10 MiB file > /dev/null`, the whole process.
    let input: Vec<u8> = (0..10usize << 20)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    let path = common::temp_file("bench-transform-10MiB.bin", &input);
    let mut g = c.benchmark_group("transform_process");
    g.sample_size(10)
        .throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("10MiB", |b| {
        b.iter(|| {
            let status = Command::new(env!("CARGO_BIN_EXE_memhost"))
                .args(["transform", "--no-cache"])
                .stdin(std::fs::File::open(&path).unwrap())
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = transfers, calls, roundtrips, lines, startup
}
criterion_main!(benches);
