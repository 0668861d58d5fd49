//! The command line: the commands, their arguments and options (clap's derive), and what
//! the options make (limits, the module, the cache).

use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use memhost::{GuestModule, Limits, ModuleCache};

use crate::{CliError, one_line};

#[derive(Debug, Parser)]
#[command(
    name = "memhost",
    version,
    about = "Runs the Wasmer guide \"Using memory pointers\" against a guest module.",
    after_help = memhost::exit::help(),
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Without a subcommand: the demo.
    #[command(flatten)]
    pub(crate) run: Run,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// What a module offers, without running it: the ABIs it speaks, its WIT world's
    /// functions with their signatures, its imports, exports and memories.
    Inspect(Inspect),
    /// Prints the completion script of SHELL for memhost on standard output (for bash:
    /// `memhost completions bash > ~/.local/share/bash-completion/completions/memhost`).
    Completions {
        /// bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Inspect {
    #[command(flatten)]
    pub(crate) run: Run,
    /// One JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Call {
    #[command(flatten)]
    pub(crate) run: Run,
    /// The call, in WAVE: `name(arg, ...)`, e.g. 'join(["a", "b"], "-")' or
    /// 'memhost:test/text#upper("x")'.
    #[arg(long, value_name = "CALL")]
    pub(crate) invoke: String,
    /// A variable of the environment a WASI module sees (it sees none unless given), as
    /// NAME=VALUE; may be repeated.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub(crate) env: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct Transform {
    #[command(flatten)]
    pub(crate) run: Run,
    /// Transform each line of standard input on its own (each result keeps its newline),
    /// on --jobs threads, and write the results in input order as they come: any size of
    /// input, in bounded memory. With a batch export (`func(list<string>) ->
    /// list<string>` or `func(list<list<u8>>) -> list<list<u8>>`), many lines a call, one
    /// result a line.
    #[arg(long, conflicts_with = "chunks")]
    pub(crate) lines: bool,
    /// As --lines, but --export takes whole chunks of complete lines (about 1 MiB,
    /// newlines included) and returns their output, one call a chunk: a `func(string) ->
    /// string` or `func(list<u8>) -> list<u8>` whose output for a chunk depends only on
    /// that chunk's lines.
    #[arg(long, requires = "export")]
    pub(crate) chunks: bool,
    /// Worker threads for --lines and --chunks, each with its own instance (default: one a
    /// core, as many as fit --max-host-memory; at most 256).
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<NonZeroUsize>,
    /// With --lines or --chunks: the most host memory the run's instances and buffers may
    /// take (a size); a run whose --jobs need more is refused before it starts.
    #[arg(long, value_name = "SIZE", default_value_t = Size(Limits::default().max_host_memory_bytes))]
    pub(crate) max_host_memory: Size,
    /// With --lines or --chunks: say on standard error, at the end, what the run cost
    /// (lines, calls, bytes, wall time, the CPU time of the reader, the writer and the
    /// workers, and the peak memory against the run's bound).
    #[arg(long)]
    pub(crate) stats: bool,
    /// The canonical-ABI function to transform with (default: `transform`, the guide's or
    /// the world's).
    #[arg(long, value_name = "NAME")]
    pub(crate) export: Option<String>,
}

impl Transform {
    /// Whether standard input goes through as a stream of lines (`--lines`, `--chunks`).
    pub(crate) fn streams(&self) -> bool {
        self.lines || self.chunks
    }
}

#[derive(Debug, Args)]
pub(crate) struct Run {
    /// The guest module (default: target/guest/guest.wasm, built by `cargo xtask
    /// build-guest`, in the current directory or the nearest one above it that has it).
    pub(crate) module: Option<PathBuf>,
    /// The work one call into the guest may do, in units of about one Wasm operator (an
    /// endless loop is stopped within about a second).
    #[arg(long, value_name = "N", default_value_t = memhost::DEFAULT_FUEL)]
    pub(crate) fuel: u64,
    /// The most linear memory the guest may have (a size: 65536, 64KiB, 16MiB, 1GB).
    #[arg(long, value_name = "SIZE", default_value_t = Size(Limits::default().max_memory_bytes))]
    pub(crate) max_memory: Size,
    /// The largest module accepted (a size); compiling takes about 1.3 s per MB of code.
    #[arg(long, value_name = "SIZE", default_value_t = Size(Limits::default().max_module_bytes))]
    pub(crate) max_module_bytes: Size,
    /// When a module is refused, list every problem, one a line; say whether the compiled
    /// module came from the cache.
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// Keep compiled modules in DIR (default: the user's cache directory, such as
    /// ~/.cache/wasm-memory-host), created private to the user.
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Compile the module without reading or writing the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub(crate) no_cache: bool,
    /// The WIT world of a canonical-ABI module that carries none (no `component-type`
    /// section): a .wit file, or a directory of them.
    #[arg(long, value_name = "PATH")]
    pub(crate) wit: Option<PathBuf>,
    /// Show progress on standard error even when it is not a terminal (one plain line a
    /// second); on a terminal it is shown anyway.
    #[arg(long, conflicts_with = "quiet")]
    pub(crate) progress: bool,
    /// No warnings and no progress on standard error: only errors.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Which world of --wit (default: its only one).
    #[arg(long, value_name = "NAME", requires = "wit")]
    pub(crate) world: Option<String>,
    /// At exit, print this process's peak resident memory on standard error, as its last
    /// line (`peak memory: N bytes`, Linux's VmHWM): what a run cost, read by the process
    /// itself.
    #[arg(long)]
    pub(crate) peak_memory: bool,
}

/// A size in bytes on the command line: a number, with a unit or without (`65536`, `64KiB`,
/// `16 MiB`, `32MB`; `KiB`/`MiB`/`GiB` are powers of 1024, `kB`/`MB`/`GB` of 1000), parsed by
/// the `parse-size` crate. Shown with the largest binary unit that divides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub(crate) u64);

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
    pub(crate) fn module_path(&self) -> Result<PathBuf, CliError> {
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
    pub(crate) fn module(&self, path: &Path) -> Result<GuestModule> {
        self.module_with(path, &self.limits())
    }

    /// As [`Run::module`], with `limits`.
    pub(crate) fn module_with(&self, path: &Path, limits: &Limits) -> Result<GuestModule> {
        let limits = limits.clone();
        let dir = match (self.no_cache, &self.cache_dir) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir.clone()),
            (false, None) => ModuleCache::default_dir(),
        };
        let cache = dir.and_then(|dir| ModuleCache::open(dir).inspect_err(|e| self.warn(e)).ok());
        let wit = self
            .wit
            .as_ref()
            .map(|path| memhost::Wit::from_path(path, self.world.as_deref()))
            .transpose()?;
        let (module, outcome) =
            GuestModule::from_file_with(path, &limits, wit.as_ref(), cache.as_ref())?;
        let Some(outcome) = outcome else {
            return Ok(module);
        };
        for warning in &outcome.warnings {
            self.warn(warning);
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

    /// A warning on standard error, unless --quiet.
    pub(crate) fn warn(&self, e: &dyn std::error::Error) {
        if !self.quiet {
            eprintln!("warning: {}", one_line(e));
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.fuel = Some(self.fuel);
        limits.max_memory_bytes = self.max_memory.0;
        limits.max_module_bytes = self.max_module_bytes.0;
        limits
    }
}
