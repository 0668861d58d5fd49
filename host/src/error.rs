//! The library's one error type.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::Utf8Error;
use std::{fmt, io};

/// Everything that can go wrong between loading a module and reading its string back.
///
/// Each variant names what was involved: the export, the offset and length, the limit. None
/// of them repeats its source's text; print the whole chain (`{:#}` with `anyhow`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module file could not be read.
    #[error("cannot read module {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The module is larger than [`Limits::max_module_bytes`](crate::Limits::max_module_bytes).
    #[error("module {module} is {size} bytes, over the limit of {limit} bytes")]
    ModuleTooLarge {
        /// The module's name (its path, or `<bytes>`).
        module: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// The bytes are not a valid Wasm module (wasmer's validator says why), or wasmer cannot
    /// compile them.
    #[error("module {module} is not a valid Wasm module")]
    Compile {
        /// The module's name (its path, or `<bytes>`).
        module: String,
        /// The compiler's reason.
        #[source]
        source: wasmer::CompileError,
    },

    /// The module is text that does not assemble as WAT (the Wasm text format, which is
    /// accepted where a module is, as wasmer's and wasmtime's CLIs accept it).
    #[error("module {module} is WAT text that does not assemble: {why}")]
    Text {
        /// The module's name (its path, or `<bytes>`).
        module: String,
        /// The assembler's reason and where, on one line.
        why: String,
    },

    /// The directory of a [`ModuleCache`](crate::ModuleCache) cannot be used: it cannot be
    /// created, or another user could write to it (and so run code as this one).
    #[error("cannot use {} as a module cache: {why}", dir.display())]
    CacheDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        why: String,
    },

    /// The module's imports or exports do not match the guest ABI, found on its bytes
    /// before compiling. `problems` lists every problem (and after them, any limit the
    /// module also exceeds); the message shows the first few.
    #[error(
        "module {module} does not match the guest ABI: {}",
        Problems(problems, "; ")
    )]
    Abi {
        /// The module's name (its path, or `<bytes>`).
        module: String,
        /// Each problem, as one sentence.
        problems: Vec<String>,
    },

    /// The file is a component binary of a shape this host does not run (it runs one that
    /// wraps a single core module importing nothing): `problem` says what it holds and
    /// what would run instead.
    #[error("module {module} is {problem}")]
    Component {
        /// The module's name (its path, or `<bytes>`).
        module: String,
        /// What it holds, and what to run instead.
        problem: String,
    },

    /// The module could never run within the host's [`Limits`](crate::Limits): found on its
    /// bytes, before compiling. `problems` lists every problem; the message shows the first
    /// few.
    #[error(
        "module {module} exceeds the host's limits: {}",
        Problems(problems, "; ")
    )]
    OverLimit {
        /// The module's name (its path, or `<bytes>`).
        module: String,
        /// Each problem, as one sentence.
        problems: Vec<String>,
    },

    /// Instantiation failed for a reason other than a trap (a resource limit, for example).
    #[error("cannot instantiate module {module}")]
    Instantiate {
        /// The module's name (its path, or `<bytes>`).
        module: String,
        /// wasmer's reason.
        #[source]
        source: Box<wasmer::InstantiationError>,
    },

    /// Guest code trapped: in an export, or in the start function (`export` is `start`).
    #[error("guest `{export}` trapped: {trap}")]
    Trap {
        /// The export that was called, or `start` for the module's start function.
        export: Cow<'static, str>,
        /// The trap, as wasmer describes it (`unreachable`, `call stack exhausted`, ...).
        trap: String,
    },

    /// The guest ended itself through WASI's `proc_exit` (Rust's `std::process::exit`,
    /// C's `exit`) while `export` ran: the call has no result.
    #[error("guest `{export}` exited with code {code} (WASI `proc_exit`)")]
    Exit {
        /// The export that was running.
        export: Cow<'static, str>,
        /// The code it gave.
        code: i32,
    },

    /// A function the embedder gave the guest ([`HostFunctions`](crate::HostFunctions))
    /// failed or panicked while `export` ran, or was handed a region outside guest memory:
    /// the guest is stopped.
    #[error("guest `{export}`: host function `{import}` failed: {why}")]
    HostFunction {
        /// The export that was running.
        export: Cow<'static, str>,
        /// The import, `module.name`.
        import: String,
        /// Its error, or its panic's message.
        why: String,
    },

    /// The guest ran out of its instruction budget ([`Limits::fuel`](crate::Limits::fuel)).
    #[error("guest `{export}` ran out of fuel after {fuel} units")]
    OutOfFuel {
        /// The export that was called, or `start`.
        export: Cow<'static, str>,
        /// The budget it had.
        fuel: u64,
    },

    /// An export returned a negative length.
    #[error("guest `{export}` returned a negative length {len}")]
    NegativeLength {
        /// The export.
        export: Cow<'static, str>,
        /// The length it returned.
        len: i32,
    },

    /// `offset + len` does not fit in 32 bits.
    #[error("range at offset {offset} with length {len} overflows the 32-bit address space")]
    RangeOverflow {
        /// Where the range starts.
        offset: u32,
        /// Its length.
        len: u32,
    },

    /// The range lies, in whole or in part, past the end of linear memory.
    #[error(
        "range {offset}..{end} (length {len}) is past the end of memory ({memory_size} bytes)",
        end = u64::from(*offset) + u64::from(*len)
    )]
    OutOfBounds {
        /// Where the range starts.
        offset: u32,
        /// Its length.
        len: u32,
        /// The memory's size in bytes when checked.
        memory_size: u64,
    },

    /// The bytes of a string are not UTF-8.
    #[error(
        "string at offset {offset} (length {len}) is not UTF-8: invalid byte at offset {}",
        u64::from(*offset) + u64::from(*valid_up_to)
    )]
    InvalidUtf8 {
        /// Where the string starts.
        offset: u32,
        /// Its length.
        len: u32,
        /// How many leading bytes are valid UTF-8.
        valid_up_to: u32,
        /// The decoder's report.
        #[source]
        source: Utf8Error,
    },

    /// A write was longer than the buffer the guest reports with `capacity`.
    #[error("{len} bytes do not fit the guest's buffer of {capacity} bytes (from `capacity`)")]
    OverCapacity {
        /// The length of the write.
        len: usize,
        /// What the guest's `capacity` returned.
        capacity: u32,
    },

    /// The guest refused a length it was handed (`set_len`, `adopt`); the bytes the host
    /// wrote were restored, or the block it wrote was released.
    #[error("guest `{export}` refused length {len} with code {}", Code(*code))]
    Refused {
        /// The export.
        export: Cow<'static, str>,
        /// The length asked for.
        len: u32,
        /// The negative code it returned.
        code: i32,
    },

    /// An export returned an error code (a negative value) where it returns a length.
    #[error("guest `{export}` returned error code {}", Code(*code))]
    ErrorCode {
        /// The export.
        export: Cow<'static, str>,
        /// The code.
        code: i32,
    },

    /// The guest's allocator could not give a block of this size (it returned 0).
    #[error("guest `{export}` could not allocate {len} bytes (it returned 0)")]
    AllocationFailed {
        /// The allocation export.
        export: Cow<'static, str>,
        /// The size asked for.
        len: u32,
    },

    /// The guest's allocator returned a block that overlaps the string the guest holds:
    /// writing there would destroy it.
    #[error(
        "guest `{export}` returned a block at {offset} (length {len}) that overlaps the current string at {}..{}",
        string.offset,
        u64::from(string.offset) + u64::from(string.len)
    )]
    Overlap {
        /// The allocation export.
        export: Cow<'static, str>,
        /// Where the block starts.
        offset: u32,
        /// The size asked for.
        len: u32,
        /// The guest's string when the block was asked for.
        string: crate::Region,
    },

    /// The guest's allocator returned an address that is not aligned as asked.
    #[error("guest `{export}` returned address {offset}, which is not aligned to {align} bytes")]
    Misaligned {
        /// The allocation export.
        export: Cow<'static, str>,
        /// The address it returned.
        offset: u32,
        /// The alignment asked for.
        align: u32,
    },

    /// Data longer than a 32-bit guest can take (more than `i32::MAX` bytes).
    #[error("{len} bytes are more than a 32-bit guest can take")]
    TooLong {
        /// The length.
        len: usize,
    },

    /// The closure given to [`Guest::put_with`](crate::Guest::put_with) failed; the block
    /// was released and the guest keeps its string.
    #[error("filling guest memory failed")]
    Fill {
        /// Its error.
        #[source]
        source: io::Error,
    },

    /// A line of a batch ([`GuestModule::transform_lines`](crate::GuestModule::transform_lines))
    /// failed: which one (from 1), and why.
    #[error("line {line}")]
    Line {
        /// The line, counting from 1.
        line: usize,
        /// What failed there.
        #[source]
        source: Box<Error>,
    },

    /// One call of a batch or a chunk of lines
    /// ([`Transformer::Batch`](crate::Transformer::Batch),
    /// [`Transformer::Chunks`](crate::Transformer::Chunks)) failed: which lines it took
    /// (from 1), and why.
    #[error("lines {first} to {last} (one call)")]
    Lines {
        /// The call's first line, counting from 1.
        first: usize,
        /// Its last line.
        last: usize,
        /// What failed.
        #[source]
        source: Box<Error>,
    },

    /// A batch of lines ([`GuestModule::transform_lines`](crate::GuestModule::transform_lines))
    /// would hold more than [`Limits::max_batch_bytes`](crate::Limits::max_batch_bytes) in
    /// memory: its input, or the results made so far.
    #[error("the {what} of a batch of lines would hold more than {limit} bytes in memory")]
    BatchTooLarge {
        /// `input` or `results`.
        what: &'static str,
        /// The limit.
        limit: u64,
    },

    /// A batch function (`func(list<string>) -> list<string>`) returned a list whose
    /// length is not its input's: its results cannot be matched to lines.
    #[error(
        "`{export}` returned {results} results for a batch of {lines} lines (one a line, in order, is its contract)"
    )]
    BatchCount {
        /// The function.
        export: Cow<'static, str>,
        /// The lines it was given.
        lines: u64,
        /// The results it returned.
        results: u64,
    },

    /// A stream of lines would need more host memory than it is allowed: `jobs` workers,
    /// each with an instance of up to the guest's memory cap, and the chunks in flight.
    #[error(
        "{jobs} jobs need up to {} of host memory, more than the limit of {}: at most {fit} fit (fewer --jobs, a lower --max-memory, or a higher --max-host-memory)",
        mib(*needed),
        mib(*limit)
    )]
    HostMemory {
        /// The jobs asked for.
        jobs: usize,
        /// What they would need at most.
        needed: u64,
        /// The limit.
        limit: u64,
        /// How many jobs fit under it.
        fit: usize,
    },

    /// A stream was asked to stop (by SIGINT or SIGTERM, in `memhost`): every result before
    /// the point it stopped at is written, whole, and nothing after.
    #[error("stopped after {lines} lines, on request")]
    Interrupted {
        /// The lines whose results were written.
        lines: u64,
    },

    /// A WIT file or world given for a module (`--wit`) cannot be read, parsed or found.
    #[error("cannot use WIT {what}: {why}")]
    Wit {
        /// The file or directory.
        what: String,
        /// Why.
        why: String,
    },

    /// A canonical-ABI value the guest handed over breaks a rule of the spec (the spec's
    /// trap): the instance may not be called through the canonical ABI again.
    #[error("guest `{export}` broke the canonical ABI: {violation}")]
    Canonical {
        /// The function being called.
        export: Cow<'static, str>,
        /// What was wrong.
        violation: Violation,
    },

    /// A value this host will not take or give through the canonical ABI, though the spec
    /// allows it: past [`Limits::max_value_bytes`](crate::Limits::max_value_bytes), a
    /// string to borrow from a shared memory, data longer than a 32-bit guest takes. Not a
    /// lie of the guest: the instance stays usable (a result is still handed back to the
    /// guest's post-return, which frees it).
    #[error("`{export}`: {limit} (a limit of this host; the guest may be called again)")]
    HostLimit {
        /// The function being called.
        export: Cow<'static, str>,
        /// Which limit.
        limit: Violation,
    },

    /// A call through the canonical ABI that cannot be made as asked: no such function, or
    /// values that are not of its parameters' types. Nothing was called.
    #[error("cannot call `{export}`: {problem}")]
    Call {
        /// The function asked for.
        export: Cow<'static, str>,
        /// What is wrong.
        problem: String,
    },

    /// Input for a `func(string) -> string` that is not UTF-8; refused before any call.
    #[error("the input for `{export}` is not UTF-8: invalid byte at {valid_up_to}")]
    InputNotUtf8 {
        /// The function.
        export: Cow<'static, str>,
        /// How many leading bytes are valid.
        valid_up_to: usize,
    },

    /// An earlier call through the canonical ABI trapped, which leaves the instance unfit to
    /// be entered again (as the Component Model says of a trapped instance).
    #[error("cannot call `{export}`: an earlier canonical-ABI call of this instance trapped")]
    Poisoned {
        /// The function asked for.
        export: Cow<'static, str>,
    },

    /// A line of a stream is longer than the guest's memory cap: no guest could take it.
    /// The results of every line before it were written.
    #[error("line {line} of the input is longer than the guest's memory cap of {cap} bytes")]
    LineTooLong {
        /// The line, counting from 1.
        line: u64,
        /// The cap.
        cap: u64,
    },

    /// Reading a stream's input failed.
    #[error("cannot read the input")]
    Input {
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Writing a stream's results failed.
    #[error("cannot write the results")]
    Output {
        /// Why.
        #[source]
        source: io::Error,
    },

    /// An operation needs an export that this module does not have.
    #[error("module {module} has no export `{export}`")]
    MissingExport {
        /// The module's name.
        module: String,
        /// The export.
        export: Cow<'static, str>,
    },
}

