//! A compiled guest module: read, checked on its bytes, compiled (or loaded from a cache),
//! and instantiated.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use wasmer::sys::{CompilerConfig as _, NativeEngineExt as _};
use wasmer::{CompileError, Engine, Instance, InstantiationError, Module, Store, imports};

use crate::cache::Lookup;
use std::sync::Arc;

use crate::canonical::{self, Wit, World};
use crate::guest::Canonical;
use crate::instance::{Core, Effect};
use crate::prepare::{self, Extras, Refusal};
use crate::{
    CacheOutcome, Error, Guest, HostFunctions, Limits, ModuleCache, Wasi, limits, metering,
};

/// A compiled guest module whose imports and exports have been checked against the ABI.
/// Instantiate it as often as needed.
#[derive(Debug)]
pub struct GuestModule {
    engine: Engine,
    module: Module,
    name: String,
    optional: Extras,
    /// Whether it speaks the guide's ABI (`mem`, `load`).
    guide: bool,
    /// Its canonical-ABI side, when it has a WIT world.
    world: Option<Arc<World>>,
    fuel: Option<u64>,
    /// What `transform_lines` may hold.
    pub(crate) max_batch_bytes: u64,
    /// What one lifted canonical value may take.
    max_value_bytes: u64,
    /// The longest line a stream takes: the memory cap.
    pub(crate) max_line_bytes: u64,
    /// What a stream's instances and buffers may take.
    pub(crate) max_host_memory: u64,
    /// The start function was moved to an export, to be called by `instantiate`.
    deferred_start: bool,
    /// Whether it imports WASI preview 1.
    wasi: bool,
    /// The embedder's functions it may import.
    host: HostFunctions,
}

impl GuestModule {
    /// Reads, compiles and checks the module at `path`. Its size is checked before it is read
    /// in full.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::ModuleTooLarge`], [`Error::OverLimit`], [`Error::Compile`],
    /// [`Error::Abi`].
    pub fn from_file(path: impl AsRef<Path>, limits: &Limits) -> Result<Self, Error> {
        Self::from_file_with(path, limits, None, None).map(|(module, _)| module)
    }

    /// As [`GuestModule::from_file`], through `cache`: the compiled module is loaded from it
    /// when it holds a sound entry for these bytes, limits and compiler, and stored in it
    /// otherwise. A cache that fails costs a compile, never the module: the outcome says
    /// whether it was a hit and what went wrong.
    ///
    /// The module is checked against the ABI and the limits on its bytes either way.
    ///
    /// # Errors
    /// As [`GuestModule::from_file`].
    pub fn from_file_cached(
        path: impl AsRef<Path>,
        limits: &Limits,
        cache: &ModuleCache,
    ) -> Result<(Self, CacheOutcome), Error> {
        let (module, outcome) = Self::from_file_with(path, limits, None, Some(cache))?;
        Ok((module, outcome.expect("a cache was given")))
    }

    /// Compiles and checks a module held in memory; errors name it `<bytes>`.
    ///
    /// # Errors
    /// [`Error::ModuleTooLarge`], [`Error::OverLimit`], [`Error::Compile`], [`Error::Abi`].
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, Error> {
        Self::from_bytes_with(bytes, limits, None, None).map(|(module, _)| module)
    }

    /// As [`GuestModule::from_bytes`], through `cache`, as [`GuestModule::from_file_cached`]
    /// does.
    ///
    /// # Errors
    /// As [`GuestModule::from_bytes`].
    pub fn from_bytes_cached(
        bytes: &[u8],
        limits: &Limits,
        cache: &ModuleCache,
    ) -> Result<(Self, CacheOutcome), Error> {
        let (module, outcome) = Self::from_bytes_with(bytes, limits, None, Some(cache))?;
        Ok((module, outcome.expect("a cache was given")))
    }

    /// The general form of the constructors: the module at `path`, with the WIT world `wit`
    /// standing in for its `component-type` section (for a module built without one), through
    /// `cache` when given.
    ///
    /// # Errors
    /// As [`GuestModule::from_file`].
    pub fn from_file_with(
        path: impl AsRef<Path>,
        limits: &Limits,
        wit: Option<&Wit>,
        cache: Option<&ModuleCache>,
    ) -> Result<(Self, Option<CacheOutcome>), Error> {
        let path = path.as_ref();
        let bytes = read_module(path, limits)?;
        Self::build(
            &bytes,
            path.display().to_string(),
            limits,
            wit,
            cache,
            &HostFunctions::default(),
        )
    }

