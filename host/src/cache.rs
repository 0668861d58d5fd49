//! A cache of compiled modules on disk, for a warm start.
//!
//! Compiling is most of what starting costs: about 1.6 ms for the demo's module, 18 s for a
//! 14 MB one, every time. [`ModuleCache`] keeps what Cranelift made, as wasmer serializes
//! it, in one file per module, and loads it again instead of compiling.
//!
//! # Keys
//!
//! An entry is named by a SHA-256 over [`KeyInputs`], one structure that holds everything
//! that changes the compiled code: the bytes that are compiled (after admission rewrote
//! them), this crate's and wasmer's versions, the compiler, the target and its CPU features,
//! the Wasm proposals the engine accepts, the fuel, the metering and admission rules (their
//! constants, and a digest of the source files that hold them, so that any change to how
//! code is metered or admitted is a new key without anyone remembering to bump a version),
//! and the memory and table caps (wasmer compiles bounds checks to fit them). A change to any
//! of them is a different entry, never a stale one.
//!
//! # Trust
//!
//! An entry is native code that is run: whoever can write the cache can run code as its
//! user. So:
//!
//! - the directory is created private to its user (mode 0700), opened once, without
//!   following a symbolic link, and its owner and mode are checked on that open handle:
//!   one that another user owns or can write to is refused ([`Error::CacheDir`]), and not
//!   used at all. Every entry is then opened, written, renamed, listed and removed relative
//!   to that handle (`openat`, `renameat`, `unlinkat`), so a directory renamed or replaced
//!   after the check is never the one read;
//! - an entry is opened without following a symbolic link and without blocking, and is
//!   read only when it is a regular file that this user owns: a FIFO, a device, a
//!   directory or a link is a miss with a warning, never a hang;
//! - an entry is written to a temporary file (mode 0600) and renamed into place, so that a
//!   reader sees a whole entry or none;
//! - each entry starts with a fixed-size header that holds its key, its payload's length
//!   and a SHA-256 over the magic, the key and the payload. The header is read and checked
//!   first (the format, the key is the one asked for, so that a foreign entry copied under
//!   another name fails, and the length matches the file and is sane), so a damaged entry
//!   costs its header, not its size; then the payload is read and its hash checked (a
//!   corrupt or truncated one fails here). An entry that fails is a miss: the module is
//!   compiled again and the entry replaced, with a [`CacheWarning`] saying why.
//!
//! The cache needs a Unix system (`openat` and file owners).
//!
//! The hash detects damage, not an attacker who can write the directory (who could write a
//! matching hash too): the directory's privacy is what keeps those out.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use sha2::{Digest as _, Sha256};
use wasmer::sys::NativeEngineExt as _;
use wasmer::{Engine, Module};

use crate::{Error, Limits, metering, module, prepare};

/// The first bytes of every entry; the last byte is the format's version.
const MAGIC: &[u8; 8] = b"hostmc\0\x01";
/// Magic, key, hash, payload length: 80 bytes, a multiple of 16, so that the payload keeps
/// the 16-byte alignment wasmer's archive needs (see [`Aligned`]).
const HEADER: usize = 8 + 32 + 32 + 8;
/// The wasmer this crate is built with (checked against `Cargo.lock` by a test): part of
/// every key, since its artifacts are not portable across versions.
pub(crate) const WASMER_VERSION: &str = "7.4.2";
/// Temporary files start with this; those older than [`STALE_TMP`] were left by a writer
/// that died, and are removed.
const TMP_PREFIX: &str = ".tmp-";
const STALE_TMP: Duration = Duration::from_secs(3600);

/// A directory of compiled modules (`cache.rs` says how entries are keyed, checked and
/// trimmed).
#[derive(Debug, Clone)]
pub struct ModuleCache {
    /// The directory's path, for messages only: nothing is opened through it after `open`.
    path: PathBuf,
    /// The directory, opened once and checked.
    dir: Arc<OwnedFd>,
    max_bytes: u64,
}

/// The most a cache holds by default: room for the demo's module thirty thousand times, or
/// for about ten compiled modules of 10 MB of Wasm.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// What a load through the cache did.
#[derive(Debug)]
#[non_exhaustive]
pub struct CacheOutcome {
    /// The module came from the cache, not from the compiler.
    pub hit: bool,
    /// The entry's file.
    pub entry: PathBuf,
    /// What went wrong with the cache on the way; the module is good all the same.
    pub warnings: Vec<CacheWarning>,
}

