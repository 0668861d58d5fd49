//! `memhost`: the Wasmer guide "Using memory pointers", run against a guest module; and
//! `memhost transform`, which pipes standard input through the guest's `transform`.
//!
//! Without MODULE it runs the guest that `cargo xtask build-guest` writes
//! (`target/guest/guest.wasm`), found from the current directory upward.
//!
//! Exit codes are those of [`host::exit`], the one table that `--help` prints too.

use std::fmt;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::num::NonZeroUsize;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use host::{ErrorKind, GuestModule, Limits, ModuleCache, Transformer};

#[derive(Debug, Parser)]
#[command(
    name = "memhost",
    version,
    about = "Runs the Wasmer guide \"Using memory pointers\" against a guest module.",
    after_help = host::exit::help(),
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: the demo.
    #[command(flatten)]
    run: Run,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The guide's reads and writes, printed as it prints them (the default).
    Demo(Run),
    /// Puts all of standard input into the guest (through its allocator when it has one,
    /// else its static buffer), calls `transform`, and writes the result to standard
    /// output, byte for byte. A canonical-ABI module's `transform` (or --export) is a
    /// `func(string) -> string` or `func(list<u8>) -> list<u8>`.
    Transform(Transform),
    /// Calls a function of a canonical-ABI module's WIT world, its arguments and result in
    /// WAVE (as `wasmtime run --invoke`): the result on one line of standard output.
    Call(Call),
}

#[derive(Debug, Args)]
struct Call {
    #[command(flatten)]
    run: Run,
    /// The call, in WAVE: `name(arg, ...)`, e.g. 'join(["a", "b"], "-")' or
    /// 'memhost:test/text#upper("x")'.
    #[arg(long, value_name = "CALL")]
    invoke: String,
}

#[derive(Debug, Args)]
struct Transform {
    #[command(flatten)]
    run: Run,
    /// Transform each line of standard input on its own (each result keeps its newline),
    /// on --jobs threads, and write the results in input order.
    #[arg(long)]
    lines: bool,
    /// Worker threads for --lines, each with its own instance (default: one a core; at
    /// most 256, and no more than there are lines).
    #[arg(long, value_name = "N", requires = "lines")]
    jobs: Option<NonZeroUsize>,
    /// The most standard input --lines holds in memory, and the most results; past either
    /// it stops with an error.
    #[arg(long, value_name = "SIZE", requires = "lines", default_value_t = Size(Limits::default().max_batch_bytes))]
    max_input: Size,
    /// The canonical-ABI function to transform with (default: `transform`, the guide's or
    /// the world's).
    #[arg(long, value_name = "NAME")]
    export: Option<String>,
}

#[derive(Debug, Args)]
struct Run {
    /// The guest module (default: target/guest/guest.wasm, built by `cargo xtask
    /// build-guest`, in the current directory or the nearest one above it that has it).
    module: Option<PathBuf>,
    /// The work one call into the guest may do, in units of about one Wasm operator (an
    /// endless loop is stopped within about a second).
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_FUEL)]
    fuel: u64,
    /// The most linear memory the guest may have (a size: 65536, 64KiB, 16MiB, 1GB).
    #[arg(long, value_name = "SIZE", default_value_t = Size(Limits::default().max_memory_bytes))]
    max_memory: Size,
    /// The largest module accepted (a size); compiling takes about 1.3 s per MB of code.
    #[arg(long, value_name = "SIZE", default_value_t = Size(Limits::default().max_module_bytes))]
    max_module_bytes: Size,
    /// When a module is refused, list every problem, one a line; say whether the compiled
    /// module came from the cache.
    #[arg(short, long)]
    verbose: bool,
    /// Keep compiled modules in DIR (default: the user's cache directory, such as
    /// ~/.cache/wasm-memory-host), created private to the user.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile the module without reading or writing the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// The WIT world of a canonical-ABI module that carries none (no `component-type`
    /// section): a .wit file, or a directory of them.
    #[arg(long, value_name = "PATH")]
    wit: Option<PathBuf>,
    /// Which world of --wit (default: its only one).
    #[arg(long, value_name = "NAME", requires = "wit")]
    world: Option<String>,
}

/// A size in bytes on the command line: a number, with a unit or without (`65536`, `64KiB`,
/// `16 MiB`, `32MB`; `KiB`/`MiB`/`GiB` are powers of 1024, `kB`/`MB`/`GB` of 1000), parsed by
/// the `parse-size` crate. Shown with the largest binary unit that divides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Size(u64);

