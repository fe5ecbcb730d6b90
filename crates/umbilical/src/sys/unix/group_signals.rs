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

/// The caller's terminal lent to a launcher's process group, for as long
/// as it may prompt there; taken back when dropped.
///
/// A launcher whose client carries the shim's link (ssh) must not be in
/// the caller's group, or a Ctrl-C kills it and the link with it, and the
/// program's status is lost. Yet in a group of its own it could not ask
/// for a password on the terminal: only the foreground group may read it
/// (a background reader is stopped by SIGTTIN). So the foreground goes to
/// the launcher's group, as a shell's `fg` does, until the shim connected
/// (no launcher prompts after that), and comes back then.
pub(crate) struct TerminalLoan {
    tty: rustix::fd::OwnedFd,
    ours: rustix::process::Pid,
    theirs: rustix::process::Pid,
}

impl TerminalLoan {
    /// Lends the terminal's foreground to process group `group`, if this
    /// process's group has it, and resumes that group (it may have read the
    /// terminal before the loan and been stopped for it).
    ///
    /// OS reference: tcsetpgrp(3), killpg(3).
    pub(crate) fn lend(group: u32) -> Option<TerminalLoan> {
        use rustix::fs::{Mode, OFlags};
        let tty = rustix::fs::open("/dev/tty", OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty()).ok()?;
        let ours = rustix::process::getpgrp();
        let theirs = rustix::process::Pid::from_raw(i32::try_from(group).ok()?)?;
        if rustix::termios::tcgetpgrp(tty.as_fd()).ok()? != ours {
            return None;
        }
        rustix::termios::tcsetpgrp(tty.as_fd(), theirs).ok()?;
        let _ = rustix::process::kill_process_group(theirs, rustix::process::Signal::CONT);
        Some(TerminalLoan { tty, ours, theirs })
    }
}

impl Drop for TerminalLoan {
    /// Takes the foreground back, unless someone else (a shell that
    /// stopped us) has it by now. From the background, tcsetpgrp would
    /// stop the caller with SIGTTOU unless this thread blocks it.
    fn drop(&mut self) {
        if rustix::termios::tcgetpgrp(self.tty.as_fd()).ok() != Some(self.theirs) {
            return;
        }
        // SAFETY: sigemptyset/sigaddset fill a local sigset_t; pthread_sigmask
        // changes only this thread's mask and is restored right after.
        unsafe {
            let mut ttou: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut ttou);
            libc::sigaddset(&mut ttou, libc::SIGTTOU);
            libc::pthread_sigmask(libc::SIG_BLOCK, &ttou, &mut old);
            let _ = rustix::termios::tcsetpgrp(self.tty.as_fd(), self.ours);
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    }
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