/// A problem with the cache that cost a compile but not the module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheWarning {
    /// The entry was there but not fit to load; the module was compiled again and the
    /// entry replaced.
    #[error("cache entry {} rejected ({why}); compiled again", entry.display())]
    Rejected {
        /// The entry's file.
        entry: PathBuf,
        /// What was wrong with it.
        why: String,
    },
    /// The entry could not be read.
    #[error("cannot read cache entry {}", entry.display())]
    Unreadable {
        /// The entry's file.
        entry: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The compiled module could not be stored; the next start compiles again.
    #[error("cannot store cache entry {}: {why}", entry.display())]
    NotStored {
        /// The entry's file.
        entry: PathBuf,
        /// Why.
        why: String,
    },
}

/// What a lookup found.
pub(crate) enum Lookup {
    Hit(Module),
    Miss,
    Rejected(CacheWarning),
}

/// Everything that changes the code compiled for a module: an entry's key is a SHA-256 over
/// all of it. Adding an input means adding a field here, and nowhere else.
#[derive(Debug)]
pub(crate) struct KeyInputs<'a> {
    /// The bytes that are compiled, after admission rewrote them.
    wasm: &'a [u8],
    host: &'static str,
    wasmer: &'static str,
    /// The compiler, and its settings that wasmer counts.
    compiler: String,
    /// The target: architecture and CPU features.
    target: String,
    /// The Wasm proposals the engine accepts.
    features: String,
    fuel: Option<u64>,
    /// How operators are metered: constants and a digest of their source.
    metering: String,
    /// What admission refuses and rewrites: its constants, a digest of its source and the
    /// limits'.
    admission: String,
    memory_pages: u32,
    table_elements: u32,
}

