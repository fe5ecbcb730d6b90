//! The one error type of the library.

use std::fmt;
use std::io;

/// What went wrong, for callers that branch on it.
///
/// The CLI maps these onto `env`/`timeout` exit conventions: `NotFound` is
/// 127, `NotExecutable` is 126, everything else (a missing launcher too) is
/// 125.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The program does not exist (not on `PATH`, or no such file).
    NotFound,
    /// The launcher program (sudo, ssh, ...) does not exist.
    LauncherNotFound,
    /// The launcher refused: authentication or policy (for example
    /// `sudo -n` without rights, an unknown user, doas without a rule). Only
    /// told apart from the program's own exit when the shim is used.
    LauncherRefused,
    /// The shim misbehaved or died before reporting.
    ShimFailed,
    /// The control stream carried something this build does not speak.
    Protocol,
    /// The shim did not connect and report within the connect timeout
    /// ([`Command::connect_timeout`](crate::Command::connect_timeout)).
    TimedOut,
    /// The program exists but cannot be executed (a directory, no execute
    /// permission, or not an executable format).
    NotExecutable,
    /// The request itself is malformed: an empty program name, a NUL byte
    /// in an argument or environment entry, a working directory that is not
    /// a directory, arguments and environment over the OS's limit (`E2BIG`;
    /// Windows: a command line over 32767 characters).
    InvalidInput,
    /// The OS refused to start the process for another reason (resource
    /// limits, out of memory).
    Spawn,
    /// Setting up or using the channel failed.
    Io,
    /// The [`Session`](crate::Session) is closed: dropped or closed by the
    /// caller, idle past its timeout, or its elevated side gone. Open a
    /// new one.
    SessionClosed,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "program not found",
            ErrorKind::LauncherNotFound => "launcher not found",
            ErrorKind::LauncherRefused => "launcher refused",
            ErrorKind::ShimFailed => "shim failed",
            ErrorKind::Protocol => "control protocol error",
            ErrorKind::TimedOut => "timed out",
            ErrorKind::NotExecutable => "program not executable",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Spawn => "spawn failed",
            ErrorKind::Io => "I/O error",
            ErrorKind::SessionClosed => "session closed",
        })
    }
}

/// An error from [`Command::spawn`](crate::Command::spawn): a kind to match
/// on, a message that names the program, and the OS error behind it if any.
///
/// ```
/// use umbilical::{Command, ErrorKind};
/// let err = Command::new("surely-no-such-program-here").spawn().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert!(err.to_string().contains("surely-no-such-program-here"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<io::Error>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>, source: Option<io::Error>) -> Self {
        Error { kind, message: message.into(), source }
    }

    /// "cannot start `PROGRAM`: WHAT", the one shape of every spawn error.
    pub(crate) fn cannot_start(
        program: &std::ffi::OsStr,
        kind: ErrorKind,
        what: &str,
        source: Option<io::Error>,
    ) -> Self {
        Error::new(kind, format!("cannot start `{}`: {what}", program.to_string_lossy()), source)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The OS error code behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.as_ref().and_then(io::Error::raw_os_error)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.kind {
            ErrorKind::NotFound | ErrorKind::LauncherNotFound => io::ErrorKind::NotFound,
            ErrorKind::NotExecutable => io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
            ErrorKind::LauncherRefused => io::ErrorKind::PermissionDenied,
            ErrorKind::Protocol => io::ErrorKind::InvalidData,
            _ => e.source.as_ref().map_or(io::ErrorKind::Other, io::Error::kind),
        };
        io::Error::new(kind, e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
