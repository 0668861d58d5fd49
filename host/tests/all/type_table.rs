//! The type table compiled at admission, against the attacks it answers: types nested past
//! any stack, types that name a type twice at every level (exponential as trees), and
//! values whose lifting cost the host far more than the guest memory they occupy (long
//! labels copied into every value, a many-case variant's layout worked out again for
//! every element).

use crate::common;

use std::path::PathBuf;

use memhost::{
    Error, GuestModule, Limits, MAX_TYPE_DEPTH, MAX_TYPE_SIZE, MAX_TYPE_WIDTH, Val, Violation, Wit,
};

/// A directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    common::scratch("type-table", name)
}

/// The world of `wit` (a package `t:t`, world `w`), read through a file as `--wit` reads it.
fn world(name: &str, wit: &str) -> Wit {
    let path = scratch(name).join("w.wit");
    std::fs::write(&path, wit).unwrap();
    Wit::from_path(&path, None).unwrap()
}

/// `module` admitted with the world `wit`, under `limits`.
fn admit(module: &[u8], wit: &Wit, limits: &Limits) -> Result<GuestModule, Error> {
    GuestModule::from_bytes_with(module, limits, Some(wit), None).map(|(m, _)| m)
}

/// The refusal of `module` with the world `wit` (named `name`), which must say each of
/// `says`, and come within `cpu` seconds of this thread's CPU time (wit-parser's parse is
/// most of it: admission itself is linear).
fn refused(module: &[u8], name: &str, wit: &str, says: &[String], cpu: f64) -> String {
    let started = thread_cpu_seconds();
    let err = admit(module, &world(name, wit), &Limits::default())
        .expect_err(name)
        .to_string();
    for says in says {
        assert!(err.contains(says), "{name}: {err}");
    }
    let spent = thread_cpu_seconds() - started;
    assert!(spent < cpu, "{name}: {spent:.1} s of CPU");
    err
}

/// The CPU time this thread has used, in seconds: a bound that a loaded machine does not
/// stretch as it stretches the wall clock.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// A world whose `f: func(p: list<tN>) -> u32` nests `n` levels of `wrap` around `u8`:
/// `t1 = wrap(t0)`, ... (`wrap` turns the name of the level below into a type).
fn chain(n: usize, wrap: impl Fn(&str) -> String) -> String {
    let mut wit = String::from("package t:t;\nworld w {\n  type t0 = u8;\n");
    for i in 1..=n {
        wit.push_str(&format!(
            "  type t{i} = {};\n",
            wrap(&format!("t{}", i - 1))
        ));
    }
    wit.push_str(&format!("  export f: func(p: list<t{n}>) -> u32;\n}}\n"));
    wit
}

#[test]
fn types_nested_past_the_limit_are_refused_at_admission_without_recursion() {
    let module = common::pair_module();
    let limits = Limits::default();
    type Wrap = fn(&str) -> String;
    let kinds: [(&str, Wrap); 6] = [
        ("record", |t| format!("tuple<{t}>")),
        ("option", |t| format!("option<{t}>")),
        ("result", |t| format!("result<{t}, u8>")),
        ("list", |t| format!("list<{t}>")),
        ("alias-of-tuple", |t| format!("tuple<u8, {t}>")),
        ("result-err", |t| format!("result<_, {t}>")),
    ];
    for (name, wrap) in kinds {
        // 100 000 levels: once a stack overflow (exit 134) in the walk of the types.
        let deep = chain(100_000, wrap);
        let says = format!("types nested more than {MAX_TYPE_DEPTH} deep");
        refused(&module, name, &deep, &[says], 60.0);
    }
    // At the limit: `list<tN>` holds N + 1 levels of the chain, and `u8` one more.
    let depth = MAX_TYPE_DEPTH as usize;
    let list = |t: &str| format!("list<{t}>");
    admit(
        &module,
        &world("at-limit", &chain(depth - 2, list)),
        &limits,
    )
    .expect("a type exactly as deep as the limit");
    let err = admit(
        &module,
        &world("past-limit", &chain(depth - 1, list)),
        &limits,
    )
    .expect_err("a type one level past the limit");
    assert!(err.to_string().contains("nested more than"), "{err}");
}

