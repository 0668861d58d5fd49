//! WASI preview 1, deny by default: what Rust `std` and wasi-libc import on
//! `wasm32-wasip1`, so that guests built the way most guides build them run, and nothing
//! more. A guest gets no files, no sockets and no preopened directories; no arguments and no
//! environment unless the embedder gives them ([`Wasi`]); the clocks and random bytes; its
//! standard output and error written to the host process's standard error (or wherever the
//! embedder says), so that a `memhost call` result on standard output stays parseable;
//! standard input at its end. `proc_exit` ends the call with [`Error::Exit`](crate::Error).
//!
//! Every pointer the guest hands over is read and written through wasmer's checked
//! `MemoryView`: a bad one is `EFAULT` to the guest, never host memory touched, and the
//! host checks a whole output's range before writing any of it. Work the host does for the
//! guest is charged to the call's fuel like guest code: each WASI call costs
//! [`RUNTIME_CALL`](crate::RUNTIME_CALL) units, and each byte written or filled costs as a bulk copy does
//! ([`BYTES_PER_UNIT`]), so a guest writing without end is stopped as any loop is, and no
//! host buffer grows with what it writes (output goes through in pieces of 64 KiB).
//!
//! Chosen over `wasmer-wasix` by measurement (see the README's "WASI preview 1"): this is
//! about 600 lines with its docs, adds no crate, and gives an instance 17 host functions.

use std::fmt;
use std::io::{Read as _, Write};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use abi::check::wasmparser::ValType;
use wasmer::{AsStoreMut, Function, FunctionEnv, FunctionEnvMut, Imports, Instance, MemoryView};

use crate::imports::{GuestSide, Stop};
use crate::metering::BYTES_PER_UNIT;

/// The import module of WASI preview 1.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

/// Each function this host provides, with its core type: what admission accepts.
const FUNCTIONS: &[(&str, &[ValType], &[ValType])] = &[
    ("args_get", &[I32, I32], &[I32]),
    ("args_sizes_get", &[I32, I32], &[I32]),
    ("environ_get", &[I32, I32], &[I32]),
    ("environ_sizes_get", &[I32, I32], &[I32]),
    ("clock_res_get", &[I32, I32], &[I32]),
    ("clock_time_get", &[I32, I64, I32], &[I32]),
    ("fd_write", &[I32, I32, I32, I32], &[I32]),
    ("fd_read", &[I32, I32, I32, I32], &[I32]),
    ("fd_close", &[I32], &[I32]),
    ("fd_seek", &[I32, I64, I32, I32], &[I32]),
    ("fd_fdstat_get", &[I32, I32], &[I32]),
    ("fd_prestat_get", &[I32, I32], &[I32]),
    ("fd_prestat_dir_name", &[I32, I32, I32], &[I32]),
    ("proc_exit", &[I32], &[]),
    ("random_get", &[I32, I32], &[I32]),
    ("sched_yield", &[], &[I32]),
    ("poll_oneoff", &[I32, I32, I32, I32], &[I32]),
];

/// Whether this host provides `module.name` with core type `params -> results`.
pub(crate) fn provides(module: &str, name: &str, params: &[ValType], results: &[ValType]) -> bool {
    module == MODULE
        && FUNCTIONS
            .iter()
            .any(|(n, p, r)| *n == name && *p == params && *r == results)
}

/// The names of the functions provided, for the error that names one that is not.
pub(crate) fn provided_names() -> String {
    let names: Vec<&str> = FUNCTIONS.iter().map(|(n, ..)| *n).collect();
    names.join(", ")
}

// The errno values of WASI preview 1 this host returns.
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const EIO: i32 = 29;
const ENOTSUP: i32 = 58;
const EOVERFLOW: i32 = 61;
const ESPIPE: i32 = 70;

/// Where a guest's standard output or error goes.
#[derive(Clone, Default)]
enum Sink {
    /// The host process's standard error.
    #[default]
    Stderr,
    /// Nowhere.
    Discard,
    /// The embedder's writer.
    Writer(Arc<Mutex<dyn Write + Send>>),
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sink::Stderr => "Stderr",
            Sink::Discard => "Discard",
            Sink::Writer(_) => "Writer",
        })
    }
}

