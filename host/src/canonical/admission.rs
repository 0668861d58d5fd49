//! Admission of a module's WIT world, before anything is compiled: each exported
//! function laid out from the type table ([`FuncDef`]) and its core export's flattened
//! signature checked against the world, each import checked against what the host gives,
//! into the [`World`] that calls read.

use ::abi::check::Summary;
use ::abi::check::wasmparser::{ExternalKind, ValType as CoreType};
use wit_parser::{FunctionKind, Resolve, Type, WorldItem};

use super::wit::{Wit, imported_funcs, signature};
use super::{
    ComponentType, Flat, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, MEMORY, POST_RETURN, REALLOC, Types,
    WitType, WitWorld,
};

/// One exported function of the world, as the host calls it.
#[derive(Debug, Clone)]
pub(crate) struct FuncDef {
    /// Its name in the world, which is also its core export's name: `name`, or
    /// `ns:pkg/iface#name`.
    pub(crate) name: String,
    pub(crate) params: Vec<(String, Type)>,
    pub(crate) result: Option<Type>,
    /// How many flat values its parameters and its result take, before the limits send
    /// them through memory.
    pub(crate) flat_param_count: u32,
    pub(crate) flat_result_count: u32,
    /// Whether the module exports `cabi_post_NAME` for it.
    pub(crate) post_return: bool,
    /// Its WIT definition.
    pub(crate) func: wit_parser::Function,
    /// The parameters' types, their offsets when they go through memory, and the size
    /// and alignment of that tuple: worked out once, not at every call.
    pub(crate) param_types: Vec<WitType>,
    pub(crate) param_offsets: Box<[u32]>,
    pub(crate) params_layout: (u32, u32),
    /// The result's size and alignment, for its return area.
    pub(crate) result_layout: (u32, u32),
    /// The core export's types.
    pub(crate) core_params: Vec<Flat>,
    pub(crate) core_results: Vec<Flat>,
    /// Whether values of its parameters or result hold strings or lists.
    params_use_memory: bool,
    result_uses_memory: bool,
}

impl FuncDef {
    /// The result's type, as the typed traits take it.
    pub(crate) fn result_type(&self) -> Option<WitType> {
        self.result.map(WitType)
    }

    /// The function `f` named `name`, laid out from the world's `types`; or why this host
    /// cannot call it.
    fn new(name: String, f: &wit_parser::Function, types: &Types) -> Result<FuncDef, String> {
        let param_types: Vec<WitType> = f.params.iter().map(|p| WitType(p.ty)).collect();
        let params = types
            .fields(f.params.iter().map(|p| &p.ty))
            .map_err(|why| why.to_string())?;
        let result = match &f.result {
            Some(ty) => Some(types.get(ty).map_err(str::to_string)?),
            None => None,
        };
        let (result_flats, flat_result_count) =
            result.map_or((&[][..], 0), |r| (r.flats(), r.flat_count()));
        let flat_param_count = params.flat_count();
        Ok(FuncDef {
            name,
            params: f.params.iter().map(|p| (p.name.clone(), p.ty)).collect(),
            result: f.result,
            flat_param_count,
            flat_result_count,
            post_return: false,
            func: f.clone(),
            param_types,
            param_offsets: params.offsets().unwrap_or_default().into(),
            params_layout: (params.size, params.align),
            result_layout: result.map_or((0, 1), |r| (r.size, r.align)),
            core_params: if flat_param_count as usize > MAX_FLAT_PARAMS {
                vec![Flat::I32]
            } else {
                params.flats().to_vec()
            },
            core_results: if flat_result_count as usize > MAX_FLAT_RESULTS {
                vec![Flat::I32]
            } else {
                result_flats.to_vec()
            },
            params_use_memory: params.uses_memory,
            result_uses_memory: result.is_some_and(|r| r.uses_memory),
        })
    }

    /// The imported function `f` named `name`: as [`FuncDef::new`], with the core type
    /// of the spec's lowering (the guest calls it): a result of more than one flat value
    /// comes back through a return area whose pointer the guest passes last.
    fn import(name: String, f: &wit_parser::Function, types: &Types) -> Result<FuncDef, String> {
        let mut def = FuncDef::new(name, f, types)?;
        if def.retptr() {
            def.core_params.push(Flat::I32);
            def.core_results.clear();
        }
        Ok(def)
    }

    /// Whether its parameters go through memory.
    pub(crate) fn indirect_params(&self) -> bool {
        self.flat_param_count as usize > MAX_FLAT_PARAMS
    }

