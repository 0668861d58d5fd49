//! Lines of any size of input through the guest, in bounded memory: read, transformed and
//! written in chunks, with backpressure, on `jobs` worker threads each with its own
//! instance; the results in input order, byte for byte what a loop over the lines would
//! write. One line a call ([`Transformer::Canonical`], [`Transformer::Guide`]), a batch of
//! lines a call ([`Transformer::Batch`]), or a whole chunk a call ([`Transformer::Chunks`]):
//! the output is the same.
//!
//! Three kinds of thread: a reader cuts the input into chunks of whole lines (about
//! [`CHUNK_BYTES`], more for one longer line) and queues them; the workers take chunks in
//! turn and send each chunk's results, in pieces of about [`PIECE_BYTES`], down a channel
//! of that chunk's own; the calling thread writes the chunks' pieces in input order. The
//! reader blocks when [`window`] chunks, or their bytes, are in flight, and a worker when
//! its chunk's channel holds a piece the writer has not taken yet, so what is held is
//! bounded whatever the input's size, by [`stream_memory`]. Buffers go back to be filled
//! again, so that pages are not faulted in afresh.
//!
//! The first failure in input order stops everything at once: the results of every line
//! before it are written, complete, and nothing after it; the workers stop, and the
//! reader, which may be blocked reading an input that stays open and silent, is left
//! behind (it ends when its read returns) rather than waited for. A stop asked for
//! ([`StreamOptions::stop`]) ends the run the same way at the next whole result.

use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::guest::Utf8;
use crate::{Error, Guest, GuestModule, MAX_JOBS, Transformer};

/// The input a chunk holds, about: whole lines up to this size (one longer line makes a
/// chunk of its own; when lines trickle in, a chunk goes with what has come).
pub const CHUNK_BYTES: usize = 1 << 20;
/// The results a worker gathers before it sends them on; a piece is at most twice this.
pub const PIECE_BYTES: usize = 1 << 20;
/// The most input bytes one call of a [`Transformer::Batch`] takes (a longer line goes in
/// a batch of its own), and at most an eighth of the guest's memory cap: the lines, their
/// results and the two lists' arrays must all fit in the guest at once.
pub const BATCH_BYTES: usize = 256 << 10;
/// The most lines one call of a [`Transformer::Batch`] takes.
pub const BATCH_LINES: usize = 16 << 10;
/// What an instance holds beside its linear memory (its store, tables, globals and
/// stack), as [`stream_memory`] counts it.
pub const INSTANCE_BYTES: u64 = 2 << 20;

/// How long an idle worker, or a writer with a stop to watch for, waits before it looks
/// again.
const POLL: Duration = Duration::from_millis(50);

/// How many chunks may be in flight (queued, being worked on, or waiting to be written)
/// for `threads` workers.
pub fn window(threads: usize) -> usize {
    2 * threads + 2
}

/// The most host memory a stream of `jobs` workers holds for guests whose memory is capped
/// at `max_memory` bytes, beside the compiled module: the figure that
/// [`Limits::max_host_memory_bytes`](crate::Limits::max_host_memory_bytes) bounds. It adds
/// up, for `n` workers and `w` = [`window`]`(n)` chunks in flight:
/// - the instances: `n × (max_memory + INSTANCE_BYTES)`;
/// - each worker's results being made: one as large as the guest's memory, what came
///   before it, and a piece being sent: `n × (max_memory + 3 × PIECE_BYTES)`;
/// - the pieces waiting in each chunk's channel, as many kept for reuse, and one being
///   written: `(2w + 1) × 2 × PIECE_BYTES`;
/// - the input: the chunks in flight, the chunk being read (one line may be as long as the
///   memory cap, its buffer grown an eighth at a time), and read buffers kept for reuse,
///   each at most [`input_budget`]: three times that.
pub fn stream_memory(jobs: usize, max_memory: u64) -> u64 {
    let n = jobs as u64;
    let w = window(jobs) as u64;
    let piece = PIECE_BYTES as u64;
    let instances = n * (max_memory + INSTANCE_BYTES);
    let making = n * (max_memory + 3 * piece);
    let pieces = (2 * w + 1) * 2 * piece;
    instances + making + pieces + 3 * input_budget(jobs, max_memory)
}

