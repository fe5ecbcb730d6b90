//! `--via SPEC`: which launcher `umbilical run` goes through.

use umbilical::{Capabilities, Engine, Launcher};

/// Parses a launcher spec:
/// `direct`, `sudo[:USER]`, `doas[:USER]`, `pkexec[:USER]`, `runuser:USER`,
/// `su:USER`, `ssh:[USER@]HOST[:PORT]` (an IPv6 host in brackets),
/// `docker:[USER@]CONTAINER`, `podman:[USER@]CONTAINER`, `kubectl:[NAMESPACE/]POD`,
/// `setpriv:USER[:GROUP]`, `nsenter:PID`, `systemd-run[:USER]`, `run0[:USER]`,
/// `flatpak-spawn`, `runas`, `custom:PROGRAM[,ARG...]`. A custom launcher is assumed to keep
/// stdio and inherited descriptors and to return the program's status,
/// unless `detaches` says it exits at once.
pub fn parse(spec: &str, detaches: bool) -> Result<Launcher, String> {
    let (kind, rest) = match spec.split_once(':') {
        Some((k, r)) => (k, Some(r)),
        None => (spec, None),
    };
    let user = |what: &str| -> Result<String, String> {
        match rest {
            Some(u) => name(what, "user", u),
            None => Err(format!("--via {what} needs a user: {what}:USER")),
        }
    };
    // `sudo` alone means the launcher's default user (root); `sudo:` with
    // nothing after the colon is a mistake, not a request for root.
    let optional_user = |what: &str| rest.map(|u| name(what, "user", u)).transpose();
    let needs = |what: &str, form: &str| -> Result<String, String> {
        rest.filter(|r| !r.is_empty()).map(str::to_string).ok_or_else(|| format!("--via {what} needs {form}"))
    };
    if detaches && kind != "custom" {
        return Err("--detaches applies to --via custom:... only".into());
    }
    Ok(match kind {
        "direct" if rest.is_none() => Launcher::Direct,
        "sudo" => Launcher::Sudo { user: optional_user("sudo")?, non_interactive: false },
        "doas" => Launcher::Doas { user: optional_user("doas")? },
        "pkexec" => Launcher::Pkexec { user: optional_user("pkexec")?, keep_cwd: true },
        "runuser" => Launcher::Runuser { user: user("runuser")? },
        "su" => Launcher::Su { user: user("su")? },
        "ssh" => {
            let target = needs("ssh", "a destination: ssh:[USER@]HOST[:PORT]")?;
            let (login, host_port) = match target.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, target.as_str()),
            };
            let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
                let (host, after) = bracketed.split_once(']').ok_or("unclosed '[' in the ssh host")?;
                let port = match after.strip_prefix(':') {
                    Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad ssh port {p:?}"))?),
                    None if after.is_empty() => None,
                    None => return Err(format!("unexpected {after:?} after the ssh host")),
                };
                (host.to_string(), port)
            } else {
                match host_port.split_once(':') {
                    Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().map_err(|_| format!("bad ssh port {p:?}"))?)),
                    None => (host_port.to_string(), None),
                }
            };
            let host = name("ssh", "host", &host)?;
            let destination = match login {
                Some(u) => format!("{}@{host}", name("ssh", "user", u)?),
                None => host,
            };
            Launcher::Ssh { destination, port, options: Vec::new() }
        }
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
                _ => return Err(format!("--via nsenter: {pid:?} is not a pid")),
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
                return Err(format!(
                    "--via custom:{argv}: an empty word in the launcher's argv (custom:PROGRAM[,ARG...])"
                ));
            }
            Launcher::Custom {
                prefix: prefix.into_iter().map(Into::into).collect(),
                capabilities: Capabilities {
                    keeps_stdio: true,
                    keeps_extra_handles: true,
                    returns_status: !detaches,
                    detaches,
                    ..Capabilities::default()
                },
            }
        }
        _ => return Err(format!("unknown launcher {spec:?} (see --help for --via)")),
    })
}

/// `--via` given once is one launcher; more than once, a chain, outer to
/// inner (`Launcher::Chain`), where `direct` and `runas` have no place.
pub fn parse_chain(specs: &[String], detaches: bool) -> Result<Launcher, String> {
    if let [one] = specs {
        return parse(one, detaches);
    }
    let hops = specs.iter().map(|s| parse(s, detaches)).collect::<Result<Vec<_>, _>>()?;
    if let Some(bad) = hops.iter().find(|h| matches!(h, Launcher::Direct | Launcher::RunAs)) {
        return Err(format!("--via {} cannot be a hop of a chain (--via given {} times)", bad.name(), hops.len()));
    }
    Ok(Launcher::Chain(hops))
}

