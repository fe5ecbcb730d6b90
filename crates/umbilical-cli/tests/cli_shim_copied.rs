//! The shim where the target user cannot execute it (issue #27): the CLI
//! installed in a directory only its owner may enter (`cargo install` puts
//! it in a home directory; here a 0700 directory of root's), run through
//! the local launchers to the unprivileged test user, and through ssh to a
//! far host that lacks it (the loopback sshd, as that user), forwarded and
//! in band. The shim is copied (into the rendezvous directory; over ssh,
//! the static shim the CLI carries, into a fresh directory of the far
//! user's) and used — exact signal status, a
//! `--timeout --kill-after` that ends a program ignoring TERM — and no
//! copy is left behind. A process of the target user racing to replace
//! the copy gets nothing.

#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{RUN_LIMIT, UMBILICAL, output_within};

/// The two tests look at every rendezvous directory: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The CLI copied into a 0700 directory; `None` (with a SKIP) where that
/// would not hide it from the test user.
fn hidden_cli() -> Option<(String, std::path::PathBuf)> {
    let Ok(user) = std::env::var("UMBILICAL_TEST_USER") else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIP: the shim copied for the target user: UMBILICAL_TEST_USER unset (scripts/launchers.sh)\n",
        );
        return None;
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hidden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let cli = dir.join("umbilical");
    std::fs::copy(UMBILICAL, &cli).unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The test user really cannot run it from there.
    let tried = Command::new("runuser").args(["-u", &user, "--", cli.to_str().unwrap(), "--version"]).output();
    if tried.as_ref().is_ok_and(|o| o.status.success()) {
        panic!("the test user could run {} from a 0700 directory of another user", cli.display());
    }
    Some((user, dir))
}

/// Copies of the shim left in any rendezvous directory.
fn copies_left() -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("umbilical-"))
        .map(|e| e.path().join("shim"))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect()
}

