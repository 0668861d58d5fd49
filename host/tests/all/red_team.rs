//! Attacks on the canonical path that a module or a `--wit` path alone could make: WIT read
//! from a path that never ends or never answers, error lines made long by the names a
//! module chose, and handles used with an instance they were not made on.

use crate::common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use memhost::{Error, GuestModule, Limits, Wit};

use common::{canonical_wasm, memhost};

fn scratch(name: &str) -> PathBuf {
    common::scratch("red-team", name)
}

/// Runs `memhost call --wit WIT MODULE --invoke 'f("x")'` and returns its exit code and
/// standard error, failing if it takes a minute (a read that never ends).
fn call_with_wit(wit: &std::path::Path, wasm: &std::path::Path) -> (i32, String) {
    let mut child = memhost()
        .args(["call", "--no-cache", "--wit"])
        .arg(wit)
        .arg(wasm)
        .args(["--invoke", "f(\"x\")"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("--wit {} still being read after a minute", wit.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn wit_is_read_only_from_regular_files_and_directories_of_bounded_size() {
    let dir = scratch("wit-paths");
    let wasm = dir.join("m.wasm");
    std::fs::write(&wasm, common::pair_module()).unwrap();
    // A FIFO nobody writes to: opening it would block for ever.
    let fifo = dir.join("fifo.wit");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // A sparse file of 2 GB, which reading whole would take 2 GB.
    let sparse = dir.join("sparse.wit");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(2_000_000_000)
        .unwrap();
    // A directory holding a `.wit` that is a FIFO.
    let with_fifo = dir.join("dir-with-fifo");
    std::fs::create_dir(&with_fifo).unwrap();
    std::os::unix::fs::symlink(&fifo, with_fifo.join("w.wit")).unwrap();
    for (wit, says) in [
        (
            PathBuf::from("/dev/zero"),
            "not a regular file or a directory",
        ),
        (fifo.clone(), "not a regular file or a directory"),
        (sparse, "2000000000 bytes, more than"),
        (with_fifo, "is not a regular file or a directory"),
    ] {
        let (code, stderr) = call_with_wit(&wit, &wasm);
        assert_eq!(code, 2, "{}: {stderr}", wit.display());
        assert!(stderr.contains(says), "{}: {stderr}", wit.display());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // A regular file still works.
    let good = dir.join("good.wit");
    std::fs::write(
        &good,
        "package t:t;\nworld w { export f: func(s: string) -> u32; }\n",
    )
    .unwrap();
    let (code, stderr) = call_with_wit(&good, &wasm);
    assert_eq!(code, 0, "{stderr}");
    // The library says the same.
    let err = Wit::from_path("/dev/zero", None).unwrap_err();
    assert!(matches!(err, Error::Wit { .. }), "{err}");
}

#[test]
fn error_lines_stay_short_whatever_the_module_names() {
    let dir = scratch("long-names");
    // A world of 10 000 functions, and a call of one it does not have.
    let mut wit = String::from("package t:t;\nworld w {\n");
    for i in 0..10_000 {
        wit.push_str(&format!(
            "  export function-with-a-long-name-{i}: func();\n"
        ));
    }
    wit.push_str("}\n");
    let wit_path = dir.join("many.wit");
    std::fs::write(&wit_path, &wit).unwrap();
    let mut funcs = String::new();
    for i in 0..10_000 {
        funcs.push_str(&format!(
            "(func (export \"function-with-a-long-name-{i}\"))\n"
        ));
    }
    let wasm = dir.join("many.wasm");
    std::fs::write(&wasm, common::wasm(&format!("(module {funcs})"))).unwrap();
    let out = common::call_with_wit(&wit_path, &wasm, "nope()");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
    assert!(
        stderr.chars().count() < 500,
        "{} characters: {stderr}",
        stderr.chars().count()
    );
    assert!(stderr.contains("more)"), "{stderr}");
    // A name of 60 000 letters in the function asked for: the line is cut.
    let long = "x".repeat(60_000);
    let out = common::call_with_wit(&wit_path, &wasm, &format!("{long}()"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.chars().count() < 1100 && stderr.contains("more characters)"),
        "{} characters",
        stderr.chars().count()
    );
}

#[test]
fn a_typed_func_refuses_an_instance_it_was_not_made_on() {
    let module = GuestModule::from_bytes(
        &canonical_wasm("target/guest/canonical.wasm"),
        &Limits::default(),
    )
    .unwrap();
    let mut a = module.instantiate().unwrap();
    let mut b = module.instantiate().unwrap();
    let transform = a.typed::<(&str,), (String,)>("transform").unwrap();
    assert_eq!(transform.call(&mut a, ("x",)).unwrap().0, "x Wasm is cool!");
    let err = transform.call(&mut b, ("x",)).unwrap_err();
    assert!(
        matches!(&err, Error::Call { problem, .. } if problem.contains("another instance")),
        "{err}"
    );
    // A guest of the guide's ABI, with no world at all: an error, not a panic.
    let mut guide = common::guest();
    let err = transform.call(&mut guide, ("x",)).unwrap_err();
    assert!(matches!(err, Error::Call { .. }), "{err}");
    // And the instance it was made on still works.
    assert_eq!(transform.call(&mut a, ("y",)).unwrap().0, "y Wasm is cool!");
}
