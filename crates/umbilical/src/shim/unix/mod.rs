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
use std::path::Path;
use std::time::{Duration, Instant};

mod bridge;
mod far_copy;
mod in_band;
pub(super) mod remote;
pub(super) mod session;
mod token;

use self::token::{TOKEN_LEN, Token};
use super::{
    Accepted, HELLO_TIMEOUT, Handshake, STEP_TIMEOUT, accept, check_cwd, finish_connect, link_error, request_from,
    start_program, supervise,
};
use crate::child::{Child, HeldStdio};
use crate::error::{Error, ErrorKind};
use crate::exit::{ExitDetection, ExitStatus};
use crate::launcher::Launcher;
use crate::launcher::{Capabilities, PromptRoute, ShimRoute};
use crate::link::Link;
use crate::options::{Options, Stderr};
use crate::prompt::Handler;
use crate::prompt_relay::{ASKPASS_SOCKET_VAR, InnerPrompts, Relay};
use crate::protocol::{Message, recv, send};
use crate::spec::ProgramSpec;
use crate::sys;

/// A duration on the wire: whole milliseconds, saturated.
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

pub(super) fn to_wire(s: &OsStr) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub(super) fn from_wire(b: &[u8]) -> io::Result<OsString> {
    Ok(OsString::from_vec(b.to_vec()))
}

/// Runs the in-band link's bridge ([`super::BRIDGE_FLAG`]); its exit
/// code.
pub(super) fn bridge(path: &Path, remove: Option<&Path>, owner: Option<&std::ffi::OsStr>) -> Option<i32> {
    Some(bridge::serve(path, remove, owner).unwrap_or_else(|e| {
        super::say(format_args!("umbilical shim bridge: {e}"));
        125
    }))
}

pub(super) fn serve(path: &Path, stdio_from_link: bool) -> io::Result<i32> {
    let mut stream = sys::ControlStream::connect(path)?;
    // Once connected the path is no longer needed. Through ssh it is a
    // socket that sshd made on this host, and nothing else would remove it
    // (the parent removes its own).
    let _ = std::fs::remove_file(path);
    // The token is the first thing on the channel once the parent accepted
    // us. Read exactly that much, unbuffered: everything after it belongs
    // to the program (std's Stdin would read ahead into its buffer).
    let stdin = io::stdin().as_fd().try_clone_to_owned()?;
    let mut token = [0u8; TOKEN_LEN];
    if stdio_from_link {
        // Our stdin is the launcher's terminal: the token is a typed line.
        token = token::read_typed(&stdin, Instant::now() + STEP_TIMEOUT)?;
    } else {
        sys::read_exact_until(&stdin, &mut token, Instant::now() + STEP_TIMEOUT)?;
    }
    send(&mut stream, &token::hello(&token))?;
    stream.set_read_deadline(Some(Instant::now() + STEP_TIMEOUT));
    let mut buf = Vec::new();
    let mut fds = Vec::new();
    let welcome =
        if stdio_from_link { recv_with_fds(&stream, &mut buf, &mut fds)? } else { recv(&mut stream, &mut buf)? };
    match welcome {
        Message::Welcome { token: proof } if token::welcome_proves_parent(&token, &proof) => {}
        Message::Welcome { .. } => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the peer at the rendezvous did not prove it is the caller (wrong token); nothing was started",
            ));
        }
        other => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected a welcome, got {other:?}"))),
    }
    let requested = match recv(&mut stream, &mut buf)? {
        // A session: programs come with their own stdio over the link.
        Message::SessionOpen { idle_ms, grace_ms } => {
            drop((stdin, fds));
            return crate::shim::session::serve(stream, buf, idle_ms, grace_ms, session::Programs::new());
        }
        msg => request_from(msg)?,
    };
    stream.set_read_deadline(None);
    let spec = &requested.spec;
    if let Some(code) = check_cwd(&mut stream, spec.cwd.as_deref())? {
        return Ok(code);
    }
    // The channel arrived as our own stdin/stdout, through the launcher,
    // or (su) with the welcome: stdin, stdout, stderr.
    let (stdin, stdout, stderr) = if stdio_from_link {
        let [stdin, stdout, stderr]: [std::os::fd::OwnedFd; 3] = fds.try_into().map_err(|fds: Vec<_>| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected 3 descriptors with the welcome, got {}", fds.len()),
            )
        })?;
        (stdin, stdout, Some(stderr))
    } else {
        (stdin, io::stdout().as_fd().try_clone_to_owned()?, None)
    };
    let stderr_target = stderr.as_ref().map_or(sys::StderrTarget::Inherit, sys::StderrTarget::To);
    let process = match start_program(&mut stream, &requested, spec, &stdin, &stdout, stderr_target)? {
        Ok(process) => process,
        Err(code) => return Ok(code),
    };
    drop((stdin, stdout, stderr));
    supervise(stream, buf, process, requested.grace, None)
}

