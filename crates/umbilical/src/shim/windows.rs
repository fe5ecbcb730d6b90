//! The shim on Windows: the channel's pipes are opened by name (their
//! names travel over the authenticated control stream, never on a command
//! line); the rendezvous is a named pipe whose client must be the process
//! the parent started (see `sys::windows::rendezvous`).
//!
//! Strings travel as UTF-16LE bytes, so any `OsString` (unpaired
//! surrogates included) survives the trip.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::OwnedHandle;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{
    Accepted, HELLO_TIMEOUT, Handshake, STEP_TIMEOUT, accept, check_cwd, finish_connect, link_error,
    report_spawn_failure, request_from, start_program, supervise,
};

/// A session's Windows side: each program connects back on a rendezvous
/// of its own.
#[path = "windows/session.rs"]
pub(super) mod session;
use crate::channel::Channel;
use crate::child::{Child, ChildStderr};
use crate::error::{Error, ErrorKind};
use crate::exit::{Detection, ExitStatus};
use crate::launcher::ShimRoute;
use crate::link::Link;
use crate::link::Signs;
use crate::options::{Options, Stderr};
use crate::protocol::{Message, WireStderr, recv, send};
use crate::spec::ProgramSpec;
use crate::sys::{self, Direction, StderrTarget};

pub(super) fn to_wire(s: &OsStr) -> Vec<u8> {
    s.encode_wide().flat_map(u16::to_le_bytes).collect()
}

pub(super) fn from_wire(b: &[u8]) -> io::Result<OsString> {
    if b.len() % 2 != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a UTF-16 string of odd length"));
    }
    let wide: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    Ok(OsString::from_wide(&wide))
}

fn wide_name(b: &[u8]) -> io::Result<Vec<u16>> {
    Ok(from_wire(b)?.encode_wide().chain(Some(0)).collect())
}

/// `_stdio_from_link` is Unix's (su); never set on Windows.
/// No in-band link on Windows, so no bridge: the shim goes on as if the
/// flag were not there.
pub(super) fn bridge(_path: &Path, _remove: Option<&Path>, _owner: Option<&OsStr>) -> Option<i32> {
    None
}

pub(super) fn serve(path: &Path, _stdio_from_link: bool) -> io::Result<i32> {
    let (mut stream, mut buf) = connect_and_hello(path)?;
    match recv(&mut stream, &mut buf)? {
        // A session: each program comes with a rendezvous of its own.
        Message::SessionOpen { idle_ms, grace_ms } => {
            super::session::serve(stream, buf, idle_ms, grace_ms, session::Programs)
        }
        msg => serve_request(stream, buf, request_from(msg)?, None),
    }
}

/// Connects to the rendezvous at `path` and says hello; the stream once
/// the parent welcomed us, and what was read of it.
fn connect_and_hello(path: &Path) -> io::Result<(sys::ControlStream, Vec<u8>)> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut stream = sys::ControlStream::connect(path, deadline)?;
    // No token: the parent authenticates us by our pid, which it knows
    // from the handle it got when it started us, and no one but the parent
    // can hold the one-instance pipe we connected to.
    send(&mut stream, &Message::Hello { shim_pid: std::process::id(), token: Vec::new() })?;
    stream.set_read_deadline(Some(Instant::now() + STEP_TIMEOUT));
    let mut buf = Vec::new();
    let Message::Welcome { .. } = recv(&mut stream, &mut buf)? else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "expected a welcome"));
    };
    Ok((stream, buf))
}

