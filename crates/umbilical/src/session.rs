//! Elevated sessions: one launcher run (one password), then many programs.

use std::ffi::OsStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::command::{Command, SessionStarter};
use crate::error::{Error, ErrorKind, Result};
use crate::launcher::Launcher;
use crate::options::ShimMode;

/// An elevated session: the launcher runs once (one authentication, one
/// password prompt at most), and every program of the session starts
/// without it.
///
/// GUIs and installers elevate again and again: twenty commands as root,
/// several saves of root-owned files, a privileged helper per request. A
/// launcher run per program means a password prompt per program (sudo's
/// timestamp does not help a caller without a terminal, and pkexec has
/// none), a PAM session per program, and milliseconds per start. A session
/// opens one shim through the launcher ([`Session::open`]) and then
/// starts each program through it: [`Session::command`] gives a
/// [`Command`] whose [`spawn`](Command::spawn) (and `spawn_async`) returns
/// the same [`Child`](crate::Child) as ever, with its own channel and
/// half-close, its exact status, its kills and its pid.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use umbilical::{Launcher, Secret, Session};
///
/// let session = Session::builder(Launcher::Sudo { user: None, non_interactive: false })
///     .prompt_handler(|prompt| (prompt.attempt == 1).then(|| Secret::new("hunter2")))
///     .open()?; // the one password prompt
/// for file in ["/etc/hosts", "/etc/hostname"] {
///     let mut child = session.command("cat").arg(file).spawn()?; // no prompt
///     let mut text = String::new();
///     child.channel().unwrap().read_to_string(&mut text)?;
///     assert!(child.wait()?.success());
/// }
/// session.close()?; // or drop it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Lifetime
///
/// The session lives until the caller closes it ([`Session::close`]) or
/// drops it, or dies, or no program ran for its idle timeout
/// ([`SessionBuilder::idle_timeout`]). Then its shim ends every program
/// still running (SIGTERM, then SIGKILL after
/// [`SessionBuilder::caller_gone_grace`]) and exits. A
/// [`Command`] made by [`Session::command`] does not keep the session
/// open; starting it afterwards is [`ErrorKind::SessionClosed`].
///
/// `Session` is `Send + Sync`: threads may start programs through one
/// session at once.
///
/// # What it is bound to
///
/// The session is the shim's link, authenticated as every shim link is: a
/// connected Unix socket that the caller alone holds (Windows: a
/// one-instance named pipe whose client was the session's shim). Once
/// open, the rendezvous is gone and nothing else can reach the session.
/// Each program gets its own control stream: on Unix one end of a fresh
/// socket pair sent over the link with the program's stdio
/// (`SCM_RIGHTS`); on Windows a fresh one-instance pipe that only the
/// session's shim may connect to, the channel's pipes opened by name as
/// `RunAs` does. `docs/SECURITY.md` has the threat model.
///
/// # Caveats
///
/// - Launchers that run on this machine only: on Unix sudo, doas, pkexec,
///   runuser, su, setpriv, systemd-run, run0, a chain of those, or none;
///   on Windows [`Launcher::RunAs`] (one consent dialog) or none.
///   Descriptors and pipes do not cross ssh or container exec: opening a
///   session through them is [`ErrorKind::InvalidInput`].
/// - A program starts in the session's working directory (the caller's
///   when the session opened) and with the environment the launcher gave
///   the session, changed by the command's own [`Command::env`],
///   [`Command::env_clear`] and [`Command::current_dir`].
/// - The session's shim is the process the launcher started; its
///   [`pid`](Session::pid) is what an administrator sees running as the
///   target user for as long as the session is open.
/// - Windows: a program's end is seen by looking at its link every 50 ms
///   (the session's shim goes on after each report, so its exit is no
///   sign), and the program's stderr, when inherited through `RunAs`,
///   comes back through a pipe copied to ours.
pub struct Session {
    inner: Arc<Inner>,
}

/// What a session's commands reach (weakly: they do not keep it open).
struct Inner {
    opened: crate::shim::session::Opened,
    launcher: Launcher,
    grace: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("launcher", &self.inner.launcher).field("pid", &self.pid()).finish()
    }
}

/// Options for [`Session::open`].
#[derive(Debug, Clone)]
pub struct SessionBuilder {
    opening: Command,
    launcher: Launcher,
    idle: Option<Duration>,
    grace: Duration,
}

impl Session {
    /// Opens a session through `launcher` with the default options: see
    /// [`SessionBuilder`].
    pub fn open(launcher: Launcher) -> Result<Session> {
        Session::builder(launcher).open()
    }

    /// A builder for a session through `launcher`.
    pub fn builder(launcher: Launcher) -> SessionBuilder {
        let mut opening = Command::new("umbilical-session");
        opening.launcher(launcher.clone()).shim(ShimMode::On);
        SessionBuilder { opening, launcher, idle: None, grace: Duration::from_secs(5) }
    }

