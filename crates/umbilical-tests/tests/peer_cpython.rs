//! Scenarios ported from CPython's `Lib/test/test_subprocess.py`, each
//! test naming the one it comes from. They run on every channel kind that
//! differs on this OS, and under Wine where the scenario exists on Windows.
//!
//! Some tests here count this process's descriptors, so every test takes
//! the descriptor lock (`fd_lock`).

mod common;

use std::io::{ErrorKind as IoKind, Read, Write};
use std::time::Duration;

use common::*;
use umbilical::{ErrorKind, ExitStatus, Stderr};

/// `test_communicate_epipe` (Issue 10963): the program exits without
/// reading its input. Writing fails with `BrokenPipe` (no SIGPIPE, no
/// hang), and reading its (empty) output ends at EOF, not with an error.
#[test]
fn communicate_epipe() {
    let _lock = fd_lock();
    for kind in kinds() {
        let mut child = helper(&["exit", "0"]).channel_kind(kind).spawn().unwrap();
        let (mut reader, writer) = child.take_channel().unwrap().split();
        let (_writer, written) =
            join_within(write_in_thread(writer, vec![b'x'; 1 << 20]), LIMIT, "writing into a program that exited");
        assert_eq!(written.unwrap_err().kind(), IoKind::BrokenPipe, "{kind:?}");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap_or_else(|e| panic!("{kind:?}: reading after the exit: {e}"));
        assert!(out.is_empty());
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
}

/// `test_communicate_epipe` with output, the shape of issue #7's first
/// report (`head -c 10` fed 100 bytes): the program answers from part of
/// its input and exits with the rest unread. Its whole answer arrives and
/// reading ends at EOF (with one socket, Linux used to end it with
/// `ECONNRESET`).
#[test]
fn answer_before_reading_everything() {
    let _lock = fd_lock();
    for kind in kinds() {
        let mut child = helper(&["head", "10"]).channel_kind(kind).spawn().unwrap();
        let mut channel = child.take_channel().unwrap();
        let input = pattern(100, 7);
        channel.write_all(&input).unwrap();
        channel.shutdown_write().unwrap();
        let mut out = Vec::new();
        channel.read_to_end(&mut out).unwrap_or_else(|e| panic!("{kind:?}: read_to_end: {e}"));
        assert_eq!(out, &input[..10], "{kind:?}");
        assert!(child.wait().unwrap().success());
    }
}

/// `test_close_fds_0_1_2` (Issue #10806) and libuv's
/// `spawn_closed_process_io`: a host whose fds 0, 1 and 2 are closed, so the
/// channel's own descriptors take those numbers. Run in the helper, acting
/// as the host, since a test process must keep its stdio. On Windows the
/// host's standard handles are null (a GUI program's or a service's).
#[test]
fn parent_with_closed_stdio() {
    let _lock = fd_lock();
    let kinds: &[&str] = if cfg!(windows) { &["pipes"] } else { &["socket", "shared", "pipes"] };
    for &kind in kinds {
        let status = std::process::Command::new(HELPER)
            .args(["as-parent", kind, "closed-stdio"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0), "{kind}: the host failed at step {status:?} (see as_parent)");
    }
}

/// `test_failed_child_execute_fd_leak`: failed spawns (missing program, not
/// executable, bad working directory) leave no descriptor behind.
#[test]
fn failed_spawn_leaks_nothing() {
    let _lock = fd_lock();
    let dir = scratch_dir("cpython-fd-leak");
    let before = open_fd_count();
    for kind in kinds() {
        for _ in 0..20 {
            let e = umbilical::Command::new("no-such-program-umbilical").channel_kind(kind).spawn().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);
            let e = umbilical::Command::new(&dir).channel_kind(kind).spawn().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotExecutable);
            let e = helper(&["exit", "0"])
                .current_dir(dir.join("missing"))
                .channel_kind(kind)
                .stderr(Stderr::Piped)
                .spawn()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }
    assert_eq!(open_fd_count(), before, "descriptors leaked by failed spawns");
}

/// `test_invalid_env`: a NUL byte in a name or a value, or `=` in a name,
/// is refused before anything starts.
#[test]
fn invalid_env() {
    let _lock = fd_lock();
    for (k, v) in [("A\0B", "v"), ("NAME", "va\0lue"), ("A=B", "v"), ("", "v")] {
        let e = helper(&["env", "A"]).env(k, v).spawn().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{k:?}={v:?}: {e}");
    }
}

