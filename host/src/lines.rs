//! Many strings at once, on every core: each line of an input through the guest's
//! `transform`, on as many threads as asked, each thread with its own instance of one
//! compiled [`GuestModule`]; the results in input order.
//!
//! The module is compiled once and shared by reference (`GuestModule` is `Send + Sync`);
//! each [`Guest`](crate::Guest) is made on the thread that uses it and stays there (wasmer
//! 7's `Store` is not `Send`).
//!
//! What is not split among the threads is kept to a few steps: the input is cut into one
//! contiguous run of lines a thread at `jobs - 1` newlines found near the even cuts (no
//! list of lines is made), the calling thread takes the first run itself, and the results
//! are joined into the first run's buffer.
//!
//! What it holds is bounded: the input and the results made so far may each be at most
//! [`Limits::max_batch_bytes`](crate::Limits::max_batch_bytes), and the threads at most
//! [`MAX_JOBS`] (and no more than there are lines). A thread that cannot be started leaves
//! its run to the calling thread.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use crate::{Error, GuestModule, Transformer};

/// The most threads [`GuestModule::transform_lines`] starts, whatever `jobs` says: each
/// holds an instance, with its memory of up to the memory cap.
pub const MAX_JOBS: usize = 256;

impl GuestModule {
    /// Transforms each line of `input` independently (split at `\n`, which each result
    /// keeps; a last line without one stays without), on `jobs` threads, each with its own
    /// instance that takes its lines in turn (by the guest's convention, as
    /// [`Guest::put_bytes`](crate::Guest::put_bytes) does). Returns the results in input
    /// order. At most [`MAX_JOBS`] threads are used, and no more than there are lines.
    ///
    /// # Errors
    /// [`Error::Line`] with the first failing line (counting from 1) in input order, and
    /// what failed there; errors of instantiating come as they are;
    /// [`Error::BatchTooLarge`] when the input, or the results made so far, exceed
    /// [`Limits::max_batch_bytes`](crate::Limits::max_batch_bytes).
    pub fn transform_lines(&self, input: &[u8], jobs: NonZeroUsize) -> Result<Vec<u8>, Error> {
        self.transform_lines_with(input, jobs, &self.transformer(None)?)
    }

    /// As [`GuestModule::transform_lines`], each line through `transformer` (see
    /// [`GuestModule::transformer`]).
    ///
    /// # Errors
    /// As [`GuestModule::transform_lines`].
    pub fn transform_lines_with(
        &self,
        input: &[u8],
        jobs: NonZeroUsize,
        transformer: &Transformer,
    ) -> Result<Vec<u8>, Error> {
        if input.len() as u64 > self.max_batch_bytes {
            return Err(Error::BatchTooLarge {
                what: "input",
                limit: self.max_batch_bytes,
            });
        }
        let runs = runs(input, jobs.get().min(MAX_JOBS));
        let Some((first, rest)) = runs.split_first() else {
            return Ok(Vec::new());
        };
        let held = AtomicU64::new(0);
        let held = &held;
        let results: Vec<Result<Vec<u8>, RunError>> = thread::scope(|scope| {
            // A thread that cannot be started (the system is out of threads or memory)
            // leaves its run to this one.
            let handles: Vec<_> = rest
                .iter()
                .map(|&run| {
                    thread::Builder::new()
                        .spawn_scoped(scope, move || self.run_lines(run, held, transformer))
                        .map_err(|_| run)
                })
                .collect();
            let mut results = vec![self.run_lines(first, held, transformer)];
            results.extend(handles.into_iter().map(|h| {
                match h {
                    Ok(h) => h
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err(run) => self.run_lines(run, held, transformer),
                }
            }));
            results
        });
        // The first failure in input order, numbered from the start of the input (counted
        // only now: the runs do not know where they start).
        let mut start = 0;
        let mut outputs = Vec::with_capacity(results.len());
        for (result, run) in results.into_iter().zip(&runs) {
            match result {
                Ok(output) => outputs.push(output),
                Err(RunError::Instantiate(e) | RunError::Held(e)) => return Err(e),
                Err(RunError::Line { index, source }) => {
                    let before = memchr::memchr_iter(b'\n', &input[..start]).count();
                    return Err(Error::Line {
                        line: before + index + 1,
                        source: Box::new(source),
                    });
                }
            }
            start += run.len();
        }
        // Joined into the first run's buffer: growing it moves its pages without copying
        // them (mremap) when it is large, so only the other runs' results are copied.
        let mut outputs = outputs.into_iter();
        let mut out = outputs.next().unwrap_or_default();
        let rest: Vec<Vec<u8>> = outputs.collect();
        out.reserve_exact(rest.iter().map(Vec::len).sum());
        for output in &rest {
            out.extend_from_slice(output);
        }
        Ok(out)
    }

