//! Large modules, generated at test time: many functions of code shaped like a compiler's
//! output (locals, arithmetic, loads and stores, branches, calls).

use wasm_encoder::{
    BlockType, Encode as _, EntityType, ExportKind, ExportSection, Function, FunctionSection,
    ImportSection, Instruction as I, MemArg, MemorySection, MemoryType, Module, TypeSection,
    ValType,
};

/// What the generated module offers a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// `mem` and `load`, nothing imported: compiles and runs.
    Follows,
    /// Imports a function and exports no `load`: refused on its bytes.
    Breaks,
}

/// Bytes of code per generated function.
const FUNCTION_BYTES: usize = 1024;

/// A module with at least `code_bytes` of function bodies, in memory.
pub fn module(code_bytes: usize, abi: Abi) -> Vec<u8> {
    let mut out = Vec::new();
    write_module(&mut out, code_bytes, abi).expect("writing to a Vec does not fail");
    out
}

/// Writes a module with at least `code_bytes` of function bodies to `out`, one function
/// at a time: the writer never holds more than a few KiB (so that a test that measures a
/// child process does not lend it its own peak memory).
pub fn write_module(
    out: &mut impl std::io::Write,
    code_bytes: usize,
    abi: Abi,
) -> std::io::Result<()> {
    // First pass: how many functions, and the code section's size.
    let imported = u32::from(abi == Abi::Breaks);
    let (mut functions, mut code_size) = (0u32, 0usize);
    while code_size < code_bytes || functions == 0 {
        code_size += encoded(&body(imported + functions, imported)).len();
        functions += 1;
    }
    let load = (abi == Abi::Follows).then(|| {
        // `load` calls the first function and returns (0, 0).
        let mut load = Function::new([]);
        for i in [
            I::I32Const(1),
            I::I32Const(2),
            I::Call(imported),
            I::Drop,
            I::I32Const(0),
            I::I32Const(0),
            I::End,
        ] {
            load.instruction(&i);
        }
        load
    });
    let count = functions + u32::from(load.is_some());
    code_size += load.as_ref().map_or(0, |f| encoded(f).len());

    let mut types = TypeSection::new();
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]);
    types.ty().function([], [ValType::I32, ValType::I32]);
    let mut imports = ImportSection::new();
    imports.import("env", "log", EntityType::Function(0));
    let mut funcs = FunctionSection::new();
    for _ in 0..functions {
        funcs.function(0);
    }
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("mem", ExportKind::Memory, 0);
    if load.is_some() {
        funcs.function(1);
        exports.export("load", ExportKind::Func, imported + functions);
    }
    let mut head = Module::new();
    head.section(&types);
    if abi == Abi::Breaks {
        head.section(&imports);
    }
    head.section(&funcs).section(&memories).section(&exports);
    out.write_all(&head.finish())?;

    // The code section: id, size, count, then each body as it is made again.
    let mut prefix = Vec::new();
    count.encode(&mut prefix);
    let mut header = vec![10u8];
    (prefix.len() + code_size).encode(&mut header);
    out.write_all(&header)?;
    out.write_all(&prefix)?;
    for index in 0..functions {
        out.write_all(&encoded(&body(imported + index, imported)))?;
    }
    if let Some(load) = &load {
        out.write_all(&encoded(load))?;
    }
    Ok(())
}

/// A function body as the code section holds it: size-prefixed.
fn encoded(f: &Function) -> Vec<u8> {
    let mut bytes = Vec::new();
    f.encode(&mut bytes);
    bytes
}

/// About [`FUNCTION_BYTES`] of code: rounds of arithmetic on locals, a load and a store, a
/// conditional branch, and a call of an earlier function (or a bounded self-loop).
fn body(index: u32, first: u32) -> Function {
    let mut f = Function::new([(2, ValType::I32)]);
    let mem = MemArg {
        offset: 16,
        align: 2,
        memory_index: 0,
    };
    let mut round = 0u32;
    while f.byte_len() < FUNCTION_BYTES - 64 {
        for i in [
            I::LocalGet(0),
            I::LocalGet(1),
            I::I32Add,
            I::LocalSet(2),
            I::LocalGet(2),
            I::I32Const(0xfff0),
            I::I32And,
            I::I32Load(mem),
            I::LocalGet(0),
            I::I32Mul,
            I::LocalSet(1),
            I::Block(BlockType::Empty),
            I::LocalGet(1),
            I::I32Const(7),
            I::I32And,
            I::BrIf(0),
            I::LocalGet(0),
            I::I32Const(i32::try_from(round).unwrap_or(0)),
            I::I32Add,
            I::LocalSet(0),
            I::End,
            I::LocalGet(2),
            I::I32Const(0xfff0),
            I::I32And,
            I::LocalGet(1),
            I::I32Store(mem),
        ] {
            f.instruction(&i);
        }
        if index > first && round.is_multiple_of(4) {
            for i in [
                I::LocalGet(1),
                I::LocalGet(2),
                I::Call(first + (index - first + round) % (index - first)),
                I::LocalSet(3),
            ] {
                f.instruction(&i);
            }
        }
        round += 1;
    }
    for i in [I::LocalGet(1), I::LocalGet(3), I::I32Xor, I::End] {
        f.instruction(&i);
    }
    f
}
