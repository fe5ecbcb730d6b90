//! `umbilical run` driven the way programs and people drive it: a
//! line-by-line exchange, Python's `subprocess.run`, a supervisor's
//! signals, timeouts with escalation, output held open by a background
//! child, and each row of `docs/cli.md`'s table of inputs and outcomes.
//! Every wait is bounded; a hang fails with a message.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{UMBILICAL, Via, gone, libc_usr1, send, umbilical, vias, wait_within};

const LIMIT: Duration = Duration::from_secs(60);

/// Starts `umbilical ARGS` with piped stdio.
fn start(args: &[&str]) -> Child {
    Command::new(UMBILICAL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start umbilical")
}

/// Reads one line from a reader on another thread, failing after `limit`.
fn lines(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn kinds() -> [&'static str; 3] {
    ["socket", "shared-socket", "pipes"]
}

/// Launchers that start the command in a session of its own and pass on
/// only some signals (su -c, ssh): there the shim delivers them.
fn needs_shim_for_signals(via: &Via) -> bool {
    via.args.iter().any(|a| a.starts_with("su:") || a.starts_with("ssh:"))
}

/// 200 one-line round trips through `umbilical run -- cat`, each reply
/// read before the next line is written (issue #8: with the socket
/// channel the reply used to wait for the next line).
#[test]
fn line_by_line_round_trips() {
    for via in &vias("round trips") {
        for kind in kinds() {
            let mut child = via
                .command(&["--channel", kind], &["--", "cat"], false)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let replies = lines(child.stdout.take().unwrap());
            for i in 0..200 {
                writeln!(stdin, "line {i}").unwrap();
                stdin.flush().unwrap();
                let got = replies
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|_| panic!("{kind} {via:?}: no reply to line {i} within 10 s (stall)"));
                assert_eq!(got, format!("line {i}"));
            }
            drop(stdin);
            assert!(wait_within(&mut child, LIMIT, "cat after EOF").success());
        }
    }
}

/// Python's `subprocess.run(input=1 MiB, capture_output=True)` and a
/// line-by-line exchange from Python, 50 times each, on every channel
/// kind, directly and through the shim (issue #8: 80 of 80 deadlocked).
#[test]
fn driven_from_python() {
    let Some(python) = python3("driven from Python") else { return };
    let script = r#"
import subprocess, sys
exe, kind, shim = sys.argv[1], sys.argv[2], sys.argv[3] == "shim"
base = [exe, "run", "--channel", kind] + (["--shim"] if shim else []) + ["--", "cat"]
data = bytes(range(256)) * 4096
for i in range(50):
    r = subprocess.run(base, input=data, capture_output=True, timeout=20)
    assert r.returncode == 0 and r.stdout == data, (i, r.returncode, len(r.stdout), r.stderr)
for i in range(50):
    p = subprocess.Popen(base, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for j in range(5):
        p.stdin.write(b"req %d %d\n" % (i, j)); p.stdin.flush()
        assert p.stdout.readline() == b"req %d %d\n" % (i, j)
    p.stdin.close()
    assert p.wait(timeout=20) == 0
print("ok")
"#;
    for kind in kinds() {
        for shim in ["direct", "shim"] {
            let mut child = Command::new(&python)
                .args(["-c", script, UMBILICAL, kind, shim])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let status = wait_within(&mut child, Duration::from_secs(120), "the Python driver");
            let mut out = String::new();
            let mut err = String::new();
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            assert!(status.success() && out.trim() == "ok", "{kind} {shim}: {status:?}\n{out}\n{err}");
        }
    }
}

/// python3 on `PATH`, or a SKIP for `what` saying it is missing.
fn python3(what: &str) -> Option<std::path::PathBuf> {
    let found = which("python3").ok();
    if found.is_none() {
        let _ = writeln!(std::io::stderr(), "SKIP: {what}: python3 not found");
    }
    found
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()).ok_or(())
}

/// A program that reports which signal it got, then dies of it.
const REPORTER: &str = "for s in INT TERM HUP QUIT USR1 USR2; do trap \"echo got $s; trap - $s; kill -$s \\$\\$\" $s; done; \
                        echo ready; while :; do sleep 0.05; done";

/// Each signal a supervisor sends to `run` reaches the program, which
/// reports it and dies of it; `run` exits 128+N. Directly and through each
/// launcher (which gets it too, as the program's group leader, and exits
/// 128+N its own way); through su with the shim.
#[test]
fn signals_are_passed_on() {
    for via in vias("signals") {
        let shim = needs_shim_for_signals(&via);
        for (name, sig) in
            [("INT", 2), ("TERM", 15), ("HUP", 1), ("QUIT", 3), ("USR1", libc_usr1()), ("USR2", libc_usr2())]
        {
            let marker = format!("reporter-{}-{name}", std::process::id());
            let mut child = via
                .command(&[], &["--", "sh", "-c", REPORTER, &marker], shim)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let replies = lines(child.stdout.take().unwrap());
            assert_eq!(replies.recv_timeout(LIMIT).expect("ready"), "ready");
            send(child.id(), sig);
            let got = replies.recv_timeout(LIMIT).unwrap_or_else(|_| panic!("{name} {via:?}: not passed on"));
            assert_eq!(got, format!("got {name}"), "{via:?}");
            let status = wait_within(&mut child, LIMIT, "run after the signal");
            assert_eq!(status.code(), Some(128 + sig), "{name} {via:?}: run exits as the program did");
            assert!(gone(&marker), "{name} {via:?}: something is left running");
        }
    }
}

/// A program that does not catch the signal dies of it; `run` exits
/// 128+N and nothing is left running (its children neither).
#[test]
fn a_fatal_signal_ends_program_and_children() {
    let mut child = start(&["run", "--", "sh", "-c", "sleep 30.4242 & echo ready; wait"]);
    let replies = lines(child.stdout.take().unwrap());
    assert_eq!(replies.recv_timeout(LIMIT).expect("ready"), "ready");
    send(child.id(), 15);
    let status = wait_within(&mut child, LIMIT, "run after SIGTERM");
    assert_eq!(status.code(), Some(128 + 15));
    assert!(gone("sleep 30.4242"), "the program's child is still running");
}

fn libc_usr2() -> i32 {
    if cfg!(any(target_os = "macos", target_os = "freebsd")) { 31 } else { 12 }
}

/// --timeout sends --signal first; a program that ignores it is killed
/// after --kill-after; exit 124; nothing left running. Directly and
/// through each launcher.
#[test]
fn timeout_signal_then_kill_after() {
    for via in vias("timeouts") {
        // Through a launcher the escalation happens on the far side, by the
        // shim: a launcher that dies of the first signal would otherwise
        // leave a program that ignores it behind (docs/cli.md).
        let shim = !via.is_direct();
        let report = std::env::temp_dir().join(format!("umbilical-driven-{}-timeout.json", std::process::id()));
        let script = "trap 'echo term' TERM; echo ready; while :; do sleep 0.05; done; : 30.5151";
        let mut child = via
            .command(
                &["--timeout", "0.5", "--kill-after", "0.5", "--report", report.to_str().unwrap()],
                &["--", "sh", "-c", script],
                shim,
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_within(&mut child, LIMIT, "run with --timeout");
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(status.code(), Some(124), "{via:?}");
        assert_eq!(out, "ready\nterm\n", "{via:?}: TERM came first");
        let json = std::fs::read_to_string(&report).unwrap();
        assert!(json.contains("\"signaled\": 9"), "{via:?}: {json}");
        assert!(json.contains("then KILL after the grace period"), "{json}");
        assert!(gone("30.5151"), "{via:?}: the program is still running");
        let _ = std::fs::remove_file(&report);
    }
    // --signal KILL kills at once.
    let out = umbilical(&["run", "--timeout", "0.3", "--signal", "KILL", "--", "sleep", "30.5252"], b"");
    assert_eq!(out.status.code(), Some(124));
    assert!(gone("sleep 30.5252"));
}

/// --timeout signals the program's whole process group (its children too),
/// as timeout(1) does; --foreground keeps the program in our group and
/// signals it alone.
#[test]
fn timeout_reaches_the_programs_children() {
    let out = umbilical(&["run", "--timeout", "0.5", "--", "sh", "-c", "sleep 30.6161; :"], b"");
    assert_eq!(out.status.code(), Some(124));
    assert!(gone("sleep 30.6161"), "the program's child survived the timeout");
}

/// The program ended, but a background child holds its output: --timeout
/// says exactly that (not "killed the program"), and the child goes.
#[test]
fn timeout_reports_what_it_did() {
    let out = umbilical(&["run", "--timeout", "1", "--", "sh", "-c", "sleep 30.7171 2>/dev/null & echo hi"], b"");
    assert_eq!(out.status.code(), Some(124));
    assert_eq!(out.stdout, b"hi\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the program had ended (exit code 0)"), "{err}");
    assert!(gone("sleep 30.7171"));
}

/// --drain bounds the wait for output held open after the program's exit
/// and says so in the report; without it, run waits for the holder.
#[test]
fn drain_bounds_the_output_wait() {
    let report = std::env::temp_dir().join(format!("umbilical-driven-{}-drain.json", std::process::id()));
    let start = Instant::now();
    let out = umbilical(
        &[
            "run",
            "--drain",
            "0.5",
            "--report",
            report.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "sleep 30.8181 2>/dev/null & echo hi",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"hi\n");
    assert!(start.elapsed() < Duration::from_secs(20), "--drain did not bound the wait");
    let json = std::fs::read_to_string(&report).unwrap();
    assert!(json.contains("\"output_truncated\": true"), "{json}");
    let _ = Command::new("pkill").args(["-f", "sleep 30.8181"]).status();

    let start = Instant::now();
    let out = umbilical(&["run", "--", "sh", "-c", "(sleep 1; echo late) & echo early"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"early\nlate\n", "without --drain the held output is waited for");
    assert!(start.elapsed() >= Duration::from_millis(900));
    let _ = std::fs::remove_file(&report);
}

/// docs/cli.md, "Inputs and outcomes": each row.
#[test]
fn bad_input_and_broken_output() {
    // A timeout too large to represent is no limit, not a panic.
    for t in ["1e19", "1e300", "inf"] {
        let out = umbilical(&["run", "--timeout", t, "--", "true"], b"");
        assert_eq!(out.status.code(), Some(0), "--timeout {t}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for t in ["0", "-1", "nan", "soon"] {
        assert_eq!(umbilical(&["run", "--timeout", t, "--", "true"], b"").status.code(), Some(125), "--timeout {t}");
    }
    assert_eq!(umbilical(&["run", "--signal", "NOPE", "--", "true"], b"").status.code(), Some(125));
    // Empty or option-like launcher names are refused before anything runs.
    let marker = std::env::temp_dir().join(format!("umbilical-driven-{}-ran", std::process::id()));
    for via in
        ["sudo:", "doas:", "su:", "runuser:", "custom:,", "custom:", "ssh:user@", "ssh:-oProxyCommand=x", "docker:"]
    {
        let out = umbilical(&["run", "--via", via, "--", "touch", marker.to_str().unwrap()], b"");
        assert_eq!(out.status.code(), Some(125), "--via {via}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!marker.exists(), "--via {via}: the program ran");
    }
    // An unwritable report fails first: the program never runs.
    let out = umbilical(&["run", "--report", "/nonexistent-dir/r.json", "--", "touch", marker.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(!marker.exists(), "the program ran although the report could not be written");
    // Output that cannot be written is a failure, as for cat(1).
    let full = Command::new(UMBILICAL)
        .args(["run", "--", "echo", "hello"])
        .stdout(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(1), "stdout on /dev/full");
    assert!(String::from_utf8_lossy(&full.stderr).contains("No space left"));
    let closed = Command::new("sh")
        .arg("-c")
        .arg(format!("{UMBILICAL} run -- echo hello >&-"))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(closed.status.code(), Some(1), "closed stdout: {}", String::from_utf8_lossy(&closed.stderr));
    assert!(String::from_utf8_lossy(&closed.stderr).contains("standard output is closed"));
    // ... but a program with nothing to say succeeds with a closed stdout,
    // and a shell's `> /dev/null` is an open stdout.
    let quiet = Command::new("sh").arg("-c").arg(format!("{UMBILICAL} run -- true >&-")).status().unwrap();
    assert_eq!(quiet.code(), Some(0));
    let null = Command::new("sh").arg("-c").arg(format!("{UMBILICAL} run -- echo hi > /dev/null")).status().unwrap();
    assert_eq!(null.code(), Some(0));
    // A program that exits without reading its input: no spurious error.
    let out = umbilical(&["run", "--", "head", "-c", "3"], &vec![b'x'; 1 << 20]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"xxx");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A person at a terminal pressing Ctrl-C (issue 23, item 1 at the
/// terminal): Python's `pty.fork()` runs `umbilical run` as the
/// foreground of a fresh pseudo-terminal, waits for the program, and
/// writes `^C` to the terminal, which sends SIGINT to the foreground
/// group. The program must die of it and umbilical exit 130, directly and
/// through each launcher with the shim; nothing of the program is left.
/// Before, through ssh the client sat in that group and died of the
/// Ctrl-C, taking the link along: 125, "status lost". Now ssh runs in a
/// group of its own and holds the terminal only until the shim connected
/// (so that it could still ask for a password).
#[test]
fn ctrl_c_at_a_terminal_reaches_the_program() {
    let Some(python) = python3("Ctrl-C at a terminal") else { return };
    let script = r#"
import os, pty, select, sys, time
marker, argv = b"sleep\0" + sys.argv[1].encode() + b"\0", sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
def runs():
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and open("/proc/%s/cmdline" % p, "rb").read() == marker:
                return True
        except OSError:
            pass
    return False
out, until = b"", time.time() + 30
def drain(wait):
    global out
    r, _, _ = select.select([fd], [], [], wait)
    if r:
        try:
            out += os.read(fd, 4096)
        except OSError:
            pass
while not runs():
    if time.time() > until:
        os.kill(pid, 9); os.waitpid(pid, 0)
        print("never started: %r" % out); sys.exit(3)
    drain(0.05)
time.sleep(0.3)
os.write(fd, b"\x03")
until = time.time() + 30
while True:
    wpid, status = os.waitpid(pid, os.WNOHANG)
    if wpid:
        break
    if time.time() > until:
        os.kill(pid, 9); os.waitpid(pid, 0)
        print("still running 30 s after ^C: %r" % out); sys.exit(4)
    drain(0.1)
print("exit=%s %r" % (os.waitstatus_to_exitcode(status), out))
"#;
    for (n, via) in vias("Ctrl-C at a terminal").into_iter().enumerate() {
        // `sleep 300.0<pid><n>`: a command line of its own that sleep
        // still reads as about 300 seconds.
        let duration = format!("300.0{}{n}", std::process::id());
        let mut cmd = Command::new(&python);
        cmd.args(["-c", script, &duration, UMBILICAL, "run"])
            .args(&via.args)
            .args(["--shim", "--", "sleep", &duration]);
        if let Some(path) = &via.path {
            cmd.env("PATH", path);
        }
        let out = common::output_within(&mut cmd, b"", LIMIT);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.starts_with("exit=130 "), "{via:?}: {said} {}", String::from_utf8_lossy(&out.stderr));
        assert!(gone(&format!("sleep {duration}")), "{via:?}: the program outlived the Ctrl-C");
    }
}
