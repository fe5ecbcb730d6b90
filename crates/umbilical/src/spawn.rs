//! Starting a program without the shim: the program itself, or a
//! launcher's argv around it, with the channel on its fds 0 and 1.

use std::io;

use crate::channel::Channel;
use crate::child::{Child, ChildStderr, HeldStdio};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::{Detection, ExitDetection};
use crate::launcher::{Launcher, PromptRoute};
use crate::options::{Options, Stderr};
use crate::prompt_relay::Relay;
use crate::spec::ProgramSpec;
use crate::sys::{self, StderrTarget};

/// Starts `spec` as `opts` say (its launcher, if any, around it). On
/// failure nothing is left behind: no process, no descriptor.
pub(crate) fn spawn(spec: &ProgramSpec, opts: &Options) -> Result<Child> {
    let fail = |kind, what: &str, source| Error::cannot_start(&spec.program, kind, what, source);
    let mut relay = prompt_relay(opts).map_err(|e| fail(e.kind(), &e.to_string(), None))?;
    let mut launched =
        opts.launcher.wrap(spec, opts.detection, relay.is_some()).map_err(|e| fail(e.kind(), &e.to_string(), None))?;
    if let (Some(launched), Some(relay)) = (&mut launched, &relay) {
        for (k, v) in relay.env() {
            launched.spec.env.insert(k.clone(), Some(v.clone()));
        }
    }
    let (started, requested) = match &launched {
        Some(l) => (&l.spec, l.detection),
        None => (spec, opts.detection),
    };
    if let Some(dir) = &spec.cwd
        && !dir.is_dir()
    {
        let what = format!("working directory {} does not exist or is not a directory", dir.display());
        return Err(fail(ErrorKind::InvalidInput, &what, None));
    }
    let io_fail = |what: &'static str| move |e: io::Error| fail(ErrorKind::Io, what, Some(e));
    let (channel, child_end) = Channel::pair(opts.kind).map_err(io_fail("cannot create the channel"))?;
    let (stderr_parent, stderr_child) = match opts.stderr {
        Stderr::Piped => {
            let (r, w) = sys::inbound_pipe().map_err(io_fail("cannot create the stderr pipe"))?;
            (Some(r), Some(w))
        }
        _ => (None, None),
    };
    let detection = match requested {
        ExitDetection::Auto | ExitDetection::Process => Detection::Process,
        ExitDetection::Lifeline => Detection::Lifeline,
        ExitDetection::ChannelClosed => Detection::ChannelClosed,
    };
    let (lifeline_parent, lifeline_child) = if opts.lifeline || detection == Detection::Lifeline {
        let (r, w) = sys::inbound_pipe().map_err(io_fail("cannot create the lifeline"))?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    // su: the launcher's stdio is its terminal; the program's stdio waits
    // in the child for the shim (`Child::take_held_stdio`).
    let terminal = relay.as_ref().and_then(Relay::terminal).filter(|_| opts.stdio_over_link);
    let request = sys::Request {
        spec: started,
        stdin: terminal.unwrap_or(child_end.stdin_handle()),
        stdout: terminal.unwrap_or(child_end.stdout_handle()),
        stderr: match (opts.stderr, &stderr_child) {
            _ if let Some(terminal) = terminal => StderrTarget::To(terminal),
            (Stderr::Inherit, _) => StderrTarget::Inherit,
            (Stderr::Null, _) => StderrTarget::Null,
            (Stderr::Merge, _) => StderrTarget::To(child_end.stdout_handle()),
            (_, Some(w)) => StderrTarget::To(w),
            (Stderr::Piped, None) => unreachable!("piped stderr has a pipe"),
        },
        lifeline: lifeline_child.as_ref(),
        force_fork: opts.force_fork,
        process_group: opts.process_group,
        no_window: opts.no_window,
        kill_on_close_job: opts.kill_on_close_job,
        kill_on_parent_death: opts.kill_on_parent_death,
        terminal: relay.as_ref().and_then(Relay::terminal),
    };
    tracing::debug!(
        argv = ?std::iter::once(&started.program).chain(&started.args).collect::<Vec<_>>(),
        launcher = %opts.launcher.name(),
        ?detection,
        "starting"
    );
    let process = sys::spawn(&request).map_err(|e| match (&launched, e.kind) {
        (Some(_), ErrorKind::NotFound) => {
            let what = format!("through {}: {}", opts.launcher.name(), e.what);
            Error::cannot_start(&spec.program, ErrorKind::LauncherNotFound, &what, e.source)
        }
        _ => fail(e.kind, &e.what, e.source),
    })?;
    tracing::info!(pid = process.pid(), launcher = %opts.launcher.name(), "started");
    if let Some(relay) = &mut relay
        && let Err(e) = relay.serve(process.pid())
    {
        // Nothing left behind: the launcher would wait for an answer.
        let _ = process.kill();
        let _ = process.wait();
        return Err(fail(ErrorKind::Io, "cannot start the askpass relay", Some(e)));
    }
    // The parent's copies of the child's descriptors close here, so the
    // program's exit is what ends reads and the lifeline (with stdio over
    // the link, once the shim has them).
    let held = opts.stdio_over_link.then(|| HeldStdio { channel: child_end, stderr: stderr_child, mode: opts.stderr });
    drop(lifeline_child);
    let watch = (detection == Detection::ChannelClosed).then(|| channel.read_end().clone());
    if let Some(end) = &watch {
        end.watched.store(true, std::sync::atomic::Ordering::Release);
    }
    let mut child =
        Child::new(process, channel, stderr_parent.map(ChildStderr::new), detection, lifeline_parent, watch);
    child.kill_on_drop = opts.kill_on_drop;
    Ok(child.with_prompts(relay).with_held_stdio(held))
}

/// The prompt relay for the launcher's questions, when a prompt handler is
/// set and the launcher may ask; a handler the launcher's prompts cannot
/// reach is refused rather than ignored.
fn prompt_relay(opts: &Options) -> Result<Option<Relay>> {
    let Some(handler) = &opts.prompt_handler else { return Ok(None) };
    match opts.launcher.capabilities().prompts {
        PromptRoute::Never | PromptRoute::OsDialog => Ok(None),
        PromptRoute::StandardInput if !opts.stdio_over_link => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{}: it reads its password from its standard input; with a prompt handler it runs only through the \
                 shim (ShimMode::Auto or On), which then receives the program's stdio over its link",
                opts.launcher.name()
            ),
            None,
        )),
        route => {
            let deadline = std::time::Instant::now() + opts.connect_timeout;
            // The first hop asks (a chain's inner hops: `shim/unix/mod.rs`).
            let first = opts.launcher.hops().first().map_or_else(|| opts.launcher.name(), Launcher::name);
            Relay::open(route, handler, first, &opts.local_shim_program()?, deadline).map(Some)
        }
    }
}
