//! Fuel: what one call into the guest may do, charged for the work it does.
//!
//! Two middlewares, in this order, instrument every function when the module is compiled:
//!
//! 1. wasmer's [`Metering`] counts operators: each costs one unit, charged at the end of
//!    its basic block, except those that call into the runtime (bulk operators, `memory.grow`
//!    and `memory.size`, the table operators, `ref.func`, `data.drop`, `elem.drop`,
//!    `memory.atomic.notify`), which cost [`RUNTIME_CALL`]: what the call takes, measured.
//! 2. [`BulkMetering`], this module's, charges what an operator moves or grows, read at run
//!    time. Right before `memory.copy`, `memory.fill`, `memory.init` (one unit per
//!    [`BYTES_PER_UNIT`] bytes) and `table.copy`, `table.fill`, `table.init`
//!    ([`UNITS_PER_ELEMENT`] units per element), it takes the length operand off the stack
//!    into a scratch global, subtracts its cost from wasmer's remaining-points global, and
//!    stops the call exactly as wasmer's middleware does when the points do not cover it
//!    (sets the exhausted flag, then `unreachable`). Right after `memory.grow` and
//!    `table.grow` it charges what was actually grown ([`UNITS_PER_PAGE`] a page, as if the
//!    page were filled; [`UNITS_PER_ELEMENT`] an element), nothing when the growth failed: so
//!    growth past the cap returns -1 in the guest, as Wasm says, and costs only the call.
//!
//! So a guest pays for what it moves, not what it could move, and a unit costs about the
//! same time whatever the operator: `cargo run --release -p host --example fuel_calibration`
//! measures it.
//!
//! Operators that fuel cannot bound are not metered but refused before compiling
//! ([`crate::prepare`]): `memory.atomic.wait*` and exception handling.
//!
//! The length operand is an `i32` for every memory and table the host accepts (64-bit
//! memories and tables are refused before compiling).

use std::sync::{Arc, Mutex};

use wasmer::sys::wasmparser::Operator;
use wasmer::sys::{FunctionMiddleware, MiddlewareError, MiddlewareReaderState, ModuleMiddleware};
use wasmer::{
    ExportIndex, GlobalInit, GlobalType, LocalFunctionIndex, ModuleInfo, Mutability, Type,
};
use wasmer_middlewares::metering::Metering;

/// The export under which wasmer's metering keeps the points left.
pub(crate) const REMAINING: &str = "wasmer_metering_remaining_points";
/// The export under which wasmer's metering keeps its exhausted flag.
pub(crate) const EXHAUSTED: &str = "wasmer_metering_points_exhausted";

/// Bytes a bulk memory operator moves for one unit of fuel (a power of two). Measured:
/// copies and fills of 1 KiB to 1 MiB take 0.09 to 0.14 ns a unit, plain operators 0.14 to
/// 0.6 (a tight branch loop).
pub const BYTES_PER_UNIT: u32 = 1 << BYTES_SHIFT;
const BYTES_SHIFT: u32 = 2;

/// Units of fuel for each element a table operator moves or grows (a power of two): a table
/// element takes about as long as 8 to 30 bytes of memory.
pub const UNITS_PER_ELEMENT: u32 = 1 << ELEMENTS_SHIFT;
const ELEMENTS_SHIFT: u32 = 3;

/// Units of fuel for each 64 KiB page `memory.grow` adds: what filling the page would cost
/// (its first touch makes the kernel zero it).
pub const UNITS_PER_PAGE: u32 = 1 << PAGES_SHIFT;
const PAGES_SHIFT: u32 = 16 - BYTES_SHIFT;

/// The fixed cost of an operator that calls into the runtime, whatever it moves: about 16 ns
/// a call on a release build here (`data.drop`, `table.size`, `memory.grow 0` and the like),
/// so 128 units keep a unit near 0.125 ns, and a loop of them is stopped about as soon as any
/// other loop. `examples/fuel_calibration` has a case for each.
pub const RUNTIME_CALL: u64 = 128;

/// How a length operand turns into units.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// `len >> n`: bytes.
    Down(u32),
    /// `len << n`: table elements, or pages.
    Up(u32),
}

/// When an operator's length is charged.
#[derive(Debug, Clone, Copy)]
enum When {
    /// Before it runs: all of the length (an operator that cannot do it all traps).
    Before(Scale),
    /// After it returns, for growth: only when it did not return -1.
    Grown(Scale),
}

