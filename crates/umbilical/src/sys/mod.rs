//! The only place with `unsafe` and OS calls. One module per OS family, with
//! the same inner names, selected here and nowhere else. The contract below
//! (the `const _` after the backend selection) names every item both backends must provide with its exact
//! type, so a backend that drifts fails to compile (the Windows build runs
//! under Wine in CI; macOS and FreeBSD are type-checked).
//!
//! What every backend provides:
//! - `Handle`: an owned descriptor (Unix fd, Windows `HANDLE`);
//! - `HAS_SOCKETS`, and `socket_pair`, `send`, `shutdown` (Windows: `Unsupported`, never asked);
//! - `pipes()` for a two-pipe channel, `inbound_pipe()` for stderr and the
//!   lifeline; `read`, `write_pipe`;
//! - `read_until`, `write_until` (with a deadline: `Command::wait_delay`);
//! - `wait_eof` (lifeline), `wait_closed` (channel-closed detection) and
//!   `wait_readers_gone` (the program closed its stdin);
//! - `spawn(&Request) -> Process`, and `Process` to wait for and kill it;
//! - `spawn_mechanism()`, `exit_mechanism()` for diagnostics;
//! - `watch` and the `Watch` trait: something looked after in the
//!   background with no thread of its own (the shim link's reader, a
//!   dropped child), over `Waitable`s (Unix: the background thread's
//!   `poll`; Windows: waits of the system thread pool);
//! - with `tokio`: `Registered`, `exit_ready`, `duplicate`,
//!   `readers_gone`, and `Notify`.

use std::io;

use crate::error::ErrorKind;
use crate::spec::ProgramSpec;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
/// Public through `mechanisms`; declared where it is filled in.
#[cfg(windows)]
pub use windows::WinsockProvider;
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(not(any(unix, windows)))]
compile_error!("umbilical supports Unix (Linux, macOS, BSD) and Windows");

