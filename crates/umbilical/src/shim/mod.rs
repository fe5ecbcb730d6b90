//! The shim: a small helper started by the launcher instead of the program.
//!
//! It connects back to the parent's rendezvous, receives the program's
//! argv, environment and working directory over the control stream
//! (launchers reset the environment and may change directory), starts the
//! program with the channel as its stdin/stdout — so no byte is relayed —
//! reports `spawned(pid)` or `spawn_failed`, obeys `kill`, reports
//! `exited(status)` and exits with the program's code. Through it, a
//! launcher's refusal is told apart from the program's exit code, and the
//! status is exact through any launcher.
//!
//! How the channel reaches the program differs by OS:
//! - Unix: the launcher passes the channel to the shim as its own
//!   stdin/stdout, and the shim hands them on. The rendezvous is a Unix
//!   socket in a fresh directory of the caller's, which the target user may
//!   connect to but never change; a peer is accepted only if its pid
//!   descends from the launcher and it sends back half of a token the
//!   parent wrote into the channel, and the shim trusts the parent only
//!   once it sent the other half.
//!
//! When the control stream drops without the parent letting go (the caller
//! was killed, an ssh connection broke), the shim ends the program:
//! SIGTERM, a grace period, SIGKILL (Windows: terminated at once).
//! `docs/SECURITY.md` has the threat model.
//! - Windows: elevation (`ShellExecuteExW` "runas") passes no handles, so
//!   the shim opens the channel's named pipes by name, sent over the
//!   authenticated control stream. The rendezvous is a named pipe with a
//!   user-only DACL; a client is accepted only if its pid is the pid of
//!   the process handle the parent got when it started the shim.
//!
//! The shim is `umbilical shim --umbilical-rendezvous PATH` (the CLI), or
//! any binary of yours that calls [`run_if_invoked`] first thing in `main`.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::exit::ExitStatus;
use crate::protocol::{self, Message, WireStatus};
use crate::spec::ProgramSpec;
use crate::sys;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as os;
#[cfg(unix)]
pub(crate) use unix::connect;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;
#[cfg(windows)]
pub(crate) use windows::{ShimStdio, connect};

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

/// Runs the shim's side against the rendezvous at `path` (Unix: a socket
/// path; Windows: a pipe name); returns the exit code for the shim process
/// (the program's; on Unix 128+N for signal N; 125 for the shim's own
/// failures, 126/127 when the program could not start).
pub fn serve(path: &Path) -> i32 {
    match os::serve(path) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("umbilical shim: {e}");
            125
        }
    }
}

/// Sends one message. On Unix the stream is std's `UnixStream`, whose
/// writes carry `MSG_NOSIGNAL` (std documents it): a vanished peer is
/// `BrokenPipe`, never a SIGPIPE, also in a host whose SIGPIPE is at its
/// default (tested: `peer_cpython::sigpipe_default_host_dead_shim`).
pub(crate) fn send(stream: &mut impl Write, msg: &Message) -> io::Result<()> {
    let frame = protocol::try_encode(msg).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    stream.write_all(&frame)
}

