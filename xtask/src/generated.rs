//! `cargo xtask generated [--seconds N] [--seed S] [--release]`: the canonical ABI against
//! wasmtime on new generated worlds until N seconds (default 1800) have passed, from seed S
//! (default: the clock). The test `host/tests/all/generated.rs` does the work; `cargo xtask test`
//! runs it on 20 fixed seeds. A mismatch stops the run, printing its seed and world.

use anyhow::{Context, Result, bail};

use crate::cargo;

pub fn run(args: &[String]) -> Result<()> {
    let mut seconds = "1800".to_string();
    let mut seed = None;
    let mut release = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<String> {
            let v = args
                .next()
                .with_context(|| format!("{name} needs a value"))?;
            v.parse::<u64>()
                .with_context(|| format!("{name} {v}: not a whole number"))?;
            Ok(v.clone())
        };
        match arg.as_str() {
            "--seconds" => seconds = value("--seconds")?,
            "--seed" => seed = Some(value("--seed")?),
            "--release" => release = true,
            other => {
                bail!("generated: unknown argument {other} (--seconds N, --seed S, --release)")
            }
        }
    }
    let mut cmd = cargo();
    cmd.args(["test", "-p", "host", "--test", "all"]);
    if release {
        cmd.arg("--release");
    }
    cmd.args(["--", "--nocapture", "generated::"]);
    cmd.env("MEMHOST_GENERATED_SECONDS", &seconds);
    if let Some(seed) = seed {
        cmd.env("MEMHOST_GENERATED_SEED", seed);
    }
    eprintln!("xtask: generated worlds against wasmtime for {seconds} s");
    crate::run(&mut cmd)
}
