//! `host`: the Wasmer guide "Using memory pointers", run against a guest module; and
//! `host transform`, which pipes standard input through the guest's `transform`.
//!
//! Without MODULE it runs `target/guest/guest.wasm` of this workspace, which
//! `cargo xtask build-guest` writes.
//!
//! Exit codes: 0 success; 1 standard input or output failed; 2 usage error; 3 the module
//! cannot be read, is not Wasm or is too large; 4 the module does not follow the guest ABI
//! or exceeds a limit (the input too), or the guest failed at run time.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::num::NonZeroUsize;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use host::{ErrorKind, GuestModule, Limits, ModuleCache};

/// Exit codes, as documented in README.md.
mod exit {
    pub const IO: u8 = 1;
    pub const MODULE: u8 = 3;
    pub const GUEST: u8 = 4;
}

#[derive(Debug, Parser)]
#[command(
    name = "host",
    about = "Runs the Wasmer guide \"Using memory pointers\" against a guest module.",
    after_help = "exit codes: 0 success, 1 standard input or output failed, 2 usage, \
                  3 unreadable or invalid module, 4 ABI mismatch, limit or guest fault",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Run,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Puts all of standard input into the guest (through its allocator when it has one,
    /// else its static buffer), calls `transform`, and writes the result to standard
    /// output, byte for byte.
    Transform(Transform),
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
    /// The most standard input --lines holds in memory, in bytes, and the most results;
    /// past either it stops with an error.
    #[arg(long, value_name = "BYTES", requires = "lines", default_value_t = Limits::default().max_batch_bytes)]
    max_input: u64,
}

#[derive(Debug, Args)]
struct Run {
    /// The guest module (default: this workspace's target/guest/guest.wasm, built by
    /// `cargo xtask build-guest`).
    module: Option<PathBuf>,
    /// The work one call into the guest may do, in units of about one Wasm operator (an
    /// endless loop is stopped within about a second).
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_FUEL)]
    fuel: u64,
    /// The most linear memory the guest may have, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_memory_bytes)]
    max_memory: u64,
    /// The largest module accepted, in bytes; compiling takes about 1.3 s per MB of code.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_module_bytes)]
    max_module_bytes: u64,
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
}

impl Run {
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
                .inspect_err(|e| eprintln!("warning: {e}; compiling without the cache"))
                .ok()
        });
        let Some(cache) = cache else {
            return Ok(GuestModule::from_file(path, &limits)?);
        };
        let (module, outcome) = GuestModule::from_file_cached(path, &limits, &cache)?;
        for warning in &outcome.warnings {
            eprintln!("warning: {}", chain(warning));
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
        limits.max_memory_bytes = self.max_memory;
        limits.max_module_bytes = self.max_module_bytes;
        limits
    }
}

/// Standard input that cannot fit the guest's memory.
#[derive(Debug, thiserror::Error)]
#[error(
    "standard input{} is larger than the guest's memory cap of {cap} bytes (raise it with --max-memory)",
    len.map(|len| format!(" ({len} bytes)")).unwrap_or_default()
)]
struct InputTooLarge {
    /// Its length, when known (a pipe is read only up to the cap).
    len: Option<u64>,
    cap: u64,
}

/// A failure of standard input or output.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
struct StdIo {
    what: &'static str,
    #[source]
    source: io::Error,
}

/// `e` and its sources, `: `-separated, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        line.push_str(": ");
        line.push_str(&e.to_string());
        source = e.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The artifact of `cargo xtask build-guest`, found from this crate's manifest, so that it
/// does not depend on the current directory.
fn default_module() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("target")
        .join("guest")
        .join("guest.wasm")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version exit 0, usage errors 2, as clap does.
        Err(e) => e.exit(),
    };
    let (run, transform) = match &cli.command {
        Some(Command::Transform(t)) => (&t.run, Some(t)),
        None => (&cli.run, None),
    };
    let module = match &run.module {
        Some(path) => path.clone(),
        None => {
            let path = default_module();
            if !path.exists() {
                eprintln!(
                    "error: no guest module at {}; build it first: cargo xtask build-guest",
                    path.display()
                );
                return ExitCode::from(exit::MODULE);
            }
            path
        }
    };
    let result = match transform {
        Some(Transform {
            lines: true, jobs, ..
        }) => {
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
            });
            pipe_lines(&module, run, jobs, transform.map_or(0, |t| t.max_input))
        }
        Some(_) => pipe(&module, run),
        None => demo(&module, run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the causes' texts hold (wasmer's validation errors can
            // span several).
            let message = format!("{e:#}");
            eprintln!(
                "error: {}",
                message.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            let error = e.downcast_ref::<host::Error>();
            if run.verbose {
                for problem in error.map(host::Error::problems).unwrap_or_default() {
                    eprintln!("  - {problem}");
                }
            }
            ExitCode::from(match error.map(host::Error::kind) {
                Some(ErrorKind::Module) => exit::MODULE,
                Some(_) => exit::GUEST,
                None if e.downcast_ref::<StdIo>().is_some() => exit::IO,
                None => exit::GUEST,
            })
        }
    }
}

