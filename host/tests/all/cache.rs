//! The module cache: a hit runs the same guest as a compile; a corrupt, truncated, foreign or
//! unreadable entry is a miss with a warning, and is replaced; a directory others can write
//! to is refused.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use memhost::{CacheOutcome, CacheWarning, Error, GuestModule, Limits, ModuleCache};
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
    assert_eq!(err.kind(), memhost::ErrorKind::Module);
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
        "the file holds",
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
        let out = common::memhost()
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
    let out = common::memhost()
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

/// Runs `f` on another thread and fails the test if it has not returned within `limit`
/// (a hang is a failure, not a stuck test run).
fn within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}: it hangs"))
}

/// A FIFO, a directory, a symbolic link or a device in an entry's place is a miss with a
/// warning, never a hang (a FIFO opened for reading waits for a writer) and never read.
#[test]
fn special_files_in_an_entry_s_place_are_misses() {
    /// A name, how to put the special file in the entry's place, and what the warning says.
    type Case = (&'static str, fn(&Path), &'static str);
    let cases: [Case; 4] = [
        (
            "fifo",
            |entry| {
                let path = std::ffi::CString::new(entry.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: a valid C string; `mkfifo` has no other precondition.
                assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
            },
            "a FIFO",
        ),
        (
            "directory",
            |entry| fs::create_dir(entry).unwrap(),
            "a directory",
        ),
        (
            "symlink",
            |entry| {
                let target = entry.with_extension("target");
                fs::write(&target, b"x").unwrap();
                std::os::unix::fs::symlink(&target, entry).unwrap();
            },
            "a symbolic link",
        ),
        (
            "device",
            |entry| std::os::unix::fs::symlink("/dev/zero", entry).unwrap(),
            "a symbolic link",
        ),
    ];
    for (name, make, why) in cases {
        let (cache, entry) = primed(&format!("special-{name}"));
        fs::remove_file(&entry).unwrap();
        make(&entry);
        let (cache2, why2) = (cache.clone(), why.to_string());
        let outcome = within(std::time::Duration::from_secs(20), move || {
            let (module, outcome) = load(&cache2, &Limits::default());
            works(&module);
            outcome
        });
        assert!(!outcome.hit, "{name}");
        // The warning says why; the store after it could not replace a directory, and
        // says so too.
        let said: Vec<String> = outcome.warnings.iter().map(ToString::to_string).collect();
        assert!(said[0].contains(&why2), "{name}: {said:?}");
        drop(cache);
    }
}

/// An entry whose header is damaged costs its header, not its size: a sparse file of 4 GiB
/// is refused after 80 bytes (before, it was read whole: 9.6 s and 4.2 GB).
#[test]
fn a_damaged_header_costs_the_header_not_the_size() {
    let (cache, entry) = primed("sparse");
    for (name, header) in [
        ("zeros", vec![0_u8; 80]),
        ("key kept, length a lie", {
            let mut header = fs::read(&entry).unwrap()[..80].to_vec();
            header[72..80].copy_from_slice(&7_u64.to_le_bytes());
            header
        }),
    ] {
        let file = fs::File::create(&entry).unwrap();
        std::io::Write::write_all(&mut &file, &header).unwrap();
        file.set_len(4 << 30).unwrap();
        let mut limits = Limits::default();
        limits.max_module_bytes = 64 << 20;
        let cache2 = cache.clone();
        let start = std::time::Instant::now();
        let outcome = within(std::time::Duration::from_secs(20), move || {
            load(&cache2, &limits).1
        });
        let elapsed = start.elapsed();
        let because = rejected_because(&outcome);
        println!("{name}: rejected in {elapsed:?}: {because}");
        assert!(
            because.contains("not an entry of this format") || because.contains("its header says"),
            "{name}: {because}"
        );
        // The compile after it takes most of this; reading 4 GiB would take seconds.
        assert!(
            elapsed < std::time::Duration::from_secs(5),
            "{name}: {elapsed:?}"
        );
    }
}

/// A payload larger than any compiled module could be is refused on its header.
#[test]
fn an_over_size_entry_is_refused_on_its_header() {
    let (cache, entry) = primed("over-size");
    let mut header = fs::read(&entry).unwrap()[..80].to_vec();
    let huge: u64 = 2 << 30;
    header[72..80].copy_from_slice(&huge.to_le_bytes());
    let file = fs::File::create(&entry).unwrap();
    std::io::Write::write_all(&mut &file, &header).unwrap();
    file.set_len(80 + huge).unwrap();
    let (_, outcome) = load(&cache, &Limits::default());
    let because = rejected_because(&outcome);
    assert!(because.contains("over the limit"), "{because}");
}

/// The directory is opened once and used through that handle: renamed after the check and
/// replaced by another directory holding a forged entry (whose key and hash were recomputed,
/// as someone who can swap the directory can), the cache still reads the directory it
/// checked. (Before, it opened entries by path, and ran the forged code: "PWNED".)
#[test]
fn a_directory_swapped_after_the_check_is_not_read() {
    let base = cache_dir("swap");
    let dir = base.join("cache");
    let seed = common::SEED_WAT;
    let pwned = seed.replace("Hello, World!", "PWNED!!!!!!!!");
    let seed_bytes = common::wasm(seed);
    let limits = Limits::default();
    // The forger's payload: the other module, compiled in a cache of their own.
    let theirs = ModuleCache::open(base.join("theirs")).unwrap();
    let (_, outcome) =
        GuestModule::from_bytes_cached(&common::wasm(&pwned), &limits, &theirs).unwrap();
    let payload = fs::read(&outcome.entry).unwrap()[80..].to_vec();

    let cache = ModuleCache::open(&dir).unwrap();
    let (_, outcome) = GuestModule::from_bytes_cached(&seed_bytes, &limits, &cache).unwrap();
    let name = outcome.entry.file_name().unwrap().to_owned();
    let key: [u8; 32] = fs::read(&outcome.entry).unwrap()[8..40].try_into().unwrap();

    // The swap: the checked directory renamed away, another put in its place, holding an
    // entry for the same key with the forger's code and a matching hash.
    fs::rename(&dir, base.join("moved")).unwrap();
    fs::create_dir(&dir).unwrap();
    let mut forged = b"hostmc\0\x01".to_vec();
    forged.extend_from_slice(&key);
    let mut hash = Sha256::new();
    hash.update(b"hostmc\0\x01");
    hash.update(key);
    hash.update(&payload);
    forged.extend_from_slice(&hash.finalize());
    forged.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    forged.extend_from_slice(&payload);
    fs::write(dir.join(&name), &forged).unwrap();
    // The forged entry loads, through a cache opened on the new directory: the forgery is
    // sound, and only the handle stands between it and the old cache.
    let (forged_module, hit) = {
        let fresh = ModuleCache::open(&dir).unwrap();
        let (m, o) = GuestModule::from_bytes_cached(&seed_bytes, &limits, &fresh).unwrap();
        (m, o.hit)
    };
    assert!(hit);
    assert_eq!(
        forged_module.instantiate().unwrap().string().unwrap(),
        "PWNED!!!!!!!!"
    );

    let (module, outcome) = GuestModule::from_bytes_cached(&seed_bytes, &limits, &cache).unwrap();
    assert!(
        outcome.hit,
        "the checked directory still holds the genuine entry"
    );
    assert_eq!(
        module.instantiate().unwrap().string().unwrap(),
        "Hello, World!"
    );
}

/// Temporary files that a dead writer left are removed once an hour old; younger ones (a
/// writer at work) stay; entries are not touched.
#[test]
fn stale_temporary_files_are_removed() {
    let (cache, entry) = primed("tmp");
    let dir = cache.dir().to_path_buf();
    let old = dir.join(".tmp-dead-writer");
    let young = dir.join(".tmp-live-writer");
    fs::write(&old, b"half an entry").unwrap();
    fs::write(&young, b"half an entry").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    // A store (a new key: other fuel) trims.
    let mut limits = Limits::default();
    limits.fuel = Some(12_345_678);
    let (_, outcome) = load(&cache, &limits);
    assert!(!outcome.hit);
    assert!(!old.exists(), "the stale temporary file stays");
    assert!(young.exists(), "a live writer's file was removed");
    assert!(entry.exists());
}

/// Writers at once, in threads and against the same key: every load gets a working module,
/// and the entry left is whole (the next load is a hit without a warning).
#[test]
fn concurrent_writers_leave_a_whole_entry() {
    let dir = cache_dir("concurrent");
    let cache = ModuleCache::open(&dir).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let cache = cache.clone();
            scope.spawn(move || {
                let (module, outcome) = load(&cache, &Limits::default());
                assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
                works(&module);
            });
        }
    });
    let (_, outcome) = load(&cache, &Limits::default());
    assert!(outcome.hit && outcome.warnings.is_empty(), "{outcome:?}");
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 1, "one entry and no temporary file: {left:?}");
}

