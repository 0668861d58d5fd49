//! A WebAssembly guest that holds one string in its linear memory: at first in a fixed-size
//! static buffer, later in a block of its own heap.
//!
//! This is the module of the Wasmer guide "Using memory pointers", written in Rust. The host
//! finds the string with `load`, may overwrite the bytes there (up to `capacity`, which is
//! [`CAPACITY`] while the string is in the static buffer), tells the guest the new length with
//! `set_len`, and may ask the guest to append [`SUFFIX`] itself with `transform`. Data of any
//! size goes the other way: the host asks for a block with `cabi_realloc` (the canonical
//! ABI's allocator, over the small first-fit heap of [`heap`]), writes it, and the guest
//! takes it as its string with `adopt`. The exports, their types and their error codes are
//! described once, in the `abi` crate of this workspace; this crate takes its codes from
//! there.
//!
//! The crate is `no_std`, has no global allocator (its heap is its own, for the host's
//! blocks) and imports nothing. Its logic lives in [`State`], plain Rust over any
//! [`heap::Memory`], so `cargo test -p guest` tests it natively. The exports are thin
//! wrappers over one static `State` and the linear memory, and exist only on wasm32:
//! natively there is no export and no static to race on. `cargo xtask build-guest` compiles
//! the crate for `wasm32-unknown-unknown` and rewrites the linked module so that `load`
//! returns its pair as Wasm multi-value results (`() -> (i32, i32)`), which rustc cannot
//! emit by itself.
//!
//! ```compile_fail
//! // Natively the exports do not exist: tests go through `State`.
//! let _ = guest::exports::set_len(3);
//! ```
#![no_std]

// Natively (unit tests, clippy, a host-side `cargo build`) link std for its panic handler; on
// wasm32 the handler below traps instead, and nothing from std is linked.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

pub use abi::ErrorCode as Error;
pub use abi::SUFFIX;

pub mod heap;

use heap::{Heap, Memory};

/// A heap block the string lives in: its address and the bytes it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Address of its first byte.
    pub ptr: u32,
    /// Its size in bytes.
    pub size: u32,
}

/// Size in bytes of the static string buffer, fixed at build time.
pub const CAPACITY: usize = 4096;

/// The string the buffer holds when the module is instantiated.
pub const INITIAL: &[u8] = b"Hello, World!";

/// The static buffer's bytes at start: [`INITIAL`], then zeros. Evaluated at compile time so
/// that it lands in the module's data segment.
pub const fn initial_buffer() -> [u8; CAPACITY] {
    let mut bytes = [0; CAPACITY];
    let mut i = 0;
    while i < INITIAL.len() {
        bytes[i] = INITIAL[i];
        i += 1;
    }
    bytes
}

/// Where the string is: the static buffer, or a block of the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The static buffer of [`CAPACITY`] bytes.
    Static,
    /// A heap block, from `cabi_realloc` (by way of `adopt`) or grown by `transform`.
    Heap(Block),
}

/// The guest's string: where it is, how long, and the heap it may move to. The logic of
/// every export, over any [`Memory`], so that it is tested natively.
///
/// `len` never exceeds the capacity of the place; every method that fails changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    place: Place,
    len: u32,
    heap: Heap,
}

/// [`CAPACITY`] as the `u32` of wasm32 lengths.
#[allow(clippy::cast_possible_truncation, reason = "4096 fits")]
const STATIC_CAPACITY: u32 = CAPACITY as u32;

impl State {
    /// The state at start: [`INITIAL`] in the static buffer, an empty heap.
    #[allow(clippy::cast_possible_truncation, reason = "13 fits")]
    pub const fn new() -> State {
        State {
            place: Place::Static,
            len: INITIAL.len() as u32,
            heap: Heap::unplaced(),
        }
    }

    /// Where the string is (`statics`: the static buffer's address) and its length.
    pub fn load(&self, statics: u32) -> (u32, u32) {
        match self.place {
            Place::Static => (statics, self.len),
            Place::Heap(block) => (block.ptr, self.len),
        }
    }

