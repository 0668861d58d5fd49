//! The WIT world a module is admitted with: from its `component-type` custom section
//! (`wit-component`) or from `--wit` files (`wit-parser`), read within bounds.

use std::path::Path;

use wit_parser::{Resolve, WorldId, WorldItem};

use super::type_name;
use crate::Error;

/// A WIT world: the types and functions a module exports, from its `component-type`
/// custom section or from WIT files.
#[derive(Debug, Clone)]
pub struct Wit {
    pub(super) resolve: Resolve,
    pub(super) world: WorldId,
}

impl Wit {
    /// The world `world` (or the only one) of the WIT package at `path`: a `.wit` file, or
    /// a directory of them (with its `deps/`), as `wit-bindgen` reads them.
    ///
    /// # Errors
    /// [`Error::Wit`] when the files cannot be read or parsed, or name no such world.
    pub fn from_path(path: impl AsRef<Path>, world: Option<&str>) -> Result<Wit, Error> {
        let path = path.as_ref();
        let wit_err = |e: anyhow::Error| Error::Wit {
            what: path.display().to_string(),
            why: format!("{e:#}"),
        };
        let mut resolve = Resolve::default();
        let pkg = match wit_files(path).map_err(wit_err)? {
            // A file is read here, within the limit, and parsed from memory.
            WitSource::File(text) => resolve.push_str(path, &text).map_err(wit_err)?,
            WitSource::Dir => resolve.push_path(path).map_err(wit_err)?.0,
        };
        let world = resolve.select_world(&[pkg], world).map_err(wit_err)?;
        Ok(Wit { resolve, world })
    }

    /// The world a wit-bindgen module embeds, if it has a `component-type` section.
    ///
    /// # Errors
    /// Why a section that is there cannot be decoded.
    pub(crate) fn from_module(bytes: &[u8]) -> Result<Option<Wit>, String> {
        if !has_component_type(bytes) {
            return Ok(None);
        }
        let (_, bindgen) = wit_component::metadata::decode(bytes).map_err(|e| format!("{e:#}"))?;
        Ok(Some(Wit {
            resolve: bindgen.resolve,
            world: bindgen.world,
        }))
    }

    /// The world `world` of `resolve`.
    pub(crate) fn new(resolve: Resolve, world: WorldId) -> Wit {
        Wit { resolve, world }
    }

    /// The world's name.
    pub fn world_name(&self) -> &str {
        &self.resolve.worlds[self.world].name
    }

    /// The world a wit-bindgen module embeds in its `component-type` section, if it has
    /// one: read from `bytes` (a core module) without admitting or compiling anything.
    ///
    /// # Errors
    /// [`Error::Wit`] when the section is there but cannot be decoded.
    pub fn from_module_bytes(bytes: &[u8]) -> Result<Option<Wit>, Error> {
        Wit::from_module(bytes).map_err(|why| Error::Wit {
            what: "the module's component-type section".into(),
            why,
        })
    }

    /// Every function of the world with its WIT signature, the imported ones first:
    /// `import log: func(e: entry)`, `export greet: func(name: string) -> string` (a
    /// function of an interface named `ns:pkg/iface#name`).
    pub fn signatures(&self) -> Vec<String> {
        let resolve = &self.resolve;
        let world = &resolve.worlds[self.world];
        let mut out: Vec<String> = imported_funcs(resolve, world)
            .into_iter()
            .map(|(module, field, f)| {
                let name = if module == "$root" {
                    field
                } else {
                    format!("{module}#{field}")
                };
                format!("import {}", signature(resolve, &name, f))
            })
            .collect();
        for (key, item) in &world.exports {
            match item {
                WorldItem::Function(f) => {
                    out.push(format!("export {}", signature(resolve, &f.name, f)));
                }
                WorldItem::Interface { id, .. } => {
                    let iface = resolve.name_world_key(key);
                    for (name, f) in &resolve.interfaces[*id].functions {
                        let name = format!("{iface}#{name}");
                        out.push(format!("export {}", signature(resolve, &name, f)));
                    }
                }
                WorldItem::Type { .. } => {}
            }
        }
        out
    }
}

