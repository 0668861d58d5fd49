//! The demo: the guide's reads and writes, printed as it prints them.

use std::io::{self, Write as _};

use anyhow::{Context, Result};

use std::path::Path;

use memhost::GuestModule;

use crate::args::Run;
use crate::{CliError, some_names};

/// The guide's steps, printed as it prints them, then what this guest adds.
///
/// Standard output that fails (a full disk, a closed pipe) stops it with
/// [`CliError::StdIo`] (exit 1).
pub(crate) fn run(run: &Run) -> Result<()> {
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
    if !module.speaks_guide_abi() {
        return Err(not_the_guide(&module, &path).into());
    }
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

/// The demo's error for a module that does not speak the guide's ABI (it was admitted for
/// its WIT world): what runs it instead.
fn not_the_guide(module: &GuestModule, path: &Path) -> CliError {
    let path = path.display();
    let functions = module.functions();
    let example = functions.first().copied().unwrap_or("NAME");
    let mut hint = format!(
        "it speaks the canonical ABI, with functions {}: `memhost call {path} --invoke \
         '{example}(...)'` calls one, `memhost inspect {path}` shows their types",
        some_names(&functions)
    );
    if let Some(transform) = module.transform_functions().first() {
        hint.push_str(&format!(
            ", `memhost transform {path} --export {transform}` pipes standard input through one"
        ));
    }
    CliError::Hinted {
        error: memhost::Error::MissingExport {
            module: module.name().to_string(),
            export: abi::LOAD.name.into(),
        },
        hint,
    }
}
