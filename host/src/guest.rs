//! A running guest: its store and exports, and the calls into it.

use std::ptr::NonNull;

use wasmer::sys::vm::{LinearMemory as _, VMExtern, VMGlobalDefinition, VMMemoryDefinition};
use wasmer::{
    AsStoreMut as _, Extern, Global, GlobalType, Instance, Memory, Mutability, RuntimeError, Store,
    Type, TypedFunction, Value,
};

use crate::{Error, Extras, Region, metering};

/// A running guest: its store, memory and exports.
///
/// Methods that call guest code take `&mut self`; reads of memory take `&self`.
///
/// A `Guest` stays on the thread that made it: wasmer 7's `Store` is not `Send` (its
/// `on_called` handler lost its `Send` bound in 7.0, wasmerio/wasmer#7001), and this crate
/// does not claim otherwise with an `unsafe impl`. To use every core, share the
/// [`GuestModule`](crate::GuestModule) (`Send + Sync`) and instantiate on each thread, as
/// [`GuestModule::transform_lines`](crate::GuestModule::transform_lines) does. The day
/// wasmer's store is `Send` again, this example stops failing to compile and says so:
///
/// ```compile_fail
/// fn send<T: Send>() {}
/// send::<host::Guest>();
/// ```
#[derive(Debug)]
pub struct Guest {
    pub(crate) store: Store,
    /// The metering globals, when the module is metered.
    pub(crate) meter: Option<Meter>,
    pub(crate) memory: Memory,
    /// Whether `memory` is shared: decides between plain and wasmer's volatile copies.
    pub(crate) shared: bool,
    pub(crate) load: TypedFunction<(), (i32, i32)>,
    pub(crate) capacity: Option<TypedFunction<(), i32>>,
    pub(crate) set_len: Option<TypedFunction<i32, i32>>,
    pub(crate) transform: Option<TypedFunction<(), i32>>,
    pub(crate) realloc: Option<TypedFunction<(i32, i32, i32, i32), i32>>,
    pub(crate) adopt: Option<TypedFunction<(i32, i32), i32>>,
    pub(crate) name: String,
    /// Reused by `replace_string` to keep the bytes it overwrites.
    pub(crate) scratch: Vec<u8>,
    /// wasmer's record of where the memory is and how long, which growing the memory
    /// updates in place (see [`Guest::lendable`]).
    pub(crate) place: NonNull<VMMemoryDefinition>,
    /// What the host knows of the guest's string without asking, since the last call that
    /// may have changed it.
    pub(crate) known: Known,
}

/// What `load` and `capacity` said, or what the host made the guest's string, while no
/// guest code has run that may have changed it since: the ABI makes `load` and `capacity`
/// queries, and every other export clears this. The library's own steps use it instead of
/// asking again; the public [`Guest::load`] and [`Guest::capacity`] always call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Known {
    pub(crate) region: Option<Region>,
    pub(crate) capacity: Option<Option<u32>>,
}

/// The globals the metering middleware adds to every instance.
#[derive(Debug)]
pub(crate) struct Meter {
    pub(crate) remaining: Global,
    pub(crate) exhausted: Global,
    /// The budget of each call, in metering points.
    pub(crate) fuel: u64,
    /// Where `remaining` keeps its value, for a refuel that is one store (see
    /// [`Guest::refuel`]).
    points: NonNull<VMGlobalDefinition>,
}

/// wasmer's record of where `memory` is and how long (`base`, `current_length`): it does not
/// move (it is in the instance's context, or boxed on its own), and growing the memory
/// updates it in place. Reading it is what `Memory::view` does after finding the memory in
/// the store.
pub(crate) fn place(memory: &Memory, store: &mut Store) -> NonNull<VMMemoryDefinition> {
    let VMExtern::Memory(handle) = Extern::Memory(memory.clone()).to_vm_extern().unwrap_sys()
    else {
        unreachable!("a memory's extern is a memory");
    };
    handle.get(store.objects_mut().as_sys_mut()).vmmemory()
}

