//! Shared pieces of the integration tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use umbilical::{Channel, Command};

/// The project's helper program.
pub const HELPER: &str = env!("CARGO_BIN_EXE_umbilical-test-helper");

/// Prints a visible SKIP line, straight to the handle (libtest captures
/// `print!`).
pub fn skip(what: &str, why: &str) {
    let _ = std::io::stderr().write_all(format!("SKIP: {what}: {why}\n").as_bytes());
}

/// A command running the helper through `launcher` with the shim, the
/// helper doubling as the shim.
pub fn shimmed(launcher: &umbilical::Launcher, args: &[&str]) -> Command {
    let mut cmd = helper(args);
    cmd.launcher(launcher.clone()).shim(true).shim_path(HELPER);
    cmd
}

/// The launchers that switch to `user` and can run here: sudo, doas,
/// runuser, su, setpriv, and ssh and pkexec where `scripts/launchers.sh` set them
/// up; each missing one prints SKIP for `what`.
#[cfg(unix)]
pub fn user_launchers(user: &str, what: &str) -> Vec<umbilical::Launcher> {
    use umbilical::Launcher;
    let mut list = vec![
        Launcher::Sudo { user: Some(user.into()), non_interactive: true },
        Launcher::Doas { user: Some(user.into()) },
        Launcher::Runuser { user: user.into() },
        Launcher::Su { user: user.into() },
        // No PAM: the user's own group (useradd's user-private group).
        Launcher::Setpriv { user: user.into(), group: None },
    ];
    match ssh_launcher() {
        Some(ssh) => list.push(ssh),
        None => skip(&format!("{what} via ssh"), "no sshd on loopback (UMBILICAL_TEST_SSH_PORT/KEY unset)"),
    }
    match pkexec_skip_reason() {
        None => list.push(Launcher::Pkexec { user: Some(user.into()), keep_cwd: true }),
        Some(why) => skip(&format!("{what} via pkexec"), &why),
    }
    list
}

/// A command running the helper with these arguments.
pub fn helper(args: &[&str]) -> Command {
    let mut cmd = Command::new(HELPER);
    cmd.args(args);
    cmd
}

/// Upper bound for anything a test waits on; a hang fails instead.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on a thread and fails the test if it takes longer than `limit`.
pub fn bounded<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: failed (its panic is printed above)"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not finish within {limit:?} (hang)"),
    }
}

/// Writes `payload` in chunks of the given sizes (cycled), half-closes, and
/// reads everything back concurrently. Returns what was read.
pub fn round_trip(channel: Channel, payload: Vec<u8>, chunks: Vec<usize>) -> Vec<u8> {
    let (mut reader, mut writer) = channel.split();
    let feeder = std::thread::spawn(move || {
        let mut rest = &payload[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunks[i % chunks.len()].clamp(1, rest.len());
            writer.write_all(&rest[..n]).expect("write to channel");
            rest = &rest[n..];
            i += 1;
        }
        writer.shutdown().expect("half-close");
    });
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("read from channel");
    feeder.join().expect("feeder thread");
    out
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// How many descriptors (Unix) or handles (Windows) this process has open.
pub fn open_fd_count() -> usize {
    #[cfg(windows)]
    return umbilical_tests::sys::handle_count() as usize;
    #[cfg(unix)]
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Parses the helper's `fds` output.
pub fn parse_fds(out: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(out).split_whitespace().map(|s| s.parse().expect("fd number")).collect()
}

/// Whether `pid` is a zombie child of this process.
#[cfg(unix)]
pub fn is_zombie(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let mut fields = after.split_whitespace();
            let state = fields.next().unwrap();
            let ppid: u32 = fields.next().unwrap().parse().unwrap();
            state == "Z" && ppid == std::process::id()
        }
    }
}

/// Tests that count this process's descriptors take this lock, and so does
/// every other test in the same binary, so no test opens descriptors while
/// another counts.
pub static FD_COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`FD_COUNTING`], surviving a poisoned lock from a failed test.
pub fn fd_lock() -> std::sync::MutexGuard<'static, ()> {
    FD_COUNTING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Half-closes at once, reads the program's whole output, and checks that
/// it exited 0.
pub fn output_of(mut child: umbilical::Child) -> String {
    bounded(LIMIT, "the program's output and end", move || {
        let mut out = String::new();
        let mut ch = child.take_channel().expect("a fresh child has its channel");
        ch.shutdown_write().expect("half-close");
        ch.read_to_string(&mut out).expect("read the output");
        assert!(child.wait().expect("wait").success());
        out
    })
}

