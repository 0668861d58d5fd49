//! Generated WIT worlds, each with a core module that implements it, for comparing the
//! library's canonical ABI with wasmtime's on types nobody wrote by hand
//! (`generated.rs`).
//!
//! A world is one exported interface `api`: named types drawn at random (records, variants,
//! enums, flags, aliases of anything, aliases of aliases), nested through lists, options,
//! results and tuples, some variants and enums of more than 256 cases, flags of 1 to 32
//! labels. For each type `T` it tests, three functions:
//!
//! - `memK: func(a: T, pad: pad) -> tuple<u32, list<u8>>`. `pad` is sixteen `u64`s, so the
//!   parameters never fit in 16 flat values: the caller stores them in guest memory (the
//!   spec's order of `cabi_realloc` calls) and passes a pointer. The guest returns that
//!   pointer and the image of everything it allocated, byte for byte.
//! - `flatK: func(a: T) -> list<u8>`: the guest writes each core parameter it was given as
//!   8 bytes (flat lowering: joined variant slots, zero padding, sign extension), then
//!   returns the image likewise.
//! - `getK: func(p: u32, image: list<u8>) -> T`: the guest copies `image` to address 0 and
//!   returns `T` at `p`: the return area itself, or its one flat value loaded from there.
//!
//! Two implementations that lower alike give the same images; lifting an image gives back
//! the value that was lowered into it. The guest is written here from wit-parser's view of
//! the ABI (`wasm_signature`, `SizeAlign`), a third implementation.
//!
//! The allocator only bumps, from address 16, and every post-return zeroes what it handed
//! out and starts again: each call sees the same memory, whatever came before it.

#![allow(
    clippy::cast_possible_truncation,
    reason = "counts drawn small, and addresses of a small test memory"
)]

use std::fmt::Write as _;

use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{Resolve, SizeAlign, Type, TypeDefKind, WorldItem};

use crate::oracle::Gen;

/// One generated world: its WIT, its resolved form, and the core module implementing it
/// (the world embedded as wit-bindgen embeds it).
pub struct World {
    pub seed: u64,
    pub wit: String,
    pub resolve: Resolve,
    pub module: Vec<u8>,
    /// For each type tested, its three functions' full names and its type.
    pub tested: Vec<Tested>,
}

pub struct Tested {
    pub mem: String,
    pub flat: String,
    pub get: String,
    pub ty: Type,
}

impl World {
    /// The world of `seed`, always the same for the same seed.
    pub fn generate(seed: u64) -> World {
        let wit = wit_text(seed);
        let mut resolve = Resolve::default();
        let pkg = resolve
            .push_str("generated.wit", &wit)
            .unwrap_or_else(|e| panic!("seed {seed}: the generated WIT parses: {e:?}\n{wit}"));
        let world = resolve.select_world(&[pkg], Some("w")).unwrap();
        let (iface_name, funcs) = {
            let (key, item) = resolve.worlds[world].exports.iter().next().unwrap();
            let WorldItem::Interface { id, .. } = item else {
                unreachable!()
            };
            (
                resolve.name_world_key(key),
                &resolve.interfaces[*id].functions,
            )
        };
        let mut tested = Vec::new();
        for k in 0.. {
            let Some(get) = funcs.get(&format!("get{k}")) else {
                break;
            };
            tested.push(Tested {
                mem: format!("{iface_name}#mem{k}"),
                flat: format!("{iface_name}#flat{k}"),
                get: format!("{iface_name}#get{k}"),
                ty: get.result.unwrap(),
            });
        }
        let wat = guest_wat(&resolve, &iface_name, funcs.values());
        let mut module = wat::parse_str(&wat)
            .unwrap_or_else(|e| panic!("seed {seed}: the generated guest assembles: {e}\n{wat}"));
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .unwrap();
        World {
            seed,
            wit,
            resolve,
            module,
            tested,
        }
    }
}

/// What the generated worlds hold, to show that they cover what they claim to.
#[derive(Default, Debug)]
pub struct Coverage {
    /// The deepest nesting of a tested type, counting each list, option, result, tuple,
    /// record, variant and alias a level.
    pub depth: usize,
    pub max_variant_cases: usize,
    pub max_enum_cases: usize,
    pub max_flags: usize,
    /// Aliases whose target is not a defined type (`type a = u64`, `type a = string`).
    pub aliases_of_builtins: usize,
    pub aliases_of_aliases: usize,
    pub options_and_results_as_params: usize,
    /// Tested types of more than one flat value: returned through a return area.
    pub return_areas: usize,
    /// `flatK` functions whose flat parameters number more than 16.
    pub spilled_params: usize,
    pub variant_joins_to_i64: usize,
}

