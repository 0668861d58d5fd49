//! The canonical ABI against wit-bindgen guests (Rust and C, built from `wit/guest.wit`):
//! every function called with known values through the dynamic and the typed API, and
//! values drawn for each function's types (fixed seed) compared with a second
//! implementation, wasmtime's Component Model calling the same core module componentized
//! by wit-component's encoder.

#![allow(
    clippy::cast_possible_truncation,
    reason = "the value generator takes the low bits of random words on purpose"
)]

use crate::common;
use crate::oracle;

use memhost::{Error, GuestModule, Limits, Val};
use wit_parser::WorldItem;

use common::{canonical_wasm, test_world};
use oracle::{Gen, same};

/// The guests under test: the Rust one, the C one, and the Rust one built for
/// `wasm32-wasip1` (its `std` importing WASI preview 1, which the host provides).
const GUESTS: [&str; 3] = [
    abi::CANONICAL_ARTIFACT,
    abi::CANONICAL_C_ARTIFACT,
    abi::CANONICAL_WASIP1_ARTIFACT,
];

fn guest(artifact: &str) -> memhost::Guest {
    GuestModule::from_bytes(&canonical_wasm(artifact), &Limits::default())
        .unwrap_or_else(|e| panic!("{artifact}: {e}: {:#?}", e.problems()))
        .instantiate()
        .unwrap()
}

fn s(v: &str) -> Val {
    Val::String(v.into())
}

fn some(v: Val) -> Val {
    Val::Option(Some(Box::new(v)))
}

#[test]
fn every_function_with_known_values() {
    for artifact in GUESTS {
        let mut g = guest(artifact);
        let mut call = |name: &str, params: &[Val]| {
            g.call(name, params)
                .unwrap_or_else(|e| panic!("{artifact}: {name}: {e}"))
        };
        assert_eq!(
            call("transform", &[s("Hello")]),
            Some(s("Hello Wasm is cool!"))
        );
        assert_eq!(
            call(
                "reverse",
                &[Val::List(vec![Val::U8(1), Val::U8(2), Val::U8(3)])]
            ),
            Some(Val::List(vec![Val::U8(3), Val::U8(2), Val::U8(1)]))
        );
        assert_eq!(
            call("words", &[s(" one  two three ")]),
            Some(Val::List(vec![s("one"), s("two"), s("three")]))
        );
        assert_eq!(
            call("join", &[Val::List(vec![s("a"), s("b"), s("c")]), s(", ")]),
            Some(s("a, b, c"))
        );
        let scalars = vec![
            Val::Bool(true),
            Val::S8(-8),
            Val::U8(200),
            Val::S16(-1600),
            Val::U16(60000),
            Val::S32(-32),
            Val::U32(4_000_000_000),
            Val::S64(-64),
            Val::U64(u64::MAX),
            Val::F32(1.5),
            Val::F64(-2.25),
            Val::Char('é'),
        ];
        assert_eq!(call("scalars", &scalars), Some(Val::Tuple(scalars.clone())));
        let numbers: Vec<Val> = (1..=17).map(Val::U32).collect();
        assert_eq!(call("sum17", &numbers), Some(Val::U64(153)));
        let point = |x, y, label: &str| {
            Val::Record(vec![
                ("x".into(), Val::S32(x)),
                ("y".into(), Val::S32(y)),
                ("label".into(), s(label)),
            ])
        };
        assert_eq!(
            call(
                "move-point",
                &[point(1, 2, "p"), Val::S32(10), Val::S32(-20)]
            ),
            Some(point(11, -18, "p'"))
        );
        let shape =
            |case: &str, payload: Option<Val>| Val::Variant(case.into(), payload.map(Box::new));
        assert_eq!(
            call(
                "area",
                &[shape(
                    "rect",
                    Some(Val::Tuple(vec![Val::U32(3), Val::U32(4)]))
                )]
            ),
            Some(Val::F64(12.0))
        );
        assert_eq!(call("area", &[shape("dot", None)]), Some(Val::F64(0.0)));
        assert_eq!(
            call("area", &[shape("named", Some(s("abcd")))]),
            Some(Val::F64(4.0))
        );
        assert_eq!(
            call("shapes", &[Val::U32(4)]),
            Some(Val::List(vec![
                shape("circle", Some(Val::F32(0.0))),
                shape("rect", Some(Val::Tuple(vec![Val::U32(1), Val::U32(2)]))),
                shape("dot", None),
                shape("named", Some(s("shape 3"))),
            ]))
        );
        assert_eq!(
            call("next-color", &[Val::Enum("blue".into())]),
            Some(Val::Enum("red".into()))
        );
        assert_eq!(
            call("flip", &[Val::Flags(vec!["write".into()])]),
            Some(Val::Flags(vec!["read".into(), "exec".into()]))
        );
        assert_eq!(
            call("find", &[Val::List(vec![s("x"), s("y")]), s("y")]),
            Some(some(Val::U32(1)))
        );
        assert_eq!(
            call("find", &[Val::List(vec![]), s("y")]),
            Some(Val::Option(None))
        );
        assert_eq!(
            call("parse", &[s(" 42 ")]),
            Some(Val::Result(Ok(Some(Box::new(Val::S64(42))))))
        );
        assert!(matches!(
            call("parse", &[s("x")]),
            Some(Val::Result(Err(Some(_))))
        ));
        assert_eq!(
            call("nested", &[some(Val::Option(None))]),
            Some(some(Val::Option(None)))
        );
        assert_eq!(
            call("nested", &[some(some(s("in")))]),
            Some(some(some(s("in"))))
        );
        assert_eq!(
            call("check", &[Val::Bool(true)]),
            Some(Val::Result(Ok(None)))
        );
        assert_eq!(
            call("check", &[Val::Bool(false)]),
            Some(Val::Result(Err(Some(Box::new(s("not ok"))))))
        );
        assert_eq!(call("nothing", &[]), None);
        assert_eq!(call("memhost:test/text#upper", &[s("abc")]), Some(s("ABC")));
        assert_eq!(
            call("memhost:test/text#count", &[s("héllo")]),
            Some(Val::U32(5))
        );
        // Aliases, one of an alias, of every scalar and of a string: laid out as the types
        // they name (an alias of `string` was once laid out as one `i32`, and a result
        // behind one read as `""`).
        let args = [
            s("aka"),
            Val::U64(u64::MAX - 1),
            Val::S64(i64::MIN + 1),
            Val::F32(1.5),
            Val::F64(-2.25),
            Val::Char('🦀'),
        ];
        assert_eq!(call("aliases", &args), Some(Val::Tuple(args.to_vec())));
        assert_eq!(call("alias-result", &[s("world")]), Some(s("world!")));
        // Batches and chunks.
        assert_eq!(
            call("transform-lines", &[Val::List(vec![s("a"), s(""), s("b")])]),
            Some(Val::List(vec![
                s("a Wasm is cool!"),
                s(" Wasm is cool!"),
                s("b Wasm is cool!")
            ]))
        );
        assert_eq!(
            call("transform-chunk", &[s("a\n\nlast")]),
            Some(s("a Wasm is cool!\n Wasm is cool!\nlast Wasm is cool!"))
        );
        // Empty strings and lists, at any address the allocator gives.
        assert_eq!(call("transform", &[s("")]), Some(s(" Wasm is cool!")));
        assert_eq!(
            call("reverse", &[Val::List(vec![])]),
            Some(Val::List(vec![]))
        );
    }
}

