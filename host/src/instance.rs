//! The core of a running guest: its store, its memory and the memory's place, the fuel
//! meter, its exports, and what the host knows of the guest's string. Every field is
//! private to this file, and every `unsafe` of the crate is here, so that the rules below
//! are kept in one place.
//!
//! Conventions (the guide's static buffer, the allocation convention, and the next ones)
//! are built on [`Core`]'s interface alone: calls that say their [`Effect`], bounds-checked
//! reads and writes, checked blocks from the guest's allocator ([`Core::alloc`],
//! [`Core::fill`], [`Core::release`]) and one restore-on-failure helper
//! ([`Core::with_restore`]).
//!
//! # Memory and safety
//!
//! wasmer's safe `MemoryView::read`/`write` copy with volatile word moves, because in
//! general guest code may run concurrently. Here it cannot: a [`Core`] owns its store, and
//! guest code runs only inside methods that take `&mut self`. So while `&self` is borrowed
//! nothing can change the memory, and while `&mut self` is borrowed nothing else can see
//! it (the argument of wasmtime's safe `Memory::data`/`data_mut`). It rests on one rule:
//! **no method of `Core` that takes `&self` writes guest memory**, not even through a
//! `MemoryView` (which needs only `&Store`). Nothing outside this file can reach the store,
//! the memory or its place, so nothing outside it can break the rule.
//!
//! A host function runs while the guest is on the stack, with the store wasmer hands it.
//! [`InCall`] is the guest as it sees it then, under the same rule: it borrows that store,
//! lends the memory only while it is borrowed, and runs guest code (`cabi_realloc`, to
//! lower a result) only from a `&mut self` method, after which it takes the memory's
//! place again. [`ReadGuest`] and [`WriteGuest`] are what lifting and lowering need of
//! either.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::ptr::NonNull;

use wasmer::sys::vm::{LinearMemory as _, VMExtern, VMGlobalDefinition, VMMemoryDefinition};
use wasmer::{
    AsStoreMut as _, Extern, Global, GlobalType, Instance, Memory, MemoryView, Mutability,
    RuntimeError, Store, Type, TypedFunction, Value, WasmTypeList,
};

use crate::{Error, Region, metering};

/// What a call into the guest may change, declared once where an export is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// It only answers (the guide ABI's `load` and `capacity`): what the host knows of the
    /// guest's string stays true.
    Query,
    /// It may change the guest's state: what the host knew is forgotten.
    Mutates,
}

/// An export of the guest bound to its type and its [`Effect`]; called only through
/// [`Core::call`], which refuels and maps failures to errors naming it.
#[derive(Clone)]
pub(crate) struct Func<P, R> {
    name: Cow<'static, str>,
    effect: Effect,
    func: TypedFunction<P, R>,
}

impl<P, R> fmt::Debug for Func<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Func")
            .field("name", &self.name)
            .field("effect", &self.effect)
            .finish_non_exhaustive()
    }
}

impl<P, R> Func<P, R> {
    /// The export's name, for errors.
    pub(crate) fn name(&self) -> Cow<'static, str> {
        self.name.clone()
    }
}

/// An export of the guest called with a list of values, whose types are known only at run
/// time (the canonical ABI's functions); called only through [`Core::call_dyn`].
#[derive(Clone)]
pub(crate) struct DynFunc {
    name: Cow<'static, str>,
    func: wasmer::Function,
}

impl fmt::Debug for DynFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynFunc")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The parameter lists of the exports the host calls: each calls a typed function with its
/// values spread as arguments.
pub(crate) trait Params: WasmTypeList + Sized {
    /// Calls `func` with `self`.
    fn invoke<R: WasmTypeList>(
        self,
        func: &TypedFunction<Self, R>,
        store: &mut Store,
    ) -> Result<R, RuntimeError>;
}

impl Params for () {
    fn invoke<R: WasmTypeList>(
        self,
        func: &TypedFunction<(), R>,
        store: &mut Store,
    ) -> Result<R, RuntimeError> {
        func.call(store)
    }
}

impl Params for i32 {
    fn invoke<R: WasmTypeList>(
        self,
        func: &TypedFunction<i32, R>,
        store: &mut Store,
    ) -> Result<R, RuntimeError> {
        func.call(store, self)
    }
}

impl Params for (i32, i32) {
    fn invoke<R: WasmTypeList>(
        self,
        func: &TypedFunction<(i32, i32), R>,
        store: &mut Store,
    ) -> Result<R, RuntimeError> {
        func.call(store, self.0, self.1)
    }
}

impl Params for (i32, i32, i32) {
    fn invoke<R: WasmTypeList>(
        self,
        func: &TypedFunction<(i32, i32, i32), R>,
        store: &mut Store,
    ) -> Result<R, RuntimeError> {
        func.call(store, self.0, self.1, self.2)
    }
}

impl Params for (i32, i32, i32, i32) {
    fn invoke<R: WasmTypeList>(
        self,
        func: &TypedFunction<(i32, i32, i32, i32), R>,
        store: &mut Store,
    ) -> Result<R, RuntimeError> {
        func.call(store, self.0, self.1, self.2, self.3)
    }
}

