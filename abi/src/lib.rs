//! The guest ABI of this workspace, described once.
//!
//! Everything that a guest and a host must agree on is here, as data: every export's name,
//! kind and Wasm type, whether a host needs it, what it means, the error codes it returns,
//! and what the memory must be. Every other place reads it from here:
//!
//! - the `guest` takes its error codes and [`SUFFIX`] from it (this crate is `no_std` and,
//!   without the `check` feature, depends on nothing);
//! - `cargo xtask build-guest` checks the artifact against it with [`check::check`] in
//!   `Strictness::Artifact` (every export, nothing else);
//! - the `host` checks every module's bytes against it before compiling, with the same
//!   function in `Strictness::Host` (required exports present, optional ones typed when
//!   present, other exports ignored);
//! - the README's ABI table is [`write_table`]'s output, and a test fails when they differ.
#![no_std]

#[cfg(feature = "check")]
extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(feature = "check")]
pub mod check;

use core::fmt;

/// A Wasm value type, as far as the ABI uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValType {
    /// `i32`
    I32,
}

impl ValType {
    /// The name the Wasm text format uses.
    pub const fn name(self) -> &'static str {
        match self {
            Self::I32 => "i32",
        }
    }
}

/// A function type: parameters and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncType {
    /// The parameters, in order.
    pub params: &'static [ValType],
    /// The results, in order.
    pub results: &'static [ValType],
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for FuncType {
    /// The Wasm text form: `(func (param i32) (result i32 i32))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FuncText {
            params: self.params,
            results: self.results,
            shown: usize::MAX,
        }
        .fmt(f)
    }
}

/// A function type in the Wasm text form, `(func (param i32) (result i32 i32))`, from lists
/// of any value type that displays as the text form does (this crate's, or a `wasmparser`'s
/// of any version): the one printer of function types in the workspace. At most `shown`
/// types of each list are written, then how many more there are (`…3 more`).
#[derive(Debug, Clone, Copy)]
pub struct FuncText<'a, T> {
    /// The parameters.
    pub params: &'a [T],
    /// The results.
    pub results: &'a [T],
    /// The most types of each list to write.
    pub shown: usize,
}

impl<T: fmt::Display> fmt::Display for FuncText<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(func")?;
        for (keyword, types) in [("param", self.params), ("result", self.results)] {
            if types.is_empty() {
                continue;
            }
            write!(f, " ({keyword}")?;
            for ty in types.iter().take(self.shown) {
                write!(f, " {ty}")?;
            }
            if types.len() > self.shown {
                write!(f, " …{} more", types.len() - self.shown)?;
            }
            f.write_str(")")?;
        }
        f.write_str(")")
    }
}

/// What an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A linear memory; [`MemoryRules`] says which.
    Memory,
    /// A function of this type.
    Func(FuncType),
}

/// Whether a host needs an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A module without it is refused.
    Required,
    /// A host uses it when present; when present, it must have the ABI's type.
    Optional,
}

/// One export of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Export {
    /// The export's name.
    pub name: &'static str,
    /// Its kind and type.
    pub kind: Kind,
    /// Whether a host needs it.
    pub presence: Presence,
    /// What it does, in one sentence of Markdown.
    pub meaning: &'static str,
    /// The error codes it may return; a call that returns one changes nothing.
    pub codes: &'static [ErrorCode],
}

use ValType::I32;

/// Where `cargo xtask build-guest` writes the guest of this workspace, relative to the
/// workspace's root; the host's binary and tests look for it there.
pub const GUEST_ARTIFACT: &str = "target/guest/guest.wasm";

/// Where `cargo xtask build-guest` writes the Rust wit-bindgen guest of the canonical ABI's
/// test world (`wit/guest.wit`), relative to the workspace's root.
pub const CANONICAL_ARTIFACT: &str = "target/guest/canonical.wasm";

/// Where it writes the C guest of the same world.
pub const CANONICAL_C_ARTIFACT: &str = "target/guest/canonical-c.wasm";

/// Where it writes the Rust guest of the same world built for `wasm32-wasip1`, as most
/// guides build one: Rust `std` then imports WASI preview 1.
pub const CANONICAL_WASIP1_ARTIFACT: &str = "target/guest/canonical-wasip1.wasm";

/// Where it writes the Rust wit-bindgen guest whose world imports functions
/// (`wit/plugin`).
pub const PLUGIN_ARTIFACT: &str = "target/guest/plugin.wasm";

/// Where it writes the C guest linked with wasi-libc, which prints (`wit/wasi-c`).
pub const WASI_C_ARTIFACT: &str = "target/guest/wasi-c.wasm";