/// The most bytes of input chunks in flight (their buffers' capacity) for `jobs` workers:
/// [`window`] chunks of up to twice [`CHUNK_BYTES`], or one line as long as the memory cap
/// `max_memory` with the chunk it ends.
pub fn input_budget(jobs: usize, max_memory: u64) -> u64 {
    let chunk = CHUNK_BYTES as u64;
    (window(jobs) as u64 * 2 * chunk).max(max_memory + max_memory / 8 + 3 * chunk)
}

/// The most workers whose [`stream_memory`] fits `limit` (0 when not even one does).
pub fn jobs_that_fit(limit: u64, max_memory: u64) -> usize {
    let (mut lo, mut hi) = (0, MAX_JOBS);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if stream_memory(mid, max_memory) <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
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
    /// Calls into the guest's transform (one a line, a batch or a chunk).
    pub calls: u64,
    /// CPU time of the reader thread (reading and cutting the input).
    pub reader_cpu: Duration,
    /// CPU time of the calling thread while it wrote the results.
    pub writer_cpu: Duration,
    /// CPU time of the workers, all together (the guest's work).
    pub worker_cpu: Duration,
}

/// How a stream runs: its workers, its transform, and what may stop it.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions<'a> {
    /// Worker threads, each with its own instance (at most [`MAX_JOBS`]).
    pub jobs: NonZeroUsize,
    /// What each worker calls.
    pub transformer: &'a Transformer,
    /// Set (from any thread, or a signal handler) to stop the stream at the next whole
    /// result: it returns [`Error::Interrupted`], with every result before written.
    pub stop: Option<&'a AtomicBool>,
}

impl<'a> StreamOptions<'a> {
    /// `jobs` workers calling `transformer`, nothing to stop them but the input's end.
    pub fn new(jobs: NonZeroUsize, transformer: &'a Transformer) -> Self {
        StreamOptions {
            jobs,
            transformer,
            stop: None,
        }
    }

    /// The same, stopped when `stop` is set.
    #[must_use]
    pub fn stop_on(self, stop: &'a AtomicBool) -> Self {
        StreamOptions {
            stop: Some(stop),
            ..self
        }
    }
}

/// The CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
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
    /// Results; `whole` when they end where a line's result ends.
    Data { bytes: Vec<u8>, whole: bool },
    /// The chunk is done: its lines, input bytes and calls.
    Done { lines: u64, bytes: u64, calls: u64 },
    /// Lines `first..=last` of the chunk (from 0), one call, failed; or the chunk could not
    /// be started (`None`: the worker's instance could not be made).
    Failed {
        lines: Option<(u64, u64)>,
        error: Error,
    },
    /// The line after the previous chunk is longer than `cap`.
    TooLong { cap: u64 },
    /// Reading the input failed.
    Unreadable(io::Error),
}

/// The bytes of input in flight, bounded: the reader takes room for a chunk before it
/// queues it, and the writer gives it back once the chunk's results are written. One
/// chunk larger than the whole budget (a long line) goes when nothing else is in flight.
struct Budget {
    state: Mutex<(u64, bool)>,
    freed: Condvar,
    limit: u64,
}

impl Budget {
    fn new(limit: u64) -> Self {
        Budget {
            state: Mutex::new((0, false)),
            freed: Condvar::new(),
            limit,
        }
    }

    /// Waits for room for `bytes`; false when the stream has ended.
    fn take(&self, bytes: u64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let (used, closed) = *state;
            if closed {
                return false;
            }
            if used == 0 || used + bytes <= self.limit {
                state.0 += bytes;
                return true;
            }
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn give(&self, bytes: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 = state.0.saturating_sub(bytes);
        self.freed.notify_all();
    }

    /// Wakes and ends a reader waiting for room.
    fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.freed.notify_all();
    }
}

/// What the reader thread gets: where chunks go, and the buffers that come back.
struct ReaderEnds {
    jobs: SyncSender<Job>,
    order: SyncSender<(Receiver<Piece>, u64)>,
    pool: Receiver<Vec<u8>>,
    budget: Arc<Budget>,
    max_line: u64,
}

