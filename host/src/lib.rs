//! Pass strings between a host and a WebAssembly guest through the guest's linear memory,
//! with [wasmer](https://docs.rs/wasmer) and Cranelift.
//!
//! This is the Rust form of the Wasmer guide "Using memory pointers": the guest exports its
//! memory as `mem` and a function `load() -> (offset, length)` that says where its string is.
//! The host reads the string there, writes a new one in place, and, when the guest exports
//! them, tells it the new length (`set_len`) and asks it to change the string itself
//! (`transform`). The guest of this workspace documents the ABI in full; a module that
//! follows only the guide's part of it (`mem` + `load`) works too.
//!
//! ```no_run
//! use host::{GuestModule, Limits};
//!
//! let module = GuestModule::from_file("target/guest/guest.wasm", &Limits::default())?;
//! let mut guest = module.instantiate()?;
//! assert_eq!(guest.string()?, "Hello, World!");
//! guest.replace_string("Hello, Wasmer!")?;
//! guest.transform()?;
//! assert_eq!(guest.string()?, "Hello, Wasmer! Wasm is cool!");
//! # Ok::<(), host::Error>(())
//! ```
//!
//! # Memory and safety
//!
//! The guest is untrusted. Nothing it returns is used before it is checked:
//!
//! - A length from the guest is an `i32`; a negative one is [`Error::NegativeLength`]. An
//!   offset is the unsigned 32-bit address Wasm uses.
//! - A range is checked against the memory's size *before* anything is allocated or copied:
//!   [`Error::RangeOverflow`] when `offset + len` does not fit in 32 bits,
//!   [`Error::OutOfBounds`] when it ends past the memory. So a guest that claims a 4 GiB
//!   string costs nothing.
//! - A zero-length range is valid anywhere up to and including the end of memory: `load`
//!   returning `(memory_size, 0)` reads as the empty string, as `&bytes[len..len]` does in
//!   Rust. One byte further is out of bounds.
//! - Text is UTF-8 validated; [`Error::InvalidUtf8`] says at which byte it fails.
//! - Writes are all-or-nothing: the whole range is checked against the memory and, when the
//!   guest exports `capacity`, against the buffer, before any byte moves. When the guest's
//!   `set_len` then refuses the length (or traps), the bytes the host wrote are restored.
//! - A trap in guest code is [`Error::Trap`], naming the export.
//!
//! Copies are as fast as `memcpy`. wasmer's safe `MemoryView::read`/`write` copy with
//! volatile word moves, because in general guest code may run concurrently. Here it cannot:
//! the [`Guest`] owns its store, and guest code runs only inside methods that take
//! `&mut self`. So while `&self` is borrowed nothing can change the memory, and while
//! `&mut self` is borrowed nothing else can see it, which is the argument of wasmtime's safe
//! `Memory::data`/`data_mut`. It rests on one rule the type keeps: no method that takes
//! `&self` writes guest memory, not even through a `MemoryView` (which needs only `&Store`).
//! A memory larger than `isize::MAX` bytes (4 GiB on a 32-bit host) is never lent out as a
//! slice either. When the memory is not shared, reads and writes are plain
//! slice copies, and [`Guest::str`] and [`Guest::bytes`] borrow straight from guest memory
//! for as long as the `Guest` is borrowed. A *shared* memory could be reached by other
//! threads, so then every access goes through wasmer's copying accessors, and text is
//! validated after it has been copied.

mod cache;
mod error;
mod limits;
mod lines;
mod metering;
mod prepare;
mod put;

use std::borrow::Cow;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use wasmer::sys::{CompilerConfig as _, NativeEngineExt as _};
use wasmer::{
    CompileError, Engine, Exports, Global, Instance, InstantiationError, Memory, Module,
    RuntimeError, Store, TypedFunction, Value, WasmTypeList, imports,
};

use crate::cache::Lookup;
pub use crate::cache::{CacheOutcome, CacheWarning, ModuleCache};
pub use crate::error::{Error, ErrorKind, PROBLEM_CHARS};
pub use crate::limits::{DEFAULT_FUEL, Limits};
pub use crate::metering::{BULK_BASE, BYTES_PER_UNIT, UNITS_PER_ELEMENT};
use crate::prepare::Refusal;
pub use crate::prepare::{Extras, MAX_TABLES};
pub use crate::put::Convention;