/// What the host knows of the guest's string without asking, since the last call that may
/// have changed it: where it is (`load`'s answer, or where the host put it) and the
/// buffer's size (`capacity`'s answer, `None` inside when the guest has no `capacity`).
/// [`Core::call`] forgets it after every call with [`Effect::Mutates`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Known {
    pub(crate) region: Option<Region>,
    pub(crate) capacity: Option<Option<u32>>,
}

/// A block from the guest's allocator (`cabi_realloc`), checked: not null, aligned, and
/// within memory. It is the caller's to hand over to the guest (which then owns it) or to
/// give back with [`Core::release`].
#[derive(Debug)]
#[must_use = "a block is handed over to the guest or released"]
pub(crate) struct Block {
    region: Region,
    /// What was asked of `cabi_realloc`, which releasing passes back.
    size: i32,
    align: i32,
}

impl Block {
    /// The block at `ptr` that `cabi_realloc` (`export`) answered for `size` bytes aligned
    /// to `align`, checked: not null (unless `size` is 0), aligned, within a memory of
    /// `memory_size` bytes.
    ///
    /// # Errors
    /// [`Error::AllocationFailed`], [`Error::Misaligned`], [`Error::RangeOverflow`],
    /// [`Error::OutOfBounds`].
    fn checked(
        export: Cow<'static, str>,
        ptr: i32,
        size: i32,
        align: i32,
        memory_size: u64,
    ) -> Result<Block, Error> {
        let len = size.cast_unsigned();
        // A block of no bytes may be anywhere, even at 0 (the canonical ABI asks nothing of
        // it but alignment); a null address for bytes is the allocator saying no.
        if ptr == 0 && len > 0 {
            return Err(Error::AllocationFailed { export, len });
        }
        let offset = ptr.cast_unsigned();
        if !offset.is_multiple_of(align.cast_unsigned().max(1)) {
            return Err(Error::Misaligned {
                export,
                offset,
                align: align.cast_unsigned(),
            });
        }
        let region = Region { offset, len };
        region.range_in(memory_size)?;
        Ok(Block {
            region,
            size,
            align,
        })
    }

    /// Where the block is: its address, and the length asked for.
    pub(crate) fn region(&self) -> Region {
        self.region
    }

    /// Drops a block that the caller's own checks refused, without handing it back: an
    /// allocator that returned it is not to be trusted with it again. Returns where it was.
    pub(crate) fn distrust(self) -> Region {
        self.region
    }
}

/// The metering globals of an instance.
#[derive(Debug)]
struct Meter {
    remaining: Global,
    exhausted: Global,
    /// The budget of each call, in metering points.
    fuel: u64,
    /// Where `remaining` keeps its value, for a refuel that is one store (see
    /// [`Core::refuel`]).
    points: NonNull<VMGlobalDefinition>,
}

/// The core of a running guest. See the module's documentation for the rules it keeps.
pub(crate) struct Core {
    store: Store,
    instance: Instance,
    /// The exported memory; `None` for a module that needs none (a canonical-ABI guest
    /// whose functions take and return only numbers), which then has a memory of size 0.
    memory: Option<Memory>,
    /// Whether `memory` is shared: decides between plain and wasmer's volatile copies.
    shared: bool,
    /// wasmer's record of where the memory is and how long, which growing the memory
    /// updates in place (see [`Core::lendable`]).
    place: Option<NonNull<VMMemoryDefinition>>,
    meter: Option<Meter>,
    /// `cabi_realloc`, when exported with its type.
    realloc: Option<Func<(i32, i32, i32, i32), i32>>,
    /// The module's name, for errors.
    name: String,
    known: Known,
    /// Reused by [`Core::with_restore`] to keep the bytes it overwrites.
    scratch: Vec<u8>,
    /// Whether a budget is being shared by several calls ([`Core::one_budget`]): they do
    /// not refuel.
    sharing: bool,
    /// Whether the guest may call out now, shared with its host functions.
    leave: Leave,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("name", &self.name)
            .field("shared", &self.shared)
            .field("fuel", &self.meter.as_ref().map(|m| m.fuel))
            .field("known", &self.known)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// The core of `instance`, which lives in `store`: its memory exported as `memory` (when
    /// the module has one), its metering globals when `fuel` is set, and `cabi_realloc` when
    /// `realloc` says admission found it.
    ///
    /// # Errors
    /// [`Error::Abi`] when an export is missing or of the wrong type (admission checks them,
    /// so this means a module that changed between the check and instantiation).
    pub(crate) fn new(
        mut store: Store,
        instance: Instance,
        name: String,
        memory: Option<&str>,
        fuel: Option<u64>,
        realloc: bool,
        leave: Leave,
    ) -> Result<Core, Error> {
        let abi_mismatch = |e: wasmer::ExportError| Error::Abi {
            module: name.clone(),
            problems: vec![e.to_string()],
        };
        let memory = match memory {
            Some(name) => Some(
                instance
                    .exports
                    .get_memory(name)
                    .map_err(abi_mismatch)?
                    .clone(),
            ),
            None => None,
        };
        let meter = match fuel {
            Some(fuel) => Some(meter(&instance, &mut store, fuel).map_err(abi_mismatch)?),
            None => None,
        };
        let place = memory.as_ref().map(|memory| place(memory, &mut store));
        let shared = memory
            .as_ref()
            .is_some_and(|memory| memory.ty(&store).shared);
        let mut core = Core {
            store,
            instance,
            memory,
            shared,
            place,
            meter,
            realloc: None,
            name,
            known: Known::default(),
            scratch: Vec::new(),
            sharing: false,
            leave,
        };
        if realloc {
            core.realloc = Some(core.func(abi::CABI_REALLOC.name, Effect::Mutates)?);
        }
        Ok(core)
    }

