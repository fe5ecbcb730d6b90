//! The builder: what to run, with which environment, and how to watch it.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use crate::channel::ChannelKind;
use crate::child::Child;
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitDetection;
use crate::launcher::Launcher;
use crate::options::{Options, ShimChoice, ShimMode, Stderr};
use crate::spec::ProgramSpec;

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
    pub(crate) spec: ProgramSpec,
    pub(crate) opts: Options,
    /// The session this command starts through ([`crate::Session::command`]),
    /// held weakly: a command does not keep its session open.
    pub(crate) session: Option<std::sync::Weak<dyn SessionStarter>>,
}

/// What starts a session's commands (`crate::session`, a layer above).
pub(crate) trait SessionStarter: Send + Sync {
    /// Starts `cmd`'s program in the session.
    fn start(&self, cmd: &Command) -> Result<Child>;
}

impl Command {
    /// A command for `program`, with no arguments, the parent's environment
    /// and working directory, stderr inherited.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            spec: ProgramSpec { program: program.as_ref().to_owned(), ..ProgramSpec::default() },
            opts: Options::default(),
            session: None,
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
        self.opts.stderr = stderr;
        self
    }

    /// Socket (default) or two pipes.
    pub fn channel_kind(&mut self, kind: ChannelKind) -> &mut Self {
        self.opts.kind = kind;
        self
    }

    /// Whether to give the program a lifeline on fd 3. Implied by
    /// [`ExitDetection::Lifeline`].
    pub fn lifeline(&mut self, on: bool) -> &mut Self {
        self.opts.lifeline = on;
        self
    }

    /// How [`Child::wait`] decides that the program is done.
    pub fn exit_detection(&mut self, detection: ExitDetection) -> &mut Self {
        self.opts.detection = detection;
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
        self.opts.launcher = launcher;
        self
    }

    /// Answer the launcher's questions on the way in (`[sudo] password for
    /// alice: `, ssh's password or host-key question) with `handler`, for a
    /// caller with no terminal: an editor saving a root-owned file, an
    /// installer, a GUI. It is called once per question, on a thread of
    /// umbilical's own while the launch waits for the launcher, with the
    /// [`Prompt`](crate::Prompt) as the launcher wrote it and its attempt
    /// number; it returns the answer as a [`Secret`](crate::Secret) (zeroed
    /// when dropped) or `None` to decline. It may block (a dialog, a person
    /// typing) up to the [`connect_timeout`](Command::connect_timeout).
    ///
    /// How each launcher asks ([`PromptRoute`](crate::PromptRoute)):
    /// sudo is run with `-A` and `SUDO_ASKPASS`, ssh with `SSH_ASKPASS` and
    /// `SSH_ASKPASS_REQUIRE=force`, naming umbilical's askpass helper: the
    /// shim program (this executable, or [`shim_path`](Command::shim_path)),
    /// which must call [`shim::run_if_invoked`](crate::shim::run_if_invoked)
    /// first in `main`, started under the name `umbilical-askpass` from a
    /// private directory; it relays the question over a socket that only
    /// the launcher's descendants may use. doas and pkexec (which read
    /// their password from their controlling terminal only) start in a
    /// session of their own whose controlling terminal is a private
    /// pseudo-terminal; the question written there goes to the handler and
    /// the answer is typed back (a declined one is an interrupt, no
    /// attempt). The answer never passes through an argv, an environment
    /// or a file. su asks on its stderr and reads from its stdin: through
    /// the shim, su's stdio is the private terminal and the program's own
    /// reaches the shim over its link (without the shim, a handler with su
    /// is refused: [`ErrorKind::InvalidInput`]); runuser and container exec ask nothing; [`Launcher::RunAs`]'s
    /// consent dialog is the OS's own (the handler is never called). Unix
    /// only for now.
    ///
    /// Caveat (doas, pkexec): the program keeps the private terminal as its
    /// controlling terminal; it hangs up (SIGHUP to the program's session)
    /// when the [`Child`] is dropped, as a closed terminal window would.
    /// Through ssh, only the launch's main session relays: the shim's far
    /// copy and the in-band link's sessions do not (name the shim with
    /// [`shim_path`](Command::shim_path), or use keys).
    ///
    /// A wrong answer is the launcher's to count: sudo asks again (a new
    /// call, its `attempt` one higher) up to its own limit, then refuses:
    /// [`ErrorKind::LauncherRefused`], as does a declined question. Without
    /// a handler nothing changes: sudo and ssh ask on the caller's
    /// terminal if there is one, else refuse at once; doas runs with `-n`.
    ///
    /// ```no_run
    /// use umbilical::{Command, Launcher, Secret};
    /// let mut cmd = Command::new("tee");
    /// cmd.arg("/etc/motd")
    ///     .launcher(Launcher::Sudo { user: None, non_interactive: false })
    ///     .prompt_handler(|prompt| {
    ///         // Show prompt.text in a dialog; here, a fixed answer.
    ///         (prompt.attempt == 1).then(|| Secret::new("hunter2"))
    ///     });
    /// ```
    pub fn prompt_handler<F>(&mut self, handler: F) -> &mut Self
    where
        F: Fn(&crate::Prompt) -> Option<crate::Secret> + Send + Sync + 'static,
    {
        self.opts.prompt_handler = Some(crate::prompt::Handler::blocking(std::sync::Arc::new(handler)));
        self
    }

    /// [`prompt_handler`](Command::prompt_handler) for
    /// [`spawn_async`](Command::spawn_async): `handler` returns a future,
    /// run within the runtime that calls `spawn_async` but on the relay's
    /// own thread, so a slow answer never holds up the runtime's other
    /// tasks (not even on a `current_thread` runtime). Refused by the
    /// blocking [`spawn`](Command::spawn) outside a runtime.
    ///
    /// ```no_run
    /// # async fn ask_user(_: String) -> Option<String> { None }
    /// use umbilical::{Command, Launcher, Secret};
    /// let mut cmd = Command::new("id");
    /// cmd.launcher(Launcher::Sudo { user: None, non_interactive: false })
    ///     .prompt_handler_async(|prompt| async move { ask_user(prompt.text).await.map(Secret::new) });
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn prompt_handler_async<F, Fut>(&mut self, handler: F) -> &mut Self
    where
        F: Fn(crate::Prompt) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Option<crate::Secret>> + Send + 'static,
    {
        let handler = std::sync::Arc::new(handler);
        let bind = move || -> std::result::Result<crate::prompt::BlockingFn, String> {
            let runtime = ::tokio::runtime::Handle::try_current().map_err(|_| {
                "an async prompt handler (prompt_handler_async) needs spawn_async, inside a tokio runtime".to_string()
            })?;
            let handler = handler.clone();
            Ok(std::sync::Arc::new(move |prompt: &crate::Prompt| runtime.block_on(handler(prompt.clone()))))
        };
        self.opts.prompt_handler = Some(crate::prompt::Handler::Answers(std::sync::Arc::new(bind)));
        self
    }

    /// Start the program through the shim (see [`crate::shim`]): the
    /// launcher starts the shim, which connects back, starts the program
    /// with the channel, and reports its pid and exact status. Then a
    /// launcher's refusal is [`ErrorKind::LauncherRefused`], a program
    /// missing on the far side is [`ErrorKind::NotFound`], the status is
    /// exact through any launcher ([`Detection::Shim`](crate::Detection::Shim)), and
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
        self.opts.shim = mode.into();
        self
    }

    /// Whether [`Command::spawn`] will use the shim, and why: the mode's
    /// decision, with [`ShimMode::Auto`] resolved. Auto uses the shim
    /// through every launcher that switches user (sudo, doas, pkexec,
    /// runuser, su) when that user can execute the shim (every directory on
    /// its path searchable, the file executable, by mode bits; otherwise a
    /// copy in the rendezvous directory), through ssh (at the same path on
    /// the far host, or at [`Command::shim_path`]; a far host of the same
    /// OS and architecture that lacks it gets a copy over ssh, which the
    /// shim removes as it starts), through container exec in band when the
    /// shim to copy in is a static build ([`Command::shim_source`]) or
    /// `shim_path` names one inside, and through Windows elevation; not with
    /// no launcher (the status is exact without it), not through a custom
    /// prefix (whether it runs the shim is unknowable).
    pub fn shim_choice(&self) -> ShimChoice {
        if self.session.is_some() {
            return ShimChoice { used: true, reason: "a session's program: through the session's shim".into() };
        }
        crate::shim::choose(&self.opts)
    }

    /// How long [`Command::spawn`] waits for the shim to connect back and
    /// report the program started (default 60 s). A launcher that asks for
    /// a password waits within it. On expiry the launcher is killed and
    /// the error is [`ErrorKind::TimedOut`].
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.opts.connect_timeout = timeout;
        self
    }

    /// Through the shim: when the control link drops without the caller
    /// letting go (the caller was killed, crashed, or its ssh connection
    /// broke), the shim sends the program SIGTERM (to its group with
    /// [`Command::process_group`]) and, after this grace (default 5 s),
    /// SIGKILL, so that nothing keeps running as another user once the
    /// caller is gone. On Windows the shim asks the ways
    /// [`Child::terminate`](crate::Child::terminate) describes, and
    /// terminates the program at once where none reaches it. A caller
    /// that drops its [`Child`] without [`Command::kill_on_drop`] lets go:
    /// the program runs on.
    pub fn caller_gone_grace(&mut self, grace: Duration) -> &mut Self {
        self.opts.caller_gone_grace = grace;
        self
    }

    /// Whether dropping the [`Child`] while the program runs kills it, as
    /// tokio's `kill_on_drop`: SIGKILL (to its group with
    /// [`Command::process_group`]), through the shim where it runs through
    /// one; Windows: `TerminateProcess`. Off by default, as in std: a
    /// dropped child runs on (reaped in the background).
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Self {
        self.opts.kill_on_drop = on;
        self
    }

    /// Go's `WaitDelay`: once a wait has seen the program's end, its output
    /// (the channel's read half, and stderr when piped) is read for at most
    /// `delay` more; then reads return end of file and say they were cut
    /// ([`ReadHalf::truncated`](crate::ReadHalf::truncated),
    /// [`ChildStderr::truncated`](crate::ChildStderr::truncated),
    /// [`Output::truncated`](crate::Output::truncated)). Writes that
    /// [`Child::communicate`](crate::Child::communicate) still has to make
    /// stop then too.
    ///
    /// Why: a program that leaves a background child holding its stdout
    /// (`sh -c 'daemon & echo started'`) has ended, but a reader waits for
    /// that child too, for as long as it lives (go#23019, go#50436). A
    /// `delay` of zero stops at once; what the program wrote before its end
    /// and is still unread is read first only within `delay`, so give it
    /// the time a reader needs to catch up.
    ///
    /// Default: no limit (reads end when every holder closed the output, as
    /// in std). The end is seen by [`Child::wait`](crate::Child::wait) and
    /// its siblings, [`Child::stop`](crate::Child::stop) and
    /// `communicate` (which waits while it reads); a caller reading the
    /// channel by hand should wait in another thread (or task). A blocking
    /// reader already waiting in another thread notices the cutoff within
    /// 0.1 s; a task, at once.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::time::Duration;
    /// use umbilical::Command;
    ///
    /// let mut child = Command::new("sh")
    ///     .args(["-c", "sleep 3 2>/dev/null & echo started"])
    ///     .wait_delay(Duration::from_millis(300))
    ///     .spawn()?;
    /// let output = child.communicate(b"")?; // not 3 s
    /// assert_eq!(output.stdout, b"started\n");
    /// assert!(output.truncated && output.exit.success());
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_delay(&mut self, delay: Duration) -> &mut Self {
        self.opts.wait_delay = Some(delay);
        self
    }

    /// Kill the program when the caller's process ends, however it ends
    /// (even SIGKILL, or a crash), so a helper never outlives the program
    /// that needed it.
    ///
    /// - **Linux**: `PR_SET_PDEATHSIG` (SIGKILL), set in the child before
    ///   it runs the program. Linux fires it when the *thread* that
    ///   spawned the child ends, so these spawns are made from one thread
    ///   of umbilical's that lives as long as the process
    ///   (`umbilical-spawner`): a program started from a short-lived
    ///   thread does not die with it. A caller that died before the child
    ///   set it up is noticed (the child's parent is then no longer us)
    ///   and the child ends itself.
    /// - **FreeBSD**: `procctl(PROC_PDEATHSIG_CTL)`, the same.
    /// - **Windows**: a job object that kills on close, as
    ///   [`kill_on_close_job`](Command) (the whole job ends with the
    ///   caller's last handle).
    /// - **macOS and the other BSDs**: nothing in the kernel does this for
    ///   a direct child; a spawn with this set fails with
    ///   [`ErrorKind::InvalidInput`] rather than promise it.
    /// - **Through the shim** (any OS, any launcher): this is always on —
    ///   the shim ends the program when its link to the caller drops
    ///   (SIGTERM, then SIGKILL after
    ///   [`caller_gone_grace`](Command::caller_gone_grace)).
    ///
    /// It acts on the process umbilical starts. Through a launcher without
    /// the shim that is the launcher, and Linux clears the setting when a
    /// set-user-ID program such as sudo starts: use the shim there.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use umbilical::Command;
    ///
    /// let mut child = Command::new("sleep").arg("30").kill_on_parent_death(true).spawn()?;
    /// # child.kill()?;
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_on_parent_death(&mut self, on: bool) -> &mut Self {
        self.opts.kill_on_parent_death = on;
        self
    }

    /// The shim program: a binary that calls
    /// [`shim::run_if_invoked`](crate::shim::run_if_invoked) (the
    /// `umbilical` CLI and the `umbilical-shim` binary do). Defaults to the
    /// current executable. It is the path where the launcher runs it: on
    /// the far host through ssh, and inside the container through container
    /// exec (then nothing is copied in; see [`Command::shim_source`]).
    pub fn shim_path(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.opts.shim_path = Some(path.as_ref().to_owned());
        self
    }

    /// How the shim's control link reaches back (default
    /// [`ShimLink::Auto`](crate::ShimLink::Auto): a forwarded socket where the
    /// launcher can forward one the shim's user can open, in band through
    /// container exec and through ssh chains to another user).
    ///
    /// In band, a second session of the same launcher runs the shim as a
    /// bridge (`ssh HOST SHIM shim --umbilical-bridge SOCKET`, `docker exec
    /// -i C ...`), which listens on a socket only its user may connect to
    /// and carries the link on its stdin/stdout. The channel still goes
    /// straight to the program. Choose it for ssh servers that forbid
    /// stream-local forwarding (`AllowStreamLocalForwarding no`). Unix
    /// callers only.
    ///
    /// ```
    /// use umbilical::{Command, Launcher, ShimLink};
    /// let mut cmd = Command::new("cat");
    /// cmd.launcher(Launcher::Ssh { destination: "host".into(), port: None, options: vec![] })
    ///     .shim(true)
    ///     .shim_link(ShimLink::InBand);
    /// ```
    pub fn shim_link(&mut self, link: crate::ShimLink) -> &mut Self {
        self.opts.shim_link = link;
        self
    }

    /// The shim binary on this host that is copied where none is: into the
    /// container through container exec (unless [`Command::shim_path`]
    /// names one already inside), and to a far host through ssh that lacks
    /// one at our path. Default: the bytes set by
    /// [`Command::shim_source_bytes`], else this executable. It must run
    /// there: a static build, for that architecture. The `umbilical` crate
    /// builds one as its `umbilical-shim` binary:
    /// `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release
    /// -p umbilical --bin umbilical-shim --target x86_64-unknown-linux-gnu`
    /// (the `umbilical` CLI carries one, built so by its `build.rs`).
    ///
    /// Into a container the copy goes to `/tmp/umbilical-<random>`
    /// (`docker cp`, `podman cp`, `kubectl cp`), and is removed once the
    /// shim ends (by the bridge), or by a janitor of the caller's (an `rm
    /// -f` exec) if the shim never ran or the caller died during the copy.
    /// Only into a running container whose `/` is root's and not writable
    /// by others unless sticky, and into a directory of the same kind (read
    /// from the engine's archive of them; podman's keeps no owners, so
    /// there the mode alone): `/tmp`, else `/var/tmp`, `/run`, else `/`
    /// itself. In a `/tmp` anyone may rename in, another user of the
    /// container could swap the copy before it runs as the container's
    /// root. Where the engine cannot write (a read-only root filesystem),
    /// `sh` in the container writes it into a private directory in the
    /// first of `/dev/shm`, `/tmp`, `/run` that is safe in the same way and
    /// allows execution (a tmpfs mounted `exec`, as a Kubernetes `emptyDir`).
    /// Otherwise the spawn fails before the program starts:
    /// [`ErrorKind::ShimFailed`] for a `/` others may rename in,
    /// [`ErrorKind::LauncherRefused`] for a stopped container or for no
    /// place at all (naming the engine's message; put a shim in the image
    /// and name it with [`Command::shim_path`]). A file that is not an ELF
    /// executable fails with [`ErrorKind::ShimFailed`] before any copy.
    pub fn shim_source(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.opts.shim_source = Some(path.as_ref().to_owned());
        self
    }

    /// [`Command::shim_source`], held in memory: the bytes of a static shim
    /// the caller carries (the `umbilical` CLI embeds one, built at its
    /// build time; see its `build.rs`). A file named by
    /// [`Command::shim_source`] wins over these.
    ///
    /// Through ssh, a far host without the shim gets a copy of these bytes
    /// (else of this executable): a static build runs there whatever its C
    /// library. Into a container they go through the engine's `cp`, which
    /// reads a file: they are written to a private directory of the
    /// caller's (`umbilical-shim-<random>` in the temporary directory, mode
    /// 0700), removed as soon as the copy is made or has failed.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use umbilical::{Command, Engine, Launcher};
    /// // A static `umbilical-shim`, read once (or `include_bytes!`d).
    /// let shim: &'static [u8] = std::fs::read("/opt/app/umbilical-shim")?.leak();
    /// let mut cmd = Command::new("id");
    /// cmd.launcher(Launcher::ContainerExec {
    ///     engine: Engine::Docker,
    ///     target: "web".into(),
    ///     user: None,
    /// })
    /// .shim_source_bytes(shim);
    /// # Ok(())
    /// # }
    /// ```
    pub fn shim_source_bytes(&mut self, bytes: impl Into<std::borrow::Cow<'static, [u8]>>) -> &mut Self {
        self.opts.shim_source_bytes = Some(bytes.into());
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
    /// the caller forwards them (the `umbilical` CLI does). Through the
    /// shim the launcher gets a group of its own too, unless the caller is
    /// its terminal's foreground and the launcher may prompt there (sudo,
    /// doas, su, pkexec stay in the caller's group); ssh, whose client
    /// carries the link, is then lent the terminal's foreground until the
    /// shim connected: a caller that reads the terminal meanwhile from
    /// another thread is stopped by SIGTTIN, as a background job reading it
    /// would be (the shell's `fg` resumes it). Off by default, as in std.
    /// Windows: no effect.
    pub fn process_group(&mut self, on: bool) -> &mut Self {
        self.opts.process_group = on;
        self
    }

    /// Spawn with `fork` + `close_range` + `execve` even where `posix_spawn`
    /// could do it. For testing the fallback path; not part of the stable
    /// API.
    #[doc(hidden)]
    pub fn force_fork_exec(&mut self, on: bool) -> &mut Self {
        self.opts.force_fork = on;
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
        if self.spec.program.is_empty() {
            return Err(Error::cannot_start(
                &self.spec.program,
                ErrorKind::InvalidInput,
                "the program name is empty",
                None,
            ));
        }
        if self.session.is_some() {
            return self.spawn_in_session();
        }
        let child = if self.shim_choice().used {
            crate::shim::spawn(&self.spec, &self.opts)
        } else {
            crate::spawn::spawn(&self.spec, &self.opts)
        }?;
        Ok(child.with_wait_delay(self.opts.wait_delay))
    }

    /// Starts the program through its session.
    fn spawn_in_session(&self) -> Result<Child> {
        let session = self.session.as_ref().and_then(std::sync::Weak::upgrade).ok_or_else(|| {
            Error::cannot_start(&self.spec.program, ErrorKind::SessionClosed, "the session was closed or dropped", None)
        })?;
        session.start(self)
    }

    /// Starts the program for tokio (feature `tokio`): the same start as
    /// [`spawn`](Command::spawn), with the channel, stderr and the
    /// program's end on the current runtime's reactor. See the
    /// [`tokio`](crate::tokio) module for what runs where and the caveats.
    ///
    /// Without the shim the start is synchronous, as with
    /// `tokio::process` (one `posix_spawn` or `fork`). Through the shim,
    /// the handshake (until the shim reports the program started:
    /// milliseconds, or as long as a launcher waits for a password, up to
    /// [`connect_timeout`](Command::connect_timeout)) runs on tokio's
    /// blocking pool; from then on the link is a task. Must be called from
    /// within a runtime.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn spawn_async(&self) -> Result<crate::tokio::Child> {
        let child = if self.session.is_some() {
            // A few round trips with the session's shim, which starts the
            // program meanwhile: on the blocking pool, as a shim's
            // handshake.
            let cmd = self.clone();
            ::tokio::task::spawn_blocking(move || cmd.spawn_in_session()).await.map_err(|e| {
                Error::cannot_start(
                    &self.spec.program,
                    ErrorKind::ShimFailed,
                    &format!("the start task failed: {e}"),
                    None,
                )
            })??
        } else if self.shim_choice().used {
            let (spec, opts) = (self.spec.clone(), self.opts.clone());
            let program = spec.program.clone();
            let child = ::tokio::task::spawn_blocking(move || {
                if spec.program.is_empty() {
                    return Err(Error::cannot_start(
                        &spec.program,
                        ErrorKind::InvalidInput,
                        "the program name is empty",
                        None,
                    ));
                }
                crate::shim::spawn(&spec, &opts)
            })
            .await
            .map_err(|e| {
                Error::cannot_start(&program, ErrorKind::ShimFailed, &format!("the handshake task failed: {e}"), None)
            })??;
            child.with_wait_delay(self.opts.wait_delay)
        } else {
            self.spawn()?
        };
        crate::tokio::Child::from_blocking(child).map_err(|e| {
            Error::cannot_start(
                &self.spec.program,
                ErrorKind::Io,
                &format!("cannot register with the runtime: {e}"),
                Some(e),
            )
        })
    }
}

#[cfg(windows)]
impl Command {
    /// Windows: start a console program without a console window
    /// (`CREATE_NO_WINDOW`).
    pub fn create_no_window(&mut self, on: bool) -> &mut Self {
        self.opts.no_window = on;
        self
    }

    /// Windows: put the program in a job object that kills it (and what it
    /// started inside the job) when the job is closed, which happens when
    /// the `Child` is dropped or the parent dies. [`Child::kill`] then
    /// terminates the whole job.
    pub fn kill_on_close_job(&mut self, on: bool) -> &mut Self {
        self.opts.kill_on_close_job = on;
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