/// A byte range of guest memory: where a string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    /// Address of the first byte.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Region {
    /// The region of `len` bytes at `offset`.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`] when `len` does not fit in 32 bits (reported as `u32::MAX`).
    pub fn spanning(offset: u32, len: usize) -> Result<Region, Error> {
        let len = u32::try_from(len).map_err(|_| Error::RangeOverflow {
            offset,
            len: u32::MAX,
        })?;
        Ok(Region { offset, len })
    }

    /// `offset..offset + len` if it lies within a memory of `memory_size` bytes.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`] when the end does not fit in 32 bits; [`Error::OutOfBounds`]
    /// when it is past `memory_size`.
    pub fn range_in(self, memory_size: u64) -> Result<std::ops::Range<usize>, Error> {
        let Region { offset, len } = self;
        let end = offset
            .checked_add(len)
            .ok_or(Error::RangeOverflow { offset, len })?;
        if u64::from(end) > memory_size {
            return Err(Error::OutOfBounds {
                offset,
                len,
                memory_size,
            });
        }
        // Both fit in u32, which fits in usize on every host wasmer supports.
        Ok(offset as usize..end as usize)
    }
}

/// A compiled guest module whose imports and exports have been checked against the ABI.
/// Instantiate it as often as needed.
#[derive(Debug)]
pub struct GuestModule {
    engine: Engine,
    module: Module,
    name: String,
    optional: Extras,
    fuel: Option<u64>,
    /// The start function was moved to an export, to be called by `instantiate`.
    deferred_start: bool,
}

