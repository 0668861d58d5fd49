//! A small first-fit allocator over linear memory, for `cabi_realloc`.
//!
//! The heap is a run of blocks from its base up to `end`, each an 8-byte header (the
//! payload's size, and whether it is in use) followed by its payload, 8-byte aligned. A
//! request takes the first free block that fits (splitting off the rest), else extends the
//! last block or appends one, growing memory with `memory.grow` when the run reaches its end.
//! Freeing merges neighbouring free blocks. Every failure (no memory left under the host's
//! cap, a size that does not fit in 32 bits, an address that is not a block) is an answer,
//! never a trap, and changes nothing.
//!
//! The guest holds one string and the host hands it one block at a time, so the heap holds
//! a handful of blocks and a walk over them is short.
//!
//! Addresses are `u32`, as in wasm32; [`Memory`] is the linear memory on wasm32 and a
//! `Vec` in the native unit tests.

/// Linear memory, as the allocator needs it. Addresses passed in are always in bounds.
pub trait Memory {
    /// The memory's size in bytes.
    fn size(&self) -> u32;
    /// Grows the memory by `pages` 64 KiB pages; false when it cannot.
    fn grow(&mut self, pages: u32) -> bool;
    /// The `u32` at `addr` (4-aligned).
    fn read_u32(&self, addr: u32) -> u32;
    /// Writes `value` at `addr` (4-aligned).
    fn write_u32(&mut self, addr: u32, value: u32);
    /// Copies `len` bytes from `src` to `dst`; the ranges may overlap.
    fn copy(&mut self, dst: u32, src: u32, len: u32);
    /// Writes `bytes` at `addr`.
    fn write(&mut self, addr: u32, bytes: &[u8]);
}

const HEADER: u32 = 8;
const ALIGN: u32 = 8;
const PAGE: u32 = 65536;
const USED: u32 = 1;

/// The heap: where it starts and where its last block ends. `base` 0 is a heap not yet
/// placed (see [`Heap::place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heap {
    base: u32,
    end: u32,
}

fn round_up(n: u32) -> Option<u32> {
    n.checked_add(ALIGN - 1).map(|n| n & !(ALIGN - 1))
}

// Every method returns plain integers (an address, 0 for none): an `Option` of a struct
// would come back through the shadow stack, and leave traces in memory.
impl Heap {
    /// A heap not yet placed.
    pub const fn unplaced() -> Heap {
        Heap { base: 0, end: 0 }
    }

    /// Places an unplaced heap at `base` (rounded up to 8); a placed one stays where it is.
    pub fn place(&mut self, base: u32) -> &mut Heap {
        if self.base == 0 {
            let base = (base + ALIGN - 1) & !(ALIGN - 1);
            *self = Heap { base, end: base };
        }
        self
    }

    /// The header of the block in use at `ptr` when `ptr` is not 0, else of the first free
    /// block of at least `size` bytes; 0 when there is none. (One search for both, with
    /// plain integers in and out: a closure would copy the loop, and an `Option` would come
    /// back through the shadow stack.)
    fn find<M: Memory>(&self, mem: &M, ptr: u32, size: u32) -> u32 {
        let mut at = self.base;
        while at < self.end {
            let have = mem.read_u32(at);
            let used = mem.read_u32(at + 4) == USED;
            let found = if ptr == 0 {
                !used && have >= size
            } else {
                used && at + HEADER == ptr
            };
            if found {
                return at;
            }
            at += HEADER + have;
        }
        0
    }

    /// The payload size of the block in use at `ptr`, or 0 when `ptr` is not one.
    pub fn size_of<M: Memory>(&self, mem: &M, ptr: u32) -> u32 {
        match self.find(mem, ptr, 0) {
            0 => 0,
            header if ptr != 0 => mem.read_u32(header),
            _ => 0,
        }
    }

    fn set(mem: &mut impl Memory, header: u32, size: u32, used: bool) {
        mem.write_u32(header, size);
        mem.write_u32(header + 4, u32::from(used));
    }

    /// Moves `end` to `new_end`, growing memory if needed; false when it cannot.
    fn extend<M: Memory>(&mut self, mem: &mut M, new_end: Option<u32>) -> bool {
        let Some(new_end) = new_end else {
            return false;
        };
        let size = mem.size();
        if new_end > size && !mem.grow((new_end - size).div_ceil(PAGE)) {
            return false;
        }
        self.end = new_end;
        true
    }

