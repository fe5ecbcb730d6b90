//! What `wait()` reports: the status, if it is knowable, and how the end was
//! observed.

use std::fmt;

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitStatus {
    /// The program exited with this code. On Unix 0..=255. On Windows the
    /// full 32-bit DWORD, bit for bit (`code as i32`; cast back with
    /// `as u32`), so an NTSTATUS such as `0xC0000005` reads as negative.
    Exited(i32),
    /// The program was killed by this signal (Unix).
    Signaled(i32),
    /// The end was observed, but not the status: the lifeline or the channel
    /// closed, which says every holder is gone but not how.
    Unknown,
}

/// How the end of the program is to be observed: the setting
/// ([`Command::exit_detection`](crate::Command::exit_detection)), beside
/// [`Detection`], what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ExitDetection {
    /// The best that the way of starting allows; for a direct spawn that is
    /// [`ExitDetection::Process`].
    #[default]
    Auto,
    /// Wait for the process umbilical started: exact status, but if that
    /// process is only a wrapper that exits at once, its exit is reported.
    Process,
    /// Give the program an extra descriptor (fd 3, the lifeline) and wait
    /// until every process that inherited it has exited. Waits for a whole
    /// tree that keeps inherited descriptors; the status is
    /// [`ExitStatus::Unknown`](crate::ExitStatus::Unknown).
    Lifeline,
    /// Wait until the program's side of the channel is closed in every
    /// process that held it. Needs no extra descriptor; the status is
    /// [`ExitStatus::Unknown`](crate::ExitStatus::Unknown).
    ChannelClosed,
}

/// How the end of the program was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Detection {
    /// Through the process itself (pidfd, kqueue or `waitpid`): exact status.
    Process,
    /// Through a shim that reported the program's status.
    Shim,
    /// The shim died before it reported: the status was lost
    /// ([`ExitStatus::Unknown`]), unlike the lifeline's and the channel's
    /// unknown status, which is unknown by design. Callers should treat it
    /// as a failure (the `umbilical` CLI exits 125 and says so).
    ///
    /// When this end comes depends on the OS: on Linux and Windows the
    /// parent opened its own handle on the program (a pidfd; `OpenProcess`
    /// with `SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION`) while the shim
    /// still held it, so the end is the program's real end. Where that open
    /// is refused (a Windows process whose DACL forbids it), through ssh (the
    /// program is on another host) and on macOS/BSD, which have no such
    /// handle, the shim's death is taken as the end.
    ///
    /// A wait after [`Child::kill`](crate::Child::kill) also ends here when
    /// the shim has not answered the kill within 5 seconds (stopped out of
    /// the caller's reach, or on a host that no longer answers): its
    /// launcher is killed, and the program, if it still runs, is ended by
    /// the shim once it runs again and finds the link closed.
    ShimLost,
    /// The lifeline read EOF: every process that inherited it has exited.
    Lifeline,
    /// The program's side of the channel closed in every process that held it.
    ChannelClosed,
}

impl Detection {
    /// The lower-case name used in reports (`"process"`, `"shim"`,
    /// `"shim-lost"`, `"lifeline"`, `"channel"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Detection::Process => "process",
            Detection::Shim => "shim",
            Detection::ShimLost => "shim-lost",
            Detection::Lifeline => "lifeline",
            Detection::ChannelClosed => "channel",
        }
    }
}

/// What [`Child::wait`](crate::Child::wait) returns.
///
/// ```
/// use umbilical::{Detection, Exit, ExitStatus};
/// let exit = Exit { status: ExitStatus::Exited(3), detection: Detection::Process };
/// assert_eq!(exit.code(), Some(3));
/// assert!(!exit.success());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exit {
    /// The status, where it is knowable.
    pub status: ExitStatus,
    /// How the end was observed.
    pub detection: Detection,
}

impl Exit {
    /// `true` only for a known exit code of 0.
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Exited(0)
    }

    /// The exit code, if the program exited normally and the code is known.
    pub fn code(&self) -> Option<i32> {
        match self.status {
            ExitStatus::Exited(c) => Some(c),
            _ => None,
        }
    }

    /// `true` when the status should have been known but was lost (the
    /// shim died before reporting it), as opposed to unknown by design.
    pub fn status_lost(&self) -> bool {
        self.detection == Detection::ShimLost
    }

    /// The terminating signal, if the program was killed by one.
    pub fn signal(&self) -> Option<i32> {
        match self.status {
            ExitStatus::Signaled(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            ExitStatus::Exited(c) => write!(f, "exit code {c}")?,
            ExitStatus::Signaled(s) => write!(f, "killed by signal {s}")?,
            ExitStatus::Unknown if self.status_lost() => write!(f, "ended, status lost")?,
            ExitStatus::Unknown => write!(f, "ended, status unknown")?,
        }
        write!(f, " (seen by {})", self.detection.as_str())
    }
}