impl GuestModule {
    /// Reads, compiles and checks the module at `path`. Its size is checked before it is read
    /// in full.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::ModuleTooLarge`], [`Error::OverLimit`], [`Error::Compile`],
    /// [`Error::Abi`].
    pub fn from_file(path: impl AsRef<Path>, limits: &Limits) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = read_module(path, limits)?;
        Self::build(&bytes, path.display().to_string(), limits, None).map(|(module, _)| module)
    }

    /// As [`GuestModule::from_file`], through `cache`: the compiled module is loaded from it
    /// when it holds a sound entry for these bytes, limits and compiler, and stored in it
    /// otherwise. A cache that fails costs a compile, never the module: the outcome says
    /// whether it was a hit and what went wrong.
    ///
    /// The module is checked against the ABI and the limits on its bytes either way.
    ///
    /// # Errors
    /// As [`GuestModule::from_file`].
    pub fn from_file_cached(
        path: impl AsRef<Path>,
        limits: &Limits,
        cache: &ModuleCache,
    ) -> Result<(Self, CacheOutcome), Error> {
        let path = path.as_ref();
        let bytes = read_module(path, limits)?;
        let (module, outcome) =
            Self::build(&bytes, path.display().to_string(), limits, Some(cache))?;
        Ok((module, outcome.expect("a cache was given")))
    }

    /// Compiles and checks a module held in memory; errors name it `<bytes>`.
    ///
    /// # Errors
    /// [`Error::ModuleTooLarge`], [`Error::OverLimit`], [`Error::Compile`], [`Error::Abi`].
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, Error> {
        Self::build(bytes, "<bytes>".to_string(), limits, None).map(|(module, _)| module)
    }

    /// As [`GuestModule::from_bytes`], through `cache`, as [`GuestModule::from_file_cached`]
    /// does.
    ///
    /// # Errors
    /// As [`GuestModule::from_bytes`].
    pub fn from_bytes_cached(
        bytes: &[u8],
        limits: &Limits,
        cache: &ModuleCache,
    ) -> Result<(Self, CacheOutcome), Error> {
        let (module, outcome) = Self::build(bytes, "<bytes>".to_string(), limits, Some(cache))?;
        Ok((module, outcome.expect("a cache was given")))
    }

    fn build(
        bytes: &[u8],
        name: String,
        limits: &Limits,
        cache: Option<&ModuleCache>,
    ) -> Result<(Self, Option<CacheOutcome>), Error> {
        if bytes.len() as u64 > limits.max_module_bytes {
            return Err(Error::ModuleTooLarge {
                module: name,
                size: bytes.len() as u64,
                limit: limits.max_module_bytes,
            });
        }
        let engine = engine(limits);
        // Checked on the bytes: nothing is compiled (or loaded from a cache) unless all of it
        // passes.
        let prepared = match prepare::prepare(bytes, limits) {
            Ok(prepared) => prepared,
            Err(Refusal::Abi(problems)) => {
                return Err(Error::Abi {
                    module: name,
                    problems,
                });
            }
            Err(Refusal::OverLimit(problems)) => {
                return Err(Error::OverLimit {
                    module: name,
                    problems,
                });
            }
            Err(Refusal::Unreadable(why)) => {
                // wasmer's validator says why in its own words, as it would when compiling;
                // should it accept what the check could not read, the bytes are refused all
                // the same.
                let source = Module::validate(&engine, bytes)
                    .err()
                    .unwrap_or(CompileError::Validate(why));
                return Err(Error::Compile {
                    module: name,
                    source,
                });
            }
        };
        let compile = || {
            Module::from_binary(&engine, &prepared.bytes).map_err(|source| Error::Compile {
                module: name.clone(),
                source,
            })
        };
        let (module, outcome) = match cache {
            None => (compile()?, None),
            Some(cache) => {
                let key = ModuleCache::key(&engine, limits, &prepared.bytes);
                let mut warnings = Vec::new();
                // Compiled code is a few times the size of the Wasm it comes from; an entry
                // far past that is damage, and is not read in.
                let max_len = limits.max_module_bytes.saturating_mul(64).max(64 << 20);
                let found = match cache.lookup(&engine, &key, max_len) {
                    Lookup::Hit(module) => Some(module),
                    Lookup::Miss => None,
                    Lookup::Rejected(warning) => {
                        warnings.push(warning);
                        None
                    }
                };
                let hit = found.is_some();
                let module = match found {
                    Some(module) => module,
                    None => {
                        let module = compile()?;
                        if let Err(warning) = cache.store(&key, &module) {
                            warnings.push(warning);
                        }
                        module
                    }
                };
                let entry = cache.entry(&key);
                (
                    module,
                    Some(CacheOutcome {
                        hit,
                        entry,
                        warnings,
                    }),
                )
            }
        };
        let module = GuestModule {
            engine,
            module,
            name,
            optional: prepared.extras,
            fuel: limits.fuel,
            deferred_start: prepared.deferred_start,
        };
        Ok((module, outcome))
    }

    /// The module's name in errors: its path, or `<bytes>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates an instance in a store of its own. Runs the module's start function, if any,
    /// under the same fuel as any call.
    ///
    /// # Errors
    /// [`Error::Trap`] or [`Error::OutOfFuel`] with export `start` when the start function
    /// traps or runs out; [`Error::Instantiate`] for any other failure (a memory or table
    /// over its cap, for one).
    pub fn instantiate(&self) -> Result<Guest, Error> {
        let mut store = Store::new(self.engine.clone());
        let instance =
            Instance::new(&mut store, &self.module, &imports! {}).map_err(|e| match e {
                // Not reached: the start section was moved to an export by `prepare`.
                InstantiationError::Start(e) => Error::Trap {
                    export: "start",
                    trap: e.message(),
                },
                source => Error::Instantiate {
                    module: self.name.clone(),
                    source: Box::new(source),
                },
            })?;
        let abi_mismatch = |e: wasmer::ExportError| Error::Abi {
            module: self.name.clone(),
            problems: vec![e.to_string()],
        };
        let exports = &instance.exports;
        let memory = exports
            .get_memory(abi::MEMORY.name)
            .map_err(abi_mismatch)?
            .clone();
        let load = exports
            .get_typed_function(&store, abi::LOAD.name)
            .map_err(abi_mismatch)?;
        let capacity = optional(exports, &store, abi::CAPACITY.name, self.optional.capacity);
        let set_len = optional(exports, &store, abi::SET_LEN.name, self.optional.set_len);
        let transform = optional(
            exports,
            &store,
            abi::TRANSFORM.name,
            self.optional.transform,
        );
        let realloc = optional(
            exports,
            &store,
            abi::CABI_REALLOC.name,
            self.optional.cabi_realloc,
        );
        let adopt = optional(exports, &store, abi::ADOPT.name, self.optional.adopt);
        let start = optional::<(), ()>(exports, &store, prepare::START_EXPORT, self.deferred_start);
        let (capacity, set_len, transform, start) = (
            capacity.map_err(abi_mismatch)?,
            set_len.map_err(abi_mismatch)?,
            transform.map_err(abi_mismatch)?,
            start.map_err(abi_mismatch)?,
        );
        let (realloc, adopt) = (realloc.map_err(abi_mismatch)?, adopt.map_err(abi_mismatch)?);
        let shared = memory.ty(&store).shared;
        let meter = match self.fuel {
            Some(fuel) => Some(Meter::of(&instance, fuel).map_err(abi_mismatch)?),
            None => None,
        };
        let mut guest = Guest {
            store,
            meter,
            memory,
            shared,
            load,
            capacity,
            set_len,
            transform,
            realloc,
            adopt,
            name: self.name.clone(),
            scratch: Vec::new(),
        };
        if let Some(start) = start {
            guest.refuel();
            let result = start.call(&mut guest.store);
            result.map_err(|e| guest.fault("start", &e))?;
        }
        Ok(guest)
    }
}