/// The WIT signature of function `f` named `name`, for messages:
/// `transform: func(s: string) -> string`.
pub(super) fn signature(resolve: &Resolve, name: &str, f: &wit_parser::Function) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, type_name(resolve, &p.ty)))
        .collect();
    let result = f
        .result
        .as_ref()
        .map(|t| format!(" -> {}", type_name(resolve, t)))
        .unwrap_or_default();
    format!("{name}: func({}){result}", params.join(", "))
}

/// The most bytes of WIT that `--wit` reads: the file, or every file of the directory
/// (its `deps/` included) together.
pub const MAX_WIT_BYTES: u64 = 16 << 20;

/// What a `--wit` path holds, once checked.
enum WitSource {
    /// A regular file, read.
    File(String),
    /// A directory whose every entry that wit-parser reads is a regular file or a
    /// directory, within [`MAX_WIT_BYTES`] together.
    Dir,
}

/// Checks what wit-parser would read at `path` before it reads any of it: only regular
/// files and directories (a FIFO would block, `/dev/zero` never end), of at most
/// [`MAX_WIT_BYTES`] in all; a file is read here, up to one byte past the limit.
fn wit_files(path: &Path) -> anyhow::Result<WitSource> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        if meta.len() > MAX_WIT_BYTES {
            anyhow::bail!(
                "{} bytes, more than the {MAX_WIT_BYTES} a WIT file may have",
                meta.len()
            );
        }
        let mut text = String::new();
        std::fs::File::open(path)?
            .take(MAX_WIT_BYTES + 1)
            .read_to_string(&mut text)?;
        if text.len() as u64 > MAX_WIT_BYTES {
            anyhow::bail!("more than the {MAX_WIT_BYTES} bytes a WIT file may have");
        }
        return Ok(WitSource::File(text));
    }
    if !meta.is_dir() {
        anyhow::bail!("not a regular file or a directory");
    }
    // The directory's entries, and those of `deps/` below it, as far down as they go.
    let (mut total, mut dirs, mut entries) = (0u64, vec![path.to_path_buf()], 0usize);
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            entries += 1;
            if entries > 10_000 {
                anyhow::bail!("more than 10000 entries");
            }
            let meta = std::fs::metadata(entry.path())?;
            if meta.is_dir() {
                if dir != path || entry.file_name() == "deps" {
                    dirs.push(entry.path());
                }
            } else if meta.is_file() {
                total += meta.len();
            } else if dir != path || entry.path().extension().is_some_and(|e| e == "wit") {
                anyhow::bail!(
                    "{} is not a regular file or a directory",
                    entry.path().display()
                );
            }
        }
    }
    if total > MAX_WIT_BYTES {
        anyhow::bail!("{total} bytes of files, more than the {MAX_WIT_BYTES} WIT may have");
    }
    Ok(WitSource::Dir)
}

/// Whether `bytes` hold a custom section named `component-type...` (read without decoding
/// anything else).
fn has_component_type(bytes: &[u8]) -> bool {
    use ::abi::check::wasmparser::{Parser, Payload};
    Parser::new(0).parse_all(bytes).any(|payload| {
        matches!(payload, Ok(Payload::CustomSection(cs)) if cs.name().starts_with("component-type"))
    })
}

/// The functions `world` imports, each with the core import's module (`$root` for a
/// function of the world itself, else the interface's name) and name.
pub(super) fn imported_funcs<'r>(
    resolve: &'r Resolve,
    world: &'r wit_parser::World,
) -> Vec<(String, String, &'r wit_parser::Function)> {
    let mut funcs = Vec::new();
    for (key, item) in &world.imports {
        match item {
            WorldItem::Function(f) => funcs.push(("$root".to_string(), f.name.clone(), f)),
            WorldItem::Interface { id, .. } => {
                let iface = resolve.name_world_key(key);
                for (name, f) in &resolve.interfaces[*id].functions {
                    funcs.push((iface.clone(), name.clone(), f));
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    funcs
}
