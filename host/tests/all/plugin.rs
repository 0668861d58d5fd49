//! The plugin guest (`guests/plugin`, world `wit/plugin`), built by wit-bindgen as the
//! ecosystem builds guests, whose world imports functions: the host gives them
//! (`HostFunctions::func`, and `typed`), and wasmtime's Component Model gives the same
//! functions through its `Linker`. For each call both engines must hand the host functions
//! the same arguments and return the same results: lifting the guest's arguments (a
//! record holding an enum and a list of tuples; 17 parameters passed in memory), lowering
//! the host's results into guest memory through the guest's `cabi_realloc` while it is on
//! the stack (an option, lists of numbers and of strings, a string, a result, a tuple in a
//! return area).

use std::sync::{Arc, Mutex};

use memhost::{ComponentType, Error, GuestModule, HostFunctions, Lift, Limits, Val};

use crate::common;
use crate::oracle::{self, Gen, HostFn, Oracle};

fn plugin_wasm() -> Vec<u8> {
    common::canonical_wasm(abi::PLUGIN_ARTIFACT)
}

/// What the host functions were given, in order, as text: compared between engines.
type Seen = Arc<Mutex<Vec<String>>>;

/// The host functions, recording what they are given into `seen`.
fn functions(seen: &Seen) -> Vec<(String, HostFn)> {
    let record = |name: &'static str, seen: &Seen| {
        let seen = Arc::clone(seen);
        move |args: &[Val]| seen.lock().unwrap().push(format!("{name}{args:?}"))
    };
    let get = record("get", seen);
    let log = record("log", seen);
    let callback = record("callback", seen);
    let scale = record("scale", seen);
    let shout = record("shout", seen);
    let wide = record("wide", seen);
    let fallible = record("fallible", seen);
    vec![
        (
            "memhost:plugin/config#get".into(),
            Arc::new(move |args: &[Val]| {
                get(args);
                Ok(Some(Val::Option(match args {
                    [Val::String(key)] if key == "greeting" => {
                        Some(Box::new(Val::String("Bonjour".into())))
                    }
                    _ => None,
                })))
            }) as HostFn,
        ),
        (
            "log".into(),
            Arc::new(move |args: &[Val]| {
                log(args);
                Ok(None)
            }),
        ),
        (
            "callback".into(),
            Arc::new(move |args: &[Val]| {
                callback(args);
                let [Val::List(items)] = args else {
                    return Err("not a list".into());
                };
                Ok(Some(Val::List(
                    items
                        .iter()
                        .map(|v| match v {
                            Val::String(s) => Val::String(s.chars().rev().collect()),
                            other => other.clone(),
                        })
                        .collect(),
                )))
            }),
        ),
        (
            "shout".into(),
            Arc::new(move |args: &[Val]| {
                shout(args);
                match args {
                    [Val::String(s)] => Ok(Some(Val::String(s.to_uppercase()))),
                    _ => Err("not a string".into()),
                }
            }),
        ),
        (
            "scale".into(),
            Arc::new(move |args: &[Val]| {
                scale(args);
                let [Val::List(values)] = args else {
                    return Err("not a list".into());
                };
                Ok(Some(Val::List(
                    values
                        .iter()
                        .map(|v| match v {
                            Val::S64(v) => Val::S64(v.wrapping_add(1)),
                            other => other.clone(),
                        })
                        .collect(),
                )))
            }),
        ),
        (
            "wide".into(),
            Arc::new(move |args: &[Val]| {
                wide(args);
                let sum: u64 = args
                    .iter()
                    .map(|v| match v {
                        Val::U32(v) => u64::from(*v),
                        _ => 0,
                    })
                    .sum();
                let text = match args.last() {
                    Some(Val::String(s)) => format!("{s}:{}", args.len()),
                    _ => String::new(),
                };
                Ok(Some(Val::Tuple(vec![Val::String(text), Val::U64(sum)])))
            }),
        ),
        (
            "fallible".into(),
            Arc::new(move |args: &[Val]| {
                fallible(args);
                Ok(Some(Val::Result(match args {
                    [Val::Bool(true)] => Ok(Some(Box::new(Val::String("yes".into())))),
                    _ => Err(Some(Box::new(Val::String("no".into())))),
                })))
            }),
        ),
    ]
}

