//! Lines of any size of input through the guest, in bounded memory: read, transformed and
//! written in chunks, with backpressure, on `jobs` worker threads each with its own
//! instance; the results in input order, byte for byte what a loop over the lines would
//! write.
//!
//! Three kinds of thread: a reader cuts the input into chunks of whole lines (about
//! [`CHUNK_BYTES`], more for one longer line) and queues them; the workers take chunks in
//! turn and send each chunk's results, in pieces of about [`PIECE_BYTES`], down a channel
//! of that chunk's own; the calling thread writes the chunks' pieces in input order. The
//! reader blocks when [`window`] chunks are in flight, and a worker when its chunk's
//! channel holds a piece the writer has not taken yet, so what is held is bounded whatever
//! the input's size: about `3 * jobs + 2` chunks of input and as much again of results
//! (about 6 MiB a thread, under 128 MiB for 16 threads), plus each worker's instance.
//! Buffers go back to be filled again, so that pages are not faulted in afresh. Chunks and
//! pieces of 1 MiB keep the hand-offs between threads few: the reader and the writer take
//! about 3% of the workers' CPU time (1 GiB of 100-byte lines, `--stats`).
//!
//! The first failure in input order stops everything: the results of every line before it
//! are written, complete, and nothing after it; the reader and the workers see their
//! channels close and end.

use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::{Error, Guest, GuestModule, MAX_JOBS, Transformer};

/// The input a chunk holds, about: whole lines up to this size (one longer line makes a
/// chunk of its own; when lines trickle in, a chunk goes with what has come).
pub const CHUNK_BYTES: usize = 1 << 20;
/// The results a worker gathers before it sends them on.
pub const PIECE_BYTES: usize = 1 << 20;

/// How many chunks may be in flight (queued, being worked on, or waiting to be written)
/// for `threads` workers.
pub fn window(threads: usize) -> usize {
    2 * threads + 2
}

/// How far a stream got: what was read and written, and how many lines; at the end, the
/// CPU time each kind of thread took (to tell the workers' share from the rest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes of input taken, in whole lines.
    pub bytes_in: u64,
    /// Bytes of results written.
    pub bytes_out: u64,
    /// Lines done.
    pub lines: u64,
    /// CPU time of the reader thread (reading and cutting the input).
    pub reader_cpu: Duration,
    /// CPU time of the calling thread while it wrote the results.
    pub writer_cpu: Duration,
    /// CPU time of the workers, all together (the guest's work).
    pub worker_cpu: Duration,
}

/// The CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec for the call to fill in; the clock exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// A chunk of whole lines, and where its results go.
struct Job {
    input: Vec<u8>,
    results: SyncSender<Piece>,
}

/// What comes back for a chunk, in order.
enum Piece {
    /// Results, whole lines.
    Data(Vec<u8>),
    /// The chunk is done: its lines and input bytes.
    Done { lines: u64, bytes: u64 },
    /// Line `line` of the chunk (from 0) failed; or the chunk could not be started
    /// (`None`: the worker's instance could not be made).
    Failed { line: Option<u64>, error: Error },
    /// The line after the previous chunk is longer than `cap`.
    TooLong { cap: u64 },
    /// Reading the input failed.
    Unreadable(io::Error),
}

impl GuestModule {
    /// Transforms each line of `input` (split at `\n`, which each result keeps; a last line
    /// without one stays without) through `transformer`, on `jobs` threads (at most
    /// [`MAX_JOBS`]), and writes the results to `output` in input order as they come:
    /// memory stays bounded whatever the input's size (see the [module
    /// documentation](self)). `progress` is called on the calling thread after each chunk
    /// is written. Returns what was done.
    ///
    /// # Errors
    /// [`Error::Line`] with the first failing line (counting from 1) and what failed there,
    /// every earlier line's result written; [`Error::LineTooLong`] for a line longer than
    /// the guest's memory cap; [`Error::Input`] and [`Error::Output`] when reading or
    /// writing fails; errors of instantiating come as they are.
    pub fn transform_lines_stream<R: Read + Send>(
        &self,
        input: R,
        mut output: impl Write,
        jobs: NonZeroUsize,
        transformer: &Transformer,
        progress: &mut dyn FnMut(&StreamStats),
    ) -> Result<StreamStats, Error> {
        let threads = jobs.get().min(MAX_JOBS);
        let window = window(threads);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(window);
        let (order_tx, order_rx) = mpsc::sync_channel::<Receiver<Piece>>(window);
        let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
        let job_rx = Mutex::new(job_rx);
        // Result buffers the writer has emptied, for the workers to fill again.
        let spare = Spare::default();
        let spare = &spare;
        let max_line = self.max_line_bytes;
        let (worker_ns, reader_ns) = (AtomicU64::new(0), AtomicU64::new(0));
        let (worker_ns, reader_ns) = (&worker_ns, &reader_ns);
        let cpu_ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let result = thread::scope(|scope| {
            let mut started = 0;
            for _ in 0..threads {
                let (job_rx, pool_tx) = (&job_rx, pool_tx.clone());
                let spawned = thread::Builder::new().spawn_scoped(scope, move || {
                    self.work(job_rx, &pool_tx, spare, transformer);
                    worker_ns.fetch_add(cpu_ns(thread_cpu()), Ordering::Relaxed);
                });
                started += usize::from(spawned.is_ok());
            }
            drop(pool_tx);
            if started == 0 {
                // No worker could be started: the reader's chunks would wait for ever.
                return Err(Error::Input {
                    source: io::Error::other("no worker thread could be started"),
                });
            }
            let reader = thread::Builder::new().spawn_scoped(scope, move || {
                read_chunks(input, &job_tx, &order_tx, &pool_rx, max_line);
                reader_ns.store(cpu_ns(thread_cpu()), Ordering::Relaxed);
            });
            if let Err(source) = reader {
                return Err(Error::Input { source });
            }
            let before = thread_cpu();
            let written = write_results(&order_rx, &mut output, spare, progress);
            let writer_cpu = thread_cpu().saturating_sub(before);
            // Dropping the receivers ends the reader and the workers, if an error stopped
            // the writing early.
            drop(order_rx);
            written.map(|stats| StreamStats {
                writer_cpu,
                ..stats
            })
        });
        // The threads have ended: their CPU times are in.
        result.map(|stats| StreamStats {
            reader_cpu: Duration::from_nanos(reader_ns.load(Ordering::Relaxed)),
            worker_cpu: Duration::from_nanos(worker_ns.load(Ordering::Relaxed)),
            ..stats
        })
    }