    /// Whether its results come back through a return area.
    pub(crate) fn retptr(&self) -> bool {
        self.flat_result_count as usize > MAX_FLAT_RESULTS
    }

    /// Its post-return export's name.
    pub(crate) fn post_return_name(&self) -> String {
        format!("{POST_RETURN}{}", self.name)
    }

    /// Its WIT signature, for messages: `transform: func(s: string) -> string`.
    pub(crate) fn signature(&self, resolve: &Resolve) -> String {
        signature(resolve, &self.name, &self.func)
    }
}

/// What a function that transforms bytes takes and gives: strings or bytes, one value or a
/// batch of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BytesShape {
    /// `string` (checked as UTF-8 both ways), else `list<u8>`.
    pub(crate) text: bool,
    /// A list of them (`func(list<string>) -> list<string>`), else one.
    pub(crate) batch: bool,
}

/// The shape of `def` when it is one of `func(string) -> string`, `func(list<u8>) ->
/// list<u8>`, `func(list<string>) -> list<string>` or `func(list<list<u8>>) ->
/// list<list<u8>>` (aliases of those types included).
pub(crate) fn bytes_shape(resolve: &Resolve, def: &FuncDef) -> Option<BytesShape> {
    fn both<T: ComponentType + ?Sized>(resolve: &Resolve, p: &Type, r: &Type) -> bool {
        T::typecheck(WitWorld(resolve), WitType::from(p)).is_ok()
            && T::typecheck(WitWorld(resolve), WitType::from(r)).is_ok()
    }
    let ([(_, p)], Some(r)) = (def.params.as_slice(), &def.result) else {
        return None;
    };
    let (text, batch) = if both::<String>(resolve, p, r) {
        (true, false)
    } else if both::<Vec<u8>>(resolve, p, r) {
        (false, false)
    } else if both::<Vec<String>>(resolve, p, r) {
        (true, true)
    } else if both::<Vec<Vec<u8>>>(resolve, p, r) {
        (false, true)
    } else {
        return None;
    };
    Some(BytesShape { text, batch })
}

/// A function of the world that the module imports: the core import that stands for it,
/// and its definition (named `name`, or `ns:pkg/iface#name`, as exports are).
#[derive(Debug, Clone)]
pub(crate) struct ImportDef {
    /// The core import's module (`$root` for a function of the world itself, else the
    /// interface's name) and name.
    pub(crate) module: String,
    pub(crate) field: String,
    pub(crate) def: FuncDef,
}

/// A module's canonical-ABI side, admitted: its world and every function the host may call.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub(crate) wit: Wit,
    /// The layouts of its types, compiled once.
    pub(crate) types: Types,
    pub(crate) funcs: Vec<FuncDef>,
    /// Every function of the world that the module imports, which the embedder gives
    /// ([`HostFunctions::func`](crate::HostFunctions::func)).
    pub(crate) imports: Vec<ImportDef>,
    /// Whether the module exports `memory` and `cabi_realloc` (with their types).
    pub(crate) memory: bool,
    pub(crate) realloc: bool,
}

impl World {
    pub(crate) fn resolve(&self) -> &Resolve {
        &self.wit.resolve
    }

    /// The function `name`, and its index.
    pub(crate) fn func(&self, name: &str) -> Result<(usize, &FuncDef), String> {
        if let Some(found) = self.funcs.iter().enumerate().find(|(_, f)| f.name == name) {
            return Ok(found);
        }
        // A bare name finds a function of an interface when no other has that name, as
        // wasmtime's `--invoke` does.
        let bare: Vec<(usize, &FuncDef)> = if name.contains('#') {
            Vec::new()
        } else {
            self.funcs
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name.rsplit_once('#').is_some_and(|(_, n)| n == name))
                .collect()
        };
        match bare[..] {
            [found] => Ok(found),
            [] => Err(self.no_such_function()),
            _ => {
                let names: Vec<&str> = bare.iter().map(|(_, f)| f.name.as_str()).collect();
                Err(format!(
                    "`{name}` is the name of {} functions; name one in full: {}",
                    names.len(),
                    crate::error::Problems(&names, ", ")
                ))
            }
        }
    }

    /// The error text for a function the world does not have.
    fn no_such_function(&self) -> String {
        let names: Vec<&str> = self.funcs.iter().map(|f| f.name.as_str()).collect();
        format!(
            "the world `{}` has no such function (it has: {})",
            crate::error::Problems(&[self.wit.world_name()], ""),
            if names.is_empty() {
                "none".into()
            } else {
                crate::error::Problems(&names, ", ").to_string()
            }
        )
    }
}