/// A custom launcher that detaches at once: `setsid -f` (Unix). `keeps_fds`
/// declares whether inherited descriptors (a lifeline) reach the program.
#[cfg(unix)]
pub fn setsid_detaching(keeps_fds: bool) -> umbilical::Launcher {
    umbilical::Launcher::Custom {
        prefix: vec!["setsid".into(), "-f".into()],
        capabilities: umbilical::Capabilities {
            keeps_stdio: true,
            keeps_extra_handles: keeps_fds,
            detaches: true,
            ..Default::default()
        },
    }
}

/// ssh to the test sshd on loopback as the test user, if the set-up
/// provided one (`scripts/launchers.sh start`).
#[cfg(unix)]
pub fn ssh_launcher() -> Option<umbilical::Launcher> {
    let user = std::env::var("UMBILICAL_TEST_USER").ok()?;
    let port = std::env::var("UMBILICAL_TEST_SSH_PORT").ok()?.parse().ok()?;
    let key = std::env::var("UMBILICAL_TEST_SSH_KEY").ok()?;
    let options = [
        "-i",
        &key,
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
    ];
    Some(umbilical::Launcher::Ssh {
        destination: format!("{user}@127.0.0.1"),
        port: Some(port),
        options: options.map(String::from).to_vec(),
    })
}

/// Why pkexec cannot be tested here, or `None` when `scripts/launchers.sh
/// start` verified a real pkexec run (polkitd answering on the system bus).
#[cfg(unix)]
pub fn pkexec_skip_reason() -> Option<String> {
    if std::env::var_os("UMBILICAL_TEST_PKEXEC").is_some() {
        return None;
    }
    Some(
        std::env::var("UMBILICAL_TEST_PKEXEC_SKIP").unwrap_or_else(|_| {
            "UMBILICAL_TEST_PKEXEC is unset (run `scripts/launchers.sh start` as root)".to_string()
        }),
    )
}

/// Why no container engine can be tested here: asks each client on PATH
/// whether its engine answers, so the SKIP says what was found rather than
/// assuming. `None` would mean an engine answers, which these tests do not
/// yet use; the caller then fails loudly instead of skipping.
#[cfg(unix)]
pub fn container_engine_skip_reason() -> Option<String> {
    let probes: [(&str, &[&str]); 3] =
        [("docker", &["info"]), ("podman", &["info"]), ("kubectl", &["get", "--raw", "/version"])];
    let mut found = Vec::new();
    for (client, args) in probes {
        let mut cmd = std::process::Command::new("timeout");
        cmd.arg("10").arg(client).args(args);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        match cmd.status() {
            Ok(s) if s.success() => return None,
            Ok(s) if s.code() == Some(127) => found.push(format!("{client}: not installed")),
            Ok(_) => found.push(format!("{client}: client present, no engine answers")),
            Err(e) => found.push(format!("{client}: {e}")),
        }
    }
    Some(format!("{}; their plans are unit-tested", found.join(", ")))
}

/// Every channel kind that differs on this OS (Windows has one: pipes).
pub fn kinds() -> Vec<umbilical::ChannelKind> {
    use umbilical::ChannelKind;
    if cfg!(windows) {
        vec![ChannelKind::Pipes]
    } else {
        vec![ChannelKind::Socket, ChannelKind::SharedSocket, ChannelKind::Pipes]
    }
}

/// A fresh empty directory under the build's scratch space, unique to
/// `name` and this process.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// `path` written relative to this process's working directory (which the
/// tests never change: it is shared by every test thread).
pub fn relative_to_cwd(path: &std::path::Path) -> std::path::PathBuf {
    let cwd = std::env::current_dir().expect("current_dir");
    let (mut a, mut b) = (cwd.components().peekable(), path.components().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        if x != y {
            break;
        }
        a.next();
        b.next();
    }
    let mut rel: std::path::PathBuf = a.map(|_| std::path::Component::ParentDir).collect();
    rel.extend(b);
    assert!(rel.is_relative(), "{} has no relative form from {}", path.display(), cwd.display());
    rel
}

/// Copies the helper program to `dir/name` (keeping its permissions) and
/// returns the copy's path.
pub fn helper_copy(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let dest = dir.join(name);
    std::fs::copy(HELPER, &dest).expect("copy the helper");
    dest
}

/// The name the helper copy must have on this OS for a bare-name lookup.
pub fn exe_name(stem: &str) -> String {
    format!("{stem}{}", std::env::consts::EXE_SUFFIX)
}