#[test]
fn a_type_that_names_another_twice_at_every_level_is_refused_in_linear_time() {
    // `t_k = tuple<t_{k-1}, t_{k-1}>`: 40 levels are 2^40 parts as a tree. Once k = 26
    // took 8 s and k = 40 never finished.
    let module = common::pair_module();
    let doubling = chain(40, |t| format!("tuple<{t}, {t}>"));
    let says = format!("a type of more than {MAX_TYPE_SIZE} parts");
    refused(&module, "doubling", &doubling, &[says], 10.0);
    // Twelve levels (8192 parts) are an ordinary type.
    admit(
        &module,
        &world("doubling-12", &chain(12, |t| format!("tuple<{t}, {t}>"))),
        &Limits::default(),
    )
    .expect("a type of 2^13 parts");
}

#[test]
fn wide_types_are_bounded_as_wasmparser_bounds_a_components() {
    let module = common::wasm(
        r#"(module
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
            (func (export "r") (param i32 i32) (result i32) i32.const 0)
            (func (export "v") (param i32 i32) (result i32) local.get 0))"#,
    );
    let wit = |fields: usize, cases: usize| {
        let fields: Vec<String> = (0..fields).map(|i| format!("x{i}: u8")).collect();
        let cases: Vec<String> = (0..cases).map(|i| format!("c{i}(u32)")).collect();
        format!(
            "package t:t;\nworld w {{\n  record big {{ {} }}\n  variant many {{ {} }}\n  \
             export r: func(p: list<big>) -> u32;\n  export v: func(p: many) -> u32;\n}}\n",
            fields.join(", "),
            cases.join(", ")
        )
    };
    // A record of 100 000 fields and a variant of 100 000 cases: refused, in linear time.
    let says = [
        format!("a record of 100000 fields (at most {MAX_TYPE_WIDTH})"),
        format!("a variant of 100000 cases (at most {MAX_TYPE_WIDTH})"),
    ];
    refused(&module, "too-wide", &wit(100_000, 100_000), &says, 60.0);
    // At the limit, both are laid out once, and the last case (a 2-byte discriminant)
    // goes through.
    let module = admit(
        &module,
        &world("wide", &wit(MAX_TYPE_WIDTH, MAX_TYPE_WIDTH)),
        &Limits::default(),
    )
    .unwrap();
    let mut guest = module.instantiate().unwrap();
    let last = Val::Variant(
        format!("c{}", MAX_TYPE_WIDTH - 1),
        Some(Box::new(Val::U32(7))),
    );
    assert_eq!(
        guest.call("v", &[last]).unwrap(),
        Some(Val::U32(u32::try_from(MAX_TYPE_WIDTH - 1).unwrap()))
    );
}

/// A module whose `f` returns, through its return area at 16, the list `(64, len)`: `len`
/// elements, every byte of them `fill`.
fn list_module(len: u32, pages: u32, fill: u8) -> Vec<u8> {
    let pair: Vec<String> = [64u32, len]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("\\{b:02x}"))
        .collect();
    common::wasm(&format!(
        r#"(module
            (memory (export "memory") {pages})
            (data (i32.const 16) "{}")
            (func (export "f") (result i32)
                (memory.fill (i32.const 64) (i32.const {fill}) (i32.const {len}))
                i32.const 16))"#,
        pair.concat()
    ))
}

