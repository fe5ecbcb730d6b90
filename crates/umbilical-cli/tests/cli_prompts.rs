//! Prompts the caller answers (issue #24), for real, from a caller with no
//! terminal (`setsid`): a non-root caller whose sudo and doas rules ask for
//! its password every time (scripts/launchers.sh: `timestamp_timeout=0`,
//! no `persist`), pkexec with a polkit rule that asks it, su to a user
//! with a password (refused: su reads it from the channel), and ssh to a
//! loopback sshd that takes passwords only. The answer comes from
//! `--askpass PROGRAM`; each question it was asked is logged, so the tests
//! see how many answers the launcher asked for. Right password: the
//! program runs, the channel and its half-close intact, the exact status.
//! Wrong or declined: 125 in bounded time, with the launcher's own words.
//! No askpass and no terminal: a bounded refusal naming `--askpass`. While
//! a run waits on a slow answer, no process's argv or environment holds
//! the password, and processes racing for the relay's socket (the caller's
//! own user, the target user) get nothing.

#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::{RUN_LIMIT, UMBILICAL, output_within};

/// A stage the prompt caller can use: the CLI, askpass programs, the
/// password (readable by the caller only) and a log of the questions.
struct Stage {
    dir: PathBuf,
    caller: String,
    password: String,
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn skip(what: &str, why: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("SKIP: {what}: {why}\n").as_bytes());
}

fn stage(what: &str) -> Option<Stage> {
    let (Ok(caller), Ok(file)) =
        (std::env::var("UMBILICAL_TEST_PROMPT_CALLER"), std::env::var("UMBILICAL_TEST_PROMPT_PASSWORD_FILE"))
    else {
        skip(what, "UMBILICAL_TEST_PROMPT_CALLER unset (scripts/launchers.sh, as root)");
        return None;
    };
    let password = std::fs::read_to_string(file).unwrap().trim().to_string();
    assert!(password.len() >= 16, "a real password");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prompts-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(UMBILICAL, dir.join("umbilical")).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, format!("{password}\n")).unwrap();
    let chown = Command::new("chown").arg(&caller).arg(&secret).status().unwrap();
    assert!(chown.success());
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = dir.join("asked");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let d = dir.display();
    // Each logs the question (one line each, newlines flattened), then
    // answers: a host-key question with yes, a password from the file.
    let scripts = [
        ("right.sh", format!("case \"$1\" in *yes/no*) echo yes;; *) cat {d}/secret;; esac")),
        ("slow.sh", format!("sleep 2; cat {d}/secret")),
        ("wrong.sh", "echo not-the-password".to_string()),
        ("decline.sh", "exit 1".to_string()),
        ("password-only.sh", format!("case \"$1\" in *yes/no*) exit 1;; *) cat {d}/secret;; esac")),
    ];
    for (name, body) in scripts {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nprintf '%s\\n' \"$1\" | tr '\\n' ' ' >> {d}/asked\necho >> {d}/asked\n{body}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Some(Stage { dir, caller, password })
}

impl Stage {
    fn cli(&self) -> String {
        self.dir.join("umbilical").display().to_string()
    }

    fn askpass(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The questions asked so far, one per line.
    fn asked(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("asked")).unwrap().lines().map(str::to_string).collect()
    }

    /// `setsid runuser -u CALLER -- umbilical run ARGS`: no terminal.
    fn as_caller(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("setsid");
        cmd.args(["runuser", "-u", &self.caller, "--", &self.cli(), "run"]).args(args);
        cmd
    }