impl<'a> KeyInputs<'a> {
    pub(crate) fn new(engine: &Engine, limits: &Limits, wasm: &'a [u8]) -> KeyInputs<'a> {
        KeyInputs {
            wasm,
            host: env!("CARGO_PKG_VERSION"),
            wasmer: WASMER_VERSION,
            compiler: engine.deterministic_id().to_string(),
            target: format!("{:?}", engine.target()),
            features: format!("{:?}", module::features()),
            fuel: limits.fuel,
            // The digests of the rules' sources are taken here, where the key is made, so
            // that neither module depends on the cache.
            metering: format!(
                "{}; source {}",
                metering::rules(),
                source_digest(include_str!("metering.rs"))
            ),
            admission: format!(
                "{}; source {}; limits {}",
                prepare::rules(),
                source_digest(include_str!("prepare.rs")),
                source_digest(include_str!("limits.rs"))
            ),
            memory_pages: limits.max_memory_pages(),
            table_elements: limits.max_table_elements,
        }
    }

    /// The key: a SHA-256 over every field but the bytes (as text, ended by a zero byte,
    /// which the text cannot hold), then the bytes.
    pub(crate) fn key(&self) -> [u8; 32] {
        let KeyInputs {
            wasm,
            host,
            wasmer,
            compiler,
            target,
            features,
            fuel,
            metering,
            admission,
            memory_pages,
            table_elements,
        } = self;
        let config = format!(
            "host {host:?} / wasmer {wasmer:?} / compiler {compiler:?} / target {target:?} / \
             features {features:?} / fuel {fuel:?} / {metering:?} / {admission:?} / \
             memory pages {memory_pages} / table elements {table_elements}"
        );
        let mut hash = Sha256::new();
        hash.update(config.as_bytes());
        hash.update([0]);
        hash.update(wasm);
        hash.finalize().into()
    }
}

/// A short digest of a source file's text, for the rules in a key.
fn source_digest(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..12])
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl ModuleCache {
    /// The user's cache directory for this crate: `$XDG_CACHE_HOME/wasm-memory-host`, or
    /// `~/.cache/wasm-memory-host` (`~/Library/Caches/...` on macOS,
    /// `%LOCALAPPDATA%\...` on Windows). `None` when the environment names no home.
    pub fn default_dir() -> Option<PathBuf> {
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let base = if cfg!(windows) {
            absolute("LOCALAPPDATA")
        } else if cfg!(target_os = "macos") {
            absolute("HOME").map(|h| h.join("Library").join("Caches"))
        } else {
            absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")))
        };
        base.map(|b| b.join("wasm-memory-host"))
    }

    /// Opens the cache in `dir`, creating it (and its parents) private to the user. The
    /// directory is opened once, here, and everything after goes through that handle.
    ///
    /// # Errors
    /// [`Error::CacheDir`] when it cannot be created or opened, is not a directory, is a
    /// symbolic link, or is owned by another user or writable by group or others.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ModuleCache, Error> {
        let path = dir.into();
        let refuse = |why: String| Error::CacheDir {
            dir: path.clone(),
            why,
        };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .map_err(|e| refuse(format!("cannot create it: {e}")))?;
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR
                if fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) =>
            {
                refuse("it is a symbolic link, which the cache does not follow".to_string())
            }
            rustix::io::Errno::NOTDIR => refuse("not a directory".to_string()),
            e => refuse(format!("cannot open it: {}", io::Error::from(e))),
        })?;
        // Checked on the handle: what is checked is what is used.
        let stat = rustix::fs::fstat(&fd).map_err(|e| refuse(io::Error::from(e).to_string()))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return Err(refuse("not a directory".to_string()));
        }
        private(stat.st_uid, stat.st_mode, me()).map_err(refuse)?;
        Ok(ModuleCache {
            path,
            dir: Arc::new(fd),
            max_bytes: DEFAULT_CACHE_BYTES,
        })
    }

    /// The directory, as it was named to [`ModuleCache::open`]. (If it has been renamed
    /// since, the cache still uses the directory it opened.)
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The cache holding at most `max_bytes` of entries (default [`DEFAULT_CACHE_BYTES`]):
    /// after an entry is stored, the least recently used are removed until the rest fit.
    /// A single entry larger than that is kept until the next one is stored.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> ModuleCache {
        self.max_bytes = max_bytes;
        self
    }

    /// The key of `bytes` compiled by `engine` under `limits`.
    pub(crate) fn key(engine: &Engine, limits: &Limits, bytes: &[u8]) -> [u8; 32] {
        KeyInputs::new(engine, limits, bytes).key()
    }

    /// The file name of the entry for `key`.
    fn name(key: &[u8; 32]) -> String {
        hex(key) + ".module"
    }

    /// The path of the entry for `key`, for messages.
    pub(crate) fn entry(&self, key: &[u8; 32]) -> PathBuf {
        self.path.join(Self::name(key))
    }

    /// The module stored under `key`, if there is a sound one. `max_len` bounds the entry's
    /// payload (a damaged file is not read into memory whatever its size).
    pub(crate) fn lookup(&self, engine: &Engine, key: &[u8; 32], max_len: u64) -> Lookup {
        let entry = self.entry(key);
        let rejected = |why: String| {
            Lookup::Rejected(CacheWarning::Rejected {
                entry: entry.clone(),
                why,
            })
        };
        let unreadable = |source: io::Error| {
            Lookup::Rejected(CacheWarning::Unreadable {
                entry: entry.clone(),
                source,
            })
        };
        // Never follows a link, never waits for a FIFO's writer or a device.
        let fd = match rustix::fs::openat(
            &*self.dir,
            Self::name(key),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Lookup::Miss,
            Err(rustix::io::Errno::LOOP) => return rejected("a symbolic link".to_string()),
            Err(e) => return unreadable(e.into()),
        };
        let stat = match rustix::fs::fstat(&fd) {
            Ok(stat) => stat,
            Err(e) => return unreadable(e.into()),
        };
        if let Err(why) = regular_and_mine(&stat) {
            return rejected(why);
        }
        let mut file = File::from(fd);
        let len = u64::try_from(stat.st_size).unwrap_or(0);
        // The header first: a damaged entry costs these 80 bytes, whatever its size.
        let mut header = [0; HEADER];
        if len < HEADER as u64 {
            return rejected(format!("{len} bytes, shorter than its header"));
        }
        if let Err(source) = file.read_exact(&mut header) {
            return unreadable(source);
        }
        if header[..8] != MAGIC[..] {
            return rejected("not an entry of this format".to_string());
        }
        if header[8..40] != key[..] {
            return rejected("it holds another module (its key differs from its name)".into());
        }
        let payload_len = u64::from_le_bytes(header[72..80].try_into().expect("8 bytes"));
        if payload_len != len - HEADER as u64 {
            return rejected(format!(
                "its header says {payload_len} bytes of payload, the file holds {}",
                len - HEADER as u64
            ));
        }
        if payload_len > max_len {
            return rejected(format!(
                "a payload of {payload_len} bytes, over the limit of {max_len}"
            ));
        }
        // At most `max_len`, which fits in memory. The buffer holds the header too, so that
        // the payload after it keeps the 16-byte alignment.
        let Ok(total) = usize::try_from(len) else {
            return rejected(format!("{len} bytes do not fit in memory"));
        };
        let mut buf = Aligned::zeroed(total);
        buf.as_mut()[..HEADER].copy_from_slice(&header);
        if let Err(source) = file.read_exact(&mut buf.as_mut()[HEADER..]) {
            return unreadable(source);
        }
        // Nothing past the length read at the start: the file did not grow meanwhile.
        if !matches!(file.read(&mut [0]), Ok(0)) {
            return rejected("it changed while it was read".to_string());
        }
        if header[40..72] != digest(key, &buf.as_ref()[HEADER..])[..] {
            return rejected("its hash does not match its contents".to_string());
        }
        let payload = bytes::Bytes::from_owner(buf).slice(HEADER..);
        // SAFETY: `deserialize` loads native code and trusts the archive's layout (wasmer
        // 7.4's public `Module::deserialize` does not validate it). These bytes are, byte
        // for byte, what `store` wrote for this key from `Module::serialize`: the hash over
        // key and payload matches, and they were read from a regular file owned by this
        // user, in the directory that `open` checked (opened through its handle, so a
        // directory swapped in later is not read) and that only this user can write. wasmer
        // still checks the artifact's header, its version and that this CPU has the
        // features it was compiled for. The payload is 16-byte aligned, as the archive
        // needs (`Aligned`, and the header's length).
        match unsafe { Module::deserialize(engine, payload) } {
            Ok(module) => {
                // Used now: the last to be evicted. Best effort; a cache that cannot be
                // touched only evicts in a worse order.
                let _ = file.set_modified(SystemTime::now());
                Lookup::Hit(module)
            }
            Err(e) => rejected(format!("wasmer cannot load it: {e}")),
        }
    }

    /// Stores `module` under `key`, replacing any entry there.
    ///
    /// # Errors
    /// The warning to report when it cannot be stored.
    pub(crate) fn store(&self, key: &[u8; 32], module: &Module) -> Result<(), CacheWarning> {
        let entry = self.entry(key);
        let not_stored = |why: String| CacheWarning::NotStored {
            entry: entry.clone(),
            why,
        };
        let payload = module.serialize().map_err(|e| not_stored(e.to_string()))?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(key);
        header.extend_from_slice(&digest(key, &payload));
        header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        // A temporary file (mode 0600, a name no one else has: created exclusively) in the
        // same directory, renamed over the entry: a reader sees the old entry or the new
        // one, whole.
        let tmp = tmp_name();
        let write = || -> io::Result<()> {
            let fd = rustix::fs::openat(
                &*self.dir,
                &tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut file = File::from(fd);
            file.write_all(&header)?;
            file.write_all(&payload)?;
            file.sync_data()?;
            rustix::fs::renameat(&*self.dir, &tmp, &*self.dir, Self::name(key))?;
            Ok(())
        };
        if let Err(e) = write() {
            let _ = rustix::fs::unlinkat(&*self.dir, &tmp, AtFlags::empty());
            return Err(not_stored(e.to_string()));
        }
        self.trim(&Self::name(key));
        Ok(())
    }

    /// Removes the least recently used entries (by modification time, which a hit renews)
    /// until the rest fit [`ModuleCache::with_max_bytes`], keeping `keep`; and temporary
    /// files older than an hour, left by a writer that died. Best effort: what cannot be
    /// listed or removed stays. Only regular files are counted or removed.
    fn trim(&self, keep: &str) {
        let Ok(dir) = rustix::fs::Dir::read_from(self.dir.as_fd()) else {
            return;
        };
        let stale = SystemTime::now()
            .checked_sub(STALE_TMP)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut entries = Vec::new();
        for item in dir.flatten() {
            let Ok(name) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(stat) = rustix::fs::statat(&*self.dir, &*name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
                continue;
            }
            let modified = SystemTime::UNIX_EPOCH
                + Duration::new(
                    u64::try_from(stat.st_mtime).unwrap_or(0),
                    u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
                );
            let len = u64::try_from(stat.st_size).unwrap_or(0);
            if name.starts_with(TMP_PREFIX) {
                if modified < stale {
                    let _ = rustix::fs::unlinkat(&*self.dir, &*name, AtFlags::empty());
                }
            } else if name.ends_with(".module") {
                entries.push((modified, len, name));
            }
        }
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, name) in entries {
            if total <= self.max_bytes {
                break;
            }
            if name != keep && rustix::fs::unlinkat(&*self.dir, &*name, AtFlags::empty()).is_ok() {
                total -= len;
            }
        }
    }
}

