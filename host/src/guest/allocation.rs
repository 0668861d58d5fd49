//! The allocation convention (the guest exports `cabi_realloc` and `adopt`): the host asks
//! the guest for a block of the data's size with `cabi_realloc(0, 0, 1, len)` (the canonical
//! ABI's allocator, which wit-bindgen generates for Rust, C and Go guests), writes the data
//! there, and the guest adopts the block as its string. Any size, up to the memory cap.
//!
//! Nothing the allocator returns is trusted: a null address, a block past the end of memory
//! or overflowing the address space, or one overlapping the guest's current string is
//! refused before any byte is written ([`Core::alloc`](crate::instance::Core::alloc) checks
//! the first ones, this file the overlap). Whatever fails, the guest keeps its previous
//! string, readable as before, and no half-written data is adopted: a block that passed the
//! checks and could not be handed over (the fill or `adopt` failed) is released.

use std::io;

use crate::instance::Known;
use crate::{Error, Guest, Region};

impl Guest {
    /// Makes `len` bytes written by `fill` the guest's string, in a block of its allocator
    /// that it then adopts.
    pub(super) fn put_allocated(
        &mut self,
        len: u32,
        fill: impl FnOnce(&mut [u8]) -> io::Result<()>,
    ) -> Result<Region, Error> {
        let Some(adopt) = self.adopt.clone() else {
            return Err(self.core.missing(abi::ADOPT.name));
        };
        let current = self.current()?;
        // At least one byte: for an empty request the canonical ABI returns `align`, a
        // dangling address and no block to adopt.
        let block = self.core.alloc(len.max(1), 1)?;
        let placed = Region {
            offset: block.region().offset,
            len,
        };
        if overlaps(placed, current) {
            return Err(Error::Overlap {
                export: abi::CABI_REALLOC.name.into(),
                offset: block.distrust().offset,
                len,
                string: current,
            });
        }
        let adopted = self.core.fill(placed, fill).and_then(|()| {
            match self
                .core
                .call(&adopt, (placed.offset.cast_signed(), len.cast_signed()))?
            {
                0 => Ok(()),
                code => Err(Error::Refused {
                    export: adopt.name(),
                    len,
                    code,
                }),
            }
        });
        match adopted {
            Ok(()) => {
                self.core.remember(Known {
                    region: Some(placed),
                    capacity: None,
                });
                Ok(placed)
            }
            Err(e) => {
                self.core.release(block);
                Err(e)
            }
        }
    }
}

/// Whether two regions share a byte.
fn overlaps(a: Region, b: Region) -> bool {
    let (a0, a1) = (u64::from(a.offset), u64::from(a.offset) + u64::from(a.len));
    let (b0, b1) = (u64::from(b.offset), u64::from(b.offset) + u64::from(b.len));
    a0 < b1 && b0 < a1
}