    /// The size of the buffer at the string's address.
    pub fn capacity(&self) -> u32 {
        match self.place {
            Place::Static => STATIC_CAPACITY,
            Place::Heap(block) => block.size,
        }
    }

    /// The string's length.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the string is.
    pub fn place(&self) -> Place {
        self.place
    }

    /// Places the heap at `base` (where the static data ends), once: every method that
    /// allocates needs it placed.
    pub fn place_heap(&mut self, base: u32) {
        self.heap.place(base);
    }

    /// The string's block, now `ptr` in `mem`.
    fn block<M: Memory>(&self, mem: &M, ptr: u32) -> Place {
        Place::Heap(Block {
            ptr,
            size: self.heap.size_of(mem, ptr),
        })
    }

    /// Adopts `len` bytes, which the host has already written at the string's address, as
    /// the string.
    ///
    /// # Errors
    /// [`Error::NegativeLength`] when `len < 0`; [`Error::OverCapacity`] when `len` exceeds
    /// [`State::capacity`].
    #[inline(always)]
    pub fn set_len(&mut self, len: i32) -> Result<(), Error> {
        let len = u32::try_from(len).map_err(|_| Error::NegativeLength)?;
        if len > self.capacity() {
            return Err(Error::OverCapacity);
        }
        self.len = len;
        Ok(())
    }

    /// Appends [`SUFFIX`]: in place when it fits, else in a larger heap block (the string
    /// moves there, and a heap block it leaves is freed). Returns the new length.
    ///
    /// # Errors
    /// [`Error::OverCapacity`] when the result's length does not fit in an `i32`;
    /// [`Error::NoMemory`] when no block can hold it under the host's memory cap.
    #[inline(always)]
    pub fn transform<M: Memory>(&mut self, mem: &mut M, statics: u32) -> Result<u32, Error> {
        let suffix = u32::try_from(SUFFIX.len()).map_err(|_| Error::OverCapacity)?;
        let new_len = self.len.checked_add(suffix).ok_or(Error::OverCapacity)?;
        if i32::try_from(new_len).is_err() {
            return Err(Error::OverCapacity);
        }
        let (ptr, len) = self.load(statics);
        let at = if new_len <= self.capacity() {
            ptr
        } else {
            let moved = match self.place {
                Place::Static => {
                    let block = self.heap.alloc(mem, new_len);
                    if block != 0 {
                        mem.copy(block, ptr, len);
                    }
                    block
                }
                Place::Heap(old) => self.heap.realloc(mem, old.ptr, len, new_len),
            };
            if moved == 0 {
                return Err(Error::NoMemory);
            }
            self.place = self.block(mem, moved);
            moved
        };
        mem.write(at + len, SUFFIX);
        self.len = new_len;
        Ok(new_len)
    }

    /// `cabi_realloc(old_ptr, old_len, align, new_len)` of the canonical ABI: a block of
    /// `new_len` bytes aligned to `align` (at most 8), holding the first `old_len` bytes of
    /// the block at `old_ptr` when that is not null (which is then freed, or grown in
    /// place). Also: `new_len` 0 with a block frees it. Returns the block's address, `align`
    /// for an empty request, and 0 when it cannot (no memory left under the cap, an `align`
    /// it does not support, an `old_ptr` that is not a block or is the guest's own string):
    /// then nothing changed.
    #[inline(always)]
    pub fn realloc<M: Memory>(
        &mut self,
        mem: &mut M,
        old_ptr: u32,
        old_len: u32,
        align: u32,
        new_len: u32,
    ) -> u32 {
        if !align.is_power_of_two() || align > 8 {
            return 0;
        }
        if old_ptr == 0 {
            return match (old_len, new_len) {
                (0, 0) => align,
                (0, len) => self.heap.alloc(mem, len),
                _ => 0,
            };
        }
        if matches!(self.place, Place::Heap(b) if b.ptr == old_ptr) {
            return 0;
        }
        if new_len == 0 {
            return if self.heap.free(mem, old_ptr) {
                align
            } else {
                0
            };
        }
        self.heap.realloc(mem, old_ptr, old_len, new_len)
    }

