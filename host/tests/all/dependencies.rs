//! What the library brings into an embedder's tree, from the lock file (`cargo tree`,
//! offline): no wasm-encoder of its own beside the one wit-component brings, and none of
//! the binary's dependencies, libc included, without the `cli` feature.

use std::process::Command;

/// `cargo tree -p host -e normal` with `args`, each line prefixed by its depth.
fn tree(args: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "host", "-e", "normal", "--prefix", "depth"])
        .args(["--locked", "--offline"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(depth, name, version)` of each line of a depth-prefixed tree.
fn rows(tree: &str) -> Vec<(usize, &str, &str)> {
    tree.lines()
        .filter_map(|line| {
            let digits = line.find(|c: char| !c.is_ascii_digit())?;
            let depth = line[..digits].parse().ok()?;
            let mut words = line[digits..].split(' ');
            Some((depth, words.next()?, words.next()?))
        })
        .collect()
}

/// Outside wasmer's own subtree (whose compiler brings the wasm-encoder it links with),
/// every wasm-encoder in the library's tree is one version: host's, wat's and
/// wit-component's. (There were two: host and wat at 0.263 beside wit-component's 0.257.1.)
#[test]
fn the_library_brings_one_wasm_encoder() {
    let tree = tree(&[]);
    let mut versions = Vec::new();
    let mut in_wasmer = false;
    for (depth, name, version) in rows(&tree) {
        if depth == 1 {
            in_wasmer = name.starts_with("wasmer");
        }
        if !in_wasmer && name == "wasm-encoder" && !versions.contains(&version) {
            versions.push(version);
        }
    }
    assert_eq!(
        versions.len(),
        1,
        "wasm-encoder versions {versions:?} in:\n{tree}"
    );
}

/// Without the `cli` feature, none of the binary's dependencies is the library's.
#[test]
fn the_library_alone_has_none_of_the_binarys_dependencies() {
    let direct: Vec<String> = rows(&tree(&["--no-default-features", "--depth", "1"]))
        .into_iter()
        .filter(|(depth, _, _)| *depth == 1)
        .map(|(_, name, _)| name.to_string())
        .collect();
    for cli in ["clap", "clap_complete", "indicatif", "parse-size", "libc"] {
        assert!(!direct.iter().any(|d| d == cli), "{cli} in {direct:?}");
    }
    assert!(direct.iter().any(|d| d == "wasmer"), "{direct:?}");
}
