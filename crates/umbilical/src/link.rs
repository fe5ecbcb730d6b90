//! The parent's live connection to a shim, once the program runs: its
//! report of the program's end, kills sent across, and letting go.

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::exit::ExitStatus;
use crate::protocol::{Message, send};
use crate::signal::{Signal, WireSignal};
use crate::sys;

/// The parent's live connection to a shim.
///
/// A reader in the background (Unix: the process's one background thread,
/// for every link; Windows: a thread-pool wait on the shim's exit, or a
/// thread where its handle is missing; async: a task) reads the
/// control stream as messages come, records the shim's report and closes
/// the stream at once: a launcher such as ssh
/// keeps the channel open until that connection is closed on our side, so
/// a caller reading the channel to EOF before calling `wait()` must not
/// depend on `wait()` to close it.
///
/// Dropping the link closes the stream: the shim then ends the program
/// unless [`Link::detach`] was sent first.
pub(crate) struct Link {
    /// Our writing handle, once the reader is started.
    writer: Option<sys::ControlStream>,
    /// The stream and what was read of it, until a reader takes them.
    pending: Option<(sys::ControlStream, Vec<u8>)>,
    /// The program's pid, as the shim reported it.
    pub(crate) pid: u32,
    /// The shim's OS and architecture: which raw signal numbers cross.
    far_host: String,
    /// Our own handle on the program, if the OS let us open one.
    own: Option<Arc<sys::OtherProcess>>,
    ended: Arc<Shared>,
    /// A detach was sent.
    detached: bool,
    /// In band: the exit of the launcher session that runs the shim. When
    /// it ends without a report, the shim is asked whether it lives
    /// ([`Message::Ping`]): the report may only be held up behind a
    /// stalled bridge session, or the shim lives on in the container while
    /// the program lost its channel (the exec client was killed). A
    /// [`Message::Pong`] means the latter: the link is dropped and the shim
    /// ends the program; the report means the former. No answer yet is no
    /// verdict: a stall is waited out (a kill bounds the wait; see
    /// `exit_source`).
    launcher_exit: Option<sys::Handle>,
    /// In band: the launcher session that carries the link (the bridge),
    /// reaped once the link ends, and the pipe its stderr goes to.
    companion: Option<sys::Process>,
    companion_stderr: Option<sys::Handle>,
    /// Windows: the shim's exit, on which the report is read (the shim
    /// exits right after sending it), and the registered waits doing it.
    #[cfg(windows)]
    shim_exit: Option<sys::Handle>,
    #[cfg(windows)]
    on_shim_exit: Option<sys::OnSignal>,
    #[cfg(windows)]
    on_program_exit: Arc<Mutex<Option<sys::OnSignal>>>,
    /// Windows, elevated: the relay of the program's stderr to ours, which
    /// a blocking wait lets finish before it returns.
    #[cfg(windows)]
    stderr_relay: Option<Arc<sys::Drained>>,
}

