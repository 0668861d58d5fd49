//! `memhost`: the Wasmer guide "Using memory pointers", run against a guest module; and
//! `memhost transform`, which pipes standard input through the guest's `transform`.
//!
//! Without MODULE it runs the guest that `cargo xtask build-guest` writes
//! (`target/guest/guest.wasm`), found from the current directory upward.
//!
//! Exit codes are those of [`memhost::exit`], the one table that `--help` prints too.

use std::fmt;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::num::NonZeroUsize;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use std::io::IsTerminal as _;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memhost::{ErrorKind, GuestModule, Limits, ModuleCache, Transformer};

#[derive(Debug, Parser)]
#[command(
    name = "memhost",
    version,
    about = "Runs the Wasmer guide \"Using memory pointers\" against a guest module.",
    after_help = memhost::exit::help(),
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
    /// What a module offers, without running it: the ABIs it speaks, its WIT world's
    /// functions with their signatures, its imports, exports and memories.
    Inspect(Inspect),
}

#[derive(Debug, Args)]
struct Inspect {
    #[command(flatten)]
    run: Run,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct Call {
    #[command(flatten)]
    run: Run,
    /// The call, in WAVE: `name(arg, ...)`, e.g. 'join(["a", "b"], "-")' or
    /// 'memhost:test/text#upper("x")'.
    #[arg(long, value_name = "CALL")]
    invoke: String,
    /// A variable of the environment a WASI module sees (it sees none unless given), as
    /// NAME=VALUE; may be repeated.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
}

#[derive(Debug, Args)]
struct Transform {
    #[command(flatten)]
    run: Run,
    /// Transform each line of standard input on its own (each result keeps its newline),
    /// on --jobs threads, and write the results in input order as they come: any size of
    /// input, in bounded memory. With a batch export (`func(list<string>) ->
    /// list<string>` or `func(list<list<u8>>) -> list<list<u8>>`), many lines a call, one
    /// result a line.
    #[arg(long, conflicts_with = "chunks")]
    lines: bool,
    /// As --lines, but --export takes whole chunks of complete lines (about 1 MiB,
    /// newlines included) and returns their output, one call a chunk: a `func(string) ->
    /// string` or `func(list<u8>) -> list<u8>` whose output for a chunk depends only on
    /// that chunk's lines.
    #[arg(long, requires = "export")]
    chunks: bool,
    /// Worker threads for --lines and --chunks, each with its own instance (default: one a
    /// core, as many as fit --max-host-memory; at most 256).
    #[arg(long, value_name = "N")]
    jobs: Option<NonZeroUsize>,
    /// With --lines or --chunks: the most host memory the run's instances and buffers may
    /// take (a size); a run whose --jobs need more is refused before it starts.
    #[arg(long, value_name = "SIZE", default_value_t = Size(Limits::default().max_host_memory_bytes))]
    max_host_memory: Size,
    /// With --lines or --chunks: say on standard error, at the end, what the run cost
    /// (lines, calls, bytes, wall time, the CPU time of the reader, the writer and the
    /// workers, and the peak memory against the run's bound).
    #[arg(long)]
    stats: bool,
    /// The canonical-ABI function to transform with (default: `transform`, the guide's or
    /// the world's).
    #[arg(long, value_name = "NAME")]
    export: Option<String>,
}

impl Transform {
    /// Whether standard input goes through as a stream of lines (`--lines`, `--chunks`).
    fn streams(&self) -> bool {
        self.lines || self.chunks
    }
}

#[derive(Debug, Args)]
struct Run {
    /// The guest module (default: target/guest/guest.wasm, built by `cargo xtask
    /// build-guest`, in the current directory or the nearest one above it that has it).
    module: Option<PathBuf>,
    /// The work one call into the guest may do, in units of about one Wasm operator (an
    /// endless loop is stopped within about a second).
    #[arg(long, value_name = "N", default_value_t = memhost::DEFAULT_FUEL)]
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
    /// Show progress on standard error even when it is not a terminal (one plain line a
    /// second); on a terminal it is shown anyway.
    #[arg(long, conflicts_with = "quiet")]
    progress: bool,
    /// No warnings and no progress on standard error: only errors.
    #[arg(short, long)]
    quiet: bool,
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
    fn warn(&self, e: &dyn std::error::Error) {
        if !self.quiet {
            eprintln!("warning: {}", one_line(e));
        }
    }

