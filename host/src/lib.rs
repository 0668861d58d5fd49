//! Pass strings between a host and a WebAssembly guest through the guest's linear memory,
//! with [wasmer](https://docs.rs/wasmer) and Cranelift.
//!
//! This is the Rust form of the Wasmer guide "Using memory pointers": the guest exports its
//! memory as `mem` and a function `load() -> (offset, length)` that says where its string is.
//! The host reads the string there, writes a new one in place, and, when the guest exports
//! them, tells it the new length (`set_len`) and asks it to change the string itself
//! (`transform`). The guest of this workspace documents the ABI in full; a module that
//! follows only the guide's part of it (`mem` + `load`) works too.
//!
//! ```no_run
//! use memhost::{GuestModule, Limits};
//!
//! let module = GuestModule::from_file("target/guest/guest.wasm", &Limits::default())?;
//! let mut guest = module.instantiate()?;
//! assert_eq!(guest.string()?, "Hello, World!");
//! guest.replace_string("Hello, Wasmer!")?;
//! guest.transform()?;
//! assert_eq!(guest.string()?, "Hello, Wasmer! Wasm is cool!");
//! # Ok::<(), memhost::Error>(())
//! ```
//!
//! # Memory and safety
//!
//! The guest is untrusted. Nothing it returns is used before it is checked:
//!
//! - A length from the guest is an `i32`; a negative one is [`Error::NegativeLength`]. An
//!   offset is the unsigned 32-bit address Wasm uses.
//! - A range is checked against the memory's size *before* anything is allocated or copied:
//!   [`Error::RangeOverflow`] when `offset + len` does not fit in 32 bits,
//!   [`Error::OutOfBounds`] when it ends past the memory. So a guest that claims a 4 GiB
//!   string costs nothing.
//! - A zero-length range is valid anywhere up to and including the end of memory: `load`
//!   returning `(memory_size, 0)` reads as the empty string, as `&bytes[len..len]` does in
//!   Rust. One byte further is out of bounds.
//! - Text is UTF-8 validated; [`Error::InvalidUtf8`] says at which byte it fails.
//! - Writes are all-or-nothing: the whole range is checked against the memory and, when the
//!   guest exports `capacity`, against the buffer, before any byte moves. When the guest's
//!   `set_len` then refuses the length (or traps), the bytes the host wrote are restored.
//! - A trap in guest code is [`Error::Trap`], naming the export.
//!
//! Copies are as fast as `memcpy`. wasmer's safe `MemoryView::read`/`write` copy with
//! volatile word moves, because in general guest code may run concurrently. Here it cannot:
//! the [`Guest`] owns its store, and guest code runs only inside methods that take
//! `&mut self`. So while `&self` is borrowed nothing can change the memory, and while
//! `&mut self` is borrowed nothing else can see it, which is the argument of wasmtime's safe
//! `Memory::data`/`data_mut`. It rests on one rule: no method that takes `&self` writes
//! guest memory, not even through a `MemoryView` (which needs only `&Store`). The rule is
//! kept in one file, `instance.rs`, the core of every instance: it alone holds the store,
//! the memory, the fuel meter and every `unsafe` that touches guest memory, in fields
//! nothing else can reach. The conventions for handing a guest data are files on top of it.
//! A memory larger than `isize::MAX` bytes (4 GiB on a 32-bit host) is never lent out as a
//! slice either. When the memory is not shared, reads and writes are plain
//! slice copies, and [`Guest::str`] and [`Guest::bytes`] borrow straight from guest memory
//! for as long as the `Guest` is borrowed. A *shared* memory could be reached by other
//! threads, so then every access goes through wasmer's copying accessors, and text is
//! validated after it has been copied.
//!
//! The crate's other `unsafe` blocks touch no guest memory, and each says why it is sound
//! where it stands:
//! - `cache.rs`: `Module::deserialize` of a cached artifact, only after its key and its
//!   SHA-256 match and it was read, through the directory's handle, from a regular file of
//!   this user in a directory only this user can write (wasmer then checks its header,
//!   version and CPU features); the byte views of the 16-byte-aligned buffer it is read into.
//! - `limits.rs`: wasmer's `Tunables::create_vm_memory` and `create_vm_table` are `unsafe fn`
//!   by signature; they forward the caller's contract to wasmer's own, with a lower maximum.
//! - The `memhost` binary (`cli/signals.rs`, not the library): `sigaction` for SIGINT and SIGTERM,
//!   whose handler only stores to an atomic.

mod cache;
mod canonical;
mod component;
mod error;
pub mod exit;
mod guest;
mod imports;
mod instance;
mod limits;
mod lines;
mod metering;
mod module;
mod prepare;
mod region;
mod stream;
mod transform;
mod wasi;

pub use crate::cache::{CacheOutcome, CacheWarning, DEFAULT_CACHE_BYTES, ModuleCache};
pub use crate::canonical::{
    Borrowed, ComponentParams, ComponentResults, ComponentType, FlatSrc, HostParams, HostResults,
    Lift, LiftCx, Lower, LowerCx, MAX_TYPE_DEPTH, MAX_TYPE_SIZE, MAX_TYPE_WIDTH, MAX_WIT_BYTES,
    Number, Numbers, Val, ValType, WaveError, Wit,
};
pub use crate::error::{Error, ErrorKind, PROBLEM_CHARS, Violation};
pub use crate::guest::{BorrowedFunc, Convention, Guest, TypedFunc};
pub use crate::imports::HostFunctions;
pub use crate::limits::{DEFAULT_FUEL, Limits};
pub use crate::lines::MAX_JOBS;
pub use crate::metering::{BYTES_PER_UNIT, RUNTIME_CALL, UNITS_PER_ELEMENT, UNITS_PER_PAGE};
pub use crate::module::GuestModule;
pub use crate::prepare::{Extras, MAX_TABLES};
pub use crate::region::Region;
pub use crate::stream::{
    BATCH_BYTES, BATCH_LINES, CHUNK_BYTES, INSTANCE_BYTES, PIECE_BYTES, StreamOptions, StreamStats,
    input_budget, jobs_that_fit, stream_memory, window,
};
pub use crate::transform::Transformer;
pub use crate::wasi::Wasi;
/// `#[derive(ComponentType, Lower, Lift)]`: a Rust struct as a WIT record (or, marked
/// `#[component(flags)]`, flags), a Rust enum as a variant or enum (the `host-derive` crate).
pub use host_derive::{ComponentType, Lift, Lower};

/// What the derives expand to; not an API.
#[doc(hidden)]
pub mod __derive {
    pub use crate::canonical::derive::*;
    pub use crate::canonical::{WitType, WitWorld};
}

/// One compiled `GuestModule` serves instances on many threads: each thread instantiates
/// its own `Guest` from a shared reference (checked when the crate compiles). A `Guest`
/// itself stays on the thread that made it: wasmer 7's `Store` is not `Send` (wasmerio/wasmer
/// issue 7001), and this crate does not assert otherwise.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<GuestModule>();
};

/// The README's Rust example, compiled with the doctests so that it cannot drift from the
/// API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