/// Through ssh then sudo (a chain) with a prompt handler: the chain with
/// that sudo hop asking through an askpass helper on the far host (`env
/// UMBILICAL_ASKPASS_SOCKET=FAR SUDO_ASKPASS=SHIM sudo -A ...`), and who
/// answers it. `None` where there is no such hop (an inner hop that asks
/// otherwise fails with its own words).
fn inner_sudo(
    opts: &Options,
    outer: Launcher,
    far_socket: &std::ffi::OsStr,
    far_program: &std::ffi::OsStr,
) -> Result<Option<(Launcher, InnerPrompts)>, Error> {
    let Some(handler) = &opts.prompt_handler else { return Ok(None) };
    let mut var = std::ffi::OsString::from(format!("{ASKPASS_SOCKET_VAR}="));
    var.push(far_socket);
    let mut askpass = std::ffi::OsString::from("SUDO_ASKPASS=");
    askpass.push(far_program);
    let Some((chain, hop)) = outer.with_far_sudo_askpass(vec![var, askpass])? else { return Ok(None) };
    let inner = InnerPrompts::new(handler, "sudo".into(), hop)?;
    Ok(Some((chain, inner)))
}

/// Reads the next message, keeping the descriptors that come with it.
fn recv_with_fds(
    stream: &sys::ControlStream,
    buf: &mut Vec<u8>,
    fds: &mut Vec<std::os::fd::OwnedFd>,
) -> io::Result<Message> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(msg) = crate::protocol::take_message(buf)? {
            return Ok(msg);
        }
        let n = stream.recv_with_fds(&mut chunk, fds)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the control stream closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The program's stdio as the shim receives it over the link: the