/// This process's effective user.
fn me() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// A name for a temporary file that no other writer, in this process or another, picks at
/// the same time (and `O_EXCL` makes sure).
fn tmp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{TMP_PREFIX}{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether an entry's file may be read: a regular file that this user owns.
fn regular_and_mine(stat: &Stat) -> Result<(), String> {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {}
        FileType::Fifo => return Err("a FIFO, not a regular file".to_string()),
        FileType::Directory => return Err("a directory, not a regular file".to_string()),
        FileType::CharacterDevice | FileType::BlockDevice => {
            return Err("a device, not a regular file".to_string());
        }
        other => return Err(format!("not a regular file ({other:?})")),
    }
    if stat.st_uid != me() {
        return Err(format!(
            "owned by user {}, not by this user ({})",
            stat.st_uid,
            me()
        ));
    }
    Ok(())
}

/// Whether a directory with owner `uid` and `mode` may hold the compiled code that user `me`
/// runs: only when `me` owns it and no one else may write to it.
fn private(uid: u32, mode: u32, me: u32) -> Result<(), String> {
    if uid != me {
        return Err(format!("owned by user {uid}, not by this user ({me})"));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o}); make it private with chmod 700",
            mode & 0o777
        ));
    }
    Ok(())
}

/// The hash an entry's header holds: over the magic, the key and the payload.
fn digest(key: &[u8; 32], payload: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(MAGIC);
    hash.update(key);
    hash.update(payload);
    hash.finalize().into()
}

