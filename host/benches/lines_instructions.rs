//! Where a line's time goes, as instruction counts under callgrind (gungraun): the same
//! 1000 lines of about 100 bytes through each mode of `transform --lines`, on one instance
//! warmed beforehand: the guide's 4-call path, one canonical call a line, one batch call
//! (`func(list<string>) -> list<string>`), one whole-chunk call, and the same transform as
//! a native loop. `cargo xtask bench canonical` divides by [`LINES`] and prints
//! instructions per line beside the medians, so that a regression of a few percent shows.
//!
//! Needs valgrind and `gungraun-runner` of the same version as the `gungraun` crate
//! (`cargo xtask bench canonical` installs the runner).

#![allow(unused_qualifications, reason = "gungraun's macros write whole paths")]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/sample.rs"]
mod sample;

use std::hint::black_box;

use gungraun::{library_benchmark, library_benchmark_group, main};
use memhost::{Guest, GuestModule, Limits, Transformer};

/// How many lines each case transforms.
const LINES: usize = 1000;

/// An instance of `artifact`, each function the cases call called once (the first call
/// of an export and the first touch of memory are not what is measured).
fn warm(artifact: &str) -> (Guest, Vec<u8>) {
    let module =
        GuestModule::from_bytes(&common::canonical_wasm(artifact), &Limits::default()).unwrap();
    let mut guest = module.instantiate().unwrap();
    let input = sample::input(LINES);
    if artifact == abi::GUEST_ARTIFACT {
        guest
            .transform_with(&Transformer::Guide, b"warm", |r| r.len())
            .unwrap();
    } else {
        guest
            .transform_bytes("transform", b"warm", |r| r.len())
            .unwrap();
        guest
            .transform_batch("transform-lines", &[b"warm"], |_, r| {
                black_box(r.len());
            })
            .unwrap();
        guest
            .transform_bytes("transform-chunk", &input, |r| r.len())
            .unwrap();
    }
    (guest, input)
}

fn guide() -> (Guest, Vec<u8>) {
    warm(abi::GUEST_ARTIFACT)
}

fn canonical() -> (Guest, Vec<u8>) {
    warm(abi::CANONICAL_ARTIFACT)
}

fn plain() -> Vec<u8> {
    sample::input(LINES)
}

/// The lines without their newlines.
fn bodies(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    input
        .split_inclusive(|&b| b == b'\n')
        .map(|l| &l[..l.len() - 1])
}

/// Each line of `input` through `transformer`, one call a line, the results gathered as the
/// stream gathers them.
fn one_call_a_line(mut guest: Guest, input: &[u8], transformer: &Transformer) -> Guest {
    let mut out = Vec::with_capacity(input.len() + LINES * 15);
    for line in bodies(input) {
        guest
            .transform_with(transformer, line, |r| out.extend_from_slice(r))
            .unwrap();
        out.push(b'\n');
    }
    black_box(out);
    guest
}

#[library_benchmark]
#[bench::guide(setup = guide)]
fn lines_guide((guest, input): (Guest, Vec<u8>)) -> Guest {
    one_call_a_line(guest, &input, &Transformer::Guide)
}

#[library_benchmark]
#[bench::canonical(setup = canonical)]
fn lines_canonical((guest, input): (Guest, Vec<u8>)) -> Guest {
    one_call_a_line(guest, &input, &Transformer::Canonical("transform".into()))
}

#[library_benchmark]
#[bench::batch(setup = canonical)]
fn lines_batch((mut guest, input): (Guest, Vec<u8>)) -> Guest {
    let mut out = Vec::with_capacity(input.len() + LINES * 15);
    let batch: Vec<&[u8]> = bodies(&input).collect();
    guest
        .transform_batch("transform-lines", &batch, |_, r| {
            out.extend_from_slice(r);
            out.push(b'\n');
        })
        .unwrap();
    black_box(out);
    guest
}

#[library_benchmark]
#[bench::chunk(setup = canonical)]
fn lines_chunk((mut guest, input): (Guest, Vec<u8>)) -> Guest {
    let mut out = Vec::with_capacity(input.len() + LINES * 15);
    guest
        .transform_bytes("transform-chunk", &input, |r| out.extend_from_slice(r))
        .unwrap();
    black_box(out);
    guest
}

#[library_benchmark]
#[bench::native(setup = plain)]
fn lines_native(input: Vec<u8>) -> Vec<u8> {
    sample::native(&input, LINES)
}

library_benchmark_group!(
    name = modes;
    benchmarks = lines_guide, lines_canonical, lines_batch, lines_chunk, lines_native
);

main!(library_benchmark_groups = modes);