    /// Adopts the block at `ptr`, from `cabi_realloc`, holding `len` bytes the host wrote,
    /// as the string; a heap block the string leaves is freed. `ptr` may be the string's own
    /// block (then this is `set_len`).
    ///
    /// # Errors
    /// [`Error::NegativeLength`] when `len < 0`; [`Error::NotABlock`] when `ptr` is not a
    /// block from `cabi_realloc`; [`Error::OverCapacity`] when `len` exceeds the block.
    #[inline(always)]
    pub fn adopt<M: Memory>(&mut self, mem: &mut M, ptr: u32, len: i32) -> Result<(), Error> {
        let len = u32::try_from(len).map_err(|_| Error::NegativeLength)?;
        let size = self.heap.size_of(mem, ptr);
        if size == 0 {
            return Err(Error::NotABlock);
        }
        if len > size {
            return Err(Error::OverCapacity);
        }
        if let Place::Heap(old) = self.place
            && old.ptr != ptr
        {
            self.heap.free(mem, old.ptr);
        }
        self.place = Place::Heap(Block { ptr, size });
        self.len = len;
        Ok(())
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// Offset and length of the string, as `load` returns them.
///
/// rustc returns this struct through a hidden out-pointer (`(param i32)` in Wasm); the
/// build's post-link step wraps it so that the exported `load` is `() -> (i32, i32)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Pair {
    /// Address of the first byte in linear memory.
    pub offset: u32,
    /// Length in bytes; never above the capacity of the place the string is in (the
    /// static buffer's [`CAPACITY`], or its heap block's size).
    pub len: u32,
}

/// The exports, over the static buffer, one [`State`] and the linear memory. Only on wasm32,
/// which has one thread: natively they would be safe functions racing on a static.
#[cfg(target_arch = "wasm32")]
pub mod exports {
    use core::arch::wasm32;
    use core::cell::UnsafeCell;

    use super::{CAPACITY, Memory, Pair, State, initial_buffer};

    /// A static the exports change.
    struct Cell<T>(UnsafeCell<T>);

    // SAFETY: wasm32-unknown-unknown without the `atomics` feature has one thread, and no
    // export calls another or is re-entered, so at most one reference to each exists at a
    // time.
    unsafe impl<T> Sync for Cell<T> {}

    /// The static buffer, then the state: one static, so that the buffer keeps the place
    /// it has always had (4112, right after the suffix), which the demo prints.
    #[repr(C)]
    struct Statics {
        buffer: [u8; CAPACITY],
        state: State,
    }

    static STATICS: Cell<Statics> = Cell(UnsafeCell::new(Statics {
        buffer: initial_buffer(),
        state: State::new(),
    }));

    unsafe extern "C" {
        /// Where wasm-ld ends the static data: the heap starts here.
        static __heap_base: u8;
    }

    /// The linear memory, through raw pointers: every address the heap passes is within it.
    struct Linear;