/// Reads one message; `buf` keeps bytes that belong to the next one.
pub(crate) fn recv(stream: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Message> {
    loop {
        match protocol::decode(buf) {
            Ok(Some((msg, used))) => {
                buf.drain(..used);
                return Ok(msg);
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        // Read straight into `buf`, in steps large enough that a request
        // of several mebibytes of arguments takes few reads.
        let start = buf.len();
        buf.resize(start + 64 * 1024, 0);
        let n = stream.read(&mut buf[start..]);
        buf.truncate(start + *n.as_ref().unwrap_or(&0));
        if n? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the control stream closed"));
        }
    }
}

/// How long one connection may take to say hello before it is refused
/// (a stranger that connects and stays silent must not block the parent).
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the shim waits for each step of the parent's side of the
/// handshake (the token, the welcome, the request), which the parent sends
/// at once: a parent that stopped answering must not keep the shim.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the parent waits, by default, for the shim to connect and
/// report ([`Command::connect_timeout`](crate::Command::connect_timeout)).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long, by default, the shim lets the program react to SIGTERM when
/// the caller is gone before it sends SIGKILL
/// ([`Command::caller_gone_grace`](crate::Command::caller_gone_grace)).
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Bytes of the token the parent writes into the channel (Unix): the first
/// half is the shim's proof to the parent, the second the parent's proof to
/// the shim.
pub(crate) const TOKEN_LEN: usize = 32;
const PROOF_LEN: usize = TOKEN_LEN / 2;

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The spawn request for `spec`, with strings in the OS's wire form.
pub(crate) fn request(spec: &ProgramSpec, process_group: bool, grace: Duration) -> Message {
    let wire = os::to_wire;
    Message::SpawnRequest {
        program: wire(&spec.program),
        args: spec.args.iter().map(|a| wire(a)).collect(),
        env_clear: spec.env_clear,
        env: spec.env.iter().map(|(k, v)| (wire(k), v.as_deref().map(wire))).collect(),
        cwd: spec.cwd.as_deref().map(|c| wire(c.as_os_str())),
        process_group,
        grace_ms: u32::try_from(grace.as_millis()).unwrap_or(u32::MAX),
    }
}

/// What the shim was asked to do: the program, and how to treat it.
struct Requested {
    spec: ProgramSpec,
    process_group: bool,
    grace: Duration,
}

/// Reads the spawn request (the shim's side).
fn read_request(stream: &mut os::Control, buf: &mut Vec<u8>) -> io::Result<Requested> {
    let Message::SpawnRequest { program, args, env_clear, env, cwd, process_group, grace_ms } = recv(stream, buf)?
    else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "expected a spawn request"));
    };
    let wire = os::from_wire;
    let mut env_map = std::collections::BTreeMap::new();
    for (k, v) in env {
        env_map.insert(wire(&k)?, v.map(|v| wire(&v)).transpose()?);
    }
    let spec = ProgramSpec {
        program: wire(&program)?,
        args: args.iter().map(|a| wire(a)).collect::<io::Result<_>>()?,
        env_clear,
        env: env_map,
        cwd: cwd.map(|c| wire(&c).map(PathBuf::from)).transpose()?,
    };
    Ok(Requested { spec, process_group, grace: Duration::from_millis(u64::from(grace_ms)) })
}

/// Maps an I/O failure of the parent's side of the handshake to the error
/// the caller sees: garbage on the stream is a protocol error, a silent or
/// vanished shim a failure of the shim.
fn link_error(launcher: &str, what: &str) -> impl Fn(io::Error) -> Error {
    let what = format!("{launcher}: {what}");
    move |e: io::Error| {
        let kind = match e.kind() {
            io::ErrorKind::InvalidData => ErrorKind::Protocol,
            _ => ErrorKind::ShimFailed,
        };
        Error::new(kind, format!("{what}: {e}"), Some(e))
    }
}

/// The shim's exit code when the program could not start.
fn spawn_failure_code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::NotFound => 127,
        ErrorKind::NotExecutable => 126,
        _ => 125,
    }
}

/// Refuses a working directory that is not one, before spawning (the
/// error names it, rather than the spawn's bare "not found"). Returns the
/// shim's exit code if refused.
fn check_cwd(stream: &mut impl Write, cwd: Option<&Path>) -> io::Result<Option<i32>> {
    match cwd {
        Some(dir) if !dir.is_dir() => {
            let message = format!("working directory {} does not exist or is not a directory", dir.display());
            let kind = protocol::kind_code(ErrorKind::InvalidInput);
            send(stream, &Message::SpawnFailed { kind, os_code: 0, message })?;
            Ok(Some(125))
        }
        _ => Ok(None),
    }
}

/// Tells the parent why the program did not start; returns the shim's
/// exit code.
fn report_spawn_failure(stream: &mut impl Write, e: sys::SpawnError) -> io::Result<i32> {
    let os_code = e.source.as_ref().and_then(io::Error::raw_os_error).unwrap_or(0);
    let code = spawn_failure_code(e.kind);
    send(stream, &Message::SpawnFailed { kind: protocol::kind_code(e.kind), os_code, message: e.what })?;
    Ok(code)
}

