//! How a program is started: directly, or through a launcher (sudo, doas,
//! pkexec, runuser, su, ssh, container exec), each with the argv prefix it
//! needs and the capabilities it declares.
//!
//! Plans are pure: [`Launcher::plan`] turns a program and its arguments
//! into the argv to execute, without spawning anything, so every
//! launcher's plan is unit-tested even where the launcher cannot run.

use std::ffi::{OsStr, OsString};

use crate::error::{Error, ErrorKind};
use crate::exit::ExitDetection;
use crate::spec::ProgramSpec;

/// A container engine for [`Launcher::ContainerExec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// `docker exec -i`.
    Docker,
    /// `podman exec -i`.
    Podman,
    /// `kubectl exec -i`.
    Kubectl,
}

/// What a launcher does with what umbilical gives it.
///
/// Everything the rest of the library asks about a launcher is here, so a
/// new launcher is its variant, its plan and its row of capabilities. Build
/// one for [`Launcher::Custom`] with `..Default::default()` for the fields
/// you do not set: fields are added as launchers teach us more. The
/// default declares nothing but `passes_cwd` (a plain argv prefix runs the
/// program where it was started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// fds 0 and 1 (the channel) reach the program as they are.
    pub keeps_stdio: bool,
    /// Descriptors above 2 (a lifeline) reach the program.
    pub keeps_extra_handles: bool,
    /// The launcher replaces itself with the program (same process).
    pub execs_in_place: bool,
    /// The launcher's exit status is the program's.
    pub returns_status: bool,
    /// The launcher exits at once, leaving the program running: its exit
    /// must never be reported as the program's.
    pub detaches: bool,
    /// The program's command line goes through a POSIX shell (`su -c`,
    /// ssh's remote command); arguments are quoted for it.
    pub via_shell: bool,
    /// The program runs on another host or in a container: its pid means
    /// nothing here (it is never opened or signalled by this process), and
    /// stopping the launcher's client does not stop it.
    pub foreign_pids: bool,
    /// The working directory set with
    /// [`Command::current_dir`](crate::Command::current_dir) reaches the
    /// program without the shim (the launcher keeps the caller's). Where it
    /// does not, the shim changes to it on the far side.
    pub passes_cwd: bool,
    /// How the shim's control link gets back to the caller through this
    /// launcher.
    pub shim_route: ShimRoute,
    /// How the launcher's questions (a password) reach a
    /// [prompt handler](crate::Command::prompt_handler).
    pub prompts: PromptRoute,
    /// The program is not the launcher's descendant (a service manager or
    /// a portal starts it, and the launcher only waits): the shim's peer
    /// cannot be checked by its ancestry, only by the token it proves.
    pub reparents: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            keeps_stdio: false,
            keeps_extra_handles: false,
            execs_in_place: false,
            returns_status: false,
            detaches: false,
            via_shell: false,
            foreign_pids: false,
            passes_cwd: true,
            shim_route: ShimRoute::Unknown,
            prompts: PromptRoute::Never,
            reparents: false,
        }
    }
}

/// How a launcher's questions reach a
/// [prompt handler](crate::Command::prompt_handler): the mechanism chosen
/// per launcher (docs/design.md says why each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PromptRoute {
    /// The launcher asks nothing that umbilical relays (runuser, run by
    /// root; container exec; a custom launcher by default).
    #[default]
    Never,
    /// sudo: `-A` with `SUDO_ASKPASS` naming umbilical's askpass helper,
    /// which relays the prompt to the handler.
    SudoAskpass,
    /// ssh: `SSH_ASKPASS` naming the same helper and
    /// `SSH_ASKPASS_REQUIRE=force` (OpenSSH 8.4 and later); host-key
    /// questions reach the handler too, as not secret.
    SshAskpass,
    /// doas: it reads its password from its controlling terminal only.
    /// The launcher is started in a session of its own whose controlling
    /// terminal is a private pseudo-terminal of umbilical's (stdin and
    /// stdout stay the channel); the prompt written there goes to the
    /// handler, and the answer is typed back.
    ControllingTerminal,
    /// su (util-linux): it asks on its stderr and reads the answer from its
    /// stdin, which would be the program's channel. Through the shim only:
    /// su's stdio is the private terminal, and the program's own stdio
    /// reaches the shim over its link. Without the shim a handler is
    /// refused with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
    StandardInput,
    /// pkexec: with no polkit authentication agent registered for the
    /// caller's session, pkexec runs its own textual agent on its
    /// controlling terminal: the private terminal, as for doas.
    PolkitAgent,
    /// Windows elevation: the consent dialog is the OS's own; nothing
    /// reaches the handler (which is accepted and never called).
    OsDialog,
}

/// How the shim's control link reaches the caller through a launcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ShimRoute {
    /// The launcher may not run the shim: it is never chosen by default
    /// ([`ShimMode::On`](crate::ShimMode::On) still tries the local route).
    #[default]
    Unknown,
    /// The shim runs on this host and connects to the rendezvous (a local
    /// socket; Windows: a named pipe).
    Local,
    /// The shim runs on another host: the launcher forwards a socket to
    /// the rendezvous (ssh `-R`), or the link rides a second session
    /// ([`ShimLink::InBand`](crate::ShimLink::InBand)).
    Forwarded,
    /// Nothing is forwarded: the link rides a second session of the
    /// launcher, and the shim is copied in first unless
    /// [`Command::shim_path`](crate::Command::shim_path) names one there
    /// (container exec).
    InBandCopied,
    /// Windows elevation: no handle passes, so the shim is always used and
    /// opens the channel's pipes by name.
    Elevation,
}

