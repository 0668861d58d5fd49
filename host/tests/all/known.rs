//! The library remembers where the guest's string is between its own steps, instead of
//! calling `load` and `capacity` again (the ABI makes them queries). Guest code that may
//! move the string makes it ask again: these guests move theirs in `transform`.

use crate::common;

use memhost::{Error, GuestModule, Limits};

/// A string at `$off`, moved by `transform` to offset 1000; a static buffer of 100 bytes;
/// and a bump allocator from 2000 whose next block is, after `transform`, where the string
/// went (a buggy allocator the host must catch). `load` counts its calls at 60000.
const MOVER: &str = r#"
(module
  (memory (export "mem") 1)
  (global $off (mut i32) (i32.const 0))
  (global $len (mut i32) (i32.const 0))
  (global $next (mut i32) (i32.const 2000))
  (global $loads (mut i32) (i32.const 0))
  (func (export "load") (result i32 i32)
    (global.set $loads (i32.add (global.get $loads) (i32.const 1)))
    (i32.store (i32.const 60000) (global.get $loads))
    global.get $off global.get $len)
  (func (export "capacity") (result i32) i32.const 100)
  (func (export "set_len") (param i32) (result i32)
    (global.set $len (local.get 0)) i32.const 0)
  (func (export "transform") (result i32)
    (global.set $off (i32.const 1000))
    (global.set $next (i32.const 1000))
    global.get $len)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (if (i32.eqz (local.get 3)) (then (return (i32.const 0))))
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get 3)))
    local.get $p)
  (func (export "adopt") (param i32 i32) (result i32)
    (global.set $off (local.get 0)) (global.set $len (local.get 1)) i32.const 0))
"#;

fn mover() -> memhost::Guest {
    GuestModule::from_bytes(&common::wasm(MOVER), &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap()
}

#[test]
fn a_write_after_transform_goes_where_load_now_points() {
    let mut guest = mover();
    assert_eq!(guest.replace_string("abc").unwrap().offset, 0);
    // The string is known to be at 0: a second write needs no `load`.
    assert_eq!(guest.replace_string("abcd").unwrap().offset, 0);
    guest.transform().unwrap();
    // `transform` moved it to 1000; the library must not write at 0.
    let region = guest.write_string("xyz").unwrap();
    assert_eq!(region.offset, 1000);
    assert_eq!(guest.load().unwrap().offset, 1000);
}

#[test]
fn a_block_over_the_moved_string_is_refused() {
    let mut guest = mover();
    let first = guest.put_str("hello").unwrap();
    assert_eq!(first.offset, 2000);
    guest.transform().unwrap();
    // The string is now at 1000, and the allocator hands out 1000 next: overlap.
    let err = guest.put_str("world").unwrap_err();
    assert!(
        matches!(err, Error::Overlap { string, .. } if string.offset == 1000),
        "{err:?}"
    );
}

/// How many times the guest's `load` has run, read from its memory (no call).
fn loads(guest: &memhost::Guest) -> i32 {
    let mut count = [0u8; 4];
    guest.read_into(60000, &mut count).unwrap();
    i32::from_le_bytes(count)
}

/// The saving itself: between the library's own steps, `load` is not called again; after
/// guest code that may move the string, it is, once.
#[test]
fn the_library_does_not_ask_again_what_it_knows() {
    let mut guest = mover();
    guest.put_str("one").unwrap();
    assert_eq!(loads(&guest), 1, "the first put asks where the string is");
    guest.put_str("two").unwrap();
    guest.replace_string("three").unwrap();
    guest.write_string("four").unwrap();
    assert_eq!(loads(&guest), 1, "nothing ran that could move it");
    guest.transform().unwrap();
    guest.put_str("five").unwrap_err(); // the allocator's block overlaps: refused
    assert_eq!(loads(&guest), 2, "transform may have moved it");
    guest.load().unwrap();
    assert_eq!(loads(&guest), 3, "`Guest::load` always calls");
}
