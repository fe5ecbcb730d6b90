//! The Windows shim, directly and through UAC elevation (`ShellExecuteExW`
//! "runas", which Wine carries out without a prompt): the channel's pipes
//! opened by name, half-close, exact 32-bit exit codes, kill across the
//! boundary and refusals (the stranger at the rendezvous has a test binary
//! of its own: `shim_windows_stranger.rs`). The helper program doubles as
//! the shim.

#![cfg(windows)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use umbilical::{Command, Detection, ErrorKind, Exit, ExitStatus, Launcher, Stderr};

/// The two ways to reach the shim on Windows.
fn launchers() -> [Launcher; 2] {
    [Launcher::Direct, Launcher::RunAs]
}

#[test]
fn four_mib_round_trip_with_half_close() {
    for l in launchers() {
        let name = l.name();
        let mut child = shimmed(&l, &["echo"]).spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(child.detection(), Detection::Shim, "{name}");
        let channel = child.take_channel().unwrap();
        let payload = pattern(4 << 20, 11);
        let expected = payload.clone();
        let out = bounded(LIMIT, "round trip through the shim", move || {
            round_trip(channel, payload, vec![1, 4096, 65536, 70001])
        });
        assert!(out == expected, "{name}: {} bytes back, {} sent", out.len(), expected.len());
        let exit = child.wait().unwrap();
        assert_eq!(exit, Exit { status: ExitStatus::Exited(0), detection: Detection::Shim }, "{name}");
    }
}

#[test]
fn exit_codes_are_exact_including_32_bit_ones() {
    for l in launchers() {
        for code in [0u32, 3, 255, 256, 0xC000_0005] {
            let mut child = shimmed(&l, &["exit", &code.to_string()]).spawn().unwrap();
            let exit = child.wait().unwrap();
            assert_eq!(exit.status, ExitStatus::Exited(code as i32), "{} exit {code:#x}", l.name());
            assert_eq!(exit.detection, Detection::Shim);
        }
    }
}

#[test]
fn the_program_gets_its_environment_directory_and_arguments() {
    let dir = std::env::temp_dir();
    for l in launchers() {
        let name = l.name();
        let mut cmd = shimmed(&l, &["env", "UMBILICAL_SHIM_VAR"]);
        cmd.env("UMBILICAL_SHIM_VAR", "value with spaces and \u{e9}");
        assert_eq!(output_of(cmd.spawn().unwrap()).trim(), "value with spaces and \u{e9}", "{name}: env");
        let mut cmd = shimmed(&l, &["cwd"]);
        cmd.current_dir(&dir);
        let cwd = output_of(cmd.spawn().unwrap());
        let same = std::fs::canonicalize(cwd.trim()).unwrap() == std::fs::canonicalize(&dir).unwrap();
        assert!(same, "{name}: cwd {cwd:?}, wanted {}", dir.display());
        let tricky = ["a b", "quote\"d", "back\\\\", "", "tab\there"];
        let mut args = vec!["args"];
        args.extend(tricky);
        let out = output_of(shimmed(&l, &args).spawn().unwrap());
        assert_eq!(out.lines().collect::<Vec<_>>(), tricky, "{name}: args");
    }
}

#[test]
fn stderr_piped_merged_and_null() {
    for l in launchers() {
        let name = l.name();
        let mut cmd = shimmed(&l, &["stderr", "to-stderr"]);
        cmd.stderr(Stderr::Piped);
        let mut child = cmd.spawn().unwrap();
        let mut err = String::new();
        child.stderr().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(err, "to-stderr", "{name}: piped");
        assert_eq!(output_of(child), "out");
        let mut cmd = shimmed(&l, &["stderr", "merged"]);
        cmd.stderr(Stderr::Merge);
        let out = output_of(cmd.spawn().unwrap());
        assert!(out.contains("merged") && out.contains("out"), "{name}: merge gave {out:?}");
        let mut cmd = shimmed(&l, &["stderr", "dropped"]);
        cmd.stderr(Stderr::Null);
        assert_eq!(output_of(cmd.spawn().unwrap()), "out", "{name}: null");
    }
}

#[test]
fn kill_reaches_the_program_through_the_shim() {
    for l in launchers() {
        let mut child = shimmed(&l, &["sleep", "60000"]).spawn().unwrap();
        let start = Instant::now();
        child.kill().unwrap();
        let exit = child.wait_timeout(Duration::from_secs(20)).unwrap().expect("the kill ends the program");
        assert_eq!(exit, Exit { status: ExitStatus::Exited(1), detection: Detection::Shim }, "{}", l.name());
        assert!(start.elapsed() < Duration::from_secs(20));
    }
}

#[test]
fn missing_program_and_bad_directory_are_told_apart() {
    for l in launchers() {
        let name = l.name();
        let err = Command::new("umbilical-no-such-program")
            .launcher(l.clone())
            .shim(true)
            .shim_path(HELPER)
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{name}: {err}");
        let mut cmd = shimmed(&l, &["echo"]);
        cmd.current_dir(r"C:\umbilical\no\such\directory");
        let err = cmd.spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}: {err}");
        let err = helper(&["echo"]).launcher(l.clone()).shim(true).shim_path(r"C:\no\such\shim.exe").spawn();
        assert_eq!(err.unwrap_err().kind(), ErrorKind::ShimFailed, "{name}: a missing shim");
    }
}

