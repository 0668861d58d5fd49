//! The canonical ABI's convention: calling any function of the module's WIT world with
//! values of its types, on the same [`Core`] (so fuel, the memory cap and every bounds
//! check apply as to any other call). Lowering, the call, lifting and the post-return call
//! are one step here; any failure after the first guest code ran is the spec's trap, which
//! leaves the instance unfit for further canonical calls ([`Error::Poisoned`]).

#![allow(
    clippy::cast_possible_truncation,
    reason = "flat values are raw bits: the spec takes the low bits of a wider place (its `wrap_i64_to_i32`, `lift_flat_unsigned`)"
)]

use std::marker::PhantomData;
use std::sync::Arc;

use wasmer::Value;

use crate::canonical::values::TypesOf as _;
use crate::canonical::values::load_pair;
use crate::canonical::{
    Borrowed, ComponentParams, ComponentResults, Flat, FlatSrc, FuncDef, Lift, LiftCx, Lower,
    LowerCx, Val, ValType, WitParams, WitType, WitWorld, World,
};
use crate::instance::{Core, DynFunc, Effect, Func};
use crate::{Error, Guest, Violation};

/// A core export of the canonical ABI, bound for calls: with wasmer's typed calls when its
/// core type is up to four `i32` parameters and at most one `i32` result (strings, lists,
/// pointers and small numbers: most functions, and every post-return), else dynamically.
/// A typed call skips wasmer's `Value` conversions and allocations.
#[derive(Debug)]
enum Bound {
    P0R0(Func<(), ()>),
    P0R1(Func<(), i32>),
    P1R0(Func<i32, ()>),
    P1R1(Func<i32, i32>),
    P2R0(Func<(i32, i32), ()>),
    P2R1(Func<(i32, i32), i32>),
    P3R0(Func<(i32, i32, i32), ()>),
    P3R1(Func<(i32, i32, i32), i32>),
    P4R0(Func<(i32, i32, i32, i32), ()>),
    P4R1(Func<(i32, i32, i32, i32), i32>),
    Dyn(DynFunc),
}

impl Bound {
    /// `name`, of core type `params -> results`, in `core`.
    fn bind(core: &Core, name: String, params: &[Flat], results: &[Flat]) -> Result<Bound, Error> {
        let all_i32 = params.iter().chain(results).all(|f| *f == Flat::I32);
        let m = Effect::Mutates;
        Ok(match (all_i32, params.len(), results.len()) {
            (true, 0, 0) => Bound::P0R0(core.func(name, m)?),
            (true, 0, 1) => Bound::P0R1(core.func(name, m)?),
            (true, 1, 0) => Bound::P1R0(core.func(name, m)?),
            (true, 1, 1) => Bound::P1R1(core.func(name, m)?),
            (true, 2, 0) => Bound::P2R0(core.func(name, m)?),
            (true, 2, 1) => Bound::P2R1(core.func(name, m)?),
            (true, 3, 0) => Bound::P3R0(core.func(name, m)?),
            (true, 3, 1) => Bound::P3R1(core.func(name, m)?),
            (true, 4, 0) => Bound::P4R0(core.func(name, m)?),
            (true, 4, 1) => Bound::P4R1(core.func(name, m)?),
            _ => Bound::Dyn(core.dyn_func(name)?),
        })
    }

    /// Calls it with the flat values `args` (of its core types); its results' bits go to
    /// `out`.
    fn call(
        &self,
        core: &mut Core,
        args: &[u64],
        types: &[Flat],
        values: &mut Vec<Value>,
        out: &mut Vec<u64>,
    ) -> Result<(), Error> {
        let a = |i: usize| args.get(i).map_or(0, |&b| (b as u32).cast_signed());
        let one = |r: i32| u64::from(r.cast_unsigned());
        out.clear();
        match self {
            Bound::P0R0(f) => core.call(f, ())?,
            Bound::P0R1(f) => out.push(one(core.call(f, ())?)),
            Bound::P1R0(f) => core.call(f, a(0))?,
            Bound::P1R1(f) => out.push(one(core.call(f, a(0))?)),
            Bound::P2R0(f) => core.call(f, (a(0), a(1)))?,
            Bound::P2R1(f) => out.push(one(core.call(f, (a(0), a(1)))?)),
            Bound::P3R0(f) => core.call(f, (a(0), a(1), a(2)))?,
            Bound::P3R1(f) => out.push(one(core.call(f, (a(0), a(1), a(2)))?)),
            Bound::P4R0(f) => core.call(f, (a(0), a(1), a(2), a(3)))?,
            Bound::P4R1(f) => out.push(one(core.call(f, (a(0), a(1), a(2), a(3)))?)),
            Bound::Dyn(f) => {
                core_values(args, types, values);
                let results = core.call_dyn(f, values)?;
                flat_bits(&results, out);
            }
        }
        Ok(())
    }
}

