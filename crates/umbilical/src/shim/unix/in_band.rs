//! The in-band link (Unix callers): the shim's control stream rides a
//! second session of the same launcher instead of a forwarded socket.
//!
//! Container exec forwards no socket, and hardened ssh servers refuse to
//! (`AllowStreamLocalForwarding no`). What every launcher does carry is a
//! session's stdin and stdout. So:
//! 1. Through container exec, the shim is copied in (`docker cp` of a
//!    static build to `/tmp/umbilical-<random>`, or another place where
//!    `/tmp` is missing, open to others' renames, or read-only), unless
//!    `shim_path` names one already there; only into a running container,
//!    where no other user can rename it, and removed on every path
//!    ([`placement`]).
//! 2. A first session runs the shim as a **bridge**: it listens on a socket
//!    next to it that only its user may connect to, says it is ready, and
//!    relays that socket to the session's stdin/stdout, which is a
//!    socketpair of ours. Through container exec with a user, the bridge
//!    runs as the container's default user (it removes the copy it owns)
//!    and hands the socket to the program's user. Through a chain it runs
//!    through the hops before the last (the exec; ssh then sudo: root) and
//!    hands the socket to the last hop's user. Through ssh without
//!    `shim_path` its session looks for the shim first, and a far host
//!    without it gets a copy (`far_copy.rs`), which the bridge removes.
//! 3. A second session runs the shim proper on the channel, as through any
//!    launcher. It connects to the bridge's socket, and the handshake is the
//!    usual one: the parent writes a token into the channel, the shim proves
//!    it read it, the parent answers with the other half. A process of the
//!    same user that reached the socket first cannot prove the token: the
//!    launch fails, nothing is started for it.
//!
//! Why not the shim's stderr, one session only: a launcher carries nothing
//! back into the shim's session but its stdin, and stdin belongs to the
//! program. A kill, a detach and above all the caller's death need a way
//! in: the docker and podman daemons keep a program running after its exec
//! client is killed (verified here), so the only news of the caller that
//! reaches inside is the end of a session's stdin. The bridge's session is
//! that news: when the caller dies, the bridge's stdin ends, the link drops,
//! and the shim ends the program after the grace. When the shim's own
//! session dies while the caller lives (its exec client killed), the caller
//! sees that launcher end without a report, asks the shim whether it lives,
//! and on its answer drops the link itself (`Link::in_band`). The program's stderr stays its own: nothing is framed
//! or relayed.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::token::Token;
use crate::child::Child;
use crate::error::{Error, ErrorKind};
use crate::exit::{ExitDetection, ExitStatus};
use crate::launcher::ShimRoute;
use crate::link::{Link, Signs};
use crate::options::Options;
use crate::protocol::{Message, recv, send};
use crate::shim::{Handshake, finish_connect, link_error, timed_out};
use crate::spec::ProgramSpec;
use crate::sys;

mod placement;
mod staged;

use placement::{Placed, place};
/// Starts the program through the shim with an in-band link.
pub(super) fn spawn(spec: &ProgramSpec, opts: &Options) -> Result<Child, Error> {
    let fail = |kind, what: &str, source| Error::cannot_start(&spec.program, kind, what, source);
    if !matches!(opts.launcher.capabilities().shim_route, ShimRoute::Forwarded | ShimRoute::InBandCopied) {
        return Err(fail(
            ErrorKind::InvalidInput,
            "an in-band shim link goes through ssh or container exec only; a local launcher's shim reaches the rendezvous",
            None,
        ));
    }
    let launcher = opts.launcher.name();
    let deadline = Instant::now() + opts.connect_timeout;
    let name = super::remote::random_name()
        .map_err(|e| fail(ErrorKind::Io, &format!("cannot name the bridge's socket: {e}"), Some(e)))?;
    let placed = place(opts, &name, deadline).map_err(|e| fail(e.kind(), &e.to_string(), None))?;
    let socket = placed.socket.clone();
    // Failing here, a container's copy goes with `placed`.
    let (bridge, mut placed) =
        bridge_with_copy(opts, placed, deadline).map_err(|e| fail(e.kind(), &e.to_string(), None))?;
    // The bridge runs: it removes the copy when it ends.
    placed.hand_over();
    tracing::info!(launcher = %launcher, socket, "the shim's bridge is listening");
    let outer_spec = ProgramSpec {
        program: placed.shim.clone().into_os_string(),
        args: vec![crate::shim::SHIM_ARG.into(), crate::shim::RENDEZVOUS_FLAG.into(), socket.into()],
        ..ProgramSpec::default()
    };
    let outer_opts = Options {
        stderr: opts.stderr,
        kind: opts.kind,
        launcher: opts.launcher.clone(),
        detection: ExitDetection::Process,
        // A group's signal (a supervisor's, timeout(1)'s) must reach the
        // caller, who passes it on through the link, and not kill the
        // engine's client, whose end would only lose the status.
        process_group: opts.process_group,
        ..Options::default()
    };
    let mut child = match crate::spawn::spawn(&outer_spec, &outer_opts) {
        Ok(child) => child,
        Err(e) => {
            // Dropping the bridge's stream ends its session: the bridge
            // removes the socket and the copied shim, and exits.
            drop(bridge.stream);
            sys::adopt(bridge.process);
            return Err(e);
        }
    };
    let handshake = Handshake {
        launcher: &launcher,
        deadline,
        request: crate::shim::request(spec, opts.process_group, opts.caller_gone_grace),
        extra: None,
        // The pid is in the container's namespace, or on the far host.
        remote: true,
    };
    let exit = child.source().process.as_ref().and_then(sys::Process::exit_handle);
    match connect(bridge.stream, handshake, &mut child, &placed.shim) {
        Ok(link) => {
            let link = link.with(Signs {
                launcher_exit: exit,
                companion: Some((bridge.process, bridge.stderr)),
                ..Signs::default()
            });
            Ok(child.into_shim(link, opts.kill_on_drop).with_shim_origin(placed.origin.clone()))
        }
        Err(e) => {
            if let Some(launcher) = &child.source().process {
                crate::shim::stop_failed_launcher(launcher, e.kind() == ErrorKind::TimedOut);
            }
            sys::adopt(bridge.process);
            Err(fail(e.kind(), &e.to_string(), None))
        }
    }
}

