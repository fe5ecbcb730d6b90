//! What the child does between its start (by `fork`, or by `clone` sharing
//! the parent's memory) and `execve`.
//!
//! Only async-signal-safe calls (signal-safety(7)) on data the parent
//! prepared: no allocation, no lock, no unwinding. In the `clone` path the
//! child also shares the parent's memory and thread pointer, so it writes
//! nothing but its own stack and, on failure, `errno` (the suspended parent
//! thread's, which nobody reads across a spawn).

use std::ffi::{c_char, c_int};
use std::io;
use std::os::fd::RawFd;

use super::{Fds, Plan, StderrFd};

/// The step that failed, as the child reports it.
pub(super) const STAGE_CHDIR: i32 = 1;
/// `execve` itself failed.
pub(super) const STAGE_EXEC: i32 = 2;
/// Wiring the descriptors or the process group failed.
pub(super) const STAGE_SETUP: i32 = 3;

/// Everything the child reads, computed before it starts.
pub(super) struct Setup<'a> {
    pub(super) plan: &'a Plan<'a>,
    pub(super) envp: *const *const c_char,
    pub(super) fds: &'a Fds,
    /// The first descriptor the program must not get: 3, or 4 with a
    /// lifeline.
    pub(super) first_closed: c_int,
    /// A descriptor that must stay open until `execve` (close-on-exec), if
    /// any: the fork path's report pipe.
    pub(super) keep: Option<RawFd>,
    /// Where the `close` loop stops, if `close_range` is refused.
    pub(super) limit: c_int,
}

/// Wires the descriptors, resets the signal state and execs. Returns only
/// on failure, with the stage and the errno.
///
/// # Safety
/// Only in the child, before `execve`, with the parent's data still valid.
pub(super) unsafe fn exec(s: &Setup<'_>) -> (i32, i32) {
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if let Some(parent) = s.plan.parent_death
        && !die_with(parent)
    {
        return (STAGE_SETUP, errno());
    }
    if let Some(terminal) = s.plan.terminal {
        // SAFETY: async-signal-safe; setsid makes this (child) process the
        // leader of a new session and group, and TIOCSCTTY gives that
        // session the terminal the parent opened (its fd stays open until
        // the close below or execve).
        if unsafe { libc::setsid() } < 0 || unsafe { libc::ioctl(terminal, libc::TIOCSCTTY as _, 0) } != 0 {
            return (STAGE_SETUP, errno());
        }
    } else if s.plan.process_group {
        // SAFETY: async-signal-safe; acts on this (child) process only.
        if unsafe { libc::setpgid(0, 0) } != 0 {
            return (STAGE_SETUP, errno());
        }
    }
    reset_signals();
    if !dup_stdio(s.fds) {
        return (STAGE_SETUP, errno());
    }
    // SAFETY: only this (child) process's descriptors are affected; `keep`
    // stays open until execve.
    unsafe { close_from(s.first_closed, s.keep, s.limit) };
    if let Some(cwd) = s.plan.cwd {
        // SAFETY: chdir(2) with a NUL-terminated path built by the parent.
        if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
            return (STAGE_CHDIR, errno());
        }
    }
    // SAFETY: execve(2) with a NUL-terminated path and null-terminated
    // argv/envp arrays built by the parent; it returns only on failure.
    unsafe { libc::execve(s.plan.path.as_ptr(), s.plan.argv.as_ptr(), s.envp) };
    (STAGE_EXEC, errno())
}

/// Every signal back to its default disposition, then none blocked
/// (pthread_sigmask(3)), as a fresh process expects. Dispositions first:
/// the `clone` child starts with every signal blocked, and a handler of the
/// parent's must never run in it.
fn reset_signals() {
    for sig in 1..65 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            default_disposition(sig);
        }
    }
    // SAFETY: an empty set, initialised by sigemptyset; the call changes
    // this process's mask only.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Linux: `rt_sigaction(2)` itself, because glibc's `sigaction` refuses the
/// two signals it keeps for itself (32 and 33). An ignored one survives
/// `execve`, and glibc's own `posix_spawn` leaves them ignored in the
/// program when the parent had handlers for them, so a host started that
/// way hands the ignore on: the program must not get it from us.
#[cfg(target_os = "linux")]
fn default_disposition(sig: c_int) {
    // The kernel's `sigaction` differs by architecture, but in every layout
    // all-zero is SIG_DFL with no flags and an empty mask; 64 bytes cover
    // the largest.
    let zeroed = [0u64; 8];
    // The kernel's sigset size: 64 signals, 128 on MIPS.
    let sigset_size: usize = if cfg!(any(target_arch = "mips", target_arch = "mips64")) { 16 } else { 8 };
    // SAFETY: rt_sigaction reads the zeroed buffer (large enough for the
    // kernel's struct) and writes nothing (null old action); it changes
    // this (child) process's disposition only.
    unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, zeroed.as_ptr(), std::ptr::null_mut::<u8>(), sigset_size) };
}