    /// A block of at least `len` bytes: the first free one that fits, else a new one at the
    /// end. Its address, or 0, with nothing changed, when memory cannot hold it.
    pub fn alloc<M: Memory>(&mut self, mem: &mut M, len: u32) -> u32 {
        let Some(size) = round_up(len.max(1)) else {
            return 0;
        };
        let header = self.find(mem, 0, size);
        if header != 0 {
            mem.write_u32(header + 4, USED);
            return header + HEADER;
        }
        let header = self.end;
        if !self.extend(
            mem,
            header.checked_add(HEADER).and_then(|p| p.checked_add(size)),
        ) {
            return 0;
        }
        Self::set(mem, header, size, true);
        header + HEADER
    }

    /// Frees the block at `ptr`; false (and nothing changes) when it is not a block in use.
    pub fn free<M: Memory>(&mut self, mem: &mut M, ptr: u32) -> bool {
        if self.size_of(mem, ptr) == 0 {
            return false;
        }
        mem.write_u32(ptr - HEADER + 4, 0);
        // Merge runs of free blocks, and end the heap after its last block in use.
        let (mut at, mut last_used_end) = (self.base, self.base);
        while at < self.end {
            let size = mem.read_u32(at);
            let next = at + HEADER + size;
            if mem.read_u32(at + 4) == USED {
                last_used_end = next;
            } else if next < self.end && mem.read_u32(next + 4) != USED {
                Self::set(mem, at, size + HEADER + mem.read_u32(next), false);
                continue;
            }
            at = next;
        }
        self.end = last_used_end;
        true
    }