/// The bridge's session: its link stream, its launcher process and the
/// pipe its stderr goes to (kept open while the link lives, so that a late
/// word from the engine's client is no broken pipe).
struct Bridge {
    stream: sys::ControlStream,
    process: sys::Process,
    stderr: sys::Handle,
}

/// Starts the bridge; through ssh, a far host without the shim at our
/// path (the bridge's session looked) gets a copy, made as the bridge's
/// user (shared with the program's user beyond a chain's last hop), which
/// the bridge removes, and the bridge starts again from it.
fn bridge_with_copy(opts: &Options, placed: Placed, deadline: Instant) -> Result<(Bridge, Placed), Error> {
    match start_bridge(opts, &placed, deadline)? {
        Ok(bridge) => Ok((bridge, placed)),
        Err(super::FarShimMissing) => {
            let bridge_launcher = opts.launcher.as_default_user();
            let source = crate::shim::source::Source::of(opts)?;
            let shared = opts.launcher.hops().len() > 1;
            let copy = super::far_copy::place(&bridge_launcher, &placed.shim, &source, shared, deadline)?;
            let placed = placed.far_copy(copy.clone(), &source);
            let failed = match start_bridge(opts, &placed, deadline) {
                Ok(Ok(bridge)) => return Ok((bridge, placed)),
                Ok(Err(super::FarShimMissing)) => Error::new(ErrorKind::ShimFailed, super::COPY_GONE, None),
                Err(e) => e,
            };
            super::far_copy::remove(&bridge_launcher, &copy);
            Err(failed)
        }
    }
}