#[test]
fn the_typed_api_calls_the_same_functions() {
    for artifact in GUESTS {
        let mut g = guest(artifact);
        let transform = g.typed::<(&str,), (String,)>("transform").unwrap();
        for input in ["", "a", "Hello, World!"] {
            let (out,) = transform.call(&mut g, (input,)).unwrap();
            assert_eq!(out, format!("{input} Wasm is cool!"));
        }
        let reverse = g.typed::<(&[u8],), (Vec<u8>,)>("reverse").unwrap();
        assert_eq!(
            reverse.call(&mut g, (&[1, 2, 3][..],)).unwrap().0,
            [3, 2, 1]
        );
        let aliases = g
            .typed::<(&str, u64, i64, f32, f64, char), ((String, u64, i64, f32, f64, char),)>(
                "aliases",
            )
            .unwrap();
        assert_eq!(
            aliases
                .call(&mut g, ("aka", u64::MAX, i64::MIN, 0.5, 1e300, 'é'))
                .unwrap()
                .0,
            ("aka".to_string(), u64::MAX, i64::MIN, 0.5, 1e300, 'é')
        );
        let alias_result = g.typed::<(&str,), (String,)>("alias-result").unwrap();
        assert_eq!(alias_result.call(&mut g, ("world",)).unwrap().0, "world!");
        let join = g.typed::<(Vec<String>, &str), (String,)>("join").unwrap();
        let parts = vec!["x".to_string(), "y".to_string()];
        assert_eq!(join.call(&mut g, (parts, "-")).unwrap().0, "x-y");
        let find = g.typed::<(&[&str], &str), (Option<u32>,)>("find").unwrap();
        assert_eq!(
            find.call(&mut g, (&["a", "b"][..], "b")).unwrap().0,
            Some(1)
        );
        let parse = g.typed::<(&str,), (Result<i64, String>,)>("parse").unwrap();
        assert_eq!(parse.call(&mut g, ("-7",)).unwrap().0, Ok(-7));
        assert!(parse.call(&mut g, ("seven",)).unwrap().0.is_err());
        let check = g.typed::<(bool,), (Result<(), String>,)>("check").unwrap();
        assert_eq!(check.call(&mut g, (true,)).unwrap().0, Ok(()));
        // A `Val` stands for a value, never for an absent payload (it was once lifted as
        // `false`): refused when the handle is made; `Val` for the payload that is there.
        let err = g
            .typed::<(bool,), (Result<Val, Val>,)>("check")
            .unwrap_err();
        assert!(err.to_string().contains("`()` stands for none"), "{err}");
        let check = g.typed::<(bool,), (Result<(), Val>,)>("check").unwrap();
        assert_eq!(check.call(&mut g, (true,)).unwrap().0, Ok(()));
        assert!(matches!(
            check.call(&mut g, (false,)).unwrap().0,
            Err(Val::String(_))
        ));
        let nested = g
            .typed::<(Option<Option<&str>>,), (Option<Option<String>>,)>("nested")
            .unwrap();
        assert_eq!(nested.call(&mut g, (Some(None),)).unwrap().0, Some(None));
        let scalars = g
            .typed::<(bool, i8, u8, i16, u16, i32), ()>("scalars")
            .unwrap_err();
        assert!(matches!(scalars, Error::Call { .. }), "{scalars}");
        let nothing = g.typed::<(), ()>("nothing").unwrap();
        nothing.call(&mut g, ()).unwrap();
        let upper = g
            .typed::<(String,), (String,)>("memhost:test/text#upper")
            .unwrap();
        assert_eq!(upper.call(&mut g, ("q".into(),)).unwrap().0, "Q");
        // Types that do not match are refused when the handle is made, naming what.
        let err = g.typed::<(u32,), (String,)>("transform").unwrap_err();
        assert!(err.to_string().contains("parameter `s`"), "{err}");
        let err = g.typed::<(&str,), (u32,)>("transform").unwrap_err();
        assert!(err.to_string().contains("u32"), "{err}");
        assert!(g.typed::<(), ()>("no-such").is_err());
        // And the result read straight from guest memory.
        let n = g
            .transform_bytes("transform", b"zero copy", <[u8]>::len)
            .unwrap();
        assert_eq!(n, "zero copy Wasm is cool!".len());
    }
}

