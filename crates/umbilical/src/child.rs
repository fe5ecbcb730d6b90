//! A running program: its channel, its stderr, and how to learn its end.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::channel::{Channel, ReadEnd};
use crate::exit::{Detection, Exit, ExitStatus};
use crate::sys;
use crate::sys::Handle;

/// How long a channel-closed wait sleeps at most before it looks again
/// whether the caller dropped the read half (and so must be drained).
const ABANDON_CHECK: Duration = Duration::from_millis(100);

/// A started program.
///
/// # Dropping a `Child`
///
/// Dropping does not kill the program unless
/// [`Command::kill_on_drop`](crate::Command::kill_on_drop) was set (or call
/// [`Child::kill`] first; on Windows a
/// [`kill_on_close_job`](crate::Command) does). Through the shim, dropping
/// tells the shim to let the program run on; if instead the caller's process
/// dies, the shim ends the program (see
/// [`Command::caller_gone_grace`](crate::Command::caller_gone_grace)). On Unix
/// it leaves no zombie either: a program that has already exited is reaped
/// on the spot, and one still running is handed to the one background
/// thread of the whole process (`umbilical-background`, 64 KiB stack,
/// started with the first such child), which sleeps in one `poll` on every
/// dropped child's pidfd and reaps each as it exits. Dropping 500 running
/// children costs that one thread, not 500. The same thread reads the
/// reports of children started through the shim, so those cost no thread
/// of their own either (on Windows a wait of the system thread pool, 63 to
/// a wait thread, reads each report when its shim exits, and an elevated
/// child's stderr relay runs on the pool's completion port). Windows has
/// no zombies; the
/// process handle is closed. The channel, if not taken, is dropped with it, which
/// the program sees as EOF on stdin.
///
/// # Caveats
///
/// - The process stays ours until reaped; anything else in the process that
///   reaps children it did not start (`waitpid(-1, ..)`, SIGCHLD set to
///   `SIG_IGN`) breaks exit detection by process, as it does for std.
/// - [`Child::kill`] signals the process umbilical started. With lifeline or
///   channel-closed detection the program may be a grandchild; it is not
///   signalled.
pub struct Child {
    /// `None` once reaped.
    process: Option<sys::Process>,
    pid: u32,
    channel: Option<Channel>,
    stderr: Option<ChildStderr>,
    detection: Detection,
    lifeline: Option<Handle>,
    watch: Option<Arc<ReadEnd>>,
    exit: Option<Exit>,
    /// The control stream to a shim, when the program was started by one.
    shim: Option<crate::link::Link>,
    /// Kill the program if it still runs when this is dropped.
    pub(crate) kill_on_drop: bool,
}

impl Child {
    pub(crate) fn new(
        process: sys::Process,
        channel: Channel,
        stderr: Option<ChildStderr>,
        detection: Detection,
        lifeline: Option<Handle>,
        watch: Option<Arc<ReadEnd>>,
    ) -> Self {
        Child {
            pid: process.pid(),
            process: Some(process),
            channel: Some(channel),
            stderr,
            detection,
            lifeline,
            watch,
            exit: None,
            shim: None,
            kill_on_drop: false,
        }
    }

    /// This child (the launcher running the shim) now stands for the
    /// program the shim started.
    pub(crate) fn into_shim(mut self, link: crate::link::Link, kill_on_drop: bool) -> Self {
        self.kill_on_drop = kill_on_drop;
        self.pid = link.pid;
        self.detection = Detection::Shim;
        self.shim = Some(link);
        self
    }

    /// The child with its channel and stderr put back (from the async
    /// layer).
    #[cfg(all(feature = "tokio", unix))]
    pub(crate) fn with_parts(mut self, channel: Option<Channel>, stderr: Option<ChildStderr>) -> Self {
        self.channel = channel;
        self.stderr = stderr;
        self
    }

    /// A descriptor that turns readable when the process we started (here:
    /// a launcher) ends, where the OS gives one.
    #[cfg(unix)]
    pub(crate) fn process_exit_handle(&self) -> Option<sys::Handle> {
        self.process.as_ref().and_then(|p| p.exit_handle())
    }