/// The backend contract, checked by the compiler on every OS: each line
/// coerces a backend item to the type every backend must give it.
const _: () = {
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use crate::exit::ExitStatus;

    let _: bool = HAS_SOCKETS;
    let _: bool = SHUTDOWN_DISCARDS_UNREAD;
    let _: bool = HANGUP_IS_READABLE;
    let _: Option<i32> = TERMINATE_SIGNAL;
    let _: Option<[i32; 13]> = SIGNAL_NUMBERS;
    // The channel and the pipes.
    let _: fn() -> io::Result<(Handle, Handle)> = socket_pair;
    let _: fn(&Handle, &[u8]) -> io::Result<usize> = send;
    let _: fn(&Handle, bool) -> io::Result<()> = shutdown;
    let _: fn() -> io::Result<Pipes> = pipes;
    let _: fn() -> io::Result<(Handle, Handle)> = inbound_pipe;
    let _: fn(&Handle, &mut [u8]) -> io::Result<usize> = read;
    type ReadUntil = fn(&Handle, &mut [u8], Option<Instant>) -> io::Result<Option<usize>>;
    let _: ReadUntil = read_until;
    let _: fn(&Handle, Option<Instant>) -> io::Result<bool> = wait_readers_gone;
    type WriteUntil = fn(&Handle, &[u8], bool, Option<Instant>) -> io::Result<Option<usize>>;
    let _: WriteUntil = write_until;
    let _: fn(&Handle, &[u8]) -> io::Result<usize> = write_pipe;
    let _: fn() = force_sigpipe_guard;
    let _: fn(&Handle, Option<Instant>) -> io::Result<bool> = wait_eof;
    let _: fn(&Handle, Option<Instant>) -> io::Result<bool> = wait_closed;
    // Starting, waiting, stopping.
    let _: fn(&Request<'_>) -> Result<Process, SpawnError> = spawn;
    let _: fn(&Process) -> u32 = Process::pid;
    let _: fn(&Process) -> bool = Process::leads_group;
    let _: fn(&Process) -> io::Result<ExitStatus> = Process::wait;
    let _: fn(&Process) -> io::Result<Option<ExitStatus>> = Process::try_wait;
    let _: fn(&Process, Option<Instant>) -> io::Result<Option<ExitStatus>> = Process::wait_deadline;
    let _: fn(&Process) -> io::Result<()> = Process::kill;
    let _: fn(&Process) -> io::Result<bool> = Process::ask_to_end;
    let _: fn(&Process) = Process::resume;
    let _: fn(&Process, i32) -> io::Result<()> = Process::signal_raw;
    let _: fn(&Process, i32) -> io::Result<()> = Process::signal_or_terminate;
    let _: fn(Process) = adopt;
    let _: fn() -> usize = orphans;
    let _: fn(u32) -> Option<OtherProcess> = OtherProcess::open;
    let _: fn(&OtherProcess) = OtherProcess::wait;
    let _: fn(&OtherProcess, i32) -> io::Result<()> = OtherProcess::kill;
    // The shim's rendezvous and control stream.
    let _: fn(Option<&str>) -> io::Result<Rendezvous> = Rendezvous::create;
    let _: fn(&Rendezvous) -> PathBuf = Rendezvous::path;
    let _: fn(&mut Rendezvous, &Path, Option<&str>) -> io::Result<PathBuf> = Rendezvous::place_shim;
    let _: fn() -> Result<(), String> = shim_placeable;
    // The askpass relay and the terminal a prompt handler asks on.
    let _: fn(&mut Rendezvous, &Path) -> io::Result<PathBuf> = Rendezvous::place_askpass;
    let _: fn(&Path) -> Option<PathBuf> = askpass_socket;
    let _: fn(&Path, Instant) -> io::Result<ControlStream> = connect_rendezvous;
    let _: fn() -> bool = has_terminal;
    let _: fn() -> bool = caller_is_root;
    let _: fn() -> io::Result<(Handle, Handle)> = open_pty;
    let _: fn(&Handle) -> bool = terminal_echoes;
    let _: fn(&Handle, &[u8]) -> io::Result<()> = write_terminal;
    type Answer = Option<zeroize::Zeroizing<Vec<u8>>>;
    let _: fn(&str, bool) -> io::Result<Answer> = ask_terminal;
    type Accept =
        fn(&mut Rendezvous, Option<u32>, Instant, fn() -> bool, &mut u32) -> io::Result<Option<ControlStream>>;
    let _: Accept = Rendezvous::accept_from::<fn() -> bool>;
    let _: fn(&ControlStream) -> io::Result<ControlStream> = ControlStream::try_clone;
    let _: fn(&mut ControlStream, Option<Instant>) = ControlStream::set_read_deadline;
    let _: fn(&ControlStream) = ControlStream::shutdown;
    let _: fn(&Path, Option<&str>) -> Result<(), String> = can_execute_as;
    let _: fn() -> bool = in_terminal_foreground;
    let _: fn() = ignore_group_signals;
    let _: fn(u32) -> Option<TerminalLoan> = TerminalLoan::lend;
    let _: fn() -> io::Result<[u8; 16]> = random_token::<16>;
    // Diagnostics.
    let _: fn() -> &'static str = spawn_mechanism;
    let _: fn() -> &'static str = exit_mechanism;
    let _: fn() -> &'static str = shim_auth_mechanism;
    // Watching in the background: the shim link's reader, dropped children.
    type WatchFn = fn(Box<dyn Watch>) -> Result<(), Box<dyn Watch>>;
    let _: WatchFn = watch;
    let _: fn(&Handle) -> Waitable = waitable;
    let _: fn(Waitable) -> bool = is_ready;
    let _: fn(&ControlStream) -> Option<Waitable> = ControlStream::waitable;
    let _: fn(&ControlStream, &mut [u8]) -> io::Result<usize> = ControlStream::try_read;
    let _: fn(&OtherProcess) -> Waitable = OtherProcess::waitable;
    let _: fn(&Process) -> Option<Handle> = Process::exit_handle;
    // `impl_os_handle!` (the handle accessors of the public types) is a
    // macro: its use in `channel.rs` and `child.rs` is its check.
};

/// The async backends' contract (feature `tokio`): the reactor
/// registration, exit readiness and the readers-gone wait.
#[cfg(feature = "tokio")]
const _: () = {
    let _: fn(&Handle) -> io::Result<Handle> = duplicate;
    let _: fn(Handle) -> io::Result<ExitReady> = exit_ready;
    let _: fn(Handle) -> io::Result<Registered<Handle>> = Registered::<Handle>::new;
    let _: fn(Registered<Handle>) -> Handle = Registered::<Handle>::into_inner;
    let _: fn(&Registered<Handle>) -> &Handle = Registered::<Handle>::get_ref;
    // Async functions have no nameable type: each is checked by a call of
    // the shape portable code makes.
    async fn _changed(ready: &ExitReady) -> io::Result<()> {
        ready.changed().await
    }
    async fn _readers_gone(handle: &Handle) -> io::Result<()> {
        readers_gone(handle).await
    }
};

/// The Windows-only diagnostics behind `umbilical::mechanisms` (no Unix
/// counterpart: their public API is Windows-only).
#[cfg(windows)]
const _: () = {
    let _: fn() -> io::Result<Vec<WinsockProvider>> = winsock_catalog;
    let _: fn() -> bool = is_wine;
    let _: fn() -> String = os_version;
};

/// Something looked after in the background until it is done, with no
/// thread of its own: the shim link's reader, a child dropped while
/// running. Unix: the process's one background thread, in one `poll(2)`
/// for every watch. Windows: a wait of the system thread pool on each
/// handle a watch names (`watch`).
pub(crate) trait Watch: Send {
    /// What turning ready (readable; Windows: signalled) means
    /// [`Watch::progress`] can move on. The watch keeps each open until
    /// `progress` returns `true`.
    fn interest(&self, out: &mut Vec<Waitable>);
    /// When to look again even if nothing named turned ready.
    fn deadline(&self) -> Option<std::time::Instant>;
    /// Moves on without blocking: at once when handed over, then after
    /// something named turned ready or the deadline passed (or
    /// spuriously). `true` once finished, when the watch is dropped.
    fn progress(&mut self) -> bool;
}

/// Wakes the async layer's waiter of something published on another
/// thread (the shim link's end): tokio's `Notify`. Without the `tokio`
/// feature nothing awaits, and it does nothing.
#[cfg(feature = "tokio")]
pub(crate) type Notify = tokio::sync::Notify;

/// See the `tokio` form: nothing awaits here.
#[cfg(not(feature = "tokio"))]
#[derive(Default)]
pub(crate) struct Notify;

#[cfg(not(feature = "tokio"))]
impl Notify {
    pub(crate) fn notify_one(&self) {}
}

/// The parent's ends of a two-pipe channel and the child's.
pub(crate) struct Pipes {
    pub parent_read: Handle,
    pub parent_write: Handle,
    pub child_stdin: Handle,
    pub child_stdout: Handle,
}

/// Where the child's stderr goes.
pub(crate) enum StderrTarget<'a> {
    Inherit,
    Null,
    To(&'a Handle),
}

/// Everything one spawn needs, in OS-neutral terms; each backend encodes it.
pub(crate) struct Request<'a> {
    /// The program, its arguments, environment changes and directory.
    pub spec: &'a ProgramSpec,
    pub stdin: &'a Handle,
    pub stdout: &'a Handle,
    pub stderr: StderrTarget<'a>,
    pub lifeline: Option<&'a Handle>,
    /// Unix: use fork + exec even where posix_spawn would do.
    #[cfg_attr(windows, allow(dead_code))]
    pub force_fork: bool,
    /// Unix: start the program as the leader of a new process group, and
    /// send signals to that group. Windows: ignored.
    #[cfg_attr(windows, allow(dead_code))]
    pub process_group: bool,
    /// Windows: `CREATE_NO_WINDOW`.
    #[cfg_attr(unix, allow(dead_code))]
    pub no_window: bool,
    /// Windows: put the program in a job object that kills it when closed.
    #[cfg_attr(unix, allow(dead_code))]
    pub kill_on_close_job: bool,
    /// Kill the program when this process ends (Linux, FreeBSD: a
    /// parent-death signal; Windows: a kill-on-close job; refused
    /// elsewhere).
    pub kill_on_parent_death: bool,
    /// Unix: start the program in a session of its own with this terminal
    /// (a private pseudo-terminal's other side) as its controlling
    /// terminal, for a launcher that asks for its password there only.
    /// Windows: never set.
    #[cfg_attr(windows, allow(dead_code))]
    pub terminal: Option<&'a Handle>,
}

impl<'a> Request<'a> {
    /// A request with no lifeline, spawned the fastest way, no window and
    /// no job: what the shim's helpers and sessions need.
    pub(crate) fn plain(
        spec: &'a ProgramSpec,
        stdin: &'a Handle,
        stdout: &'a Handle,
        stderr: StderrTarget<'a>,
        process_group: bool,
    ) -> Request<'a> {
        Request {
            spec,
            stdin,
            stdout,
            stderr,
            lifeline: None,
            force_fork: false,
            process_group,
            no_window: false,
            kill_on_close_job: false,
            kill_on_parent_death: false,
            terminal: None,
        }
    }
}

/// Why a spawn failed; the portable layer adds the program's name.
#[derive(Debug)]
pub(crate) struct SpawnError {
    pub kind: ErrorKind,
    pub what: String,
    pub source: Option<io::Error>,
}

impl SpawnError {
    pub(crate) fn new(kind: ErrorKind, what: impl Into<String>, source: Option<io::Error>) -> Self {
        SpawnError { kind, what: what.into(), source }
    }
}