    /// The export `name`, bound to its type and `effect`.
    ///
    /// # Errors
    /// [`Error::Abi`] when it is missing or not a function of that type.
    pub(crate) fn func<P: WasmTypeList, R: WasmTypeList>(
        &self,
        name: impl Into<Cow<'static, str>>,
        effect: Effect,
    ) -> Result<Func<P, R>, Error> {
        let name = name.into();
        let func = self
            .instance
            .exports
            .get_typed_function(&self.store, &name)
            .map_err(|e| Error::Abi {
                module: self.name.clone(),
                problems: vec![e.to_string()],
            })?;
        Ok(Func { name, effect, func })
    }

    /// The export `name` as a function of any type, called with [`Core::call_dyn`] (which
    /// always counts as [`Effect::Mutates`]).
    ///
    /// # Errors
    /// [`Error::Abi`] when it is missing or not a function.
    pub(crate) fn dyn_func(&self, name: impl Into<Cow<'static, str>>) -> Result<DynFunc, Error> {
        let name = name.into();
        let func = self
            .instance
            .exports
            .get_function(&name)
            .map_err(|e| Error::Abi {
                module: self.name.clone(),
                problems: vec![e.to_string()],
            })?
            .clone();
        Ok(DynFunc { name, func })
    }

    /// Calls `func` with `params` (of the types admission checked), as [`Core::call`] does.
    ///
    /// # Errors
    /// [`Error::OutOfFuel`] or [`Error::Trap`], naming the export.
    pub(crate) fn call_dyn(
        &mut self,
        func: &DynFunc,
        params: &[Value],
    ) -> Result<Box<[Value]>, Error> {
        if !self.sharing {
            self.refuel();
        }
        let result = func.func.call(&mut self.store, params);
        self.known = Known::default();
        result.map_err(|e| self.fault(func.name.clone(), &e))
    }

    /// [`Core::func`] when `present` (admission found the export with its type), else
    /// `None`.
    ///
    /// # Errors
    /// As [`Core::func`].
    pub(crate) fn func_if<P: WasmTypeList, R: WasmTypeList>(
        &self,
        present: bool,
        name: &'static str,
        effect: Effect,
    ) -> Result<Option<Func<P, R>>, Error> {
        present.then(|| self.func(name, effect)).transpose()
    }

    /// The module's name, for errors.
    pub(crate) fn module_name(&self) -> &str {
        &self.name
    }

    /// The error for an export this module lacks.
    pub(crate) fn missing(&self, export: impl Into<Cow<'static, str>>) -> Error {
        Error::MissingExport {
            module: self.name.clone(),
            export: export.into(),
        }
    }

    /// Calls guest code: refuels, calls `func` with `params`, then forgets what the host
    /// knew of the guest's string unless `func` is a [`Effect::Query`].
    ///
    /// # Errors
    /// [`Error::OutOfFuel`] or [`Error::Trap`], naming the export.
    pub(crate) fn call<P: Params, R: WasmTypeList>(
        &mut self,
        func: &Func<P, R>,
        params: P,
    ) -> Result<R, Error> {
        if !self.sharing {
            self.refuel();
        }
        let result = params.invoke(&func.func, &mut self.store);
        if func.effect == Effect::Mutates {
            self.known = Known::default();
        }
        result.map_err(|e| self.fault(func.name(), &e))
    }

    /// Runs `f`, whose calls into the guest may not call out of the instance (into the
    /// functions of its world's imports): `cabi_realloc` lowering a value, a post-return.
    pub(crate) fn forbidding_leave<T>(&mut self, f: impl FnOnce(&mut Core) -> T) -> T {
        let leave = self.leave.clone();
        leave.forbid(|| f(self))
    }

    /// Runs `f`, whose calls into the guest share one budget: a canonical call is the
    /// function, every `cabi_realloc` that lowering makes and the post-return, and a guest
    /// that spins in each of them gets one budget for all, not one each.
    pub(crate) fn one_budget<T>(&mut self, f: impl FnOnce(&mut Core) -> T) -> T {
        self.refuel();
        let sharing = std::mem::replace(&mut self.sharing, true);
        let result = f(self);
        self.sharing = sharing;
        result
    }

    /// Gives the next call into the guest its whole budget: one store into the metering
    /// middleware's points global. (`metering::set_remaining_points` looks both of its
    /// globals up by name on every call, which costs more than a short call itself;
    /// `Global::set` looks the global up in the store and checks its type every time.)
    fn refuel(&mut self) {
        if let Some(meter) = &mut self.meter {
            // SAFETY: `points` is where this store's `remaining` global keeps its value: in
            // its instance's context, which the store owns and does not move, and `self`
            // owns the store, so it is live. The global is a mutable i64 (asserted in
            // `meter`), so an `i64` is what wasm and wasmer read there. `&mut self` is held
            // and no guest code is running (calls into the guest are made only from
            // `&mut self` methods, one at a time, on this thread), so nothing else reads or
            // writes it now.
            unsafe { (*meter.points.as_ptr()).val.i64 = meter.fuel.cast_signed() };
        }
    }

