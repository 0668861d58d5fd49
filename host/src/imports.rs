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
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use abi::check::wasmparser::ValType;
use wasmer::{
    AsStoreMut, AsStoreRef, Function, FunctionEnv, FunctionEnvMut, Global, Imports, Instance,
    Memory, Value,
};

use crate::canonical::{
    Flat, FlatSrc, FuncDef, Lift, LiftCx, Lower, LowerCx, MAX_FLAT_PARAMS, Val, World,
};
use crate::canonical::{HostParams, HostResults};
use crate::canonical::{WitParams, WitType, WitWorld};
use crate::instance::{InCall, Leave, Reach};
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
/// modules export it, else the guide's `mem`), its `cabi_realloc`, and its metering
/// globals.
#[derive(Clone, Default)]
pub(crate) struct GuestSide {
    pub(crate) memory: Option<Memory>,
    /// The memory and `cabi_realloc`, as lifting and lowering reach them.
    pub(crate) reach: Reach,
    /// `remaining`, `exhausted`, when the module is metered.
    meter: Option<(Global, Global)>,
}

impl GuestSide {
    /// What `instance` exports of it.
    pub(crate) fn of(instance: &Instance, store: &impl AsStoreRef, leave: Leave) -> GuestSide {
        let reach = Reach::of(instance, store, leave);
        let memory = reach.memory().cloned();
        let meter = match (
            instance.exports.get_global(metering::REMAINING),
            instance.exports.get_global(metering::EXHAUSTED),
        ) {
            (Ok(r), Ok(e)) => Some((r.clone(), e.clone())),
            _ => None,
        };
        GuestSide {
            memory,
            reach,
            meter,
        }
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
    /// Functions of guests' WIT worlds, by the world's name of each: `name`, or
    /// `ns:pkg/iface#name`.
    canonical: Vec<(String, Canonical)>,
}

/// A function of the embedder's standing for a function a guest's world imports: whether
/// it has the function's types, and how to define it for an instance.
#[derive(Clone)]
struct Canonical {
    typecheck: fn(&wit_parser::Resolve, &FuncDef) -> Result<(), String>,
    define: Arc<DefineFn>,
}

/// Defines the function `world.imports[index]` in a store, with the state of its
/// instance's host functions and the most bytes a lifted value may take.
type DefineFn = dyn Fn(&mut wasmer::StoreMut<'_>, &FunctionEnv<GuestSide>, Arc<World>, usize, u64) -> Function
    + Send
    + Sync;

impl fmt::Debug for HostFunctions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.funcs.iter().map(|(m, n, _)| format!("{m}.{n}")))
            .entries(self.canonical.iter().map(|(n, _)| n.clone()))
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

    /// Gives the function `name` that a guest's WIT world imports (`name`, or
    /// `ns:pkg/iface#name` for a function of an imported interface), in the canonical ABI.
    /// `f` gets the arguments, lifted out of guest memory with every check that an
    /// export's result gets (and counted against
    /// [`Limits::max_value_bytes`](crate::Limits)); its result is checked against the
    /// function's type, then lowered into guest memory, its strings and lists into blocks
    /// from the guest's own `cabi_realloc`, called while the guest is on the stack, on the
    /// call's fuel. An `Err`, a panic, or a result of the wrong type stops the guest with
    /// [`Error::HostFunction`](crate::Error::HostFunction), naming the function. A module
    /// whose world imports a function nobody gives is refused at admission, every such
    /// function named. A later function of the same name replaces an earlier one.
    ///
    /// ```
    /// use memhost::{HostFunctions, Val};
    ///
    /// let functions = HostFunctions::default()
    ///     .func("log", |args| {
    ///         if let [Val::String(line)] = args {
    ///             eprintln!("guest: {line}");
    ///         }
    ///         Ok(None)
    ///     })
    ///     .func("my:app/config#get", |args| match args {
    ///         [Val::String(key)] if key == "greeting" => {
    ///             Ok(Some(Val::Option(Some(Box::new(Val::String("hello".into()))))))
    ///         }
    ///         _ => Ok(Some(Val::Option(None))),
    ///     });
    /// # let _ = functions;
    /// ```
    #[must_use]
    pub fn func(
        self,
        name: impl Into<String>,
        f: impl Fn(&[Val]) -> Result<Option<Val>, String> + Send + Sync + 'static,
    ) -> Self {
        self.canonical_entry(name.into(), |_, _| Ok(()), Dynamic(f))
    }