/// `mem`: the guest's linear memory.
pub const MEMORY: Export = Export {
    name: "mem",
    kind: Kind::Memory,
    presence: Presence::Required,
    meaning: "the linear memory: 32-bit, shared or not, of any size within the host's limits",
    codes: &[],
};

/// `load() -> (offset, length)`: where the guest's string is.
pub const LOAD: Export = Export {
    name: "load",
    kind: Kind::Func(FuncType {
        params: &[],
        results: &[I32, I32],
    }),
    presence: Presence::Required,
    meaning: "offset and length of the string; the offset is also the start of the buffer",
    codes: &[],
};

/// `capacity() -> bytes`: the size of the buffer at `load`'s offset.
pub const CAPACITY: Export = Export {
    name: "capacity",
    kind: Kind::Func(FuncType {
        params: &[],
        results: &[I32],
    }),
    presence: Presence::Optional,
    meaning: "size in bytes of the buffer at `load`'s offset",
    codes: &[],
};

/// `set_len(len) -> code`: the host wrote `len` bytes at `load`'s offset; the guest adopts
/// them as its string.
pub const SET_LEN: Export = Export {
    name: "set_len",
    kind: Kind::Func(FuncType {
        params: &[I32],
        results: &[I32],
    }),
    presence: Presence::Optional,
    meaning: "the host has written `len` bytes at `load`'s offset: the guest adopts them as its string and returns 0",
    codes: &[ErrorCode::NegativeLength, ErrorCode::OverCapacity],
};

/// `transform() -> length or code`: the guest appends [`SUFFIX`] to its string in place.
pub const TRANSFORM: Export = Export {
    name: "transform",
    kind: Kind::Func(FuncType {
        params: &[],
        results: &[I32],
    }),
    presence: Presence::Optional,
    meaning: "the guest appends `\" Wasm is cool!\"` to its string, in place when it fits, else in a larger heap block, and returns the new length",
    codes: &[ErrorCode::OverCapacity, ErrorCode::NoMemory],
};

/// `cabi_realloc(old_ptr, old_len, align, new_len) -> ptr`: the canonical ABI's allocator,
/// as wit-bindgen generates it for Rust, C and Go guests. A host allocates a block for its
/// data with `cabi_realloc(0, 0, 1, len)`.
pub const CABI_REALLOC: Export = Export {
    name: "cabi_realloc",
    kind: Kind::Func(FuncType {
        params: &[I32, I32, I32, I32],
        results: &[I32],
    }),
    presence: Presence::Optional,
    meaning: "the canonical ABI's allocator: a block of `new_len` bytes aligned to `align` (at most 8) holding the first `old_len` bytes of the block at `old_ptr` (null for none); `new_len` 0 frees that block; returns the address, or 0 when it cannot, changing nothing",
    codes: &[],
};

/// `adopt(ptr, len) -> code`: the guest takes a block from `cabi_realloc`, where the host
/// wrote `len` bytes, as its string.
pub const ADOPT: Export = Export {
    name: "adopt",
    kind: Kind::Func(FuncType {
        params: &[I32, I32],
        results: &[I32],
    }),
    presence: Presence::Optional,
    meaning: "the host has written `len` bytes in the block at `ptr` from `cabi_realloc`: the guest adopts the block as its string (freeing a block it leaves) and returns 0",
    codes: &[
        ErrorCode::NegativeLength,
        ErrorCode::OverCapacity,
        ErrorCode::NotABlock,
    ],
};

/// Every export of the ABI, in the order the README lists them.
pub const EXPORTS: &[Export] = &[
    MEMORY,
    LOAD,
    CAPACITY,
    SET_LEN,
    TRANSFORM,
    CABI_REALLOC,
    ADOPT,
];

/// What [`TRANSFORM`] appends.
pub const SUFFIX: &[u8] = b" Wasm is cool!";

/// What the memory must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRules {
    /// Pages at start of the artifact `cargo xtask build-guest` writes.
    pub artifact_initial: u64,
    /// Its maximum in pages, if it declares one (none: it grows as far as the host allows).
    pub artifact_maximum: Option<u64>,
    /// Whether the artifact's memory is shared.
    pub artifact_shared: bool,
}

/// The memory a host accepts: one 32-bit memory, exported as [`MEMORY`], shared or not, of
/// any size within the host's limits (which the host checks). The artifact's memory is
/// exactly this: one page at start, growable up to the host's cap, unshared.
pub const MEMORY_RULES: MemoryRules = MemoryRules {
    artifact_initial: 1,
    artifact_maximum: None,
    artifact_shared: false,
};