    /// A worker: takes chunks in turn, each line through its own instance (made when the
    /// first chunk comes, and again after a failure), results down the chunk's channel.
    fn work(
        &self,
        jobs: &Mutex<Receiver<Job>>,
        pool: &Sender<Vec<u8>>,
        spare: &Spare,
        transformer: &Transformer,
    ) {
        let mut guest: Option<Guest> = None;
        loop {
            let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(Job { input, results }) = job else {
                return;
            };
            if guest.is_none() {
                match self.instantiate() {
                    Ok(made) => guest = Some(made),
                    Err(error) => {
                        let _ = results.send(Piece::Failed { line: None, error });
                        let _ = pool.send(input);
                        continue;
                    }
                }
            }
            if let Some(instance) = &mut guest
                && transform_chunk(instance, transformer, &input, &results, spare)
            {
                // What failed may have left the instance in any state: the next chunk
                // gets a fresh one.
                guest = None;
            }
            let _ = pool.send(input);
        }
    }
}

/// Transforms the lines of `input`, sending results in pieces; returns whether a line
/// failed (after sending what came before it and the failure).
fn transform_chunk(
    guest: &mut Guest,
    transformer: &Transformer,
    input: &[u8],
    results: &SyncSender<Piece>,
    spare: &Spare,
) -> bool {
    let mut out = spare.take();
    let mut lines = 0u64;
    for line in lines_of(input) {
        let (text, newline) = match line.strip_suffix(b"\n") {
            Some(text) => (text, true),
            None => (line, false),
        };
        if let Err(error) = guest.transform_with(transformer, text, |r| out.extend_from_slice(r)) {
            if !out.is_empty() {
                let _ = results.send(Piece::Data(out));
            }
            let _ = results.send(Piece::Failed {
                line: Some(lines),
                error,
            });
            return true;
        }
        if newline {
            out.push(b'\n');
        }
        lines += 1;
        if out.len() >= PIECE_BYTES {
            let full = std::mem::replace(&mut out, spare.take());
            if results.send(Piece::Data(full)).is_err() {
                // The writer stopped: nothing more is wanted.
                return false;
            }
        }
    }
    if !out.is_empty() && results.send(Piece::Data(out)).is_err() {
        return false;
    }
    let _ = results.send(Piece::Done {
        lines,
        bytes: input.len() as u64,
    });
    false
}

/// The reader: cuts `input` into chunks of whole lines and queues each with a channel for
/// its results, whose receiving end goes to the writer in order. Stops at the end of the
/// input, at a failure (sent in order as a chunk of its own), or when the writer is gone.
fn read_chunks(
    mut input: impl Read,
    jobs: &SyncSender<Job>,
    order: &SyncSender<Receiver<Piece>>,
    pool: &Receiver<Vec<u8>>,
    max_line: u64,
) {
    // The part of a line read past the end of the previous chunk.
    let mut carry: Vec<u8> = Vec::new();
    let fail = |piece: Piece| {
        let (tx, rx) = mpsc::sync_channel(1);
        let _ = tx.send(piece);
        let _ = order.send(rx);
    };
    loop {
        let mut buf = pool
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 2));
        buf.clear();
        buf.append(&mut carry);
        // Where the last complete line ends (0: none yet).
        let mut whole = memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1);
        let mut eof = false;
        loop {
            // Read what is there: a chunk goes as soon as it holds whole lines and the
            // input has no more for now, so that lines that trickle in flow through.
            let start = buf.len();
            let want = CHUNK_BYTES.saturating_sub(start).max(64 << 10);
            buf.resize(start + want, 0);
            let read = input.read(&mut buf[start..]);
            let n = match read {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    buf.truncate(start);
                    continue;
                }
                Err(e) => {
                    buf.truncate(start);
                    send_chunk(buf, whole, jobs, order);
                    return fail(Piece::Unreadable(e));
                }
            };
            buf.truncate(start + n);
            if n == 0 {
                eof = true;
                break;
            }
            if let Some(i) = memchr::memrchr(b'\n', &buf[start..]) {
                whole = start + i + 1;
            }
            if (buf.len() - whole) as u64 > max_line {
                // The line being read can never be taken: the lines before it go, then the
                // failure.
                if !send_chunk(buf, whole, jobs, order) {
                    return;
                }
                return fail(Piece::TooLong { cap: max_line });
            }
            if whole > 0 && (buf.len() >= CHUNK_BYTES || n < want) {
                break;
            }
        }
        if eof {
            // The last line needs no newline.
            whole = buf.len();
        }
        carry.extend_from_slice(&buf[whole..]);
        if !send_chunk(buf, whole, jobs, order) || eof {
            return;
        }
    }
}

