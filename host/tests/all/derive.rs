//! `#[derive(ComponentType, Lower, Lift)]` on the records, variants, enums and flags of
//! `wit/guest.wit`, called through the typed API on both canonical guests: each result the
//! same as through `Val`, for known and drawn values; a Rust type that is not the WIT type
//! refused when the function is bound, saying why; a derived record of 8 scalars lowered
//! and lifted with nothing allocated on the host.

use crate::common;

use crate::counting::allocations;

use memhost::{ComponentType, Error, GuestModule, Lift, Limits, Lower, Val};

use common::canonical_wasm;

const GUESTS: [&str; 3] = [
    abi::CANONICAL_ARTIFACT,
    abi::CANONICAL_C_ARTIFACT,
    abi::CANONICAL_WASIP1_ARTIFACT,
];

#[derive(Debug, Clone, PartialEq, ComponentType, Lower, Lift)]
struct Point {
    x: i32,
    y: i32,
    label: String,
}

#[derive(Debug, Clone, PartialEq, ComponentType, Lower, Lift)]
enum Shape {
    Circle(f32),
    Rect((u32, u32)),
    Dot,
    Named(String),
}

#[derive(Debug, Clone, Copy, PartialEq, ComponentType, Lower, Lift)]
enum Color {
    Red,
    Green,
    Blue,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, ComponentType, Lower, Lift)]
#[component(flags)]
struct Perms {
    read: bool,
    write: bool,
    exec: bool,
}

fn guest(artifact: &str) -> memhost::Guest {
    GuestModule::from_bytes(&canonical_wasm(artifact), &Limits::default())
        .unwrap()
        .instantiate()
        .unwrap()
}

fn point_val(p: &Point) -> Val {
    Val::Record(vec![
        ("x".into(), Val::S32(p.x)),
        ("y".into(), Val::S32(p.y)),
        ("label".into(), Val::String(p.label.clone())),
    ])
}

fn shape_val(s: &Shape) -> Val {
    let (case, payload) = match s {
        Shape::Circle(r) => ("circle", Some(Val::F32(*r))),
        Shape::Rect((w, h)) => ("rect", Some(Val::Tuple(vec![Val::U32(*w), Val::U32(*h)]))),
        Shape::Dot => ("dot", None),
        Shape::Named(n) => ("named", Some(Val::String(n.clone()))),
    };
    Val::Variant(case.into(), payload.map(Box::new))
}

fn color_val(c: Color) -> Val {
    Val::Enum(format!("{c:?}").to_lowercase())
}

fn perms_val(p: Perms) -> Val {
    let names = [("read", p.read), ("write", p.write), ("exec", p.exec)];
    Val::Flags(
        names
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| (*n).to_string())
            .collect(),
    )
}

/// xorshift: values drawn the same on every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    #[allow(clippy::cast_possible_truncation, reason = "low bits on purpose")]
    fn shape(&mut self) -> Shape {
        match self.next() % 4 {
            0 => Shape::Circle(f32::from_bits(self.next() as u32 & 0x7F7F_FFFF)),
            1 => Shape::Rect((self.next() as u32, self.next() as u32)),
            2 => Shape::Dot,
            _ => Shape::Named("é".repeat((self.next() % 20) as usize)),
        }
    }
}

