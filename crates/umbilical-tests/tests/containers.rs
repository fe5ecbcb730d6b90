//! Container exec for real: docker (a private dockerd) and podman (runc),
//! each with a busybox container started by `scripts/containers.sh`.
//! Without the shim, what the engine gives is what the caller gets, and
//! these tests pin it down (the channel, half-close, the exit codes as the
//! engines report them, a missing program against a missing container).
//! With the shim (a static `umbilical-shim` copied in, the link in band):
//! the exact status, `NotFound` against `LauncherRefused`, a kill that
//! reaches the program, the program ended when its exec client is killed,
//! and no file of ours left in the container.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use umbilical::{Engine, ErrorKind, ExitStatus, Launcher};

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
    cmd.args(&args[1..]).launcher(Launcher::ContainerExec { engine, target: container.into(), user: None });
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

/// The static shim that `scripts/test.sh` builds, or SKIP.
fn static_shim(what: &str) -> Option<String> {
    let shim = std::env::var("UMBILICAL_TEST_STATIC_SHIM").ok();
    if shim.is_none() {
        skip(what, "UMBILICAL_TEST_STATIC_SHIM unset (scripts/test.sh builds it)");
    }
    shim
}

/// `args` in the container through the shim, copied in from `shim`.
fn shim_exec(engine: Engine, container: &str, shim: &str, args: &[&str]) -> umbilical::Command {
    let mut cmd = exec(engine, container, args);
    // A failed assertion must not leave a program running (nor its exec
    // client holding the test's stderr open).
    cmd.shim(true).shim_source(shim).caller_gone_grace(std::time::Duration::from_secs(1)).kill_on_drop(true);
    cmd
}