/// The input, as the reader thread takes it: owned, so that the thread may be left behind
/// when the run ends before the input does; or a slice, read to its end at once.
enum Input<'a> {
    Owned(Box<dyn Read + Send>),
    Slice(&'a [u8]),
}

impl GuestModule {
    /// Transforms each line of `input` (split at `\n`, which each result keeps; a last line
    /// without one stays without) through `transformer`, on `jobs` threads (at most
    /// [`MAX_JOBS`]), and writes the results to `output` in input order as they come:
    /// memory stays bounded whatever the input's size (by [`stream_memory`]). `progress` is
    /// called on the calling thread after each chunk is written. Returns what was done. As [`GuestModule::transform_stream`] with
    /// nothing to stop it.
    ///
    /// # Errors
    /// As [`GuestModule::transform_stream`].
    pub fn transform_lines_stream<R: Read + Send + 'static>(
        &self,
        input: R,
        output: impl Write,
        jobs: NonZeroUsize,
        transformer: &Transformer,
        progress: &mut dyn FnMut(&StreamStats),
    ) -> Result<StreamStats, Error> {
        self.transform_stream(
            input,
            output,
            StreamOptions::new(jobs, transformer),
            progress,
        )
    }

    /// Transforms the lines of `input` as `options` say, the results written to `output`
    /// in input order as they come, in memory bounded by [`stream_memory`]. `progress` is
    /// called on the calling thread after each chunk is written. When the run ends early
    /// (a failure, a stop), a reader blocked in `input.read` is not waited for: its thread
    /// ends when the read returns.
    ///
    /// # Errors
    /// [`Error::Line`] (one line a call) or [`Error::Lines`] (a batch or a chunk) with the
    /// first failing call's lines (counting from 1) and what failed there, every earlier
    /// line's result written; [`Error::LineTooLong`] for a line longer than the guest's
    /// memory cap; [`Error::Input`] and [`Error::Output`] when reading or writing fails;
    /// [`Error::Interrupted`] when `options.stop` was set; [`Error::HostMemory`] when the
    /// jobs need more host memory than
    /// [`Limits::max_host_memory_bytes`](crate::Limits::max_host_memory_bytes) allows
    /// (before anything is read); errors of instantiating come as they are.
    pub fn transform_stream<R: Read + Send + 'static>(
        &self,
        input: R,
        output: impl Write,
        options: StreamOptions<'_>,
        progress: &mut dyn FnMut(&StreamStats),
    ) -> Result<StreamStats, Error> {
        self.stream(Input::Owned(Box::new(input)), output, options, progress)
    }

    /// As [`GuestModule::transform_stream`], for input in memory.
    pub(crate) fn transform_slice_stream(
        &self,
        input: &[u8],
        output: impl Write,
        options: StreamOptions<'_>,
    ) -> Result<StreamStats, Error> {
        self.stream(Input::Slice(input), output, options, &mut |_| {})
    }

    /// The host memory a stream of `jobs` workers may take with this module's memory cap
    /// ([`stream_memory`]).
    pub fn stream_memory(&self, jobs: usize) -> u64 {
        stream_memory(jobs, self.max_line_bytes)
    }

    /// The most workers a stream may have under
    /// [`Limits::max_host_memory_bytes`](crate::Limits::max_host_memory_bytes).
    pub fn stream_jobs(&self) -> usize {
        jobs_that_fit(self.max_host_memory, self.max_line_bytes)
    }

    fn stream(
        &self,
        input: Input<'_>,
        mut output: impl Write,
        options: StreamOptions<'_>,
        progress: &mut dyn FnMut(&StreamStats),
    ) -> Result<StreamStats, Error> {
        let threads = options.jobs.get().min(MAX_JOBS);
        let needed = self.stream_memory(threads);
        if needed > self.max_host_memory {
            return Err(Error::HostMemory {
                jobs: options.jobs.get(),
                needed,
                limit: self.max_host_memory,
                fit: self.stream_jobs(),
            });
        }
        let shape = self.shape_of(options.transformer)?;
        let window = window(threads);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(window);
        let (order_tx, order_rx) = mpsc::sync_channel(window);
        let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let budget = Arc::new(Budget::new(input_budget(threads, self.max_line_bytes)));
        let ends = ReaderEnds {
            jobs: job_tx,
            order: order_tx,
            pool: pool_rx,
            budget: Arc::clone(&budget),
            max_line: self.max_line_bytes,
        };
        // Result buffers the writer has emptied, for the workers to fill again.
        let spare = Spare::new(window);
        let (spare, halt) = (&spare, &AtomicBool::new(false));
        let worker_cpu = Mutex::new(Duration::ZERO);
        let worker_cpu = &worker_cpu;
        thread::scope(|scope| {
            let mut started = 0;
            for _ in 0..threads {
                let (job_rx, pool_tx) = (Arc::clone(&job_rx), pool_tx.clone());
                let spawned = thread::Builder::new().spawn_scoped(scope, move || {
                    self.work(&job_rx, &pool_tx, spare, options.transformer, shape, halt);
                    *worker_cpu.lock().unwrap_or_else(PoisonError::into_inner) += thread_cpu();
                });
                started += usize::from(spawned.is_ok());
            }
            // Only the workers hold the jobs' receiving end: once they have ended, a reader
            // blocked queueing a chunk sees it closed.
            drop((job_rx, pool_tx));
            if started == 0 {
                // No worker could be started: the reader's chunks would wait for ever.
                return Err(Error::Input {
                    source: io::Error::other("no worker thread could be started"),
                });
            }
            let reader = match input {
                Input::Owned(input) => thread::Builder::new()
                    .spawn(move || read_chunks(input, ends))
                    .map(Reader::Detached),
                Input::Slice(input) => thread::Builder::new()
                    .spawn_scoped(scope, move || read_chunks(input, ends))
                    .map(Reader::Scoped),
            };
            let reader = reader.map_err(|source| Error::Input { source })?;
            let before = thread_cpu();
            let written = write_results(
                &order_rx,
                &mut output,
                spare,
                &budget,
                options.stop,
                progress,
            );
            let writer_cpu = thread_cpu().saturating_sub(before);
            // Ends the workers, and a reader waiting for room or queueing a chunk, if an
            // error or a stop ended the writing early; the pieces still queued are dropped.
            halt.store(true, Ordering::Relaxed);
            budget.close();
            drop(order_rx);
            let mut stats = written?;
            // The input has ended (its last chunk is written): the reader has returned.
            stats.reader_cpu = reader.join();
            stats.writer_cpu = writer_cpu;
            Ok(stats)
        })
        .map(|stats| StreamStats {
            // The threads have ended: their CPU times are in.
            worker_cpu: *worker_cpu.lock().unwrap_or_else(PoisonError::into_inner),
            ..stats
        })
    }

    /// Whether the lines go to `transformer` as strings (checked as UTF-8 before a call).
    fn shape_of(&self, transformer: &Transformer) -> Result<bool, Error> {
        match transformer {
            Transformer::Guide => Ok(false),
            Transformer::Canonical(name) | Transformer::Batch(name) | Transformer::Chunks(name) => {
                Ok(self.bytes_shape(name)?.text)
            }
        }
    }

    /// A worker: takes chunks in turn, transforms their lines through its own instance
    /// (made when the first chunk comes, and again after a failure), results down the
    /// chunk's channel. Ends when the reader has no more chunks, or at `halt`.
    fn work(
        &self,
        jobs: &Mutex<Receiver<Job>>,
        pool: &Sender<Vec<u8>>,
        spare: &Spare,
        transformer: &Transformer,
        text: bool,
        halt: &AtomicBool,
    ) {
        let mut guest: Option<Guest> = None;
        let batch_cap =
            BATCH_BYTES.min(usize::try_from(self.max_line_bytes / 8).unwrap_or(usize::MAX));
        loop {
            let job = jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv_timeout(POLL);
            let Job { input, results } = match job {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) if !halt.load(Ordering::Relaxed) => continue,
                Err(_) => return,
            };
            if halt.load(Ordering::Relaxed) {
                return;
            }
            let instance = match guest.take() {
                Some(instance) => instance,
                None => match self.instantiate() {
                    Ok(made) => made,
                    Err(error) => {
                        let _ = results.send(Piece::Failed { lines: None, error });
                        let _ = pool.send(input);
                        continue;
                    }
                },
            };
            let mut chunk = Chunk {
                guest: instance,
                results,
                spare,
                out: spare.take(),
                lines: 0,
                calls: 0,
            };
            let failed = match transformer {
                Transformer::Guide | Transformer::Canonical(_) => {
                    chunk.by_line(transformer, &input, text)
                }
                Transformer::Batch(name) => chunk.by_batch(name, &input, text, batch_cap),
                Transformer::Chunks(name) => chunk.whole(name, &input, text),
            };
            let ended = match failed {
                Err(Halt::Failed { first, last, error }) => {
                    chunk.fail(first, last, error);
                    true
                }
                Err(Halt::Gone) => true,
                Ok(()) => !chunk.done(input.len() as u64),
            };
            // What failed may have left the instance in any state: the next chunk gets a
            // fresh one.
            if !ended {
                guest = Some(chunk.guest);
            }
            // A long line's buffer is not kept.
            if input.capacity() <= 2 * CHUNK_BYTES {
                let _ = pool.send(input);
            }
        }
    }
}

