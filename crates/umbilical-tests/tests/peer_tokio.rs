//! Scenarios ported from tokio's `tests/process_*.rs`, each test naming
//! the one it comes from. (Blocking API: the scenarios are about the
//! process and its pipes, not the runtime.)

mod common;

use std::io::{ErrorKind as IoKind, Read, Write};
#[cfg(unix)]
use std::time::Duration;

use common::*;

/// `process_issue_2174`: writing to a program that has exited must fail,
/// not hang, however many writes follow.
#[test]
fn issue_2174_writes_after_exit() {
    for kind in kinds() {
        let mut child = helper(&["exit", "0"]).channel_kind(kind).spawn().unwrap();
        assert!(child.wait().unwrap().success());
        let ch = child.take_channel().unwrap();
        let kinds_seen = bounded(LIMIT, "writes after the exit", move || {
            let chunk = vec![0u8; 64 * 1024];
            let mut w = ch.writer();
            (0..64).map(|_| w.write(&chunk).map_err(|e| e.kind())).collect::<Vec<_>>()
        });
        assert!(
            kinds_seen.iter().all(|r| *r == Err(IoKind::BrokenPipe)),
            "{kind:?}: every write after the exit is BrokenPipe: {kinds_seen:?}"
        );
    }
}

/// `process_issue_42`: many threads spawn, talk and wait at once.
#[test]
fn issue_42_concurrent_spawns() {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..10 {
                    let kind = kinds()[(t + i) % kinds().len()];
                    let mut child = helper(&["echo"]).channel_kind(kind).spawn().unwrap();
                    let msg = format!("thread {t} round {i}");
                    let mut ch = child.take_channel().unwrap();
                    ch.write_all(msg.as_bytes()).unwrap();
                    ch.shutdown_write().unwrap();
                    let mut out = String::new();
                    ch.read_to_string(&mut out).unwrap();
                    assert_eq!(out, msg);
                    assert!(child.wait().unwrap().success());
                }
            })
        })
        .collect();
    for t in threads {
        join_within(t, LIMIT, "concurrent spawns");
    }
}

/// `process_kill_on_drop`, the other way round: umbilical does not kill on
/// drop (like std), yet a dropped `Child` never stays a zombie once the
/// program ends.
#[cfg(unix)]
#[test]
fn drop_early_leaves_no_zombie() {
    let child = helper(&["sleep", "200"]).spawn().unwrap();
    let pid = child.id().unwrap();
    drop(child);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "dropping did not kill");
    let start = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(start.elapsed() < LIMIT, "pid {pid} still there (zombie: {})", is_zombie(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `process_smoke`: the status of `exit 2`, waited twice.
#[test]
fn smoke() {
    let mut child = helper(&["exit", "2"]).spawn().unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(2));
    assert_eq!(child.wait().unwrap(), exit);
    assert_eq!(child.try_wait().unwrap(), Some(exit));
}

/// `process_kill_on_drop::kill_on_drop`: a child dropped with
/// `kill_on_drop(true)` is killed at once (it never gets to print its
/// message from beyond the grave), while a grandchild it disowned (no
/// process group: not ours to kill) runs on and writes to the channel.
#[cfg(unix)]
#[test]
fn kill_on_drop() {
    let script = "
        # Fork another child that won't get killed
        sh -c 'sleep 1; echo child ran' &
        # Await our death
        sleep 5
        echo hello from beyond the grave
    ";
    let mut child = umbilical::Command::new("sh").args(["-c", script]).kill_on_drop(true).spawn().unwrap();
    let mut channel = child.take_channel().unwrap();
    channel.shutdown_write().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(child);
    let out = bounded(LIMIT, "reading after kill_on_drop", move || {
        let mut out = String::new();
        channel.read_to_string(&mut out).unwrap();
        out
    });
    assert_eq!(out, "child ran\n");
}