/// A byte buffer whose start is 16-byte aligned (it is made of `u128`s), so that a payload
/// at offset [`HEADER`] is too: wasmer reads its archive in place.
struct Aligned {
    words: Vec<u128>,
    len: usize,
}

impl Aligned {
    fn zeroed(len: usize) -> Aligned {
        Aligned {
            words: vec![0; len.div_ceil(16)],
            len,
        }
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialized bytes, any bit pattern is a valid
        // `u8`, and the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

impl AsMut<[u8]> for Aligned {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`, and the slice borrows `self` mutably.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version in every key is the one Cargo.lock resolves: a wasmer upgrade that
    /// forgot it would load the old version's artifacts.
    #[test]
    fn the_key_names_the_wasmer_in_use() {
        let lock = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .expect("the workspace's Cargo.lock");
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"wasmer\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .expect("wasmer in Cargo.lock");
        assert_eq!(version.trim_matches('"'), WASMER_VERSION);
    }

    #[test]
    fn only_a_private_directory_of_this_user_is_used() {
        assert!(private(1000, 0o40700, 1000).is_ok());
        assert!(
            private(1000, 0o40755, 1000).is_ok(),
            "readable is not writable"
        );
        let others = private(1000, 0o40777, 1000).unwrap_err();
        assert!(
            others.contains("writable by group or others (mode 777)"),
            "{others}"
        );
        assert!(private(1000, 0o40770, 1000).is_err());
        assert!(private(1000, 0o40702, 1000).is_err());
        let owner = private(0, 0o40700, 1000).unwrap_err();
        assert!(owner.contains("owned by user 0"), "{owner}");
    }
}
