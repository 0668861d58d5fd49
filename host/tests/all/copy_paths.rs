//! The plain-copy fast path (unshared memory) and wasmer's safe path (shared memory) must
//! give the same bytes and the same errors. Two modules with the same data, one with a
//! shared memory, are driven through the same calls.

use crate::common;

use std::borrow::Cow;

use common::wasm;
use memhost::{Error, Guest, GuestModule, Limits, Region};

fn module(shared: bool) -> Guest {
    let memory = if shared { "1 1 shared" } else { "1 1" };
    let wat = format!(
        r#"(module
             (memory (export "mem") {memory})
             (func (export "load") (result i32 i32) i32.const 42 i32.const 13)
             (data (i32.const 42) "Hello, World!")
             (data (i32.const 65530) "tail\ff\fe"))"#
    );
    GuestModule::from_bytes(&wasm(&wat), &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap()
}

/// Everything observable about a read of `region`, as text.
fn reads(g: &Guest, region: Region) -> String {
    let mut buf = vec![0; region.len.min(1 << 20) as usize];
    format!(
        "read={:?} str={:?} read_into={:?}/{:?}",
        g.read(region),
        g.str(region),
        g.read_into(region.offset, &mut buf),
        buf
    )
}

const REGIONS: [Region; 8] = [
    Region {
        offset: 42,
        len: 13,
    },
    Region { offset: 0, len: 0 },
    Region {
        offset: 65536,
        len: 0,
    }, // empty, exactly at the end: valid
    Region {
        offset: 65530,
        len: 6,
    }, // up to the end; not UTF-8
    Region {
        offset: 65530,
        len: 7,
    }, // one past the end
    Region {
        offset: 65537,
        len: 0,
    }, // empty, past the end
    Region {
        offset: u32::MAX,
        len: 2,
    }, // overflows
    Region {
        offset: 0,
        len: u32::MAX,
    }, // huge claim: refused before any allocation
];

#[test]
fn both_paths_read_the_same() {
    let (fast, safe) = (module(false), module(true));
    assert!(!fast.memory_is_shared());
    assert!(safe.memory_is_shared());
    for region in REGIONS {
        assert_eq!(reads(&fast, region), reads(&safe, region), "{region:?}");
    }
    assert_eq!(fast.str(REGIONS[0]).unwrap(), "Hello, World!");
    assert!(matches!(fast.str(REGIONS[2]), Ok(Cow::Borrowed(""))));
    assert!(matches!(
        fast.read(REGIONS[4]),
        Err(Error::OutOfBounds {
            offset: 65530,
            len: 7,
            memory_size: 65536
        })
    ));
    assert!(matches!(
        fast.read(REGIONS[6]),
        Err(Error::RangeOverflow { .. })
    ));
    assert!(matches!(
        fast.str(REGIONS[3]),
        Err(Error::InvalidUtf8 {
            offset: 65530,
            len: 6,
            valid_up_to: 4,
            ..
        })
    ));
}

#[test]
fn fast_path_borrows_and_safe_path_copies() {
    let (fast, safe) = (module(false), module(true));
    assert!(matches!(
        fast.bytes(REGIONS[0]).unwrap(),
        Cow::Borrowed(b"Hello, World!")
    ));
    assert!(matches!(
        fast.str(REGIONS[0]).unwrap(),
        Cow::Borrowed("Hello, World!")
    ));
    assert!(matches!(safe.bytes(REGIONS[0]).unwrap(), Cow::Owned(_)));
    assert!(matches!(safe.str(REGIONS[0]).unwrap(), Cow::Owned(_)));
}

#[test]
fn both_paths_write_the_same() {
    let (mut fast, mut safe) = (module(false), module(true));
    let whole = Region {
        offset: 0,
        len: 65536,
    };
    for (offset, bytes) in [
        (42, &b"Hello, Wasmer!"[..]),
        (65530, b"end!!!"),
        (65531, b"end!!!"),
        (u32::MAX, b"x"),
        (65536, b""),
        (0, &[7u8; 65536][..]),
    ] {
        let (a, b) = (fast.write(offset, bytes), safe.write(offset, bytes));
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "write at {offset}");
        assert!(
            fast.read(whole).unwrap() == safe.read(whole).unwrap(),
            "write at {offset}"
        );
    }
}
