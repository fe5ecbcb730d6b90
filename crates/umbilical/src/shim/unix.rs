//! The shim on Unix: the channel arrives as the shim's own stdin/stdout
//! through the launcher; the rendezvous is a Unix socket (see
//! `sys::unix::rendezvous`).
//!
//! The handshake, after the parent accepted a connection whose peer
//! descends from the launcher:
//! 1. the parent writes a fresh 32-byte token into the channel (once);
//! 2. the shim reads it from its stdin and sends the first half in its
//!    hello: only the holder of the program's end could have read it;
//! 3. the parent answers with the second half: only the writer of the
//!    channel knows it, so the shim trusts no request from anyone else.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{
    HELLO_TIMEOUT, Handshake, Link, PROOF_LEN, STEP_TIMEOUT, TOKEN_LEN, check_cwd, finish_connect, link_error,
    read_request, recv, report_spawn_failure, same_secret, send, supervise, timed_out,
};
use crate::child::Child;
use crate::error::{Error, ErrorKind};
use crate::exit::ExitStatus;
use crate::protocol::Message;
use crate::sys;

pub(super) fn to_wire(s: &OsStr) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub(super) fn from_wire(b: &[u8]) -> io::Result<OsString> {
    Ok(OsString::from_vec(b.to_vec()))
}

pub(super) fn serve(path: &Path) -> io::Result<i32> {
    let mut stream = UnixStream::connect(path)?;
    // Once connected the path is no longer needed. Through ssh it is a
    // socket that sshd made on this host, and nothing else would remove it
    // (the parent removes its own).
    let _ = std::fs::remove_file(path);
    // The token is the first thing on the channel once the parent accepted
    // us. Read exactly that much, unbuffered: everything after it belongs
    // to the program (std's Stdin would read ahead into its buffer).
    let stdin = io::stdin().as_fd().try_clone_to_owned()?;
    let mut token = [0u8; TOKEN_LEN];
    sys::read_exact_until(&stdin, &mut token, Instant::now() + STEP_TIMEOUT)?;
    send(&mut stream, &Message::Hello { shim_pid: std::process::id(), token: token[..PROOF_LEN].to_vec() })?;
    stream.set_read_timeout(Some(STEP_TIMEOUT))?;
    let mut buf = Vec::new();
    match recv(&mut stream, &mut buf)? {
        Message::Welcome { token: proof } if same_secret(&proof, &token[PROOF_LEN..]) => {}
        Message::Welcome { .. } => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the peer at the rendezvous did not prove it is the caller (wrong token); nothing was started",
            ));
        }
        other => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected a welcome, got {other:?}"))),
    }
    let requested = read_request(&mut stream, &mut buf)?;
    stream.set_read_timeout(None)?;
    let spec = &requested.spec;
    if let Some(code) = check_cwd(&mut stream, spec.cwd.as_deref())? {
        return Ok(code);
    }
    // The channel arrived as our own stdin/stdout, through the launcher.
    let stdout = io::stdout().as_fd().try_clone_to_owned()?;
    let request = sys::Request {
        program: &spec.program,
        args: &spec.args,
        env_clear: spec.env_clear,
        env: &spec.env,
        cwd: spec.cwd.as_deref(),
        stdin: &stdin,
        stdout: &stdout,
        stderr: sys::StderrTarget::Inherit,
        lifeline: None,
        force_fork: false,
        process_group: requested.process_group,
        no_window: false,
        kill_on_close_job: false,
    };
    let process = match sys::spawn(&request) {
        Ok(p) => p,
        Err(e) => return report_spawn_failure(&mut stream, e),
    };
    drop((stdin, stdout));
    supervise(stream, buf, process, requested.grace)
}

