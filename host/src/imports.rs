//! Functions the host gives a guest to import, and what they share: the guest's memory and
//! metering globals as a host function sees them ([`GuestSide`]), and why one stops the
//! guest ([`Stop`]). WASI preview 1 is in `wasi.rs`; the embedder's own functions, which
//! read a region of guest memory as the Wasmer guide's `FunctionEnv` + `MemoryView` pattern
//! does, are [`HostFunctions`].
//!
//! A host function runs while the guest is on the stack. It reads guest memory only
//! through wasmer's checked `MemoryView` (a bad pointer is refused, never host memory
//! touched), its work is charged to the call's fuel like guest code, and its failure or
//! panic stops the guest with a typed error naming the import.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use abi::check::wasmparser::ValType;
use wasmer::{
    AsStoreMut, Function, FunctionEnv, FunctionEnvMut, Global, Imports, Instance, Memory, Value,
};

use crate::metering::{self, BYTES_PER_UNIT, RUNTIME_CALL};

/// Why a host function stops the guest.
#[derive(Debug)]
pub(crate) enum Stop {
    /// WASI's `proc_exit`.
    Exit(i32),
    /// The host's work for the guest ran past the call's fuel.
    OutOfFuel,
    /// The embedder's function failed (or panicked): which, and why.
    Host { import: String, why: String },
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Exit(code) => write!(f, "the guest exited with code {code}"),
            Stop::OutOfFuel => f.write_str("out of fuel in a host function"),
            Stop::Host { import, why } => write!(f, "host function `{import}` failed: {why}"),
        }
    }
}

impl std::error::Error for Stop {}

/// The guest as a host function sees it: its memory (`memory`, as WASI and wit-bindgen
/// modules export it, else the guide's `mem`) and its metering globals.
#[derive(Clone, Default)]
pub(crate) struct GuestSide {
    pub(crate) memory: Option<Memory>,
    /// `remaining`, `exhausted`, when the module is metered.
    meter: Option<(Global, Global)>,
}

impl GuestSide {
    /// What `instance` exports of it.
    pub(crate) fn of(instance: &Instance) -> GuestSide {
        let memory = ["memory", abi::MEMORY.name]
            .iter()
            .find_map(|name| instance.exports.get_memory(name).ok().cloned());
        let meter = match (
            instance.exports.get_global(metering::REMAINING),
            instance.exports.get_global(metering::EXHAUSTED),
        ) {
            (Ok(r), Ok(e)) => Some((r.clone(), e.clone())),
            _ => None,
        };
        GuestSide { memory, meter }
    }

    /// Charges one host call and `bytes` of work (as a bulk copy of them costs) to the
    /// call's fuel; [`Stop::OutOfFuel`], with the points spent, when it has not enough.
    pub(crate) fn charge(&self, store: &mut impl AsStoreMut, bytes: u64) -> Result<(), Stop> {
        let Some((remaining, exhausted)) = &self.meter else {
            return Ok(());
        };
        let cost = RUNTIME_CALL + bytes / u64::from(BYTES_PER_UNIT);
        let left = remaining.get(store).i64().unwrap_or(0).cast_unsigned();
        if left < cost {
            let _ = remaining.set(store, Value::I64(0));
            let _ = exhausted.set(store, Value::I32(1));
            return Err(Stop::OutOfFuel);
        }
        let _ = remaining.set(store, Value::I64((left - cost).cast_signed()));
        Ok(())
    }
}

/// A function of the embedder's that a guest imports: given the bytes of a region of
/// guest memory; an `Err` stops the guest.
type BytesFn = dyn Fn(&[u8]) -> Result<(), String> + Send + Sync;

/// Functions the embedder gives guests to import, in the guide's ABI: each is
/// `module.name: (ptr: i32, len: i32) -> ()`, the guest handing the host a region of its
/// memory, as the Wasmer guide's host reads `load`'s. The host checks the region and
/// charges its bytes to the call's fuel before the function sees them; a function that
/// returns `Err` or panics stops the guest with [`Error::HostFunction`](crate::Error),
/// naming it. A module that imports a function nobody gives is refused at admission.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// let log = Arc::new(Mutex::new(Vec::<String>::new()));
/// let sink = Arc::clone(&log);
/// let functions = memhost::HostFunctions::default().bytes("env", "log", move |bytes| {
///     let line = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
///     sink.lock().unwrap().push(line.to_string());
///     Ok(())
/// });
/// # let _ = functions;
/// ```
#[derive(Clone, Default)]
pub struct HostFunctions {
    funcs: Vec<(String, String, Arc<BytesFn>)>,
}

