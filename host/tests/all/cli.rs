//! The binary's contract with its user: one table of exit codes that `--help` and the
//! README print alike, each code reached as documented, `--version`, sizes with units, and
//! a default module found at run time (never at a path of the machine that built it).

use crate::common;

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::process::{Output, Stdio};

use common::{SEED_WAT, guest_wasm, memhost, wasm};
use memhost::exit;

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

/// Writes `dir/m.wasm`: the canonical ABI's skeleton (`memory`, a `cabi_realloc` that
/// always answers 8) with the functions `funcs` (WAT), for a `--wit` world to describe.
fn canonical_module(dir: &Path, funcs: &str) {
    let module = wasm(&format!(
        r#"(module
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
            {funcs})"#
    ));
    fs::write(dir.join("m.wasm"), module).unwrap();
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

/// A module given as WAT text runs as its binary would (the guide's own module is text);
/// text that does not assemble is a module error (exit 3) on one line, with where.
#[test]
fn text_modules_run_and_bad_text_says_where() {
    let dir = fresh_dir("cli-wat");
    fs::write(dir.join("seed.wat"), SEED_WAT).unwrap();
    let out = run_in(&dir, &["--no-cache", "seed.wat"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Memory contents: \"Hello, World!\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    fs::write(
        dir.join("bad.wat"),
        "(module\n  (func (result i32) i32.const))",
    )
    .unwrap();
    let out = run_in(&dir, &["--no-cache", "bad.wat"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MODULE.code)));
    let err = stderr(&out);
    assert!(
        err.contains("bad.wat is WAT text that does not assemble") && err.contains("(at 2:"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // Bytes that are neither text nor Wasm keep the binary path's error.
    fs::write(dir.join("junk.wasm"), [0xFF, 0xFE, 0, 1]).unwrap();
    let out = run_in(&dir, &["--no-cache", "junk.wasm"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MODULE.code)));
    assert!(
        stderr(&out).contains("not a valid Wasm module"),
        "{}",
        stderr(&out)
    );
}

/// `call` never falls back to the demo's guest, which has no world: a usage error naming
/// MODULE, even where the built guest would be found.
#[test]
fn call_without_a_module_is_a_usage_error() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = run_in(&root, &["call", "--invoke", "upper(\"x\")"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE.code)));
    assert!(
        stderr(&out).contains("call needs a MODULE"),
        "{}",
        stderr(&out)
    );
}

/// A bare function name finds the one function of that name in any interface; a name two
/// interfaces share lists both.
#[test]
fn bare_names_find_interface_functions() {
    let dir = fresh_dir("cli-bare");
    canonical_module(
        &dir,
        r#"
         (func (export "t:p/a#f") (param i32 i32) (result i32) local.get 1)
         (func (export "t:p/b#f") (param i32 i32) (result i32) i32.const 7)
         (func (export "t:p/b#g") (param i32 i32) (result i32) i32.const 9)"#,
    );
    fs::write(
        dir.join("w.wit"),
        "package t:p;\n\
         interface a { f: func(s: string) -> u32; }\n\
         interface b { f: func(s: string) -> u32; g: func(s: string) -> u32; }\n\
         world w { export a; export b; }\n",
    )
    .unwrap();
    let call = |invoke: &str| common::call_with_wit(dir.join("w.wit"), dir.join("m.wasm"), invoke);
    let out = call("g(\"abc\")");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "9\n");
    let out = call("t:p/a#f(\"abc\")");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "3\n",
        "{}",
        stderr(&out)
    );
    let out = call("f(\"abc\")");
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE.code)));
    let err = stderr(&out);
    assert!(
        err.contains("`f` is the name of 2 functions; name one in full: t:p/a#f, t:p/b#f"),
        "{err}"
    );
}

