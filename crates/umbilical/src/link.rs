//! The parent's live connection to a shim, once the program runs: its
//! report of the program's end, kills sent across, and letting go.

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::exit::ExitStatus;
use crate::protocol::{Message, send};
use crate::signal::{Signal, WireSignal};
use crate::sys;

/// The parent's live connection to a shim.
///
/// One reader ([`Reader`]) reads the shim's report as messages come,
/// records it and closes the stream at once: a launcher such as ssh keeps
/// the channel open until that connection is closed on our side, so a
/// caller reading the channel to EOF before calling `wait()` must not
/// depend on `wait()` to close it. The reader is a background watch
/// (`sys::watch`: Unix, the process's one background thread, in one
/// `poll(2)` with every other link and dropped child; Windows, waits of
/// the system thread pool), for the blocking and the async API alike: a
/// live child costs no thread.
///
/// Dropping the link closes the stream: the shim then ends the program
/// unless [`Link::detach`] was sent first.
pub(crate) struct Link {
    /// Our writing handle, once the reader is started.
    writer: Option<sys::ControlStream>,
    /// The stream and what was read of it, until the reader takes them.
    pending: Option<(sys::ControlStream, Vec<u8>)>,
    /// The program's pid, as the shim reported it.
    pub(crate) pid: u32,
    /// The shim's OS and architecture: which raw signal numbers cross.
    far_host: String,
    /// Our own handle on the program, if the OS let us open one.
    own: Option<Arc<sys::OtherProcess>>,
    /// The end as the reader publishes it.
    pub(crate) ended: Arc<Shared>,
    /// A detach was sent.
    detached: bool,
    /// What else shows the shim's end, until the reader takes it.
    signs: Signs,
    /// In band: the launcher session that carries the link (the bridge),
    /// reaped once the link ends, and the pipe its stderr goes to.
    companion: Option<(sys::Process, sys::Handle)>,
}

/// What else shows the shim's end, beyond its stream: each launch fills in
/// what it has.
#[derive(Default)]
pub(crate) struct Signs {
    /// Turns ready once the report is in the stream, where the stream
    /// itself cannot be waited on (Windows: the shim's exit; it exits
    /// right after sending it).
    pub(crate) report_ready: Option<sys::Handle>,
    /// In band: the exit of the launcher session that runs the shim. When
    /// it ends without a report, the shim is asked whether it lives
    /// ([`Message::Ping`]): the report may only be held up behind a
    /// stalled bridge session, or the shim lives on in the container while
    /// the program lost its channel (the exec client was killed). A
    /// [`Message::Pong`] means the latter: the link is dropped and the shim
    /// ends the program; the report means the former. No answer yet is no
    /// verdict: a stall is waited out (a kill bounds the wait; see
    /// `exit_source`).
    pub(crate) launcher_exit: Option<sys::Handle>,
    /// In band: the session that carries the link, and its stderr pipe.
    pub(crate) companion: Option<(sys::Process, sys::Handle)>,
    /// Windows, elevated: turns ready once the relay of the program's
    /// stderr to ours has written everything. The end is published only
    /// then (or after [`STDERR_RELAY_GRACE`]), so that a host exiting
    /// right after a wait loses none of it.
    pub(crate) stderr_drained: Option<sys::Handle>,
}

/// How long a report may trail the sign that it is in the stream (the
/// shim's exit, on Windows).
const REPORT_TRAILS_SIGN: Duration = Duration::from_secs(2);

/// How long the end waits for an elevated program's relayed stderr: ample
/// for the pipe's last bytes, short if a grandchild keeps the pipe open.
const STDERR_RELAY_GRACE: Duration = Duration::from_secs(2);