/// How the program is started.
///
/// ```
/// use umbilical::Launcher;
/// let sudo = Launcher::Sudo { user: Some("backup".into()), non_interactive: true };
/// let argv = sudo.plan("tar".as_ref(), &["cf".into(), "-".into(), "/etc".into()]).unwrap();
/// assert_eq!(argv, ["sudo", "-n", "-u", "backup", "--", "tar", "cf", "-", "/etc"]);
/// assert!(sudo.capabilities().returns_status);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Launcher {
    /// No launcher: the program itself.
    #[default]
    Direct,
    /// `sudo [-n] [-u USER] -- PROGRAM ARGS`. Passes a socket on fds 0/1
    /// through (unless I/O logging is on), stays the program's parent and
    /// returns its status; closes every other descriptor.
    Sudo {
        /// Target user (`-u`); root if `None`.
        user: Option<String>,
        /// `-n`: fail instead of prompting for a password.
        non_interactive: bool,
    },
    /// `doas -n [-u USER] -- PROGRAM ARGS`. OpenDoas built with PAM (as
    /// Debian's is) stays the program's parent and exits 128+N when the
    /// program dies of signal N.
    Doas {
        /// Target user; root if `None`.
        user: Option<String>,
    },
    /// `pkexec [--user USER] [--keep-cwd] PROGRAM ARGS`; execs in place.
    /// Without `keep_cwd` it changes to the target's home directory.
    Pkexec {
        /// Target user; root if `None`.
        user: Option<String>,
        /// `--keep-cwd`.
        keep_cwd: bool,
    },
    /// `runuser -u USER -- PROGRAM ARGS` (util-linux; root only).
    Runuser {
        /// Target user.
        user: String,
    },
    /// `su USER -s /bin/sh -c 'QUOTED COMMAND'`: through a shell, so that
    /// accounts whose login shell is nologin work too.
    Su {
        /// Target user.
        user: String,
    },
    /// `ssh [-p PORT] [OPTIONS] DESTINATION -- 'QUOTED COMMAND'`; the
    /// remote side runs the command through the user's shell.
    Ssh {
        /// `[user@]host`.
        destination: String,
        /// `-p PORT`.
        port: Option<u16>,
        /// Extra ssh arguments, placed before the destination.
        options: Vec<String>,
    },
    /// `docker|podman exec -i [-u USER] TARGET PROGRAM ARGS`, or
    /// `kubectl exec -i [-n NAMESPACE] POD -- PROGRAM ARGS` (target
    /// `namespace/pod`).
    ContainerExec {
        /// Which engine.
        engine: Engine,
        /// The container (or `[namespace/]pod` for kubectl).
        target: String,
        /// Run as this user of the container (`-u`: a name or
        /// `UID[:GID]`); `None` is the image's. kubectl has no such
        /// option: `InvalidInput`.
        user: Option<String>,
    },
    /// Windows elevation (`ShellExecuteExW` with verb `runas`): passes no
    /// handles, so [`Command`](crate::Command) always starts it with the
    /// shim, which opens the channel's pipes by name. Not an argv prefix:
    /// [`Launcher::plan`] refuses it. Unix: `InvalidInput`.
    RunAs,
    /// `setpriv --reuid=USER --regid=GROUP --init-groups --reset-env --
    /// PROGRAM ARGS` (util-linux; root only): a light root-to-user switch
    /// with no PAM session, that execs in place and keeps every
    /// descriptor. `--reset-env` sets HOME, SHELL, USER, LOGNAME and PATH
    /// from the account, as the other launchers reset the environment.
    Setpriv {
        /// Target user.
        user: String,
        /// Target group; the user's name if `None` (a user-private group,
        /// as `useradd` makes by default).
        group: Option<String>,
    },
    /// `nsenter --target PID --all -- PROGRAM ARGS` (util-linux; root
    /// only): the program runs in every namespace of process `PID` (a
    /// container's, entered from the host), its root and working
    /// directory that namespace's. nsenter forks to enter the pid
    /// namespace, waits, and returns the program's status (dying of the
    /// same signal). The shim is not used by default: its rendezvous, in
    /// this host's `/tmp`, is not visible in the target's mount namespace.
    Nsenter {
        /// The process whose namespaces are entered.
        pid: u32,
    },
    /// `systemd-run --pipe --wait --quiet --collect [--uid=USER] [-p
    /// PROPERTY]... -- PROGRAM ARGS`: the program runs as a transient
    /// service of the system manager (PID 1 starts it, not the launcher),
    /// its stdio the caller's (`--pipe`). Its own status is lossy: `--wait`
    /// exits 0 when the program dies of a signal (systemd#22812); the shim
    /// mends it. Needs systemd as PID 1.
    SystemdRun {
        /// `--uid`; root if `None`.
        user: Option<String>,
        /// `-p NAME=VALUE` unit properties (limits, sandboxing).
        properties: Vec<String>,
    },
    /// `run0 [--user=USER] -- PROGRAM ARGS` (systemd 256 and later): sudo's
    /// successor, a transient service authorised through polkit. As
    /// `systemd-run --wait`, its status is lossy; the shim mends it.
    Run0 {
        /// `--user`; root if `None`.
        user: Option<String>,
    },
    /// `flatpak-spawn --host --watch-bus [--forward-fd=3] -- PROGRAM ARGS`:
    /// from inside a Flatpak sandbox, the program runs on the host through
    /// the Flatpak portal (fds 0 to 2 pass as a D-Bus descriptor list). The
    /// program is not the launcher's child, and the launcher exits 0 if
    /// the bus closes: with `forward_lifeline` the lifeline (fd 3) reaches
    /// the program, the way to know it ended.
    FlatpakSpawn {
        /// `--forward-fd=3`: the lifeline passes to the program.
        forward_lifeline: bool,
    },
    /// Launchers one inside the other, outer to inner: "as root on that
    /// host" is `Chain(vec![Ssh {..}, Sudo {..}])`. Each hop's argv wraps
    /// the next one's (quoted again for each hop that goes through a
    /// shell), and the capabilities compose: the status is the program's
    /// only if every hop returns it, descriptors and the working
    /// directory pass only if every hop passes them
    /// ([`Launcher::capabilities`]). With the shim, it runs innermost: all
    /// hops local, or ssh first and local hops on the far host to root or
    /// the ssh user (the far socket is the ssh user's, `0600`: root can
    /// reach it, another user cannot). A prompt handler answers the first
    /// hop and, through the shim, a sudo beyond ssh; other inner hops must
    /// not ask (sudo gets `-n`). A chain holds at
    /// least two hops, none of them `Direct`, `RunAs` or a chain.
    Chain(Vec<Launcher>),
    /// Anything else: an argv prefix and declared capabilities.
    Custom {
        /// What comes before the program.
        prefix: Vec<OsString>,
        /// What the prefix does with the program.
        capabilities: Capabilities,
    },
}

impl Launcher {
    /// A short name for messages.
    pub fn name(&self) -> String {
        match self {
            Launcher::Direct => "direct".into(),
            Launcher::Sudo { .. } => "sudo".into(),
            Launcher::Doas { .. } => "doas".into(),
            Launcher::Pkexec { .. } => "pkexec".into(),
            Launcher::Runuser { .. } => "runuser".into(),
            Launcher::Su { .. } => "su".into(),
            Launcher::Ssh { .. } => "ssh".into(),
            Launcher::ContainerExec { engine: Engine::Docker, .. } => "docker".into(),
            Launcher::ContainerExec { engine: Engine::Podman, .. } => "podman".into(),
            Launcher::ContainerExec { engine: Engine::Kubectl, .. } => "kubectl".into(),
            Launcher::RunAs => "runas".into(),
            Launcher::Setpriv { .. } => "setpriv".into(),
            Launcher::Nsenter { .. } => "nsenter".into(),
            Launcher::SystemdRun { .. } => "systemd-run".into(),
            Launcher::Run0 { .. } => "run0".into(),
            Launcher::FlatpakSpawn { .. } => "flatpak-spawn".into(),
            Launcher::Chain(hops) => hops.iter().map(Launcher::name).collect::<Vec<_>>().join(" then "),
            Launcher::Custom { prefix, .. } => {
                prefix.first().map_or_else(|| "custom".into(), |p| p.to_string_lossy().into_owned())
            }
        }
    }

    /// The user the program runs as, where the launcher names one.
    pub(crate) fn target_user(&self) -> Option<&str> {
        match self {
            Launcher::Sudo { user, .. } | Launcher::Doas { user } | Launcher::Pkexec { user, .. } => user.as_deref(),
            Launcher::Runuser { user } | Launcher::Su { user } | Launcher::Setpriv { user, .. } => Some(user),
            Launcher::SystemdRun { user, .. } | Launcher::Run0 { user } => user.as_deref(),
            // The program runs as the innermost hop's user.
            Launcher::Chain(hops) => hops.last().and_then(Launcher::target_user),
            Launcher::ContainerExec { user, .. } => user.as_deref(),
            _ => None,
        }
    }

    /// Whether this is [`Launcher::Direct`]: no launcher at all.
    pub(crate) fn is_direct(&self) -> bool {
        *self == Launcher::Direct
    }

    /// What this launcher does with the channel, descriptors and status.
    pub fn capabilities(&self) -> Capabilities {
        let local = |keeps_extra_handles, execs_in_place, via_shell| Capabilities {
            keeps_stdio: true,
            keeps_extra_handles,
            execs_in_place,
            returns_status: true,
            detaches: false,
            via_shell,
            foreign_pids: false,
            passes_cwd: true,
            shim_route: ShimRoute::Local,
            prompts: PromptRoute::Never,
            reparents: false,
        };
        let remote = |via_shell, shim_route| Capabilities {
            foreign_pids: true,
            passes_cwd: false,
            shim_route,
            ..local(false, false, via_shell)
        };
        match self {
            Launcher::Direct => local(true, true, false),
            Launcher::Sudo { .. } => Capabilities { prompts: PromptRoute::SudoAskpass, ..local(false, false, false) },
            Launcher::Doas { .. } => {
                Capabilities { prompts: PromptRoute::ControllingTerminal, ..local(false, false, false) }
            }
            Launcher::Runuser { .. } => local(false, false, false),
            Launcher::Pkexec { keep_cwd, .. } => {
                Capabilities { passes_cwd: *keep_cwd, prompts: PromptRoute::PolkitAgent, ..local(false, true, false) }
            }
            Launcher::Su { .. } => Capabilities { prompts: PromptRoute::StandardInput, ..local(false, false, true) },
            Launcher::Ssh { .. } => {
                Capabilities { prompts: PromptRoute::SshAskpass, ..remote(true, ShimRoute::Forwarded) }
            }
            Launcher::ContainerExec { .. } => remote(false, ShimRoute::InBandCopied),
            Launcher::RunAs => {
                Capabilities { shim_route: ShimRoute::Elevation, prompts: PromptRoute::OsDialog, ..Default::default() }
            }
            Launcher::Setpriv { .. } => local(true, true, false),
            // Forks for the pid namespace and waits; the target's mount
            // namespace does not see our rendezvous.
            Launcher::Nsenter { .. } => Capabilities {
                foreign_pids: true,
                passes_cwd: false,
                shim_route: ShimRoute::Unknown,
                ..local(true, false, false)
            },
            // PID 1 starts the program; --wait's status is lossy (0 on a
            // signal death): the shim, whose peer is checked by the token
            // alone, mends it.
            Launcher::SystemdRun { .. } => {
                Capabilities { returns_status: false, passes_cwd: false, reparents: true, ..local(false, false, false) }
            }
            Launcher::Run0 { .. } => Capabilities {
                returns_status: false,
                passes_cwd: false,
                reparents: true,
                prompts: PromptRoute::PolkitAgent,
                ..local(false, false, false)
            },
            // The host runs it: another pid namespace and another /tmp
            // (the shim's rendezvous is not reachable); exit 0 when the bus
            // closes.
            Launcher::FlatpakSpawn { forward_lifeline } => Capabilities {
                returns_status: false,
                foreign_pids: true,
                reparents: true,
                shim_route: ShimRoute::Unknown,
                ..local(*forward_lifeline, false, false)
            },
            Launcher::Chain(hops) => chain_capabilities(hops),
            Launcher::Custom { capabilities, .. } => *capabilities,
        }
    }