/// Every input that changes the compiled code changes the key: the memory cap, the table
/// cap, the fuel, and the bytes.
#[test]
fn the_key_changes_with_every_cap() {
    let cache = ModuleCache::open(cache_dir("key")).unwrap();
    let entry = |limits: &Limits| load(&cache, limits).1.entry;
    let default = Limits::default();
    let mut memory = default.clone();
    memory.max_memory_bytes = 32 << 20;
    let mut table = default.clone();
    table.max_table_elements = 20_000;
    let mut fuel = default.clone();
    fuel.fuel = Some(7);
    let mut unmetered = default.clone();
    unmetered.fuel = None;
    let entries: Vec<PathBuf> = [&default, &memory, &table, &fuel, &unmetered]
        .into_iter()
        .map(entry)
        .collect();
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[i + 1..] {
            assert_ne!(a, b);
        }
    }
    let seed = GuestModule::from_bytes_cached(&common::wasm(common::SEED_WAT), &default, &cache)
        .unwrap()
        .1
        .entry;
    assert!(!entries.contains(&seed));
    // A batch limit changes nothing that is compiled: the same entry.
    let mut batch = default.clone();
    batch.max_batch_bytes = 1;
    assert_eq!(entry(&batch), entries[0]);
}

/// A directory owned by another user is refused when it is opened. (As root, the test makes
/// one with `chown`; as anyone else, `/` is such a directory.)
#[test]
fn a_directory_of_another_user_is_refused() {
    // SAFETY: no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let dir = if root {
        let dir = cache_dir("other-user");
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        dir
    } else {
        PathBuf::from("/")
    };
    let err = ModuleCache::open(&dir).unwrap_err();
    assert!(
        matches!(&err, Error::CacheDir { why, .. } if why.contains("owned by user")),
        "{err:?}"
    );
}

/// A symbolic link in the cache directory's place is not followed.
#[test]
fn a_linked_cache_directory_is_refused() {
    let base = cache_dir("linked");
    fs::create_dir_all(base.join("real")).unwrap();
    std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
    let err = ModuleCache::open(base.join("link")).unwrap_err();
    assert!(
        matches!(&err, Error::CacheDir { why, .. } if why.contains("symbolic link")),
        "{err:?}"
    );
}
