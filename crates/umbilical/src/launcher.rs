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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
            Launcher::Custom { prefix, .. } => {
                prefix.first().map_or_else(|| "custom".into(), |p| p.to_string_lossy().into_owned())
            }
        }
    }

    /// The user the program runs as, where the launcher names one.
    pub(crate) fn target_user(&self) -> Option<&str> {
        match self {
            Launcher::Sudo { user, .. } | Launcher::Doas { user } | Launcher::Pkexec { user, .. } => user.as_deref(),
            Launcher::Runuser { user } | Launcher::Su { user } => Some(user),
            _ => None,
        }
    }

    /// What this launcher does with the channel, descriptors and status.
    pub fn capabilities(&self) -> Capabilities {
        let c = |keeps_extra_handles, execs_in_place, via_shell| Capabilities {
            keeps_stdio: true,
            keeps_extra_handles,
            execs_in_place,
            returns_status: true,
            detaches: false,
            via_shell,
        };
        match self {
            Launcher::Direct => c(true, true, false),
            Launcher::Sudo { .. } => c(false, false, false),
            Launcher::Doas { .. } => c(false, false, false),
            Launcher::Pkexec { .. } => c(false, true, false),
            Launcher::Runuser { .. } => c(false, false, false),
            Launcher::Su { .. } | Launcher::Ssh { .. } => c(false, false, true),
            Launcher::ContainerExec { .. } => c(false, false, false),
            Launcher::RunAs => Capabilities::default(),
            Launcher::Custom { capabilities, .. } => *capabilities,
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
                if *non_interactive {
                    push(&["-n"]);
                }
                if let Some(u) = user {
                    not_option("user", u)?;
                    push(&["-u", u]);
                }
                push(&["--"]);
            }
            Launcher::Doas { user } => {
                push(&["doas", "-n"]);
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
            Launcher::Custom { prefix, .. } => argv.extend(prefix.iter().cloned()),
        }
        direct(&mut argv);
        Ok(argv)
    }
}

#[cfg(unix)]
impl Launcher {
    /// Container exec: the argv that copies the file `host` (an absolute
    /// path) to `inside` in the container (`docker cp`, `podman cp`,
    /// `kubectl cp`, which needs `tar` in the container).
    pub(crate) fn copy_into(&self, host: &std::path::Path, inside: &str) -> Result<Vec<OsString>, Error> {
        let Launcher::ContainerExec { engine, target, .. } = self else {
            return Err(Error::new(ErrorKind::InvalidInput, format!("{} copies no file", self.name()), None));
        };
        let invalid = |what: String| Err(Error::new(ErrorKind::InvalidInput, format!("{}: {what}", self.name()), None));
        if target.is_empty() || target.starts_with('-') {
            return invalid(format!("container {target:?} is empty or looks like an option"));
        }
        if !host.is_absolute() {
            return invalid(format!("the file to copy, {}, is not an absolute path", host.display()));
        }
        let program = match engine {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Kubectl => "kubectl",
        };
        Ok(vec![program.into(), "cp".into(), host.as_os_str().to_owned(), format!("{target}:{inside}").into()])
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
    pub(crate) fn wrap(&self, spec: &ProgramSpec, detection: ExitDetection) -> Result<Option<Launched>, Error> {
        if *self == Launcher::Direct {
            return Ok(None);
        }
        let invalid = |what: String| Error::new(ErrorKind::InvalidInput, what, None);
        let detection = self.detection(detection).map_err(invalid)?;
        let custom = matches!(self, Launcher::Custom { .. });
        if spec.cwd.is_some() && matches!(self, Launcher::Ssh { .. } | Launcher::ContainerExec { .. }) {
            return Err(invalid(format!("current_dir cannot be passed through {} yet", self.name())));
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
        let mut argv = self.plan(&program, &args)?.into_iter();
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
}