/// The shim's side once the program runs: report the pid, keep the
/// program unwaited-for until the parent holds its own handle on it (so
/// the pid it opened cannot have been reused), obey kills, report the end.
/// When the control stream drops without a detach (the caller died, the
/// ssh connection broke), end the program: SIGTERM (Windows: terminate),
/// `grace`, SIGKILL. Returns the shim's exit code.
fn supervise(mut stream: os::Control, mut buf: Vec<u8>, process: sys::Process, grace: Duration) -> io::Result<i32> {
    let pid = process.pid();
    let process = Arc::new(process);
    let ended = Arc::new((Mutex::new(false), Condvar::new()));
    let link_ok = send(&mut stream, &Message::Spawned { pid }).is_ok();
    let mut pending = std::mem::take(&mut buf);
    let confirmed = link_ok
        && match recv(&mut stream, &mut pending) {
            Ok(Message::PidConfirmed) => true,
            Ok(other) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("expected the pid confirmation, got {other:?}"),
                ));
            }
            Err(_) => false,
        };
    let watcher = {
        let process = process.clone();
        let ended = ended.clone();
        let mut control = stream.try_clone()?;
        // Kill requests arrive while the program runs; the thread ends with
        // the stream. It takes over the bytes already read: a kill sent
        // right after the confirmation may have arrived with it.
        move || {
            let mut detached = false;
            if confirmed {
                while let Ok(msg) = recv(&mut control, &mut pending) {
                    match msg {
                        Message::Kill { signal } => {
                            let _ = os::kill_program(&process, signal);
                        }
                        Message::Detach => detached = true,
                        _ => {}
                    }
                }
            }
            if !detached {
                end_orphan(&process, &ended, grace);
            }
        }
    };
    if std::thread::Builder::new().name("umbilical-shim-control".into()).stack_size(64 * 1024).spawn(watcher).is_err() {
        // Without a thread nobody could stop the program for the caller:
        // stop it now rather than let it run unsupervised.
        let _ = os::kill_program(&process, KILL);
    }
    let status = process.wait()?;
    {
        let (lock, cvar) = &*ended;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }
    let (wire, code) = match status {
        ExitStatus::Exited(c) => (WireStatus::Exited(c), c),
        ExitStatus::Signaled(s) => (WireStatus::Signaled(s), 128 + s),
        ExitStatus::Unknown => (WireStatus::Exited(125), 125),
    };
    // A caller that is gone cannot hear the report; the code still says it.
    let _ = send(&mut stream, &Message::Exited { status: wire });
    Ok(code)
}

/// SIGKILL's number (what `Child::kill` asks the shim for).
const KILL: i32 = 9;
/// SIGTERM's number; Windows shims ignore numbers and terminate.
const TERM: i32 = 15;

/// The caller is gone: nobody will read the program's output or stop it
/// later, and it may be running as another user. Ask it to stop, give it
/// `grace`, then kill it.
fn end_orphan(process: &sys::Process, ended: &(Mutex<bool>, Condvar), grace: Duration) {
    let (lock, cvar) = ended;
    let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let _ = os::kill_program(process, TERM);
    let limit = Instant::now() + grace;
    while !*done {
        let left = limit.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = os::kill_program(process, KILL);
            return;
        }
        done = cvar.wait_timeout(done, left).unwrap_or_else(|e| e.into_inner()).0;
    }
}

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
    writer: os::Control,
    /// The program's pid, as the shim reported it.
    pub(crate) pid: u32,
    /// Our own handle on the program, if the OS let us open one.
    own: Option<Arc<os::Own>>,
    ended: Arc<(Mutex<Option<Ended>>, Condvar)>,
    /// A detach was sent.
    detached: bool,
}

/// What ended a wait on the shim.
#[derive(Clone, Copy)]
pub(crate) enum Ended {
    /// The shim reported the program's status.
    Reported(ExitStatus),
    /// The shim died first; the program is gone too (seen through our own
    /// handle on it where we have one), its status lost.
    ProgramGone,
}

/// What the parent's side of a connection needs besides the stream.
pub(crate) struct Handshake<'a> {
    /// The launcher's name, for messages.
    pub(crate) launcher: &'a str,
    /// When to give up waiting for the shim.
    pub(crate) deadline: Instant,
    /// The spawn request.
    pub(crate) request: Message,
    /// Sent right after the request (Windows: the pipe names).
    pub(crate) extra: Option<Message>,
    /// Through ssh the pid is the far host's: opening it here would watch
    /// an unrelated local process.
    pub(crate) remote: bool,
}