impl FromStr for Size {
    type Err = parse_size::Error;

    fn from_str(s: &str) -> Result<Size, parse_size::Error> {
        parse_size::parse_size(s).map(Size)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Size(n) = *self;
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if n != 0 && n % (1 << shift) == 0 {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

impl Run {
    /// The module to run: the one named, or the workspace's built guest.
    fn module_path(&self) -> Result<PathBuf, CliError> {
        if let Some(path) = &self.module {
            return Ok(path.clone());
        }
        let cwd = std::env::current_dir().map_err(|source| CliError::NoModule {
            searched: PathBuf::from("."),
            source: Some(source),
        })?;
        cwd.ancestors()
            .map(|dir| dir.join(abi::GUEST_ARTIFACT))
            .find(|path| path.is_file())
            .ok_or(CliError::NoModule {
                searched: cwd,
                source: None,
            })
    }

    /// The module at `path`, through the cache unless --no-cache. A cache that cannot be
    /// used costs a compile and a warning, never the run.
    fn module(&self, path: &Path) -> Result<GuestModule> {
        self.module_with(path, &self.limits())
    }

    /// As [`Run::module`], with `limits`.
    fn module_with(&self, path: &Path, limits: &Limits) -> Result<GuestModule> {
        let limits = limits.clone();
        let dir = match (self.no_cache, &self.cache_dir) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir.clone()),
            (false, None) => ModuleCache::default_dir(),
        };
        let cache = dir.and_then(|dir| {
            ModuleCache::open(dir)
                .inspect_err(|e| eprintln!("warning: {}", one_line(e)))
                .ok()
        });
        let wit = self
            .wit
            .as_ref()
            .map(|path| host::Wit::from_path(path, self.world.as_deref()))
            .transpose()?;
        let (module, outcome) =
            GuestModule::from_file_with(path, &limits, wit.as_ref(), cache.as_ref())?;
        let Some(outcome) = outcome else {
            return Ok(module);
        };
        for warning in &outcome.warnings {
            eprintln!("warning: {}", one_line(warning));
        }
        if self.verbose {
            let how = if outcome.hit {
                "loaded from"
            } else {
                "compiled, stored in"
            };
            eprintln!("module {how} {}", outcome.entry.display());
        }
        Ok(module)
    }

    fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.fuel = Some(self.fuel);
        limits.max_memory_bytes = self.max_memory.0;
        limits.max_module_bytes = self.max_module_bytes.0;
        limits
    }
}

/// The binary's own failures (the library's are [`host::Error`]).
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Standard input or output failed.
    #[error("{what}")]
    StdIo {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// Standard input that cannot fit the guest's memory.
    #[error(
        "standard input{} is larger than the guest's memory cap of {cap} bytes (raise it with --max-memory)",
        len.map(|len| format!(" ({len} bytes)")).unwrap_or_default()
    )]
    InputTooLarge {
        /// Its length, when known (a pipe is read only up to the cap).
        len: Option<u64>,
        cap: u64,
    },
    /// A line of standard input that no guest within the memory cap could take.
    #[error(
        "line {line} of standard input is longer than the guest's memory cap of {cap} bytes \
         (raise it with --max-memory)"
    )]
    LineTooLong { line: usize, cap: u64 },
    /// No MODULE was given and no built guest was found.
    #[error(
        "no MODULE given, and no {artifact} in {} or a directory above it; \
         build it first with `cargo xtask build-guest` in the workspace, or name a module",
        searched.display(),
        artifact = abi::GUEST_ARTIFACT
    )]
    NoModule {
        searched: PathBuf,
        #[source]
        source: Option<io::Error>,
    },
}

impl CliError {
    fn stdin(source: io::Error) -> CliError {
        CliError::StdIo {
            what: "cannot read standard input",
            source,
        }
    }

    fn stdout(source: io::Error) -> CliError {
        CliError::StdIo {
            what: "cannot write standard output",
            source,
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            CliError::StdIo { .. } => ErrorKind::Io,
            CliError::NoModule { .. } => ErrorKind::Module,
            CliError::InputTooLarge { .. } | CliError::LineTooLong { .. } => ErrorKind::Guest,
        }
    }
}

/// `e` and its sources, `: `-separated, on one line (wasmer's validation errors can span
/// several).
fn one_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        line.push_str(": ");
        line.push_str(&e.to_string());
        source = e.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The exit code of a failure: from the kind of the library's or the binary's error at its