/// A user, host or container name: not empty, and not something the
/// launcher would take for an option.
fn name(launcher: &str, what: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("--via {launcher}: the {what} is empty"));
    }
    if value.starts_with('-') {
        return Err(format!("--via {launcher}: the {what} {value:?} looks like an option"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse("direct", false), Ok(Launcher::Direct));
        assert_eq!(parse("sudo", false), Ok(Launcher::Sudo { user: None, non_interactive: false }));
        assert_eq!(parse("sudo:bob", false), Ok(Launcher::Sudo { user: Some("bob".into()), non_interactive: false }));
        assert_eq!(parse("runuser:bob", false), Ok(Launcher::Runuser { user: "bob".into() }));
        assert!(parse("runuser", false).is_err());
        assert!(parse("su:", false).is_err());
        assert_eq!(
            parse("ssh:bob@127.0.0.1:2222", false),
            Ok(Launcher::Ssh { destination: "bob@127.0.0.1".into(), port: Some(2222), options: vec![] })
        );
        assert_eq!(
            parse("ssh:[::1]:22", false),
            Ok(Launcher::Ssh { destination: "::1".into(), port: Some(22), options: vec![] })
        );
        assert_eq!(
            parse("ssh:host", false),
            Ok(Launcher::Ssh { destination: "host".into(), port: None, options: vec![] })
        );
        assert!(parse("ssh:host:notaport", false).is_err());
        assert_eq!(
            parse("docker:app@web", false),
            Ok(Launcher::ContainerExec { engine: Engine::Docker, target: "web".into(), user: Some("app".into()) })
        );
        assert_eq!(
            parse("podman:1000:1000@web", false),
            Ok(Launcher::ContainerExec {
                engine: Engine::Podman,
                target: "web".into(),
                user: Some("1000:1000".into())
            })
        );
        assert!(parse("docker:-u@web", false).is_err());
        assert_eq!(
            parse("kubectl:ns/pod", false),
            Ok(Launcher::ContainerExec { engine: Engine::Kubectl, target: "ns/pod".into(), user: None })
        );
        let Ok(Launcher::Custom { prefix, capabilities }) = parse("custom:setsid,-f", true) else { panic!() };
        assert_eq!(prefix, ["setsid", "-f"]);
        assert!(capabilities.detaches && !capabilities.returns_status);
        assert!(parse("sudo", true).is_err(), "--detaches only with custom");
        assert!(parse("telnet:host", false).is_err());
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
            "docker:",
            "docker:-it",
            "podman:--rm",
            "kubectl:",
            "custom:",
            "custom:,",
            "custom:setsid,",
            "custom:,x",
        ] {
            assert!(parse(bad, false).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn the_launchers_people_reach_for_next() {
        assert_eq!(parse("setpriv:bob", false), Ok(Launcher::Setpriv { user: "bob".into(), group: None }));
        assert_eq!(
            parse("setpriv:bob:staff", false),
            Ok(Launcher::Setpriv { user: "bob".into(), group: Some("staff".into()) })
        );
        assert_eq!(parse("nsenter:4242", false), Ok(Launcher::Nsenter { pid: 4242 }));
        assert!(parse("nsenter:0", false).is_err());
        assert!(parse("nsenter:self", false).is_err());
        assert!(parse("setpriv", false).is_err());
        assert_eq!(parse("run0", false), Ok(Launcher::Run0 { user: None }));
        assert_eq!(
            parse("systemd-run:bob", false),
            Ok(Launcher::SystemdRun { user: Some("bob".into()), properties: vec![] })
        );
        assert_eq!(parse("flatpak-spawn", false), Ok(Launcher::FlatpakSpawn { forward_lifeline: true }));
    }

    #[test]
    fn repeated_via_is_a_chain_outer_to_inner() {
        let specs = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_chain(&specs(&["ssh:ops@db1", "sudo:postgres"]), false),
            Ok(Launcher::Chain(vec![
                Launcher::Ssh { destination: "ops@db1".into(), port: None, options: vec![] },
                Launcher::Sudo { user: Some("postgres".into()), non_interactive: false },
            ]))
        );
        assert_eq!(parse_chain(&specs(&["sudo"]), false), parse("sudo", false), "once: one launcher");
        assert!(parse_chain(&specs(&["direct", "sudo"]), false).is_err());
        assert!(parse_chain(&specs(&["sudo", "runas"]), false).is_err());
        assert!(parse_chain(&specs(&["sudo", "nope:x"]), false).is_err());
    }
}
