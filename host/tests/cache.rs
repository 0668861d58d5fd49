//! The module cache: a hit runs the same guest as a compile; a corrupt, truncated, foreign or
//! unreadable entry is a miss with a warning, and is replaced; a directory others can write
//! to is refused.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use host::{CacheOutcome, CacheWarning, Error, GuestModule, Limits, ModuleCache};
use sha2::{Digest as _, Sha256};

/// A fresh, empty cache directory of this test's own, under cargo's scratch directory for
/// tests (so that `cargo clean` removes it).
fn cache_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("host-cache-tests")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn load(cache: &ModuleCache, limits: &Limits) -> (GuestModule, CacheOutcome) {
    GuestModule::from_file_cached(common::guest_path(), limits, cache).unwrap()
}

/// The guest works as a freshly compiled one does.
fn works(module: &GuestModule) {
    let mut guest = module.instantiate().unwrap();
    assert_eq!(guest.string().unwrap(), "Hello, World!");
    guest.put_str("cached").unwrap();
    guest.transform().unwrap();
    assert_eq!(guest.string().unwrap(), "cached Wasm is cool!");
    assert!(
        guest.fuel_used().unwrap() > 0,
        "the loaded module is metered"
    );
}

fn rejected_because(outcome: &CacheOutcome) -> &str {
    match outcome.warnings.as_slice() {
        [CacheWarning::Rejected { why, entry }] => {
            assert_eq!(entry, &outcome.entry);
            why
        }
        other => panic!("expected one rejection, got {other:?}"),
    }
}

/// A miss compiles and stores; the next load is a hit.
fn primed(name: &str) -> (ModuleCache, PathBuf) {
    let cache = ModuleCache::open(cache_dir(name)).unwrap();
    let (module, outcome) = load(&cache, &Limits::default());
    assert!(!outcome.hit);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    works(&module);
    (cache, outcome.entry)
}

#[test]
fn a_second_load_is_a_hit_and_runs_the_same_guest() {
    let (cache, entry) = primed("hit");
    assert!(entry.starts_with(cache.dir()));
    let (module, outcome) = load(&cache, &Limits::default());
    assert!(outcome.hit, "{outcome:?}");
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert_eq!(outcome.entry, entry);
    works(&module);
}

#[cfg(unix)]
#[test]
fn the_directory_and_its_entries_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let (cache, entry) = primed("private");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(cache.dir()), 0o700);
    assert_eq!(mode(&entry), 0o600);
    // Nothing is left behind but the entry.
    let names: Vec<_> = fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names, [entry]);
}

#[cfg(unix)]
#[test]
fn a_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = cache_dir("open");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let err = ModuleCache::open(&dir).unwrap_err();
    assert!(matches!(err, Error::CacheDir { .. }), "{err:?}");
    assert!(
        err.to_string().contains("writable by group or others"),
        "{err}"
    );
    assert_eq!(err.kind(), host::ErrorKind::Module);
}

#[test]
fn a_file_is_not_a_cache_directory() {
    let dir = cache_dir("file");
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    fs::write(&dir, b"not a directory").unwrap();
    let err = ModuleCache::open(&dir).unwrap_err();
    assert!(matches!(err, Error::CacheDir { .. }), "{err:?}");
}

/// Loads with an entry damaged by `damage`: a miss that says `why`, a working guest, and the
/// entry replaced (the load after is a hit).
fn damaged(name: &str, damage: impl FnOnce(&Path), why: &str) {
    let (cache, entry) = primed(name);
    damage(&entry);
    let (module, outcome) = load(&cache, &Limits::default());
    assert!(!outcome.hit);
    let because = rejected_because(&outcome);
    assert!(because.contains(why), "{because}");
    works(&module);
    let (module, outcome) = load(&cache, &Limits::default());
    assert!(outcome.hit, "the entry was not replaced: {outcome:?}");
    works(&module);
}

#[test]
fn a_corrupt_entry_is_a_miss_and_is_replaced() {
    damaged(
        "corrupt",
        |entry| {
            let mut bytes = fs::read(entry).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
            fs::write(entry, bytes).unwrap();
        },
        "its hash does not match its contents",
    );
}

#[test]
fn a_truncated_entry_is_a_miss_and_is_replaced() {
    damaged(
        "truncated",
        |entry| {
            let bytes = fs::read(entry).unwrap();
            fs::write(entry, &bytes[..bytes.len() / 2]).unwrap();
        },
        "where the header says",
    );
    damaged(
        "headless",
        |entry| fs::write(entry, b"hostmc").unwrap(),
        "shorter than its header",
    );
    damaged(
        "alien",
        |entry| fs::write(entry, vec![7u8; 4096]).unwrap(),
        "not an entry of this format",
    );
}