    /// The error for a failed call of `export`: out of fuel when the metering points say so
    /// (metering stops a call with a plain `unreachable`), a trap otherwise.
    fn fault(&mut self, export: Cow<'static, str>, e: &RuntimeError) -> Error {
        if let Some(meter) = &self.meter
            && meter.exhausted.get(&mut self.store).i32() != Some(0)
        {
            // Clear the flag, so that the next call, with fresh points, is judged afresh; and
            // leave no points, so that `fuel_used` reports the whole budget spent.
            let _ = meter.exhausted.set(&mut self.store, Value::I32(0));
            let _ = meter.remaining.set(&mut self.store, Value::I64(0));
            return Error::OutOfFuel {
                export,
                fuel: meter.fuel,
            };
        }
        match e.downcast_ref::<crate::imports::Stop>() {
            Some(crate::imports::Stop::Exit(code)) => {
                return Error::Exit {
                    export,
                    code: *code,
                };
            }
            Some(crate::imports::Stop::Host { import, why }) => {
                return Error::HostFunction {
                    export,
                    import: import.clone(),
                    why: why.clone(),
                };
            }
            Some(crate::imports::Stop::OutOfFuel) | None => {}
        }
        Error::Trap {
            export,
            trap: e.message(),
        }
    }

    /// The fuel the last call into the guest used; `None` when the module is not metered.
    /// After a call that ran out, the whole budget.
    pub(crate) fn fuel_used(&mut self) -> Option<u64> {
        let meter = self.meter.as_ref()?;
        let remaining = meter.remaining.get(&mut self.store).i64()?.cast_unsigned();
        Some(meter.fuel.saturating_sub(remaining))
    }

    /// What the host knows of the guest's string.
    pub(crate) fn known(&self) -> Known {
        self.known
    }

    /// Records what a convention has learnt of the guest's string, true until the next call
    /// with [`Effect::Mutates`].
    pub(crate) fn remember(&mut self, known: Known) {
        self.known = known;
    }

    /// The memory's size in 64 KiB pages.
    pub(crate) fn memory_pages(&self) -> u32 {
        self.memory
            .as_ref()
            .map_or(0, |memory| memory.view(&self.store).size().0)
    }

    /// The memory's size in bytes.
    #[inline]
    pub(crate) fn memory_size(&self) -> u64 {
        match self.lendable() {
            Some((_, len)) => len as u64,
            None => self
                .memory
                .as_ref()
                .map_or(0, |memory| memory.view(&self.store).data_size()),
        }
    }

    /// Whether the memory is shared; reads and writes then go through wasmer's copying
    /// accessors, and [`Core::bytes`] copies.
    pub(crate) fn memory_is_shared(&self) -> bool {
        self.shared
    }

    /// Where the memory is and how long, when it may be lent out as a slice; `None` when it
    /// must go through wasmer's copying accessors instead, for either of two reasons: it is
    /// shared (another thread may write it at any time), or its size does not fit
    /// `isize::MAX`, the most `slice::from_raw_parts` allows (a 4 GiB memory on a 32-bit
    /// host).
    ///
    /// Read from wasmer's own record of the memory's place, which is what `Memory::view`
    /// reads after looking the memory up in the store; this skips the lookup.
    #[inline]
    fn lendable(&self) -> Option<(*mut u8, usize)> {
        if self.shared {
            return None;
        }
        let (place, memory) = (self.place?, self.memory.as_ref()?);
        // SAFETY: `place` points to the memory's definition in this store (see `place`),
        // which lives as long as the store, which `self` owns. Only growing the memory
        // writes it, and growing runs only in guest code (this crate never calls
        // `Memory::grow`; the `Memory` is private to this file), which runs only inside
        // `&mut self` methods: not now, while `&self` is held. The memory is not shared, so
        // no other thread can grow it.
        let place = unsafe { place.as_ptr().read() };
        debug_assert_eq!(
            (place.base, place.current_length as u64),
            {
                let view = memory.view(&self.store);
                (view.data_ptr(), view.data_size())
            },
            "the memory's place is not what wasmer says"
        );
        let len = isize::try_from(place.current_length).ok()?.cast_unsigned();
        Some((place.base, len))
    }