/// Serves `requested` as the program's shim: the pipe names, the pipes
/// opened, the program started and supervised (counted in `session` when
/// it is a session's).
fn serve_request(
    mut stream: sys::ControlStream,
    mut buf: Vec<u8>,
    requested: super::Requested,
    session: Option<&super::running::Running>,
) -> io::Result<i32> {
    let Message::Stdio { stdin, stdout, stderr, default_cwd } = recv(&mut stream, &mut buf)? else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "expected the pipe names"));
    };
    stream.set_read_deadline(None);
    let spec = &requested.spec;
    let mut cwd = spec.cwd.clone();
    if cwd.is_none()
        && let Some(dir) = default_cwd.map(|c| from_wire(&c).map(PathBuf::from)).transpose()?
        && dir.is_dir()
    {
        cwd = Some(dir);
    }
    if let Some(code) = check_cwd(&mut stream, cwd.as_deref())? {
        return Ok(code);
    }
    let open = |name: &[u8], direction| -> Result<OwnedHandle, sys::SpawnError> {
        wide_name(name).and_then(|n| sys::open_client(&n, direction)).map_err(|e| {
            sys::SpawnError::new(ErrorKind::Io, format!("the shim cannot open the channel's pipe: {e}"), Some(e))
        })
    };
    let opened = (|| {
        let stdin = open(&stdin, Direction::Outbound)?;
        let stdout = open(&stdout, Direction::Inbound)?;
        let stderr = match &stderr {
            WireStderr::Pipe(name) => Some(open(name, Direction::Inbound)?),
            _ => None,
        };
        Ok((stdin, stdout, stderr))
    })();
    let (stdin, stdout, stderr_pipe) = match opened {
        Ok(handles) => handles,
        Err(e) => return report_spawn_failure(&mut stream, e),
    };
    let program = crate::spec::ProgramSpec { cwd, ..spec.clone() };
    let stderr_target = match (&stderr, &stderr_pipe) {
        (_, Some(pipe)) => sys::StderrTarget::To(pipe),
        (WireStderr::Merge, None) => sys::StderrTarget::To(&stdout),
        (WireStderr::Null, None) => sys::StderrTarget::Null,
        _ => sys::StderrTarget::Inherit,
    };
    let process = match start_program(&mut stream, &requested, &program, &stdin, &stdout, stderr_target)? {
        Ok(process) => process,
        Err(code) => return Ok(code),
    };
    // Only the program holds the channel now: its exit ends the parent's
    // reads.
    drop((stdin, stdout, stderr_pipe));
    supervise(stream, buf, process, requested.grace, session)
}

/// The parent's ends of the pipes the shim opens by name.
pub(crate) struct ShimStdio {
    /// The parent's write end (the program's stdin), and its name.
    pub(crate) stdin: (Vec<u16>, OwnedHandle),
    /// The parent's read end (the program's stdout), and its name.
    pub(crate) stdout: (Vec<u16>, OwnedHandle),
    /// Where the program's stderr goes; `Pipe` names `stderr_pipe`.
    pub(crate) stderr: WireStderr,
    pub(crate) stderr_pipe: Option<(Vec<u16>, OwnedHandle)>,
}

impl ShimStdio {
    fn names(&self, default_cwd: Option<&Path>) -> Message {
        let wire = |n: &[u16]| n.iter().take_while(|&&c| c != 0).flat_map(|c| c.to_le_bytes()).collect::<Vec<u8>>();
        let stderr = match (&self.stderr, &self.stderr_pipe) {
            (_, Some((name, _))) => WireStderr::Pipe(wire(name)),
            (other, None) => other.clone(),
        };
        let default_cwd = default_cwd.map(|c| to_wire(c.as_os_str()));
        Message::Stdio { stdin: wire(&self.stdin.0), stdout: wire(&self.stdout.0), stderr, default_cwd }
    }
}

/// The parent's side up to `spawned`: waits for the client whose pid is
/// `shim_pid`, sends the request and the pipe names, and checks that the
/// shim itself opened every pipe.
pub(super) fn connect(
    rendezvous: &mut sys::Rendezvous,
    mut hs: Handshake<'_>,
    shim_pid: u32,
    mut shim_done: impl FnMut() -> Option<ExitStatus>,
    stdio: Option<&ShimStdio>,
) -> Result<Link, Error> {
    let launcher = hs.launcher;
    let deadline = hs.deadline;
    let mut refused = 0;
    let mut stream = match accept(rendezvous, &hs, Some(shim_pid), &mut shim_done, &mut refused)? {
        Accepted::Peer(stream) => stream,
        Accepted::Ended(ended) => {
            let status = ended.map_or_else(|| "ended".to_string(), |s| format!("{s:?}"));
            return Err(Error::new(
                ErrorKind::ShimFailed,
                format!("the shim started through {launcher} ended ({status}) before it connected"),
                None,
            ));
        }
    };
    stream.set_read_deadline(Some(Instant::now() + HELLO_TIMEOUT));
    let mut buf = Vec::new();
    match recv(&mut stream, &mut buf) {
        Ok(Message::Hello { .. }) => {}
        Ok(other) => {
            return Err(Error::new(ErrorKind::Protocol, format!("{launcher}: expected hello, got {other:?}"), None));
        }
        Err(e) => return Err(link_error(launcher, "reading the shim's hello")(e)),
    }
    send(&mut stream, &Message::Welcome { token: Vec::new() })
        .map_err(link_error(launcher, "answering the shim's hello"))?;
    // The shim opened the pipes before it reported the spawn; each must
    // have been opened by the shim and nobody else.
    let opened = |_program_pid| {
        let Some(stdio) = stdio else { return Ok(()) };
        let mut ends = vec![&stdio.stdin.1, &stdio.stdout.1];
        ends.extend(stdio.stderr_pipe.as_ref().map(|(_, h)| h));
        for end in ends {
            sys::accept_client(end, shim_pid, deadline).map_err(|e| {
                Error::new(ErrorKind::ShimFailed, format!("{launcher}: the channel's pipe: {e}"), Some(e))
            })?;
        }
        Ok(())
    };
    // Without a working directory of its own, the program runs where the
    // caller is, if the shim can see that directory.
    let has_cwd = matches!(&hs.request, Message::SpawnRequest { cwd: Some(_), .. });
    let default_cwd = if has_cwd { None } else { std::env::current_dir().ok() };
    hs.extra = stdio.map(|stdio| stdio.names(default_cwd.as_deref()));
    finish_connect(stream, buf, hs, opened)
}

