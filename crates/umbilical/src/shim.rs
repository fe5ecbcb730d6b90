//! The shim: a small helper started by the launcher instead of the program.
//!
//! It connects back to the parent's rendezvous, receives the program's
//! argv, environment and working directory over the control stream
//! (launchers reset the environment and may change directory), starts the
//! program with its own stdin/stdout — the channel, passed through the
//! launcher, so no byte is relayed — reports `spawned(pid)` or
//! `spawn_failed`, obeys `kill`, reports `exited(status)` and exits with the
//! program's code. Through it, a launcher's refusal is told apart from the
//! program's exit code, and the status is exact through any launcher.
//!
//! The shim is `umbilical shim --umbilical-rendezvous PATH` (the CLI), or
//! any binary of yours that calls [`run_if_invoked`] first thing in `main`.
//!
//! Unix only so far (Windows elevation through the shim is to come).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::exit::ExitStatus;
use crate::protocol::{self, Message, WireStatus};
use crate::sys;

/// The argument that marks a shim invocation.
pub const SHIM_ARG: &str = "shim";
/// The flag before the rendezvous path.
pub const RENDEZVOUS_FLAG: &str = "--umbilical-rendezvous";

/// If this process was started as a shim (`ARGV0 shim
/// --umbilical-rendezvous PATH`), serve and exit with the program's code;
/// otherwise return and let `main` go on.
///
/// ```no_run
/// // First thing in `main`:
/// umbilical::shim::run_if_invoked();
/// // ... the rest of your program
/// ```
pub fn run_if_invoked() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(SHIM_ARG))
        || args.next().as_deref() != Some(OsStr::new(RENDEZVOUS_FLAG))
    {
        return;
    }
    let Some(path) = args.next() else { return };
    std::process::exit(serve(Path::new(&path)));
}

/// Runs the shim's side against the rendezvous at `path`; returns the exit
/// code for the shim process (the program's, 128+N for signal N, 125 for
/// the shim's own failures, 126/127 when the program could not start).
pub fn serve(path: &Path) -> i32 {
    match serve_inner(path) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("umbilical shim: {e}");
            125
        }
    }
}

fn serve_inner(path: &Path) -> io::Result<i32> {
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
    let Message::SpawnRequest { program, args, env_clear, env, cwd } = recv(&mut stream, &mut buf)? else {
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
        no_window: false,
        kill_on_close_job: false,
    };
    if let Some(dir) = &cwd
        && !dir.is_dir()
    {
        let message = format!("working directory {} does not exist or is not a directory", dir.display());
        send(
            &mut stream,
            &Message::SpawnFailed { kind: protocol::kind_code(ErrorKind::InvalidInput), os_code: 0, message },
        )?;
        return Ok(125);
    }
    let process = match sys::spawn(&request) {
        Ok(p) => p,
        Err(e) => {
            let code = match e.kind {
                ErrorKind::NotFound => 127,
                ErrorKind::NotExecutable => 126,
                _ => 125,
            };
            let os_code = e.source.as_ref().and_then(io::Error::raw_os_error).unwrap_or(0);
            send(&mut stream, &Message::SpawnFailed { kind: protocol::kind_code(e.kind), os_code, message: e.what })?;
            return Ok(code);
        }
    };
    drop((stdin, stdout));
    send(&mut stream, &Message::Spawned { pid: process.pid() })?;
    // The program stays unreaped until the parent says it holds its own
    // handle: the pid it opened cannot have been reused.
    match recv(&mut stream, &mut buf) {
        Ok(Message::PidConfirmed) | Err(_) => {}
        Ok(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, "expected the pid confirmation")),
    }
    let process = std::sync::Arc::new(process);
    let killer = process.clone();
    let mut control = stream.try_clone()?;
    // Kill requests arrive while the program runs; the thread ends with
    // the stream. It takes over the bytes already read: a kill sent right
    // after the confirmation may have arrived with it.
    let mut pending = std::mem::take(&mut buf);
    std::thread::spawn(move || {
        while let Ok(msg) = recv(&mut control, &mut pending) {
            if let Message::Kill { signal } = msg {
                let _ = killer.signal_raw(signal);
            }
        }
    });
    let status = process.wait()?;
    let (wire, code) = match status {
        ExitStatus::Exited(c) => (WireStatus::Exited(c), c),
        ExitStatus::Signaled(s) => (WireStatus::Signaled(s), 128 + s),
        ExitStatus::Unknown => (WireStatus::Exited(125), 125),
    };
    send(&mut stream, &Message::Exited { status: wire })?;
    Ok(code)
}

pub(crate) fn send(stream: &mut UnixStream, msg: &Message) -> io::Result<()> {
    let frame = protocol::try_encode(msg).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    stream.write_all(&frame)
}

