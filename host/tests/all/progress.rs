//! Progress on standard error, under a real terminal (a pty): a bar with lines, bytes, a
//! percentage and the time left when standard input is a file; nothing with `--quiet`;
//! nothing on a pipe unless `--progress`, then plain lines.

use crate::common;

use std::fs::File;
use std::io::Read as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::process::Stdio;

use common::{guest_path, memhost, temp_file};

/// A pseudo-terminal of 24 rows and 100 columns: (master, slave).
fn pty() -> (File, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the out-pointers are to live locals; a null name and termios are allowed.
    let rc = unsafe {
        libc::openpty(
            &raw mut master,
            &raw mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &raw const size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: `openpty` returned two open descriptors that nothing else owns.
    unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Runs `--lines` over `input` with standard error on a pty; returns the exit code and what
/// the terminal showed.
fn on_terminal(input: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let (mut master, slave) = pty();
    let mut child = memhost()
        .args(["transform", "--lines", "--jobs=1", "--no-cache"])
        .args(extra)
        .arg(guest_path())
        .stdin(File::open(input).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The terminal's side is read until the child's side closes (EIO on Linux).
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let mut buf = [0; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            shown.extend_from_slice(&buf[..n]);
        }
        shown
    });
    let status = child.wait().unwrap();
    let shown = reader.join().unwrap();
    (status.code(), String::from_utf8_lossy(&shown).into_owned())
}

fn input() -> std::path::PathBuf {
    let mut lines = Vec::new();
    for i in 0..400_000 {
        lines.extend_from_slice(
            format!("{i:>12} some text to transform, line after line\n").as_bytes(),
        );
    }
    temp_file("progress-input.txt", &lines)
}

#[test]
fn a_terminal_shows_a_bar_and_quiet_shows_nothing() {
    let input = input();
    let (code, shown) = on_terminal(&input, &[]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("lines"), "no progress shown: {shown:?}");
    assert!(
        shown.contains('%'),
        "no percentage for a file of known size: {shown:?}"
    );
    assert!(shown.contains("left"), "no time left: {shown:?}");
    let (code, shown) = on_terminal(&input, &["--quiet"]);
    assert_eq!(code, Some(0));
    assert_eq!(shown, "", "--quiet showed something");
}

/// A single transform of a large input shows a spinner on a terminal, and its result is
/// all standard output holds.
#[test]
fn a_long_single_transform_spins_on_a_terminal() {
    let (mut master, slave) = pty();
    let input = temp_file("progress-single.txt", &vec![b'x'; 12 << 20]);
    let out = std::env::temp_dir().join(format!("memhost-spin-{}", std::process::id()));
    let mut child = memhost()
        .args(["transform", "--no-cache"])
        .arg(guest_path())
        .stdin(File::open(&input).unwrap())
        .stdout(File::create(&out).unwrap())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let _ = master.read_to_end(&mut shown);
        shown
    });
    assert!(child.wait().unwrap().success());
    let shown = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let result = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(result.len(), (12 << 20) + abi::SUFFIX.len());
    assert!(shown.contains("transforming standard input"), "{shown:?}");
}

#[test]
fn a_pipe_shows_nothing_unless_asked() {
    let input = input();
    let run = |extra: &[&str]| {
        memhost()
            .args(["transform", "--lines", "--jobs=1", "--no-cache"])
            .args(extra)
            .arg(guest_path())
            .stdin(File::open(&input).unwrap())
            .stdout(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let out = run(&["--progress"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("progress: 400000 lines, ") && last.contains("(100%)"),
        "{stderr}"
    );
}