/// Starts the bridge through the launcher and waits for its ready byte;
/// through ssh without `shim_path`, [`super::FarShimMissing`] where the
/// far host has no shim at our path.
fn start_bridge(
    opts: &Options,
    placed: &Placed,
    deadline: Instant,
) -> Result<Result<Bridge, super::FarShimMissing>, Error> {
    // Named as what runs it: through a chain, the hops before the last.
    let launcher = opts.launcher.as_default_user().name();
    let socket = placed.socket.as_str();
    let mut args = vec![crate::shim::SHIM_ARG.into(), crate::shim::BRIDGE_FLAG.into(), socket.into()];
    if placed.copied() {
        args.extend([crate::shim::REMOVE_FLAG.into(), placed.shim.clone().into_os_string()]);
    }
    if let Some(user) = opts.launcher.target_user() {
        args.extend([crate::shim::OWNER_FLAG.into(), user.into()]);
    }
    let spec = if placed.look {
        super::looked(placed.shim.clone().into_os_string(), args)
    } else {
        ProgramSpec { program: placed.shim.clone().into_os_string(), args, ..ProgramSpec::default() }
    };
    let launched = opts
        .launcher
        .as_default_user()
        .wrap(&spec, ExitDetection::Process, false)?
        .expect("ssh and container exec are launchers");
    // As the shim's session: out of the caller's group.
    let (ours, process, err_read) = super::remote::spawn_on_stream(&launched.spec, opts.process_group, &launcher)?;
    let mut ready = [0u8; 1];
    let got = sys::read_exact_until(&ours, &mut ready, deadline);
    if got.is_ok() && ready[0] == super::bridge::READY {
        let stream = sys::ControlStream::from_std(UnixStream::from(ours));
        return Ok(Ok(Bridge { stream, process, stderr: err_read }));
    }
    let timed = matches!(&got, Err(e) if e.kind() == io::ErrorKind::TimedOut);
    drop(ours);
    let status = super::remote::reap_within(process, Duration::from_secs(2));
    let said = super::remote::said_on(err_read);
    let said = said.trim();
    if timed {
        return Err(timed_out(&launcher, "the shim's bridge did not start"));
    }
    if placed.look && status == Some(ExitStatus::Exited(super::FAR_SHIM_MISSING)) {
        return Ok(Err(super::FarShimMissing));
    }
    let status_text = status.map_or_else(|| "did not end".to_string(), |s| format!("{s:?}"));
    match status {
        // The engines' and sh's code for a program that could not run.
        Some(ExitStatus::Exited(126 | 127)) => Err(Error::new(
            ErrorKind::ShimFailed,
            format!(
                "{launcher}: the shim {} could not run there ({status_text}: {said}); a container needs a static \
                 build (see Command::shim_source), a far host the shim at shim_path",
                placed.shim.display()
            ),
            None,
        )),
        _ => Err(Error::new(
            ErrorKind::LauncherRefused,
            format!(
                "{launcher} ended ({status_text}) before the shim's bridge was ready: no such container or host, or \
                 the exec was refused: {said}"
            ),
            None,
        )),
    }
}

/// The parent's side of the handshake over the bridge's stream: the token
/// into the channel, the shim's proof, ours, and the request. While
/// waiting, the end of the shim's session ends the wait.
fn connect(mut stream: sys::ControlStream, hs: Handshake<'_>, child: &mut Child, shim: &Path) -> Result<Link, Error> {
    let launcher = hs.launcher;
    let token =
        Token::new().map_err(|e| Error::new(ErrorKind::Io, format!("cannot make the shim's token: {e}"), Some(e)))?;
    if let Some(channel) = child.channel() {
        // A failed write means the session is gone: the wait below ends
        // with its exit.
        let _ = channel.write_all(token.bytes());
    }
    if let Some(exit) = child.source().process.as_ref().and_then(sys::Process::exit_handle) {
        match sys::wait_any(&[stream.as_fd(), exit.as_fd()], Some(hs.deadline)) {
            Ok(Some(0)) => {}
            Ok(Some(_)) => {
                let status = child.try_wait().ok().flatten().map(|e| e.status);
                let status_text = status.map_or_else(|| "ended".to_string(), |s| format!("{s:?}"));
                let (kind, why) = match status {
                    Some(ExitStatus::Exited(126 | 127)) => {
                        (ErrorKind::ShimFailed, format!("the shim {} could not run there", shim.display()))
                    }
                    _ => (ErrorKind::LauncherRefused, "the exec was refused or the container stopped".to_string()),
                };
                return Err(Error::new(
                    kind,
                    format!("{launcher} ended ({status_text}) before the shim connected to its bridge: {why}"),
                    None,
                ));
            }
            Ok(None) => return Err(timed_out(launcher, "the shim did not connect to its bridge")),
            Err(e) => return Err(link_error(launcher, "waiting for the shim")(e)),
        }
    }
    stream.set_read_deadline(Some(hs.deadline));
    let mut buf = Vec::new();
    match recv(&mut stream, &mut buf) {
        Ok(hello @ Message::Hello { .. }) if token.proven_by(&hello) => {}
        Ok(Message::Hello { .. }) => {
            return Err(Error::new(
                ErrorKind::ShimFailed,
                format!(
                    "{launcher}: a process other than our shim connected to the bridge first (wrong token); nothing was started"
                ),
                None,
            ));
        }
        Ok(other) => {
            return Err(Error::new(ErrorKind::Protocol, format!("{launcher}: expected hello, got {other:?}"), None));
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
            return Err(timed_out(launcher, "the shim did not say hello"));
        }
        Err(e) => return Err(link_error(launcher, "reading the shim's hello")(e)),
    }
    tracing::info!(launcher, "the shim connected through its bridge and proved the token");
    send(&mut stream, &token.welcome()).map_err(link_error(launcher, "answering the shim's hello"))?;
    finish_connect(stream, buf, hs, |_| Ok(()))
}
