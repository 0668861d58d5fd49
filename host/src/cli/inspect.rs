//! `memhost inspect [MODULE] [--json]`: what a module offers, read from its bytes and its
//! admission, without running any of its code: which ABIs it speaks, its WIT world's
//! functions with their signatures, its imports, exports and memories. A module the host
//! refuses is described all the same, then the refusal is the error (exit 3).

use std::fmt::Write as _;
use std::path::Path;

use abi::check::wasmparser::{ExternalKind, TypeRef};
use abi::check::{ParseError, Summary, kind_name};
use anyhow::Result;
use memhost::GuestModule;

use crate::args::Run;
use crate::transform::write_stdout;

/// What is printed, text or JSON.
struct Report {
    module: String,
    size: u64,
    /// `core module`, `component`, `WAT text` (assembled), or why it is neither.
    form: String,
    imports: Vec<String>,
    exports: Vec<String>,
    /// `min` and `max` pages of each memory, imported ones first.
    memories: Vec<(u64, Option<u64>)>,
    /// Conventions it was admitted with.
    abis: Vec<&'static str>,
    world: Option<String>,
    /// Each function of the world and its WIT signature.
    functions: Vec<(String, String)>,
    /// Every function of the world, imported and exported, as WIT: read from the module's
    /// `component-type` section, whether or not the module is admitted.
    world_functions: Vec<String>,
    refused: Option<String>,
}

pub fn run(run: &Run, json: bool) -> Result<()> {
    let path = run.module_path()?;
    let admitted = run.module(&path);
    let mut report = Report {
        module: path.display().to_string(),
        size: 0,
        form: String::new(),
        imports: Vec::new(),
        exports: Vec::new(),
        memories: Vec::new(),
        abis: Vec::new(),
        world: None,
        functions: Vec::new(),
        world_functions: Vec::new(),
        refused: None,
    };
    read_bytes(&path, run.max_module_bytes.0, &mut report);
    match &admitted {
        Ok(module) => describe(module, &mut report),
        Err(e) => report.refused = Some(crate::one_line(e.as_ref())),
    }
    let text = if json {
        to_json(&report)
    } else {
        to_text(&report)
    };
    write_stdout(text.as_bytes())?;
    admitted.map(|_| ())
}

/// The parts of the module's bytes that need no admission: size, form, imports, exports,
/// memories. Bytes over the size cap, or unreadable, leave them empty (admission says why).
fn read_bytes(path: &Path, cap: u64, report: &mut Report) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    report.size = meta.len();
    if !meta.is_file() || meta.len() > cap {
        return;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    let (bytes, text) = match wat::parse_bytes(&bytes) {
        Ok(core) if !bytes.starts_with(b"\0asm") => (core.into_owned(), true),
        _ => (bytes, false),
    };
    match Summary::parse(&bytes) {
        Ok(s) => {
            report.form = if text { "WAT text" } else { "core module" }.into();
            report.imports = s
                .imports
                .iter()
                .map(|i| format!("{}.{} ({})", i.module, i.name, kind_of(i.ty)))
                .collect();
            report.exports = s
                .exports
                .iter()
                .map(|(name, kind, _)| format!("{name} ({})", kind_name(*kind)))
                .collect();
            report.memories = s.memories.iter().map(|m| (m.initial, m.maximum)).collect();
            if let Ok(Some(wit)) = memhost::Wit::from_module_bytes(&bytes) {
                report.world = Some(wit.world_name().to_string());
                report.world_functions = wit.signatures();
            }
        }
        Err(ParseError::Component) => report.form = "component".into(),
        Err(ParseError::Wasm(_)) => report.form = "not Wasm".into(),
    }
}