    /// As [`HostFunctions::func`], with Rust types: `f` takes the parameters as a tuple of
    /// [`Lift`] types and returns `()` or a 1-tuple of a [`Lower`] type, checked against
    /// the function's WIT types at admission (a module whose world has other types is
    /// refused, saying why). Nothing goes through [`Val`].
    ///
    /// ```
    /// let functions = memhost::HostFunctions::default()
    ///     .typed("add", |(a, b): (u32, u32)| Ok((a.wrapping_add(b),)))
    ///     .typed("log", |(line,): (String,)| {
    ///         eprintln!("guest: {line}");
    ///         Ok(())
    ///     });
    /// # let _ = functions;
    /// ```
    #[must_use]
    pub fn typed<P, R>(
        self,
        name: impl Into<String>,
        f: impl Fn(P) -> Result<R, String> + Send + Sync + 'static,
    ) -> Self
    where
        P: HostParams + 'static,
        R: HostResults + 'static,
    {
        let typecheck = |resolve: &wit_parser::Resolve, def: &FuncDef| {
            let world = WitWorld(resolve);
            P::typecheck_params(world, WitParams(&def.params))
                .and_then(|()| R::typecheck_results(world, def.result_type()))
        };
        self.canonical_entry(name.into(), typecheck, Typed(f, PhantomData))
    }

    fn canonical_entry(
        mut self,
        name: String,
        typecheck: fn(&wit_parser::Resolve, &FuncDef) -> Result<(), String>,
        server: impl Server,
    ) -> Self {
        let server = Arc::new(server);
        let define = move |store: &mut wasmer::StoreMut<'_>,
                           env: &FunctionEnv<GuestSide>,
                           world: Arc<World>,
                           index: usize,
                           max_value_bytes: u64| {
            let server = Arc::clone(&server);
            define(store, env, world, index, move |cx, world, args| {
                serve(cx, world, index, args, max_value_bytes, &*server)
            })
        };
        self.canonical.retain(|(n, _)| *n != name);
        self.canonical.push((
            name,
            Canonical {
                typecheck,
                define: Arc::new(define),
            },
        ));
        self
    }

    /// Whether the function `def` of a world is given, with its types; else why not.
    pub(crate) fn canonical_provides(
        &self,
        resolve: &wit_parser::Resolve,
        def: &FuncDef,
    ) -> Result<(), String> {
        let Some((_, given)) = self.canonical.iter().find(|(n, _)| *n == def.name) else {
            return Err(format!(
                "the world imports `{}`, which the host was not given (an embedder gives it with HostFunctions; the memhost CLI gives none)",
                def.signature(resolve)
            ));
        };
        (given.typecheck)(resolve, def).map_err(|why| {
            format!(
                "the host's function for `{}` has other types: {why}",
                def.signature(resolve)
            )
        })
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
        self.funcs.is_empty() && self.canonical.is_empty()
    }

    /// Defines them in `imports`, in `store`, with the functions `world` imports; their
    /// state, which [`attach`] completes once the instance exists.
    pub(crate) fn define(
        &self,
        store: &mut impl AsStoreMut,
        imports: &mut Imports,
        world: Option<&Arc<World>>,
        max_value_bytes: u64,
    ) -> FunctionEnv<GuestSide> {
        let env = FunctionEnv::new(store, GuestSide::default());
        if let Some(world) = world {
            for (index, import) in world.imports.iter().enumerate() {
                let Some((_, given)) = self.canonical.iter().find(|(n, _)| *n == import.def.name)
                else {
                    // Admission refused a module whose world imports a function not given.
                    continue;
                };
                let func = (given.define)(
                    &mut store.as_store_mut(),
                    &env,
                    Arc::clone(world),
                    index,
                    max_value_bytes,
                );
                imports.define(&import.module, &import.field, func);
            }
        }
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
    leave: Leave,
) {
    *env.as_mut(store) = GuestSide::of(instance, store, leave);
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
        Err(panic) => Err(fail(format!("it panicked: {}", panic_text(&*panic)))),
    }
}