    /// Starts reading the shim link in the background (blocking API).
    pub(crate) fn start_link_reader(&mut self) -> io::Result<()> {
        match &mut self.shim {
            Some(link) => link.start_reader(),
            None => Ok(()),
        }
    }

    /// Starts the shim link's reader as a task on the current runtime.
    #[cfg(feature = "tokio")]
    pub(crate) fn start_link_task(&mut self) -> io::Result<()> {
        match &mut self.shim {
            Some(link) => link.start_task(),
            None => Ok(()),
        }
    }

    /// What turns ready when this child's end may have come, for the
    /// async layer. `None`: nothing to wait on (poll with back-off).
    #[cfg(feature = "tokio")]
    pub(crate) fn exit_source(&self) -> io::Result<Option<ExitSource>> {
        if self.exit.is_some() {
            return Ok(None);
        }
        Ok(match self.detection {
            Detection::Process => self.process.as_ref().and_then(|p| p.exit_handle()).map(ExitSource::Handle),
            // Windows pipes have no hang-up readiness: polled (`None`).
            #[cfg(unix)]
            Detection::Lifeline => match &self.lifeline {
                Some(h) => Some(ExitSource::Handle(sys::duplicate(h)?)),
                None => None,
            },
            Detection::Shim | Detection::ShimLost => {
                self.shim.as_ref().map(|link| ExitSource::Shim(link.ended().clone()))
            }
            #[cfg(unix)]
            _ => match &self.watch {
                Some(end) => Some(ExitSource::Handle(sys::duplicate(&end.handle)?)),
                None => None,
            },
            #[cfg(windows)]
            _ => None,
        })
    }

    /// Windows, elevated: the relay of the program's stderr to ours, while a
    /// wait has not let it finish.
    #[cfg(all(windows, feature = "tokio"))]
    pub(crate) fn stderr_relay(&self) -> Option<Arc<sys::Drained>> {
        self.shim.as_ref().and_then(crate::link::Link::stderr_relay)
    }

    /// Windows: the stderr relay was let finish (or given its grace).
    #[cfg(all(windows, feature = "tokio"))]
    pub(crate) fn forget_stderr_relay(&mut self) {
        if let Some(link) = &mut self.shim {
            link.forget_stderr_relay();
        }
    }

    /// Through the shim, once the end is known: the launcher process is
    /// reaped now if it has exited, else by the shared reaper (it exits
    /// right after the shim, unless it waits for the caller to read).
    #[cfg(feature = "tokio")]
    pub(crate) fn release_launcher(&mut self) {
        if self.shim.is_some()
            && self.exit.is_some()
            && let Some(p) = self.process.take()
        {
            sys::adopt(p);
        }
    }

    /// The process id of the process umbilical started (which, through a
    /// wrapper or launcher, is the wrapper's) — or, through the shim, the
    /// program's own as the shim reported it (through ssh, a pid on the far
    /// host). After the process has ended
    /// the id may belong to another process.
    pub fn id(&self) -> Option<u32> {
        Some(self.pid)
    }

    /// How this child's end will be observed.
    pub fn detection(&self) -> Detection {
        self.detection
    }

    /// The channel, unless it was taken.
    pub fn channel(&mut self) -> Option<&mut Channel> {
        self.channel.as_mut()
    }

    /// Takes the channel out, for example to split it across threads.
    pub fn take_channel(&mut self) -> Option<Channel> {
        self.channel.take()
    }

    /// The program's stderr, when it was [`Stderr::Piped`](crate::Stderr::Piped).
    pub fn stderr(&mut self) -> Option<&mut ChildStderr> {
        self.stderr.as_mut()
    }