/// The parent's side from the request on, shared by every OS: sends the
/// request, reads the spawn result, lets `opened` check the program
/// (Windows: the pipes' client), opens our own handle on the program while
/// the shim still holds it (unless remote), and starts the link thread.
fn finish_connect(
    mut stream: os::Control,
    mut buf: Vec<u8>,
    hs: Handshake<'_>,
    opened: impl FnOnce(u32) -> Result<(), Error>,
) -> Result<Link, Error> {
    let launcher = hs.launcher;
    os::set_read_deadline(&mut stream, Some(hs.deadline));
    send(&mut stream, &hs.request).map_err(link_error(launcher, "sending the request"))?;
    if let Some(extra) = &hs.extra {
        send(&mut stream, extra).map_err(link_error(launcher, "sending the pipe names"))?;
    }
    let pid = match recv(&mut stream, &mut buf) {
        Ok(Message::Spawned { pid }) => pid,
        Ok(Message::SpawnFailed { kind, os_code, message }) => {
            let source = (os_code != 0).then(|| io::Error::from_raw_os_error(os_code));
            return Err(Error::new(protocol::kind_from_code(kind), format!("through {launcher}: {message}"), source));
        }
        Ok(other) => return Err(Error::new(ErrorKind::Protocol, format!("{launcher}: unexpected {other:?}"), None)),
        Err(e) if is_timeout(&e) => return Err(timed_out(launcher, "the shim did not report the spawn")),
        Err(e) => return Err(link_error(launcher, "reading the spawn result")(e)),
    };
    opened(pid)?;
    // Open our own handle while the shim keeps the program unwaited-for,
    // then let it go on. Where the OS refuses, exit detection relies on
    // the shim.
    let own = if hs.remote { None } else { os::open_own(pid).map(Arc::new) };
    send(&mut stream, &Message::PidConfirmed).map_err(link_error(launcher, "confirming the pid"))?;
    os::set_read_deadline(&mut stream, None);
    let ended = Arc::new((Mutex::new(None), Condvar::new()));
    let writer = stream.try_clone().map_err(link_error(launcher, "cloning the control stream"))?;
    let state = ended.clone();
    let watch = own.clone();
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
                        if let Some(own) = &watch {
                            os::wait_own(own);
                        }
                        break Ended::ProgramGone;
                    }
                }
            };
            // Close what this thread holds before publishing the end, so a
            // caller that saw the end sees no descriptor of ours left.
            os::close(stream);
            drop(watch);
            let (lock, cvar) = &*state;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            cvar.notify_all();
        })
        .map_err(|e| {
            Error::new(ErrorKind::ShimFailed, format!("{launcher}: cannot start the link thread: {e}"), Some(e))
        })?;
    Ok(Link { writer, pid, own, ended, detached: false })
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

fn timed_out(launcher: &str, what: &str) -> Error {
    Error::new(ErrorKind::TimedOut, format!("{launcher}: {what} within the connect timeout"), None)
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

    fn reported(&self) -> bool {
        self.ended.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Asks the shim to signal (Windows: terminate) the program; falls back
    /// to our own handle where that can kill. Nothing to do once the shim
    /// has reported.
    pub(crate) fn kill(&mut self, signal: i32) -> io::Result<()> {
        if self.reported() {
            return Ok(());
        }
        match send(&mut self.writer, &Message::Kill { signal }) {
            Ok(()) => Ok(()),
            Err(e) => match &self.own {
                Some(own) => os::kill_own(own, signal).map_err(|_| e),
                None => Err(e),
            },
        }
    }

    /// Tells the shim that the caller lets the program run on: closing the
    /// link after this does not end it.
    pub(crate) fn detach(&mut self) {
        if !self.reported() {
            self.detached = send(&mut self.writer, &Message::Detach).is_ok();
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
        if !(self.detached && os::SHUTDOWN_DISCARDS_UNREAD) {
            os::shutdown(&self.writer);
        }
    }
}