/// How a kind of host function takes its arguments and gives its result: lifts them,
/// calls the embedder's function, lowers what it returned.
trait Server: Send + Sync + 'static {
    type Args;
    type Out;
    fn lift(
        &self,
        cx: &LiftCx<'_>,
        def: &FuncDef,
        src: Params<'_, '_>,
    ) -> Result<Self::Args, crate::Error>;
    fn call(&self, args: Self::Args) -> Result<Self::Out, String>;
    fn lower(
        &self,
        cx: &mut LowerCx<'_>,
        def: &FuncDef,
        out: Self::Out,
        dest: Dest<'_>,
    ) -> Result<(), String>;
}

/// A function of `Val`s ([`HostFunctions::func`]).
struct Dynamic<F>(F);

impl<F> Server for Dynamic<F>
where
    F: Fn(&[Val]) -> Result<Option<Val>, String> + Send + Sync + 'static,
{
    type Args = Vec<Val>;
    type Out = Option<Val>;

    fn lift(
        &self,
        cx: &LiftCx<'_>,
        def: &FuncDef,
        src: Params<'_, '_>,
    ) -> Result<Vec<Val>, crate::Error> {
        let types = def.param_types.iter();
        match src {
            Params::Flat(src) => types.map(|ty| Val::lift_flat(cx, *ty, src)).collect(),
            Params::At(ptr) => types
                .zip(def.param_offsets.iter())
                .map(|(ty, offset)| Val::load(cx, *ty, ptr + offset))
                .collect(),
        }
    }

    fn call(&self, args: Vec<Val>) -> Result<Option<Val>, String> {
        (self.0)(&args)
    }

    /// Checked against the function's type first.
    fn lower(
        &self,
        cx: &mut LowerCx<'_>,
        def: &FuncDef,
        result: Option<Val>,
        dest: Dest<'_>,
    ) -> Result<(), String> {
        let resolve = cx.resolve;
        match (&def.result, result) {
            (None, None) => Ok(()),
            (Some(ty), Some(value)) => {
                value
                    .check(resolve, ty)
                    .map_err(|e| format!("its result: {e}"))?;
                match dest {
                    Dest::Flat(out) => value.lower_flat(cx, WitType(*ty), out),
                    Dest::At(ptr) => value.store(cx, WitType(*ty), ptr),
                }
                .map_err(|e| e.to_string())
            }
            (None, Some(_)) => Err("it returned a value for a function without a result".into()),
            (Some(ty), None) => Err(format!(
                "it returned no value for a function that returns {}",
                crate::canonical::type_name(resolve, ty)
            )),
        }
    }
}

/// A function of Rust types ([`HostFunctions::typed`]), checked against the WIT types at
/// admission.
struct Typed<F, P, R>(F, PhantomData<fn(P) -> R>);

impl<F, P, R> Server for Typed<F, P, R>
where
    F: Fn(P) -> Result<R, String> + Send + Sync + 'static,
    P: HostParams + 'static,
    R: HostResults + 'static,
{
    type Args = P;
    type Out = R;

    fn lift(&self, cx: &LiftCx<'_>, def: &FuncDef, src: Params<'_, '_>) -> Result<P, crate::Error> {
        match src {
            Params::Flat(src) => P::lift_params(cx, &def.param_types, src),
            Params::At(ptr) => P::load_params(cx, &def.param_types, &def.param_offsets, ptr),
        }
    }

    fn call(&self, args: P) -> Result<R, String> {
        (self.0)(args)
    }

    fn lower(
        &self,
        cx: &mut LowerCx<'_>,
        def: &FuncDef,
        result: R,
        dest: Dest<'_>,
    ) -> Result<(), String> {
        match (dest, def.result_type()) {
            (Dest::Flat(out), ty) => result.lower_results(cx, ty, out),
            (Dest::At(ptr), Some(ty)) => result.store_results(cx, ty, ptr),
            (Dest::At(_), None) => Ok(()),
        }
        .map_err(|e| e.to_string())
    }
}

