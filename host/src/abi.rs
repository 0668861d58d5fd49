//! The guest ABI as the host sees it, checked on the compiled module before anything runs.
//!
//! wasmer's `get_typed_function` reports a mismatch only as `IncompatibleType`, one export at
//! a time. [`check`] reads `Module::exports()` and `Module::imports()` instead and reports
//! every problem at once, with the expected and the found types in Wasm text form.

use wasmer::{ExternType, FunctionType, Module, Type};

/// Exports the host calls when they are there, with their types.
pub const LOAD: (&str, &[Type], &[Type]) = ("load", &[], &[Type::I32, Type::I32]);
/// `capacity: () -> i32`.
pub const CAPACITY: (&str, &[Type], &[Type]) = ("capacity", &[], &[Type::I32]);
/// `set_len: (i32) -> i32`.
pub const SET_LEN: (&str, &[Type], &[Type]) = ("set_len", &[Type::I32], &[Type::I32]);
/// `transform: () -> i32`.
pub const TRANSFORM: (&str, &[Type], &[Type]) = ("transform", &[], &[Type::I32]);
/// The memory's export name.
pub const MEMORY: &str = "mem";

/// Which of the ABI's optional exports a guest has (with the right types).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// `capacity` is exported.
    pub capacity: bool,
    /// `set_len` is exported.
    pub set_len: bool,
    /// `transform` is exported.
    pub transform: bool,
}

/// Checks the module against the ABI: `mem` (a memory, shared or not) and `load` required;
/// `capacity`, `set_len` and `transform` optional but typed; no imports. Other exports are
/// ignored. Returns which optional exports exist, or every problem found.
pub fn check(module: &Module) -> Result<Extras, Vec<String>> {
    let mut problems = Vec::new();
    for import in module.imports() {
        problems.push(format!(
            "imports `{}.{}` {}, which the host does not provide",
            import.module(),
            import.name(),
            show_extern(import.ty())
        ));
    }

    let exports: Vec<_> = module.exports().collect();
    let find = |name: &str| exports.iter().find(|e| e.name() == name).map(|e| e.ty());

    match find(MEMORY) {
        Some(ExternType::Memory(_)) => {}
        Some(other) => problems.push(format!(
            "export `{MEMORY}` is {}, expected (memory)",
            show_extern(other)
        )),
        None => {
            let hint = exports
                .iter()
                .find(|e| matches!(e.ty(), ExternType::Memory(_)))
                .map(|e| format!(" (the module exports a memory as `{}`)", e.name()))
                .unwrap_or_default();
            problems.push(format!("missing export `{MEMORY}` (memory){hint}"));
        }
    }

    let mut func = |(name, params, results): (&str, &[Type], &[Type]), required: bool| -> bool {
        let want = FunctionType::new(params.to_vec(), results.to_vec());
        match find(name) {
            Some(ExternType::Function(found)) if *found == want => true,
            Some(found) => {
                problems.push(format!(
                    "export `{name}` is {}, expected {}",
                    show_extern(found),
                    show_func(&want)
                ));
                false
            }
            None => {
                if required {
                    problems.push(format!("missing export `{name}` {}", show_func(&want)));
                }
                false
            }
        }
    };
    func(LOAD, true);
    let optional = Extras {
        capacity: func(CAPACITY, false),
        set_len: func(SET_LEN, false),
        transform: func(TRANSFORM, false),
    };
    if problems.is_empty() {
        Ok(optional)
    } else {
        Err(problems)
    }
}

/// A type in Wasm text form: `(func (param i32) (result i32))`, `(memory 1 1)`.
pub fn show_extern(ty: &ExternType) -> String {
    match ty {
        ExternType::Function(f) => show_func(f),
        ExternType::Memory(m) => {
            let max = m.maximum.map(|p| format!(" {}", p.0)).unwrap_or_default();
            let shared = if m.shared { " shared" } else { "" };
            format!("(memory {}{max}{shared})", m.minimum.0)
        }
        ExternType::Global(g) => {
            if g.mutability.is_mutable() {
                format!("(global (mut {}))", type_name(g.ty))
            } else {
                format!("(global {})", type_name(g.ty))
            }
        }
        ExternType::Table(t) => format!("(table {})", type_name(t.ty)),
        ExternType::Tag(_) => "(tag)".to_string(),
    }
}

/// A function type in Wasm text form.
pub fn show_func(f: &FunctionType) -> String {
    let list = |kw: &str, tys: &[Type]| {
        if tys.is_empty() {
            String::new()
        } else {
            let names: Vec<_> = tys.iter().map(|t| type_name(*t)).collect();
            format!(" ({kw} {})", names.join(" "))
        }
    };
    format!(
        "(func{}{})",
        list("param", f.params()),
        list("result", f.results())
    )
}

fn type_name(ty: Type) -> &'static str {
    match ty {
        Type::I32 => "i32",
        Type::I64 => "i64",
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::V128 => "v128",
        Type::ExternRef => "externref",
        Type::FuncRef => "funcref",
        Type::ExceptionRef => "exnref",
    }
}
