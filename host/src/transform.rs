//! "Bytes in, bytes out", whichever ABI a guest speaks: the guide's `transform` (the data put
//! in by the guest's convention, the result read where `load` says), or a canonical-ABI
//! `func(string) -> string` or `func(list<u8>) -> list<u8>`. Batch and streaming code call
//! [`Guest::transform_with`] and never know which.

use crate::{Error, Guest, GuestModule};

/// How a module's guests transform bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transformer {
    /// The guide's ABI: the data handed over by the guest's convention
    /// ([`Guest::put_bytes`]), `transform`, the result at `load`'s region.
    Guide,
    /// A function of the module's WIT world, of type `func(string) -> string` or
    /// `func(list<u8>) -> list<u8>`, by name.
    Canonical(String),
}

impl GuestModule {
    /// How this module's guests transform bytes: with `export`, that function of its WIT
    /// world; without, the guide's `transform` when the module speaks the guide's ABI and
    /// exports it, else its world's function `transform`.
    ///
    /// # Errors
    /// [`Error::Call`] when the module has no such function, or none of the right type;
    /// [`Error::MissingExport`] when it has neither kind of `transform`.
    pub fn transformer(&self, export: Option<&str>) -> Result<Transformer, Error> {
        if let Some(name) = export {
            self.check_transform(name)?;
            return Ok(Transformer::Canonical(name.to_string()));
        }
        if self.speaks_guide_abi() && self.extras().transform {
            return Ok(Transformer::Guide);
        }
        if self.functions().contains(&abi::TRANSFORM.name) {
            self.check_transform(abi::TRANSFORM.name)?;
            return Ok(Transformer::Canonical(abi::TRANSFORM.name.to_string()));
        }
        Err(Error::MissingExport {
            module: self.name().to_string(),
            export: abi::TRANSFORM.name.into(),
        })
    }
}

impl Guest {
    /// Transforms `input` as `transformer` says and hands the result to `sink`, borrowed
    /// from guest memory (no copy on the host's side).
    ///
    /// # Errors
    /// As [`Guest::put_bytes`], [`Guest::transform`] and [`Guest::load`] for the guide's
    /// ABI; as [`Guest::transform_bytes`] for a canonical function.
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
            Transformer::Canonical(name) => self.transform_bytes(name, input, sink),
        }
    }
}
