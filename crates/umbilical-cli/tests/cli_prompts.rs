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

/// The tests that make or look for terminals of the caller's user, one
/// at a time.
fn terminals_alone() -> std::sync::MutexGuard<'static, ()> {
    static TERMINALS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TERMINALS.lock().unwrap_or_else(|p| p.into_inner())
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

/// The local launchers that ask the caller for a password: the launcher,
/// its `--via`, who the program runs as, how many times it asks before it
/// gives up on wrong answers, and what its question says.
fn local_launchers() -> [(&'static str, String, String, usize, String); 3] {
    let caller = std::env::var("UMBILICAL_TEST_PROMPT_CALLER").unwrap_or_default();
    let target = target_user();
    // su's target has a password of its own (the same one, here).
    let su_target = std::env::var("UMBILICAL_TEST_PROMPT_USER").unwrap_or_default();
    [
        // sudo's askpass helper (-A): passwd_tries is 3.
        ("sudo", format!("sudo:{target}"), target.clone(), 3, format!("password for {caller}")),
        // doas's own terminal (a private one): one attempt.
        ("doas", format!("doas:{target}"), target, 1, format!("doas ({caller}@")),
        // su's stdin is its private terminal; the program's stdio reaches
        // the shim over its link. One attempt.
        ("su", format!("su:{su_target}"), su_target, 1, "Password:".to_string()),
    ]
}

#[test]
fn the_launcher_asks_the_callers_askpass_and_the_channel_holds() {
    for (launcher, via, runs_as, _, question) in local_launchers() {
        let Some(stage) = stage(&format!("{launcher}-right")) else { return };
        // su with a handler runs only through the shim (its refusal
        // without: `su_without_the_shim_and_a_handler_is_refused_saying_why`).
        let modes: &[&str] = if launcher == "su" { &["--shim"] } else { &["--shim", "--no-shim"] };
        for &shim in modes {
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
            assert_eq!(text(&out.stdout), format!("{runs_as}\none\ntwo\nafter-eof\n"), "{launcher} {shim}: {stderr}");
        }
        let asked = stage.asked();
        assert_eq!(asked.len(), modes.len(), "{launcher}: one question per run: {asked:?}");
        assert!(asked.iter().all(|q| q.contains(&question)), "{launcher}: {asked:?}");
    }
}

#[test]
fn a_wrong_password_is_refused_after_the_launchers_own_retries() {
    for (launcher, via, _, tries, _) in local_launchers() {
        let Some(stage) = stage(&format!("{launcher}-wrong")) else { return };
        let (out, took) =
            run(stage.as_caller(&["--askpass", &stage.askpass("wrong.sh"), "--via", &via, "--", "true"]), b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{launcher}: {stderr}");
        let words = match launcher {
            "sudo" => "incorrect password attempts",
            "doas" => "Authentication failed",
            _ => "Authentication failure",
        };
        assert!(stderr.contains(words), "{launcher}'s own words: {stderr}");
        assert!(stderr.contains(&format!("answered {tries} question")), "{launcher}: {stderr}");
        // No answer the launcher did not ask for (faillock counts).
        assert_eq!(stage.asked().len(), tries, "{launcher}: {:?}", stage.asked());
        assert!(took < Duration::from_secs(30), "{launcher}: bounded: {took:?}");
    }
}

#[test]
fn a_declined_prompt_is_a_refusal() {
    for (launcher, via, _, _, _) in local_launchers() {
        let Some(stage) = stage(&format!("{launcher}-decline")) else { return };
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
    for (launcher, via, _, _, _) in local_launchers() {
        let Some(stage) = stage(&format!("{launcher}-none")) else { return };
        let (out, took) = run(stage.as_caller(&["--via", &via, "--", "true"]), b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{launcher}: {stderr}");
        assert!(stderr.contains("--askpass"), "{launcher}: {stderr}");
        assert!(took < Duration::from_secs(10), "{launcher}: {took:?}");
    }
}

/// Drives a command on a fresh terminal (python's `pty.fork`: a session
/// of its own with the terminal as its controlling one), answering the
/// first question that contains `cue` with the password typed there.
const ON_A_TERMINAL: &str = r#"import os, pty, sys, time, select
password = open(sys.argv[1]).read().strip()
cue = sys.argv[2].encode()
argv = sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b""
end = time.time() + 60
answered = False
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if not answered and cue in out:
        time.sleep(0.2)
        os.write(fd, password.encode() + b"\n")
        answered = True
if time.time() >= end:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
print("status", os.waitstatus_to_exitcode(status))
print("answered", answered)
print("echoed", password.encode() in out)
print("ran", b"ran-as-" in out)
"#;

#[test]
fn without_askpass_the_question_is_asked_on_umbilicals_terminal_with_echo_off() {
    let _alone = terminals_alone();
    let Some(stage) = stage("terminal") else { return };
    let script = stage.dir.join("on_a_terminal.py");
    std::fs::write(&script, ON_A_TERMINAL).unwrap();
    let file = std::env::var("UMBILICAL_TEST_PROMPT_PASSWORD_FILE").unwrap();
    for (launcher, via, _, _, _) in local_launchers() {
        let cue = if launcher == "sudo" { "password for" } else { "assword:" };
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(&file).arg(cue);
        cmd.args(["runuser", "-u", &stage.caller, "--", &stage.cli(), "run", "--via", &via, "--", "sh", "-c"]);
        cmd.arg("echo ran-as-$(id -un)");
        let (out, _) = run(cmd, b"");
        let said = text(&out.stdout);
        assert!(said.contains("status 0") && said.contains("answered True"), "{launcher}: {said}");
        assert!(said.contains("ran True"), "{launcher}: the program ran: {said}");
        assert!(said.contains("echoed False"), "{launcher}: the password was echoed: {said}");
    }
}

#[test]
fn su_without_the_shim_and_a_handler_is_refused_saying_why() {
    let Some(stage) = stage("su-no-shim") else { return };
    let Ok(user) = std::env::var("UMBILICAL_TEST_PROMPT_USER") else { return };
    let via = format!("su:{user}");
    let (out, took) =
        run(stage.as_caller(&["--no-shim", "--askpass", &stage.askpass("right.sh"), "--via", &via, "--", "true"]), b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("standard input") && stderr.contains("shim"), "says why: {stderr}");
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
    // Its racers open every terminal of the caller's user: none but ours
    // may exist meanwhile (sudo's use_pty makes one for the terminal test).
    let _alone = terminals_alone();
    let Some(stage) = stage("scan") else { return };
    // Racers: the caller's own user and the target user, each connecting
    // to every relay socket it can reach and asking, and opening every
    // terminal of its user; any answer or open terminal is a leak. They run until told to stop (bounded by their own deadline).
    let racer = stage.dir.join("racer.py");
    std::fs::write(
        &racer,
        r#"import glob, os, socket, sys, time
end = time.time() + 40
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
    # A private terminal of the caller's user (doas, su): opening it
    # would let a racer read the typed password; it is exclusive.
    for tty in glob.glob("/dev/pts/[0-9]*"):
        try:
            if os.stat(tty).st_uid != os.getuid():
                continue
            fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            os.close(fd)
            got.append(tty.encode())
        except OSError:
            pass
    time.sleep(0.01)
print("tries", tries, "got", len(got), sorted(set(got))[:5])
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
    // Each local launcher in turn, the racers running throughout.
    let launchers = local_launchers();
    for (launcher, via, _, _, _) in &launchers {
        let mut cmd = stage.as_caller(&[
            "--askpass",
            &stage.askpass("slow.sh"),
            "--via",
            via,
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
            assert!(holding.is_empty(), "{launcher}: the password is in {holding:?}");
            scans += 1;
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < RUN_LIMIT, "{launcher}: the run hung");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = text(&stderr.recv_timeout(Duration::from_secs(10)).unwrap());
        assert_eq!(status.code(), Some(0), "{launcher}: {stderr}");
        assert_eq!(text(&stdout.recv_timeout(Duration::from_secs(10)).unwrap()), "ran\n", "{launcher}");
        assert!(scans > 10, "{launcher}: the scan ran through the prompt: {scans}");
        // Nothing of this run's relay is left in /tmp (its directory is
        // named after the CLI's pid; other tests run beside this one).
        let ours = format!("umbilical-{pid}-");
        let left: Vec<_> = std::fs::read_dir("/tmp")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&ours))
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{launcher}: relays left: {left:?}");
    }
    std::fs::write(&stop, "").unwrap();
    for racer in racers {
        let said = wait_output(racer);
        assert!(said.contains(" got 0 "), "a racer got an answer or opened a private terminal: {said}");
    }
    assert_eq!(stage.asked().len(), launchers.len(), "only the launches' own questions were answered");
}

/// A racer's stdout once it ended (bounded).
fn wait_output(mut child: std::process::Child) -> String {
    let out = common::collect(child.stdout.take().unwrap());
    common::wait_within(&mut child, Duration::from_secs(60), "a racer");
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

/// Issue #26 with #24: ssh with a password, then sudo on the far host with
/// one, each question reaching the askpass with its hop (the far sudo's
/// through its askpass helper, the far shim program, over the shim's own
/// forwarded rendezvous).
#[test]
fn ssh_then_sudo_each_hop_asks_and_is_answered() {
    let Some(stage) = stage("ssh-sudo") else { return };
    // `stage.ssh` puts `--via ssh:...` first: the chain is ssh then sudo.
    let Some(cmd) =
        stage.ssh(&["-v", "--askpass", &stage.askpass("right.sh"), "--via", "sudo", "--", "sh", "-c", "id -un; cat"])
    else {
        return;
    };
    let (out, took) = run(cmd, b"both hops\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "root\nboth hops\n", "{stderr}");
    let asked = stage.asked();
    assert_eq!(asked.len(), 3, "host key, ssh password, sudo password: {asked:?}");
    assert!(asked[1].contains("password:") && !asked[1].contains("sudo"), "{asked:?}");
    assert!(asked[2].contains("[sudo] password for"), "the far sudo's question: {asked:?}");
    assert!(stderr.contains("sudo (hop 2) asks for a password"), "-v names the hop: {stderr}");
    assert!(took < Duration::from_secs(60));
    // A wrong answer to the far sudo: refused, attributed to that hop.
    let wrong = stage.dir.join("wrong-sudo.sh");
    let d = stage.dir.display();
    std::fs::write(
        &wrong,
        format!("#!/bin/sh\ncase \"$1\" in *yes/no*) echo yes;; *sudo*) echo wrong;; *) cat {d}/secret;; esac\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(cmd) = stage.ssh(&["--askpass", wrong.to_str().unwrap(), "--via", "sudo", "--", "true"]) else { return };
    let (out, _) = run(cmd, b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("of sudo (hop 2)"), "attributed to the far sudo: {stderr}");
}