#[test]
fn values_of_the_wrong_type_are_refused_before_any_call() {
    let mut g = guest(abi::CANONICAL_ARTIFACT);
    for (name, params, expected) in [
        (
            "transform",
            vec![Val::U32(1)],
            "parameter `s`: a u32 for a value of type string",
        ),
        ("transform", vec![], "0 values"),
        (
            "next-color",
            vec![Val::Enum("purple".into())],
            "no case `purple`",
        ),
        (
            "flip",
            vec![Val::Flags(vec!["fly".into()])],
            "no flag `fly`",
        ),
        ("no-such", vec![], "has no such function"),
    ] {
        let err = g.call(name, &params).unwrap_err();
        assert!(matches!(err, Error::Call { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{name}: {err}");
        assert_eq!(err.kind(), memhost::ErrorKind::Usage);
    }
    // Nothing was called: the instance works on.
    assert_eq!(
        g.call("transform", &[s("ok")]).unwrap(),
        Some(s("ok Wasm is cool!"))
    );
}

/// Each function of the world, 200 times with drawn values: the library's result is
/// wasmtime's, for each guest. wasmtime runs the `wasm32-wasip1` build's twin, the same
/// code built for `wasm32-unknown-unknown` (componentizing a WASI module needs an adapter
/// and a WASI host on wasmtime's side).
/// Drawn arguments of function `name` of the test world.
fn draw_params(
    draw: &mut Gen,
    resolve: &wit_parser::Resolve,
    name: &str,
    f: &wit_parser::Function,
) -> Vec<Val> {
    let mut params: Vec<Val> = f
        .params
        .iter()
        .map(|p| draw.val(resolve, &p.ty, 0))
        .collect();
    if name == "shapes" {
        // A count: keep it small.
        params[0] = Val::U32(draw.below(40) as u32);
    }
    params
}

#[test]
fn results_are_wasmtimes_for_drawn_values() {
    let (resolve, world) = test_world();
    let mut funcs = Vec::new();
    for (key, item) in &resolve.worlds[world].exports {
        match item {
            WorldItem::Function(f) => funcs.push((f.name.clone(), f.clone())),
            WorldItem::Interface { id, .. } => {
                let iface = resolve.name_world_key(key);
                for (name, f) in &resolve.interfaces[*id].functions {
                    funcs.push((format!("{iface}#{name}"), f.clone()));
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    for artifact in GUESTS {
        let twin = match artifact {
            abi::CANONICAL_WASIP1_ARTIFACT => abi::CANONICAL_ARTIFACT,
            other => other,
        };
        let mut oracle = oracle::Oracle::new(&canonical_wasm(twin));
        let mut g = guest(artifact);
        let mut draw = Gen(0x9E37_79B9_7F4A_7C15);
        let mut calls = 0;
        for (name, f) in &funcs {
            for _ in 0..200 {
                let params = draw_params(&mut draw, &resolve, name, f);
                let ours = g
                    .call(name, &params)
                    .unwrap_or_else(|e| panic!("{artifact}: {name}({params:?}): {e}"));
                let theirs = oracle.call(name, &params);
                let agree = match (&ours, &theirs) {
                    (Some(a), Some(b)) => same(a, b),
                    (None, None) => true,
                    _ => false,
                };
                assert!(
                    agree,
                    "{artifact}: {name}({params:?}): {ours:?} != wasmtime's {theirs:?}"
                );
                calls += 1;
            }
        }
        eprintln!("{artifact}: {calls} calls agree with wasmtime");
    }
}

/// `Val` prints as WAVE and parses back from it, given the type `param_types` and
/// `result_type` report, for drawn values of every parameter and result type of the world:
/// the value read back prints as the same text.
#[test]
fn vals_print_as_wave_and_parse_back() {
    let (resolve, world) = test_world();
    let mut g = guest(abi::CANONICAL_ARTIFACT);
    let mut draw = Gen(0x2545_F491_4F6C_DD1D);
    let mut checked = 0;
    for (key, item) in &resolve.worlds[world].exports {
        let WorldItem::Function(f) = item else {
            continue;
        };
        let name = resolve.name_world_key(key);
        let types = g.param_types(&name).unwrap();
        assert_eq!(types.len(), f.params.len());
        for _ in 0..50 {
            let params = draw_params(&mut draw, &resolve, &name, f);
            for (ty, val) in types.iter().zip(&params) {
                let text = val.to_string();
                let back = Val::from_wave(ty, &text).unwrap_or_else(|e| panic!("{text}: {e}"));
                // The text, not the value: a NaN's payload has no WAVE.
                assert_eq!(back.to_string(), text, "{name}: read back as {back:?}");
                checked += 1;
            }
            if let Some(result) = g.call(&name, &params).unwrap() {
                let ty = g.result_type(&name).unwrap().expect("a result type");
                let text = result.to_string();
                let back = Val::from_wave(&ty, &text).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(back.to_string(), text, "{name}: read back as {back:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
    // What is not a value of the type says so, naming the type.
    let string = &g.param_types("transform").unwrap()[0];
    assert_eq!(string.to_string(), "string");
    let err = Val::from_wave(string, "42").unwrap_err().to_string();
    assert_eq!(
        err,
        "not a value of type string: expected `string`, found `42`"
    );
    assert!(g.param_types("no-such").is_err());
    assert_eq!(g.result_type("nothing").unwrap(), None);
    assert_eq!(
        Val::List(vec![Val::U8(1), Val::U8(2)]).to_string(),
        "[1, 2]"
    );
}

/// `--lines` through a canonical `func(string) -> string` and `func(list<u8>) -> list<u8>`,
/// streamed, on 1 and 3 threads, through the library and the binary: each line's result,
/// in order.
#[test]
fn lines_stream_through_canonical_functions() {
    let input: Vec<u8> = (0..5000)
        .flat_map(|i| format!("line {i} héllo\n").into_bytes())
        .collect();
    let expected: Vec<u8> = (0..5000)
        .flat_map(|i| format!("line {i} héllo Wasm is cool!\n").into_bytes())
        .collect();
    for artifact in GUESTS {
        let module =
            GuestModule::from_bytes(&canonical_wasm(artifact), &Limits::default()).unwrap();
        let transformer = module.transformer(None).unwrap();
        assert_eq!(
            transformer,
            memhost::Transformer::Canonical("transform".into())
        );
        for jobs in [1, 3] {
            let mut out = Vec::new();
            let stats = module
                .transform_lines_stream(
                    std::io::Cursor::new(input.clone()),
                    &mut out,
                    std::num::NonZeroUsize::new(jobs).unwrap(),
                    &transformer,
                    &mut |_| {},
                )
                .unwrap();
            assert_eq!(stats.lines, 5000);
            assert!(
                out == expected,
                "{artifact}, {jobs} threads: the output differs"
            );
        }
        // `reverse`, a func(list<u8>) -> list<u8>, through the binary.
        let path = common::temp_file("canonical-lines.wasm", &canonical_wasm(artifact));
        let out = common::run_with_stdin(
            &[
                "transform".as_ref(),
                "--lines".as_ref(),
                "--export".as_ref(),
                "reverse".as_ref(),
                "--no-cache".as_ref(),
                path.as_os_str(),
            ],
            b"abc\nxyz",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"cba\nzyx");
    }
}
