//! The Component Model's canonical ABI, on wasmer: calling any exported function of a core
//! module built by wit-bindgen (Rust, C, Go...), with values of every WIT value type, in
//! and out.
//!
//! A wit-bindgen module says what it exports in a `component-type:*` custom section that
//! encodes its WIT world; `wit-component` decodes it (or a `--wit` file stands in for it,
//! [`Wit::from_path`]). Each exported function `name` (or `ns:pkg/iface#name` inside an
//! exported interface) is a core export of the same name whose type is the function's
//! flattened signature (at most 16 flat parameters, else one pointer to them in memory; at
//! most one flat result, else a pointer to them, the "return area"), with an optional
//! `cabi_post_name` that frees what the results hold. Strings and lists the host hands
//! over are written into blocks from the module's `cabi_realloc`, in its memory `memory`.
//!
//! A function the world imports is a core import (`$root.name`, or `ns:pkg/iface.name`) of
//! the type the spec's lowering gives it (a result of more than one flat value goes to a
//! return area whose pointer the guest passes last); the embedder gives it
//! ([`HostFunctions`](crate::HostFunctions), `imports.rs`), and its results go back into
//! the guest through the same `cabi_realloc`, while the guest is on the stack.
//!
//! Admission checks all of that on the bytes, before compiling ([`admit`]); [`values`] lifts
//! and lowers values with every check the spec makes; [`Val`] is the dynamic value.
//! [`Guest::call`](crate::Guest::call) and [`Guest::typed`](crate::Guest::typed) call.

// One room a file: the WIT source (`wit`), admission and the functions it lays out
// (`admission`), the type table (`layout`), lifting and lowering with the typed traits
// (`values`, `borrowed`, `derive`, and the opaque types they are handed, `ty`), the
// parameters and results of the typed API (`typed`), the dynamic value (`val`) and its text
// (`wave`). The calls, and the typed handles that make them, are `crate::guest::canonical`'s.
mod admission;
mod borrowed;
mod layout;
mod ty;
mod typed;
mod val;
pub(crate) mod values;
mod wave;
mod wit;

pub(crate) use self::admission::{BytesShape, FuncDef, World, admit, bytes_shape, world_imports};
pub use self::borrowed::{Borrowed, Number, Numbers};
pub(crate) use self::layout::{Flat, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, Types};
pub use self::layout::{MAX_TYPE_DEPTH, MAX_TYPE_SIZE, MAX_TYPE_WIDTH};
pub use self::val::Val;
pub(crate) use self::val::type_name;
pub(crate) use self::wave::parse_args;
pub use self::wave::{ValType, WaveError};
pub use self::wit::{MAX_WIT_BYTES, Wit};
#[doc(hidden)]
pub mod derive;
pub use self::ty::{WitParams, WitType, WitWorld};
pub use self::typed::{ComponentParams, ComponentResults, HostParams, HostResults};
pub use self::values::{ComponentType, FlatSrc, Lift, LiftCx, Lower, LowerCx};

/// The name of the memory canonical-ABI modules export.
pub(crate) const MEMORY: &str = "memory";
/// The name of their allocator.
pub(crate) const REALLOC: &str = "cabi_realloc";
/// The prefix of a function's post-return export.
pub(crate) const POST_RETURN: &str = "cabi_post_";