    /// `setsid umbilical run ARGS` with a PATH whose ssh trusts nothing
    /// known (the host key is asked) and offers no key.
    fn ssh(&self, args: &[&str]) -> Option<Command> {
        let (Ok(port), Ok(user)) =
            (std::env::var("UMBILICAL_TEST_SSH_PASSWORD_PORT"), std::env::var("UMBILICAL_TEST_PROMPT_USER"))
        else {
            skip("prompts through ssh", "UMBILICAL_TEST_SSH_PASSWORD_PORT unset (scripts/launchers.sh)");
            return None;
        };
        let wrapper = self.dir.join("ssh");
        let d = self.dir.display();
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -o UserKnownHostsFile={d}/known_hosts -o GlobalKnownHostsFile=/dev/null \
                 -o PubkeyAuthentication=no -o IdentityFile=/dev/null -o LogLevel=ERROR \"$@\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_file(self.dir.join("known_hosts"));
        let mut cmd = Command::new("setsid");
        cmd.arg(self.cli()).arg("run").arg("--via").arg(format!("ssh:{user}@127.0.0.1:{port}")).args(args);
        cmd.env("PATH", format!("{d}:{}", std::env::var("PATH").unwrap_or_default()));
        Some(cmd)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(mut cmd: Command, stdin: &[u8]) -> (Output, Duration) {
    let start = Instant::now();
    let out = output_within(&mut cmd, stdin, RUN_LIMIT);
    (out, start.elapsed())
}

fn target_user() -> String {
    std::env::var("UMBILICAL_TEST_USER").unwrap_or_else(|_| "umbtest".into())
}

/// The local launchers whose rule asks the caller for its password: the
/// launcher, how many times it asks before it gives up on wrong answers,
/// and what its question says.
fn local_launchers() -> [(&'static str, usize, String); 2] {
    let caller = std::env::var("UMBILICAL_TEST_PROMPT_CALLER").unwrap_or_default();
    [
        // sudo's askpass helper (-A): passwd_tries is 3.
        ("sudo", 3, format!("password for {caller}")),
        // doas's own terminal (a private one): one attempt.
        ("doas", 1, format!("doas ({caller}@")),
    ]
}

#[test]
fn the_launcher_asks_the_callers_askpass_and_the_channel_holds() {
    for (launcher, _, question) in local_launchers() {
        let Some(stage) = stage(&format!("{launcher}-right")) else { return };
        let via = format!("{launcher}:{}", target_user());
        for shim in ["--shim", "--no-shim"] {
            let cmd = stage.as_caller(&[
                shim,
                "--askpass",
                &stage.askpass("right.sh"),
                "--via",
                &via,
                "--",
                "sh",
                "-c",
                "id -un; cat; echo after-eof; exit 7",
            ]);
            let (out, _) = run(cmd, b"one\ntwo\n");
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(7), "{launcher} {shim}: the program's exact status; stderr: {stderr}");
            assert_eq!(
                text(&out.stdout),
                format!("{}\none\ntwo\nafter-eof\n", target_user()),
                "{launcher} {shim}: {stderr}"
            );
        }
        let asked = stage.asked();
        assert_eq!(asked.len(), 2, "{launcher}: one question per run: {asked:?}");
        assert!(asked.iter().all(|q| q.contains(&question)), "{launcher}: {asked:?}");
    }
}

#[test]
fn a_wrong_password_is_refused_after_the_launchers_own_retries() {
    for (launcher, tries, _) in local_launchers() {
        let Some(stage) = stage(&format!("{launcher}-wrong")) else { return };
        let via = format!("{launcher}:{}", target_user());
        let (out, took) =
            run(stage.as_caller(&["--askpass", &stage.askpass("wrong.sh"), "--via", &via, "--", "true"]), b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{launcher}: {stderr}");
        let words = if launcher == "sudo" { "incorrect password attempts" } else { "Authentication failed" };
        assert!(stderr.contains(words), "{launcher}'s own words: {stderr}");
        assert!(stderr.contains(&format!("answered {tries} question")), "{launcher}: {stderr}");
        // No answer the launcher did not ask for (faillock counts).
        assert_eq!(stage.asked().len(), tries, "{launcher}: {:?}", stage.asked());
        assert!(took < Duration::from_secs(30), "{launcher}: bounded: {took:?}");
    }
}

#[test]
fn a_declined_prompt_is_a_refusal() {
    for (launcher, _, _) in local_launchers() {
        let Some(stage) = stage(&format!("{launcher}-decline")) else { return };
        let via = format!("{launcher}:{}", target_user());
        let (out, took) =
            run(stage.as_caller(&["--askpass", &stage.askpass("decline.sh"), "--via", &via, "--", "true"]), b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{launcher}: {stderr}");
        assert!(stderr.contains("declined"), "{launcher}: {stderr}");
        assert_eq!(stage.asked().len(), 1, "{launcher}");
        assert!(took < Duration::from_secs(10), "{launcher}: {took:?}");
    }
}

#[test]
fn no_askpass_and_no_terminal_is_a_bounded_refusal_naming_askpass() {
    for (launcher, _, _) in local_launchers() {
        let Some(stage) = stage(&format!("{launcher}-none")) else { return };
        let via = format!("{launcher}:{}", target_user());
        let (out, took) = run(stage.as_caller(&["--via", &via, "--", "true"]), b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{launcher}: {stderr}");
        assert!(stderr.contains("--askpass"), "{launcher}: {stderr}");
        assert!(took < Duration::from_secs(10), "{launcher}: {took:?}");
    }
}

#[test]
fn su_reads_its_password_from_the_channel_and_is_refused_with_a_handler() {
    let Some(stage) = stage("su") else { return };
    let Ok(user) = std::env::var("UMBILICAL_TEST_PROMPT_USER") else { return };
    let via = format!("su:{user}");
    let (out, took) =
        run(stage.as_caller(&["--askpass", &stage.askpass("right.sh"), "--via", &via, "--", "true"]), b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("standard input"), "says why: {stderr}");
    assert!(stage.asked().is_empty(), "nothing asked");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn pkexec_asks_through_its_textual_agent_on_the_private_terminal() {
    let Some(stage) = stage("pkexec") else { return };
    if std::env::var("UMBILICAL_TEST_PKEXEC").is_err() {
        skip("prompts through pkexec", "pkexec does not work here (scripts/launchers.sh)");
        return;
    }
    let via = format!("pkexec:{}", target_user());
    let (out, took) = run(
        stage.as_caller(&["--askpass", &stage.askpass("right.sh"), "--via", &via, "--", "sh", "-c", "cat; exit 6"]),
        b"via pkexec\n",
    );
    let stderr = text(&out.stderr);
    let asked = stage.asked();
    assert_eq!(asked.len(), 1, "{asked:?}; {stderr}");
    assert!(asked[0].contains("AUTHENTICATING FOR org.freedesktop.policykit.exec"), "polkit's question: {asked:?}");
    assert!(asked[0].contains(&format!("Authenticating as: {}", stage.caller)), "{asked:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    if stderr.contains("No session for cookie") {
        // polkitd accepts an agent's answer only for a subject in a login
        // session (systemd-logind), which this machine has none of.
        assert_eq!(out.status.code(), Some(125), "{stderr}");
        skip(
            "pkexec running the program after the relayed answer",
            "polkitd refuses the answer without a logind session here (\"No session for cookie\"); the question reached the handler",
        );
        return;
    }
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert_eq!(text(&out.stdout), "via pkexec\n", "{stderr}");
}

#[test]
fn ssh_asks_the_host_key_then_the_password() {
    let Some(stage) = stage("ssh-right") else { return };
    let Some(cmd) = stage.ssh(&["-v", "--askpass", &stage.askpass("right.sh"), "--", "sh", "-c", "cat; exit 5"]) else {
        return;
    };
    let (out, _) = run(cmd, b"through ssh\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert_eq!(text(&out.stdout), "through ssh\n", "{stderr}");
    let asked = stage.asked();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].contains("yes/no"), "the host key first: {asked:?}");
    assert!(asked[1].contains("password"), "{asked:?}");
    assert!(stderr.contains("ssh asks a question") && stderr.contains("ssh asks for a password"), "-v: {stderr}");
    assert!(!stderr.contains(&stage.password), "-v never shows the answer");
}

#[test]
fn ssh_refusals_are_bounded() {
    let Some(stage) = stage("ssh-refused") else { return };
    // An unknown host key that the askpass does not accept: refused.
    let Some(cmd) = stage.ssh(&["--askpass", &stage.askpass("password-only.sh"), "--", "true"]) else { return };
    let (out, took) = run(cmd, b"");
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(stage.asked().len(), 1, "the host key only: {:?}", stage.asked());
    // A wrong password, with the host key accepted by the ssh options.
    let Some(mut cmd) = stage.ssh(&["--askpass", &stage.askpass("wrong.sh"), "--no-shim", "--", "true"]) else {
        return;
    };
    let path = cmd.get_envs().find(|(k, _)| *k == "PATH").and_then(|(_, v)| v).unwrap().to_owned();
    let accepting = stage.dir.join("accepting");
    std::fs::create_dir_all(&accepting).unwrap();
    std::fs::write(
        accepting.join("ssh"),
        format!("#!/bin/sh\nexec {}/ssh -o StrictHostKeyChecking=no \"$@\"\n", stage.dir.display()),
    )
    .unwrap();
    std::fs::set_permissions(accepting.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut accepting_path = accepting.into_os_string();
    accepting_path.push(":");
    accepting_path.push(path);
    cmd.env("PATH", accepting_path);
    let before = stage.asked().len();
    let (out, took) = run(cmd, b"");
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Permission denied"), "ssh's own words: {stderr}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // ssh asks NumberOfPasswordPrompts (3) times.
    assert_eq!(stage.asked().len() - before, 3, "{:?}", stage.asked());
}

/// Every `/proc/*/cmdline` and `environ` that holds `needle`.
fn processes_holding(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for what in ["cmdline", "environ"] {
            if let Ok(bytes) = std::fs::read(entry.path().join(what))
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                found.push(format!("{}/{what}", entry.path().display()));
            }
        }
    }
    found
}

#[test]
fn the_password_is_in_no_argv_or_environment_and_racers_get_nothing() {
    let Some(stage) = stage("sudo-scan") else { return };
    let via = format!("sudo:{}", target_user());
    // Racers: the caller's own user and the target user, each connecting
    // to every relay socket it can reach and asking; any answer is a
    // leak. They run until told to stop (bounded by their own deadline).
    let racer = stage.dir.join("racer.py");
    std::fs::write(
        &racer,
        r#"import glob, os, socket, sys, time
end = time.time() + 20
got = []
tries = 0
while time.time() < end and not os.path.exists(sys.argv[1]):
    for path in glob.glob("/tmp/umbilical-*/control.sock"):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(3)
            s.connect(path)
            s.sendall(b"UASK\x00\x00\x05hello")
            reply = s.recv(100)
            tries += 1
            if reply.startswith(b"1"):
                got.append(reply)
        except OSError:
            pass
    time.sleep(0.01)
print("tries", tries, "got", len(got))
"#,
    )
    .unwrap();
    let stop = stage.dir.join("stop-racers");
    let racers: Vec<_> = [stage.caller.clone(), target_user()]
        .into_iter()
        .map(|user| {
            Command::new("runuser")
                .args(["-u", &user, "--", "python3"])
                .arg(&racer)
                .arg(&stop)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut cmd = stage.as_caller(&[
        "--askpass",
        &stage.askpass("slow.sh"),
        "--via",
        &via,
        "--",
        "sh",
        "-c",
        "sleep 1; echo ran",
    ]);
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = common::collect(child.stdout.take().unwrap());
    let stderr = common::collect(child.stderr.take().unwrap());
    let start = Instant::now();
    let mut scans = 0;
    let pid = cli_pid(child.id());
    let status = loop {
        let holding = processes_holding(&stage.password);
        assert!(holding.is_empty(), "the password is in {holding:?}");
        scans += 1;
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < RUN_LIMIT, "the run hung");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::fs::write(&stop, "").unwrap();
    let stderr = text(&stderr.recv_timeout(Duration::from_secs(10)).unwrap());
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(text(&stdout.recv_timeout(Duration::from_secs(10)).unwrap()), "ran\n");
    assert!(scans > 10, "the scan ran through the prompt: {scans}");
    for racer in racers {
        let said = wait_output(racer);
        assert!(said.contains(" got 0"), "a racer got an answer: {said}");
    }
    assert_eq!(stage.asked().len(), 1, "only the launch's own helper was answered");
    // Nothing of this run's relay is left in /tmp (its directory is named
    // after the CLI's pid; other tests run beside this one).
    let ours = format!("umbilical-{pid}-");
    let left: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&ours))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "askpass relays left: {left:?}");
}

/// A racer's stdout once it ended (bounded).
fn wait_output(mut child: std::process::Child) -> String {
    let out = common::collect(child.stdout.take().unwrap());
    common::wait_within(&mut child, Duration::from_secs(40), "a racer");
    text(&out.recv_timeout(Duration::from_secs(10)).unwrap())
}

/// The CLI's pid under `setsid runuser -u USER -- CLI`: the first
/// descendant of `top` running the staged binary (bounded wait).
fn cli_pid(top: u32) -> u32 {
    let start = Instant::now();
    loop {
        let out = Command::new("pgrep").args(["-P", &top.to_string()]).output().unwrap();
        let kids: Vec<u32> = text(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
        for kid in kids {
            let exe = std::fs::read_link(format!("/proc/{kid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "umbilical") {
                return kid;
            }
            // runuser forks: one level more.
            let grand = Command::new("pgrep").args(["-P", &kid.to_string()]).output().unwrap();
            for g in text(&grand.stdout).lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
                let exe = std::fs::read_link(format!("/proc/{g}/exe")).unwrap_or_default();
                if exe.file_name().is_some_and(|n| n == "umbilical") {
                    return g;
                }
            }
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the CLI under runuser did not show up");
        std::thread::sleep(Duration::from_millis(5));
    }
}
