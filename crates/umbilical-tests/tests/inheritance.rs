//! Exact inheritance: the program gets fds 0, 1, 2 (and 3 with a lifeline)
//! and nothing else, while other threads spawn at the same moment and a
//! descriptor without close-on-exec is open in the parent.

#![cfg(unix)]

mod common;

use std::io::Read;
use std::os::fd::AsFd;

use common::*;
use umbilical::{ChannelKind, Stderr};

fn run_fds(cmd: &mut umbilical::Command) -> Vec<u32> {
    let mut child = cmd.spawn().expect("spawn fds");
    let mut channel = child.take_channel().unwrap();
    channel.shutdown_write().unwrap();
    let mut out = Vec::new();
    channel.read_to_end(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    parse_fds(&out)
}

/// Opens a descriptor that is deliberately inheritable (no `O_CLOEXEC`),
/// as careless code elsewhere in a process would.
fn leaky_fd() -> std::fs::File {
    let file = std::fs::File::open("/dev/null").unwrap();
    rustix::io::fcntl_setfd(file.as_fd(), rustix::io::FdFlags::empty()).unwrap();
    assert!(!rustix::io::fcntl_getfd(file.as_fd()).unwrap().contains(rustix::io::FdFlags::CLOEXEC));
    file
}

#[test]
fn eight_threads_fifty_spawns_each_get_only_their_descriptors() {
    // Serialised: a leaky descriptor from a parallel test would reach the
    // std-spawned processes here.
    let _g = fd_lock();
    let leak = leaky_fd();
    let leaked = std::os::fd::AsRawFd::as_raw_fd(&leak) as u32;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    let mut cmd = helper(&["fds"]);
                    // Vary the shape across threads: channel kinds, stderr
                    // routes, lifeline, and the fork fallback.
                    cmd.channel_kind(if t % 2 == 0 { ChannelKind::Socket } else { ChannelKind::Pipes });
                    cmd.stderr(match i % 3 {
                        0 => Stderr::Inherit,
                        1 => Stderr::Null,
                        _ => Stderr::Piped,
                    });
                    let lifeline = t % 4 == 1;
                    cmd.lifeline(lifeline);
                    cmd.force_fork_exec(t == 3);
                    let fds = run_fds(&mut cmd);
                    let expected: Vec<u32> = if lifeline { vec![0, 1, 2, 3] } else { vec![0, 1, 2] };
                    assert_eq!(fds, expected, "thread {t} spawn {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a spawning thread failed");
    }
    // The leaky descriptor was open the whole time.
    assert!(rustix::io::fcntl_getfd(leak.as_fd()).is_ok(), "fd {leaked} still open");
}

#[test]
fn merged_stderr_and_lifeline_with_fork_fallback() {
    // Serialised: a leaky descriptor from a parallel test would reach the
    // std-spawned processes here.
    let _g = fd_lock();
    for force in [false, true] {
        let _leak = leaky_fd();
        let fds = run_fds(helper(&["fds"]).stderr(Stderr::Merge).lifeline(true).force_fork_exec(force));
        assert_eq!(fds, vec![0, 1, 2, 3], "force_fork_exec({force})");
    }
}

/// std's `Command` leaks the non-CLOEXEC descriptor: this is the problem the
/// library solves, shown so the test above is known to be able to fail.
#[test]
fn std_command_does_leak_the_same_descriptor() {
    // Serialised: a leaky descriptor from a parallel test would reach the
    // std-spawned processes here.
    let _g = fd_lock();
    let leak = leaky_fd();
    let leaked = std::os::fd::AsRawFd::as_raw_fd(&leak) as u32;
    let out = std::process::Command::new(HELPER).arg("fds").output().unwrap();
    assert!(parse_fds(&out.stdout).contains(&leaked), "std passed fd {leaked} on");
}

/// In a fresh process (only fds 0..=2 open, as for every CLI) the channel's
/// descriptors land on fd 3 and up: the lifeline's number and the first one
/// closed in the child. The wiring must still give the program the right
/// descriptor on each number, and the lifeline must survive the close-from.
#[test]
fn channel_descriptors_on_low_numbers_are_wired_correctly() {
    // Serialised: a leaky descriptor from a parallel test would reach the
    // std-spawned processes here.
    let _g = fd_lock();
    if std::env::var_os("UMBILICAL_LOW_FD_CHILD").is_some() {
        for kind in [ChannelKind::Pipes, ChannelKind::Socket] {
            assert!(std::fs::metadata("/proc/self/fd/3").is_err(), "fd 3 is free before the spawn");
            let mut child = helper(&["echo"]).channel_kind(kind).lifeline(true).spawn().unwrap();
            let out = round_trip(child.take_channel().unwrap(), b"low fds".to_vec(), vec![3]);
            assert_eq!(out, b"low fds", "{kind:?}");
            assert!(child.wait().unwrap().success());
            let fds = run_fds(helper(&["fds"]).channel_kind(kind).lifeline(true));
            assert_eq!(fds, vec![0, 1, 2, 3], "{kind:?}");
        }
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "channel_descriptors_on_low_numbers_are_wired_correctly", "--test-threads=1"])
        .env("UMBILICAL_LOW_FD_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child run failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The program starts with no signal blocked, ignored or caught, whatever
/// the host's state, while signals rain on the spawning thread (the Linux
/// spawn shares the parent's memory until exec: a handler of the host's
/// must never run in it) — and the host's own mask and handlers are as
/// before. The last part ports Rust std's `test_process_mask`: SIGINT
/// blocked in the parent is not blocked in the program. CPython's
/// `test_restore_signals` asks the same of ignored signals (SIGPIPE here,
/// which the Rust runtime ignores in the host).
#[cfg(target_os = "linux")]
#[test]
fn programs_get_default_signals_from_a_busy_host() {
    let out = bounded(LIMIT, "signal-storm", || {
        std::process::Command::new(HELPER).args(["signal-storm", "200"]).output().unwrap()
    });
    assert!(out.status.success(), "the host died: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "spawned=200 clean=200 kept=true handled=true sigint=Signaled(2)",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where a seccomp filter refuses `clone` with `CLONE_VFORK` (as container
/// runtimes' filters may), the refusal is learnt at the first spawn and
/// fork + exec takes over, with the same promises: no stray descriptor,
/// a bad directory told apart, the exact status.
#[cfg(target_os = "linux")]
#[test]
fn fork_takes_over_where_clone_is_refused() {
    let out =
        bounded(LIMIT, "clone-refused", || std::process::Command::new(HELPER).arg("clone-refused").output().unwrap());
    assert!(out.status.success(), "the host died: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "fds=0 1 2 path=fork + close_range + execve cwd=InvalidInput exit=Exited(7)"
    );
}
