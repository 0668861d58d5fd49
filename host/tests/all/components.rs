//! Component binaries: the one shape the host runs (a single core module importing
//! nothing, as `wasm-tools component new` wraps a wasm32-unknown-unknown build) runs as
//! that module, with the world of the component's exports; every other is refused in one
//! line saying what it holds. Never is a component read as a core module (once its nested
//! module's exports were checked as the file's: `missing export mem ... missing export
//! load`).

use crate::common;

use memhost::{Error, ErrorKind, GuestModule, Limits, Val};

use common::{canonical_wasm, memhost, temp_file};

/// The Rust canonical guest, componentized as `wasm-tools component new` does it.
fn component() -> Vec<u8> {
    wit_component::ComponentEncoder::default()
        .module(&canonical_wasm("target/guest/canonical.wasm"))
        .expect("the module's world decodes")
        .validate(true)
        .encode()
        .expect("the module componentizes")
}

#[test]
fn a_component_wrapping_one_module_runs_as_that_module() {
    let component = component();
    let module = GuestModule::from_bytes(&component, &Limits::default()).unwrap();
    let mut guest = module.instantiate().unwrap();
    assert_eq!(
        guest.call("transform", &[Val::String("x".into())]).unwrap(),
        Some(Val::String("x Wasm is cool!".into()))
    );
    // A function of an exported interface, named as in the core module's world.
    let names = module.functions();
    assert!(
        names.iter().any(|n| n.starts_with("memhost:test/text#")),
        "{names:?}"
    );
    assert_eq!(
        guest
            .call("memhost:test/text#upper", &[Val::String("abc".into())])
            .unwrap(),
        Some(Val::String("ABC".into()))
    );
    let typed = guest.typed::<(&str,), (String,)>("transform").unwrap();
    assert_eq!(typed.call(&mut guest, ("y",)).unwrap().0, "y Wasm is cool!");
    // Through the binary, as the core module answers.
    let path = temp_file("component.wasm", &component);
    let core = temp_file(
        "component-core.wasm",
        &canonical_wasm("target/guest/canonical.wasm"),
    );
    for file in [&path, &core] {
        let out = memhost()
            .args(["call", "--no-cache"])
            .arg(file)
            .args(["--invoke", r#"transform("hi")"#])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", file.display());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "\"hi Wasm is cool!\"\n",
            "{}",
            file.display()
        );
    }
}

#[test]
fn other_components_are_refused_in_one_line_saying_what_they_hold() {
    let cases = [
        (
            "a core module with imports",
            r#"(component
                 (core module $m (import "wasi_snapshot_preview1" "fd_write"
                                   (func (param i32 i32 i32 i32) (result i32)))))"#,
            "1 core module; its core module imports wasi_snapshot_preview1.fd_write",
        ),
        (
            "two modules and an import",
            r#"(component
                 (import "wasi:cli/environment@0.2.0" (instance))
                 (core module $a)
                 (core module $b))"#,
            "2 core modules; imports wasi:cli/environment@0.2.0",
        ),
        ("no module", "(component)", "0 core modules"),
        (
            "a module in a nested component",
            "(component (core module $a) (component (core module $b)))",
            "2 core modules; core modules inside nested components",
        ),
    ];
    for (what, wat, says) in cases {
        let bytes = common::wasm(wat);
        let err = GuestModule::from_bytes(&bytes, &Limits::default())
            .expect_err(what)
            .to_string();
        assert!(
            err.contains(&format!("is a component binary ({says})")),
            "{what}: {err}"
        );
        assert!(
            err.contains("run the core module it was made from"),
            "{what}: {err}"
        );
        assert!(!err.contains("missing export"), "{what}: {err}");
        let err = GuestModule::from_bytes(&bytes, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::Component { .. }), "{what}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::Module, "{what}");
        // Through the binary: one line, the module's exit code.
        let path = temp_file("refused-component.wasm", &bytes);
        let out = memhost().arg("--no-cache").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
        assert!(stderr.contains("is a component binary"), "{what}: {stderr}");
        assert_eq!(
            out.status.code(),
            Some(i32::from(ErrorKind::Module.exit_code())),
            "{what}: {stderr}"
        );
    }
}

#[test]
fn the_abi_check_refuses_to_read_a_component_as_a_module() {
    let err = abi::check::Summary::parse(&component()).unwrap_err();
    assert!(matches!(err, abi::check::ParseError::Component), "{err}");
    assert_eq!(err.to_string(), "a component binary, not a core module");
}
