//! Fixed costs per access and per call, as instruction counts under callgrind (gungraun):
//! the same from run to run whatever else the machine does, where wall-clock medians of
//! 20 ns move by 15%. Each case repeats its operation [`REPS`] times after an untimed setup;
//! `cargo xtask bench` divides by `REPS` and puts the figure beside criterion's median of
//! the case of the same name.
//!
//! Needs valgrind and `gungraun-runner` of the same version as the `gungraun` crate
//! (`cargo xtask bench` installs the runner).

#![allow(unused_qualifications, reason = "gungraun's macros write whole paths")]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/raw.rs"]
mod raw;

use std::hint::black_box;

use gungraun::{library_benchmark, library_benchmark_group, main};
use memhost::{Guest, GuestModule, Limits, Region};
use raw::{Raw, RawAlloc};

/// How many times each case repeats its operation.
const REPS: usize = 1000;

fn library(limits: &Limits) -> Guest {
    let mut guest = GuestModule::from_bytes(&common::guest_wasm(), limits)
        .unwrap()
        .instantiate()
        .unwrap();
    // Warm: the first call of each export and the first touch of the memory.
    let region = guest.load().unwrap();
    black_box(guest.bytes(region).unwrap());
    guest
}

fn metered(reps: usize) -> (Guest, usize) {
    (library(&Limits::default()), reps)
}

/// As `metered`, with where the guest's string is.
fn metered_at(reps: usize) -> (Guest, Region, usize) {
    let mut guest = library(&Limits::default());
    let region = guest.load().unwrap();
    (guest, region, reps)
}

fn unmetered(reps: usize) -> (Guest, usize) {
    let mut limits = Limits::default();
    limits.fuel = None;
    (library(&limits), reps)
}

fn plain(reps: usize) -> (Raw, usize) {
    let mut raw = raw::raw(&common::guest_wasm());
    raw.load.call(&mut raw.store).unwrap();
    (raw, reps)
}

fn plain_alloc(reps: usize) -> (RawAlloc, usize) {
    (RawAlloc::new(&common::guest_wasm()), reps)
}

#[library_benchmark]
#[bench::library(args = (REPS), setup = metered_at)]
fn read_13b_library((guest, region, reps): (Guest, Region, usize)) -> Guest {
    let mut buf = vec![0u8; 13];
    for _ in 0..reps {
        guest
            .read_into(black_box(region.offset), black_box(&mut buf))
            .unwrap();
    }
    guest
}

/// The physical limit, as criterion's `memcpy` cases measure it: `copy_from_slice` between
/// two heap buffers whose length the compiler does not know (a `memcpy` call, as the
/// library's copy of a length it is given).
fn buffers(reps: usize) -> (Vec<u8>, Vec<u8>, usize) {
    (vec![7u8; 13], vec![0u8; 13], reps)
}

// The reference of both the 13 B read and the 13 B write: the same copy either way.
#[library_benchmark]
#[bench::memcpy(args = (REPS), setup = buffers)]
fn copy_13b_memcpy((src, mut dst, reps): (Vec<u8>, Vec<u8>, usize)) -> Vec<u8> {
    for _ in 0..reps {
        black_box(&mut dst).copy_from_slice(black_box(&src));
    }
    dst
}

#[library_benchmark]
#[bench::library(args = (REPS), setup = metered_at)]
fn write_13b_library((mut guest, region, reps): (Guest, Region, usize)) -> Guest {
    let offset = region.offset;
    let data = vec![b'x'; 13];
    for _ in 0..reps {
        guest.write(black_box(offset), black_box(&data)).unwrap();
    }
    guest
}

#[library_benchmark]
#[bench::library(args = (REPS), setup = metered)]
#[bench::library_unmetered(args = (REPS), setup = unmetered)]
fn load_library((mut guest, reps): (Guest, usize)) -> Guest {
    for _ in 0..reps {
        black_box(guest.load().unwrap());
    }
    guest
}

#[library_benchmark]
#[bench::raw(args = (REPS), setup = plain)]
fn load_raw((mut raw, reps): (Raw, usize)) -> Raw {
    for _ in 0..reps {
        black_box(raw.load.call(&mut raw.store).unwrap());
    }
    raw
}

// 1 KiB in, transformed, read back borrowed: the library's round trip.
#[library_benchmark]
#[bench::library(args = (REPS), setup = metered)]
fn roundtrip_1kib_library((mut guest, reps): (Guest, usize)) -> Guest {
    let data = vec![b'a'; 1024];
    for _ in 0..reps {
        guest.put_bytes(black_box(&data)).unwrap();
        guest.transform().unwrap();
        let region = guest.load().unwrap();
        black_box(guest.bytes(region).unwrap().len());
    }
    guest
}

// The same steps on plain wasmer, no fuel, no checks.
#[library_benchmark]
#[bench::raw(args = (REPS), setup = plain_alloc)]
fn roundtrip_1kib_raw((mut raw, reps): (RawAlloc, usize)) -> RawAlloc {
    let data = vec![b'a'; 1024];
    let mut out = vec![0u8; 1024 + 14];
    for _ in 0..reps {
        raw.roundtrip(black_box(&data), &mut out);
        black_box(&mut out);
    }
    raw
}

library_benchmark_group!(
    name = calls;
    benchmarks = read_13b_library, copy_13b_memcpy, write_13b_library, load_library, load_raw, roundtrip_1kib_library, roundtrip_1kib_raw
);

main!(library_benchmark_groups = calls);
