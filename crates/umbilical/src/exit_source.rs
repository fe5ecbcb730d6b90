//! How a child's end is learnt: one source per child, whatever the
//! detection.
//!
//! A [`Child`](crate::Child) holds one [`ExitSource`]: the process
//! umbilical started (the program, a launcher, or the launcher running the
//! shim) and how the program's end shows ([`How`]). Every question about
//! the end goes here: a blocking wait with a deadline (a deadline of now is
//! the non-blocking look), what the async layer can sleep on, kills and
//! signals, and which detection saw the end. Adding a detection is one new
//! case of [`How`] with its sys primitive.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::channel::ReadEnd;
use crate::exit::{Detection, ExitStatus};
use crate::link::{Ended, Link};
use crate::sys;
use crate::sys::Handle;

/// How long a channel-closed wait sleeps at most before it looks again
/// whether the caller dropped the read half (and so must be drained).
const ABANDON_CHECK: Duration = Duration::from_millis(100);

/// How long a shim's launcher (or an in-band bridge) may take to exit
/// after the shim reported: it exits right after, unless it waits for the
/// caller to read.
const LAUNCHER_TRAILS_REPORT: Duration = Duration::from_secs(2);

/// How long the shim has to report once it was told to kill the program.
/// It answers in milliseconds when it runs; past this it is stopped (sudo
/// stops along with it, and is resumed by every kill, but a launcher that
/// does not relay SIGCONT leaves it stopped), or its host is unreachable,
/// and a caller that killed must not wait for ever: the launcher is killed
/// and the end is [`Detection::ShimLost`]. Generous for an ssh round trip.
pub(crate) const SHIM_ANSWERS_KILL: Duration = Duration::from_secs(5);

/// How often a launcher is resumed while a kill awaits the shim's answer.
pub(crate) const RESUME_EVERY: Duration = Duration::from_millis(250);

/// Where a child's end comes from.
pub(crate) struct ExitSource {
    /// The process umbilical started; `None` once reaped.
    pub(crate) process: Option<sys::Process>,
    pub(crate) how: How,
    /// Through the shim: when the first kill went to it, from which the
    /// wait for its report is bounded by [`SHIM_ANSWERS_KILL`].
    killed_at: Option<Instant>,
}

/// What shows the program's end.
pub(crate) enum How {
    /// The process's own status ([`Detection::Process`]).
    Process,
    /// End of file on the lifeline pipe ([`Detection::Lifeline`]); `None`
    /// once seen.
    Lifeline(Option<Handle>),
    /// Every holder of the program's side of the channel closed it
    /// ([`Detection::ChannelClosed`]); `None` once seen.
    ChannelClosed(Option<Arc<ReadEnd>>),
    /// The shim's report over its link ([`Detection::Shim`], or
    /// [`Detection::ShimLost`] when the shim died first); the process is
    /// the launcher running the shim. Boxed: the link is the largest
    /// part of a child and only children through a shim have one.
    Shim(Box<Link>),
}

impl ExitSource {
    /// The end of `process` as `detection` asks: its status, or `lifeline`'s
    /// end of file, or the close of the channel's read end `watch`.
    pub(crate) fn new(
        process: sys::Process,
        detection: Detection,
        lifeline: Option<Handle>,
        watch: Option<Arc<ReadEnd>>,
    ) -> ExitSource {
        let how = match detection {
            Detection::Lifeline => How::Lifeline(lifeline),
            Detection::ChannelClosed => How::ChannelClosed(watch),
            _ => How::Process,
        };
        ExitSource { process: Some(process), how, killed_at: None }
    }

    /// A program of a session: no process of ours (the session's shim
    /// started it), its end from its own `link`.
    pub(crate) fn of_link(link: Link) -> ExitSource {
        ExitSource { process: None, how: How::Shim(Box::new(link)), killed_at: None }
    }

    /// The same process (the launcher running the shim), whose program's
    /// end now comes from the shim's `link`.
    pub(crate) fn attach_shim(&mut self, link: Link) {
        self.how = How::Shim(Box::new(link));
    }

