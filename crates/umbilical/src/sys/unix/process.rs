//! A spawned child process we are the parent of: waiting and killing without
//! a SIGCHLD handler and without racing pid reuse.
//!
//! The pid stays ours until we reap it, so every operation here is safe
//! against reuse as long as nothing else in the process reaps our children
//! (`waitpid(-1, ..)` elsewhere, or SIGCHLD set to `SIG_IGN`). On Linux a
//! pidfd pins the process independently of that.

use std::io;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

use crate::exit::ExitStatus;

pub(crate) struct Process {
    pid: Pid,
    /// The program leads a process group of its own: signals go to the
    /// group (its children too), as `timeout(1)` does.
    group: bool,
    /// Held while reaping and while signalling: a signal is never sent to
    /// a pid (or group) that reaping freed for reuse, even when one thread
    /// waits while another signals (the shim).
    state: std::sync::Mutex<State>,
    /// Linux: a pollable handle on the process (`pidfd_open`).
    #[cfg(target_os = "linux")]
    pidfd: Option<std::os::fd::OwnedFd>,
    /// macOS/BSD: a kqueue with `EVFILT_PROC`/`NOTE_EXIT` registered.
    #[cfg(kqueue)]
    kq: Option<std::os::fd::OwnedFd>,
}

/// How exits are observed on this system, for diagnostics.
/// Where the process is in its life, as far as we have looked.
#[derive(Clone, Copy)]
enum State {
    Running,
    /// A group leader that exited: its status is known, and it is kept a
    /// zombie (reaped on drop) so that its pid, the group's id, cannot be
    /// reused while what it left in its group can still be signalled (a
    /// background child holding its output, after a timeout).
    ExitedKept(ExitStatus),
    Reaped,
}

pub(crate) fn mechanism() -> &'static str {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::process::getpid();
        if rustix::process::pidfd_open(me, rustix::process::PidfdFlags::empty()).is_ok() {
            "pidfd (pidfd_open + waitid P_PIDFD)"
        } else {
            "waitpid (pidfd_open refused)"
        }
    }
    #[cfg(kqueue)]
    {
        "kqueue (EVFILT_PROC NOTE_EXIT)"
    }
    #[cfg(not(any(target_os = "linux", kqueue)))]
    {
        "waitpid"
    }
}

impl Process {
    /// Wraps a freshly spawned, not yet reaped child.
    pub(crate) fn open(raw_pid: i32, group: bool) -> Process {
        let pid = Pid::from_raw(raw_pid).expect("spawn returned a positive pid");
        Process {
            pid,
            group,
            state: std::sync::Mutex::new(State::Running),
            // Old kernels (ENOSYS) and seccomp filters (EPERM) refuse
            // pidfd_open; waitpid with backoff is the fallback.
            #[cfg(target_os = "linux")]
            pidfd: rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok(),
            #[cfg(kqueue)]
            kq: kqueue_for(pid).ok(),
        }
    }

    /// A descriptor that turns readable when the process exits (its pidfd),
    /// where there is one.
    pub(crate) fn pollable(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            self.pidfd.as_ref().map(|fd| fd.as_fd())
        }
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// A new descriptor that turns readable when the process exits, for a
    /// reactor: a duplicate of the pidfd (Linux), a kqueue of its own with
    /// `EVFILT_PROC` (macOS/BSD). `None` where there is none, or once the
    /// process was reaped (its pid may be another's).
    pub(crate) fn exit_handle(&self) -> Option<std::os::fd::OwnedFd> {
        if matches!(*self.state.lock().unwrap_or_else(|e| e.into_inner()), State::Reaped) {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            self.pidfd.as_ref().and_then(|fd| fd.try_clone().ok())
        }
        #[cfg(kqueue)]
        {
            kqueue_for(self.pid).ok()
        }
        #[cfg(not(any(target_os = "linux", kqueue)))]
        None
    }