fn host_functions(functions: Vec<(String, HostFn)>) -> HostFunctions {
    functions
        .into_iter()
        .fold(HostFunctions::default(), |host, (name, f)| {
            host.func(name, move |args| f(args))
        })
}

fn instantiate(host: &HostFunctions) -> memhost::Guest {
    GuestModule::from_bytes_with_imports(&plugin_wasm(), &Limits::default(), None, None, host)
        .unwrap()
        .0
        .instantiate()
        .unwrap()
}

/// The calls both engines make: fixed ones, and lists and strings drawn from a fixed seed.
fn calls() -> Vec<(&'static str, Vec<Val>)> {
    let s = |s: &str| Val::String(s.into());
    let list = |v: &[i64]| Val::List(v.iter().map(|v| Val::S64(*v)).collect());
    let mut calls = vec![
        ("greet", vec![s("Ada")]),
        ("greet", vec![s("")]),
        ("map", vec![list(&[])]),
        ("map", vec![list(&[1, -2, i64::MAX, i64::MIN])]),
        ("wide-call", vec![s("x")]),
        ("wide-call", vec![s(&"é".repeat(5000))]),
        ("attempt", vec![Val::Bool(true)]),
        ("attempt", vec![Val::Bool(false)]),
        ("each", vec![Val::List(vec![])]),
        ("each", vec![Val::List(vec![s(""), s("ab"), s("é✓")])]),
        ("relay", vec![s("")]),
        ("relay", vec![s(&"x".repeat(1 << 10))]),
    ];
    let mut g = Gen(7);
    for _ in 0..40 {
        let n = g.below(300);
        let values: Vec<i64> = (0..n).map(|_| g.next().cast_signed()).collect();
        calls.push(("map", vec![list(&values)]));
        calls.push(("greet", vec![Val::String(g.string())]));
        calls.push(("wide-call", vec![Val::String(g.string())]));
        calls.push(("relay", vec![Val::String(g.string())]));
        let items = (0..g.below(20)).map(|_| Val::String(g.string())).collect();
        calls.push(("each", vec![Val::List(items)]));
    }
    calls
}

#[test]
fn the_plugin_calls_the_host_as_it_calls_wasmtime() {
    let (ours_seen, theirs_seen) = (Seen::default(), Seen::default());
    let mut guest = instantiate(&host_functions(functions(&ours_seen)));
    let mut wasmtime = Oracle::with_imports(&plugin_wasm(), functions(&theirs_seen));
    for (name, params) in calls() {
        let ours = guest.call(name, &params).unwrap();
        let theirs = wasmtime.call(name, &params);
        assert!(
            match (&ours, &theirs) {
                (Some(a), Some(b)) => oracle::same(a, b),
                (None, None) => true,
                _ => false,
            },
            "{name}({params:?}): memhost {ours:?}, wasmtime {theirs:?}"
        );
    }
    let (ours, theirs) = (ours_seen.lock().unwrap(), theirs_seen.lock().unwrap());
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(theirs.iter()) {
        assert_eq!(a, b, "the host functions were given different arguments");
    }
    // Each function was called, and the log got the record the guest built.
    for name in [
        "get", "log", "callback", "scale", "shout", "wide", "fallible",
    ] {
        assert!(
            ours.iter().any(|c| c.starts_with(name)),
            "{name} never called"
        );
    }
    assert!(
        ours.iter().any(|c| c.starts_with("log")
            && c.contains("Enum(\"info\")")
            && c.contains("\"Bonjour, Ada!\"")),
        "{ours:?}"
    );
}

