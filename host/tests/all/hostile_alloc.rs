//! Guests whose allocator lies, traps or stalls: nothing `cabi_realloc` or `adopt` returns
//! is trusted. Each case gets its own error, through the library and through
//! `host transform`; the guest's previous string stays readable, and no byte is written
//! outside a block that passed the checks.

use crate::common;

use common::{snapshot, temp_file, wasm};
use memhost::{Error, GuestModule, Limits, Region};

/// A guest holding "Hello, World!" at 1024 whose `cabi_realloc` and `adopt` run the given
/// bodies. `adopt` by default takes the block; `cabi_realloc` called with `new_len` 0 (the
/// host releasing a block) records the address it was given at 0.
fn guest_wat(realloc: &str, adopt: &str) -> String {
    format!(
        r#"(module
             (memory (export "mem") 1)
             (global $ptr (mut i32) (i32.const 1024))
             (global $len (mut i32) (i32.const 13))
             (func (export "load") (result i32 i32) global.get $ptr global.get $len)
             (func (export "transform") (result i32) global.get $len)
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
               (if (i32.eqz (local.get 3))
                 (then (i32.store (i32.const 0) (local.get 0)) (return (i32.const 1))))
               {realloc})
             (func (export "adopt") (param i32 i32) (result i32)
               {adopt})
             (data (i32.const 1024) "Hello, World!"))"#
    )
}

const TAKES_IT: &str =
    "(global.set $ptr (local.get 0)) (global.set $len (local.get 1)) i32.const 0";

/// A fresh instance of `wat` under [`limits`].
fn instance(wat: &str) -> memhost::Guest {
    GuestModule::from_bytes(&wasm(wat), &limits())
        .unwrap()
        .instantiate()
        .unwrap()
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.fuel = Some(2_000_000);
    limits
}

/// Runs `host transform` on `module` with `input`: exit code, stdout, stderr.
fn transform_binary(name: &str, module: &[u8], input: &[u8]) -> (i32, Vec<u8>, String) {
    let path = temp_file(name, module);
    let args = ["transform", "--fuel", "2000000"].map(std::ffi::OsStr::new);
    let out = common::run_with_stdin(&[&args[..], &[path.as_os_str()]].concat(), input);
    let code = out.status.code().expect("exits, never killed by a signal");
    (code, out.stdout, String::from_utf8(out.stderr).unwrap())
}

type Case = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Error) -> bool,
    &'static str,
);