#[test]
fn another_modules_entry_under_this_name_is_a_miss() {
    let (cache, entry) = primed("foreign");
    // The same module with other limits is another entry: another key, another file.
    let mut other = Limits::default();
    other.fuel = Some(1_000_000);
    let (_, outcome) = load(&cache, &other);
    assert!(!outcome.hit);
    assert_ne!(outcome.entry, entry);
    // Its entry, a sound one, copied over the first.
    fs::copy(&outcome.entry, &entry).unwrap();
    let (module, outcome) = load(&cache, &Limits::default());
    assert!(!outcome.hit);
    assert!(rejected_because(&outcome).contains("it holds another module"));
    works(&module);
}

/// An entry whose header is sound but whose payload is not wasmer's: what an entry of
/// another wasmer looks like (wasmer checks its own header and version).
#[test]
fn a_payload_wasmer_cannot_load_is_a_miss() {
    damaged(
        "payload",
        |entry| {
            let bytes = fs::read(entry).unwrap();
            let key = &bytes[8..40];
            let payload = b"wasmer-universal but not from this version of wasmer";
            let mut hash = Sha256::new();
            hash.update(&bytes[..8]);
            hash.update(key);
            hash.update(payload);
            let mut forged = bytes[..40].to_vec();
            forged.extend_from_slice(&hash.finalize());
            forged.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            forged.extend_from_slice(payload);
            fs::write(entry, forged).unwrap();
        },
        "wasmer cannot load it",
    );
}

/// An entry that cannot be read or replaced (here a directory in its place): two warnings,
/// and the module all the same.
#[test]
fn an_unusable_entry_costs_a_compile_not_the_module() {
    let (cache, entry) = primed("unusable");
    fs::remove_file(&entry).unwrap();
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inside"), b"x").unwrap();
    let (module, outcome) = load(&cache, &Limits::default());
    assert!(!outcome.hit);
    assert!(
        matches!(
            outcome.warnings.as_slice(),
            [
                CacheWarning::Unreadable { .. } | CacheWarning::Rejected { .. },
                CacheWarning::NotStored { .. }
            ]
        ),
        "{:?}",
        outcome.warnings
    );
    works(&module);
}

/// Admission runs on the bytes whether or not the cache has the module: a refused module is
/// refused before the cache is looked at, and nothing is stored for it.
#[test]
fn a_refused_module_is_refused_and_not_stored() {
    let cache = ModuleCache::open(cache_dir("refused")).unwrap();
    let wasm = common::wasm(r#"(module (memory (export "mem") 1))"#);
    let err = GuestModule::from_bytes_cached(&wasm, &Limits::default(), &cache).unwrap_err();
    assert!(matches!(err, Error::Abi { .. }), "{err:?}");
    assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 0);
}

/// The binary: a second run loads from the cache and prints the same; a damaged entry is a
/// warning on standard error, and the run succeeds; --no-cache touches no directory.
#[test]
fn the_binary_uses_the_cache_and_warns_about_damage() {
    let dir = cache_dir("binary");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
            .arg(common::guest_path())
            .args(["--cache-dir".as_ref(), dir.as_os_str(), "-v".as_ref()])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (cold, err) = run(&[]);
    assert!(err.contains("module compiled, stored in"), "{err}");
    let (warm, err) = run(&[]);
    assert!(err.contains("module loaded from"), "{err}");
    assert_eq!(cold, warm);
    let entry = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    fs::write(&entry, b"damaged").unwrap();
    let (damaged, err) = run(&[]);
    assert!(err.contains("warning: cache entry"), "{err}");
    assert!(err.contains("rejected"), "{err}");
    assert_eq!(cold, damaged);

    let untouched = cache_dir("binary-no-cache");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .arg(common::guest_path())
        .arg("--no-cache")
        .env("XDG_CACHE_HOME", &untouched)
        .env("HOME", &untouched)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), cold);
    assert!(!untouched.exists());
}

/// The cache keeps to its size: storing an entry removes the least recently used ones
/// until the rest fit, and a hit counts as a use.
#[test]
fn the_least_recently_used_entries_make_room() {
    let dir = cache_dir("trim");
    let limits = |fuel| {
        let mut limits = Limits::default();
        limits.fuel = Some(fuel);
        limits
    };
    let cache = ModuleCache::open(&dir).unwrap();
    // Three entries of the same module under three budgets: three keys.
    let entries: Vec<PathBuf> = [1_000_000, 2_000_000, 3_000_000]
        .map(|fuel| load(&cache, &limits(fuel)).1.entry)
        .into();
    let size = fs::metadata(&entries[0]).unwrap().len();
    // Let the modification times differ, then use the oldest again.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(load(&cache, &limits(1_000_000)).1.hit);
    // Room for two and a half: storing a fourth removes the least recently used until the
    // rest fit, the second and the third.
    let small = ModuleCache::open(&dir)
        .unwrap()
        .with_max_bytes(2 * size + size / 2);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (_, fourth) = load(&small, &limits(4_000_000));
    assert!(!fourth.hit);
    let left: Vec<bool> = entries.iter().map(|e| e.exists()).collect();
    assert_eq!(
        left,
        [true, false, false],
        "the first was used last; 2 and 3 go"
    );
    assert!(fourth.entry.exists(), "the new entry stays");
}
