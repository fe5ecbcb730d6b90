//! Signals meant for a process group, and who should get them.
//!
//! A terminal's keys (Ctrl-C, Ctrl-\) and a supervisor's group kill
//! (`timeout(1)`, `kill -TERM -PGID`) reach every process of the caller's
//! group. A launcher and the shim in that group would die of them before
//! the shim reports, and the program's status would be lost, while the
//! caller passes each of these signals on to the program through the link
//! itself. So the launcher goes into a group of its own unless it may have
//! to ask for a password on the caller's terminal (only the terminal's
//! foreground group may read it), and the shim, once it supervises the
//! program, ignores them.

use rustix::fd::AsFd;

/// Whether this process's group is the foreground group of its
/// controlling terminal: then a launcher started now may prompt there, and
/// only from within this group (a background group reading the terminal is
/// stopped by SIGTTIN).
///
/// OS reference: tcgetpgrp(3) on `/dev/tty`, getpgrp(2).
pub(crate) fn in_terminal_foreground() -> bool {
    use rustix::fs::{Mode, OFlags};
    let Ok(tty) = rustix::fs::open("/dev/tty", OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    rustix::termios::tcgetpgrp(tty.as_fd()).is_ok_and(|pgrp| pgrp == rustix::process::getpgrp())
}

/// The signals a group receives that the shim leaves to the caller: it
/// passes each on through the link, and if the caller is gone the link's
/// end makes the shim end the program. SIGKILL still ends the shim.
const LEFT_TO_THE_CALLER: [i32; 7] =
    [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM];

/// Makes this process (the shim, supervising) ignore the signals a group
/// receives. Called after the program started: the program's own
/// dispositions are reset to the defaults in its child steps anyway.
///
/// OS reference: sigaction(2).
pub(crate) fn ignore_group_signals() {
    for sig in LEFT_TO_THE_CALLER {
        // SAFETY: SIG_IGN is a valid disposition for each of these
        // catchable signals; no handler runs, so nothing unsafe can run
        // in signal context.
        unsafe {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}
