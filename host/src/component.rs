//! Component binaries, as `wasm-tools component new` writes them: told apart from core
//! modules by their preamble, never read as one. The one shape this host runs, one core
//! module that imports nothing (a `wasm32-unknown-unknown` build wrapped as a component),
//! is unwrapped into that module and the WIT world of the component's exports; any other is
//! refused in one line saying what it holds and what would run instead.

use ::abi::check::wasmparser::{ComponentTypeRef, Parser, Payload, TypeBounds};

use crate::canonical::Wit;
use crate::error::Problems;

/// Whether `bytes` begin as a component does: Wasm's magic, then a version whose layer
/// field is 1 (a core module's is 0).
pub(crate) fn is_component(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(b"\0asm") && bytes.get(6..8) == Some(&[1, 0])
}

/// A component's one core module, and the world of the component's exports.
pub(crate) struct Unwrapped<'a> {
    pub(crate) core: &'a [u8],
    pub(crate) wit: Wit,
}

/// What a component holds, counted at its top level.
#[derive(Default)]
struct Contents {
    modules: Vec<std::ops::Range<usize>>,
    /// Whether a core module sits inside a nested component.
    nested_module: bool,
    imports: Vec<String>,
    module_imports: Vec<String>,
}

/// The component `bytes` as the core module it wraps and its world; or, for a component of
/// any other shape, one sentence saying what it holds and what would run instead.
pub(crate) fn unwrap(bytes: &[u8]) -> Result<Unwrapped<'_>, String> {
    let unreadable =
        |e: &dyn std::fmt::Display| format!("a component binary that cannot be read: {e}");
    let mut found = Contents::default();
    // parse_all walks into nested modules and components: `depth` says how far.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| unreadable(&e))? {
            // Every core module, at any depth, is counted: only one may run. Nested
            // components without one are how wit-component names exported interfaces'
            // types.
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                let range = usize::try_from(unchecked_range.start).unwrap_or(usize::MAX)
                    ..usize::try_from(unchecked_range.end).unwrap_or(usize::MAX);
                found.modules.push(range);
                found.nested_module |= depth > 0;
                depth += 1;
            }
            Payload::ComponentSection { .. } => depth += 1,
            // Imported types (`eq` bounds) name the world's types; any other import needs
            // something this host would have to provide.
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| unreadable(&e))?;
                    if !matches!(import.ty, ComponentTypeRef::Type(TypeBounds::Eq(_))) {
                        found.imports.push(import.name.name.to_string());
                    }
                }
            }
            Payload::ImportSection(reader) if depth == 1 => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| unreadable(&e))?;
                    found
                        .module_imports
                        .push(format!("{}.{}", import.module, import.name));
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let runs = found.modules.len() == 1
        && !found.nested_module
        && found.imports.is_empty()
        && found.module_imports.is_empty();
    if !runs {
        let mut held = vec![format!(
            "{} core module{}",
            found.modules.len(),
            if found.modules.len() == 1 { "" } else { "s" }
        )];
        if found.nested_module {
            held.push("core modules inside nested components".into());
        }
        if !found.imports.is_empty() {
            held.push(format!("imports {}", Problems(&found.imports, ", ")));
        }
        if !found.module_imports.is_empty() {
            held.push(format!(
                "its core module imports {}",
                Problems(&found.module_imports, ", ")
            ));
        }
        return Err(format!(
            "a component binary ({}); this host runs a component only when it wraps one core \
             module that imports nothing (`wasm-tools component new` on a \
             wasm32-unknown-unknown build): run the core module it was made from instead \
             (for a wasm32-wasip1 build, the module before `component new`)",
            held.join("; ")
        ));
    }
    let core = found
        .modules
        .first()
        .and_then(|range| bytes.get(range.clone()))
        .ok_or_else(|| unreadable(&"its core module lies past its end"))?;
    let wit = match wit_component::decode(bytes).map_err(|e| unreadable(&format!("{e:#}")))? {
        wit_component::DecodedWasm::Component(resolve, world) => Wit::new(resolve, world),
        wit_component::DecodedWasm::WitPackage(..) => {
            return Err("a WIT package encoded as a component, which holds no code".into());
        }
    };
    Ok(Unwrapped { core, wit })
}
