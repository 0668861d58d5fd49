//! The second implementation of the canonical ABI that the tests compare with: wasmtime's
//! Component Model calling the same core module, componentized by wit-component's encoder;
//! a generator of values for WIT types; and equality of values with floats by their bits.
//! A module of the `all` test binary (`main.rs`).

#![allow(
    clippy::cast_possible_truncation,
    reason = "the value generator takes the low bits of random words on purpose"
)]
#![allow(dead_code, reason = "each test that includes it uses part of it")]

use memhost::Val;
use wasmtime::component::{Component, Func, Instance, Linker, Val as WVal};
use wasmtime::{Config, Engine, Store};
use wit_parser::{Resolve, Type, TypeDefKind};

pub struct Oracle {
    component: Component,
    store: Store<()>,
    instance: Instance,
    imports: Vec<(String, HostFn)>,
}

/// A host function, as both engines are given it: the world's name of the function
/// (`name`, or `ns:pkg/iface#name`), and what it does with its arguments.
pub type HostFn = std::sync::Arc<dyn Fn(&[Val]) -> Result<Option<Val>, String> + Send + Sync>;

impl Oracle {
    pub fn new(core: &[u8]) -> Oracle {
        Self::with_imports(core, Vec::new())
    }

    /// The module, its world's imports given by `imports` (through wasmtime's `Linker`).
    pub fn with_imports(core: &[u8], imports: Vec<(String, HostFn)>) -> Oracle {
        let component = wit_component::ComponentEncoder::default()
            .module(core)
            .expect("the module's world decodes")
            .validate(true)
            .encode()
            .expect("the module componentizes");
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).unwrap();
        let component = Component::new(&engine, component).unwrap();
        let (store, instance) = Self::instantiate(&component, &imports);
        Oracle {
            component,
            store,
            instance,
            imports,
        }
    }

    fn instantiate(component: &Component, imports: &[(String, HostFn)]) -> (Store<()>, Instance) {
        let mut store = Store::new(component.engine(), ());
        let mut linker = Linker::new(component.engine());
        for (name, f) in imports {
            let f = std::sync::Arc::clone(f);
            let func = move |_: wasmtime::StoreContextMut<'_, ()>,
                             _: wasmtime::component::types::ComponentFunc,
                             params: &[WVal],
                             results: &mut [WVal]| {
                let params: Vec<Val> = params.iter().map(from_wasmtime).collect();
                if let Some(v) = f(&params).map_err(wasmtime::Error::msg)? {
                    results[0] = to_wasmtime(&v);
                }
                Ok(())
            };
            match name.split_once('#') {
                None => linker.root().func_new(name, func).unwrap(),
                Some((iface, f)) => linker.instance(iface).unwrap().func_new(f, func).unwrap(),
            }
        }
        let instance = linker.instantiate(&mut store, component).unwrap();
        (store, instance)
    }

    /// A fresh instance: wasmtime refuses to enter one that trapped.
    pub fn restart(&mut self) {
        (self.store, self.instance) = Self::instantiate(&self.component, &self.imports);
    }

    fn func(&mut self, name: &str) -> Func {
        match name.split_once('#') {
            None => self.instance.get_func(&mut self.store, name).unwrap(),
            Some((iface, f)) => {
                let iface = self
                    .instance
                    .get_export_index(&mut self.store, None, iface)
                    .unwrap();
                let f = self
                    .instance
                    .get_export_index(&mut self.store, Some(&iface), f)
                    .unwrap();
                self.instance.get_func(&mut self.store, f).unwrap()
            }
        }
    }

    pub fn call(&mut self, name: &str, params: &[Val]) -> Option<Val> {
        self.try_call(name, params)
            .unwrap_or_else(|e| panic!("wasmtime: {name}: {e}"))
    }

    /// As [`Oracle::call`], with wasmtime's error as text.
    pub fn try_call(&mut self, name: &str, params: &[Val]) -> Result<Option<Val>, String> {
        let func = self.func(name);
        let params: Vec<WVal> = params.iter().map(to_wasmtime).collect();
        let mut results = vec![WVal::Bool(false); func.ty(&self.store).results().len()];
        func.call(&mut self.store, &params, &mut results)
            .map_err(|e| format!("{e:?}"))?;
        Ok(results.first().map(from_wasmtime))
    }
}

