//! The post-link rewrite of the guest module: what rustc and `wasm-ld` cannot emit.
//!
//! 1. **Multi-value exports.** rustc returns a `#[repr(C)]` struct through a hidden out-pointer,
//!    so `extern "C" fn load() -> Pair` links as `(func (param i32))`. For each export named in
//!    [`Plan::multi_value`], a wrapper `() -> (results...)` is appended that reserves a frame on
//!    the shadow stack (`__stack_pointer`), calls the original with the frame's address, loads
//!    the fields, and pops the frame. The export then names the wrapper; the original stays as
//!    an internal function. The wrapper zeroes its frame before it returns, so a call leaves
//!    memory as it was. This is what wasm-bindgen's multi-value transform does, written
//!    here with `wasmparser` + `wasm-encoder` so that nothing but the needed sections changes.
//! 2. **Only the ABI's exports.** rustc also exports `__data_end` and `__heap_base`; exports
//!    not in [`Plan::keep_exports`] are dropped.
//! 3. **No shipped zeros.** Fresh linear memory is zero, so long runs of zeros inside active
//!    data segments (a 4 KiB buffer that holds 13 bytes) are cut out, splitting the segment.
//!    Done only when it cannot change the initial memory: the memory is not imported, every
//!    active segment has a constant offset, no two segments overlap, and no code refers to
//!    segments by index (`memory.init`, `data.drop`).
//! 4. **No custom sections.** Names, producers, target features and debug info are dropped.

use std::collections::BTreeMap;
use std::ops::Range;

use anyhow::{Context, Result, bail, ensure};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasmparser::{
    DataKind, ExternalKind, FuncType, KnownCustom, Name, Operator, Parser, Payload, TypeRef,
    ValType,
};

/// Zero runs shorter than this stay in their segment: a new segment header costs about as
/// much (flags, `i32.const`, offset, `end`, length).
pub const MIN_ZERO_GAP: usize = 8;

/// What to do to a module.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// Exports to turn into multi-value functions, with the results their out-pointer
    /// function writes, in field order.
    pub multi_value: &'a [(&'a str, &'a [ValType])],
    /// The exports the result keeps; all others are dropped.
    pub keep_exports: &'a [&'a str],
}

/// What a rewrite changed, for the build log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Exports that became multi-value wrappers.
    pub wrapped: Vec<String>,
    /// Exports dropped because the plan does not keep them.
    pub dropped_exports: Vec<String>,
    /// Zero bytes no longer shipped in data segments.
    pub zeros_dropped: usize,
    /// Custom sections dropped, by name.
    pub dropped_custom: Vec<String>,
}

/// Everything the first pass learns about the module.
#[derive(Default)]
struct Module<'a> {
    /// Sections in order: id and the byte range of their contents.
    sections: Vec<(u8, Range<usize>)>,
    types: Vec<FuncType>,
    imported_funcs: u32,
    imported_globals: u32,
    imports_memory: bool,
    func_types: Vec<u32>,
    globals: Vec<wasmparser::GlobalType>,
    exports: Vec<(&'a str, ExternalKind, u32)>,
    bodies: Vec<Range<usize>>,
    refers_to_segments: bool,
    data: Vec<wasmparser::Data<'a>>,
    global_names: BTreeMap<u32, &'a str>,
    custom_names: Vec<String>,
}