/// How long a report may trail the shim's exit (Windows, where the report
/// is read once the shim's handle is signalled).
#[cfg(windows)]
const REPORT_TRAILS_LAUNCHER: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a wait lets an elevated program's relayed stderr trail its
/// end (Windows): ample for the pipe's last bytes, short if a grandchild
/// keeps the pipe open.
#[cfg(windows)]
pub(crate) const STDERR_RELAY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// reader is not started yet: [`Link::start_reader`], or
    /// [`Link::start_task`] on a tokio runtime.
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
            launcher_exit: None,
            companion: None,
            companion_stderr: None,
            #[cfg(windows)]
            shim_exit: None,
            #[cfg(windows)]
            on_shim_exit: None,
            #[cfg(windows)]
            on_program_exit: Arc::default(),
            #[cfg(windows)]
            stderr_relay: None,
        }
    }

    /// Windows, elevated: `relay` copies the program's stderr to ours.
    #[cfg(windows)]
    pub(crate) fn with_stderr_relay(mut self, relay: Option<Arc<sys::Drained>>) -> Link {
        self.stderr_relay = relay;
        self
    }

    /// Windows: `exit` is signalled when the shim exits; the blocking
    /// reader then needs no thread of its own.
    #[cfg(windows)]
    pub(crate) fn with_shim_exit(mut self, exit: Option<sys::Handle>) -> Link {
        self.shim_exit = exit;
        self
    }

    /// In band: `exit` turns readable when the launcher session that runs
    /// the shim ends; `companion` is the session that carries the link.
    #[cfg(unix)]
    pub(crate) fn in_band(mut self, exit: Option<sys::Handle>, companion: sys::Process, stderr: sys::Handle) -> Link {
        self.launcher_exit = exit;
        self.companion = Some(companion);
        self.companion_stderr = Some(stderr);
        self
    }

    /// The shim did not answer in time: the session that carries the link
    /// (in band) is killed, stopped or not; the link closes with the
    /// `Link`.
    pub(crate) fn abandon(&mut self) {
        if let Some(p) = &self.companion {
            let _ = p.kill();
        }
    }

    /// Reaps the session that carried the link, which ends once the link
    /// closed, waiting at most until `until`.
    pub(crate) fn reap_companion(&mut self, until: Instant) {
        if let Some(p) = &self.companion
            && matches!(p.wait_deadline(Some(until)), Ok(Some(_)) | Err(_))
        {
            self.companion = None;
            self.companion_stderr = None;
        }
    }

    /// Starts reading the shim's report in the background (blocking API).
    /// Unix: the process's one background thread reads it, with every other
    /// link and dropped child, so a live child costs no thread. Windows: a
    /// wait of the system thread pool on the shim's exit (a thread of its
    /// own where the shim's handle is missing).
    pub(crate) fn start_reader(&mut self) -> io::Result<()> {
        let Some((stream, buf)) = self.pending.take() else { return Ok(()) };
        self.writer = Some(stream.try_clone()?);
        #[cfg(unix)]
        {
            let reader = Reader {
                stream: Some(stream),
                buf,
                launcher_exit: self.launcher_exit.take(),
                pinged: false,
                own: self.own.clone(),
                awaiting_program: false,
                ended: self.ended.clone(),
            };
            // Its first look there also takes a report read with the handshake.
            sys::watch(Box::new(reader)).map_err(|_| io::Error::other("no background thread for the shim's link"))
        }
        #[cfg(windows)]
        {
            let (mut stream, mut buf) = (stream, buf);
            let state = self.ended.clone();
            let watch = self.own.clone();
            // On the shim's exit, on the system thread pool: its report is
            // in the pipe by then (it exits right after sending it), or it
            // never will be. Without the shim's handle: a thread.
            if let Some(exit) = self.shim_exit.take() {
                let program_wait = self.on_program_exit.clone();
                let on_exit = move || {
                    stream.set_read_deadline(Some(Instant::now() + REPORT_TRAILS_LAUNCHER));
                    let report = recv_report(&mut stream, &mut buf);
                    stream.shutdown();
                    drop(stream);
                    let program_exit = match report {
                        Some(_) => None,
                        None => watch.as_ref().and_then(|own| own.exit_handle()),
                    };
                    // Close what this holds before publishing the end, so a
                    // caller that saw the end sees no handle of ours left.
                    drop(watch);
                    match report {
                        Some(status) => state.publish(Ended::Reported(status)),
                        // The shim died without reporting: the program's
                        // own end, where we hold it, on another wait.
                        None => {
                            let published = state.clone();
                            let waited = program_exit
                                .and_then(|h| sys::on_signal(h, move || published.publish(Ended::ProgramGone)).ok());
                            match waited {
                                Some(wait) => *program_wait.lock().unwrap_or_else(|e| e.into_inner()) = Some(wait),
                                None => state.publish(Ended::ProgramGone),
                            }
                        }
                    }
                };
                self.on_shim_exit = Some(sys::on_signal(exit, on_exit)?);
                return Ok(());
            }
            std::thread::Builder::new().name("umbilical-shim-link".into()).stack_size(64 * 1024).spawn(move || {
                let result = match recv_report(&mut stream, &mut buf) {
                    Some(status) => Ended::Reported(status),
                    None => {
                        // The shim died without reporting: wait for the
                        // program itself if we hold it.
                        if let Some(own) = &watch {
                            own.wait();
                        }
                        Ended::ProgramGone
                    }
                };
                // Close what this thread holds before publishing the end,
                // so a caller that saw the end sees no handle of ours left.
                stream.shutdown();
                drop((stream, watch));
                state.publish(result);
            })?;
            Ok(())
        }
    }

    /// Starts a task on the current tokio runtime that reads the shim's
    /// report: no thread of its own.
    #[cfg(feature = "tokio")]
    pub(crate) fn start_task(&mut self) -> io::Result<()> {
        let Some((stream, buf)) = self.pending.take() else { return Ok(()) };
        self.writer = Some(stream.try_clone()?);
        let reader = sys::AsyncControlStream::new(stream)?;
        let state = self.ended.clone();
        let watch = self.own.clone();
        let mut launcher_exit = match self.launcher_exit.take() {
            // The ping goes out on a handle of its own, as the Reader's
            // does on its stream.
            Some(exit) => Some((sys::exit_ready(exit)?, stream_clone(self.writer.as_ref())?)),
            None => None,
        };
        ::tokio::spawn(async move {
            let report = match &mut launcher_exit {
                Some((exit, pinger)) => report_or_shim_gone(&reader, buf, exit, pinger).await,
                None => recv_report_async(&reader, buf).await,
            };
            let result = match report {
                Some(status) => Ended::Reported(status),
                None => {
                    // As the thread does: wait for the program itself if
                    // we hold it.
                    if let Some(Ok(exited)) = watch.as_ref().and_then(|own| own.exit_handle()).map(sys::exit_ready) {
                        let _ = exited.changed().await;
                    }
                    Ended::ProgramGone
                }
            };
            drop((reader, watch, launcher_exit));
            state.publish(result);
        });
        Ok(())
    }

    /// Whether the shim's end is known.
    #[cfg(feature = "tokio")]
    pub(crate) fn ended(&self) -> &Arc<Shared> {
        &self.ended
    }

    /// Waits for the shim's report until `deadline`; `Ok(None)` on timeout.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Option<Ended>> {
        let mut ended = self.ended.lock();
        loop {
            if let Some(e) = *ended {
                drop(ended);
                self.let_stderr_relay_finish(deadline);
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

    /// Windows, elevated: the relay of the program's stderr, until a wait
    /// has let it finish.
    #[cfg(all(windows, feature = "tokio"))]
    pub(crate) fn stderr_relay(&self) -> Option<Arc<sys::Drained>> {
        self.stderr_relay.clone()
    }

    /// Windows: a wait has let the stderr relay finish, or given it its
    /// whole grace.
    #[cfg(all(windows, feature = "tokio"))]
    pub(crate) fn forget_stderr_relay(&mut self) {
        self.stderr_relay = None;
    }

    /// Windows, elevated: the program's stderr, relayed to ours, is written
    /// before a wait returns, so that a host exiting right after loses none
    /// of it. Bounded: a grandchild holding the pipe open (the program's
    /// own children) delays the wait by `STDERR_RELAY_GRACE` at most, and
    /// `deadline` is kept.
    pub(crate) fn let_stderr_relay_finish(&mut self, deadline: Option<Instant>) {
        #[cfg(windows)]
        if let Some(relay) = &self.stderr_relay {
            let grace = Instant::now() + STDERR_RELAY_GRACE;
            let until = deadline.map_or(grace, |d| d.min(grace));
            if relay.wait_until(until) || deadline.is_none_or(|d| d > until) {
                // Drained, or given its whole grace: not waited for again.
                self.stderr_relay = None;
            }
        }
        #[cfg(unix)]
        let _ = deadline;
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
        if let Some(companion) = self.companion.take() {
            // Stopped, it would never see the link close.
            companion.resume();
            sys::adopt(companion);
        }
        // Windows: the shim's wait first (it may still be registering the
        // program's), then the program's.
        #[cfg(windows)]
        {
            drop(self.on_shim_exit.take());
            drop(self.on_program_exit.lock().unwrap_or_else(|e| e.into_inner()).take());
        }
    }
}

/// The reader of a link in the process's background thread (Unix): the
/// report, or the link taken for dropped once the launcher session that
/// runs the shim ended (in band) and the shim answered a ping instead of
/// reporting (see [`Link::launcher_exit`]); without a report, the
/// program's own end where we hold it.
#[cfg(unix)]
struct Reader {
    /// Until the report or the link's end.
    stream: Option<sys::ControlStream>,
    buf: Vec<u8>,
    launcher_exit: Option<sys::Handle>,
    /// Set when the launcher session ended and the shim was asked whether
    /// it lives.
    pinged: bool,
    own: Option<Arc<sys::OtherProcess>>,
    /// The link ended without a report: waiting for the program itself.
    awaiting_program: bool,
    ended: Arc<Shared>,
}

#[cfg(unix)]
impl sys::Watch for Reader {
    fn interest(&self, fds: &mut Vec<std::os::fd::RawFd>) {
        use std::os::fd::{AsFd, AsRawFd};
        if self.awaiting_program {
            fds.extend(self.own.as_ref().map(|own| own.pollable().as_raw_fd()));
            return;
        }
        fds.extend(self.stream.as_ref().map(|s| s.as_fd().as_raw_fd()));
        fds.extend(self.launcher_exit.as_ref().map(|e| e.as_raw_fd()));
    }

    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn progress(&mut self) -> bool {
        use std::os::fd::AsFd;
        let ready = |fd: std::os::fd::BorrowedFd<'_>| matches!(sys::wait_any(&[fd], Some(Instant::now())), Ok(Some(_)));
        if !self.awaiting_program {
            let mut asked = true;
            if self.launcher_exit.as_ref().is_some_and(|e| ready(e.as_fd())) {
                self.launcher_exit = None;
                self.pinged = true;
                // A frame this small goes out whole, so it never splits a
                // kill the caller's thread writes on the same socket.
                asked = self.stream.as_mut().is_some_and(|s| send(s, &Message::Ping).is_ok());
            }
            match self.read_news() {
                Some(News::Report(status)) => return self.finish(Ended::Reported(status)),
                None if asked => return false,
                // The stream failed or closed, or the shim lives on without
                // its session.
                _ => {}
            }
            // Let the shim see the link go now (it ends the program if it
            // still runs), then wait for the program if we hold it.
            if let Some(stream) = self.stream.take() {
                stream.shutdown();
            }
            self.launcher_exit = None;
            self.awaiting_program = true;
        }
        match &self.own {
            Some(own) if !ready(own.pollable()) => false,
            _ => self.finish(Ended::ProgramGone),
        }
    }
}

#[cfg(unix)]
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

    /// Closes what this reader holds, then publishes the end: a caller
    /// that saw the end sees no descriptor of ours left.
    fn finish(&mut self, result: Ended) -> bool {
        if let Some(stream) = self.stream.take() {
            stream.shutdown();
        }
        self.launcher_exit = None;
        self.own = None;
        self.ended.publish(result);
        true
    }
}

