//! `throughput/stream/1GiB/*` and `startup/spark_partition`: 1 GiB of lines (a file made
//! once under `target/bench`) through the release `memhost transform --lines` on one thread
//! and on every core, to `/dev/null`, and through `cat` (the same bytes, the I/O floor),
//! alternating round after round
//! so that the machine's drift cancels out; the host's peak RSS of each run (`wait4`); the
//! CPU time of the reader, the writer and the workers (`--stats`), from which the share
//! of the work that does not scale with the workers follows; and one Spark partition's
//! process (a few thousand lines, the module cache warm).
//!
//! ```sh
//! cargo run --release -p host --example stream -- [ROUNDS] [summary.json]
//! ```
//! (`cargo xtask bench stream` runs it after building the release binary.)

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 1 GiB of input: lines of 90 to 110 bytes, as `throughput/lines`.
const TOTAL: u64 = 1 << 30;

/// One line of the input, by number.
fn line(i: usize, out: &mut Vec<u8>) {
    out.extend((0..90 + i % 21).map(|j| b'a' + u8::try_from((i + j) % 26).expect("< 26")));
    out.push(b'\n');
}

/// What one run cost.
struct Run {
    wall: Duration,
    peak_rss: u64,
    stats: String,
}

/// The input: 1 GiB of lines in a file under `target/bench` (made once, then reused), so
/// that the runs compare the host with `cat` on the same bytes without a generator
/// competing for the cores.
fn input_file(dir: &Path) -> PathBuf {
    let path = dir.join("lines-1GiB.txt");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= TOTAL) {
        return path;
    }
    std::fs::create_dir_all(dir).expect("makes the directory");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("creates it"));
    let (mut written, mut i, mut buf) = (0u64, 0, Vec::with_capacity(1 << 20));
    while written < TOTAL {
        buf.clear();
        while buf.len() < 1 << 20 {
            line(i, &mut buf);
            i += 1;
        }
        out.write_all(&buf).expect("writes");
        written += buf.len() as u64;
    }
    out.flush().expect("writes");
    path
}

