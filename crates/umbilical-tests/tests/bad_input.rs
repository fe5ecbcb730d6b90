//! Bad input gives the right error kind, leaks nothing and hangs nothing.

mod common;

use std::io::Write;

use common::*;
use umbilical::{Command, ErrorKind};

fn expect_error(cmd: &Command, kind: ErrorKind, mention: &str) {
    let before = open_fd_count();
    let err = cmd.spawn().expect_err("spawn must fail");
    assert_eq!(err.kind(), kind, "{err}");
    assert!(err.to_string().contains(mention), "message {:?} should mention {mention:?}", err.to_string());
    assert_eq!(open_fd_count(), before, "no descriptor leaked by a failed spawn ({err})");
}

#[cfg(unix)]
#[test]
fn bad_programs_and_arguments() {
    use std::os::unix::fs::PermissionsExt;
    let _g = fd_lock();
    let dir = std::env::temp_dir().join(format!("umbilical-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_exec = dir.join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();

    expect_error(&Command::new("no-such-program-umbilical"), ErrorKind::NotFound, "no-such-program-umbilical");
    expect_error(&Command::new("/no/such/path/prog"), ErrorKind::NotFound, "/no/such/path/prog");
    expect_error(&Command::new(&dir), ErrorKind::NotExecutable, "umbilical-bad-input");
    expect_error(&Command::new(&not_exec), ErrorKind::NotExecutable, "not-executable");
    expect_error(&Command::new(""), ErrorKind::InvalidInput, "empty");
    expect_error(Command::new(HELPER).arg("a\0b"), ErrorKind::InvalidInput, "NUL");
    expect_error(Command::new(HELPER).env("K", "v\0"), ErrorKind::InvalidInput, "NUL");
    expect_error(Command::new(HELPER).current_dir(dir.join("missing")), ErrorKind::InvalidInput, "missing");
    // A program that PATH finds only as a non-executable file.
    expect_error(Command::new("not-executable").env("PATH", &dir), ErrorKind::NotExecutable, "not-executable");
    // A program on a PATH that the command itself sets.
    let mut ok = Command::new("umbilical-test-helper");
    ok.env("PATH", std::path::Path::new(HELPER).parent().unwrap()).arg("exit").arg("0");
    assert!(ok.spawn().unwrap().wait().unwrap().success());

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writing_to_an_exited_program_is_broken_pipe() {
    let _g = fd_lock();
    for kind in [umbilical::ChannelKind::Socket, umbilical::ChannelKind::Pipes] {
        let mut child = helper(&["exit", "0"]).channel_kind(kind).spawn().unwrap();
        child.wait().unwrap();
        let ch = child.channel().unwrap();
        let mut err = None;
        // The first write may land in a buffer; keep writing (bounded) until
        // the vanished reader is reported.
        for _ in 0..1000 {
            if let Err(e) = ch.write_all(&[0u8; 65536]) {
                err = Some(e);
                break;
            }
        }
        let err = err.expect("writing to a dead program fails");
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{kind:?}: {err}");
        // And after shutdown_write, writes fail the same way.
        ch.shutdown_write().unwrap();
        assert_eq!(ch.write(b"x").unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    }
}

#[cfg(unix)]
#[test]
fn environment_working_directory_and_stderr() {
    let _g = fd_lock();
    use std::io::Read;
    assert_eq!(output_of(helper(&["env", "UMB_X"]).env("UMB_X", "42").spawn().unwrap()).trim(), "42");
    assert_eq!(output_of(helper(&["env", "HOME"]).env_clear().spawn().unwrap()).trim(), "<unset>");
    assert_eq!(output_of(helper(&["env", "PATH"]).env_remove("PATH").spawn().unwrap()).trim(), "<unset>");
    assert_eq!(output_of(helper(&["cwd"]).current_dir("/tmp").spawn().unwrap()).trim(), "/tmp");
    assert_eq!(output_of(helper(&["stderr", "err!"]).stderr(umbilical::Stderr::Merge).spawn().unwrap()), "err!out");
    assert_eq!(output_of(helper(&["stderr", "err!"]).stderr(umbilical::Stderr::Null).spawn().unwrap()), "out");
    let mut child = helper(&["stderr", "err!"]).stderr(umbilical::Stderr::Piped).spawn().unwrap();
    let mut err = String::new();
    child.take_stderr().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(err, "err!");
    assert_eq!(output_of(child), "out");

    // From std's Command.
    let mut std_cmd = std::process::Command::new(HELPER);
    std_cmd.arg("env").arg("FROM_STD").env("FROM_STD", "yes").current_dir("/");
    assert_eq!(output_of(umbilical::Command::from(&std_cmd).spawn().unwrap()).trim(), "yes");
}

#[test]
fn nothing_hangs_when_the_program_ignores_stdin() {
    let _g = fd_lock();
    // A program that exits without reading: our writes fail, never block
    // forever, and the test process survives (no SIGPIPE death).
    let mut child = helper(&["exit", "0"]).spawn().unwrap();
    let mut ch = child.take_channel().unwrap();
    bounded(LIMIT, "write to non-reader", move || {
        let big = vec![0u8; 16 << 20];
        let _ = ch.write_all(&big);
    });
    assert!(child.wait().unwrap().success());
}

#[cfg(windows)]
#[test]
fn bad_programs_and_arguments_on_windows() {
    let _g = fd_lock();
    let dir = std::env::temp_dir().join(format!("umbilical-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("script.bat");
    std::fs::write(&batch, "@echo off\r\necho %1\r\n").unwrap();
    let not_exe = dir.join("data.txt");
    std::fs::write(&not_exe, "not a program").unwrap();

    expect_error(&Command::new("no-such-program-umbilical"), ErrorKind::NotFound, "no-such-program-umbilical");
    expect_error(&Command::new(r"C:\no\such\prog.exe"), ErrorKind::NotFound, "prog.exe");
    expect_error(&Command::new(&dir), ErrorKind::NotExecutable, "umbilical-bad-input");
    expect_error(&Command::new(""), ErrorKind::InvalidInput, "empty");
    expect_error(Command::new(HELPER).arg("a\0b"), ErrorKind::InvalidInput, "NUL");
    expect_error(Command::new(HELPER).env("K", "v\0"), ErrorKind::InvalidInput, "NUL");
    expect_error(Command::new(HELPER).current_dir(dir.join("missing")), ErrorKind::InvalidInput, "missing");
    // Batch files would go through cmd.exe's own parser: refused.
    expect_error(Command::new(&batch).arg("x & echo injected"), ErrorKind::InvalidInput, "batch");
    // A file that is not an executable image.
    let err = Command::new(&not_exe).spawn().expect_err("a text file is not a program");
    assert!(matches!(err.kind(), ErrorKind::NotExecutable | ErrorKind::Spawn), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(windows)]
#[test]
fn environment_working_directory_and_stderr_on_windows() {
    use std::io::Read;
    let _g = fd_lock();
    assert_eq!(output_of(helper(&["env", "UMB_X"]).env("UMB_X", "42").spawn().unwrap()).trim(), "42");
    // Keys are case-insensitive: the change replaces, not duplicates.
    assert_eq!(output_of(helper(&["env", "UMB_Y"]).env("UMB_Y", "1").env("umb_y", "2").spawn().unwrap()).trim(), "2");
    assert_eq!(output_of(helper(&["env", "UMB_X"]).env_clear().spawn().unwrap()).trim(), "<unset>");
    let tmp = std::env::temp_dir().canonicalize().unwrap();
    let cwd = output_of(helper(&["cwd"]).current_dir(&tmp).spawn().unwrap());
    assert_eq!(std::path::Path::new(cwd.trim()).canonicalize().unwrap(), tmp);
    assert_eq!(output_of(helper(&["stderr", "err!"]).stderr(umbilical::Stderr::Merge).spawn().unwrap()), "err!out");
    assert_eq!(output_of(helper(&["stderr", "err!"]).stderr(umbilical::Stderr::Null).spawn().unwrap()), "out");
    let mut child = helper(&["stderr", "err!"]).stderr(umbilical::Stderr::Piped).spawn().unwrap();
    let mut err = String::new();
    child.take_stderr().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(err, "err!");
    assert_eq!(output_of(child), "out");
    // Quoting survives a round trip through the command line.
    let tricky = ["plain", "", "two words", r#"quote " inside"#, r"trailing\", r#"back\"quote"#];
    let mut cmd = helper(&["args"]);
    cmd.args(tricky);
    let out = output_of(cmd.spawn().unwrap());
    let lines: Vec<&str> = out.split('\n').collect();
    assert_eq!(&lines[..tricky.len()], &tricky[..], "{out:?}");
}
