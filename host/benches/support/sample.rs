//! The input of the line benchmarks and the native loop they are measured against: one
//! place for both, so that every mode and every bench transforms the same bytes.

#![allow(dead_code, reason = "each benchmark uses its own part")]

use std::hint::black_box;

/// `n` lines of 90 to 110 bytes, each with its newline.
pub fn input(n: usize) -> Vec<u8> {
    let mut input = Vec::new();
    for i in 0..n {
        input.extend((0..90 + i % 21).map(|j| b'a' + u8::try_from((i + j) % 26).unwrap()));
        input.push(b'\n');
    }
    input
}

/// What the guests' `transform` does to each of the `lines` lines of `input`, as a native
/// Rust loop: the physical limit.
pub fn native(input: &[u8], lines: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + lines * 14);
    for line in black_box(input).split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(&line[..line.len() - 1]);
        out.extend_from_slice(b" Wasm is cool!\n");
    }
    black_box(out)
}