    /// A [`Command`] for `program` that starts through this session. Its
    /// launcher is the session's; every other option applies as for a
    /// command of its own (arguments, environment, working directory,
    /// stderr, channel kind, process group, kill on drop, connect timeout
    /// for the start, wait delay).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.launcher(self.inner.launcher.clone()).shim(ShimMode::On).caller_gone_grace(self.inner.grace);
        let starter: Weak<dyn SessionStarter> = Arc::downgrade(&self.inner) as Weak<dyn SessionStarter>;
        cmd.session = Some(starter);
        cmd
    }

    /// The launcher the session was opened through.
    pub fn launcher(&self) -> &Launcher {
        &self.inner.launcher
    }

    /// The pid of the session's shim, the elevated process that starts the
    /// programs (`None` once it was reaped).
    pub fn pid(&self) -> Option<u32> {
        self.inner.opened.pid()
    }

    /// Whether the session still takes programs: not closed, not idle past
    /// its timeout, its shim alive.
    pub fn is_open(&self) -> bool {
        self.inner.opened.closed().is_none()
    }

    /// Closes the session and waits until its shim has ended the programs
    /// still running (SIGTERM, the grace, SIGKILL) and exited: at most the
    /// grace and a few seconds. Dropping the session closes it too, without
    /// waiting.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TimedOut`] if the shim did not report its end in time
    /// (it is killed with its launcher as the session drops).
    pub fn close(self) -> Result<()> {
        let until = Instant::now() + self.inner.grace + Duration::from_secs(5);
        match self.inner.opened.close(until) {
            Ok(true) => Ok(()),
            Ok(false) => {
                Err(Error::new(ErrorKind::TimedOut, "the session's shim did not end in time after the close", None))
            }
            Err(e) => Err(Error::new(ErrorKind::Io, format!("closing the session: {e}"), Some(e))),
        }
    }
}

impl SessionBuilder {
    /// Answers the launcher's questions (a password) as
    /// [`Command::prompt_handler`] does, once for the whole session.
    pub fn prompt_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(&crate::Prompt) -> Option<crate::Secret> + Send + Sync + 'static,
    {
        self.opening.prompt_handler(handler);
        self
    }

    /// With no program running for `timeout`, the session closes (its
    /// shim exits). Default: never.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle = Some(timeout);
        self
    }

    /// When the session closes with programs still running, and when a
    /// program's caller is gone, the time between the SIGTERM and the
    /// SIGKILL that end it (default 5 s).
    pub fn caller_gone_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self.opening.caller_gone_grace(grace);
        self
    }

    /// How long the launcher may take to start the session's shim and the
    /// shim to connect, a password prompt included (default 60 s), as
    /// [`Command::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.opening.connect_timeout(timeout);
        self
    }

    /// The shim where the launcher runs it, as [`Command::shim_path`].
    pub fn shim_path(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.opening.shim_path(path);
        self
    }

    /// Opens the session: runs the launcher (asking the handler if it
    /// prompts) and waits for its shim to connect and be authenticated.
    ///
    /// # Errors
    ///
    /// As [`Command::spawn`] through the shim ([`ErrorKind::LauncherRefused`],
    /// [`ErrorKind::TimedOut`], ...); [`ErrorKind::InvalidInput`] for a
    /// launcher that does not run on this machine (ssh, container exec).
    pub fn open(self) -> Result<Session> {
        if self.launcher.capabilities().foreign_pids {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a session runs through a launcher on this machine; {} runs the program elsewhere, where the \
                     session's programs cannot be handed over",
                    self.launcher.name()
                ),
                None,
            ));
        }
        let mut opening = self.opening;
        opening.opts.session_open = Some((self.idle, self.grace));
        let shim = opening.spawn()?;
        let opened = crate::shim::session::Opened::new(shim, self.launcher.name())?;
        Ok(Session { inner: Arc::new(Inner { opened, launcher: self.launcher, grace: self.grace }) })
    }
}

impl SessionStarter for Inner {
    fn start(&self, cmd: &Command) -> Result<crate::Child> {
        if cmd.opts.launcher != self.launcher {
            return Err(Error::cannot_start(
                &cmd.spec.program,
                ErrorKind::InvalidInput,
                "a session's command runs through the session's launcher; another launcher was set on it",
                None,
            ));
        }
        self.opened.spawn(&cmd.spec, &cmd.opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads start programs through one session at once, and a
    /// session's command moves between threads like any command.
    #[test]
    fn sessions_and_their_commands_cross_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Session>();
        send_and_sync::<SessionBuilder>();
        send_and_sync::<Command>();
    }

    /// A launcher that runs the program elsewhere is refused before
    /// anything starts, saying why.
    #[test]
    fn sessions_refuse_launchers_that_run_elsewhere() {
        for launcher in [
            Launcher::Ssh { destination: "db1".into(), port: None, options: vec![] },
            Launcher::ContainerExec { engine: crate::Engine::Docker, target: "web".into(), user: None },
        ] {
            let err = Session::open(launcher.clone()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(&launcher.name()), "{err}");
        }
    }
}