/// `inspect` shows a module's world with WIT signatures, its ABIs and imports, as text and
/// JSON, running none of its code; a refused module is described, then refused.
#[test]
fn inspect_shows_what_a_module_offers() {
    let dir = fresh_dir("cli-inspect");
    let canonical = common::canonical_wasm(abi::CANONICAL_ARTIFACT);
    fs::write(dir.join("c.wasm"), canonical).unwrap();
    let out = run_in(&dir, &["inspect", "--no-cache", "c.wasm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "speaks:    canonical ABI (WIT world)",
        "imports:   none",
        "world root:",
        "  transform: func(s: string) -> string;",
        "  memhost:test/text#upper: func(s: string) -> string;",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
    let out = run_in(&dir, &["inspect", "--json", "--no-cache", "c.wasm"]);
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.starts_with('{')
            && json.contains(r#""world": "root""#)
            && json.contains(
                r#"{"name": "transform", "signature": "transform: func(s: string) -> string"}"#
            )
            && json.contains(r#""refused": null"#),
        "{json}"
    );
    fs::write(
        dir.join("wasi.wat"),
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                   (memory (export "memory") 1))"#,
    )
    .unwrap();
    let out = run_in(&dir, &["inspect", "--no-cache", "wasi.wat"]);
    assert_ne!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("imports:   wasi_snapshot_preview1.fd_write (func)")
            && text.contains("refused:   ")
            && text.contains("bytes, WAT text)"),
        "{text}"
    );
}

/// A module whose world imports functions (which the CLI does not give) is refused, and
/// `inspect` shows the whole world all the same, imports and exports with their WIT types.
#[test]
fn inspect_shows_the_world_of_a_refused_plugin() {
    let dir = fresh_dir("cli-inspect-plugin");
    fs::write(
        dir.join("p.wasm"),
        common::canonical_wasm(abi::PLUGIN_ARTIFACT),
    )
    .unwrap();
    let out = run_in(&dir, &["inspect", "--no-cache", "p.wasm"]);
    assert_ne!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "  import memhost:plugin/config#get: func(key: string) -> option<string>;",
        "  import log: func(e: entry);",
        "  export greet: func(name: string) -> string;",
        "refused:   ",
        "the memhost CLI gives none",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
    let out = run_in(&dir, &["inspect", "--json", "--no-cache", "p.wasm"]);
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.contains(r#""world_functions": ["import memhost:plugin/config#get: func(key: string) -> option<string>""#),
        "{json}"
    );
}

/// A mistyped command is an unknown command (exit 2) with the nearest one suggested; a
/// file of that name runs as a module, and a word that looks like a path is a module that
/// cannot be read (exit 3).
#[test]
fn an_unknown_command_suggests_the_nearest() {
    let dir = fresh_dir("cli-unknown");
    let out = run_in(&dir, &["cal", "x.wasm"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE.code)));
    assert_eq!(
        stderr(&out).lines().next().unwrap_or_default(),
        "error: unknown command `cal`: did you mean `call`? (a module is named by its path, such as ./cal)"
    );
    let out = run_in(&dir, &["frobnicate"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE.code)));
    assert!(
        stderr(&out).contains("the commands are demo, transform, call, inspect, completions, help"),
        "{}",
        stderr(&out)
    );
    fs::write(dir.join("cal"), SEED_WAT).unwrap();
    let out = run_in(&dir, &["--no-cache", "cal"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_in(&dir, &["missing.wasm"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MODULE.code)));
}

/// `memhost completions SHELL` prints a script that completes the commands and their
/// options; an unknown shell is a usage error.
#[test]
fn completions_for_each_shell() {
    let dir = fresh_dir("cli-completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run_in(&dir, &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        // fish names long options without their dashes (`-l max-memory`).
        for word in ["memhost", "transform", "inspect", "max-memory", "invoke"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let out = run_in(&dir, &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE.code)));
}

/// A canonical guest whose `cabi_realloc` fails with its memory at the cap is told to raise
/// the cap (exit 4, one line); with room, the same input goes through.
#[test]
fn a_guest_out_of_memory_in_its_allocator_gets_the_max_memory_hint() {
    let module = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(abi::CANONICAL_ARTIFACT);
    let input = vec![b'a'; 3 << 20];
    let run = |cap: &str| {
        common::run_with_stdin(
            &[
                "transform".as_ref(),
                "--no-cache".as_ref(),
                "--max-memory".as_ref(),
                cap.as_ref(),
                module.as_os_str(),
            ],
            &input,
        )
    };
    let out = run("4MiB");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.starts_with("error: guest `cabi_realloc`")
            && err.trim_end().ends_with(
                "(the guest's memory cannot grow past the cap of 4194304 bytes: raise it with --max-memory)"
            )
            && err.lines().count() == 1,
        "{err}"
    );
    let out = run("16MiB");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), input.len() + abi::SUFFIX.len());
}