/// The reader thread, to be joined once the input has ended.
enum Reader<'scope> {
    Detached(thread::JoinHandle<Duration>),
    Scoped(thread::ScopedJoinHandle<'scope, Duration>),
}

impl Reader<'_> {
    /// Its CPU time.
    fn join(self) -> Duration {
        match self {
            Reader::Detached(handle) => handle.join().unwrap_or_default(),
            Reader::Scoped(handle) => handle.join().unwrap_or_default(),
        }
    }
}

/// Why a chunk's work stopped early.
enum Halt {
    /// A call failed: lines `first..=last` of the chunk (from 0), and why.
    Failed { first: u64, last: u64, error: Error },
    /// The writer has stopped: nothing more is wanted.
    Gone,
}

/// A chunk being worked on: its results so far, sent on in pieces.
struct Chunk<'a> {
    guest: Guest,
    results: SyncSender<Piece>,
    spare: &'a Spare,
    /// Results made and not yet sent: whole lines' results, each with its newline.
    out: Vec<u8>,
    lines: u64,
    calls: u64,
}

impl Chunk<'_> {
    /// One call a line.
    fn by_line(&mut self, transformer: &Transformer, input: &[u8], text: bool) -> Result<(), Halt> {
        for line in lines_of(input) {
            let (body, newline) = split_newline(line);
            let mark = self.out.len();
            let out = &mut self.out;
            let called = if text && let Err(e) = std::str::from_utf8(body) {
                Err(not_utf8(transformer, e))
            } else {
                self.calls += 1;
                let sink = |r: &[u8]| out.extend_from_slice(r);
                match transformer {
                    // The line was checked just above.
                    Transformer::Canonical(name) => {
                        self.guest
                            .transform_bytes_as(name, body, Utf8::Checked, sink)
                    }
                    _ => self.guest.transform_with(transformer, body, sink),
                }
            };
            if let Err(error) = called {
                // A failure after the result was taken (the post-return) drops it.
                self.out.truncate(mark);
                return Err(self.failure(error));
            }
            self.end_line(newline)?;
        }
        Ok(())
    }

    /// Many lines a call: batches of up to [`BATCH_LINES`] lines and [`BATCH_BYTES`]
    /// bytes (and an eighth of the memory cap).
    fn by_batch(&mut self, name: &str, input: &[u8], text: bool, cap: usize) -> Result<(), Halt> {
        let ends_whole = input.ends_with(b"\n");
        let total = lines_of(input).count() as u64;
        let mut batch: Vec<&[u8]> = Vec::new();
        let mut lines = lines_of(input).peekable();
        while lines.peek().is_some() {
            batch.clear();
            let mut bytes = 0;
            let mut bad = None;
            while let Some(line) = lines.peek() {
                let (body, _) = split_newline(line);
                if !batch.is_empty() && (bytes + body.len() > cap || batch.len() == BATCH_LINES) {
                    break;
                }
                if text && let Err(e) = std::str::from_utf8(body) {
                    bad = Some(e);
                    break;
                }
                bytes += body.len();
                batch.push(body);
                lines.next();
            }
            if !batch.is_empty() {
                let first = self.lines;
                let count = batch.len() as u64;
                let mark = self.out.len();
                self.calls += 1;
                let (out, done) = (&mut self.out, self.lines);
                let called = self
                    .guest
                    .transform_batch_as(name, &batch, Utf8::Checked, |i, r| {
                        out.extend_from_slice(r);
                        // Each result keeps its line's newline: all have one but perhaps the
                        // input's very last.
                        if done + i as u64 + 1 < total || ends_whole {
                            out.push(b'\n');
                        }
                    });
                if let Err(error) = called {
                    self.out.truncate(mark);
                    return Err(Halt::Failed {
                        first,
                        last: first + count - 1,
                        error,
                    });
                }
                self.lines += count;
                if self.out.len() >= PIECE_BYTES {
                    self.send(true)?;
                }
            }
            if let Some(e) = bad {
                return Err(self.failure(Error::InputNotUtf8 {
                    export: name.to_string().into(),
                    valid_up_to: e.valid_up_to(),
                }));
            }
        }
        Ok(())
    }

    /// The whole chunk in one call (up to a line that is not UTF-8, for a function of
    /// strings: the lines before it go in one call, then that line fails).
    fn whole(&mut self, name: &str, input: &[u8], text: bool) -> Result<(), Halt> {
        let (good, bad) = match std::str::from_utf8(input) {
            Err(e) if text => {
                let line_start =
                    memchr::memrchr(b'\n', &input[..e.valid_up_to()]).map_or(0, |i| i + 1);
                (&input[..line_start], Some((line_start, e)))
            }
            _ => (input, None),
        };
        if !good.is_empty() {
            let count = lines_of(good).count() as u64;
            self.calls += 1;
            let out = &mut self.out;
            let called = self
                .guest
                .transform_bytes_as(name, good, Utf8::Checked, |r| out.extend_from_slice(r));
            if let Err(error) = called {
                self.out.clear();
                return Err(Halt::Failed {
                    first: 0,
                    last: count - 1,
                    error,
                });
            }
            self.lines = count;
        }
        if let Some((start, e)) = bad {
            return Err(self.failure(Error::InputNotUtf8 {
                export: name.to_string().into(),
                valid_up_to: e.valid_up_to() - start,
            }));
        }
        Ok(())
    }

    /// The failure of the line after those done.
    fn failure(&self, error: Error) -> Halt {
        Halt::Failed {
            first: self.lines,
            last: self.lines,
            error,
        }
    }

    /// A line is done: its newline, and a piece sent when enough has gathered.
    fn end_line(&mut self, newline: bool) -> Result<(), Halt> {
        if newline {
            self.out.push(b'\n');
        }
        self.lines += 1;
        if self.out.len() >= PIECE_BYTES {
            self.send(true)?;
        }
        Ok(())
    }

    /// Sends what was gathered, in pieces of at most twice [`PIECE_BYTES`] (a result
    /// larger than that is copied out in pieces); [`Halt::Gone`] when the writer has
    /// stopped.
    fn send(&mut self, whole: bool) -> Result<(), Halt> {
        let gone = |_| Halt::Gone;
        if self.out.len() <= 2 * PIECE_BYTES {
            let bytes = std::mem::replace(&mut self.out, self.spare.take());
            return self
                .results
                .send(Piece::Data { bytes, whole })
                .map_err(gone);
        }
        let mut parts = self.out.chunks(2 * PIECE_BYTES).peekable();
        while let Some(part) = parts.next() {
            let mut bytes = self.spare.take();
            bytes.extend_from_slice(part);
            let whole = whole && parts.peek().is_none();
            self.results
                .send(Piece::Data { bytes, whole })
                .map_err(gone)?;
        }
        // Far larger than a piece: not kept.
        self.out = self.spare.take();
        Ok(())
    }

    /// The chunk is done: the rest of its results, then its figures. False when the
    /// writer has stopped.
    fn done(&mut self, bytes: u64) -> bool {
        if !self.out.is_empty() && self.send(true).is_err() {
            return false;
        }
        self.results
            .send(Piece::Done {
                lines: self.lines,
                bytes,
                calls: self.calls,
            })
            .is_ok()
    }

    /// Lines `first..=last` failed: the results before them, then the failure.
    fn fail(&mut self, first: u64, last: u64, error: Error) {
        if !self.out.is_empty() && self.send(true).is_err() {
            return;
        }
        let _ = self.results.send(Piece::Failed {
            lines: Some((first, last)),
            error,
        });
    }
}