/// The constants of this module, as text: part of every cache key (with a digest of this
/// file, which the cache takes itself), so that code compiled and metered under other rules
/// is never loaded.
pub(crate) fn rules() -> String {
    format!(
        "metering: operator 1, runtime call {RUNTIME_CALL}, bytes per unit {BYTES_PER_UNIT}, \
         units per element {UNITS_PER_ELEMENT}, units per page {UNITS_PER_PAGE}"
    )
}

/// The middlewares that meter a module with a budget of `fuel` units per call, in order.
pub(crate) fn middlewares(fuel: u64) -> [Arc<dyn ModuleMiddleware>; 2] {
    [
        Arc::new(Metering::new(fuel, cost)),
        Arc::new(BulkMetering::default()),
    ]
}

/// The static cost of `op` for wasmer's [`Metering`].
fn cost(op: &Operator<'_>) -> u64 {
    if calls_runtime(op) { RUNTIME_CALL } else { 1 }
}

/// Whether `op` is compiled to a call into wasmer's runtime (wasmer-compiler-cranelift's
/// `func_environ.rs`: each `translate_*` that makes a libcall).
fn calls_runtime(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::MemoryCopy { .. }
            | Operator::MemoryFill { .. }
            | Operator::MemoryInit { .. }
            | Operator::MemoryGrow { .. }
            | Operator::MemorySize { .. }
            | Operator::DataDrop { .. }
            | Operator::TableCopy { .. }
            | Operator::TableFill { .. }
            | Operator::TableInit { .. }
            | Operator::TableGrow { .. }
            | Operator::TableSize { .. }
            | Operator::TableGet { .. }
            | Operator::TableSet { .. }
            | Operator::ElemDrop { .. }
            | Operator::RefFunc { .. }
            | Operator::MemoryAtomicNotify { .. }
    )
}

/// For an operator whose work grows with its length operand (on top of the stack): how
/// that length turns into units, and when it is charged.
fn scale(op: &Operator<'_>) -> Option<When> {
    match op {
        Operator::MemoryCopy { .. } | Operator::MemoryFill { .. } | Operator::MemoryInit { .. } => {
            Some(When::Before(Scale::Down(BYTES_SHIFT)))
        }
        Operator::TableCopy { .. } | Operator::TableFill { .. } | Operator::TableInit { .. } => {
            Some(When::Before(Scale::Up(ELEMENTS_SHIFT)))
        }
        Operator::TableGrow { .. } => Some(When::Grown(Scale::Up(ELEMENTS_SHIFT))),
        Operator::MemoryGrow { .. } => Some(When::Grown(Scale::Up(PAGES_SHIFT))),
        _ => None,
    }
}

/// Charges bulk operators for their length, at run time. Runs after wasmer's [`Metering`],
/// whose globals it uses; one per module, like it.
#[derive(Debug, Default)]
pub(crate) struct BulkMetering {
    globals: Mutex<Option<Globals>>,
}

/// Global indices: wasmer's points and flag, and this middleware's scratch `i32`s (a
/// length, and the result of a `grow`).
#[derive(Debug, Clone, Copy)]
struct Globals {
    remaining: u32,
    exhausted: u32,
    scratch: u32,
    result: u32,
}

const NAME: &str = "bulk metering";

impl ModuleMiddleware for BulkMetering {
    fn generate_function_middleware<'a>(
        &self,
        _: LocalFunctionIndex,
    ) -> Box<dyn FunctionMiddleware<'a> + 'a> {
        // `transform_module_info` runs on the module before any function is generated, and
        // compiling stops when it fails.
        let globals = self
            .globals
            .lock()
            .ok()
            .and_then(|g| *g)
            .expect("transform_module_info ran first");
        Box::new(FunctionBulkMetering { globals })
    }

    fn transform_module_info(&self, info: &mut ModuleInfo) -> Result<(), MiddlewareError> {
        let mut globals = self
            .globals
            .lock()
            .map_err(|_| MiddlewareError::new(NAME, "poisoned"))?;
        if globals.is_some() {
            return Err(MiddlewareError::new(NAME, "used for a second module"));
        }
        let global = |name: &str| match info.exports.get(name) {
            Some(ExportIndex::Global(index)) => Ok(index.as_u32()),
            _ => Err(MiddlewareError::new(
                NAME,
                format!("runs after wasmer's metering, which exports the global `{name}`"),
            )),
        };
        let (remaining, exhausted) = (global(REMAINING)?, global(EXHAUSTED)?);
        let mut scratch = || {
            info.global_initializers.push(GlobalInit::I32Const(0));
            info.globals
                .push(GlobalType::new(Type::I32, Mutability::Var))
                .as_u32()
        };
        let (scratch, result) = (scratch(), scratch());
        *globals = Some(Globals {
            remaining,
            exhausted,
            scratch,
            result,
        });
        Ok(())
    }
}

