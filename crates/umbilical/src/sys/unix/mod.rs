//! Unix backend: socketpair/pipe channels, `posix_spawn` with exact
//! inheritance, and exit detection by pidfd (Linux), kqueue (macOS/BSD) or
//! `waitpid`.

pub(crate) mod fd;
pub(crate) mod process;
pub(crate) mod resolve;
pub(crate) mod spawn;
pub(crate) mod wait;

pub(crate) use fd::{lift_above, pipe, socket_pair};
pub(crate) use process::Process;