    impl Memory for Linear {
        fn size(&self) -> u32 {
            // 65 536 pages would be 4 GiB, one more than u32 holds.
            u32::try_from(wasm32::memory_size(0) << 16).unwrap_or(u32::MAX)
        }
        fn grow(&mut self, pages: u32) -> bool {
            wasm32::memory_grow(0, pages as usize) != usize::MAX
        }
        fn read_u32(&self, addr: u32) -> u32 {
            // SAFETY: `addr` is a 4-aligned heap address within memory (the heap's rule).
            unsafe { (addr as usize as *const u32).read() }
        }
        fn write_u32(&mut self, addr: u32, value: u32) {
            // SAFETY: as for `read_u32`; no reference to heap memory is live.
            unsafe { (addr as usize as *mut u32).write(value) }
        }
        fn copy(&mut self, dst: u32, src: u32, len: u32) {
            // SAFETY: both ranges lie within memory (the heap's rule); `copy` allows overlap.
            unsafe {
                core::ptr::copy(
                    src as usize as *const u8,
                    dst as usize as *mut u8,
                    len as usize,
                )
            }
        }
        fn write(&mut self, addr: u32, bytes: &[u8]) {
            // SAFETY: `addr..addr + bytes.len()` is within the string's buffer, which no
            // reference covers while an export runs.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    addr as usize as *mut u8,
                    bytes.len(),
                )
            }
        }
    }

    /// Runs `f` on the state, the memory, and the static buffer's address; with the heap
    /// placed first when `heap` says so (only the exports that allocate or free need it).
    fn with_state<R>(heap: bool, f: impl FnOnce(&mut State, &mut Linear, u32) -> R) -> R {
        let all = STATICS.0.get();
        // The buffer is the first field.
        let statics = all as usize as u32;
        // SAFETY: see `impl Sync for Cell`: this is the only live reference to the state,
        // and none to the buffer exists (it is written through `Linear`'s raw pointers).
        let state = unsafe { &mut (*all).state };
        if heap {
            // Taking the address of a linker symbol reads nothing.
            state.place_heap((&raw const __heap_base) as usize as u32);
        }
        // SAFETY: `Linear` has no size: any aligned, non-null pointer is a valid reference
        // to it, and this one needs no stack slot (a local's address would).
        let mem = unsafe { core::ptr::NonNull::<Linear>::dangling().as_mut() };
        f(state, mem, statics)
    }

    fn code(result: Result<(), super::Error>) -> i32 {
        match result {
            Ok(()) => 0,
            Err(e) => e.code(),
        }
    }

    /// Where the string is: `(offset, length)`.
    #[unsafe(no_mangle)]
    pub extern "C" fn load() -> Pair {
        with_state(false, |s, _, statics| {
            let (offset, len) = s.load(statics);
            Pair { offset, len }
        })
    }

    /// The size of the buffer at `load`'s offset.
    #[unsafe(no_mangle)]
    pub extern "C" fn capacity() -> i32 {
        with_state(false, |s, _, _| {
            i32::try_from(s.capacity()).unwrap_or(i32::MAX)
        })
    }

    /// The host wrote `len` bytes at `load`'s offset: adopt them as the string. Returns 0,
    /// or a negative error code with the length unchanged.
    #[unsafe(no_mangle)]
    pub extern "C" fn set_len(len: i32) -> i32 {
        with_state(false, |s, _, _| code(s.set_len(len)))
    }

    /// Appends the suffix, moving the string to a larger heap block when it must. Returns
    /// the new length, or a negative error code with the string unchanged.
    #[unsafe(no_mangle)]
    pub extern "C" fn transform() -> i32 {
        with_state(true, |s, mem, statics| match s.transform(mem, statics) {
            Ok(len) => len.cast_signed(),
            Err(e) => e.code(),
        })
    }

    /// The canonical ABI's allocator: see [`State::realloc`].
    #[unsafe(no_mangle)]
    pub extern "C" fn cabi_realloc(old_ptr: i32, old_len: i32, align: i32, new_len: i32) -> i32 {
        with_state(true, |s, mem, _| {
            s.realloc(
                mem,
                old_ptr.cast_unsigned(),
                old_len.cast_unsigned(),
                align.cast_unsigned(),
                new_len.cast_unsigned(),
            )
            .cast_signed()
        })
    }

    /// Adopts the block at `ptr`, holding `len` bytes the host wrote, as the string: see
    /// [`State::adopt`]. Returns 0 or a negative error code, with nothing changed.
    #[unsafe(no_mangle)]
    pub extern "C" fn adopt(ptr: i32, len: i32) -> i32 {
        with_state(true, |s, mem, _| {
            code(s.adopt(mem, ptr.cast_unsigned(), len))
        })
    }
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::tests::VecMemory;

    /// Where the tests put the static buffer and the heap, as wasm-ld does.
    const STATICS: u32 = 4112;
    const BASE: u32 = STATICS + 4096;

    /// A memory of `pages` (at most `max`) holding the initial buffer, and the state.
    fn start(pages: u32, max: u32) -> (VecMemory, State) {
        let mut mem = VecMemory::new(pages, max);
        mem.write(STATICS, &initial_buffer());
        let mut state = State::new();
        state.place_heap(BASE);
        (mem, state)
    }

    fn string(mem: &VecMemory, s: &State) -> std::vec::Vec<u8> {
        let (ptr, len) = s.load(STATICS);
        mem.bytes[ptr as usize..][..len as usize].to_vec()
    }

    #[test]
    fn starts_with_hello_world_in_the_static_buffer() {
        let (mem, s) = start(1, 1);
        assert_eq!(string(&mem, &s), b"Hello, World!");
        assert_eq!((s.load(STATICS), s.capacity()), ((STATICS, 13), 4096));
        assert_eq!(s.place(), Place::Static);
    }

    #[test]
    fn set_len_adopts_written_bytes_and_refuses_changing_nothing() {
        let (mut mem, mut s) = start(1, 1);
        mem.write(STATICS, b"Hello, Wasmer!");
        assert_eq!(s.set_len(14), Ok(()));
        assert_eq!(string(&mem, &s), b"Hello, Wasmer!");
        assert_eq!(s.set_len(0), Ok(()));
        assert!(s.is_empty());
        assert_eq!(s.set_len(4096), Ok(()));
        for (len, err) in [
            (-1, Error::NegativeLength),
            (i32::MIN, Error::NegativeLength),
            (4097, Error::OverCapacity),
            (i32::MAX, Error::OverCapacity),
        ] {
            assert_eq!(s.set_len(len), Err(err));
            assert_eq!(s.len(), 4096);
        }
    }

    #[test]
    fn transform_appends_in_place_while_it_fits() {
        let (mut mem, mut s) = start(1, 1);
        assert_eq!(s.transform(&mut mem, STATICS), Ok(27));
        assert_eq!(string(&mem, &s), b"Hello, World! Wasm is cool!");
        assert_eq!(s.place(), Place::Static);
    }

    #[test]
    fn transform_moves_a_string_that_outgrows_its_buffer_to_the_heap() {
        let (mut mem, mut s) = start(1, 4);
        mem.write(STATICS, &[b'y'; 4090]);
        s.set_len(4090).unwrap();
        assert_eq!(s.transform(&mut mem, STATICS), Ok(4104));
        let Place::Heap(block) = s.place() else {
            panic!("{s:?}")
        };
        assert!(block.ptr >= BASE && block.size >= 4104);
        let mut expected = std::vec![b'y'; 4090];
        expected.extend_from_slice(SUFFIX);
        assert_eq!(string(&mem, &s), expected);
        // And again, growing the heap block (and memory) as it goes.
        for _ in 0..10_000 {
            s.transform(&mut mem, STATICS).unwrap();
        }
        assert_eq!(s.len(), 4104 + 10_000 * 14);
        assert!(string(&mem, &s).ends_with(b"cool! Wasm is cool!"));
        // Grown in place, a page at a time: 144 104 bytes in 3 pages.
        assert_eq!(mem.bytes.len(), 3 * 65536);
    }

    #[test]
    fn transform_without_memory_left_changes_nothing() {
        let (mut mem, mut s) = start(1, 1);
        mem.write(STATICS, &[b'z'; 4090]);
        s.set_len(4090).unwrap();
        // Fill the rest of the only page, so that no block of 4104 bytes fits.
        let free = 65536 - BASE - 8;
        let _ = s.realloc(&mut mem, 0, 0, 1, free - 8).max(1);
        let before = (s, mem.bytes.clone());
        assert_eq!(s.transform(&mut mem, STATICS), Err(Error::NoMemory));
        assert_eq!((s, mem.bytes.clone()), before);
    }

    #[test]
    fn the_host_allocates_writes_and_the_guest_adopts() {
        let (mut mem, mut s) = start(1, 8);
        let data = std::vec![b'a'; 100_000];
        let ptr = s.realloc(&mut mem, 0, 0, 1, 100_000);
        assert!(ptr >= BASE && ptr % 8 == 0, "{ptr}");
        mem.write(ptr, &data);
        assert_eq!(s.adopt(&mut mem, ptr, 100_000), Ok(()));
        assert_eq!(s.load(STATICS), (ptr, 100_000));
        assert!(s.capacity() >= 100_000);
        assert_eq!(s.transform(&mut mem, STATICS), Ok(100_014));
        assert!(string(&mem, &s).ends_with(b"aa Wasm is cool!"));
        // A second string replaces the first, whose block is freed and used again.
        let (old, _) = s.load(STATICS);
        let second = s.realloc(&mut mem, 0, 0, 1, 10);
        mem.write(second, b"0123456789");
        assert_eq!(s.adopt(&mut mem, second, 10), Ok(()));
        assert_eq!(string(&mem, &s), b"0123456789");
        assert_eq!(s.realloc(&mut mem, 0, 0, 1, 50_000), old, "the freed block");
    }

    #[test]
    fn adopt_and_realloc_refuse_what_they_cannot_do_and_change_nothing() {
        let (mut mem, mut s) = start(1, 2);
        let block = s.realloc(&mut mem, 0, 0, 1, 64);
        mem.write(block, b"kept");
        s.adopt(&mut mem, block, 4).unwrap();
        let before = (s, mem.bytes.clone());
        assert_eq!(s.adopt(&mut mem, block, -1), Err(Error::NegativeLength));
        assert_eq!(s.adopt(&mut mem, block, 65), Err(Error::OverCapacity));
        for ptr in [0, STATICS, block + 8, BASE, u32::MAX] {
            assert_eq!(s.adopt(&mut mem, ptr, 1), Err(Error::NotABlock), "{ptr}");
        }
        // The string's own block is the guest's: not reallocated, not freed by the host.
        assert_eq!(s.realloc(&mut mem, block, 4, 1, 128), 0);
        assert_eq!(s.realloc(&mut mem, block, 4, 1, 0), 0);
        // Unsupported alignments, sizes past the cap, old lengths without a block.
        assert_eq!(s.realloc(&mut mem, 0, 0, 3, 8), 0);
        assert_eq!(s.realloc(&mut mem, 0, 0, 16, 8), 0);
        assert_eq!(s.realloc(&mut mem, 0, 0, 1, 200_000), 0);
        assert_eq!(s.realloc(&mut mem, 0, 0, 1, u32::MAX), 0);
        assert_eq!(s.realloc(&mut mem, 0, 5, 1, 8), 0);
        assert_eq!(s.realloc(&mut mem, 12345, 5, 1, 8), 0);
        assert_eq!((s, mem.bytes.clone()), before);
        assert_eq!(string(&mem, &s), b"kept");
        // An empty request is the alignment, as the canonical ABI has it.
        assert_eq!(s.realloc(&mut mem, 0, 0, 4, 0), 4);
    }

    #[test]
    fn a_block_the_host_abandons_can_be_freed() {
        let (mut mem, mut s) = start(1, 1);
        let a = s.realloc(&mut mem, 0, 0, 1, 1000);
        assert_eq!(s.realloc(&mut mem, a, 1000, 1, 0), 1);
        assert_eq!(s.realloc(&mut mem, a, 1000, 1, 0), 0, "not twice");
        assert_eq!(s.realloc(&mut mem, 0, 0, 1, 1000), a);
    }
}