fn boxed(v: &Option<Box<Val>>) -> Option<Box<WVal>> {
    v.as_deref().map(|v| Box::new(to_wasmtime(v)))
}

fn unboxed(v: &Option<Box<WVal>>) -> Option<Box<Val>> {
    v.as_deref().map(|v| Box::new(from_wasmtime(v)))
}

pub fn to_wasmtime(v: &Val) -> WVal {
    match v {
        Val::Bool(v) => WVal::Bool(*v),
        Val::S8(v) => WVal::S8(*v),
        Val::U8(v) => WVal::U8(*v),
        Val::S16(v) => WVal::S16(*v),
        Val::U16(v) => WVal::U16(*v),
        Val::S32(v) => WVal::S32(*v),
        Val::U32(v) => WVal::U32(*v),
        Val::S64(v) => WVal::S64(*v),
        Val::U64(v) => WVal::U64(*v),
        Val::F32(v) => WVal::Float32(*v),
        Val::F64(v) => WVal::Float64(*v),
        Val::Char(v) => WVal::Char(*v),
        Val::String(v) => WVal::String(v.clone()),
        Val::List(v) => WVal::List(v.iter().map(to_wasmtime).collect()),
        Val::Record(v) => {
            WVal::Record(v.iter().map(|(n, v)| (n.clone(), to_wasmtime(v))).collect())
        }
        Val::Tuple(v) => WVal::Tuple(v.iter().map(to_wasmtime).collect()),
        Val::Variant(n, v) => WVal::Variant(n.clone(), boxed(v)),
        Val::Enum(n) => WVal::Enum(n.clone()),
        Val::Option(v) => WVal::Option(boxed(v)),
        Val::Result(Ok(v)) => WVal::Result(Ok(boxed(v))),
        Val::Result(Err(v)) => WVal::Result(Err(boxed(v))),
        Val::Flags(v) => WVal::Flags(v.clone()),
        other => panic!("{other:?}"),
    }
}

pub fn from_wasmtime(v: &WVal) -> Val {
    match v {
        WVal::Bool(v) => Val::Bool(*v),
        WVal::S8(v) => Val::S8(*v),
        WVal::U8(v) => Val::U8(*v),
        WVal::S16(v) => Val::S16(*v),
        WVal::U16(v) => Val::U16(*v),
        WVal::S32(v) => Val::S32(*v),
        WVal::U32(v) => Val::U32(*v),
        WVal::S64(v) => Val::S64(*v),
        WVal::U64(v) => Val::U64(*v),
        WVal::Float32(v) => Val::F32(*v),
        WVal::Float64(v) => Val::F64(*v),
        WVal::Char(v) => Val::Char(*v),
        WVal::String(v) => Val::String(v.clone()),
        WVal::List(v) => Val::List(v.iter().map(from_wasmtime).collect()),
        WVal::Record(v) => Val::Record(
            v.iter()
                .map(|(n, v)| (n.clone(), from_wasmtime(v)))
                .collect(),
        ),
        WVal::Tuple(v) => Val::Tuple(v.iter().map(from_wasmtime).collect()),
        WVal::Variant(n, v) => Val::Variant(n.clone(), unboxed(v)),
        WVal::Enum(n) => Val::Enum(n.clone()),
        WVal::Option(v) => Val::Option(unboxed(v)),
        WVal::Result(Ok(v)) => Val::Result(Ok(unboxed(v))),
        WVal::Result(Err(v)) => Val::Result(Err(unboxed(v))),
        WVal::Flags(v) => Val::Flags(v.clone()),
        other => panic!("{other:?}"),
    }
}