pub(super) fn spawn(spec: &ProgramSpec, opts: &Options) -> Result<Child, Error> {
    let launcher = opts.launcher.name();
    let fail = |kind: ErrorKind, what: String, source: Option<io::Error>| {
        Error::cannot_start(&spec.program, kind, &what, source)
    };
    let elevated = match opts.launcher.capabilities().shim_route {
        ShimRoute::Elevation => true,
        _ if opts.launcher.is_direct() => false,
        _ => {
            let what = format!("on Windows the shim runs directly or through runas, not through {launcher}");
            return Err(fail(ErrorKind::InvalidInput, what, None));
        }
    };
    let deadline = Instant::now() + opts.connect_timeout;
    let shim_path = opts.shim_program()?;
    let io_fail = |what: &'static str| move |e: io::Error| fail(ErrorKind::Io, what.into(), Some(e));
    let mut rendezvous = sys::Rendezvous::create(None).map_err(io_fail("cannot create the rendezvous"))?;
    // A session's shim gets no stdio of its own: its programs get theirs.
    let (stdio, relay) = match opts.session_open {
        Some(_) => (None, false),
        None => {
            let (stdio, relay) = ShimStdio::new(opts.stderr, elevated).map_err(io_fail("cannot create the channel"))?;
            (Some(stdio), relay)
        }
    };
    let process = start_shim(spec, opts, &shim_path, &rendezvous.path(), elevated)?;
    let shim_pid = process.pid();
    let handshake = Handshake {
        launcher: &launcher,
        deadline,
        request: match opts.session_open {
            Some((idle, grace)) => {
                Message::SessionOpen { idle_ms: millis(idle.unwrap_or_default()), grace_ms: millis(grace) }
            }
            None => super::request(spec, opts.process_group, opts.caller_gone_grace),
        },
        extra: None,
        remote: false,
    };
    let link = connect(&mut rendezvous, handshake, shim_pid, || process.try_wait().ok().flatten(), stdio.as_ref());
    drop(rendezvous);
    let link = match link {
        Ok(link) => link,
        Err(e) => {
            super::stop_failed_launcher(&process, e.kind() == ErrorKind::TimedOut);
            return Err(fail(e.kind(), e.to_string(), None));
        }
    };
    let report_ready = process.exit_handle();
    let Some(stdio) = stdio else {
        // A session's shim: a child with no channel, for its end.
        let link = link.with(Signs { report_ready, ..Signs::default() });
        return Ok(Child::of_session_shim(process, link).with_shim_origin(shim_path.display().to_string()));
    };
    let (channel, stderr, drained) = stdio.into_parent_ends(relay);
    let link = link.with(Signs { report_ready, stderr_drained: drained, ..Signs::default() });
    Ok(Child::new(process, channel, stderr, Detection::Process, None, None)
        .into_shim(link, opts.kill_on_drop)
        .with_shim_origin(shim_path.display().to_string()))
}

