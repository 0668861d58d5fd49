//! Linker settings for the wasm32 build of the guest (natively there is nothing to set).

/// Bytes of shadow stack. The guest never recurses; the deepest use is the 16-byte frame of
/// the multi-value `load` wrapper that `cargo xtask build-guest` adds.
const STACK_SIZE: u32 = 4096;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("wasm32") {
        return;
    }
    for arg in [
        // Export the memory as `mem`, the name the Wasmer guide's host uses.
        "--export-memory=mem".to_string(),
        // One 64 KiB page at start: room for the stack and the buffer. No maximum: the heap
        // grows with `memory.grow` as far as the host's cap allows.
        "--initial-memory=65536".to_string(),
        format!("-zstack-size={STACK_SIZE}"),
    ] {
        println!("cargo::rustc-link-arg-cdylib={arg}");
    }
}
