//! Many strings at once, on every core: each line of an input through the guest's
//! `transform`, on as many threads as asked, each thread with its own instance of one
//! compiled [`GuestModule`]; the results in input order.
//!
//! The module is compiled once and shared by reference (`GuestModule` is `Send + Sync`);
//! each [`Guest`](crate::Guest) is made on the thread that uses it and stays there (wasmer
//! 7's `Store` is not `Send`).

use std::num::NonZeroUsize;
use std::thread;

use crate::{Error, GuestModule};

impl GuestModule {
    /// Transforms each line of `input` independently (split at `\n`, which each result
    /// keeps; a last line without one stays without), on `jobs` threads, each with its own
    /// instance that takes its lines in turn (by the guest's convention, as
    /// [`Guest::put_bytes`](crate::Guest::put_bytes) does). Returns the results in input
    /// order.
    ///
    /// # Errors
    /// [`Error::Line`] with the first failing line (counting from 1) in input order, and
    /// what failed there; errors of instantiating come as they are.
    pub fn transform_lines(&self, input: &[u8], jobs: NonZeroUsize) -> Result<Vec<u8>, Error> {
        let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
        // Contiguous runs of lines, one a thread, of about the same number of bytes.
        let per_job = input.len().div_ceil(jobs.get()).max(1);
        let mut chunks: Vec<(usize, &[&[u8]])> = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, line) in lines.iter().enumerate() {
            bytes += line.len();
            if bytes >= per_job || i + 1 == lines.len() {
                chunks.push((start, &lines[start..=i]));
                start = i + 1;
                bytes = 0;
            }
        }
        if chunks.len() <= 1 {
            return chunks.first().map_or(Ok(Vec::new()), |&(first, chunk)| {
                self.run_lines(first, chunk)
            });
        }
        let results: Vec<Result<Vec<u8>, Error>> = thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|&(first, chunk)| scope.spawn(move || self.run_lines(first, chunk)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(input.len() + lines.len() * 16);
        for result in results {
            out.extend_from_slice(&result?);
        }
        Ok(out)
    }

    /// One thread's share: `lines`, the first of which is line `first` (from 0).
    fn run_lines(&self, first: usize, lines: &[&[u8]]) -> Result<Vec<u8>, Error> {
        let mut guest = self.instantiate()?;
        let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 16).sum());
        for (i, line) in lines.iter().enumerate() {
            let (text, newline) = match line.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (*line, false),
            };
            let at = |source| Error::Line {
                line: first + i + 1,
                source: Box::new(source),
            };
            guest.put_bytes(text).map_err(at)?;
            guest.transform().map_err(at)?;
            let region = guest.load().map_err(at)?;
            out.extend_from_slice(&guest.bytes(region).map_err(at)?);
            if newline {
                out.push(b'\n');
            }
        }
        Ok(out)
    }
}