/// root (context added on the way does not change it).
fn exit_code(e: &anyhow::Error) -> u8 {
    let kind = match (
        e.downcast_ref::<host::Error>(),
        e.downcast_ref::<CliError>(),
    ) {
        (Some(e), _) => e.kind(),
        (None, Some(e)) => e.kind(),
        // Every error of this binary is one of the two; anything else would be a bug here,
        // and is not blamed on the caller's input or output.
        (None, None) => ErrorKind::Guest,
    };
    kind.exit_code()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version exit 0, usage errors 2, as clap does.
        Err(e) => e.exit(),
    };
    let command = cli.command.unwrap_or(Command::Demo(cli.run));
    let (run, result) = match &command {
        Command::Demo(run) => (run, demo(run)),
        Command::Transform(t) if t.lines => {
            let jobs = t.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
            });
            (
                &t.run,
                pipe_lines(&t.run, jobs, t.max_input.0, t.export.as_deref()),
            )
        }
        Command::Transform(t) => (&t.run, pipe(&t.run, t.export.as_deref())),
        Command::Call(c) => (&c.run, call(&c.run, &c.invoke)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(e.as_ref()));
            if run.verbose {
                let error = e.downcast_ref::<host::Error>();
                for problem in error.map(host::Error::problems).unwrap_or_default() {
                    eprintln!("  - {problem}");
                }
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// `memhost transform`: standard input through the guest's `transform` to standard output.
/// Nothing but the result goes to standard output.
fn pipe(run: &Run, export: Option<&str>) -> Result<()> {
    let module = run.module(&run.module_path()?)?;
    let transformer = module.transformer(export)?;
    let mut guest = module.instantiate()?;
    let cap = run.max_memory.0;
    if let Transformer::Canonical(name) = &transformer {
        // The canonical ABI lowers its argument itself: standard input is read into a
        // buffer, up to one byte past the cap, and the result written straight from guest
        // memory.
        let mut input = Vec::new();
        io::stdin()
            .lock()
            .take(cap.saturating_add(1))
            .read_to_end(&mut input)
            .map_err(CliError::stdin)?;
        if input.len() as u64 > cap {
            return Err(CliError::InputTooLarge { len: None, cap }.into());
        }
        return guest.transform_bytes(name, &input, write_stdout)?;
    }
    let stdin = io::stdin().lock();
    // A regular file says its size: read it straight into guest memory. A pipe is read
    // into a buffer first, up to one byte past the cap.
    let file = stdin
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(CliError::stdin)?;
    let meta = file.metadata().map_err(CliError::stdin)?;
    if meta.is_file() {
        let len = meta.len();
        if len > cap {
            return Err(CliError::InputTooLarge {
                len: Some(len),
                cap,
            }
            .into());
        }
        let mut file = &file;
        let put = guest.put_with(usize::try_from(len).unwrap_or(usize::MAX), |buf| {
            file.read_exact(buf)
        });
        put.map_err(|e| putting(e, cap))?;
    } else {
        let mut input = Vec::new();
        (&file)
            .take(cap.saturating_add(1))
            .read_to_end(&mut input)
            .map_err(CliError::stdin)?;
        if input.len() as u64 > cap {
            return Err(CliError::InputTooLarge { len: None, cap }.into());
        }
        let put = guest.put_bytes(&input);
        put.map_err(|e| putting(e, cap))?;
    }
    guest.transform()?;
    let region = guest.load()?;
    let result = guest
        .bytes(region)
        .context("reading the result `load` points to")?;
    write_stdout(&result)
}

/// `memhost transform --lines`: each line of standard input through the guest's `transform`,
/// on `jobs` threads, the results in input order on standard output. Standard input is held
/// in memory, up to `max_input` bytes.
fn pipe_lines(run: &Run, jobs: NonZeroUsize, max_input: u64, export: Option<&str>) -> Result<()> {
    let mut limits = run.limits();
    limits.max_batch_bytes = max_input;
    let module = run.module_with(&run.module_path()?, &limits)?;
    let transformer = module.transformer(export)?;
    let input = read_lines(&mut io::stdin().lock(), max_input, run.max_memory.0)?;
    let output = module.transform_lines_with(&input, jobs, &transformer)?;
    write_stdout(&output)
}

/// All of `input`, refused as soon as it passes `max_input` bytes, or as soon as one line
/// passes `max_line` bytes (so endless input without a newline stops early).
fn read_lines(input: &mut impl io::Read, max_input: u64, max_line: u64) -> Result<Vec<u8>> {
    const CHUNK: u64 = 1 << 20;
    let mut held = Vec::new();
    // Where the line being read starts.
    let mut line_start = 0;
    loop {
        let old = held.len();
        let n = (&mut *input)
            .take(CHUNK)
            .read_to_end(&mut held)
            .map_err(CliError::stdin)?;
        if n == 0 {
            return Ok(held);
        }
        if let Some(last) = memchr::memrchr(b'\n', &held[old..]) {
            line_start = old + last + 1;
        }
        if (held.len() - line_start) as u64 > max_line {
            let line = memchr::memchr_iter(b'\n', &held[..line_start]).count() + 1;
            return Err(CliError::LineTooLong {
                line,
                cap: max_line,
            }
            .into());
        }
        if held.len() as u64 > max_input {
            return Err(host::Error::BatchTooLarge {
                what: "input",
                limit: max_input,
            })
            .context("standard input is held in memory by --lines (raise it with --max-input)");
        }
    }
}

/// `memhost call --invoke CALL`: one function of the module's WIT world, its result in WAVE
/// on one line of standard output (nothing for a function without one).
fn call(run: &Run, invoke: &str) -> Result<()> {
    let module = run.module(&run.module_path()?)?;
    let mut guest = module.instantiate()?;
    match guest.invoke(invoke)? {
        Some(result) => write_stdout(format!("{result}\n").as_bytes()),
        None => Ok(()),
    }
}

/// Writes `bytes` to standard output, and nothing else.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes).map_err(CliError::stdout)?;
    stdout.flush().map_err(CliError::stdout)?;
    Ok(())
}

