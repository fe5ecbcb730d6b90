//! A private pseudo-terminal for a launcher that reads its password from
//! its controlling terminal only (doas's `readpassphrase`, pkexec's
//! textual polkit agent): the launcher is started in a session of its own
//! with the terminal's other side as its controlling terminal (`spawn`'s
//! `terminal`), while its stdin and stdout stay the channel; the prompt
//! relay reads the question from this side and writes the answer.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

/// Opens a pseudo-terminal: its controlling side (ours) and the terminal
/// side (the launcher's), both close-on-exec, neither our controlling
/// terminal, the terminal in exclusive mode (`TIOCEXCL`).
///
/// OS reference: posix_openpt(3), grantpt(3), unlockpt(3), ptsname(3),
/// tty_ioctl(4) `TIOCEXCL`.
pub(crate) fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    rustix::io::fcntl_setfd(&master, rustix::io::FdFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())?;
    // Exclusive: no further open of the terminal's path (`/dev/pts/N`,
    // ours and mode 0620) succeeds but a privileged one (doas and pkexec
    // open it as `/dev/tty` as root; su reads the descriptor it inherits),
    // so a process of the caller's own user cannot open it to read the
    // typed password.
    rustix::termios::ioctl_tiocexcl(&slave)?;
    Ok((master, slave))
}

/// Whether the terminal echoes what is typed: a launcher turns echo off
/// while it reads a secret.
pub(crate) fn terminal_echoes(terminal: &OwnedFd) -> bool {
    rustix::termios::tcgetattr(terminal.as_fd())
        .is_ok_and(|t| t.local_modes.contains(rustix::termios::LocalModes::ECHO))
}

/// Writes all of `buf` to the terminal (our side), as typed input. A
/// plain write: a terminal raises no SIGPIPE, and `write_pipe`'s
/// `RWF_NOSIGNAL` is for pipes and sockets.
///
/// OS reference: write(2).
pub(crate) fn write_terminal(terminal: &OwnedFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(terminal, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
