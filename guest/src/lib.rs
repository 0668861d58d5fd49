//! A WebAssembly guest that owns one fixed-size string buffer in its linear memory.
//!
//! This is the module of the Wasmer guide "Using memory pointers", written in Rust. The host
//! finds the string with `load`, may overwrite the bytes there (up to [`CAPACITY`]), tells the
//! guest the new length with `set_len`, and may ask the guest to append [`SUFFIX`] itself
//! with `transform`. The exports, their types and their error codes are described once, in
//! the `abi` crate of this workspace; this crate takes its codes from there.
//!
//! The crate is `no_std`, has no allocator and imports nothing. Its logic lives in [`Buffer`],
//! which is plain Rust, so `cargo test -p guest` tests it natively. The exports are thin
//! wrappers over one static `Buffer`, and exist only on wasm32: natively there is no export
//! and no static to race on. `cargo xtask build-guest` compiles the crate for
//! `wasm32-unknown-unknown` and rewrites the linked module so that `load` returns its pair as
//! Wasm multi-value results (`() -> (i32, i32)`), which rustc cannot emit by itself.
//!
//! ```compile_fail
//! // Natively the exports do not exist: tests go through `Buffer`.
//! let _ = guest::exports::set_len(3);
//! ```
#![no_std]

// Natively (unit tests, clippy, a host-side `cargo build`) link std for its panic handler; on
// wasm32 the handler below traps instead, and nothing from std is linked.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

pub use abi::ErrorCode as Error;
pub use abi::SUFFIX;

/// Size in bytes of the string buffer, fixed at build time.
pub const CAPACITY: usize = 4096;

/// The string the buffer holds when the module is instantiated.
pub const INITIAL: &[u8] = b"Hello, World!";

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
        // The lengths are equal by construction, which LLVM sees: no panic path is linked,
        // and the 14-byte copy becomes two 8-byte loads and stores.
        tail.copy_from_slice(suffix);
        self.len = end;
        Ok(end)
    }
}

impl Default for Buffer {
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
    /// Length in bytes; never above [`CAPACITY`].
    pub len: u32,
}

/// The exports, over one static buffer. Only on wasm32, which has one thread: natively they
/// would be safe functions racing on a static.
#[cfg(target_arch = "wasm32")]
pub mod exports {
    use core::cell::UnsafeCell;

    use super::{Buffer, CAPACITY, Pair, SUFFIX};

    /// The guest's one buffer.
    struct State(UnsafeCell<Buffer>);

    // SAFETY: wasm32-unknown-unknown without the `atomics` feature has one thread, and no
    // export calls another or is re-entered, so at most one `&mut Buffer` exists at a time.
    unsafe impl Sync for State {}

    static STATE: State = State(UnsafeCell::new(Buffer::new()));

    fn with_buffer<R>(f: impl FnOnce(&mut Buffer) -> R) -> R {
        // SAFETY: see `impl Sync for State`: this is the only live reference to the buffer.
        f(unsafe { &mut *STATE.0.get() })
    }

    /// A wasm32 address or a length up to `CAPACITY` as the `u32` Wasm uses: lossless on
    /// wasm32, where `usize` is 32 bits.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "usize is 32 bits on wasm32"
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

    /// The host wrote `len` bytes at `load`'s offset: adopt them as the string. Returns 0,
    /// or a negative error code with the length unchanged.
    #[unsafe(no_mangle)]
    pub extern "C" fn set_len(len: i32) -> i32 {
        with_buffer(|b| match b.set_len(len) {
            Ok(()) => 0,
            Err(e) => e.code(),
        })
    }

    /// Appends [`SUFFIX`] to the string in place. Returns the new length, or the
    /// over-capacity code with the buffer unchanged.
    #[unsafe(no_mangle)]
    pub extern "C" fn transform() -> i32 {
        with_buffer(|b| match b.append(SUFFIX) {
            Ok(len) => as_i32(len),
            Err(e) => e.code(),
        })
    }
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
}
