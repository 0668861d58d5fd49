//! A WebAssembly guest that owns one fixed-size string buffer in its linear memory.
//!
//! This is the module of the Wasmer guide "Using memory pointers", written in Rust. The host
//! finds the string with [`load`], may overwrite the bytes there (up to [`CAPACITY`]), tells the
//! guest the new length with [`set_len`], and may ask the guest to append `" Wasm is cool!"`
//! itself with [`transform`].
//!
//! The crate is `no_std`, has no allocator and imports nothing. Its logic lives in [`Buffer`],
//! which is plain Rust, so `cargo test -p guest` tests it natively; the exported functions are
//! thin wrappers over one static `Buffer`. `cargo xtask build-guest` compiles the crate for
//! `wasm32-unknown-unknown` and rewrites the linked module so that `load` returns its pair as
//! Wasm multi-value results (`() -> (i32, i32)`), which rustc cannot emit by itself.
//!
//! # ABI
//!
//! | export      | Wasm type            | meaning                                               |
//! |-------------|----------------------|-------------------------------------------------------|
//! | `mem`       | memory, 1 page       | the guest's linear memory, 64 KiB, not growable       |
//! | `load`      | `() -> (i32, i32)`   | offset and length of the string                       |
//! | `capacity`  | `() -> i32`          | size of the buffer at that offset: [`CAPACITY`]       |
//! | `set_len`   | `(i32) -> i32`       | adopt a length the host wrote; 0 or an error code     |
//! | `transform` | `() -> i32`          | append [`SUFFIX`] in place; new length or error code  |
//!
//! Error codes are negative: [`Error::NegativeLength`] (-1) and [`Error::OverCapacity`] (-2).
//! A call that returns one changes nothing.
#![no_std]

// Natively (unit tests, clippy, a host-side `cargo build`) link std for its panic handler; on
// wasm32 the handler below traps instead, and nothing from std is linked.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use core::cell::UnsafeCell;

/// Size in bytes of the string buffer, fixed at build time.
pub const CAPACITY: usize = 4096;

/// The string the buffer holds when the module is instantiated.
pub const INITIAL: &[u8] = b"Hello, World!";

/// What [`transform`] appends.
pub const SUFFIX: &[u8] = b" Wasm is cool!";

/// Why the guest refused a request. The discriminant is the code its exports return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Error {
    /// `set_len` was given a negative length.
    NegativeLength = -1,
    /// The length asked for, or the result of `transform`, would exceed [`CAPACITY`].
    OverCapacity = -2,
}

impl Error {
    /// The value an export returns for this error.
    pub const fn code(self) -> i32 {
        self as i32
    }
}

/// The buffer and the length of the string it holds. `len <= CAPACITY` always holds.
#[derive(Debug)]
#[repr(C)]
pub struct Buffer {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl Buffer {
    /// A buffer holding [`INITIAL`], evaluated at compile time so that it lands in the
    /// module's data segment.
    pub const fn new() -> Self {
        let mut bytes = [0; CAPACITY];
        let mut i = 0;
        while i < INITIAL.len() {
            bytes[i] = INITIAL[i];
            i += 1;
        }
        Buffer {
            bytes,
            len: INITIAL.len(),
        }
    }

    /// Address of the first byte of the buffer.
    pub fn as_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }

    /// The current string.
    pub fn as_bytes(&self) -> &[u8] {
        // `len <= CAPACITY` is the type's invariant, so this never falls back.
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Length of the current string.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the current string is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adopts `len` bytes, which the host has already written at [`Buffer::as_ptr`], as the
    /// string. Leaves the length unchanged on error.
    ///
    /// # Errors
    /// [`Error::NegativeLength`] when `len < 0`; [`Error::OverCapacity`] when `len > CAPACITY`.
    #[inline(always)]
    pub fn set_len(&mut self, len: i32) -> Result<(), Error> {
        let len = usize::try_from(len).map_err(|_| Error::NegativeLength)?;
        if len > CAPACITY {
            return Err(Error::OverCapacity);
        }
        self.len = len;
        Ok(())
    }

    /// Appends `suffix` in place and returns the new length. Leaves the buffer unchanged
    /// on error.
    ///
    /// # Errors
    /// [`Error::OverCapacity`] when the result would not fit.
    ///
    /// Always inlined: the exports then return their `Result` in registers, so a call
    /// leaves no trace on the shadow stack in memory.
    #[inline(always)]
    pub fn append(&mut self, suffix: &[u8]) -> Result<usize, Error> {
        let end = self
            .len
            .checked_add(suffix.len())
            .ok_or(Error::OverCapacity)?;
        let tail = self
            .bytes
            .get_mut(self.len..end)
            .ok_or(Error::OverCapacity)?;
        // A zip, not `copy_from_slice`: the lengths are equal, and this way no panic path
        // (with its formatting code) is linked into the module.
        for (dst, src) in tail.iter_mut().zip(suffix) {
            *dst = *src;
        }
        self.len = end;
        Ok(end)
    }
}

impl Default for Buffer {
    fn default() -> Self {
        Self::new()
    }
}

/// The guest's one buffer.
struct State(UnsafeCell<Buffer>);

// SAFETY: wasm32-unknown-unknown without the `atomics` feature has one thread, and no export
// calls another or is re-entered, so at most one `&mut Buffer` exists at a time. Natively the
// exports exist only to be type-checked; tests use `Buffer` directly.
unsafe impl Sync for State {}

static STATE: State = State(UnsafeCell::new(Buffer::new()));

fn with_buffer<R>(f: impl FnOnce(&mut Buffer) -> R) -> R {
    // SAFETY: see `impl Sync for State`: this is the only live reference to the buffer.
    f(unsafe { &mut *STATE.0.get() })
}

/// Offset and length of the string, as [`load`] returns them.
///
/// rustc returns this struct through a hidden out-pointer (`(param i32)` in Wasm); the
/// build's post-link step wraps it so that the exported `load` is `() -> (i32, i32)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Pair {
    /// Address of the first byte in linear memory.
    pub offset: u32,
    /// Length in bytes; never above [`CAPACITY`].
    pub len: u32,
}

