//! Unix backend: socketpair/pipe channels, `posix_spawn` with exact
//! inheritance, and exit detection by pidfd (Linux), kqueue (macOS/BSD) or
//! `waitpid`.

mod access;
mod background;
mod bridge;
mod control;
mod fd;
mod group_signals;
mod process;
mod pty;
#[cfg(feature = "tokio")]
mod reactor;
mod rendezvous;
mod resolve;
mod spawn;
mod spawner;
mod tty;
mod wait;

pub(crate) use access::can_execute_as;
pub(crate) use background::{adopt, orphans, watch};
pub(crate) use bridge::{accept_or_hangup, listen_private, relay};
pub(crate) use control::{ControlStream, OtherProcess, SHUTDOWN_DISCARDS_UNREAD};
pub(crate) use fd::{force_sigpipe_guard, inbound_pipe, pipes, read, send, shutdown, socket_pair, write_pipe};
pub(crate) use group_signals::{TerminalLoan, ignore_group_signals, in_terminal_foreground};
pub(crate) use process::{Process, mechanism as exit_mechanism};
pub(crate) use pty::{open_pty, terminal_echoes, write_terminal};
#[cfg(feature = "tokio")]
pub(crate) use reactor::{ExitReady, Registered, duplicate, exit_ready, readers_gone};
pub(crate) use rendezvous::{
    Rendezvous, askpass_socket, caller_is_root, connect_rendezvous, random_token, shim_auth_mechanism, shim_placeable,
};
pub(crate) use spawn::{mechanism as spawn_mechanism, spawn};
pub(crate) use tty::{ask_terminal, has_terminal};
pub(crate) use wait::{read_exact_until, read_until, wait_any, wait_closed, wait_eof, wait_readers_gone, write_until};

/// An owned descriptor.
pub(crate) type Handle = std::os::fd::OwnedFd;

/// Lends a value's OS handle the way this OS's std does (`AsFd`), so that
/// portable code names no OS: `impl_os_handle!(Type, |s| &s.handle)`
/// implements the trait; `impl_os_handle!(pub Type, "doc", |s| ...)` also
/// adds the inherent `as_fd` with that doc; `impl_os_handle!(pub optional
/// Type, "doc", |s| ...)` adds only an inherent `as_fd` returning an
/// `Option` (for a handle that may be closed).
macro_rules! impl_os_handle {
    ($ty:ty, |$s:ident| $handle:expr) => {
        #[cfg_attr(docsrs, doc(cfg(unix)))]
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                let $s = self;
                std::os::fd::AsFd::as_fd($handle)
            }
        }
    };
    (pub $ty:ty, $doc:literal, |$s:ident| $handle:expr) => {
        $crate::sys::impl_os_handle!($ty, |$s| $handle);
        impl $ty {
            #[doc = $doc]
            #[cfg_attr(docsrs, doc(cfg(unix)))]
            pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                let $s = self;
                std::os::fd::AsFd::as_fd($handle)
            }
        }
    };
    (pub optional $ty:ty, $doc:literal, |$s:ident| $handle:expr) => {
        impl $ty {
            #[doc = $doc]
            #[cfg_attr(docsrs, doc(cfg(unix)))]
            pub fn as_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
                let $s = self;
                $handle.map(std::os::fd::AsFd::as_fd)
            }
        }
    };
}
pub(crate) use impl_os_handle;

/// What a background watch waits on: a descriptor, until readable.
pub(crate) type Waitable = std::os::fd::RawFd;

/// The descriptor of `handle`, for a watch's interest.
pub(crate) fn waitable(handle: &Handle) -> Waitable {
    std::os::fd::AsRawFd::as_raw_fd(handle)
}

/// Whether `fd` is readable (or hung up) now, without blocking.
pub(crate) fn is_ready(fd: Waitable) -> bool {
    // SAFETY: poll only reads the number; a descriptor closed meanwhile
    // comes back as POLLNVAL (ready), never as a memory access.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    matches!(wait::wait_any(&[fd], Some(std::time::Instant::now())), Ok(Some(_)))
}

/// A pipe's or socket's hang-up makes its read end readable: the async
/// layer can sleep on a lifeline or the channel.
pub(crate) const HANGUP_IS_READABLE: bool = true;

/// Unix has socketpairs: one duplex descriptor, half-closable.
pub(crate) const HAS_SOCKETS: bool = true;

/// The polite stop: SIGTERM.
pub(crate) const TERMINATE_SIGNAL: Option<i32> = Some(libc::SIGTERM);

/// The numbers of the portable signals on this host, in
/// `Signal::ALL`'s order (HUP, INT, QUIT, KILL, USR1, USR2, PIPE, ALRM,
/// TERM, CONT, STOP, TSTP, WINCH).
pub(crate) const SIGNAL_NUMBERS: Option<[i32; 13]> = Some([
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGKILL,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGCONT,
    libc::SIGSTOP,
    libc::SIGTSTP,
    libc::SIGWINCH,
]);