/// The bytes of the module at `path`, its size checked against `limits` before it is read
/// in full.
fn read_module(path: &Path, limits: &Limits) -> Result<Vec<u8>, Error> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    let too_large = |size| Error::ModuleTooLarge {
        module: path.display().to_string(),
        size,
        limit: limits.max_module_bytes,
    };
    if size > limits.max_module_bytes {
        return Err(too_large(size));
    }
    // Read one byte past the limit at most, in case the file grew since `metadata`; into a
    // buffer of the size read there, so that it is not grown (and copied) on the way.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.take(limits.max_module_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limits.max_module_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// An engine that compiles with Cranelift, metered when `limits.fuel` says so, and caps
/// memories and tables at `limits`. One per module: wasmer's metering middleware may serve
/// only one.
fn engine(limits: &Limits) -> Engine {
    let mut compiler = wasmer_compiler_cranelift::Cranelift::default();
    if let Some(fuel) = limits.fuel {
        for middleware in metering::middlewares(fuel) {
            compiler.push_middleware(middleware);
        }
    }
    let mut engine = Engine::from(compiler);
    engine.set_tunables(limits::Capped::new(limits));
    engine
}

/// The export `name` as a typed function when `present` (the ABI check found it with the
/// right type), else `None`.
fn optional<A: WasmTypeList, R: WasmTypeList>(
    exports: &Exports,
    store: &Store,
    name: &str,
    present: bool,
) -> Result<Option<TypedFunction<A, R>>, wasmer::ExportError> {
    present
        .then(|| exports.get_typed_function(store, name))
        .transpose()
}

/// A running guest: its store, memory and exports.
///
/// Methods that call guest code take `&mut self`; reads of memory take `&self`.
#[derive(Debug)]
pub struct Guest {
    store: Store,
    /// The metering globals, when the module is metered.
    meter: Option<Meter>,
    memory: Memory,
    /// Whether `memory` is shared: decides between plain and wasmer's volatile copies.
    shared: bool,
    load: TypedFunction<(), (i32, i32)>,
    capacity: Option<TypedFunction<(), i32>>,
    set_len: Option<TypedFunction<i32, i32>>,
    transform: Option<TypedFunction<(), i32>>,
    realloc: Option<TypedFunction<(i32, i32, i32, i32), i32>>,
    adopt: Option<TypedFunction<(i32, i32), i32>>,
    name: String,
    /// Reused by `replace_string` to keep the bytes it overwrites.
    scratch: Vec<u8>,
}

/// The globals the metering middleware adds to every instance.
#[derive(Debug)]
struct Meter {
    remaining: Global,
    exhausted: Global,
    /// The budget of each call, in metering points.
    fuel: u64,
}

impl Meter {
    fn of(instance: &Instance, fuel: u64) -> Result<Meter, wasmer::ExportError> {
        Ok(Meter {
            remaining: instance.exports.get_global(metering::REMAINING)?.clone(),
            exhausted: instance.exports.get_global(metering::EXHAUSTED)?.clone(),
            fuel,
        })
    }
}

impl Guest {
    /// Gives the next call into the guest its whole budget: one store into the metering
    /// middleware's points global (`metering::set_remaining_points` looks both of its
    /// globals up by name on every call, which costs more than a short call itself).
    fn refuel(&mut self) {
        if let Some(meter) = &self.meter {
            // The points global is a mutable i64 of this store: setting it cannot fail.
            let _ = meter
                .remaining
                .set(&mut self.store, Value::I64(meter.fuel.cast_signed()));
        }
    }

