//! `memhost`: the Wasmer guide "Using memory pointers", run against a guest module; and
//! `memhost transform`, which pipes standard input through the guest's `transform`.
//!
//! Without MODULE it runs the guest that `cargo xtask build-guest` writes
//! (`target/guest/guest.wasm`), found from the current directory upward.
//!
//! Exit codes are those of [`memhost::exit`], the one table that `--help` prints too.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser as _;
use memhost::ErrorKind;

use crate::args::{Cli, Command};

#[path = "cli/args.rs"]
mod args;
#[path = "cli/call.rs"]
mod call;
#[path = "cli/demo.rs"]
mod demo;
#[path = "cli/inspect.rs"]
mod inspect;
#[path = "cli/progress.rs"]
mod progress;
#[path = "cli/signals.rs"]
mod signals;
#[path = "cli/transform.rs"]
mod transform;

/// The binary's own failures (the library's are [`memhost::Error`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
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
    /// The guest's allocator failed where its memory could not grow enough within the cap:
    /// the likeliest cause, and the one the user can change.
    #[error(
        "{error} (the guest's memory cannot grow past the cap of {cap} bytes: raise it with --max-memory)"
    )]
    AtMemoryCap { error: memhost::Error, cap: u64 },
    /// The library's error, and what to run instead: for a module that speaks another ABI
    /// than the command asked for.
    #[error("{error} ({hint})")]
    Hinted { error: memhost::Error, hint: String },
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
    pub(crate) fn stdin(source: io::Error) -> CliError {
        CliError::StdIo {
            what: "cannot read standard input",
            source,
        }
    }

    pub(crate) fn stdout(source: io::Error) -> CliError {
        CliError::StdIo {
            what: "cannot write standard output",
            source,
        }
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            CliError::StdIo { .. } => ErrorKind::Io,
            CliError::NoModule { .. } => ErrorKind::Module,
            CliError::InputTooLarge { .. } | CliError::LineTooLong { .. } => ErrorKind::Guest,
            CliError::Usage(_) => ErrorKind::Usage,
            CliError::AtMemoryCap { error, .. } | CliError::Hinted { error, .. } => error.kind(),
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

/// `memhost completions SHELL`: the script, written whole (a closed pipe is exit 1, as
/// anywhere else, not a panic).
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory as _;
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "memhost", &mut script);
    let mut stdout = io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write standard output: {e}");
            ExitCode::from(memhost::exit::IO.code)
        }
    }
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
        Command::Completions { shell } => return completions(*shell),
        Command::Demo(run) => (run, demo::run(run)),
        Command::Transform(t) if t.streams() => (&t.run, transform::pipe_lines(t)),
        Command::Transform(t) if t.jobs.is_some() || t.stats => (
            &t.run,
            Err(CliError::Usage("--jobs and --stats go with --lines or --chunks").into()),
        ),
        Command::Transform(t) => (&t.run, transform::pipe(&t.run, t.export.as_deref())),
        Command::Call(c) => (&c.run, call::run(&c.run, &c.invoke, &c.env)),
        Command::Inspect(i) => (&i.run, inspect::run(&i.run, i.json)),
    };
    let code = match result {
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
    };
    if run.peak_memory {
        eprintln!("peak memory: {} bytes", signals::peak_rss());
    }
    code
}

/// The names in `names`, `, `-separated, at most six of them and how many more.
pub(crate) fn some_names(names: &[&str]) -> String {
    const SHOWN: usize = 6;
    let mut list = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    list
}

/// `e`, with the `--max-memory` hint when the guest's `cabi_realloc` trapped or returned
/// null while the host passed it `passing` bytes that its memory, as it now stands, could
/// not take within the cap `cap` (wit-bindgen's allocator traps when `memory.grow` fails).
pub(crate) fn at_memory_cap(
    e: memhost::Error,
    guest: &memhost::Guest,
    passing: u64,
    cap: u64,
) -> anyhow::Error {
    let in_realloc = match &e {
        memhost::Error::Trap { export, .. } | memhost::Error::AllocationFailed { export, .. } => {
            export == "cabi_realloc"
        }
        _ => false,
    };
    if in_realloc && guest.memory_size().saturating_add(passing) > cap {
        CliError::AtMemoryCap { error: e, cap }.into()
    } else {
        e.into()
    }
}
