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
    HELLO_TIMEOUT, Handshake, Link, STEP_TIMEOUT, check_cwd, finish_connect, link_error, read_request, recv,
    report_spawn_failure, send, supervise, timed_out,
};
use crate::error::{Error, ErrorKind};
use crate::exit::ExitStatus;
use crate::protocol::{Message, WireStderr};
use crate::sys::{self, Direction};

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

pub(super) fn serve(path: &Path) -> io::Result<i32> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut stream = sys::ControlPipe::connect(path, deadline)?;
    // No token: the parent authenticates us by our pid, which it knows
    // from the handle it got when it started us, and no one but the parent
    // can hold the one-instance pipe we connected to.
    send(&mut stream, &Message::Hello { shim_pid: std::process::id(), token: Vec::new() })?;
    stream.set_read_deadline(Some(Instant::now() + STEP_TIMEOUT));
    let mut buf = Vec::new();
    let Message::Welcome { .. } = recv(&mut stream, &mut buf)? else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "expected a welcome"));
    };
    let requested = read_request(&mut stream, &mut buf)?;
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
    let request = sys::Request {
        program: &spec.program,
        args: &spec.args,
        env_clear: spec.env_clear,
        env: &spec.env,
        cwd: cwd.as_deref(),
        stdin: &stdin,
        stdout: &stdout,
        stderr: match (&stderr, &stderr_pipe) {
            (_, Some(pipe)) => sys::StderrTarget::To(pipe),
            (WireStderr::Merge, None) => sys::StderrTarget::To(&stdout),
            (WireStderr::Null, None) => sys::StderrTarget::Null,
            _ => sys::StderrTarget::Inherit,
        },
        lifeline: None,
        force_fork: false,
        process_group: false,
        no_window: false,
        kill_on_close_job: false,
    };
    let process = match sys::spawn(&request) {
        Ok(p) => p,
        Err(e) => return report_spawn_failure(&mut stream, e),
    };
    // Only the program holds the channel now: its exit ends the parent's
    // reads.
    drop((stdin, stdout, stderr_pipe));
    supervise(stream, buf, process, requested.grace)
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
pub(crate) fn connect(
    rendezvous: &mut sys::Rendezvous,
    mut hs: Handshake<'_>,
    shim_pid: u32,
    mut shim_done: impl FnMut() -> Option<ExitStatus>,
    stdio: &ShimStdio,
) -> Result<Link, Error> {
    let launcher = hs.launcher;
    let deadline = hs.deadline;
    let mut refused = 0;
    let mut ended = None;
    let stream = rendezvous
        .accept_from(
            shim_pid,
            deadline,
            || {
                ended = shim_done();
                ended.is_some()
            },
            &mut refused,
        )
        .map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => timed_out(launcher, "the shim did not connect"),
            _ => link_error(launcher, "waiting for the shim")(e),
        })?;
    let Some(mut stream) = stream else {
        let status = ended.map_or_else(|| "ended".to_string(), |s| format!("{s:?}"));
        return Err(Error::new(
            ErrorKind::ShimFailed,
            format!("the shim started through {launcher} ended ({status}) before it connected"),
            None,
        ));
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
    hs.extra = Some(stdio.names(default_cwd.as_deref()));
    finish_connect(stream, buf, hs, opened)
}

/// The control stream.
pub(super) type Control = sys::ControlPipe;

pub(super) fn set_read_deadline(stream: &mut Control, deadline: Option<Instant>) {
    stream.set_read_deadline(deadline);
}

pub(super) fn close(stream: Control) {
    drop(stream);
}

/// `DisconnectNamedPipe` discards what the shim has not read yet.
pub(super) const SHUTDOWN_DISCARDS_UNREAD: bool = true;

/// Ends the stream for every holder (the link thread holds a clone): the
/// shim sees the caller go.
pub(super) fn shutdown(stream: &Control) {
    stream.disconnect();
}

/// Our own handle on the program: opened with `SYNCHRONIZE |
/// PROCESS_QUERY_LIMITED_INFORMATION`, enough to wait, not to terminate.
pub(super) type Own = sys::Process;

pub(super) fn open_own(pid: u32) -> Option<Own> {
    sys::Process::open(pid)
}

pub(super) fn wait_own(own: &Own) {
    let _ = own.wait();
}

pub(super) fn kill_own(own: &Own, _signal: i32) -> io::Result<()> {
    own.kill()
}

/// The shim's side of a kill request: `TerminateProcess`, exit code 1.
pub(super) fn kill_program(process: &sys::Process, _signal: i32) -> io::Result<()> {
    process.kill()
}
