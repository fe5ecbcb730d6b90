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

/// `TestWaitInterrupt/Wait` (the control case): with no wait delay,
/// `communicate` waits for the program and everything it wrote, and says
/// nothing was cut.
#[test]
fn wait_interrupt_wait() {
    let _lock = fd_lock();
    let child = helper(&["leave-prober", "0", "50"]).stderr(Stderr::Piped).spawn().unwrap();
    let out = bounded_communicate(child, b"");
    assert!(out.exit.success());
    assert!(!out.truncated, "nothing is cut without a wait delay");
    assert!(!out.stdout.is_empty() && out.stderr.is_some_and(|e| !e.is_empty()), "the prober's bytes arrive");
}

/// `TestWaitInterrupt/Exit-hang`: the program exits 0 and leaves a child
/// writing to its stdout and stderr for ten minutes (here 20 s). With a
/// wait delay of 10 ms, `communicate` returns soon after the exit, with a
/// success and the output marked truncated (Go's `ErrWaitDelay`).
#[test]
fn wait_interrupt_exit_hang() {
    let _lock = fd_lock();
    let started = std::time::Instant::now();
    let mut cmd = helper(&["leave-prober", "0", "20000"]);
    cmd.stderr(Stderr::Piped).wait_delay(std::time::Duration::from_millis(10));
    let out = bounded_communicate(cmd.spawn().unwrap(), b"");
    assert!(out.exit.success(), "{:?}", out.exit);
    assert!(out.truncated, "the prober still held the output");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "not the prober's 20 s: {:?}", started.elapsed());
}

/// `TestWaitInterrupt/SIGKILL-hang`: the program is killed and leaves a
/// child writing to its output. The end is the kill's, and the output is
/// cut after the wait delay instead of waiting for the child.
#[test]
fn wait_interrupt_sigkill_hang() {
    let _lock = fd_lock();
    let mut cmd = helper(&["leave-prober", "stay", "20000"]);
    cmd.stderr(Stderr::Piped).wait_delay(std::time::Duration::from_millis(10));
    let mut child = cmd.spawn().unwrap();
    // The prober is running once its first byte is here.
    let mut first = [0u8; 1];
    child.channel().unwrap().read_exact(&mut first).unwrap();
    child.kill().unwrap();
    let out = bounded_communicate(child, b"");
    assert!(!out.exit.success(), "{:?}", out.exit);
    if cfg!(unix) {
        assert_eq!(out.exit.status, ExitStatus::Signaled(9));
    }
    assert!(out.truncated);
}

/// `TestWaitInterrupt/SIGINT-ignored`: a program that ignores the polite
/// signal is killed once the grace is over (`stop`).
#[cfg(unix)]
#[test]
fn wait_interrupt_sigint_ignored() {
    let _lock = fd_lock();
    let mut child =
        umbilical::Command::new("sh").args(["-c", "trap '' TERM; echo ready; exec sleep 600"]).spawn().unwrap();
    let _channel = wait_ready(&mut child);
    let started = std::time::Instant::now();
    let exit = child.stop(std::time::Duration::from_millis(10)).unwrap();
    assert_eq!(exit.status, ExitStatus::Signaled(9));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// `TestWaitInterrupt/SIGINT-handled`: a program that handles the polite
/// signal and exits 0 is reported with its own status, and is not killed.
#[cfg(unix)]
#[test]
fn wait_interrupt_sigint_handled() {
    let _lock = fd_lock();
    let mut child = umbilical::Command::new("sh")
        .args(["-c", "trap 'exit 0' TERM; echo ready; sleep 600 & wait"])
        .process_group(true)
        .spawn()
        .unwrap();
    let _channel = wait_ready(&mut child);
    let exit = child.stop(std::time::Duration::from_secs(30)).unwrap();
    assert_eq!(exit.status, ExitStatus::Exited(0));
}

/// `TestCancelErrors/success after ErrProcessDone`: stopping a program that
/// already ended signals nothing and reports its own end.
#[test]
fn cancel_after_process_done() {
    let _lock = fd_lock();
    let mut child = helper(&["exit", "3"]).spawn().unwrap();
    let mut rest = Vec::new();
    child.channel().unwrap().read_to_end(&mut rest).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(child.stop(std::time::Duration::ZERO).unwrap().status, ExitStatus::Exited(3));
    // Again: still its own end, nothing sent.
    assert_eq!(child.stop(std::time::Duration::ZERO).unwrap().status, ExitStatus::Exited(3));
}

/// `TestCancelErrors/killed after error`: a program that does not end on
/// the polite request (here: it is not even asked, on Windows) is killed,
/// and the end is the kill's, with no error of ours.
#[test]
fn cancel_killed_after_grace() {
    let _lock = fd_lock();
    let mut child = helper(&["sleep", "60000"]).spawn().unwrap();
    let exit = child.stop(std::time::Duration::from_millis(1)).unwrap();
    assert!(!exit.success(), "{exit:?}");
}

/// Reads `ready\n` from the program, bounded; the channel is returned to
/// be kept open.
#[cfg(unix)]
fn wait_ready(child: &mut umbilical::Child) -> umbilical::Channel {
    let mut channel = child.take_channel().unwrap();
    bounded(LIMIT, "the program's ready", move || {
        let mut line = [0u8; 6];
        channel.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"ready\n");
        channel
    })
}

/// `communicate`, failing the test instead of hanging.
fn bounded_communicate(mut child: umbilical::Child, input: &'static [u8]) -> umbilical::Output {
    bounded(LIMIT, "communicate", move || child.communicate(input).unwrap())
}