    /// The error for a failed call of `export`: out of fuel when the metering points say so
    /// (metering stops a call with a plain `unreachable`), a trap otherwise.
    fn fault(&mut self, export: &'static str, e: &RuntimeError) -> Error {
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

    /// The memory's size in 64 KiB pages.
    pub fn memory_pages(&self) -> u32 {
        self.memory.view(&self.store).size().0
    }

    /// The memory's size in bytes.
    pub fn memory_size(&self) -> u64 {
        self.memory.view(&self.store).data_size()
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
        self.refuel();
        let result = self.load.call(&mut self.store);
        let (offset, len) = result.map_err(|e| self.fault("load", &e))?;
        let len = u32::try_from(len).map_err(|_| Error::NegativeLength {
            export: "load",
            len,
        })?;
        // Wasm addresses are unsigned: the i32's bits are the address.
        let offset = offset.cast_unsigned();
        if offset.checked_add(len).is_none() {
            return Err(Error::RangeOverflow { offset, len });
        }
        Ok(Region { offset, len })
    }

    /// Where the memory is and how long, when it may be lent out as a slice; `None` when it
    /// must go through wasmer's copying accessors instead, for either of two reasons: it is
    /// shared (another thread may write it at any time), or its size does not fit
    /// `isize::MAX`, the most `slice::from_raw_parts` allows (a 4 GiB memory on a 32-bit
    /// host).
    fn lendable(&self) -> Option<(*mut u8, usize)> {
        if self.shared {
            return None;
        }
        let view = self.memory.view(&self.store);
        let len = isize::try_from(view.data_size()).ok()?.cast_unsigned();
        Some((view.data_ptr(), len))
    }

    /// The whole of linear memory as a byte slice, borrowed for as long as `self` is; `None`
    /// as [`Guest::lendable`] says.
    fn memory_slice(&self) -> Option<&[u8]> {
        let (ptr, len) = self.lendable()?;
        if len == 0 {
            return Some(&[]);
        }
        // SAFETY: `ptr..ptr + len` is the memory's live allocation, and `len <= isize::MAX`.
        // While the returned slice lives, `self` is borrowed, and nothing can write to the
        // memory or move it, by the rule this type keeps: **no method that takes `&self`
        // writes guest memory**, not even through a `MemoryView` (which needs only
        // `&Store`, so the borrow checker would allow it). Besides:
        // - guest code runs only inside `Guest` methods that take `&mut self` (the store is
        //   private to the `Guest`, and the module imports nothing that could call back);
        // - growing the memory, the only thing that moves it, needs the store mutably, so
        //   also `&mut self`;
        // - the memory is not shared, so no other instance or thread can reach it.
        // This is the argument of wasmtime's safe `Memory::data`.
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    /// As [`Guest::memory_slice`], mutably, for as long as `self` is borrowed mutably.
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
    pub fn bytes(&self, region: Region) -> Result<Cow<'_, [u8]>, Error> {
        if let Some(memory) = self.memory_slice() {
            let range = region.range_in(memory.len() as u64)?;
            return Ok(Cow::Borrowed(&memory[range]));
        }
        let mut bytes = vec![0; region.range_in(self.memory_size())?.len()];
        self.read_into(region.offset, &mut bytes)?;
        Ok(Cow::Owned(bytes))
    }

    /// The string at `region`: borrowed without a copy as [`Guest::bytes`] is, and UTF-8
    /// validated (after the copy, for shared memory).
    ///
    /// # Errors
    /// As [`Guest::bytes`], and [`Error::InvalidUtf8`].
    pub fn str(&self, region: Region) -> Result<Cow<'_, str>, Error> {
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
    pub fn read_into(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        let region = Region::spanning(offset, buf.len())?;
        if let Some(memory) = self.memory_slice() {
            buf.copy_from_slice(&memory[region.range_in(memory.len() as u64)?]);
            return Ok(());
        }
        let view = self.memory.view(&self.store);
        let range = region.range_in(view.data_size())?;
        view.read(range.start as u64, buf)
            .map_err(|_| Error::OutOfBounds {
                offset,
                len: region.len,
                memory_size: view.data_size(),
            })
    }

    /// Copies the bytes of `region` out of guest memory.
    ///
    /// # Errors
    /// As [`Guest::bytes`].
    pub fn read(&self, region: Region) -> Result<Vec<u8>, Error> {
        self.bytes(region).map(Cow::into_owned)
    }

    /// Copies the string at `region` out of guest memory.
    ///
    /// # Errors
    /// As [`Guest::str`].
    pub fn read_string(&self, region: Region) -> Result<String, Error> {
        self.str(region).map(Cow::into_owned)
    }

    /// The guest's string: [`Guest::load`], then [`Guest::read_string`].
    ///
    /// # Errors
    /// As those two.
    pub fn string(&mut self) -> Result<String, Error> {
        let region = self.load()?;
        self.read_string(region)
    }

    /// Writes `bytes` at `offset`, all or nothing: the range is checked against the memory
    /// before any byte moves.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`].
    pub fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        let region = Region::spanning(offset, bytes.len())?;
        if let Some(memory) = self.memory_slice_mut() {
            let range = region.range_in(memory.len() as u64)?;
            memory[range].copy_from_slice(bytes);
            return Ok(());
        }
        let view = self.memory.view(&self.store);
        let range = region.range_in(view.data_size())?;
        view.write(range.start as u64, bytes)
            .map_err(|_| Error::OutOfBounds {
                offset,
                len: region.len,
                memory_size: view.data_size(),
            })
    }

