//! `cargo xtask test`: build the guests, then run every test of the workspace against them,
//! then the Spark test (`cargo xtask spark`).

use anyhow::Result;

use crate::{build_guest, cargo};

/// Builds every guest (`build-guest --all`), then runs `cargo test --workspace` with `args` appended.
pub fn run(args: &[String]) -> Result<()> {
    build_guest::run_all()?;
    eprintln!("xtask: cargo test --workspace {}", args.join(" "));
    crate::run(cargo().args(["test", "--workspace"]).args(args))?;
    // Spark runs the binary as a cluster would; a filtered run of the tests skips it.
    if args.is_empty() {
        crate::spark::run(false)?;
    }
    Ok(())
}
