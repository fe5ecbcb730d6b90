//! The shim on Unix: the channel arrives as the shim's own stdin/stdout
//! through the launcher; the rendezvous is a Unix socket (see
//! `sys::unix::rendezvous`).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    CONNECT_TIMEOUT, HELLO_TIMEOUT, Link, check_cwd, finish_connect, recv, report_spawn_failure, send, supervise,
};
use crate::error::{Error, ErrorKind};
use crate::exit::ExitStatus;
use crate::protocol::Message;
use crate::sys;

pub(super) fn serve(path: &Path) -> io::Result<i32> {
    // The parent's token is the first thing on the channel. Read exactly
    // that much, unbuffered: everything after it belongs to the program
    // (std's Stdin would read ahead into its buffer).
    let mut token = [0u8; TOKEN_LEN];
    let raw_stdin = std::fs::File::from(std::os::fd::AsFd::as_fd(&io::stdin()).try_clone_to_owned()?);
    (&raw_stdin).read_exact(&mut token)?;
    drop(raw_stdin);
    let mut stream = UnixStream::connect(path)?;
    // Once connected the path is no longer needed. Through ssh it is a
    // socket that sshd made on this host, and nothing else would remove it
    // (the parent's own directory it removes itself).
    let _ = std::fs::remove_file(path);
    send(&mut stream, &Message::Hello { shim_pid: std::process::id(), token: token.to_vec() })?;
    let mut buf = Vec::new();
    let Message::SpawnRequest { program, args, env_clear, env, cwd, process_group } = recv(&mut stream, &mut buf)?
    else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "expected a spawn request"));
    };
    let os = |b: Vec<u8>| OsString::from_vec(b);
    let program = os(program);
    let args: Vec<OsString> = args.into_iter().map(os).collect();
    let env: std::collections::BTreeMap<OsString, Option<OsString>> =
        env.into_iter().map(|(k, v)| (os(k), v.map(os))).collect();
    let cwd = cwd.map(|c| PathBuf::from(os(c)));
    // The channel arrived as our own stdin/stdout, through the launcher.
    let stdin = std::os::fd::AsFd::as_fd(&io::stdin()).try_clone_to_owned()?;
    let stdout = std::os::fd::AsFd::as_fd(&io::stdout()).try_clone_to_owned()?;
    let request = sys::Request {
        program: &program,
        args: &args,
        env_clear,
        env: &env,
        cwd: cwd.as_deref(),
        stdin: &stdin,
        stdout: &stdout,
        stderr: sys::StderrTarget::Inherit,
        lifeline: None,
        force_fork: false,
        process_group,
        no_window: false,
        kill_on_close_job: false,
    };
    if let Some(code) = check_cwd(&mut stream, cwd.as_deref())? {
        return Ok(code);
    }
    let process = match sys::spawn(&request) {
        Ok(p) => p,
        Err(e) => return report_spawn_failure(&mut stream, e),
    };
    drop((stdin, stdout));
    supervise(stream, buf, process)
}

/// Bytes of the token the parent writes into the channel for the shim.
pub(crate) const TOKEN_LEN: usize = 16;

/// The parent's side up to `spawned`: waits for the shim, authenticates it,
/// sends the request. `launcher_done` reports the launcher's status if it
/// ended (then it refused, or the shim failed to start).
#[allow(clippy::too_many_arguments)]
pub(crate) fn connect(
    rendezvous: &sys::Rendezvous,
    launcher: &str,
    launcher_pid: u32,
    detaches: bool,
    remote: bool,
    token: &[u8],
    mut launcher_done: impl FnMut() -> Option<ExitStatus>,
    program: &OsStr,
    args: &[OsString],
    env_clear: bool,
    env: &std::collections::BTreeMap<OsString, Option<OsString>>,
    cwd: Option<&Path>,
    process_group: bool,
) -> Result<Link, Error> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut refused = 0;
    let io_err = |what: &str| {
        let what = format!("{launcher}: {what}");
        move |e: io::Error| {
            let kind = if e.kind() == io::ErrorKind::InvalidData { ErrorKind::Protocol } else { ErrorKind::ShimFailed };
            Error::new(kind, format!("{what}: {e}"), Some(e))
        }
    };
    // Accept until a peer proves itself: it descends from the launcher
    // (unless the launcher detaches, which cuts the ancestry) and it sends
    // back the token it could only have read from the program's end of the
    // channel. Anyone else is refused and waiting goes on.
    let (stream, buf) = loop {
        let mut ended = None;
        let candidate = rendezvous
            .accept_from(
                if detaches { None } else { Some(launcher_pid) },
                deadline,
                || {
                    // A detaching launcher ends at once: that is no refusal.
                    ended = if detaches { None } else { launcher_done() };
                    ended.is_some()
                },
                &mut refused,
            )
            .map_err(|e| {
                Error::new(ErrorKind::ShimFailed, format!("{launcher}: waiting for the shim: {e}"), Some(e))
            })?;
        let Some(mut stream) = candidate else {
            let status = ended.map_or_else(|| "ended".to_string(), |s| format!("{s:?}"));
            return Err(Error::new(
                ErrorKind::LauncherRefused,
                format!(
                    "{launcher} ended ({status}) before the shim connected: refused (authentication, policy or unknown user), or the shim could not start"
                ),
                None,
            ));
        };
        stream.set_read_timeout(Some(HELLO_TIMEOUT)).ok();
        let mut buf = Vec::new();
        match recv(&mut stream, &mut buf) {
            Ok(Message::Hello { token: t, .. }) if t == token => break (stream, buf),
            Ok(Message::Hello { .. }) => refused += 1,
            Ok(other) => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("{launcher}: expected hello, got {other:?}"),
                    None,
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(io_err("reading the shim's hello")(e)),
            Err(_) => refused += 1,
        }
    };
    let request = Message::SpawnRequest {
        program: program.as_bytes().to_vec(),
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env_clear,
        env: env.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|v| v.as_bytes().to_vec()))).collect(),
        cwd: cwd.map(|c| c.as_os_str().as_bytes().to_vec()),
        process_group,
    };
    finish_connect(stream, buf, launcher, deadline, request, None, |_| Ok(()), remote)
}

/// The control stream.
pub(super) type Control = UnixStream;

pub(super) fn set_read_deadline(stream: &mut UnixStream, deadline: Option<Instant>) {
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    let _ = stream.set_read_timeout(timeout);
}

pub(super) fn close(stream: UnixStream) {
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