/// Queues the first `len` bytes of `buf` as a chunk (nothing for none); false when the
/// writer or the workers are gone.
fn send_chunk(
    mut buf: Vec<u8>,
    len: usize,
    jobs: &SyncSender<Job>,
    order: &SyncSender<Receiver<Piece>>,
) -> bool {
    if len == 0 {
        return true;
    }
    buf.truncate(len);
    let (tx, rx) = mpsc::sync_channel(1);
    order.send(rx).is_ok()
        && jobs
            .send(Job {
                input: buf,
                results: tx,
            })
            .is_ok()
}

/// The writer: each chunk's results in input order, to `output`.
fn write_results(
    order: &Receiver<Receiver<Piece>>,
    output: &mut impl Write,
    spare: &Spare,
    progress: &mut dyn FnMut(&StreamStats),
) -> Result<StreamStats, Error> {
    let mut stats = StreamStats::default();
    let write_err = |source| Error::Output { source };
    while let Some(chunk) = next(order, output)? {
        loop {
            match next(&chunk, output)? {
                Some(Piece::Data(bytes)) => {
                    output.write_all(&bytes).map_err(write_err)?;
                    stats.bytes_out += bytes.len() as u64;
                    spare.give(bytes);
                }
                Some(Piece::Done { lines, bytes }) => {
                    stats.lines += lines;
                    stats.bytes_in += bytes;
                    progress(&stats);
                    break;
                }
                Some(Piece::Failed { line, error }) => {
                    output.flush().map_err(write_err)?;
                    return Err(match line {
                        Some(i) => Error::Line {
                            line: usize::try_from(stats.lines + i + 1).unwrap_or(usize::MAX),
                            source: Box::new(error),
                        },
                        None => error,
                    });
                }
                Some(Piece::TooLong { cap }) => {
                    output.flush().map_err(write_err)?;
                    return Err(Error::LineTooLong {
                        line: stats.lines + 1,
                        cap,
                    });
                }
                Some(Piece::Unreadable(source)) => {
                    output.flush().map_err(write_err)?;
                    return Err(Error::Input { source });
                }
                // A worker gone without a word: it panicked (the scope will say so).
                None => {
                    return Err(Error::Input {
                        source: io::Error::other("a worker thread stopped"),
                    });
                }
            }
        }
    }
    output.flush().map_err(write_err)?;
    Ok(stats)
}

/// The next item of `rx`; when none is ready, `output` is flushed first, so that results
/// never wait in a buffer while the input is slow to come. `None` when `rx` is closed.
fn next<T>(rx: &Receiver<T>, output: &mut impl Write) -> Result<Option<T>, Error> {
    match rx.try_recv() {
        Ok(item) => Ok(Some(item)),
        Err(mpsc::TryRecvError::Disconnected) => Ok(None),
        Err(mpsc::TryRecvError::Empty) => {
            output.flush().map_err(|source| Error::Output { source })?;
            Ok(rx.recv().ok())
        }
    }
}

/// Result buffers to be filled again: freeing a buffer of pieces' size and allocating a
/// fresh one costs an `munmap`, an `mmap` and a page fault a page, on the writer's and the
/// workers' threads; a few kept buffers cost none of that.
#[derive(Default)]
struct Spare(Mutex<Vec<Vec<u8>>>);

impl Spare {
    /// The most buffers kept.
    const KEPT: usize = 64;

    /// An empty buffer with room for a piece.
    fn take(&self) -> Vec<u8> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        kept.unwrap_or_else(|| Vec::with_capacity(2 * PIECE_BYTES))
    }

    /// Keeps `buf` for another piece (dropped past [`Spare::KEPT`], or when it grew far
    /// past a piece's size for one long result).
    fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() > 4 * PIECE_BYTES {
            return;
        }
        buf.clear();
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < Self::KEPT {
            kept.push(buf);
        }
    }
}

/// The lines of `chunk`, each with its newline (a last one without).
pub(crate) fn lines_of(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = chunk;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}
