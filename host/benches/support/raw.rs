//! The guest on plain wasmer, for the benchmarks to compare the library with: the seed's
//! `load` and accessors, and the allocation convention's steps, with no fuel and no checks
//! of the library's.

#![allow(dead_code, reason = "each benchmark uses its own part")]

use std::sync::Arc;

use wasmer::sys::CompilerConfig as _;
use wasmer::{Instance, Memory, Module, Store, TypedFunction, imports};
use wasmer_compiler_cranelift::Cranelift;
use wasmer_middlewares::Metering;

/// The guest through plain wasmer, as the seed uses it.
pub struct Raw {
    pub store: Store,
    pub memory: Memory,
    pub load: TypedFunction<(), (i32, i32)>,
}

pub fn raw(bytes: &[u8]) -> Raw {
    raw_in(Store::default(), bytes)
}

/// As [`raw`], compiled with the metering middleware as the library compiles it, to tell
/// the cost of metered code from the cost of refuelling.
pub fn raw_metered(bytes: &[u8]) -> Raw {
    let mut compiler = Cranelift::default();
    compiler.push_middleware(Arc::new(Metering::new(u64::MAX / 2, |_: &_| 1)));
    raw_in(Store::new(compiler), bytes)
}

fn raw_in(mut store: Store, bytes: &[u8]) -> Raw {
    let module = Module::new(&store, bytes).unwrap();
    let instance = Instance::new(&mut store, &module, &imports! {}).unwrap();
    let memory = instance.exports.get_memory("mem").unwrap().clone();
    let load = instance.exports.get_typed_function(&store, "load").unwrap();
    Raw {
        store,
        memory,
        load,
    }
}

/// The guest as the allocation convention's steps use it, on plain wasmer with its safe
/// API: no fuel, no checks.
pub struct RawAlloc {
    store: Store,
    memory: Memory,
    realloc: TypedFunction<(i32, i32, i32, i32), i32>,
    adopt: TypedFunction<(i32, i32), i32>,
    transform: TypedFunction<(), i32>,
    load: TypedFunction<(), (i32, i32)>,
}

impl RawAlloc {
    pub fn new(bytes: &[u8]) -> Self {
        let mut store = Store::default();
        let module = Module::new(&store, bytes).unwrap();
        let instance = Instance::new(&mut store, &module, &imports! {}).unwrap();
        let e = &instance.exports;
        RawAlloc {
            memory: e.get_memory("mem").unwrap().clone(),
            realloc: e.get_typed_function(&store, "cabi_realloc").unwrap(),
            adopt: e.get_typed_function(&store, "adopt").unwrap(),
            transform: e.get_typed_function(&store, "transform").unwrap(),
            load: e.get_typed_function(&store, "load").unwrap(),
            store,
        }
    }

    /// Put, adopt, transform, load, and read the result into `out`.
    pub fn roundtrip(&mut self, data: &[u8], out: &mut [u8]) {
        let len = i32::try_from(data.len()).unwrap();
        let ptr = self.realloc.call(&mut self.store, 0, 0, 1, len).unwrap();
        let view = self.memory.view(&self.store);
        view.write(u64::from(ptr.cast_unsigned()), data).unwrap();
        assert_eq!(self.adopt.call(&mut self.store, ptr, len).unwrap(), 0);
        self.transform.call(&mut self.store).unwrap();
        let (offset, len) = self.load.call(&mut self.store).unwrap();
        let len = usize::try_from(len).unwrap();
        let view = self.memory.view(&self.store);
        view.read(u64::from(offset.cast_unsigned()), &mut out[..len])
            .unwrap();
    }
}
