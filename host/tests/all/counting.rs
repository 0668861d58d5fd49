//! The global allocator of this test binary: it counts, per thread, how many allocations
//! were made and how many bytes they asked for, so that tests running side by side do not
//! count each other (`allocation.rs`, `derive.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
    let _ = BYTES.try_with(|b| b.set(b.get() + bytes as u64));
}

// SAFETY: every method forwards to `System` unchanged; counting touches no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated on this thread while `f` runs.
pub fn bytes_allocated_by<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = BYTES.with(Cell::get);
    let result = f();
    (result, BYTES.with(Cell::get) - before)
}

/// How many allocations this thread made while `f` ran.
pub fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// The counts the allocation tests rest on: one allocation of 1000 bytes is counted as one,
/// of 1000 bytes, and another thread's are not counted here.
#[test]
fn the_allocator_counts_this_threads_allocations() {
    let (_, bytes) = bytes_allocated_by(|| std::hint::black_box(Vec::<u8>::with_capacity(1000)));
    assert_eq!(bytes, 1000);
    let n = allocations(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(1000));
    });
    assert_eq!(n, 1);
    let (_, bytes) = bytes_allocated_by(|| {
        std::thread::spawn(|| std::hint::black_box(vec![0u8; 1 << 20]).len())
            .join()
            .unwrap()
    });
    assert!(bytes < 1 << 20, "another thread's allocation counted here");
}