#[test]
fn a_failing_host_function_traps_the_call_in_both_engines() {
    let failing = |seen: &Seen| {
        let mut f = functions(seen);
        f.retain(|(n, _)| n != "fallible");
        f.push((
            "fallible".into(),
            Arc::new(|_: &[Val]| Err("refused".to_string())) as HostFn,
        ));
        f
    };
    let seen = Seen::default();
    let mut guest = instantiate(&host_functions(failing(&seen)));
    match guest.call("attempt", &[Val::Bool(true)]) {
        Err(Error::HostFunction {
            export,
            import,
            why,
        }) => {
            assert_eq!(
                (&*export, &*import, &*why),
                ("attempt", "fallible", "refused")
            );
        }
        other => panic!("expected the host function's failure, got {other:?}"),
    }
    let mut wasmtime = Oracle::with_imports(&plugin_wasm(), failing(&seen));
    let err = wasmtime
        .try_call("attempt", &[Val::Bool(true)])
        .unwrap_err();
    assert!(err.contains("refused"), "{err}");
}

#[derive(Debug, PartialEq, ComponentType, Lift)]
enum Level {
    Debug,
    Info,
    Warn,
}

#[derive(Debug, PartialEq, ComponentType, Lift)]
struct Entry {
    level: Level,
    message: String,
    fields: Vec<(String, String)>,
}

/// The same functions with Rust types: the same answers as through `Val`.
#[test]
fn typed_host_functions_give_the_plugin_the_same_answers() {
    let entries = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&entries);
    let host = HostFunctions::default()
        .typed("memhost:plugin/config#get", |(key,): (String,)| {
            Ok(((key == "greeting").then(|| "Bonjour".to_string()),))
        })
        .typed("log", move |(entry,): (Entry,)| {
            sink.lock().unwrap().push(entry);
            Ok(())
        })
        .typed("scale", |(values,): (Vec<i64>,)| {
            Ok((values
                .iter()
                .map(|v| v.wrapping_add(1))
                .collect::<Vec<i64>>(),))
        })
        .typed("callback", |(items,): (Vec<String>,)| {
            Ok((items
                .iter()
                .map(|s| s.chars().rev().collect())
                .collect::<Vec<String>>(),))
        })
        .typed("shout", |(s,): (String,)| Ok((s.to_uppercase(),)))
        .typed(
            "wide",
            |args: (u32, u32, u32, u32, u32, u32)| -> Result<((String, u64),), String> {
                let _ = args;
                Err("unreachable: the world's `wide` takes 17".into())
            },
        );
    // `wide` of six parameters is not the world's: refused, saying why.
    let Err(Error::Abi { problems, .. }) =
        GuestModule::from_bytes_with_imports(&plugin_wasm(), &Limits::default(), None, None, &host)
    else {
        panic!("admitted `wide` of 6 parameters");
    };
    let text = problems.join("\n");
    assert!(text.contains("6 parameters for a function of 17"), "{text}");
    // `fallible` was not given at all: named too.
    assert!(
        text.contains("`fallible: func(ok: bool) -> result<string, string>`"),
        "{text}"
    );

    let dynamic = host_functions(functions(&Seen::default()));
    let host = host
        .func("wide", {
            let f = functions(&Seen::default())
                .into_iter()
                .find(|(n, _)| n == "wide")
                .unwrap()
                .1;
            move |args| f(args)
        })
        .typed("fallible", |(ok,): (bool,)| {
            Ok((if ok {
                Ok("yes".to_string())
            } else {
                Err("no".to_string())
            },))
        });
    let mut typed = instantiate(&host);
    let mut with_vals = instantiate(&dynamic);
    for (name, params) in calls() {
        let a = typed.call(name, &params).unwrap();
        let b = with_vals.call(name, &params).unwrap();
        assert_eq!(a, b, "{name}({params:?})");
    }
    let entries = entries.lock().unwrap();
    assert_eq!(
        entries[0],
        Entry {
            level: Level::Info,
            message: "Bonjour, Ada!".into(),
            fields: vec![("name".into(), "Ada".into())],
        }
    );
}