/// What the test user has in /tmp named like ours: a far copy's directory
/// or a forwarded socket (the far host is this one).
fn far_leftovers(user: &str) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let uid = Command::new("id").args(["-u", user]).output().unwrap();
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    let Ok(entries) = std::fs::read_dir("/tmp") else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("umbilical-"))
        .filter(|e| e.path().symlink_metadata().is_ok_and(|m| m.uid() == uid))
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_cli_the_target_user_cannot_execute_is_copied_as_the_shim() {
    let _serial = serial();
    let Some((user, dir)) = hidden_cli() else { return };
    let cli = dir.join("umbilical");
    let report = dir.join("report.json");
    // The local launchers, and ssh to the loopback sshd (the far host is
    // this one, where the test user cannot run the hidden CLI either).
    let mut routes: Vec<(String, Option<String>, bool)> =
        ["sudo", "doas", "runuser", "su", "setpriv"].iter().map(|l| (format!("{l}:{user}"), None, false)).collect();
    // vias() prints the SKIP when there is no loopback sshd.
    let ssh = common::vias("the shim copied to the far host")
        .into_iter()
        .find(|v| v.args.iter().any(|a| a.starts_with("ssh:")));
    if let Some(ssh) = ssh {
        routes.push((ssh.args[1].clone(), ssh.path.clone(), false));
        // In band too: the bridge's session looks, and the copy is the
        // bridge's, which removes it.
        routes.push((ssh.args[1].clone(), ssh.path.clone(), true));
    }
    for (via, path, in_band) in routes {
        let what = if in_band { format!("{via} (in band)") } else { via.clone() };
        let local = !via.starts_with("ssh:");
        let command = |args: &[&str]| {
            let mut cmd = Command::new(&cli);
            // `run --shim-link in-band ...`: before the program's `--`.
            cmd.arg(args[0]);
            if in_band {
                cmd.args(["--shim-link", "in-band"]);
            }
            cmd.args(&args[1..]);
            if let Some(path) = &path {
                cmd.env("PATH", path);
            }
            cmd
        };
        let mut run =
            command(&["run", "--via", &via, "--report", report.to_str().unwrap(), "--", "sh", "-c", "kill -USR1 $$"]);
        let out = output_within(&mut run, b"", RUN_LIMIT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(138), "{what}: the signal exactly, through the shim: {stderr}");
        let json = std::fs::read_to_string(&report).unwrap();
        assert!(json.contains("\"shim\": {\"used\": true"), "{what}: {json}");
        // The report says where the shim came from (issue 27).
        let origin = if local {
            "copied into the rendezvous directory\"".to_string()
        } else {
            "\"origin\": \"the shim this program carries (".to_string()
        };
        assert!(json.contains("\"origin\": \"") && json.contains(&origin), "{what}: the report's origin: {json}");
        if !local {
            assert!(json.contains("copied to the far host at /"), "{what}: {json}");
        }
        if local {
            let copied = json.contains("a copy of the shim in the rendezvous directory");
            assert!(copied, "{what}: the report says where: {json}");
        } else {
            let out = output_within(&mut command(&["run", "-v", "--via", &via, "--", "true"]), b"", RUN_LIMIT);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && said.contains("copied to the far host"), "{what}: -v says so: {said}");
            // The static shim the CLI carries, not the CLI itself (issue
            // 27): it runs whatever the far host's C library.
            assert!(said.contains("from=the shim this program carries"), "{what}: -v says which: {said}");
        }

        let started = Instant::now();
        let args = [
            "run",
            "--via",
            &via,
            "--timeout",
            "1",
            "--kill-after",
            "1",
            "--",
            "sh",
            "-c",
            "trap '' TERM; exec sleep 30",
        ];
        let out = output_within(&mut command(&args), b"", RUN_LIMIT);
        assert_eq!(out.status.code(), Some(124), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: {:?}", started.elapsed());
        assert_eq!(copies_left(), Vec::<std::path::PathBuf>::new(), "{what}: no copy left");
        assert_eq!(far_leftovers(&user), Vec::<std::path::PathBuf>::new(), "{what}: nothing left on the far host");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A process of the target user keeps trying to replace or overwrite
/// `shim` in every rendezvous directory while twenty runs copy it: it
/// never succeeds, and every run's status is the program's.
#[test]
fn the_target_user_cannot_replace_the_copy() {
    let _serial = serial();
    let Some((user, dir)) = hidden_cli() else { return };
    let cli = dir.join("umbilical-race");
    std::fs::copy(UMBILICAL, &cli).unwrap();
    let racer_script = "n=0; end=$(( $(date +%s) + 8 )); echo ready; \
        while [ $(date +%s) -lt $end ]; do for d in /tmp/umbilical-*; do \
        if cp /bin/true \"$d/shim\" 2>/dev/null || ln -sf /bin/true \"$d/shim\" 2>/dev/null \
        || sh -c \"echo x >> '$d/shim'\" 2>/dev/null; then n=$((n+1)); fi; done; done; echo replaced=$n";
    let mut racer = Command::new("runuser")
        .args(["-u", &user, "--", "sh", "-c", racer_script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut racer_out = racer.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(&mut racer_out, &mut ready).unwrap();
    let report = dir.join("race.json");
    for i in 0..20 {
        let via = format!("runuser:{user}");
        let out = output_within(
            Command::new(&cli).args([
                "run",
                "--via",
                &via,
                "--report",
                report.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "exit 7",
            ]),
            b"",
            RUN_LIMIT,
        );
        assert_eq!(out.status.code(), Some(7), "run {i}: {}", String::from_utf8_lossy(&out.stderr));
        let json = std::fs::read_to_string(&report).unwrap();
        assert!(
            json.contains("a copy of the shim in the rendezvous directory"),
            "run {i}: the race is on a copy: {json}"
        );
    }
    let mut verdict = String::new();
    let reading = std::thread::spawn(move || {
        std::io::Read::read_to_string(&mut racer_out, &mut verdict).unwrap();
        verdict
    });
    let limit = Instant::now() + Duration::from_secs(30);
    while racer.try_wait().unwrap().is_none() && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    if racer.try_wait().unwrap().is_none() {
        let _ = racer.kill();
        let _ = racer.wait();
        panic!("the racer did not end");
    }
    let verdict = reading.join().unwrap();
    assert_eq!(verdict.trim(), "replaced=0", "the target user replaced or wrote the copy");
    assert!(copies_left().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
