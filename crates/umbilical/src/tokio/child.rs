//! A started program on tokio: its async channel and stderr, and its end
//! awaited on the reactor.

use crate::tokio::PollCutoff;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::tokio::io::{AsyncRead, ReadBuf};

use super::Channel;
use crate::exit::{Detection, Exit};
use crate::exit_source::How;
use crate::sys;

/// A started program, on tokio: the async counterpart of
/// [`crate::Child`], made by
/// [`Command::spawn_async`](crate::Command::spawn_async) or
/// [`Child::from_blocking`].
///
/// Its end is awaited on the reactor: the pidfd (Linux) or a kqueue
/// (macOS/BSD) for [`Detection::Process`], the lifeline's or the channel's
/// hang-up for the other detections, the shim's report as the background
/// watch that reads it publishes it. No thread is started for it.
///
/// Dropping it behaves as dropping a [`crate::Child`]: nothing is killed
/// unless [`Command::kill_on_drop`](crate::Command::kill_on_drop) was set;
/// a program still running is reaped later by the process's one shared
/// background thread.
pub struct Child {
    /// What wakes a pending `wait()`, made on the first wait. Dropped
    /// first: it holds registrations only.
    exit: Option<ExitWatch>,
    channel: Option<Channel>,
    stderr: Option<ChildStderr>,
    inner: crate::Child,
}

/// What a pending `wait()` sleeps on.
enum ExitWatch {
    /// A handle that turns ready when the end may have come.
    Ready(sys::ExitReady),
    /// The shim link's published end, and when a wait gives up on it (a
    /// kill the shim did not answer).
    Shim(Arc<crate::link::Shared>, Option<Instant>),
    /// Nothing pollable (no pidfd here): look again after this long.
    Backoff(Duration),
}

impl ExitWatch {
    async fn changed(&mut self) -> io::Result<()> {
        match self {
            ExitWatch::Ready(ready) => ready.changed().await,
            ExitWatch::Shim(shared, None) => {
                shared.notify.notified().await;
                Ok(())
            }
            ExitWatch::Shim(shared, Some(give_up)) => {
                // A kill awaits the shim's answer: look again (a look
                // resumes the launcher) every little while until then.
                let next = (*give_up).min(Instant::now() + crate::exit_source::RESUME_EVERY);
                let _ = ::tokio::time::timeout_at(next.into(), shared.notify.notified()).await;
                Ok(())
            }
            ExitWatch::Backoff(nap) => {
                ::tokio::time::sleep(*nap).await;
                *nap = (*nap * 2).min(Duration::from_millis(50));
                Ok(())
            }
        }
    }
}

impl Child {
    /// Puts a blocking child on the current tokio runtime: its channel
    /// and stderr (if not taken) become async, and its end is awaited on
    /// the reactor. Must be called from within a runtime.
    ///
    /// A child started through the shim keeps its link where it is read,
    /// whichever API started it (Unix: the process's one background
    /// thread; Windows: a thread-pool wait on the shim's exit).
    pub fn from_blocking(mut inner: crate::Child) -> io::Result<Child> {
        let channel = inner.take_channel().map(Channel::from_blocking).transpose()?;
        let stderr = inner.take_stderr().map(ChildStderr::from_blocking).transpose()?;
        Ok(Child { exit: None, channel, stderr, inner })
    }

    /// Takes the child off the runtime: the blocking [`crate::Child`],
    /// with the channel and stderr that were not taken. Through the shim,
    /// the link's task stays on the runtime that started it, which must
    /// keep running for the blocking `wait()` to learn the end. Unix only:
    /// see [`Channel::into_blocking`].
    #[cfg(unix)]
    pub fn into_blocking(mut self) -> io::Result<crate::Child> {
        drop(self.exit.take());
        let channel = self.channel.take().map(Channel::into_blocking).transpose()?;
        let stderr = self.stderr.take().map(ChildStderr::into_blocking).transpose()?;
        let mut inner = self.inner;
        inner.channel = channel;
        inner.stderr = stderr;
        Ok(inner)
    }

    /// The process id, as [`crate::Child::id`] gives it.
    pub fn id(&self) -> Option<u32> {
        self.inner.id()
    }

    /// Where the shim came from and where it ran, as
    /// [`crate::Child::shim_origin`] says; `None` without the shim.
    pub fn shim_origin(&self) -> Option<&str> {
        self.inner.shim_origin()
    }

    /// How this child's end will be observed.
    pub fn detection(&self) -> Detection {
        self.inner.detection()
    }

    /// The channel, unless it was taken.
    pub fn channel(&mut self) -> Option<&mut Channel> {
        self.channel.as_mut()
    }

    /// Takes the channel out, for example to split it across tasks.
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
    /// Cancel-safe: dropping the future loses nothing; a later `wait()`
    /// or [`try_wait`](Child::try_wait) reports the same exit. As with
    /// the blocking API, a program that fills the channel while nobody
    /// reads it will not end: read the channel in another task (or
    /// before waiting).
    pub async fn wait(&mut self) -> io::Result<Exit> {
        loop {
            if let Some(exit) = self.try_wait()? {
                return Ok(exit);
            }
            if self.exit.is_none() {
                self.exit = Some(self.watch()?);
                // Made after the last look: look again before sleeping.
                continue;
            }
            if let Some(watch) = &mut self.exit {
                watch.changed().await?;
            }
        }
    }

