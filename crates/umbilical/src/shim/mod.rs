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
//! - Windows: elevation (`ShellExecuteExW` "runas") passes no handles, so
//!   the shim opens the channel's named pipes by name, sent over the
//!   authenticated control stream. The rendezvous is a named pipe with a
//!   user-only DACL; a client is accepted only if its pid is the pid of
//!   the process handle the parent got when it started the shim.
//!
//! The shim is `umbilical shim --umbilical-rendezvous PATH` (the CLI), or
//! any binary of yours that calls [`run_if_invoked`] first thing in `main`.
//!
//! When the control stream drops without the parent letting go (the caller
//! was killed, an ssh connection broke), the shim ends the program:
//! SIGTERM, a grace period, SIGKILL (Windows: terminated at once).
//! `docs/SECURITY.md` has the threat model.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::child::Child;
use crate::error::{Error, ErrorKind};
use crate::exit::ExitStatus;
use crate::launcher::ShimRoute;
use crate::link::Link;
use crate::options::{Options, ShimChoice, ShimMode};
use crate::protocol::{self, Message, WireStatus, recv, send};
use crate::signal::{Signal, WireSignal};
use crate::spec::ProgramSpec;
use crate::sys;

mod elf;
/// The OS's side of the shim: `unix/` (with the in-band link, the bridge,
/// the far copy and the token) or `windows.rs`, with the same items.
#[cfg_attr(unix, path = "unix/mod.rs")]
#[cfg_attr(windows, path = "windows.rs")]
mod os;
mod running;
pub(crate) mod session;
pub(crate) mod source;

/// The argument that marks a shim invocation.
pub const SHIM_ARG: &str = "shim";
/// The flag before the rendezvous path.
pub const RENDEZVOUS_FLAG: &str = "--umbilical-rendezvous";
/// The flag before the socket path of an in-band link's bridge (see
/// [`ShimLink::InBand`](crate::ShimLink::InBand)).
pub const BRIDGE_FLAG: &str = "--umbilical-bridge";
/// After the bridge's socket: a file the bridge removes once the shim runs
/// (a shim copied into a container). After the rendezvous: the shim's own
/// copy on a far host, which it removes as it starts.
pub const REMOVE_FLAG: &str = "--umbilical-remove";
/// After the rendezvous: the program's stdio comes over the link (with
/// the welcome, `SCM_RIGHTS`), not as the shim's own, which is the
/// launcher's private terminal (su reads its password on its stdin); the
/// token is typed there as a hex line.
pub const STDIO_FLAG: &str = "--umbilical-stdio-from-link";
/// After the bridge's socket: the user (a name or `UID[:GID]`, as
/// `docker exec -u` takes) the socket is handed to, when the program runs
/// as another user than the bridge.
pub const OWNER_FLAG: &str = "--umbilical-owner";

/// If this process was started as a shim (`ARGV0 shim
/// --umbilical-rendezvous PATH`), serve and exit with the program's code;
/// if it was started as the askpass helper of a launch with a
/// [prompt handler](crate::Command::prompt_handler) (under the name
/// `umbilical-askpass`, from the launch's private directory), relay the
/// question and exit; otherwise return and let `main` go on.
///
/// ```no_run
/// // First thing in `main`:
/// umbilical::shim::run_if_invoked();
/// // ... the rest of your program
/// ```
pub fn run_if_invoked() {
    let all: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Started by a launcher as its askpass helper (`Command::prompt_handler`):
    // the name it runs under, or on a far host its environment, says so.
    let shim_call = all.get(1).is_some_and(|a| a == SHIM_ARG);
    if let Some(argv0) = all.first()
        && let Some(code) = crate::prompt_relay::helper(Path::new(argv0), all[1..].iter().cloned(), shim_call)
    {
        std::process::exit(code);
    }
    let mut args = all.into_iter().skip(1);
    if args.next().as_deref() != Some(OsStr::new(SHIM_ARG)) {
        return;
    }
    let flag = args.next();
    let Some(path) = args.next() else { return };
    if flag.as_deref() == Some(OsStr::new(RENDEZVOUS_FLAG)) {
        let mut stdio_from_link = false;
        while let Some(flag) = args.next() {
            if flag == REMOVE_FLAG {
                // A copy of ours placed on a far host: gone as soon as it runs.
                if let Some(copy) = args.next() {
                    remove_own_copy(Path::new(&copy));
                }
            } else if flag == STDIO_FLAG {
                stdio_from_link = true;
            }
        }
        std::process::exit(serve_as(Path::new(&path), stdio_from_link));
    }
    if flag.as_deref() == Some(OsStr::new(BRIDGE_FLAG)) {
        let (mut remove, mut owner) = (None, None);
        while let (Some(flag), Some(value)) = (args.next(), args.next()) {
            if flag == REMOVE_FLAG {
                remove = Some(PathBuf::from(value));
            } else if flag == OWNER_FLAG {
                owner = Some(value);
            }
        }
        if let Some(code) = os::bridge(Path::new(&path), remove.as_deref(), owner.as_deref()) {
            std::process::exit(code);
        }
    }
}

