//! Windows backend: two one-way named pipes per channel (overlapped on the
//! parent's side, synchronous on the program's), `CreateProcessW` with an
//! explicit handle list, and exit detection on the process handle.
//!
//! No SOCKET is ever made for a child's stdio: an inherited socket is
//! unusable in the child when a non-IFS Layered Service Provider is
//! installed, and pipes are what every program expects on stdin anyway.

mod background;
mod diag;
mod elevate;
mod handle;
#[cfg(feature = "tokio")]
mod on_signal;
mod pipe;
mod process;
#[cfg(feature = "tokio")]
mod reactor;
mod rendezvous;
mod spawn;
mod stderr_relay;
mod wait;
mod windows_of;

pub(crate) use background::watch;
pub use diag::WinsockProvider;
pub(crate) use diag::{is_wine, os_version, winsock_catalog};
pub(crate) use elevate::{ElevateError, run_elevated};
pub(crate) use handle::{read, read_until, write_pipe, write_until};
#[cfg(feature = "tokio")]
pub(crate) use on_signal::{OnSignal, on_signal};
pub(crate) use pipe::{
    Direction, accept_client, inbound_pipe, open_client, pipes, random_token, server as pipe_server,
};
pub(crate) use process::{OtherProcess, Process, mechanism as exit_mechanism};
#[cfg(feature = "tokio")]
pub(crate) use reactor::{ExitReady, Registered, duplicate, exit_ready, readers_gone};
pub(crate) use rendezvous::{
    ControlStream, Rendezvous, SHUTDOWN_DISCARDS_UNREAD, ask_terminal, askpass_socket, caller_is_root,
    connect_rendezvous, has_terminal, open_pty, shim_auth_mechanism, shim_placeable, terminal_echoes, write_terminal,
};
pub(crate) use spawn::{mechanism as spawn_mechanism, spawn};
pub(crate) use stderr_relay::relay_to_stderr;
pub(crate) use wait::{wait_closed, wait_eof, wait_readers_gone};

/// An owned handle.
pub(crate) type Handle = std::os::windows::io::OwnedHandle;

/// Lends a value's OS handle the way this OS's std does (`AsHandle`), so that
/// portable code names no OS: `impl_os_handle!(Type, |s| &s.handle)`
/// implements the trait; `impl_os_handle!(pub Type, "doc", |s| ...)` also
/// adds the inherent `as_handle` with that doc; `impl_os_handle!(pub optional
/// Type, "doc", |s| ...)` adds only an inherent `as_handle` returning an
/// `Option` (for a handle that may be closed).
macro_rules! impl_os_handle {
    ($ty:ty, |$s:ident| $handle:expr) => {
        #[cfg_attr(docsrs, doc(cfg(windows)))]
        impl std::os::windows::io::AsHandle for $ty {
            fn as_handle(&self) -> std::os::windows::io::BorrowedHandle<'_> {
                let $s = self;
                std::os::windows::io::AsHandle::as_handle($handle)
            }
        }
    };
    (pub $ty:ty, $doc:literal, |$s:ident| $handle:expr) => {
        $crate::sys::impl_os_handle!($ty, |$s| $handle);
        impl $ty {
            #[doc = $doc]
            #[cfg_attr(docsrs, doc(cfg(windows)))]
            pub fn as_handle(&self) -> std::os::windows::io::BorrowedHandle<'_> {
                let $s = self;
                std::os::windows::io::AsHandle::as_handle($handle)
            }
        }
    };
    (pub optional $ty:ty, $doc:literal, |$s:ident| $handle:expr) => {
        impl $ty {
            #[doc = $doc]
            #[cfg_attr(docsrs, doc(cfg(windows)))]
            pub fn as_handle(&self) -> Option<std::os::windows::io::BorrowedHandle<'_>> {
                let $s = self;
                $handle.map(std::os::windows::io::AsHandle::as_handle)
            }
        }
    };
}
pub(crate) use impl_os_handle;

/// What a background watch waits on: a handle, until signalled.
pub(crate) type Waitable = std::os::windows::io::RawHandle;

/// The raw handle of `handle`, for a watch's interest.
pub(crate) fn waitable(handle: &Handle) -> Waitable {
    std::os::windows::io::AsRawHandle::as_raw_handle(handle)
}

/// Whether `handle` is signalled now, without blocking.
pub(crate) fn is_ready(handle: Waitable) -> bool {
    use windows_sys::Win32::Foundation::WAIT_OBJECT_0;
    // SAFETY: a zero-timeout wait only reads the handle; the caller keeps
    // it open.
    unsafe { windows_sys::Win32::System::Threading::WaitForSingleObject(handle as _, 0) == WAIT_OBJECT_0 }
}

/// A pipe's hang-up is no readiness here: the async layer polls a
/// lifeline or the channel.
pub(crate) const HANGUP_IS_READABLE: bool = false;

/// No socket channel on Windows; see the module docs.
pub(crate) const HAS_SOCKETS: bool = false;

/// No socket channel here (`HAS_SOCKETS` is false, so the channel never
/// asks): a socket inherited by a program breaks under Layered Service
/// Providers, which is why the channel is two pipes.
pub(crate) fn socket_pair() -> std::io::Result<(Handle, Handle)> {
    Err(no_socket_channel())
}

/// See [`socket_pair`]: there is no socket to send on.
pub(crate) fn send(_socket: &Handle, _buf: &[u8]) -> std::io::Result<usize> {
    Err(no_socket_channel())
}

/// See [`socket_pair`]: there is no socket to shut down.
pub(crate) fn shutdown(_socket: &Handle, _write: bool) -> std::io::Result<()> {
    Err(no_socket_channel())
}

fn no_socket_channel() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, "no socket channel on Windows: the channel is two pipes")
}

/// Windows has no SIGPIPE: nothing to guard against.
pub(crate) fn force_sigpipe_guard() {}

/// No signals: a stop is `TerminateProcess`.
pub(crate) const TERMINATE_SIGNAL: Option<i32> = None;

/// No signal has a number here.
pub(crate) const SIGNAL_NUMBERS: Option<[i32; 13]> = None;

/// Windows has no zombies: dropping a process handle is all a dropped
/// child needs.
pub(crate) fn adopt(process: Process) {
    drop(process);
}

/// Nothing waits in the background on Windows.
pub(crate) fn orphans() -> usize {
    0
}

/// No process groups or terminal prompts here: never in a terminal's
/// foreground in the Unix sense.
pub(crate) fn in_terminal_foreground() -> bool {
    false
}

/// No terminal foreground to lend (see the Unix `TerminalLoan`).
pub(crate) struct TerminalLoan;

impl TerminalLoan {
    /// Never lent here.
    pub(crate) fn lend(_group: u32) -> Option<TerminalLoan> {
        None
    }
}

/// Console control events are not group signals; the shim keeps the
/// defaults.
pub(crate) fn ignore_group_signals() {}

/// Launchers that switch to a named user are Unix-only; the shim never
/// runs through one here.
pub(crate) fn can_execute_as(_path: &std::path::Path, _user: Option<&str>) -> Result<(), String> {
    Err("that launcher with the shim is Unix-only".into())
}