/// Elsewhere: sigaction(2).
#[cfg(not(target_os = "linux"))]
fn default_disposition(sig: c_int) {
    // SAFETY: all-zero is a valid `sigaction` (SIG_DFL, empty mask); the
    // call only reads it and changes this process's disposition.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// The channel on 0 and 1, stderr on 2, the lifeline on 3 (dup2(2)). The
/// sources sit above the targets (lifted by the parent), so dup2 always
/// makes a fresh, inheritable copy. `false` if any step failed (errno says
/// why).
fn dup_stdio(fds: &Fds) -> bool {
    let dup2 = |from: RawFd, to: c_int| {
        // SAFETY: dup2 on descriptors of this (child) process.
        unsafe { libc::dup2(from, to) >= 0 }
    };
    if !dup2(fds.stdin, 0) || !dup2(fds.stdout, 1) {
        return false;
    }
    let stderr_ok = match fds.stderr {
        StderrFd::Inherit => true,
        StderrFd::Fd(fd) => dup2(fd, 2),
        StderrFd::Null => {
            // SAFETY: open(2) with a NUL-terminated static path.
            let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY) };
            let ok = null >= 0 && dup2(null, 2);
            if null > 2 {
                // SAFETY: closes the descriptor just opened, not needed now.
                unsafe { libc::close(null) };
            }
            ok
        }
    };
    stderr_ok && fds.lifeline.is_none_or(|fd| dup2(fd, 3))
}

/// Makes sure no descriptor from `first` up reaches the program.
///
/// Linux 5.11+: marks them all close-on-exec (`close_range` with
/// `CLOSE_RANGE_CLOEXEC`), a flip of bits in the descriptor table. The
/// closing itself then happens in `execve`, after a `clone` parent has
/// resumed, instead of one by one while it waits: with a thousand
/// descriptors open in the parent that is most of a spawn's cost. Older
/// kernels: `close_range` around `keep`; elsewhere a `close` loop.
///
/// # Safety
/// Only in the child, before `execve`.
unsafe fn close_from(first: c_int, keep: Option<RawFd>, limit: c_int) {
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        let range = |from: c_int, to: libc::c_uint, flags: libc::c_uint| {
            // SAFETY: close_range only affects descriptors of this (child)
            // process.
            unsafe { libc::syscall(libc::SYS_close_range, from as libc::c_uint, to, flags) == 0 }
        };
        if range(first, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) {
            return;
        }
        let ok = match keep {
            Some(keep) if keep >= first => {
                (keep == first || range(first, (keep - 1) as libc::c_uint, 0)) && range(keep + 1, libc::c_uint::MAX, 0)
            }
            _ => range(first, libc::c_uint::MAX, 0),
        };
        if ok {
            return;
        }
    }
    for fd in first..limit.max(keep.map_or(0, |k| k + 1)) {
        if Some(fd) != keep {
            // SAFETY: closing any descriptor number is memory-safe here.
            unsafe { libc::close(fd) };
        }
    }
}

/// Asks for SIGKILL when the parent goes, then checks that the parent is
/// still `parent`: one that died before the request was made has already
/// handed this child to another process, and the signal would never come,
/// so the child ends itself. `false` if the request was refused (errno).
///
/// Linux: `prctl(PR_SET_PDEATHSIG)`, which fires when the *thread* that
/// started the child ends (the caller spawns from a thread that lives as
/// long as the process). FreeBSD: `procctl(PROC_PDEATHSIG_CTL)`, which
/// fires when the parent process ends.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn die_with(parent: libc::pid_t) -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) with PR_SET_PDEATHSIG and a signal number; it
    // changes this (child) process's attribute only.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    #[cfg(target_os = "freebsd")]
    let rc = {
        let mut sig: c_int = libc::SIGKILL;
        // SAFETY: procctl(2) on this process (P_PID, 0) with a pointer to
        // a live int, as PROC_PDEATHSIG_CTL takes.
        unsafe { libc::procctl(libc::P_PID, 0, libc::PROC_PDEATHSIG_CTL, (&raw mut sig).cast()) }
    };
    if rc != 0 {
        return false;
    }
    // SAFETY: getppid(2) has no preconditions.
    if unsafe { libc::getppid() } != parent {
        // SAFETY: raise(3) of SIGKILL on this process, which ends here.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    true
}

/// Elsewhere the spawn refuses the request before a child starts.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn die_with(_parent: libc::pid_t) -> bool {
    false
}