/// `test_cwd_with_relative_executable`: a relative program path with a
/// relative working directory is taken from that directory, as the program
/// would see it after changing into it; on both spawn paths (posix_spawn
/// and the fork/exec fallback). Windows resolves a relative program path
/// from the parent's directory (`CreateProcessW`'s rule, and std's there).
#[cfg(unix)]
#[test]
fn cwd_with_relative_executable() {
    let _lock = fd_lock();
    let dir = scratch_dir("cpython-relative");
    std::fs::create_dir(dir.join("sub")).unwrap();
    helper_copy(&dir.join("sub"), "tool");
    let rel_dir = relative_to_cwd(&dir.join("sub"));
    for fork in [false, true] {
        let child = umbilical::Command::new("./tool")
            .arg("cwd")
            .current_dir(&rel_dir)
            .force_fork_exec(fork)
            .spawn()
            .unwrap_or_else(|e| panic!("fork={fork}: {e}"));
        let out = output_of(child);
        assert_eq!(std::path::Path::new(out.trim()), dir.join("sub").canonicalize().unwrap());
    }
    // A missing one is still NotFound, judged from that directory too.
    let e = umbilical::Command::new("./tool").current_dir(&dir).spawn().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

/// `test_wait_timeout`: a bounded wait on a running program returns
/// nothing, and a later wait gets the status.
#[test]
fn wait_timeout() {
    let _lock = fd_lock();
    let mut child = helper(&["sleep", "300"]).spawn().unwrap();
    assert!(child.wait_timeout(Duration::from_millis(20)).unwrap().is_none());
    let exit = bounded(LIMIT, "wait", move || child.wait().unwrap());
    assert_eq!(exit.code(), Some(0));
}

/// `test_kill` and `test_send_signal`: kill ends a program that ignores its
/// input; waiting again gives the same status.
#[test]
fn kill_then_wait_twice() {
    let _lock = fd_lock();
    let mut child = helper(&["sleep", "30000"]).spawn().unwrap();
    child.kill().unwrap();
    let first = child.wait().unwrap();
    #[cfg(unix)]
    assert_eq!(first.status, ExitStatus::Signaled(9));
    #[cfg(windows)]
    assert_eq!(first.status, ExitStatus::Exited(1));
    assert_eq!(child.wait().unwrap(), first);
    child.kill().expect("killing an ended program is not an error");
}

/// `test_stderr_pipe`, `test_stdout_stderr_pipe`, `test_stderr_devnull`
/// and `test_stdout_stderr_file` (stderr into stdout): each stderr mode.
#[test]
fn stderr_modes() {
    let _lock = fd_lock();
    for kind in kinds() {
        let mut child = helper(&["stderr", "oops"]).channel_kind(kind).stderr(Stderr::Piped).spawn().unwrap();
        let mut err = String::new();
        child.take_stderr().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(err, "oops");
        assert_eq!(output_of(child), "out");

        let child = helper(&["stderr", "oops"]).channel_kind(kind).stderr(Stderr::Null).spawn().unwrap();
        assert_eq!(output_of(child), "out");

        // The helper writes stderr (unbuffered) before stdout.
        let child = helper(&["stderr", "oops"]).channel_kind(kind).stderr(Stderr::Merge).spawn().unwrap();
        assert_eq!(output_of(child), "oopsout");
    }
}

/// `test_communicate_pipe_buf` turned around: a program that floods its
/// piped stderr. Read concurrently, everything arrives; dropped unread, the
/// program gets a write error instead of blocking, so nothing hangs. (The
/// rule, as with std: a piped stderr must be read or dropped.)
#[test]
fn stderr_flood() {
    let _lock = fd_lock();
    const FLOOD: usize = 4 << 20;
    for kind in kinds() {
        let mut child =
            helper(&["flood-stderr", &FLOOD.to_string()]).channel_kind(kind).stderr(Stderr::Piped).spawn().unwrap();
        let mut stderr = child.take_stderr().unwrap();
        let drain = std::thread::spawn(move || {
            let mut n = Vec::new();
            stderr.read_to_end(&mut n).map(|_| n.len())
        });
        let out = bounded(LIMIT, "stderr flood, read", move || output_of(child));
        assert_eq!(out, "out");
        assert_eq!(join_within(drain, LIMIT, "stderr drain").unwrap(), FLOOD);

        let mut child =
            helper(&["flood-stderr", &FLOOD.to_string()]).channel_kind(kind).stderr(Stderr::Piped).spawn().unwrap();
        drop(child.take_stderr());
        let exit = bounded(LIMIT, "stderr flood, dropped", move || {
            let mut ch = child.take_channel().unwrap();
            ch.shutdown_write().unwrap();
            let mut out = Vec::new();
            ch.read_to_end(&mut out).unwrap();
            child.wait().unwrap()
        });
        assert_eq!(exit.code(), Some(102), "the helper exits 102 when its stderr write fails");
    }
}

/// `test_communicate_eintr` (Issue #12493): signals arriving while a read,
/// a write and a wait are blocked never surface as `Interrupted`.
#[cfg(unix)]
#[test]
fn eintr_during_read_write_and_wait() {
    let _lock = fd_lock();
    use std::os::unix::thread::JoinHandleExt;
    umbilical_tests::sys::install_interrupting_handler().unwrap();
    for kind in kinds() {
        // The program sleeps before echoing: our write fills the buffer and
        // blocks, our read blocks, our wait blocks, all while signalled.
        let mut child = helper(&["echo-after", "400"]).channel_kind(kind).spawn().unwrap();
        let (mut reader, mut writer) = child.take_channel().unwrap().split();
        let payload = pattern(4 << 20, 3);
        let expected = payload.clone();
        let w = std::thread::spawn(move || -> std::io::Result<()> {
            let mut rest = &payload[..];
            while !rest.is_empty() {
                let n = writer.write(rest)?; // no retry here: EINTR must not reach us
                rest = &rest[n..];
            }
            writer.shutdown()
        });
        let r = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
            let mut out = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf)? {
                    0 => return Ok(out),
                    n => out.extend_from_slice(&buf[..n]),
                }
            }
        });
        let waiter = std::thread::spawn(move || child.wait());
        let targets = [w.as_pthread_t(), r.as_pthread_t(), waiter.as_pthread_t()];
        for _ in 0..2000 {
            if w.is_finished() && r.is_finished() && waiter.is_finished() {
                break;
            }
            for t in targets {
                if !(w.is_finished() && r.is_finished() && waiter.is_finished()) {
                    umbilical_tests::sys::interrupt(t);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        join_within(w, LIMIT, "write under signals").unwrap_or_else(|e| panic!("{kind:?}: write: {e}"));
        let out = join_within(r, LIMIT, "read under signals").unwrap_or_else(|e| panic!("{kind:?}: read: {e}"));
        assert!(out == expected, "{kind:?}: echoed bytes differ");
        let exit = join_within(waiter, LIMIT, "wait under signals").unwrap_or_else(|e| panic!("{kind:?}: wait: {e}"));
        assert!(exit.success());
    }
}

/// `test_args_string` / `test_list2cmdline`: arguments arrive exactly,
/// quotes, backslashes and spaces included (on Windows through MSVC
/// quoting).
#[test]
fn exact_arguments() {
    let _lock = fd_lock();
    let args = ["a b", "\"quoted\"", "back\\slash\\", "\\\"mixed\\\\\"", "", "tab\there", "*?[x]$HOME'"];
    let mut cmd = helper(&["args"]);
    cmd.args(args);
    let out = output_of(cmd.spawn().unwrap());
    let got: Vec<&str> = out.split_terminator('\n').map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(got, args);
}

/// A host program whose SIGPIPE is at its default disposition (any C host,
/// or Rust after `signal(SIGPIPE, SIG_DFL)`) is never killed by writing
/// into a program that left: CPython's `test_communicate_epipe` from a host
/// that has not ignored SIGPIPE (Python itself ignores it), and issue #7's
/// partial-write report (10 MiB into a program that reads 10 bytes).
#[cfg(unix)]
#[test]
fn sigpipe_default_host() {
    let _lock = fd_lock();
    // `pipes` twice: with `RWF_NOSIGNAL` where the kernel has it (Linux
    // 6.15+), and with the portable guard that older kernels get.
    for (kind, check) in [
        ("socket", "sigpipe-default"),
        ("shared", "sigpipe-default"),
        ("pipes", "sigpipe-default"),
        ("pipes", "sigpipe-default-guard"),
    ] {
        let out = bounded(LIMIT, check, move || {
            std::process::Command::new(HELPER).args(["as-parent", kind, check]).output().unwrap()
        });
        assert!(
            out.status.success(),
            "{kind} {check}: the host died: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "write: BrokenPipe; read: Ok(10)", "{kind} {check}");
    }
}

/// The same host, SIGPIPE at its default, writing into the shim's control
/// stream after the shim died (a kill request): the write fails, the kill
/// falls back to our own handle on the program, and the host lives.
#[cfg(target_os = "linux")]
#[test]
fn sigpipe_default_host_dead_shim() {
    let _lock = fd_lock();
    let out = std::process::Command::new(HELPER).args(["as-parent", "socket", "sigpipe-shim"]).output().unwrap();
    assert!(out.status.success(), "the host died: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kill: Ok(()); wait: Ok(Unknown)");
}

/// `test_communicate_stdin`: the input reaches the program, which checks
/// it (here: counts it) before it ends.
#[test]
fn communicate_stdin() {
    let _lock = fd_lock();
    for kind in kinds() {
        let mut child = helper(&["count"]).channel_kind(kind).spawn().unwrap();
        let out = bounded(LIMIT, "communicate", move || child.communicate(b"pear").unwrap());
        assert_eq!(out.stdout, b"4\n", "{kind:?}");
        assert!(out.exit.success() && !out.truncated);
    }
}

/// `test_communicate_stdout` and `test_communicate_stderr`: each stream
/// comes back whole and apart; stderr is `None` when it is not piped.
#[test]
fn communicate_stdout_and_stderr() {
    let _lock = fd_lock();
    let mut child = helper(&["stderr", "pineapple"]).stderr(Stderr::Piped).spawn().unwrap();
    let out = bounded(LIMIT, "communicate", move || child.communicate(b"").unwrap());
    assert_eq!(out.stdout, b"out");
    assert_eq!(out.stderr.as_deref(), Some(&b"pineapple"[..]));
    let mut child = helper(&["stderr", "pineapple"]).stderr(Stderr::Null).spawn().unwrap();
    let out = bounded(LIMIT, "communicate", move || child.communicate(b"").unwrap());
    assert_eq!((out.stdout.as_slice(), out.stderr), (&b"out"[..], None));
}

/// `test_communicate_pipe_buf` (and `test_communicate` with large data):
/// input and output much larger than any buffer, at once, never deadlock —
/// the program writes while we still write.
#[test]
fn communicate_pipe_buf() {
    let _lock = fd_lock();
    for kind in kinds() {
        let input = pattern(8 << 20, 11);
        let expected = input.clone();
        let mut child = helper(&["echo"]).channel_kind(kind).spawn().unwrap();
        let out = bounded(LIMIT, "communicate 8 MiB both ways", move || child.communicate(&input).unwrap());
        assert!(out.stdout == expected, "{kind:?}: byte-exact");
        assert!(out.exit.success());
    }
}

/// `test_communicate_epipe` through `communicate` itself: a program that
/// exits without reading its input is not an error (Python ignores the
/// broken pipe), and its end is reported.
#[test]
fn communicate_epipe_ignored() {
    let _lock = fd_lock();
    for kind in kinds() {
        let mut child = helper(&["exit", "5"]).channel_kind(kind).spawn().unwrap();
        let out = bounded(LIMIT, "communicate", move || child.communicate(&[b'x'; 4 << 20]).unwrap());
        assert_eq!(out.exit.status, ExitStatus::Exited(5), "{kind:?}");
        assert!(out.stdout.is_empty());
    }
}

/// `test_communicate_returns`: with nothing to feed and nothing written,
/// `communicate` returns the end with empty output.
#[test]
fn communicate_returns() {
    let _lock = fd_lock();
    let mut child = helper(&["exit", "0"]).stderr(Stderr::Piped).spawn().unwrap();
    let out = bounded(LIMIT, "communicate", move || child.communicate(b"").unwrap());
    assert_eq!((out.stdout.len(), out.stderr.map(|e| e.len())), (0, Some(0)));
    assert!(out.exit.success());
}

/// `test_writes_before_communicate`: what the caller wrote before goes
/// first, then `communicate`'s input.
#[test]
fn writes_before_communicate() {
    let _lock = fd_lock();
    let mut child = helper(&["echo"]).spawn().unwrap();
    child.channel().unwrap().write_all(b"banana").unwrap();
    let out = bounded(LIMIT, "communicate", move || child.communicate(b"split").unwrap());
    assert_eq!(out.stdout, b"bananasplit");
}

/// `test_communicate` after the channel was taken: an error, not a panic
/// or a hang (Python raises on a closed stdin).
#[test]
fn communicate_without_the_channel() {
    let _lock = fd_lock();
    let mut child = helper(&["exit", "0"]).spawn().unwrap();
    drop(child.take_channel());
    assert_eq!(child.communicate(b"").unwrap_err().kind(), IoKind::InvalidInput);
    assert!(child.wait().unwrap().success());
}