    /// A spinner with `message` on standard error, when it is a terminal and not --quiet;
    /// cleared when dropped.
    fn spinner(&self, message: &'static str) -> Option<Spinner> {
        if self.quiet || !io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new_spinner().with_message(message);
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        bar.tick();
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(Spinner(bar))
    }

    /// How progress is shown: a bar on a terminal (with a percentage and the time left
    /// when the input's `size` is known), plain lines with --progress, nothing with
    /// --quiet or on a pipe.
    fn progress(&self, size: Option<u64>) -> Progress {
        if self.quiet {
            return Progress::Off;
        }
        if io::stderr().is_terminal() {
            let bar = match size {
                Some(len) => ProgressBar::new(len).with_style(
                    ProgressStyle::with_template(
                        "{spinner} {bytes}/{total_bytes} ({percent}%) {msg} {bytes_per_sec}, {eta} left",
                    )
                    .expect("a valid template"),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {bytes} {msg} {bytes_per_sec}")
                        .expect("a valid template"),
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            return Progress::Bar(bar);
        }
        if self.progress {
            return Progress::Plain {
                start: Instant::now(),
                last: Instant::now(),
                size,
            };
        }
        Progress::Off
    }

    fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.fuel = Some(self.fuel);
        limits.max_memory_bytes = self.max_memory.0;
        limits.max_module_bytes = self.max_module_bytes.0;
        limits
    }
}

/// The binary's own failures (the library's are [`memhost::Error`]).
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Options that do not go together.
    #[error("{0}")]
    Usage(&'static str),
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
    LineTooLong { line: u64, cap: u64 },
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
            CliError::Usage(_) => ErrorKind::Usage,
        }
    }
}

