//! Hostile canonical-ABI guests: every way a module can lie through the canonical ABI,
//! through the library (a typed error naming the export and what was wrong, the instance
//! then refusing further canonical calls, as the spec leaves a trapped instance) and
//! through the binary (exit 4, one line).

use crate::common;

use std::path::PathBuf;

use memhost::{Error, GuestModule, Limits, Val, Violation, Wit};

/// The world the hostile modules claim to implement.
const WIT: &str = "
package t:hostile;

world w {
    record empty {}
    variant v { a, b(u32) }
    enum e { x, y }
    export s: func() -> string;
    export l: func() -> list<u32>;
    export le: func() -> list<empty>;
    export c: func() -> char;
    export v: func() -> v;
    export en: func() -> e;
    export o: func() -> option<u8>;
    export r: func() -> result<u8, u8>;
    export take: func(s: string) -> u32;
    export spin: func();
}
";

/// The WIT file (written once, for every test of this binary), and the world parsed from it.
fn wit() -> (PathBuf, Wit) {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile-canonical");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.wit");
        std::fs::write(&path, WIT).unwrap();
        path
    });
    (path.clone(), Wit::from_path(path, None).unwrap())
}

/// A module of the world: each function returns what `returns` says (a core result, often
/// a pointer to a return area laid out by `data`), `cabi_realloc` runs `realloc`, and
/// `cabi_post_s` runs `post_s`.
fn module(returns: &[(&str, &str)], data: &str, realloc: &str, post_s: &str) -> Vec<u8> {
    let mut funcs = String::new();
    for (name, result) in [
        ("s", "i32"),
        ("l", "i32"),
        ("le", "i32"),
        ("c", "i32"),
        ("v", "i32"),
        ("en", "i32"),
        ("o", "i32"),
        ("r", "i32"),
    ] {
        let body = returns
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("i32.const 0", |(_, b)| b);
        funcs.push_str(&format!(
            "(func (export \"{name}\") (result {result}) {body})\n"
        ));
    }
    common::wasm(&format!(
        r#"(module
            (memory (export "memory") 1)
            {data}
            {funcs}
            (func (export "take") (param i32 i32) (result i32) local.get 1)
            (func (export "spin") (loop br 0))
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) {realloc})
            (func (export "cabi_post_s") (param i32) {post_s}))"#
    ))
}

/// A plain return area for `s` and friends at 64: `(ptr, len)` words, and more data.
const DATA: &str = r#"
    (data (i32.const 64) "\c8\00\00\00\02\00\00\00")   ;; s: (200, 2)
    (data (i32.const 200) "\c3\28")                     ;; not UTF-8
    (data (i32.const 72) "\00\00\00\00\01\00\00\40")   ;; l: (0, 0x40000001): 4 GiB + 4 bytes
    (data (i32.const 80) "\02\00\00\00\01\00\00\00")   ;; l: (2, 1): misaligned for u32
    (data (i32.const 88) "\f0\ff\00\00\00\01\00\00")   ;; s: (65520, 256): past the end
    (data (i32.const 96) "\00\00\00\00\00\00\00\80")   ;; s: (0, 2^31): longer than the spec allows
    (data (i32.const 104) "\00\00\00\00\00\e1\f5\05")  ;; le: (0, 10^8) empty records
    (data (i32.const 112) "\02\00\00\00\00\00\00\00")  ;; v/o/r: discriminant 2
"#;

fn instance(bytes: &[u8]) -> memhost::Guest {
    let (_, wit) = wit();
    let (module, _) = GuestModule::from_bytes_with(bytes, &Limits::default(), Some(&wit), None)
        .unwrap_or_else(|e| panic!("{e}: {:?}", e.problems()));
    module.instantiate().unwrap()
}

fn violation(err: &Error) -> Option<&Violation> {
    match err {
        Error::Canonical { violation, .. } => Some(violation),
        _ => None,
    }
}

