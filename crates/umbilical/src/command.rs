//! The builder: what to run, with which environment, and how to watch it.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::channel::{Channel, ChannelKind};
use crate::child::{Child, ChildStderr};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::Detection;
use crate::launcher::Launcher;
use crate::spec::ProgramSpec;
use crate::sys;
use crate::sys::StderrTarget;

/// Where the program's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Stderr {
    /// The parent's stderr (the default).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// Into the channel, mixed with stdout (like `2>&1`).
    Merge,
    /// A separate pipe, read through [`Child::stderr`].
    ///
    /// The rule, as with std: read it (from another thread, if the channel
    /// is read at the same time) or drop it. A program that fills the pipe
    /// while nobody reads it blocks, and so does whoever waits for its
    /// output. Dropping the [`ChildStderr`](crate::ChildStderr) makes the
    /// program's further stderr writes fail (`EPIPE`) instead.
    Piped,
}

/// How [`Child::wait`] decides that the program is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ExitDetection {
    /// The best that the way of starting allows; for a direct spawn that is
    /// [`ExitDetection::Process`].
    #[default]
    Auto,
    /// Wait for the process umbilical started: exact status, but if that
    /// process is only a wrapper that exits at once, its exit is reported.
    Process,
    /// Give the program an extra descriptor (fd 3, the lifeline) and wait
    /// until every process that inherited it has exited. Waits for a whole
    /// tree that keeps inherited descriptors; the status is
    /// [`ExitStatus::Unknown`](crate::ExitStatus::Unknown).
    Lifeline,
    /// Wait until the program's side of the channel is closed in every
    /// process that held it. Needs no extra descriptor; the status is
    /// [`ExitStatus::Unknown`](crate::ExitStatus::Unknown).
    ChannelClosed,
}

/// Whether to start the program through the shim; see [`Command::shim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ShimMode {
    /// Never (except [`Launcher::RunAs`], which always needs it).
    #[default]
    Off,
    /// Always; [`Command::spawn`] fails where it cannot work.
    On,
    /// Wherever it can work; see [`Command::shim_choice`].
    Auto,
}

impl From<bool> for ShimMode {
    fn from(on: bool) -> Self {
        if on { ShimMode::On } else { ShimMode::Off }
    }
}

/// What [`Command::shim_choice`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShimChoice {
    /// Whether the shim will be used.
    pub used: bool,
    /// Why, in a few words (for `-v` output and reports).
    pub reason: String,
}

/// A program to start, mirroring [`std::process::Command`].
///
/// The program gets the channel on its fds 0 and 1, its stderr per
/// [`Command::stderr`], the lifeline on fd 3 if asked for, and no other
/// descriptor of the parent's.
///
/// # Program lookup
///
/// A program name without a `/` is searched in the `PATH` of the program's
/// environment (the parent's `PATH` unless [`Command::env`] or
/// [`Command::env_clear`] changed it; `/bin:/usr/bin` if there is none), as
/// `execvp` does, but in the parent, so that "not found" and "not
/// executable" are told apart before anything is started. A name with a `/`
/// is used as it is; on Unix a relative one is taken from
/// [`Command::current_dir`] when that is set, as the program itself would
/// see it after changing directory (on Windows, as `CreateProcessW` does,
/// from the parent's directory). On Windows a bare name is also searched in
/// the system and Windows directories, `.exe` is tried first for a name
/// without an extension, and batch files (`.bat`, `.cmd`) are refused with
/// [`ErrorKind::InvalidInput`]: `cmd.exe` re-parses their arguments by rules
/// no quoting can make safe. Unlike `execvp`, a file without a `#!` line that the kernel
/// cannot run is not retried through `/bin/sh`.
///
/// ```
/// use umbilical::{Command, Stderr};
/// let mut cmd = Command::new("sort");
/// cmd.arg("-r").env("LC_ALL", "C").stderr(Stderr::Null);
/// let child = cmd.spawn()?;
/// # drop(child);
/// # Ok::<(), umbilical::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Command {
    spec: ProgramSpec,
    stderr: Stderr,
    kind: ChannelKind,
    lifeline: bool,
    detection: ExitDetection,
    launcher: Launcher,
    shim: ShimMode,
    shim_path: Option<PathBuf>,
    connect_timeout: Duration,
    caller_gone_grace: Duration,
    kill_on_drop: bool,
    force_fork: bool,
    process_group: bool,
    #[cfg_attr(unix, allow(dead_code))]
    no_window: bool,
    #[cfg_attr(unix, allow(dead_code))]
    kill_on_close_job: bool,
}