/// Runs `cmd` with the input file on standard input and standard output to `/dev/null`.
fn run(cmd: &mut Command, input: &Path) -> Run {
    let start = Instant::now();
    let out = cmd
        .stdin(std::fs::File::open(input).expect("the input"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let pid = libc::pid_t::try_from(out.id()).expect("a pid");
    let mut child = out;
    let mut stats = String::new();
    let _ = child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stats);
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills in; zeroed is a valid value of it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{stats}"
    );
    Run {
        wall: start.elapsed(),
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        stats,
    }
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// The CPU seconds `--stats` reported for `role` (`reader`, `writer`, `workers`).
fn cpu(stats: &str, role: &str) -> f64 {
    stats
        .split(&format!("{role} "))
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("ROUNDS is a number"));
    let json = args.next().map(PathBuf::from);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let memhost = root.join("target/release/memhost");
    let guest = root.join(abi::GUEST_ARTIFACT);
    assert!(
        memhost.exists(),
        "build it first: cargo build --release -p host"
    );
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let lines = |jobs: usize| {
        let mut cmd = Command::new(&memhost);
        cmd.args(["transform", "--lines", "--stats", "--no-cache", "--jobs"])
            .arg(jobs.to_string())
            .arg(&guest);
        cmd
    };
    // Whole chunks a call, through the canonical guest's `transform-chunk`.
    let canonical = root.join(abi::CANONICAL_ARTIFACT);
    let chunks = |jobs: usize| {
        let mut cmd = Command::new(&memhost);
        cmd.args([
            "transform",
            "--chunks",
            "--export",
            "transform-chunk",
            "--stats",
            "--no-cache",
            "--jobs",
        ])
        .arg(jobs.to_string())
        .arg(&canonical);
        cmd
    };
    let (mut chunk_one, mut chunk_all) = (Vec::new(), Vec::new());
    let (mut one, mut all, mut cat) = (Vec::new(), Vec::new(), Vec::new());
    let mut peaks = Vec::new();
    let mut shares = Vec::new();
    let input = input_file(&root.join("target").join("bench"));
    for round in 0..rounds {
        let a = run(&mut lines(1), &input);
        let b = run(&mut lines(cores), &input);
        let c = run(&mut Command::new("cat"), &input);
        let d = run(&mut chunks(1), &input);
        let e = run(&mut chunks(cores), &input);
        eprintln!(
            "round {round}: chunks on 1 thread {:.2} s, on {cores} threads {:.2} s; peak {} / {} MiB",
            d.wall.as_secs_f64(),
            e.wall.as_secs_f64(),
            d.peak_rss >> 20,
            e.peak_rss >> 20
        );
        peaks.push(d.peak_rss.max(e.peak_rss));
        chunk_one.push(d.wall);
        chunk_all.push(e.wall);
        eprintln!(
            "round {round}: 1 thread {:.2} s, {cores} threads {:.2} s, cat {:.2} s; peak {} / {} MiB",
            a.wall.as_secs_f64(),
            b.wall.as_secs_f64(),
            c.wall.as_secs_f64(),
            a.peak_rss >> 20,
            b.peak_rss >> 20
        );
        // The work that does not grow with the workers: the reader's and the writer's CPU
        // against the workers', on one thread.
        let serial = cpu(&a.stats, "reader").max(cpu(&a.stats, "writer"));
        shares.push(serial / cpu(&a.stats, "workers"));
        peaks.push(a.peak_rss.max(b.peak_rss));
        one.push(a.wall);
        all.push(b.wall);
        cat.push(c.wall);
    }
    let mbs = |d: Duration| TOTAL as f64 / 1e6 / d.as_secs_f64();
    let (one, all, cat) = (median(one), median(all), median(cat));
    let (chunk_one, chunk_all) = (median(chunk_one), median(chunk_all));
    let peak = peaks.into_iter().max().unwrap_or(0);
    // The workers' CPU per byte against the busiest other thread's: each worker runs on a
    // core of its own, so N threads go at most N times as fast, and at most (workers' CPU /
    // busiest other thread's CPU) times as fast, whichever is less.
    shares.sort_by(f64::total_cmp);
    let share = shares[shares.len() / 2];
    let ceiling = 1.0 / share;

    // One Spark partition's process: 5000 lines, the cache warm.
    let cache = std::env::temp_dir().join(format!("memhost-stream-bench-{}", std::process::id()));
    let mut input = Vec::new();
    for i in 0..5000 {
        line(i, &mut input);
    }
    let partition = || {
        let start = Instant::now();
        let mut child = Command::new(&memhost)
            .args([
                "transform",
                "--lines",
                "--jobs",
                "1",
                "--quiet",
                "--cache-dir",
            ])
            .arg(&cache)
            .arg(&guest)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starts");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(&input)
            .expect("reads");
        assert!(child.wait().expect("waits").success());
        start.elapsed()
    };
    let _ = partition(); // fills the cache
    let spark = median((0..15).map(|_| partition()).collect());
    let _ = std::fs::remove_dir_all(&cache);

    println!(
        "throughput/stream/1GiB/1threads  {:>8.1} MB/s  ({:.2} s)",
        mbs(one),
        one.as_secs_f64()
    );
    println!(
        "throughput/stream/1GiB/Nthreads  {:>8.1} MB/s  ({:.2} s, {cores} threads: {:.2}x one)",
        mbs(all),
        all.as_secs_f64(),
        one.as_secs_f64() / all.as_secs_f64()
    );
    println!(
        "throughput/stream/1GiB/cat       {:>8.1} MB/s  ({:.2} s)",
        mbs(cat),
        cat.as_secs_f64()
    );
    println!(
        "throughput/stream/1GiB/chunk/1threads {:>8.2} GB/s  ({:.2} s)",
        mbs(chunk_one) / 1e3,
        chunk_one.as_secs_f64()
    );
    println!(
        "throughput/stream/1GiB/chunk/Nthreads {:>8.2} GB/s  ({:.2} s, {cores} threads: {:.2}x one)",
        mbs(chunk_all) / 1e3,
        chunk_all.as_secs_f64(),
        chunk_one.as_secs_f64() / chunk_all.as_secs_f64()
    );
    println!("peak RSS of the host, 1 GiB through: {} MiB", peak >> 20);
    println!(
        "share of the work that does not scale with the workers: {:.2}% (at most {ceiling:.0}x from workers alone)",
        share * 100.0
    );
    println!(
        "startup/spark_partition (5000 lines, warm cache): {:.1} ms",
        spark.as_secs_f64() * 1e3
    );
    if let Some(json) = json {
        let body = format!(
            "{{\"throughput/stream/1GiB/1threads\": {{\"median_ns\": {}, \"mb_per_s\": {:.1}}}, \
             \"throughput/stream/1GiB/Nthreads\": {{\"median_ns\": {}, \"mb_per_s\": {:.1}, \"threads\": {cores}}}, \
             \"throughput/stream/1GiB/cat\": {{\"median_ns\": {}, \"mb_per_s\": {:.1}}}, \
             \"throughput/stream/1GiB/chunk/1threads\": {{\"median_ns\": {}, \"mb_per_s\": {:.1}}}, \
             \"throughput/stream/1GiB/chunk/Nthreads\": {{\"median_ns\": {}, \"mb_per_s\": {:.1}}}, \
             \"peak_rss_bytes\": {peak}, \"serial_share\": {share:.5}, \
             \"startup/spark_partition\": {{\"median_ns\": {}}}, \"rounds\": {rounds}}}\n",
            one.as_nanos(),
            mbs(one),
            all.as_nanos(),
            mbs(all),
            cat.as_nanos(),
            mbs(cat),
            chunk_one.as_nanos(),
            mbs(chunk_one),
            chunk_all.as_nanos(),
            mbs(chunk_all),
            spark.as_nanos()
        );
        std::fs::write(&json, body).expect("writes the summary");
    }
}