/// A module's canonical-ABI side in one instance: its world, each function bound to its
/// core export (and post-return), and whether a call has trapped.
#[derive(Debug)]
pub(crate) struct Canonical {
    /// Which instance this is, for the handles made on it ([`TypedFunc`]).
    id: u64,
    world: Arc<World>,
    funcs: Vec<(Bound, Option<Bound>)>,
    poisoned: bool,
    max_value_bytes: u64,
    /// Reused from call to call: the flat values of a call, its results, and core values
    /// for a dynamic call.
    flat: Vec<u64>,
    out: Vec<u64>,
    values: Vec<Value>,
}

impl Canonical {
    /// The functions of `world` bound in `core`.
    pub(crate) fn bind(
        core: &Core,
        world: Arc<World>,
        max_value_bytes: u64,
    ) -> Result<Self, Error> {
        let funcs = world
            .funcs
            .iter()
            .map(|def| {
                let post = def
                    .post_return
                    .then(|| Bound::bind(core, def.post_return_name(), &def.core_results, &[]))
                    .transpose()?;
                let func =
                    Bound::bind(core, def.name.clone(), &def.core_params, &def.core_results)?;
                Ok((func, post))
            })
            .collect::<Result<_, Error>>()?;
        // Distinct for every instance this process makes.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Canonical {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            world,
            funcs,
            poisoned: false,
            max_value_bytes,
            flat: Vec::new(),
            out: Vec::new(),
            values: Vec::new(),
        })
    }
}

/// A function of the guest's world, its types checked once against `P` and `R`, to be
/// called many times: the canonical ABI's `TypedFunc`.
#[derive(Debug)]
pub struct TypedFunc<P, R> {
    /// The instance it was made on: its index means nothing in another.
    instance: u64,
    index: usize,
    name: String,
    types: PhantomData<fn(P) -> R>,
}

