//! The library against the built guest: the seed's steps, the guest's extras, and writes
//! that must change nothing when refused.

use crate::common;

use common::{SEED_WAT, guest, guest_wasm, snapshot, wasm};
use memhost::{Error, GuestModule, Limits, Region};
use wasmer::{ExternType, Instance, Module, Store, TypedFunction, WasmPtr, imports};

#[test]
fn artifact_exports_exactly_the_abi_and_stays_small() {
    let bytes = guest_wasm();
    assert!(
        bytes.len() < 2048,
        "the guest grew to {} bytes",
        bytes.len()
    );
    let store = Store::default();
    let module = Module::new(&store, &bytes).unwrap();
    assert_eq!(module.imports().count(), 0);
    // As wasmer sees them, independently of the `abi` crate's check.
    let show = |ty: &ExternType| match ty {
        ExternType::Function(f) => format!("(func {:?} -> {:?})", f.params(), f.results()),
        ExternType::Memory(m) => format!(
            "(memory {} {:?} shared={})",
            m.minimum.0,
            m.maximum.map(|p| p.0),
            m.shared
        ),
        other => format!("{other:?}"),
    };
    let exports: Vec<_> = module
        .exports()
        .map(|e| format!("{} {}", e.name(), show(e.ty())))
        .collect();
    assert_eq!(
        exports,
        [
            "mem (memory 1 None shared=false)",
            "adopt (func [I32, I32] -> [I32])",
            "cabi_realloc (func [I32, I32, I32, I32] -> [I32])",
            "capacity (func [] -> [I32])",
            "load (func [] -> [I32, I32])",
            "set_len (func [I32] -> [I32])",
            "transform (func [] -> [I32])",
        ]
    );
}

#[test]
fn load_is_callable_as_the_seed_calls_it() {
    let mut store = Store::default();
    let module = Module::new(&store, guest_wasm()).unwrap();
    let instance = Instance::new(&mut store, &module, &imports! {}).unwrap();
    let load: TypedFunction<(), (WasmPtr<u8>, i32)> =
        instance.exports.get_typed_function(&store, "load").unwrap();
    let memory = instance.exports.get_memory("mem").unwrap();
    let (ptr, length) = load.call(&mut store).unwrap();
    let view = memory.view(&store);
    assert_eq!(
        ptr.read_utf8_string(&view, u32::try_from(length).unwrap())
            .unwrap(),
        "Hello, World!"
    );
}

#[test]
fn reads_the_initial_string() {
    let mut g = guest();
    assert_eq!((g.memory_pages(), g.memory_size()), (1, 65536));
    let region = g.load().unwrap();
    assert_eq!(region.len, 13);
    assert_eq!(g.read(region).unwrap(), b"Hello, World!");
    assert_eq!(g.string().unwrap(), "Hello, World!");
    assert_eq!(g.capacity().unwrap(), Some(4096));
}

#[test]
fn seed_write_then_guest_length_then_transform() {
    let mut g = guest();
    let at = g.load().unwrap().offset;
    let new = g.write_string("Hello, Wasmer!").unwrap();
    assert_eq!(
        new,
        Region {
            offset: at,
            len: 14
        }
    );
    assert_eq!(g.read_string(new).unwrap(), "Hello, Wasmer!");
    // The guest has not been told yet.
    assert_eq!(g.load().unwrap().len, 13);
    g.set_len(14).unwrap();
    assert_eq!(g.load().unwrap(), new);
    assert_eq!(g.transform().unwrap(), 28);
    assert_eq!(g.string().unwrap(), "Hello, Wasmer! Wasm is cool!");
}

#[test]
fn replace_string_up_to_capacity() {
    let mut g = guest();
    let full = "x".repeat(4096);
    g.replace_string(&full).unwrap();
    assert_eq!(g.string().unwrap(), full);
    g.replace_string("").unwrap();
    assert_eq!(g.string().unwrap(), "");
}

#[test]
fn over_capacity_changes_no_byte() {
    let mut g = guest();
    let before = snapshot(&g);
    let err = g.replace_string(&"x".repeat(4097)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OverCapacity {
                len: 4097,
                capacity: 4096
            }
        ),
        "{err:?}"
    );
    let err = g.write_string(&"x".repeat(4097)).unwrap_err();
    assert!(matches!(err, Error::OverCapacity { .. }), "{err:?}");
    assert!(snapshot(&g) == before);
}