#[test]
fn nothing_the_allocator_returns_is_trusted() {
    let cases: [Case; 9] = [
        (
            "null",
            "i32.const 0",
            TAKES_IT,
            |e| {
                matches!(
                    &e,
                    Error::AllocationFailed {
                        export,
                        len: 14
                    } if export == "cabi_realloc"
                )
            },
            "guest `cabi_realloc` could not allocate 14 bytes (it returned 0)",
        ),
        (
            "negative",
            "i32.const -16",
            TAKES_IT,
            |e| {
                matches!(
                    e,
                    Error::OutOfBounds {
                        offset: 4_294_967_280,
                        len: 14,
                        ..
                    }
                )
            },
            "range 4294967280..4294967294 (length 14) is past the end of memory (65536 bytes)",
        ),
        (
            "overflowing",
            "i32.const -1",
            TAKES_IT,
            |e| {
                matches!(
                    e,
                    Error::RangeOverflow {
                        offset: u32::MAX,
                        len: 14
                    }
                )
            },
            "range at offset 4294967295 with length 14 overflows the 32-bit address space",
        ),
        (
            "out of bounds",
            "i32.const 70000",
            TAKES_IT,
            |e| matches!(e, Error::OutOfBounds { offset: 70000, .. }),
            "range 70000..70014 (length 14) is past the end of memory (65536 bytes)",
        ),
        (
            // A block that runs past the end of memory: the host cannot know a block's size,
            // but it knows where memory ends (a short block inside memory is tested below).
            "running past the end of memory",
            "i32.const 65530",
            TAKES_IT,
            |e| {
                matches!(
                    e,
                    Error::OutOfBounds {
                        offset: 65530,
                        len: 14,
                        ..
                    }
                )
            },
            "range 65530..65544 (length 14) is past the end of memory (65536 bytes)",
        ),
        (
            "overlapping the string",
            "i32.const 1030",
            TAKES_IT,
            |e| {
                matches!(
                    e,
                    Error::Overlap {
                        offset: 1030,
                        string: Region {
                            offset: 1024,
                            len: 13
                        },
                        ..
                    }
                )
            },
            "guest `cabi_realloc` returned a block at 1030 (length 14) that overlaps the current string at 1024..1037",
        ),
        (
            "trapping",
            "unreachable",
            TAKES_IT,
            |e| {
                matches!(
                    &e,
                    Error::Trap {
                        export,
                        ..
                    } if export == "cabi_realloc"
                )
            },
            "guest `cabi_realloc` trapped: unreachable",
        ),
        (
            "stalling",
            "(loop br 0) i32.const 0",
            TAKES_IT,
            |e| {
                matches!(
                    &e,
                    Error::OutOfFuel {
                        export,
                        ..
                    } if export == "cabi_realloc"
                )
            },
            "guest `cabi_realloc` ran out of fuel after 2000000 units",
        ),
        (
            "growing past the cap",
            // Asks for 1000 pages (refused: memory.grow returns -1), then returns where it
            // believes they start.
            "(drop (memory.grow (i32.const 1000))) i32.const 65536",
            TAKES_IT,
            |e| {
                matches!(
                    e,
                    Error::OutOfBounds {
                        offset: 65536,
                        memory_size: 65536,
                        ..
                    }
                )
            },
            "range 65536..65550 (length 14) is past the end of memory (65536 bytes)",
        ),
    ];
    for (name, realloc, adopt, is, text) in cases {
        let wat = guest_wat(realloc, adopt);
        let mut g = instance(&wat);
        let before = snapshot(&g);
        let err = g.put_str("Hello, Wasmer!").unwrap_err();
        assert!(is(&err), "{name}: {err:?}");
        assert_eq!(err.to_string(), text, "{name}");
        assert!(snapshot(&g) == before, "{name}: memory changed");
        assert_eq!(g.string().unwrap(), "Hello, World!", "{name}");

        let (code, stdout, stderr) = transform_binary("alloc.wasm", &wasm(&wat), b"Hello, Wasmer!");
        assert_eq!(code, 4, "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: nothing on stdout");
        assert!(
            stderr.starts_with("error: putting standard input into the guest")
                && stderr.ends_with(&format!(": {text}\n"))
                && stderr.lines().count() == 1,
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_block_the_guest_will_not_adopt_is_released_and_the_string_kept() {
    for (adopt, is) in [
        (
            "i32.const -4",
            (|e: &Error| {
                matches!(
                    &e,
                    Error::Refused {
                        export,
                        len: 14,
                        code: -4
                    } if export == "adopt"
                )
            }) as fn(&Error) -> bool,
        ),
        ("unreachable", |e| {
            matches!(
                &e,
                Error::Trap {
                    export,
                    ..
                } if export == "adopt"
            )
        }),
        ("(loop br 0) i32.const 0", |e| {
            matches!(
                &e,
                Error::OutOfFuel {
                    export,
                    ..
                } if export == "adopt"
            )
        }),
    ] {
        let wat = guest_wat("i32.const 2048", adopt);
        let mut g = instance(&wat);
        let err = g.put_str("Hello, Wasmer!").unwrap_err();
        assert!(is(&err), "{adopt}: {err:?}");
        // The host wrote its bytes into the block it was given, and nowhere else...
        assert_eq!(
            g.read(Region {
                offset: 2048,
                len: 14
            })
            .unwrap(),
            b"Hello, Wasmer!"
        );
        // ...then gave the block back: `cabi_realloc(2048, 14, 1, 0)`.
        assert_eq!(
            g.read(Region { offset: 0, len: 4 }).unwrap(),
            2048u32.to_le_bytes()
        );
        assert_eq!(g.string().unwrap(), "Hello, World!");
        let (code, stdout, stderr) = transform_binary("adopt.wasm", &wasm(&wat), b"Hello, Wasmer!");
        assert_eq!(code, 4, "{stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.ends_with(&format!("{err}\n")), "{stderr}");
    }
}

#[test]
fn an_honest_fixture_goes_through() {
    let wat = guest_wat("i32.const 2048", TAKES_IT);
    // A shared memory is never lent out: the fill goes through a host buffer, and the
    // outcome is the same.
    let shared = wat.replace(
        r#"(memory (export "mem") 1)"#,
        r#"(memory (export "mem") 1 1 shared)"#,
    );
    assert_ne!(wat, shared);
    for wat in [&wat, &shared] {
        let mut g = GuestModule::from_bytes(&wasm(wat), &limits())
            .unwrap()
            .instantiate()
            .unwrap();
        assert_eq!(g.memory_is_shared(), wat == &shared);
        // A fill that fails: nothing adopted, the string as it was.
        let err = g
            .put_with(8, |buf| {
                buf.fill(b'!');
                Err(std::io::Error::other("short read"))
            })
            .unwrap_err();
        assert!(matches!(err, Error::Fill { .. }), "{err:?}");
        assert_eq!(g.string().unwrap(), "Hello, World!");
        assert_eq!(
            g.put_str("Hello, Wasmer!").unwrap(),
            Region {
                offset: 2048,
                len: 14
            }
        );
        assert_eq!(g.string().unwrap(), "Hello, Wasmer!");
    }
    let (code, stdout, stderr) = transform_binary("honest.wasm", &wasm(&wat), b"Hello, Wasmer!");
    assert_eq!(
        (code, stdout.as_slice(), stderr.as_str()),
        (0, &b"Hello, Wasmer!"[..], "")
    );
}

/// A block shorter than asked for that lies inside memory cannot be told from an honest one
/// (the host does not know the allocator's block sizes), so what the host promises is what
/// it can keep: the bytes go to exactly `ptr..ptr + len`, nothing outside it changes, the
/// guest's current string is never written over (a block that reaches it is refused as
/// overlapping), and every read after it is checked as before. What the short block clobbers
/// of the guest's own data is the guest's doing.
#[test]
fn a_short_block_inside_memory_gets_exactly_its_bytes() {
    // The allocator hands out 8 bytes at 2000 for any request (its "block" is 8 bytes: the
    // next 8 hold a sentinel the guest keeps).
    let wat = guest_wat("i32.const 2000", TAKES_IT).replace(
        r#"(data (i32.const 1024) "Hello, World!")"#,
        r#"(data (i32.const 1024) "Hello, World!") (data (i32.const 2008) "SENTINEL")"#,
    );
    let mut g = instance(&wat);
    let before = snapshot(&g);
    let region = g.put_str("Hello, Wasmer!").unwrap();
    assert_eq!(
        region,
        Region {
            offset: 2000,
            len: 14
        }
    );
    let after = snapshot(&g);
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        if !(2000..2014).contains(&i) {
            assert_eq!(a, b, "byte {i} changed outside the block");
        }
    }
    assert_eq!(&after[2000..2014], b"Hello, Wasmer!");
    // The sentinel's first 6 bytes are overwritten: the guest's loss, and all the host can see.
    assert_eq!(&after[2008..2016], b"asmer!EL");
    assert_eq!(g.string().unwrap(), "Hello, Wasmer!");

    // A short block that reaches the current string is refused before a byte moves.
    let wat = guest_wat("i32.const 1020", TAKES_IT);
    let mut g = instance(&wat);
    let before = snapshot(&g);
    let err = g.put_str("Hello, Wasmer!").unwrap_err();
    assert!(
        matches!(err, Error::Overlap { offset: 1020, .. }),
        "{err:?}"
    );
    assert!(snapshot(&g) == before);
}
