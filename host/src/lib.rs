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
//! The host reaches guest memory only while it holds the [`Guest`] exclusively or shared
//! through Rust borrows. Guest code runs only inside methods that take `&mut self`, so no
//! guest code runs while a read borrows the memory.

mod abi;
mod error;

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use wasmer::{
    Engine, Instance, InstantiationError, Memory, Module, RuntimeError, Store, TypedFunction,
    imports,
};

pub use crate::abi::show_extern;
pub use crate::error::{Error, ErrorKind};

/// Resource limits for loading and running a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest module accepted, in bytes; checked before it is read in full or compiled.
    pub max_module_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_module_bytes: 16 << 20,
        }
    }
}

/// A byte range of guest memory: where a string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    /// Address of the first byte.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Region {
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
    optional: abi::Optional,
}

impl GuestModule {
    /// Reads, compiles and checks the module at `path`. Its size is checked before it is read
    /// in full.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::ModuleTooLarge`], [`Error::Compile`], [`Error::Abi`].
    pub fn from_file(path: impl AsRef<Path>, limits: &Limits) -> Result<Self, Error> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let read_err = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        let too_large = |size| Error::ModuleTooLarge {
            module: name.clone(),
            size,
            limit: limits.max_module_bytes,
        };
        if size > limits.max_module_bytes {
            return Err(too_large(size));
        }
        // Read one byte past the limit at most, in case the file grew since `metadata`.
        let mut bytes = Vec::new();
        file.take(limits.max_module_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > limits.max_module_bytes {
            return Err(too_large(bytes.len() as u64));
        }
        Self::compile(&bytes, name, limits)
    }

    /// Compiles and checks a module held in memory; errors name it `<bytes>`.
    ///
    /// # Errors
    /// [`Error::ModuleTooLarge`], [`Error::Compile`], [`Error::Abi`].
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, Error> {
        Self::compile(bytes, "<bytes>".to_string(), limits)
    }

    fn compile(bytes: &[u8], name: String, limits: &Limits) -> Result<Self, Error> {
        if bytes.len() as u64 > limits.max_module_bytes {
            return Err(Error::ModuleTooLarge {
                module: name,
                size: bytes.len() as u64,
                limit: limits.max_module_bytes,
            });
        }
        let engine = Engine::from(wasmer_compiler_cranelift::Cranelift::default());
        let module = Module::from_binary(&engine, bytes).map_err(|source| Error::Compile {
            module: name.clone(),
            source,
        })?;
        let optional = abi::check(&module).map_err(|problems| Error::Abi {
            module: name.clone(),
            problems,
        })?;
        Ok(GuestModule {
            engine,
            module,
            name,
            optional,
        })
    }