#[test]
fn write_past_the_end_of_memory_changes_no_byte() {
    let mut g = guest();
    let before = snapshot(&g);
    let err = g.write(65530, b"0123456789").unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfBounds {
                offset: 65530,
                len: 10,
                memory_size: 65536
            }
        ),
        "{err:?}"
    );
    let err = g.write(u32::MAX, b"ab").unwrap_err();
    assert!(
        matches!(
            err,
            Error::RangeOverflow {
                offset: u32::MAX,
                len: 2
            }
        ),
        "{err:?}"
    );
    assert!(snapshot(&g) == before);
    g.write(65530, b"012345").unwrap();
    assert_eq!(
        g.read(Region {
            offset: 65530,
            len: 6
        })
        .unwrap(),
        b"012345"
    );
}

#[test]
fn refused_lengths_keep_the_guest_as_it_was() {
    let mut g = guest();
    let err = g.set_len(4097).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Refused {
                export,
                len: 4097,
                code: -2
            } if export == "set_len"
        ),
        "{err:?}"
    );
    let err = g.set_len(u32::MAX).unwrap_err();
    assert!(matches!(err, Error::Refused { code: -1, .. }), "{err:?}");
    assert_eq!(g.string().unwrap(), "Hello, World!");
}

#[test]
fn transform_moves_a_string_that_outgrows_the_static_buffer() {
    let mut g = guest();
    g.replace_string(&"y".repeat(4090)).unwrap();
    let before = g.load().unwrap();
    assert_eq!(g.transform().unwrap(), 4104);
    let after = g.load().unwrap();
    assert_ne!(after.offset, before.offset, "moved to the heap");
    assert!(g.capacity().unwrap().unwrap() >= 4104);
    assert_eq!(g.str(after).unwrap(), "y".repeat(4090) + " Wasm is cool!");
}

#[test]
fn transform_without_memory_left_changes_no_byte() {
    // One page at most: the heap fills it, then the guest refuses with its code.
    let mut limits = Limits::default();
    limits.max_memory_bytes = 65536;
    let mut g = GuestModule::from_bytes(&guest_wasm(), &limits)
        .unwrap()
        .instantiate()
        .unwrap();
    g.replace_string(&"y".repeat(4090)).unwrap();
    let err = loop {
        let before = snapshot(&g);
        match g.transform() {
            Ok(_) => continue,
            Err(err) => {
                assert!(snapshot(&g) == before, "the refused call changed memory");
                break err;
            }
        }
    };
    assert!(
        matches!(
            &err,
            Error::ErrorCode {
                export,
                code: -3
            } if export == "transform"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "guest `transform` returned error code -3 (no memory left under the host's cap)"
    );
    assert_eq!(g.memory_size(), 65536);
    let s = g.string().unwrap();
    assert!(
        s.starts_with("yyyy") && s.ends_with(" Wasm is cool!"),
        "intact"
    );
}

#[test]
fn any_size_goes_in_through_the_allocator_and_comes_back_transformed() {
    let mut g = guest();
    assert_eq!(g.convention(), memhost::Convention::Allocation);
    for len in [0, 1, 13, 4096, 4097, 100_000, 3 << 20] {
        let data: Vec<u8> = (0..len)
            .map(|i| b'a' + u8::try_from(i % 26).unwrap())
            .collect();
        let region = g.put_bytes(&data).unwrap();
        assert_eq!(g.load().unwrap(), region, "{len}");
        g.transform().unwrap();
        let region = g.load().unwrap();
        let out = g.bytes(region).unwrap();
        assert_eq!(out.len(), len + 14);
        assert!(
            out[..len] == data[..] && out.ends_with(b" Wasm is cool!"),
            "{len}"
        );
    }
}

#[test]
fn strings_handed_over_again_and_again_reuse_the_guests_memory() {
    let mut g = guest();
    let data = vec![b'x'; 200_000];
    for _ in 0..200 {
        g.put_bytes(&data).unwrap();
        g.transform().unwrap();
    }
    // Two blocks of 200 KB live at a time at most: the old string and the new one.
    assert!(g.memory_size() <= 1 << 20, "{} bytes", g.memory_size());
}

#[test]
fn a_failing_fill_leaves_the_previous_string() {
    let mut g = guest();
    g.put_str("the previous string").unwrap();
    let before = g.memory_size();
    let err = g
        .put_with(1000, |buf| {
            buf[..4].copy_from_slice(b"half");
            Err(std::io::Error::other("the socket closed"))
        })
        .unwrap_err();
    assert!(matches!(err, Error::Fill { .. }), "{err:?}");
    assert_eq!(g.string().unwrap(), "the previous string");
    // The abandoned block was released: the same request gets the same block back.
    let again = g.put_with(1000, |buf| {
        buf.fill(b'k');
        Ok(())
    });
    assert_eq!(again.unwrap().len, 1000);
    assert_eq!(g.memory_size(), before);
}

#[test]
fn past_the_memory_cap_the_allocator_says_no_and_nothing_changes() {
    let mut limits = Limits::default();
    limits.max_memory_bytes = 1 << 20;
    let mut g = GuestModule::from_bytes(&guest_wasm(), &limits)
        .unwrap()
        .instantiate()
        .unwrap();
    let (string, size) = (g.load().unwrap(), g.memory_size());
    let err = g.put_bytes(&vec![0; 2 << 20]).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::AllocationFailed {
                export,
                len: 2_097_152
            } if export == "cabi_realloc"
        ),
        "{err:?}"
    );
    // (The guest may have set up its heap: its own change, not the host's.)
    assert_eq!((g.load().unwrap(), g.memory_size()), (string, size));
    assert_eq!(g.string().unwrap(), "Hello, World!");
}