/// Core value types of flat types.
fn flat_types(flats: &[Flat]) -> Vec<wasmer::Type> {
    flats
        .iter()
        .map(|f| match f {
            Flat::I32 => wasmer::Type::I32,
            Flat::I64 => wasmer::Type::I64,
            Flat::F32 => wasmer::Type::F32,
            Flat::F64 => wasmer::Type::F64,
        })
        .collect()
}

/// The wasmer function for `world.imports[index]`, of its core type, calling `call` with
/// the core arguments (its result is at most one flat value: more go to a return area).
/// Typed, as wasmer's typed host functions are (no `Value` lists made on the way in or
/// out), when the core type is up to four `i32` parameters and at most one `i32` result:
/// strings, lists, pointers and small numbers, most functions; else dynamic.
fn define(
    store: &mut wasmer::StoreMut<'_>,
    env: &FunctionEnv<GuestSide>,
    world: Arc<World>,
    index: usize,
    call: impl Fn(&mut FunctionEnvMut<GuestSide>, &World, &[Value]) -> Result<Option<u64>, Stop>
    + Send
    + Sync
    + 'static,
) -> Function {
    let def = &world.imports[index].def;
    let (params, results) = (&def.core_params, &def.core_results);
    let all_i32 = params.iter().chain(results).all(|f| *f == Flat::I32);
    // The low 32 bits of a flat `i32` result.
    let i32_of = |bits: Option<u64>| (bits.unwrap_or(0) & 0xFFFF_FFFF) as u32 as i32;
    macro_rules! typed {
        (($($a:ident),*) -> ()) => {
            Function::new_typed_with_env(store, env, move |mut cx: FunctionEnvMut<GuestSide>, $($a: i32),*| -> Result<(), Stop> {
                call(&mut cx, &world, &[$(Value::I32($a)),*]).map(|_| ())
            })
        };
        (($($a:ident),*) -> i32) => {
            Function::new_typed_with_env(store, env, move |mut cx: FunctionEnvMut<GuestSide>, $($a: i32),*| -> Result<i32, Stop> {
                call(&mut cx, &world, &[$(Value::I32($a)),*]).map(i32_of)
            })
        };
    }
    match (all_i32, params.len(), results.len()) {
        (true, 0, 0) => typed!(() -> ()),
        (true, 0, 1) => typed!(() -> i32),
        (true, 1, 0) => typed!((a) -> ()),
        (true, 1, 1) => typed!((a) -> i32),
        (true, 2, 0) => typed!((a, b) -> ()),
        (true, 2, 1) => typed!((a, b) -> i32),
        (true, 3, 0) => typed!((a, b, c) -> ()),
        (true, 3, 1) => typed!((a, b, c) -> i32),
        (true, 4, 0) => typed!((a, b, c, d) -> ()),
        (true, 4, 1) => typed!((a, b, c, d) -> i32),
        _ => {
            let ty = wasmer::FunctionType::new(flat_types(params), flat_types(results));
            Function::new_with_env(
                store,
                env,
                ty,
                move |mut cx: FunctionEnvMut<GuestSide>, args: &[Value]| {
                    let result = call(&mut cx, &world, args)
                        .map_err(|stop| wasmer::RuntimeError::user(Box::new(stop)))?;
                    let def = &world.imports[index].def;
                    let mut values = Vec::new();
                    crate::guest::core_values(
                        &result.into_iter().collect::<Vec<u64>>(),
                        &def.core_results,
                        &mut values,
                    );
                    Ok(values)
                },
            )
        }
    }
}

