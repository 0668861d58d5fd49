//! The `memhost` binary, run as a user runs it, on the built guest and on the guide's module.

use crate::common;

use std::process::Output;

use common::{SEED_WAT, guest, guest_path, temp_file, wasm};

fn host(args: &[&std::ffi::OsStr]) -> Output {
    // From another directory: the binary finds the workspace's artifact by itself.
    common::memhost()
        .args(args)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("the memhost binary runs")
}

#[test]
fn demo_prints_the_seed_run_and_the_guest_extras() {
    assert!(guest_path().exists(), "run `cargo xtask build-guest` first");
    let offset = guest().load().unwrap().offset;
    let out = host(&[]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
    let expected = format!(
        "\
Compiling module...
Instantiating module...
Memory size (pages) 1 pages
Memory size (bytes) 65536
String offset: {offset}
String length: 13
Memory contents: \"Hello, World!\"
New string length: 14
New memory contents: \"Hello, Wasmer!\"
Guest load after set_len: offset {offset}, length 14
Restored contents: \"Hello, World!\"
Partial write of \"Wasmer!\" at offset {partial} (offset + 7): \"Hello, Wasmer!\"
Transformed by the guest, length 28: \"Hello, Wasmer! Wasm is cool!\"
",
        partial = offset + 7
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn a_seed_only_module_prints_exactly_the_nine_seed_lines() {
    let path = temp_file("seed.wasm", &wasm(SEED_WAT));
    let out = host(&[path.as_os_str()]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\
Compiling module...
Instantiating module...
Memory size (pages) 1 pages
Memory size (bytes) 65536
String offset: 42
String length: 13
Memory contents: \"Hello, World!\"
New string length: 14
New memory contents: \"Hello, Wasmer!\"
"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--bogus"][..],
        &["a.wasm", "b.wasm"],
        &["--fuel"],
        &["--fuel", "lots"],
        &["--max-memory", "-1"],
        &["--max-module-bytes", "1 parsec"],
        &["--max-memory", "16MiBB"],
    ] {
        let args: Vec<_> = args.iter().map(std::ffi::OsStr::new).collect();
        let out = host(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains("try '--help'"),
            "{args:?}: {stderr}"
        );
    }
    let out = host(&[std::ffi::OsStr::new("--help")]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: memhost [OPTIONS] [MODULE]"), "{help}");
    assert!(help.contains("transform"), "{help}");
}