/// A linear-memory address or a length as a Wasm `i32`. Addresses are 32 bits on wasm32
/// and lengths are at most [`CAPACITY`]; natively the exports exist only to be type-checked.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "wasm32 addresses and lengths up to CAPACITY fit in 32 bits"
)]
const fn to_wasm(n: usize) -> u32 {
    n as u32
}

fn as_i32(n: usize) -> i32 {
    i32::try_from(to_wasm(n)).unwrap_or(i32::MAX)
}

/// Where the string is: `(offset, length)`.
#[unsafe(no_mangle)]
pub extern "C" fn load() -> Pair {
    with_buffer(|b| Pair {
        offset: to_wasm(b.as_ptr() as usize),
        len: to_wasm(b.len()),
    })
}

/// The size of the buffer at `load`'s offset: [`CAPACITY`].
#[unsafe(no_mangle)]
pub extern "C" fn capacity() -> i32 {
    as_i32(CAPACITY)
}

/// The host wrote `len` bytes at `load`'s offset: adopt them as the string. Returns 0, or a
/// negative [`Error`] code with the length unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn set_len(len: i32) -> i32 {
    with_buffer(|b| match b.set_len(len) {
        Ok(()) => 0,
        Err(e) => e.code(),
    })
}

/// Appends [`SUFFIX`] to the string in place. Returns the new length, or
/// [`Error::OverCapacity`]'s code with the buffer unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn transform() -> i32 {
    with_buffer(|b| match b.append(SUFFIX) {
        Ok(len) => as_i32(len),
        Err(e) => e.code(),
    })
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "small constants"
)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_hello_world() {
        let b = Buffer::new();
        assert_eq!(b.as_bytes(), b"Hello, World!");
        assert_eq!(b.len(), 13);
    }

    #[test]
    fn set_len_adopts_written_bytes() {
        let mut b = Buffer::new();
        b.bytes[..14].copy_from_slice(b"Hello, Wasmer!");
        assert_eq!(b.set_len(14), Ok(()));
        assert_eq!(b.as_bytes(), b"Hello, Wasmer!");
        assert_eq!(b.set_len(0), Ok(()));
        assert!(b.is_empty());
        assert_eq!(b.set_len(CAPACITY as i32), Ok(()));
        assert_eq!(b.len(), CAPACITY);
    }

    #[test]
    fn set_len_refuses_and_keeps_length() {
        let mut b = Buffer::new();
        for (len, err) in [
            (-1, Error::NegativeLength),
            (i32::MIN, Error::NegativeLength),
            (CAPACITY as i32 + 1, Error::OverCapacity),
            (i32::MAX, Error::OverCapacity),
        ] {
            assert_eq!(b.set_len(len), Err(err));
            assert_eq!(b.as_bytes(), b"Hello, World!");
        }
    }

    #[test]
    fn append_suffix_in_place() {
        let mut b = Buffer::new();
        assert_eq!(b.append(SUFFIX), Ok(27));
        assert_eq!(b.as_bytes(), b"Hello, World! Wasm is cool!");
    }

    #[test]
    fn append_that_does_not_fit_changes_nothing() {
        let mut b = Buffer::new();
        let room = CAPACITY - SUFFIX.len();
        b.set_len(room as i32 + 1).unwrap();
        let before = b.bytes;
        assert_eq!(b.append(SUFFIX), Err(Error::OverCapacity));
        assert_eq!(b.len(), room + 1);
        assert_eq!(b.bytes, before);
        // Exactly full is fine.
        b.set_len(room as i32).unwrap();
        assert_eq!(b.append(SUFFIX), Ok(CAPACITY));
    }

    #[test]
    fn error_codes_are_the_documented_ones() {
        assert_eq!(Error::NegativeLength.code(), -1);
        assert_eq!(Error::OverCapacity.code(), -2);
    }

    #[test]
    fn initial_state_and_codes_fit_the_abi() {
        assert!(CAPACITY >= 4096 && CAPACITY <= i32::MAX as usize);
        assert!(INITIAL.len() + SUFFIX.len() <= CAPACITY);
    }
}
