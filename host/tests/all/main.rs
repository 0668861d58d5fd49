//! The host's integration tests, in one binary. Each test binary links wasmer, Cranelift
//! and wasmtime (about 110 MB in a debug build): one binary instead of one a file keeps a
//! fresh build a few GB smaller, and links once.
//!
//! Four files stay binaries of their own (`admission.rs`, `bounded.rs`, `resources.rs`,
//! `type_table.rs`): they bound the peak memory of a `memhost` they start, read with
//! `wait4`, and Linux counts in a child's peak the peak of the process that started it (at
//! `exec`). Their own binaries stay small; this one does not.

#[path = "../common/mod.rs"]
mod common;
mod counting;
mod oracle;
mod worlds;

mod allocation;
mod batches;
mod cache;
mod canonical;
mod cli;
mod components;
mod copy_paths;
mod demo;
mod derive;
mod fuel;
mod generated;
mod host_functions;
mod hostile;
mod hostile_alloc;
mod hostile_canonical;
mod known;
mod library;
mod lines;
mod plugin;
mod progress;
mod properties;
mod proposals;
mod red_team;
mod stops;
mod transform;
mod wasi;
mod world_imports;