    /// As [`GuestModule::from_file_with`], for bytes held in memory.
    ///
    /// # Errors
    /// As [`GuestModule::from_bytes`].
    pub fn from_bytes_with(
        bytes: &[u8],
        limits: &Limits,
        wit: Option<&Wit>,
        cache: Option<&ModuleCache>,
    ) -> Result<(Self, Option<CacheOutcome>), Error> {
        Self::from_bytes_with_imports(bytes, limits, wit, cache, &HostFunctions::default())
    }

    /// As [`GuestModule::from_bytes_with`], for a module that imports functions `host`
    /// gives (in the guide's ABI: a region of guest memory handed to the host). Admission
    /// accepts those imports, with their types, and every instance gets them.
    ///
    /// # Errors
    /// As [`GuestModule::from_bytes`]; [`Error::Abi`] names each import that neither `host`
    /// nor WASI preview 1 gives.
    pub fn from_bytes_with_imports(
        bytes: &[u8],
        limits: &Limits,
        wit: Option<&Wit>,
        cache: Option<&ModuleCache>,
        host: &HostFunctions,
    ) -> Result<(Self, Option<CacheOutcome>), Error> {
        Self::build(bytes, "<bytes>".to_string(), limits, wit, cache, host)
    }

    fn build(
        bytes: &[u8],
        name: String,
        limits: &Limits,
        wit: Option<&Wit>,
        cache: Option<&ModuleCache>,
        host: &HostFunctions,
    ) -> Result<(Self, Option<CacheOutcome>), Error> {
        if bytes.len() as u64 > limits.max_module_bytes {
            return Err(Error::ModuleTooLarge {
                module: name,
                size: bytes.len() as u64,
                limit: limits.max_module_bytes,
            });
        }
        // Text is assembled first: any bytes that are not a binary module but are UTF-8.
        let assembled = assemble(bytes, &name)?;
        let bytes = assembled.as_deref().unwrap_or(bytes);
        // A component binary runs as the core module it wraps, when it wraps one that
        // imports nothing, with the world of its exports (unless `wit` says otherwise).
        let unwrapped = if crate::component::is_component(bytes) {
            Some(
                crate::component::unwrap(bytes).map_err(|problem| Error::Component {
                    module: name.clone(),
                    problem,
                })?,
            )
        } else {
            None
        };
        let (bytes, wit) = match &unwrapped {
            Some(u) => (u.core, wit.or(Some(&u.wit))),
            None => (bytes, wit),
        };
        let engine = engine(limits);
        // Checked on the bytes: nothing is compiled (or loaded from a cache) unless all of it
        // passes.
        let prepared = match prepare::prepare(bytes, limits, wit, host) {
            Ok(prepared) => prepared,
            Err(Refusal::Abi(problems)) => {
                return Err(Error::Abi {
                    module: name,
                    problems,
                });
            }
            Err(Refusal::OverLimit(problems)) => {
                return Err(Error::OverLimit {
                    module: name,
                    problems,
                });
            }
            Err(Refusal::Unreadable(why)) => {
                // wasmer's validator says why in its own words, as it would when compiling;
                // should it accept what the check could not read, the bytes are refused all
                // the same.
                let source = Module::validate(&engine, bytes)
                    .err()
                    .unwrap_or(CompileError::Validate(why));
                return Err(Error::Compile {
                    module: name,
                    source,
                });
            }
        };
        let compile = || {
            Module::from_binary(&engine, &prepared.bytes).map_err(|source| Error::Compile {
                module: name.clone(),
                source,
            })
        };
        let (module, outcome) = match cache {
            None => (compile()?, None),
            Some(cache) => {
                let key = ModuleCache::key(&engine, limits, &prepared.bytes);
                let mut warnings = Vec::new();
                // Compiled code is a few times the size of the Wasm it comes from; an entry
                // far past that is damage, and is not read in.
                let max_len = limits.max_module_bytes.saturating_mul(64).max(64 << 20);
                let found = match cache.lookup(&engine, &key, max_len) {
                    Lookup::Hit(module) => Some(module),
                    Lookup::Miss => None,
                    Lookup::Rejected(warning) => {
                        warnings.push(warning);
                        None
                    }
                };
                let hit = found.is_some();
                let module = match found {
                    Some(module) => module,
                    None => {
                        let module = compile()?;
                        if let Err(warning) = cache.store(&key, &module) {
                            warnings.push(warning);
                        }
                        module
                    }
                };
                let entry = cache.entry(&key);
                (
                    module,
                    Some(CacheOutcome {
                        hit,
                        entry,
                        warnings,
                    }),
                )
            }
        };
        let module = GuestModule {
            engine,
            module,
            name,
            optional: prepared.extras,
            guide: prepared.guide,
            world: prepared.world.map(Arc::new),
            fuel: limits.fuel,
            max_batch_bytes: limits.max_batch_bytes,
            max_value_bytes: limits.max_value_bytes,
            max_line_bytes: limits.max_memory_bytes,
            max_host_memory: limits.max_host_memory_bytes,
            deferred_start: prepared.deferred_start,
            wasi: prepared.wasi,
            host: host.clone(),
        };
        Ok((module, outcome))
    }

