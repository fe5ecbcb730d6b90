//! A running program: its channel, its stderr, and how to learn its end.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::channel::{Channel, ReadEnd};
use crate::communicate::Output;
use crate::cutoff::Cutoff;
use crate::exit::{Detection, Exit};
use crate::exit_source::ExitSource;
use crate::prompt_relay::Relay;
use crate::sys;
use crate::sys::Handle;

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
/// thread of the whole process (`umbilical-background`, started with the
/// first such child), which reaps each as it exits. Dropping 500 running
/// children costs that one thread, not 500. The same thread reads the
/// reports of children started through the shim, so those cost no thread
/// of their own either (on Windows the system thread pool's shared waits
/// do). Windows has no zombies; the process handle is closed. The channel, if not taken, is dropped with it, which
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
    pid: u32,
    pub(crate) channel: Option<Channel>,
    pub(crate) stderr: Option<ChildStderr>,
    detection: Detection,
    /// Where the end comes from: the process, a lifeline, the channel, or
    /// the shim's link.
    pub(crate) source: ExitSource,
    /// The end, once seen.
    pub(crate) exit: Option<Exit>,
    /// Kill the program if it still runs when this is dropped.
    pub(crate) kill_on_drop: bool,
    /// Where reads of the output stop after the end
    /// ([`Command::wait_delay`](crate::Command::wait_delay)).
    pub(crate) cutoff: Option<Arc<Cutoff>>,
    /// The relay answering the launcher's questions
    /// (`Command::prompt_handler`), and the private terminal it may keep
    /// open for the program's session.
    /// Boxed: most children have none, and a live child's size is what
    /// a server holding thousands of them pays.
    pub(crate) prompts: Option<Box<Relay>>,
    /// The program's stdio, kept for a shim that receives it over its link
    /// (su: the launcher's own stdio is its terminal).
    held_stdio: Option<HeldStdio>,
    /// Through the shim: where the shim that runs the program came from.
    shim_origin: Option<String>,
}

