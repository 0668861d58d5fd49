//! Many strings at once, on every core: each line of an input through the guest, the
//! results in input order, as one batch in memory. Built on the streaming form
//! ([`GuestModule::transform_lines_stream`]), which does the work in bounded chunks on
//! worker threads, each with its own instance of the one compiled [`GuestModule`].
//!
//! What a batch holds is bounded: its input and its results may each be at most
//! [`Limits::max_batch_bytes`](crate::Limits::max_batch_bytes), and the threads are at
//! most [`MAX_JOBS`].

use std::io::{self, Write};
use std::num::NonZeroUsize;

use crate::{Error, GuestModule, StreamOptions, Transformer};

/// The most threads [`GuestModule::transform_lines`] and
/// [`GuestModule::transform_lines_stream`] start, whatever `jobs` says: each holds an
/// instance, with its memory of up to the memory cap.
pub const MAX_JOBS: usize = 256;

impl GuestModule {
    /// Transforms each line of `input` independently (split at `\n`, which each result
    /// keeps; a last line without one stays without), on `jobs` threads, each with its own
    /// instance that takes its lines in turn, through the module's default
    /// [`Transformer`] ([`GuestModule::transformer`]). Returns the results in input order.
    ///
    /// # Errors
    /// [`Error::Line`] with the first failing line (counting from 1) in input order, and
    /// what failed there; errors of instantiating come as they are;
    /// [`Error::BatchTooLarge`] when the input, or the results, exceed
    /// [`Limits::max_batch_bytes`](crate::Limits::max_batch_bytes).
    pub fn transform_lines(&self, input: &[u8], jobs: NonZeroUsize) -> Result<Vec<u8>, Error> {
        self.transform_lines_with(input, jobs, &self.transformer(None)?)
    }

    /// As [`GuestModule::transform_lines`], each line through `transformer`.
    ///
    /// # Errors
    /// As [`GuestModule::transform_lines`].
    pub fn transform_lines_with(
        &self,
        input: &[u8],
        jobs: NonZeroUsize,
        transformer: &Transformer,
    ) -> Result<Vec<u8>, Error> {
        let limit = self.max_batch_bytes;
        if input.len() as u64 > limit {
            return Err(Error::BatchTooLarge {
                what: "input",
                limit,
            });
        }
        let mut out = Bounded {
            out: Vec::with_capacity(input.len() + input.len() / 4),
            limit,
        };
        match self.transform_slice_stream(input, &mut out, StreamOptions::new(jobs, transformer)) {
            Ok(_) => Ok(out.out),
            Err(Error::Output { source })
                if source.get_ref().is_some_and(|e| e.is::<OverLimit>()) =>
            {
                Err(Error::BatchTooLarge {
                    what: "results",
                    limit,
                })
            }
            Err(e) => Err(e),
        }
    }
}

/// The results of a batch, refused past the limit.
struct Bounded {
    out: Vec<u8>,
    limit: u64,
}

/// The results passed the limit.
#[derive(Debug, thiserror::Error)]
#[error("the results passed the batch limit")]
struct OverLimit;

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if (self.out.len() + buf.len()) as u64 > self.limit {
            return Err(io::Error::other(OverLimit));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::stream::lines_of;

    #[test]
    fn lines_are_whole_and_cover_the_input() {
        for input in [
            &b""[..],
            b"\n",
            b"a",
            b"a\nb",
            b"a\nb\n",
            b"\n\n\n\n",
            b"one long line without an end",
        ] {
            let lines: Vec<&[u8]> = lines_of(input).collect();
            let expected: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
            assert_eq!(lines, expected, "{input:?}");
        }
    }
}