impl<P: ComponentParams, R: ComponentResults> TypedFunc<P, R> {
    /// Calls the function with `params`.
    ///
    /// # Errors
    /// As [`Guest::call`];
    /// [`Error::Call`] when `guest` is not the instance it was made on (its types were
    /// checked against that instance's function, and its index means nothing in another).
    pub fn call(&self, guest: &mut Guest, params: P) -> Result<R, Error> {
        guest.check_handle(self.instance, &self.name)?;
        guest.enter(self.index, lower_params(params), |cx, def, src| match src {
            Ok(src) => R::lift_results(cx, def.result_type(), src),
            Err(ptr) => match def.result_type() {
                Some(ty) => R::load_results(cx, ty, ptr),
                None => Err(cx.wrong_type("a function with a result")),
            },
        })
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A function of the guest's world whose result is read in place (a `string`, a `list<u8>`
/// or a list of numbers: see [`Borrowed`]), its types checked once: made by
/// [`Guest::typed_borrowed`].
#[derive(Debug)]
pub struct BorrowedFunc<P, B: ?Sized> {
    /// The instance it was made on: its index means nothing in another.
    instance: u64,
    index: usize,
    name: String,
    types: PhantomData<fn(P) -> *const B>,
}

impl<P: ComponentParams, B: Borrowed + ?Sized> BorrowedFunc<P, B> {
    /// Calls the function with `params` and hands its result to `f` straight from guest
    /// memory, checked as [`Guest::call`] checks it but not copied; then the post-return
    /// frees it. Returns what `f` returns.
    ///
    /// # Errors
    /// As [`TypedFunc::call`]. `f` is not called when the result breaks the spec.
    pub fn call<T>(
        &self,
        guest: &mut Guest,
        params: P,
        f: impl FnOnce(B::Ref<'_>) -> T,
    ) -> Result<T, Error> {
        guest.check_handle(self.instance, &self.name)?;
        let name = &self.name;
        guest.enter(self.index, lower_params(params), |cx, _, src| {
            let (ptr, len) = borrowed_pair(cx, name, src)?;
            Ok(f(B::borrow(cx, ptr, len)?))
        })
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The lowering of a typed call's parameters, flat or stored at the offsets given.
fn lower_params<P: ComponentParams>(
    params: P,
) -> impl FnOnce(&mut LowerCx<'_>, &FuncDef, &[WitType], &mut Vec<u64>, Stored<'_>) -> Result<(), Error>
{
    move |cx, _, types, out, offsets| match offsets {
        Some((offsets, ptr)) => params.store_params(cx, types, offsets, ptr),
        None => params.lower_params(cx, types, out),
    }
}

/// The `(ptr, len)` of a string or list result, from its return area (which a result of
/// two flat values always has).
fn borrowed_pair(
    cx: &LiftCx<'_>,
    name: &str,
    src: Result<&mut FlatSrc<'_>, u32>,
) -> Result<(u32, u32), Error> {
    match src {
        Err(ptr) => load_pair(cx, ptr),
        Ok(_) => Err(call_error(name, "no return area".into())),
    }
}

/// Core values from flat bits, as the core export's types say, into `out`.
pub(crate) fn core_values(bits: &[u64], types: &[Flat], out: &mut Vec<Value>) {
    out.clear();
    out.extend(bits.iter().zip(types).map(|(&b, ty)| match ty {
        Flat::I32 => Value::I32((b as u32).cast_signed()),
        Flat::I64 => Value::I64(b.cast_signed()),
        Flat::F32 => Value::F32(f32::from_bits(b as u32)),
        Flat::F64 => Value::F64(f64::from_bits(b)),
    }));
}

/// Flat bits from core values, into `out`.
pub(crate) fn flat_bits(values: &[Value], out: &mut Vec<u64>) {
    out.clear();
    out.extend(values.iter().map(flat_bits_of));
}

/// The flat bits of one core value.
pub(crate) fn flat_bits_of(value: &Value) -> u64 {
    match *value {
        Value::I32(v) => u64::from(v.cast_unsigned()),
        Value::I64(v) => v.cast_unsigned(),
        Value::F32(v) => u64::from(v.to_bits()),
        Value::F64(v) => v.to_bits(),
        _ => 0,
    }
}

/// Whether bytes for a `string` parameter are known to be UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Utf8 {
    /// To be checked before the call.
    Unchecked,
    /// The caller checked them.
    Checked,
}

/// Where the lowered parameters go: flat (`None`), or stored from a pointer at offsets.
type Stored<'a> = Option<(&'a [u32], u32)>;

impl Guest {
    /// The canonical side, function `name` of its world and its index; or the error for
    /// a module without a world or a world without the function.
    fn lookup(&self, name: &str) -> Result<(&Canonical, usize, &FuncDef), Error> {
        let c = self.canonical(name)?;
        let (index, def) = c
            .world
            .func(name)
            .map_err(|problem| call_error(name, problem))?;
        Ok((c, index, def))
    }

    /// The canonical side, or the error for a module without one.
    fn canonical(&self, export: &str) -> Result<&Canonical, Error> {
        self.canonical.as_ref().ok_or_else(|| self.no_world(export))
    }

    /// The error for a call of `export` on a module without a world.
    fn no_world(&self, export: &str) -> Error {
        call_error(
            export,
            format!(
                "module {} has no WIT world (no `component-type` section, and no --wit given)",
                self.core.module_name()
            ),
        )
    }

    /// The names of the functions of the module's WIT world, in the world's order: `name`,
    /// or `ns:pkg/iface#name` for a function of an exported interface. Empty for a module
    /// without a world.
    pub fn functions(&self) -> Vec<&str> {
        self.canonical
            .as_ref()
            .map(|c| c.world.funcs.iter().map(|f| f.name.as_str()).collect())
            .unwrap_or_default()
    }

    /// The WIT signature of function `name`: `transform: func(s: string) -> string`.
    pub fn signature(&self, name: &str) -> Option<String> {
        let c = self.canonical.as_ref()?;
        let (_, def) = c.world.func(name).ok()?;
        Some(def.signature(c.world.resolve()))
    }

    /// The types of function `name`'s parameters, to parse values of them
    /// ([`Val::from_wave`]).
    ///
    /// # Errors
    /// [`Error::Call`] when there is no such function.
    pub fn param_types(&self, name: &str) -> Result<Vec<ValType>, Error> {
        let ty = self.func_type(name)?;
        Ok(wasm_wave::wasm::WasmFunc::params(&ty)
            .map(ValType)
            .collect())
    }

    /// The type of function `name`'s result, if it has one.
    ///
    /// # Errors
    /// [`Error::Call`] when there is no such function.
    pub fn result_type(&self, name: &str) -> Result<Option<ValType>, Error> {
        let ty = self.func_type(name)?;
        Ok(wasm_wave::wasm::WasmFunc::results(&ty).next().map(ValType))
    }

    /// Function `name`'s type, as WAVE has it.
    fn func_type(&self, name: &str) -> Result<wasm_wave::value::FuncType, Error> {
        let (c, _, def) = self.lookup(name)?;
        wasm_wave::value::resolve_wit_func_type(c.world.resolve(), &def.func)
            .map_err(|e| call_error(name, e.to_string()))
    }

    /// The function `name` of the module's world, its types checked against `P` and `R`.
    ///
    /// ```no_run
    /// # let module = memhost::GuestModule::from_file("guest.wasm", &memhost::Limits::default())?;
    /// let mut guest = module.instantiate()?;
    /// let f = guest.typed::<(&str,), (String,)>("transform")?;
    /// let (out,) = f.call(&mut guest, ("hi",))?;
    /// # Ok::<(), memhost::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Call`] when there is no such function or the types differ.
    pub fn typed<P: ComponentParams, R: ComponentResults>(
        &self,
        name: &str,
    ) -> Result<TypedFunc<P, R>, Error> {
        let (instance, index) = self.checked::<P>(name, |resolve, result| {
            R::typecheck_results(resolve, result)
        })?;
        Ok(TypedFunc {
            instance,
            index,
            name: name.to_string(),
            types: PhantomData,
        })
    }

    /// The function `name` of the module's world, whose result is read in place: its
    /// parameters checked against `P`, its result against `B` (`str`, `[u8]`, or `[T]` for
    /// a [`Number`](crate::Number) `T`).
    ///
    /// ```no_run
    /// # let module = memhost::GuestModule::from_file("guest.wasm", &memhost::Limits::default())?;
    /// let mut guest = module.instantiate()?;
    /// let f = guest.typed_borrowed::<(&str,), str>("transform")?;
    /// let len = f.call(&mut guest, ("hi",), |out: &str| out.len())?;
    /// # Ok::<(), memhost::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Call`] when there is no such function or the types differ.
    pub fn typed_borrowed<P: ComponentParams, B: Borrowed + ?Sized>(
        &self,
        name: &str,
    ) -> Result<BorrowedFunc<P, B>, Error> {
        let (instance, index) = self.checked::<P>(name, |resolve, result| match result {
            Some(ty) => B::typecheck(resolve, ty),
            None => Err("a result for a function that returns none".into()),
        })?;
        Ok(BorrowedFunc {
            instance,
            index,
            name: name.to_string(),
            types: PhantomData,
        })
    }

    /// This instance's id and the index of function `name`, its parameters checked against
    /// `P` and its result by `result`: what a handle holds.
    fn checked<P: ComponentParams>(
        &self,
        name: &str,
        result: impl FnOnce(WitWorld<'_>, Option<WitType>) -> Result<(), String>,
    ) -> Result<(u64, usize), Error> {
        let (c, index, def) = self.lookup(name)?;
        let call_err = |problem| call_error(name, problem);
        let world = WitWorld(c.world.resolve());
        P::typecheck_params(world, WitParams(&def.params)).map_err(call_err)?;
        result(world, def.result_type()).map_err(call_err)?;
        Ok((c.id, index))
    }

    /// The error for a handle (a [`TypedFunc`] or [`BorrowedFunc`]) used on an instance
    /// other than the one it was made on: its types were checked against that instance's
    /// function, and its index means nothing in another.
    fn check_handle(&self, instance: u64, name: &str) -> Result<(), Error> {
        if self.canonical.as_ref().map(|c| c.id) == Some(instance) {
            Ok(())
        } else {
            Err(call_error(
                name,
                "this function was made on another instance (make one with `typed` on each)".into(),
            ))
        }
    }

    /// Calls function `name` of the module's world with `params`; returns its result, if it
    /// has one. The values are checked against the function's types before anything is
    /// lowered; the result is lifted with every check of the spec, then `cabi_post_NAME`
    /// is called.
    ///
    /// # Errors
    /// [`Error::Call`] for no such function or values of the wrong types (nothing is
    /// called); [`Error::Poisoned`] after an earlier trap; [`Error::Trap`] and
    /// [`Error::OutOfFuel`] from the function, `cabi_realloc` or the post-return;
    /// [`Error::Canonical`] for a value that breaks the spec; the errors of a block from
    /// `cabi_realloc` ([`Error::AllocationFailed`], [`Error::Misaligned`],
    /// [`Error::OutOfBounds`]).
    pub fn call(&mut self, name: &str, params: &[Val]) -> Result<Option<Val>, Error> {
        let (c, index, def) = self.lookup(name)?;
        let call_err = |problem| call_error(name, problem);
        if params.len() != def.params.len() {
            return Err(call_err(format!(
                "{} values for `{}`",
                params.len(),
                def.signature(c.world.resolve())
            )));
        }
        for ((pname, ty), val) in def.params.iter().zip(params) {
            val.check(c.world.resolve(), ty)
                .map_err(|e| call_err(format!("parameter `{pname}`: {e}")))?;
        }
        self.enter(
            index,
            |cx, _, types, out, stored| {
                for (i, (val, ty)) in params.iter().zip(types).enumerate() {
                    match stored {
                        Some((offsets, ptr)) => val.store(cx, *ty, ptr + offsets[i])?,
                        None => val.lower_flat(cx, *ty, out)?,
                    }
                }
                Ok(())
            },
            |cx, def, src| {
                let Some(ty) = def.result_type() else {
                    return Ok(None);
                };
                match src {
                    Ok(src) => Val::lift_flat(cx, ty, src).map(Some),
                    Err(ptr) => Val::load(cx, ty, ptr).map(Some),
                }
            },
        )
    }

    /// Calls a function of the module's world written as WAVE, the notation of `wasmtime run
    /// --invoke`: `name(arg, ...)`, for example `join(["a", "b"], "-")` or
    /// `memhost:test/text#upper("x")`. Returns the result as WAVE, or `None` for a function
    /// without one.
    ///
    /// # Errors
    /// [`Error::Call`] when the text is not a call, names no function of the world, or its
    /// values are not WAVE of the parameters' types (nothing is called); else as
    /// [`Guest::call`].
    pub fn invoke(&mut self, call: &str) -> Result<Option<String>, Error> {
        let mut text = Vec::new();
        if !self.invoke_to(call, &mut text)? {
            return Ok(None);
        }
        // The writer writes `str`s only: this is UTF-8, and is kept without a copy.
        String::from_utf8(text)
            .map(Some)
            .map_err(|e| call_error(call, format!("cannot write the result: {e}")))
    }

    /// [`Guest::invoke`], the result written as WAVE to `out` as it is printed, not built
    /// whole first: a value near [`Limits::max_value_bytes`](crate::Limits::max_value_bytes)
    /// takes no more host memory than itself. Returns whether the function has a result.
    ///
    /// # Errors
    /// As [`Guest::invoke`]; [`Error::Output`] when writing to `out` fails.
    pub fn invoke_to(&mut self, call: &str, out: &mut impl std::io::Write) -> Result<bool, Error> {
        let call = call.trim();
        let Some(open) = call.find('(') else {
            return Err(Error::Call {
                export: call.to_string().into(),
                problem: "expected a call, `name(args)`".into(),
            });
        };
        let name = call[..open].trim();
        let ty = self.func_type(name)?;
        let (c, _, def) = self.lookup(name)?;
        let params: Vec<(&str, wasm_wave::value::Type)> = def
            .params
            .iter()
            .map(|(pname, _)| pname.as_str())
            .zip(wasm_wave::wasm::WasmFunc::params(&ty))
            .collect();
        let params =
            crate::canonical::parse_args(&call[open..], &def.signature(c.world.resolve()), &params)
                .map_err(|problem| call_error(name, problem))?;
        let call_err = |problem| call_error(name, problem);
        let Some(result) = self.call(name, &params)? else {
            return Ok(false);
        };
        let mut sink = FmtIo { out, error: None };
        match wasm_wave::writer::Writer::new(&mut sink).write_value(&result) {
            Ok(()) => Ok(true),
            Err(e) => Err(match sink.error.take() {
                Some(source) => Error::Output { source },
                None => call_err(format!("cannot write the result: {e}")),
            }),
        }
    }

    /// Calls the function of a `func(string) -> string` or `func(list<u8>) -> list<u8>`
    /// export `name` with `input`, and hands its result to `sink` straight from guest
    /// memory, before the post-return call frees it: no copy on the host's side.
    ///
    /// # Errors
    /// As [`Guest::call`]; [`Error::Call`] for a function of other types.
    pub fn transform_bytes<T>(
        &mut self,
        name: &str,
        input: &[u8],
        sink: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, Error> {
        self.transform_bytes_as(name, input, Utf8::Unchecked, sink)
    }

    /// [`Guest::transform_bytes`], the input's UTF-8 already checked by the caller when
    /// `utf8` says so (the stream checks each line, to name the one that is not).
    pub(crate) fn transform_bytes_as<T>(
        &mut self,
        name: &str,
        input: &[u8],
        utf8: Utf8,
        sink: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, Error> {
        let (c, index, def) = self.lookup(name)?;
        let call_err = |problem| call_error(name, problem);
        let resolve = c.world.resolve();
        let string = match crate::canonical::bytes_shape(resolve, def) {
            Some(shape) if !shape.batch => shape.text,
            _ => {
                return Err(call_err(format!(
                    "`{}` is not func(string) -> string nor func(list<u8>) -> list<u8>",
                    def.signature(resolve)
                )));
            }
        };
        if string && utf8 == Utf8::Unchecked {
            // Checked here, so that a bad input is refused before any call, not a trap.
            std::str::from_utf8(input).map_err(|e| Error::InputNotUtf8 {
                export: name.to_string().into(),
                valid_up_to: e.valid_up_to(),
            })?;
        }
        self.enter(
            index,
            |cx, _, _, out, _| {
                let len = input.len() as u64;
                let ptr = cx.alloc(len, 1)?;
                cx.write(ptr, input)?;
                out.extend([u64::from(ptr), len]);
                Ok(())
            },
            |cx, _, src| {
                let (ptr, len) = borrowed_pair(cx, name, src)?;
                let bytes = if string {
                    <str as Borrowed>::borrow(cx, ptr, len)?.as_bytes()
                } else {
                    <[u8] as Borrowed>::borrow(cx, ptr, len)?
                };
                Ok(sink(bytes))
            },
        )
    }

    /// Calls the function of a `func(list<string>) -> list<string>` or
    /// `func(list<list<u8>>) -> list<list<u8>>` export `name` with the batch `lines`, and
    /// hands each result, with its index, to `sink` straight from guest memory, before the
    /// post-return call frees them. Lowering is the spec's (a block from `cabi_realloc` for
    /// the list, then one for each line), the list's elements written in one copy; nothing
    /// is allocated on the host for a line or a result. Every result is checked before the
    /// first goes to `sink`.
    ///
    /// # Errors
    /// As [`Guest::call`]; [`Error::Call`] for a function of other types;
    /// [`Error::InputNotUtf8`] for a line that is not UTF-8, for a function of strings
    /// (nothing is called); [`Error::BatchCount`] when the function returns a list of
    /// another length than `lines`; [`Error::Canonical`] with
    /// [`Violation::ResultsTooLarge`] when the results add up to more than the guest's
    /// memory.
    pub fn transform_batch(
        &mut self,
        name: &str,
        lines: &[&[u8]],
        sink: impl FnMut(usize, &[u8]),
    ) -> Result<(), Error> {
        self.transform_batch_as(name, lines, Utf8::Unchecked, sink)
    }

    /// [`Guest::transform_batch`], the lines' UTF-8 already checked by the caller when
    /// `utf8` says so.
    pub(crate) fn transform_batch_as(
        &mut self,
        name: &str,
        lines: &[&[u8]],
        utf8: Utf8,
        mut sink: impl FnMut(usize, &[u8]),
    ) -> Result<(), Error> {
        let (c, index, def) = self.lookup(name)?;
        let resolve = c.world.resolve();
        let string = match crate::canonical::bytes_shape(resolve, def) {
            Some(shape) if shape.batch => shape.text,
            _ => {
                return Err(call_error(
                    name,
                    format!(
                        "`{}` is not func(list<string>) -> list<string> nor \
                         func(list<list<u8>>) -> list<list<u8>>",
                        def.signature(resolve)
                    ),
                ));
            }
        };
        if string && utf8 == Utf8::Unchecked {
            for line in lines {
                std::str::from_utf8(line).map_err(|e| Error::InputNotUtf8 {
                    export: name.to_string().into(),
                    valid_up_to: e.valid_up_to(),
                })?;
            }
        }
        let count = u32::try_from(lines.len()).map_err(|_| Error::TooLong { len: lines.len() })?;
        self.enter(
            index,
            |cx, _, _, out, _| {
                let array = cx.alloc(u64::from(count) * 8, 4)?;
                let mut elements = Vec::with_capacity(lines.len() * 8);
                for line in lines {
                    let ptr = cx.alloc(line.len() as u64, 1)?;
                    cx.write(ptr, line)?;
                    elements.extend_from_slice(&ptr.to_le_bytes());
                    // `alloc` refused a length past u32.
                    elements.extend_from_slice(&(line.len() as u32).to_le_bytes());
                }
                cx.write(array, &elements)?;
                out.extend([u64::from(array), u64::from(count)]);
                Ok(())
            },
            |cx, def, src| {
                let Err(ret) = src else {
                    // Two flat values always come back through a return area.
                    return Err(call_error(&def.name, "no return area".into()));
                };
                let mut pair = [0u8; 8];
                cx.core.read_into(ret, &mut pair)?;
                let [a0, a1, a2, a3, l0, l1, l2, l3] = pair;
                let (array, len) = (
                    u32::from_le_bytes([a0, a1, a2, a3]),
                    u32::from_le_bytes([l0, l1, l2, l3]),
                );
                if len != count {
                    return Err(Error::BatchCount {
                        export: def.name.clone().into(),
                        lines: u64::from(count),
                        results: u64::from(len),
                    });
                }
                cx.check_range("a list", array, u64::from(len) * 8, 4)?;
                let elements = match cx.core.bytes(crate::Region {
                    offset: array,
                    len: len * 8,
                })? {
                    std::borrow::Cow::Borrowed(b) => b,
                    std::borrow::Cow::Owned(_) => {
                        return Err(cx.violation(Violation::SharedMemory));
                    }
                };
                let element = |i: usize| {
                    let e = &elements[i * 8..i * 8 + 8];
                    (
                        u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                        u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
                    )
                };
                // Every result checked before any is handed on, and their sizes bounded
                // by the memory they must each have a block of (a guest that points them
                // all at one place cannot make the host copy its memory many times over).
                let memory_size = cx.core.memory_size();
                let mut total = 0u64;
                for i in 0..lines.len() {
                    let (ptr, len) = element(i);
                    total += u64::from(len);
                    if total > memory_size {
                        return Err(cx.violation(Violation::ResultsTooLarge { total, memory_size }));
                    }
                    if string {
                        cx.str(ptr, len)?;
                    } else {
                        cx.check_range("a list", ptr, u64::from(len), 1)?;
                    }
                }
                for i in 0..lines.len() {
                    let (ptr, len) = element(i);
                    match cx.core.bytes(crate::Region { offset: ptr, len })? {
                        std::borrow::Cow::Borrowed(bytes) => sink(i, bytes),
                        std::borrow::Cow::Owned(_) => {
                            return Err(cx.violation(Violation::SharedMemory));
                        }
                    }
                }
                Ok(())
            },
        )
    }

    /// The one way into a canonical function: checks, lowers (flat or through memory),
    /// calls, lifts (flat or from the return area), post-returns; a failure past the
    /// first guest call poisons the instance.
    fn enter<R>(
        &mut self,
        index: usize,
        lower: impl FnOnce(
            &mut LowerCx<'_>,
            &FuncDef,
            &[WitType],
            &mut Vec<u64>,
            Stored<'_>,
        ) -> Result<(), Error>,
        lift: impl FnOnce(&LiftCx<'_>, &FuncDef, Result<&mut FlatSrc<'_>, u32>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        // Taken out for the call, so that its parts and the core can be borrowed side by
        // side without clones; put back whatever happens.
        // (Every caller looked the function up first: these errors are for a handle's
        // index that means nothing here, which `check_handle` already refuses.)
        let Some(mut taken) = self.canonical.take() else {
            return Err(self.no_world(""));
        };
        let c = &mut taken;
        // One fuel budget for the whole call: the function, every `cabi_realloc` of the
        // lowering, and the post-return.
        let result = self.core.one_budget(|core| {
            let (Some(def), Some((func, post))) = (c.world.funcs.get(index), c.funcs.get(index))
            else {
                return Err(call_error(
                    "",
                    format!("no function {index} in this instance"),
                ));
            };
            if c.poisoned {
                return Err(Error::Poisoned {
                    export: def.name.clone().into(),
                });
            }
            let resolve = c.world.resolve();
            let (flat, out, values) = (&mut c.flat, &mut c.out, &mut c.values);
            flat.clear();
            let types = &def.param_types;
            let mut cx = LowerCx {
                core,
                resolve,
                types: &c.world.types,
                export: &def.name,
            };
            if def.indirect_params() {
                let (size, align) = def.params_layout;
                let ptr = cx.alloc(u64::from(size), align)?;
                lower(&mut cx, def, types, flat, Some((&def.param_offsets, ptr)))?;
                flat.clear();
                flat.push(u64::from(ptr));
            } else {
                lower(&mut cx, def, types, flat, None)?;
            }
            func.call(core, flat, &def.core_params, values, out)?;
            let cx = LiftCx {
                core,
                resolve,
                types: &c.world.types,
                export: &def.name,
                budget: std::cell::Cell::new(c.max_value_bytes),
            };
            let value = if def.retptr() {
                let ptr = out.first().map_or(0, |&b| b as u32);
                let (size, align) = def.result_layout;
                cx.check_range("the return area", ptr, u64::from(size), align)?;
                lift(&cx, def, Err(ptr))
            } else {
                lift(&cx, def, Ok(&mut FlatSrc::new(out)))
            };
            // A limit of this host is no lie of the guest: its result still goes back to
            // the post-return, which frees it, and the instance stays usable.
            if value
                .as_ref()
                .is_err_and(|e| !matches!(e, Error::HostLimit { .. }))
            {
                return value;
            }
            if let Some(post) = post {
                core.forbidding_leave(|core| {
                    post.call(core, out, &def.core_results, values, flat)
                })?;
            }
            value
        });
        // The spec's trap: after a lie, or a trap, the instance is not entered again.
        taken.poisoned |= result
            .as_ref()
            .is_err_and(|e| !matches!(e, Error::HostLimit { .. }));
        self.canonical = Some(taken);
        result
    }
}

/// An `io::Write` as the `fmt::Write` the WAVE writer writes to, keeping the I/O error
/// that `fmt::Error` cannot carry.
struct FmtIo<'w, W> {
    out: &'w mut W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> std::fmt::Write for FmtIo<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.out.write_all(s.as_bytes()).map_err(|e| {
            self.error = Some(e);
            std::fmt::Error
        })
    }
}

/// The error for a call of `export` that cannot be made: `problem`.
fn call_error(export: &str, problem: String) -> Error {
    Error::Call {
        export: export.to_string().into(),
        problem,
    }
}
