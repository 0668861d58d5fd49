//! `memhost call MODULE --invoke CALL`: one function of a module's WIT world, its arguments
//! and result in WAVE.

use std::io::{self, Write as _};

use anyhow::Result;

use crate::args::Run;
use crate::{CliError, at_memory_cap};

/// `memhost call --invoke CALL`: one function of the module's WIT world, its result in WAVE
/// on one line of standard output (nothing for a function without one).
pub(crate) fn run(run: &Run, invoke: &str, env: &[String]) -> Result<()> {
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
    let cap = run.max_memory.0;
    let wrote = guest.invoke_to(invoke, &mut out).map_err(|e| match e {
        memhost::Error::Output { source } => anyhow::Error::from(CliError::stdout(source)),
        // The call's text bounds the bytes of its strings from below.
        e => at_memory_cap(e, &guest, invoke.len() as u64, cap),
    })?;
    if wrote {
        out.write_all(b"\n").map_err(CliError::stdout)?;
    }
    out.flush().map_err(CliError::stdout)?;
    Ok(())
}