#[test]
fn runas_always_goes_through_the_shim() {
    // Without .shim(true): elevation passes no handles, so the shim is the
    // only way; it is taken without being asked for.
    let mut cmd = helper(&["exit", "9"]);
    cmd.launcher(Launcher::RunAs).shim_path(HELPER);
    let exit = cmd.spawn().unwrap().wait().unwrap();
    assert_eq!(exit, Exit { status: ExitStatus::Exited(9), detection: Detection::Shim });
}

#[test]
fn the_channel_works_from_two_threads_through_runas() {
    let mut child = shimmed(&Launcher::RunAs, &["echo"]).spawn().unwrap();
    let (mut r, mut w) = child.take_channel().unwrap().split();
    let writer = std::thread::spawn(move || {
        for i in 0..100u32 {
            w.write_all(&i.to_le_bytes()).unwrap();
        }
        w.shutdown().unwrap();
    });
    let mut out = Vec::new();
    bounded(LIMIT, "reading through runas", move || {
        r.read_to_end(&mut out).unwrap();
        out
    })
    .chunks(4)
    .enumerate()
    .for_each(|(i, c)| assert_eq!(c, (i as u32).to_le_bytes()));
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
}

/// The shim dies while the program runs: `wait()` neither hangs nor
/// returns early, because the parent opened its own handle on the program
/// (`OpenProcess`, while the shim still held the program) and waits on it;
/// the status is then lost (`Detection::ShimLost`).
#[test]
fn the_end_is_seen_through_our_own_handle_when_the_shim_dies() {
    let mut child = shimmed(&Launcher::Direct, &["sleep", "1500"]).spawn().unwrap();
    let program = child.id().unwrap();
    let shim = umbilical_tests::sys::parent_pid(program).expect("the program's parent");
    assert_ne!(shim, std::process::id(), "the shim, not this process, started the program");
    let start = Instant::now();
    assert!(umbilical_tests::sys::terminate(shim), "terminate the shim");
    let exit = bounded(LIMIT, "wait after the shim died", move || child.wait().unwrap());
    // Lost, not unknown by design: told apart from lifeline/channel ends.
    assert_eq!(exit, Exit { status: ExitStatus::Unknown, detection: Detection::ShimLost });
    assert!(exit.status_lost() && exit.to_string().contains("status lost"), "{exit}");
    assert!(start.elapsed() >= Duration::from_millis(1000), "returned before the program ended: {:?}", start.elapsed());
}

/// Elevation starts the shim in the system directory; without
/// `current_dir` the program still runs where the caller is, as with a
/// direct spawn: the caller's directory travels as the default. (Wine's
/// runas keeps the directory anyway, so under Wine this guards the
/// behaviour rather than proving it; on Windows it does.)
#[test]
fn without_current_dir_the_program_runs_in_the_callers_directory() {
    let here = std::env::current_dir().unwrap();
    for l in launchers() {
        let out = output_of(shimmed(&l, &["cwd"]).spawn().unwrap());
        let same = std::fs::canonicalize(out.trim()).unwrap() == std::fs::canonicalize(&here).unwrap();
        assert!(same, "{}: cwd {out:?}, the caller's is {}", l.name(), here.display());
    }
}

/// `kill_on_drop(true)` ends the program when the child is dropped,
/// directly and elevated; without it a dropped child is let go (the shim
/// was told to detach before the link closed) and runs on.
#[test]
fn dropping_kills_or_lets_go_as_asked() {
    use umbilical_tests::sys::{alive, terminate};
    for l in launchers() {
        let mut cmd = shimmed(&l, &["sleep", "30000"]);
        cmd.kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        let start = Instant::now();
        while alive(pid) {
            assert!(start.elapsed() < Duration::from_secs(10), "{}: kill_on_drop left pid {pid} running", l.name());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let child = shimmed(&Launcher::Direct, &["sleep", "30000"]).spawn().unwrap();
    let pid = child.id().unwrap();
    drop(child);
    std::thread::sleep(Duration::from_millis(800));
    let ran_on = alive(pid);
    terminate(pid);
    assert!(ran_on, "a dropped child (no kill_on_drop) was ended by the shim; it should run on");
}

/// An elevated program's stderr, with ours inherited, reaches our stderr
/// whole, and before `wait()` returns, blocking and async: a host that
/// exits right after (as a CLI does) loses none of it. 1 MiB, so the
/// relay's pipe fills and drains many times.
#[test]
fn elevated_stderr_is_relayed_whole_before_wait_returns() {
    let n = 1 << 20;
    for mode in ["blocking", "async"] {
        let out = bounded(LIMIT, "relay-stderr", move || {
            std::process::Command::new(HELPER)
                .args(["relay-stderr", &n.to_string(), mode])
                .output()
                .expect("run the helper")
        });
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {text}");
        assert_eq!(text.trim(), "out=out status=Exited(0)", "{mode}");
        assert_eq!(out.stderr.len(), n, "{mode}: relayed stderr bytes");
        assert!(out.stderr.iter().all(|&b| b == b'e'), "{mode}: relayed stderr content");
    }
}