    /// Whether the end comes from a shim.
    pub(crate) fn through_shim(&self) -> bool {
        matches!(self.how, How::Shim(_))
    }

    /// The shim's link, where the end comes from one.
    pub(crate) fn link(&mut self) -> Option<&mut Link> {
        match &mut self.how {
            How::Shim(link) => Some(link),
            _ => None,
        }
    }

    /// Starts reading the shim's report in the background (blocking API).
    pub(crate) fn start_reader(&mut self) -> io::Result<()> {
        self.link().map_or(Ok(()), Link::start_reader)
    }

    /// Waits until `deadline` (`None`: for as long as it takes; now: a look
    /// without blocking) for the end: its status and the detection that saw
    /// it, or `None` if it has not come yet.
    pub(crate) fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<(ExitStatus, Detection)>> {
        let give_up = self.gives_up_at();
        let ended = match &mut self.how {
            How::Process => {
                let Some(process) = self.process.as_ref() else {
                    return Err(io::Error::other("the process was reaped before its end was recorded"));
                };
                let Some(status) = process.wait_deadline(deadline)? else { return Ok(None) };
                // A group leader stays ours (a zombie) so that its group
                // can still be signalled; see `kill`.
                if !process.leads_group() {
                    self.process = None;
                }
                (status, Detection::Process)
            }
            How::Lifeline(lifeline) => {
                if let Some(handle) = lifeline {
                    if !sys::wait_eof(handle, deadline)? {
                        return Ok(None);
                    }
                    *lifeline = None;
                }
                self.reap_if_exited();
                (ExitStatus::Unknown, Detection::Lifeline)
            }
            How::ChannelClosed(watch) => {
                if let Some(end) = watch {
                    if !wait_channel_closed(end, deadline)? {
                        return Ok(None);
                    }
                    *watch = None;
                }
                self.reap_if_exited();
                (ExitStatus::Unknown, Detection::ChannelClosed)
            }
            How::Shim(link) => {
                let bounded = match (deadline, give_up) {
                    (Some(d), Some(g)) => Some(d.min(g)),
                    (d, g) => d.or(g),
                };
                let reply = match give_up {
                    None => link.wait(bounded)?,
                    // Killed: the launcher is resumed again and again while
                    // the answer is awaited. sudo stops itself only once it
                    // sees its command stopped, which may be just after the
                    // kill's own SIGCONT reached it.
                    Some(_) => loop {
                        if let Some(p) = &self.process {
                            p.resume();
                        }
                        let slice = Instant::now() + RESUME_EVERY;
                        let until = bounded.map_or(slice, |b| b.min(slice));
                        match link.wait(Some(until))? {
                            Some(ended) => break Some(ended),
                            None if bounded.is_some_and(|b| Instant::now() >= b) => break None,
                            None => {}
                        }
                    },
                };
                let ended = match reply {
                    Some(Ended::Reported(status)) => (status, Detection::Shim),
                    Some(Ended::ProgramGone) => (ExitStatus::Unknown, Detection::ShimLost),
                    None if give_up.is_some_and(|g| Instant::now() >= g) => {
                        // Killed, and no answer: the launcher goes (its
                        // group too); the shim, when it runs again, finds
                        // the link closed and ends the program.
                        tracing::warn!("the shim did not answer a kill in time; its launcher is killed");
                        if let Some(p) = &self.process {
                            let _ = p.kill();
                        }
                        link.abandon();
                        (ExitStatus::Unknown, Detection::ShimLost)
                    }
                    None => return Ok(None),
                };
                // The shim (and the launcher around it) exits right after
                // its report: reap it now, within the caller's deadline and
                // two seconds, so that a caller that saw the end finds
                // nothing of ours left (no process, no pidfd). A launcher
                // that stopped itself with the shim (sudo does) is resumed
                // first, or it would stay stopped, holding what it holds of
                // ours (our stderr), long after we are gone.
                let limit = Instant::now() + LAUNCHER_TRAILS_REPORT;
                let until = deadline.map_or(limit, |d| d.min(limit));
                // One that has not exited yet (a `try_wait`, whose deadline
                // is now, on a loaded machine) is reaped in the background
                // when it does: kept here it would stay a zombie for as
                // long as the caller keeps the `Child` (seen once in 40).
                if let Some(p) = self.process.take() {
                    p.resume();
                    if let Ok(None) = p.wait_deadline(Some(until)) {
                        sys::adopt(p);
                    }
                }
                // In band, the session that carried the link ends with it.
                link.reap_companion(until);
                ended
            }
        };
        Ok(Some(ended))
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

    /// Kills what the program runs as: through the shim, the program
    /// itself (SIGKILL; Windows: terminated); otherwise the process we
    /// started. One that already ended is not an error.
    ///
    /// Through the shim the launcher is resumed too (see
    /// [`sys::Process::resume`]), and from the first kill on, a wait for
    /// the shim's report is bounded by [`SHIM_ANSWERS_KILL`].
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        match (&mut self.how, &self.process) {
            (How::Shim(link), _) => {
                let sent = link.kill();
                self.resume_launcher();
                self.killed_at.get_or_insert_with(Instant::now);
                sent
            }
            (_, Some(p)) => p.kill(),
            (_, None) => Ok(()),
        }
    }

