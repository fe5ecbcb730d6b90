//! What a launch leaves on a far host or in a container, and the bounded
//! helper commands that place and remove it (Unix callers: ssh's forwarded
//! socket, the in-band link's copied shim).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::exit::{ExitDetection, ExitStatus};
use crate::launcher::Launcher;
use crate::options::{Options, Stderr};
use crate::prompt::Handler;
use crate::spec::ProgramSpec;
use crate::sys;

/// A fresh name for the files of one launch (`/tmp/umbilical-<name>` for a
/// copied shim, `<...>.sock` for a far socket): 32 random hex digits, so a
/// name is never guessed ahead or reused.
pub(crate) fn random_name() -> io::Result<String> {
    let random = sys::random_token::<16>()?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

/// The most a helper session may print.
const ANSWER_LIMIT: usize = 4096;

/// `sh -c SCRIPT sh ARGS...`.
pub(crate) fn helper(script: &str, args: &[OsString]) -> ProgramSpec {
    let mut all: Vec<OsString> = vec!["-c".into(), script.into(), "sh".into()];
    all.extend(args.iter().cloned());
    ProgramSpec { program: "sh".into(), args: all, ..ProgramSpec::default() }
}

/// Runs `spec` (a helper placing the shim `place`: "on the far host", "in
/// the container") through `launcher` with `input` on its stdin, until
/// `deadline`: what it printed, if it exited 0.
pub(crate) fn run_helper(
    launcher: &Launcher,
    spec: &ProgramSpec,
    input: &[u8],
    deadline: Instant,
    place: &str,
) -> Result<String, Error> {
    let name = launcher.name();
    let wrapped = launcher.wrap(spec, ExitDetection::Process, false)?.map_or_else(|| spec.clone(), |l| l.spec);
    let (ours, process, stderr) = spawn_on_stream(&wrapped, true, &name)?;
    let fail = |what: String| Error::new(ErrorKind::ShimFailed, what, None);
    let mut rest = input;
    while !rest.is_empty() {
        match sys::write_until(&ours, rest, true, Some(deadline)) {
            Ok(Some(n)) => rest = &rest[n..],
            Ok(None) => {
                let _ = process.kill();
                let _ = reap_within(process, Duration::from_secs(2));
                let what = format!("copying the shim through {name} did not finish in time");
                return Err(Error::new(ErrorKind::TimedOut, what, None));
            }
            Err(e) => {
                let _ = process.kill();
                let _ = reap_within(process, Duration::from_secs(2));
                let said = said_on(stderr);
                return Err(fail(format!("copying the shim through {name} failed: {e} {}", said.trim())));
            }
        }
    }
    let mut stream = std::os::unix::net::UnixStream::from(ours);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let (out, cut) = read_within(&mut stream, deadline, ANSWER_LIMIT, |_| false);
    if cut {
        let _ = process.kill();
    }
    let status = reap_within(process, Duration::from_secs(2));
    if cut {
        let what = format!("{name} did not answer in time while placing the shim");
        return Err(Error::new(ErrorKind::TimedOut, what, None));
    }
    match status {
        Some(crate::exit::ExitStatus::Exited(0)) => Ok(String::from_utf8_lossy(&out).into_owned()),
        other => {
            // Worded as the refusal of the launch itself, which it is: the
            // same session would have refused the shim.
            let said = said_on(stderr);
            let status = other.map_or_else(|| "killed".to_string(), |s| format!("{s:?}"));
            Err(Error::new(
                ErrorKind::LauncherRefused,
                format!(
                    "{name} ended ({status}) before the shim connected: refused (authentication, policy or \
                     unknown user), or failed, while placing the shim {place}: {}",
                    said.trim()
                ),
                None,
            ))
        }
    }
}

/// Runs `spec` (a launcher's helper command: a removal) with no input, as
/// `opts` say (a launcher, a prompt handler), until `deadline`: `Ok` on
/// exit code 0, otherwise an error with what it said on stderr.
fn run_bounded(spec: &ProgramSpec, opts: Options, deadline: Instant) -> Result<(), Error> {
    let opts = Options { stderr: Stderr::Piped, ..opts };
    let mut child = crate::spawn::spawn(spec, &opts).map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::new(ErrorKind::LauncherNotFound, e.to_string(), None),
        _ => e,
    })?;
    drop(child.take_channel());
    let stderr = child.take_stderr();
    let left = deadline.saturating_duration_since(Instant::now());
    let Some(exit) = child.wait_timeout(left).map_err(|e| Error::new(ErrorKind::Io, e.to_string(), Some(e)))? else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::new(ErrorKind::TimedOut, "it did not finish within the connect timeout", None));
    };
    if exit.status == ExitStatus::Exited(0) {
        return Ok(());
    }
    let said = stderr.map(|s| read_some(s.take(4096))).unwrap_or_default();
    Err(Error::new(ErrorKind::LauncherRefused, format!("{:?}: {}", exit.status, said.trim()), None))
}