/// Reads one message; `buf` keeps bytes that belong to the next one.
pub(crate) fn recv(stream: &mut UnixStream, buf: &mut Vec<u8>) -> io::Result<Message> {
    let mut chunk = [0u8; 4096];
    loop {
        match protocol::decode(buf) {
            Ok(Some((msg, used))) => {
                buf.drain(..used);
                return Ok(msg);
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the control stream closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The parent's live connection to a shim.
///
/// A thread reads the control stream as messages come, records the
/// shim's report and closes the stream at once: a launcher such as ssh
/// keeps the channel open until that connection is closed on our side, so
/// a caller reading the channel to EOF before calling `wait()` must not
/// depend on `wait()` to close it.
pub(crate) struct Link {
    writer: UnixStream,
    /// The program's pid, as the shim reported it.
    pub(crate) pid: u32,
    /// Our own handle on the program, if the OS let us open one.
    #[cfg(target_os = "linux")]
    pidfd: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    ended: std::sync::Arc<(std::sync::Mutex<Option<Ended>>, std::sync::Condvar)>,
}

/// What ended a wait on the shim.
#[derive(Clone, Copy)]
pub(crate) enum Ended {
    /// The shim reported the program's status.
    Reported(ExitStatus),
    /// The shim died first; the program is gone too (seen through our own
    /// handle on it where we have one), status unknown.
    ProgramGone,
}

/// Bytes of the token the parent writes into the channel for the shim.
pub(crate) const TOKEN_LEN: usize = 16;

/// How long one connection may take to say hello before it is refused
/// (a stranger that connects and stays silent must not block the shim).
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the parent waits for the shim to connect and report.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// The parent's side up to `spawned`: waits for the shim, authenticates it,
/// sends the request. `launcher_done` reports the launcher's status if it
/// ended (then it refused, or the shim failed to start).
#[allow(clippy::too_many_arguments)]
pub(crate) fn connect(
    rendezvous: &sys::Rendezvous,
    launcher: &str,
    launcher_pid: u32,
    detaches: bool,
    token: &[u8],
    mut launcher_done: impl FnMut() -> Option<ExitStatus>,
    program: &OsStr,
    args: &[OsString],
    env_clear: bool,
    env: &std::collections::BTreeMap<OsString, Option<OsString>>,
    cwd: Option<&Path>,
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
    let (mut stream, mut buf) = loop {
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
    stream
        .set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))
        .ok();
    let request = Message::SpawnRequest {
        program: program.as_bytes().to_vec(),
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env_clear,
        env: env.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|v| v.as_bytes().to_vec()))).collect(),
        cwd: cwd.map(|c| c.as_os_str().as_bytes().to_vec()),
    };
    send(&mut stream, &request).map_err(io_err("sending the request"))?;
    let pid = match recv(&mut stream, &mut buf).map_err(io_err("reading the spawn result"))? {
        Message::Spawned { pid } => pid,
        Message::SpawnFailed { kind, os_code, message } => {
            let source = (os_code != 0).then(|| io::Error::from_raw_os_error(os_code));
            return Err(Error::new(protocol::kind_from_code(kind), format!("through {launcher}: {message}"), source));
        }
        other => return Err(Error::new(ErrorKind::Protocol, format!("{launcher}: unexpected {other:?}"), None)),
    };
    // Open our own handle while the shim keeps the program unreaped, then
    // let it go on. Where the OS refuses, exit detection relies on the shim.
    #[cfg(target_os = "linux")]
    let pidfd = rustix::process::Pid::from_raw(pid as i32)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    send(&mut stream, &Message::PidConfirmed).map_err(io_err("confirming the pid"))?;
    stream.set_read_timeout(None).ok();
    #[cfg(target_os = "linux")]
    let pidfd = pidfd.map(std::sync::Arc::new);
    let ended = std::sync::Arc::new((std::sync::Mutex::new(None), std::sync::Condvar::new()));
    let writer = stream.try_clone().map_err(io_err("cloning the control stream"))?;
    let state = ended.clone();
    #[cfg(target_os = "linux")]
    let watch = pidfd.clone();
    std::thread::Builder::new()
        .name("umbilical-shim-link".into())
        .stack_size(64 * 1024)
        .spawn(move || {
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
                        #[cfg(target_os = "linux")]
                        if let Some(fd) = &watch {
                            use std::os::fd::AsFd;
                            let _ = sys::wait_readable(fd.as_fd());
                        }
                        break Ended::ProgramGone;
                    }
                }
            };
            // Close what this thread holds before publishing the end, so a
            // caller that saw the end sees no descriptor of ours left.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            drop(stream);
            #[cfg(target_os = "linux")]
            drop(watch);
            let (lock, cvar) = &*state;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            cvar.notify_all();
        })
        .map_err(|e| {
            Error::new(ErrorKind::ShimFailed, format!("{launcher}: cannot start the link thread: {e}"), Some(e))
        })?;
    Ok(Link {
        writer,
        pid,
        #[cfg(target_os = "linux")]
        pidfd,
        ended,
    })
}

impl Link {
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

    /// Asks the shim to signal the program; falls back to our own handle.
    /// Nothing to do once the shim has reported.
    pub(crate) fn kill(&mut self, signal: i32) -> io::Result<()> {
        if self.ended.0.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Ok(());
        }
        match send(&mut self.writer, &Message::Kill { signal }) {
            Ok(()) => Ok(()),
            Err(e) => {
                #[cfg(target_os = "linux")]
                if let Some(fd) = &self.pidfd
                    && let Some(sig) = rustix::process::Signal::from_named_raw(signal)
                {
                    return rustix::process::pidfd_send_signal(&**fd, sig).map_err(Into::into);
                }
                Err(e)
            }
        }
    }
}
