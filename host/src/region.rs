//! A byte range of guest memory.

use crate::Error;

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
            return Err(self.out_of_bounds(memory_size));
        }
        // Both fit in u32, which fits in usize on every host wasmer supports.
        Ok(offset as usize..end as usize)
    }

    /// The error for this region past the end of a memory of `memory_size` bytes.
    pub(crate) fn out_of_bounds(self, memory_size: u64) -> Error {
        Error::OutOfBounds {
            offset: self.offset,
            len: self.len,
            memory_size,
        }
    }

    /// `offset..offset + len` when it lies within a memory of `memory_len` bytes and the
    /// 32-bit address space; `None` otherwise, and then [`Region::range_in`] says why. The
    /// check of the common case, without building an error.
    #[inline]
    pub(crate) fn fitting(
        offset: u32,
        len: usize,
        memory_len: usize,
    ) -> Option<std::ops::Range<usize>> {
        let start = offset as usize;
        let end = start.checked_add(len)?;
        (end <= memory_len && end <= u32::MAX as usize).then_some(start..end)
    }

    /// [`Region::fitting`] of this region.
    #[inline]
    pub(crate) fn fits(self, memory_len: usize) -> Option<std::ops::Range<usize>> {
        Region::fitting(self.offset, self.len as usize, memory_len)
    }
}