/// A deterministic generator of values for WIT types (xorshift, fixed seed).
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn string(&mut self) -> String {
        const PIECES: [&str; 8] = ["a", "Z", " ", "é", "漢", "🦀", "\n", "\u{10FFFF}"];
        (0..self.below(12))
            .map(|_| PIECES[self.below(8) as usize])
            .collect()
    }

    pub fn val(&mut self, resolve: &Resolve, ty: &Type, depth: u32) -> Val {
        match ty {
            Type::Bool => Val::Bool(self.next() & 1 == 1),
            Type::S8 => Val::S8(self.next() as i8),
            Type::U8 => Val::U8(self.next() as u8),
            Type::S16 => Val::S16(self.next() as i16),
            Type::U16 => Val::U16(self.next() as u16),
            Type::S32 => Val::S32(self.next() as i32),
            Type::U32 => Val::U32(self.next() as u32),
            Type::S64 => Val::S64(self.next() as i64),
            Type::U64 => Val::U64(self.next()),
            // Any bits, NaNs with payloads included: both sides must carry them as they are.
            Type::F32 => Val::F32(f32::from_bits(self.next() as u32)),
            Type::F64 => Val::F64(f64::from_bits(self.next())),
            Type::Char => {
                Val::Char(char::from_u32(self.below(0x11_0000) as u32).unwrap_or('\u{FFFD}'))
            }
            Type::String => Val::String(self.string()),
            Type::ErrorContext => unreachable!(),
            Type::Id(id) => {
                // Lists longer than 3 near the top, shorter below, empty past 4 levels.
                let len = match depth {
                    0 => self.below(9),
                    1..=3 => self.below(4),
                    _ => 0,
                };
                match &resolve.types[*id].kind {
                    TypeDefKind::Type(t) => self.val(resolve, t, depth),
                    TypeDefKind::List(t) => {
                        Val::List((0..len).map(|_| self.val(resolve, t, depth + 1)).collect())
                    }
                    TypeDefKind::Record(r) => Val::Record(
                        r.fields
                            .iter()
                            .map(|f| (f.name.clone(), self.val(resolve, &f.ty, depth + 1)))
                            .collect(),
                    ),
                    TypeDefKind::Tuple(t) => Val::Tuple(
                        t.types
                            .iter()
                            .map(|t| self.val(resolve, t, depth + 1))
                            .collect(),
                    ),
                    TypeDefKind::Variant(v) => {
                        let case = &v.cases[self.below(v.cases.len() as u64) as usize];
                        Val::Variant(
                            case.name.clone(),
                            case.ty
                                .as_ref()
                                .map(|t| Box::new(self.val(resolve, t, depth + 1))),
                        )
                    }
                    TypeDefKind::Enum(e) => Val::Enum(
                        e.cases[self.below(e.cases.len() as u64) as usize]
                            .name
                            .clone(),
                    ),
                    TypeDefKind::Flags(f) => Val::Flags(
                        f.flags
                            .iter()
                            .filter(|_| self.next() & 1 == 1)
                            .map(|f| f.name.clone())
                            .collect(),
                    ),
                    TypeDefKind::Option(t) => Val::Option(
                        (self.next() & 1 == 1).then(|| Box::new(self.val(resolve, t, depth + 1))),
                    ),
                    TypeDefKind::Result(r) => {
                        let ok = self.next() & 1 == 1;
                        let side = if ok { &r.ok } else { &r.err };
                        let payload = side
                            .as_ref()
                            .map(|t| Box::new(self.val(resolve, t, depth + 1)));
                        Val::Result(if ok { Ok(payload) } else { Err(payload) })
                    }
                    other => unreachable!("{other:?}"),
                }
            }
        }
    }
}

/// Two values the same, floats by their bits (a NaN is itself).
pub fn same(a: &Val, b: &Val) -> bool {
    let all = |a: &[Val], b: &[Val]| a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b));
    let opt = |a: &Option<Box<Val>>, b: &Option<Box<Val>>| match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    };
    match (a, b) {
        (Val::F32(a), Val::F32(b)) => a.to_bits() == b.to_bits(),
        (Val::F64(a), Val::F64(b)) => a.to_bits() == b.to_bits(),
        (Val::List(a), Val::List(b)) | (Val::Tuple(a), Val::Tuple(b)) => all(a, b),
        (Val::Record(a), Val::Record(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((na, a), (nb, b))| na == nb && same(a, b))
        }
        (Val::Variant(na, a), Val::Variant(nb, b)) => na == nb && opt(a, b),
        (Val::Option(a), Val::Option(b)) => opt(a, b),
        (Val::Result(Ok(a)), Val::Result(Ok(b))) | (Val::Result(Err(a)), Val::Result(Err(b))) => {
            opt(a, b)
        }
        _ => a == b,
    }
}
