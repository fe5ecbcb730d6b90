//! `umbilical run --via docker:C` and `podman:C` the way users drive it,
//! against the real engines that `scripts/containers.sh` starts, with the
//! static shim `scripts/test.sh` builds (`--shim-source`): `--timeout`, a
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

/// By default the CLI copies itself, which a glibc-less image cannot run
/// when it is dynamically linked: it says so and does without the shim
/// (the engine's status), instead of failing in the container.
#[test]
fn a_dynamic_cli_does_without_the_shim_and_says_why() {
    for (engine, c, _) in engines("the CLI's own shim choice for a container") {
        let out = umbilical(&["run", "-v", "--via", &format!("{engine}:{c}"), "--", "sh", "-c", "exit 3"], b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{engine}: {err}");
        assert!(err.contains("shim: not used") && err.contains("dynamically linked"), "{engine}: {err}");
        // A timeout then warns that it cannot reach inside.
        let out = umbilical(&["run", "--timeout", "30", "--via", &format!("{engine}:{c}"), "--", "true"], b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{engine}: {err}");
        assert!(err.contains("warning: without the shim, --timeout stops the exec client"), "{engine}: {err}");
    }
}