/// Where an imported function's arguments are: flat, or in memory at a pointer the guest
/// passed (checked).
enum Params<'s, 'a> {
    Flat(&'s mut FlatSrc<'a>),
    At(u32),
}

/// Where an imported function's result goes: flat, or into the return area the guest
/// passed (checked).
enum Dest<'s> {
    Flat(&'s mut Vec<u64>),
    At(u32),
}

/// One call of the function the world imports as `world.imports[index]`, served by
/// `server`: its arguments lifted (checked, counted against `max_value_bytes`, charged to
/// the fuel), the embedder's function called (its panic caught), its result lowered (into
/// the return area the guest passed, when the result takes more than one flat value).
/// What stops the guest names the function.
fn serve(
    cx: &mut FunctionEnvMut<GuestSide>,
    world: &World,
    index: usize,
    args: &[Value],
    max_value_bytes: u64,
    server: &impl Server,
) -> Result<Option<u64>, Stop> {
    let def = &world.imports[index].def;
    let fail = |why: String| Stop::Host {
        import: def.name.clone(),
        why,
    };
    let (guest, store) = cx.data_and_store_mut();
    if !guest.reach.may_leave() {
        return Err(fail(
            "the guest called it while the host had it in `cabi_realloc` or a post-return \
             function, where the canonical ABI forbids calling out of the instance"
                .into(),
        ));
    }
    // At most 16 flat parameters and a return area's pointer, or one pointer to them.
    let mut bits = [0u64; MAX_FLAT_PARAMS + 1];
    for (bit, arg) in bits.iter_mut().zip(args) {
        *bit = crate::guest::flat_bits_of(arg);
    }
    let bits = &bits[..args.len().min(bits.len())];
    let pointer = |b: Option<&u64>| b.map_or(0, |&b| (b & 0xFFFF_FFFF) as u32);
    let mut reach = InCall::new(store, &guest.reach, &def.name);
    let (resolve, types) = (world.resolve(), &world.types);
    fn check_cx<'a>(
        reach: &'a InCall<'_>,
        world: &'a World,
        def: &'a FuncDef,
        budget: u64,
    ) -> LiftCx<'a> {
        LiftCx {
            core: reach,
            resolve: world.resolve(),
            types: &world.types,
            export: &def.name,
            budget: std::cell::Cell::new(budget),
        }
    }
    let (params, lifted) = {
        let cx = check_cx(&reach, world, def, max_value_bytes);
        let params = if def.indirect_params() {
            let ptr = pointer(bits.first());
            let (size, align) = def.params_layout;
            cx.check_range("the parameters", ptr, u64::from(size), align)
                .and_then(|()| server.lift(&cx, def, Params::At(ptr)))
        } else {
            server.lift(&cx, def, Params::Flat(&mut FlatSrc::new(bits)))
        };
        (
            params.map_err(|e| fail(e.to_string()))?,
            max_value_bytes - cx.budget.get(),
        )
    };
    // One host call, and the bytes lifted (bounded by `max_value_bytes`), charged at once.
    guest.charge(reach.store_mut(), lifted)?;
    let result = match catch_unwind(AssertUnwindSafe(|| server.call(params))) {
        Ok(Ok(result)) => result,
        Ok(Err(why)) => return Err(fail(why)),
        Err(panic) => return Err(fail(format!("it panicked: {}", panic_text(&*panic)))),
    };
    let mut flat = Vec::new();
    let dest = if def.retptr() {
        // The return area the guest passed, last: checked as the spec checks it.
        let ptr = pointer(bits.last());
        let (size, align) = def.result_layout;
        check_cx(&reach, world, def, 0)
            .check_range("the return area", ptr, u64::from(size), align)
            .map_err(|e| fail(e.to_string()))?;
        Dest::At(ptr)
    } else {
        Dest::Flat(&mut flat)
    };
    let mut cx = LowerCx {
        core: &mut reach,
        resolve,
        types,
        export: &def.name,
    };
    server.lower(&mut cx, def, result, dest).map_err(fail)?;
    Ok(flat.first().copied())
}

/// What a panic carried, as text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
