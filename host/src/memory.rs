//! Guest memory: reads and writes, checked against the memory's size before anything moves,
//! and plain slice copies where the memory cannot change under them.

use std::borrow::Cow;

use wasmer::MemoryView;

use crate::{Error, Guest, Region};

impl Guest {
    /// The memory's size in 64 KiB pages.
    pub fn memory_pages(&self) -> u32 {
        self.memory.view(&self.store).size().0
    }

    /// The memory's size in bytes.
    #[inline]
    pub fn memory_size(&self) -> u64 {
        match self.lendable() {
            Some((_, len)) => len as u64,
            None => self.memory.view(&self.store).data_size(),
        }
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
    pub(crate) fn lendable(&self) -> Option<(*mut u8, usize)> {
        if self.shared {
            return None;
        }
        // SAFETY: `place` points to the memory's definition in this store (see
        // `guest::place`), which lives as long as the store, which `self` owns. Only growing
        // the memory writes it, and growing runs only in guest code (this crate never calls
        // `Memory::grow`; the `Memory` is private), which runs only inside `&mut self`
        // methods: not now, while `&self` is held. The memory is not shared, so no other
        // thread can grow it.
        let place = unsafe { self.place.as_ptr().read() };
        debug_assert_eq!(
            (place.base, place.current_length as u64),
            {
                let view = self.memory.view(&self.store);
                (view.data_ptr(), view.data_size())
            },
            "the memory's place is not what wasmer says"
        );
        let len = isize::try_from(place.current_length).ok()?.cast_unsigned();
        Some((place.base, len))
    }

    /// The whole of linear memory as a byte slice, borrowed for as long as `self` is; `None`
    /// as [`Guest::lendable`] says.
    #[inline]
    pub(crate) fn memory_slice(&self) -> Option<&[u8]> {
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
    #[inline]
    pub(crate) fn memory_slice_mut(&mut self) -> Option<&mut [u8]> {
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
    pub fn bytes(&self, region: Region) -> Result<Cow<'_, [u8]>, Error> {
        if let Some(memory) = self.memory_slice()
            && let Some(range) = region.fits(memory.len())
        {
            return Ok(Cow::Borrowed(&memory[range]));
        }
        self.bytes_slow(region)
    }

    /// [`Guest::bytes`] when the range does not fit or the memory is not lent: the error
    /// (before anything is allocated), or a copy. Out of line, so that the common case stays a few instructions.
    #[cold]
    #[inline(never)]
    fn bytes_slow(&self, region: Region) -> Result<Cow<'_, [u8]>, Error> {
        let mut bytes = vec![0; region.range_in(self.memory_size())?.len()];
        self.read_into_slow(region.offset, &mut bytes)?;
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
    #[inline]
    pub fn read_into(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        if let Some(memory) = self.memory_slice()
            && let Some(range) = Region::fitting(offset, buf.len(), memory.len())
        {
            buf.copy_from_slice(&memory[range]);
            return Ok(());
        }
        self.read_into_slow(offset, buf)
    }

    /// [`Guest::read_into`] when the range does not fit or the memory is not lent.
    #[cold]
    #[inline(never)]
    fn read_into_slow(&self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        let region = Region::spanning(offset, buf.len())?;
        let (view, start) = self.view_at(region)?;
        view.read(start, buf)
            .map_err(|_| region.out_of_bounds(view.data_size()))
    }

    /// A view of the memory and where `region` starts in it, once the range is known to lie
    /// within it: the way through wasmer's copying accessors when the memory is not lent,
    /// and the error when a range does not fit. (The view reads; a write through it is
    /// made only by a `&mut self` method.)
    fn view_at(&self, region: Region) -> Result<(MemoryView<'_>, u64), Error> {
        let view = self.memory.view(&self.store);
        let start = region.range_in(view.data_size())?.start as u64;
        Ok((view, start))
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
        if let Some(memory) = self.memory_slice_mut()
            && let Some(range) = Region::fitting(offset, bytes.len(), memory.len())
        {
            memory[range].copy_from_slice(bytes);
            return Ok(());
        }
        self.write_slow(offset, bytes)
    }

    /// [`Guest::write`] when the range does not fit or the memory is not lent.
    #[cold]
    #[inline(never)]
    fn write_slow(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        let region = Region::spanning(offset, bytes.len())?;
        let (view, start) = self.view_at(region)?;
        view.write(start, bytes)
            .map_err(|_| region.out_of_bounds(view.data_size()))
    }

    /// Whether the guest's memory is shared; its reads and writes then go through wasmer's
    /// copying accessors instead of plain copies, and [`Guest::bytes`] copies.
    pub fn memory_is_shared(&self) -> bool {
        self.shared
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
    use super::*;
    use crate::{GuestModule, Limits};

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