/// What `r` says, up to its end, as text.
pub(crate) fn read_some(mut r: impl Read) -> String {
    let mut out = Vec::new();
    let _ = r.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The command that removes `paths` through `launcher`, as its default
/// user (`rm -f -- PATH...` there, `rm -rf` where `recursive`); `rm` here
/// with no launcher.
pub(crate) fn remove_spec(launcher: &Launcher, paths: &[&OsStr], recursive: bool) -> Result<ProgramSpec, Error> {
    let mut args: Vec<OsString> = vec![if recursive { "-rf" } else { "-f" }.into(), "--".into()];
    args.extend(paths.iter().map(|p| p.to_os_string()));
    let rm = ProgramSpec { program: "rm".into(), args, ..ProgramSpec::default() };
    Ok(launcher.as_default_user().wrap(&rm, ExitDetection::Process, false)?.map_or(rm, |launched| launched.spec))
}

/// Removes `path` through `launcher` (as its default user), bounded, best
/// effort: what a launch left on a far host or in a container when the
/// shim that would have removed it never ran. `answers` answers the
/// launcher's questions (an ssh that asks for a password asks again), within `within`.
pub(crate) fn remove_through(launcher: &Launcher, path: &OsStr, answers: Option<&Handler>, within: Duration) {
    let rm = ProgramSpec {
        program: "rm".into(),
        args: vec!["-f".into(), "--".into(), path.to_owned()],
        ..ProgramSpec::default()
    };
    let opts = Options { launcher: launcher.as_default_user(), prompt_handler: answers.cloned(), ..Options::default() };
    let result = run_bounded(&rm, opts, Instant::now() + within);
    if let Err(e) = result {
        tracing::warn!("could not remove {} through {}: {e}", path.to_string_lossy(), launcher.name());
    }
}

/// What a helper said on its stderr (a stream from
/// [`spawn_on_stream`]), up to 4 KiB, read until its end or for 1 s at
/// most: something the helper started may hold it open after it is gone.
pub(crate) fn said_on(stderr: sys::Handle) -> String {
    let mut stream = std::os::unix::net::UnixStream::from(stderr);
    let (mut out, _) = read_within(&mut stream, Instant::now() + Duration::from_secs(1), 4096, |_| false);
    out.truncate(4096);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `stream` until its end, `enough` of what came, `limit` bytes or
/// `deadline`: what came, and whether the deadline cut it short.
pub(crate) fn read_within(
    stream: &mut std::os::unix::net::UnixStream,
    deadline: Instant,
    limit: usize,
    enough: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    while !enough(&out) && out.len() < limit {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return (out, true);
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return (out, true),
            Err(_) => break,
        }
    }
    (out, false)
}

/// Reaps a helper or session that should be ending: its status if it
/// exits within `grace`; else it is killed (None), and left to the shared
/// reaper should even that not end it within 2 s.
pub(crate) fn reap_within(process: sys::Process, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = process.wait_deadline(Some(Instant::now() + grace)) {
        return Some(status);
    }
    let _ = process.kill();
    if !matches!(process.wait_deadline(Some(Instant::now() + Duration::from_secs(2))), Ok(Some(_))) {
        sys::adopt(process);
    }
    None
}

/// Starts `spec` (a launcher session, or one of its helper commands) with
/// its stdin and stdout on a stream of ours and its stderr on another
/// (read with [`said_on`], bounded); in a process group of its own when
/// `apart`. `launcher` names it in errors.
pub(crate) fn spawn_on_stream(
    spec: &ProgramSpec,
    apart: bool,
    launcher: &str,
) -> Result<(std::os::fd::OwnedFd, sys::Process, sys::Handle), Error> {
    let io_fail = |what: &'static str| move |e: io::Error| Error::new(ErrorKind::Io, format!("{what}: {e}"), Some(e));
    let (ours, theirs) = sys::socket_pair().map_err(io_fail("cannot create a session's stream"))?;
    let (err_read, err_write) = sys::socket_pair().map_err(io_fail("cannot create a session's stderr stream"))?;
    let request = sys::Request::plain(spec, &theirs, &theirs, sys::StderrTarget::To(&err_write), apart);
    let process = sys::spawn(&request).map_err(|e| match e.kind {
        ErrorKind::NotFound => Error::new(ErrorKind::LauncherNotFound, format!("{launcher}: {}", e.what), e.source),
        kind => Error::new(kind, e.what, e.source),
    })?;
    drop((theirs, err_write));
    Ok((ours, process, err_read))
}

/// What the copies to far hosts and into containers read (Unix callers
/// only: Windows copies no shim).
impl crate::shim::source::Source {
    /// Its bytes.
    pub(crate) fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
        match self {
            Self::File(path) => std::fs::read(path).map(std::borrow::Cow::Owned).map_err(|e| {
                Error::new(
                    ErrorKind::ShimFailed,
                    format!("cannot read the shim {} to copy it: {e}", path.display()),
                    Some(e),
                )
            }),
            Self::Carried(bytes) => Ok(std::borrow::Cow::Borrowed(bytes)),
        }
    }
}
