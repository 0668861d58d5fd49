//! How long Cranelift takes to compile a module, per MB of code, so that a user can choose
//! `--max-module-bytes` for untrusted modules. Generates modules of compiler-shaped code
//! (the generator of the tests, `tests/common/large.rs`) and compiles each through the
//! library, metered as by default.
//!
//! ```sh
//! cargo run --release -p host --example compile_time -- 1 4 16
//! ```
//!
//! The arguments are sizes in MB of code (default: 1 4). The module-size limit is raised
//! to fit them.

#[allow(dead_code, reason = "the tests use the rest of the generator")]
#[path = "../tests/common/large.rs"]
mod large;

use std::time::Instant;

use memhost::{GuestModule, Limits};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are whole numbers of MB"))
        .collect();
    let sizes = if sizes.is_empty() { vec![1, 4] } else { sizes };
    println!(
        "{:>8} {:>12} {:>10} {:>10}",
        "MB", "bytes", "seconds", "s per MB"
    );
    for mb in sizes {
        let bytes = large::module(mb << 20, large::Abi::Follows);
        let mut limits = Limits::default();
        limits.max_module_bytes = bytes.len() as u64 + 1;
        let start = Instant::now();
        let module = GuestModule::from_bytes(&bytes, &limits).expect("compiles");
        let seconds = start.elapsed().as_secs_f64();
        module
            .instantiate()
            .expect("instantiates")
            .load()
            .expect("runs");
        #[allow(clippy::cast_precision_loss, reason = "a printed ratio")]
        let per_mb = seconds / (bytes.len() as f64 / f64::from(1 << 20));
        println!("{mb:>8} {:>12} {seconds:>10.2} {per_mb:>10.2}", bytes.len());
    }
}