impl Coverage {
    pub fn add(&mut self, w: &World) {
        let r = &w.resolve;
        for (_, def) in &r.types {
            match &def.kind {
                TypeDefKind::Variant(v) => {
                    self.max_variant_cases = self.max_variant_cases.max(v.cases.len());
                }
                TypeDefKind::Enum(e) => {
                    self.max_enum_cases = self.max_enum_cases.max(e.cases.len())
                }
                TypeDefKind::Flags(f) => self.max_flags = self.max_flags.max(f.flags.len()),
                TypeDefKind::Type(Type::Id(id)) => {
                    if matches!(r.types[*id].kind, TypeDefKind::Type(_)) {
                        self.aliases_of_aliases += 1;
                    }
                }
                TypeDefKind::Type(_) => self.aliases_of_builtins += 1,
                _ => {}
            }
        }
        for t in &w.tested {
            self.depth = self.depth.max(depth(r, &t.ty));
            if let Type::Id(id) = t.ty {
                let kind = &r.types[resolve_alias(r, id)].kind;
                if matches!(kind, TypeDefKind::Option(_) | TypeDefKind::Result(_)) {
                    self.options_and_results_as_params += 1;
                }
            }
            match flat(r, &t.ty) {
                None => {
                    self.return_areas += 1;
                    self.spilled_params += 1;
                }
                Some(f) if f.len() > 1 => self.return_areas += 1,
                Some(_) => {}
            }
            if joins_to_i64(r, &t.ty) {
                self.variant_joins_to_i64 += 1;
            }
        }
    }
}

/// wit-parser's flat types of `ty`; `None` past 16.
fn flat(r: &Resolve, ty: &Type) -> Option<Vec<WasmType>> {
    let mut buf = [WasmType::I32; 16];
    let mut flat = wit_parser::abi::FlatTypes::new(&mut buf);
    r.push_flat(ty, &mut flat).then(|| flat.to_vec())
}

fn resolve_alias(r: &Resolve, mut id: wit_parser::TypeId) -> wit_parser::TypeId {
    while let TypeDefKind::Type(Type::Id(next)) = r.types[id].kind {
        id = next;
    }
    id
}

fn parts(r: &Resolve, ty: &Type) -> Vec<Type> {
    let Type::Id(id) = ty else { return Vec::new() };
    match &r.types[*id].kind {
        TypeDefKind::Type(t) | TypeDefKind::List(t) | TypeDefKind::Option(t) => vec![*t],
        TypeDefKind::Record(rec) => rec.fields.iter().map(|f| f.ty).collect(),
        TypeDefKind::Tuple(t) => t.types.clone(),
        TypeDefKind::Variant(v) => v.cases.iter().filter_map(|c| c.ty).collect(),
        TypeDefKind::Result(res) => res.ok.iter().chain(&res.err).copied().collect(),
        _ => Vec::new(),
    }
}