impl Command {
    /// A command for `program`, with no arguments, the parent's environment
    /// and working directory, stderr inherited.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            spec: ProgramSpec { program: program.as_ref().to_owned(), ..ProgramSpec::default() },
            stderr: Stderr::Inherit,
            kind: ChannelKind::Socket,
            lifeline: false,
            detection: ExitDetection::Auto,
            launcher: Launcher::Direct,
            shim: ShimMode::Off,
            shim_path: None,
            connect_timeout: crate::shim::DEFAULT_CONNECT_TIMEOUT,
            caller_gone_grace: crate::shim::DEFAULT_GRACE,
            kill_on_drop: false,
            force_fork: false,
            process_group: false,
            no_window: false,
            kill_on_close_job: false,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.spec.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spec.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the program.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.spec.env.insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes a variable from the program's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.spec.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Starts the program with an empty environment plus what
    /// [`Command::env`] adds afterwards.
    pub fn env_clear(&mut self) -> &mut Self {
        self.spec.env.clear();
        self.spec.env_clear = true;
        self
    }

    /// The program's working directory. It must exist: a missing one is an
    /// [`ErrorKind::InvalidInput`] error naming it.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.spec.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Where the program's stderr goes.
    pub fn stderr(&mut self, stderr: Stderr) -> &mut Self {
        self.stderr = stderr;
        self
    }

    /// Socket (default) or two pipes.
    pub fn channel_kind(&mut self, kind: ChannelKind) -> &mut Self {
        self.kind = kind;
        self
    }

    /// Whether to give the program a lifeline on fd 3. Implied by
    /// [`ExitDetection::Lifeline`].
    pub fn lifeline(&mut self, on: bool) -> &mut Self {
        self.lifeline = on;
        self
    }

    /// How [`Child::wait`] decides that the program is done.
    pub fn exit_detection(&mut self, detection: ExitDetection) -> &mut Self {
        self.detection = detection;
        self
    }

    /// Start the program through a launcher (sudo, doas, pkexec, runuser,
    /// su, ssh, container exec, or a custom prefix).
    ///
    /// The channel is the program's fds 0 and 1 through every launcher that
    /// keeps stdio. Environment changes reach the program through `env`
    /// (launchers reset the environment). The working directory is the
    /// launcher's own, which sudo, doas, runuser, su and `pkexec --keep-cwd`
    /// keep; through ssh and container exec it is refused. `Auto` exit
    /// detection picks what the launcher's [`Capabilities`](crate::Capabilities)
    /// allow: the process for launchers that return the program's status,
    /// the lifeline or the channel for one that detaches; a detaching
    /// launcher's exit is never reported as the program's.
    ///
    /// Caveat without the [shim](Command::shim): a launcher's own refusal
    /// (for example `sudo -n` without rights exits 1) cannot be told from
    /// the program's exit code, and [`Child::kill`] signals the launcher
    /// process.
    pub fn launcher(&mut self, launcher: Launcher) -> &mut Self {
        self.launcher = launcher;
        self
    }

