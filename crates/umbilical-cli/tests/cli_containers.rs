//! `umbilical run --via docker:C` and `podman:C` the way users drive it,
//! against the real engines that `scripts/containers.sh` starts, with the
//! static shim `scripts/test.sh` builds (`--shim-source`) or the one the
//! CLI carries (issue 27, nothing installed in the image): `--timeout`, a
//! supervisor's SIGTERM and the caller's SIGKILL leave nothing running in
//! the container (`docker top`, `podman top`), which the engines alone do
//! not give; Python's `subprocess.run` with captured output sees the
//! program's stdout, stderr and exact status; without a static shim the
//! CLI says why it does without.
#![cfg(target_os = "linux")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{RUN_LIMIT, UMBILICAL, engines, send, umbilical, wait_within};

/// The container's processes as its engine lists them (`docker top`).
fn top(engine: &str, container: &str) -> String {
    let out = Command::new("timeout").args(["30", engine, "top", container]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (bounded) until nothing with `needle` runs in the container.
fn gone_inside(engine: &str, container: &str, needle: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if !top(engine, container).contains(needle) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (bounded) until `needle` runs in the container.
fn started_inside(engine: &str, container: &str, needle: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if top(engine, container).contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn run_in(engine: &str, container: &str, shim: &str, program: &[&str]) -> Command {
    let mut cmd = Command::new(UMBILICAL);
    cmd.args(["run", "--via", &format!("{engine}:{container}"), "--shim-source", shim, "--"]).args(program);
    cmd
}

/// `--timeout 1` ends the program inside the container, not only the exec
/// client: exit 124, and `sleep` is gone from `docker top`.
#[test]
fn timeout_ends_the_program_inside() {
    for (engine, c, shim) in engines("--timeout in a container") {
        let needle = "sleep 1081";
        let mut cmd = Command::new(UMBILICAL);
        cmd.args(["run", "--timeout", "1", "--via", &format!("{engine}:{c}"), "--shim-source", &shim, "--"])
            .args(needle.split(' '));
        let out = common::output_within(&mut cmd, b"", RUN_LIMIT);
        assert_eq!(out.status.code(), Some(124), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(gone_inside(engine, &c, needle), "{engine}: the program ended inside the container");
    }
}

/// A supervisor's SIGTERM to `umbilical run` reaches the program inside the
/// container: exit 143 (128+15, the program's own death), nothing left.
/// And the caller killed with SIGKILL: the link drops, and the shim ends
/// the program.
#[test]
fn sigterm_and_sigkill_to_the_caller_end_the_program_inside() {
    for (engine, c, shim) in engines("SIGTERM/SIGKILL to umbilical run, container") {
        for (sig, needle) in [(15, "1082"), (9, "1083")] {
            let mut child = run_in(engine, &c, &shim, &["sleep", needle])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            assert!(started_inside(engine, &c, needle), "{engine}: the program started");
            send(child.id(), sig);
            let status = wait_within(&mut child, RUN_LIMIT, "umbilical run after a signal");
            if sig == 15 {
                assert_eq!(status.code(), Some(143), "{engine}: the program's own death by SIGTERM");
            }
            assert!(gone_inside(engine, &c, needle), "{engine}: nothing left running after signal {sig}");
        }
    }
}

/// Driven from Python as build tools do: `subprocess.run` with captured
/// output and input, through the container and the shim: stdout, stderr
/// and the exact exit code.
#[test]
fn python_subprocess_run_through_a_container() {
    for (engine, c, shim) in engines("subprocess.run through a container") {
        let script = format!(
            "import subprocess, sys\n\
             r = subprocess.run([{UMBILICAL:?}, 'run', '--via', '{engine}:{c}', '--shim-source', {shim:?}, '--',\n\
                 'sh', '-c', 'cat; echo to-stderr >&2; exit 3'], input=b'line one\\nline two\\n', capture_output=True, timeout=60)\n\
             sys.stdout.write(repr((r.returncode, r.stdout, r.stderr)))\n"
        );
        let out = common::output_within(Command::new("python3").args(["-c", &script]), b"", RUN_LIMIT);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            said,
            "(3, b'line one\\nline two\\n', b'to-stderr\\n')",
            "{engine}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A shim named with `--shim-source` that is dynamically linked (here the
/// CLI itself), which a glibc-less image cannot run: the CLI says so and
/// does without the shim (the engine's status), instead of failing in the
/// container.
#[test]
fn a_dynamic_shim_source_is_done_without_and_says_why() {
    for (engine, c, _) in engines("a dynamic --shim-source for a container") {
        let via = format!("{engine}:{c}");
        let out = umbilical(&["run", "-v", "--via", &via, "--shim-source", UMBILICAL, "--", "sh", "-c", "exit 3"], b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{engine}: {err}");
        assert!(err.contains("shim: not used") && err.contains("dynamically linked"), "{engine}: {err}");
        // A timeout then warns that it cannot reach inside.
        let args = ["run", "--timeout", "30", "--via", &via, "--shim-source", UMBILICAL, "--", "true"];
        let out = umbilical(&args, b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{engine}: {err}");
        assert!(err.contains("warning: without the shim, --timeout stops the exec client"), "{engine}: {err}");
    }
}

/// A container `scripts/containers.sh` starts for the shim's placement.
struct Target {
    engine: &'static str,
    container: String,
    /// Where a copy of ours may be found.
    places: &'static [&'static str],
    /// What runs a tool in it (the image with no shell has `/busybox`).
    tools: &'static [&'static str],
}

/// The placement containers this machine has; SKIP for those missing.
fn placement_targets() -> Vec<Target> {
    const ROOTFS: &[&str] = &["/tmp", "/"];
    let all: [(&str, &str, &[&str], &[&str]); 6] = [
        ("docker", "UMBILICAL_TEST_DOCKER_CONTAINER", ROOTFS, &[]),
        ("podman", "UMBILICAL_TEST_PODMAN_CONTAINER", ROOTFS, &[]),
        ("docker", "UMBILICAL_TEST_DOCKER_NOTMP_CONTAINER", &["/"], &[]),
        ("podman", "UMBILICAL_TEST_PODMAN_NOTMP_CONTAINER", &["/"], &[]),
        ("docker", "UMBILICAL_TEST_DOCKER_READONLY_EXEC_CONTAINER", &["/tmp", "/dev/shm"], &[]),
        ("docker", "UMBILICAL_TEST_DOCKER_BARE_CONTAINER", ROOTFS, &["/busybox"]),
    ];
    let mut found = Vec::new();
    for (engine, var, places, tools) in all {
        match std::env::var(var) {
            Ok(container) if engine != "docker" || std::env::var("DOCKER_HOST").is_ok() => {
                found.push(Target { engine, container, places, tools })
            }
            _ => {
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("SKIP: the carried shim: {var} unset (scripts/containers.sh start)\n").as_bytes(),
                );
            }
        }
    }
    found
}

/// What of ours (`umbilical-*`) is in the target's places.
fn copies_inside(t: &Target) -> Vec<String> {
    let out = Command::new("timeout")
        .args(["30", t.engine, "exec", &t.container])
        .args(t.tools)
        .args(["ls", "-a"])
        .args(t.places)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "listing {:?} in {}: {}",
        t.places,
        t.container,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("umbilical-")).map(str::to_string).collect()
}

/// Ours in this host's temporary directory: the carried shim staged for
/// the engine's `cp`.
fn staged_here() -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("umbilical-shim-"))
        .collect()
}

/// Issue 27: nothing to install in the container. The CLI as built (a
/// dynamically linked binary) copies in the static shim it carries, with
/// no `--shim-source`: in the busybox image, in an image with no `/tmp`
/// (the copy goes to `/`), in a read-only container whose tmpfs `/tmp`
/// allows execution (the engine cannot write there: `sh` in it does), and
/// in a distroless-like image with no shell (only `/busybox`). Each:
/// the report says the shim was used and where it came from, a signal
/// death is exact (138 for USR1), `--timeout --kill-after` ends a program
/// that ignores TERM (124, nothing left running), and no copy is left in
/// the container or staged on this host.
#[test]
fn the_carried_shim_needs_nothing_installed() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("carried-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let before = staged_here();
    for (n, t) in placement_targets().into_iter().enumerate() {
        let via = format!("{}:{}", t.engine, t.container);
        let program = |script: &str| -> Vec<String> {
            t.tools.iter().map(|s| s.to_string()).chain(["sh", "-c", script].map(String::from)).collect()
        };
        let report = dir.join(format!("report-{n}.json"));
        let mut args: Vec<String> =
            ["run", "--via", &via, "--report", report.to_str().unwrap(), "--"].map(String::from).to_vec();
        args.extend(program("kill -USR1 $$"));
        let out = umbilical(&args.iter().map(String::as_str).collect::<Vec<_>>(), b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(138), "{via}: the signal exactly, through the shim: {err}");
        let json = std::fs::read_to_string(&report).unwrap();
        assert!(
            json.contains("\"shim\": {\"used\": true") && json.contains("the shim this program carries"),
            "{via}: the report says where the shim came from: {json}"
        );
        assert!(
            json.contains("\"origin\": \"the shim this program carries (")
                && json.contains("copied into the container at /"),
            "{via}: the report's origin: {json}"
        );
        let marker = format!("umb-carried-{}-{n}", std::process::id());
        let sleep = if t.tools.is_empty() { "sleep" } else { "/busybox sleep" };
        let script = format!("trap '' TERM; while :; do {sleep} 1; done; : {marker}");
        let started = Instant::now();
        let mut args: Vec<String> =
            ["run", "--timeout", "2", "--kill-after", "1", "--via", &via, "--"].map(String::from).to_vec();
        args.extend(program(&script));
        let out = umbilical(&args.iter().map(String::as_str).collect::<Vec<_>>(), b"");
        assert_eq!(out.status.code(), Some(124), "{via}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(started.elapsed() < Duration::from_secs(30), "{via}: bounded by --timeout and --kill-after");
        assert!(gone_inside(t.engine, &t.container, &marker), "{via}: the program that ignored TERM is gone");
        assert_eq!(copies_inside(&t), Vec::<String>::new(), "{via}: no copy left inside");
    }
    assert_eq!(staged_here(), before, "nothing staged is left on this host");
    let _ = std::fs::remove_dir_all(&dir);
}
