//! The shim against a hostile target user, a caller that lets go or dies,
//! and limits: the rendezvous cannot be taken over, the shim is chosen only
//! where it can work, a dropped child is killed or let go as asked, the
//! handshake is bounded by the connect timeout, and requests as large as
//! the OS admits get through. Every wait is bounded.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use umbilical::{Capabilities, Command, Detection, Engine, ErrorKind, Exit, ExitStatus, Launcher, ShimMode};

/// Whether `pid` still runs (a zombie counts as ended).
fn alive(pid: u32) -> bool {
    std::fs::metadata(format!("/proc/{pid}")).is_ok() && !is_zombie(pid)
}

/// Waits (bounded by `limit`) until `pid` has ended.
fn ends_within(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// One real run through the shim: a line goes in, comes back, status 0.
fn real_run(launcher: &Launcher) {
    let mut child = shimmed(launcher, &["echo"]).spawn().expect("the real run starts despite the squatter");
    let out = bounded(LIMIT, "a real run beside the squatter", move || {
        let channel = child.channel().unwrap();
        channel.write_all(b"ping").unwrap();
        channel.shutdown_write().unwrap();
        let mut got = Vec::new();
        channel.read_to_end(&mut got).unwrap();
        (got, child.wait().unwrap())
    });
    assert_eq!(out, (b"ping".to_vec(), Exit { status: ExitStatus::Exited(0), detection: Detection::Shim }));
}

/// Issue #9, item 3: a process already running as the target user races
/// for every rendezvous of real runs through runuser (the directory used to
/// be handed to that user, who could rename the socket and bind its own,
/// then receive the shim's hello and token). Every rename, unlink,
/// replacement, planted file and directory move fails; a forged hello gets
/// no answer; every real run succeeds.
#[test]
fn the_target_user_cannot_take_over_the_rendezvous() {
    let _g = fd_lock();
    let Ok(user) = std::env::var("UMBILICAL_TEST_USER") else {
        skip("rendezvous takeover", "UMBILICAL_TEST_USER is not set (run `scripts/launchers.sh start` as root)");
        return;
    };
    let base = std::env::temp_dir();
    let mut squatter = std::process::Command::new("runuser")
        .args(["-u", &user, "--", HELPER, "squat"])
        .arg(&base)
        .arg("60000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the squatter as the target user");
    let (tx, seen) = mpsc::channel();
    let out = BufReader::new(squatter.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut last = String::new();
        for line in out.lines().map_while(Result::ok) {
            if line.starts_with("seen ") {
                let _ = tx.send(());
            } else {
                last = line;
            }
        }
        last
    });
    let launcher = Launcher::Runuser { user: user.clone() };
    // Real runs until the squatter has met three of them (bounded).
    let mut met = 0;
    for _ in 0..300 {
        real_run(&launcher);
        met += seen.try_iter().count();
        if met >= 3 {
            break;
        }
    }
    drop(squatter.stdin.take());
    let status = bounded(LIMIT, "the squatter's end", move || squatter.wait().unwrap());
    assert!(status.success(), "the squatter failed: {status:?}");
    let counts = join_within(reader, LIMIT, "the squatter's report");
    eprintln!("squatter: met {met}: {counts}");
    assert!(met >= 1, "the squatter never met a rendezvous in 300 runs; cannot judge ({counts})");
    for attack in ["renamed", "unlinked", "replaced", "planted", "moved", "answered"] {
        assert!(counts.contains(&format!(" {attack}=0")), "{attack} succeeded: {counts}");
    }
}

/// `ShimMode::Auto` uses the shim only where it can work, and says why.
#[test]
fn auto_chooses_the_shim_where_it_can_work() {
    let choice = |launcher: Launcher, path: &str| {
        let mut cmd = Command::new("true");
        cmd.launcher(launcher).shim(ShimMode::Auto).shim_path(path);
        cmd.shim_choice()
    };
    let direct = choice(Launcher::Direct, HELPER);
    assert!(!direct.used && direct.reason.contains("no launcher"), "{direct:?}");
    // Container exec: a shim_path names one inside the container, taken on
    // trust; a shim to copy in must be static; a forwarded link cannot be.
    let docker = Launcher::ContainerExec { engine: Engine::Docker, target: "c".into(), user: None };
    let inside = choice(docker.clone(), "/opt/umbilical-shim");
    assert!(inside.used && inside.reason.contains("in band"), "{inside:?}");
    let mut cmd = Command::new("true");
    cmd.launcher(docker.clone()).shim(ShimMode::Auto).shim_source(HELPER);
    let dynamic = cmd.shim_choice();
    assert!(!dynamic.used && dynamic.reason.contains("dynamically linked"), "{dynamic:?}");
    let mut cmd = Command::new("true");
    cmd.launcher(docker).shim(ShimMode::Auto).shim_link(umbilical::ShimLink::Forwarded);
    let forwarded = cmd.shim_choice();
    assert!(!forwarded.used && forwarded.reason.contains("container"), "{forwarded:?}");
    let custom = choice(Launcher::Custom { prefix: vec!["env".into()], capabilities: Capabilities::default() }, HELPER);
    assert!(!custom.used, "{custom:?}");
    let root = choice(Launcher::Sudo { user: None, non_interactive: true }, HELPER);
    assert!(root.used, "root can execute the helper: {root:?}");
    let missing = choice(Launcher::Sudo { user: None, non_interactive: true }, "/nonexistent/umbilical-shim");
    assert!(!missing.used && missing.reason.contains("/nonexistent/umbilical-shim"), "{missing:?}");
    // An explicit choice is kept whatever the launcher.
    let mut cmd = Command::new("true");
    cmd.shim(true);
    assert!(cmd.shim_choice().used);
    if let Ok(user) = std::env::var("UMBILICAL_TEST_USER") {
        // A copy of the shim in a directory only root may search.
        let dir = scratch_dir("auto-private");
        let private = dir.join("private");
        std::fs::create_dir(&private).unwrap();
        let shim = helper_copy(&private, "shim");
        std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        // Used all the same (#27): copied into the rendezvous directory,
        // and the reason says why and where.
        let hidden = choice(Launcher::Runuser { user: user.clone() }, shim.to_str().unwrap());
        assert!(hidden.used && hidden.reason.contains("not searchable"), "{hidden:?}");
        assert!(hidden.reason.contains("a copy of the shim in the rendezvous directory"), "{hidden:?}");
        let mut cmd = Command::new(HELPER);
        cmd.args(["signal", "10"])
            .launcher(Launcher::Runuser { user: user.clone() })
            .shim(ShimMode::Auto)
            .shim_path(&shim);
        let exit = cmd.spawn().unwrap().wait().unwrap();
        assert_eq!(exit.status, umbilical::ExitStatus::Signaled(10), "exact through the copied shim");
        let visible = choice(Launcher::Runuser { user }, HELPER);
        assert!(visible.used, "{visible:?}");
    } else {
        skip("auto: a shim the target user cannot reach", "UMBILICAL_TEST_USER is not set");
    }
}