    /// Takes the stderr pipe out.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stderr.take()
    }

    /// Waits until the program is done.
    ///
    /// As with std, a program that writes more than a buffer's worth while
    /// nobody reads the channel will block, and so will this call: read the
    /// channel (from another thread, or before waiting).
    pub fn wait(&mut self) -> io::Result<Exit> {
        Ok(self.wait_until(None)?.expect("an unbounded wait ends with an exit"))
    }

    /// Returns the exit if the program is already done, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        self.wait_until(Some(Instant::now()))
    }

    /// Waits at most `timeout`; `None` if the program is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<Exit>> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Kills the process umbilical started (Unix: SIGKILL, by pidfd on
    /// Linux so a reused pid is never hit, to its process group when
    /// started with [`Command::process_group`](crate::Command::process_group);
    /// Windows: `TerminateProcess`, or
    /// `TerminateJobObject` for a kill-on-close job, with exit code 1).
    /// Killing a program that already ended is not an error.
    pub fn kill(&mut self) -> io::Result<()> {
        if let Some(link) = &mut self.shim {
            if self.exit.is_some() {
                return Ok(());
            }
            return link.kill();
        }
        match &self.process {
            Some(p) => p.kill(),
            None => Ok(()),
        }
    }

    /// Sends signal `sig` (a raw number, e.g. `libc::SIGTERM`) to the
    /// program: to its process group when started with
    /// [`Command::process_group`](crate::Command::process_group); through
    /// the shim, the shim sends it on the far side (across a privilege
    /// boundary the caller could not cross itself). Through the shim the
    /// signal crosses by its name ([`Signal`](crate::Signal)), so SIGUSR1
    /// reaches a program on a macOS host as macOS's SIGUSR1; a number
    /// without a portable name (a real-time signal) crosses only to a shim
    /// on the same OS and architecture, and is refused with
    /// [`io::ErrorKind::InvalidInput`] otherwise. A shim on Windows
    /// terminates the program for HUP, INT, QUIT, KILL and TERM and refuses
    /// the others the same way. A program that already
    /// ended is not an error: nothing is sent to a process once it was
    /// reaped; a process group outlives its leader's exit (until the
    /// `Child` is dropped), so what the program left in it still gets the
    /// signal.
    ///
    /// Windows has no signals: this returns
    /// [`io::ErrorKind::Unsupported`]; use [`Child::terminate`] or
    /// [`Child::kill`].
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use umbilical::{Command, ExitStatus};
    ///
    /// let mut child = Command::new("sleep").arg("30").spawn()?;
    /// child.signal(15)?; // SIGTERM
    /// assert_eq!(child.wait()?.status, ExitStatus::Signaled(15));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signal(&mut self, sig: i32) -> io::Result<()> {
        if sys::TERMINATE_SIGNAL.is_none() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "signals are Unix-only; use terminate() or kill()"));
        }
        if let Some(link) = &mut self.shim {
            if self.exit.is_some() {
                return Ok(());
            }
            return link.signal(sig);
        }
        match &self.process {
            Some(p) => p.signal_raw(sig),
            None => Ok(()),
        }
    }

    /// Asks the program to stop: SIGTERM on Unix (see [`Child::signal`]),
    /// which it may catch to clean up; on Windows, where nothing equivalent
    /// reaches a program without a console, the same as [`Child::kill`].
    /// Escalate with [`Child::kill`] if it does not end in time.
    pub fn terminate(&mut self) -> io::Result<()> {
        match sys::TERMINATE_SIGNAL {
            Some(sig) => self.signal(sig),
            None => self.kill(),
        }
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            // A `try_wait` saw the end first: this wait still lets an
            // elevated program's relayed stderr finish (Windows).
            if let Some(link) = &mut self.shim {
                link.let_stderr_relay_finish(deadline);
            }
            return Ok(Some(exit));
        }
        let status = match self.detection {
            Detection::Process => {
                let process = self.process.as_ref().expect("an unreaped process until the exit is known");
                match process.wait_deadline(deadline)? {
                    None => return Ok(None),
                    Some(status) => {
                        // A group leader stays ours (a zombie) so that its
                        // group can still be signalled; see `kill`.
                        if !process.leads_group() {
                            self.process = None;
                        }
                        status
                    }
                }
            }
            Detection::Lifeline => {
                let lifeline = self.lifeline.as_ref().expect("a lifeline until the exit is known");
                if !sys::wait_eof(lifeline, deadline)? {
                    return Ok(None);
                }
                self.lifeline = None;
                self.reap_if_exited();
                ExitStatus::Unknown
            }
            Detection::Shim => {
                let link = self.shim.as_mut().expect("a shim link until the exit is known");
                let status = match link.wait(deadline)? {
                    None => return Ok(None),
                    Some(crate::link::Ended::Reported(status)) => status,
                    Some(crate::link::Ended::ProgramGone) => {
                        self.detection = Detection::ShimLost;
                        ExitStatus::Unknown
                    }
                };
                // The shim (and the launcher around it) exits right after its
                // report: reap it now, within the caller's deadline and two
                // seconds, so that a caller that saw the end finds nothing
                // of ours left (no process, no pidfd).
                let limit = Instant::now() + Duration::from_secs(2);
                let until = deadline.map_or(limit, |d| d.min(limit));
                if let Some(p) = &self.process
                    && matches!(p.wait_deadline(Some(until)), Ok(Some(_)) | Err(_))
                {
                    self.process = None;
                }
                // In band, the session that carried the link ends with it.
                if let Some(link) = &mut self.shim {
                    link.reap_companion(until);
                }
                status
            }
            _ => {
                let end = self.watch.as_ref().expect("a watched channel until the exit is known");
                if !wait_channel_closed(end, deadline)? {
                    return Ok(None);
                }
                self.watch = None;
                self.reap_if_exited();
                ExitStatus::Unknown
            }
        };
        let exit = Exit { status, detection: self.detection };
        tracing::info!(pid = self.pid, status = ?exit.status, detection = ?exit.detection, "the program's end observed");
        self.exit = Some(exit);
        Ok(Some(exit))
    }

    /// After a lifeline or channel end, the process we started (often a
    /// wrapper) has usually exited too; reap it now so that nothing waits
    /// for `Drop`.
    fn reap_if_exited(&mut self) {
        if let Some(p) = &self.process
            && matches!(p.try_wait(), Ok(Some(_)) | Err(_))
        {
            self.process = None;
        }
    }
}