impl Sink {
    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stderr => std::io::stderr().lock().write_all(bytes),
            Sink::Discard => Ok(()),
            Sink::Writer(w) => w
                .lock()
                .map_err(|_| std::io::Error::other("the writer's lock is poisoned"))?
                .write_all(bytes),
        }
    }
}

/// What a guest that imports WASI preview 1 is given, beyond the clocks and random bytes
/// every such guest gets. The default gives nothing: no arguments, no environment, and its
/// standard output and error on the host process's standard error.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// let captured = Arc::new(Mutex::new(Vec::new()));
/// let wasi = memhost::Wasi::default()
///     .arg("guest")
///     .env("GREETING", "hello")
///     .stdout(Arc::clone(&captured))
///     .discard_stderr();
/// # let _ = wasi;
/// ```
#[derive(Clone, Debug, Default)]
pub struct Wasi {
    args: Vec<String>,
    env: Vec<String>,
    stdout: Sink,
    stderr: Sink,
}

impl Wasi {
    /// Adds an argument (`args_get`); the first is the program's name, by convention.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds an environment variable (`environ_get`).
    #[must_use]
    pub fn env(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.env
            .push(format!("{}={}", name.as_ref(), value.as_ref()));
        self
    }

    /// Sends the guest's standard output to `writer` instead.
    #[must_use]
    pub fn stdout<W: Write + Send + 'static>(mut self, writer: Arc<Mutex<W>>) -> Self {
        self.stdout = Sink::Writer(writer);
        self
    }

    /// Sends the guest's standard error to `writer` instead.
    #[must_use]
    pub fn stderr<W: Write + Send + 'static>(mut self, writer: Arc<Mutex<W>>) -> Self {
        self.stderr = Sink::Writer(writer);
        self
    }

    /// Drops the guest's standard output.
    #[must_use]
    pub fn discard_stdout(mut self) -> Self {
        self.stdout = Sink::Discard;
        self
    }

    /// Drops the guest's standard error.
    #[must_use]
    pub fn discard_stderr(mut self) -> Self {
        self.stderr = Sink::Discard;
        self
    }
}

/// One instance's WASI state.
pub(crate) struct Env {
    guest: GuestSide,
    config: Wasi,
    /// Reused for output, at most `PIECE` bytes.
    piece: Vec<u8>,
    urandom: Option<std::fs::File>,
    start: Instant,
}

/// Output goes through in pieces of this size.
const PIECE: u32 = 1 << 16;

type Cx<'a> = FunctionEnvMut<'a, Env>;
type Ret = Result<i32, Stop>;

/// The imports of WASI preview 1 for one instance in `store`, and their state, which
/// [`attach`] completes once the instance exists.
pub(crate) fn imports(store: &mut impl AsStoreMut, config: &Wasi) -> (Imports, FunctionEnv<Env>) {
    let env = FunctionEnv::new(
        store,
        Env {
            guest: GuestSide::default(),
            config: config.clone(),
            piece: Vec::new(),
            urandom: None,
            start: Instant::now(),
        },
    );
    let mut imports = Imports::new();
    let mut def = |name: &str, f: Function| imports.define(MODULE, name, f);
    def(
        "args_get",
        Function::new_typed_with_env(store, &env, args_get),
    );
    def(
        "args_sizes_get",
        Function::new_typed_with_env(store, &env, args_sizes_get),
    );
    def(
        "environ_get",
        Function::new_typed_with_env(store, &env, environ_get),
    );
    def(
        "environ_sizes_get",
        Function::new_typed_with_env(store, &env, environ_sizes_get),
    );
    def(
        "clock_res_get",
        Function::new_typed_with_env(store, &env, clock_res_get),
    );
    def(
        "clock_time_get",
        Function::new_typed_with_env(store, &env, clock_time_get),
    );
    def(
        "fd_write",
        Function::new_typed_with_env(store, &env, fd_write),
    );
    def(
        "fd_read",
        Function::new_typed_with_env(store, &env, fd_read),
    );
    def(
        "fd_close",
        Function::new_typed_with_env(store, &env, fd_close),
    );
    def(
        "fd_seek",
        Function::new_typed_with_env(store, &env, fd_seek),
    );
    def(
        "fd_fdstat_get",
        Function::new_typed_with_env(store, &env, fd_fdstat_get),
    );
    def(
        "fd_prestat_get",
        Function::new_typed_with_env(store, &env, fd_prestat_get),
    );
    def(
        "fd_prestat_dir_name",
        Function::new_typed_with_env(store, &env, fd_prestat_dir_name),
    );
    def(
        "proc_exit",
        Function::new_typed_with_env(store, &env, proc_exit),
    );
    def(
        "random_get",
        Function::new_typed_with_env(store, &env, random_get),
    );
    def(
        "sched_yield",
        Function::new_typed_with_env(store, &env, sched_yield),
    );
    def(
        "poll_oneoff",
        Function::new_typed_with_env(store, &env, poll_oneoff),
    );
    (imports, env)
}