/// How often a stream with neither readiness nor a sign is looked at.
const UNSIGNED_LOOK: Duration = Duration::from_millis(50);

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
    /// A link on `stream` (`buf` holds bytes already read from it) whose
    /// reader is not started yet ([`Link::start_reader`]).
    pub(crate) fn new(
        stream: sys::ControlStream,
        mut buf: Vec<u8>,
        pid: u32,
        far_host: String,
        own: Option<sys::OtherProcess>,
    ) -> Link {
        // The handshake read in 64 KiB steps; what is left is a few bytes
        // at most, and the link lives as long as the program.
        buf.shrink_to_fit();
        Link {
            writer: None,
            pending: Some((stream, buf)),
            pid,
            far_host,
            own: own.map(Arc::new),
            ended: Arc::new(Shared::default()),
            detached: false,
            signs: Signs::default(),
            companion: None,
        }
    }

    /// The link with what else shows the shim's end.
    pub(crate) fn with(mut self, mut signs: Signs) -> Link {
        self.companion = signs.companion.take();
        self.signs = signs;
        self
    }

    /// The shim did not answer in time: the session that carries the link
    /// (in band) is killed, stopped or not; the link closes with the
    /// `Link`.
    pub(crate) fn abandon(&mut self) {
        if let Some((p, _)) = &self.companion {
            let _ = p.kill();
        }
    }

    /// Reaps the session that carried the link, which ends once the link
    /// closed, waiting at most until `until`.
    pub(crate) fn reap_companion(&mut self, until: Instant) {
        if let Some((p, _)) = &self.companion
            && matches!(p.wait_deadline(Some(until)), Ok(Some(_)) | Err(_))
        {
            self.companion = None;
        }
    }

    /// Starts reading the shim's report in the background, for the
    /// blocking and the async API alike (see [`Link`]).
    pub(crate) fn start_reader(&mut self) -> io::Result<()> {
        let Some((stream, buf)) = self.pending.take() else { return Ok(()) };
        self.writer = Some(stream.try_clone()?);
        let signs = std::mem::take(&mut self.signs);
        let reader = Reader {
            stream: Some(stream),
            buf,
            report_ready: signs.report_ready,
            due_by: None,
            launcher_exit: signs.launcher_exit,
            own: self.own.clone(),
            stage: Stage::Report,
            stderr_drained: signs.stderr_drained,
            drain_until: None,
            ended: self.ended.clone(),
        };
        // Its first look, on this thread, also takes a report read with
        // the handshake.
        sys::watch(Box::new(reader)).map_err(|_| io::Error::other("no background watch for the shim's link"))
    }

    /// Another handle on the link's stream, for a session's requests (the
    /// reader keeps reading the same stream).
    pub(crate) fn sender(&self) -> io::Result<sys::ControlStream> {
        match (&self.writer, &self.pending) {
            (Some(stream), _) | (None, Some((stream, _))) => stream.try_clone(),
            (None, None) => Err(io::Error::new(io::ErrorKind::NotConnected, "the link is closed")),
        }
    }

    /// Waits for the shim's report until `deadline`; `Ok(None)` on timeout.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Option<Ended>> {
        let mut ended = self.ended.lock();
        loop {
            if let Some(e) = *ended {
                return Ok(Some(e));
            }
            match deadline {
                None => ended = self.ended.cvar.wait(ended).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    ended = self.ended.cvar.wait_timeout(ended, left).unwrap_or_else(|e| e.into_inner()).0;
                }
            }
        }
    }

    fn reported(&self) -> bool {
        self.ended.lock().is_some()
    }

    /// Asks the shim to send the program signal `number` of this host (by
    /// its portable name; a number without one only to a shim on the same
    /// OS and architecture: `InvalidInput` otherwise). A Windows shim
    /// terminates the program. Falls back to our own handle where that can
    /// kill. Nothing to do once the shim has reported.
    pub(crate) fn signal(&mut self, number: i32) -> io::Result<()> {
        let signal = WireSignal::for_host(number, &self.far_host)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        self.send_signal(signal, number)
    }

    /// Asks the shim to ask the program to end (SIGTERM; a shim on
    /// Windows asks the Windows ways, or terminates where it cannot).
    pub(crate) fn terminate(&mut self) -> io::Result<()> {
        self.send_signal(WireSignal::Named(Signal::Term), Signal::Term.number().unwrap_or(15))
    }

    /// Asks the shim to kill the program (SIGKILL; Windows: terminate).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        self.send_signal(WireSignal::Named(Signal::Kill), Signal::Kill.number().unwrap_or(0))
    }

    fn send_signal(&mut self, signal: WireSignal, here: i32) -> io::Result<()> {
        if self.reported() {
            return Ok(());
        }
        let sent = match &mut self.writer {
            Some(writer) => send(writer, &Message::Kill { signal }),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "the shim link is not started")),
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e) => match &self.own {
                Some(own) => own.kill(here).map_err(|_| e),
                None => Err(e),
            },
        }
    }

    /// Tells the shim that the caller lets the program run on: closing the
    /// link after this does not end it.
    pub(crate) fn detach(&mut self) {
        if !self.reported() {
            self.detached = self.writer.as_mut().is_some_and(|w| send(w, &Message::Detach).is_ok());
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The reader holds the stream too: shut it down for both, so
        // the shim sees the caller go now, not when this process exits.
        // Where that discards what the shim has not read yet (Windows), a
        // detach must reach it first: the stream then closes with this
        // process.
        if !(self.detached && sys::SHUTDOWN_DISCARDS_UNREAD) {
            match (&self.writer, &self.pending) {
                (Some(stream), _) | (None, Some((stream, _))) => stream.shutdown(),
                (None, None) => {}
            }
        }
        if let Some((companion, _)) = self.companion.take() {
            // Stopped, it would never see the link close.
            companion.resume();
            sys::adopt(companion);
        }
    }
}