    /// The whole of linear memory as a byte slice, borrowed for as long as `self` is; `None`
    /// as [`Core::lendable`] says.
    #[inline]
    fn memory_slice(&self) -> Option<&[u8]> {
        let (ptr, len) = self.lendable()?;
        if len == 0 {
            return Some(&[]);
        }
        // SAFETY: `ptr..ptr + len` is the memory's live allocation, and `len <= isize::MAX`.
        // While the returned slice lives, `self` is borrowed, and nothing can write to the
        // memory or move it, by the rule this file keeps: **no method that takes `&self`
        // writes guest memory**, not even through a `MemoryView` (which needs only
        // `&Store`, so the borrow checker would allow it). Besides:
        // - guest code runs only inside `Core` methods that take `&mut self` (the store is
        //   private to this file, and the module imports nothing that could call back);
        // - growing the memory, the only thing that moves it, needs the store mutably, so
        //   also `&mut self`;
        // - the memory is not shared, so no other instance or thread can reach it.
        // This is the argument of wasmtime's safe `Memory::data`.
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    /// As [`Core::memory_slice`], mutably, for as long as `self` is borrowed mutably.
    #[inline]
    fn memory_slice_mut(&mut self) -> Option<&mut [u8]> {
        let (ptr, len) = self.lendable()?;
        if len == 0 {
            return Some(&mut []);
        }
        // SAFETY: as in `memory_slice`, and the `&mut self` borrow makes this slice the
        // only way to the memory until it is dropped.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
    }

    /// The bytes of `region`, borrowed from guest memory without a copy while `self` is
    /// borrowed (so no guest code can run and change them); copied out when the memory is
    /// shared.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`]; nothing is allocated before the
    /// range is known to lie within memory.
    #[inline]
    pub(crate) fn bytes(&self, region: Region) -> Result<Cow<'_, [u8]>, Error> {
        if let Some(memory) = self.memory_slice()
            && let Some(range) = region.fits(memory.len())
        {
            return Ok(Cow::Borrowed(&memory[range]));
        }
        self.bytes_slow(region)
    }

    /// [`Core::bytes`] when the range does not fit or the memory is not lent: the error
    /// (before anything is allocated), or a copy. Out of line, so that the common case stays
    /// a few instructions.
    #[cold]
    #[inline(never)]
    fn bytes_slow(&self, region: Region) -> Result<Cow<'_, [u8]>, Error> {
        let mut bytes = vec![0; region.range_in(self.memory_size())?.len()];
        self.read_into_slow(region.offset, &mut bytes)?;
        Ok(Cow::Owned(bytes))
    }

    /// The string at `region`: borrowed without a copy as [`Core::bytes`] is, and UTF-8
    /// validated (after the copy, for shared memory).
    ///
    /// # Errors
    /// As [`Core::bytes`], and [`Error::InvalidUtf8`].
    pub(crate) fn str(&self, region: Region) -> Result<Cow<'_, str>, Error> {
        match self.bytes(region)? {
            Cow::Borrowed(b) => std::str::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|e| utf8_error(region, e)),
            Cow::Owned(b) => String::from_utf8(b)
                .map(Cow::Owned)
                .map_err(|e| utf8_error(region, e.utf8_error())),
        }
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`, all or nothing.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`].
    #[inline]
    pub(crate) fn read_into(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        if let Some(memory) = self.memory_slice()
            && let Some(range) = Region::fitting(offset, buf.len(), memory.len())
        {
            buf.copy_from_slice(&memory[range]);
            return Ok(());
        }
        self.read_into_slow(offset, buf)
    }

    /// [`Core::read_into`] when the range does not fit or the memory is not lent.
    #[cold]
    #[inline(never)]
    fn read_into_slow(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        let region = Region::spanning(offset, buf.len())?;
        let Some((view, start)) = self.view_at(region)? else {
            return Ok(());
        };
        view.read(start, buf)
            .map_err(|_| region.out_of_bounds(view.data_size()))
    }

    /// A view of the memory and where `region` starts in it, once the range is known to lie
    /// within it: the way through wasmer's copying accessors when the memory is not lent,
    /// and the error when a range does not fit; `None` for an empty range of a module
    /// without memory (nothing to move). (The view reads; a write through it is made only
    /// by a `&mut self` method.)
    fn view_at(&self, region: Region) -> Result<Option<(MemoryView<'_>, u64)>, Error> {
        let Some(memory) = &self.memory else {
            region.range_in(0)?;
            return Ok(None);
        };
        let view = memory.view(&self.store);
        let start = region.range_in(view.data_size())?.start as u64;
        Ok(Some((view, start)))
    }

    /// Writes `bytes` at `offset`, all or nothing: the range is checked against the memory
    /// before any byte moves.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`].
    #[inline]
    pub(crate) fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        if let Some(memory) = self.memory_slice_mut()
            && let Some(range) = Region::fitting(offset, bytes.len(), memory.len())
        {
            memory[range].copy_from_slice(bytes);
            return Ok(());
        }
        self.write_slow(offset, bytes)
    }

    /// [`Core::write`] when the range does not fit or the memory is not lent.
    #[cold]
    #[inline(never)]
    fn write_slow(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        let region = Region::spanning(offset, bytes.len())?;
        let Some((view, start)) = self.view_at(region)? else {
            return Ok(());
        };
        view.write(start, bytes)
            .map_err(|_| region.out_of_bounds(view.data_size()))
    }

    /// Lets `fill` write `region` (checked to lie within memory), in place when the memory
    /// is not shared; through a host buffer that is then copied in when it is.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`]; [`Error::Fill`] when `fill` fails.
    pub(crate) fn fill(
        &mut self,
        region: Region,
        fill: impl FnOnce(&mut [u8]) -> io::Result<()>,
    ) -> Result<(), Error> {
        if let Some(memory) = self.memory_slice_mut() {
            let range = region.range_in(memory.len() as u64)?;
            return fill(&mut memory[range]).map_err(|source| Error::Fill { source });
        }
        let mut buf = vec![0; region.range_in(self.memory_size())?.len()];
        fill(&mut buf).map_err(|source| Error::Fill { source })?;
        self.write(region.offset, &buf)
    }

    /// Runs `f`, and when it fails, puts the bytes of `region` back as they were before it
    /// ran (what the guest's own code changed elsewhere stays changed). The one
    /// restore-on-failure step of every convention that writes in place.
    ///
    /// # Errors
    /// As [`Core::bytes`] for `region`, before `f` runs; else `f`'s error.
    pub(crate) fn with_restore<T>(
        &mut self,
        region: Region,
        f: impl FnOnce(&mut Core) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // The buffer is reused from call to call.
        let mut old = std::mem::take(&mut self.scratch);
        old.clear();
        match self.bytes(region) {
            Ok(bytes) => old.extend_from_slice(&bytes),
            Err(e) => {
                self.scratch = old;
                return Err(e);
            }
        }
        let result = f(self);
        if result.is_err() {
            // The region was within memory, and memory never shrinks: this cannot fail.
            let _ = self.write(region.offset, &old);
        }
        self.scratch = old;
        result
    }

    /// Whether the guest exports `cabi_realloc` (with its type).
    pub(crate) fn has_allocator(&self) -> bool {
        self.realloc.is_some()
    }

    /// A block of `len` bytes aligned to `align` from the guest's `cabi_realloc(0, 0, align,
    /// len)`, checked: not null (unless `len` is 0), aligned, within memory. A block that fails the checks is
    /// not handed back (its address is not to be trusted); one that passed is the caller's.
    ///
    /// # Errors
    /// [`Error::MissingExport`] without `cabi_realloc`; [`Error::Trap`],
    /// [`Error::OutOfFuel`]; [`Error::AllocationFailed`] for a null address;
    /// [`Error::Misaligned`]; [`Error::RangeOverflow`], [`Error::OutOfBounds`].
    pub(crate) fn alloc(&mut self, len: u32, align: u32) -> Result<Block, Error> {
        let Some(realloc) = self.realloc.clone() else {
            return Err(self.missing(abi::CABI_REALLOC.name));
        };
        let (Ok(size), Ok(align)) = (i32::try_from(len), i32::try_from(align)) else {
            return Err(Error::TooLong { len: len as usize });
        };
        let ptr = self.forbidding_leave(|core| core.call(&realloc, (0, 0, align, size)))?;
        Block::checked(realloc.name(), ptr, size, align, self.memory_size())
    }

    /// Gives `block` back to the guest's allocator (`cabi_realloc(ptr, size, align, 0)`),
    /// best effort: a failure here is not the error to report, the one that made the caller
    /// release is.
    pub(crate) fn release(&mut self, block: Block) {
        if let Some(realloc) = self.realloc.clone() {
            let ptr = block.region.offset.cast_signed();
            let _ = self.call(&realloc, (ptr, block.size, block.align, 0));
        }
    }
}

