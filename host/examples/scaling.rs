//! How `transform_lines` scales from one thread to every core, measured so that the
//! machine's drift cancels out: runs on one thread and on all threads alternate, round after
//! round, and the medians are compared. Beside it, the same for register-only work, the
//! most this machine's cores give.
//!
//! ```sh
//! cargo run --release -p host --example scaling -- [ROUNDS] [summary.json]
//! ```
//!
//! On the 2-core VM this was written on, the same single-threaded work takes anywhere from
//! 23 to 35 ms of CPU time from one moment to the next (thread CPU time equal to wall time,
//! no steal reported): criterion's ten samples of one case, then ten of the other, can land
//! in different phases of that drift. Interleaving them cannot.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use memhost::{GuestModule, Limits};

/// Register-only work, split among `threads`.
fn spin(total: u64, threads: usize) {
    let run = |n: u64| {
        let mut x = 1u64;
        for i in 0..n {
            x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
        x
    };
    let per = total / threads as u64;
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(move || run(per))).collect();
        black_box(run(per));
        for h in handles {
            black_box(h.join().expect("no panic"));
        }
    });
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map_or(15, |a| a.parse().expect("ROUNDS is a number"));
    let json = args.next();
    let guest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(abi::GUEST_ARTIFACT);
    let bytes = std::fs::read(guest).expect("the guest: run `cargo xtask build-guest`");
    let module = GuestModule::from_bytes(&bytes, &Limits::default()).expect("the guest compiles");
    // The bench's input: 100 000 lines of 90 to 110 bytes.
    let mut input = Vec::new();
    for i in 0..100_000usize {
        input.extend((0..90 + i % 21).map(|j| b'a' + u8::try_from((i + j) % 26).expect("< 26")));
        input.push(b'\n');
    }
    let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut lines1, mut lines_n, mut spin1, mut spin_n) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        lines1.push(time(&|| {
            black_box(
                module
                    .transform_lines(&input, NonZeroUsize::MIN)
                    .expect("runs"),
            );
        }));
        lines_n.push(time(&|| {
            black_box(module.transform_lines(&input, cores).expect("runs"));
        }));
        spin1.push(time(&|| spin(20_000_000, 1)));
        spin_n.push(time(&|| spin(20_000_000, cores.get())));
    }
    let (lines1, lines_n) = (median(lines1), median(lines_n));
    let (spin1, spin_n) = (median(spin1), median(spin_n));
    let lines = lines1.as_secs_f64() / lines_n.as_secs_f64();
    let spins = spin1.as_secs_f64() / spin_n.as_secs_f64();
    println!("{rounds} interleaved rounds, {cores} threads, medians:");
    println!("lines: 1 thread {lines1:?}, {cores} threads {lines_n:?}: {lines:.2} x");
    println!("register-only work: 1 thread {spin1:?}, {cores} threads {spin_n:?}: {spins:.2} x");
    if let Some(path) = json {
        let text = format!(
            "{{\"rounds\": {rounds}, \"threads\": {cores}, \"lines_1\": {}, \"lines_n\": {}, \
             \"spin_1\": {}, \"spin_n\": {}}}\n",
            lines1.as_nanos(),
            lines_n.as_nanos(),
            spin1.as_nanos(),
            spin_n.as_nanos()
        );
        std::fs::write(path, text).expect("writes the JSON");
    }
}
