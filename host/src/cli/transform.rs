//! `memhost transform`: standard input through the guest to standard output, whole or a
//! line, a batch or a chunk a call (`--lines`, `--chunks`).

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::num::NonZeroUsize;
use std::os::fd::AsFd as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use memhost::{GuestModule, Transformer};

use crate::args::{Run, Transform};
use crate::progress::mib;
use crate::{CliError, at_memory_cap, signals, some_names};

/// `memhost transform`: standard input through the guest's `transform` to standard output.
/// Nothing but the result goes to standard output.
pub(crate) fn pipe(run: &Run, export: Option<&str>) -> Result<()> {
    let path = run.module_path()?;
    let module = run.module(&path)?;
    let transformer = transformer(&module, &path, export, false)?;
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
        return guest
            .transform_bytes(name, &input, write_stdout)
            .map_err(|e| at_memory_cap(e, &guest, input.len() as u64, cap))?;
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

/// How `module` transforms bytes: `export` (a transform of chunks with `chunks`), or its
/// `transform`. A module with neither kind of `transform` gets a hint: the functions of its
/// world that `--export` can name, or `inspect` when it has none.
fn transformer(
    module: &GuestModule,
    path: &Path,
    export: Option<&str>,
    chunks: bool,
) -> Result<Transformer> {
    let found = match (export, chunks) {
        (Some(export), true) => module.chunk_transformer(export),
        (export, _) => module.transformer(export),
    };
    match found {
        Err(error @ memhost::Error::MissingExport { .. }) => {
            let candidates = module.transform_functions();
            let hint = if candidates.is_empty() {
                format!(
                    "none of its functions takes and returns a string or bytes:                      `memhost inspect {}` shows what it offers",
                    path.display()
                )
            } else {
                format!(
                    "name a function of its world with --export: {}",
                    some_names(&candidates)
                )
            };
            Err(CliError::Hinted { error, hint }.into())
        }
        found => Ok(found?),
    }
}

/// `memhost transform --lines` or `--chunks`: standard input through the guest, a line, a
/// batch of lines or a chunk a call, on --jobs threads, the results in input order on
/// standard output as they come, in bounded memory (`GuestModule::transform_stream`).
/// SIGINT and SIGTERM stop it at the next whole result.
pub(crate) fn pipe_lines(t: &Transform) -> Result<()> {
    let start = Instant::now();
    let run = &t.run;
    let mut limits = run.limits();
    limits.max_host_memory_bytes = t.max_host_memory.0;
    let path = run.module_path()?;
    let module = run.module_with(&path, &limits)?;
    let transformer = transformer(&module, &path, t.export.as_deref(), t.chunks)?;
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

/// Writes `bytes` to standard output, and nothing else.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes).map_err(CliError::stdout)?;
    stdout.flush().map_err(CliError::stdout)?;
    Ok(())
}

/// A failure to put standard input into the guest, with the cap when memory ran out.
pub(crate) fn putting(e: memhost::Error, cap: u64) -> anyhow::Error {
    let context = match e {
        memhost::Error::AllocationFailed { .. } => format!(
            "putting standard input into the guest, whose memory is capped at {cap} bytes \
             (raise it with --max-memory)"
        ),
        _ => "putting standard input into the guest".to_string(),
    };
    anyhow::Error::new(e).context(context)
}
