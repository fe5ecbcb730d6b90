//! A launcher written as a short spec (`sudo:nobody`, `ssh:ops@db1:2222`),
//! as the CLI's `--via` and the Node package's `via` take it.
//!
//! One parser for every front end, so that `--via X` and `via: "X"` never
//! mean two different things. It refuses what a launcher would misread: an
//! empty user (an empty sudo user would have meant root) and a name that
//! starts with `-` (it would be taken for an option).

use std::str::FromStr;

use crate::error::{Error, ErrorKind};
use crate::launcher::{Capabilities, Engine, Launcher};

impl FromStr for Launcher {
    type Err = Error;

    /// Parses one launcher spec:
    /// `direct`, `sudo[:USER]`, `doas[:USER]`, `pkexec[:USER]`,
    /// `runuser:USER`, `su:USER`, `ssh:[USER@]HOST[:PORT]` (an IPv6 host in
    /// brackets), `docker:[USER@]CONTAINER`, `podman:[USER@]CONTAINER`,
    /// `kubectl:[NAMESPACE/]POD`, `setpriv:USER[:GROUP]`, `nsenter:PID`,
    /// `systemd-run[:USER]`, `run0[:USER]`, `flatpak-spawn`, `runas`,
    /// `custom:PROGRAM[,ARG...]`.
    ///
    /// `sudo` alone is the launcher's default user (root); `sudo:` with
    /// nothing after the colon is refused, not taken for root. A custom
    /// launcher is assumed to keep stdio and inherited descriptors and to
    /// return the program's status; set its [`Capabilities`] otherwise.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`], with a message that names the spec.
    ///
    /// ```
    /// use umbilical::Launcher;
    ///
    /// let sudo: Launcher = "sudo:nobody".parse()?;
    /// assert_eq!(sudo, Launcher::Sudo { user: Some("nobody".into()), non_interactive: false });
    /// assert!("sudo:".parse::<Launcher>().is_err(), "an empty user is not root");
    /// assert!("ssh:-oProxyCommand=x".parse::<Launcher>().is_err());
    /// # Ok::<(), umbilical::Error>(())
    /// ```
    fn from_str(spec: &str) -> Result<Launcher, Error> {
        parse(spec).map_err(invalid)
    }
}

impl Launcher {
    /// Parses a chain, outer launcher first: `["ssh:ops@db1",
    /// "sudo:postgres"]` runs sudo on db1. One spec is that launcher alone
    /// (not a chain of one); `direct` and `runas` have no place in a chain.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`]: no spec, a spec [`Launcher::from_str`]
    /// refuses, or a hop that cannot be chained.
    ///
    /// ```
    /// use umbilical::Launcher;
    ///
    /// let chain = Launcher::from_specs(["ssh:ops@db1", "sudo:postgres"])?;
    /// assert_eq!(chain.hops().len(), 2);
    /// assert!(Launcher::from_specs(["sudo", "runas"]).is_err());
    /// # Ok::<(), umbilical::Error>(())
    /// ```
    pub fn from_specs<I, S>(specs: I) -> Result<Launcher, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut hops = specs.into_iter().map(|s| s.as_ref().parse()).collect::<Result<Vec<Launcher>, _>>()?;
        match hops.len() {
            0 => Err(invalid("no launcher spec given".into())),
            1 => Ok(hops.remove(0)),
            n => {
                if let Some(bad) = hops.iter().find(|h| matches!(h, Launcher::Direct | Launcher::RunAs)) {
                    return Err(invalid(format!("{} cannot be a hop of a chain ({n} launchers given)", bad.name())));
                }
                Ok(Launcher::Chain(hops))
            }
        }
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message, None)
}

