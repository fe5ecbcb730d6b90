//! Scenarios ported from Go's `src/os/exec/exec_test.go`, each test naming
//! the one it comes from.
//!
//! Some tests here count this process's descriptors, so every test takes
//! the descriptor lock (`fd_lock`).

mod common;

use std::io::{ErrorKind as IoKind, Read, Write};

use common::*;
use umbilical::{ErrorKind, ExitDetection, ExitStatus, Stderr};

/// `TestEcho`: arguments come back as given.
#[test]
fn echo() {
    let _lock = fd_lock();
    let out = output_of(helper(&["args", "foo", "bar", "baz"]).spawn().unwrap());
    assert_eq!(out.lines().collect::<Vec<_>>(), ["foo", "bar", "baz"]);
}

/// `TestCatStdin` and `TestStdinClose`: input goes through the program
/// unchanged, and closing our side is the program's EOF.
#[test]
fn cat_stdin() {
    let _lock = fd_lock();
    for kind in kinds() {
        assert_eq!(echo_once(kind, b"Input string\nLine 2"), b"Input string\nLine 2", "{kind:?}");
    }
}

/// `TestExitStatus` and `TestExitCode`: the program's own code, exactly.
#[test]
fn exit_status() {
    let _lock = fd_lock();
    for code in [0, 1, 2, 42, 255] {
        let mut child = helper(&["exit", &code.to_string()]).spawn().unwrap();
        assert_eq!(child.wait().unwrap().status, ExitStatus::Exited(code));
    }
}

/// `TestIgnorePipeErrorOnSuccess` (Issue 9173), with its 10 MB input: the
/// program answers from the start of its input and exits 0; our write
/// fails with `BrokenPipe`, the answer is complete and reading ends at EOF.
#[test]
fn ignore_pipe_error_on_success() {
    let _lock = fd_lock();
    for kind in kinds() {
        let mut child = helper(&["head", "4"]).channel_kind(kind).spawn().unwrap();
        let (mut reader, writer) = child.take_channel().unwrap().split();
        let feed = write_in_thread(writer, vec![b'x'; 10 << 20]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(out, b"xxxx");
        let (_w, written) = join_within(feed, LIMIT, "10 MB into a program that read 4 bytes");
        assert_eq!(written.unwrap_err().kind(), IoKind::BrokenPipe, "{kind:?}");
        assert!(child.wait().unwrap().success());
    }
}

/// `TestPipeLookPathLeak`: failed lookups leave no descriptor behind.
#[test]
fn pipe_look_path_leak() {
    let _lock = fd_lock();
    let before = open_fd_count();
    for kind in kinds() {
        for _ in 0..10 {
            let e = umbilical::Command::new("badexe-umbilical").channel_kind(kind).stderr(Stderr::Piped).spawn();
            assert_eq!(e.unwrap_err().kind(), ErrorKind::NotFound);
        }
    }
    assert_eq!(open_fd_count(), before);
}

/// `TestOutputStderrCapture`: stderr captured apart from stdout.
#[test]
fn output_stderr_capture() {
    let _lock = fd_lock();
    let mut child = helper(&["stderr", "some stderr text\n"]).stderr(Stderr::Piped).spawn().unwrap();
    let mut err = String::new();
    child.take_stderr().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(err, "some stderr text\n");
    assert_eq!(output_of(child), "out");
}

/// `TestDedupEnvEcho`: a variable set twice takes the last value.
#[test]
fn dedup_env_echo() {
    let _lock = fd_lock();
    let out = output_of(helper(&["env", "FOO"]).env("FOO", "bad").env("FOO", "good").spawn().unwrap());
    assert_eq!(out.trim(), "good");
}

/// `TestEnvNULCharacter`: a NUL in the environment is refused.
#[test]
fn env_nul_character() {
    let _lock = fd_lock();
    let e = helper(&["env", "FOO"]).env("FOO", "foo\0BAR=bar").spawn().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

/// `TestCommandRelativeName`: a program named `../dir/tool` relative to
/// the working directory given (Unix; Windows takes a relative program
/// from the parent's directory, see `peer_cpython`).
#[cfg(unix)]
#[test]
fn command_relative_name() {
    let _lock = fd_lock();
    let dir = scratch_dir("go-relative-name");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("work")).unwrap();
    helper_copy(&dir.join("bin"), "tool");
    for fork in [false, true] {
        let child = umbilical::Command::new("../bin/tool")
            .args(["args", "hello"])
            .current_dir(dir.join("work"))
            .force_fork_exec(fork)
            .spawn()
            .unwrap();
        assert_eq!(output_of(child), "hello\n");
    }
}

/// `TestContext` (the deadline expires, the program is killed): a bounded
/// wait, then kill and wait.
#[test]
fn context_deadline() {
    let _lock = fd_lock();
    let mut child = helper(&["sleep", "30000"]).spawn().unwrap();
    assert!(child.wait_timeout(std::time::Duration::from_millis(50)).unwrap().is_none());
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
}

/// `TestWaitDelay`'s grandchild that keeps stdout open: waiting for the
/// process we started does not wait for the grandchild, which still holds
/// the channel and still answers on it. (Waiting for every holder is what
/// `ExitDetection::ChannelClosed` is for; see `seed.rs`.)
#[test]
fn grandchild_holding_stdout() {
    let _lock = fd_lock();
    for kind in kinds() {
        let mut child =
            helper(&["wrapper", "7", "200"]).channel_kind(kind).exit_detection(ExitDetection::Process).spawn().unwrap();
        assert_eq!(child.wait().unwrap().status, ExitStatus::Exited(7));
        // The grandchild echoes after 200 ms; it alone holds the channel.
        let mut ch = child.take_channel().unwrap();
        ch.write_all(b"still here").unwrap();
        ch.shutdown_write().unwrap();
        let out = bounded(LIMIT, "the grandchild's echo", move || {
            let mut out = String::new();
            ch.read_to_string(&mut out).unwrap();
            out
        });
        assert_eq!(out, "still here", "{kind:?}");
    }
}