    /// Returns the exit if the program is already done, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        let exit = self.inner.try_wait()?;
        if exit.is_some() {
            drop(self.exit.take());
            // Through the shim, the launcher is reaped now if it has
            // exited, else by the shared reaper.
            let source = self.inner.source();
            if source.through_shim()
                && let Some(launcher) = source.process.take()
            {
                sys::adopt(launcher);
            }
        }
        Ok(exit)
    }

    /// What a wait sleeps on until the end may have come, by how the end
    /// shows (see `ExitSource`).
    fn watch(&self) -> io::Result<ExitWatch> {
        let source = &self.inner.source;
        let ready = |handle| Ok(ExitWatch::Ready(sys::exit_ready(handle)?));
        let poll = Ok(ExitWatch::Backoff(Duration::from_millis(1)));
        // Once the end is known, nothing is left to sleep on.
        if self.inner.exit.is_some() {
            return poll;
        }
        match &source.how {
            How::Process => match source.process.as_ref().and_then(sys::Process::exit_handle) {
                Some(handle) => ready(handle),
                None => poll,
            },
            How::Shim(link) => Ok(ExitWatch::Shim(link.ended.clone(), source.gives_up_at())),
            // A lifeline's or a channel's hang-up: readable on Unix;
            // Windows pipes have no such readiness (polled).
            How::Lifeline(Some(handle)) if sys::HANGUP_IS_READABLE => ready(sys::duplicate(handle)?),
            How::ChannelClosed(Some(end)) if sys::HANGUP_IS_READABLE => ready(sys::duplicate(&end.handle)?),
            How::Lifeline(_) | How::ChannelClosed(_) => poll,
        }
    }

    /// Starts killing the program, as [`crate::Child::kill`], without
    /// waiting for it to end.
    pub fn start_kill(&mut self) -> io::Result<()> {
        // Through the shim a kill bounds the wait for its report: a watch
        // made before it is made again, with that bound.
        drop(self.exit.take());
        self.inner.kill()
    }

    /// Kills the program and waits for its end, as `tokio::process` does.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Stops the program: [`terminate`](Child::terminate), up to `grace`
    /// for it to end, then [`kill`](Child::kill); returns its exit. The
    /// async [`crate::Child::stop`], with its details.
    pub async fn stop(&mut self, grace: Duration) -> io::Result<Exit> {
        if let Some(exit) = self.try_wait()? {
            return Ok(exit);
        }
        // Killed already where nothing polite reaches it (Windows).
        if self.inner.ask_to_end()?
            && let Ok(ended) = ::tokio::time::timeout(grace, self.wait()).await
        {
            return ended;
        }
        self.start_kill()?;
        self.wait().await
    }

    /// Feeds `input` and half-closes, reads all the output (and stderr
    /// when piped) and waits for the end, all at once on this task: the
    /// async [`crate::Child::communicate`], with its details. No thread is
    /// started.
    pub async fn communicate(&mut self, input: &[u8]) -> io::Result<crate::Output> {
        super::communicate::communicate(self, input).await
    }

    /// The wait-delay cutoff, for `communicate`.
    pub(crate) fn cutoff(&self) -> Option<Arc<crate::cutoff::Cutoff>> {
        self.inner.cutoff.clone()
    }

    /// Sends signal `sig`; see [`crate::Child::signal`].
    pub fn signal(&mut self, sig: i32) -> io::Result<()> {
        self.inner.signal(sig)
    }

    /// Asks the program to stop; see [`crate::Child::terminate`].
    pub fn terminate(&mut self) -> io::Result<()> {
        self.inner.terminate()
    }
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child").field("inner", &self.inner).finish_non_exhaustive()
    }
}

/// The program's stderr pipe on the reactor
/// ([`Stderr::Piped`](crate::Stderr::Piped)).
pub struct ChildStderr {
    io: sys::Registered<crate::ChildStderr>,
    /// The wait-delay cutoff's timer, once its moment is known.
    cut_timer: Option<Pin<Box<::tokio::time::Sleep>>>,
}

impl ChildStderr {
    /// Puts a blocking stderr pipe on the reactor.
    pub fn from_blocking(inner: crate::ChildStderr) -> io::Result<ChildStderr> {
        Ok(ChildStderr { io: sys::Registered::new(inner)?, cut_timer: None })
    }

    /// Whether reads stopped at the
    /// [`wait_delay`](crate::Command::wait_delay) cutoff; see
    /// [`crate::ChildStderr::truncated`].
    pub fn truncated(&self) -> bool {
        self.io.get_ref().truncated()
    }

    /// Takes it off the reactor, blocking again (Unix; see
    /// [`Channel::into_blocking`]).
    #[cfg(unix)]
    pub fn into_blocking(self) -> io::Result<crate::ChildStderr> {
        self.io.into_blocking()
    }
}

impl AsyncRead for ChildStderr {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let inner = this.io.get_ref();
        if let Some(cutoff) = &inner.cutoff
            && cutoff.poll_passed(cx, &mut this.cut_timer)
        {
            inner.truncated.store(true, std::sync::atomic::Ordering::Release);
            return Poll::Ready(Ok(()));
        }
        this.io.poll_read(cx, buf)
    }
}

impl std::fmt::Debug for ChildStderr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildStderr").finish_non_exhaustive()
    }
}