    /// Start the program through the shim (see [`crate::shim`]): the
    /// launcher starts the shim, which connects back, starts the program
    /// with the channel, and reports its pid and exact status. Then a
    /// launcher's refusal is [`ErrorKind::LauncherRefused`], a program
    /// missing on the far side is [`ErrorKind::NotFound`], the status is
    /// exact through any launcher ([`Detection::Shim`]), and
    /// [`Child::kill`] reaches a program the parent may not signal itself.
    /// Through ssh the shim runs on the far host (so [`Command::shim_path`]
    /// must name it there) and reaches back through a forwarded Unix socket
    /// (`ssh -R`). Refused through container exec
    /// ([`ErrorKind::InvalidInput`]): `docker`/`podman`/`kubectl exec`
    /// forward no socket from the container back to the rendezvous, and
    /// without the shim they already return the program's status.
    ///
    /// On Windows the shim runs with no launcher or through
    /// [`Launcher::RunAs`] (which always uses it); it opens the channel's
    /// pipes by name. Other launchers with the shim are Unix-only.
    ///
    /// Exit detection through the shim is always the shim's report; the
    /// [`exit_detection`](Command::exit_detection) setting does not apply.
    ///
    /// Takes a [`ShimMode`] or a `bool` (`true` is [`ShimMode::On`]). The
    /// default is [`ShimMode::Off`]: an explicit choice. With
    /// [`ShimMode::Auto`] the shim is used wherever it can work (see
    /// [`Command::shim_choice`]), as the `umbilical` CLI does.
    ///
    /// ```
    /// use umbilical::{Command, Launcher, ShimMode};
    /// let mut cmd = Command::new("id");
    /// cmd.launcher(Launcher::Sudo { user: None, non_interactive: true }).shim(ShimMode::Auto);
    /// let choice = cmd.shim_choice();
    /// println!("shim used: {} ({})", choice.used, choice.reason);
    /// ```
    pub fn shim(&mut self, mode: impl Into<ShimMode>) -> &mut Self {
        self.shim = mode.into();
        self
    }

    /// Whether [`Command::spawn`] will use the shim, and why: the mode's
    /// decision, with [`ShimMode::Auto`] resolved. Auto uses the shim
    /// through every launcher that switches user (sudo, doas, pkexec,
    /// runuser, su) when that user can execute the shim (every directory on
    /// its path searchable, the file executable, by mode bits), through ssh
    /// (the far host must have it at the same path, or at
    /// [`Command::shim_path`]), and through Windows elevation; not with no
    /// launcher (the status is exact without it), not through container
    /// exec (no way back to the rendezvous), not through a custom prefix
    /// (whether it runs the shim is unknowable).
    pub fn shim_choice(&self) -> ShimChoice {
        let chosen = |used: bool, reason: &str| ShimChoice { used, reason: reason.to_string() };
        match self.shim {
            ShimMode::On => return chosen(true, "asked for"),
            ShimMode::Off if self.launcher == Launcher::RunAs => return chosen(true, "runas always uses it"),
            ShimMode::Off => return chosen(false, "not asked for"),
            ShimMode::Auto => {}
        }
        match &self.launcher {
            Launcher::Direct => chosen(false, "no launcher: the program's status is exact without it"),
            Launcher::RunAs => chosen(true, "runas always uses it"),
            Launcher::ContainerExec { .. } => chosen(false, "container exec forwards no socket back to the rendezvous"),
            Launcher::Custom { .. } => chosen(false, "a custom launcher may not run it"),
            Launcher::Ssh { .. } => chosen(true, "through ssh"),
            other => {
                let path = match self.shim_program() {
                    Ok(path) => path,
                    Err(e) => return ShimChoice { used: false, reason: e.to_string() },
                };
                match sys::can_execute_as(&path, other.target_user()) {
                    Ok(()) => ShimChoice { used: true, reason: format!("through {}", other.name()) },
                    Err(why) => ShimChoice { used: false, reason: why },
                }
            }
        }
    }

