//! A cache of compiled modules on disk, for a warm start.
//!
//! Compiling is most of what starting costs: about 1.6 ms for the demo's module, 18 s for a
//! 14 MB one, every time. [`ModuleCache`] keeps what Cranelift made, as wasmer serializes
//! it, in one file per module, and loads it again instead of compiling.
//!
//! # Keys
//!
//! An entry is named by a SHA-256 over everything that changes the compiled code: the bytes
//! that are compiled (after admission rewrote them), this crate's and wasmer's versions,
//! the compiler, the target and its CPU features, the fuel and the metering constants, and
//! the memory and table caps (wasmer compiles bounds checks to fit them). A change to any of
//! them is a different entry, never a stale one.
//!
//! # Trust
//!
//! An entry is native code that is run: whoever can write the cache can run code as its
//! user. So:
//!
//! - the directory is created private to its user (mode 0700 on Unix), and one that another
//!   user owns or can write to is refused ([`Error::CacheDir`]), and not used at all;
//! - an entry is written to a temporary file (mode 0600) and renamed into place, so that a
//!   reader sees a whole entry or none;
//! - each entry starts with a header that holds its key and a SHA-256 over the header and
//!   the payload; an entry is deserialized only when its size is sane, its key is the one
//!   asked for (a foreign entry copied under another name fails here) and the hash matches
//!   (a corrupt or truncated one fails here). An entry that fails is a miss: the module is
//!   compiled again and the entry replaced, with a [`CacheWarning`] saying why.
//!
//! The hash detects damage, not an attacker who can write the directory (who could write a
//! matching hash too): the directory's privacy is what keeps those out.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmer::sys::NativeEngineExt as _;
use wasmer::{Engine, Module};

use crate::{Error, Limits, metering};

/// The first bytes of every entry; the last byte is the format's version.
const MAGIC: &[u8; 8] = b"hostmc\0\x01";
/// Magic, key, hash, payload length: 80 bytes, a multiple of 16, so that the payload keeps
/// the 16-byte alignment wasmer's archive needs (see [`Aligned`]).
const HEADER: usize = 8 + 32 + 32 + 8;
/// The wasmer this crate is built with (checked against `Cargo.lock` by a test): part of
/// every key, since its artifacts are not portable across versions.
pub(crate) const WASMER_VERSION: &str = "7.4.2";