/// Rewrites `wasm` according to `plan`. The result is a valid module (checked).
///
/// # Errors
/// When the input does not parse or validate, when an export of the plan is missing or is
/// not `(param i32)` with no results, or when no mutable `i32` global is named
/// `__stack_pointer` (the linker names it; keep the name section until this step).
pub fn rewrite(wasm: &[u8], plan: &Plan<'_>) -> Result<(Vec<u8>, Report)> {
    wasmparser::Validator::new()
        .validate_all(wasm)
        .context("the linked module is not valid Wasm")?;
    let m = Module::parse(wasm)?;
    let mut report = Report {
        dropped_custom: m.custom_names.clone(),
        ..Report::default()
    };

    // Wrappers are appended after every existing function, so no index moves.
    let first_new_func = m.imported_funcs + u32::try_from(m.func_types.len())?;
    let first_new_type = u32::try_from(m.types.len())?;
    let mut wrappers = Vec::new(); // (export name, wrapped func, results)
    for (name, results) in plan.multi_value {
        let func = m.export_func(name)?;
        let ty = m.func_type(func)?;
        ensure!(
            ty.params() == [ValType::I32] && ty.results().is_empty(),
            "export `{name}` has type {}, expected (param i32) with no results: \
             a function that returns its struct through an out-pointer",
            show_type(ty)
        );
        wrappers.push((*name, func, *results));
    }
    let sp = if wrappers.is_empty() {
        0
    } else {
        m.stack_pointer()?
    };
    let new_index = |name: &str| {
        wrappers
            .iter()
            .position(|(n, ..)| *n == name)
            .map(|i| first_new_func + u32::try_from(i).unwrap_or(u32::MAX))
    };

    let data = m.data_plan(&mut report);
    let mut out = wasm_encoder::Module::new();
    let mut rt = RoundtripReencoder;
    for (id, range) in &m.sections {
        let raw = &wasm[range.clone()];
        match *id {
            1 => {
                let mut types = wasm_encoder::TypeSection::new();
                let reader = wasmparser::TypeSectionReader::new(reader_at(wasm, range))?;
                rt.parse_type_section(&mut types, reader)?;
                for (_, _, results) in &wrappers {
                    let results = results
                        .iter()
                        .map(|t| rt.val_type(*t))
                        .collect::<Result<Vec<_>, _>>()?;
                    types.ty().function([], results);
                }
                out.section(&types);
            }
            3 => {
                let mut funcs = wasm_encoder::FunctionSection::new();
                for &ty in &m.func_types {
                    funcs.function(ty);
                }
                for i in 0..wrappers.len() {
                    funcs.function(first_new_type + u32::try_from(i)?);
                }
                out.section(&funcs);
            }
            7 => {
                let mut exports = wasm_encoder::ExportSection::new();
                for &(name, kind, index) in &m.exports {
                    if !plan.keep_exports.contains(&name) {
                        report.dropped_exports.push(name.to_string());
                        continue;
                    }
                    let index = match new_index(name) {
                        Some(wrapper) if kind == ExternalKind::Func => {
                            report.wrapped.push(name.to_string());
                            wrapper
                        }
                        _ => index,
                    };
                    exports.export(name, rt.export_kind(kind)?, index);
                }
                out.section(&exports);
            }
            10 => {
                let mut code = wasm_encoder::CodeSection::new();
                for body in &m.bodies {
                    code.raw(&wasm[body.clone()]);
                }
                for (_, func, results) in &wrappers {
                    code.function(&wrapper_body(*func, sp, results)?);
                }
                out.section(&code);
            }
            11 => match &data {
                Some(segments) => {
                    let mut section = wasm_encoder::DataSection::new();
                    for (memory, offset, bytes) in segments {
                        let offset = wasm_encoder::ConstExpr::i32_const(*offset);
                        section.active(*memory, &offset, bytes.iter().copied());
                    }
                    out.section(&section);
                }
                None => {
                    out.section(&wasm_encoder::RawSection { id: *id, data: raw });
                }
            },
            12 => match &data {
                Some(segments) => {
                    out.section(&wasm_encoder::DataCountSection {
                        count: u32::try_from(segments.len())?,
                    });
                }
                None => {
                    out.section(&wasm_encoder::RawSection { id: *id, data: raw });
                }
            },
            0 => {} // custom sections: dropped
            _ => {
                out.section(&wasm_encoder::RawSection { id: *id, data: raw });
            }
        }
    }
    let missing: Vec<_> = plan
        .multi_value
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !report.wrapped.iter().any(|w| w == n))
        .collect();
    ensure!(
        missing.is_empty(),
        "exports {missing:?} are wrapped but not kept by the plan"
    );

    let bytes = out.finish();
    wasmparser::Validator::new()
        .validate_all(&bytes)
        .context("the rewritten module does not validate (a bug in the rewrite)")?;
    Ok((bytes, report))
}

