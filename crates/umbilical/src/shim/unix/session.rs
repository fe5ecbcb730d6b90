//! A session's Unix side (see `shim/session.rs`): each program's control
//! stream is one end of a fresh socket pair, sent over the session's link
//! with the program's stdin, stdout and stderr ([`Message::SessionSpawn`],
//! `SCM_RIGHTS`). The session's shim hands the four to a thread that acts
//! exactly as a program's own shim. The link is a connected socket and
//! nothing else: once open, nothing can reach the session but its caller.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{recv_with_fds, send_with_stdio};
use crate::channel::Channel;
use crate::child::{Child, ChildStderr, HeldStdio};
use crate::error::{Error, ErrorKind};
use crate::options::{Options, Stderr};
use crate::protocol::Message;
use crate::shim::running::Running;
use crate::shim::{Handshake, STEP_TIMEOUT, check_cwd, finish_connect, read_request, start_program, supervise};
use crate::spec::ProgramSpec;
use crate::sys;

/// Starts a program in the session whose link `sender` writes to: a
/// socket pair for its control stream, one end sent over the link with the
/// program's stdio; then the handshake on the other end, as with a shim of
/// its own.
pub(in crate::shim) fn start(
    sender: &Mutex<sys::ControlStream>,
    _shim_pid: u32,
    launcher: &str,
    spec: &ProgramSpec,
    opts: &Options,
) -> Result<Child, Error> {
    let fail = |kind, what: &str, source: Option<io::Error>| Error::cannot_start(&spec.program, kind, what, source);
    let io_fail = |what: &'static str| move |e: io::Error| fail(ErrorKind::Io, &format!("{what}: {e}"), Some(e));
    let (local, remote) = UnixStream::pair().map_err(io_fail("cannot make the program's control stream"))?;
    let (channel, end) = Channel::pair(opts.kind).map_err(io_fail("cannot make the channel"))?;
    let (stderr, pipe) = match opts.stderr {
        Stderr::Piped => {
            let (read, write) = sys::inbound_pipe().map_err(io_fail("cannot make the stderr pipe"))?;
            (Some(ChildStderr::new(read)), Some(write))
        }
        _ => (None, None),
    };
    let held = HeldStdio { channel: end, stderr: pipe, mode: opts.stderr };
    let sent = {
        let sender = sender.lock().unwrap_or_else(|e| e.into_inner());
        send_with_stdio(&sender, &Message::SessionSpawn, &held, Some(remote.as_fd()))
    };
    // Our copies of the program's ends close now: the session's shim holds
    // its own.
    drop((remote, held));
    sent.map_err(|e| fail(ErrorKind::SessionClosed, &format!("the session's link failed: {e}"), Some(e)))?;
    let handshake = Handshake {
        launcher,
        deadline: Instant::now() + opts.connect_timeout,
        request: crate::shim::request(spec, opts.process_group, opts.caller_gone_grace),
        extra: None,
        remote: false,
    };
    let stream = sys::ControlStream::from_std(local);
    let mut link =
        finish_connect(stream, Vec::new(), handshake, |_| Ok(())).map_err(|e| fail(e.kind(), &e.to_string(), None))?;
    link.start_reader()
        .map_err(|e| fail(ErrorKind::ShimFailed, &format!("cannot start reading the link: {e}"), Some(e)))?;
    Ok(Child::of_session(link, channel, stderr, opts.kill_on_drop).with_wait_delay(opts.wait_delay))
}

/// The shim's side on Unix: each program arrives as a
/// [`Message::SessionSpawn`] with its four descriptors.
pub(in crate::shim) struct Programs {
    /// Descriptors received and not yet handed to a program.
    fds: Vec<OwnedFd>,
}

impl Programs {
    pub(in crate::shim) fn new() -> Programs {
        Programs { fds: Vec::new() }
    }
}

impl crate::shim::session::Programs for Programs {
    /// Read as every message of the session is, keeping descriptors: a
    /// plain read could take a program's request with the message before
    /// it, and the kernel would drop its descriptors.
    fn next(&mut self, stream: &mut sys::ControlStream, buf: &mut Vec<u8>) -> io::Result<Message> {
        recv_with_fds(stream, buf, &mut self.fds)
    }

    fn start(&mut self, msg: &Message, running: &Arc<Running>) -> bool {
        if !matches!(msg, Message::SessionSpawn) {
            return false;
        }
        // The caller's side sends four or fails: with fewer, what came is
        // closed, which fails that program's handshake, not the session.
        if self.fds.len() < 4 {
            self.fds.clear();
            return true;
        }
        let mut four = self.fds.drain(..4);
        if let (Some(control), Some(stdin), Some(stdout), Some(stderr)) =
            (four.next(), four.next(), four.next(), four.next())
        {
            serve_program(control, stdin, stdout, stderr, running.clone());
        }
        true
    }
}

/// Starts serving one program on a thread of its own: its control stream
/// and stdio came over the session's link.
fn serve_program(control: OwnedFd, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd, running: Arc<Running>) {
    let serve = move || {
        if let Err(e) = program(control, stdin, stdout, stderr, &running) {
            crate::shim::say(format_args!("umbilical session: a program's link: {e}"));
        }
    };
    // Without a thread the descriptors close with the closure: the
    // caller's handshake fails, the session goes on.
    if let Err(e) =
        std::thread::Builder::new().name("umbilical-session-program".into()).stack_size(128 * 1024).spawn(serve)
    {
        crate::shim::say(format_args!("umbilical session: no thread for a program: {e}"));
    }
}

/// One program, as a program's own shim serves it after the handshake.
fn program(control: OwnedFd, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd, running: &Running) -> io::Result<()> {
    let mut stream = sys::ControlStream::from_std(UnixStream::from(control));
    stream.set_read_deadline(Some(Instant::now() + STEP_TIMEOUT));
    let mut buf = Vec::new();
    let requested = read_request(&mut stream, &mut buf)?;
    stream.set_read_deadline(None);
    let spec = &requested.spec;
    if check_cwd(&mut stream, spec.cwd.as_deref())?.is_some() {
        return Ok(());
    }
    let target = sys::StderrTarget::To(&stderr);
    let Ok(process) = start_program(&mut stream, &requested, spec, &stdin, &stdout, target)? else { return Ok(()) };
    drop((stdin, stdout, stderr));
    supervise(stream, buf, process, requested.grace, Some(running)).map(drop)
}