/// What kind of failure an [`Error`] is; the `memhost` binary turns it into its exit code
/// ([`crate::exit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller asked for something that cannot be done: a function that is not there,
    /// values of the wrong types, a WIT file that cannot be read.
    Usage,
    /// Reading or writing data of the caller's failed: standard input or output, or what a
    /// [`Guest::put_with`](crate::Guest::put_with) closure reads.
    Io,
    /// The module could not be read, is not Wasm, or is too large.
    Module,
    /// The module is Wasm but does not follow the ABI or exceeds a limit, or the guest
    /// misbehaved at run time.
    Guest,
    /// The run was asked to stop (SIGINT or SIGTERM).
    Interrupted,
}

impl Error {
    /// The error for `violation` in a call of `export`: [`Error::HostLimit`] for a limit
    /// of this host ([`Violation::is_host_limit`]), else [`Error::Canonical`].
    pub(crate) fn canonical(export: &str, violation: Violation) -> Error {
        let export = export.to_string().into();
        if violation.is_host_limit() {
            Error::HostLimit {
                export,
                limit: violation,
            }
        } else {
            Error::Canonical { export, violation }
        }
    }

    /// Which kind of failure this is. Every variant is named here, so that a new one must
    /// choose.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Line { source, .. } | Error::Lines { source, .. } => source.kind(),
            Error::Fill { .. } | Error::Input { .. } | Error::Output { .. } => ErrorKind::Io,
            Error::Call { .. } | Error::Wit { .. } | Error::HostMemory { .. } => ErrorKind::Usage,
            Error::Interrupted { .. } => ErrorKind::Interrupted,
            Error::Read { .. }
            | Error::ModuleTooLarge { .. }
            | Error::Compile { .. }
            | Error::Text { .. }
            | Error::Component { .. }
            | Error::CacheDir { .. } => ErrorKind::Module,
            Error::Abi { .. }
            | Error::OverLimit { .. }
            | Error::Instantiate { .. }
            | Error::Trap { .. }
            | Error::OutOfFuel { .. }
            | Error::Exit { .. }
            | Error::HostFunction { .. }
            | Error::NegativeLength { .. }
            | Error::RangeOverflow { .. }
            | Error::OutOfBounds { .. }
            | Error::InvalidUtf8 { .. }
            | Error::OverCapacity { .. }
            | Error::Refused { .. }
            | Error::ErrorCode { .. }
            | Error::AllocationFailed { .. }
            | Error::Misaligned { .. }
            | Error::Overlap { .. }
            | Error::TooLong { .. }
            | Error::BatchTooLarge { .. }
            | Error::BatchCount { .. }
            | Error::LineTooLong { .. }
            | Error::Canonical { .. }
            | Error::HostLimit { .. }
            | Error::InputNotUtf8 { .. }
            | Error::Poisoned { .. }
            | Error::MissingExport { .. } => ErrorKind::Guest,
        }
    }
}