    /// The module's name in errors: its path, or `<bytes>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates an instance in a store of its own. Runs the module's start function, if any,
    /// under the same fuel as any call.
    ///
    /// # Errors
    /// [`Error::Trap`] or [`Error::OutOfFuel`] with export `start` when the start function
    /// traps or runs out; [`Error::Instantiate`] for any other failure (a memory or table
    /// over its cap, for one).
    pub fn instantiate(&self) -> Result<Guest, Error> {
        self.instantiate_with(&Wasi::default())
    }

    /// As [`GuestModule::instantiate`], giving a module that imports WASI preview 1 what
    /// `wasi` says (arguments, environment, where its output goes); a module that does not
    /// import it is not affected.
    ///
    /// # Errors
    /// As [`GuestModule::instantiate`].
    pub fn instantiate_with(&self, wasi: &Wasi) -> Result<Guest, Error> {
        let mut store = Store::new(self.engine.clone());
        let (mut imports, wasi_env) = if self.wasi {
            let (imports, env) = crate::wasi::imports(&mut store, wasi);
            (imports, Some(env))
        } else {
            (imports! {}, None)
        };
        let host_env = (!self.host.is_empty()).then(|| {
            self.host.define(
                &mut store,
                &mut imports,
                self.world.as_ref(),
                self.max_value_bytes,
            )
        });
        let instance = Instance::new(&mut store, &self.module, &imports).map_err(|e| match e {
            // Not reached: the start section was moved to an export by `prepare`.
            InstantiationError::Start(e) => Error::Trap {
                export: "start".into(),
                trap: e.message(),
            },
            source => Error::Instantiate {
                module: self.name.clone(),
                source: Box::new(source),
            },
        })?;
        if let Some(env) = &wasi_env {
            crate::wasi::attach(env, &mut store, &instance);
        }
        let leave = crate::instance::Leave::default();
        if let Some(env) = &host_env {
            crate::imports::attach(env, &mut store, &instance, leave.clone());
        }
        let memory = if self.guide {
            Some(abi::MEMORY.name)
        } else {
            self.world
                .as_ref()
                .filter(|world| world.memory)
                .map(|_| canonical::MEMORY)
        };
        let realloc =
            self.optional.cabi_realloc || self.world.as_ref().is_some_and(|world| world.realloc);
        let mut core = Core::new(
            store,
            instance,
            self.name.clone(),
            memory,
            self.fuel,
            realloc,
            leave,
        )?;
        if self.deferred_start {
            let start = core.func::<(), ()>(prepare::START_EXPORT, Effect::Mutates)?;
            core.call(&start, ()).map_err(|e| match e {
                Error::Trap { trap, .. } => Error::Trap {
                    export: "start".into(),
                    trap,
                },
                Error::OutOfFuel { fuel, .. } => Error::OutOfFuel {
                    export: "start".into(),
                    fuel,
                },
                e => e,
            })?;
        }
        let canonical = self
            .world
            .as_ref()
            .map(|world| Canonical::bind(&core, Arc::clone(world), self.max_value_bytes))
            .transpose()?;
        Guest::new(core, self.guide, self.optional, canonical)
    }

    /// The names of the functions of the module's WIT world (see [`Guest::functions`]).
    pub fn functions(&self) -> Vec<&str> {
        self.world
            .as_ref()
            .map(|w| w.funcs.iter().map(|f| f.name.as_str()).collect())
            .unwrap_or_default()
    }

    /// The WIT signature of function `name` of the module's world (see
    /// [`Guest::signature`]).
    pub fn signature(&self, name: &str) -> Option<String> {
        let world = self.world.as_ref()?;
        let (_, def) = world.func(name).ok()?;
        Some(def.signature(world.resolve()))
    }

    /// The name of the module's WIT world, if it has one.
    pub fn world_name(&self) -> Option<&str> {
        self.world.as_ref().map(|w| w.wit.world_name())
    }