/// The async form of [`Reader`]'s watch of the launcher session and the
/// report: the report, or `None` once the launcher session ended and the
/// shim answered the ping instead (or the link broke).
#[cfg(feature = "tokio")]
async fn report_or_shim_gone(
    reader: &sys::AsyncControlStream,
    mut buf: Vec<u8>,
    exit: &sys::ExitReady,
    pinger: &mut sys::ControlStream,
) -> Option<ExitStatus> {
    let news = {
        let mut news = std::pin::pin!(recv_news_async(reader, &mut buf));
        let mut gone = std::pin::pin!(exit.changed());
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(n) = news.as_mut().poll(cx) {
                return std::task::Poll::Ready(Some(n));
            }
            gone.as_mut().poll(cx).map(|_| None)
        })
        .await
    };
    let news = match news {
        Some(news) => news,
        None => {
            // A few bytes into a socket nobody else writes to while this
            // runs but a kill: they go out whole.
            if send(pinger, &Message::Ping).is_err() {
                return None;
            }
            recv_news_async(reader, &mut buf).await
        }
    };
    reader.shutdown();
    match news {
        News::Report(status) => Some(status),
        News::Alive | News::Broken => None,
    }
}

/// A second handle on the link's stream (the writer's), for the ping.
#[cfg(feature = "tokio")]
fn stream_clone(writer: Option<&sys::ControlStream>) -> io::Result<sys::ControlStream> {
    writer.ok_or_else(|| io::Error::other("the shim link has no writer"))?.try_clone()
}