/// wasmer's record of where `memory` is and how long (`base`, `current_length`): it does not
/// move (it is in the instance's context, or boxed on its own), and growing the memory
/// updates it in place. Reading it is what `Memory::view` does after finding the memory in
/// the store.
fn place(memory: &Memory, store: &mut Store) -> NonNull<VMMemoryDefinition> {
    let VMExtern::Memory(handle) = Extern::Memory(memory.clone()).to_vm_extern().unwrap_sys()
    else {
        unreachable!("a memory's extern is a memory");
    };
    handle.get(store.objects_mut().as_sys_mut()).vmmemory()
}

/// The metering globals of `instance`, in `store`.
///
/// # Panics
/// When the points global is not a mutable `i64` (the middleware makes it one).
fn meter(instance: &Instance, store: &mut Store, fuel: u64) -> Result<Meter, wasmer::ExportError> {
    let remaining = instance.exports.get_global(metering::REMAINING)?.clone();
    assert_eq!(
        remaining.ty(store),
        GlobalType::new(Type::I64, Mutability::Var),
        "the metering points are a mutable i64"
    );
    // `Global::set` finds the global in the store, checks the store's id, the global's
    // mutability and the value's type, on every call: most of what a refuel costs. The
    // global's storage does not move (it is in the instance's context, or boxed on its own),
    // so its address is taken once.
    let VMExtern::Global(handle) = Extern::Global(remaining.clone())
        .to_vm_extern()
        .unwrap_sys()
    else {
        unreachable!("a global's extern is a global");
    };
    let points = handle.get_mut(store.objects_mut().as_sys_mut()).vmglobal();
    Ok(Meter {
        remaining,
        exhausted: instance.exports.get_global(metering::EXHAUSTED)?.clone(),
        fuel,
        points,
    })
}

/// Guest memory as lifting reads it: through a [`Core`] between calls, or through
/// [`InCall`] inside a host function while the guest is on the stack. Implemented only in
/// this file, by both, on the rule of its documentation.
pub(crate) trait ReadGuest {
    /// As [`Core::bytes`].
    fn bytes(&self, region: Region) -> Result<Cow<'_, [u8]>, Error>;
    /// As [`Core::read_into`].
    fn read_into(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error>;
    /// As [`Core::memory_size`].
    fn memory_size(&self) -> u64;
    /// As [`Core::memory_is_shared`].
    fn memory_is_shared(&self) -> bool;
}

/// Guest memory as lowering writes it, with blocks from the guest's `cabi_realloc`.
pub(crate) trait WriteGuest: ReadGuest {
    /// As [`Core::write`].
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error>;
    /// As [`Core::alloc`].
    fn alloc(&mut self, len: u32, align: u32) -> Result<Block, Error>;
}

impl ReadGuest for Core {
    #[inline]
    fn bytes(&self, region: Region) -> Result<Cow<'_, [u8]>, Error> {
        Core::bytes(self, region)
    }
    #[inline]
    fn read_into(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        Core::read_into(self, offset, buf)
    }
    #[inline]
    fn memory_size(&self) -> u64 {
        Core::memory_size(self)
    }
    fn memory_is_shared(&self) -> bool {
        self.shared
    }
}