fn parse(spec: &str) -> Result<Launcher, String> {
    let (kind, rest) = match spec.split_once(':') {
        Some((k, r)) => (k, Some(r)),
        None => (spec, None),
    };
    let user = |what: &str| -> Result<String, String> {
        match rest {
            Some(u) => name(what, "user", u),
            None => Err(format!("{what} needs a user: {what}:USER")),
        }
    };
    let optional_user = |what: &str| rest.map(|u| name(what, "user", u)).transpose();
    let needs = |what: &str, form: &str| -> Result<String, String> {
        rest.filter(|r| !r.is_empty()).map(str::to_string).ok_or_else(|| format!("{what} needs {form}"))
    };
    Ok(match kind {
        "direct" if rest.is_none() => Launcher::Direct,
        "sudo" => Launcher::Sudo { user: optional_user("sudo")?, non_interactive: false },
        "doas" => Launcher::Doas { user: optional_user("doas")? },
        "pkexec" => Launcher::Pkexec { user: optional_user("pkexec")?, keep_cwd: true },
        "runuser" => Launcher::Runuser { user: user("runuser")? },
        "su" => Launcher::Su { user: user("su")? },
        "ssh" => ssh(&needs("ssh", "a destination: ssh:[USER@]HOST[:PORT]")?)?,
        "docker" | "podman" => {
            let engine = if kind == "docker" { Engine::Docker } else { Engine::Podman };
            let target = needs(kind, "a container: [USER@]CONTAINER")?;
            let (user, container) = match target.split_once('@') {
                Some((u, c)) => (Some(name(kind, "user", u)?), c.to_string()),
                None => (None, target),
            };
            Launcher::ContainerExec { engine, target: name(kind, "container", &container)?, user }
        }
        "kubectl" => Launcher::ContainerExec {
            engine: Engine::Kubectl,
            target: name("kubectl", "pod", &needs("kubectl", "[NAMESPACE/]POD")?)?,
            user: None,
        },
        "setpriv" => {
            let spec = needs("setpriv", "a user: setpriv:USER[:GROUP]")?;
            let (user, group) = match spec.split_once(':') {
                Some((u, g)) => (u.to_string(), Some(name("setpriv", "group", g)?)),
                None => (spec, None),
            };
            Launcher::Setpriv { user: name("setpriv", "user", &user)?, group }
        }
        "nsenter" => {
            let pid = needs("nsenter", "a pid: nsenter:PID")?;
            match pid.parse::<u32>() {
                Ok(pid) if pid > 0 => Launcher::Nsenter { pid },
                _ => return Err(format!("nsenter: {pid:?} is not a pid")),
            }
        }
        "systemd-run" => Launcher::SystemdRun { user: optional_user("systemd-run")?, properties: Vec::new() },
        "run0" => Launcher::Run0 { user: optional_user("run0")? },
        "flatpak-spawn" if rest.is_none() => Launcher::FlatpakSpawn { forward_lifeline: true },
        "runas" if rest.is_none() => Launcher::RunAs,
        "custom" => {
            let argv = needs("custom", "a program: custom:PROGRAM[,ARG...]")?;
            let prefix: Vec<&str> = argv.split(',').collect();
            if prefix.iter().any(|w| w.is_empty()) {
                return Err(format!("custom:{argv}: an empty word in the launcher's argv (custom:PROGRAM[,ARG...])"));
            }
            Launcher::Custom {
                prefix: prefix.into_iter().map(Into::into).collect(),
                capabilities: Capabilities {
                    keeps_stdio: true,
                    keeps_extra_handles: true,
                    returns_status: true,
                    ..Capabilities::default()
                },
            }
        }
        _ => return Err(format!("{spec:?}: unknown launcher")),
    })
}

/// `ssh:[USER@]HOST[:PORT]`, an IPv6 host in brackets.
fn ssh(target: &str) -> Result<Launcher, String> {
    let (login, host_port) = match target.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, target),
    };
    let port = |p: &str| p.parse::<u16>().map_err(|_| format!("ssh: bad port {p:?}"));
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("ssh: unclosed '[' in the host")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(port(p)?),
            None if after.is_empty() => None,
            None => return Err(format!("ssh: unexpected {after:?} after the host")),
        };
        (host, port)
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(port(p)?)),
            None => (host_port, None),
        }
    };
    let host = name("ssh", "host", host)?;
    let destination = match login {
        Some(u) => format!("{}@{host}", name("ssh", "user", u)?),
        None => host,
    };
    Ok(Launcher::Ssh { destination, port, options: Vec::new() })
}