    /// Whether the guest's memory is shared; its reads and writes then go through wasmer's
    /// copying accessors instead of plain copies, and [`Guest::bytes`] copies.
    pub fn memory_is_shared(&self) -> bool {
        self.shared
    }

    /// The size of the guest's buffer, from its `capacity` export; `None` when it has none.
    ///
    /// # Errors
    /// [`Error::Trap`]; [`Error::NegativeLength`] when it returns a negative size.
    pub fn capacity(&mut self) -> Result<Option<u32>, Error> {
        let Some(capacity) = self.capacity.clone() else {
            return Ok(None);
        };
        self.refuel();
        let result = capacity.call(&mut self.store);
        let n = result.map_err(|e| self.fault("capacity", &e))?;
        let n = u32::try_from(n).map_err(|_| Error::NegativeLength {
            export: "capacity",
            len: n,
        })?;
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
        self.refuel();
        let result = set_len.call(&mut self.store, len.cast_signed());
        let code = result.map_err(|e| self.fault("set_len", &e))?;
        match code {
            0 => Ok(()),
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
        self.refuel();
        let result = transform.call(&mut self.store);
        let n = result.map_err(|e| self.fault("transform", &e))?;
        // Reported as it is: no further call that could fail in its place.
        u32::try_from(n).map_err(|_| Error::ErrorCode {
            export: "transform",
            code: n,
        })
    }

    /// Where a write of `len` bytes at `load`'s offset would go, checked against `capacity`
    /// and the memory.
    fn checked_target(&mut self, len: usize) -> Result<Region, Error> {
        let offset = self.load()?.offset;
        if let Some(capacity) = self.capacity()?
            && len > capacity as usize
        {
            return Err(Error::OverCapacity { len, capacity });
        }
        let region = Region::spanning(offset, len)?;
        region.range_in(self.memory_size())?;
        Ok(region)
    }

    fn missing(&self, export: &'static str) -> Error {
        Error::MissingExport {
            module: self.name.clone(),
            export,
        }
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

/// One compiled `GuestModule` serves instances on many threads: each thread instantiates
/// its own `Guest` from a shared reference (checked when the crate compiles). A `Guest`
/// itself stays on the thread that made it: wasmer 7's `Store` is not `Send` (wasmerio/wasmer
/// issue 7001), and this crate does not assert otherwise.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<GuestModule>();
};

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(memory: &str) -> Guest {
        let wat = format!(
            r#"(module {memory} (func (export "load") (result i32 i32) i32.const 0 i32.const 0))"#
        );
        GuestModule::from_bytes(&wat::parse_str(wat).unwrap(), &Limits::default())
            .unwrap()
            .instantiate()
            .unwrap()
    }

    /// The README promises that a shared memory is reached only through wasmer's copying
    /// accessors: no slice of it is ever made, either way.
    #[test]
    fn a_shared_memory_is_never_a_slice() {
        let mut shared = guest(r#"(memory (export "mem") 1 1 shared)"#);
        assert!(shared.memory_is_shared());
        assert!(shared.memory_slice().is_none());
        assert!(shared.memory_slice_mut().is_none());
        let mut plain = guest(r#"(memory (export "mem") 1)"#);
        assert_eq!(plain.memory_slice().map(<[u8]>::len), Some(65536));
        assert_eq!(plain.memory_slice_mut().map(|m| m.len()), Some(65536));
    }
}