    /// Through ssh, whether the shim (run by the inner hops) can reach the
    /// socket ssh forwards on the far host, which is the ssh user's with
    /// mode `0600` (sshd's `StreamLocalBindMask`): yes for the ssh user
    /// itself and for root; no for another user, and the error says so.
    pub(crate) fn far_socket_reachable(&self) -> Result<(), String> {
        let Launcher::Chain(hops) = self else { return Ok(()) };
        let Some(Launcher::Ssh { destination, .. }) = hops.first() else { return Ok(()) };
        let login = destination.split_once('@').map(|(user, _)| user);
        match self.target_user() {
            None | Some("root") => Ok(()),
            Some(user) if Some(user) == login => Ok(()),
            Some(user) => Err(format!(
                "{}: the shim would run as {user}, who cannot reach the socket ssh forwards on the far host (it is \
                 the ssh user's, mode 0600): chain to root or to the ssh user, or do without the shim",
                self.name()
            )),
        }
    }

    /// The hops, outer to inner: a chain's, or this launcher alone.
    pub fn hops(&self) -> &[Launcher] {
        match self {
            Launcher::Chain(hops) => hops,
            one => std::slice::from_ref(one),
        }
    }

    /// The exit detection `Auto` resolves to, and whether `requested` is
    /// allowed at all: a detaching launcher's own exit is never taken for
    /// the program's.
    pub(crate) fn detection(&self, requested: ExitDetection) -> Result<ExitDetection, String> {
        let caps = self.capabilities();
        match requested {
            ExitDetection::Process if caps.detaches => Err(format!(
                "the {} launcher detaches, so its exit is not the program's: use lifeline or channel-closed detection",
                self.name()
            )),
            ExitDetection::Lifeline if !caps.keeps_extra_handles => Err(format!(
                "the {} launcher closes descriptors above 2, so a lifeline cannot pass through it",
                self.name()
            )),
            ExitDetection::Auto if caps.detaches => {
                Ok(if caps.keeps_extra_handles { ExitDetection::Lifeline } else { ExitDetection::ChannelClosed })
            }
            ExitDetection::Auto if caps.returns_status || caps.execs_in_place => Ok(ExitDetection::Process),
            ExitDetection::Auto => Ok(ExitDetection::ChannelClosed),
            other => Ok(other),
        }
    }

    /// The argv that starts `program` with `args` through this launcher.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] for what cannot be passed
    /// safely: a user, host or container name starting with `-` (it would
    /// be read as an option), a NUL byte for a shell, and `RunAs`, which
    /// is not argv-based.
    pub fn plan(&self, program: &OsStr, args: &[OsString]) -> Result<Vec<OsString>, Error> {
        self.plan_with(program, args, false)
    }

    /// [`Launcher::plan`], with `answered`: a prompt handler answers the
    /// launcher's questions (sudo: `-A`, its askpass helper, in place of
    /// `-n`; doas: without `-n`, it asks on its private terminal).
    pub(crate) fn plan_with(&self, program: &OsStr, args: &[OsString], answered: bool) -> Result<Vec<OsString>, Error> {
        let invalid = |what: String| Error::new(ErrorKind::InvalidInput, format!("{}: {what}", self.name()), None);
        let not_option = |what: &str, value: &str| {
            if value.is_empty() || value.starts_with('-') {
                Err(invalid(format!("{what} {value:?} is empty or looks like an option")))
            } else {
                Ok(())
            }
        };
        let mut argv: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| argv.extend(items.iter().map(OsString::from));
        let direct = |argv: &mut Vec<OsString>| {
            argv.push(program.to_owned());
            argv.extend(args.iter().cloned());
        };
        match self {
            Launcher::Direct => {}
            Launcher::Sudo { user, non_interactive } => {
                push(&["sudo"]);
                if answered {
                    push(&["-A"]);
                } else if *non_interactive {
                    push(&["-n"]);
                }
                if let Some(u) = user {
                    not_option("user", u)?;
                    push(&["-u", u]);
                }
                push(&["--"]);
            }
            Launcher::Doas { user } => {
                push(if answered { &["doas"] } else { &["doas", "-n"] });
                if let Some(u) = user {
                    not_option("user", u)?;
                    push(&["-u", u]);
                }
                push(&["--"]);
            }
            Launcher::Pkexec { user, keep_cwd } => {
                push(&["pkexec"]);
                if let Some(u) = user {
                    not_option("user", u)?;
                    push(&["--user", u]);
                }
                if *keep_cwd {
                    push(&["--keep-cwd"]);
                }
            }
            Launcher::Runuser { user } => {
                not_option("user", user)?;
                push(&["runuser", "-u", user, "--"]);
            }
            Launcher::Su { user } => {
                not_option("user", user)?;
                let command = shell_command(program, args).map_err(invalid)?;
                push(&["su", user, "-s", "/bin/sh", "-c"]);
                argv.push(command.into());
                return Ok(argv);
            }
            Launcher::Ssh { destination, port, options } => {
                not_option("destination", destination)?;
                push(&["ssh"]);
                if let Some(p) = port {
                    argv.push("-p".into());
                    argv.push(p.to_string().into());
                }
                argv.extend(options.iter().map(OsString::from));
                let command = shell_command(program, args).map_err(invalid)?;
                argv.push(destination.into());
                argv.push("--".into());
                argv.push(command.into());
                return Ok(argv);
            }
            Launcher::ContainerExec { engine, target, user } => match engine {
                Engine::Docker | Engine::Podman => {
                    not_option("container", target)?;
                    push(&[if *engine == Engine::Docker { "docker" } else { "podman" }, "exec", "-i"]);
                    if let Some(u) = user {
                        not_option("user", u)?;
                        push(&["-u", u]);
                    }
                    push(&[target]);
                }
                Engine::Kubectl if user.is_some() => {
                    return Err(invalid("kubectl exec cannot run as another user (no --user option)".into()));
                }
                Engine::Kubectl => {
                    let (ns, pod) = match target.split_once('/') {
                        Some((ns, pod)) => (Some(ns), pod),
                        None => (None, target.as_str()),
                    };
                    not_option("pod", pod)?;
                    push(&["kubectl", "exec", "-i"]);
                    if let Some(ns) = ns {
                        not_option("namespace", ns)?;
                        push(&["-n", ns]);
                    }
                    push(&[pod, "--"]);
                }
            },
            Launcher::RunAs => {
                return Err(invalid(
                    "Windows elevation is not an argv prefix: Command starts it with ShellExecuteExW and the shim"
                        .into(),
                ));
            }
            Launcher::Setpriv { user, group } => {
                not_option("user", user)?;
                let group = group.as_deref().unwrap_or(user);
                not_option("group", group)?;
                push(&["setpriv", &format!("--reuid={user}"), &format!("--regid={group}")]);
                push(&["--init-groups", "--reset-env", "--"]);
            }
            Launcher::Nsenter { pid } => {
                if *pid == 0 {
                    return Err(invalid("the target pid is 0".into()));
                }
                push(&["nsenter", "--target", &pid.to_string(), "--all", "--"]);
            }
            Launcher::SystemdRun { user, properties } => {
                push(&["systemd-run", "--pipe", "--wait", "--quiet", "--collect"]);
                if let Some(u) = user {
                    not_option("user", u)?;
                    argv.push(format!("--uid={u}").into());
                }
                for p in properties {
                    if !p.contains('=') || p.starts_with('-') {
                        return Err(invalid(format!("property {p:?} is not NAME=VALUE")));
                    }
                    argv.push("-p".into());
                    argv.push(p.into());
                }
                argv.push("--".into());
            }
            Launcher::Run0 { user } => {
                push(&["run0"]);
                if let Some(u) = user {
                    not_option("user", u)?;
                    argv.push(format!("--user={u}").into());
                }
                argv.push("--".into());
            }
            Launcher::FlatpakSpawn { forward_lifeline } => {
                push(&["flatpak-spawn", "--host", "--watch-bus"]);
                if *forward_lifeline {
                    push(&["--forward-fd=3"]);
                }
                push(&["--"]);
            }
            Launcher::Chain(hops) => {
                check_chain(hops).map_err(invalid)?;
                // Innermost first: each hop's argv is the program of the
                // hop outside it. Only the first hop is answered.
                let (mut program, mut args) = (program.to_owned(), args.to_vec());
                for (i, hop) in hops.iter().enumerate().rev() {
                    let mut wrapped = hop.plan_with(&program, &args, answered && i == 0)?.into_iter();
                    program = wrapped.next().unwrap_or_default();
                    args = wrapped.collect();
                }
                argv.push(program);
                argv.extend(args);
                return Ok(argv);
            }
            Launcher::Custom { prefix, .. } => argv.extend(prefix.iter().cloned()),
        }
        direct(&mut argv);
        Ok(argv)
    }
}