    /// One thread's run of lines: each through a guest of its own. `held` counts the
    /// results of every thread, against the limit.
    fn run_lines(
        &self,
        run: &[u8],
        held: &AtomicU64,
        transformer: &Transformer,
    ) -> Result<Vec<u8>, RunError> {
        let mut guest = self.instantiate().map_err(RunError::Instantiate)?;
        // Room for the results as the demo's guest makes them: 14 bytes more a line; more
        // is grown into.
        let mut out = Vec::with_capacity(run.len() + run.len() / 4);
        for (index, line) in lines(run).enumerate() {
            let (text, newline) = match line.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (line, false),
            };
            let at = |source| RunError::Line { index, source };
            let len = guest
                .transform_with(transformer, text, |result| {
                    let len = result.len() as u64 + u64::from(newline);
                    if held.fetch_add(len, Ordering::Relaxed) + len > self.max_batch_bytes {
                        return Err(RunError::Held(Error::BatchTooLarge {
                            what: "results",
                            limit: self.max_batch_bytes,
                        }));
                    }
                    out.extend_from_slice(result);
                    Ok(len)
                })
                .map_err(at)?;
            len?;
            if newline {
                out.push(b'\n');
            }
        }
        Ok(out)
    }
}

/// How a run failed: the line is its index within the run.
enum RunError {
    Instantiate(Error),
    /// The results held reached the limit.
    Held(Error),
    Line {
        index: usize,
        source: Error,
    },
}

/// `input` cut into at most `jobs` runs of whole lines, of about the same number of bytes:
/// each cut is at the first newline at or after an even cut.
fn runs(input: &[u8], jobs: usize) -> Vec<&[u8]> {
    let per_job = input.len().div_ceil(jobs).max(1);
    let mut runs = Vec::with_capacity(jobs);
    let mut start = 0;
    while start < input.len() {
        let even = start.saturating_add(per_job).min(input.len());
        let end = match memchr::memchr(b'\n', &input[even.saturating_sub(1)..]) {
            Some(i) if runs.len() + 1 < jobs => even.saturating_sub(1) + i + 1,
            _ => input.len(),
        };
        runs.push(&input[start..end]);
        start = end;
    }
    runs
}

/// The lines of `run`, each with its newline (a last one without).
fn lines(run: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = run;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_whole_lines_that_cover_the_input() {
        for input in [
            &b""[..],
            b"\n",
            b"a",
            b"a\nb",
            b"a\nb\n",
            b"\n\n\n\n",
            b"one long line without an end",
            b"x\nyy\nzzz\nwwww\n",
        ] {
            for jobs in 1..6 {
                let runs = runs(input, jobs);
                assert!(runs.len() <= jobs, "{input:?} {jobs}");
                assert_eq!(runs.concat(), input, "{input:?} {jobs}");
                for run in &runs {
                    assert!(!run.is_empty());
                }
                for run in &runs[..runs.len().saturating_sub(1)] {
                    assert_eq!(run.last(), Some(&b'\n'), "{input:?} {jobs}: a cut mid-line");
                }
                let lines: Vec<&[u8]> = runs.iter().flat_map(|r| lines(r)).collect();
                let expected: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
                assert_eq!(lines, expected, "{input:?} {jobs}");
            }
        }
    }

    #[test]
    fn runs_are_about_even() {
        let input = b"0123456789\n".repeat(1000);
        let runs = runs(&input, 4);
        assert_eq!(runs.len(), 4);
        for run in runs {
            assert!(run.len().abs_diff(input.len() / 4) <= 11, "{}", run.len());
        }
    }
}
