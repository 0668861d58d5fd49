//! The binary's contract with its user: one table of exit codes that `--help` and the
//! README print alike, each code reached as documented, `--version`, sizes with units, and
//! a default module found at run time (never at a path of the machine that built it).

mod common;

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::process::{Output, Stdio};

use common::{SEED_WAT, guest_wasm, memhost, wasm};
use host::exit;

fn run_in(dir: &Path, args: &[&str]) -> Output {
    memhost()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh directory under the target's temporary directory.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The README's table of exit codes, as (code, meaning) rows.
fn readme_table() -> Vec<(u8, String)> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("the README");
    let start = readme
        .find("Exit codes of `memhost`:")
        .expect("the README has a table of exit codes");
    readme[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | code | meaning | more |
            let code = cells.get(1)?.parse().ok()?;
            Some((code, cells.get(2)?.to_string()))
        })
        .collect()
}

#[test]
fn the_readme_and_help_print_the_one_table() {
    let table: Vec<(u8, String)> = exit::TABLE
        .iter()
        .map(|e| (e.code, e.meaning.to_string()))
        .collect();
    assert_eq!(readme_table(), table, "README.md's exit codes drifted");
    let out = run_in(Path::new("."), &["--help"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::SUCCESS.code)));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.trim_end().ends_with(&exit::help()), "{help}");
}

#[test]
fn each_code_is_reached_as_documented() {
    let dir = fresh_dir("exit-codes");
    // 0: the demo.
    let module = dir.join("guest.wasm");
    fs::write(&module, guest_wasm()).unwrap();
    let module = module.to_str().unwrap();
    assert_eq!(
        run_in(&dir, &[module, "--no-cache"]).status.code(),
        Some(i32::from(exit::SUCCESS.code))
    );
    // 1: standard input fails while it is read into guest memory (`Error::Fill`): a
    // regular file opened for writing only says its size, then cannot be read.
    let input = dir.join("input");
    fs::write(&input, b"some input").unwrap();
    let out = memhost()
        .args(["transform", module, "--no-cache"])
        .stdin(OpenOptions::new().write(true).open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::IO.code)),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("filling guest memory failed"),
        "{}",
        stderr(&out)
    );
    // 2: a usage error.
    let out = run_in(&dir, &["--max-memory", "lots"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE.code)));
    // 3: no module.
    let out = run_in(&dir, &["missing.wasm", "--no-cache"]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::MODULE.code)),
        "{}",
        stderr(&out)
    );
    // 4: the guest traps.
    let trap = dir.join("trap.wasm");
    fs::write(
        &trap,
        wasm(r#"(module (memory (export "mem") 1) (func (export "load") (result i32 i32) unreachable))"#),
    )
    .unwrap();
    let out = run_in(&dir, &[trap.to_str().unwrap(), "--no-cache"]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::GUEST.code)),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_is_the_crate_version() {
    let out = run_in(Path::new("."), &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("memhost {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// `--max-memory 64KiB` is `--max-memory 65536`; `--help` shows defaults with units.
#[test]
fn sizes_take_units() {
    let dir = fresh_dir("sizes");
    let module = dir.join("guest.wasm");
    fs::write(&module, guest_wasm()).unwrap();
    let input = dir.join("input");
    fs::write(&input, vec![b'x'; 70_000]).unwrap();
    let transform = |cap: &str| {
        memhost()
            .args(["transform", module.to_str().unwrap(), "--no-cache"])
            .args(["--max-memory", cap])
            .stdin(File::open(&input).unwrap())
            .output()
            .unwrap()
    };
    for (cap, code) in [
        ("65536", 4),
        ("64KiB", 4),
        ("64 KiB", 4),
        ("1MiB", 0),
        ("1MB", 0),
    ] {
        let out = transform(cap);
        assert_eq!(out.status.code(), Some(code), "{cap}: {}", stderr(&out));
    }
    assert!(
        stderr(&transform("64KiB")).contains("memory cap of 65536 bytes"),
        "the cap is in bytes"
    );
    let help = run_in(&dir, &["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 16MiB]"), "{help}");
}

/// Without MODULE the binary looks for `target/guest/guest.wasm` from the current directory
/// upward, at run time: here a tree of its own, holding the guide's module instead of the
/// workspace's guest, is what runs.
#[test]
fn the_default_module_is_found_from_the_current_directory() {
    let root = fresh_dir("default-module");
    let artifact = root.join(abi::GUEST_ARTIFACT);
    fs::create_dir_all(artifact.parent().unwrap()).unwrap();
    fs::write(&artifact, wasm(SEED_WAT)).unwrap();
    let below = root.join("some/where/below");
    fs::create_dir_all(&below).unwrap();
    let out = run_in(&below, &["--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Memory contents: \"Hello, World!\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("String offset: 42"),
        "the guide's module ran: {stdout}"
    );

    // Outside any tree with a built guest: exit 3, saying where it looked and what to do.
    let empty = std::env::temp_dir().join(format!("memhost-none-{}", std::process::id()));
    fs::create_dir_all(&empty).unwrap();
    let out = run_in(&empty, &["--no-cache"]);
    fs::remove_dir_all(&empty).unwrap();
    assert_eq!(out.status.code(), Some(i32::from(exit::MODULE.code)));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: no MODULE given, and no target/guest/guest.wasm in ")
            && err.contains("cargo xtask build-guest"),
        "{err}"
    );
}