/// The parent's side up to `spawned`: waits for the shim, authenticates it
/// (it descends from the launcher, unless the launcher detaches, which cuts
/// the ancestry; it sends back the token's first half), proves itself with
/// the second half, and sends the request. While waiting, the launcher's
/// end (then it refused, or the shim failed to start) ends the wait.
pub(crate) fn connect(
    rendezvous: &sys::Rendezvous,
    hs: Handshake<'_>,
    launcher_pid: u32,
    detaches: bool,
    child: &mut Child,
    shim: &Path,
) -> Result<Link, Error> {
    let launcher = hs.launcher;
    let token = sys::random_token::<TOKEN_LEN>()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot make the shim's token: {e}"), Some(e)))?;
    let mut token_sent = false;
    let mut refused = 0;
    let (stream, buf) = loop {
        let mut ended = None;
        let candidate = rendezvous
            .accept_from(
                if detaches { None } else { Some(launcher_pid) },
                hs.deadline,
                || {
                    // A detaching launcher ends at once: that is no refusal.
                    ended = if detaches { None } else { child.try_wait().ok().flatten().map(|e| e.status) };
                    ended.is_some()
                },
                &mut refused,
            )
            .map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut => timed_out(launcher, "the shim did not connect"),
                _ => link_error(launcher, "waiting for the shim")(e),
            })?;
        let Some(mut stream) = candidate else {
            let status = ended.map_or_else(|| "ended".to_string(), |s| format!("{s:?}"));
            // 126/127 from the far host's shell: the command could not
            // run, likely the shim itself (a local launcher's shim was
            // checked, and pkexec says 127 for an unknown user too).
            let hint = match ended {
                Some(ExitStatus::Exited(126 | 127)) if hs.remote => format!(
                    "; the shim {} may be missing or not executable there (--shim-path names it; --no-shim does without)",
                    shim.display()
                ),
                _ => String::new(),
            };
            return Err(Error::new(
                ErrorKind::LauncherRefused,
                format!(
                    "{launcher} ended ({status}) before the shim connected: refused (authentication, policy or unknown user), or the shim could not start{hint}"
                ),
                None,
            ));
        };
        // The token goes into the channel once, for the first peer that
        // passed the ancestry check: only the holder of the program's end
        // can read it. A stranger that got here first gets nothing from it,
        // and the real shim still finds the one copy.
        if !token_sent {
            token_sent = true;
            if let Some(channel) = child.channel() {
                let _ = channel.write_all(&token);
            }
        }
        let left = hs.deadline.saturating_duration_since(Instant::now());
        stream.set_read_timeout(Some(HELLO_TIMEOUT.min(left).max(Duration::from_millis(1)))).ok();
        let mut buf = Vec::new();
        match recv(&mut stream, &mut buf) {
            Ok(Message::Hello { token: t, .. }) if same_secret(&t, &token[..PROOF_LEN]) => break (stream, buf),
            Ok(Message::Hello { .. }) => refused += 1,
            Ok(other) => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("{launcher}: expected hello, got {other:?}"),
                    None,
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(link_error(launcher, "reading the shim's hello")(e));
            }
            Err(_) => refused += 1,
        }
    };
    let mut stream = stream;
    send(&mut stream, &Message::Welcome { token: token[PROOF_LEN..].to_vec() })
        .map_err(link_error(launcher, "answering the shim's hello"))?;
    finish_connect(stream, buf, hs, |_| Ok(()))
}

/// The control stream.
pub(super) type Control = UnixStream;

pub(super) fn set_read_deadline(stream: &mut UnixStream, deadline: Option<Instant>) {
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    let _ = stream.set_read_timeout(timeout);
}

pub(super) fn close(stream: UnixStream) {
    shutdown(&stream);
}

/// `shutdown` keeps what the peer has not read yet.
pub(super) const SHUTDOWN_DISCARDS_UNREAD: bool = false;

/// Ends the stream for every holder (the link thread holds a clone).
pub(super) fn shutdown(stream: &UnixStream) {
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Our own handle on the program: a pidfd on Linux; nothing elsewhere
/// (kqueue can watch a pid but not hold it against reuse).
#[cfg(target_os = "linux")]
pub(super) type Own = std::os::fd::OwnedFd;
#[cfg(not(target_os = "linux"))]
pub(super) type Own = std::convert::Infallible;

#[cfg(target_os = "linux")]
pub(super) fn open_own(pid: u32) -> Option<Own> {
    let pid = rustix::process::Pid::from_raw(pid as i32)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn open_own(_pid: u32) -> Option<Own> {
    None
}

#[cfg(target_os = "linux")]
pub(super) fn wait_own(own: &Own) {
    use std::os::fd::AsFd;
    let _ = sys::wait_readable(own.as_fd());
}

#[cfg(not(target_os = "linux"))]
pub(super) fn wait_own(own: &Own) {
    match *own {}
}

#[cfg(target_os = "linux")]
pub(super) fn kill_own(own: &Own, signal: i32) -> io::Result<()> {
    let sig = rustix::process::Signal::from_named_raw(signal)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("unknown signal {signal}")))?;
    rustix::process::pidfd_send_signal(own, sig).map_err(Into::into)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn kill_own(own: &Own, _signal: i32) -> io::Result<()> {
    match *own {}
}

/// The shim's side of a kill request.
pub(super) fn kill_program(process: &sys::Process, signal: i32) -> io::Result<()> {
    process.signal_raw(signal)
}