impl WriteGuest for Core {
    #[inline]
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        Core::write(self, offset, bytes)
    }
    fn alloc(&mut self, len: u32, align: u32) -> Result<Block, Error> {
        Core::alloc(self, len, align)
    }
}

/// Whether the guest may call out of its instance now: not while the host has it in
/// `cabi_realloc` to lower a value, or in a post-return function (the canonical ABI's
/// `may_leave`, which wasmtime keeps too). Shared by an instance's [`Core`] and its host
/// functions, which refuse a call made then.
#[derive(Clone, Debug)]
pub(crate) struct Leave(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Default for Leave {
    fn default() -> Self {
        Leave(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            true,
        )))
    }
}

impl Leave {
    /// Runs `f` with leaving forbidden, then puts back what was.
    pub(crate) fn forbid<T>(&self, f: impl FnOnce() -> T) -> T {
        use std::sync::atomic::Ordering::Relaxed;
        let was = self.0.swap(false, Relaxed);
        let result = f();
        self.0.store(was, Relaxed);
        result
    }

    /// Whether the guest may leave its instance now.
    pub(crate) fn allowed(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What a host function keeps of its instance to reach the guest while the guest is on
/// the stack: the memory and `cabi_realloc` (cheap handles into the store), set once the
/// instance exists.
#[derive(Clone, Default)]
pub(crate) struct Reach {
    memory: Option<Memory>,
    shared: bool,
    realloc: Option<TypedFunction<(i32, i32, i32, i32), i32>>,
    leave: Leave,
}

impl Reach {
    /// What `instance` exports of it: `memory` (else the guide's `mem`), `cabi_realloc`
    /// when it has the type the canonical ABI gives it.
    pub(crate) fn of(instance: &Instance, store: &impl wasmer::AsStoreRef, leave: Leave) -> Reach {
        let memory = ["memory", abi::MEMORY.name]
            .iter()
            .find_map(|name| instance.exports.get_memory(name).ok().cloned());
        let shared = memory.as_ref().is_some_and(|m| m.ty(store).shared);
        let realloc = instance
            .exports
            .get_typed_function(store, abi::CABI_REALLOC.name)
            .ok();
        Reach {
            memory,
            shared,
            realloc,
            leave,
        }
    }

    /// The guest's memory, if it exports one.
    pub(crate) fn memory(&self) -> Option<&Memory> {
        self.memory.as_ref()
    }

    /// Whether the guest may call out of its instance now.
    pub(crate) fn may_leave(&self) -> bool {
        self.leave.allowed()
    }
}

/// The guest as a host function reaches it, while the guest is on the stack: the store the
/// host function was given, borrowed for as long as this lives. The rule of this file
/// holds here as in [`Core`]: guest code runs only in [`InCall::alloc`], which takes
/// `&mut self`; no `&self` method writes memory.
pub(crate) struct InCall<'s> {
    store: wasmer::StoreMut<'s>,
    reach: &'s Reach,
    /// The import being served, for errors.
    import: &'s str,
    /// Where the memory is and how long, when it may be lent out (not shared): taken when
    /// this is made and again after each call into the guest, the only thing that can
    /// grow (and so move) it while this lives.
    lent: Option<(*mut u8, usize)>,
}

impl<'s> InCall<'s> {
    pub(crate) fn new(store: wasmer::StoreMut<'s>, reach: &'s Reach, import: &'s str) -> Self {
        let mut call = InCall {
            store,
            reach,
            import,
            lent: None,
        };
        call.lent = call.lendable();
        call
    }

    /// Where the memory is and how long, when it may be lent: not shared, and no longer
    /// than a slice may be.
    fn lendable(&self) -> Option<(*mut u8, usize)> {
        if self.reach.shared {
            return None;
        }
        let view = self.reach.memory.as_ref()?.view(&self.store);
        let len = usize::try_from(view.data_size()).ok()?;
        isize::try_from(len).ok()?;
        Some((view.data_ptr(), len))
    }

    /// The store, for the host function's own use (fuel).
    pub(crate) fn store_mut(&mut self) -> &mut wasmer::StoreMut<'s> {
        &mut self.store
    }

