//! `cargo xtask test`: build the guest, then run every test of the workspace against it.

use anyhow::Result;

use crate::{build_guest, cargo};

/// Builds the guest, then runs `cargo test --workspace` with `args` appended.
pub fn run(args: &[String]) -> Result<()> {
    build_guest::run()?;
    eprintln!("xtask: cargo test --workspace {}", args.join(" "));
    crate::run(cargo().args(["test", "--workspace"]).args(args))
}