#[cfg(unix)]
impl Launcher {
    /// Through ssh then sudo (a chain): the chain with that sudo hop
    /// asking through an askpass helper on the far host (`env ENV... sudo
    /// -A [-u USER] --`), and the hop's index. `None` where there is no
    /// such hop.
    pub(crate) fn with_far_sudo_askpass(&self, env: Vec<OsString>) -> Result<Option<(Launcher, usize)>, Error> {
        let Launcher::Chain(hops) = self else { return Ok(None) };
        if !matches!(hops.first(), Some(Launcher::Ssh { .. })) {
            return Ok(None);
        }
        let Some(i) = hops.iter().position(|h| matches!(h, Launcher::Sudo { .. })) else { return Ok(None) };
        let Launcher::Sudo { user, .. } = &hops[i] else { return Ok(None) };
        let mut prefix: Vec<OsString> = vec!["env".into()];
        prefix.extend(env);
        prefix.extend(["sudo".into(), "-A".into()]);
        if let Some(u) = user {
            if u.is_empty() || u.starts_with('-') {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("sudo: user {u:?} looks like an option"),
                    None,
                ));
            }
            prefix.extend(["-u".into(), u.into()]);
        }
        prefix.push("--".into());
        let mut hops = hops.clone();
        let capabilities = hops[i].capabilities();
        hops[i] = Launcher::Custom { prefix, capabilities };
        Ok(Some((Launcher::Chain(hops), i)))
    }

    /// In a chain that starts with ssh, which part refused: ssh itself (its
    /// own failures exit 255), or a hop after it on the far host, which
    /// ran. Empty otherwise: one launcher's refusal is its own.
    pub(crate) fn which_hop_refused(&self, ended: Option<crate::exit::ExitStatus>) -> String {
        let [Launcher::Ssh { destination, .. }, rest @ ..] = self.hops() else { return String::new() };
        if rest.is_empty() {
            return String::new();
        }
        let after = rest.iter().map(Launcher::name).collect::<Vec<_>>().join(" then ");
        match ended {
            Some(crate::exit::ExitStatus::Exited(255)) => format!("; ssh to {destination} itself failed (255)"),
            Some(_) => format!("; ssh to {destination} connected: {after} on it refused"),
            None => String::new(),
        }
    }

    /// The launcher that starts the shim in place of the program, and the
    /// rendezvous path the shim is told. Through ssh the shim runs on the
    /// far host: ssh forwards a fresh socket there,
    /// `/tmp/umbilical-<name>.sock`, to `local` (whose end is the ssh
    /// client), and a forwarding ssh cannot set up fails at once. A
    /// detaching launcher is started as if it did not detach: the shim
    /// reports the program's end, so the launcher is only reaped.
    pub(crate) fn around_shim(&self, local: &std::path::Path, name: &str) -> (Launcher, OsString) {
        match self {
            Launcher::Custom { prefix, capabilities } => (
                Launcher::Custom {
                    prefix: prefix.clone(),
                    capabilities: Capabilities { detaches: false, ..*capabilities },
                },
                local.as_os_str().to_owned(),
            ),
            Launcher::Ssh { destination, port, options } => {
                let far = format!("/tmp/umbilical-{name}.sock");
                let mut options = options.clone();
                options.extend(["-o".into(), "ExitOnForwardFailure=yes".into(), "-R".into()]);
                options.push(format!("{far}:{}", local.display()));
                (Launcher::Ssh { destination: destination.clone(), port: *port, options }, far.into())
            }
            // The first hop carries the link (ssh's forwarding); the
            // rest run inside it.
            Launcher::Chain(hops) if !hops.is_empty() => {
                let (first, path) = hops[0].around_shim(local, name);
                let mut hops = hops.clone();
                hops[0] = first;
                (Launcher::Chain(hops), path)
            }
            other => (other.clone(), local.as_os_str().to_owned()),
        }
    }

    /// The same launcher, never asking (ssh with `-o BatchMode=yes`): for
    /// a clean-up after a session we stopped, which must not prompt again.
    pub(crate) fn batch_mode(&self) -> Launcher {
        match self {
            Launcher::Ssh { destination, port, options } => {
                let mut options = options.clone();
                options.extend(["-o".to_string(), "BatchMode=yes".to_string()]);
                Launcher::Ssh { destination: destination.clone(), port: *port, options }
            }
            other => other.clone(),
        }
    }

    /// The same launcher as the target's default user (container exec
    /// without `-u`): an in-band bridge runs so, to remove the copy it
    /// owns and hand its socket to the program's user. For a chain, its
    /// hops but the innermost (ssh then sudo, of ssh, sudo, runuser; the
    /// container's exec, of exec then su), which reach a user (root) who
    /// can hand the socket to the innermost hop's user, and who owns the
    /// container's default places.
    pub(crate) fn as_default_user(&self) -> Launcher {
        match self {
            Launcher::ContainerExec { engine, target, .. } => {
                Launcher::ContainerExec { engine: *engine, target: target.clone(), user: None }
            }
            Launcher::Chain(hops) if hops.len() > 1 => {
                let mut outer = hops[..hops.len() - 1].to_vec();
                outer[0] = outer[0].as_default_user();
                if outer.len() == 1 { outer.remove(0) } else { Launcher::Chain(outer) }
            }
            other => other.clone(),
        }
    }

    /// Container exec: the argv that copies the file `host` (an absolute
    /// path) to `inside` in the container (`docker cp`, `podman cp`,
    /// `kubectl cp`, which needs `tar` in the container).
    pub(crate) fn copy_into(&self, host: &std::path::Path, inside: &str) -> Result<Vec<OsString>, Error> {
        let (program, target) = self.engine_and_target("copies no file")?;
        if !host.is_absolute() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{}: the file to copy, {}, is not an absolute path", self.name(), host.display()),
                None,
            ));
        }
        Ok(vec![program.into(), "cp".into(), host.as_os_str().to_owned(), format!("{target}:{inside}").into()])
    }

    /// Container exec: the argv that writes to its stdout a tar archive
    /// whose first entry is the directory `inside` itself, with its mode
    /// and owner: `docker cp C:DIR -`, `podman cp C:DIR -` (which read a
    /// stopped container too); through kubectl, `tar` in the pod (which
    /// `kubectl cp` needs anyway). With it, whether the archive gives the
    /// owner as it is in the container: podman's gives every entry to the
    /// user running podman (seen here: a /tmp of uid 1000 comes out as 0),
    /// so only its mode can be judged.
    pub(crate) fn archive_of(&self, inside: &str) -> Result<(Vec<OsString>, bool), Error> {
        let (program, target) = self.engine_and_target("reads no directory")?;
        if program != "kubectl" {
            let argv = vec![program.into(), "cp".into(), format!("{target}:{inside}").into(), "-".into()];
            return Ok((argv, program == "docker"));
        }
        let tar = ProgramSpec {
            program: "tar".into(),
            args: ["cf", "-", "--no-recursion", inside].map(OsString::from).to_vec(),
            ..ProgramSpec::default()
        };
        let wrapped =
            self.as_default_user().wrap(&tar, ExitDetection::Process, false)?.expect("container exec is a launcher");
        Ok((std::iter::once(wrapped.spec.program).chain(wrapped.spec.args).collect(), true))
    }

    /// Container exec: the argv that prints `true` when the container
    /// runs (`docker container inspect`, `podman container inspect`).
    /// `None` through kubectl: its copy is an exec, which fails before
    /// anything is written when the pod does not run.
    pub(crate) fn running_probe(&self) -> Option<Vec<OsString>> {
        let (program, target) = self.engine_and_target("has no container").ok()?;
        (program != "kubectl").then(|| {
            [program, "container", "inspect", "--format", "{{.State.Running}}", "--", target]
                .map(OsString::from)
                .to_vec()
        })
    }

    /// Container exec: its engine's program and a target that cannot read
    /// as an option.
    fn engine_and_target(&self, otherwise: &str) -> Result<(&'static str, &str), Error> {
        // A chain's container is its first hop's (exec, then su in it).
        if let Launcher::Chain(hops) = self
            && let Some(first @ Launcher::ContainerExec { .. }) = hops.first()
        {
            return first.engine_and_target(otherwise);
        }
        let Launcher::ContainerExec { engine, target, .. } = self else {
            return Err(Error::new(ErrorKind::InvalidInput, format!("{} {otherwise}", self.name()), None));
        };
        if target.is_empty() || target.starts_with('-') {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{}: container {target:?} is empty or looks like an option", self.name()),
                None,
            ));
        }
        let program = match engine {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Kubectl => "kubectl",
        };
        Ok((program, target))
    }
}