/// What the async layer waits on for a child's end.
#[cfg(feature = "tokio")]
pub(crate) enum ExitSource {
    /// Turns ready (readable, or signalled on Windows) when the end may
    /// have come: a process handle, a lifeline, the channel's read end.
    Handle(sys::Handle),
    /// The shim link's published end.
    Shim(Arc<crate::link::Shared>),
}

/// Waits until every holder of the program's side of the channel closed it.
/// If the caller dropped its read half, what the program still writes is
/// read and discarded, so that the program is not stuck on a full buffer.
fn wait_channel_closed(end: &ReadEnd, deadline: Option<Instant>) -> io::Result<bool> {
    loop {
        if end.abandoned.load(Ordering::Acquire) {
            return sys::wait_eof(&end.handle, deadline);
        }
        let slice = Instant::now() + ABANDON_CHECK;
        let until = deadline.map_or(slice, |d| d.min(slice));
        if sys::wait_closed(&end.handle, Some(until))? {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if self.kill_on_drop {
                let _ = self.kill();
            } else if let Some(link) = &mut self.shim {
                // Letting go on purpose: the shim lets the program run on
                // when the link closes below.
                link.detach();
            }
        }
        // Through the shim, closing the link ends the program unless it
        // was detached above.
        drop(self.shim.take());
        if let Some(process) = self.process.take() {
            // Reaped now if it has exited, else by the one shared reaper.
            sys::adopt(process);
        }
    }
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("detection", &self.detection)
            .field("exit", &self.exit)
            .finish_non_exhaustive()
    }
}

/// The read end of the program's stderr pipe ([`Stderr::Piped`](crate::Stderr::Piped)).
#[derive(Debug)]
pub struct ChildStderr {
    handle: Handle,
}

impl ChildStderr {
    pub(crate) fn new(handle: Handle) -> Self {
        ChildStderr { handle }
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(&self.handle, buf)
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for ChildStderr {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.handle.as_fd()
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsHandle for ChildStderr {
    fn as_handle(&self) -> std::os::windows::io::BorrowedHandle<'_> {
        self.handle.as_handle()
    }
}
