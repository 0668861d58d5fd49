//! Resource limits: how large a module, how much memory and how many table elements a guest
//! may have, and how much work one call may do.

use std::ptr::NonNull;

use wasmer::sys::vm::{
    MemoryError, MemoryStyle, TableStyle, VMMemory, VMMemoryDefinition, VMTable, VMTableDefinition,
};
use wasmer::sys::{BaseTunables, Tunables};
use wasmer::{MemoryType, Pages, TableType};

/// Bytes in a Wasm page.
const PAGE: u64 = 64 * 1024;

/// Resource limits for loading and running a guest. The defaults are generous for a string
/// exchange and small enough that a hostile guest is stopped within about a second and a
/// few tens of MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest module accepted, in bytes; checked before it is read in full or compiled.
    pub max_module_bytes: u64,
    /// The most linear memory a guest may have, in bytes (rounded down to whole 64 KiB
    /// pages). A module that declares more at start is refused; `memory.grow` past it
    /// returns -1 in the guest, as Wasm specifies.
    pub max_memory_bytes: u64,
    /// The most elements a table may have; as for memory, a larger start is refused and
    /// `table.grow` past it returns -1.
    pub max_table_elements: u32,
    /// The work one call into the guest may do (the start function counts as one call), in
    /// units of about one simple Wasm operator. A call that runs out is stopped with
    /// [`Error::OutOfFuel`](crate::Error::OutOfFuel). Operators that call into the runtime
    /// cost [`RUNTIME_CALL`](crate::RUNTIME_CALL); bulk operators (`memory.copy`,
    /// `memory.fill`, `memory.init`, and `table.copy`, `table.fill`, `table.init`) add one
    /// unit per [`BYTES_PER_UNIT`](crate::BYTES_PER_UNIT) bytes (or
    /// [`UNITS_PER_ELEMENT`](crate::UNITS_PER_ELEMENT) units per element) they actually move,
    /// and `memory.grow` and `table.grow` [`UNITS_PER_PAGE`](crate::UNITS_PER_PAGE) a page
    /// (or [`UNITS_PER_ELEMENT`](crate::UNITS_PER_ELEMENT) an element) they actually grow, so
    /// the budget bounds time whatever the guest does, and charges an honest guest for its
    /// work.
    ///
    /// `None` compiles the module without metering: for guests you trust, calls then cost
    /// what a raw wasmer call costs, and an endless loop hangs the caller.
    pub fuel: Option<u64>,
    /// The most bytes [`GuestModule::transform_lines`](crate::GuestModule::transform_lines)
    /// holds: its input may be no longer, and the results it has made and not yet returned
    /// no larger ([`Error::BatchTooLarge`](crate::Error::BatchTooLarge) past either).
    pub max_batch_bytes: u64,
    /// The most host memory one value lifted from a guest through the canonical ABI may
    /// take ([`Val`](crate::Val)s and the strings they hold): a guest that claims a list of
    /// 10^8 empty records is refused before the host allocates for them
    /// ([`Violation::ValueTooLarge`](crate::Violation::ValueTooLarge)).
    pub max_value_bytes: u64,
    /// The most host memory a stream of lines
    /// ([`GuestModule::transform_stream`](crate::GuestModule::transform_stream)) may take
    /// for its instances and buffers, as [`stream_memory`](crate::stream_memory) counts it:
    /// a stream whose jobs need more is refused before it starts
    /// ([`Error::HostMemory`](crate::Error::HostMemory)).
    pub max_host_memory_bytes: u64,
}

/// A builder, since the struct is `#[non_exhaustive]` (`Limits { fuel: .., ..Default }`
/// does not compile outside this crate): each method sets one field.
///
/// ```
/// let limits = memhost::Limits::default()
///     .with_fuel(Some(1_000_000))
///     .with_max_memory_bytes(64 << 20);
/// assert_eq!(limits.fuel, Some(1_000_000));
/// ```
impl Limits {
    /// Sets [`Limits::max_module_bytes`].
    #[must_use]
    pub const fn with_max_module_bytes(mut self, bytes: u64) -> Self {
        self.max_module_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_memory_bytes`].
    #[must_use]
    pub const fn with_max_memory_bytes(mut self, bytes: u64) -> Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_table_elements`].
    #[must_use]
    pub const fn with_max_table_elements(mut self, elements: u32) -> Self {
        self.max_table_elements = elements;
        self
    }