fn reader_at<'a>(wasm: &'a [u8], range: &Range<usize>) -> wasmparser::BinaryReader<'a> {
    wasmparser::BinaryReader::new(&wasm[range.clone()], range.start as u64)
}

impl<'a> Module<'a> {
    fn parse(wasm: &'a [u8]) -> Result<Self> {
        let mut m = Module::default();
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload?;
            if let Some((id, range)) = payload.as_section() {
                let range = usize::try_from(range.start)?..usize::try_from(range.end)?;
                m.sections.push((id, range));
            }
            match payload {
                Payload::TypeSection(reader) => {
                    for ty in reader.into_iter_err_on_gc_types() {
                        m.types.push(ty?);
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        match import?.ty {
                            TypeRef::Func(_) | TypeRef::FuncExact(_) => m.imported_funcs += 1,
                            TypeRef::Global(g) => {
                                m.imported_globals += 1;
                                m.globals.push(g);
                            }
                            TypeRef::Memory(_) => m.imports_memory = true,
                            TypeRef::Table(_) | TypeRef::Tag(_) => {}
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        m.func_types.push(ty?);
                    }
                }
                Payload::GlobalSection(reader) => {
                    for global in reader {
                        m.globals.push(global?.ty);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        m.exports.push((export.name, export.kind, export.index));
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let range = body.range();
                    m.bodies
                        .push(usize::try_from(range.start)?..usize::try_from(range.end)?);
                    let mut ops = body.get_operators_reader()?;
                    while !ops.eof() {
                        if matches!(
                            ops.read()?,
                            Operator::MemoryInit { .. } | Operator::DataDrop { .. }
                        ) {
                            m.refers_to_segments = true;
                        }
                    }
                }
                Payload::DataSection(reader) => {
                    for data in reader {
                        m.data.push(data?);
                    }
                }
                Payload::CustomSection(reader) => {
                    m.custom_names.push(reader.name().to_string());
                    if let KnownCustom::Name(names) = reader.as_known() {
                        for name in names {
                            if let Name::Global(map) = name? {
                                for naming in map {
                                    let naming = naming?;
                                    m.global_names.insert(naming.index, naming.name);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(m)
    }

    fn export_func(&self, name: &str) -> Result<u32> {
        match self.exports.iter().find(|(n, ..)| *n == name) {
            Some((_, ExternalKind::Func, index)) => Ok(*index),
            Some((_, kind, _)) => {
                bail!("export `{name}` is a {}, not a function", kind_name(*kind))
            }
            None => bail!("the module has no export `{name}`"),
        }
    }

    fn func_type(&self, func: u32) -> Result<&FuncType> {
        let defined = func.checked_sub(self.imported_funcs).with_context(|| {
            format!("function {func} is imported; only defined functions can be wrapped")
        })?;
        let ty = self.func_types[usize::try_from(defined)?];
        Ok(&self.types[usize::try_from(ty)?])
    }

    /// The shadow-stack pointer: the global the linker names `__stack_pointer`.
    fn stack_pointer(&self) -> Result<u32> {
        let (&index, _) = self
            .global_names
            .iter()
            .find(|(_, name)| **name == "__stack_pointer")
            .context(
                "no global is named `__stack_pointer`; the rewrite needs the linker's name \
                 section (build without stripping symbols)",
            )?;
        let ty = self.globals[usize::try_from(index)?];
        ensure!(
            ty.mutable && ty.content_type == ValType::I32 && index >= self.imported_globals,
            "`__stack_pointer` (global {index}) is not a defined mutable i32"
        );
        Ok(index)
    }

    /// The active segments with their long zero runs cut out, or `None` to keep the data
    /// section as it is.
    fn data_plan(&self, report: &mut Report) -> Option<Vec<(u32, i32, Vec<u8>)>> {
        if self.data.is_empty() || self.imports_memory || self.refers_to_segments {
            return None;
        }
        let mut segments = Vec::new();
        for data in &self.data {
            let DataKind::Active {
                memory_index,
                offset_expr,
            } = &data.kind
            else {
                return None;
            };
            let offset = const_i32(offset_expr)?;
            segments.push((
                *memory_index,
                u32::from_ne_bytes(offset.to_ne_bytes()),
                data.data,
            ));
        }
        let mut sorted: Vec<_> = segments
            .iter()
            .map(|(mem, start, bytes)| (*mem, u64::from(*start), bytes.len()))
            .collect();
        sorted.sort_unstable();
        let overlap = sorted.windows(2).any(|w| {
            let ((m0, s0, l0), (m1, s1, _)) = (w[0], w[1]);
            m0 == m1 && s0 + u64::try_from(l0).unwrap_or(u64::MAX) > s1
        });
        if overlap {
            return None;
        }
        let mut out = Vec::new();
        let mut zeros_dropped = 0;
        for (memory, offset, bytes) in segments {
            zeros_dropped += bytes.len();
            for (start, run) in nonzero_runs(bytes, MIN_ZERO_GAP) {
                let at = offset.checked_add(u32::try_from(start).ok()?)?;
                out.push((memory, i32::from_ne_bytes(at.to_ne_bytes()), run.to_vec()));
                zeros_dropped -= run.len();
            }
        }
        report.zeros_dropped = zeros_dropped;
        Some(out)
    }
}

/// `i32.const N; end`, the only offset form the rewrite moves.
fn const_i32(expr: &wasmparser::ConstExpr<'_>) -> Option<i32> {
    let mut ops = expr.get_operators_reader();
    let Ok(Operator::I32Const { value }) = ops.read() else {
        return None;
    };
    matches!(ops.read(), Ok(Operator::End)).then_some(value)?;
    ops.eof().then_some(value)
}

/// The parts of `bytes` left after cutting leading and trailing zeros and every zero run of
/// at least `min_gap` bytes: `(start within bytes, run)`.
pub fn nonzero_runs(bytes: &[u8], min_gap: usize) -> Vec<(usize, &[u8])> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i; // one past the last non-zero byte of this run
        while i < bytes.len() {
            if bytes[i] != 0 {
                i += 1;
                end = i;
            } else {
                let zeros = bytes[i..].iter().take_while(|b| **b == 0).count();
                if zeros >= min_gap || i + zeros == bytes.len() {
                    break;
                }
                i += zeros;
            }
        }
        runs.push((start, &bytes[start..end]));
    }
    runs
}

/// `() -> (results...)`: calls `func` with a shadow-stack frame as its out-pointer and
/// returns the fields it wrote there, laid out as a `#[repr(C)]` struct.
fn wrapper_body(func: u32, sp: u32, results: &[ValType]) -> Result<wasm_encoder::Function> {
    let mut fields = Vec::new(); // (offset, type)
    let mut size = 0u64;
    for ty in results {
        let width: u64 = match ty {
            ValType::I32 | ValType::F32 => 4,
            ValType::I64 | ValType::F64 => 8,
            other => bail!("a multi-value wrapper cannot return {other}"),
        };
        let offset = size.next_multiple_of(width);
        fields.push((offset, *ty, width.trailing_zeros()));
        size = offset + width;
    }
    // The shadow stack stays 16-byte aligned, as the C ABI for wasm32 keeps it.
    let frame = i32::try_from(size.next_multiple_of(16))?;

    let mut f = wasm_encoder::Function::new([(1, wasm_encoder::ValType::I32)]);
    let frame_ptr = 0;
    let mut ins = f.instructions();
    ins.global_get(sp)
        .i32_const(frame)
        .i32_sub()
        .local_tee(frame_ptr)
        .global_set(sp)
        .local_get(frame_ptr)
        .call(func);
    for (offset, ty, align) in fields {
        let arg = wasm_encoder::MemArg {
            offset,
            align,
            target: wasm_encoder::MemArgTarget::Memory(0),
            ordering: None,
        };
        ins.local_get(frame_ptr);
        match ty {
            ValType::I32 => ins.i32_load(arg),
            ValType::I64 => ins.i64_load(arg),
            ValType::F32 => ins.f32_load(arg),
            _ => ins.f64_load(arg),
        };
    }
    // Zero the frame before popping it, so that a call leaves memory as it found it (the
    // stack below the pointer starts out zero): the host can compare snapshots across calls.
    // (Plain stores, not `memory.fill`: a host that meters bulk memory operations by the
    // most they could move should not charge this call for one.)
    for offset in (0..u64::try_from(frame)?).step_by(8) {
        let arg = wasm_encoder::MemArg {
            offset,
            align: 3,
            target: wasm_encoder::MemArgTarget::Memory(0),
            ordering: None,
        };
        ins.local_get(frame_ptr).i64_const(0).i64_store(arg);
    }
    ins.local_get(frame_ptr)
        .i32_const(frame)
        .i32_add()
        .global_set(sp)
        .end();
    Ok(f)
}

/// The name the Wasm text format gives an export's kind. `abi::check::kind_name` says the
/// same of the wasmparser wasmer compiles with; this one takes the newer wasmparser that
/// the rewrite's `wasm-encoder` re-encodes with, whose `ExternalKind` is another type.
pub fn kind_name(kind: ExternalKind) -> &'static str {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => "func",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

/// A function type as the Wasm text format writes it: `(func (param i32) (result i32 i32))`.
pub fn show_type(ty: &FuncType) -> String {
    abi::FuncText {
        params: ty.params(),
        results: ty.results(),
        shown: usize::MAX,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmparser::ValType::{F64, I32, I64};

    /// A linked-module look-alike: `load` writes (offset, len) through its out-pointer.
    const ZEROS: usize = 99;

    fn out_pointer() -> Vec<u8> {
        wasm(&format!(
            r#"(module
                 (memory (export "memory") 1 1)
                 (global $__stack_pointer (mut i32) (i32.const 1024))
                 (global (export "__data_end") i32 (i32.const 2048))
                 (func $load (export "load") (param i32)
                   local.get 0 i32.const 1040 i32.store
                   local.get 0 i32.const 13 i32.store offset=4)
                 (func (export "other") (result i32) i32.const 7)
                 (data (i32.const 1040) "Hello, World!{}\0d"))"#,
            "\\00".repeat(ZEROS)
        ))
    }

    const PLAN: Plan<'static> = Plan {
        multi_value: &[("load", &[I32, I32])],
        keep_exports: &["memory", "load", "other"],
    };

    fn wasm(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).expect("test WAT parses")
    }

    /// Export name -> (kind, type as text).
    fn exports(wasm: &[u8]) -> Vec<(String, String)> {
        let mut types = Vec::new();
        let mut funcs = Vec::new();
        let mut out = Vec::new();
        for p in Parser::new(0).parse_all(wasm) {
            match p.unwrap() {
                Payload::TypeSection(r) => {
                    types.extend(r.into_iter_err_on_gc_types().map(Result::unwrap))
                }
                Payload::FunctionSection(r) => funcs.extend(r.into_iter().map(Result::unwrap)),
                Payload::ExportSection(r) => {
                    for e in r {
                        let e = e.unwrap();
                        let ty = match e.kind {
                            ExternalKind::Func => {
                                show_type(&types[funcs[e.index as usize] as usize])
                            }
                            kind => kind_name(kind).to_string(),
                        };
                        out.push((e.name.to_string(), ty));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The initial linear memory the module's active data segments produce.
    fn memory_image(wasm: &[u8]) -> Vec<u8> {
        let mut mem = vec![0u8; 65536];
        for p in Parser::new(0).parse_all(wasm) {
            if let Payload::DataSection(r) = p.unwrap() {
                for d in r {
                    let d = d.unwrap();
                    let DataKind::Active { offset_expr, .. } = d.kind else {
                        panic!("passive")
                    };
                    let at = usize::try_from(const_i32(&offset_expr).unwrap()).unwrap();
                    mem[at..at + d.data.len()].copy_from_slice(d.data);
                }
            }
        }
        mem
    }

    fn section_ids(wasm: &[u8]) -> Vec<u8> {
        Parser::new(0)
            .parse_all(wasm)
            .filter_map(|p| p.unwrap().as_section().map(|(id, _)| id))
            .collect()
    }

    #[test]
    fn wraps_out_pointer_export_as_multi_value() {
        let input = out_pointer();
        let (out, report) = rewrite(&input, &PLAN).unwrap();
        assert_eq!(
            exports(&out),
            [
                ("memory".to_string(), "memory".to_string()),
                ("load".to_string(), "(func (result i32 i32))".to_string()),
                ("other".to_string(), "(func (result i32))".to_string()),
            ]
        );
        assert_eq!(report.wrapped, ["load"]);
        assert_eq!(report.dropped_exports, ["__data_end"]);
    }

    #[test]
    fn wrapper_calls_original_with_a_stack_frame_and_loads_fields() {
        let (out, _) = rewrite(&out_pointer(), &PLAN).unwrap();
        let wrapper = last_body(&out);
        // Push a 16-byte frame, call func 0 with it, load offset 0 and 4, zero and pop the frame.
        for expected in [
            "GlobalGet { global_index: 0 } I32Const { value: 16 } I32Sub LocalTee { local_index: 0 } GlobalSet { global_index: 0 }",
            "LocalGet { local_index: 0 } Call { function_index: 0 }",
            "I32Load { memarg: MemArg { align: 2, max_align: 2, offset: 0",
            "I32Load { memarg: MemArg { align: 2, max_align: 2, offset: 4",
            "LocalGet { local_index: 0 } I64Const { value: 0 } I64Store { memarg: MemArg { align: 3, max_align: 3, offset: 0",
            "LocalGet { local_index: 0 } I64Const { value: 0 } I64Store { memarg: MemArg { align: 3, max_align: 3, offset: 8",
            "I32Const { value: 16 } I32Add GlobalSet { global_index: 0 } End",
        ] {
            assert!(
                wrapper.contains(expected),
                "wrapper lacks `{expected}`:\n{wrapper}"
            );
        }
    }

    /// The operators of the last function body, as `Debug` text.
    fn last_body(wasm: &[u8]) -> String {
        let body = Parser::new(0)
            .parse_all(wasm)
            .filter_map(|p| match p.unwrap() {
                Payload::CodeSectionEntry(b) => Some(b),
                _ => None,
            })
            .last()
            .unwrap();
        let ops: Vec<String> = body
            .get_operators_reader()
            .unwrap()
            .into_iter()
            .map(|op| format!("{:?}", op.unwrap()))
            .collect();
        ops.join(" ")
    }

    #[test]
    fn mixed_result_fields_follow_repr_c_layout() {
        let input = wasm(
            r#"(module
                 (memory 1)
                 (global $__stack_pointer (mut i32) (i32.const 1024))
                 (func (export "f") (param i32)))"#,
        );
        let plan = Plan {
            multi_value: &[("f", &[I32, I64, F64])],
            keep_exports: &["f"],
        };
        let (out, _) = rewrite(&input, &plan).unwrap();
        assert_eq!(
            exports(&out),
            [("f".to_string(), "(func (result i32 i64 f64))".to_string())]
        );
        // i32 at 0, i64 at 8 (aligned), f64 at 16: a 24-byte struct in a 32-byte frame.
        let ops = last_body(&out);
        assert!(ops.contains("I32Const { value: 32 } I32Sub"), "{ops}");
        assert!(
            ops.contains("I32Load { memarg: MemArg { align: 2, max_align: 2, offset: 0"),
            "{ops}"
        );
        assert!(
            ops.contains("I64Load { memarg: MemArg { align: 3, max_align: 3, offset: 8"),
            "{ops}"
        );
        assert!(
            ops.contains("F64Load { memarg: MemArg { align: 3, max_align: 3, offset: 16"),
            "{ops}"
        );
    }

    #[test]
    fn drops_zero_runs_without_changing_initial_memory() {
        let input = out_pointer();
        let (out, report) = rewrite(&input, &PLAN).unwrap();
        assert_eq!(memory_image(&out), memory_image(&input));
        assert_eq!(report.zeros_dropped, ZEROS);
        // The data section shrinks by the zeros, less one segment header (offset, length).
        let data_size = |wasm: &[u8]| {
            Parser::new(0)
                .parse_all(wasm)
                .find_map(|p| match p.unwrap().as_section() {
                    Some((11, range)) => Some(range.end - range.start),
                    _ => None,
                })
                .unwrap()
        };
        let saved = data_size(&input) - data_size(&out);
        assert!(
            saved + 8 >= ZEROS as u64,
            "saved {saved} bytes of {ZEROS} zeros"
        );
    }

    #[test]
    fn drops_custom_sections() {
        let input = out_pointer();
        assert!(
            section_ids(&input).contains(&0),
            "the test module has a name section"
        );
        let (out, report) = rewrite(&input, &PLAN).unwrap();
        assert!(!section_ids(&out).contains(&0));
        assert_eq!(report.dropped_custom, ["name"]);
    }

    #[test]
    fn keeps_data_when_code_refers_to_segments() {
        let input = wasm(
            r#"(module
                 (memory 1)
                 (global $__stack_pointer (mut i32) (i32.const 1024))
                 (func (export "load") (param i32)
                   i32.const 0 i32.const 0 i32.const 1 memory.init 0)
                 (data (i32.const 0) "a\00\00\00\00\00\00\00\00\00\00\00\00b"))"#,
        );
        let (out, report) = rewrite(
            &input,
            &Plan {
                multi_value: &[("load", &[I32])],
                keep_exports: &["load"],
            },
        )
        .unwrap();
        assert_eq!(report.zeros_dropped, 0);
        assert_eq!(memory_image(&out), memory_image(&input));
    }

    #[test]
    fn keeps_data_when_segments_overlap() {
        let input = wasm(
            r#"(module
                 (memory 1)
                 (data (i32.const 0) "abcdefghijklmnopqrstuvwxyz")
                 (data (i32.const 4) "\00\00\00\00\00\00\00\00\00\00\00\00"))"#,
        );
        let (out, report) = rewrite(
            &input,
            &Plan {
                multi_value: &[],
                keep_exports: &[],
            },
        )
        .unwrap();
        assert_eq!(report.zeros_dropped, 0);
        assert_eq!(memory_image(&out), memory_image(&input));
    }

    #[test]
    fn refuses_wrong_shapes_with_a_clear_message() {
        let cases = [
            (
                r#"(module (global $__stack_pointer (mut i32) (i32.const 0)))"#,
                "no export `load`",
            ),
            (
                r#"(module (memory (export "load") 1) (global $__stack_pointer (mut i32) (i32.const 0)))"#,
                "export `load` is a memory, not a function",
            ),
            (
                r#"(module (global $__stack_pointer (mut i32) (i32.const 0))
                     (func (export "load") (param i32) (result i32) i32.const 0))"#,
                "export `load` has type (func (param i32) (result i32)), expected (param i32) with no results",
            ),
            (
                r#"(module (global $sp (mut i32) (i32.const 0)) (func (export "load") (param i32)))"#,
                "no global is named `__stack_pointer`",
            ),
            (
                r#"(module (global $__stack_pointer i32 (i32.const 0)) (func (export "load") (param i32)))"#,
                "is not a defined mutable i32",
            ),
        ];
        for (wat, message) in cases {
            let err = rewrite(&wasm(wat), &PLAN).unwrap_err();
            assert!(format!("{err:#}").contains(message), "{wat}\n=> {err:#}");
        }
        let err = rewrite(b"\0asm\x01\0\0\0\x01", &PLAN).unwrap_err();
        assert!(format!("{err:#}").contains("not valid Wasm"), "{err:#}");
    }

    #[test]
    fn nonzero_runs_cut_long_gaps_only() {
        let gap = |n| vec![0u8; n];
        let bytes = [&gap(3)[..], b"ab", &gap(7), b"c", &gap(8), b"d", &gap(20)].concat();
        let runs = nonzero_runs(&bytes, 8);
        assert_eq!(runs, vec![(3, &bytes[3..13]), (21, &b"d"[..])]);
        assert!(nonzero_runs(&gap(100), 8).is_empty());
        assert!(nonzero_runs(&[], 8).is_empty());
        assert_eq!(nonzero_runs(b"xyz", 8), vec![(0, &b"xyz"[..])]);
    }
}