/// Removes `copy` if it is this very executable (nothing else: the flag
/// is not a way to remove other files), and its directory if that was
/// made for it (`umbilical-…`) and is now empty.
fn remove_own_copy(copy: &Path) {
    let me = std::env::current_exe().and_then(std::fs::canonicalize);
    let it = std::fs::canonicalize(copy);
    if let (Ok(me), Ok(it)) = (me, it)
        && me == it
    {
        remove_with_own_dir(&it);
    }
}

/// Removes the file at `path`, then its directory if that was made for it
/// (`umbilical-…`: a far copy's, a copy made from inside a container) and
/// is now empty (best effort).
pub(crate) fn remove_with_own_dir(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent()
        && dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("umbilical-"))
    {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Runs the shim's side against the rendezvous at `path` (Unix: a socket
/// path; Windows: a pipe name); returns the exit code for the shim process
/// (the program's; on Unix 128+N for signal N; 125 for the shim's own
/// failures, 126/127 when the program could not start).
pub fn serve(path: &Path) -> i32 {
    serve_as(path, false)
}

/// [`serve`], with the program's stdio received over the link
/// ([`STDIO_FLAG`]) or the shim's own.
fn serve_as(path: &Path, stdio_from_link: bool) -> i32 {
    match os::serve(path, stdio_from_link) {
        Ok(code) => code,
        Err(e) => {
            say(format_args!("umbilical shim: {e}"));
            125
        }
    }
}

/// Writes a line to the shim's stderr, never panicking: a stderr nobody
/// reads any more must not turn the shim's exit code into a panic's.
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// How long one connection may take to say hello before it is refused
/// (a stranger that connects and stays silent must not block the parent).
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the shim waits for each step of the parent's side of the
/// handshake (the token, the welcome, the request), which the parent sends
/// at once: a parent that stopped answering must not keep the shim.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether to use the shim with these options, and why (see
/// [`Command::shim_choice`](crate::Command::shim_choice)).
pub(crate) fn choose(opts: &Options) -> ShimChoice {
    let chosen = |used: bool, reason: &str| ShimChoice { used, reason: reason.to_string() };
    let route = opts.launcher.capabilities().shim_route;
    match opts.shim {
        ShimMode::On => return chosen(true, "asked for"),
        ShimMode::Off if route == ShimRoute::Elevation => return chosen(true, "runas always uses it"),
        ShimMode::Off => return chosen(false, "not asked for"),
        ShimMode::Auto => {}
    }
    let launcher = &opts.launcher;
    match route {
        _ if launcher.is_direct() => chosen(false, "no launcher: the program's status is exact without it"),
        ShimRoute::Elevation => chosen(true, "runas always uses it"),
        ShimRoute::InBandCopied => choose_container(opts),
        ShimRoute::Unknown => chosen(false, "a custom launcher may not run it"),
        ShimRoute::Forwarded if opts.in_band() && cfg!(windows) => chosen(false, "an in-band link needs a Unix caller"),
        ShimRoute::Forwarded if opts.in_band() => ShimChoice {
            used: true,
            reason: match launcher.far_socket_reachable() {
                Ok(()) => format!("through {}, in band", launcher.name()),
                Err(_) => format!(
                    "through {}, in band: the socket ssh forwards is the ssh user's, so the bridge, run by the hops \
                     before the last, hands its own to {}",
                    launcher.name(),
                    launcher.target_user().unwrap_or("the program's user")
                ),
            },
        },
        ShimRoute::Forwarded => match launcher.far_socket_reachable() {
            Ok(()) => ShimChoice { used: true, reason: format!("through {}", launcher.name()) },
            Err(why) => ShimChoice { used: false, reason: why },
        },
        ShimRoute::Local => {
            let path = match opts.shim_program() {
                Ok(path) => path,
                Err(e) => return ShimChoice { used: false, reason: e.to_string() },
            };
            let copyable = copy_helps(launcher, &path);
            match (sys::can_execute_as(&path, launcher.target_user()), sys::shim_placeable()) {
                (Ok(()), _) => ShimChoice { used: true, reason: format!("through {}", launcher.name()) },
                (Err(why), _) if !copyable => ShimChoice { used: false, reason: why },
                // Copied where the target user can execute it (the
                // rendezvous directory, ours): see `Rendezvous::place_shim`.
                (Err(why), Ok(())) => ShimChoice {
                    used: true,
                    reason: format!(
                        "through {}, a copy of the shim in the rendezvous directory ({why})",
                        launcher.name()
                    ),
                },
                (Err(why), Err(no_copy)) => ShimChoice { used: false, reason: format!("{why}, and {no_copy}") },
            }
        }
    }
}

/// Whether a copy of the shim at `path` in the rendezvous directory would
/// let `launcher`'s user run it: only through a launcher that switches
/// user (with none, the caller runs it itself), and only for a file we can
/// read that is meant to be executed (an execute bit: a copy does not make
/// a non-executable file a program).
pub(crate) fn copy_helps(launcher: &crate::launcher::Launcher, path: &std::path::Path) -> bool {
    !launcher.is_direct()
        && sys::can_execute_as(path, None).is_ok()
        && std::fs::File::open(path).and_then(|f| f.metadata()).is_ok_and(|m| m.is_file())
}

/// Through container exec the shim goes in band, as a static build copied
/// in or one already inside.
fn choose_container(opts: &Options) -> ShimChoice {
    let chosen = |used: bool, reason: String| ShimChoice { used, reason };
    if !opts.in_band() {
        return chosen(false, "container exec forwards no socket back to the rendezvous".into());
    }
    if cfg!(windows) {
        return chosen(false, "an in-band link needs a Unix caller".into());
    }
    if let Some(inside) = &opts.shim_path {
        return chosen(true, format!("in band, the shim at {} in the container", inside.display()));
    }
    let source = match source::Source::of(opts) {
        Ok(source) => source,
        Err(e) => return chosen(false, e.to_string()),
    };
    match source.linkage() {
        elf::Linkage::Static => chosen(true, format!("in band, {source} copied in")),
        elf::Linkage::Dynamic => chosen(
            false,
            format!(
                "the shim {source} is dynamically linked, and an image may lack its C library: name a static build \
                 with shim_source (CLI --shim-source), or one inside with shim_path (--shim-path)"
            ),
        ),
        elf::Linkage::NotElf => chosen(false, format!("the shim {source} is not a Linux (ELF) executable")),
    }
}

/// Starts the program through the shim: the launcher (or nothing, or
/// Windows elevation) starts the shim, which connects back, is
/// authenticated, and starts the program on the channel.
pub(crate) fn spawn(spec: &ProgramSpec, opts: &Options) -> Result<Child, Error> {
    // A chain whose hops give the link no way back (sudo, then container
    // exec, say): asked for, the shim would only fail later, for a reason
    // that is not the real one.
    if opts.launcher.hops().len() > 1 && opts.launcher.capabilities().shim_route == ShimRoute::Unknown {
        return Err(Error::cannot_start(
            &spec.program,
            ErrorKind::InvalidInput,
            &format!(
                "the shim's link cannot come back through {}: a chain carries it only where the hops after the \
                 first run on the first hop's host (a local launcher, ssh or container exec, then sudo, su, \
                 runuser... there); --no-shim runs without it",
                opts.launcher.name()
            ),
            None,
        ));
    }
    let mut child = os::spawn(spec, opts)?;
    child.source().start_reader().map_err(|e| {
        Error::cannot_start(
            &spec.program,
            ErrorKind::ShimFailed,
            &format!("cannot start reading the link: {e}"),
            Some(e),
        )
    })?;
    Ok(child)
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
fn read_request(stream: &mut sys::ControlStream, buf: &mut Vec<u8>) -> io::Result<Requested> {
    request_from(recv(stream, buf)?)
}

/// The spawn request in `msg`, which must be one.
fn request_from(msg: Message) -> io::Result<Requested> {
    let Message::SpawnRequest { program, args, env_clear, env, cwd, process_group, grace_ms } = msg else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected a spawn request, got {msg:?}")));
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

/// The shim starts the program with the channel's ends as its stdin and
/// stdout; `Ok(Err(code))` after telling the parent why it could not (the
/// code is the shim's exit code).
fn start_program(
    stream: &mut sys::ControlStream,
    requested: &Requested,
    spec: &ProgramSpec,
    stdin: &sys::Handle,
    stdout: &sys::Handle,
    stderr: sys::StderrTarget<'_>,
) -> io::Result<Result<sys::Process, i32>> {
    // The caller passes a group's signals (a terminal's Ctrl-C, a
    // supervisor's group kill, the SIGTERM that ends a launcher whose
    // handshake failed) on through the link; dying of one here would lose
    // the program's status, or orphan a program just started. Ignored from
    // before the spawn on: the program starts with default dispositions.
    sys::ignore_group_signals();
    let request = sys::Request::plain(spec, stdin, stdout, stderr, requested.process_group);
    match sys::spawn(&request) {
        Ok(process) => Ok(Ok(process)),
        Err(e) => report_spawn_failure(stream, e).map(Err),
    }
}

/// The shim's side once the program runs: report the pid, keep the
/// program unwaited-for until the parent holds its own handle on it (so
/// the pid it opened cannot have been reused), obey kills, report the end.
/// When the control stream drops without a detach (the caller died, the
/// ssh connection broke), end the program: SIGTERM (Windows: terminate),
/// `grace`, SIGKILL. Returns the shim's exit code.
fn supervise(
    mut stream: sys::ControlStream,
    mut buf: Vec<u8>,
    process: sys::Process,
    grace: Duration,
    session: Option<&running::Running>,
) -> io::Result<i32> {
    let pid = process.pid();
    let process = Arc::new(process);
    // In a session, counted among the programs it ends when it closes,
    // until its report is sent (the session's shim exits once none is
    // counted); one that starts as the session closes is ended at once.
    let _counted = match session.map(|s| (s, s.add(process.clone()))) {
        Some((_, None)) => {
            let _ = process.signal_or_terminate(here(Signal::Kill));
            None
        }
        Some((session, Some(key))) => Some(running::Counted { running: session, key }),
        None => None,
    };
    let ended = Arc::new((Mutex::new(false), Condvar::new()));
    let link_ok = send(&mut stream, &Message::Spawned { pid, host: crate::signal::host() }).is_ok();
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
    // The report and the answers to pings go out on the one stream from
    // two threads: whole frames, one at a time.
    let mut control = stream.try_clone()?;
    let writer = Arc::new(Mutex::new(stream));
    let watcher = {
        let process = process.clone();
        let ended = ended.clone();
        let writer = writer.clone();
        // Kill requests arrive while the program runs; the thread ends with
        // the stream. It takes over the bytes already read: a kill sent
        // right after the confirmation may have arrived with it.
        move || {
            let mut detached = false;
            if confirmed {
                while let Ok(msg) = recv(&mut control, &mut pending) {
                    match msg {
                        Message::Kill { signal } => match signal.local() {
                            Ok(number) => {
                                let _ = process.signal_or_terminate(number);
                            }
                            // The caller checks before sending; a request
                            // that still means nothing here is not taken
                            // for another signal.
                            Err(why) => say(format_args!("umbilical shim: kill request refused: {why}")),
                        },
                        Message::Detach => detached = true,
                        Message::Ping => {
                            let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                            let _ = send(&mut *w, &Message::Pong);
                        }
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
        let _ = process.signal_or_terminate(here(Signal::Kill));
    }
    let status = process.wait()?;
    // No signal goes to the program's group after its end: a kept zombie
    // is reaped now, not left to an init that may not reap (a container's).
    process.release();
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
    let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
    let _ = send(&mut *w, &Message::Exited { status: wire });
    Ok(code)
}

/// `sig`'s number for `signal_or_terminate` here (Windows terminates
/// whatever it is given).
fn here(sig: Signal) -> i32 {
    WireSignal::Named(sig).local().unwrap_or(0)
}

/// The caller is gone: nobody will read the program's output or stop it
/// later, and it may be running as another user. Ask it to stop, give it
/// `grace`, then kill it.
fn end_orphan(process: &sys::Process, ended: &(Mutex<bool>, Condvar), grace: Duration) {
    let (lock, cvar) = ended;
    let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let _ = process.signal_or_terminate(here(Signal::Term));
    let limit = Instant::now() + grace;
    while !*done {
        let left = limit.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = process.signal_or_terminate(here(Signal::Kill));
            return;
        }
        done = cvar.wait_timeout(done, left).unwrap_or_else(|e| e.into_inner()).0;
    }
}

/// Stops and reaps the launcher of a shim whose handshake failed (on
/// Windows the shim itself); returns its end where it was seen. The shim
/// exits on its own after reporting a failure, so the launcher gets 2 s,
/// unless the time is already up. Then SIGTERM (sudo, doas, ssh and the
/// engines pass it on to what they started; SIGKILL would orphan it) with
/// SIGCONT (a launcher stopped with its stopped shim acts on nothing until
/// resumed, as `timeout(1)` knows), 500 ms, SIGKILL, 2 s. Windows: the
/// same with `TerminateProcess`. Either way it is reaped here, not later.
pub(crate) fn stop_failed_launcher(process: &sys::Process, time_is_up: bool) -> Option<ExitStatus> {
    let ended_within = |within| process.wait_deadline(Some(Instant::now() + within)).ok().flatten();
    if !time_is_up && let Some(status) = ended_within(Duration::from_secs(2)) {
        return Some(status);
    }
    let _ = process.signal_or_terminate(here(Signal::Term));
    if let Some(cont) = Signal::Cont.number() {
        let _ = process.signal_raw(cont);
    }
    if let Some(status) = ended_within(Duration::from_millis(500)) {
        return Some(status);
    }
    let _ = process.kill();
    ended_within(Duration::from_secs(2))
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
/// the shim still holds it (unless remote), and returns the link, whose
/// reader the caller starts (a thread, or a task on tokio).
fn finish_connect(
    mut stream: sys::ControlStream,
    mut buf: Vec<u8>,
    hs: Handshake<'_>,
    opened: impl FnOnce(u32) -> Result<(), Error>,
) -> Result<Link, Error> {
    let launcher = hs.launcher;
    stream.set_read_deadline(Some(hs.deadline));
    send(&mut stream, &hs.request).map_err(link_error(launcher, "sending the request"))?;
    if let Some(extra) = &hs.extra {
        send(&mut stream, extra).map_err(link_error(launcher, "sending the pipe names"))?;
    }
    let (pid, far_host) = match recv(&mut stream, &mut buf) {
        Ok(Message::Spawned { pid, host }) => (pid, host),
        Ok(Message::SpawnFailed { kind, os_code, message }) => {
            let source = (os_code != 0).then(|| io::Error::from_raw_os_error(os_code));
            return Err(Error::new(protocol::kind_from_code(kind), format!("through {launcher}: {message}"), source));
        }
        Ok(other) => return Err(Error::new(ErrorKind::Protocol, format!("{launcher}: unexpected {other:?}"), None)),
        Err(e) if is_timeout(&e) => return Err(timed_out(launcher, "the shim did not report the spawn")),
        Err(e) => return Err(link_error(launcher, "reading the spawn result")(e)),
    };
    opened(pid)?;
    tracing::info!(launcher, pid, "the shim started the program");
    // Open our own handle while the shim keeps the program unwaited-for,
    // then let it go on. Where the OS refuses, exit detection relies on
    // the shim.
    let own = if hs.remote { None } else { sys::OtherProcess::open(pid) };
    send(&mut stream, &Message::PidConfirmed).map_err(link_error(launcher, "confirming the pid"))?;
    stream.set_read_deadline(None);
    Ok(Link::new(stream, buf, pid, far_host, own))
}

/// What a wait at the rendezvous ended with.
enum Accepted {
    /// A connection that passed the OS-level peer check.
    Peer(sys::ControlStream),
    /// The launcher (Windows: the shim's process) ended first, with this
    /// status if it was seen.
    Ended(Option<ExitStatus>),
}

/// Waits at the rendezvous until `hs.deadline` for a connection from
/// `peer` (see `sys::Rendezvous::accept_from`), polling `ended` for the end
/// of the process that should connect.
fn accept(
    rendezvous: &mut sys::Rendezvous,
    hs: &Handshake<'_>,
    peer: Option<u32>,
    mut ended: impl FnMut() -> Option<ExitStatus>,
    refused: &mut u32,
) -> Result<Accepted, Error> {
    let mut status = None;
    // Past this, say why nothing happens yet: a launcher asking for a
    // password looks exactly like this.
    let patience = Instant::now() + PATIENCE;
    if patience < hs.deadline {
        match rendezvous.accept_from(
            peer,
            patience,
            || {
                status = ended();
                status.is_some()
            },
            refused,
        ) {
            Ok(Some(stream)) => return Ok(Accepted::Peer(stream)),
            Ok(None) => return Ok(Accepted::Ended(status)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => tracing::info!(
                launcher = hs.launcher,
                "still waiting for the shim to connect after {PATIENCE:?}: {} may be asking for a password or confirmation",
                hs.launcher
            ),
            Err(e) => return Err(link_error(hs.launcher, "waiting for the shim")(e)),
        }
    }
    let stream = rendezvous
        .accept_from(
            peer,
            hs.deadline,
            || {
                status = ended();
                status.is_some()
            },
            refused,
        )
        .map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => timed_out(hs.launcher, "the shim did not connect"),
            _ => link_error(hs.launcher, "waiting for the shim")(e),
        })?;
    Ok(stream.map_or(Accepted::Ended(status), Accepted::Peer))
}

/// How long the shim may take to connect before a diagnostic says the
/// launcher is still busy (a password prompt, a consent dialog).
const PATIENCE: Duration = Duration::from_secs(1);

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

fn timed_out(launcher: &str, what: &str) -> Error {
    Error::new(ErrorKind::TimedOut, format!("{launcher}: {what} within the connect timeout"), None)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::launcher::{Capabilities, Engine, Launcher};
    use crate::options::ShimLink;

    /// A shim file with `mode` in a fresh directory every user can search,
    /// removed on drop.
    struct ShimFile(PathBuf);

    impl ShimFile {
        fn new(mode: u32) -> ShimFile {
            let dir = std::env::temp_dir().join(format!("umbilical-choose-{}", os::remote::random_name().unwrap()));
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let file = dir.join("shim");
            std::fs::write(&file, b"#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            ShimFile(file)
        }
    }

    impl Drop for ShimFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            let _ = std::fs::remove_dir(self.0.parent().unwrap());
        }
    }

    fn user_exists(name: &str) -> bool {
        std::fs::read_to_string("/etc/passwd").is_ok_and(|p| p.lines().any(|l| l.starts_with(&format!("{name}:"))))
    }

    /// Every launcher × every shim mode × whether the target user can
    /// execute the shim: the choice and its reason.
    #[test]
    fn choose_covers_every_launcher_mode_and_executability() {
        // `nobody` is no file's owner and in none of their groups, so the
        // "other" bits decide for it; root needs one execute bit.
        if !user_exists("nobody") {
            println!("SKIP: choose_covers_every_launcher_mode_and_executability: no user `nobody` on this machine");
            return;
        }
        let local_custom = Launcher::Custom {
            prefix: vec!["nice".into()],
            capabilities: Capabilities {
                keeps_stdio: true,
                returns_status: true,
                shim_route: ShimRoute::Local,
                ..Default::default()
            },
        };
        let launchers = [
            Launcher::Direct,
            Launcher::Sudo { user: Some("nobody".into()), non_interactive: true },
            Launcher::Sudo { user: None, non_interactive: true },
            Launcher::Doas { user: Some("nobody".into()) },
            Launcher::Pkexec { user: Some("nobody".into()), keep_cwd: true },
            Launcher::Runuser { user: "nobody".into() },
            Launcher::Su { user: "nobody".into() },
            Launcher::Ssh { destination: "h".into(), port: None, options: vec![] },
            Launcher::ContainerExec { engine: Engine::Docker, target: "c".into(), user: Some("nobody".into()) },
            Launcher::RunAs,
            Launcher::Setpriv { user: "nobody".into(), group: Some("nogroup".into()) },
            Launcher::Nsenter { pid: 1 },
            Launcher::SystemdRun { user: Some("nobody".into()), properties: vec![] },
            Launcher::Run0 { user: None },
            Launcher::FlatpakSpawn { forward_lifeline: true },
            Launcher::Custom { prefix: vec!["nice".into()], capabilities: Capabilities::default() },
            local_custom,
        ];
        // (mode, nobody can execute it, root can)
        let files = [(0o755, true, true), (0o700, false, true), (0o644, false, false)];
        // A copy in the rendezvous directory could run (no noexec /tmp).
        let placeable = sys::shim_placeable().is_ok();
        for (mode, by_nobody, by_root) in files {
            let shim = ShimFile::new(mode);
            for launcher in &launchers {
                for shim_mode in [ShimMode::On, ShimMode::Off, ShimMode::Auto] {
                    let opts = Options {
                        launcher: launcher.clone(),
                        shim: shim_mode,
                        shim_path: Some(shim.0.clone()),
                        ..Options::default()
                    };
                    let choice = choose(&opts);
                    let route = launcher.capabilities().shim_route;
                    let executable = match launcher.target_user() {
                        Some(_) => by_nobody,
                        None => by_root,
                    };
                    let expected = match shim_mode {
                        ShimMode::On => true,
                        ShimMode::Off => route == ShimRoute::Elevation,
                        ShimMode::Auto => match route {
                            _ if launcher.is_direct() => false,
                            // Or copied where the user can execute it,
                            // if the file is meant to be executed.
                            ShimRoute::Local => executable || (placeable && by_root),
                            ShimRoute::Forwarded | ShimRoute::Elevation => true,
                            // In band with a shim named inside the container.
                            ShimRoute::InBandCopied => true,
                            ShimRoute::Unknown => false,
                        },
                    };
                    let case = format!("{launcher:?} {shim_mode:?} mode {mode:o}: {choice:?}");
                    assert_eq!(choice.used, expected, "{case}");
                    assert!(!choice.reason.is_empty(), "{case}");
                    if shim_mode == ShimMode::Auto && route == ShimRoute::Local && !launcher.is_direct() {
                        let who = launcher.target_user().unwrap_or("root");
                        if executable {
                            assert_eq!(choice.reason, format!("through {}", launcher.name()), "{case}");
                        } else {
                            assert!(choice.reason.contains(&format!("user {who} cannot execute")), "{case}");
                            let copied = choice.reason.contains("a copy of the shim in the rendezvous directory");
                            assert_eq!(copied, placeable && by_root, "{case}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn choose_in_band_needs_a_copyable_or_named_shim() {
        let docker = Launcher::ContainerExec { engine: Engine::Docker, target: "c".into(), user: None };
        let opts = |link, path: Option<&str>, source: Option<PathBuf>| Options {
            launcher: docker.clone(),
            shim: ShimMode::Auto,
            shim_link: link,
            shim_path: path.map(Into::into),
            shim_source: source,
            ..Options::default()
        };
        let named = choose(&opts(ShimLink::Auto, Some("/opt/shim"), None));
        assert!(named.used && named.reason.contains("/opt/shim in the container"), "{named:?}");
        let forwarded = choose(&opts(ShimLink::Forwarded, Some("/opt/shim"), None));
        assert!(!forwarded.used && forwarded.reason.contains("forwards no socket"), "{forwarded:?}");
        // A dynamically linked shim may lack its C library in the image.
        let dynamic = choose(&opts(ShimLink::Auto, None, Some("/bin/sh".into())));
        assert!(!dynamic.used && dynamic.reason.contains("dynamically linked"), "{dynamic:?}");
        let not_elf = ShimFile::new(0o755);
        let script = choose(&opts(ShimLink::Auto, None, Some(not_elf.0.clone())));
        assert!(!script.used && script.reason.contains("not a Linux (ELF)"), "{script:?}");
        let ssh = Options {
            launcher: Launcher::Ssh { destination: "h".into(), port: None, options: vec![] },
            shim: ShimMode::Auto,
            shim_link: ShimLink::InBand,
            ..Options::default()
        };
        assert_eq!(choose(&ssh).reason, "through ssh, in band");
    }
}
