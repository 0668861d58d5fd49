//! Lifting from hostile memory, coverage-guided: random types (the generated worlds of the
//! differential test, `host/tests/all/worlds.rs`) × random memory images and pointers,
//! lifted by the library and by wasmtime's Component Model from the same module. Each input
//! must give both engines' refusal, or the value both lift; a panic, or engines that
//! disagree, is a finding.
//!
//! An input picks one of 8 worlds (built once, then kept), one of its tested types, a
//! pointer and the bytes of guest memory: the world's `get` function copies the bytes to 0
//! and returns the value at the pointer (through a return area, or one flat value loaded
//! from there).
//!
//! `cargo +nightly fuzz run -s none canonical` (`-s none`: see `guest.rs`).
#![no_main]

#[path = "../../host/tests/all/oracle.rs"]
mod oracle;
#[path = "../../host/tests/all/worlds.rs"]
#[allow(dead_code, reason = "the differential test's generator, of which this uses part")]
mod worlds;

use std::cell::RefCell;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use memhost::{Guest, GuestModule, Limits, Val};

use oracle::{Oracle, same};
use worlds::World;

/// The worlds inputs pick from.
const WORLDS: u64 = 8;

struct Fixture {
    world: World,
    module: GuestModule,
    ours: Guest,
    theirs: Oracle,
}

thread_local! {
    /// Built on the first input (libFuzzer runs inputs on one thread; an instance is not
    /// `Send`).
    static FIXTURES: Vec<RefCell<Fixture>> = (0..WORLDS)
        .map(|seed| {
            let world = World::generate(seed);
            let module = GuestModule::from_bytes(&world.module, &Limits::default())
                .expect("the library admits every generated world");
            let ours = module.instantiate().expect("it instantiates");
            let theirs = Oracle::new(&world.module);
            RefCell::new(Fixture {
                world,
                module,
                ours,
                theirs,
            })
        })
        .collect();
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    FIXTURES.with(|fixtures| {
        let which = u.int_in_range(0..=fixtures.len() - 1)?;
        lift(u, which, &mut fixtures[which].borrow_mut())
    })
}

fn lift(u: &mut Unstructured<'_>, which: usize, f: &mut Fixture) -> Result<()> {
    let tested = u.int_in_range(0..=f.world.tested.len() - 1)?;
    // Pointers near the image mostly, anywhere sometimes.
    let p: u32 = if u.ratio(1, 8)? {
        u.arbitrary()?
    } else {
        u.int_in_range(0..=512)?
    };
    let len = u.int_in_range(0..=4096)?;
    let bytes = u.bytes(len.min(u.len()))?;
    let name = f.world.tested[tested].get.clone();
    let params = [
        Val::U32(p),
        Val::List(bytes.iter().map(|b| Val::U8(*b)).collect()),
    ];
    let ours = f.ours.call(&name, &params);
    let theirs = f.theirs.try_call(&name, &params);
    match (&ours, &theirs) {
        (Ok(Some(a)), Ok(Some(b))) if same(a, b) => {}
        (Err(_), Err(_)) => {}
        _ => panic!(
            "world {which}, {name}(p = {p}, {} bytes): the library {ours:?}, wasmtime {theirs:?}",
            bytes.len()
        ),
    }
    if ours.is_err() {
        // A trapped instance is entered again by neither engine.
        f.ours = f.module.instantiate().expect("it instantiates");
        f.theirs.restart();
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
