//! Unix process state the peer tests need to set up on purpose: a SIGPIPE
//! at its default disposition (as in a C host), closed standard
//! descriptors, and signals that interrupt a blocked call with `EINTR`.

use std::io;

/// Puts SIGPIPE back to `SIG_DFL` in this process, undoing what Rust's
/// runtime does before `main`: a SIGPIPE now kills the process, as it
/// would a C program that hosts umbilical.
pub fn default_sigpipe() -> io::Result<()> {
    // SAFETY: `signal` with SIG_DFL installs no handler; it only changes
    // this process's disposition for SIGPIPE.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes fds 0, 1 and 2 of this process, so that the next descriptors
/// opened take those numbers (libuv's `spawn_closed_process_io`).
pub fn close_stdio() {
    for fd in 0..3 {
        // SAFETY: closing the standard descriptors, which nothing in this
        // process holds as an owned object; a later use of std's stdio
        // gets EBADF or the new occupant, which is what the test wants.
        unsafe { libc::close(fd) };
    }
}

extern "C" fn do_nothing(_: libc::c_int) {}

/// Installs a handler for `SIGUSR2` without `SA_RESTART`, so that the
/// signal makes a blocked `read`/`write`/`poll` in the targeted thread
/// return `EINTR` instead of being restarted by the kernel.
pub fn install_interrupting_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid starting value; the handler is
    // async-signal-safe (it does nothing); `sigemptyset` initialises the
    // mask before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = do_nothing as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        if libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sends `SIGUSR2` to one thread of this process.
pub fn interrupt(thread: libc::pthread_t) {
    // SAFETY: the caller passes the pthread_t of a thread it still holds a
    // JoinHandle for, so the thread has not been joined or detached.
    unsafe { libc::pthread_kill(thread, libc::SIGUSR2) };
}

/// Closes this process's stdin (fd 0) and nothing else.
pub fn close_stdin() {
    // SAFETY: fd 0 is held by no owned object in the helper program that
    // calls this; it only reads stdin through std, and not afterwards.
    unsafe { libc::close(0) };
}

/// Whether process `pid` exists and has not exited (a zombie has exited).
pub fn alive(pid: u32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else { return false };
    if rustix::process::test_kill_process(p).is_err() {
        return false;
    }
    // Linux: a zombie still answers kill(0); its state says it has exited.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')').is_none_or(|i| stat.get(i + 2..i + 3) != Some("Z"))
}

/// How many threads this process has (Linux: `/proc/self/status`).
#[cfg(target_os = "linux")]
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("Threads:")).expect("a Threads line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a thread count")
}
