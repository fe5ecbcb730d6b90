//! Sessions (`umbilical::Session`): one launcher run, many programs, each
//! with its own channel, exact status and kills; the session bound to its
//! caller. Through real launchers (`scripts/launchers.sh start`, as root:
//! runuser, sudo, doas, su, setpriv, pkexec where polkitd runs); without
//! them each test prints SKIP. The session with no launcher runs anywhere.

#![cfg(unix)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use umbilical::{Detection, ErrorKind, ExitStatus, Launcher, Session, Stderr};

/// The local launchers a session goes through here, each to the test user
/// (`None`: the caller's own, no launcher).
fn launchers(what: &str) -> Vec<Launcher> {
    let mut list = vec![Launcher::Direct];
    let Ok(user) = std::env::var("UMBILICAL_TEST_USER") else {
        skip(what, "UMBILICAL_TEST_USER is not set (scripts/launchers.sh start, as root): no launcher, only Direct");
        return list;
    };
    list.extend([
        Launcher::Runuser { user: user.clone() },
        Launcher::Sudo { user: Some(user.clone()), non_interactive: true },
        Launcher::Doas { user: Some(user.clone()) },
        Launcher::Su { user: user.clone() },
        Launcher::Setpriv { user: user.clone(), group: None },
    ]);
    match pkexec_skip_reason() {
        None => list.push(Launcher::Pkexec { user: Some(user), keep_cwd: true }),
        Some(why) => skip(&format!("{what} via pkexec"), &why),
    }
    list
}

/// The user a session's programs run as.
fn runs_as(launcher: &Launcher) -> String {
    match launcher {
        Launcher::Direct => whoami(),
        _ => std::env::var("UMBILICAL_TEST_USER").unwrap(),
    }
}

fn whoami() -> String {
    let out = std::process::Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn open(launcher: &Launcher) -> Session {
    Session::builder(launcher.clone())
        .shim_path(HELPER)
        .caller_gone_grace(Duration::from_secs(2))
        .open()
        .unwrap_or_else(|e| panic!("{}: open: {e}", launcher.name()))
}

/// One launcher run, twenty programs: each a 70 KB echo with half-close
/// and an exact exit code, all as the target user under the one session
/// process.
#[test]
fn twenty_programs_through_one_launcher_run() {
    let _g = fd_lock();
    for launcher in launchers("session: twenty programs") {
        let name = launcher.name();
        bounded(LIMIT, "twenty programs", move || {
            let session = open(&launcher);
            let shim = session.pid().expect("the session's shim runs");
            for i in 0..20u8 {
                let payload = pattern(70 * 1024, u64::from(i));
                let mut child = session.command(HELPER).args(["echo-exit", &i.to_string()]).spawn().unwrap();
                let out = round_trip(child.take_channel().unwrap(), payload.clone(), vec![4096, 333]);
                assert!(out == payload, "{name}: program {i} byte-exact ({} of {} bytes)", out.len(), payload.len());
                let exit = child.wait().unwrap();
                assert_eq!(exit.status, ExitStatus::Exited(i.into()), "{name}: program {i}'s exact code");
                assert_eq!(exit.detection, Detection::Shim);
            }
            // Who the programs run as, and that they are the session's
            // shim's children: one launcher run for all.
            let mut child = session.command(HELPER).arg("who").spawn().unwrap();
            let mut out = String::new();
            child.take_channel().unwrap().read_to_string(&mut out).unwrap();
            assert!(child.wait().unwrap().success());
            assert_eq!(out, format!("{}\n{shim}\n", runs_as(&launcher)), "{name}: user and parent");
            session.close().unwrap();
        });
    }
}

/// Deaths by signal and kills through the session are exact; a missing
/// program is `NotFound` and the session goes on.
#[test]
fn kills_signals_and_a_missing_program() {
    let _g = fd_lock();
    for launcher in launchers("session: kills") {
        let name = launcher.name();
        bounded(LIMIT, "kills", move || {
            let session = open(&launcher);
            let exit = session.command(HELPER).args(["signal", "15"]).spawn().unwrap().wait().unwrap();
            assert_eq!(exit.status, ExitStatus::Signaled(15), "{name}: its own death by SIGTERM");
            let mut child = session.command(HELPER).args(["sleep", "60000"]).spawn().unwrap();
            child.kill().unwrap();
            assert_eq!(child.wait().unwrap().status, ExitStatus::Signaled(9), "{name}: kill");
            let mut child = session.command(HELPER).args(["sleep", "60000"]).spawn().unwrap();
            child.signal(10).unwrap(); // SIGUSR1's default ends it
            assert_eq!(child.wait().unwrap().status, ExitStatus::Signaled(10), "{name}: SIGUSR1");
            let mut child = session.command(HELPER).args(["sleep", "60000"]).spawn().unwrap();
            let exit = child.stop(Duration::from_secs(5)).unwrap();
            assert_eq!(exit.status, ExitStatus::Signaled(15), "{name}: stop asks with SIGTERM");
            let err = session.command("surely-no-such-program-here").spawn().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{name}: {err}");
            let err = session.command(HELPER).current_dir("/surely/not/a/dir").spawn().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}: {err}");
            // Still usable.
            let exit = session.command(HELPER).args(["exit", "7"]).spawn().unwrap().wait().unwrap();
            assert_eq!(exit.status, ExitStatus::Exited(7), "{name}: after the failures");
            session.close().unwrap();
        });
    }
}

