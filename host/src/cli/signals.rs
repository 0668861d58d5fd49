//! What `transform --lines` needs of the process: SIGINT and SIGTERM turned into a request
//! to stop at the next whole result, and the memory it holds (read by the process itself,
//! from `/proc/self/status`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Set by the first SIGINT or SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);
/// The resident memory when the handlers were installed, in bytes.
static START_RSS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // An atomic store is async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handlers and returns the flag they set. The first signal asks the
/// stream to stop; the handler is then reset, so that a second one ends the process
/// at once, as it would have without this.
pub(crate) fn stop_on_sigint_and_sigterm() -> &'static AtomicBool {
    START_RSS.store(status_bytes("VmRSS:"), Ordering::Relaxed);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed `sigaction` is a valid value of the plain C struct (no
        // handler, no flags, an empty mask), which the fields set below complete.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
        // SAFETY: a zeroed `sigaction` is a valid value, as above.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `action` and `old` are live, initialized structs; `sa_mask` is
        // `action`'s own field; `on_signal` only stores to an atomic, which is
        // async-signal-safe. A signal the process was started ignoring (`nohup`, a
        // background job of a script) is put back to ignored, as shells expect.
        unsafe {
            libc::sigemptyset(&raw mut action.sa_mask);
            libc::sigaction(signal, &raw const action, &raw mut old);
            if old.sa_sigaction == libc::SIG_IGN {
                libc::sigaction(signal, &raw const old, std::ptr::null_mut());
            }
        }
    }
    &STOP
}

/// The peak resident memory of the process so far, in bytes.
pub(crate) fn peak_rss() -> u64 {
    status_bytes("VmHWM:")
}

/// The resident memory when the handlers were installed, just before the stream.
pub(crate) fn start_rss() -> u64 {
    START_RSS.load(Ordering::Relaxed)
}

/// A `kB` figure of `/proc/self/status`, in bytes (0 where there is none).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