/// The reader of a link: a background watch that moves through the
/// shim's report (or the link taken for dropped once the launcher session
/// that runs the shim ended and the shim answered a ping instead of
/// reporting: see [`Signs::launcher_exit`]), then, without a report, the
/// program's own end where we hold it, then the relayed stderr's end
/// where there is one; and then publishes the end.
struct Reader {
    /// Until the report or the link's end.
    stream: Option<sys::ControlStream>,
    buf: Vec<u8>,
    report_ready: Option<sys::Handle>,
    /// Once the sign that the report is in the stream came: when waiting
    /// for it gives up.
    due_by: Option<Instant>,
    launcher_exit: Option<sys::Handle>,
    own: Option<Arc<sys::OtherProcess>>,
    stage: Stage,
    stderr_drained: Option<sys::Handle>,
    /// Once the end is known: when waiting for the relayed stderr gives up.
    drain_until: Option<Instant>,
    ended: Arc<Shared>,
}

/// Where a [`Reader`] is.
#[derive(Clone, Copy)]
enum Stage {
    /// Reading the stream for the report.
    Report,
    /// The link ended without a report: waiting for the program itself.
    Program,
    /// The end is known: letting the relayed stderr finish first.
    Drain(Ended),
}

impl sys::Watch for Reader {
    fn interest(&self, out: &mut Vec<sys::Waitable>) {
        match self.stage {
            Stage::Report => {
                match &self.report_ready {
                    Some(sign) => out.push(sys::waitable(sign)),
                    None => out.extend(self.stream.as_ref().and_then(sys::ControlStream::waitable)),
                }
                out.extend(self.launcher_exit.as_ref().map(sys::waitable));
            }
            Stage::Program => out.extend(self.own.as_ref().map(|own| own.waitable())),
            Stage::Drain(_) => out.extend(self.stderr_drained.as_ref().map(sys::waitable)),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Report if self.report_ready.is_none() => match self.due_by {
                Some(due) => Some(due),
                // Nothing to wait on: look again in a while.
                None if self.stream.as_ref().and_then(sys::ControlStream::waitable).is_none() => {
                    Some(Instant::now() + UNSIGNED_LOOK)
                }
                None => None,
            },
            Stage::Drain(_) => self.drain_until,
            _ => None,
        }
    }