/// A spinner that clears itself when dropped.
struct Spinner(ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Progress of a long run on standard error.
enum Progress {
    Off,
    Bar(ProgressBar),
    /// A plain line a second, for a standard error that is not a terminal.
    Plain {
        start: Instant,
        last: Instant,
        size: Option<u64>,
    },
}

impl Progress {
    fn update(&mut self, stats: &memhost::StreamStats) {
        match self {
            Progress::Off => {}
            Progress::Bar(bar) => {
                bar.set_position(stats.bytes_in);
                bar.set_message(format!("{} lines", stats.lines));
            }
            Progress::Plain { start, last, size } => {
                if last.elapsed().as_secs() >= 1 {
                    *last = Instant::now();
                    eprintln!("{}", plain_line(stats, start.elapsed(), *size));
                }
            }
        }
    }

    /// Clears the bar; plain progress ends with the final figures.
    fn finish(self, stats: Option<&memhost::StreamStats>) {
        match self {
            Progress::Off => {}
            Progress::Bar(bar) => bar.finish_and_clear(),
            Progress::Plain { start, size, .. } => {
                if let Some(stats) = stats {
                    eprintln!("{}", plain_line(stats, start.elapsed(), size));
                }
            }
        }
    }
}

/// One line of plain progress: lines, bytes, rate, and the share done when the size is
/// known.
fn plain_line(
    stats: &memhost::StreamStats,
    elapsed: std::time::Duration,
    size: Option<u64>,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mb = stats.bytes_in as f64 / 1e6;
    let share = size
        .filter(|&s| s > 0)
        .map(|s| format!(" ({:.0}%)", stats.bytes_in as f64 * 100.0 / s as f64))
        .unwrap_or_default();
    format!(
        "progress: {} lines, {mb:.1} MB{share}, {:.1} MB/s",
        stats.lines,
        mb / secs
    )
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
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    // Names a module chose (of functions, types, cases) can make a message of any length:
    // the line is cut, saying how much was left out.
    let len = line.chars().count();
    if len <= LINE_CHARS {
        return line;
    }
    let cut: String = line.chars().take(LINE_CHARS).collect();
    format!("{cut}… ({} more characters)", len - LINE_CHARS)
}

/// The most characters of an error line, before it is cut.
const LINE_CHARS: usize = 1000;

/// The exit code of a failure: from the kind of the library's or the binary's error at its
/// root (context added on the way does not change it).
fn exit_code(e: &anyhow::Error) -> u8 {
    let kind = match (
        e.downcast_ref::<memhost::Error>(),
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

/// The first word when it is neither an option, a command, nor a file: a mistyped command,
/// said as one with the nearest command (clap would take it for MODULE, then complain about
/// the word after it). A word that looks like a path is left to the module's own error.
fn unknown_command() -> Option<String> {
    use clap::CommandFactory as _;
    let first = std::env::args_os().nth(1)?;
    let first = first.to_str()?;
    let cli = Cli::command();
    let commands: Vec<&str> = cli
        .get_subcommands()
        .map(clap::Command::get_name)
        .chain(["help"])
        .collect();
    if first.starts_with('-')
        || commands.contains(&first)
        || first.contains(['.', '/'])
        || Path::new(first).exists()
    {
        return None;
    }
    let nearest = commands
        .iter()
        .map(|c| (distance(first, c), *c))
        .min()
        .filter(|(d, _)| *d <= 2);
    Some(match nearest {
        Some((_, c)) => format!(
            "unknown command `{first}`: did you mean `{c}`? (a module is named by its path, \
             such as ./{first})"
        ),
        None => format!(
            "unknown command `{first}` (the commands are {}; a module is named by its path, \
             such as ./{first})",
            commands.join(", ")
        ),
    })
}

/// The edit distance between `a` and `b` (insertions, deletions, substitutions).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn main() -> ExitCode {
    if let Some(problem) = unknown_command() {
        eprintln!("error: {problem}");
        return ExitCode::from(memhost::exit::USAGE.code);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version exit 0, usage errors 2, as clap does.
        Err(e) => e.exit(),
    };
    let command = cli.command.unwrap_or(Command::Demo(cli.run));
    let (run, result) = match &command {
        Command::Demo(run) => (run, demo(run)),
        Command::Transform(t) if t.streams() => (&t.run, pipe_lines(t)),
        Command::Transform(t) if t.jobs.is_some() || t.stats => (
            &t.run,
            Err(CliError::Usage("--jobs and --stats go with --lines or --chunks").into()),
        ),
        Command::Transform(t) => (&t.run, pipe(&t.run, t.export.as_deref())),
        Command::Call(c) => (&c.run, call(&c.run, &c.invoke, &c.env)),
        Command::Inspect(i) => (&i.run, inspect::run(&i.run, i.json)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(e.as_ref()));
            if run.verbose {
                let error = e.downcast_ref::<memhost::Error>();
                for problem in error.map(memhost::Error::problems).unwrap_or_default() {
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
    // A long transform shows a spinner on a terminal (nothing on a pipe, nothing with
    // --quiet); it clears itself when the run ends, whatever the outcome.
    let _spinner = run.spinner("transforming standard input");
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

/// `memhost transform --lines` or `--chunks`: standard input through the guest, a line, a
/// batch of lines or a chunk a call, on --jobs threads, the results in input order on
/// standard output as they come, in bounded memory (`GuestModule::transform_stream`).
/// SIGINT and SIGTERM stop it at the next whole result.
fn pipe_lines(t: &Transform) -> Result<()> {
    let start = Instant::now();
    let run = &t.run;
    let mut limits = run.limits();
    limits.max_host_memory_bytes = t.max_host_memory.0;
    let module = run.module_with(&run.module_path()?, &limits)?;
    let transformer = match (&t.export, t.chunks) {
        (Some(export), true) => module.chunk_transformer(export)?,
        (export, _) => module.transformer(export.as_deref())?,
    };
    let jobs = match t.jobs {
        Some(jobs) => jobs,
        // One a core, as many as fit the host memory limit (at least one: a limit that
        // cannot hold one is said by the stream itself).
        None => {
            let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
            NonZeroUsize::new(cores.min(module.stream_jobs())).unwrap_or(NonZeroUsize::MIN)
        }
    };
    // Standard input as a file of its own (`Stdin`'s lock cannot go to the reader thread);
    // a regular file says its size, for the percentage and the time left.
    let input = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(CliError::stdin)?;
    let size = input
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let mut progress = run.progress(size);
    let stdout = io::stdout().lock();
    let stop = signals::stop_on_sigint_and_sigterm();
    let done = module.transform_stream(
        input,
        io::BufWriter::with_capacity(1 << 16, stdout),
        memhost::StreamOptions::new(jobs, &transformer).stop_on(stop),
        &mut |stats| progress.update(stats),
    );
    progress.finish(done.as_ref().ok());
    if t.stats
        && let Ok(s) = &done
    {
        eprintln!(
            "stats: {} lines, {} calls, {} bytes in, {} bytes out, wall {:.3} s, cpu: reader \
             {:.3} s, writer {:.3} s, workers {:.3} s; {} jobs, peak memory {} (bound {} above \
             the {} at start)",
            s.lines,
            s.calls,
            s.bytes_in,
            s.bytes_out,
            start.elapsed().as_secs_f64(),
            s.reader_cpu.as_secs_f64(),
            s.writer_cpu.as_secs_f64(),
            s.worker_cpu.as_secs_f64(),
            jobs,
            mib(signals::peak_rss()),
            mib(module.stream_memory(jobs.get())),
            mib(signals::start_rss()),
        );
    }
    done.map(|_| ()).map_err(|e| match e {
        memhost::Error::LineTooLong { line, cap } => CliError::LineTooLong { line, cap }.into(),
        e => anyhow::Error::new(e),
    })
}

/// `n` bytes in MiB, to a tenth.
fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
}

/// `memhost call --invoke CALL`: one function of the module's WIT world, its result in WAVE
/// on one line of standard output (nothing for a function without one).
fn call(run: &Run, invoke: &str, env: &[String]) -> Result<()> {
    // The default module, the guide's guest, has no WIT world: `call` never defaults to it.
    let Some(path) = &run.module else {
        return Err(CliError::Usage(
            "call needs a MODULE with a WIT world: memhost call MODULE --invoke 'name(args)'",
        )
        .into());
    };
    let mut wasi = memhost::Wasi::default();
    for var in env {
        let Some((name, value)) = var.split_once('=') else {
            return Err(CliError::Usage("--env takes NAME=VALUE").into());
        };
        wasi = wasi.env(name, value);
    }
    let module = run.module(path)?;
    let mut guest = module.instantiate_with(&wasi)?;
    // The result is written as it is printed, through one buffer, never built whole.
    let stdout = io::stdout().lock();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout);
    let wrote = guest.invoke_to(invoke, &mut out).map_err(|e| match e {
        memhost::Error::Output { source } => anyhow::Error::from(CliError::stdout(source)),
        e => e.into(),
    })?;
    if wrote {
        out.write_all(b"\n").map_err(CliError::stdout)?;
    }
    out.flush().map_err(CliError::stdout)?;
    Ok(())
}

/// Writes `bytes` to standard output, and nothing else.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes).map_err(CliError::stdout)?;
    stdout.flush().map_err(CliError::stdout)?;
    Ok(())
}

/// A failure to put standard input into the guest, with the cap when memory ran out.
fn putting(e: memhost::Error, cap: u64) -> anyhow::Error {
    let context = match e {
        memhost::Error::AllocationFailed { .. } => format!(
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

/// What `transform --lines` needs of the process: SIGINT and SIGTERM turned into a request
/// to stop at the next whole result, and the memory it holds (read by the process itself,
/// from `/proc/self/status`).
#[path = "cli/inspect.rs"]
mod inspect;

mod signals {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// Set by the first SIGINT or SIGTERM.
    static STOP: AtomicBool = AtomicBool::new(false);
    /// The resident memory when the handlers were installed, in bytes.
    static START_RSS: AtomicU64 = AtomicU64::new(0);

    extern "C" fn on_signal(_: libc::c_int) {
        // An atomic store is async-signal-safe.
        STOP.store(true, Ordering::Relaxed);
    }

    /// Installs the handlers and returns the flag they set. The first signal asks the
    /// stream to stop; the handler is then reset, so that a second one ends the process
    /// at once, as it would have without this.
    pub(crate) fn stop_on_sigint_and_sigterm() -> &'static AtomicBool {
        START_RSS.store(status_bytes("VmRSS:"), Ordering::Relaxed);
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed `sigaction` is a valid value of the plain C struct (no
            // handler, no flags, an empty mask), which the fields set below complete.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            // SAFETY: a zeroed `sigaction` is a valid value, as above.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: `action` and `old` are live, initialized structs; `sa_mask` is
            // `action`'s own field; `on_signal` only stores to an atomic, which is
            // async-signal-safe. A signal the process was started ignoring (`nohup`, a
            // background job of a script) is put back to ignored, as shells expect.
            unsafe {
                libc::sigemptyset(&raw mut action.sa_mask);
                libc::sigaction(signal, &raw const action, &raw mut old);
                if old.sa_sigaction == libc::SIG_IGN {
                    libc::sigaction(signal, &raw const old, std::ptr::null_mut());
                }
            }
        }
        &STOP
    }

    /// The peak resident memory of the process so far, in bytes.
    pub(crate) fn peak_rss() -> u64 {
        status_bytes("VmHWM:")
    }

    /// The resident memory when the handlers were installed, just before the stream.
    pub(crate) fn start_rss() -> u64 {
        START_RSS.load(Ordering::Relaxed)
    }

    /// A `kB` figure of `/proc/self/status`, in bytes (0 where there is none).
    fn status_bytes(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}
