//! Fuel: what one call into the guest may do, charged for the work it does.
//!
//! Two middlewares, in this order, instrument every function when the module is compiled:
//!
//! 1. wasmer's [`Metering`] counts operators: each costs one unit, charged at the end of
//!    its basic block, except the bulk operators, which cost [`BULK_BASE`] (what their call
//!    into the runtime costs).
//! 2. [`BulkMetering`], this module's, charges what a bulk operator moves, read at run time:
//!    right before `memory.copy`, `memory.fill`, `memory.init` (one unit per
//!    [`BYTES_PER_UNIT`] bytes) and `table.copy`, `table.fill`, `table.init`, `table.grow`
//!    ([`UNITS_PER_ELEMENT`] units per element), it takes the length operand off the
//!    stack into a scratch global, subtracts its cost from wasmer's remaining-points global,
//!    and stops the call exactly as wasmer's middleware does when the points do not cover
//!    it (sets the exhausted flag, then `unreachable`). So a guest pays for a bulk operator
//!    what it moves, not what it could move, and a unit costs about the same time whatever
//!    the operator: `cargo run --release -p host --example fuel_calibration` measures it.
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

/// Units of fuel for each element a bulk table operator moves (a power of two): a table
/// element takes about as long as 8 to 30 bytes of memory.
pub const UNITS_PER_ELEMENT: u32 = 1 << ELEMENTS_SHIFT;
const ELEMENTS_SHIFT: u32 = 3;

/// How a length operand turns into units.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// `len >> n`: bytes.
    Down(u32),
    /// `len << n`: table elements.
    Up(u32),
}

/// The fixed cost of a bulk operator, whatever it moves: its call into the runtime.
pub const BULK_BASE: u64 = 32;

/// The middlewares that meter a module with a budget of `fuel` units per call, in order.
pub(crate) fn middlewares(fuel: u64) -> [Arc<dyn ModuleMiddleware>; 2] {
    [
        Arc::new(Metering::new(fuel, cost)),
        Arc::new(BulkMetering::default()),
    ]
}

/// The static cost of `op` for wasmer's [`Metering`].
fn cost(op: &Operator<'_>) -> u64 {
    if scale(op).is_some() { BULK_BASE } else { 1 }
}

/// For an operator whose work grows with its length operand (on top of the stack): how
/// that length turns into units.
fn scale(op: &Operator<'_>) -> Option<Scale> {
    match op {
        Operator::MemoryCopy { .. } | Operator::MemoryFill { .. } | Operator::MemoryInit { .. } => {
            Some(Scale::Down(BYTES_SHIFT))
        }
        Operator::TableCopy { .. }
        | Operator::TableFill { .. }
        | Operator::TableInit { .. }
        | Operator::TableGrow { .. } => Some(Scale::Up(ELEMENTS_SHIFT)),
        _ => None,
    }
}

/// Charges bulk operators for their length, at run time. Runs after wasmer's [`Metering`],
/// whose globals it uses; one per module, like it.
#[derive(Debug, Default)]
pub(crate) struct BulkMetering {
    globals: Mutex<Option<Globals>>,
}

/// Global indices: wasmer's points and flag, and this middleware's scratch `i32`.
#[derive(Debug, Clone, Copy)]
struct Globals {
    remaining: u32,
    exhausted: u32,
    scratch: u32,
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
        let scratch = info
            .globals
            .push(GlobalType::new(Type::I32, Mutability::Var));
        info.global_initializers.push(GlobalInit::I32Const(0));
        *globals = Some(Globals {
            remaining,
            exhausted,
            scratch: scratch.as_u32(),
        });
        Ok(())
    }
}

#[derive(Debug)]
struct FunctionBulkMetering {
    globals: Globals,
}

impl<'a> FunctionMiddleware<'a> for FunctionBulkMetering {
    fn feed(
        &mut self,
        operator: Operator<'a>,
        state: &mut MiddlewareReaderState<'a>,
    ) -> Result<(), MiddlewareError> {
        if let Some(scale) = scale(&operator) {
            let Globals {
                remaining,
                exhausted,
                scratch,
            } = self.globals;
            // The cost of the length in the scratch global, as an i64 on the stack. (A u32
            // shifted left by 3 cannot overflow an i64.)
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
            // scratch = len (popped); the operator's other operands stay below.
            state.push_operator(Operator::GlobalSet {
                global_index: scratch,
            });
            // if remaining < cost { exhausted = 1; unreachable }
            state.push_operator(Operator::GlobalGet {
                global_index: remaining,
            });
            state.extend(cost.iter().cloned());
            state.extend([
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
            state.extend(cost.iter().cloned());
            state.extend([
                Operator::I64Sub,
                Operator::GlobalSet {
                    global_index: remaining,
                },
                // len back on the stack, for the operator
                Operator::GlobalGet {
                    global_index: scratch,
                },
            ]);
        }
        state.push_operator(operator);
        Ok(())
    }
}