/// `bytes` in MiB, to a tenth.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The most characters of problems that an error's message lists: with the rest of the
/// message, one line of at most about 400 characters.
pub const PROBLEM_CHARS: usize = 240;

impl Error {
    /// Every problem found in a module, for [`Error::Abi`] and [`Error::OverLimit`] (whose
    /// messages show the first few); empty for other errors.
    pub fn problems(&self) -> &[String] {
        match self {
            Error::Abi { problems, .. } | Error::OverLimit { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// Lists problems (or names) on one line, between separators: as many as fit in
/// [`PROBLEM_CHARS`] (always the first, itself cut to that), then how many more there are.
/// An error's `problems` field keeps them all.
pub(crate) struct Problems<'a, S>(pub(crate) &'a [S], pub(crate) &'static str);

impl<S: AsRef<str>> fmt::Display for Problems<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Problems(items, separator) = *self;
        let mut used = 0;
        for (i, problem) in items.iter().enumerate() {
            let problem = problem.as_ref();
            let len = problem.chars().count();
            if i > 0 && used + separator.len() + len > PROBLEM_CHARS {
                return write!(f, "{separator}and {} more", items.len() - i);
            }
            if i > 0 {
                f.write_str(separator)?;
                used += separator.len();
            }
            // One problem alone never exceeds the budget either.
            if len > PROBLEM_CHARS {
                let cut: String = problem.chars().take(PROBLEM_CHARS).collect();
                write!(f, "{cut}…")?;
            } else {
                f.write_str(problem)?;
            }
            used += len;
        }
        Ok(())
    }
}

/// A code a guest returned, with its meaning in the ABI.
struct Code(i32);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match abi::ErrorCode::from_code(self.0) {
            Some(code) => write!(f, "{code}"),
            None => write!(f, "{} (not a code of the ABI)", self.0),
        }
    }
}

