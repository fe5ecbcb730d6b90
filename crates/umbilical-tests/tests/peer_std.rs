//! Scenarios ported from Rust std's `library/std/src/process/tests.rs`,
//! each test naming the one it comes from.
//!
//! Some tests here count this process's descriptors, so every test takes
//! the descriptor lock (`fd_lock`).

mod common;

use common::*;
use umbilical::ErrorKind;

/// `smoke` and `smoke_failure`: a program that succeeds; one that cannot
/// start is an error.
#[test]
fn smoke() {
    let _lock = fd_lock();
    assert!(helper(&["exit", "0"]).spawn().unwrap().wait().unwrap().success());
    assert!(umbilical::Command::new("if-this-is-a-binary-then-the-world-has-ended").spawn().is_err());
}

/// `exit_reported_right`: a non-zero code, exactly.
#[test]
fn exit_reported_right() {
    let _lock = fd_lock();
    let mut child = helper(&["exit", "1"]).spawn().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

/// `signal_reported_right`: a program killed by a signal says which.
#[cfg(unix)]
#[test]
fn signal_reported_right() {
    let _lock = fd_lock();
    let mut child = helper(&["signal", "9"]).spawn().unwrap();
    assert_eq!(child.wait().unwrap().status, umbilical::ExitStatus::Signaled(9));
    let mut child = helper(&["signal", "15"]).spawn().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(15));
}

/// `stdin_works` and `stdout_works`.
#[test]
fn stdin_works() {
    let _lock = fd_lock();
    for kind in kinds() {
        assert_eq!(echo_once(kind, b"foobar"), b"foobar", "{kind:?}");
    }
}

/// `set_current_dir_works`.
#[test]
fn set_current_dir_works() {
    let _lock = fd_lock();
    let dir = scratch_dir("std-cwd");
    let out = output_of(helper(&["cwd"]).current_dir(&dir).spawn().unwrap());
    assert_eq!(std::path::Path::new(out.trim()).canonicalize().unwrap(), dir.canonicalize().unwrap());
}

/// `test_process_output_fail_to_start`: the error kind of a missing
/// program.
#[test]
fn output_fail_to_start() {
    let _lock = fd_lock();
    let e = umbilical::Command::new("/no-binary-by-this-name-should-exist").spawn().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

/// `test_finish_once` and `test_finish_twice`: waiting again gives the
/// same answer.
#[test]
fn finish_twice() {
    let _lock = fd_lock();
    let mut child = helper(&["exit", "3"]).spawn().unwrap();
    let first = child.wait().unwrap();
    assert_eq!(first.code(), Some(3));
    assert_eq!(child.wait().unwrap(), first);
}

/// `test_override_env` and `test_add_to_env`: a variable overridden and one
/// added.
#[test]
fn override_and_add_env() {
    let _lock = fd_lock();
    let out = output_of(helper(&["env", "PATH"]).env("PATH", "overridden").spawn().unwrap());
    assert_eq!(out.trim_end(), "overridden");
    let out = output_of(helper(&["env", "RUN_TEST_NEW_ENV"]).env("RUN_TEST_NEW_ENV", "123").spawn().unwrap());
    assert_eq!(out.trim_end(), "123");
}

/// `env_empty` and `env_remove`: a cleared environment, and one variable
/// removed from an inherited one.
#[test]
fn env_removed_and_cleared() {
    let _lock = fd_lock();
    let out = output_of(helper(&["env", "PATH"]).env_remove("PATH").spawn().unwrap());
    assert_eq!(out.trim_end(), "<unset>");
    let out = output_of(helper(&["env", "ADDED"]).env_clear().env("ADDED", "only").spawn().unwrap());
    assert_eq!(out.trim_end(), "only");
}

/// `test_capture_env_at_spawn`: the environment is read when spawning, not
/// when the command was built. Run in the helper acting as a host, since
/// changing a multi-threaded test process's environment is unsound.
#[test]
fn capture_env_at_spawn() {
    let _lock = fd_lock();
    for kind in ["socket", "pipes"] {
        let out = std::process::Command::new(HELPER).args(["as-parent", kind, "env-capture"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), "at-spawn");
    }
}

/// `test_interior_nul_in_progname_is_error`, `_in_arg_`, `_in_args_`,
/// `_in_current_dir_`, `_in_env_key_` and `_in_env_value_is_error`.
#[test]
fn interior_nul_is_error() {
    let _lock = fd_lock();
    let cases: Vec<(&str, umbilical::Command)> = vec![
        ("progname", umbilical::Command::new("has-some-\0\0s-inside")),
        ("arg", {
            let mut c = helper(&["args"]);
            c.arg("has-some-\0\0s-inside");
            c
        }),
        ("current_dir", {
            let mut c = helper(&["exit", "0"]);
            c.current_dir("has-some-\0\0s-inside");
            c
        }),
        ("env key", {
            let mut c = helper(&["exit", "0"]);
            c.env("has-some-\0\0s-inside", "value");
            c
        }),
        ("env value", {
            let mut c = helper(&["exit", "0"]);
            c.env("key", "has-some-\0\0s-inside");
            c
        }),
    ];
    for (what, cmd) in cases {
        let e = cmd.spawn().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
    }
}

/// Huge argument lists (no std test; issue #7's list): more than the OS
/// takes (Linux: `E2BIG`; Windows: the 32767-character command line) is a
/// clean `InvalidInput`, and leaves no descriptor behind.
#[test]
fn huge_argument_list() {
    let _lock = fd_lock();
    let before = open_fd_count();
    let arg = "x".repeat(1024);
    for kind in kinds() {
        let mut cmd = helper(&["args"]);
        cmd.channel_kind(kind);
        for _ in 0..(16 * 1024) {
            cmd.arg(&arg);
        }
        let e = cmd.spawn().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{kind:?}: {e}");
    }
    assert_eq!(open_fd_count(), before, "descriptors leaked by a refused spawn");
}