/// `kill_on_drop(true)` ends a running program when the child is dropped,
/// directly and through the shim (tokio's `kill_on_drop`); without it a
/// dropped child through the shim is let go and runs on (the shim was told
/// to detach), as std leaves a dropped child running.
#[test]
fn dropping_kills_or_lets_go_as_asked() {
    let _g = fd_lock();
    for shim in [false, true] {
        let mut cmd = helper(&["sleep", "30000"]);
        cmd.shim(shim).shim_path(HELPER).kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        assert!(ends_within(pid, Duration::from_secs(10)), "shim={shim}: kill_on_drop left pid {pid} running");
    }
    let mut cmd = helper(&["sleep", "30000"]);
    cmd.shim(true).shim_path(HELPER).caller_gone_grace(Duration::from_millis(100));
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    drop(child);
    std::thread::sleep(Duration::from_millis(800));
    let ran_on = alive(pid);
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    assert!(ran_on, "a dropped child (no kill_on_drop) was ended by the shim; it should run on");
}

/// The connect timeout bounds the handshake: a launcher that never starts
/// the shim fails with `TimedOut` at the deadline, and is killed.
#[test]
fn the_handshake_is_bounded_by_the_connect_timeout() {
    let _g = fd_lock();
    let never = Launcher::Custom {
        prefix: vec!["sh".into(), "-c".into(), "exec sleep 30".into(), "sh".into()],
        capabilities: Capabilities::default(),
    };
    let mut cmd = helper(&["echo"]);
    cmd.launcher(never).shim(true).shim_path(HELPER).connect_timeout(Duration::from_millis(700));
    let start = Instant::now();
    let err = bounded(LIMIT, "spawn with a shim that never connects", move || cmd.spawn().unwrap_err());
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("connect timeout"), "{err}");
    assert!(took >= Duration::from_millis(700) && took < Duration::from_secs(5), "took {took:?}");
}

/// Issue #9, item 6: a request as large as Linux admits (1.9 MB of
/// arguments; control frames used to be capped at 1 MiB) goes through the
/// shim, directly and through a launcher that switches user.
#[test]
fn arguments_the_os_admits_go_through_the_shim() {
    let _g = fd_lock();
    let arg = "a".repeat(1900);
    let mut launchers = vec![Launcher::Direct];
    match std::env::var("UMBILICAL_TEST_USER") {
        Ok(user) => launchers.push(Launcher::Runuser { user }),
        Err(_) => skip("large request via runuser", "UMBILICAL_TEST_USER is not set"),
    }
    for launcher in launchers {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo $# ${#1}", "sh"]).args(std::iter::repeat_n(&arg, 1000));
        cmd.launcher(launcher.clone()).shim(true).shim_path(HELPER);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{}: {e}", launcher.name()));
        assert_eq!(output_of(child).trim(), "1000 1900", "{}", launcher.name());
    }
}

/// Through the shim the program gets fds 0, 1 and 2 and nothing else: not
/// the shim's control stream (so it cannot speak the protocol or forge its
/// status), not a leaky descriptor of the caller's. Directly and through a
/// launcher that switches user.
#[test]
fn the_program_gets_nothing_of_the_shim() {
    let _g = fd_lock();
    let mut launchers = vec![Launcher::Direct];
    match std::env::var("UMBILICAL_TEST_USER") {
        Ok(user) => launchers.push(Launcher::Runuser { user }),
        Err(_) => skip("descriptors through the shim via runuser", "UMBILICAL_TEST_USER is not set"),
    }
    for launcher in launchers {
        let out = output_of(shimmed(&launcher, &["fds"]).spawn().unwrap());
        assert_eq!(parse_fds(out.as_bytes()), vec![0, 1, 2], "{}: {out}", launcher.name());
    }
}