#[test]
fn derived_types_agree_with_val_on_both_guests() {
    for artifact in GUESTS {
        let mut g = guest(artifact);
        let move_point = g
            .typed::<(Point, i32, i32), (Point,)>("move-point")
            .unwrap();
        let area = g.typed::<(Shape,), (f64,)>("area").unwrap();
        let shapes = g.typed::<(u32,), (Vec<Shape>,)>("shapes").unwrap();
        let next_color = g.typed::<(Color,), (Color,)>("next-color").unwrap();
        let flip = g.typed::<(Perms,), (Perms,)>("flip").unwrap();
        let mut draw = Draw(0x2545_F491_4F6C_DD1D);
        for i in 0..200u32 {
            #[allow(clippy::cast_possible_truncation, reason = "low bits on purpose")]
            let p = Point {
                x: draw.next() as i32,
                y: draw.next() as i32,
                label: "p".repeat(i as usize % 7),
            };
            let (dx, dy) = (i as i32 - 100, 7);
            let (typed,) = move_point.call(&mut g, (p.clone(), dx, dy)).unwrap();
            let dynamic = g
                .call("move-point", &[point_val(&p), Val::S32(dx), Val::S32(dy)])
                .unwrap();
            assert_eq!(Some(point_val(&typed)), dynamic, "{artifact}: {p:?}");

            let s = draw.shape();
            let (typed,) = area.call(&mut g, (s.clone(),)).unwrap();
            let dynamic = g.call("area", &[shape_val(&s)]).unwrap();
            assert_eq!(
                Some(Val::F64(typed)).map(|v| format!("{v:?}")),
                dynamic.map(|v| format!("{v:?}")),
                "{artifact}: {s:?}"
            );

            let (typed,) = shapes.call(&mut g, (i % 9,)).unwrap();
            let dynamic = g.call("shapes", &[Val::U32(i % 9)]).unwrap();
            assert_eq!(
                Some(Val::List(typed.iter().map(shape_val).collect())),
                dynamic,
                "{artifact}"
            );

            let c = [Color::Red, Color::Green, Color::Blue][i as usize % 3];
            let (typed,) = next_color.call(&mut g, (c,)).unwrap();
            assert_eq!(
                Some(color_val(typed)),
                g.call("next-color", &[color_val(c)]).unwrap()
            );

            let f = Perms {
                read: i & 1 != 0,
                write: i & 2 != 0,
                exec: i & 4 != 0,
            };
            let (typed,) = flip.call(&mut g, (f,)).unwrap();
            assert_eq!(
                typed,
                Perms {
                    read: !f.read,
                    write: !f.write,
                    exec: !f.exec
                }
            );
            assert_eq!(
                Some(perms_val(typed)),
                g.call("flip", &[perms_val(f)]).unwrap()
            );
        }
    }
}

/// Rust types that are not the WIT type: refused when the function is bound, naming both.
#[test]
fn a_derived_type_that_is_not_the_wit_type_is_refused_when_bound() {
    #[derive(Debug, ComponentType, Lower, Lift)]
    struct Swapped {
        y: i32,
        x: i32,
        label: String,
    }
    #[derive(Debug, ComponentType, Lower, Lift)]
    enum Fewer {
        Red,
        Green,
    }
    #[derive(Debug, ComponentType, Lower, Lift)]
    enum DotWithPayload {
        Circle(f32),
        Rect((u32, u32)),
        Dot(u8),
        Named(String),
    }
    #[derive(Debug, ComponentType, Lower, Lift)]
    #[component(flags)]
    struct Renamed {
        read: bool,
        #[component(name = "writ")]
        write: bool,
        exec: bool,
    }
    let g = guest(abi::CANONICAL_ARTIFACT);
    let why = |e: Error| {
        assert!(matches!(e, Error::Call { .. }), "{e:?}");
        e.to_string()
    };
    let e = why(g
        .typed::<(&Swapped, i32, i32), (Swapped,)>("move-point")
        .unwrap_err());
    assert!(e.contains("`Swapped` (a record of y, x, label)"), "{e}");
    let e = why(g.typed::<(Fewer,), (Fewer,)>("next-color").unwrap_err());
    assert!(e.contains("`Fewer` (cases red, green)"), "{e}");
    let e = why(g.typed::<(&DotWithPayload,), (f64,)>("area").unwrap_err());
    assert!(e.contains("dot(_)"), "{e}");
    let e = why(g.typed::<(Renamed,), (Renamed,)>("flip").unwrap_err());
    assert!(e.contains("`Renamed` (flags read, writ, exec)"), "{e}");
    // A Rust enum of unit cases is a WIT variant of no payloads as well as an enum; a
    // record is not flags.
    assert!(g.typed::<(Perms,), (Perms,)>("next-color").is_err());
    assert!(g.typed::<(Color,), (Color,)>("flip").is_err());
}

// ---- nothing allocated ----

#[derive(Debug, Clone, Copy, PartialEq, ComponentType, Lower, Lift)]
struct Eight {
    a: u8,
    b: i16,
    c: u32,
    d: i64,
    e: f32,
    f: f64,
    g: char,
    h: bool,
}

/// The world of the allocation tests: a record of 8 scalars, in and out flat (8 core
/// parameters, a return area), and three of them in (24 flat values: through memory).
const EIGHT_WIT: &[u8] = b"package t:eight;\n\
    world w {\n\
      record eight { a: u8, b: s16, c: u32, d: s64, e: f32, f: f64, g: char, h: bool }\n\
      export echo: func(r: eight) -> eight;\n\
      export second: func(a: eight, b: eight, c: eight) -> eight;\n\
    }\n";