fn depth(r: &Resolve, ty: &Type) -> usize {
    match ty {
        Type::Id(_) => 1 + parts(r, ty).iter().map(|t| depth(r, t)).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether a variant inside `ty` joins a 32-bit case slot with a 64-bit one.
fn joins_to_i64(r: &Resolve, ty: &Type) -> bool {
    let Type::Id(id) = ty else { return false };
    let here = match &r.types[*id].kind {
        TypeDefKind::Variant(v) => {
            let flats: Vec<Vec<WasmType>> = v
                .cases
                .iter()
                .filter_map(|c| c.ty)
                .map(|t| flat(r, &t).unwrap_or_default())
                .collect();
            let wide = |w: &WasmType| matches!(w, WasmType::I64 | WasmType::F64);
            flats.iter().any(|f| f.iter().any(wide)) && flats.iter().any(|f| !f.iter().any(wide))
        }
        _ => false,
    };
    here || parts(r, ty).iter().any(|t| joins_to_i64(r, t))
}

/// The WIT of the world of `seed`.
fn wit_text(seed: u64) -> String {
    // xorshift never leaves zero: start from a mix of the seed that is not.
    let mut g = Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for _ in 0..4 {
        g.next();
    }
    let mut w = WitGen {
        g,
        defs: 0,
        aliases: Vec::new(),
    };
    let mut out = format!("package gen:w{seed};\n\ninterface api {{\n");
    out.push_str("  type pad = tuple<");
    out.push_str(&["u64"; 16].join(", "));
    out.push_str(">;\n");
    let count = 6 + w.g.below(8);
    for i in 0..count {
        let def = w.def(i);
        out.push_str(&def);
        w.defs += 1;
    }
    let mut tested: Vec<String> = (0..count).map(|i| format!("t{i}")).collect();
    for _ in 0..4 {
        tested.push(w.ty(4));
    }
    for (k, ty) in tested.iter().enumerate() {
        writeln!(
            out,
            "  mem{k}: func(a: {ty}, pad: pad) -> tuple<u32, list<u8>>;\n  \
             flat{k}: func(a: {ty}) -> list<u8>;\n  \
             get{k}: func(p: u32, image: list<u8>) -> {ty};"
        )
        .unwrap();
    }
    out.push_str("}\n\nworld w {\n  export api;\n}\n");
    out
}

struct WitGen {
    g: Gen,
    /// How many named types `t0`.. are defined so far.
    defs: u64,
    /// Which of them are aliases.
    aliases: Vec<u64>,
}

const SCALARS: [&str; 12] = [
    "bool", "s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64", "f32", "f64", "char",
];

impl WitGen {
    fn leaf(&mut self) -> String {
        match self.g.below(4) {
            0 if self.defs > 0 => format!("t{}", self.g.below(self.defs)),
            1 => "string".into(),
            _ => SCALARS[self.g.below(12) as usize].into(),
        }
    }

    /// A type expression nested at most `depth` deep (named types nest further).
    fn ty(&mut self, depth: u32) -> String {
        if depth == 0 || self.g.below(4) == 0 {
            return self.leaf();
        }
        let d = depth - 1;
        match self.g.below(5) {
            0 => format!("list<{}>", self.ty(d)),
            1 => format!("option<{}>", self.ty(d)),
            2 => match self.g.below(4) {
                0 => "result".into(),
                1 => format!("result<{}>", self.ty(d)),
                2 => format!("result<_, {}>", self.ty(d)),
                _ => format!("result<{}, {}>", self.ty(d), self.ty(d)),
            },
            3 => {
                let n = 1 + self.g.below(4);
                let parts: Vec<String> = (0..n).map(|_| self.ty(d)).collect();
                format!("tuple<{}>", parts.join(", "))
            }
            _ => self.leaf(),
        }
    }

    /// A payload for one case of a variant: often a scalar of another width, so that cases
    /// join into wider slots.
    fn payload(&mut self) -> String {
        match self.g.below(3) {
            0 => self.ty(2),
            _ => SCALARS[self.g.below(12) as usize].into(),
        }
    }

    fn def(&mut self, i: u64) -> String {
        let big = self.g.below(6) == 0;
        match self.g.below(5) {
            0 => {
                let fields: Vec<String> = (0..1 + self.g.below(6))
                    .map(|j| format!("f{j}: {}", self.ty(3)))
                    .collect();
                format!("  record t{i} {{ {} }}\n", fields.join(", "))
            }
            1 => {
                let n = if big {
                    257 + self.g.below(60)
                } else {
                    1 + self.g.below(6)
                };
                let cases: Vec<String> = (0..n)
                    .map(|j| {
                        // A big variant's payloads are mostly narrow, so that where
                        // they start depends on the discriminant's width.
                        if big && self.g.below(8) == 0 {
                            let narrow = ["u8", "s8", "bool", "u16", "s16"];
                            format!("c{j}({})", narrow[self.g.below(5) as usize])
                        } else if !big && self.g.below(3) != 0 {
                            format!("c{j}({})", self.payload())
                        } else {
                            format!("c{j}")
                        }
                    })
                    .collect();
                format!("  variant t{i} {{ {} }}\n", cases.join(", "))
            }
            2 => {
                let n = if big {
                    257 + self.g.below(60)
                } else {
                    1 + self.g.below(8)
                };
                let cases: Vec<String> = (0..n).map(|j| format!("c{j}")).collect();
                format!("  enum t{i} {{ {} }}\n", cases.join(", "))
            }
            3 => {
                let n = 1 + self.g.below(32);
                let flags: Vec<String> = (0..n).map(|j| format!("g{j}")).collect();
                format!("  flags t{i} {{ {} }}\n", flags.join(", "))
            }
            _ => {
                let target = match self.g.below(4) {
                    0 if !self.aliases.is_empty() => {
                        let a = self.g.below(self.aliases.len() as u64) as usize;
                        format!("t{}", self.aliases[a])
                    }
                    0 | 1 => SCALARS[self.g.below(12) as usize].into(),
                    2 => self.leaf(),
                    _ => self.ty(3),
                };
                self.aliases.push(i);
                format!("  type t{i} = {target};\n")
            }
        }
    }
}

fn core(w: WasmType) -> &'static str {
    match w {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => "i32",
        WasmType::I64 | WasmType::PointerOrI64 => "i64",
        WasmType::F32 => "f32",
        WasmType::F64 => "f64",
    }
}

/// The guest module, in WAT, for the functions of `api`.
fn guest_wat<'a>(
    resolve: &Resolve,
    iface: &str,
    funcs: impl Iterator<Item = &'a wit_parser::Function>,
) -> String {
    let mut sizes = SizeAlign::default();
    sizes.fill(resolve);
    let mut m = String::from(
        r#"(module
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 16))
  (func $alloc (param $align i32) (param $size i32) (result i32) (local $p i32) (local $end i32)
    (local.set $p (i32.and
      (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (block $done (loop $grow
      (br_if $done (i32.le_u (local.get $end) (i32.mul (memory.size) (i32.const 65536))))
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
      (br $grow)))
    (global.set $bump (local.get $end))
    (local.get $p))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32)
        (param $size i32) (result i32) (local $p i32)
    (local.set $p (call $alloc (local.get $align) (local.get $size)))
    (if (local.get $old) (then
      (memory.copy (local.get $p) (local.get $old)
        (select (local.get $old_size) (local.get $size)
          (i32.lt_u (local.get $old_size) (local.get $size))))))
    (local.get $p))
  (func $reset
    (memory.fill (i32.const 0) (i32.const 0) (global.get $bump))
    (global.set $bump (i32.const 16)))
  ;; Returns a return area holding (p, image of memory [0, bump)) if p >= 0, else (image).
  (func $image (param $p i32) (result i32) (local $r i32)
    (local.set $r (call $alloc (i32.const 4) (i32.const 12)))
    (if (i32.ge_s (local.get $p) (i32.const 0))
      (then
        (i32.store (local.get $r) (local.get $p))
        (i32.store offset=4 (local.get $r) (i32.const 0))
        (i32.store offset=8 (local.get $r) (global.get $bump)))
      (else
        (i32.store (local.get $r) (i32.const 0))
        (i32.store offset=4 (local.get $r) (global.get $bump))))
    (local.get $r))
"#,
    );
    for f in funcs {
        let sig = resolve.wasm_signature(AbiVariant::GuestExport, f);
        let name = format!("{iface}#{}", f.name);
        let params: Vec<&str> = sig.params.iter().map(|w| core(*w)).collect();
        let results: Vec<&str> = sig.results.iter().map(|w| core(*w)).collect();
        let body = if f.name.starts_with("mem") {
            assert!(sig.indirect_params, "{name}: the pad spills the parameters");
            "(call $image (local.get 0))".to_string()
        } else if f.name.starts_with("flat") {
            let mut b = format!(
                "(local.set $a (call $alloc (i32.const 8) (i32.const {})))\n",
                8 * params.len()
            );
            for (j, p) in params.iter().enumerate() {
                let raw = match *p {
                    "i32" => format!("(i64.extend_i32_u (local.get {j}))"),
                    "i64" => format!("(local.get {j})"),
                    "f32" => format!("(i64.extend_i32_u (i32.reinterpret_f32 (local.get {j})))"),
                    _ => format!("(i64.reinterpret_f64 (local.get {j}))"),
                };
                writeln!(b, "    (i64.store offset={} (local.get $a) {raw})", 8 * j).unwrap();
            }
            b + "    (call $image (i32.const -1))"
        } else {
            let copy = "(memory.copy (i32.const 0) (local.get 1) (local.get 2))\n    ";
            let ty = f.result.as_ref().unwrap();
            let load = if sig.retptr {
                "(local.get 0)".to_string()
            } else {
                let op = match (results[0], sizes.size(ty).size_wasm32()) {
                    ("i32", 1) => "i32.load8_u",
                    ("i32", 2) => "i32.load16_u",
                    ("i32", 4) => "i32.load",
                    ("i64", 8) => "i64.load",
                    ("f32", 4) => "f32.load",
                    ("f64", 8) => "f64.load",
                    other => panic!("{name}: one flat value of {other:?}"),
                };
                format!("({op} (local.get 0))")
            };
            format!("{copy}{load}")
        };
        let params_decl: String = params.iter().map(|p| format!(" {p}")).collect();
        let results_decl: String = results.iter().map(|p| format!(" {p}")).collect();
        write!(
            m,
            "  (func (export \"{name}\") (param{params_decl}) (result{results_decl}) \
             (local $a i32)\n    {body})\n  \
             (func (export \"cabi_post_{name}\") (param{results_decl}) (call $reset))\n"
        )
        .unwrap();
    }
    m.push_str(")\n");
    m
}
