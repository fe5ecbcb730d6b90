//! Launcher chains (issue #26), for real, through the CLI's repeated
//! `--via`: ssh (as the test caller, to the loopback sshd) then sudo to
//! root, with the shim innermost; sudo then runuser, local; three hops,
//! ssh, sudo, runuser to an unprivileged user, who cannot reach the socket
//! ssh forwards (the ssh user's, 0600), so the shim goes in band; and
//! docker or podman exec then su to a user of the image, the shim in band
//! (its bridge run by the exec, handing its socket to su's user). Each:
//! identity on the far side, 2 MiB byte-exact with half-close, exit codes,
//! signal deaths, a missing program, refusals, `--timeout` and a SIGTERM to
//! `umbilical run` leaving nothing running, and words with spaces, quotes,
//! `$` and `*` exact.

#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::{RUN_LIMIT, UMBILICAL, output_within};

/// The `--via` words of each chain this machine can run; SKIP otherwise.
struct Chains {
    ssh_sudo: Vec<String>,
    sudo_runuser: Vec<String>,
    three: Vec<String>,
    target: String,
    path: String,
}

fn chains(what: &str) -> Option<Chains> {
    let vars =
        ["UMBILICAL_TEST_CHAIN_SSH_USER", "UMBILICAL_TEST_SSH_PORT", "UMBILICAL_TEST_SSH_KEY", "UMBILICAL_TEST_USER"];
    let Ok([ssh_user, port, key, target]) =
        vars.map(std::env::var).into_iter().collect::<Result<Vec<_>, _>>().map(|v| <[String; 4]>::try_from(v).unwrap())
    else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("SKIP: {what}: no loopback sshd or chain user (scripts/launchers.sh start, as root)\n").as_bytes(),
        );
        return None;
    };
    let dir = ssh_wrapper_dir(&key);
    let ssh = format!("ssh:{ssh_user}@127.0.0.1:{port}");
    let via = |hops: &[&str]| hops.iter().flat_map(|h| ["--via".to_string(), h.to_string()]).collect::<Vec<_>>();
    let runuser = format!("runuser:{target}");
    Some(Chains {
        ssh_sudo: via(&[&ssh, "sudo"]),
        sudo_runuser: via(&["sudo", &runuser]),
        three: via(&[&ssh, "sudo", &runuser]),
        target,
        path: format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default()),
    })
}

/// The directory holding this test process's `ssh` wrapper, written once
/// and renamed into place: the tests run in parallel, and a wrapper
/// rewritten while another test execs it fails that exec (ETXTBSY, seen as
/// a 126) or runs a half-written script (no output).
fn ssh_wrapper_dir(key: &str) -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chains-ssh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let partial = dir.join("ssh.partial");
        std::fs::write(
            &partial,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -i '{key}' -o BatchMode=yes -o StrictHostKeyChecking=no \
                 -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"$@\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&partial, dir.join("ssh")).unwrap();
        dir
    })
    .clone()
}

impl Chains {
    fn run(&self, via: &[String], args: &[&str], stdin: &[u8]) -> Output {
        output_within(&mut self.command(via, args), stdin, RUN_LIMIT)
    }