/// The shim's end as the reader published it, for blocking and async
/// waiters alike.
#[derive(Default)]
pub(crate) struct Shared {
    ended: Mutex<Option<Ended>>,
    cvar: Condvar,
    /// Wakes an async `wait()` (a stored permit if none waits yet).
    #[cfg(feature = "tokio")]
    pub(crate) notify: ::tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Ended>> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, result: Ended) {
        *self.lock() = Some(result);
        self.cvar.notify_all();
        #[cfg(feature = "tokio")]
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

/// Reads messages until the shim's report: its status, or `None` when the
/// stream failed or closed first.
#[cfg(windows)]
fn recv_report(stream: &mut sys::ControlStream, buf: &mut Vec<u8>) -> Option<ExitStatus> {
    use std::io::Read;
    loop {
        match take_news(buf) {
            Some(News::Report(status)) => return Some(status),
            Some(News::Broken) => return None,
            // Nobody asked: not an answer to anything.
            Some(News::Alive) | None => {}
        }
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The async form of [`recv_report`], on the reactor: reads messages until
/// the shim's report, then ends the stream for every holder (ssh keeps the
/// channel open until it is closed here). `None` when the stream failed or
/// closed first.
#[cfg(feature = "tokio")]
async fn recv_report_async(stream: &sys::AsyncControlStream, mut buf: Vec<u8>) -> Option<ExitStatus> {
    let status = loop {
        match recv_news_async(stream, &mut buf).await {
            News::Report(status) => break Some(status),
            // Nobody asked: not an answer to anything.
            News::Alive => continue,
            News::Broken => break None,
        }
    };
    stream.shutdown();
    status
}

/// Reads messages on the reactor until one decides the wait.
#[cfg(feature = "tokio")]
async fn recv_news_async(stream: &sys::AsyncControlStream, buf: &mut Vec<u8>) -> News {
    loop {
        if let Some(news) = take_news(buf) {
            return news;
        }
        if stream.readable().await.is_err() {
            return News::Broken;
        }
        let mut chunk = [0u8; 1024];
        match stream.try_read(&mut chunk) {
            Ok(0) => return News::Broken,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return News::Broken,
        }
    }
}