    /// Whether this process leads a process group of its own (and is kept
    /// a zombie after its exit, until dropped).
    pub(crate) fn leads_group(&self) -> bool {
        self.group
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// Blocks until the process exits and reaps it. The wait itself leaves
    /// the process a zombie, so the reaping lock is held only for the reap.
    ///
    /// OS reference: waitid(2) (`P_PIDFD` on Linux), waitpid(2).
    pub(crate) fn wait(&self) -> io::Result<ExitStatus> {
        loop {
            self.wait_exited_unreaped()?;
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
        }
    }

    /// Blocks until the process has exited, leaving it unreaped: a pidfd
    /// turns readable, or `waitid(WNOWAIT)` without one.
    fn wait_exited_unreaped(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(pidfd) = &self.pidfd {
            use std::os::fd::AsFd;
            return super::wait::wait_readable(pidfd.as_fd());
        }
        use rustix::process::{WaitId, WaitIdOptions};
        loop {
            match rustix::process::waitid(WaitId::Pid(self.pid), WaitIdOptions::EXITED | WaitIdOptions::NOWAIT) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reaps the process if it has exited, without blocking; a group
    /// leader is only looked at (see `State::ExitedKept`).
    ///
    /// OS reference: waitid(2) / waitpid(2) with `WNOHANG`.
    pub(crate) fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match *state {
            State::Reaped => return Err(io::Error::other("the process was already reaped")),
            State::ExitedKept(status) => return Ok(Some(status)),
            State::Running => {}
        }
        let found = if self.group { self.waitid_nohang(true)? } else { self.reap_nohang()? };
        if let Some(status) = found {
            *state = if self.group { State::ExitedKept(status) } else { State::Reaped };
        }
        Ok(found)
    }

    /// Reaps a group leader kept a zombie after its exit (see
    /// `State::ExitedKept`): for a process about to exit itself, whose
    /// zombie child would otherwise go to an init that may never reap it
    /// (a container's first process often does not).
    pub(crate) fn release(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::ExitedKept(_) = *state
            && matches!(self.reap_nohang(), Ok(Some(_)))
        {
            *state = State::Reaped;
        }
    }

    fn reap_nohang(&self) -> io::Result<Option<ExitStatus>> {
        #[cfg(target_os = "linux")]
        if self.pidfd.is_some() {
            return self.waitid_nohang(false);
        }
        self.waitpid_nohang()
    }

    /// `waitid(WEXITED | WNOHANG)`, by pidfd where there is one, leaving
    /// the process a zombie when `keep`.
    fn waitid_nohang(&self, keep: bool) -> io::Result<Option<ExitStatus>> {
        use rustix::process::{WaitId, WaitIdOptions};
        #[cfg(target_os = "linux")]
        use std::os::fd::AsFd;
        let mut options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
        if keep {
            options |= WaitIdOptions::NOWAIT;
        }
        let id = || {
            #[cfg(target_os = "linux")]
            if let Some(pidfd) = &self.pidfd {
                return WaitId::PidFd(pidfd.as_fd());
            }
            WaitId::Pid(self.pid)
        };
        loop {
            match rustix::process::waitid(id(), options) {
                Ok(Some(status)) => {
                    return Ok(if let Some(code) = status.exit_status() {
                        Some(ExitStatus::Exited(code))
                    } else {
                        // Nothing to report fills in a zero siginfo: no signal.
                        status.terminating_signal().map(ExitStatus::Signaled)
                    });
                }
                Ok(None) => return Ok(None),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn waitpid_nohang(&self) -> io::Result<Option<ExitStatus>> {
        loop {
            match rustix::process::waitpid(Some(self.pid), WaitOptions::NOHANG) {
                Ok(found) => return Ok(found.map(|(_, status)| decode(status))),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until the process exits or the deadline passes.
    pub(crate) fn wait_deadline(&self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        let Some(deadline) = deadline else {
            return self.wait().map(Some);
        };
        if deadline <= Instant::now() {
            // A look without waiting (`try_wait`, the async layer after
            // each wake-up): one `waitid(WNOHANG)`, no `poll` first.
            return self.try_wait();
        }
        #[cfg(target_os = "linux")]
        if let Some(pidfd) = &self.pidfd {
            use std::os::fd::AsFd;
            // A pidfd is readable once the process has exited.
            if !super::wait::wait_fd(pidfd.as_fd(), super::wait::Until::Readable, Some(deadline))? {
                return Ok(None);
            }
            return self.try_wait();
        }
        #[cfg(kqueue)]
        if let Some(kq) = &self.kq {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if !kqueue_wait(kq, deadline)? {
                return Ok(None);
            }
            return self.try_wait();
        }
        self.poll_with_backoff(deadline)
    }

    /// Last resort without a pollable handle: `WNOHANG` with growing sleeps
    /// (1 ms up to 50 ms), bounded by the deadline. A library may not
    /// install a SIGCHLD handler to do better.
    fn poll_with_backoff(&self, deadline: Instant) -> io::Result<Option<ExitStatus>> {
        let mut nap = Duration::from_millis(1);
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(50));
        }
    }

    /// Sends SIGKILL. A process that already exited is not an error.
    ///
    /// OS reference: pidfd_send_signal(2) on Linux, kill(2) / killpg(3) elsewhere.
    pub(crate) fn kill(&self) -> io::Result<()> {
        self.signal(Signal::KILL)
    }

    /// Resumes the process (its group, if it leads one) should it be
    /// stopped: SIGCONT. Launchers such as sudo stop themselves when their
    /// command stops and resume it when resumed, so this is how a shim that
    /// was stopped gets to act on a kill, and how a launcher that stopped
    /// along gets to reap it and exit. Best effort: a process that ended,
    /// or that this user may not signal, is left as it is.
    ///
    /// OS reference: kill(2) with SIGCONT.
    pub(crate) fn resume(&self) {
        let _ = self.signal(Signal::CONT);
    }

    /// Sends signal `sig`: the shim's way to stop the program, the same
    /// call on every OS (Windows terminates whatever `sig` says).
    /// Asks the program to end: SIGTERM (to its group when it leads one).
    /// Always a request here (`Ok(true)`), as Windows' counterpart is
    /// where it can be.
    pub(crate) fn ask_to_end(&self) -> io::Result<bool> {
        self.signal_raw(libc::SIGTERM).map(|()| true)
    }

    pub(crate) fn signal_or_terminate(&self, sig: i32) -> io::Result<()> {
        self.signal_raw(sig)
    }

    /// Sends signal `sig` (a raw number); an exited process is not an error.
    ///
    /// OS reference: pidfd_send_signal(2) on Linux, kill(2) / killpg(3) elsewhere.
    pub(crate) fn signal_raw(&self, sig: i32) -> io::Result<()> {
        let sig =
            Signal::from_named_raw(sig).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unknown signal"))?;
        self.signal(sig)
    }

    fn signal(&self, sig: Signal) -> io::Result<()> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match *state {
            State::Reaped => return Ok(()), // its pid may already be someone else's
            State::ExitedKept(_) => {}      // the group may outlive its leader
            State::Running => {}
        }
        if self.group {
            // Unreaped, the leader's pid is still its group's id. A leader
            // that left its group (setsid) is signalled alone below.
            match rustix::process::kill_process_group(self.pid, sig) {
                Ok(()) => return Ok(()),
                Err(rustix::io::Errno::SRCH) => {}
                Err(e) => return Err(e.into()),
            }
        }
        #[cfg(target_os = "linux")]
        if let Some(pidfd) = &self.pidfd {
            return match rustix::process::pidfd_send_signal(pidfd, sig) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        // Without a pidfd the pid is still ours: it is not reaped yet.
        match rustix::process::kill_process(self.pid, sig) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Process {
    /// A group leader kept a zombie after its exit is reaped now.
    fn drop(&mut self) {
        let state = *self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let State::ExitedKept(_) = state {
            let _ = self.reap_nohang();
        }
    }
}

fn decode(status: rustix::process::WaitStatus) -> ExitStatus {
    if let Some(code) = status.exit_status() {
        ExitStatus::Exited(code)
    } else if let Some(sig) = status.terminating_signal() {
        ExitStatus::Signaled(sig)
    } else {
        ExitStatus::Unknown
    }
}

#[cfg(kqueue)]
fn kqueue_for(pid: Pid) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::event::kqueue::{Event, EventFilter, EventFlags, ProcessEvents, kevent_timespec, kqueue};
    let kq = kqueue()?;
    let change = Event::new(
        EventFilter::Proc { pid, flags: ProcessEvents::EXIT },
        EventFlags::ADD | EventFlags::ONESHOT,
        std::ptr::null_mut(),
    );
    let mut out: Vec<Event> = Vec::new();
    // SAFETY: the change list names a process, not a descriptor, so there is
    // no descriptor whose lifetime the kqueue could outlive.
    unsafe { kevent_timespec(&kq, &[change], &mut out, Some(&super::wait::timespec(Duration::ZERO)))? };
    Ok(kq)
}

#[cfg(kqueue)]
fn kqueue_wait(kq: &std::os::fd::OwnedFd, deadline: Instant) -> io::Result<bool> {
    use rustix::event::kqueue::{Event, kevent_timespec};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut out: Vec<Event> = Vec::with_capacity(1);
        // SAFETY: the only registered event is EVFILT_PROC, which refers to
        // no descriptor.
        match unsafe { kevent_timespec(kq, &[], &mut out, Some(&super::wait::timespec(left))) } {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
