//! A session over the shim's link ([`crate::Session`]): one launcher run
//! starts one shim, which then starts every program the caller asks for,
//! with no launcher run, no rendezvous and no password each time.
//!
//! The session is the link of an ordinary shim, opened with
//! [`Message::SessionOpen`] instead of a spawn request (the launcher, the
//! prompts, the rendezvous and the authentication are the shim's). Each
//! program then gets a control stream of its own, on which the caller
//! speaks to the session's shim exactly as to a program's own shim (the
//! request, the spawn result, kills, the report), so a program of a
//! session is an ordinary shim child. How that stream and the program's
//! stdio reach the session's shim is the OS's: on Unix `SCM_RIGHTS` over
//! the link (`unix/session.rs`), on Windows a rendezvous pipe per program
//! whose name goes over the link (`windows/session.rs`).
//!
//! When the link closes (the caller dropped the session or died), or the
//! caller closes it, or no program ran for the idle timeout, the session's
//! shim ends every program still running (SIGTERM, the grace, SIGKILL) and
//! exits.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::running::Running;
use super::{STEP_TIMEOUT, say};
use crate::child::Child;
use crate::error::{Error, ErrorKind};
use crate::options::Options;
use crate::protocol::{Message, WireStatus, send};
use crate::spec::ProgramSpec;
use crate::sys;

use super::os::session as os;

/// The caller's side of an open session.
pub(crate) struct Opened {
    /// The session's shim, started through the launcher: its end is the
    /// session's, and a kill to it closes the session.
    shim: Mutex<Child>,
    /// The link's stream, for the requests.
    sender: Mutex<sys::ControlStream>,
    /// The launcher's name, for messages.
    launcher: String,
}

impl Opened {
    /// The session on the link of `shim` (a shim child opened with
    /// [`Message::SessionOpen`](crate::protocol::Message::SessionOpen)).
    pub(crate) fn new(mut shim: Child, launcher: String) -> Result<Opened, Error> {
        let sender = shim
            .source()
            .link()
            .ok_or_else(|| Error::new(ErrorKind::ShimFailed, "the session has no link", None))?
            .sender()
            .map_err(|e| Error::new(ErrorKind::Io, format!("the session's link: {e}"), Some(e)))?;
        // Dropped, the session closes: its programs end.
        shim.kill_on_drop = true;
        Ok(Opened { shim: Mutex::new(shim), sender: Mutex::new(sender), launcher })
    }

    fn shim(&self) -> MutexGuard<'_, Child> {
        self.shim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the session is closed, if it is.
    pub(crate) fn closed(&self) -> Option<String> {
        let exit = self.shim().try_wait().ok().flatten()?;
        let why = match exit.status {
            crate::ExitStatus::Exited(0) => "closed (idle past its timeout, or closed by its caller)".to_string(),
            _ => format!("its elevated side ended ({exit})"),
        };
        Some(format!("the session through {}: {why}", self.launcher))
    }

    /// The pid of the session's shim (the elevated process).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.shim().id()
    }

    /// Starts a program in the session.
    pub(crate) fn spawn(&self, spec: &ProgramSpec, opts: &Options) -> Result<Child, Error> {
        let fail = |kind, what: &str| Error::cannot_start(&spec.program, kind, what, None);
        if spec.program.is_empty() {
            return Err(fail(ErrorKind::InvalidInput, "the program name is empty"));
        }
        if let Some(closed) = self.closed() {
            return Err(fail(ErrorKind::SessionClosed, &closed));
        }
        let shim_pid = self.pid().unwrap_or(0);
        os::start(&self.sender, shim_pid, &self.launcher, spec, opts).map_err(|e| match e.kind() {
            // A session that closed meanwhile took the request unread: the
            // link's failure is the session's end. A refusal the session's
            // shim sent (not found, ...) is the program's.
            ErrorKind::ShimFailed | ErrorKind::Protocol | ErrorKind::Io | ErrorKind::SessionClosed => {
                match self.closed() {
                    Some(closed) => fail(ErrorKind::SessionClosed, &closed),
                    None => e,
                }
            }
            _ => e,
        })
    }

    /// Closes the session: its programs still running are ended (SIGTERM,
    /// the grace, SIGKILL) and its shim exits; waits for that until
    /// `until`. `Ok(true)` once the shim reported its end.
    pub(crate) fn close(&self, until: Instant) -> io::Result<bool> {
        let mut shim = self.shim();
        if shim.try_wait()?.is_none() {
            shim.kill()?;
        }
        Ok(shim.wait_timeout(until.saturating_duration_since(Instant::now()))?.is_some())
    }
}

/// How programs reach a session's shim on this OS.
pub(super) trait Programs {
    /// The next message on the session's link, keeping what comes with it.
    fn next(&mut self, stream: &mut sys::ControlStream, buf: &mut Vec<u8>) -> io::Result<Message>;
    /// Starts serving the program `msg` asks for, on a thread of its own;
    /// false if `msg` asks for no program.
    fn start(&mut self, msg: &Message, running: &Arc<Running>) -> bool;
}

/// The shim's side: serves the session on `stream` (`buf` holds what was
/// read of it) until it closes; the shim's exit code.
pub(super) fn serve(
    mut stream: sys::ControlStream,
    mut buf: Vec<u8>,
    idle_ms: u32,
    grace_ms: u32,
    mut programs: impl Programs,
) -> io::Result<i32> {
    // As for a program: "spawned" (the session's shim is the process that
    // stands for it), and the caller's confirmation.
    send(&mut stream, &Message::Spawned { pid: std::process::id(), host: crate::signal::host() })?;
    stream.set_read_deadline(Some(Instant::now() + STEP_TIMEOUT));
    match programs.next(&mut stream, &mut buf)? {
        Message::PidConfirmed => {}
        other => {
            let what = format!("expected the confirmation, got {other:?}");
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
    }
    // A terminal's Ctrl-C or a supervisor's group kill is the caller's to
    // pass on: the session must not die of it with programs running.
    sys::ignore_group_signals();
    let idle = (idle_ms > 0).then(|| Duration::from_millis(idle_ms.into()));
    let grace = Duration::from_millis(grace_ms.into());
    let running = Arc::new(Running::new());
    loop {
        // With an idle timeout, look at the time at least every second.
        stream.set_read_deadline(idle.map(|_| Instant::now() + Duration::from_secs(1)));
        match programs.next(&mut stream, &mut buf) {
            Ok(msg) if programs.start(&msg, &running) => {}
            Ok(Message::Ping) => send(&mut stream, &Message::Pong)?,
            // The caller closes the session (`Session::close`, or a
            // dropped session killing its shim).
            Ok(Message::Kill { .. } | Message::Detach) => break,
            Ok(other) => {
                say(format_args!("umbilical session: unexpected {other:?}; closing"));
                break;
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                if idle.is_some_and(|idle| running.idle_for().is_some_and(|d| d >= idle)) {
                    break;
                }
            }
            // The link closed: the caller dropped the session or is gone.
            Err(_) => break,
        }
    }
    let left = running.end_all(grace);
    if left > 0 {
        say(format_args!("umbilical session: {left} program(s) did not end after SIGKILL"));
    }
    let _ = send(&mut stream, &Message::Exited { status: WireStatus::Exited(0) });
    Ok(0)
}
