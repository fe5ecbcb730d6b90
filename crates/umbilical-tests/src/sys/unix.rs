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

static USR1_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn count_usr1(_: libc::c_int) {
    USR1_SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The signal state of a busy host: a handler for `SIGUSR1` (counting, with
/// `SA_RESTART`), `SIGUSR2` ignored, and `SIGHUP` and `SIGINT` blocked in
/// the calling thread. A program it starts must see none of it.
pub fn busy_signal_state() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid starting value; the handler is
    // async-signal-safe (one atomic add); the sets are initialised by
    // sigemptyset before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count_usr1 as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = libc::SA_RESTART;
        if libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::signal(libc::SIGUSR2, libc::SIG_IGN) == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigaddset(&mut set, libc::SIGINT);
        match libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// How many `SIGUSR1`s the handler of [`busy_signal_state`] has run for.
pub fn usr1_seen() -> usize {
    USR1_SEEN.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a spawn must leave as it found it: which of signals 1..=64 the
/// calling thread blocks, `SIGUSR1`'s handler and `SIGUSR2`'s disposition.
pub fn signal_snapshot() -> (Vec<i32>, usize, usize) {
    // SAFETY: the sets and sigaction structs are locals written by the calls
    // (a null new action only reads the current one).
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        let blocked = (1..=64).filter(|&s| libc::sigismember(&mask, s) == 1).collect();
        let (mut usr1, mut usr2): (libc::sigaction, libc::sigaction) = (std::mem::zeroed(), std::mem::zeroed());
        libc::sigaction(libc::SIGUSR1, std::ptr::null(), &mut usr1);
        libc::sigaction(libc::SIGUSR2, std::ptr::null(), &mut usr2);
        (blocked, usr1.sa_sigaction, usr2.sa_sigaction)
    }
}

/// The calling thread, to aim signals at.
pub fn this_thread() -> libc::pthread_t {
    // SAFETY: no preconditions.
    unsafe { libc::pthread_self() }
}

/// Sends `SIGUSR1` to one thread of this process.
pub fn send_usr1(thread: libc::pthread_t) {
    // SAFETY: the caller passes the pthread_t of a thread that outlives the
    // call (the helper's main thread, which joins the sender first).
    unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
}

/// Linux: from now on, in this process, `clone` with `CLONE_VFORK` fails
/// with `EPERM` and `clone3` with `ENOSYS`, as a container's seccomp filter
/// may have it (threads, which `clone` without `CLONE_VFORK`, still
/// start). Irreversible: for a helper process only.
#[cfg(target_os = "linux")]
pub fn refuse_vfork_clone() -> io::Result<()> {
    // Classic BPF, as seccomp(2) documents it; seccomp_data: the syscall
    // number at offset 0, args[0] (its low 32 bits, little-endian) at 16.
    // BPF_LD | BPF_W | BPF_ABS (the first two are 0).
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x05 | 0x10;
    const JSET_K: u16 = 0x05 | 0x40;
    const RET_K: u16 = 0x06;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, 5, 0, libc::SYS_clone3 as u32),
        op(JEQ_K, 0, 2, libc::SYS_clone as u32),
        op(LD_W_ABS, 0, 0, 16),
        op(JSET_K, 1, 0, libc::CLONE_VFORK as u32),
        op(RET_K, 0, 0, ALLOW),
        op(RET_K, 0, 0, ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, ERRNO | libc::ENOSYS as u32),
    ];
    let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
    // SAFETY: prctl with plain integers, then with a pointer to a filter
    // program that outlives the call (the kernel copies it).
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
