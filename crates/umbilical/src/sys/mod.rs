//! The only place with `unsafe` and OS calls. One module per OS family, with
//! the same inner names, selected here and nowhere else.
//!
//! What every backend provides:
//! - `Handle`: an owned descriptor (Unix fd, Windows `HANDLE`);
//! - `HAS_SOCKETS`, and on Unix `socket_pair`, `send`, `shutdown`;
//! - `pipes()` for a two-pipe channel, `inbound_pipe()` for stderr and the
//!   lifeline; `read`, `write_pipe`;
//! - `wait_eof` (lifeline) and `wait_closed` (channel-closed detection);
//! - `spawn(&Request) -> Process`, and `Process` to wait for and kill it;
//! - `spawn_mechanism()`, `exit_mechanism()` for diagnostics.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;

use crate::ErrorKind;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(not(any(unix, windows)))]
compile_error!("umbilical supports Unix (Linux, macOS, BSD) and Windows");

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
    pub program: &'a OsStr,
    pub args: &'a [OsString],
    pub env_clear: bool,
    /// Changes on top of the parent's environment (`None`: remove).
    pub env: &'a BTreeMap<OsString, Option<OsString>>,
    pub cwd: Option<&'a Path>,
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