/// A module may import nothing: the host provides no imports.
pub const IMPORTS_ALLOWED: bool = false;

/// Why a guest refused a request. The discriminant is the code its exports return; every
/// code is negative, so it never reads as a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorCode {
    /// The length asked for is negative.
    NegativeLength = -1,
    /// The length asked for, or the result of `transform`, would not fit the buffer.
    OverCapacity = -2,
    /// No memory is left for the request under the host's cap.
    NoMemory = -3,
    /// The address is not a block from `cabi_realloc`.
    NotABlock = -4,
}

impl ErrorCode {
    /// Every code, in order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::NegativeLength,
        ErrorCode::OverCapacity,
        ErrorCode::NoMemory,
        ErrorCode::NotABlock,
    ];

    /// The value an export returns for this error.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The error a returned value stands for, if it is one of the ABI's codes.
    pub fn from_code(code: i32) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|e| e.code() == code)
    }

    /// What the code means, in a few lowercase words.
    pub const fn meaning(self) -> &'static str {
        match self {
            ErrorCode::NegativeLength => "the length is negative",
            ErrorCode::OverCapacity => "the result would not fit the buffer",
            ErrorCode::NoMemory => "no memory left under the host's cap",
            ErrorCode::NotABlock => "the address is not a block from cabi_realloc",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

/// Writes the ABI as the Markdown table the README shows.
///
/// # Errors
/// Only those of `out`.
pub fn write_table(out: &mut impl fmt::Write) -> fmt::Result {
    writeln!(
        out,
        "| export | Wasm type | needed | meaning | error codes |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for export in EXPORTS {
        let ty = TableType(export.kind);
        let needed = match export.presence {
            Presence::Required => "required",
            Presence::Optional => "optional",
        };
        write!(
            out,
            "| `{}` | `{ty}` | {needed} | {} | ",
            export.name, export.meaning
        )?;
        for (i, code) in export.codes.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(out, "{sep}{} {}", code.code(), code.meaning())?;
        }
        writeln!(out, "{}|", if export.codes.is_empty() { "" } else { " " })?;
    }
    Ok(())
}

/// A kind as the README's table writes it.
struct TableType(Kind);

impl fmt::Display for TableType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Kind::Memory => f.write_str("(memory)"),
            Kind::Func(ty) => ty.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[test]
    fn names_are_unique_and_the_memory_and_load_are_required() {
        for (i, a) in EXPORTS.iter().enumerate() {
            assert!(EXPORTS[i + 1..].iter().all(|b| b.name != a.name), "{a:?}");
        }
        let required: std::vec::Vec<_> = EXPORTS
            .iter()
            .filter(|e| e.presence == Presence::Required)
            .map(|e| e.name)
            .collect();
        assert_eq!(required, ["mem", "load"]);
    }

    #[test]
    fn codes_are_negative_and_round_trip() {
        for &e in ErrorCode::ALL {
            assert!(e.code() < 0);
            assert_eq!(ErrorCode::from_code(e.code()), Some(e));
        }
        assert_eq!(ErrorCode::from_code(0), None);
        assert_eq!(ErrorCode::from_code(-5), None);
        assert_eq!(
            std::format!("{}", ErrorCode::OverCapacity),
            "-2 (the result would not fit the buffer)"
        );
    }

    #[test]
    fn func_types_print_as_wasm_text() {
        let show = |e: Export| match e.kind {
            Kind::Func(ty) => std::format!("{ty}"),
            Kind::Memory => String::from("(memory)"),
        };
        assert_eq!(show(LOAD), "(func (result i32 i32))");
        assert_eq!(show(SET_LEN), "(func (param i32) (result i32))");
        assert_eq!(show(MEMORY), "(memory)");
    }

    /// The README's table is this description: edit `EXPORTS`, then paste what this test
    /// prints between the README's `abi-table` markers.
    #[test]
    fn the_readme_table_is_this_description() {
        let readme = include_str!("../../README.md");
        let (start, end) = ("<!-- abi-table -->\n", "<!-- /abi-table -->");
        let from = readme.find(start).expect("README has the abi-table marker") + start.len();
        let to = readme[from..]
            .find(end)
            .expect("README closes the abi-table")
            + from;
        let mut table = String::new();
        write_table(&mut table).unwrap();
        assert!(
            readme[from..to] == table,
            "README.md's ABI table differs from abi::EXPORTS; it should read:\n{table}"
        );
    }
}
