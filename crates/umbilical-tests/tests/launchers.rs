//! Through real launchers (sudo, doas, runuser, su, ssh to 127.0.0.1): the
//! same channel, half-close and exit status. Needs `scripts/launchers.sh
//! start` (as root), which provides an unprivileged user and an sshd on
//! loopback; without them each test prints a visible SKIP.

#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use umbilical::{Capabilities, Command, Detection, ExitStatus, Launcher};

/// The launchers this machine can run, with the test user as target.
fn launchers(test: &str) -> Vec<Launcher> {
    let Ok(user) = std::env::var("UMBILICAL_TEST_USER") else {
        skip(test, "UMBILICAL_TEST_USER is not set (run `scripts/launchers.sh start` as root)");
        return Vec::new();
    };
    let list = user_launchers(&user, test);
    let why = container_engine_skip_reason().unwrap_or_else(|| {
        "these tests run the helper, a dynamically linked program the busybox test image cannot run; \
         container exec is tested for real in containers.rs with the image's own programs"
            .into()
    });
    skip(&format!("{test} via docker/podman/kubectl"), &why);
    list
}

fn through(launcher: &Launcher, args: &[&str]) -> Command {
    let mut cmd = helper(args);
    cmd.launcher(launcher.clone());
    cmd
}

#[test]
fn sixteen_mib_round_trip_with_half_close() {
    for l in launchers("16 MiB round trip") {
        let payload = pattern(16 << 20, 11);
        let expected = payload.clone();
        let name = l.name();
        let out = bounded(LIMIT, "launcher round trip", move || {
            let mut child = through(&l, &["echo"]).spawn().unwrap();
            let out = round_trip(child.take_channel().unwrap(), payload, vec![1 << 20, 4097]);
            let exit = child.wait().unwrap();
            assert_eq!(exit.status, ExitStatus::Exited(0), "{}", l.name());
            out
        });
        assert!(out == expected, "{name}: byte-exact");
    }
}

#[test]
fn exit_codes_and_signals() {
    for l in launchers("exit codes") {
        for code in [0, 3] {
            let exit = through(&l, &["exit", &code.to_string()]).spawn().unwrap().wait().unwrap();
            assert_eq!(
                exit,
                umbilical::Exit { status: ExitStatus::Exited(code), detection: Detection::Process },
                "{}",
                l.name()
            );
        }
        let exit = through(&l, &["signal", "15"]).spawn().unwrap().wait().unwrap();
        // sudo re-raises the signal and pkexec execs: exact. doas (with PAM), runuser, su and
        // the remote shell behind ssh exit 128+N. Exact statuses through
        // every launcher are the shim's job.
        let expected = match l {
            // pkexec execs in place: the program's own death.
            // setpriv execs in place too.
            Launcher::Sudo { .. } | Launcher::Pkexec { .. } | Launcher::Setpriv { .. } => ExitStatus::Signaled(15),
            _ => ExitStatus::Exited(128 + 15),
        };
        assert_eq!(exit.status, expected, "{}", l.name());
    }
}

#[test]
fn the_program_runs_as_the_target_user_with_its_environment() {
    let Ok(user) = std::env::var("UMBILICAL_TEST_USER") else {
        skip("target user", "UMBILICAL_TEST_USER is not set");
        return;
    };
    let uid = std::process::Command::new("id").args(["-u", &user]).output().unwrap();
    let uid = String::from_utf8(uid.stdout).unwrap().trim().to_string();
    for l in launchers("target user") {
        let mut cmd = Command::new("id");
        cmd.arg("-u").launcher(l.clone());
        assert_eq!(output_of(cmd.spawn().unwrap()).trim(), uid, "{}", l.name());
        // Environment changes survive launchers that reset the environment.
        let out = output_of(through(&l, &["env", "UMB_THROUGH"]).env("UMB_THROUGH", "it's $here").spawn().unwrap());
        assert_eq!(out.trim(), "it's $here", "{}", l.name());
    }
}

#[test]
fn a_missing_launcher_is_launcher_not_found() {
    let mut cmd = helper(&["exit", "0"]);
    cmd.launcher(Launcher::Custom {
        prefix: vec!["umbilical-no-such-launcher".into()],
        capabilities: Capabilities { keeps_stdio: true, returns_status: true, ..Default::default() },
    });
    let err = cmd.spawn().unwrap_err();
    assert_eq!(err.kind(), umbilical::ErrorKind::LauncherNotFound, "{err}");
    assert!(err.to_string().contains("umbilical-no-such-launcher"), "{err}");
}

/// The seed scenario through a custom launcher that detaches at once:
/// `Auto` never takes the launcher's exit for the program's.
#[test]
fn a_detaching_custom_launcher_is_waited_through() {
    let detaching = setsid_detaching(true);
    let start = Instant::now();
    let mut child = helper(&["echo-after", "400"]).launcher(detaching.clone()).spawn().unwrap();
    let channel = child.take_channel().unwrap();
    let (out, exit) = bounded(LIMIT, "detaching launcher", move || {
        let reader = std::thread::spawn(move || round_trip(channel, b"through setsid".to_vec(), vec![3]));
        let exit = child.wait().unwrap();
        (reader.join().unwrap(), exit)
    });
    assert_eq!(out, b"through setsid");
    assert_eq!(exit.detection, Detection::Lifeline);
    assert!(start.elapsed() >= Duration::from_millis(400), "waited for the program, not setsid");
    // Asking for the launcher's own exit is refused.
    let err = helper(&["exit", "0"])
        .launcher(detaching)
        .exit_detection(umbilical::ExitDetection::Process)
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), umbilical::ErrorKind::InvalidInput, "{err}");
}

/// Arguments that a shell would otherwise interpret arrive intact through
/// the launchers that go through one (su, ssh).
#[test]
fn shell_syntax_in_arguments_is_inert() {
    for l in launchers("shell quoting").into_iter().filter(|l| l.capabilities().via_shell) {
        let tricky = ["$(touch /tmp/umbilical-pwned)", "a b", "it's", "`id`", "; exit 9", "*", "\"q\"", ""];
        let out = output_of(through(&l, &["args"]).args(tricky).spawn().unwrap());
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(&lines[..tricky.len()], &tricky[..], "{}", l.name());
        assert!(!std::path::Path::new("/tmp/umbilical-pwned").exists(), "{}: injected", l.name());
    }
}