/// `echo` stores its 8 flat parameters at the record's offsets and returns there; `second`
/// returns where the caller stored its second parameter.
const EIGHT_WAT: &str = r#"(module
    (memory (export "memory") 1)
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 64)
    (func (export "echo") (param i32 i32 i32 i64 f32 f64 i32 i32) (result i32)
        (i32.store8 (i32.const 16) (local.get 0))
        (i32.store16 offset=2 (i32.const 16) (local.get 1))
        (i32.store offset=4 (i32.const 16) (local.get 2))
        (i64.store offset=8 (i32.const 16) (local.get 3))
        (f32.store offset=16 (i32.const 16) (local.get 4))
        (f64.store offset=24 (i32.const 16) (local.get 5))
        (i32.store offset=32 (i32.const 16) (local.get 6))
        (i32.store8 offset=36 (i32.const 16) (local.get 7))
        i32.const 16)
    (func (export "second") (param i32) (result i32)
        (i32.add (local.get 0) (i32.const 40))))"#;

const R: Eight = Eight {
    a: 200,
    b: -300,
    c: 4_000_000_000,
    d: -5,
    e: 1.5,
    f: -2.25,
    g: 'é',
    h: true,
};

/// Records of 8 scalars lowered into memory and lifted from the return area, typed: after
/// the first call, which sizes the instance's buffers, nothing is allocated on the host.
#[test]
fn records_of_eight_scalars_through_memory_allocate_nothing() {
    let wit = memhost::Wit::from_path(common::temp_file("eight.wit", EIGHT_WIT), None).unwrap();
    let (module, _) = GuestModule::from_bytes_with(
        &common::wasm(EIGHT_WAT),
        &Limits::default(),
        Some(&wit),
        None,
    )
    .unwrap();
    let mut g = module.instantiate().unwrap();
    let second = g
        .typed::<(Eight, Eight, Eight), (Eight,)>("second")
        .unwrap();
    let other = Eight { a: 1, ..R };
    assert_eq!(second.call(&mut g, (other, R, other)).unwrap(), (R,));
    let n = allocations(|| {
        for _ in 0..100 {
            assert_eq!(second.call(&mut g, (other, R, other)).unwrap(), (R,));
        }
    });
    assert_eq!(n, 0, "100 typed calls allocated {n} times");
}

/// A record of 8 scalars lowered flat: the only allocations are those of wasmer's own
/// dynamic call (`Function::call`, which clones the signature and boxes the values) that
/// a core signature of 8 mixed parameters needs; lowering and lifting add none.
#[test]
fn a_record_of_eight_flat_scalars_allocates_only_what_wasmer_does() {
    use wasmer::{Instance, Module, Store, Value, imports};
    let wit =
        memhost::Wit::from_path(common::temp_file("eight-flat.wit", EIGHT_WIT), None).unwrap();
    let bytes = common::wasm(EIGHT_WAT);
    let (module, _) =
        GuestModule::from_bytes_with(&bytes, &Limits::default(), Some(&wit), None).unwrap();
    let mut g = module.instantiate().unwrap();
    let echo = g.typed::<(Eight,), (Eight,)>("echo").unwrap();
    assert_eq!(echo.call(&mut g, (R,)).unwrap(), (R,));
    let ours = allocations(|| {
        for _ in 0..100 {
            assert_eq!(echo.call(&mut g, (R,)).unwrap(), (R,));
        }
    });

    let mut store = Store::default();
    let raw = Module::new(&store, &bytes).unwrap();
    let instance = Instance::new(&mut store, &raw, &imports! {}).unwrap();
    let f = instance.exports.get_function("echo").unwrap().clone();
    let args = [
        Value::I32(200),
        Value::I32(-300),
        Value::I32(-294_967_296),
        Value::I64(-5),
        Value::F32(1.5),
        Value::F64(-2.25),
        Value::I32('é' as i32),
        Value::I32(1),
    ];
    f.call(&mut store, &args).unwrap();
    let wasmers = allocations(|| {
        for _ in 0..100 {
            f.call(&mut store, &args).unwrap();
        }
    });
    assert!(
        wasmers > 0,
        "wasmer's dynamic call allocates (else test the whole call)"
    );
    assert_eq!(
        ours, wasmers,
        "100 typed calls allocated {ours} times; wasmer's own dynamic calls {wasmers}"
    );
}
