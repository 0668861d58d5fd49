//! The library from Rust, as the README's "Use it from Rust" shows it: a wit-bindgen guest's
//! functions called typed and dynamically, and a guest whose world imports functions given
//! by the host. `cargo xtask build-guest --all`, then `cargo run -p host --example embed`.

use memhost::{GuestModule, HostFunctions, Limits, Val};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A wit-bindgen guest: its world's functions, typed or dynamic.
    let module = GuestModule::from_file("target/guest/canonical.wasm", &Limits::default())?;
    let mut guest = module.instantiate()?;
    let upper = guest.typed::<(&str,), (String,)>("memhost:test/text#upper")?;
    assert_eq!(upper.call(&mut guest, ("héllo",))?.0, "HÉLLO");
    assert_eq!(guest.invoke(r#"count("añb")"#)?.as_deref(), Some("3"));
    println!("upper(\"héllo\") = \"HÉLLO\", count(\"añb\") = 3");

    // A guest whose world imports functions: the host gives them (those this example does
    // not call fail if called).
    let host = [
        "wide",
        "fallible",
        "scale",
        "callback",
        "memhost:plugin/config#get",
    ]
    .into_iter()
    .fold(HostFunctions::default(), |host, name| {
        host.func(name, |_| Err("not given by this example".into()))
    })
    .typed("shout", |(s,): (String,)| Ok((s.to_uppercase(),)))
    .func("log", |args: &[Val]| {
        eprintln!("plugin: {args:?}");
        Ok(None)
    });
    let bytes = std::fs::read("target/guest/plugin.wasm")?;
    let (plugin, _) =
        GuestModule::from_bytes_with_imports(&bytes, &Limits::default(), None, None, &host)?;
    let mut plugin = plugin.instantiate()?;
    assert_eq!(plugin.invoke(r#"relay("hi")"#)?.as_deref(), Some(r#""HI""#));
    println!("relay(\"hi\") = \"HI\", through the host's shout");
    Ok(())
}