/// Gives the WASI state its instance's memory and metering globals.
pub(crate) fn attach(env: &FunctionEnv<Env>, store: &mut impl AsStoreMut, instance: &Instance) {
    let guest = GuestSide::of(instance, store, crate::instance::Leave::default());
    env.as_mut(store).guest = guest;
}

/// Charges `bytes` of host work, and one call, to the call's fuel.
fn charge(cx: &mut Cx<'_>, bytes: u64) -> Result<(), Stop> {
    let guest = cx.data().guest.clone();
    guest.charge(&mut cx.as_store_mut(), bytes)
}

/// The guest's memory, if it exported one.
fn view<'a>(cx: &'a Cx<'_>) -> Option<MemoryView<'a>> {
    cx.data().guest.memory.as_ref().map(|m| m.view(cx))
}

/// Whether `[ptr, ptr + len)` is within the guest's memory.
fn fits(view: &MemoryView<'_>, ptr: u32, len: u64) -> bool {
    u64::from(ptr)
        .checked_add(len)
        .is_some_and(|end| end <= view.data_size())
}

fn read_u32(view: &MemoryView<'_>, ptr: u32) -> Option<u32> {
    let mut b = [0u8; 4];
    view.read(u64::from(ptr), &mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

/// Writes `bytes` at `ptr`, all or nothing: `EFAULT` when any of it is out of bounds.
fn write(view: &MemoryView<'_>, ptr: u32, bytes: &[u8]) -> i32 {
    match view.write(u64::from(ptr), bytes) {
        Ok(()) => SUCCESS,
        Err(_) => EFAULT,
    }
}

/// `*_sizes_get`: the count of `items` and the bytes they take with their NULs.
fn sizes(cx: &mut Cx<'_>, items: fn(&Wasi) -> &[String], count_ptr: u32, size_ptr: u32) -> Ret {
    charge(cx, 0)?;
    let list = items(&cx.data().config);
    let count = u32::try_from(list.len()).unwrap_or(u32::MAX);
    let size: usize = list.iter().map(|s| s.len() + 1).sum();
    let Ok(size) = u32::try_from(size) else {
        return Ok(EOVERFLOW);
    };
    let Some(view) = view(cx) else {
        return Ok(EFAULT);
    };
    if !fits(&view, count_ptr, 4) || !fits(&view, size_ptr, 4) {
        return Ok(EFAULT);
    }
    let _ = write(&view, count_ptr, &count.to_le_bytes());
    Ok(write(&view, size_ptr, &size.to_le_bytes()))
}

/// `*_get`: a pointer to each of `items` at `ptrs`, and the items, NUL-terminated, at
/// `buf`; both ranges checked before anything is written.
fn strings(cx: &mut Cx<'_>, items: fn(&Wasi) -> &[String], ptrs: u32, buf: u32) -> Ret {
    let bytes: usize = items(&cx.data().config).iter().map(|s| s.len() + 1).sum();
    charge(cx, bytes as u64)?;
    let list = items(&cx.data().config).to_vec();
    let (Ok(bytes), Ok(count)) = (u32::try_from(bytes), u32::try_from(list.len())) else {
        return Ok(EOVERFLOW);
    };
    let Some(view) = view(cx) else {
        return Ok(EFAULT);
    };
    if !fits(&view, ptrs, 4 * u64::from(count)) || !fits(&view, buf, u64::from(bytes)) {
        return Ok(EFAULT);
    }
    // Every length fits a u32: their sum does.
    let (mut slot, mut at) = (ptrs, buf);
    for item in &list {
        let mut bytes = item.clone().into_bytes();
        bytes.push(0);
        let _ = write(&view, slot, &at.to_le_bytes());
        let _ = write(&view, at, &bytes);
        slot += 4;
        at += u32::try_from(bytes.len()).unwrap_or(0);
    }
    Ok(SUCCESS)
}

fn args_get(mut cx: Cx<'_>, ptrs: i32, buf: i32) -> Ret {
    strings(
        &mut cx,
        |w| &w.args,
        ptrs.cast_unsigned(),
        buf.cast_unsigned(),
    )
}

fn args_sizes_get(mut cx: Cx<'_>, count: i32, size: i32) -> Ret {
    sizes(
        &mut cx,
        |w| &w.args,
        count.cast_unsigned(),
        size.cast_unsigned(),
    )
}

fn environ_get(mut cx: Cx<'_>, ptrs: i32, buf: i32) -> Ret {
    strings(
        &mut cx,
        |w| &w.env,
        ptrs.cast_unsigned(),
        buf.cast_unsigned(),
    )
}

fn environ_sizes_get(mut cx: Cx<'_>, count: i32, size: i32) -> Ret {
    sizes(
        &mut cx,
        |w| &w.env,
        count.cast_unsigned(),
        size.cast_unsigned(),
    )
}

/// Clocks 0 (realtime) and 1 (monotonic) are given; the CPU-time clocks are not.
fn clock_res_get(mut cx: Cx<'_>, id: i32, out: i32) -> Ret {
    charge(&mut cx, 0)?;
    if !matches!(id, 0 | 1) {
        return Ok(EINVAL);
    }
    let Some(view) = view(&cx) else {
        return Ok(EFAULT);
    };
    Ok(write(&view, out.cast_unsigned(), &1u64.to_le_bytes()))
}

fn clock_time_get(mut cx: Cx<'_>, id: i32, _precision: i64, out: i32) -> Ret {
    charge(&mut cx, 0)?;
    let nanos = match id {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        1 => cx.data().start.elapsed().as_nanos(),
        _ => return Ok(EINVAL),
    };
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    let Some(view) = view(&cx) else {
        return Ok(EFAULT);
    };
    Ok(write(&view, out.cast_unsigned(), &nanos.to_le_bytes()))
}

/// Standard output (1) and error (2) go to their sinks, in pieces; any other descriptor is
/// `EBADF`. Every iovec is checked before any byte goes out.
fn fd_write(mut cx: Cx<'_>, fd: i32, iovs: i32, count: i32, written: i32) -> Ret {
    let (iovs, count, written) = (
        iovs.cast_unsigned(),
        count.cast_unsigned(),
        written.cast_unsigned(),
    );
    let sink = match fd {
        1 => cx.data().config.stdout.clone(),
        2 => cx.data().config.stderr.clone(),
        _ => {
            charge(&mut cx, 0)?;
            return Ok(EBADF);
        }
    };
    {
        let Some(view) = view(&cx) else {
            return Ok(EFAULT);
        };
        if !fits(&view, iovs, 8 * u64::from(count)) || !fits(&view, written, 4) {
            return Ok(EFAULT);
        }
    }
    // Reading the iovecs is work too: a unit each, and their bytes, charged first.
    charge(&mut cx, u64::from(count) * (8 + u64::from(BYTES_PER_UNIT)))?;
    // First every iovec is checked and the total summed, then the bytes go out: nothing
    // goes out of a call that fails, and nothing is kept per iovec.
    let iovec = |view: &MemoryView<'_>, i: u32| {
        let at = iovs + 8 * i;
        let (ptr, len) = (read_u32(view, at)?, read_u32(view, at + 4)?);
        fits(view, ptr, u64::from(len)).then_some((ptr, len))
    };
    let mut total: u64 = 0;
    {
        let Some(view) = view(&cx) else {
            return Ok(EFAULT);
        };
        for i in 0..count {
            let Some((_, len)) = iovec(&view, i) else {
                return Ok(EFAULT);
            };
            total += u64::from(len);
        }
    }
    let Ok(total32) = u32::try_from(total) else {
        return Ok(EINVAL);
    };
    charge(&mut cx, total)?;
    let (state, store) = cx.data_and_store_mut();
    let Some(memory) = &state.guest.memory else {
        return Ok(EFAULT);
    };
    let view = memory.view(&store);
    let piece = &mut state.piece;
    for i in 0..count {
        let Some((ptr, len)) = iovec(&view, i) else {
            return Ok(EFAULT);
        };
        let mut done = 0u32;
        while done < len {
            let n = (len - done).min(PIECE);
            piece.resize(n as usize, 0);
            if view.read(u64::from(ptr + done), piece).is_err() {
                return Ok(EFAULT);
            }
            if sink.write_all(piece).is_err() {
                return Ok(EIO);
            }
            done += n;
        }
    }
    Ok(write(&view, written, &total32.to_le_bytes()))
}

/// Standard input is at its end; any other descriptor is `EBADF`.
fn fd_read(mut cx: Cx<'_>, fd: i32, _iovs: i32, _count: i32, read: i32) -> Ret {
    charge(&mut cx, 0)?;
    if fd != 0 {
        return Ok(EBADF);
    }
    let Some(view) = view(&cx) else {
        return Ok(EFAULT);
    };
    Ok(write(&view, read.cast_unsigned(), &0u32.to_le_bytes()))
}

fn fd_close(mut cx: Cx<'_>, fd: i32) -> Ret {
    charge(&mut cx, 0)?;
    Ok(if (0..=2).contains(&fd) {
        SUCCESS
    } else {
        EBADF
    })
}

fn fd_seek(mut cx: Cx<'_>, fd: i32, _offset: i64, _whence: i32, _out: i32) -> Ret {
    charge(&mut cx, 0)?;
    Ok(if (0..=2).contains(&fd) { ESPIPE } else { EBADF })
}

/// The standard descriptors are character devices, 0 readable, 1 and 2 writable.
fn fd_fdstat_get(mut cx: Cx<'_>, fd: i32, out: i32) -> Ret {
    charge(&mut cx, 0)?;
    const FD_READ: u64 = 1 << 1;
    const FD_WRITE: u64 = 1 << 6;
    const CHARACTER_DEVICE: u8 = 2;
    let rights = match fd {
        0 => FD_READ,
        1 | 2 => FD_WRITE,
        _ => return Ok(EBADF),
    };
    let mut stat = [0u8; 24];
    stat[0] = CHARACTER_DEVICE;
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    let Some(view) = view(&cx) else {
        return Ok(EFAULT);
    };
    Ok(write(&view, out.cast_unsigned(), &stat))
}

/// No preopened directories: the first descriptor asked about is not one.
fn fd_prestat_get(mut cx: Cx<'_>, _fd: i32, _out: i32) -> Ret {
    charge(&mut cx, 0)?;
    Ok(EBADF)
}

fn fd_prestat_dir_name(mut cx: Cx<'_>, _fd: i32, _path: i32, _len: i32) -> Ret {
    charge(&mut cx, 0)?;
    Ok(EBADF)
}

fn proc_exit(_cx: Cx<'_>, code: i32) -> Result<(), Stop> {
    Err(Stop::Exit(code))
}

/// Random bytes from the system (`/dev/urandom`), in pieces, after the range is checked.
fn random_get(mut cx: Cx<'_>, buf: i32, len: i32) -> Ret {
    let (buf, len) = (buf.cast_unsigned(), len.cast_unsigned());
    {
        let Some(view) = view(&cx) else {
            return Ok(EFAULT);
        };
        if !fits(&view, buf, u64::from(len)) {
            return Ok(EFAULT);
        }
    }
    charge(&mut cx, u64::from(len))?;
    let (state, store) = cx.data_and_store_mut();
    if state.urandom.is_none() {
        state.urandom = std::fs::File::open("/dev/urandom").ok();
    }
    let (Some(memory), Some(urandom)) = (&state.guest.memory, &mut state.urandom) else {
        return Ok(EIO);
    };
    let view = memory.view(&store);
    let piece = &mut state.piece;
    let mut done = 0u32;
    while done < len {
        let n = (len - done).min(PIECE);
        piece.resize(n as usize, 0);
        if urandom.read_exact(piece).is_err() {
            return Ok(EIO);
        }
        if view.write(u64::from(buf + done), piece).is_err() {
            return Ok(EFAULT);
        }
        done += n;
    }
    Ok(SUCCESS)
}

fn sched_yield(mut cx: Cx<'_>) -> Ret {
    charge(&mut cx, 0)?;
    Ok(SUCCESS)
}

/// Sleeping and waiting on descriptors are not given.
fn poll_oneoff(mut cx: Cx<'_>, _in: i32, _out: i32, _count: i32, _events: i32) -> Ret {
    charge(&mut cx, 0)?;
    Ok(ENOTSUP)
}
