//! A running guest of the guide's ABI: its [`Core`] and the exports the ABI names; the
//! conventions for handing it data are files below this one (`guest/static_buffer.rs`,
//! `guest/allocation.rs`), the only ones that see its export handles.

mod allocation;
mod canonical;
mod static_buffer;

pub use self::canonical::{BorrowedFunc, TypedFunc};
pub(crate) use self::canonical::{Canonical, Utf8, core_values, flat_bits_of};

use std::borrow::Cow;
use std::io;

use crate::instance::{Core, Effect, Func};
use crate::{Error, Extras, Region};

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
/// send::<memhost::Guest>();
/// ```
#[derive(Debug)]
pub struct Guest {
    core: Core,
    /// `load`, when the module speaks the guide's ABI.
    load: Option<Func<(), (i32, i32)>>,
    capacity: Option<Func<(), i32>>,
    set_len: Option<Func<i32, i32>>,
    transform: Option<Func<(), i32>>,
    adopt: Option<Func<(i32, i32), i32>>,
    /// The canonical ABI's side, when the module has a WIT world.
    canonical: Option<Canonical>,
}

/// How a guest takes data from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// `cabi_realloc` and `adopt`: data of any size, in a block the guest allocates.
    Allocation,
    /// `set_len`: data up to `capacity`, in the buffer at `load`'s offset.
    StaticBuffer,
    /// Only the guide's `mem` and `load`: the host may write, but not tell the guest.
    WriteOnly,
}

impl Guest {
    /// The guest of `core`, with the exports admission found: the guide's ABI when `guide`
    /// (its optional exports `extras`), the canonical ABI's functions in `canonical`.
    ///
    /// # Errors
    /// [`Error::Abi`] when one of them is missing or of the wrong type after all.
    pub(crate) fn new(
        core: Core,
        guide: bool,
        extras: Extras,
        canonical: Option<Canonical>,
    ) -> Result<Guest, Error> {
        Ok(Guest {
            load: core.func_if(guide, abi::LOAD.name, Effect::Query)?,
            capacity: core.func_if(extras.capacity, abi::CAPACITY.name, Effect::Query)?,
            set_len: core.func_if(extras.set_len, abi::SET_LEN.name, Effect::Mutates)?,
            transform: core.func_if(extras.transform, abi::TRANSFORM.name, Effect::Mutates)?,
            adopt: core.func_if(extras.adopt, abi::ADOPT.name, Effect::Mutates)?,
            canonical,
            core,
        })
    }

    /// The core, for what the library builds on it.
    #[cfg(test)]
    pub(crate) fn into_core(self) -> Core {
        self.core
    }

    /// The fuel the last call into the guest used (the start function counts as one call),
    /// in the units of [`Limits::fuel`](crate::Limits::fuel); `None` when the module is not
    /// metered. After a call that ran out, the whole budget.
    pub fn fuel_used(&mut self) -> Option<u64> {
        self.core.fuel_used()
    }

    /// Which of the optional exports of the ABI the guest has.
    pub fn extras(&self) -> Extras {
        Extras {
            capacity: self.capacity.is_some(),
            set_len: self.set_len.is_some(),
            transform: self.transform.is_some(),
            cabi_realloc: self.core.has_allocator(),
            adopt: self.adopt.is_some(),
        }
    }

    /// The convention [`Guest::put_with`] uses for this guest.
    pub fn convention(&self) -> Convention {
        if self.core.has_allocator() && self.adopt.is_some() {
            Convention::Allocation
        } else if self.set_len.is_some() {
            Convention::StaticBuffer
        } else {
            Convention::WriteOnly
        }
    }

    /// Makes `bytes` the guest's string, through its convention. Returns where it is.
    ///
    /// # Errors
    /// As [`Guest::put_with`].
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<Region, Error> {
        self.put_with(bytes.len(), |buf| {
            buf.copy_from_slice(bytes);
            Ok(())
        })
    }

    /// Makes `s` the guest's string: [`Guest::put_bytes`].
    ///
    /// # Errors
    /// As [`Guest::put_with`].
    pub fn put_str(&mut self, s: &str) -> Result<Region, Error> {
        self.put_bytes(s.as_bytes())
    }

    /// Makes `len` bytes the guest's string, written by `fill` straight into guest memory
    /// (so that a file or a socket can be read there without a buffer of the host's): in a
    /// block from the guest's allocator when it has one, else in its static buffer. Returns
    /// where the string is. On any error the guest keeps its previous string.
    ///
    /// When the memory is shared, `fill` writes into a host buffer that is then copied in
    /// (a shared memory is never lent out as a slice).
    ///
    /// # Errors
    /// [`Error::TooLong`] past `i32::MAX` bytes. With allocation: [`Error::AllocationFailed`],
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`], [`Error::Overlap`] for what
    /// `cabi_realloc` returns; [`Error::Refused`] from `adopt`; [`Error::Trap`] and
    /// [`Error::OutOfFuel`] from `load`, `cabi_realloc` or `adopt`. With the static buffer:
    /// as [`Guest::replace_string`]. [`Error::MissingExport`] for a guest with neither.
    /// [`Error::Fill`] when `fill` fails.
    pub fn put_with(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> io::Result<()>,
    ) -> Result<Region, Error> {
        let wasm_len = i32::try_from(len).map_err(|_| Error::TooLong { len })?;
        match self.convention() {
            Convention::Allocation => self.put_allocated(wasm_len.cast_unsigned(), fill),
            Convention::StaticBuffer => self.put_static(len, fill),
            Convention::WriteOnly => Err(self.core.missing(abi::SET_LEN.name)),
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
        let Some(transform) = &self.transform else {
            return Err(self.core.missing(abi::TRANSFORM.name));
        };
        let n = self.core.call(transform, ())?;
        // Reported as it is: no further call that could fail in its place.
        u32::try_from(n).map_err(|_| Error::ErrorCode {
            export: transform.name(),
            code: n,
        })
    }

    /// The memory's size in 64 KiB pages.
    pub fn memory_pages(&self) -> u32 {
        self.core.memory_pages()
    }

    /// The memory's size in bytes.
    #[inline]
    pub fn memory_size(&self) -> u64 {
        self.core.memory_size()
    }

    /// Whether the guest's memory is shared; its reads and writes then go through wasmer's
    /// copying accessors instead of plain copies, and [`Guest::bytes`] copies.
    pub fn memory_is_shared(&self) -> bool {
        self.core.memory_is_shared()
    }

    /// The bytes of `region`, borrowed from guest memory without a copy while `self` is
    /// borrowed (so no guest code can run and change them); copied out when the memory is
    /// shared.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`]; nothing is allocated before the
    /// range is known to lie within memory.
    #[inline]
    pub fn bytes(&self, region: Region) -> Result<Cow<'_, [u8]>, Error> {
        self.core.bytes(region)
    }

    /// The string at `region`: borrowed without a copy as [`Guest::bytes`] is, and UTF-8
    /// validated (after the copy, for shared memory).
    ///
    /// # Errors
    /// As [`Guest::bytes`], and [`Error::InvalidUtf8`].
    pub fn str(&self, region: Region) -> Result<Cow<'_, str>, Error> {
        self.core.str(region)
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`, all or nothing.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`].
    #[inline]
    pub fn read_into(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        self.core.read_into(offset, buf)
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

    /// Writes `bytes` at `offset`, all or nothing: the range is checked against the memory
    /// before any byte moves.
    ///
    /// # Errors
    /// [`Error::RangeOverflow`], [`Error::OutOfBounds`].
    #[inline]
    pub fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        self.core.write(offset, bytes)
    }
}