/// `host transform`: standard input through the guest's `transform` to standard output.
/// Nothing but the result goes to standard output.
fn pipe(path: &Path, run: &Run) -> Result<()> {
    let module = run.module(path)?;
    let mut guest = module.instantiate()?;
    let cap = run.max_memory;
    let stdin = io::stdin().lock();
    let read_err = |source| StdIo {
        what: "cannot read standard input",
        source,
    };
    // A regular file says its size: read it straight into guest memory. A pipe is read
    // into a buffer first, up to one byte past the cap.
    let file = stdin
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_file() {
        let len = meta.len();
        if len > cap {
            return Err(InputTooLarge {
                len: Some(len),
                cap,
            }
            .into());
        }
        let mut file = &file;
        let put = guest.put_with(usize::try_from(len)?, |buf| file.read_exact(buf));
        put.map_err(|e| putting(e, cap))?;
    } else {
        let mut input = Vec::new();
        (&file)
            .take(cap.saturating_add(1))
            .read_to_end(&mut input)
            .map_err(read_err)?;
        if input.len() as u64 > cap {
            return Err(InputTooLarge { len: None, cap }.into());
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

/// `host transform --lines`: each line of standard input through the guest's `transform`,
/// on `jobs` threads, the results in input order on standard output. Standard input is held
/// in memory, up to `max_input` bytes.
fn pipe_lines(path: &Path, run: &Run, jobs: NonZeroUsize, max_input: u64) -> Result<()> {
    let mut limits = run.limits();
    limits.max_batch_bytes = max_input;
    let module = run.module_with(path, &limits)?;
    let input = read_lines(&mut io::stdin().lock(), max_input, run.max_memory)?;
    let output = module.transform_lines(&input, jobs)?;
    write_stdout(&output)
}

/// A line of standard input that no guest within the memory cap could take.
#[derive(Debug, thiserror::Error)]
#[error(
    "line {line} of standard input is longer than the guest's memory cap of {cap} bytes \
     (raise it with --max-memory)"
)]
struct LineTooLong {
    line: usize,
    cap: u64,
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
            .map_err(|source| StdIo {
                what: "cannot read standard input",
                source,
            })?;
        if n == 0 {
            return Ok(held);
        }
        if let Some(last) = memchr::memrchr(b'\n', &held[old..]) {
            line_start = old + last + 1;
        }
        if (held.len() - line_start) as u64 > max_line {
            let line = memchr::memchr_iter(b'\n', &held[..line_start]).count() + 1;
            return Err(LineTooLong {
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

/// Writes `bytes` to standard output, and nothing else.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let write_err = |source| StdIo {
        what: "cannot write standard output",
        source,
    };
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes).map_err(write_err)?;
    stdout.flush().map_err(write_err)?;
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
/// Standard output that fails (a full disk, a closed pipe) stops it with [`StdIo`] (exit 1).
fn demo(path: &Path, run: &Run) -> Result<()> {
    let mut out = io::stdout().lock();
    // `println!` that returns a failed write as an error, where the standard one panics.
    macro_rules! println {
        ($($arg:tt)*) => {
            writeln!(out, $($arg)*).map_err(|source| StdIo {
                what: "cannot write standard output",
                source,
            })?
        };
    }
    println!("Compiling module...");
    let module = run.module(path)?;
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
    let partial = b"Wasmer!";
    let at = told.offset.checked_add(7).context("offset + 7 overflows")?;
    guest.write(at, partial)?;
    guest.set_len(told.len)?; // "Hello, " + "Wasmer!": the length it had before

    println!(
        "Partial write of {:?} at offset {at} (offset + 7): {:?}",
        std::str::from_utf8(partial)?,
        guest.string()?
    );

    if extras.transform {
        let len = guest.transform()?;
        println!(
            "Transformed by the guest, length {len}: {:?}",
            guest.string()?
        );
    }
    out.flush().map_err(|source| StdIo {
        what: "cannot write standard output",
        source,
    })?;
    Ok(())
}