#[derive(Debug)]
struct FunctionBulkMetering {
    globals: Globals,
}

impl FunctionBulkMetering {
    /// Operators that charge the cost of the length held in the scratch global, stopping the
    /// call as wasmer's metering does when the points left do not cover it. They leave the
    /// stack as they found it.
    fn charge<'a>(&self, scale: Scale) -> Vec<Operator<'a>> {
        let Globals {
            remaining,
            exhausted,
            scratch,
            ..
        } = self.globals;
        // The cost as an i64 on the stack. (A u32 shifted left by 14 cannot overflow an i64.)
        let (shift, op) = match scale {
            Scale::Down(n) => (n, Operator::I64ShrU),
            Scale::Up(n) => (n, Operator::I64Shl),
        };
        let cost = [
            Operator::GlobalGet {
                global_index: scratch,
            },
            Operator::I64ExtendI32U,
            Operator::I64Const {
                value: i64::from(shift),
            },
            op,
        ];
        let mut ops = vec![Operator::GlobalGet {
            global_index: remaining,
        }];
        // if remaining < cost { exhausted = 1; unreachable }
        ops.extend(cost.iter().cloned());
        ops.extend([
            Operator::I64LtU,
            Operator::If {
                blockty: wasmer::sys::wasmparser::BlockType::Empty,
            },
            Operator::I32Const { value: 1 },
            Operator::GlobalSet {
                global_index: exhausted,
            },
            Operator::Unreachable,
            Operator::End,
            // remaining -= cost
            Operator::GlobalGet {
                global_index: remaining,
            },
        ]);
        ops.extend(cost.iter().cloned());
        ops.extend([
            Operator::I64Sub,
            Operator::GlobalSet {
                global_index: remaining,
            },
        ]);
        ops
    }
}

impl<'a> FunctionMiddleware<'a> for FunctionBulkMetering {
    fn feed(
        &mut self,
        operator: Operator<'a>,
        state: &mut MiddlewareReaderState<'a>,
    ) -> Result<(), MiddlewareError> {
        let Globals {
            scratch, result, ..
        } = self.globals;
        // The length (on top of the stack) into the scratch global, and back.
        let keep_length = [
            Operator::GlobalSet {
                global_index: scratch,
            },
            Operator::GlobalGet {
                global_index: scratch,
            },
        ];
        match scale(&operator) {
            None => state.push_operator(operator),
            Some(When::Before(scale)) => {
                state.extend(keep_length);
                state.extend(self.charge(scale));
                state.push_operator(operator);
            }
            Some(When::Grown(scale)) => {
                state.extend(keep_length);
                state.push_operator(operator);
                // if result != -1 { charge the length }; the result back on the stack.
                state.extend([
                    Operator::GlobalSet {
                        global_index: result,
                    },
                    Operator::GlobalGet {
                        global_index: result,
                    },
                    Operator::I32Const { value: -1 },
                    Operator::I32Ne,
                    Operator::If {
                        blockty: wasmer::sys::wasmparser::BlockType::Empty,
                    },
                ]);
                state.extend(self.charge(scale));
                state.extend([
                    Operator::End,
                    Operator::GlobalGet {
                        global_index: result,
                    },
                ]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operator that calls into the runtime costs a call; the others one unit.
    #[test]
    fn runtime_calls_cost_a_call() {
        assert_eq!(cost(&Operator::DataDrop { data_index: 0 }), RUNTIME_CALL);
        assert_eq!(cost(&Operator::MemoryGrow { mem: 0 }), RUNTIME_CALL);
        assert_eq!(cost(&Operator::TableSize { table: 0 }), RUNTIME_CALL);
        assert_eq!(cost(&Operator::I32Add), 1);
        assert_eq!(cost(&Operator::Call { function_index: 0 }), 1);
    }
}
