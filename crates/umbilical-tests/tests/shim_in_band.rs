//! The in-band shim link through ssh, against the CI's two sshd on
//! loopback: one as configured by default, one with
//! `AllowStreamLocalForwarding no` (hardened hosts). The forwarded link is
//! refused by the second; the in-band link works through both, blocking
//! and async. And the bridge as a hostile local user meets it: its socket
//! refuses another user, and a stranger of the same user who connects
//! first learns nothing and makes the launch fail.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use umbilical::{Detection, ErrorKind, ExitStatus, Launcher, ShimLink};

/// ssh to the sshd on `port_var` as the test user.
/// The tests of this file one at a time: the racer connects to any new
/// `/tmp/umbilical-*.sock`, and another test's bridge is one (seen in CI:
/// the racer took `in_band_async`'s bridge, which then read its garbage,
/// and its own launch went through).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn ssh_on(port_var: &str, what: &str) -> Option<Launcher> {
    let Some(Launcher::Ssh { destination, options, .. }) = ssh_launcher() else {
        skip(what, "no sshd on loopback (scripts/launchers.sh start)");
        return None;
    };
    let Some(port) = std::env::var(port_var).ok().and_then(|p| p.parse().ok()) else {
        skip(what, &format!("{port_var} unset (scripts/launchers.sh start)"));
        return None;
    };
    Some(Launcher::Ssh { destination, port: Some(port), options })
}

fn in_band(launcher: &Launcher, args: &[&str]) -> umbilical::Command {
    let mut cmd = shimmed(launcher, args);
    cmd.shim_link(ShimLink::InBand).kill_on_drop(true);
    cmd
}

/// The hardened sshd refuses the forwarded link: the launch fails as a
/// launcher refusal (ssh's `ExitOnForwardFailure`), nothing started.
#[test]
fn forwarding_forbidden_refuses_the_forwarded_link() {
    let _serial = serial();
    let Some(ssh) = ssh_on("UMBILICAL_TEST_SSH_HARDENED_PORT", "hardened sshd, forwarded link") else { return };
    let mut cmd = shimmed(&ssh, &["echo"]);
    cmd.shim_link(ShimLink::Forwarded).stderr(umbilical::Stderr::Null);
    let err = bounded(LIMIT, "forwarded link refused", move || cmd.spawn().map(|_| ()).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::LauncherRefused, "{err}");
    assert!(err.to_string().contains("ShimLink::InBand"), "the error says what goes without forwarding: {err}");
}

/// In band through both servers: a 200 KB round trip read to EOF before
/// `wait()`, exit 3 exactly, and a kill that reaches the program.
#[test]
fn in_band_through_both_servers() {
    let _serial = serial();
    for (var, name) in
        [("UMBILICAL_TEST_SSH_PORT", "default sshd"), ("UMBILICAL_TEST_SSH_HARDENED_PORT", "hardened sshd")]
    {
        let Some(ssh) = ssh_on(var, name) else { continue };
        let mut child = in_band(&ssh, &["echo"]).spawn().unwrap();
        assert_eq!(child.detection(), Detection::Shim, "{name}");
        let channel = child.take_channel().unwrap();
        let (out, exit) = bounded(LIMIT, "in-band round trip", move || {
            let out = round_trip(channel, pattern(200_000, 5), vec![10_000]);
            (out, child.wait().unwrap())
        });
        assert!(out == pattern(200_000, 5), "{name}: byte-exact");
        assert_eq!(exit.status, ExitStatus::Exited(0), "{name}");
        let mut child = in_band(&ssh, &["exit", "3"]).spawn().unwrap();
        assert_eq!(bounded(LIMIT, "in-band status", move || child.wait().unwrap()).status, ExitStatus::Exited(3));
        let mut child = in_band(&ssh, &["sleep", "30000"]).spawn().unwrap();
        child.kill().unwrap();
        let exit = bounded(LIMIT, "in-band kill", move || child.wait().unwrap());
        assert_eq!(exit.status, ExitStatus::Signaled(9), "{name}: the kill reached the program");
        let mut missing = umbilical::Command::new("/nonexistent/umbilical-program");
        missing.launcher(ssh.clone()).shim(true).shim_path(HELPER).shim_link(ShimLink::InBand);
        let err = missing.spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{name}: {err}");
    }
}

/// The same through the async API, on the hardened server.
#[test]
fn in_band_async() {
    let _serial = serial();
    let Some(ssh) = ssh_on("UMBILICAL_TEST_SSH_HARDENED_PORT", "async in-band link") else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (out, exit, killed) = bounded(LIMIT, "async in-band", move || {
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut child = in_band(&ssh, &["echo"]).spawn_async().await.unwrap();
            let mut channel = child.take_channel().unwrap();
            channel.write_all(b"in band, async").await.unwrap();
            channel.shutdown().await.unwrap();
            let mut out = Vec::new();
            channel.read_to_end(&mut out).await.unwrap();
            let exit = child.wait().await.unwrap();
            let mut child = in_band(&ssh, &["sleep", "30000"]).spawn_async().await.unwrap();
            child.start_kill().unwrap();
            (out, exit, child.wait().await.unwrap())
        })
    });
    assert_eq!(out, b"in band, async");
    assert_eq!(exit.status, ExitStatus::Exited(0));
    assert_eq!(killed.status, ExitStatus::Signaled(9));
}

