//! Sessions on Windows (under Wine in CI), directly and through UAC
//! elevation (`RunAs`, one consent for the whole session): each program
//! connects back on a rendezvous of its own and opens its channel's pipes
//! by name; half-close, exact 32-bit codes, kills, `NotFound`, threads,
//! the session's end with its caller. The helper doubles as the shim.

#![cfg(windows)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use umbilical::{Detection, ErrorKind, ExitStatus, Launcher, Session, Stderr};
use umbilical_tests::sys::alive;

fn launchers() -> [Launcher; 2] {
    [Launcher::Direct, Launcher::RunAs]
}

fn open(launcher: &Launcher) -> Session {
    Session::builder(launcher.clone())
        .shim_path(HELPER)
        .caller_gone_grace(Duration::from_secs(1))
        .open()
        .unwrap_or_else(|e| panic!("{}: open: {e}", launcher.name()))
}

/// One elevation, twenty programs: a 70 KB echo with half-close and an
/// exact code each, a 32-bit one among them.
#[test]
fn twenty_programs_through_one_elevation() {
    for launcher in launchers() {
        let name = launcher.name();
        bounded(Duration::from_secs(180), "twenty programs", move || {
            let session = open(&launcher);
            for i in 0..20u32 {
                let code = if i == 19 { 0xC000_0005 } else { i };
                let payload = pattern(70 * 1024, u64::from(i));
                let mut child = session.command(HELPER).args(["echo-exit", &code.to_string()]).spawn().unwrap();
                let out = round_trip(child.take_channel().unwrap(), payload.clone(), vec![4096, 333]);
                assert!(out == payload, "{name}: program {i} byte-exact ({} of {} bytes)", out.len(), payload.len());
                let exit = child.wait().unwrap();
                assert_eq!(exit.status, ExitStatus::Exited(code as i32), "{name}: program {i}'s exact code");
                assert_eq!(exit.detection, Detection::Shim);
            }
            session.close().unwrap();
        });
    }
}

/// Kills, a missing program (the session goes on), stderr piped.
#[test]
fn kills_a_missing_program_and_stderr() {
    for launcher in launchers() {
        let name = launcher.name();
        bounded(Duration::from_secs(120), "kills", move || {
            let session = open(&launcher);
            let mut child = session.command(HELPER).args(["sleep", "60000"]).spawn().unwrap();
            child.kill().unwrap();
            let exit = child.wait_timeout(Duration::from_secs(20)).unwrap().expect("the kill ends it");
            assert_eq!(exit.status, ExitStatus::Exited(1), "{name}: terminated");
            let err = session.command("surely-no-such-program-here").spawn().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{name}: {err}");
            let mut cmd = session.command(HELPER);
            cmd.args(["stderr", "to-stderr"]).stderr(Stderr::Piped);
            let mut child = cmd.spawn().unwrap();
            let mut err = String::new();
            child.take_stderr().unwrap().read_to_string(&mut err).unwrap();
            assert_eq!(err, "to-stderr", "{name}: stderr piped");
            assert!(child.wait().unwrap().success());
            let exit = session.command(HELPER).args(["exit", "7"]).spawn().unwrap().wait().unwrap();
            assert_eq!(exit.status, ExitStatus::Exited(7), "{name}: still usable");
            session.close().unwrap();
        });
    }
}

/// 200 programs from 8 threads at once through one session, byte-exact.
#[test]
fn two_hundred_programs_from_eight_threads() {
    for launcher in launchers() {
        let name = launcher.name();
        bounded(Duration::from_secs(300), "200 programs", move || {
            two_hundred_echoes_from_eight_threads(open(&launcher), &name);
        });
    }
}

/// A dropped session ends its running programs; a command of a closed
/// session is a clear error.
#[test]
fn a_dropped_session_ends_its_programs_and_a_closed_one_refuses() {
    for launcher in launchers() {
        let name = launcher.name();
        bounded(Duration::from_secs(120), "dropped", move || {
            let session = open(&launcher);
            let child = session.command(HELPER).args(["sleep", "60000"]).spawn().unwrap();
            let pid = child.id().unwrap();
            drop(child);
            drop(session);
            let dropped = Instant::now();
            while alive(pid) {
                assert!(dropped.elapsed() < Duration::from_secs(10), "{name}: a program outlived its session");
                std::thread::sleep(Duration::from_millis(20));
            }
            let session = open(&launcher);
            let cmd = session.command(HELPER);
            session.close().unwrap();
            assert_eq!(cmd.spawn().unwrap_err().kind(), ErrorKind::SessionClosed, "{name}");
        });
    }
}

/// The caller killed (`TerminateProcess`: nothing of it runs): every
/// program of its session ends within the grace and a few seconds.
#[test]
fn a_killed_caller_ends_every_program_of_its_session() {
    for spec in ["direct", "runas"] {
        let (mut caller, pids) = session_caller(spec, Duration::from_millis(500), 3);
        assert_eq!(pids.len(), 4, "{spec}: three programs and the session: {pids:?}");
        caller.kill().unwrap();
        let _ = caller.wait();
        let killed = Instant::now();
        while pids.iter().any(|&p| alive(p)) {
            assert!(killed.elapsed() < Duration::from_secs(10), "{spec}: a program outlived its killed caller");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The async API: 200 programs through one session on a `current_thread`
/// runtime, byte-exact.
#[test]
fn two_hundred_async_programs_on_one_thread() {
    for launcher in launchers() {
        let name = launcher.name();
        bounded(Duration::from_secs(300), "async", move || {
            let session = open(&launcher);
            two_hundred_async_echoes(&session, &name);
            session.close().unwrap();
        });
    }
}