    fn progress(&mut self) -> bool {
        if let Stage::Report = self.stage {
            if self.report_ready.as_ref().is_some_and(|sign| sys::is_ready(sys::waitable(sign))) {
                self.report_ready = None;
                self.due_by = Some(Instant::now() + REPORT_TRAILS_SIGN);
            }
            let mut asked = true;
            if self.launcher_exit.as_ref().is_some_and(|e| sys::is_ready(sys::waitable(e))) {
                self.launcher_exit = None;
                // A frame this small goes out whole, so it never splits a
                // kill the caller's thread writes on the same socket.
                asked = self.stream.as_mut().is_some_and(|s| send(s, &Message::Ping).is_ok());
            }
            let overdue = self.due_by.is_some_and(|due| Instant::now() >= due);
            match self.read_news() {
                Some(News::Report(status)) => return self.drain(Ended::Reported(status)),
                None if asked && !overdue => return false,
                // The stream failed or closed, or the shim lives on without
                // its session, or the report never came after its sign.
                _ => {}
            }
            // Let the shim see the link go now (it ends the program if it
            // still runs), then wait for the program if we hold it.
            if let Some(stream) = self.stream.take() {
                stream.shutdown();
            }
            self.launcher_exit = None;
            self.stage = Stage::Program;
        }
        if let Stage::Program = self.stage {
            match &self.own {
                Some(own) if !sys::is_ready(own.waitable()) => return false,
                _ => return self.drain(Ended::ProgramGone),
            }
        }
        match self.stage {
            Stage::Drain(result) => {
                let drained = self.stderr_drained.as_ref().is_none_or(|d| sys::is_ready(sys::waitable(d)));
                if !drained && self.drain_until.is_some_and(|until| Instant::now() < until) {
                    return false;
                }
                self.finish(result)
            }
            _ => false,
        }
    }
}

impl Reader {
    /// What the stream holds now, `None` while nothing has been decided.
    fn read_news(&mut self) -> Option<News> {
        let stream = self.stream.as_ref()?;
        loop {
            if let Some(news) = take_news(&mut self.buf) {
                return Some(news);
            }
            let mut chunk = [0u8; 1024];
            match stream.try_read(&mut chunk) {
                Ok(0) => return Some(News::Broken),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(_) => return Some(News::Broken),
            }
        }
    }

    /// The end is known: closes the stream, and lets the relayed stderr
    /// finish (bounded) before the end is published.
    fn drain(&mut self, result: Ended) -> bool {
        if let Some(stream) = self.stream.take() {
            stream.shutdown();
        }
        self.launcher_exit = None;
        self.report_ready = None;
        self.own = None;
        self.stage = Stage::Drain(result);
        self.drain_until = Some(Instant::now() + STDERR_RELAY_GRACE);
        sys::Watch::progress(self)
    }

    /// Closes what this reader holds, then publishes the end: a caller
    /// that saw the end sees no handle of ours left.
    fn finish(&mut self, result: Ended) -> bool {
        self.stderr_drained = None;
        self.ended.publish(result);
        true
    }
}

/// The shim's end as the reader published it, for blocking and async
/// waiters alike.
#[derive(Default)]
pub(crate) struct Shared {
    ended: Mutex<Option<Ended>>,
    cvar: Condvar,
    /// Wakes an async `wait()` (a stored permit if none waits yet).
    pub(crate) notify: sys::Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Ended>> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, result: Ended) {
        *self.lock() = Some(result);
        self.cvar.notify_all();
        self.notify.notify_one();
    }
}

/// What the shim said that decides the wait.
enum News {
    /// Its report.
    Report(ExitStatus),
    /// Its answer to a ping: it runs and has not reported.
    Alive,
    /// The stream failed or closed, or spoke nonsense.
    Broken,
}

/// The deciding news among the messages read so far, `None` while it may
/// still come. Earlier messages are consumed.
fn take_news(buf: &mut Vec<u8>) -> Option<News> {
    loop {
        match crate::protocol::take_message(buf) {
            Ok(Some(Message::Exited { status })) => return Some(News::Report(status.into())),
            Ok(Some(Message::Pong)) => return Some(News::Alive),
            Ok(Some(_)) => continue,
            Ok(None) => return None,
            Err(_) => return Some(News::Broken),
        }
    }
}