    /// The whole memory as a slice, borrowed while `self` is; `None` when it is shared, or
    /// there is none.
    fn memory_slice(&self) -> Option<&[u8]> {
        let (ptr, len) = self.lent?;
        if len == 0 {
            return Some(&[]);
        }
        // SAFETY: `ptr..ptr + len` is the memory's live allocation, as wasmer's view of it
        // said when `lent` was taken: since then no guest code ran (`alloc`, the one way
        // into the guest here, takes it again after), and nothing else can grow the memory
        // (this file never calls `Memory::grow`; the store is borrowed by `self`). While the
        // slice lives, `self` is borrowed, and with it the store this host function was
        // given: no guest code can run (it needs the store mutably), so nothing can write
        // the memory or grow it; and the memory is not shared, so no other thread can.
        // `len <= isize::MAX` (checked in `lendable`).
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    fn memory_slice_mut(&mut self) -> Option<&mut [u8]> {
        let (ptr, len) = {
            let slice = self.memory_slice()?;
            (slice.as_ptr().cast_mut(), slice.len())
        };
        if len == 0 {
            return Some(&mut []);
        }
        // SAFETY: as in `memory_slice`, and the `&mut self` borrow makes this slice the only
        // way to the memory until it is dropped.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
    }

    fn view_read(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        let region = Region::spanning(offset, buf.len())?;
        let Some(memory) = &self.reach.memory else {
            region.range_in(0)?;
            return Ok(());
        };
        let view = memory.view(&self.store);
        let start = region.range_in(view.data_size())?.start as u64;
        view.read(start, buf)
            .map_err(|_| region.out_of_bounds(view.data_size()))
    }
}

impl ReadGuest for InCall<'_> {
    fn bytes(&self, region: Region) -> Result<Cow<'_, [u8]>, Error> {
        if let Some(memory) = self.memory_slice() {
            return Ok(Cow::Borrowed(
                &memory[region.range_in(memory.len() as u64)?],
            ));
        }
        let mut bytes = vec![0; region.range_in(self.memory_size())?.len()];
        self.view_read(region.offset, &mut bytes)?;
        Ok(Cow::Owned(bytes))
    }

    fn read_into(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        if let Some(memory) = self.memory_slice() {
            let region = Region::spanning(offset, buf.len())?;
            buf.copy_from_slice(&memory[region.range_in(memory.len() as u64)?]);
            return Ok(());
        }
        self.view_read(offset, buf)
    }

    fn memory_size(&self) -> u64 {
        match self.lent {
            Some((_, len)) => len as u64,
            None => self
                .reach
                .memory
                .as_ref()
                .map_or(0, |memory| memory.view(&self.store).data_size()),
        }
    }

    fn memory_is_shared(&self) -> bool {
        self.reach.shared
    }
}

impl WriteGuest for InCall<'_> {
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        let region = Region::spanning(offset, bytes.len())?;
        if let Some(memory) = self.memory_slice_mut() {
            let range = region.range_in(memory.len() as u64)?;
            memory[range].copy_from_slice(bytes);
            return Ok(());
        }
        let Some(memory) = &self.reach.memory else {
            region.range_in(0)?;
            return Ok(());
        };
        let view = memory.view(&self.store);
        let start = region.range_in(view.data_size())?.start as u64;
        view.write(start, bytes)
            .map_err(|_| region.out_of_bounds(view.data_size()))
    }

    /// As [`Core::alloc`], re-entering the guest's `cabi_realloc` while the guest is on the
    /// stack, on what is left of the call's fuel. A trap or running out of fuel there is
    /// the error of the host function, and so of the call.
    fn alloc(&mut self, len: u32, align: u32) -> Result<Block, Error> {
        let name: Cow<'static, str> = abi::CABI_REALLOC.name.into();
        let Some(realloc) = self.reach.realloc.clone() else {
            return Err(Error::MissingExport {
                module: self.import.to_string(),
                export: name,
            });
        };
        let (Ok(size), Ok(align)) = (i32::try_from(len), i32::try_from(align)) else {
            return Err(Error::TooLong { len: len as usize });
        };
        let leave = self.reach.leave.clone();
        let called = leave.forbid(|| realloc.call(&mut self.store, 0, 0, align, size));
        // Guest code ran: the memory may have grown, and moved.
        self.lent = self.lendable();
        let ptr = called.map_err(|e| Error::Trap {
            export: name.clone(),
            trap: e.message(),
        })?;
        Block::checked(name, ptr, size, align, self.memory_size())
    }
}

fn utf8_error(region: Region, source: std::str::Utf8Error) -> Error {
    Error::InvalidUtf8 {
        offset: region.offset,
        len: region.len,
        // At most `len`, which is a u32.
        valid_up_to: u32::try_from(source.valid_up_to()).unwrap_or(u32::MAX),
        source,
    }
}

#[cfg(test)]
mod tests {
    use crate::{GuestModule, Limits};

    fn core(memory: &str) -> super::Core {
        let wat = format!(
            r#"(module {memory} (func (export "load") (result i32 i32) i32.const 0 i32.const 0))"#
        );
        GuestModule::from_bytes(&wat::parse_str(wat).unwrap(), &Limits::default())
            .unwrap()
            .instantiate()
            .unwrap()
            .into_core()
    }

    /// The README promises that a shared memory is reached only through wasmer's copying
    /// accessors: no slice of it is ever made, either way.
    #[test]
    fn a_shared_memory_is_never_a_slice() {
        let mut shared = core(r#"(memory (export "mem") 1 1 shared)"#);
        assert!(shared.memory_is_shared());
        assert!(shared.memory_slice().is_none());
        assert!(shared.memory_slice_mut().is_none());
        let mut plain = core(r#"(memory (export "mem") 1)"#);
        assert_eq!(plain.memory_slice().map(<[u8]>::len), Some(65536));
        assert_eq!(plain.memory_slice_mut().map(|m| m.len()), Some(65536));
    }
}