    /// Which of the guide ABI's optional exports the module has.
    pub fn extras(&self) -> Extras {
        self.optional
    }

    /// The shape of function `name` of the world, which must transform bytes: one string
    /// or byte list to one, or a batch of them to a batch.
    pub(crate) fn bytes_shape(&self, name: &str) -> Result<canonical::BytesShape, Error> {
        let call_err = |problem: String| Error::Call {
            export: name.to_string().into(),
            problem,
        };
        let world = self.world.as_ref().ok_or_else(|| {
            call_err(format!(
                "module {} has no WIT world (no `component-type` section, and no --wit given)",
                self.name
            ))
        })?;
        let (_, def) = world.func(name).map_err(call_err)?;
        canonical::bytes_shape(world.resolve(), def).ok_or_else(|| {
            call_err(format!(
                "`{}` is none of func(string) -> string, func(list<u8>) -> list<u8>, \
                 func(list<string>) -> list<string>, func(list<list<u8>>) -> list<list<u8>>",
                def.signature(world.resolve())
            ))
        })
    }

    /// Whether the module imports WASI preview 1 (which the host provides, deny by default:
    /// see [`Wasi`]).
    pub fn uses_wasi(&self) -> bool {
        self.wasi
    }

    /// Whether the module speaks the guide's ABI (`mem` and `load`).
    pub fn speaks_guide_abi(&self) -> bool {
        self.guide
    }
}

/// The bytes of the module at `path`, its size checked against `limits` before it is read
/// in full.
/// The binary of a module given as WAT text, or `None` for bytes that are not text, or
/// blank (left to the binary path and its errors). A text's errors are one line: the assembler's
/// message and its line and column.
fn assemble(bytes: &[u8], name: &str) -> Result<Option<Vec<u8>>, Error> {
    if bytes.starts_with(b"\0asm") {
        return Ok(None);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) if !text.trim().is_empty() => text,
        _ => return Ok(None),
    };
    wat::parse_str(text).map(Some).map_err(|e| {
        let full = e.to_string();
        let mut lines = full.lines();
        let message: String = lines.next().unwrap_or_default().chars().take(200).collect();
        let at = lines
            .find_map(|l| l.trim().strip_prefix("--> "))
            .and_then(|l| l.split_once(':'))
            .map(|(_, line_col)| format!(" (at {line_col})"))
            .unwrap_or_default();
        Error::Text {
            module: name.to_string(),
            why: format!("{message}{at}"),
        }
    })
}

fn read_module(path: &Path, limits: &Limits) -> Result<Vec<u8>, Error> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    let too_large = |size| Error::ModuleTooLarge {
        module: path.display().to_string(),
        size,
        limit: limits.max_module_bytes,
    };
    if size > limits.max_module_bytes {
        return Err(too_large(size));
    }
    // Read one byte past the limit at most, in case the file grew since `metadata`; into a
    // buffer of the size read there, so that it is not grown (and copied) on the way.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.take(limits.max_module_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limits.max_module_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// An engine that compiles with Cranelift, metered when `limits.fuel` says so, and caps
/// memories and tables at `limits`. One per module: wasmer's metering middleware may serve
/// only one.
fn engine(limits: &Limits) -> Engine {
    let mut compiler = wasmer_compiler_cranelift::Cranelift::default();
    if let Some(fuel) = limits.fuel {
        for middleware in metering::middlewares(fuel) {
            compiler.push_middleware(middleware);
        }
    }
    let mut engine =
        Engine::from(wasmer::sys::EngineBuilder::new(compiler).set_features(Some(features())));
    engine.set_tunables(limits::Capped::new(limits));
    engine
}

/// The Wasm proposals the engine accepts: wasmer's defaults for Cranelift, without exception
/// handling (refused at admission too: see [`prepare`]).
pub(crate) fn features() -> wasmer::sys::Features {
    let mut features = wasmer::sys::Features::default();
    features
        .exceptions(false)
        .relaxed_simd(true)
        .wide_arithmetic(true);
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exception handling is off in the engine too: a module that got past admission with a
    /// `throw` would still not compile.
    #[test]
    fn the_engine_refuses_exceptions_past_admission() {
        let engine = engine(&Limits::default());
        let bytes = wat::parse_str("(module (tag $e) (func (throw $e)))").unwrap();
        let err = Module::validate(&engine, &bytes).unwrap_err();
        assert!(err.to_string().contains("exception"), "{err}");
    }
}