/// Starts the helper as a bridge at `socket` directly, and waits for its
/// ready byte.
fn bridge(socket: &std::path::Path) -> std::process::Child {
    let mut bridge = std::process::Command::new(HELPER)
        .args(["shim", umbilical::shim::BRIDGE_FLAG])
        .arg(socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = bridge.stdout.take().unwrap();
    let ready = join_within(
        std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            stdout.read_exact(&mut byte).map(|()| (byte, stdout))
        }),
        LIMIT,
        "the bridge's ready byte",
    );
    let (byte, stdout) = ready.unwrap();
    assert_eq!(&byte, b"R");
    bridge.stdout = Some(stdout);
    bridge
}

/// A hostile local user against the bridge's socket: it is its owner's
/// only (mode 0600 from the moment it exists), so another user's connect
/// is refused; the bridge relays only the first connection, and removes
/// the socket once connected; when its session ends first (the caller
/// gave up), it removes the socket and exits.
#[test]
fn the_bridge_socket_is_its_owners_only() {
    let _serial = serial();
    let dir = scratch_dir("bridge");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("s.sock");
    let mut b = bridge(&socket);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is its owner's only");
    match std::env::var("UMBILICAL_TEST_USER") {
        Ok(user) => {
            let out = std::process::Command::new("timeout")
                .args(["20", "runuser", "-u", &user, "--", "python3", "-c"])
                .arg(format!(
                    "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect({:?})\nexcept PermissionError:\n sys.exit(13)\nsys.exit(0)",
                    socket.to_str().unwrap()
                ))
                .status()
                .unwrap();
            assert_eq!(out.code(), Some(13), "another user's connect is refused");
        }
        Err(_) => skip("another user against the bridge's socket", "UMBILICAL_TEST_USER unset"),
    }
    // The first connection is relayed both ways; the socket is gone.
    let mut conn = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    conn.write_all(b"to the parent").unwrap();
    let mut stdout = b.stdout.take().unwrap();
    let got = join_within(
        std::thread::spawn(move || {
            let mut got = [0u8; 13];
            stdout.read_exact(&mut got).map(|()| got)
        }),
        LIMIT,
        "the relayed bytes",
    );
    assert_eq!(&got.unwrap(), b"to the parent");
    b.stdin.as_mut().unwrap().write_all(b"to the shim").unwrap();
    let mut got = [0u8; 11];
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"to the shim");
    assert!(!socket.exists(), "the socket is removed once the shim connected");
    // The session's end is the link dropping for the shim: EOF.
    drop(b.stdin.take());
    assert_eq!(conn.read(&mut got).unwrap(), 0, "the shim reads the link's end");
    let status = join_within(std::thread::spawn(move || b.wait().unwrap()), LIMIT, "the bridge's exit");
    assert!(status.success());
    // A caller that gives up before any shim connects: the bridge removes
    // its socket and exits.
    let socket = dir.join("t.sock");
    let mut b = bridge(&socket);
    drop(b.stdin.take());
    let status = join_within(std::thread::spawn(move || b.wait().unwrap()), LIMIT, "the abandoned bridge's exit");
    assert!(status.success());
    assert!(!socket.exists(), "the abandoned bridge removed its socket");
}

/// A same-user process racing for the bridge's socket (the target user on
/// the far host, polling /tmp): it connects before the shim, and gets
/// nothing from the parent (no request, no token half) while the launch
/// fails with an error instead of starting anything for it.
#[test]
fn a_same_user_racer_gets_nothing() {
    let _serial = serial();
    let Some(ssh) = ssh_on("UMBILICAL_TEST_SSH_PORT", "a racer for the bridge's socket") else { return };
    let user = std::env::var("UMBILICAL_TEST_USER").unwrap();
    let racer = r#"
import os, socket, sys, time
seen = set(os.listdir('/tmp'))
print('ready', flush=True)
deadline = time.time() + 30
while time.time() < deadline:
    for n in os.listdir('/tmp'):
        if n.startswith('umbilical-') and n.endswith('.sock') and n not in seen:
            seen.add(n)
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect('/tmp/' + n)
            except OSError:
                continue
            s.sendall(b'not the shim')
            s.settimeout(25)
            got = b''
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
            print('got', len(got), flush=True)
            sys.exit(0)
    time.sleep(0.0005)
print('no socket seen', flush=True)
sys.exit(3)
"#;
    let mut racer = std::process::Command::new("timeout")
        .args(["40", "runuser", "-u", &user, "--", "python3", "-c", racer])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = racer.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready).unwrap();
    let mut cmd = in_band(&ssh, &["echo"]);
    cmd.connect_timeout(Duration::from_secs(20));
    let result = bounded(LIMIT, "the launch with a racer", move || cmd.spawn().map(|_| ()));
    let err = result.expect_err("the launch fails when a stranger took the bridge");
    let said = join_within(
        std::thread::spawn(move || {
            let mut said = String::new();
            out.read_to_string(&mut said).unwrap();
            (said, racer.wait().unwrap())
        }),
        LIMIT,
        "the racer's report",
    );
    assert_eq!(said.0.trim(), "got 0", "the racer received nothing from the parent; the launch said: {err}");
    assert!(matches!(err.kind(), ErrorKind::Protocol | ErrorKind::ShimFailed | ErrorKind::LauncherRefused), "{err}");
}