/// A user, host or container name: not empty, and not something the
/// launcher would take for an option.
fn name(launcher: &str, what: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("{launcher}: the {what} is empty"));
    }
    if value.starts_with('-') {
        return Err(format!("{launcher}: the {what} {value:?} looks like an option"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<Launcher, Error> {
        spec.parse()
    }

    fn same(spec: &str, want: Launcher) {
        assert_eq!(parse(spec).unwrap(), want, "{spec}");
    }

    #[test]
    fn specs() {
        same("direct", Launcher::Direct);
        same("sudo", Launcher::Sudo { user: None, non_interactive: false });
        same("sudo:bob", Launcher::Sudo { user: Some("bob".into()), non_interactive: false });
        same("runuser:bob", Launcher::Runuser { user: "bob".into() });
        assert!(parse("runuser").is_err());
        assert!(parse("su:").is_err());
        same(
            "ssh:bob@127.0.0.1:2222",
            Launcher::Ssh { destination: "bob@127.0.0.1".into(), port: Some(2222), options: vec![] },
        );
        same("ssh:[::1]:22", Launcher::Ssh { destination: "::1".into(), port: Some(22), options: vec![] });
        same("ssh:host", Launcher::Ssh { destination: "host".into(), port: None, options: vec![] });
        assert!(parse("ssh:host:notaport").is_err());
        same(
            "docker:app@web",
            Launcher::ContainerExec { engine: Engine::Docker, target: "web".into(), user: Some("app".into()) },
        );
        same(
            "podman:1000:1000@web",
            Launcher::ContainerExec { engine: Engine::Podman, target: "web".into(), user: Some("1000:1000".into()) },
        );
        same(
            "kubectl:ns/pod",
            Launcher::ContainerExec { engine: Engine::Kubectl, target: "ns/pod".into(), user: None },
        );
        let Ok(Launcher::Custom { prefix, capabilities }) = parse("custom:setsid,-f") else { panic!() };
        assert_eq!(prefix, ["setsid", "-f"]);
        assert!(capabilities.returns_status && !capabilities.detaches);
        let err = parse("telnet:host").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("telnet:host"), "{err}");
        // Empty or option-like names are refused, never passed on (an empty
        // sudo user would have meant root).
        for bad in [
            "sudo:",
            "doas:",
            "pkexec:",
            "sudo:-u",
            "runuser:-x",
            "su:",
            "ssh:bob@",
            "ssh:@host",
            "ssh:-oProxyCommand=x",
            "ssh:bob@-h",
            "ssh:[]:22",
            "ssh:[::1",
            "ssh:[::1]x",
            "docker:",
            "docker:-it",
            "podman:--rm",
            "kubectl:",
            "custom:",
            "custom:,",
            "custom:setsid,",
            "custom:,x",
            "direct:x",
            "runas:x",
        ] {
            assert_eq!(parse(bad).map_err(|e| e.kind()), Err(ErrorKind::InvalidInput), "{bad} must be refused");
        }
    }

    #[test]
    fn the_launchers_people_reach_for_next() {
        same("setpriv:bob", Launcher::Setpriv { user: "bob".into(), group: None });
        same("setpriv:bob:staff", Launcher::Setpriv { user: "bob".into(), group: Some("staff".into()) });
        same("nsenter:4242", Launcher::Nsenter { pid: 4242 });
        assert!(parse("nsenter:0").is_err());
        assert!(parse("nsenter:self").is_err());
        assert!(parse("setpriv").is_err());
        same("run0", Launcher::Run0 { user: None });
        same("systemd-run:bob", Launcher::SystemdRun { user: Some("bob".into()), properties: vec![] });
        same("flatpak-spawn", Launcher::FlatpakSpawn { forward_lifeline: true });
    }

    #[test]
    fn several_specs_are_a_chain_outer_to_inner() {
        assert_eq!(
            Launcher::from_specs(["ssh:ops@db1", "sudo:postgres"]).unwrap(),
            Launcher::Chain(vec![
                Launcher::Ssh { destination: "ops@db1".into(), port: None, options: vec![] },
                Launcher::Sudo { user: Some("postgres".into()), non_interactive: false },
            ])
        );
        assert_eq!(Launcher::from_specs(["sudo"]).unwrap(), parse("sudo").unwrap(), "once: one launcher");
        assert!(Launcher::from_specs(Vec::<String>::new()).is_err());
        assert!(Launcher::from_specs(["direct", "sudo"]).is_err());
        assert!(Launcher::from_specs(["sudo", "runas"]).is_err());
        assert!(Launcher::from_specs(["sudo", "nope:x"]).is_err());
    }
}