impl Meter {
    /// The metering globals of `instance`, in `store`.
    ///
    /// # Panics
    /// When the points global is not a mutable `i64` (the middleware makes it one).
    pub(crate) fn of(
        instance: &Instance,
        store: &mut Store,
        fuel: u64,
    ) -> Result<Meter, wasmer::ExportError> {
        let remaining = instance.exports.get_global(metering::REMAINING)?.clone();
        assert_eq!(
            remaining.ty(store),
            GlobalType::new(Type::I64, Mutability::Var),
            "the metering points are a mutable i64"
        );
        // `Global::set` finds the global in the store, checks the store's id, the global's
        // mutability and the value's type, on every call: most of what a refuel costs.
        // The global's storage does not move (it is in the instance's context, or boxed on
        // its own), so its address is taken once.
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
}

impl Guest {
    /// Gives the next call into the guest its whole budget: one store into the metering
    /// middleware's points global. (`metering::set_remaining_points` looks both of its
    /// globals up by name on every call, which costs more than a short call itself;
    /// `Global::set` looks the global up in the store and checks its type every time.)
    pub(crate) fn refuel(&mut self) {
        if let Some(meter) = &mut self.meter {
            // SAFETY: `points` is where this store's `remaining` global keeps its value: in
            // its instance's context, which the store owns and does not move, and `self`
            // owns the store, so it is live. The global is a mutable i64 (asserted in
            // `Meter::of`), so an `i64` is what wasm and wasmer read there. `&mut self` is
            // held and no guest code is running (calls into the guest are made only from
            // `&mut self` methods, one at a time, on this thread), so nothing else reads
            // or writes it now.
            unsafe { (*meter.points.as_ptr()).val.i64 = meter.fuel.cast_signed() };
        }
    }

    /// Calls guest code: refuels, runs `call` on the store, then forgets what it knew of the
    /// guest's string unless `query` (the ABI makes `load` and `capacity` queries). A
    /// failure is [`Guest::fault`] of `export`.
    pub(crate) fn call<R>(
        &mut self,
        export: &'static str,
        query: bool,
        call: impl FnOnce(&mut Store) -> Result<R, RuntimeError>,
    ) -> Result<R, Error> {
        self.refuel();
        let result = call(&mut self.store);
        if !query {
            self.known = Known::default();
        }
        result.map_err(|e| self.fault(export, &e))
    }

    /// The error for a failed call of `export`: out of fuel when the metering points say so
    /// (metering stops a call with a plain `unreachable`), a trap otherwise.
    pub(crate) fn fault(&mut self, export: &'static str, e: &RuntimeError) -> Error {
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
        Error::Trap {
            export,
            trap: e.message(),
        }
    }

    /// The fuel the last call into the guest used (the start function counts as one call),
    /// in the units of [`Limits::fuel`]; `None` when the module is not metered. After a call
    /// that ran out, the whole budget.
    pub fn fuel_used(&mut self) -> Option<u64> {
        let meter = self.meter.as_ref()?;
        let remaining = meter.remaining.get(&mut self.store).i64()?.cast_unsigned();
        Some(meter.fuel.saturating_sub(remaining))
    }

    /// Which of `capacity`, `set_len` and `transform` the guest exports.
    pub fn extras(&self) -> Extras {
        Extras {
            capacity: self.capacity.is_some(),
            set_len: self.set_len.is_some(),
            transform: self.transform.is_some(),
            cabi_realloc: self.realloc.is_some(),
            adopt: self.adopt.is_some(),
        }
    }

    /// Calls `load`: where the guest says its string is.
    ///
    /// The length must not be negative and the range must fit in the 32-bit address space;
    /// whether it lies within memory is checked where it is used (every read and write
    /// checks its range against the memory as it is then), so this costs no more than the
    /// call itself.
    ///
    /// # Errors
    /// [`Error::Trap`], [`Error::OutOfFuel`], [`Error::NegativeLength`],
    /// [`Error::RangeOverflow`].
    pub fn load(&mut self) -> Result<Region, Error> {
        let load = self.load.clone();
        let (offset, len) = self.call("load", true, |store| load.call(store))?;
        let len = u32::try_from(len).map_err(|_| Error::NegativeLength {
            export: "load",
            len,
        })?;
        // Wasm addresses are unsigned: the i32's bits are the address.
        let offset = offset.cast_unsigned();
        if offset.checked_add(len).is_none() {
            return Err(Error::RangeOverflow { offset, len });
        }
        let region = Region { offset, len };
        self.known.region = Some(region);
        Ok(region)
    }

    /// Where the guest's string is: as `load` said or the host made it, when no guest code
    /// that may have moved it has run since; else `load`'s answer.
    pub(crate) fn current(&mut self) -> Result<Region, Error> {
        match self.known.region {
            Some(region) => Ok(region),
            None => self.load(),
        }
    }

    /// The guest's string: [`Guest::load`], then [`Guest::read_string`].
    ///
    /// # Errors
    /// As those two.
    pub fn string(&mut self) -> Result<String, Error> {
        let region = self.load()?;
        self.read_string(region)
    }