/// A call whose values are not of the parameters' types names the parameter, the type
/// expected and the text found, down to the part of the value that is wrong; a variant
/// case given several values is told that a case holds one, and how to write it.
#[test]
fn wave_errors_name_the_parameter_and_the_text() {
    let dir = fresh_dir("cli-wave-errors");
    canonical_module(
        &dir,
        r#"
         (func (export "shout") (param i32 i32) (result i32) i32.const 0)
         (func (export "area") (param i32 i32 i32) (result f64) f64.const 12)"#,
    );
    fs::write(
        dir.join("w.wit"),
        "package t:p;\n\
         world w {\n\
           record r { w: u32, h: u32 }\n\
           variant shape { circle(f32), rect(tuple<u32, u32>), box(r) }\n\
           export shout: func(text: string) -> string;\n\
           export area: func(s: shape) -> f64;\n\
         }\n",
    )
    .unwrap();
    let call = |invoke: &str| common::call_with_wit(dir.join("w.wit"), dir.join("m.wasm"), invoke);
    for (invoke, expected) in [
        (
            "shout(42)",
            "error: cannot call `shout`: parameter `text`: expected `string`, found `42`\n",
        ),
        (
            "area(rect((3, -4)))",
            "error: cannot call `area`: parameter `s`, at `.rect.1`: expected `u32`, found `-4` \
             (invalid value)\n",
        ),
        (
            "area(box({w: 3, h: \"4\"}))",
            "error: cannot call `area`: parameter `s`, at `.box.h`: expected `u32`, found `\"4\"`\n",
        ),
        (
            "area(rect(3, 4))",
            "error: cannot call `area`: not WAVE: unexpected token `,` after `(rect(3` (case \
             `rect` holds one value, of type `tuple<u32, u32>`: write `rect((3, 4))`)\n",
        ),
        (
            "area(box(3, 4))",
            "error: cannot call `area`: not WAVE: unexpected token `,` after `(box(3` (case \
             `box` holds one value, of type `record { w: u32, h: u32 }`: write `box({w: 3, h: \
             4})`)\n",
        ),
        (
            "area(circle(2.0, 3.0))",
            "error: cannot call `area`: not WAVE: unexpected token `,` after `(circle(2.0` \
             (case `circle` holds one value, of type `f32`)\n",
        ),
        (
            "shout(\"a\", \"b\")",
            "error: cannot call `shout`: 2 values for `shout: func(text: string) -> string`\n",
        ),
    ] {
        let out = call(invoke);
        assert_eq!(
            out.status.code(),
            Some(i32::from(exit::USAGE.code)),
            "{invoke}"
        );
        assert_eq!(stderr(&out), expected, "{invoke}");
    }
    let out = call("area(box({w: 3, h: 4}))");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "12\n");
}

/// A module that speaks the canonical ABI, given to the demo or to `transform` without a
/// function by the default name, is told what runs it instead: `call`, `inspect`, or
/// `--export` with the functions it can name.
#[test]
fn a_canonical_module_gets_a_hint_from_the_demo_and_transform() {
    let dir = fresh_dir("cli-canonical-hint");
    canonical_module(
        &dir,
        r#"
         (func (export "greet") (param i32 i32) (result i32) i32.const 0)
         (func (export "count") (param i32 i32) (result i32) i32.const 0)"#,
    );
    let world = |exports: &str| {
        fs::write(
            dir.join("w.wit"),
            format!("package t:p;\nworld w {{\n{exports}}}\n"),
        )
        .unwrap();
    };
    world(
        "export greet: func(name: string) -> string;\n\
         export count: func(s: string) -> u32;\n",
    );
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--no-cache", "--wit", "w.wit"]);
        run_in(&dir, &all)
    };
    let out = run(&["m.wasm"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::GUEST.code)));
    assert_eq!(
        stderr(&out),
        "error: module m.wasm has no export `load` (it speaks the canonical ABI, with functions \
         `greet`, `count`: `memhost call m.wasm --invoke 'greet(...)'` calls one, `memhost \
         inspect m.wasm` shows their types, `memhost transform m.wasm --export greet` pipes \
         standard input through one)\n"
    );
    for lines in [&[][..], &["--lines"][..]] {
        let mut args = vec!["transform", "m.wasm"];
        args.extend_from_slice(lines);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(i32::from(exit::GUEST.code)));
        assert_eq!(
            stderr(&out),
            "error: module m.wasm has no export `transform` (name a function of its world \
             with --export: `greet`)\n",
            "{args:?}"
        );
    }
    world("export count: func(s: string) -> u32;\n");
    let out = run(&["transform", "m.wasm"]);
    assert_eq!(
        stderr(&out),
        "error: module m.wasm has no export `transform` (none of its functions takes and \
         returns a string or bytes: `memhost inspect m.wasm` shows what it offers)\n"
    );
}