impl Violation {
    /// Whether this is a limit of this host rather than a break of the spec by the guest:
    /// a value past [`Limits::max_value_bytes`](crate::Limits::max_value_bytes), a string
    /// in a shared memory (which this host does not borrow), data too long for a 32-bit
    /// guest on the way in.
    pub fn is_host_limit(&self) -> bool {
        matches!(
            self,
            Violation::ValueTooLarge | Violation::SharedMemory | Violation::TooLong { .. }
        )
    }
}

/// How a value a guest handed over through the canonical ABI breaks the spec's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A pointer not aligned as its type needs.
    #[error("{what} at {ptr} is not aligned to {align} bytes")]
    Misaligned {
        /// What the pointer is for: `a string`, `a list`, `the return area`...
        what: &'static str,
        /// The pointer.
        ptr: u32,
        /// The alignment needed.
        align: u32,
    },
    /// A range past the end of memory.
    #[error("{what} at {ptr} of {len} bytes is past the end of memory ({memory_size} bytes)")]
    OutOfBounds {
        /// What the range is for.
        what: &'static str,
        /// Where it starts.
        ptr: u32,
        /// Its length in bytes.
        len: u64,
        /// The memory's size.
        memory_size: u64,
    },
    /// A string longer than the spec allows ((1 << 31) - 1 bytes).
    #[error("a string of {len} bytes is longer than the canonical ABI allows")]
    StringTooLong {
        /// Its claimed length.
        len: u32,
    },
    /// A list whose length times element size does not fit in 32 bits.
    #[error("a list of {len} elements of {size} bytes does not fit in 32 bits")]
    ListTooLong {
        /// Its claimed length.
        len: u32,
        /// The size of one element.
        size: u32,
    },
    /// Data too long for a 32-bit guest.
    #[error("{len} bytes are more than a 32-bit guest can take")]
    TooLong {
        /// The length.
        len: u64,
    },
    /// A string that is not UTF-8.
    #[error("the string at {ptr} (length {len}) is not UTF-8: invalid byte at {}", u64::from(*ptr) + u64::from(*valid_up_to))]
    InvalidUtf8 {
        /// Where it starts.
        ptr: u32,
        /// Its length.
        len: u32,
        /// How many leading bytes are valid.
        valid_up_to: u32,
    },
    /// A `char` that is not a Unicode scalar value (a surrogate, or past 0x10FFFF).
    #[error("{value:#x} is not a char (a Unicode scalar value)")]
    InvalidChar {
        /// The value.
        value: u32,
    },
    /// A discriminant past the type's cases.
    #[error("discriminant {value} of {what} with {cases} cases")]
    Discriminant {
        /// `a variant`, `an enum`, `an option`, `a result`.
        what: &'static str,
        /// The discriminant.
        value: u32,
        /// How many cases the type has.
        cases: usize,
    },
    /// The lifted value would take more host memory than
    /// [`Limits::max_value_bytes`](crate::Limits::max_value_bytes).
    #[error("the value would take more host memory than the limit for one value")]
    ValueTooLarge,
    /// The results of a batch add up to more bytes than the guest's memory holds: they
    /// cannot all be blocks of their own, as the canonical ABI hands them over.
    #[error(
        "results of {total} bytes in all, more than the guest's memory of {memory_size} bytes holds"
    )]
    ResultsTooLarge {
        /// The results' lengths, added up.
        total: u64,
        /// The memory's size.
        memory_size: u64,
    },
    /// A string in a shared memory, which cannot be borrowed.
    #[error("a string in a shared memory cannot be borrowed")]
    SharedMemory,
}