#[test]
fn a_guest_with_only_a_length_setter_takes_data_in_its_static_buffer() {
    let wat = common::static_buffer_wat();
    let mut g = GuestModule::from_bytes(&wasm(&wat), &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap();
    assert_eq!(g.convention(), memhost::Convention::StaticBuffer);
    assert_eq!(
        g.put_str("in the buffer").unwrap(),
        Region {
            offset: 42,
            len: 13
        }
    );
    assert_eq!(g.string().unwrap(), "in the buffer");
    let before = snapshot(&g);
    let err = g.put_bytes(&[b'z'; 101]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OverCapacity {
                len: 101,
                capacity: 100
            }
        ),
        "{err:?}"
    );
    let err = g
        .put_with(50, |buf| {
            buf.fill(b'!');
            Err(std::io::Error::other("short read"))
        })
        .unwrap_err();
    assert!(matches!(err, Error::Fill { .. }), "{err:?}");
    assert!(snapshot(&g) == before, "the bytes written were put back");
    // The guide's own module has no way to be told: nothing is written.
    let mut seed = GuestModule::from_bytes(&wasm(SEED_WAT), &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap();
    assert_eq!(seed.convention(), memhost::Convention::WriteOnly);
    assert!(matches!(
        &seed.put_str("x"),
        Err(Error::MissingExport {
            export,
            ..
        }) if export == "set_len"
    ));
}

#[test]
fn seed_only_module_has_no_extras() {
    let module = GuestModule::from_bytes(&wasm(SEED_WAT), &Limits::default()).unwrap();
    let mut g = module.instantiate().unwrap();
    assert_eq!(g.extras(), memhost::Extras::default());
    assert_eq!(
        g.load().unwrap(),
        Region {
            offset: 42,
            len: 13
        }
    );
    assert_eq!(g.capacity().unwrap(), None);
    let before = snapshot(&g);
    let err = g.replace_string("Hello, Wasmer!").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::MissingExport {
                export,
                ..
            } if export == "set_len"
        ),
        "{err:?}"
    );
    assert!(
        snapshot(&g) == before,
        "nothing is written without a length setter"
    );
    assert!(matches!(
        &g.transform(),
        Err(Error::MissingExport {
            export,
            ..
        }) if export == "transform"
    ));
    g.write_string("Hello, Wasmer!").unwrap();
    assert_eq!(
        g.read_string(Region {
            offset: 42,
            len: 14
        })
        .unwrap(),
        "Hello, Wasmer!"
    );
}

#[test]
fn the_real_guest_needs_little_fuel() {
    // A thousand units per call is plenty; the default budget is half a million times that.
    let mut limits = Limits::default();
    limits.fuel = Some(1000);
    let mut g = GuestModule::from_bytes(&guest_wasm(), &limits)
        .unwrap()
        .instantiate()
        .unwrap();
    g.replace_string(&"z".repeat(4000)).unwrap();
    assert_eq!(g.transform().unwrap(), 4014);
    assert_eq!(g.string().unwrap().len(), 4014);
}
