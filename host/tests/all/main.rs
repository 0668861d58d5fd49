//! The host's integration tests, in one binary. Each test binary links wasmer, Cranelift
//! and wasmtime (about 110 MB in a debug build): one binary instead of one a file keeps a
//! fresh build a few GB smaller, and links once. The tests that bound the peak memory of a
//! `memhost` they start read the child's own `VmHWM` (`--peak-memory`), not `wait4`'s
//! `ru_maxrss`, which would count this binary's peak too (Linux carries it over `exec`).

#[path = "../common/mod.rs"]
mod common;
mod counting;
mod oracle;
mod worlds;

mod admission;
mod allocation;
mod batches;
mod bounded;
mod cache;
mod canonical;
mod cli;
mod components;
mod copy_paths;
mod demo;
mod dependencies;
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
mod resources;
mod stops;
mod transform;
mod type_table;
mod wasi;
mod world_imports;
