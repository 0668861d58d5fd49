//! "Bytes in, bytes out", whichever ABI a guest speaks: the guide's `transform` (the data put
//! in by the guest's convention, the result read where `load` says), or a canonical-ABI
//! `func(string) -> string` or `func(list<u8>) -> list<u8>`. Batch and streaming code call
//! [`Guest::transform_with`] and never know which.

use crate::{Error, Guest, GuestModule};

/// How a module's guests transform bytes, and how many lines one call takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transformer {
    /// The guide's ABI: the data handed over by the guest's convention
    /// ([`Guest::put_bytes`]), `transform`, the result at `load`'s region. One call a line.
    Guide,
    /// A function of the module's WIT world, of type `func(string) -> string` or
    /// `func(list<u8>) -> list<u8>`, by name: one call a line.
    Canonical(String),
    /// A function of type `func(list<string>) -> list<string>` or `func(list<list<u8>>) ->
    /// list<list<u8>>`, by name: many lines a call, one result a line, in order (see
    /// [`BATCH_BYTES`](crate::BATCH_BYTES) for how many).
    Batch(String),
    /// A function of type `func(string) -> string` or `func(list<u8>) -> list<u8>` that
    /// takes any whole number of complete lines, newlines included, and returns their
    /// output: one call a chunk of input. The guest promises that a chunk's output depends
    /// only on that chunk's lines, so that cutting the input anywhere between lines gives
    /// the same output.
    Chunks(String),
}

impl GuestModule {
    /// How this module's guests transform lines: with `export`, that function of its WIT
    /// world, one line a call ([`Transformer::Canonical`]) or a batch of them
    /// ([`Transformer::Batch`]) as its type says; without, the guide's `transform` when the
    /// module speaks the guide's ABI and exports it, else its world's function `transform`.
    ///
    /// # Errors
    /// [`Error::Call`] when the module has no such function, or none of the right type;
    /// [`Error::MissingExport`] when it has neither kind of `transform`.
    pub fn transformer(&self, export: Option<&str>) -> Result<Transformer, Error> {
        if let Some(name) = export {
            return Ok(if self.bytes_shape(name)?.batch {
                Transformer::Batch(name.to_string())
            } else {
                Transformer::Canonical(name.to_string())
            });
        }
        if self.speaks_guide_abi() && self.extras().transform {
            return Ok(Transformer::Guide);
        }
        if self.functions().contains(&abi::TRANSFORM.name) {
            return self.transformer(Some(abi::TRANSFORM.name));
        }
        Err(Error::MissingExport {
            module: self.name().to_string(),
            export: abi::TRANSFORM.name.into(),
        })
    }

    /// The functions of this module's WIT world that [`GuestModule::transformer`] can name
    /// with `export`: those that take and return a string or bytes, one or a batch.
    pub fn transform_functions(&self) -> Vec<&str> {
        self.functions()
            .into_iter()
            .filter(|name| self.bytes_shape(name).is_ok())
            .collect()
    }

    /// The function `export` of this module's WIT world as a transform of whole chunks of
    /// lines ([`Transformer::Chunks`]).
    ///
    /// # Errors
    /// [`Error::Call`] when the module has no such function, or it is not `func(string) ->
    /// string` nor `func(list<u8>) -> list<u8>`.
    pub fn chunk_transformer(&self, export: &str) -> Result<Transformer, Error> {
        if self.bytes_shape(export)?.batch {
            return Err(Error::Call {
                export: export.to_string().into(),
                problem: "a batch function (a list of lines in, a list out) takes lines, not \
                          chunks: use it with --lines"
                    .into(),
            });
        }
        Ok(Transformer::Chunks(export.to_string()))
    }
}

impl Guest {
    /// Transforms `input` as `transformer` says and hands the result to `sink`, borrowed
    /// from guest memory (no copy on the host's side). A [`Transformer::Batch`] takes
    /// `input` as a batch of one.
    ///
    /// # Errors
    /// As [`Guest::put_bytes`], [`Guest::transform`] and [`Guest::load`] for the guide's
    /// ABI; as [`Guest::transform_bytes`] and [`Guest::transform_batch`] for a canonical
    /// function.
    pub fn transform_with<T>(
        &mut self,
        transformer: &Transformer,
        input: &[u8],
        sink: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, Error> {
        match transformer {
            Transformer::Guide => {
                self.put_bytes(input)?;
                self.transform()?;
                let region = self.load()?;
                Ok(sink(&self.bytes(region)?))
            }
            Transformer::Canonical(name) | Transformer::Chunks(name) => {
                self.transform_bytes(name, input, sink)
            }
            Transformer::Batch(name) => {
                let mut sink = Some(sink);
                let mut result = None;
                self.transform_batch(name, &[input], |_, bytes| {
                    result = sink.take().map(|sink| sink(bytes));
                })?;
                // A batch of one that came back checked holds one result.
                result.ok_or_else(|| Error::BatchCount {
                    export: name.clone().into(),
                    lines: 1,
                    results: 0,
                })
            }
        }
    }
}