#[test]
fn labels_copied_into_lifted_values_count_against_the_value_limit() {
    // An enum whose first case is named with 60 000 letters, and a list of a million of
    // it (1 MB of zeros in guest memory): once about 60 GB of host memory, the name copied
    // into every element uncounted.
    let name = "a".repeat(60_000);
    let kinds = [
        ("enum", format!("enum e {{ {name}, b }}")),
        ("variant", format!("variant e {{ {name}, b(u8) }}")),
        ("flags", format!("flags e {{ {name}, b }}")),
        ("record", format!("record e {{ {name}: u8 }}")),
    ];
    let mut limits = Limits::default();
    limits.max_value_bytes = 64 << 20;
    for (kind, def) in kinds {
        let wit = world(
            kind,
            &format!("package t:t;\nworld w {{\n  {def}\n  export f: func() -> list<e>;\n}}\n"),
        );
        // Flags: the set bits are the names copied; one byte of 0x01 an element.
        let fill = u8::from(kind == "flags");
        let module = list_module(1_000_000, 33, fill);
        let module = admit(&module, &wit, &limits).unwrap();
        let mut guest = module.instantiate().unwrap();
        let started = thread_cpu_seconds();
        let err = guest.call("f", &[]).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::HostLimit {
                    limit: Violation::ValueTooLarge,
                    ..
                }
            ),
            "{kind}: {err}"
        );
        let spent = thread_cpu_seconds() - started;
        assert!(spent < 20.0, "{kind}: {spent:.1} s of CPU");
        // A host limit leaves the instance usable; one element's labels fit.
        let small = list_module(1, 1, fill);
        let module = admit(&small, &wit, &limits).unwrap();
        let value = module.instantiate().unwrap().call("f", &[]).unwrap();
        let Some(Val::List(items)) = value else {
            panic!("{kind}: {value:?}")
        };
        assert_eq!(items.len(), 1, "{kind}");
    }
}

#[test]
fn a_many_case_variant_lifts_each_element_in_constant_time() {
    // A list of 160 000 values of a 3000-case variant: once the variant's layout and its
    // list of cases were worked out again for every element (100 s and more).
    let cases: Vec<String> = (0..3000).map(|i| format!("c{i}(u32)")).collect();
    let wit = world(
        "many-cases",
        &format!(
            "package t:t;\nworld w {{\n  variant v {{ {} }}\n  export f: func() -> list<v>;\n}}\n",
            cases.join(", ")
        ),
    );
    // 8 bytes an element: a 2-byte discriminant, padding, the u32.
    let module = admit(&list_module(160_000, 21, 0), &wit, &Limits::default()).unwrap();
    let mut guest = module.instantiate().unwrap();
    let started = thread_cpu_seconds();
    let Some(Val::List(items)) = guest.call("f", &[]).unwrap() else {
        panic!("not a list")
    };
    let spent = thread_cpu_seconds() - started;
    assert_eq!(items.len(), 160_000);
    assert_eq!(
        items[0],
        Val::Variant("c0".into(), Some(Box::new(Val::U32(0))))
    );
    assert!(spent < 10.0, "{spent:.1} s of CPU");
}

#[test]
fn a_large_result_is_printed_as_it_is_written_not_built_whole() {
    // `f` returns a string of 48 MiB. Its WAVE text was once built as one `String` and
    // copied again before printing: 181 MiB at the peak, here. Now the guest's
    // memory and the lifted value are the two that remain.
    const LEN: u32 = 48 << 20;
    let dir = scratch("print");
    let wit = dir.join("w.wit");
    std::fs::write(
        &wit,
        "package t:t;\nworld w {\n  export f: func() -> string;\n}\n",
    )
    .unwrap();
    let module = dir.join("m.wasm");
    std::fs::write(
        &module,
        common::wasm(&format!(
            r#"(module
                (memory (export "memory") {pages})
                (data (i32.const 16) "\40\00\00\00")
                (func (export "f") (result i32)
                    (i32.store (i32.const 20) (i32.const {LEN}))
                    (memory.fill (i32.const 64) (i32.const 97) (i32.const {LEN}))
                    i32.const 16))"#,
            pages = (LEN >> 16) + 1
        )),
    )
    .unwrap();
    let out = dir.join("out.txt");
    let (usage, stderr) = common::run_measured_with(
        &[
            "call".as_ref(),
            "--max-memory".as_ref(),
            "64MiB".as_ref(),
            "--wit".as_ref(),
            wit.as_os_str(),
            module.as_os_str(),
            "--invoke".as_ref(),
            "f()".as_ref(),
        ],
        std::process::Stdio::null(),
        std::fs::File::create(&out).unwrap().into(),
    );
    assert_eq!(usage.code, 0, "{stderr}");
    // The whole value, quoted, on one line.
    let len = std::fs::metadata(&out).unwrap().len();
    assert_eq!(len, u64::from(LEN) + 3);
    let peak = usage.peak_rss;
    println!("peak resident set {} MiB", peak >> 20);
    assert!(
        peak < 2 * i64::from(LEN) + (48 << 20),
        "peak resident set {} MiB for a {} MiB result",
        peak >> 20,
        LEN >> 20
    );
}