#[test]
fn every_lie_is_a_typed_error_and_poisons_the_instance() {
    type Check = fn(&Error) -> bool;
    let cases: Vec<(&str, &str, Check)> = vec![
        ("s", "i32.const 64", |e| {
            matches!(
                violation(e),
                Some(Violation::InvalidUtf8 {
                    ptr: 200,
                    len: 2,
                    valid_up_to: 0
                })
            )
        }),
        ("s", "i32.const 88", |e| {
            matches!(
                violation(e),
                Some(Violation::OutOfBounds {
                    what: "a string",
                    ptr: 65520,
                    len: 256,
                    ..
                })
            )
        }),
        ("s", "i32.const 96", |e| {
            matches!(
                violation(e),
                Some(Violation::StringTooLong { len: 0x8000_0000 })
            )
        }),
        ("s", "i32.const 66", |e| {
            matches!(
                violation(e),
                Some(Violation::Misaligned {
                    what: "the return area",
                    ptr: 66,
                    align: 4
                })
            )
        }),
        ("s", "i32.const 65532", |e| {
            matches!(
                violation(e),
                Some(Violation::OutOfBounds {
                    what: "the return area",
                    ..
                })
            )
        }),
        ("l", "i32.const 72", |e| {
            matches!(
                violation(e),
                Some(Violation::ListTooLong {
                    len: 0x4000_0001,
                    size: 4
                })
            )
        }),
        ("l", "i32.const 80", |e| {
            matches!(
                violation(e),
                Some(Violation::Misaligned {
                    what: "a list",
                    ptr: 2,
                    align: 4
                })
            )
        }),
        ("c", "i32.const 0xD800", |e| {
            matches!(violation(e), Some(Violation::InvalidChar { value: 0xD800 }))
        }),
        ("c", "i32.const 0x110000", |e| {
            matches!(
                violation(e),
                Some(Violation::InvalidChar { value: 0x11_0000 })
            )
        }),
        ("v", "i32.const 112", |e| {
            matches!(
                violation(e),
                Some(Violation::Discriminant {
                    what: "a variant",
                    value: 2,
                    cases: 2
                })
            )
        }),
        ("en", "i32.const 2", |e| {
            matches!(
                violation(e),
                Some(Violation::Discriminant {
                    what: "an enum",
                    value: 2,
                    cases: 2
                })
            )
        }),
        ("o", "i32.const 112", |e| {
            matches!(
                violation(e),
                Some(Violation::Discriminant {
                    what: "an option",
                    value: 2,
                    cases: 2
                })
            )
        }),
        ("r", "i32.const 112", |e| {
            matches!(
                violation(e),
                Some(Violation::Discriminant {
                    what: "a result",
                    value: 2,
                    cases: 2
                })
            )
        }),
    ];
    for (name, body, check) in cases {
        let bytes = module(&[(name, body)], DATA, "i32.const 8", "");
        let mut g = instance(&bytes);
        let err = g.call(name, &[]).unwrap_err();
        assert!(check(&err), "{name} returning {body}: {err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("guest `{name}` broke the canonical ABI: ")),
            "{err}"
        );
        assert_eq!(err.kind(), memhost::ErrorKind::Guest);
        // The spec's trap: the instance is not entered again.
        let again = g.call("c", &[]).unwrap_err();
        assert!(matches!(again, Error::Poisoned { .. }), "{again}");
    }
}