/// 200 programs from 8 threads at once through one session, each
/// byte-exact with its exact code.
#[test]
fn two_hundred_programs_from_eight_threads() {
    let _g = fd_lock();
    for launcher in launchers("session: 200 programs") {
        let name = launcher.name();
        bounded(Duration::from_secs(180), "200 programs", move || {
            two_hundred_echoes_from_eight_threads(open(&launcher), &name);
        });
    }
}

/// The caller killed with SIGKILL (nothing of it runs): every program of
/// its session ends within the grace and 2 s, one that ignores SIGTERM
/// too, and the session's shim exits.
#[test]
fn a_killed_caller_ends_every_program_of_its_session() {
    let _g = fd_lock();
    let grace = Duration::from_millis(500);
    for launcher in launchers("session: the caller killed") {
        let spec = match &launcher {
            Launcher::Direct => "direct".to_string(),
            Launcher::Runuser { user } => format!("runuser:{user}"),
            Launcher::Sudo { user: Some(user), .. } => format!("sudo:{user}"),
            Launcher::Doas { user: Some(user) } => format!("doas:{user}"),
            Launcher::Su { user } => format!("su:{user}"),
            Launcher::Setpriv { user, .. } => format!("setpriv:{user}"),
            Launcher::Pkexec { user: Some(user), .. } => format!("pkexec:{user}"),
            other => panic!("no spec for {other:?}"),
        };
        let (mut caller, pids) = session_caller(&spec, grace, 3);
        assert_eq!(pids.len(), 5, "{spec}: four programs and the session: {pids:?}");
        for &pid in &pids {
            assert!(umbilical_tests::sys::alive(pid), "{spec}: {pid} runs before the caller dies");
        }
        caller.kill().unwrap();
        let _ = caller.wait();
        let killed = Instant::now();
        let limit = grace + Duration::from_secs(2);
        while pids.iter().any(|&p| umbilical_tests::sys::alive(p)) {
            let left: Vec<u32> = pids.iter().copied().filter(|&p| umbilical_tests::sys::alive(p)).collect();
            assert!(killed.elapsed() < limit, "{spec}: {left:?} outlived the killed caller by {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Dropping the session ends its running programs (SIGTERM), even those
/// whose `Child` the caller still holds; closing it waits for that.
#[test]
fn a_dropped_session_ends_its_programs() {
    let _g = fd_lock();
    for launcher in launchers("session: dropped") {
        let name = launcher.name();
        bounded(LIMIT, "dropped", move || {
            let session = open(&launcher);
            let shim = session.pid().unwrap();
            let mut held = session.command(HELPER).args(["sleep", "60000"]).spawn().unwrap();
            let let_go = session.command(HELPER).args(["sleep", "60000"]).spawn().unwrap();
            let let_go_pid = let_go.id().unwrap();
            drop(let_go); // no kill on drop: it runs on, for now
            assert!(umbilical_tests::sys::alive(let_go_pid), "{name}: a dropped child runs on");
            let dropped = Instant::now();
            drop(session);
            let exit = held.wait_timeout(Duration::from_secs(4)).unwrap().expect("the held program ended");
            assert_eq!(exit.status, ExitStatus::Signaled(15), "{name}: ended by SIGTERM");
            while umbilical_tests::sys::alive(let_go_pid) || umbilical_tests::sys::alive(shim) {
                assert!(dropped.elapsed() < Duration::from_secs(4), "{name}: the session outlived its drop");
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }
}

/// After a close, an idle timeout or a drop, a command of the session is
/// a clear error; the session's rendezvous is gone while it is open, and
/// nothing of it is left in /tmp.
#[test]
fn closed_idle_and_dropped_sessions_refuse_clearly() {
    let _g = fd_lock();
    for launcher in launchers("session: closed") {
        let name = launcher.name();
        bounded(LIMIT, "closed", move || {
            let before = tmp_entries();
            let session = open(&launcher);
            assert_eq!(tmp_entries(), before, "{name}: the rendezvous is gone once the session is open");
            let cmd = session.command(HELPER);
            session.close().unwrap();
            let err = cmd.spawn().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::SessionClosed, "{name}: {err}");

            let session = Session::builder(launcher.clone())
                .shim_path(HELPER)
                .idle_timeout(Duration::from_millis(300))
                .open()
                .unwrap();
            // A program running is no idleness.
            let exit = session.command(HELPER).args(["sleep", "1500"]).spawn().unwrap().wait().unwrap();
            assert!(exit.success(), "{name}: a program longer than the idle timeout ran to its end");
            assert!(session.is_open(), "{name}: open right after a program");
            let idle_from = Instant::now();
            while session.is_open() {
                assert!(idle_from.elapsed() < Duration::from_secs(5), "{name}: the idle timeout did not close it");
                std::thread::sleep(Duration::from_millis(20));
            }
            let err = session.command(HELPER).spawn().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::SessionClosed, "{name}: {err}");
            assert!(err.to_string().contains("idle"), "{name}: says why: {err}");
            drop(session);
            assert_eq!(tmp_entries(), before, "{name}: nothing left in /tmp");
        });
    }
}

/// The `/tmp/umbilical-*` entries.
fn tmp_entries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("umbilical-"))
        .collect();
    v.sort();
    v
}

/// A session refuses what it cannot carry: a launcher that runs the
/// program elsewhere, and another launcher set on one of its commands.
#[test]
fn a_session_goes_through_local_launchers_only() {
    let ssh = Launcher::Ssh { destination: "127.0.0.1".into(), port: None, options: vec![] };
    let err = Session::builder(ssh).shim_path(HELPER).open().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("ssh"), "{err}");
    let session = open(&Launcher::Direct);
    let err =
        session.command(HELPER).launcher(Launcher::Sudo { user: None, non_interactive: true }).spawn().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    session.close().unwrap();
}

/// The async API: 200 programs through one session on a `current_thread`
/// runtime, byte-exact.
#[test]
fn two_hundred_async_programs_on_one_thread() {
    let _g = fd_lock();
    for launcher in launchers("session: async") {
        let name = launcher.name();
        bounded(Duration::from_secs(180), "async", move || {
            let session = open(&launcher);
            two_hundred_async_echoes(&session, &name);
            session.close().unwrap();
        });
    }
}

/// Once open, the session has no endpoint: the session's shim holds no
/// listening socket and no socket with a name (in the filesystem or the
/// abstract namespace); its link is a connected pair. A same-user or
/// target-user process has nothing to connect to.
#[cfg(target_os = "linux")]
#[test]
fn an_open_session_has_no_endpoint() {
    let _g = fd_lock();
    for launcher in launchers("session: no endpoint") {
        let name = launcher.name();
        bounded(LIMIT, "no endpoint", move || {
            let session = open(&launcher);
            let pid = session.pid().unwrap();
            // The running program's own control stream is there too.
            let mut child = session.command(HELPER).args(["sleep", "60000"]).spawn().unwrap();
            let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|t| {
                    t.to_string_lossy().strip_prefix("socket:[").map(|i| i.trim_end_matches(']').to_string())
                })
                .collect();
            assert!(inodes.len() >= 2, "{name}: the session's link and the program's control stream: {inodes:?}");
            // /proc/net/unix: Num RefCount Protocol Flags Type St Inode [Path]
            let table = std::fs::read_to_string("/proc/net/unix").unwrap();
            for line in table.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() < 7 || !inodes.iter().any(|i| i == fields[6]) {
                    continue;
                }
                let listening = u32::from_str_radix(fields[3], 16).unwrap() & 0x0001_0000 != 0;
                assert!(!listening, "{name}: the session's shim listens: {line}");
                assert!(fields.len() == 7, "{name}: a socket of the session has a name: {line}");
            }
            child.kill().unwrap();
            child.wait().unwrap();
            session.close().unwrap();
        });
    }
}