/// A duration on the wire: whole milliseconds, saturated.
fn millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl ShimStdio {
    /// The channel's pipes, and the stderr pipe where one is needed. An
    /// elevated shim inherits nothing, not even our stderr: with `Inherit`
    /// the program's stderr comes back through a pipe, copied to ours on
    /// the thread pool (`sys::relay_to_stderr`); the second value says so.
    pub(crate) fn new(mode: Stderr, elevated: bool) -> io::Result<(ShimStdio, bool)> {
        let stdin = sys::pipe_server(Direction::Outbound)?;
        let stdout = sys::pipe_server(Direction::Inbound)?;
        let relay = elevated && mode == Stderr::Inherit;
        let (stderr, stderr_pipe) = match mode {
            Stderr::Piped => (WireStderr::Inherit, Some(Direction::Inbound)),
            Stderr::Inherit if relay => (WireStderr::Inherit, Some(Direction::Inbound)),
            Stderr::Inherit => (WireStderr::Inherit, None),
            Stderr::Null => (WireStderr::Null, None),
            Stderr::Merge => (WireStderr::Merge, None),
        };
        let stderr_pipe = stderr_pipe.map(sys::pipe_server).transpose()?;
        Ok((ShimStdio { stdin, stdout, stderr, stderr_pipe }, relay))
    }

    /// Our ends once the shim opened its own: the channel, the stderr to
    /// read (`Piped`), and with `relay` the sign that the relay of the
    /// program's stderr to ours is done.
    pub(crate) fn into_parent_ends(self, relay: bool) -> (Channel, Option<ChildStderr>, Option<sys::Handle>) {
        let ShimStdio { stdin, stdout, stderr_pipe, .. } = self;
        let channel = Channel::from_pipe_ends(stdout.1, stdin.1);
        let mut drained = None;
        let stderr = match stderr_pipe {
            Some((_, pipe)) if relay => {
                // On the thread pool; a thread of its own only if the pool
                // refuses the pipe. Either ends when the program and the shim
                // have closed it.
                match sys::relay_to_stderr(pipe) {
                    Ok(done) => drained = Some(done),
                    Err((e, pipe)) => {
                        tracing::debug!(error = %e, "the thread pool refused the stderr relay; a thread copies it");
                        let mut from = ChildStderr::new(pipe);
                        let _ = std::thread::Builder::new()
                            .name("umbilical-stderr-relay".into())
                            .stack_size(64 * 1024)
                            .spawn(move || {
                                let _ = io::copy(&mut from, &mut io::stderr());
                            });
                    }
                }
                None
            }
            Some((_, pipe)) => Some(ChildStderr::new(pipe)),
            None => None,
        };
        (channel, stderr, drained)
    }
}

/// Starts the shim, directly (its stdio on NUL) or elevated through
/// `ShellExecuteExW` "runas", told where the rendezvous is.
fn start_shim(
    spec: &ProgramSpec,
    opts: &Options,
    shim_path: &Path,
    rendezvous: &Path,
    elevated: bool,
) -> Result<sys::Process, Error> {
    let fail = |kind: ErrorKind, what: String, source: Option<io::Error>| {
        Error::cannot_start(&spec.program, kind, &what, source)
    };
    let io_fail = |what: &'static str| move |e: io::Error| fail(ErrorKind::Io, what.into(), Some(e));
    // The rendezvous name is not a secret (the shim's pid is the proof);
    // it has no spaces or quotes to escape.
    let mut params = OsString::from(super::SHIM_ARG);
    params.push(" ");
    params.push(super::RENDEZVOUS_FLAG);
    params.push(" ");
    params.push(rendezvous.as_os_str());
    if elevated {
        sys::run_elevated(shim_path.as_os_str(), &params).map_err(|e| match e {
            sys::ElevateError::Declined(e) => {
                fail(ErrorKind::LauncherRefused, "through runas: the elevation was declined".into(), Some(e))
            }
            sys::ElevateError::Failed(e) => {
                let what = format!("cannot start the shim {} elevated: {e}", shim_path.display());
                fail(ErrorKind::ShimFailed, what, Some(e))
            }
        })
    } else {
        let nul = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("NUL")
            .map_err(io_fail("cannot open NUL for the shim"))?;
        let nul = sys::Handle::from(nul);
        let shim_spec = ProgramSpec {
            program: shim_path.as_os_str().to_owned(),
            args: vec![super::SHIM_ARG.into(), super::RENDEZVOUS_FLAG.into(), rendezvous.as_os_str().to_owned()],
            ..ProgramSpec::default()
        };
        let request = sys::Request {
            spec: &shim_spec,
            stdin: &nul,
            stdout: &nul,
            stderr: match opts.stderr {
                Stderr::Null => StderrTarget::Null,
                _ => StderrTarget::Inherit,
            },
            lifeline: None,
            force_fork: false,
            process_group: false,
            no_window: opts.no_window,
            kill_on_close_job: opts.kill_on_close_job,
            kill_on_parent_death: false,
            terminal: None,
        };
        sys::spawn(&request).map_err(|e| {
            fail(ErrorKind::ShimFailed, format!("cannot start the shim {}: {}", shim_path.display(), e.what), e.source)
        })
    }
}