/// A value past this host's limit (10^8 empty records, which the spec allows) is no lie:
/// its own error, and the instance is called again.
#[test]
fn a_host_limit_leaves_the_instance_usable() {
    let bytes = module(&[("le", "i32.const 104")], DATA, "i32.const 8", "");
    let mut g = instance(&bytes);
    for _ in 0..2 {
        let err = g.call("le", &[]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::HostLimit {
                    limit: Violation::ValueTooLarge,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("a limit of this host"), "{err}");
        assert_eq!(err.kind(), memhost::ErrorKind::Guest);
    }
    // Not poisoned: other functions answer.
    assert_eq!(g.call("c", &[]).unwrap(), Some(Val::Char('\0')));
    assert_eq!(g.call("o", &[]).unwrap(), Some(Val::Option(None)));
}

#[test]
fn a_lying_allocator_is_refused() {
    for (realloc, expected) in [
        ("i32.const 65534", "past the end of memory"),
        ("i32.const 0", "could not allocate"),
        ("unreachable", "trapped"),
        ("(loop br 0) i32.const 0", "ran out of fuel"),
    ] {
        let bytes = module(&[], DATA, realloc, "");
        let mut g = instance(&bytes);
        let err = g.call("take", &[Val::String("hello".into())]).unwrap_err();
        assert!(err.to_string().contains(expected), "{realloc}: {err}");
        assert!(err.to_string().contains("cabi_realloc"), "{realloc}: {err}");
        assert!(matches!(
            g.call("c", &[]).unwrap_err(),
            Error::Poisoned { .. }
        ));
    }
    // Misaligned, for a list of u32 it would hold: a world of its own.
    let (dir, _) = wit();
    let path = dir.with_file_name("list.wit");
    std::fs::write(
        &path,
        "package t:l; world w { export t: func(l: list<u32>) -> u32; }",
    )
    .unwrap();
    let wit = Wit::from_path(&path, None).unwrap();
    let bytes = common::wasm(
        r#"(module (memory (export "memory") 1)
            (func (export "t") (param i32 i32) (result i32) local.get 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 6))"#,
    );
    let (module, _) =
        GuestModule::from_bytes_with(&bytes, &Limits::default(), Some(&wit), None).unwrap();
    let err = module
        .instantiate()
        .unwrap()
        .call("t", &[Val::List(vec![Val::U32(1)])])
        .unwrap_err();
    assert!(
        matches!(
            violation(&err),
            Some(Violation::Misaligned {
                ptr: 6,
                align: 4,
                ..
            })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the block `cabi_realloc` returned at 6"),
        "{err}"
    );
}

#[test]
fn a_failing_post_return_and_an_endless_loop_are_errors() {
    for (post, expected) in [
        ("unreachable", "`cabi_post_s` trapped"),
        ("(loop br 0)", "`cabi_post_s` ran out of fuel"),
    ] {
        // A valid string result, "ok" at 300.
        let data =
            r#"(data (i32.const 64) "\2c\01\00\00\02\00\00\00") (data (i32.const 300) "ok")"#;
        let bytes = module(&[("s", "i32.const 64")], data, "i32.const 8", post);
        let mut g = instance(&bytes);
        let err = g.call("s", &[]).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    let mut g = instance(&module(&[], DATA, "i32.const 8", ""));
    let err = g.call("spin", &[]).unwrap_err();
    assert!(
        matches!(err, Error::OutOfFuel { ref export, .. } if export == "spin"),
        "{err}"
    );
}

/// Results borrowed in place (`typed_borrowed`): the honest ones read as `call` reads them;
/// each lie is the error `call` gives, and the caller's closure never sees it; the closure
/// runs before the post-return frees the result.
#[test]
fn borrowed_results_are_checked_as_lifted_ones() {
    let honest = r#"
        (data (i32.const 64) "\80\00\00\00\05\00\00\00")   ;; s: (128, 5)
        (data (i32.const 72) "\88\00\00\00\03\00\00\00")   ;; l: (136, 3)
        (data (i32.const 128) "hello")
        (data (i32.const 136) "\01\00\00\00\02\00\00\00\ff\ff\ff\ff")"#;
    let bytes = module(
        &[("s", "i32.const 64"), ("l", "i32.const 72")],
        honest,
        "i32.const 8",
        "",
    );
    let mut g = instance(&bytes);
    let s = g.typed_borrowed::<(), str>("s").unwrap();
    assert_eq!(s.call(&mut g, (), str::to_owned).unwrap(), "hello");
    let l = g.typed_borrowed::<(), [u32]>("l").unwrap();
    let (all, len, past) = l
        .call(&mut g, (), |n| {
            (n.iter().collect::<Vec<_>>(), n.len(), n.get(3))
        })
        .unwrap();
    assert_eq!((all, len, past), (vec![1, 2, u32::MAX], 3, None));
    let as_le = l.call(&mut g, (), |n| n.as_le_bytes().to_vec()).unwrap();
    assert_eq!(as_le, [1, 0, 0, 0, 2, 0, 0, 0, 255, 255, 255, 255]);
    // Other types are refused when the handle is made.
    for err in [
        g.typed_borrowed::<(), [u8]>("l").unwrap_err(),
        g.typed_borrowed::<(), [i32]>("l").unwrap_err(),
        g.typed_borrowed::<(), str>("l").unwrap_err(),
        g.typed_borrowed::<(), [u32]>("s").unwrap_err(),
        g.typed_borrowed::<(), str>("spin").unwrap_err(),
    ] {
        assert!(matches!(err, Error::Call { .. }), "{err}");
    }
    // A handle of another instance is an error, not another function.
    let mut other = instance(&bytes);
    let err = s.call(&mut other, (), str::len).unwrap_err();
    assert!(err.to_string().contains("another instance"), "{err}");

    // Every lie of `s` and `l` in `every_lie_is_a_typed_error_and_poisons_the_instance`.
    for (name, ret) in [
        ("s", "i32.const 64"),
        ("s", "i32.const 88"),
        ("s", "i32.const 96"),
        ("s", "i32.const 66"),
        ("s", "i32.const 65532"),
        ("l", "i32.const 72"),
        ("l", "i32.const 80"),
    ] {
        let bytes = module(&[(name, ret)], DATA, "i32.const 8", "");
        let lifted = instance(&bytes).call(name, &[]).unwrap_err();
        let mut g = instance(&bytes);
        let mut seen = false;
        let borrowed = match name {
            "s" => g
                .typed_borrowed::<(), str>(name)
                .unwrap()
                .call(&mut g, (), |_| seen = true),
            _ => g
                .typed_borrowed::<(), [u32]>(name)
                .unwrap()
                .call(&mut g, (), |_| seen = true),
        }
        .unwrap_err();
        assert!(!seen, "{name} returning {ret}: the closure saw a lie");
        assert!(violation(&borrowed).is_some(), "{borrowed}");
        assert_eq!(borrowed.to_string(), lifted.to_string());
        assert!(matches!(g.call("s", &[]), Err(Error::Poisoned { .. })));
    }

    // The post-return runs after the closure: one that traps fails the call after it.
    let data = r#"(data (i32.const 64) "\2c\01\00\00\02\00\00\00") (data (i32.const 300) "ok")"#;
    let mut g = instance(&module(
        &[("s", "i32.const 64")],
        data,
        "i32.const 8",
        "unreachable",
    ));
    let mut seen = None;
    let err = g
        .typed_borrowed::<(), str>("s")
        .unwrap()
        .call(&mut g, (), |s| seen = Some(s.to_owned()))
        .unwrap_err();
    assert_eq!(seen.as_deref(), Some("ok"));
    assert!(err.to_string().contains("`cabi_post_s` trapped"), "{err}");
}

/// A module whose world says one thing and whose exports another is refused before it is
/// compiled, every difference in the one error.
#[test]
fn a_world_its_exports_disagree_with_is_refused() {
    let bytes = common::wasm(
        r#"(module (memory (export "memory") 1)
            (func (export "s") (result i64) i64.const 0)
            (func (export "c") (param i32) (result i32) i32.const 0)
            (func (export "cabi_post_s") (param i64))
            (func (export "cabi_realloc") (param i32 i32) (result i32) i32.const 0))"#,
    );
    let (_, wit) = wit();
    let err =
        GuestModule::from_bytes_with(&bytes, &Limits::default(), Some(&wit), None).unwrap_err();
    let problems = err.problems().join("\n");
    for expected in [
        "export `s` is (func (result i64)), expected (func (result i32)) for `s: func() -> string`",
        "export `c` is (func (param i32) (result i32)), expected (func (result i32)) for `c: func() -> char`",
        "missing export `l` (func (result i32)) for `l: func() -> list<u32>`",
        "export `cabi_post_s` is (func (param i64)), expected (func (param i32))",
        "export `cabi_realloc` is (func (param i32 i32) (result i32)), expected (func (param i32 i32 i32 i32) (result i32))",
    ] {
        assert!(
            problems.contains(expected),
            "missing `{expected}` in:\n{problems}"
        );
    }
    assert!(matches!(err, Error::Abi { .. }));
    // The same, embedded as wit-bindgen embeds it: found without --wit. (The Component
    // Model's encoding has no empty records: the world goes without `le`.)
    let mut resolve = wit_parser::Resolve::default();
    let embeddable = WIT
        .replace("record empty {}", "")
        .replace("export le: func() -> list<empty>;", "");
    let pkg = resolve.push_str("w.wit", &embeddable).unwrap();
    let world = resolve.select_world(&[pkg], None).unwrap();
    let mut embedded = bytes.clone();
    wit_component::embed_component_metadata(
        &mut embedded,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    let err = GuestModule::from_bytes(&embedded, &Limits::default()).unwrap_err();
    assert!(
        err.problems()
            .iter()
            .any(|p| p.contains("missing export `l`")),
        "{err}"
    );
}

/// Resources, futures and streams are refused at admission, naming the function.
#[test]
fn types_this_host_does_not_carry_are_refused() {
    let (dir, _) = wit();
    let path = dir.with_file_name("unsupported.wit");
    std::fs::write(
        &path,
        "package t:u;
         world w {
           resource thing;
           export r: func(t: borrow<thing>);
           export f: func() -> future<u8>;
           export s: func(s: stream<u8>);
         }",
    )
    .unwrap();
    let wit = Wit::from_path(&path, None).unwrap();
    let bytes = common::wasm(r#"(module (memory (export "memory") 1))"#);
    let err =
        GuestModule::from_bytes_with(&bytes, &Limits::default(), Some(&wit), None).unwrap_err();
    let problems = err.problems().join("\n");
    for expected in [
        "`r` takes or returns a resource",
        "`f` takes or returns `future`",
        "`s` takes or returns `stream`",
    ] {
        assert!(
            problems.contains(expected),
            "missing `{expected}` in:\n{problems}"
        );
    }
}

/// Through the binary: exit 4 and one line, for a lie; exit 2 for a call that is not WAVE
/// of the function's types.
#[test]
fn the_binary_exits_4_for_a_lie_and_2_for_a_bad_call() {
    let (path, _) = wit();
    let dir = path.parent().unwrap();
    let wasm = dir.join("hostile.wasm");
    std::fs::write(
        &wasm,
        module(&[("c", "i32.const 0xD800")], DATA, "i32.const 8", ""),
    )
    .unwrap();
    let run = |invoke: &str| common::call_with_wit(&path, &wasm, invoke);
    let out = run("c()");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(
        stderr,
        "error: guest `c` broke the canonical ABI: 0xd800 is not a char (a Unicode scalar value)\n"
    );
    assert!(out.stdout.is_empty());
    for bad in ["take(1)", "take(\"x\"", "nope()", "take"] {
        let out = run(bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let out = run("take(\"hello\")");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5\n");
}