/// channel's ends and the stderr the caller asked for, sent with
/// `message`; a session's program's own control stream first.
fn send_with_stdio(
    stream: &sys::ControlStream,
    message: &Message,
    held: &HeldStdio,
    control: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<()> {
    use std::os::fd::AsFd as _;
    let null;
    let own_stderr;
    let stderr = match (held.mode, &held.stderr) {
        (Stderr::Piped, Some(pipe)) => pipe.as_fd(),
        (Stderr::Merge, _) => held.channel.stdout_handle().as_fd(),
        (Stderr::Null, _) => {
            null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
            null.as_fd()
        }
        _ => {
            own_stderr = io::stderr().as_fd().try_clone_to_owned()?;
            own_stderr.as_fd()
        }
    };
    let stdio = [held.channel.stdin_handle().as_fd(), held.channel.stdout_handle().as_fd(), stderr];
    let fds: Vec<_> = control.into_iter().chain(stdio).collect();
    stream.send_with_fds(&crate::protocol::encode(message), &fds)
}

/// The parent's side up to `spawned`: waits for the shim, authenticates it
/// (it descends from the launcher, unless the launcher detaches or
/// reparents (`caps`), which cuts
/// the ancestry; it sends back the token's first half), proves itself with
/// the second half, and sends the request. While waiting, the launcher's
/// end (then it refused, or the shim failed to start) ends the wait.
fn connect(
    rendezvous: &mut sys::Rendezvous,
    hs: Handshake<'_>,
    launcher_pid: u32,
    caps: Capabilities,
    child: &mut Child,
    shim: &Path,
    mut inner: Option<&mut InnerPrompts>,
) -> Result<Link, Error> {
    let launcher = hs.launcher;
    let token =
        Token::new().map_err(|e| Error::new(ErrorKind::Io, format!("cannot make the shim's token: {e}"), Some(e)))?;
    // su: the launcher's stdio is its terminal; the program's waits here.
    let mut held = child.take_held_stdio();
    let mut token_sent = false;
    let mut refused = 0;
    let (mut stream, buf) = loop {
        // A detaching launcher ends at once: that is no refusal.
        let detaches = caps.detaches;
        let peer = if detaches || caps.reparents { None } else { Some(launcher_pid) };
        let launcher_done = || if detaches { None } else { child.try_wait().ok().flatten().map(|e| e.status) };
        let mut stream = match accept(rendezvous, &hs, peer, launcher_done, &mut refused)? {
            Accepted::Peer(stream) => stream,
            Accepted::Ended(ended) => {
                let status = ended.map_or_else(|| "ended".to_string(), |s| format!("{s:?}"));
                // 126/127 from the far host's shell: the command could not
                // run, likely the shim itself (a local launcher's shim was
                // checked, and pkexec says 127 for an unknown user too).
                let hint = match ended {
                    Some(ExitStatus::Exited(126 | 127)) if hs.remote => format!(
                        "; the shim {} may be missing or not executable there (--shim-path names it; --no-shim does without)",
                        shim.display()
                    ),
                    // ssh's own failures, a refused forwarding among them
                    // (ExitOnForwardFailure).
                    Some(ExitStatus::Exited(255)) if hs.remote => "; if the server forbids stream-local forwarding \
                        (AllowStreamLocalForwarding no), the in-band link goes without it (ShimLink::InBand, \
                        --shim-link in-band)"
                        .to_string(),
                    _ => String::new(),
                };
                return Err(Error::new(
                    ErrorKind::LauncherRefused,
                    format!(
                        "{launcher} ended ({status}) before the shim connected: refused (authentication, policy or unknown user), or the shim could not start{hint}"
                    ),
                    None,
                ));
            }
        };
        // The token goes into the channel once, for the first peer that
        // passed the ancestry check: only the holder of the program's end
        // can read it. A stranger that got here first gets nothing from it,
        // and the real shim still finds the one copy.
        if !token_sent {
            token_sent = true;
            // A failed write means the launcher is gone with its end of
            // the channel: no shim can say hello, and the wait below ends
            // with the launcher's exit.
            if held.is_some() {
                // Typed on the launcher's private terminal, as the person at
                // it would.
                if let Some(relay) = &child.prompts {
                    let _ = relay.type_line(token::typed(token.bytes()).as_bytes());
                }
            } else if let Some(channel) = child.channel() {
                let _ = channel.write_all(token.bytes());
            }
        }
        stream.set_read_deadline(Some((Instant::now() + HELLO_TIMEOUT).min(hs.deadline)));
        let mut buf = Vec::new();
        if let Some(inner) = inner.as_deref_mut() {
            // A far sudo's askpass helper comes here before the shim does
            // (`InnerPrompts`): told apart by its first bytes.
            let mut first = [0u8; 4];
            match io::Read::read_exact(&mut stream, &mut first) {
                Ok(()) if InnerPrompts::is_question(&first) => {
                    if let Err(e) = inner.answer(stream, &first) {
                        tracing::warn!(launcher, "a far askpass helper: {e}");
                    }
                    continue;
                }
                Ok(()) => buf.extend_from_slice(&first),
                Err(_) => {
                    refused += 1;
                    continue;
                }
            }
        }
        match recv(&mut stream, &mut buf) {
            Ok(hello @ Message::Hello { .. }) if token.proven_by(&hello) => break (stream, buf),
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
    tracing::info!(launcher, refused, "the shim connected and proved the token; answering with the other half");
    match held.take() {
        // The descriptors go with the welcome; our copies close after.
        Some(held) => send_with_stdio(&stream, &token.welcome(), &held, None),
        None => send(&mut stream, &token.welcome()),
    }
    .map_err(link_error(launcher, "answering the shim's hello"))?;
    finish_connect(stream, buf, hs, |_| Ok(()))
}

/// Starts the launcher with the shim as its program, and drives the shim
/// up to `spawned`.
pub(super) fn spawn(spec: &ProgramSpec, opts: &Options) -> Result<Child, Error> {
    let deadline = Instant::now() + opts.connect_timeout;
    match spawn_once(spec, opts, deadline, None)? {
        Ok(child) => Ok(child),
        // Through ssh the far host has no shim at our path: a copy, and
        // the same launch again from it.
        Err(FarShimMissing) => {
            let shim_path = opts.shim_program()?;
            let source = super::source::Source::of(opts)?;
            let copy = far_copy::place(&opts.launcher, &shim_path, &source, false, deadline)
                .map_err(|e| Error::cannot_start(&spec.program, e.kind(), &e.to_string(), None))?;
            let origin = format!("{source} copied to the far host at {}", copy.to_string_lossy());
            match spawn_once(spec, opts, deadline, Some(copy))? {
                Ok(child) => Ok(child.with_shim_origin(origin)),
                Err(FarShimMissing) => Err(Error::cannot_start(&spec.program, ErrorKind::ShimFailed, COPY_GONE, None)),
            }
        }
    }
}

/// Through ssh, the far host had no shim at the caller's path (the
/// session's look said so with [`FAR_SHIM_MISSING`]).
struct FarShimMissing;

/// The exit code of the far session's look when the shim is not there.
const FAR_SHIM_MISSING: i32 = 121;

/// Why a launch from a far copy just made found no shim either.
const COPY_GONE: &str = "the shim copied to the far host was gone before it ran";

/// `program args...` run by `sh` only if `program` is there and
/// executable; else the session ends with [`FAR_SHIM_MISSING`].
fn looked(program: std::ffi::OsString, args: Vec<std::ffi::OsString>) -> ProgramSpec {
    let script = format!("if [ -f \"$1\" ] && [ -x \"$1\" ]; then exec \"$@\"; fi; exit {FAR_SHIM_MISSING}");
    let mut all: Vec<std::ffi::OsString> = vec!["-c".into(), script.into(), "sh".into(), program];
    all.extend(args);
    ProgramSpec { program: "sh".into(), args: all, ..ProgramSpec::default() }
}

/// One launch; through ssh without `shim_path` the far session first
/// looks for the shim at our path (in the same session, at no cost) and
/// ends with [`FAR_SHIM_MISSING`] when it is not there; with `far_copy`
/// it runs that copy, which removes itself as it starts.
fn spawn_once(
    spec: &ProgramSpec,
    opts: &Options,
    deadline: Instant,
    far_copy: Option<std::ffi::OsString>,
) -> Result<Result<Child, FarShimMissing>, Error> {
    let fail = |kind, what: &str, source| Error::cannot_start(&spec.program, kind, what, source);
    let launcher = opts.launcher.name();
    let caps = opts.launcher.capabilities();
    if caps.shim_route == ShimRoute::Elevation {
        return Err(fail(ErrorKind::InvalidInput, "runas (UAC elevation) exists only on Windows", None));
    }
    if opts.in_band() {
        return in_band::spawn(spec, opts).map(Ok);
    }
    if let Err(why) = opts.launcher.far_socket_reachable() {
        return Err(fail(ErrorKind::InvalidInput, &why, None));
    }
    if caps.shim_route == ShimRoute::InBandCopied {
        let what = format!(
            "the shim cannot reach the rendezvous from inside a container ({launcher} exec forwards no socket): \
             use the in-band link (ShimLink::Auto or InBand)"
        );
        return Err(fail(ErrorKind::InvalidInput, &what, None));
    }
    let shim_path = opts.shim_program()?;
    let target = opts.launcher.target_user();
    let mut rendezvous = sys::Rendezvous::create(target)
        .map_err(|e| fail(ErrorKind::Io, &format!("cannot create the rendezvous: {e}"), Some(e)))?;
    // A local launcher's user who cannot execute the shim where it is (a
    // binary in a 0700 home or build directory) gets a copy of it in the
    // rendezvous directory, gone once the shim connected.
    let local = caps.shim_route == ShimRoute::Local;
    let run_path = match local.then(|| sys::can_execute_as(&shim_path, target)) {
        Some(Err(why)) if super::copy_helps(&opts.launcher, &shim_path) => {
            let placed = rendezvous.place_shim(&shim_path, target).map_err(|e| {
                let what = format!("{why}, and a copy of it cannot be placed in the rendezvous directory: {e}");
                fail(ErrorKind::ShimFailed, &what, Some(e))
            })?;
            tracing::info!(from = %shim_path.display(), to = %placed.display(), %why, "the shim is copied where the target user can execute it");
            placed
        }
        _ => shim_path.clone(),
    };
    // The shim reports the program's end, so the launcher process is only
    // reaped: a detaching one is started as if it did not detach.
    // Through ssh the shim runs on the far host: ssh forwards a fresh
    // socket there to our rendezvous (its local end is the ssh client, our
    // launcher), and the shim is told the far path.
    let far_name =
        remote::random_name().map_err(|e| fail(ErrorKind::Io, &format!("cannot name the far socket: {e}"), Some(e)))?;
    let (outer_launcher, shim_rendezvous) = opts.launcher.around_shim(&rendezvous.path(), &far_name);
    // sudo beyond ssh, with a handler: its askpass helper is the far shim
    // program, reaching this rendezvous through ssh's forwarding.
    let far_program = far_copy.clone().unwrap_or_else(|| run_path.clone().into_os_string());
    let (outer_launcher, mut inner) = match inner_sudo(opts, outer_launcher.clone(), &shim_rendezvous, &far_program)? {
        Some((launcher, inner)) => (launcher, Some(inner)),
        None => (outer_launcher, None),
    };
    // A socket ssh makes on the far host, which nobody else removes if
    // the shim never connects to it.
    let far_socket = (shim_rendezvous != rendezvous.path().as_os_str()).then(|| shim_rendezvous.clone());
    // Through ssh without shim_path (and not yet copied), the session
    // looks for the shim at our path first.
    let look =
        caps.shim_route == ShimRoute::Forwarded && caps.foreign_pids && opts.shim_path.is_none() && far_copy.is_none();
    // su reads its password on its stdin: with a handler its stdio is its
    // private terminal, and the program's goes to the shim over the link.
    // With no handler, a caller other than root (whom su does not ask)
    // gets the same, with every question declined at once: su would
    // otherwise wait on the channel for a password nobody types.
    let stdio_over_link =
        caps.prompts == PromptRoute::StandardInput && (opts.prompt_handler.is_some() || !sys::caller_is_root());
    let prompt_handler = match &opts.prompt_handler {
        None if stdio_over_link => Some(Handler::Nobody),
        handler => handler.clone(),
    };
    let mut args = vec![super::SHIM_ARG.into(), super::RENDEZVOUS_FLAG.into(), shim_rendezvous];
    if stdio_over_link {
        args.push(super::STDIO_FLAG.into());
    }
    if let Some(copy) = &far_copy {
        args.extend([super::REMOVE_FLAG.into(), copy.clone()]);
    }
    let program = far_program;
    let outer_spec = if look { looked(program, args) } else { ProgramSpec { program, args, ..ProgramSpec::default() } };
    let in_foreground = opts.process_group && sys::in_terminal_foreground();
    let client_is_link = caps.shim_route == ShimRoute::Forwarded;
    let outer_opts = Options {
        stderr: opts.stderr,
        kind: opts.kind,
        launcher: outer_launcher,
        detection: ExitDetection::Process,
        // Where the caller passes signals on itself (the program leads a
        // group of its own), a group's signal must reach the caller alone:
        // the launcher dying of it would lose the status. Unless the
        // launcher may have to prompt on the caller's terminal, which only
        // the foreground group can read: then it stays in the caller's
        // group, where a Ctrl-C does no harm to a launcher that is not the
        // link (sudo passes a terminal's signal on to nobody, and the shim
        // ignores it), or, for ssh, whose client is the link, gets a group
        // of its own and the terminal on loan until the shim connected.
        process_group: opts.process_group && (!in_foreground || client_is_link),
        prompt_handler,
        stdio_over_link,
        // The askpass helper is the local shim (`local_shim_program`).
        shim_source: Some(opts.local_shim_program()?),
        ..Options::default()
    };
    tracing::debug!(rendezvous = %rendezvous.path().display(), "rendezvous ready");
    // Without a launcher the shim itself is what could not start: told
    // apart from the program (whose 127/126 the shim reports as such).
    let mut child = crate::spawn::spawn(&outer_spec, &outer_opts).map_err(|e| match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotExecutable if opts.launcher.is_direct() => Error::cannot_start(
            &spec.program,
            ErrorKind::ShimFailed,
            &format!("the shim {} cannot be started: {e}", shim_path.display()),
            None,
        ),
        _ => e,
    })?;
    let launcher_pid = child.id().unwrap_or(0);
    let loan = (in_foreground && client_is_link).then(|| sys::TerminalLoan::lend(launcher_pid)).flatten();
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
        remote: caps.foreign_pids,
    };
    let link = connect(&mut rendezvous, handshake, launcher_pid, caps, &mut child, &shim_path, inner.as_mut());
    // The shim connected (or never will): no prompt comes after this.
    drop(loan);
    drop(rendezvous);
    match link {
        Ok(link) => {
            let child = child.into_shim(link, opts.kill_on_drop);
            // A far copy's origin is said by `spawn`, which made it of
            // what it knows.
            let origin = match (&far_copy, run_path != shim_path) {
                (Some(_), _) => return Ok(Ok(child)),
                (None, true) => format!("{} copied into the rendezvous directory", shim_path.display()),
                (None, false) if caps.foreign_pids => format!("{} on the far host", run_path.display()),
                (None, false) => shim_path.display().to_string(),
            };
            Ok(Ok(child.with_shim_origin(origin)))
        }
        Err(e) => {
            // The launcher's end, as the handshake saw it or as stopping it
            // finds it.
            let (ended, stopped) = match child.try_wait() {
                Ok(Some(exit)) => (Some(exit.status), false),
                _ => {
                    let process = child.source().process.as_ref();
                    (process.and_then(|l| super::stop_failed_launcher(l, e.kind() == ErrorKind::TimedOut)), true)
                }
            };
            // A far socket that ssh made for a shim that never connected
            // (the shim removes it once connected) would stay there: sshd
            // does not remove it when the session goes. Removed where the
            // session ran and ended by itself (ssh's own failures, 255,
            // made no socket), and where we stopped it (the connect
            // timeout, seen here to leave one in 4 runs once the shim's
            // copy got fast): then, with no handler, in batch mode, so
            // that a session stopped mid-prompt is not asked again.
            let session_ran = matches!(ended, Some(ExitStatus::Exited(code)) if code != 255);
            if let Some(far_socket) = far_socket.filter(|_| session_ran || stopped) {
                // Through a chain's first hop, ssh, as the socket's owner
                // (an inner hop may be what refused).
                let first = opts.launcher.hops().first().unwrap_or(&opts.launcher);
                // After a stop, briefly: a host slow enough to time out the
                // launch must not hold its error for long.
                let (first, within) = match stopped {
                    true if opts.prompt_handler.is_none() => (first.batch_mode(), Duration::from_secs(3)),
                    true => (first.clone(), Duration::from_secs(3)),
                    false => (first.clone(), Duration::from_secs(10)),
                };
                remote::remove_through(&first, &far_socket, opts.prompt_handler.as_ref(), within);
            }
            // A copy the shim would have removed as it started: gone
            // already if it ran, else removed here.
            if let Some(copy) = &far_copy {
                far_copy::remove(&opts.launcher, copy);
            }
            if look && ended == Some(ExitStatus::Exited(FAR_SHIM_MISSING)) {
                return Ok(Err(FarShimMissing));
            }
            let mut told = child.prompts.as_deref().map(Relay::outcome).unwrap_or_default();
            if e.kind() == ErrorKind::LauncherRefused {
                told.push_str(&opts.launcher.which_hop_refused(ended));
            }
            if let Some(inner) = &inner {
                told.push_str(&inner.outcome());
            }
            if opts.launcher.hops().len() > 1 && e.kind() == ErrorKind::LauncherRefused {
                told.push_str(
                    "; in a chain only the first hop's prompts, and a sudo's beyond ssh, are answered (other inner \
                     hops must not ask)",
                );
            }
            Err(Error::cannot_start(&spec.program, e.kind(), &format!("{e}{told}"), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chains_refusal_names_the_part_that_refused() {
        let ssh = Launcher::Ssh { destination: "ops@db1".into(), port: None, options: vec![] };
        let sudo = Launcher::Sudo { user: None, non_interactive: true };
        let chain = Launcher::Chain(vec![ssh.clone(), sudo.clone()]);
        assert_eq!(chain.which_hop_refused(Some(ExitStatus::Exited(255))), "; ssh to ops@db1 itself failed (255)");
        assert_eq!(
            chain.which_hop_refused(Some(ExitStatus::Exited(1))),
            "; ssh to ops@db1 connected: sudo on it refused"
        );
        assert_eq!(ssh.which_hop_refused(Some(ExitStatus::Exited(1))), "", "one launcher: its own message");
        let no_ssh_first = Launcher::Chain(vec![sudo.clone(), sudo]);
        assert_eq!(no_ssh_first.which_hop_refused(Some(ExitStatus::Exited(1))), "", "no ssh first");
    }

    #[test]
    fn a_far_sudo_asks_through_the_askpass_helper() {
        let ssh = Launcher::Ssh { destination: "ops@db1".into(), port: None, options: vec![] };
        let sudo = Launcher::Sudo { user: Some("app".into()), non_interactive: true };
        let env = vec!["A=1".into(), "SUDO_ASKPASS=/x".into()];
        let chain = Launcher::Chain(vec![ssh.clone(), sudo.clone()]);
        let (rewritten, hop) = chain.with_far_sudo_askpass(env.clone()).unwrap().expect("ssh then sudo");
        assert_eq!(hop, 1);
        let Launcher::Chain(hops) = rewritten else { panic!("still a chain") };
        let Launcher::Custom { prefix, capabilities } = &hops[1] else { panic!("the sudo hop rewritten") };
        assert_eq!(prefix, &["env", "A=1", "SUDO_ASKPASS=/x", "sudo", "-A", "-u", "app", "--"]);
        assert_eq!(*capabilities, sudo.capabilities());
        assert!(Launcher::Chain(vec![sudo.clone(), ssh.clone()]).with_far_sudo_askpass(env.clone()).unwrap().is_none());
        assert!(sudo.with_far_sudo_askpass(env.clone()).unwrap().is_none(), "not a chain");
        let option = Launcher::Chain(vec![ssh, Launcher::Sudo { user: Some("-x".into()), non_interactive: true }]);
        assert_eq!(option.with_far_sudo_askpass(env).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