/// A session's command takes the options a command of its own takes:
/// environment, working directory, stderr modes, channel kinds, process
/// group, kill on drop.
#[test]
fn a_sessions_command_takes_every_option() {
    let _g = fd_lock();
    for launcher in launchers("session: options") {
        let name = launcher.name();
        bounded(LIMIT, "options", move || {
            let session = open(&launcher);
            let out = output_of(
                session.command(HELPER).args(["env", "UMB_SESSION_VAR"]).env("UMB_SESSION_VAR", "v 1").spawn().unwrap(),
            );
            assert_eq!(out.trim(), "v 1", "{name}: env");
            let out = output_of(session.command(HELPER).args(["env", "PATH"]).env_clear().spawn().unwrap());
            assert_eq!(out.trim(), "<unset>", "{name}: env_clear");
            let out = output_of(session.command(HELPER).arg("cwd").current_dir("/").spawn().unwrap());
            assert_eq!(out.trim(), "/", "{name}: current_dir");
            for kind in kinds() {
                let payload = pattern(100_000, 5);
                let mut child = session.command(HELPER).arg("echo").channel_kind(kind).spawn().unwrap();
                let got = round_trip(child.take_channel().unwrap(), payload.clone(), vec![7000]);
                assert!(got == payload, "{name}: {kind:?}");
                assert!(child.wait().unwrap().success());
            }
            let mut child = session.command(HELPER).args(["stderr", "to-err"]).stderr(Stderr::Piped).spawn().unwrap();
            let mut err = String::new();
            child.take_stderr().unwrap().read_to_string(&mut err).unwrap();
            assert_eq!(err, "to-err", "{name}: stderr piped");
            assert_eq!(output_of(child), "out", "{name}: stdout beside it");
            let merged = session.command(HELPER).args(["stderr", "to-err"]).stderr(Stderr::Merge).spawn().unwrap();
            assert_eq!(output_of(merged), "to-errout", "{name}: stderr merged");
            let null = session.command(HELPER).args(["stderr", "to-err"]).stderr(Stderr::Null).spawn().unwrap();
            assert_eq!(output_of(null), "out", "{name}: stderr to null");
            // A process group: the kill reaches the program's children too.
            let mut child = session
                .command("sh")
                .args(["-c", &format!("'{HELPER}' sleep 60000 & echo $!; wait")])
                .process_group(true)
                .spawn()
                .unwrap();
            let mut channel = child.take_channel().unwrap();
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while channel.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
                line.push(byte[0]);
            }
            let grandchild: u32 = String::from_utf8(line).unwrap().parse().unwrap();
            child.kill().unwrap();
            child.wait().unwrap();
            let killed = Instant::now();
            while umbilical_tests::sys::alive(grandchild) {
                assert!(killed.elapsed() < Duration::from_secs(5), "{name}: the group kill missed the grandchild");
                std::thread::sleep(Duration::from_millis(10));
            }
            // Kill on drop.
            let child = session.command(HELPER).args(["sleep", "60000"]).kill_on_drop(true).spawn().unwrap();
            let pid = child.id().unwrap();
            drop(child);
            let dropped = Instant::now();
            while umbilical_tests::sys::alive(pid) {
                assert!(dropped.elapsed() < Duration::from_secs(5), "{name}: kill_on_drop left it running");
                std::thread::sleep(Duration::from_millis(10));
            }
            session.close().unwrap();
        });
    }
}
