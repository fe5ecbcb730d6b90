//! Container exec for real: docker (a private dockerd) and podman (runc),
//! each with a busybox container started by `scripts/containers.sh`.
//! Without the shim, which cannot reach a container yet: what the engine
//! gives is what the caller gets, and these tests pin it down (the
//! channel, half-close, the exit codes as the engines report them, a
//! missing program against a missing container).
#![cfg(target_os = "linux")]

mod common;

use common::*;
use umbilical::{Engine, ExitStatus, Launcher};

/// The engines that run here, each with its container; SKIP for the rest.
fn engines(what: &str) -> Vec<(Engine, String)> {
    let mut found = Vec::new();
    for (engine, var) in
        [(Engine::Docker, "UMBILICAL_TEST_DOCKER_CONTAINER"), (Engine::Podman, "UMBILICAL_TEST_PODMAN_CONTAINER")]
    {
        match std::env::var(var) {
            Ok(c) if engine != Engine::Docker || std::env::var("DOCKER_HOST").is_ok() => found.push((engine, c)),
            _ => skip(&format!("{what} via {engine:?}"), &format!("{var} unset (scripts/containers.sh start)")),
        }
    }
    found
}

fn exec(engine: Engine, container: &str, args: &[&str]) -> umbilical::Command {
    let mut cmd = umbilical::Command::new(args[0]);
    cmd.args(&args[1..]).launcher(Launcher::ContainerExec { engine, target: container.into() });
    cmd
}

/// 16 MiB through `cat` in the container and back, byte-exact, with the
/// half-close reaching it through the engine.
#[test]
fn sixteen_mib_round_trip_with_half_close() {
    for (engine, c) in engines("round trip") {
        let payload = pattern(16 << 20, 12);
        let expected = payload.clone();
        let mut child = exec(engine, &c, &["cat"]).spawn().unwrap();
        let channel = child.take_channel().unwrap();
        let (out, exit) = bounded(LIMIT, "container round trip", move || {
            let out = round_trip(channel, payload, vec![65_536, 1_000_003]);
            (out, child.wait().unwrap())
        });
        assert!(out == expected, "{engine:?}: 16 MiB byte-exact");
        assert_eq!(exit.status, ExitStatus::Exited(0), "{engine:?}");
        // EOF reached the program: `wc -c` counts and ends.
        let child = exec(engine, &c, &["wc", "-c"]).spawn().unwrap();
        let out = output_after(child, b"abc");
        assert_eq!(out.trim(), "3", "{engine:?}: the half-close is EOF inside the container");
    }
}

/// Exit codes as the engines pass them on: 0 and 3 exactly; a death by
/// signal as 128+N (the engine's exec reports no signal: without the shim
/// `ExitStatus::Signaled` cannot come back through container exec).
#[test]
fn exit_codes_through_the_engines() {
    for (engine, c) in engines("exit codes") {
        for (script, want) in [("exit 0", 0), ("exit 3", 3), ("kill -KILL $$", 128 + 9), ("kill -TERM $$", 128 + 15)] {
            let mut child = exec(engine, &c, &["sh", "-c", script]).spawn().unwrap();
            let exit = bounded(LIMIT, "container exit", move || child.wait().unwrap());
            assert_eq!(exit.status, ExitStatus::Exited(want), "{engine:?}: {script}");
        }
    }
}

/// A missing program against a missing container, without the shim: each
/// engine has its own codes, and docker's missing container (1) looks like
/// a program's own exit 1. This is what the shim is to tell apart.
#[test]
fn missing_program_and_missing_container() {
    for (engine, c) in engines("missing program or container") {
        let status = |container: &str, program: &str| {
            let mut child = exec(engine, container, &[program]).stderr(umbilical::Stderr::Null).spawn().unwrap();
            bounded(LIMIT, "container exec", move || child.wait().unwrap()).status
        };
        let (program, container) = match engine {
            // dockerd 20.10: 126 for "executable file not found", 1 for "No such
            // container" (the daemon's error, not the program's).
            Engine::Docker => (ExitStatus::Exited(126), ExitStatus::Exited(1)),
            // podman: 127 and 125, as its docs say.
            _ => (ExitStatus::Exited(127), ExitStatus::Exited(125)),
        };
        assert_eq!(status(&c, "umbilical-no-such-program"), program, "{engine:?}: a missing program");
        assert_eq!(status("umbilical-no-such-container", "true"), container, "{engine:?}: a missing container");
    }
}

/// Half-closes at once with `input` sent, reads everything, waits; all
/// bounded.
fn output_after(mut child: umbilical::Child, input: &[u8]) -> String {
    let input = input.to_vec();
    bounded(LIMIT, "container output and end", move || {
        let out = String::from_utf8(round_trip(child.take_channel().unwrap(), input, vec![4096])).unwrap();
        assert!(child.wait().unwrap().success());
        out
    })
}
