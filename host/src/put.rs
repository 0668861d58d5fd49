//! Handing the guest data of any size, through whichever convention it speaks.
//!
//! The Wasmer guide names the conventions a module's ABI may use for memory; the guest ABI
//! of this workspace has two of them:
//!
//! - **Allocation** (the guest exports `cabi_realloc` and `adopt`): the host asks the guest
//!   for a block of the data's size with `cabi_realloc(0, 0, 1, len)` (the canonical ABI's
//!   allocator, which wit-bindgen generates for Rust, C and Go guests), writes the data
//!   there, and the guest adopts the block as its string. Any size, up to the memory cap.
//! - **Static buffer** (the guest exports `set_len`): the host writes at `load`'s offset, up
//!   to `capacity`, and tells the guest the length. The guide's own example.
//!
//! [`Guest::put_with`] picks the first the guest has. Nothing the allocator returns is
//! trusted: a null address, a block past the end of memory or overflowing the address
//! space, or one overlapping the guest's current string is refused before any byte is
//! written. Whatever fails, the guest keeps its previous string, readable as before, and
//! no half-written data is adopted: a block that passed the checks and could not be handed
//! over (the fill or `adopt` failed) is released (`cabi_realloc(ptr, len, 1, 0)`), and bytes
//! written into the static buffer are put back.

use std::io;

use crate::{Error, Guest, Region};

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
    /// The convention [`Guest::put_with`] uses for this guest.
    pub fn convention(&self) -> Convention {
        if self.realloc.is_some() && self.adopt.is_some() {
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
            Convention::Allocation => self.put_allocated(wasm_len, fill),
            Convention::StaticBuffer => self.put_static(len, fill),
            Convention::WriteOnly => Err(self.missing("set_len")),
        }
    }

    fn put_allocated(
        &mut self,
        len: i32,
        fill: impl FnOnce(&mut [u8]) -> io::Result<()>,
    ) -> Result<Region, Error> {
        let (Some(realloc), Some(adopt)) = (self.realloc.clone(), self.adopt.clone()) else {
            return Err(self.missing("cabi_realloc"));
        };
        let current = self.current()?;
        // At least one byte: for an empty request the canonical ABI returns `align`, a
        // dangling address and no block to adopt.
        let size = len.max(1);
        let ptr = self.call("cabi_realloc", false, |store| {
            realloc.call(store, 0, 0, 1, size)
        })?;
        let wasm_len = len.cast_unsigned();
        if ptr == 0 {
            return Err(Error::AllocationFailed {
                export: "cabi_realloc",
                len: wasm_len,
            });
        }
        let block = Region {
            offset: ptr.cast_unsigned(),
            len: wasm_len,
        };
        block.range_in(self.memory_size())?;
        if overlaps(block, current) {
            return Err(Error::Overlap {
                export: "cabi_realloc",
                offset: block.offset,
                len: block.len,
                string: current,
            });
        }
        // From here on the block is a real one: a failure hands it back. (One that failed
        // the checks above is handed nothing back, its address included.)
        let placed = self.fill_region(block, fill).and_then(|()| {
            match self.call("adopt", false, |store| adopt.call(store, ptr, len))? {
                0 => {
                    self.known.region = Some(block);
                    Ok(block)
                }
                code => Err(Error::Refused {
                    export: "adopt",
                    len: wasm_len,
                    code,
                }),
            }
        });
        if placed.is_err() {
            // Best effort: the error to report is the one that happened, not this call's.
            let _ = self.call("cabi_realloc", false, |store| {
                realloc.call(store, ptr, size, 1, 0)
            });
        }
        placed
    }

    fn put_static(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> io::Result<()>,
    ) -> Result<Region, Error> {
        let region = self.checked_target(len)?;
        // Keep what is overwritten, to put it back if anything fails.
        let mut old = std::mem::take(&mut self.scratch);
        old.clear();
        old.extend_from_slice(&self.bytes(region)?);
        let placed = self
            .fill_region(region, fill)
            .and_then(|()| self.set_len(region.len));
        if placed.is_err() {
            self.write(region.offset, &old)?;
        }
        self.scratch = old;
        placed.map(|()| region)
    }

    /// Lets `fill` write `region` (checked to lie within memory), in place when the memory
    /// is not shared.
    fn fill_region(
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
}

/// Whether two regions share a byte.
fn overlaps(a: Region, b: Region) -> bool {
    let (a0, a1) = (u64::from(a.offset), u64::from(a.offset) + u64::from(a.len));
    let (b0, b1) = (u64::from(b.offset), u64::from(b.offset) + u64::from(b.len));
    a0 < b1 && b0 < a1
}
