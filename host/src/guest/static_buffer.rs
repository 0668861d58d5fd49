//! The guide's convention: the guest's string lives in a buffer at the offset `load`
//! returns; the host writes there, up to `capacity`, and tells the guest the new length with
//! `set_len`. Whatever fails after the host wrote, the bytes are put back
//! ([`Core::with_restore`](crate::instance::Core::with_restore)).

use std::io;

use crate::instance::{Core, Func, Known};
use crate::{Error, Guest, Region};

impl Guest {
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
        let Some(load) = &self.load else {
            return Err(self.core.missing(abi::LOAD.name));
        };
        let (offset, len) = self.core.call(load, ())?;
        let len = u32::try_from(len).map_err(|_| Error::NegativeLength {
            export: load.name(),
            len,
        })?;
        // Wasm addresses are unsigned: the i32's bits are the address.
        let offset = offset.cast_unsigned();
        if offset.checked_add(len).is_none() {
            return Err(Error::RangeOverflow { offset, len });
        }
        let region = Region { offset, len };
        self.core.remember(Known {
            region: Some(region),
            ..self.core.known()
        });
        Ok(region)
    }

    /// Where the guest's string is: as `load` said or the host made it, when no guest code
    /// that may have moved it has run since; else `load`'s answer.
    pub(crate) fn current(&mut self) -> Result<Region, Error> {
        match self.core.known().region {
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
        let Some(capacity) = &self.capacity else {
            return Ok(None);
        };
        let n = self.core.call(capacity, ())?;
        let n = u32::try_from(n).map_err(|_| Error::NegativeLength {
            export: capacity.name(),
            len: n,
        })?;
        self.core.remember(Known {
            capacity: Some(Some(n)),
            ..self.core.known()
        });
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
        self.put_static(s.len(), |buf| {
            buf.copy_from_slice(s.as_bytes());
            Ok(())
        })
    }

    /// Tells the guest that its string is now `len` bytes long (`set_len`).
    ///
    /// # Errors
    /// [`Error::MissingExport`], [`Error::Trap`], [`Error::Refused`].
    pub fn set_len(&mut self, len: u32) -> Result<(), Error> {
        let Some(set_len) = &self.set_len else {
            return Err(self.core.missing(abi::SET_LEN.name));
        };
        tell_len(&mut self.core, set_len, len)
    }

    /// Makes `len` bytes written by `fill` the guest's string in its static buffer, told
    /// with `set_len`; on any failure the buffer's bytes are put back.
    pub(super) fn put_static(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> io::Result<()>,
    ) -> Result<Region, Error> {
        let Some(set_len) = self.set_len.clone() else {
            return Err(self.core.missing(abi::SET_LEN.name));
        };
        let region = self.checked_target(len)?;
        self.core.with_restore(region, |core| {
            core.fill(region, fill)?;
            tell_len(core, &set_len, region.len)?;
            Ok(region)
        })
    }

    /// Where a write of `len` bytes at `load`'s offset would go, checked against `capacity`
    /// and the memory.
    fn checked_target(&mut self, len: usize) -> Result<Region, Error> {
        let offset = self.current()?.offset;
        let capacity = match self.core.known().capacity {
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
}

/// Tells the guest through `set_len` that its string is now `len` bytes long; on success
/// the host knows the string is `len` bytes where it was.
fn tell_len(core: &mut Core, set_len: &Func<i32, i32>, len: u32) -> Result<(), Error> {
    // A length over i32::MAX cannot be expressed in the ABI; the guest sees it negative and
    // refuses it.
    let before = core.known();
    match core.call(set_len, len.cast_signed())? {
        0 => {
            // The string is now `len` bytes at the same offset, in the same buffer.
            core.remember(Known {
                region: before.region.map(|r| Region { len, ..r }),
                capacity: before.capacity,
            });
            Ok(())
        }
        code => Err(Error::Refused {
            export: set_len.name(),
            len,
            code,
        }),
    }
}