/// The shim tests look at the container's process list and at this
/// process's children: one at a time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `args` print inside the container (the engine's own exec, bounded
/// by timeout(1)).
fn inside(engine: Engine, container: &str, args: &[&str]) -> String {
    let client = if engine == Engine::Docker { "docker" } else { "podman" };
    let out = std::process::Command::new("timeout")
        .args(["30", client, "exec", container])
        .args(args)
        .output()
        .expect("the engine's client runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a process whose command line contains `needle` runs in the
/// container (`ps` there; busybox's shows the arguments).
fn running_inside(engine: Engine, container: &str, needle: &str) -> bool {
    inside(engine, container, &["ps"]).lines().any(|l| l.contains(needle) && !l.contains("ps"))
}

/// Waits (bounded) until nothing with `needle` runs in the container.
fn gone_inside(engine: Engine, container: &str, needle: &str, within: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + within;
    loop {
        if !running_inside(engine, container, needle) {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The shim's files left in the container's /tmp: none, once a run is
/// over (the bridge removes the copy and the socket).
fn our_files(engine: Engine, container: &str) -> Vec<String> {
    inside(engine, container, &["ls", "/tmp"])
        .lines()
        .filter(|l| l.starts_with("umbilical-"))
        .map(String::from)
        .collect()
}

/// With the shim, through each engine: 16 MiB byte-exact with half-close,
/// exit codes 0 and 3, and a death by signal as `Signaled(N)`, which the
/// engines alone report as 128+N; no file left.
#[test]
fn shim_round_trip_and_exact_status() {
    let _serial = one_at_a_time();
    let Some(shim) = static_shim("the shim in a container") else { return };
    for (engine, c) in engines("the shim in a container") {
        let payload = pattern(16 << 20, 13);
        let expected = payload.clone();
        let mut child = shim_exec(engine, &c, &shim, &["cat"]).spawn().unwrap();
        let channel = child.take_channel().unwrap();
        let (out, exit) = bounded(LIMIT, "shim round trip in a container", move || {
            let out = round_trip(channel, payload, vec![65_536, 1_000_003]);
            (out, child.wait().unwrap())
        });
        assert!(out == expected, "{engine:?}: 16 MiB byte-exact through the shim");
        assert_eq!(exit.status, ExitStatus::Exited(0), "{engine:?}");
        assert_eq!(exit.detection, umbilical::Detection::Shim, "{engine:?}: the shim reported");
        for (script, want) in [
            ("exit 0", ExitStatus::Exited(0)),
            ("exit 3", ExitStatus::Exited(3)),
            ("kill -KILL $$", ExitStatus::Signaled(9)),
            ("kill -TERM $$", ExitStatus::Signaled(15)),
        ] {
            let mut child = shim_exec(engine, &c, &shim, &["sh", "-c", script]).spawn().unwrap();
            let exit = bounded(LIMIT, "shim exit in a container", move || child.wait().unwrap());
            assert_eq!(exit.status, want, "{engine:?}: {script}");
        }
        assert_eq!(our_files(engine, &c), Vec::<String>::new(), "{engine:?}: no file of ours left in /tmp");
    }
}

/// With the shim: a program missing inside the container is `NotFound`
/// (the shim says so), a missing container `LauncherRefused` (the engine
/// refused the copy): told apart, where the engines alone give codes that
/// differ by engine and collide with programs' own.
#[test]
fn shim_missing_program_and_missing_container() {
    let _serial = one_at_a_time();
    let Some(shim) = static_shim("the shim: missing program or container") else { return };
    for (engine, c) in engines("the shim: missing program or container") {
        let err = shim_exec(engine, &c, &shim, &["umbilical-no-such-program"]).spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{engine:?}: {err}");
        let err = shim_exec(engine, "umbilical-no-such-container", &shim, &["true"])
            .stderr(umbilical::Stderr::Null)
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LauncherRefused, "{engine:?}: {err}");
        assert_eq!(our_files(engine, &c), Vec::<String>::new(), "{engine:?}: no file of ours left in /tmp");
    }
}

/// With the shim, `kill()` and `signal()` reach the program inside the
/// container (the engines' exec clients pass no signal on): the status is
/// the signal's, and nothing is left running.
#[test]
fn shim_kill_reaches_the_program() {
    let _serial = one_at_a_time();
    let Some(shim) = static_shim("the shim: kill in a container") else { return };
    for (engine, c) in engines("the shim: kill in a container") {
        for (sig, args) in [(9, ["sleep", "1077"]), (15, ["sleep", "1076"])] {
            let mut child = shim_exec(engine, &c, &shim, &args).spawn().unwrap();
            assert!(running_inside(engine, &c, args[1]), "{engine:?}: the program runs");
            if sig == 9 {
                child.kill().unwrap()
            } else {
                child.signal(sig).unwrap()
            }
            let exit = bounded(LIMIT, "killed in a container", move || child.wait().unwrap());
            assert_eq!(exit.status, ExitStatus::Signaled(sig), "{engine:?}");
            assert!(gone_inside(engine, &c, args[1], LIMIT), "{engine:?}: nothing left running after signal {sig}");
        }
        assert_eq!(our_files(engine, &c), Vec::<String>::new(), "{engine:?}: no file of ours left in /tmp");
    }
}

/// The child processes of this test process whose command line contains
/// `needle`, from /proc.
fn our_children_with(needle: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat.rfind(')').and_then(|i| stat[i + 2..].split_whitespace().nth(1).map(str::to_string));
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            ppid.as_deref() == Some(me.as_str()) && String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .collect()
}

/// The exec client that runs the shim, killed with SIGKILL (the defect
/// every container tool has: the daemon keeps the program running): the
/// caller sees that session end without a report, drops the link, and the
/// shim ends the program after the grace. `wait()` says the status was
/// lost, and nothing of ours is left in the container.
#[test]
fn exec_client_killed_ends_the_program() {
    let _serial = one_at_a_time();
    let Some(shim) = static_shim("the shim: exec client killed") else { return };
    for (engine, c) in engines("the shim: exec client killed") {
        let mut child = shim_exec(engine, &c, &shim, &["sleep", "1078"]).spawn().unwrap();
        assert!(running_inside(engine, &c, "1078"), "{engine:?}: the program runs");
        let clients = our_children_with("--umbilical-rendezvous");
        assert_eq!(clients.len(), 1, "{engine:?}: one exec client runs the shim: {clients:?}");
        let killed = std::process::Command::new("kill").args(["-KILL", &clients[0].to_string()]).status().unwrap();
        assert!(killed.success());
        let exit = bounded(LIMIT, "exec client killed", move || child.wait().unwrap());
        assert_eq!(exit.status, ExitStatus::Unknown, "{engine:?}: the status was lost with the session");
        assert_eq!(exit.detection, umbilical::Detection::ShimLost, "{engine:?}");
        // TERM at once, KILL after the 1 s grace: well within 10 s.
        assert!(
            gone_inside(engine, &c, "1078", std::time::Duration::from_secs(10)),
            "{engine:?}: the program ended after its exec client was killed"
        );
        assert!(
            gone_inside(engine, &c, "umbilical-", std::time::Duration::from_secs(10)),
            "{engine:?}: the shim and its bridge ended"
        );
        assert_eq!(our_files(engine, &c), Vec::<String>::new(), "{engine:?}: no file of ours left in /tmp");
    }
}

/// Running as a given user (`-u UID:GID`), with and without the shim: the
/// program is that user; with the shim the bridge (the container's default
/// user, root here) hands its socket over and still removes the copy.
#[test]
fn as_a_given_user() {
    let shim = static_shim("the shim as a given user");
    let _serial = one_at_a_time();
    for (engine, c) in engines("as a given user") {
        let launcher = Launcher::ContainerExec { engine, target: c.clone(), user: Some("1000:1000".into()) };
        let mut plain = umbilical::Command::new("id");
        plain.arg("-u").launcher(launcher.clone());
        assert_eq!(output_after(plain.spawn().unwrap(), b"").trim(), "1000", "{engine:?}: without the shim");
        let Some(shim) = &shim else { continue };
        let mut shimmed = umbilical::Command::new("sh");
        shimmed.args(["-c", "id -u; exit 3"]).launcher(launcher).shim(true).shim_source(shim).kill_on_drop(true);
        let mut child = shimmed.spawn().unwrap();
        let channel = child.take_channel().unwrap();
        let (out, exit) = bounded(LIMIT, "the shim as a given user", move || {
            (round_trip(channel, Vec::new(), vec![1]), child.wait().unwrap())
        });
        assert_eq!(String::from_utf8_lossy(&out).trim(), "1000", "{engine:?}: with the shim");
        assert_eq!(exit.status, ExitStatus::Exited(3), "{engine:?}");
        assert_eq!(our_files(engine, &c), Vec::<String>::new(), "{engine:?}: no file of ours left in /tmp");
    }
}

/// An image with no writable place for the shim (a read-only root
/// filesystem): the copy fails, and the error says so with the engine's
/// own words and what to do (a shim in the image, `shim_path`); nothing
/// started.
#[test]
fn no_writable_place_for_the_shim() {
    let Some(shim) = static_shim("the shim in a read-only container") else { return };
    let Ok(c) = std::env::var("UMBILICAL_TEST_DOCKER_READONLY_CONTAINER") else {
        skip(
            "the shim in a read-only container",
            "UMBILICAL_TEST_DOCKER_READONLY_CONTAINER unset (scripts/containers.sh)",
        );
        return;
    };
    let _serial = one_at_a_time();
    let err = shim_exec(Engine::Docker, &c, &shim, &["true"]).spawn().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LauncherRefused, "{err}");
    let text = err.to_string();
    assert!(text.contains("could not copy the shim") && text.contains("shim_path"), "{text}");
    assert!(text.contains("read-only") || text.contains("read only"), "the engine's reason is kept: {text}");
    assert!(our_children_with("--umbilical-").is_empty(), "no session was started");
}

/// A container of the suite's image made for one test, removed when
/// dropped (`rm -f`, bounded): for states the shared containers must not
/// be put in (a /tmp anyone may rename in, a stopped container).
struct Scratch {
    client: &'static str,
    name: String,
}

impl Scratch {
    fn new(engine: Engine, like: &str, what: &str) -> Scratch {
        let client = if engine == Engine::Docker { "docker" } else { "podman" };
        let name = format!("umb-test-scratch-{}-{what}", std::process::id());
        let image = Self::run(client, &["inspect", "--format", "{{.Config.Image}}", like]);
        let mut args = vec!["run", "-d", "--network", "none"];
        if engine == Engine::Podman {
            // As scripts/containers.sh starts podman's (crun fails here).
            args.splice(0..0, ["--runtime", "runc"]);
            args.extend(["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]);
        }
        args.extend(["--name", &name, image.trim(), "sleep", "600"]);
        let scratch = Scratch { client, name: name.clone() };
        Self::run(client, &args);
        scratch
    }

    /// `client ARGS`, bounded by timeout(1); its stdout. Fails the test if
    /// it fails.
    fn run(client: &str, args: &[&str]) -> String {
        let out = std::process::Command::new("timeout").arg("60").arg(client).args(args).output().unwrap();
        assert!(out.status.success(), "{client} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn exec(&self, user: &str, script: &str) -> String {
        Self::run(self.client, &["exec", "-u", user, &self.name, "sh", "-c", script])
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::process::Command::new("timeout")
            .args(["60", self.client, "rm", "-f", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Issue 23 item 5, and issue 27: a container whose /tmp any user may
/// rename in (mode 0777, no sticky bit), with a user of the container (uid
/// 1000) racing to replace every `/tmp/umbilical-*` with a payload. The
/// copied shim would run as the container's root: before issue 23, the
/// payload ran as uid 0 in 9 of 10 launches, also with a target user (the
/// bridge runs as the default user). Since issue 27 the copy goes to the
/// next safe place (here `/`, root's and closed to others: the image has
/// no `/var/tmp` or `/run`) instead of being refused: the program runs, as
/// root and as uid 1000, the payload never runs, nothing of ours is in
/// /tmp. A /tmp owned by that user (sticky, but its owner may remove
/// anything in it) is passed over the same way; made root's and sticky
/// again, the same container takes the copy in /tmp.
#[test]
fn a_tmp_others_may_rename_in_is_passed_over_and_the_racer_gets_nothing() {
    let _serial = one_at_a_time();
    let Some(shim) = static_shim("the shim: a /tmp without the sticky bit") else { return };
    for (engine, c) in engines("the shim: a /tmp without the sticky bit") {
        let scratch = Scratch::new(engine, &c, "nosticky");
        scratch.exec("0", "chmod 0777 /tmp");
        // The racer: uid 1000, for at most 20 s, swaps in a script that
        // leaves a mark as whoever runs it.
        std::process::Command::new("timeout")
            .args(["60", scratch.client, "exec", "-d", "-u", "1000", &scratch.name, "sh", "-c"])
            .arg(
                "printf '#!/bin/sh\\nid -u > /tmp/pwned\\n' > /tmp/payload; chmod 755 /tmp/payload; \
                 i=0; while [ $i -lt 20000 ]; do for f in /tmp/umbilical-*; do [ -f \"$f\" ] && \
                 case \"$f\" in *.sock) ;; *) cp /tmp/payload \"$f.x\" && mv -f \"$f.x\" \"$f\";; esac; done; \
                 i=$((i+1)); done",
            )
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        for (user, uid) in [(None, "0"), (Some("1000"), "1000")] {
            for _ in 0..3 {
                let mut cmd = shim_exec(engine, &scratch.name, &shim, &["id", "-u"]);
                cmd.launcher(Launcher::ContainerExec {
                    engine,
                    target: scratch.name.clone(),
                    user: user.map(String::from),
                });
                let child = cmd.spawn().unwrap_or_else(|e| panic!("{engine:?} user {user:?}: {e}"));
                assert_eq!(output_after(child, b""), format!("{uid}\n"), "{engine:?} user {user:?}");
            }
        }
        let listing = scratch.exec("0", "ls /tmp");
        assert!(!listing.contains("pwned"), "{engine:?}: the payload ran: {listing}");
        assert!(!listing.contains("umbilical-"), "{engine:?}: nothing of ours in /tmp: {listing}");
        assert!(!scratch.exec("0", "ls /").contains("umbilical-"), "{engine:?}: the copies in / are gone");
        if engine == Engine::Docker {
            scratch.exec("0", "chown 1000 /tmp && chmod 1777 /tmp");
            let child = shim_exec(engine, &scratch.name, &shim, &["id", "-u"]).spawn().unwrap();
            assert_eq!(output_after(child, b""), "0\n", "{engine:?}: a user's /tmp is passed over");
            let listing = scratch.exec("0", "ls /tmp");
            assert!(!listing.contains("pwned") && !listing.contains("umbilical-"), "{engine:?}: {listing}");
            scratch.exec("0", "chown 0 /tmp");
        } else {
            skip(
                "the shim: a /tmp owned by a container user, via podman",
                "podman's archive gives every entry to the user running podman, so only the mode is judged there \
                 (docs/SECURITY.md)",
            );
        }
        scratch.exec("0", "chmod 1777 /tmp");
        let exit = shim_exec(engine, &scratch.name, &shim, &["true"]).spawn().unwrap().wait().unwrap();
        assert_eq!(exit.status, ExitStatus::Exited(0), "{engine:?}: root's sticky /tmp takes the shim");
    }
}

/// Issue 23 item 6: a stopped container is refused before anything is
/// copied (before, each attempt left a 1.8 MB copy in it, which nothing in
/// a stopped container can remove); and a caller killed with SIGKILL at
/// any moment of the copy leaves no copy in a running container (before:
/// docker 1 of 5 timings, podman 3 of 5). The copy is made by a janitor
/// of the caller's that removes it unless the bridge took it over.
#[test]
fn no_copy_is_left_in_a_stopped_container_or_by_a_killed_caller() {
    let _serial = one_at_a_time();
    let Some(shim) = static_shim("the shim: a stopped container, a killed caller") else { return };
    for (engine, c) in engines("the shim: a stopped container, a killed caller") {
        let scratch = Scratch::new(engine, &c, "stopped");
        Scratch::run(scratch.client, &["stop", "-t", "0", &scratch.name]);
        for _ in 0..2 {
            let err = shim_exec(engine, &scratch.name, &shim, &["true"]).spawn().expect_err("a stopped container");
            assert_eq!(err.kind(), ErrorKind::LauncherRefused, "{engine:?}: {err}");
            assert!(err.to_string().contains("does not run"), "{engine:?}: {err}");
        }
        Scratch::run(scratch.client, &["start", &scratch.name]);
        assert_eq!(our_files(engine, &scratch.name), Vec::<String>::new(), "{engine:?}: nothing was copied");
        // The caller killed at each moment of the placement: the three
        // looks, the copy, the bridge's start, the handshake.
        for delay_ms in [0u64, 40, 80, 120, 160, 200, 260, 330] {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_umbilical-test-helper"))
                .args(["shimmed-in", if engine == Engine::Docker { "docker" } else { "podman" }])
                .args([&scratch.name, &shim])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            let _ = child.kill();
            let _ = child.wait();
            let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
            while !our_files(engine, &scratch.name).is_empty() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            assert_eq!(
                our_files(engine, &scratch.name),
                Vec::<String>::new(),
                "{engine:?}: the caller killed {delay_ms} ms in left a copy"
            );
        }
    }
}

/// nsenter from the host into each container's namespaces (issue #26):
/// the program sees the container (its pid 1 is the container's), the
/// channel and its half-close hold, exit codes come back, a signal death
/// is exact (nsenter dies of the same signal), and a program missing in
/// the container is 127.
#[test]
fn nsenter_runs_the_program_in_a_containers_namespaces() {
    for (engine, c) in engines("nsenter") {
        let inspect = match engine {
            Engine::Docker => "docker",
            _ => "podman",
        };
        let out = std::process::Command::new(inspect).args(["inspect", "-f", "{{.State.Pid}}", &c]).output().unwrap();
        let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("the container's pid");
        let nsenter = |args: &[&str]| {
            let mut cmd = umbilical::Command::new(args[0]);
            cmd.args(&args[1..]).launcher(Launcher::Nsenter { pid });
            cmd
        };
        // Its pid 1 is the container's (busybox `sleep`), not the host's.
        let init = output_of(nsenter(&["cat", "/proc/1/comm"]).spawn().unwrap());
        assert_eq!(init.trim(), "sleep", "{engine:?}: inside the container");
        let payload = pattern(2 << 20, 13);
        let expected = payload.clone();
        let mut child = nsenter(&["cat"]).spawn().unwrap();
        let channel = child.take_channel().unwrap();
        let (got, exit) = bounded(LIMIT, "nsenter round trip", move || {
            let got = round_trip(channel, payload, vec![65_536, 4097]);
            (got, child.wait().unwrap())
        });
        assert!(got == expected, "{engine:?}: 2 MiB byte-exact through nsenter");
        assert_eq!(exit.status, ExitStatus::Exited(0), "{engine:?}");
        assert_eq!(output_after(nsenter(&["wc", "-c"]).spawn().unwrap(), b"abcd").trim(), "4", "{engine:?}: EOF");
        let exit = nsenter(&["sh", "-c", "exit 3"]).spawn().unwrap().wait().unwrap();
        assert_eq!(exit.status, ExitStatus::Exited(3), "{engine:?}");
        let exit = nsenter(&["sh", "-c", "kill -TERM $$"]).spawn().unwrap().wait().unwrap();
        assert_eq!(exit.status, ExitStatus::Signaled(15), "{engine:?}: nsenter dies of the program's signal");
        let exit = nsenter(&["no-such-program-here"]).spawn().unwrap().wait().unwrap();
        assert_eq!(exit.status, ExitStatus::Exited(127), "{engine:?}: missing in the container");
    }
}
