//! Property tests: whatever `(offset, length)` a guest returns and whatever bytes it holds,
//! reading never panics, fails exactly when the range is outside memory or the bytes are
//! not UTF-8, and otherwise returns exactly the bytes placed there.
//!
//! Each run draws its cases from a seed, so that a failure can be run again: a fixed one by
//! default (every run tries the same cases), or `HOST_PROPTEST_SEED=<64 hex digits>` to try
//! others. A failure names the seed.

#![allow(
    clippy::cast_possible_truncation,
    reason = "every value here is bounded by the 64 KiB memory"
)]

use crate::common;

use std::cell::RefCell;

use common::wasm;
use memhost::{Error, Guest, GuestModule, Limits, Region};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const MEMORY: u64 = 65536;

/// The default seed; `HOST_PROPTEST_SEED` replaces it.
const SEED: &str = "5eed0f0a11ca5e5c0de5eed0f0a11ca5e5c0de5eed0f0a11ca5e5c0de5eed0f0";

/// The seed of this run, as hex and as bytes.
fn seed() -> (String, [u8; 32]) {
    let hex = std::env::var("HOST_PROPTEST_SEED").unwrap_or_else(|_| SEED.to_string());
    let mut bytes = [0; 32];
    assert!(
        hex.len() == 64,
        "HOST_PROPTEST_SEED takes 64 hex digits, not {hex:?}"
    );
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .unwrap_or_else(|_| panic!("HOST_PROPTEST_SEED takes hex digits, not {hex:?}"));
    }
    (hex, bytes)
}

/// A runner of `cases` cases drawn from the run's seed.
fn runner(cases: u32) -> (TestRunner, String) {
    let (hex, bytes) = seed();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    (
        TestRunner::new_with_rng(Config::with_cases(cases), rng),
        hex,
    )
}

/// `load` returns the two i32s stored at addresses 0 and 4: the test sets them.
fn guest() -> Guest {
    let wat = r#"(module
        (memory (export "mem") 1)
        (func (export "load") (result i32 i32) (i32.load (i32.const 0)) (i32.load (i32.const 4))))"#;
    GuestModule::from_bytes(&wasm(wat), &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap()
}

fn set_load(g: &mut Guest, offset: u32, len: i32) {
    g.write(0, &[offset.to_le_bytes(), len.to_le_bytes()].concat())
        .unwrap();
}

/// Offsets and lengths around every edge: zero, the end of memory, the end of the address
/// space, and anything at all.
fn offsets() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..16,
        65_000u32..=66_000,
        (u32::MAX - 70_000)..=u32::MAX,
        any::<u32>()
    ]
}

fn lengths() -> impl Strategy<Value = i32> {
    prop_oneof![
        -3i32..70_000,
        (i32::MAX - 3)..=i32::MAX,
        i32::MIN..=(i32::MIN + 3),
        any::<i32>()
    ]
}

#[test]
fn any_pair_from_load_is_checked_before_use() {
    let g = RefCell::new(guest());
    let (mut runner, seed) = runner(3000);
    runner
        .run(&(offsets(), lengths()), |(offset, len)| {
            let mut g = g.borrow_mut();
            set_load(&mut g, offset, len);
            let memory = g
                .read(Region {
                    offset: 0,
                    len: 65536,
                })
                .unwrap();
            let got = g.string();
            let end = u64::from(offset) + u64::try_from(len).unwrap_or(0);
            match got {
                Err(Error::NegativeLength { len: l, .. }) => prop_assert!(len < 0 && l == len),
                Err(Error::RangeOverflow { .. }) => {
                    prop_assert!(len >= 0 && end > u64::from(u32::MAX))
                }
                Err(Error::OutOfBounds { memory_size, .. }) => {
                    prop_assert!(len >= 0 && end <= u64::from(u32::MAX) && end > MEMORY);
                    prop_assert_eq!(memory_size, MEMORY);
                }
                Err(Error::InvalidUtf8 { valid_up_to, .. }) => {
                    let bytes = &memory[offset as usize..end as usize];
                    let e = std::str::from_utf8(bytes).unwrap_err();
                    prop_assert_eq!(valid_up_to as usize, e.valid_up_to());
                }
                Ok(s) => {
                    prop_assert!(len >= 0 && end <= MEMORY);
                    prop_assert_eq!(s.as_bytes(), &memory[offset as usize..end as usize]);
                }
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e} (run again with HOST_PROPTEST_SEED={seed})"));
}

#[test]
fn bytes_placed_are_the_bytes_read() {
    let g = RefCell::new(guest());
    let (mut runner, seed) = runner(2000);
    let placed = (
        prop::collection::vec(any::<u8>(), 0..2048),
        any::<u16>(),
        prop::bool::ANY,
    );
    runner
        .run(&placed, |(mut bytes, at, ascii)| {
            if ascii {
                // Half the cases are valid UTF-8, so that the Ok path is well covered.
                bytes.iter_mut().for_each(|b| *b &= 0x7f);
            }
            let mut g = g.borrow_mut();
            // Anywhere after the (offset, len) pair that fits.
            let room = 65536 - 8 - bytes.len() as u32;
            let offset = 8 + u32::from(at) % (room + 1);
            g.write(offset, &bytes).unwrap();
            set_load(&mut g, offset, i32::try_from(bytes.len()).unwrap());
            let region = g.load().unwrap();
            prop_assert_eq!(
                region,
                Region {
                    offset,
                    len: bytes.len() as u32
                }
            );
            prop_assert_eq!(&g.read(region).unwrap(), &bytes);
            match (g.string(), std::str::from_utf8(&bytes)) {
                (Ok(s), Ok(expected)) => prop_assert_eq!(s, expected),
                (Err(Error::InvalidUtf8 { valid_up_to, .. }), Err(e)) => {
                    prop_assert_eq!(valid_up_to as usize, e.valid_up_to());
                }
                (got, expected) => prop_assert!(false, "{got:?} vs {expected:?}"),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e} (run again with HOST_PROPTEST_SEED={seed})"));
}

#[test]
fn any_bytes_put_through_the_allocator_come_back_transformed() {
    // The real guest, one instance for every case: strings of any size replace each other
    // in its heap, and each comes back with the suffix, byte for byte.
    let g = RefCell::new(common::guest());
    let (mut runner, seed) = runner(300);
    let inputs = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 4000..4200),
        prop::collection::vec(any::<u8>(), 0..300_000),
    ];
    runner
        .run(&(inputs, prop::bool::ANY), |(bytes, twice)| {
            let mut g = g.borrow_mut();
            let region = g.put_bytes(&bytes).unwrap();
            prop_assert_eq!(g.load().unwrap(), region);
            let rounds = if twice { 2 } else { 1 };
            for _ in 0..rounds {
                g.transform().unwrap();
            }
            let region = g.load().unwrap();
            let out = g.bytes(region).unwrap();
            prop_assert_eq!(out.len(), bytes.len() + 14 * rounds);
            prop_assert!(out[..bytes.len()] == bytes[..]);
            prop_assert!(
                out[bytes.len()..]
                    .chunks(14)
                    .all(|c| c == b" Wasm is cool!")
            );
            // Old strings are freed: the heap holds about two of the largest at most.
            prop_assert!(g.memory_size() <= 2 << 20, "{} bytes", g.memory_size());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e} (run again with HOST_PROPTEST_SEED={seed})"));
}