    /// `ptr`'s block with room for `len` bytes: itself when it has it, grown in place when it
    /// is the last, else a new block holding its first `keep` bytes (and it is freed).
    /// Returns the address, or 0, with nothing changed, when `ptr` is not a block in use,
    /// `keep` is more than it holds, or memory cannot hold the new size.
    pub fn realloc<M: Memory>(&mut self, mem: &mut M, ptr: u32, keep: u32, len: u32) -> u32 {
        let have = self.size_of(mem, ptr);
        let Some(size) = round_up(len.max(1)) else {
            return 0;
        };
        if have == 0 || keep > have {
            return 0;
        }
        if size <= have {
            return ptr;
        }
        if ptr + have == self.end {
            if !self.extend(mem, ptr.checked_add(size)) {
                return 0;
            }
            mem.write_u32(ptr - HEADER, size);
            return ptr;
        }
        let new = self.alloc(mem, len);
        if new != 0 {
            mem.copy(new, ptr, keep);
            self.free(mem, ptr);
        }
        new
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec::Vec;

    /// Linear memory as a `Vec`, with a cap on its pages.
    pub(crate) struct VecMemory {
        pub bytes: Vec<u8>,
        pub max_pages: u32,
    }

    impl VecMemory {
        pub(crate) fn new(pages: u32, max_pages: u32) -> Self {
            VecMemory {
                bytes: std::vec![0; (pages * PAGE) as usize],
                max_pages,
            }
        }
    }

    impl Memory for VecMemory {
        fn size(&self) -> u32 {
            u32::try_from(self.bytes.len()).unwrap()
        }
        fn grow(&mut self, pages: u32) -> bool {
            let now = self.size() / PAGE;
            if now + pages > self.max_pages {
                return false;
            }
            self.bytes.resize(((now + pages) * PAGE) as usize, 0);
            true
        }
        fn read_u32(&self, addr: u32) -> u32 {
            let a = addr as usize;
            u32::from_le_bytes(self.bytes[a..a + 4].try_into().unwrap())
        }
        fn write_u32(&mut self, addr: u32, value: u32) {
            let a = addr as usize;
            self.bytes[a..a + 4].copy_from_slice(&value.to_le_bytes());
        }
        fn copy(&mut self, dst: u32, src: u32, len: u32) {
            let (d, s, l) = (dst as usize, src as usize, len as usize);
            self.bytes.copy_within(s..s + l, d);
        }
        fn write(&mut self, addr: u32, bytes: &[u8]) {
            let a = addr as usize;
            self.bytes[a..a + bytes.len()].copy_from_slice(bytes);
        }
    }

    fn live(heap: &Heap, mem: &VecMemory) -> Vec<(u32, u32, bool)> {
        let mut blocks = Vec::new();
        let mut at = heap.base;
        while at < heap.end {
            let size = mem.read_u32(at);
            blocks.push((at, size, mem.read_u32(at + 4) == USED));
            at += HEADER + size;
        }
        blocks
    }

    fn heap(base: u32) -> Heap {
        *Heap::unplaced().place(base)
    }

    #[test]
    fn allocates_aligned_blocks_one_after_the_other() {
        let mut mem = VecMemory::new(1, 4);
        let mut heap = heap(1001);
        let a = heap.alloc(&mut mem, 13);
        let b = heap.alloc(&mut mem, 1);
        assert_eq!((a, heap.size_of(&mem, a)), (1016, 16));
        assert_eq!((b, heap.size_of(&mem, b)), (1040, 8));
        assert_eq!(heap.size_of(&mem, a + 8), 0);
        // Placing again moves nothing.
        let placed = heap;
        assert_eq!(*heap.place(5000), placed);
    }

    #[test]
    fn grows_memory_and_refuses_past_the_cap_changing_nothing() {
        let mut mem = VecMemory::new(1, 3);
        let mut heap = heap(1024);
        let big = heap.alloc(&mut mem, 100_000);
        assert_ne!(big, 0);
        assert_eq!(mem.size(), 2 * PAGE);
        let before = (heap, mem.bytes.clone());
        assert_eq!(heap.alloc(&mut mem, 200_000), 0);
        assert_eq!(heap.realloc(&mut mem, big, 10, 300_000), 0);
        assert_eq!(heap.alloc(&mut mem, u32::MAX), 0);
        assert_eq!(heap.alloc(&mut mem, u32::MAX - 3), 0);
        assert_eq!(heap.alloc(&mut mem, u32::MAX - 16), 0);
        assert_eq!((heap, mem.bytes.clone()), before);
    }

    #[test]
    fn freed_blocks_are_reused_and_merged() {
        let mut mem = VecMemory::new(1, 1);
        let mut heap = heap(8);
        let a = heap.alloc(&mut mem, 64);
        let b = heap.alloc(&mut mem, 64);
        let c = heap.alloc(&mut mem, 64);
        assert!(heap.free(&mut mem, a));
        assert!(!heap.free(&mut mem, a), "a double free is refused");
        assert!(heap.free(&mut mem, b));
        // a and b merged: 64 + 8 + 64 bytes, where a 100-byte block fits.
        assert_eq!(live(&heap, &mem)[0], (8, 136, false));
        assert_eq!(heap.alloc(&mut mem, 100), a);
        assert_eq!(heap.size_of(&mem, a), 136);
        // Freeing the last block gives it back to the end.
        assert!(heap.free(&mut mem, c));
        assert_eq!(heap.end, c - HEADER);
        // And freeing all of them empties the heap.
        assert!(heap.free(&mut mem, a));
        assert_eq!(heap.end, heap.base);
        // The same strings over and over use the same memory: no leak.
        for _ in 0..1000 {
            let x = heap.alloc(&mut mem, 5000);
            assert!(heap.free(&mut mem, x));
        }
        assert_eq!(mem.size(), PAGE);
    }

    #[test]
    fn realloc_grows_in_place_when_it_can_and_moves_when_it_must() {
        let mut mem = VecMemory::new(1, 8);
        let mut heap = heap(8);
        let a = heap.alloc(&mut mem, 16);
        mem.write(a, b"0123456789abcdef");
        // The last block grows in place.
        assert_eq!(heap.realloc(&mut mem, a, 16, 1000), a);
        assert_eq!(heap.size_of(&mem, a), 1000);
        let b = heap.alloc(&mut mem, 8);
        // Now it must move, keeping its bytes.
        let a3 = heap.realloc(&mut mem, a, 16, 5000);
        assert!(a3 != 0 && a3 != a);
        assert_eq!(&mem.bytes[a3 as usize..][..16], b"0123456789abcdef");
        assert_eq!(heap.size_of(&mem, a), 0, "the old block is free");
        // Shrinking keeps the block.
        assert_eq!(heap.realloc(&mut mem, b, 8, 4), b);
        // Not a block, or keeping more than it holds: refused.
        assert_eq!(heap.realloc(&mut mem, b + 8, 8, 100), 0);
        assert_eq!(heap.realloc(&mut mem, b, 9, 100), 0);
    }
}