/// A line's text and whether it ended with a newline.
fn split_newline(line: &[u8]) -> (&[u8], bool) {
    match line.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (line, false),
    }
}

/// The error for a line that is not UTF-8, for a function of strings.
fn not_utf8(transformer: &Transformer, e: std::str::Utf8Error) -> Error {
    let export = match transformer {
        Transformer::Guide => abi::TRANSFORM.name.to_string(),
        Transformer::Canonical(name) | Transformer::Batch(name) | Transformer::Chunks(name) => {
            name.clone()
        }
    };
    Error::InputNotUtf8 {
        export: export.into(),
        valid_up_to: e.valid_up_to(),
    }
}

/// The reader: cuts `input` into chunks of whole lines and queues each with a channel for
/// its results, whose receiving end goes to the writer in order. Stops at the end of the
/// input, at a failure (sent in order as a chunk of its own), or when the writer is gone.
/// Returns its CPU time.
fn read_chunks(mut input: impl Read, ends: ReaderEnds) -> Duration {
    read_all(&mut input, &ends);
    thread_cpu()
}

fn read_all(input: &mut impl Read, ends: &ReaderEnds) {
    // The part of a line read past the end of the previous chunk.
    let mut carry: Vec<u8> = Vec::new();
    let fail = |piece: Piece| {
        let (tx, rx) = mpsc::sync_channel(1);
        let _ = tx.send(piece);
        let _ = ends.order.send((rx, 0));
    };
    loop {
        let mut buf = ends
            .pool
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
            // Grown an eighth at a time, not doubled: a long line's buffer stays near its
            // size.
            let want = CHUNK_BYTES
                .saturating_sub(start)
                .max(64 << 10)
                .max(start / 8);
            buf.reserve_exact(want);
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
                    send_chunk(buf, whole, ends);
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
            if (buf.len() - whole) as u64 > ends.max_line {
                // The line being read can never be taken: the lines before it go, then the
                // failure.
                if !send_chunk(buf, whole, ends) {
                    return;
                }
                return fail(Piece::TooLong { cap: ends.max_line });
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
        if !send_chunk(buf, whole, ends) || eof {
            return;
        }
    }
}

/// Queues the first `len` bytes of `buf` as a chunk (nothing for none), once the budget
/// has room for it; false when the writer or the workers are gone.
fn send_chunk(mut buf: Vec<u8>, len: usize, ends: &ReaderEnds) -> bool {
    if len == 0 {
        return true;
    }
    buf.truncate(len);
    let room = buf.capacity() as u64;
    if !ends.budget.take(room) {
        return false;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    ends.order.send((rx, room)).is_ok()
        && ends
            .jobs
            .send(Job {
                input: buf,
                results: tx,
            })
            .is_ok()
}

/// The writer: each chunk's results in input order, to `output`; at `stop`, ends at the
/// next whole result.
fn write_results(
    order: &Receiver<(Receiver<Piece>, u64)>,
    output: &mut impl Write,
    spare: &Spare,
    budget: &Budget,
    stop: Option<&AtomicBool>,
    progress: &mut dyn FnMut(&StreamStats),
) -> Result<StreamStats, Error> {
    let mut stats = StreamStats::default();
    let write_err = |source| Error::Output { source };
    // Whether what is written ends where a line's result ends.
    let mut whole = true;
    loop {
        let (chunk, room) = match next(order, output, stop, whole)? {
            Some(Some(item)) => item,
            Some(None) => return stopped(&stats, output),
            None => break,
        };
        loop {
            let piece = match next(&chunk, output, stop, whole)? {
                Some(Some(piece)) => piece,
                Some(None) => return stopped(&stats, output),
                None => {
                    // A worker gone without a word: it panicked (the scope will say so).
                    return Err(Error::Input {
                        source: io::Error::other("a worker thread stopped"),
                    });
                }
            };
            match piece {
                Piece::Data { bytes, whole: ends } => {
                    output.write_all(&bytes).map_err(write_err)?;
                    stats.bytes_out += bytes.len() as u64;
                    whole = ends;
                    spare.give(bytes);
                }
                Piece::Done {
                    lines,
                    bytes,
                    calls,
                } => {
                    stats.lines += lines;
                    stats.bytes_in += bytes;
                    stats.calls += calls;
                    budget.give(room);
                    progress(&stats);
                    break;
                }
                Piece::Failed { lines, error } => {
                    output.flush().map_err(write_err)?;
                    let at = |i: u64| usize::try_from(stats.lines + i + 1).unwrap_or(usize::MAX);
                    return Err(match lines {
                        Some((first, last)) if first == last => Error::Line {
                            line: at(first),
                            source: Box::new(error),
                        },
                        Some((first, last)) => Error::Lines {
                            first: at(first),
                            last: at(last),
                            source: Box::new(error),
                        },
                        None => error,
                    });
                }
                Piece::TooLong { cap } => {
                    output.flush().map_err(write_err)?;
                    return Err(Error::LineTooLong {
                        line: stats.lines + 1,
                        cap,
                    });
                }
                Piece::Unreadable(source) => {
                    output.flush().map_err(write_err)?;
                    return Err(Error::Input { source });
                }
            }
        }
    }
    output.flush().map_err(write_err)?;
    Ok(stats)
}

/// The end of a stream asked to stop: what was written flushed, and the error that says
/// how far it got.
fn stopped(stats: &StreamStats, output: &mut impl Write) -> Result<StreamStats, Error> {
    output.flush().map_err(|source| Error::Output { source })?;
    Err(Error::Interrupted { lines: stats.lines })
}

/// The next item of `rx`; when none is ready, `output` is flushed first, so that results
/// never wait in a buffer while the input is slow to come. `None` when `rx` is closed;
/// `Some(None)` when `stop` is set and what is written ends with a whole result.
fn next<T>(
    rx: &Receiver<T>,
    output: &mut impl Write,
    stop: Option<&AtomicBool>,
    whole: bool,
) -> Result<Option<Option<T>>, Error> {
    let stopping = || whole && stop.is_some_and(|s| s.load(Ordering::Relaxed));
    if stopping() {
        return Ok(Some(None));
    }
    match rx.try_recv() {
        Ok(item) => return Ok(Some(Some(item))),
        Err(mpsc::TryRecvError::Disconnected) => return Ok(None),
        Err(mpsc::TryRecvError::Empty) => {}
    }
    output.flush().map_err(|source| Error::Output { source })?;
    if stop.is_none() {
        return Ok(rx.recv().ok().map(Some));
    }
    loop {
        match rx.recv_timeout(POLL) {
            Ok(item) => return Ok(Some(Some(item))),
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
            Err(RecvTimeoutError::Timeout) if stopping() => return Ok(Some(None)),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Result buffers to be filled again: freeing a buffer of pieces' size and allocating a
/// fresh one costs an `munmap`, an `mmap` and a page fault a page, on the writer's and the
/// workers' threads; a few kept buffers cost none of that.
struct Spare {
    kept: Mutex<Vec<Vec<u8>>>,
    /// The most buffers kept.
    most: usize,
}

impl Spare {
    fn new(most: usize) -> Self {
        Spare {
            kept: Mutex::new(Vec::new()),
            most,
        }
    }

    /// An empty buffer with room for a piece.
    fn take(&self) -> Vec<u8> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        kept.unwrap_or_else(|| Vec::with_capacity(2 * PIECE_BYTES + 1))
    }

    /// Keeps `buf` for another piece (dropped past `most`, or when it grew past a piece's
    /// size for one long result).
    fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() > 2 * PIECE_BYTES + 1 {
            return;
        }
        buf.clear();
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < self.most {
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