    /// How long [`Command::spawn`] waits for the shim to connect back and
    /// report the program started (default 60 s). A launcher that asks for
    /// a password waits within it. On expiry the launcher is killed and
    /// the error is [`ErrorKind::TimedOut`].
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.connect_timeout = timeout;
        self
    }

    /// Through the shim: when the control link drops without the caller
    /// letting go (the caller was killed, crashed, or its ssh connection
    /// broke), the shim sends the program SIGTERM (to its group with
    /// [`Command::process_group`]) and, after this grace (default 5 s),
    /// SIGKILL, so that nothing keeps running as another user once the
    /// caller is gone. On Windows the shim terminates it at once. A caller
    /// that drops its [`Child`] without [`Command::kill_on_drop`] lets go:
    /// the program runs on.
    pub fn caller_gone_grace(&mut self, grace: Duration) -> &mut Self {
        self.caller_gone_grace = grace;
        self
    }

    /// Whether dropping the [`Child`] while the program runs kills it, as
    /// tokio's `kill_on_drop`: SIGKILL (to its group with
    /// [`Command::process_group`]), through the shim where it runs through
    /// one; Windows: `TerminateProcess`. Off by default, as in std: a
    /// dropped child runs on (reaped in the background).
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Self {
        self.kill_on_drop = on;
        self
    }

    /// The shim program: a binary that calls
    /// [`shim::run_if_invoked`](crate::shim::run_if_invoked) (the
    /// `umbilical` CLI does). Defaults to the current executable.
    pub fn shim_path(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.shim_path = Some(path.as_ref().to_owned());
        self
    }

    /// Unix: starts the program as the leader of a new process group, and
    /// makes [`Child::signal`](crate::Child::signal),
    /// [`Child::terminate`](crate::Child::terminate) and
    /// [`Child::kill`](crate::Child::kill) signal that whole group, so that
    /// the program's own children (a shell script's commands) get them too,
    /// as `timeout(1)` does. Through the shim, the shim does the same on the
    /// far side. After the program exits, the `Child` keeps it unreaped (a
    /// zombie, reaped on drop) so that the group's id cannot be reused while
    /// what the program left in its group can still be signalled.
    ///
    /// The caveat of a group of its own: the terminal's Ctrl-C and Ctrl-\\
    /// (sent to the foreground group) no longer reach the program directly;
    /// the caller forwards them (the `umbilical` CLI does). Off by default,
    /// as in std. Windows: no effect.
    pub fn process_group(&mut self, on: bool) -> &mut Self {
        self.process_group = on;
        self
    }

    /// Spawn with `fork` + `close_range` + `execve` even where `posix_spawn`
    /// could do it. For testing the fallback path; not part of the stable
    /// API.
    #[doc(hidden)]
    pub fn force_fork_exec(&mut self, on: bool) -> &mut Self {
        self.force_fork = on;
        self
    }

    /// The program, as given.
    pub fn get_program(&self) -> &OsStr {
        &self.spec.program
    }

    /// The arguments, as given.
    pub fn get_args(&self) -> impl Iterator<Item = &OsStr> {
        self.spec.args.iter().map(OsString::as_os_str)
    }

    /// Starts the program.
    ///
    /// On failure nothing is left behind: no process, no descriptor.
    pub fn spawn(&self) -> Result<Child> {
        let name = self.spec.program.to_string_lossy().into_owned();
        let fail = |kind: ErrorKind, what: &str, source: Option<io::Error>| {
            Error::new(kind, format!("cannot start `{name}`: {what}"), source)
        };
        if self.spec.program.is_empty() {
            return Err(fail(ErrorKind::InvalidInput, "the program name is empty", None));
        }
        if self.shim_choice().used {
            return self.spawn_with_shim();
        }
        let launched = self.through_launcher().map_err(|e| fail(e.kind(), &e.to_string(), None))?;
        let (program, args, env_clear, env, requested) = match &launched {
            Some(l) => (l.argv[0].as_os_str(), &l.argv[1..], l.env_clear, &l.env, l.detection),
            None => (
                self.spec.program.as_os_str(),
                &self.spec.args[..],
                self.spec.env_clear,
                &self.spec.env,
                self.detection,
            ),
        };
        if let Some(dir) = &self.spec.cwd
            && !dir.is_dir()
        {
            let what = format!("working directory {} does not exist or is not a directory", dir.display());
            return Err(fail(ErrorKind::InvalidInput, &what, None));
        }
        let io_fail = |what: &'static str| move |e: io::Error| fail(ErrorKind::Io, what, Some(e));
        let (channel, child_end) = Channel::pair(self.kind).map_err(io_fail("cannot create the channel"))?;
        let (stderr_parent, stderr_child) = match self.stderr {
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
        let (lifeline_parent, lifeline_child) = if self.lifeline || detection == Detection::Lifeline {
            let (r, w) = sys::inbound_pipe().map_err(io_fail("cannot create the lifeline"))?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let request = sys::Request {
            program,
            args,
            env_clear,
            env,
            cwd: self.spec.cwd.as_deref(),
            stdin: child_end.stdin_handle(),
            stdout: child_end.stdout_handle(),
            stderr: match (self.stderr, &stderr_child) {
                (Stderr::Inherit, _) => StderrTarget::Inherit,
                (Stderr::Null, _) => StderrTarget::Null,
                (Stderr::Merge, _) => StderrTarget::To(child_end.stdout_handle()),
                (_, Some(w)) => StderrTarget::To(w),
                (Stderr::Piped, None) => unreachable!("piped stderr has a pipe"),
            },
            lifeline: lifeline_child.as_ref(),
            force_fork: self.force_fork,
            process_group: self.process_group,
            no_window: self.no_window,
            kill_on_close_job: self.kill_on_close_job,
        };
        let process = sys::spawn(&request).map_err(|e| match (&launched, e.kind) {
            (Some(_), ErrorKind::NotFound) => Error::new(
                ErrorKind::LauncherNotFound,
                format!("cannot start `{name}` through {}: {}", self.launcher.name(), e.what),
                e.source,
            ),
            _ => fail(e.kind, &e.what, e.source),
        })?;
        // The parent's copies of the child's descriptors close here, so the
        // program's exit is what ends reads and the lifeline.
        drop((child_end, stderr_child, lifeline_child));
        let watch = (detection == Detection::ChannelClosed).then(|| channel.read_end().clone());
        if let Some(end) = &watch {
            end.watched.store(true, std::sync::atomic::Ordering::Release);
        }
        let mut child =
            Child::new(process, channel, stderr_parent.map(ChildStderr::new), detection, lifeline_parent, watch);
        child.kill_on_drop = self.kill_on_drop;
        Ok(child)
    }
}

#[cfg(unix)]
impl Command {
    /// Starts the launcher with the shim as its program, and drives the
    /// shim up to `spawned`.
    fn spawn_with_shim(&self) -> Result<Child> {
        let name = self.spec.program.to_string_lossy().into_owned();
        let launcher = self.launcher.name();
        if self.launcher == Launcher::RunAs {
            let what = format!("cannot start `{name}`: runas (UAC elevation) exists only on Windows");
            return Err(Error::new(ErrorKind::InvalidInput, what, None));
        }
        if matches!(self.launcher, Launcher::ContainerExec { .. }) {
            let what = format!(
                "cannot start `{name}`: the shim cannot reach the rendezvous from inside a container ({launcher} exec \
                 forwards no socket); without the shim, {launcher} exec already returns the program's status"
            );
            return Err(Error::new(ErrorKind::InvalidInput, what, None));
        }
        let deadline = Instant::now() + self.connect_timeout;
        let shim_path = self.shim_program()?;
        let rendezvous = sys::Rendezvous::create(self.launcher.target_user())
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot create the rendezvous: {e}"), Some(e)))?;
        // The shim reports the program's end, so the launcher process is
        // only reaped: a detaching one is started as if it did not detach.
        let detaches = self.launcher.capabilities().detaches;
        // Through ssh the shim runs on the far host: ssh forwards a fresh
        // socket there to our rendezvous (its local end is the ssh client,
        // our launcher), and the shim is told the far path.
        let mut shim_rendezvous = rendezvous.path().as_os_str().to_owned();
        let outer_launcher = match &self.launcher {
            Launcher::Custom { prefix, capabilities } => Launcher::Custom {
                prefix: prefix.clone(),
                capabilities: crate::Capabilities { detaches: false, ..*capabilities },
            },
            Launcher::Ssh { destination, port, options } => {
                let random = sys::random_token::<16>()
                    .map_err(|e| Error::new(ErrorKind::Io, format!("cannot name the far socket: {e}"), Some(e)))?;
                let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
                let far = format!("/tmp/umbilical-{name}.sock");
                let mut options = options.clone();
                options.extend(["-o".into(), "ExitOnForwardFailure=yes".into(), "-R".into()]);
                options.push(format!("{far}:{}", rendezvous.path().display()));
                shim_rendezvous = far.into();
                Launcher::Ssh { destination: destination.clone(), port: *port, options }
            }
            other => other.clone(),
        };
        let mut outer = Command::new(&shim_path);
        outer
            .arg(crate::shim::SHIM_ARG)
            .arg(crate::shim::RENDEZVOUS_FLAG)
            .arg(&shim_rendezvous)
            .stderr(self.stderr)
            .channel_kind(self.kind)
            .launcher(outer_launcher)
            .exit_detection(ExitDetection::Process);
        let mut child = outer.spawn()?;
        let launcher_pid = child.id().unwrap_or(0);
        let handshake = crate::shim::Handshake {
            launcher: &launcher,
            deadline,
            request: crate::shim::request(&self.spec, self.process_group, self.caller_gone_grace),
            extra: None,
            remote: matches!(self.launcher, Launcher::Ssh { .. }),
        };
        let link = crate::shim::connect(&rendezvous, handshake, launcher_pid, detaches, &mut child, &shim_path);
        drop(rendezvous);
        match link {
            Ok(link) => Ok(child.into_shim(link, self.kill_on_drop)),
            Err(e) => {
                // The shim exits on its own after reporting a failure; a hung
                // one (or any, once the time is up) is killed. Either way it
                // is reaped here, not later.
                if e.kind() == ErrorKind::TimedOut || !matches!(child.wait_timeout(Duration::from_secs(2)), Ok(Some(_)))
                {
                    // SIGTERM first: sudo, doas and ssh pass it on to what
                    // they started (SIGKILL would orphan it), and SIGCONT
                    // wakes a launcher stopped with its stopped shim.
                    let _ = child.terminate();
                    let _ = child.signal(sys::CONTINUE_SIGNAL);
                    if !matches!(child.wait_timeout(Duration::from_millis(500)), Ok(Some(_))) {
                        let _ = child.kill();
                        let _ = child.wait_timeout(Duration::from_secs(2));
                    }
                }
                Err(Error::new(e.kind(), format!("cannot start `{name}`: {e}"), None))
            }
        }
    }
}

#[cfg(windows)]
impl Command {
    /// Starts the shim (directly, or elevated through `ShellExecuteExW`
    /// "runas"), which opens the channel's pipes by name, and drives it up
    /// to `spawned`.
    fn spawn_with_shim(&self) -> Result<Child> {
        use crate::protocol::WireStderr;
        use crate::sys::Direction;
        let name = self.spec.program.to_string_lossy().into_owned();
        let launcher = self.launcher.name();
        let fail = |kind: ErrorKind, what: String, source: Option<io::Error>| {
            Error::new(kind, format!("cannot start `{name}`: {what}"), source)
        };
        let elevated = match &self.launcher {
            Launcher::Direct => false,
            Launcher::RunAs => true,
            other => {
                let what = format!("on Windows the shim runs directly or through runas, not through {}", other.name());
                return Err(fail(ErrorKind::InvalidInput, what, None));
            }
        };
        let deadline = Instant::now() + self.connect_timeout;
        let shim_path = self.shim_program()?;
        let io_fail = |what: &'static str| move |e: io::Error| fail(ErrorKind::Io, what.into(), Some(e));
        let mut rendezvous = sys::Rendezvous::create().map_err(io_fail("cannot create the rendezvous"))?;
        let stdin = sys::pipe_server(Direction::Outbound).map_err(io_fail("cannot create the channel"))?;
        let stdout = sys::pipe_server(Direction::Inbound).map_err(io_fail("cannot create the channel"))?;
        // An elevated shim inherits nothing, not even our stderr: with
        // `Inherit` the program's stderr comes back through a pipe and a
        // thread copies it to ours.
        let relay = elevated && self.stderr == Stderr::Inherit;
        let (stderr, stderr_pipe) = match self.stderr {
            Stderr::Piped => (WireStderr::Inherit, Some(Direction::Inbound)),
            Stderr::Inherit if relay => (WireStderr::Inherit, Some(Direction::Inbound)),
            Stderr::Inherit => (WireStderr::Inherit, None),
            Stderr::Null => (WireStderr::Null, None),
            Stderr::Merge => (WireStderr::Merge, None),
        };
        let stderr_pipe = match stderr_pipe {
            Some(d) => Some(sys::pipe_server(d).map_err(io_fail("cannot create the stderr pipe"))?),
            None => None,
        };
        let stdio = crate::shim::ShimStdio { stdin, stdout, stderr, stderr_pipe };
        // The rendezvous name is not a secret (the shim's pid is the proof);
        // it has no spaces or quotes to escape.
        let rendezvous_name = rendezvous.path();
        let mut params = OsString::from(crate::shim::SHIM_ARG);
        params.push(" ");
        params.push(crate::shim::RENDEZVOUS_FLAG);
        params.push(" ");
        params.push(rendezvous_name.as_os_str());
        let process = if elevated {
            sys::run_elevated(shim_path.as_os_str(), &params).map_err(|e| match e {
                sys::ElevateError::Declined(e) => Error::new(
                    ErrorKind::LauncherRefused,
                    format!("cannot start `{name}` through runas: the elevation was declined"),
                    Some(e),
                ),
                sys::ElevateError::Failed(e) => Error::new(
                    ErrorKind::ShimFailed,
                    format!("cannot start `{name}`: cannot start the shim {} elevated: {e}", shim_path.display()),
                    Some(e),
                ),
            })?
        } else {
            let nul = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("NUL")
                .map_err(io_fail("cannot open NUL for the shim"))?;
            let nul = sys::Handle::from(nul);
            let args = [
                OsString::from(crate::shim::SHIM_ARG),
                OsString::from(crate::shim::RENDEZVOUS_FLAG),
                rendezvous_name.into_os_string(),
            ];
            let env = BTreeMap::new();
            let request = sys::Request {
                program: shim_path.as_os_str(),
                args: &args,
                env_clear: false,
                env: &env,
                cwd: None,
                stdin: &nul,
                stdout: &nul,
                stderr: match self.stderr {
                    Stderr::Null => StderrTarget::Null,
                    _ => StderrTarget::Inherit,
                },
                lifeline: None,
                force_fork: false,
                process_group: false,
                no_window: self.no_window,
                kill_on_close_job: self.kill_on_close_job,
            };
            sys::spawn(&request).map_err(|e| {
                let what = format!("cannot start the shim {}: {}", shim_path.display(), e.what);
                Error::new(ErrorKind::ShimFailed, format!("cannot start `{name}`: {what}"), e.source)
            })?
        };
        let shim_pid = process.pid();
        let handshake = crate::shim::Handshake {
            launcher: &launcher,
            deadline,
            request: crate::shim::request(&self.spec, self.process_group, self.caller_gone_grace),
            extra: None,
            remote: false,
        };
        let link =
            crate::shim::connect(&mut rendezvous, handshake, shim_pid, || process.try_wait().ok().flatten(), &stdio);
        drop(rendezvous);
        let link = match link {
            Ok(link) => link,
            Err(e) => {
                // The shim exits on its own after reporting a failure; a hung
                // one (or any, once the time is up) is killed.
                let patience = if e.kind() == ErrorKind::TimedOut { Duration::ZERO } else { Duration::from_secs(2) };
                if !matches!(process.wait_deadline(Some(Instant::now() + patience)), Ok(Some(_))) {
                    let _ = process.kill();
                }
                return Err(Error::new(e.kind(), format!("cannot start `{name}`: {e}"), None));
            }
        };
        let crate::shim::ShimStdio { stdin, stdout, stderr_pipe, .. } = stdio;
        let channel = Channel::from_pipe_ends(stdout.1, stdin.1);
        let stderr = match stderr_pipe {
            Some((_, pipe)) if relay => {
                let mut from = ChildStderr::new(pipe);
                // Ends when the program and the shim have closed the pipe.
                let _ = std::thread::Builder::new().name("umbilical-stderr-relay".into()).stack_size(64 * 1024).spawn(
                    move || {
                        let _ = io::copy(&mut from, &mut io::stderr());
                    },
                );
                None
            }
            Some((_, pipe)) => Some(ChildStderr::new(pipe)),
            None => None,
        };
        Ok(Child::new(process, channel, stderr, Detection::Process, None, None).into_shim(link, self.kill_on_drop))
    }
}

impl Command {
    /// The shim to start: [`Command::shim_path`], else this executable.
    /// (`spawn` has already refused an empty program name.)
    fn shim_program(&self) -> Result<PathBuf> {
        match &self.shim_path {
            Some(p) => Ok(p.clone()),
            None => std::env::current_exe().map_err(|e| {
                Error::new(ErrorKind::ShimFailed, format!("cannot find the shim (current_exe): {e}"), Some(e))
            }),
        }
    }
}

/// What to spawn instead when a launcher is used.
struct Launched {
    argv: Vec<OsString>,
    /// For the launcher process itself (a custom one may keep them).
    env_clear: bool,
    env: BTreeMap<OsString, Option<OsString>>,
    detection: ExitDetection,
}

impl Command {
    fn through_launcher(&self) -> Result<Option<Launched>> {
        if self.launcher == Launcher::Direct {
            return Ok(None);
        }
        let invalid = |what: String| Error::new(ErrorKind::InvalidInput, what, None);
        let detection = self.launcher.detection(self.detection).map_err(invalid)?;
        let custom = matches!(self.launcher, Launcher::Custom { .. });
        if self.spec.cwd.is_some() && matches!(self.launcher, Launcher::Ssh { .. } | Launcher::ContainerExec { .. }) {
            return Err(invalid(format!("current_dir cannot be passed through {} yet", self.launcher.name())));
        }
        // Launchers reset the environment; `env` re-applies the changes on
        // the far side.
        let (program, args) = if !custom && (self.spec.env_clear || !self.spec.env.is_empty()) {
            // env [-i] [-u NAME]... -- [NAME=VALUE]... PROGRAM ARGS: options
            // only before `--`, assignments after it.
            let mut args: Vec<OsString> = Vec::new();
            if self.spec.env_clear {
                args.push("-i".into());
            }
            for (k, v) in &self.spec.env {
                if v.is_none() && !self.spec.env_clear {
                    args.push("-u".into());
                    args.push(k.clone());
                }
            }
            args.push("--".into());
            for (k, v) in &self.spec.env {
                if let Some(v) = v {
                    let mut kv = k.clone();
                    kv.push("=");
                    kv.push(v);
                    args.push(kv);
                }
            }
            args.push(self.spec.program.clone());
            args.extend(self.spec.args.iter().cloned());
            (OsString::from("env"), args)
        } else {
            (self.spec.program.clone(), self.spec.args.clone())
        };
        let argv = self.launcher.plan(&program, &args)?;
        let env = if custom { self.spec.env.clone() } else { BTreeMap::new() };
        Ok(Some(Launched { argv, env_clear: custom && self.spec.env_clear, env, detection }))
    }
}

#[cfg(windows)]
impl Command {
    /// Windows: start a console program without a console window
    /// (`CREATE_NO_WINDOW`).
    pub fn create_no_window(&mut self, on: bool) -> &mut Self {
        self.no_window = on;
        self
    }

    /// Windows: put the program in a job object that kills it (and what it
    /// started inside the job) when the job is closed, which happens when
    /// the `Child` is dropped or the parent dies. [`Child::kill`] then
    /// terminates the whole job.
    pub fn kill_on_close_job(&mut self, on: bool) -> &mut Self {
        self.kill_on_close_job = on;
        self
    }
}

impl From<&std::process::Command> for Command {
    /// Copies the program, arguments, environment changes and working
    /// directory. std does not expose whether `env_clear` was called, so
    /// that one is not carried over; stdio settings do not apply.
    fn from(std_cmd: &std::process::Command) -> Self {
        let mut cmd = Command::new(std_cmd.get_program());
        cmd.args(std_cmd.get_args());
        for (k, v) in std_cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = std_cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd
    }
}