/// Why `hops` is no chain, if it is not one.
fn check_chain(hops: &[Launcher]) -> Result<(), String> {
    if hops.len() < 2 {
        return Err("a chain needs at least two launchers".into());
    }
    match hops.iter().find(|h| matches!(h, Launcher::Direct | Launcher::RunAs | Launcher::Chain(_))) {
        Some(h) => Err(format!("{} cannot be a hop of a chain", h.name())),
        None => Ok(()),
    }
}

/// A chain's capabilities, from its hops'.
fn chain_capabilities(hops: &[Launcher]) -> Capabilities {
    let each: Vec<Capabilities> = hops.iter().map(Launcher::capabilities).collect();
    let all = |f: fn(&Capabilities) -> bool| each.iter().all(f);
    let any = |f: fn(&Capabilities) -> bool| each.iter().any(f);
    let routes: Vec<ShimRoute> = each.iter().map(|c| c.shim_route).collect();
    let inner_local = routes.iter().skip(1).all(|r| *r == ShimRoute::Local);
    let shim_route = match routes.first() {
        Some(ShimRoute::Local) if inner_local => ShimRoute::Local,
        // ssh first, local hops on the far host: the forwarded socket.
        Some(ShimRoute::Forwarded) if inner_local => ShimRoute::Forwarded,
        // Container exec first, local hops in the container (su): in band,
        // the bridge run by the exec alone.
        Some(ShimRoute::InBandCopied) if inner_local => ShimRoute::InBandCopied,
        _ => ShimRoute::Unknown,
    };
    Capabilities {
        keeps_stdio: all(|c| c.keeps_stdio),
        keeps_extra_handles: all(|c| c.keeps_extra_handles),
        execs_in_place: all(|c| c.execs_in_place),
        returns_status: all(|c| c.returns_status),
        detaches: any(|c| c.detaches),
        via_shell: any(|c| c.via_shell),
        foreign_pids: any(|c| c.foreign_pids),
        passes_cwd: all(|c| c.passes_cwd),
        shim_route,
        prompts: each.first().map_or(PromptRoute::Never, |c| c.prompts),
        reparents: any(|c| c.reparents),
    }
}

/// The program and arguments as one command line for a POSIX `sh`, each
/// word quoted so that no byte can be read as shell syntax.
pub(crate) fn shell_command(program: &OsStr, args: &[OsString]) -> Result<String, String> {
    let mut out = String::new();
    for (i, word) in std::iter::once(program).chain(args.iter().map(OsString::as_os_str)).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let Some(word) = word.to_str() else {
            return Err("an argument for a shell is not valid UTF-8".into());
        };
        if word.contains('\0') {
            return Err("an argument for a shell contains a NUL byte".into());
        }
        out.push_str(&sh_quote(word));
    }
    Ok(out)
}

/// Quotes one word for a POSIX shell: bare if it only has characters no
/// shell treats specially, else in single quotes (inside which nothing is
/// special), with each `'` written as `'\''`.
pub fn sh_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    let mut q = String::with_capacity(word.len() + 2);
    q.push('\'');
    for c in word.chars() {
        if c == '\'' {
            q.push_str("'\\''");
        } else {
            q.push(c);
        }
    }
    q.push('\'');
    q
}

/// What to start instead of the program when a launcher is used.
pub(crate) struct Launched {
    /// The launcher's argv around the program, as a program of its own
    /// (its environment and directory are the launcher's).
    pub(crate) spec: ProgramSpec,
    /// How to learn the end, given what the launcher does.
    pub(crate) detection: ExitDetection,
}