    /// Sets [`Limits::fuel`] (`None`: no metering).
    #[must_use]
    pub const fn with_fuel(mut self, fuel: Option<u64>) -> Self {
        self.fuel = fuel;
        self
    }

    /// Sets [`Limits::max_batch_bytes`].
    #[must_use]
    pub const fn with_max_batch_bytes(mut self, bytes: u64) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_value_bytes`].
    #[must_use]
    pub const fn with_max_value_bytes(mut self, bytes: u64) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_host_memory_bytes`].
    #[must_use]
    pub const fn with_max_host_memory_bytes(mut self, bytes: u64) -> Self {
        self.max_host_memory_bytes = bytes;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_module_bytes: 16 << 20,
            max_memory_bytes: 16 << 20,
            max_table_elements: 10_000,
            fuel: Some(DEFAULT_FUEL),
            max_batch_bytes: 1 << 30,
            max_value_bytes: 256 << 20,
            max_host_memory_bytes: 2 << 30,
        }
    }
}

/// The default [`Limits::fuel`]: the demo's guest needs a few hundred units for its largest
/// call, and an endless loop, or a loop of bulk copies, uses this up in well under a second.
pub const DEFAULT_FUEL: u64 = 500_000_000;

impl Limits {
    /// [`Limits::max_memory_bytes`] in whole pages.
    pub fn max_memory_pages(&self) -> u32 {
        u32::try_from(self.max_memory_bytes / PAGE).unwrap_or(u32::MAX)
    }
}

/// wasmer's base tunables, with every memory and table capped by [`Limits`]. The cap lowers
/// a declared maximum, or supplies a missing one, so the compiled code and the runtime both
/// see it; a declared minimum above it fails instantiation with a clear message.
pub(crate) struct Capped {
    base: BaseTunables,
    max_pages: Pages,
    max_elements: u32,
}

impl Capped {
    pub(crate) fn new(limits: &Limits) -> Self {
        Capped {
            base: BaseTunables::new(),
            max_pages: Pages(limits.max_memory_pages()),
            max_elements: limits.max_table_elements,
        }
    }

    fn memory(&self, ty: &MemoryType) -> Result<MemoryType, MemoryError> {
        if ty.minimum > self.max_pages {
            return Err(MemoryError::Generic(format!(
                "the module asks for {} pages of memory at start; the limit is {} pages ({} bytes)",
                ty.minimum.0,
                self.max_pages.0,
                self.max_pages.bytes().0
            )));
        }
        let mut capped = *ty;
        capped.maximum = Some(
            ty.maximum
                .map_or(self.max_pages, |max| max.min(self.max_pages)),
        );
        Ok(capped)
    }

    fn table(&self, ty: &TableType) -> Result<TableType, String> {
        if ty.minimum > self.max_elements {
            return Err(format!(
                "the module asks for a table of {} elements at start; the limit is {}",
                ty.minimum, self.max_elements
            ));
        }
        let mut capped = *ty;
        capped.maximum = Some(
            ty.maximum
                .map_or(self.max_elements, |max| max.min(self.max_elements)),
        );
        Ok(capped)
    }
}

impl Tunables for Capped {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        // An invalid type is refused when the memory is created; style it as declared.
        self.base
            .memory_style(&self.memory(memory).unwrap_or(*memory))
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
    ) -> Result<VMMemory, MemoryError> {
        self.base.create_host_memory(&self.memory(ty)?, style)
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        let ty = self.memory(ty)?;
        // SAFETY: the caller upholds `create_vm_memory`'s contract for this location; only
        // the type changed, to one with a lower maximum.
        unsafe {
            self.base
                .create_vm_memory(&ty, style, vm_definition_location)
        }
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(&self.table(ty)?, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        let ty = self.table(ty)?;
        // SAFETY: as for `create_vm_memory`.
        unsafe {
            self.base
                .create_vm_table(&ty, style, vm_definition_location)
        }
    }
}
