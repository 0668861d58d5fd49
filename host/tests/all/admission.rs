//! A large module that breaks the ABI is refused on its bytes, before anything is compiled:
//! in milliseconds and a few MB, where compiling it would take seconds and hundreds of MB.
//! The module is written to a file without being held in memory, and the child's peak is
//! its own `VmHWM` (`--peak-memory`), whatever this test binary holds.

use crate::common;

use std::time::Duration;

use common::large::{self, Abi};

const MIB: i64 = 1 << 20;

#[test]
fn a_large_module_that_breaks_the_abi_is_refused_without_compiling() {
    // 12 MB of function bodies, an import, no `load`.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("large-breaks-abi.wasm");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    large::write_module(&mut file, 12 << 20, Abi::Breaks).unwrap();
    drop(file);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size >= 12 << 20, "{size}");

    let usage = common::run_measured(&[path.as_os_str()]);
    println!(
        "refusing a {} MB module: {:?} CPU, peak RSS {} KiB",
        size >> 20,
        usage.cpu,
        usage.peak_rss / 1024
    );
    assert_eq!(usage.code, 4);
    // The targets: 100 ms and 64 MB for the whole process. CPU time, not wall time, so
    // that a busy machine does not fail it.
    assert!(usage.cpu < Duration::from_millis(100), "{:?}", usage.cpu);
    assert!(usage.peak_rss < 64 * MIB, "{} KiB", usage.peak_rss / 1024);

    // The library says why, listing both problems.
    let bytes = std::fs::read(&path).unwrap();
    let err = memhost::GuestModule::from_bytes(&bytes, &memhost::Limits::default())
        .err()
        .unwrap();
    assert!(matches!(err, memhost::Error::Abi { .. }), "{err:?}");
    assert_eq!(
        err.problems(),
        [
            "missing export `load` (func (result i32 i32))",
            "imports `env.log` (func (param i32 i32) (result i32)), which the host does not provide",
        ]
    );
}
