//! A session's Windows side (see `shim/session.rs`): each program gets a
//! rendezvous of its own, a named pipe whose name goes over the session's
//! link ([`Message::SessionConnect`]). The session's shim connects to it as
//! a program's own shim would, on a thread of its own, and the caller
//! accepts only the session's shim's pid there, as for any shim; the
//! channel's pipes are then opened by name, as `RunAs` does.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{ShimStdio, connect, connect_and_hello, from_wire, serve_request, to_wire};
use crate::child::Child;
use crate::error::{Error, ErrorKind};
use crate::launcher::ShimRoute;
use crate::link::Signs;
use crate::options::Options;
use crate::protocol::{Message, recv, send};
use crate::shim::running::Running;
use crate::shim::{Handshake, read_request, say};
use crate::spec::ProgramSpec;
use crate::sys;

/// Starts a program in the session whose link `sender` writes to: a fresh
/// rendezvous and channel pipes; the rendezvous' name over the link; then
/// the handshake with the session's shim (pid `shim_pid`) as with a shim of
/// its own.
pub(in crate::shim) fn start(
    sender: &Mutex<sys::ControlStream>,
    shim_pid: u32,
    launcher: &str,
    spec: &ProgramSpec,
    opts: &Options,
) -> Result<Child, Error> {
    let fail = |kind, what: &str, source: Option<io::Error>| Error::cannot_start(&spec.program, kind, what, source);
    let io_fail = |what: &'static str| move |e: io::Error| fail(ErrorKind::Io, &format!("{what}: {e}"), Some(e));
    let mut rendezvous = sys::Rendezvous::create(None).map_err(io_fail("cannot create the program's rendezvous"))?;
    let elevated = opts.launcher.capabilities().shim_route == ShimRoute::Elevation;
    let (stdio, relay) = ShimStdio::new(opts.stderr, elevated).map_err(io_fail("cannot create the channel"))?;
    let ask = Message::SessionConnect { rendezvous: to_wire(rendezvous.path().as_os_str()) };
    {
        let mut sender = sender.lock().unwrap_or_else(|e| e.into_inner());
        send(&mut *sender, &ask)
            .map_err(|e| fail(ErrorKind::SessionClosed, &format!("the session's link failed: {e}"), Some(e)))?;
    }
    let handshake = Handshake {
        launcher,
        deadline: Instant::now() + opts.connect_timeout,
        request: crate::shim::request(spec, opts.process_group, opts.caller_gone_grace),
        extra: None,
        remote: false,
    };
    let mut link = connect(&mut rendezvous, handshake, shim_pid, || None, Some(&stdio))
        .map_err(|e| fail(e.kind(), &e.to_string(), None))?;
    drop(rendezvous);
    let (channel, stderr, drained) = stdio.into_parent_ends(relay);
    // No sign of the report beyond the stream: the session's shim goes on
    // after it (the link looks at the stream every little while).
    link = link.with(Signs { stderr_drained: drained, ..Signs::default() });
    link.start_reader()
        .map_err(|e| fail(ErrorKind::ShimFailed, &format!("cannot start reading the link: {e}"), Some(e)))?;
    Ok(Child::of_session(link, channel, stderr, opts.kill_on_drop).with_wait_delay(opts.wait_delay))
}

/// The shim's side on Windows: each program arrives as a
/// [`Message::SessionConnect`] naming its rendezvous.
pub(in crate::shim) struct Programs;

impl crate::shim::session::Programs for Programs {
    fn next(&mut self, stream: &mut sys::ControlStream, buf: &mut Vec<u8>) -> io::Result<Message> {
        recv(stream, buf)
    }

    fn start(&mut self, msg: &Message, running: &Arc<Running>) -> bool {
        let Message::SessionConnect { rendezvous } = msg else { return false };
        let path = match from_wire(rendezvous) {
            Ok(name) => PathBuf::from(name),
            Err(e) => {
                say(format_args!("umbilical session: a program's rendezvous: {e}"));
                return true;
            }
        };
        let running = running.clone();
        let serve = move || {
            let served = connect_and_hello(&path).and_then(|(mut stream, mut buf)| {
                let requested = read_request(&mut stream, &mut buf)?;
                serve_request(stream, buf, requested, Some(&running))
            });
            if let Err(e) = served {
                say(format_args!("umbilical session: a program's link: {e}"));
            }
        };
        // Without a thread nobody connects: the caller's wait for this
        // program ends at its connect timeout; the session goes on.
        if let Err(e) =
            std::thread::Builder::new().name("umbilical-session-program".into()).stack_size(256 * 1024).spawn(serve)
        {
            say(format_args!("umbilical session: no thread for a program: {e}"));
        }
        true
    }
}