    /// The module's name in errors: its path, or `<bytes>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates an instance in a store of its own. Runs the module's start function, if any.
    ///
    /// # Errors
    /// [`Error::Trap`] with export `start` when the start function traps;
    /// [`Error::Instantiate`] for any other failure.
    pub fn instantiate(&self) -> Result<Guest, Error> {
        let mut store = Store::new(self.engine.clone());
        let instance =
            Instance::new(&mut store, &self.module, &imports! {}).map_err(|e| match e {
                InstantiationError::Start(e) => trap("start", &e),
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
            .get_memory(abi::MEMORY)
            .map_err(abi_mismatch)?
            .clone();
        let load = exports
            .get_typed_function(&store, abi::LOAD.0)
            .map_err(abi_mismatch)?;
        let capacity = match self.optional.capacity {
            true => Some(
                exports
                    .get_typed_function(&store, abi::CAPACITY.0)
                    .map_err(abi_mismatch)?,
            ),
            false => None,
        };
        let set_len = match self.optional.set_len {
            true => Some(
                exports
                    .get_typed_function(&store, abi::SET_LEN.0)
                    .map_err(abi_mismatch)?,
            ),
            false => None,
        };
        let transform = match self.optional.transform {
            true => Some(
                exports
                    .get_typed_function(&store, abi::TRANSFORM.0)
                    .map_err(abi_mismatch)?,
            ),
            false => None,
        };
        Ok(Guest {
            store,
            memory,
            load,
            capacity,
            set_len,
            transform,
            name: self.name.clone(),
        })
    }
}

/// A running guest: its store, memory and exports.
///
/// Methods that call guest code take `&mut self`; reads of memory take `&self`.
#[derive(Debug)]
pub struct Guest {
    store: Store,
    memory: Memory,
    load: TypedFunction<(), (i32, i32)>,
    capacity: Option<TypedFunction<(), i32>>,
    set_len: Option<TypedFunction<i32, i32>>,
    transform: Option<TypedFunction<(), i32>>,
    name: String,
}

fn trap(export: &'static str, e: &RuntimeError) -> Error {
    Error::Trap {
        export,
        trap: e.message(),
    }
}

impl Guest {
    /// The memory's size in 64 KiB pages.
    pub fn memory_pages(&self) -> u32 {
        self.memory.view(&self.store).size().0
    }

    /// The memory's size in bytes.
    pub fn memory_size(&self) -> u64 {
        self.memory.view(&self.store).data_size()
    }

    /// Whether the guest exports `capacity`, `set_len` and `transform`, in that order.
    pub fn exports_extras(&self) -> (bool, bool, bool) {
        (
            self.capacity.is_some(),
            self.set_len.is_some(),
            self.transform.is_some(),
        )
    }

    /// Calls `load` and checks what it returns against the memory.
    ///
    /// # Errors
    /// [`Error::Trap`], [`Error::NegativeLength`], [`Error::RangeOverflow`],
    /// [`Error::OutOfBounds`].
    pub fn load(&mut self) -> Result<Region, Error> {
        let (offset, len) = self
            .load
            .call(&mut self.store)
            .map_err(|e| trap("load", &e))?;
        let len = u32::try_from(len).map_err(|_| Error::NegativeLength {
            export: "load",
            len,
        })?;
        // Wasm addresses are unsigned: the i32's bits are the address.
        let region = Region {
            offset: offset.cast_unsigned(),
            len,
        };
        region.range_in(self.memory_size())?;
        Ok(region)
    }

    /// Copies the bytes of `region` out of guest memory.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`]; nothing is allocated before the
    /// range is known to lie within memory.
    pub fn read(&self, region: Region) -> Result<Vec<u8>, Error> {
        let view = self.memory.view(&self.store);
        let range = region.range_in(view.data_size())?;
        let mut bytes = vec![0; range.len()];
        view.read(range.start as u64, &mut bytes)
            .map_err(|_| Error::OutOfBounds {
                offset: region.offset,
                len: region.len,
                memory_size: view.data_size(),
            })?;
        Ok(bytes)
    }

    /// Copies the string at `region` out of guest memory.
    ///
    /// # Errors
    /// As [`Guest::read`], and [`Error::InvalidUtf8`].
    pub fn read_string(&self, region: Region) -> Result<String, Error> {
        let bytes = self.read(region)?;
        String::from_utf8(bytes).map_err(|e| utf8_error(region, e.utf8_error()))
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
        let view = self.memory.view(&self.store);
        let region = Region {
            offset,
            len: u32::try_from(bytes.len()).map_err(|_| Error::RangeOverflow {
                offset,
                len: u32::MAX,
            })?,
        };
        let range = region.range_in(view.data_size())?;
        view.write(range.start as u64, bytes)
            .map_err(|_| Error::OutOfBounds {
                offset,
                len: region.len,
                memory_size: view.data_size(),
            })
    }

    /// The size of the guest's buffer, from its `capacity` export; `None` when it has none.
    ///
    /// # Errors
    /// [`Error::Trap`]; [`Error::NegativeLength`] when it returns a negative size.
    pub fn capacity(&mut self) -> Result<Option<u32>, Error> {
        let Some(capacity) = &self.capacity else {
            return Ok(None);
        };
        let n = capacity
            .call(&mut self.store)
            .map_err(|e| trap("capacity", &e))?;
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
        let region = self.checked_target(s)?;
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
        let region = self.checked_target(s)?;
        let old = self.read(region)?;
        self.write(region.offset, s.as_bytes())?;
        if let Err(e) = self.set_len(region.len) {
            self.write(region.offset, &old)?;
            return Err(e);
        }
        Ok(region)
    }

    /// Tells the guest that its string is now `len` bytes long (`set_len`).
    ///
    /// # Errors
    /// [`Error::MissingExport`], [`Error::Trap`], [`Error::Refused`].
    pub fn set_len(&mut self, len: u32) -> Result<(), Error> {
        let Some(set_len) = &self.set_len else {
            return Err(self.missing("set_len"));
        };
        // A length over i32::MAX cannot be expressed in the ABI; the guest sees it negative
        // and refuses it.
        let code = set_len
            .call(&mut self.store, len.cast_signed())
            .map_err(|e| trap("set_len", &e))?;
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
    /// [`Error::MissingExport`], [`Error::Trap`]; [`Error::Refused`] with the guest's code
    /// when it returns a negative value (`len` is then the length before the call).
    pub fn transform(&mut self) -> Result<u32, Error> {
        let Some(transform) = &self.transform else {
            return Err(self.missing("transform"));
        };
        let n = transform
            .call(&mut self.store)
            .map_err(|e| trap("transform", &e))?;
        match u32::try_from(n) {
            Ok(n) => Ok(n),
            Err(_) => {
                let len = self.load()?.len;
                Err(Error::Refused {
                    export: "transform",
                    len,
                    code: n,
                })
            }
        }
    }

    /// Where a write of `s` at `load`'s offset would go, checked against `capacity` and
    /// the memory.
    fn checked_target(&mut self, s: &str) -> Result<Region, Error> {
        let offset = self.load()?.offset;
        if let Some(capacity) = self.capacity()?
            && s.len() > capacity as usize
        {
            return Err(Error::OverCapacity {
                len: s.len(),
                capacity,
            });
        }
        let len = u32::try_from(s.len()).map_err(|_| Error::RangeOverflow {
            offset,
            len: u32::MAX,
        })?;
        let region = Region { offset, len };
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
