//! The parent's live connection to a shim, once the program runs: its
//! report of the program's end, kills sent across, and letting go.

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::exit::ExitStatus;
use crate::protocol::{Message, WireStatus, recv, send};
use crate::sys;

/// The parent's live connection to a shim.
///
/// A thread reads the control stream as messages come, records the
/// shim's report and closes the stream at once: a launcher such as ssh
/// keeps the channel open until that connection is closed on our side, so
/// a caller reading the channel to EOF before calling `wait()` must not
/// depend on `wait()` to close it.
///
/// Dropping the link closes the stream: the shim then ends the program
/// unless [`Link::detach`] was sent first.
pub(crate) struct Link {
    writer: sys::ControlStream,
    /// The program's pid, as the shim reported it.
    pub(crate) pid: u32,
    /// Our own handle on the program, if the OS let us open one.
    own: Option<Arc<sys::OtherProcess>>,
    ended: Arc<(Mutex<Option<Ended>>, Condvar)>,
    /// A detach was sent.
    detached: bool,
}

/// What ended a wait on the shim.
#[derive(Clone, Copy)]
pub(crate) enum Ended {
    /// The shim reported the program's status.
    Reported(ExitStatus),
    /// The shim died first; the program is gone too (seen through our own
    /// handle on it where we have one), its status lost.
    ProgramGone,
}

impl Link {
    /// Starts the thread that reads the shim's report from `stream` (`buf`
    /// holds bytes already read from it).
    pub(crate) fn start(
        mut stream: sys::ControlStream,
        mut buf: Vec<u8>,
        pid: u32,
        own: Option<sys::OtherProcess>,
    ) -> io::Result<Link> {
        let own = own.map(Arc::new);
        let ended = Arc::new((Mutex::new(None), Condvar::new()));
        let writer = stream.try_clone()?;
        let state = ended.clone();
        let watch = own.clone();
        std::thread::Builder::new().name("umbilical-shim-link".into()).stack_size(64 * 1024).spawn(move || {
            let result = loop {
                match recv(&mut stream, &mut buf) {
                    Ok(Message::Exited { status }) => {
                        break Ended::Reported(match status {
                            WireStatus::Exited(c) => ExitStatus::Exited(c),
                            WireStatus::Signaled(s) => ExitStatus::Signaled(s),
                        });
                    }
                    Ok(_) => continue,
                    Err(_) => {
                        // The shim died without reporting: wait for the
                        // program itself if we hold it.
                        if let Some(own) = &watch {
                            own.wait();
                        }
                        break Ended::ProgramGone;
                    }
                }
            };
            // Close what this thread holds before publishing the end, so a
            // caller that saw the end sees no descriptor of ours left.
            stream.shutdown();
            drop((stream, watch));
            let (lock, cvar) = &*state;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            cvar.notify_all();
        })?;
        Ok(Link { writer, pid, own, ended, detached: false })
    }

    /// Waits for the shim's report until `deadline`; `Ok(None)` on timeout.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Option<Ended>> {
        let (lock, cvar) = &*self.ended;
        let mut ended = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(e) = *ended {
                return Ok(Some(e));
            }
            match deadline {
                None => ended = cvar.wait(ended).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    ended = cvar.wait_timeout(ended, left).unwrap_or_else(|e| e.into_inner()).0;
                }
            }
        }
    }

    fn reported(&self) -> bool {
        self.ended.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Asks the shim to signal (Windows: terminate) the program; falls back
    /// to our own handle where that can kill. Nothing to do once the shim
    /// has reported.
    pub(crate) fn kill(&mut self, signal: i32) -> io::Result<()> {
        if self.reported() {
            return Ok(());
        }
        match send(&mut self.writer, &Message::Kill { signal }) {
            Ok(()) => Ok(()),
            Err(e) => match &self.own {
                Some(own) => own.kill(signal).map_err(|_| e),
                None => Err(e),
            },
        }
    }

    /// Tells the shim that the caller lets the program run on: closing the
    /// link after this does not end it.
    pub(crate) fn detach(&mut self) {
        if !self.reported() {
            self.detached = send(&mut self.writer, &Message::Detach).is_ok();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The link thread holds the stream too: shut it down for both, so
        // the shim sees the caller go now, not when this process exits.
        // Where that discards what the shim has not read yet (Windows), a
        // detach must reach it first: the stream then closes with this
        // process.
        if !(self.detached && sys::SHUTDOWN_DISCARDS_UNREAD) {
            self.writer.shutdown();
        }
    }
}