/// The flat type a core value type stands for, if any.
fn flat_of(ty: CoreType) -> Option<Flat> {
    Some(match ty {
        CoreType::I32 => Flat::I32,
        CoreType::I64 => Flat::I64,
        CoreType::F32 => Flat::F32,
        CoreType::F64 => Flat::F64,
        _ => return None,
    })
}

/// `(func (param ...) (result ...))` of flat types.
fn show_flat(params: &[Flat], results: &[Flat]) -> String {
    ::abi::FuncText {
        params,
        results,
        shown: 8,
    }
    .to_string()
}

/// The module's canonical-ABI side: every function of `wit`'s world checked against the
/// module's exports (`summary`), before compiling; or every problem found, one sentence
/// each.
pub(crate) fn admit(
    wit: Wit,
    summary: &Summary,
    host: &crate::HostFunctions,
) -> Result<World, Vec<String>> {
    let resolve = &wit.resolve;
    let types = Types::compile(resolve);
    let world = &resolve.worlds[wit.world];
    let mut problems = Vec::new();
    let (imports, import_problems) = admit_imports(resolve, world, &types, summary, host);
    problems.extend(import_problems);
    let mut funcs = Vec::new();
    for (key, item) in &world.exports {
        match item {
            WorldItem::Function(f) => funcs.push((f.name.clone(), f)),
            WorldItem::Interface { id, .. } => {
                let iface = resolve.name_world_key(key);
                for (name, f) in &resolve.interfaces[*id].functions {
                    funcs.push((format!("{iface}#{name}"), f));
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    let export = |name: &str| {
        summary
            .exports
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, kind, index)| (*kind, *index))
    };
    let func_type = |name: &str| -> Option<Option<(Vec<Flat>, Vec<Flat>)>> {
        let (kind, index) = export(name)?;
        if kind != ExternalKind::Func {
            return Some(None);
        }
        let ty = summary.func_type(index)?;
        let flats = |tys: &[CoreType]| tys.iter().map(|t| flat_of(*t)).collect::<Option<Vec<_>>>();
        Some(flats(ty.params()).zip(flats(ty.results())))
    };
    let (mut needs_memory, mut needs_realloc) = (None, None);
    // A function the guest imports reads its parameters from memory, and stores results
    // that hold strings or lists into blocks from `cabi_realloc`.
    for import in &imports {
        let def = &import.def;
        if needs_memory.is_none()
            && (def.indirect_params()
                || def.retptr()
                || def.params_use_memory
                || def.result_uses_memory)
        {
            needs_memory = Some(def.name.clone());
        }
        if needs_realloc.is_none() && def.result_uses_memory {
            needs_realloc = Some(def.name.clone());
        }
    }
    let mut defs = Vec::new();
    for (name, f) in funcs {
        if !matches!(f.kind, FunctionKind::Freestanding) {
            problems.push(format!(
                "`{name}` is a resource method or an async function, which this host does not call"
            ));
            continue;
        }
        let mut def = match FuncDef::new(name.clone(), f, &types) {
            Ok(def) => def,
            Err(why) => {
                problems.push(format!("`{name}` takes or returns {why}"));
                continue;
            }
        };
        if needs_memory.is_none()
            && (def.indirect_params()
                || def.retptr()
                || def.params_use_memory
                || def.result_uses_memory)
        {
            needs_memory = Some(name.clone());
        }
        if needs_realloc.is_none() && (def.indirect_params() || def.params_use_memory) {
            needs_realloc = Some(name.clone());
        }
        let (want_params, want_results) = (def.core_params.clone(), def.core_results.clone());
        let wanted = show_flat(&want_params, &want_results);
        match func_type(&name) {
            None => problems.push(format!(
                "missing export `{name}` {wanted} for `{}`",
                def.signature(resolve)
            )),
            Some(Some((p, r))) if p == want_params && r == want_results => {}
            Some(found) => problems.push(format!(
                "export `{name}` is {}, expected {wanted} for `{}`",
                found.map_or_else(
                    || "not a function of numbers".into(),
                    |(p, r)| show_flat(&p, &r)
                ),
                def.signature(resolve)
            )),
        }
        let post = def.post_return_name();
        match func_type(&post) {
            None => {}
            Some(Some((p, r))) if p == want_results && r.is_empty() => def.post_return = true,
            Some(found) => problems.push(format!(
                "export `{post}` is {}, expected {}",
                found.map_or_else(
                    || "not a function of numbers".into(),
                    |(p, r)| show_flat(&p, &r)
                ),
                show_flat(&want_results, &[])
            )),
        }
        defs.push(def);
    }
    let memory = matches!(export(MEMORY), Some((ExternalKind::Memory, _)));
    if let Some(name) = &needs_memory
        && !memory
    {
        problems.push(format!(
            "missing export `{MEMORY}` (memory), which `{name}` needs for its strings, lists or return area"
        ));
    }
    let realloc_type = (vec![Flat::I32; 4], vec![Flat::I32]);
    let realloc = match func_type(REALLOC) {
        Some(Some(found)) if found == realloc_type => true,
        None => false,
        Some(found) => {
            problems.push(format!(
                "export `{REALLOC}` is {}, expected {}",
                found.map_or_else(
                    || "not a function of numbers".into(),
                    |(p, r)| show_flat(&p, &r)
                ),
                show_flat(&realloc_type.0, &realloc_type.1)
            ));
            false
        }
    };
    if let Some(name) = &needs_realloc
        && !realloc
        && func_type(REALLOC).is_none()
    {
        problems.push(format!(
            "missing export `{REALLOC}` {}, which `{name}` needs for the strings and lists it is given",
            show_flat(&realloc_type.0, &realloc_type.1)
        ));
    }
    if problems.is_empty() {
        Ok(World {
            wit,
            types,
            funcs: defs,
            imports,
            memory,
            realloc,
        })
    } else {
        Err(problems)
    }
}

/// The core imports (module, name) that stand for functions `wit`'s world imports.
pub(crate) fn world_imports(wit: &Wit) -> Vec<(String, String)> {
    imported_funcs(&wit.resolve, &wit.resolve.worlds[wit.world])
        .into_iter()
        .map(|(module, field, _)| (module, field))
        .collect()
}

/// The functions of `world` that the module imports, each checked: a core import of the
/// type the spec's lowering gives it, which the embedder gives (`host`). A function the
/// module does not import needs nothing. Returns them, and every problem, one sentence
/// each.
fn admit_imports(
    resolve: &Resolve,
    world: &wit_parser::World,
    types: &Types,
    summary: &Summary,
    host: &crate::HostFunctions,
) -> (Vec<ImportDef>, Vec<String>) {
    let (mut imports, mut problems) = (Vec::new(), Vec::new());
    for (module, field, f) in imported_funcs(resolve, world) {
        let name = if module == "$root" {
            field.clone()
        } else {
            format!("{module}#{field}")
        };
        let Some(import) = summary
            .imports
            .iter()
            .find(|i| i.module == module && i.name == field)
        else {
            continue;
        };
        if !matches!(f.kind, FunctionKind::Freestanding) {
            problems.push(format!(
                "the module imports `{name}`, a resource method or an async function, which this host does not provide"
            ));
            continue;
        }
        let def = match FuncDef::import(name.clone(), f, types) {
            Ok(def) => def,
            Err(why) => {
                problems.push(format!(
                    "the module imports `{name}`, which takes or returns {why}"
                ));
                continue;
            }
        };
        let wanted = show_flat(&def.core_params, &def.core_results);
        let found = match import.ty {
            ::abi::check::wasmparser::TypeRef::Func(index) => {
                summary.types.get(index as usize).and_then(|ty| {
                    let flats = |tys: &[CoreType]| {
                        tys.iter().map(|t| flat_of(*t)).collect::<Option<Vec<_>>>()
                    };
                    flats(ty.params()).zip(flats(ty.results()))
                })
            }
            _ => None,
        };
        match found {
            Some((p, r)) if p == def.core_params && r == def.core_results => {}
            found => {
                problems.push(format!(
                    "import `{module}.{field}` is {}, expected {wanted} for `{}`",
                    found.map_or_else(
                        || "not a function of numbers".into(),
                        |(p, r)| show_flat(&p, &r)
                    ),
                    def.signature(resolve)
                ));
                continue;
            }
        }
        if let Err(why) = host.canonical_provides(resolve, &def) {
            problems.push(why);
            continue;
        }
        imports.push(ImportDef { module, field, def });
    }
    (imports, problems)
}
