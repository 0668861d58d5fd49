//! `host [--fuel N] [--max-memory BYTES] [--max-module-bytes BYTES] [--verbose] [MODULE]`: the
//! Wasmer guide "Using memory pointers", run against a guest module.
//!
//! Without MODULE it runs `target/guest/guest.wasm` of this workspace, which
//! `cargo xtask build-guest` writes.
//!
//! Exit codes: 0 success; 2 usage error; 3 the module cannot be read, is not Wasm or is too
//! large; 4 the module does not follow the guest ABI, or the guest failed at run time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use host::{ErrorKind, GuestModule, Limits};

const USAGE: &str = "usage: host [OPTIONS] [MODULE]

Runs the Wasmer guide \"Using memory pointers\" against MODULE (default: this workspace's
target/guest/guest.wasm, built by `cargo xtask build-guest`).

options:
  --fuel N                  the work one call into the guest may do, in Wasm operators
                            (default 500000000: an endless loop is stopped within about
                            a second)
  --max-memory BYTES        the most linear memory the guest may have (default 16777216,
                            16 MiB)
  --max-module-bytes BYTES  the largest module accepted (default 16777216, 16 MiB);
                            compiling takes about a second per MB of code
  -v, --verbose             when a module is refused, list every problem, one a line
  -h, --help                this text

exit codes: 0 success, 2 usage, 3 unreadable or invalid module, 4 ABI mismatch or guest fault";

/// Exit codes, as documented in README.md.
mod exit {
    pub const USAGE: u8 = 2;
    pub const MODULE: u8 = 3;
    pub const GUEST: u8 = 4;
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

/// What the command line asks for.
struct Args {
    module: Option<PathBuf>,
    limits: Limits,
    verbose: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        module: None,
        limits: Limits::default(),
        verbose: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("{flag} takes a whole number, not {value:?}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--fuel" => parsed.limits.fuel = Some(number("--fuel")?),
            "--max-memory" => parsed.limits.max_memory_bytes = number("--max-memory")?,
            "--max-module-bytes" => {
                parsed.limits.max_module_bytes = number("--max-module-bytes")?;
            }
            "-v" | "--verbose" => parsed.verbose = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            path if parsed.module.is_none() => parsed.module = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&args) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let module = match args.module {
        Some(path) => path,
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
    match run(&module, &args.limits) {
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
            if args.verbose {
                for problem in error.map(host::Error::problems).unwrap_or_default() {
                    eprintln!("  - {problem}");
                }
            }
            let kind = error.map(host::Error::kind);
            ExitCode::from(match kind {
                Some(ErrorKind::Module) => exit::MODULE,
                _ => exit::GUEST,
            })
        }
    }
}

fn run(path: &Path, limits: &Limits) -> Result<()> {
    println!("Compiling module...");
    let module = GuestModule::from_file(path, limits)?;
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
    Ok(())
}