/// A failure to put standard input into the guest, with the cap when memory ran out.
fn putting(e: host::Error, cap: u64) -> anyhow::Error {
    let context = match e {
        host::Error::AllocationFailed { .. } => format!(
            "putting standard input into the guest, whose memory is capped at {cap} bytes \
             (raise it with --max-memory)"
        ),
        _ => "putting standard input into the guest".to_string(),
    };
    anyhow::Error::new(e).context(context)
}

/// The guide's steps, printed as it prints them, then what this guest adds.
///
/// Standard output that fails (a full disk, a closed pipe) stops it with
/// [`CliError::StdIo`] (exit 1).
fn demo(run: &Run) -> Result<()> {
    let path = run.module_path()?;
    let mut out = io::stdout().lock();
    // `println!` that returns a failed write as an error, where the standard one panics.
    macro_rules! println {
        ($($arg:tt)*) => {
            writeln!(out, $($arg)*).map_err(CliError::stdout)?
        };
    }
    println!("Compiling module...");
    let module = run.module(&path)?;
    println!("Instantiating module...");
    let mut guest = module.instantiate()?;

    println!("Memory size (pages) {} pages", guest.memory_pages());
    println!("Memory size (bytes) {}", guest.memory_size());

    let region = guest.load()?;
    println!("String offset: {}", region.offset);
    println!("String length: {}", region.len);
    let contents = guest
        .read_string(region)
        .context("reading the string `load` points to")?;
    println!("Memory contents: {contents:?}");

    // The seed's write: the new string at the same offset, the guest not told.
    let new = guest.write_string("Hello, Wasmer!")?;
    println!("New string length: {}", new.len);
    println!("New memory contents: {:?}", guest.read_string(new)?);

    let extras = guest.extras();
    if !extras.set_len {
        return Ok(());
    }
    // Tell the guest, and see its own `load` agree.
    guest
        .set_len(new.len)
        .context("telling the guest the new length")?;
    let told = guest.load()?;
    println!(
        "Guest load after set_len: offset {}, length {}",
        told.offset, told.len
    );

    // The seed's other way: put the original back, then overwrite only "World!".
    guest.replace_string("Hello, World!")?;
    println!("Restored contents: {:?}", guest.string()?);
    let partial = "Wasmer!";
    // `load` checked that offset + len fits in 32 bits, and len is at least 14 here.
    let at = told.offset.saturating_add(7);
    guest.write(at, partial.as_bytes())?;
    guest.set_len(told.len)?; // "Hello, " + "Wasmer!": the length it had before

    println!(
        "Partial write of {:?} at offset {at} (offset + 7): {:?}",
        partial,
        guest.string()?
    );

    if extras.transform {
        let len = guest.transform()?;
        println!(
            "Transformed by the guest, length {len}: {:?}",
            guest.string()?
        );
    }
    out.flush().map_err(CliError::stdout)?;
    Ok(())
}