    /// The size of the guest's buffer, from its `capacity` export; `None` when it has none.
    ///
    /// # Errors
    /// [`Error::Trap`]; [`Error::NegativeLength`] when it returns a negative size.
    pub fn capacity(&mut self) -> Result<Option<u32>, Error> {
        let Some(capacity) = self.capacity.clone() else {
            return Ok(None);
        };
        let n = self.call("capacity", true, |store| capacity.call(store))?;
        let n = u32::try_from(n).map_err(|_| Error::NegativeLength {
            export: "capacity",
            len: n,
        })?;
        self.known.capacity = Some(Some(n));
        Ok(Some(n))
    }

    /// The seed's write: puts `s` at the offset `load` returns, without telling the guest.
    /// Checked against the memory and, when exported, `capacity`, before any byte moves.
    /// Returns where the new string is.
    ///
    /// # Errors
    /// As [`Guest::load`] and [`Guest::write`], and [`Error::OverCapacity`].
    pub fn write_string(&mut self, s: &str) -> Result<Region, Error> {
        let region = self.checked_target(s.len())?;
        self.write(region.offset, s.as_bytes())?;
        Ok(region)
    }

    /// Replaces the guest's string: writes `s` at `load`'s offset and tells the guest its
    /// length with `set_len`. When the guest refuses or traps, the bytes the host wrote are
    /// put back, so memory is as it was (but for what the guest's own code changed).
    ///
    /// # Errors
    /// [`Error::MissingExport`] without `set_len` (nothing is written); as
    /// [`Guest::write_string`]; [`Error::Refused`] and [`Error::Trap`] from `set_len`.
    pub fn replace_string(&mut self, s: &str) -> Result<Region, Error> {
        if self.set_len.is_none() {
            return Err(self.missing("set_len"));
        }
        let region = self.checked_target(s.len())?;
        // Keep what is overwritten, to put it back if the guest refuses. The buffer is
        // reused from call to call.
        let mut old = std::mem::take(&mut self.scratch);
        old.clear();
        old.extend_from_slice(&self.bytes(region)?);
        self.write(region.offset, s.as_bytes())?;
        let told = self.set_len(region.len);
        if told.is_err() {
            self.write(region.offset, &old)?;
        }
        self.scratch = old;
        told.map(|()| region)
    }

    /// Tells the guest that its string is now `len` bytes long (`set_len`).
    ///
    /// # Errors
    /// [`Error::MissingExport`], [`Error::Trap`], [`Error::Refused`].
    pub fn set_len(&mut self, len: u32) -> Result<(), Error> {
        let Some(set_len) = self.set_len.clone() else {
            return Err(self.missing("set_len"));
        };
        // A length over i32::MAX cannot be expressed in the ABI; the guest sees it negative
        // and refuses it.
        let before = self.known;
        let code = self.call("set_len", false, |store| {
            set_len.call(store, len.cast_signed())
        })?;
        match code {
            0 => {
                // The string is now `len` bytes at the same offset, in the same buffer.
                self.known = Known {
                    region: before.region.map(|r| Region { len, ..r }),
                    capacity: before.capacity,
                };
                Ok(())
            }
            code => Err(Error::Refused {
                export: "set_len",
                len,
                code,
            }),
        }
    }

    /// Asks the guest to append `" Wasm is cool!"` to its string in place (`transform`).
    /// Returns the new length.
    ///
    /// # Errors
    /// [`Error::MissingExport`], [`Error::Trap`], [`Error::OutOfFuel`]; [`Error::ErrorCode`]
    /// with the guest's code when it returns a negative value (the ABI says its string is
    /// then unchanged).
    pub fn transform(&mut self) -> Result<u32, Error> {
        let Some(transform) = self.transform.clone() else {
            return Err(self.missing("transform"));
        };
        let n = self.call("transform", false, |store| transform.call(store))?;
        // Reported as it is: no further call that could fail in its place.
        u32::try_from(n).map_err(|_| Error::ErrorCode {
            export: "transform",
            code: n,
        })
    }

    /// Where a write of `len` bytes at `load`'s offset would go, checked against `capacity`
    /// and the memory.
    pub(crate) fn checked_target(&mut self, len: usize) -> Result<Region, Error> {
        let offset = self.current()?.offset;
        let capacity = match self.known.capacity {
            Some(capacity) => capacity,
            None => self.capacity()?,
        };
        if let Some(capacity) = capacity
            && len > capacity as usize
        {
            return Err(Error::OverCapacity { len, capacity });
        }
        let region = Region::spanning(offset, len)?;
        region.range_in(self.memory_size())?;
        Ok(region)
    }

    pub(crate) fn missing(&self, export: &'static str) -> Error {
        Error::MissingExport {
            module: self.name.clone(),
            export,
        }
    }
}
