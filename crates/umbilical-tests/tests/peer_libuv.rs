//! Scenarios ported from libuv's `test/test-spawn.c` and
//! `test/test-pipe-*.c`, each test naming the one it comes from.

mod common;

use std::io::{ErrorKind as IoKind, Read, Write};

use common::*;
use umbilical::{ErrorKind, ExitStatus};

/// `spawn_fails`: a program that does not exist is an error at spawn,
/// with a kind to match on.
#[test]
fn spawn_fails() {
    let e = umbilical::Command::new("program-that-had-better-not-exist").spawn().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("program-that-had-better-not-exist"), "{e}");
}

/// `spawn_exit_code`: the status of a program that exits with a code.
#[test]
fn spawn_exit_code() {
    let mut child = helper(&["exit", "1"]).spawn().unwrap();
    assert_eq!(child.wait().unwrap().status, ExitStatus::Exited(1));
}

/// `spawn_stdin` and `spawn_stdout`: a write, EOF, and the echo back.
#[test]
fn spawn_stdin_stdout() {
    for kind in kinds() {
        assert_eq!(echo_once(kind, b"hello-from-spawn_stdin"), b"hello-from-spawn_stdin", "{kind:?}");
    }
}

/// `spawn_and_kill` and `kill`: the status says how it ended.
#[test]
fn spawn_and_kill() {
    let mut child = helper(&["sleep", "30000"]).spawn().unwrap();
    child.kill().unwrap();
    let exit = child.wait().unwrap();
    #[cfg(unix)]
    assert_eq!(exit.signal(), Some(9));
    #[cfg(windows)]
    assert_eq!(exit.code(), Some(1));
}

/// `spawn_and_kill_with_std`: a program killed while we write to it. The
/// blocked write ends with `BrokenPipe` (with one socket per channel it used
/// to end with `ConnectionReset`), and later writes too.
#[test]
fn kill_while_writing() {
    for kind in kinds() {
        let mut child = helper(&["sleep", "30000"]).channel_kind(kind).spawn().unwrap();
        let (_reader, writer) = child.take_channel().unwrap().split();
        let feed = write_in_thread(writer, vec![b'k'; 16 << 20]);
        // The write cannot finish: nobody reads. Kill while it is blocked.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!feed.is_finished(), "{kind:?}: 16 MiB fitted in a buffer nobody reads?");
        child.kill().unwrap();
        child.wait().unwrap();
        let (mut writer, written) = join_within(feed, LIMIT, "a write blocked when the program was killed");
        assert_eq!(written.unwrap_err().kind(), IoKind::BrokenPipe, "{kind:?}");
        assert_eq!(writer.write(b"more").unwrap_err().kind(), IoKind::BrokenPipe, "{kind:?}");
    }
}

/// `spawn_preserve_env` and `spawn_empty_env`: the environment passes
/// through untouched, or is empty when cleared.
#[test]
fn preserve_and_empty_env() {
    // PATH is in every test environment; the helper is named by full path.
    let path = std::env::var("PATH").unwrap();
    let out = output_of(helper(&["env", "PATH"]).spawn().unwrap());
    assert_eq!(out.trim_end(), path);
    let out = output_of(helper(&["env", "PATH"]).env_clear().spawn().unwrap());
    assert_eq!(out.trim_end(), "<unset>");
}

/// `spawn_quoted_path`: a program whose path has spaces in it.
#[test]
fn spawn_quoted_path() {
    let dir = scratch_dir("libuv quoted path");
    let tool = helper_copy(&dir, &exe_name("a tool"));
    let out = output_of(umbilical::Command::new(&tool).args(["args", "x y"]).spawn().unwrap());
    assert_eq!(out.trim_end(), "x y");
}

/// `spawn_reads_child_path`: a bare name is looked up in the child's
/// `PATH`, not ours.
#[test]
fn spawn_reads_child_path() {
    let dir = scratch_dir("libuv-child-path");
    helper_copy(&dir, &exe_name("umbilical-child-path-tool"));
    let e = umbilical::Command::new("umbilical-child-path-tool").spawn().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "not on our PATH");
    let child =
        umbilical::Command::new("umbilical-child-path-tool").env("PATH", &dir).args(["args", "found"]).spawn().unwrap();
    assert_eq!(output_of(child).trim_end(), "found");
}

/// `pipe_close_stdout_read_stdin` turned to our side: the program closes
/// its stdin and keeps running. With a channel per direction (Socket,
/// Pipes) our writes fail with `BrokenPipe` at once; with `SharedSocket`,
/// whose one socket stays open as the program's stdout, writes block until
/// the program exits, as its docs say (issue #7, item 5).
#[test]
fn program_closes_stdin_and_keeps_running() {
    for kind in kinds() {
        let mut child = helper(&["close-stdin", "1500"]).channel_kind(kind).spawn().unwrap();
        let (mut reader, writer) = child.take_channel().unwrap().split();
        let mut closed = [0u8; 6];
        reader.read_exact(&mut closed).unwrap();
        assert_eq!(&closed, b"closed");
        let feed = write_in_thread(writer, vec![b'x'; 16 << 20]);
        if kind == umbilical::ChannelKind::SharedSocket {
            std::thread::sleep(std::time::Duration::from_millis(300));
            assert!(!feed.is_finished(), "SharedSocket: the write ended while the program still ran");
            assert!(child.try_wait().unwrap().is_none());
        }
        let (_w, written) = join_within(feed, LIMIT, "writing to a program that closed its stdin");
        assert_eq!(written.unwrap_err().kind(), IoKind::BrokenPipe, "{kind:?}");
        if kind != umbilical::ChannelKind::SharedSocket {
            assert!(child.try_wait().unwrap().is_none(), "{kind:?}: the write failed only because the program ended");
        }
        assert!(bounded(LIMIT, "wait", move || child.wait().unwrap()).success());
    }
}