/// The program's ends of its channel and stderr pipe, kept by the parent
/// until the shim receives them (Unix: su).
#[cfg_attr(windows, allow(dead_code))]
pub(crate) struct HeldStdio {
    pub(crate) channel: crate::channel::ChildEnd,
    /// The stderr pipe's write end, for `Stderr::Piped`.
    pub(crate) stderr: Option<Handle>,
    /// Where the caller asked the program's stderr to go.
    pub(crate) mode: crate::options::Stderr,
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
        let pid = process.pid();
        Child::from_source(pid, Some(channel), stderr, detection, ExitSource::new(process, detection, lifeline, watch))
    }

    /// A child seen through `source`, with nothing else set yet.
    fn from_source(
        pid: u32,
        channel: Option<Channel>,
        stderr: Option<ChildStderr>,
        detection: Detection,
        source: ExitSource,
    ) -> Self {
        Child {
            pid,
            channel,
            stderr,
            detection,
            source,
            exit: None,
            kill_on_drop: false,
            cutoff: None,
            prompts: None,
            held_stdio: None,
            shim_origin: None,
        }
    }

    /// A program started by a session's shim: its end and its kills go
    /// through its own `link`; no process of ours stands for it.
    pub(crate) fn of_session(
        link: crate::link::Link,
        channel: Channel,
        stderr: Option<ChildStderr>,
        kill_on_drop: bool,
    ) -> Self {
        let pid = link.pid;
        let mut child = Child::from_source(pid, Some(channel), stderr, Detection::Shim, ExitSource::of_link(link));
        child.kill_on_drop = kill_on_drop;
        child
    }

    /// A session's shim started with no stdio of its own (Windows): a
    /// child with no channel, its end the shim's report over `link`.
    #[cfg(windows)]
    pub(crate) fn of_session_shim(process: sys::Process, link: crate::link::Link) -> Self {
        let pid = process.pid();
        let source = ExitSource::new(process, Detection::Process, None, None);
        Child::from_source(pid, None, None, Detection::Process, source).into_shim(link, false)
    }

    /// Records where the shim came from ([`Child::shim_origin`]).
    pub(crate) fn with_shim_origin(mut self, origin: String) -> Self {
        self.shim_origin = Some(origin);
        self
    }

    /// Keeps the program's stdio for the shim ([`Child::take_held_stdio`]).
    pub(crate) fn with_held_stdio(mut self, held: Option<HeldStdio>) -> Self {
        self.held_stdio = held;
        self
    }

    /// The program's stdio, to hand to the shim; dropping it closes the
    /// parent's copies.
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn take_held_stdio(&mut self) -> Option<HeldStdio> {
        self.held_stdio.take()
    }

    /// Keeps the askpass relay running as long as this child (or until
    /// [`Child::take_prompts`]).
    pub(crate) fn with_prompts(mut self, relay: Option<Relay>) -> Self {
        self.prompts = relay.map(Box::new);
        self
    }

    /// Reads of the channel and stderr stop `delay` after the end is seen.
    pub(crate) fn with_wait_delay(mut self, delay: Option<Duration>) -> Self {
        if let Some(delay) = delay {
            let cutoff = Cutoff::new(delay);
            if let Some(channel) = &self.channel {
                let _ = channel.read_end().cutoff.set(cutoff.clone());
            }
            if let Some(stderr) = &mut self.stderr {
                stderr.cutoff = Some(cutoff.clone());
            }
            self.cutoff = Some(cutoff);
        }
        self
    }

    /// This child (the launcher running the shim) now stands for the
    /// program the shim started.
    pub(crate) fn into_shim(mut self, link: crate::link::Link, kill_on_drop: bool) -> Self {
        self.kill_on_drop = kill_on_drop;
        self.pid = link.pid;
        self.detection = Detection::Shim;
        self.source.attach_shim(link);
        // The shim connected: the launcher asks nothing more (a private
        // terminal stays open with the child).
        if let Some(relay) = &self.prompts {
            relay.stop();
        }
        self
    }

    /// Where the end comes from.
    pub(crate) fn source(&mut self) -> &mut ExitSource {
        &mut self.source
    }

    /// Through the shim, where the shim that runs the program came from:
    /// its path where it ran (`"/usr/bin/umbilical"`, `"/opt/shim in the
    /// container"`), or what was copied where
    /// (`"/usr/bin/umbilical copied into the rendezvous directory"`, `"the
    /// shim this program carries (1614128 bytes) copied to the far host at
    /// /tmp/umbilical-…/shim"`, `"… copied into the container at
    /// /tmp/umbilical-…"`). `None` without the shim. The copy itself is
    /// gone by the time the program runs, or when the shim ends.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut cmd = umbilical::Command::new("id");
    /// cmd.launcher(umbilical::Launcher::Sudo { user: Some("postgres".into()), non_interactive: true })
    ///     .shim(true);
    /// let child = cmd.spawn()?;
    /// println!("the shim: {}", child.shim_origin().unwrap_or("not used"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn shim_origin(&self) -> Option<&str> {
        self.shim_origin.as_deref()
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
    ///
    /// Through the shim, the shim kills the program and reports its end;
    /// the launcher running the shim is sent SIGCONT too, so that a shim
    /// stopped under sudo, runuser or doas (which stop along with their
    /// command, and resume it when resumed) acts on the kill. A wait after
    /// a kill is bounded: if the shim has not reported 5 seconds after the
    /// first kill (it is stopped where the caller cannot resume it, or its
    /// host is unreachable), the launcher is killed and the wait returns
    /// [`Detection::ShimLost`] with the status unknown.
    pub fn kill(&mut self) -> io::Result<()> {
        // Through the shim, nothing is sent once the shim reported.
        if self.exit.is_some() && self.source.through_shim() {
            return Ok(());
        }
        self.source.kill()
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
        if self.exit.is_some() && self.source.through_shim() {
            return Ok(());
        }
        self.source.signal(sig)
    }

    /// Asks the program to stop, in a way it may catch to clean up.
    /// Escalate with [`Child::kill`] if it does not end in time, or use
    /// [`Child::stop`], which does both.
    ///
    /// - Unix: SIGTERM (see [`Child::signal`]: to its group with
    ///   [`Command::process_group`](crate::Command::process_group),
    ///   through the shim on the far side).
    /// - Windows, which has no signals: a program started with
    ///   [`Command::process_group`](crate::Command::process_group) (its own
    ///   console process group, `CREATE_NEW_PROCESS_GROUP`) gets
    ///   `CTRL_BREAK_EVENT` when it shares our console, and a windowed
    ///   program gets `WM_CLOSE` on each top-level window. Where neither
    ///   reaches it (a console program started without a group, a caller
    ///   without a console, a service) it is killed, as [`Child::kill`].
    ///   A process group runs in a job object, so the kill that follows
    ///   ends its whole tree. A shim on Windows asks the same ways.
    pub fn terminate(&mut self) -> io::Result<()> {
        self.ask_to_end().map(drop)
    }

    /// [`Child::terminate`]; `true` if the program was asked, `false` if
    /// nothing polite reaches it and it was killed.
    pub(crate) fn ask_to_end(&mut self) -> io::Result<bool> {
        if self.exit.is_some() && self.source.through_shim() {
            return Ok(false);
        }
        self.source.ask_to_end()
    }

    /// Stops the program: asks it to end ([`Child::terminate`]), gives it
    /// `grace` to do so, then kills it ([`Child::kill`]), and returns its
    /// exit — the `--timeout`/`--kill-after` of the CLI, and what
    /// `systemctl stop` does. A program that had already ended is not
    /// signalled (nothing is sent once it was reaped); its exit is
    /// returned.
    ///
    /// Through the shim both steps happen on the far side, as the user the
    /// program runs as. On Windows the request is `CTRL_BREAK_EVENT` or
    /// `WM_CLOSE` where one reaches the program (see [`Child::terminate`]);
    /// where neither does, the first step is the kill itself and `grace`
    /// is not waited.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use umbilical::{Command, ExitStatus};
    ///
    /// // A program that ignores SIGTERM is killed after the grace.
    /// let mut child = Command::new("sh").args(["-c", "trap '' TERM; echo ready; exec sleep 30"]).spawn()?;
    /// let mut ready = [0u8; 6];
    /// child.channel().unwrap().read_exact(&mut ready)?; // the trap is set
    /// let exit = child.stop(Duration::from_millis(200))?;
    /// assert_eq!(exit.status, ExitStatus::Signaled(9));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&mut self, grace: Duration) -> io::Result<Exit> {
        if let Some(exit) = self.try_wait()? {
            return Ok(exit);
        }
        // Killed already where nothing polite reaches it (Windows): no
        // grace to give.
        if self.ask_to_end()?
            && let Some(exit) = self.wait_timeout(grace)?
        {
            return Ok(exit);
        }
        self.kill()?;
        self.wait()
    }

    /// Feeds `input` to the program and half-closes, while reading all it
    /// writes to the channel (and to stderr when
    /// [`Piped`](crate::Stderr::Piped)), then waits for its end: Python's
    /// `Popen.communicate()`. The three go on at once (a thread each for
    /// the input and stderr), so a program that writes a lot before it
    /// reads, or reads a lot before it writes, never deadlocks with us. A
    /// program that stops reading early is not an error: the rest of the
    /// input is dropped, as Python does.
    ///
    /// The output ends when every holder of the program's side closed it;
    /// with [`Command::wait_delay`](crate::Command::wait_delay) it ends at
    /// most that long after the program itself did, and
    /// [`Output::truncated`] says a background child was still holding it.
    ///
    /// Takes the channel and stderr: it is an error
    /// ([`io::ErrorKind::InvalidInput`]) if the channel was already taken.
    /// Bytes already read from them by the caller are not in the output.
    ///
    /// ```
    /// use umbilical::Command;
    ///
    /// let mut child = Command::new("sort").spawn()?;
    /// let output = child.communicate(b"pear\napple\n")?;
    /// assert_eq!(output.stdout, b"apple\npear\n");
    /// assert!(output.exit.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn communicate(&mut self, input: &[u8]) -> io::Result<Output> {
        let channel = self.take_channel().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "communicate: the channel was taken from the child")
        })?;
        let read_stderr = self.take_stderr().map(|mut stderr| {
            move || {
                let mut bytes = Vec::new();
                stderr.read_to_end(&mut bytes)?;
                Ok((bytes, stderr.truncated()))
            }
        });
        let cutoff = self.cutoff.clone();
        crate::communicate::communicate(channel, input, cutoff, read_stderr, || self.wait())
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        let Some((status, detection)) = self.source.wait_until(deadline)? else { return Ok(None) };
        self.detection = detection;
        if let Some(cutoff) = &self.cutoff {
            cutoff.program_ended();
        }
        let exit = Exit { status, detection };
        tracing::info!(pid = self.pid, status = ?exit.status, detection = ?exit.detection, "the program's end observed");
        self.exit = Some(exit);
        Ok(Some(exit))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if self.kill_on_drop {
                let _ = self.kill();
            } else {
                // Letting go on purpose: through the shim the program runs
                // on when the link closes with the source.
                self.source.let_go();
            }
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
pub struct ChildStderr {
    handle: Handle,
    /// Where reads stop after the end (`Command::wait_delay`).
    pub(crate) cutoff: Option<Arc<Cutoff>>,
    /// A read was cut at the cutoff.
    pub(crate) truncated: AtomicBool,
}

impl ChildStderr {
    pub(crate) fn new(handle: Handle) -> Self {
        ChildStderr { handle, cutoff: None, truncated: AtomicBool::new(false) }
    }

    /// Whether reads stopped at the [`wait_delay`](crate::Command::wait_delay)
    /// cutoff with the pipe still held open, as
    /// [`ReadHalf::truncated`](crate::ReadHalf::truncated).
    pub fn truncated(&self) -> bool {
        self.truncated.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for ChildStderr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildStderr").field("truncated", &self.truncated()).finish_non_exhaustive()
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.cutoff {
            Some(cutoff) => cutoff.read(&self.handle, buf, &self.truncated),
            None => sys::read(&self.handle, buf),
        }
    }
}

sys::impl_os_handle!(ChildStderr, |s| &s.handle);