/// A directory of compiled modules. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
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

    /// Opens the cache in `dir`, creating it (and its parents) private to the user.
    ///
    /// # Errors
    /// [`Error::CacheDir`] when it cannot be created, is not a directory, or (on Unix) is
    /// owned by another user or writable by group or others.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ModuleCache, Error> {
        let dir = dir.into();
        let refuse = |why: String| Error::CacheDir {
            dir: dir.clone(),
            why,
        };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|e| refuse(format!("cannot create it: {e}")))?;
        let meta = fs::metadata(&dir).map_err(|e| refuse(e.to_string()))?;
        if !meta.is_dir() {
            return Err(refuse("not a directory".to_string()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            // SAFETY: `geteuid` has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            private(meta.uid(), meta.mode(), me).map_err(refuse)?;
        }
        Ok(ModuleCache {
            dir,
            max_bytes: DEFAULT_CACHE_BYTES,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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
        let config = format!(
            "host {} / wasmer {WASMER_VERSION} / compiler {} / target {:?} / fuel {:?} / \
             metering {} {} {} / memory pages {} / table elements {}",
            env!("CARGO_PKG_VERSION"),
            engine.deterministic_id(),
            engine.target(),
            limits.fuel,
            metering::BYTES_PER_UNIT,
            metering::UNITS_PER_ELEMENT,
            metering::BULK_BASE,
            limits.max_memory_pages(),
            limits.max_table_elements,
        );
        let mut hash = Sha256::new();
        hash.update(config.as_bytes());
        // The configuration is text: a zero byte ends it.
        hash.update([0]);
        hash.update(bytes);
        hash.finalize().into()
    }

    /// The file of the entry for `key`.
    pub(crate) fn entry(&self, key: &[u8; 32]) -> PathBuf {
        let mut name = String::with_capacity(64 + 7);
        for b in key {
            let _ = write!(name, "{b:02x}");
        }
        name.push_str(".module");
        self.dir.join(name)
    }

    /// The module stored under `key`, if there is a sound one. `max_len` bounds the entry's
    /// size (a damaged file is not read into memory whatever its size).
    pub(crate) fn lookup(&self, engine: &Engine, key: &[u8; 32], max_len: u64) -> Lookup {
        let entry = self.entry(key);
        let mut file = match File::open(&entry) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Miss,
            Err(source) => return Lookup::Rejected(CacheWarning::Unreadable { entry, source }),
        };
        let rejected = |why: String| {
            Lookup::Rejected(CacheWarning::Rejected {
                entry: entry.clone(),
                why,
            })
        };
        let len = match file.metadata() {
            Ok(meta) => meta.len(),
            Err(source) => {
                return Lookup::Rejected(CacheWarning::Unreadable {
                    entry: entry.clone(),
                    source,
                });
            }
        };
        if len < HEADER as u64 {
            return rejected(format!("{len} bytes, shorter than its header"));
        }
        if len > max_len {
            return rejected(format!("{len} bytes, over the limit of {max_len}"));
        }
        // At most `max_len`, which fits in memory.
        let mut buf = Aligned::zeroed(usize::try_from(len).unwrap_or(usize::MAX));
        if let Err(source) = file.read_exact(buf.as_mut()) {
            return Lookup::Rejected(CacheWarning::Unreadable { entry, source });
        }
        let bytes = buf.as_ref();
        if bytes[..8] != MAGIC[..] {
            return rejected("not an entry of this format".to_string());
        }
        if bytes[8..40] != key[..] {
            return rejected("it holds another module (its key differs from its name)".into());
        }
        let payload_len = u64::from_le_bytes(bytes[72..80].try_into().expect("8 bytes"));
        if payload_len != len - HEADER as u64 {
            return rejected(format!(
                "payload of {} bytes where the header says {payload_len}",
                len - HEADER as u64
            ));
        }
        if bytes[40..72] != digest(key, &bytes[HEADER..])[..] {
            return rejected("its hash does not match its contents".to_string());
        }
        let payload = bytes::Bytes::from_owner(buf).slice(HEADER..);
        // SAFETY: `deserialize` loads native code and trusts the archive's layout (wasmer
        // 7.4's public `Module::deserialize` does not validate it). These bytes are, byte
        // for byte, what `store` wrote for this key from `Module::serialize`: the hash over
        // key and payload matches, and the directory can be written only by this user (the
        // check in `open`). wasmer still checks the artifact's header, its version and that
        // this CPU has the features it was compiled for. The payload is 16-byte aligned, as
        // the archive needs (`Aligned`, and the header's length).
        match unsafe { Module::deserialize(engine, payload) } {
            Ok(module) => {
                // Used now: the last to be evicted. Best effort; a cache that cannot be
                // touched only evicts in a worse order.
                let _ = file.set_modified(std::time::SystemTime::now());
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
        // A temporary file (mode 0600) in the same directory, renamed over the entry: a
        // reader sees the old entry or the new one, whole.
        let write = || -> io::Result<()> {
            let mut tmp = tempfile::Builder::new()
                .prefix(".tmp-")
                .tempfile_in(&self.dir)?;
            tmp.write_all(&header)?;
            tmp.write_all(&payload)?;
            tmp.as_file().sync_data()?;
            tmp.persist(&entry).map_err(|e| e.error)?;
            Ok(())
        };
        write().map_err(|e| not_stored(e.to_string()))?;
        self.trim(&entry);
        Ok(())
    }

    /// Removes the least recently used entries (by modification time, which a hit renews)
    /// until the rest fit [`ModuleCache::with_max_bytes`], keeping `keep`; and temporary
    /// files more than an hour old, left by a writer that died. Best effort: what cannot be
    /// listed or removed stays.
    fn trim(&self, keep: &Path) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let mut entries = Vec::new();
        for item in dir.flatten() {
            let path = item.path();
            let Ok(meta) = item.metadata() else { continue };
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            let name = item.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp-") && meta.is_file() && modified < hour_ago {
                let _ = fs::remove_file(&path);
            } else if name.ends_with(".module") && meta.is_file() {
                entries.push((modified, meta.len(), path));
            }
        }
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path != keep && fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// Whether a directory with owner `uid` and `mode` may hold the compiled code that user `me`
/// runs: only when `me` owns it and no one else may write to it.
#[cfg(unix)]
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

    #[cfg(unix)]
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