impl fmt::Debug for HostFunctions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.funcs.iter().map(|(m, n, _)| format!("{m}.{n}")))
            .finish()
    }
}

impl HostFunctions {
    /// Gives `module.name: (ptr: i32, len: i32) -> ()`, which calls `f` with the bytes of
    /// the region. A later function of the same name replaces an earlier one.
    #[must_use]
    pub fn bytes(
        mut self,
        module: impl Into<String>,
        name: impl Into<String>,
        f: impl Fn(&[u8]) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        let (module, name) = (module.into(), name.into());
        self.funcs.retain(|(m, n, _)| *m != module || *n != name);
        self.funcs.push((module, name, Arc::new(f)));
        self
    }

    /// Whether one of these is `module.name` with core type `params -> results`.
    pub(crate) fn provides(
        &self,
        module: &str,
        name: &str,
        params: &[ValType],
        results: &[ValType],
    ) -> bool {
        params == [ValType::I32, ValType::I32]
            && results.is_empty()
            && self.funcs.iter().any(|(m, n, _)| m == module && n == name)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }

    /// Defines them in `imports`, in `store`; their state, which [`attach`] completes once
    /// the instance exists.
    pub(crate) fn define(
        &self,
        store: &mut impl AsStoreMut,
        imports: &mut Imports,
    ) -> FunctionEnv<GuestSide> {
        let env = FunctionEnv::new(store, GuestSide::default());
        for (module, name, f) in &self.funcs {
            let (f, import) = (Arc::clone(f), format!("{module}.{name}"));
            let func = Function::new_typed_with_env(
                store,
                &env,
                move |mut cx: FunctionEnvMut<GuestSide>, ptr: i32, len: i32| -> Result<(), Stop> {
                    call(
                        &mut cx,
                        &import,
                        &*f,
                        ptr.cast_unsigned(),
                        len.cast_unsigned(),
                    )
                },
            );
            imports.define(module, name, func);
        }
        env
    }
}

/// Gives host functions' state its instance.
pub(crate) fn attach(
    env: &FunctionEnv<GuestSide>,
    store: &mut impl AsStoreMut,
    instance: &Instance,
) {
    *env.as_mut(store) = GuestSide::of(instance);
}

/// One call of `f` on the region `[ptr, ptr + len)`: checked, charged, copied out of guest
/// memory (so that `f` may not see the guest change it), then `f`, its panic caught.
fn call(
    cx: &mut FunctionEnvMut<GuestSide>,
    import: &str,
    f: &BytesFn,
    ptr: u32,
    len: u32,
) -> Result<(), Stop> {
    let fail = |why: String| Stop::Host {
        import: import.to_string(),
        why,
    };
    let guest = cx.data().clone();
    guest.charge(&mut cx.as_store_mut(), u64::from(len))?;
    let Some(memory) = &guest.memory else {
        return Err(fail("the guest exports no memory".into()));
    };
    // Checked here: wasmer's `copy_range_to_vec` cuts a range short at the end of memory
    // instead of failing. The length is within memory, so the buffer is bounded by it.
    let outside = || {
        fail(format!(
            "the region at {ptr} of {len} bytes is outside guest memory"
        ))
    };
    let view = memory.view(&cx);
    if u64::from(ptr) + u64::from(len) > view.data_size() {
        return Err(outside());
    }
    let mut bytes = vec![0; len as usize];
    view.read(u64::from(ptr), &mut bytes)
        .map_err(|_| outside())?;
    match catch_unwind(AssertUnwindSafe(|| f(&bytes))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(fail(why)),
        Err(panic) => Err(fail(format!(
            "it panicked: {}",
            panic
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into())
        ))),
    }
}