/// Writes `payload` in a thread; returns its handle, which yields how the
/// write ended.
pub fn write_in_thread(
    mut writer: umbilical::WriteHalf,
    payload: Vec<u8>,
) -> std::thread::JoinHandle<(umbilical::WriteHalf, std::io::Result<()>)> {
    std::thread::spawn(move || {
        let r = writer.write_all(&payload);
        (writer, r)
    })
}

/// Waits for a thread's result for at most `limit`; a hang fails the test.
pub fn join_within<T: Send + 'static>(handle: std::thread::JoinHandle<T>, limit: Duration, what: &str) -> T {
    let start = std::time::Instant::now();
    while !handle.is_finished() {
        assert!(start.elapsed() < limit, "{what}: did not finish within {limit:?} (hang)");
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().expect("thread panicked")
}

/// Writes `input` to the helper's `echo` on a `kind` channel, half-closes,
/// reads everything back and checks that it exited 0. (Small inputs: the
/// write completes before the read starts.)
pub fn echo_once(kind: umbilical::ChannelKind, input: &[u8]) -> Vec<u8> {
    let mut child = helper(&["echo"]).channel_kind(kind).spawn().expect("spawn echo");
    let mut ch = child.take_channel().expect("a fresh child has its channel");
    ch.write_all(input).expect("write");
    ch.shutdown_write().expect("half-close");
    let mut out = Vec::new();
    ch.read_to_end(&mut out).expect("read");
    assert!(child.wait().expect("wait").success());
    out
}

/// Starts the helper as the caller of a session through `spec` (a
/// launcher spec) with `programs` sleepers (`session-parent`): the caller,
/// and the pids it printed before `ready` (its programs', then its
/// session's shim's), read within [`LIMIT`].
pub fn session_caller(spec: &str, grace: Duration, programs: u32) -> (std::process::Child, Vec<u32>) {
    use std::io::BufRead;
    let mut caller = std::process::Command::new(HELPER)
        .args(["session-parent", spec, &grace.as_millis().to_string(), &programs.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the session's caller");
    let out = caller.stdout.take().unwrap();
    let lines = bounded(LIMIT, "the session caller's pids", move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap();
            if line == "ready" {
                break;
            }
            lines.push(line);
        }
        lines
    });
    let pids = lines
        .iter()
        .map(|l| l.trim_start_matches("session ").parse().unwrap_or_else(|_| panic!("a pid, not {l:?}")))
        .collect();
    (caller, pids)
}

/// 200 programs of `session` (the helper's `echo-exit`) at once on one
/// `current_thread` runtime, each an echo of its own with half-close and
/// its own exit code, checked byte-exact.
pub fn two_hundred_async_echoes(session: &umbilical::Session, name: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            let mut cmd = session.command(HELPER);
            cmd.args(["echo-exit", &(i % 50).to_string()]);
            tasks.push(tokio::spawn(async move {
                let payload = pattern(4 * 1024 + i as usize, i);
                let mut child = cmd.spawn_async().await.unwrap();
                let (mut r, mut w) = child.take_channel().unwrap().split();
                let writer = {
                    let payload = payload.clone();
                    async move {
                        w.write_all(&payload).await.unwrap();
                        w.shutdown().await.unwrap();
                    }
                };
                let mut out = Vec::new();
                let (_, read) = tokio::join!(writer, r.read_to_end(&mut out));
                read.unwrap();
                assert!(out == payload, "program {i} byte-exact");
                let exit = child.wait().await.unwrap();
                assert_eq!(exit.status, umbilical::ExitStatus::Exited((i % 50) as i32));
            }));
        }
        for t in tasks {
            t.await.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    });
}

/// 200 programs of `session` (the helper's `echo-exit`) from 8 threads at
/// once, 25 each, each an echo with half-close and its own exit code,
/// checked byte-exact; then the session is closed.
pub fn two_hundred_echoes_from_eight_threads(session: umbilical::Session, name: &str) {
    let session = std::sync::Arc::new(session);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let session = session.clone();
            let name = name.to_string();
            std::thread::spawn(move || {
                for i in 0..25u64 {
                    let payload = pattern(8 * 1024 + (i as usize) * 7, t * 100 + i);
                    let code = (t * 25 + i) % 100;
                    let mut child = session.command(HELPER).args(["echo-exit", &code.to_string()]).spawn().unwrap();
                    let out = round_trip(child.take_channel().unwrap(), payload.clone(), vec![1000]);
                    assert!(out == payload, "{name}: thread {t} program {i} byte-exact");
                    let exit = child.wait().unwrap();
                    assert_eq!(exit.status, umbilical::ExitStatus::Exited(code as i32), "{name}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a thread's programs");
    }
    std::sync::Arc::try_unwrap(session).expect("the threads are done").close().unwrap();
}