    /// Asks the program to end: through the shim, TERM by name; otherwise
    /// the process's own way ([`sys::Process::ask_to_end`]: SIGTERM, or on
    /// Windows CTRL_BREAK/WM_CLOSE), killing it where no polite way
    /// reaches it. `Ok(true)` if it was asked, `Ok(false)` if it was
    /// killed (or had already been reaped).
    pub(crate) fn ask_to_end(&mut self) -> io::Result<bool> {
        match (&mut self.how, &self.process) {
            (How::Shim(link), _) => {
                let sent = link.terminate();
                self.resume_launcher();
                sent.map(|()| true)
            }
            (_, Some(p)) => match p.ask_to_end()? {
                true => Ok(true),
                false => p.kill().map(|()| false),
            },
            (_, None) => Ok(false),
        }
    }

    /// Sends signal `sig` (this host's number): through the shim, by name
    /// to the program, and the launcher is resumed so that a shim stopped
    /// under it acts on it; otherwise to the process we started.
    pub(crate) fn signal(&mut self, sig: i32) -> io::Result<()> {
        match (&mut self.how, &self.process) {
            (How::Shim(link), _) => {
                let sent = link.signal(sig);
                self.resume_launcher();
                sent
            }
            (_, Some(p)) => p.signal_raw(sig),
            (_, None) => Ok(()),
        }
    }

    /// Resumes the process we started (through the shim, its launcher),
    /// should it be stopped; see [`sys::Process::resume`].
    fn resume_launcher(&self) {
        if let Some(p) = &self.process {
            p.resume();
        }
    }

    /// When a wait for the shim's report gives up (a kill went unanswered),
    /// if it will (only a kill through the shim sets `killed_at`).
    pub(crate) fn gives_up_at(&self) -> Option<Instant> {
        self.killed_at.map(|k| k + SHIM_ANSWERS_KILL)
    }

    /// The caller lets go of a program still running: through the shim the
    /// program runs on (a detach is sent before the link closes); the
    /// process we started is reaped later by the shared reaper.
    pub(crate) fn let_go(&mut self) {
        if let How::Shim(link) = &mut self.how {
            link.detach();
        }
    }
}

impl Drop for ExitSource {
    fn drop(&mut self) {
        // Through the shim, closing the link ends the program unless it
        // was detached; it closes before the launcher is handed on, and a
        // launcher that stopped with its shim is resumed to see it.
        let through_shim = self.through_shim();
        self.how = How::Process;
        if let Some(process) = self.process.take() {
            if through_shim {
                process.resume();
            }
            // Reaped now if it has exited, else by the one shared reaper.
            sys::adopt(process);
        }
    }
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