/// The kind of what an import brings in.
fn kind_of(ty: TypeRef) -> &'static str {
    kind_name(match ty {
        TypeRef::Func(_) | TypeRef::FuncExact(_) => ExternalKind::Func,
        TypeRef::Table(_) => ExternalKind::Table,
        TypeRef::Memory(_) => ExternalKind::Memory,
        TypeRef::Global(_) => ExternalKind::Global,
        TypeRef::Tag(_) => ExternalKind::Tag,
    })
}

/// What admission found: the conventions, the world and its functions.
fn describe(module: &GuestModule, report: &mut Report) {
    if module.speaks_guide_abi() {
        let extras = module.extras();
        report.abis.push("guide (mem, load)");
        if extras.set_len {
            report.abis.push("static buffer (capacity, set_len)");
        }
        if extras.cabi_realloc && extras.adopt {
            report.abis.push("allocation (cabi_realloc, adopt)");
        }
        if extras.transform {
            report.abis.push("guide transform");
        }
    }
    if module.uses_wasi() {
        report.abis.push("WASI preview 1 (no files, no sockets)");
    }
    if let Some(world) = module.world_name() {
        report.abis.push("canonical ABI (WIT world)");
        report.world = Some(world.to_string());
        report.functions = module
            .functions()
            .into_iter()
            .map(|f| (f.to_string(), module.signature(f).unwrap_or_default()))
            .collect();
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn to_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "module:    {} ({} bytes, {})",
        r.module, r.size, r.form
    );
    let abis: Vec<String> = r.abis.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "speaks:    {}", list(&abis));
    let memories: Vec<String> = r
        .memories
        .iter()
        .map(|(min, max)| match max {
            Some(max) => format!("{min} to {max} pages of 64 KiB"),
            None => format!("{min} pages of 64 KiB, no maximum"),
        })
        .collect();
    let _ = writeln!(out, "memories:  {}", list(&memories));
    let _ = writeln!(out, "imports:   {}", list(&r.imports));
    let _ = writeln!(out, "exports:   {}", list(&r.exports));
    if let Some(world) = &r.world {
        let _ = writeln!(out, "world {world}:");
        // A refused module's world, as its section says it (imports included), else the
        // functions admission bound.
        if r.refused.is_some() && !r.world_functions.is_empty() {
            for signature in &r.world_functions {
                let _ = writeln!(out, "  {signature};");
            }
        } else {
            for (_, signature) in &r.functions {
                let _ = writeln!(out, "  {signature};");
            }
        }
    }
    if let Some(why) = &r.refused {
        let _ = writeln!(out, "refused:   {why}");
    }
    out
}

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| json_str(s)).collect();
    format!("[{}]", items.join(", "))
}

fn to_json(r: &Report) -> String {
    let abis: Vec<String> = r.abis.iter().map(ToString::to_string).collect();
    let memories: Vec<String> = r
        .memories
        .iter()
        .map(|(min, max)| {
            let max = max.map_or_else(|| "null".to_string(), |m| m.to_string());
            format!("{{\"min_pages\": {min}, \"max_pages\": {max}}}")
        })
        .collect();
    let functions: Vec<String> = r
        .functions
        .iter()
        .map(|(name, sig)| {
            format!(
                "{{\"name\": {}, \"signature\": {}}}",
                json_str(name),
                json_str(sig)
            )
        })
        .collect();
    let opt = |s: &Option<String>| s.as_deref().map_or_else(|| "null".into(), json_str);
    format!(
        "{{\"module\": {}, \"size\": {}, \"form\": {}, \"speaks\": {}, \"memories\": [{}], \
         \"imports\": {}, \"exports\": {}, \"world\": {}, \"functions\": [{}], \
         \"world_functions\": {}, \"refused\": {}}}\n",
        json_str(&r.module),
        r.size,
        json_str(&r.form),
        json_list(&abis),
        memories.join(", "),
        json_list(&r.imports),
        json_list(&r.exports),
        opt(&r.world),
        functions.join(", "),
        json_list(&r.world_functions),
        opt(&r.refused),
    )
}
