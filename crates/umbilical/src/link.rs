//! The parent's live connection to a shim, once the program runs: its
//! report of the program's end, kills sent across, and letting go.

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::exit::ExitStatus;
use crate::protocol::{Message, recv, send};
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
    /// Our writing handle, once the reader is started.
    writer: Option<sys::ControlStream>,
    /// The stream and what was read of it, until a reader takes them.
    pending: Option<(sys::ControlStream, Vec<u8>)>,
    /// The program's pid, as the shim reported it.
    pub(crate) pid: u32,
    /// Our own handle on the program, if the OS let us open one.
    own: Option<Arc<sys::OtherProcess>>,
    ended: Arc<Shared>,
    /// A detach was sent.
    detached: bool,
    /// In band: the exit of the launcher session that runs the shim. Its
    /// end without a report means the program lost its channel (the exec
    /// client was killed): the link is then dropped, and the shim ends the
    /// program.
    launcher_exit: Option<sys::Handle>,
    /// In band: the launcher session that carries the link (the bridge),
    /// reaped once the link ends, and the pipe its stderr goes to.
    companion: Option<sys::Process>,
    companion_stderr: Option<sys::Handle>,
}

/// How long a report may trail the end of the launcher session that ran
/// the shim: in band, the report comes through another session, so it may
/// arrive a little after the first one's end.
const REPORT_TRAILS_LAUNCHER: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// reader is not started yet: [`Link::start_thread`], or
    /// [`Link::start_task`] on a tokio runtime.
    pub(crate) fn new(stream: sys::ControlStream, buf: Vec<u8>, pid: u32, own: Option<sys::OtherProcess>) -> Link {
        Link {
            writer: None,
            pending: Some((stream, buf)),
            pid,
            own: own.map(Arc::new),
            ended: Arc::new(Shared::default()),
            detached: false,
            launcher_exit: None,
            companion: None,
            companion_stderr: None,
        }
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

    /// Starts the thread that reads the shim's report.
    pub(crate) fn start_thread(&mut self) -> io::Result<()> {
        let Some((mut stream, mut buf)) = self.pending.take() else { return Ok(()) };
        self.writer = Some(stream.try_clone()?);
        let state = self.ended.clone();
        let watch = self.own.clone();
        let launcher_exit = self.launcher_exit.take();
        std::thread::Builder::new().name("umbilical-shim-link".into()).stack_size(64 * 1024).spawn(move || {
            if let Some(exit) = &launcher_exit {
                watch_launcher(&mut stream, &buf, exit);
            }
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
            // Close what this thread holds before publishing the end, so a
            // caller that saw the end sees no descriptor of ours left.
            stream.shutdown();
            drop((stream, watch, launcher_exit));
            state.publish(result);
        })?;
        Ok(())
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
        let launcher_exit = match self.launcher_exit.take() {
            Some(exit) => Some(sys::exit_ready(exit)?),
            None => None,
        };
        ::tokio::spawn(async move {
            let report = match &launcher_exit {
                Some(exit) => report_or_launcher_gone(&reader, buf, exit).await,
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

    /// Asks the shim to signal (Windows: terminate) the program; falls back
    /// to our own handle where that can kill. Nothing to do once the shim
    /// has reported.
    pub(crate) fn kill(&mut self, signal: i32) -> io::Result<()> {
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
                Some(own) => own.kill(signal).map_err(|_| e),
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
        // The link thread holds the stream too: shut it down for both, so
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
            sys::adopt(companion);
        }
    }
}

/// In band, until the report comes or the launcher session that runs the
/// shim ends; then the report gets [`REPORT_TRAILS_LAUNCHER`] more, after
/// which reads time out and the link is taken for dropped.
#[cfg(unix)]
fn watch_launcher(stream: &mut sys::ControlStream, buf: &[u8], exit: &sys::Handle) {
    use std::os::fd::AsFd;
    if !buf.is_empty() {
        return;
    }
    if let Ok(Some(1)) = sys::wait_any(&[stream.as_fd(), exit.as_fd()], None) {
        stream.set_read_deadline(Some(Instant::now() + REPORT_TRAILS_LAUNCHER));
    }
}

/// Windows has no in-band link: no launcher session to watch.
#[cfg(windows)]
fn watch_launcher(_: &mut sys::ControlStream, _: &[u8], _: &sys::Handle) {}

/// The async form of [`watch_launcher`] and the report: the report, or
/// `None` once the launcher session ended and the report did not follow
/// within [`REPORT_TRAILS_LAUNCHER`].
#[cfg(feature = "tokio")]
async fn report_or_launcher_gone(
    reader: &sys::AsyncControlStream,
    buf: Vec<u8>,
    exit: &sys::ExitReady,
) -> Option<ExitStatus> {
    let mut report = std::pin::pin!(recv_report_async(reader, buf));
    let mut gone = std::pin::pin!(exit.changed());
    let launcher_ended = std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(r) = report.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(r));
        }
        gone.as_mut().poll(cx).map(|_| None)
    })
    .await;
    match launcher_ended {
        Some(r) => r,
        None => ::tokio::time::timeout(REPORT_TRAILS_LAUNCHER, report).await.ok().flatten(),
    }
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

/// Reads messages until the shim's report: its status, or `None` when the
/// stream failed or closed first.
fn recv_report(stream: &mut sys::ControlStream, buf: &mut Vec<u8>) -> Option<ExitStatus> {
    loop {
        match recv(stream, buf) {
            Ok(Message::Exited { status }) => return Some(status.into()),
            Ok(_) => continue,
            Err(_) => return None,
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
        match crate::protocol::take_message(&mut buf) {
            Ok(Some(Message::Exited { status })) => break Some(status.into()),
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(_) => break None,
        }
        if stream.readable().await.is_err() {
            break None;
        }
        let start = buf.len();
        buf.resize(start + 64 * 1024, 0);
        let n = stream.try_read(&mut buf[start..]);
        buf.truncate(start + *n.as_ref().unwrap_or(&0));
        match n {
            Ok(0) => break None,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => break None,
        }
    };
    stream.shutdown();
    status
}