    /// `umbilical run OPTIONS -- sh -c 'sleep 30; echo MARKER'` through
    /// `via`, its stdio null, returned once the program itself runs (an
    /// anchored match: `umbilical run`'s, sudo's and runuser's command
    /// lines hold the program's words too, and a signal sent to `umbilical
    /// run` when only its own line matched came before its handlers; seen
    /// in CI: killed by the SIGTERM meant to be passed on).
    fn start_sleeper(&self, via: &[String], options: &[&str], marker: &str) -> std::process::Child {
        let script = format!("sleep 30; echo {marker}");
        let mut args = options.to_vec();
        args.extend(["--", "sh", "-c", &script]);
        let child = self
            .command(via, &args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !running(&format!("^sh -c {script}$")) {
            assert!(start.elapsed() < Duration::from_secs(20), "the program never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn command(&self, via: &[String], args: &[&str]) -> Command {
        let mut cmd = Command::new(UMBILICAL);
        cmd.arg("run").args(via).args(args).env("PATH", &self.path);
        cmd
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Whether a process whose command line matches `marker` (pgrep -f's
/// extended regex) still runs (see `Chains::start_sleeper` for anchoring).
fn running(marker: &str) -> bool {
    Command::new("pgrep").args(["-f", marker]).output().is_ok_and(|o| o.status.success())
}

fn gone_within(marker: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !running(marker) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn ssh_then_sudo_with_the_shim_innermost() {
    let Some(c) = chains("ssh then sudo") else { return };
    let via = &c.ssh_sudo;
    let out = c.run(via, &["-v", "--", "id", "-un"], b"");
    assert_eq!(text(&out.stdout), "root\n", "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("shim: used (through ssh then sudo)"), "{}", text(&out.stderr));
    // 2 MiB byte-exact, the half-close reaching the program.
    let payload = pattern(2 << 20);
    let out = c.run(via, &["--", "sh", "-c", "cat; echo after-eof >&2"], &payload);
    assert!(
        out.stdout == payload,
        "2 MiB byte-exact through the chain: {}; {}",
        common::mismatch(&out.stdout, &payload),
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("after-eof"));
    assert_eq!(c.run(via, &["--", "sh", "-c", "exit 3"], b"").status.code(), Some(3));
    // A signal death is exact through the shim: the report says so.
    let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chain-report-{}", std::process::id()));
    let out = c.run(via, &["--report", report.to_str().unwrap(), "--", "sh", "-c", "kill -TERM $$"], b"");
    assert_eq!(out.status.code(), Some(128 + 15), "{}", text(&out.stderr));
    let said = std::fs::read_to_string(&report).unwrap();
    let _ = std::fs::remove_file(&report);
    assert!(said.contains("\"signaled\": 15") && said.contains("\"shim\""), "{said}");
    // A program missing beyond every hop.
    let out = c.run(via, &["--", "no-such-program-beyond-the-chain"], b"");
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    // Words with spaces, quotes, $ and * reach the program exactly.
    let words = ["a b", "it's", "\"q\"", "$HOME", "*", "back\\slash", ""];
    let mut args = vec!["--", "printf", "[%s]\\n"];
    args.extend(words);
    let out = c.run(via, &args, b"");
    let expected: String = words.iter().map(|w| format!("[{w}]\n")).collect();
    assert_eq!(text(&out.stdout), expected, "{}", text(&out.stderr));
}

#[test]
fn the_inner_hops_refusal_is_a_refusal_naming_the_chain() {
    let Some(c) = chains("a refusal inside a chain") else { return };
    // doas to root: the caller's doas rule allows the test user only.
    let mut via = c.ssh_sudo.clone();
    via[3] = "doas".into();
    let start = Instant::now();
    let out = c.run(&via, &["--", "true"], b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("ssh then doas") && stderr.contains("refused"), "{stderr}");
    let destination = via[1].trim_start_matches("ssh:").rsplit_once(':').unwrap().0;
    let hop = format!("ssh to {destination} connected: doas on it refused");
    assert!(stderr.contains(&hop), "the hop that refused: {stderr}");
    assert!(stderr.contains("doas: "), "doas's own words: {stderr}");
    assert!(start.elapsed() < Duration::from_secs(30)); // A chain the shim's link cannot come back through (a container
    // entered after a local hop): refused at once, before anything runs.
    let out = c.run(
        &["--via".into(), "sudo".into(), "--via".into(), "docker:no-such-container".into()],
        &["--shim", "--", "true"],
        b"",
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("cannot come back through sudo then docker"), "{}", text(&out.stderr));
}

#[test]
fn timeout_sigterm_and_the_callers_death_through_a_chain_leave_nothing_running() {
    let Some(c) = chains("timeouts through a chain") else { return };
    for (n, via) in [&c.ssh_sudo, &c.sudo_runuser, &c.three].into_iter().enumerate() {
        let marker = format!("umb-chain-timeout-{}-{n}", std::process::id());
        let out = c.run(via, &["--timeout", "2", "--", "sh", "-c", &format!("sleep 30; echo {marker}")], b"");
        assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
        assert!(gone_within(&marker, Duration::from_secs(10)), "{marker} still runs after --timeout");
        // A supervisor's SIGTERM to `umbilical run`.
        let marker = format!("umb-chain-term-{}-{n}", std::process::id());
        let mut child = c.start_sleeper(via, &[], &marker);
        common::send(child.id(), 15);
        let status = common::wait_within(&mut child, Duration::from_secs(30), "umbilical after SIGTERM");
        assert_eq!(status.code(), Some(128 + 15), "{n}");
        assert!(gone_within(&marker, Duration::from_secs(10)), "{marker} still runs after SIGTERM");
        // The caller killed outright (SIGKILL): the link drops, and the
        // shim ends the program after the grace (--kill-after 1).
        let marker = format!("umb-chain-kill-{}-{n}", std::process::id());
        let mut child = c.start_sleeper(via, &["--kill-after", "1"], &marker);
        common::send(child.id(), 9);
        common::wait_within(&mut child, Duration::from_secs(30), "umbilical after SIGKILL");
        assert!(gone_within(&marker, Duration::from_secs(15)), "{marker} still runs after the caller's SIGKILL");
    }
}

#[test]
fn sudo_then_runuser_locally() {
    let Some(c) = chains("sudo then runuser") else { return };
    let via = &c.sudo_runuser;
    let out = c.run(via, &["-v", "--", "id", "-un"], b"");
    assert_eq!(text(&out.stdout), format!("{}\n", c.target), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("shim: used"), "{}", text(&out.stderr));
    let payload = pattern(2 << 20);
    let out = c.run(via, &["--", "cat"], &payload);
    assert!(
        out.stdout == payload,
        "2 MiB byte-exact: {}; {}",
        common::mismatch(&out.stdout, &payload),
        text(&out.stderr)
    );
    assert_eq!(c.run(via, &["--", "sh", "-c", "exit 4"], b"").status.code(), Some(4));
    assert_eq!(c.run(via, &["--", "sh", "-c", "kill -KILL $$"], b"").status.code(), Some(128 + 9));
}

/// What every chain must give, beyond its own test: words with spaces,
/// quotes, `$`, `*` and a backslash exact; a program missing beyond every
/// hop 127; a signal death exact; and the innermost hop's refusal (a user
/// that does not exist) 125 with that hop's words or the bridge's, never
/// taken for the program's status.
#[test]
fn every_chain_passes_words_missing_programs_signals_and_refusals() {
    let Some(c) = chains("every chain") else { return };
    for (what, via) in
        [("ssh then sudo", &c.ssh_sudo), ("sudo then runuser", &c.sudo_runuser), ("three hops", &c.three)]
    {
        let words = ["a b", "it's", "\"q\"", "$HOME", "*", "back\\slash", ""];
        let mut args = vec!["--", "printf", "[%s]\\n"];
        args.extend(words);
        let out = c.run(via, &args, b"");
        let expected: String = words.iter().map(|w| format!("[{w}]\n")).collect();
        assert_eq!(text(&out.stdout), expected, "{what}: {}", text(&out.stderr));
        let out = c.run(via, &["--", "no-such-program-beyond-the-chain"], b"");
        assert_eq!(out.status.code(), Some(127), "{what}: {}", text(&out.stderr));
        assert_signaled_exactly(&c, via, what);
        let mut refused = via.clone();
        let last = refused.last_mut().unwrap();
        *last = match last.split_once(':') {
            Some((hop, _)) if hop != "ssh" => format!("{hop}:umb-no-such-user"),
            _ => format!("{last}:umb-no-such-user"),
        };
        let out = c.run(&refused, &["--", "true"], b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{what}: {stderr}");
        assert!(stderr.contains("umb-no-such-user"), "{what}: the hop's words name the user: {stderr}");
    }
}

/// A signal death through the shim: 128+N, and the report says `signaled`
/// (without the shim the hops give only 128+N).
fn assert_signaled_exactly(c: &Chains, via: &[String], what: &str) {
    let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "chain-report-{}-{}",
        std::process::id(),
        what.replace(' ', "-")
    ));
    let out = c.run(via, &["--report", report.to_str().unwrap(), "--", "sh", "-c", "kill -TERM $$"], b"");
    assert_eq!(out.status.code(), Some(128 + 15), "{what}: {}", text(&out.stderr));
    let said = std::fs::read_to_string(&report).unwrap();
    let _ = std::fs::remove_file(&report);
    assert!(said.contains("\"signaled\": 15") && said.contains("\"used\": true"), "{what}: {said}");
}

/// ssh, sudo, runuser to a user who cannot open the socket ssh forwards
/// (the ssh user's, 0600): the shim goes in band, its bridge run through
/// ssh then sudo (root) and handing its socket to that user. Identity,
/// 2 MiB with half-close, exit codes, a signal death exact, 127 beyond
/// every hop; asked for the forwarded link, it is refused saying why.
#[test]
fn three_hops_to_a_user_who_cannot_reach_the_far_socket_go_in_band() {
    let Some(c) = chains("ssh, sudo, runuser") else { return };
    let via = &c.three;
    let out = c.run(via, &["-v", "--", "id", "-un"], b"");
    let stderr = text(&out.stderr);
    assert_eq!(text(&out.stdout), format!("{}\n", c.target), "{stderr}");
    assert!(stderr.contains("shim: used") && stderr.contains("in band"), "says how: {stderr}");
    let payload = pattern(2 << 20);
    let out = c.run(via, &["--", "sh", "-c", "cat; exit 3"], &payload);
    assert!(
        out.stdout == payload,
        "2 MiB byte-exact through three hops: {}, {:?}; {}",
        common::mismatch(&out.stdout, &payload),
        out.status,
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3));
    assert_signaled_exactly(&c, via, "three hops");
    let out = c.run(via, &["--", "no-such-program-here"], b"");
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    // Asking for the forwarded link there is refused, saying why.
    let out = c.run(via, &["--shim", "--shim-link", "forwarded", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("cannot reach the socket"), "{}", text(&out.stderr));
}

/// Container exec then su to a user of the image (`app`, uid 1000, made
/// by scripts/containers.sh), through docker and podman, with the shim in
/// band (the CLI's carried shim copied in; the bridge run by the exec as
/// the container's root, handing its socket to `app`): identity, 2 MiB
/// byte-exact with half-close, exit codes, a signal death exact
/// (`signaled` in the report), a missing program 127, `--timeout
/// --kill-after` ending a program that ignores TERM inside, words with
/// spaces, quotes, `$` and `*` exact; without the shim, 128+N.
#[test]
fn container_exec_then_su() {
    let skip = |why: &str| {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("SKIP: container exec then su: {why}\n").as_bytes(),
        );
    };
    let engines: Vec<(&str, String)> =
        [("docker", "UMBILICAL_TEST_DOCKER_CONTAINER"), ("podman", "UMBILICAL_TEST_PODMAN_CONTAINER")]
            .into_iter()
            .filter_map(|(engine, var)| std::env::var(var).ok().map(|c| (engine, c)))
            .collect();
    if engines.is_empty() {
        return skip("no test container (scripts/containers.sh start)");
    }
    for (engine, container) in engines {
        let probe = "for d in /bin /usr/bin /sbin /usr/sbin; do [ -x $d/su ] && exit 0; done; exit 1";
        let has_su = Command::new(engine).args(["exec", &container, "sh", "-c", probe]).output();
        if !has_su.is_ok_and(|o| o.status.success()) {
            skip(&format!("{engine}: the test image has no su"));
            continue;
        }
        let via = [format!("--via={engine}:{container}"), "--via=su:app".to_string()];
        let run = |args: &[&str], stdin: &[u8]| {
            let mut cmd = Command::new(UMBILICAL);
            cmd.arg("run").args(&via).args(args);
            output_within(&mut cmd, stdin, RUN_LIMIT)
        };
        let out = run(&["--", "sh", "-c", "id -un; exit 5"], b"");
        assert_eq!(text(&out.stdout), "app\n", "{engine}: {}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(5), "{engine}");
        let payload = pattern(2 << 20);
        let out = run(&["--", "sh", "-c", "cat; exit 3"], &payload);
        assert!(
            out.stdout == payload,
            "{engine}: 2 MiB byte-exact through exec and su: {}; {}",
            common::mismatch(&out.stdout, &payload),
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(3), "{engine}");
        // Through the shim, in band: the signal death exact, the report
        // says so.
        let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("exec-su-report-{}-{engine}", std::process::id()));
        let out = run(&["-v", "--report", report.to_str().unwrap(), "--", "sh", "-c", "kill -USR1 $$"], b"");
        assert_eq!(out.status.code(), Some(128 + 10), "{engine}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("shim: used"), "{engine}: {}", text(&out.stderr));
        let said = std::fs::read_to_string(&report).unwrap();
        let _ = std::fs::remove_file(&report);
        assert!(said.contains("\"signaled\": 10"), "{engine}: {said}");
        let out = run(&["--", "no-such-program-here"], b"");
        assert_eq!(out.status.code(), Some(127), "{engine}: {}", text(&out.stderr));
        // --timeout reaches the program inside (without the shim it would
        // stop only the exec client), as app.
        let marker = format!("umb-exec-su-{}-{engine}", std::process::id());
        let out = run(
            &[
                "--timeout",
                "2",
                "--kill-after",
                "1",
                "--",
                "sh",
                "-c",
                &format!("trap '' TERM; while :; do sleep 1; done; : {marker}"),
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(124), "{engine}: {}", text(&out.stderr));
        let top = || {
            Command::new("timeout")
                .args(["30", engine, "top", &container])
                .output()
                .map(|o| text(&o.stdout))
                .unwrap_or_default()
        };
        let start = Instant::now();
        while top().contains(&marker) {
            assert!(start.elapsed() < Duration::from_secs(15), "{engine}: the program still runs in the container");
            std::thread::sleep(Duration::from_millis(200));
        }
        let words = ["a b", "it's", "$HOME", "*", "\"q\""];
        let mut args = vec!["--", "sh", "-c", "printf '%s|' \"$@\"", "sh"];
        args.extend(words);
        let out = run(&args, b"");
        assert_eq!(text(&out.stdout), "a b|it's|$HOME|*|\"q\"|", "{engine}: {}", text(&out.stderr));
        // su to a user the image does not have: 125, saying so.
        let mut cmd = Command::new(UMBILICAL);
        cmd.arg("run").arg(&via[0]).arg("--via=su:umb-no-such-user").args(["--", "true"]);
        let out = output_within(&mut cmd, b"", RUN_LIMIT);
        assert_eq!(out.status.code(), Some(125), "{engine}");
        assert!(text(&out.stderr).contains("umb-no-such-user"), "{engine}: {}", text(&out.stderr));
        // Without the shim the hops give 128+N and su's own words.
        let out = run(&["--no-shim", "--", "sh", "-c", "kill -TERM $$"], b"");
        assert_eq!(out.status.code(), Some(128 + 15), "{engine}");
    }
}