impl Launcher {
    /// The launcher's process for running `spec` with `detection` asked
    /// for; `None` for [`Launcher::Direct`]. Launchers reset the
    /// environment, so `env` re-applies the changes on the far side; the
    /// working directory is the launcher's own.
    pub(crate) fn wrap(
        &self,
        spec: &ProgramSpec,
        detection: ExitDetection,
        answered: bool,
    ) -> Result<Option<Launched>, Error> {
        if self.is_direct() {
            return Ok(None);
        }
        let invalid = |what: String| Error::new(ErrorKind::InvalidInput, what, None);
        let detection = self.detection(detection).map_err(invalid)?;
        let custom = matches!(self, Launcher::Custom { .. });
        if spec.cwd.is_some() && !self.capabilities().passes_cwd {
            return Err(invalid(format!(
                "current_dir does not reach the program through {} without the shim (the shim changes to it on the \
                 far side)",
                self.name()
            )));
        }
        let (program, args) = if !custom && (spec.env_clear || !spec.env.is_empty()) {
            // env [-i] [-u NAME]... -- [NAME=VALUE]... PROGRAM ARGS: options
            // only before `--`, assignments after it.
            let mut args: Vec<OsString> = Vec::new();
            if spec.env_clear {
                args.push("-i".into());
            }
            for (k, v) in &spec.env {
                if v.is_none() && !spec.env_clear {
                    args.push("-u".into());
                    args.push(k.clone());
                }
            }
            args.push("--".into());
            for (k, v) in &spec.env {
                if let Some(v) = v {
                    let mut kv = k.clone();
                    kv.push("=");
                    kv.push(v);
                    args.push(kv);
                }
            }
            args.push(spec.program.clone());
            args.extend(spec.args.iter().cloned());
            (OsString::from("env"), args)
        } else {
            (spec.program.clone(), spec.args.clone())
        };
        let mut argv = self.plan_with(&program, &args, answered)?.into_iter();
        let launcher = ProgramSpec {
            program: argv.next().unwrap_or_default(),
            args: argv.collect(),
            // A custom launcher may keep the environment: it gets the
            // changes itself.
            env_clear: custom && spec.env_clear,
            env: if custom { spec.env.clone() } else { Default::default() },
            cwd: spec.cwd.clone(),
        };
        Ok(Some(Launched { spec: launcher, detection }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(l: &Launcher, program: &str, args: &[&str]) -> Vec<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        l.plan(program.as_ref(), &args).unwrap().into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn plans_of_the_launchers_people_reach_for_next() {
        let setpriv = Launcher::Setpriv { user: "bob".into(), group: None };
        assert_eq!(
            plan(&setpriv, "id", &["-u"]),
            ["setpriv", "--reuid=bob", "--regid=bob", "--init-groups", "--reset-env", "--", "id", "-u"]
        );
        let staff = Launcher::Setpriv { user: "bob".into(), group: Some("staff".into()) };
        assert_eq!(plan(&staff, "id", &[])[2], "--regid=staff");
        assert_eq!(
            plan(&Launcher::Nsenter { pid: 4242 }, "cat", &["a b"]),
            ["nsenter", "--target", "4242", "--all", "--", "cat", "a b"]
        );
        let unit = Launcher::SystemdRun { user: Some("bob".into()), properties: vec!["MemoryMax=1G".into()] };
        assert_eq!(
            plan(&unit, "cat", &[]),
            ["systemd-run", "--pipe", "--wait", "--quiet", "--collect", "--uid=bob", "-p", "MemoryMax=1G", "--", "cat"]
        );
        assert_eq!(plan(&Launcher::Run0 { user: None }, "id", &[]), ["run0", "--", "id"]);
        assert_eq!(plan(&Launcher::Run0 { user: Some("bob".into()) }, "id", &[]), ["run0", "--user=bob", "--", "id"]);
        assert_eq!(
            plan(&Launcher::FlatpakSpawn { forward_lifeline: true }, "id", &[]),
            ["flatpak-spawn", "--host", "--watch-bus", "--forward-fd=3", "--", "id"]
        );
        assert_eq!(
            plan(&Launcher::FlatpakSpawn { forward_lifeline: false }, "id", &[]),
            ["flatpak-spawn", "--host", "--watch-bus", "--", "id"]
        );
        // What would be read as an option, or is no target, is refused.
        let refused = [
            Launcher::Setpriv { user: "-x".into(), group: None },
            Launcher::Setpriv { user: "bob".into(), group: Some("--all".into()) },
            Launcher::Nsenter { pid: 0 },
            Launcher::SystemdRun { user: Some("-u".into()), properties: vec![] },
            Launcher::SystemdRun { user: None, properties: vec!["--no-equals".into()] },
            Launcher::Run0 { user: Some("-x".into()) },
        ];
        for l in refused {
            assert_eq!(l.plan("id".as_ref(), &[]).unwrap_err().kind(), ErrorKind::InvalidInput, "{l:?}");
        }
    }

    #[test]
    fn capability_rows_of_the_launchers_people_reach_for_next() {
        let setpriv = Launcher::Setpriv { user: "bob".into(), group: None }.capabilities();
        assert!(setpriv.keeps_stdio && setpriv.keeps_extra_handles && setpriv.execs_in_place && setpriv.returns_status);
        assert_eq!(setpriv.shim_route, ShimRoute::Local);
        let nsenter = Launcher::Nsenter { pid: 1 }.capabilities();
        assert!(nsenter.keeps_extra_handles && nsenter.returns_status && nsenter.foreign_pids && !nsenter.passes_cwd);
        assert_eq!(nsenter.shim_route, ShimRoute::Unknown, "the rendezvous is not in the target's mount namespace");
        for lossy in [
            Launcher::SystemdRun { user: None, properties: vec![] },
            Launcher::Run0 { user: None },
            Launcher::FlatpakSpawn { forward_lifeline: true },
        ] {
            let c = lossy.capabilities();
            assert!(!c.returns_status && c.reparents && c.keeps_stdio, "{lossy:?}: the shim (or a lifeline) mends it");
        }
        assert_eq!(Launcher::Run0 { user: None }.capabilities().prompts, PromptRoute::PolkitAgent);
        assert!(Launcher::FlatpakSpawn { forward_lifeline: true }.capabilities().keeps_extra_handles);
        assert!(!Launcher::FlatpakSpawn { forward_lifeline: false }.capabilities().keeps_extra_handles);
        assert_eq!(
            Launcher::FlatpakSpawn { forward_lifeline: true }.detection(ExitDetection::Auto),
            Ok(ExitDetection::ChannelClosed),
            "its exit is not the program's"
        );
    }

    #[test]
    fn a_chain_wraps_each_hop_in_the_one_outside_it() {
        let ssh = Launcher::Ssh { destination: "ops@db1".into(), port: None, options: vec![] };
        let sudo = Launcher::Sudo { user: Some("postgres".into()), non_interactive: true };
        let chain = Launcher::Chain(vec![ssh.clone(), sudo.clone()]);
        assert_eq!(chain.name(), "ssh then sudo");
        assert_eq!(
            plan(&chain, "psql", &["-c", "select 'x'"]),
            ["ssh", "ops@db1", "--", "sudo -n -u postgres -- psql -c 'select '\\''x'\\'''"]
        );
        // Two shells: su inside ssh quotes the quoted command again.
        let su = Launcher::Su { user: "app".into() };
        let two = Launcher::Chain(vec![ssh.clone(), su]);
        let argv = plan(&two, "echo", &["a b"]);
        assert_eq!(argv[3], "su app -s /bin/sh -c 'echo '\\''a b'\\'''");
        // Three hops, local after ssh; the handler answers the first only.
        let runuser = Launcher::Runuser { user: "www".into() };
        let three = Launcher::Chain(vec![Launcher::Sudo { user: None, non_interactive: false }, runuser.clone()]);
        assert_eq!(
            three.plan_with("id".as_ref(), &[], true).unwrap(),
            ["sudo", "-A", "--", "runuser", "-u", "www", "--", "id"]
        );
        assert_eq!(three.target_user(), Some("www"), "the program runs as the innermost hop's user");
        // Not chains.
        for bad in [
            Launcher::Chain(vec![sudo.clone()]),
            Launcher::Chain(vec![Launcher::Direct, sudo.clone()]),
            Launcher::Chain(vec![sudo.clone(), Launcher::RunAs]),
            Launcher::Chain(vec![sudo.clone(), Launcher::Chain(vec![sudo.clone(), sudo.clone()])]),
        ] {
            assert_eq!(bad.plan("id".as_ref(), &[]).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(chain.hops().len(), 2);
        assert_eq!(sudo.hops(), std::slice::from_ref(&sudo));
    }

    /// The in-band bridge of a chain runs through its hops but the last:
    /// the container's exec as its default user; ssh then sudo (root).
    #[cfg(unix)]
    #[test]
    fn a_chains_bridge_runs_through_its_outer_hops() {
        let ssh = Launcher::Ssh { destination: "ops@db1".into(), port: None, options: vec![] };
        let sudo = Launcher::Sudo { user: None, non_interactive: true };
        let su = Launcher::Su { user: "app".into() };
        let docker = Launcher::ContainerExec { engine: Engine::Docker, target: "c".into(), user: None };
        let docker_1000 =
            Launcher::ContainerExec { engine: Engine::Docker, target: "c".into(), user: Some("1000".into()) };
        assert_eq!(Launcher::Chain(vec![docker_1000, su.clone()]).as_default_user(), docker);
        let runuser = Launcher::Runuser { user: "t".into() };
        let three = Launcher::Chain(vec![ssh.clone(), sudo.clone(), runuser]);
        assert_eq!(three.as_default_user(), Launcher::Chain(vec![ssh, sudo]));
        // The chain's container is its first hop's.
        let exec_su = Launcher::Chain(vec![docker, su]);
        assert_eq!(exec_su.running_probe().unwrap()[0], "docker");
        assert_eq!(exec_su.archive_of("/tmp").unwrap().0, ["docker", "cp", "c:/tmp", "-"].map(OsString::from).to_vec());
    }

    #[test]
    fn a_chains_capabilities_compose() {
        let ssh = Launcher::Ssh { destination: "ops@db1".into(), port: None, options: vec![] };
        let sudo = Launcher::Sudo { user: None, non_interactive: true };
        let setpriv = Launcher::Setpriv { user: "www".into(), group: None };
        let docker = Launcher::ContainerExec { engine: Engine::Docker, target: "c".into(), user: None };
        let remote = Launcher::Chain(vec![ssh.clone(), sudo.clone()]).capabilities();
        assert!(remote.returns_status && remote.foreign_pids && remote.via_shell && !remote.passes_cwd);
        assert_eq!(remote.shim_route, ShimRoute::Forwarded, "ssh first, local hops on the far host");
        assert_eq!(remote.prompts, PromptRoute::SshAskpass, "the first hop's");
        let local = Launcher::Chain(vec![sudo.clone(), setpriv.clone()]).capabilities();
        assert!(local.returns_status && !local.foreign_pids && local.passes_cwd && !local.keeps_extra_handles);
        assert_eq!(local.shim_route, ShimRoute::Local);
        let both_exec = Launcher::Chain(vec![setpriv.clone(), Launcher::Pkexec { user: None, keep_cwd: true }]);
        assert!(both_exec.capabilities().execs_in_place && !both_exec.capabilities().keeps_extra_handles);
        // Container exec then local hops in the container: in band, the
        // bridge run by the exec alone as the container's default user.
        let su = Launcher::Su { user: "app".into() };
        let exec_su = Launcher::Chain(vec![docker.clone(), su.clone()]);
        assert_eq!(exec_su.capabilities().shim_route, ShimRoute::InBandCopied);
        assert_eq!(exec_su.target_user(), Some("app"), "the bridge hands its socket to su's user");
        // ssh after a local hop, or a container after one: no route.
        assert_eq!(Launcher::Chain(vec![sudo.clone(), ssh.clone()]).capabilities().shim_route, ShimRoute::Unknown);
        assert_eq!(Launcher::Chain(vec![sudo.clone(), docker]).capabilities().shim_route, ShimRoute::Unknown);
        let lossy = Launcher::Chain(vec![sudo.clone(), Launcher::Run0 { user: None }]).capabilities();
        assert!(!lossy.returns_status && lossy.reparents);
        // The far socket: root and the ssh user reach it, others do not.
        let to = |user: Option<&str>| {
            Launcher::Chain(vec![ssh.clone(), Launcher::Sudo { user: user.map(Into::into), non_interactive: true }])
        };
        assert!(to(None).far_socket_reachable().is_ok());
        assert!(to(Some("root")).far_socket_reachable().is_ok());
        assert!(to(Some("ops")).far_socket_reachable().is_ok());
        assert!(to(Some("postgres")).far_socket_reachable().unwrap_err().contains("postgres"));
    }

    #[test]
    fn plans() {
        assert_eq!(plan(&Launcher::Direct, "cat", &["-u"]), ["cat", "-u"]);
        assert_eq!(
            plan(&Launcher::Sudo { user: Some("bob".into()), non_interactive: true }, "id", &["-u"]),
            ["sudo", "-n", "-u", "bob", "--", "id", "-u"]
        );
        assert_eq!(plan(&Launcher::Sudo { user: None, non_interactive: false }, "id", &[]), ["sudo", "--", "id"]);
        assert_eq!(
            plan(&Launcher::Doas { user: Some("bob".into()) }, "id", &[]),
            ["doas", "-n", "-u", "bob", "--", "id"]
        );
        assert_eq!(
            plan(&Launcher::Pkexec { user: Some("bob".into()), keep_cwd: true }, "/usr/bin/id", &[]),
            ["pkexec", "--user", "bob", "--keep-cwd", "/usr/bin/id"]
        );
        assert_eq!(plan(&Launcher::Runuser { user: "bob".into() }, "id", &[]), ["runuser", "-u", "bob", "--", "id"]);
        assert_eq!(
            plan(&Launcher::Su { user: "bob".into() }, "printf", &["%s\n", "it's"]),
            ["su", "bob", "-s", "/bin/sh", "-c", "printf '%s\n' 'it'\\''s'"]
        );
        assert_eq!(
            plan(
                &Launcher::Ssh { destination: "bob@127.0.0.1".into(), port: Some(2222), options: vec!["-T".into()] },
                "cat",
                &["a b"]
            ),
            ["ssh", "-p", "2222", "-T", "bob@127.0.0.1", "--", "cat 'a b'"]
        );
        assert_eq!(
            plan(&Launcher::ContainerExec { engine: Engine::Docker, target: "web".into(), user: None }, "cat", &[]),
            ["docker", "exec", "-i", "web", "cat"]
        );
        assert_eq!(
            plan(&Launcher::ContainerExec { engine: Engine::Podman, target: "web".into(), user: None }, "cat", &[]),
            ["podman", "exec", "-i", "web", "cat"]
        );
        assert_eq!(
            plan(
                &Launcher::ContainerExec {
                    engine: Engine::Docker,
                    target: "web".into(),
                    user: Some("1000:1000".into())
                },
                "cat",
                &[]
            ),
            ["docker", "exec", "-i", "-u", "1000:1000", "web", "cat"]
        );
        assert_eq!(
            plan(
                &Launcher::ContainerExec { engine: Engine::Kubectl, target: "prod/api-0".into(), user: None },
                "cat",
                &["-"]
            ),
            ["kubectl", "exec", "-i", "-n", "prod", "api-0", "--", "cat", "-"]
        );
        assert_eq!(
            plan(&Launcher::ContainerExec { engine: Engine::Kubectl, target: "api-0".into(), user: None }, "cat", &[]),
            ["kubectl", "exec", "-i", "api-0", "--", "cat"]
        );
        let custom = Launcher::Custom {
            prefix: vec!["setsid".into(), "-f".into()],
            capabilities: Capabilities {
                keeps_stdio: true,
                keeps_extra_handles: true,
                detaches: true,
                ..Default::default()
            },
        };
        assert_eq!(plan(&custom, "cat", &[]), ["setsid", "-f", "cat"]);
    }

    #[test]
    fn option_injection_is_refused() {
        let bad = [
            Launcher::Sudo { user: Some("-s".into()), non_interactive: true },
            Launcher::Runuser { user: "--preserve-environment".into() },
            Launcher::Su { user: "".into() },
            Launcher::Ssh { destination: "-oProxyCommand=touch /tmp/pwned".into(), port: None, options: vec![] },
            Launcher::ContainerExec { engine: Engine::Docker, target: "--privileged".into(), user: None },
            Launcher::ContainerExec { engine: Engine::Kubectl, target: "-n/pod".into(), user: None },
            Launcher::ContainerExec { engine: Engine::Kubectl, target: "pod".into(), user: Some("app".into()) },
            Launcher::ContainerExec { engine: Engine::Docker, target: "web".into(), user: Some("-0".into()) },
            Launcher::RunAs,
        ];
        for l in bad {
            let err = l.plan("id".as_ref(), &[]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{l:?}");
        }
    }

    #[test]
    fn detection_follows_capabilities() {
        let sudo = Launcher::Sudo { user: None, non_interactive: true };
        assert_eq!(sudo.detection(ExitDetection::Auto), Ok(ExitDetection::Process));
        assert!(sudo.detection(ExitDetection::Lifeline).is_err(), "sudo closes fd 3");
        let detaching = |extra| Launcher::Custom {
            prefix: vec!["setsid".into(), "-f".into()],
            capabilities: Capabilities {
                keeps_stdio: true,
                keeps_extra_handles: extra,
                detaches: true,
                ..Default::default()
            },
        };
        assert_eq!(detaching(true).detection(ExitDetection::Auto), Ok(ExitDetection::Lifeline));
        assert_eq!(detaching(false).detection(ExitDetection::Auto), Ok(ExitDetection::ChannelClosed));
        assert!(detaching(true).detection(ExitDetection::Process).is_err(), "never the launcher's exit");
    }

    fn spec(env_clear: bool, env: &[(&str, Option<&str>)], cwd: Option<&str>) -> ProgramSpec {
        ProgramSpec {
            program: "prog".into(),
            args: vec!["a b".into()],
            env_clear,
            env: env.iter().map(|(k, v)| (OsString::from(k), v.map(OsString::from))).collect(),
            cwd: cwd.map(Into::into),
        }
    }

    fn argv(launched: &Launched) -> Vec<String> {
        std::iter::once(&launched.spec.program)
            .chain(&launched.spec.args)
            .map(|s| s.clone().into_string().unwrap())
            .collect()
    }

    /// Every launcher but Direct, RunAs and Custom, which `wrap` treats
    /// apart.
    fn argv_launchers() -> Vec<Launcher> {
        vec![
            Launcher::Sudo { user: Some("bob".into()), non_interactive: true },
            Launcher::Doas { user: None },
            Launcher::Pkexec { user: None, keep_cwd: true },
            Launcher::Runuser { user: "bob".into() },
            Launcher::Su { user: "bob".into() },
            Launcher::Ssh { destination: "h".into(), port: None, options: vec![] },
            Launcher::ContainerExec { engine: Engine::Docker, target: "c".into(), user: None },
        ]
    }

    #[test]
    fn wrap_reapplies_the_environment_with_env_and_keeps_none_for_itself() {
        // Set, removed and cleared variables: `env [-i] [-u NAME].. -- NAME=VALUE.. PROGRAM ARGS`.
        let changes = spec(false, &[("A", Some("1")), ("B", None), ("C", Some("x y"))], None);
        let cleared = spec(true, &[("A", Some("1")), ("B", None)], None);
        let plain = spec(false, &[], None);
        for l in argv_launchers() {
            let wrapped = |s: &ProgramSpec| l.wrap(s, ExitDetection::Auto, false).unwrap().unwrap();
            let prefix = l.plan("X".as_ref(), &[]).unwrap().len() - 1;
            let shell = l.capabilities().via_shell;
            let tail = |launched: &Launched| -> Vec<String> {
                let argv = argv(launched);
                if shell { vec![argv.last().unwrap().clone()] } else { argv[prefix..].to_vec() }
            };
            // Through a shell the whole command is one quoted word.
            let expect = |words: &[&str]| -> Vec<String> {
                if shell {
                    let rest: Vec<OsString> = words[1..].iter().map(OsString::from).collect();
                    vec![shell_command(words[0].as_ref(), &rest).unwrap()]
                } else {
                    words.iter().map(|w| w.to_string()).collect()
                }
            };
            let c = wrapped(&changes);
            assert_eq!(tail(&c), expect(&["env", "-u", "B", "--", "A=1", "C=x y", "prog", "a b"]), "{l:?}");
            assert!(!c.spec.env_clear && c.spec.env.is_empty(), "{l:?}: the launcher's own environment is untouched");
            let c = wrapped(&cleared);
            assert_eq!(tail(&c), expect(&["env", "-i", "--", "A=1", "prog", "a b"]), "{l:?}: -i, and no -u after it");
            let p = wrapped(&plain);
            let direct = expect(&["prog", "a b"]);
            assert_eq!(tail(&p), direct, "{l:?}: no env without changes");
        }
    }

    #[test]
    fn wrap_passes_the_directory_only_where_the_launcher_keeps_it() {
        let in_dir = spec(false, &[], Some("/srv"));
        for l in argv_launchers() {
            let got = l.wrap(&in_dir, ExitDetection::Auto, false);
            if l.capabilities().passes_cwd {
                let launched = got.unwrap().unwrap();
                assert_eq!(launched.spec.cwd.as_deref(), Some(std::path::Path::new("/srv")), "{l:?}");
            } else {
                let err = got.err().unwrap_or_else(|| panic!("{l:?} must refuse a directory it cannot pass"));
                assert_eq!(err.kind(), ErrorKind::InvalidInput);
                assert!(err.to_string().contains("current_dir"), "{err}");
            }
        }
        let pkexec_home = Launcher::Pkexec { user: None, keep_cwd: false };
        assert!(pkexec_home.wrap(&in_dir, ExitDetection::Auto, false).is_err(), "pkexec without --keep-cwd goes home");
        assert!(
            Launcher::Ssh { destination: "h".into(), port: None, options: vec![] }
                .wrap(&in_dir, ExitDetection::Auto, false)
                .is_err()
        );
    }

    #[test]
    fn wrap_leaves_direct_alone_and_gives_custom_the_environment() {
        assert!(
            Launcher::Direct
                .wrap(&spec(true, &[("A", Some("1"))], Some("/")), ExitDetection::Auto, false)
                .unwrap()
                .is_none()
        );
        let custom = Launcher::Custom {
            prefix: vec!["nice".into(), "-n5".into()],
            capabilities: Capabilities { keeps_stdio: true, returns_status: true, ..Default::default() },
        };
        let launched =
            custom.wrap(&spec(true, &[("A", Some("1"))], Some("/srv")), ExitDetection::Auto, false).unwrap().unwrap();
        assert_eq!(argv(&launched), ["nice", "-n5", "prog", "a b"], "no env: a custom launcher keeps the environment");
        assert!(launched.spec.env_clear);
        assert_eq!(launched.spec.env.get(OsStr::new("A")), Some(&Some("1".into())));
        assert_eq!(launched.detection, ExitDetection::Process);
        // What the launcher cannot carry is refused before anything runs.
        let sudo = Launcher::Sudo { user: None, non_interactive: true };
        assert_eq!(
            sudo.wrap(&spec(false, &[], None), ExitDetection::Lifeline, false).err().unwrap().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            Launcher::RunAs.wrap(&spec(false, &[], None), ExitDetection::Auto, false).err().unwrap().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn capability_rows_agree_with_what_the_code_asks() {
        for l in argv_launchers() {
            let c = l.capabilities();
            assert!(c.keeps_stdio && c.returns_status && !c.detaches, "{l:?}");
            assert_eq!(c.foreign_pids, c.shim_route != ShimRoute::Local, "{l:?}: only a remote launcher has far pids");
            assert_eq!(c.passes_cwd, !c.foreign_pids, "{l:?}");
        }
        assert_eq!(Launcher::Direct.capabilities().shim_route, ShimRoute::Local);
        assert_eq!(Launcher::RunAs.capabilities().shim_route, ShimRoute::Elevation);
        assert_eq!(
            Capabilities::default().shim_route,
            ShimRoute::Unknown,
            "a custom launcher is not trusted to run the shim"
        );
        assert!(Capabilities::default().passes_cwd);
        assert_eq!(Capabilities::default().prompts, PromptRoute::Never, "a custom launcher's prompts are its own");
    }

    #[test]
    fn a_handler_changes_sudo_and_doas_flags_only() {
        let prog = OsStr::new("id");
        for non_interactive in [true, false] {
            let sudo = Launcher::Sudo { user: Some("bob".into()), non_interactive };
            let argv = sudo.plan_with(prog, &[], true).unwrap();
            assert_eq!(argv, ["sudo", "-A", "-u", "bob", "--", "id"], "-A replaces -n: a handler answers");
        }
        let doas = Launcher::Doas { user: Some("bob".into()) };
        assert_eq!(doas.plan_with(prog, &[], true).unwrap(), ["doas", "-u", "bob", "--", "id"], "doas may ask");
        assert_eq!(doas.plan_with(prog, &[], false).unwrap(), ["doas", "-n", "-u", "bob", "--", "id"]);
        for l in argv_launchers() {
            if !matches!(l, Launcher::Sudo { .. } | Launcher::Doas { .. }) {
                assert_eq!(l.plan_with(prog, &[], true).unwrap(), l.plan(prog, &[]).unwrap(), "{l:?}");
            }
        }
        assert_eq!(
            Launcher::Sudo { user: None, non_interactive: true }.capabilities().prompts,
            PromptRoute::SudoAskpass
        );
        let ssh = Launcher::Ssh { destination: "h".into(), port: None, options: vec![] };
        assert_eq!(ssh.capabilities().prompts, PromptRoute::SshAskpass);
    }

    #[test]
    fn sh_quote_shapes() {
        assert_eq!(sh_quote("plain-word_1.txt"), "plain-word_1.txt");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }

    #[cfg(unix)]
    #[test]
    fn copies_into_containers() {
        let copy = |engine, target: &str| {
            Launcher::ContainerExec { engine, target: target.into(), user: Some("app".into()) }
                .copy_into(std::path::Path::new("/opt/shim"), "/tmp/umbilical-x")
        };
        assert_eq!(copy(Engine::Docker, "web").unwrap(), ["docker", "cp", "/opt/shim", "web:/tmp/umbilical-x"]);
        assert_eq!(copy(Engine::Podman, "web").unwrap(), ["podman", "cp", "/opt/shim", "web:/tmp/umbilical-x"]);
        assert_eq!(
            copy(Engine::Kubectl, "prod/api-0").unwrap(),
            ["kubectl", "cp", "/opt/shim", "prod/api-0:/tmp/umbilical-x"]
        );
        assert_eq!(copy(Engine::Docker, "--privileged").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(copy(Engine::Docker, "").unwrap_err().kind(), ErrorKind::InvalidInput);
        let relative = Launcher::ContainerExec { engine: Engine::Docker, target: "web".into(), user: None }
            .copy_into(std::path::Path::new("-shim"), "/tmp/x");
        assert_eq!(
            relative.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "a relative host path could read as an option"
        );
        assert!(Launcher::Direct.copy_into(std::path::Path::new("/opt/shim"), "/tmp/x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn reads_a_containers_directory_and_state() {
        let on =
            |engine, target: &str| Launcher::ContainerExec { engine, target: target.into(), user: Some("app".into()) };
        let archive = |l: Launcher, dir| l.archive_of(dir).unwrap();
        assert_eq!(
            archive(on(Engine::Docker, "web"), "/tmp"),
            (["docker", "cp", "web:/tmp", "-"].map(OsString::from).to_vec(), true)
        );
        assert_eq!(
            archive(on(Engine::Podman, "web"), "/"),
            (["podman", "cp", "web:/", "-"].map(OsString::from).to_vec(), false)
        );
        assert_eq!(
            archive(on(Engine::Kubectl, "prod/api-0"), "/tmp").0,
            ["kubectl", "exec", "-i", "-n", "prod", "api-0", "--", "tar", "cf", "-", "--no-recursion", "/tmp"],
            "as the pod's default user: kubectl has no user option"
        );
        assert_eq!(on(Engine::Docker, "-H").archive_of("/tmp").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(
            on(Engine::Docker, "web").running_probe().unwrap(),
            ["docker", "container", "inspect", "--format", "{{.State.Running}}", "--", "web"]
        );
        assert_eq!(on(Engine::Kubectl, "api-0").running_probe(), None);
        assert_eq!(Launcher::Direct.running_probe(), None);
        assert!(Launcher::Direct.archive_of("/tmp").is_err());
    }
}
