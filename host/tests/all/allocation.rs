//! What the library allocates when a guest or a file claims a huge size: nothing in
//! proportion to the claim. Counted per thread by the global allocator of this test binary
//! (`counting.rs`).

use crate::common;

use crate::counting::bytes_allocated_by;
use common::{temp_file, wasm};
use memhost::{Error, GuestModule, Limits};

const KIB: u64 = 1024;

#[test]
fn a_huge_claimed_length_allocates_nothing() {
    // `load` claims 2 GiB at 0 (and 4 GiB minus one at 1): refused by the bounds check,
    // for plain and for shared memory (whose reads copy), before any buffer is made.
    for memory in [
        "(memory (export \"mem\") 1)",
        "(memory (export \"mem\") 1 1 shared)",
    ] {
        for (offset, len) in [(0, i32::MAX), (1, -2)] {
            let wat = format!(
                r#"(module {memory}
                     (func (export "load") (result i32 i32) i32.const {offset} i32.const {len}))"#
            );
            let mut g = GuestModule::from_bytes(&wasm(&wat), &Limits::default())
                .unwrap()
                .instantiate()
                .unwrap();
            // Only the unsigned reading of -2 is a length: negative i32s are refused as such.
            if len < 0 {
                assert!(matches!(g.string(), Err(Error::NegativeLength { .. })));
                continue;
            }
            let region = g.load().unwrap();
            let (result, bytes) = bytes_allocated_by(|| g.read(region));
            assert!(
                matches!(
                    result,
                    Err(Error::OutOfBounds {
                        len: 2147483647,
                        ..
                    })
                ),
                "{result:?}"
            );
            assert!(bytes < 4 * KIB, "{memory}: {bytes} bytes allocated");
            let (result, bytes) = bytes_allocated_by(|| g.str(region).map(|_| ()));
            assert!(result.is_err());
            assert!(bytes < 4 * KIB, "{memory}: {bytes} bytes allocated by str");
        }
    }
}

#[test]
fn module_size_is_capped_before_reading() {
    // A sparse file of 1 GiB, with a cap of 100 bytes: refused from its size alone.
    let path = temp_file("sparse.wasm", b"");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let mut limits = Limits::default();
    limits.max_module_bytes = 100;
    let (result, bytes) = bytes_allocated_by(|| GuestModule::from_file(&path, &limits));
    let err = result.err().unwrap();
    assert!(
        matches!(
            err,
            Error::ModuleTooLarge {
                size: 1_073_741_824,
                limit: 100,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(bytes < 64 * KIB, "{bytes} bytes allocated");

    // Within the cap, a file is read into one buffer of its size, not grown by doubling.
    // A module of 1 MiB (mostly a custom section of padding) without `load` is read, then
    // refused on its bytes: what that allocates is the read's buffer and a little more.
    // Grown by doubling, the buffers would add up to about twice the size.
    let mut module = wasm(r#"(module (memory (export "mem") 1))"#);
    let pad: usize = 1 << 20;
    module.push(0); // a custom section
    module.extend_from_slice(&[0x80, 0x80, 0x40]); // its size, LEB128: 1 MiB
    module.push(3);
    module.extend_from_slice(b"pad");
    module.resize(module.len() + pad - 4, 0);
    let path = temp_file("padded-for-allocation.wasm", &module);
    let (result, bytes) = bytes_allocated_by(|| GuestModule::from_file(&path, &Limits::default()));
    assert!(matches!(result, Err(Error::Abi { .. })), "{result:?}");
    let len = module.len() as u64;
    println!("reading and refusing a {len}-byte module allocated {bytes} bytes");
    assert!(
        bytes >= len && bytes < len + len / 4,
        "{bytes} bytes for {len}"
    );
}

/// A canonical-ABI guest that claims a list of 10^8 empty records (0 bytes of memory each,
/// so within bounds) costs the host nothing like 10^8 values: it is refused before anything
/// is allocated for them.
#[test]
fn a_huge_list_of_nothing_is_refused_before_allocating() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("empty-records.wit");
    std::fs::write(
        &path,
        "package t:e; world w { record empty {} export le: func() -> list<empty>; }",
    )
    .unwrap();
    let wit = memhost::Wit::from_path(&path, None).unwrap();
    let bytes = wasm(
        r#"(module (memory (export "memory") 1)
            (data (i32.const 104) "\00\00\00\00\00\e1\f5\05")
            (func (export "le") (result i32) i32.const 104))"#,
    );
    let (module, _) =
        GuestModule::from_bytes_with(&bytes, &Limits::default(), Some(&wit), None).unwrap();
    let mut guest = module.instantiate().unwrap();
    let (err, bytes) = bytes_allocated_by(|| guest.call("le", &[]).unwrap_err());
    assert!(
        matches!(
            err,
            Error::HostLimit {
                limit: memhost::Violation::ValueTooLarge,
                ..
            }
        ),
        "{err}"
    );
    assert!(bytes < 64 * KIB, "the host allocated {bytes} bytes for it");
}
