//! `cargo xtask spark`: Apache Spark's `RDD.pipe` through `memhost transform --lines`, in
//! local mode (`local[2]`) with the machine's Java, from `pyspark` installed into the
//! virtual environment under `target/tools` when missing. Checks the collected result
//! (`host/tests/spark/pipe.py`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::build_guest::target_dir;
use crate::{cargo, project_root, run as run_cmd};

/// The pyspark of the test: Spark 3.5, which runs on Java 17.
const PYSPARK: &str = "3.5.9";

/// A Python with pyspark, in `target/tools/venv`.
fn python() -> Result<PathBuf> {
    crate::build_canonical::python_with(
        "pyspark",
        PYSPARK,
        &["-c", "import pyspark; print(pyspark.__version__)"],
        "Spark, about 320 MB",
    )
}

/// Runs the test; `build` builds the binary first (`cargo xtask test` has built it with the
/// tests, and building it alone would unify features differently and rebuild wasmer).
pub fn run(build: bool) -> Result<()> {
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|out| out.status.success()) {
        bail!(
            "Spark needs Java (17): install a JDK, e.g. `apt-get install openjdk-17-jre-headless`"
        );
    }
    let python = python()?;
    let memhost = target_dir().join("debug").join("memhost");
    if build || !memhost.exists() {
        run_cmd(cargo().args(["build", "--package", "host", "--bin", "memhost"]))?;
    }
    let cache = target_dir().join("spark").join("cache");
    std::fs::create_dir_all(&cache)?;
    run_cmd(
        Command::new(python)
            .arg(
                project_root()
                    .join("host")
                    .join("tests")
                    .join("spark")
                    .join("pipe.py"),
            )
            .arg(memhost)
            .arg(project_root().join(abi::GUEST_ARTIFACT))
            .arg(cache)
            .env("PYSPARK_PYTHON", "python3")
            .env("SPARK_LOCAL_IP", "127.0.0.1"),
    )
    .context("the Spark test failed")
}
