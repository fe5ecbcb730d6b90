//! The `umbilical` binary, driven as a user would, with real Unix tools
//! (`cli_windows.rs` has the Windows counterpart).

#![cfg(unix)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{UMBILICAL, umbilical};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("umbilical-cli-{}-{name}", std::process::id()))
}

fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn exit_codes_follow_env_and_timeout_conventions() {
    assert_eq!(umbilical(&["run", "--", "sh", "-c", "exit 0"], b"").status.code(), Some(0));
    assert_eq!(umbilical(&["run", "--", "sh", "-c", "exit 3"], b"").status.code(), Some(3));
    assert_eq!(umbilical(&["run", "--", "sh", "-c", "exit 255"], b"").status.code(), Some(255));
    assert_eq!(umbilical(&["run", "--", "sh", "-c", "kill -TERM $$"], b"").status.code(), Some(128 + 15));
    assert_eq!(umbilical(&["run", "--", "sh", "-c", "kill -KILL $$"], b"").status.code(), Some(128 + 9));

    let missing = umbilical(&["run", "--", "umbilical-no-such-program"], b"");
    assert_eq!(missing.status.code(), Some(127));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.starts_with("umbilical: ") && err.contains("umbilical-no-such-program"), "{err}");

    let file = temp("not-exec");
    std::fs::write(&file, "#!/bin/sh\n").unwrap();
    assert_eq!(umbilical(&["run", "--", file.to_str().unwrap()], b"").status.code(), Some(126));
    assert_eq!(umbilical(&["run", "--", "/"], b"").status.code(), Some(126));
    std::fs::remove_file(&file).unwrap();

    // umbilical's own failures: a bad option, a report it cannot write.
    assert_eq!(umbilical(&["run", "--wait", "never", "--", "true"], b"").status.code(), Some(125));
    assert_eq!(umbilical(&["run", "--timeout", "-1", "--", "true"], b"").status.code(), Some(125));
    let out = umbilical(&["run", "--report", "/nonexistent-dir/r.json", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("umbilical: cannot write the report"));
    // --help is not a failure.
    assert_eq!(umbilical(&["run", "--help"], b"").status.code(), Some(0));
}

/// A message to a stderr that cannot be written (`/dev/full`, a pipe
/// whose reader left) never turns the documented exit code into a panic's
/// 101 (issue 23, item 4: 7 of 8 such cases gave 101). Also the shim's own
/// messages, and `doctor` into a closed stdout.
#[test]
fn an_unwritable_stderr_keeps_the_documented_exit_code() {
    let with_stderr = |args: &[&str], broken_pipe: bool| -> Option<i32> {
        let mut cmd = Command::new(UMBILICAL);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
        if broken_pipe {
            cmd.stderr(Stdio::piped());
        } else {
            cmd.stderr(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap());
        }
        let mut child = cmd.spawn().unwrap();
        // The reader leaves before anything is written.
        drop(child.stderr.take());
        common::wait_within(&mut child, Duration::from_secs(30), "umbilical with an unwritable stderr").code()
    };
    let not_exec = temp("unwritable-stderr-not-exec");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let cases: [(&[&str], i32); 8] = [
        (&["run", "--", "/nonexistent/umbilical-program"], 127),
        (&["run", "--", not_exec.to_str().unwrap()], 126),
        (&["run", "--timeout", "0.3", "--", "sleep", "30"], 124),
        (&["run", "--wait", "never", "--", "true"], 125),
        (&["run", "--report", "/nonexistent-dir/r.json", "--", "true"], 125),
        (&["run", "--via", "no-such-launcher:x", "--", "true"], 125),
        (&["run", "-v", "--", "sh", "-c", "exit 3"], 3),
        (&["run", "--shim", "--via", "custom:false", "--", "true"], 125),
    ];
    for (args, code) in cases {
        for broken_pipe in [false, true] {
            let how = if broken_pipe { "a pipe whose reader left" } else { "/dev/full" };
            assert_eq!(with_stderr(args, broken_pipe), Some(code), "{args:?} with stderr on {how}");
        }
    }
    std::fs::remove_file(&not_exec).unwrap();
    // doctor with a stdout whose reader left: no panic.
    let mut doctor =
        Command::new(UMBILICAL).arg("doctor").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(doctor.stdout.take());
    let err = common::collect(doctor.stderr.take().unwrap());
    let status = common::wait_within(&mut doctor, Duration::from_secs(30), "doctor with a closed stdout");
    let err = String::from_utf8_lossy(&err.recv_timeout(Duration::from_secs(10)).expect("doctor's stderr closed"))
        .into_owned();
    assert_eq!(status.code(), Some(0), "doctor into a closed stdout: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn report_contents() {
    let path = temp("report.json");
    let out = umbilical(&["run", "--report", path.to_str().unwrap(), "--", "sh", "-c", "cat; exit 5"], b"hello world");
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(out.stdout, b"hello world");
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(
        json.starts_with("{\"version\": 1, \"status\": {\"exited\": 5}, \"detected_by\": \"process\", \"pid\": "),
        "{json}"
    );
    assert!(json.contains("\"bytes_to_child\": 11, \"bytes_from_child\": 11, \"output_truncated\": false"), "{json}");
    // With no launcher the shim is not needed, and the report says so.
    assert!(
        json.contains(
            "\"shim\": {\"used\": false, \"reason\": \"no launcher: the program's status is exact without it\"}"
        ),
        "{json}"
    );

    let out = umbilical(&["run", "--report", path.to_str().unwrap(), "--", "sh", "-c", "kill -KILL $$"], b"");
    assert_eq!(out.status.code(), Some(137));
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(json.contains("\"status\": {\"signaled\": 9}"), "{json}");

    let out =
        umbilical(&["run", "--wait", "lifeline", "--report", path.to_str().unwrap(), "--", "sh", "-c", "cat"], b"x");
    assert_eq!(out.status.code(), Some(0));
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(json.starts_with("{\"version\": 1, \"status\": null, \"detected_by\": \"lifeline\""), "{json}");

    let out = umbilical(&["run", "--report", path.to_str().unwrap(), "--", "umbilical-no-such-program"], b"");
    assert_eq!(out.status.code(), Some(127));
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(json.starts_with("{\"version\": 1, \"status\": null, \"detected_by\": null, \"pid\": null"), "{json}");
    assert!(json.contains("\"error\": \"cannot start"), "{json}");
    std::fs::remove_file(&path).unwrap();
}

/// --timeout sends --signal (TERM by default), as timeout(1) does.
#[test]
fn timeout_kills_and_exits_124() {
    let path = temp("timeout.json");
    let start = Instant::now();
    let out = umbilical(&["run", "--timeout", "0.5", "--report", path.to_str().unwrap(), "--", "sleep", "30"], b"");
    assert_eq!(out.status.code(), Some(124));
    assert!(start.elapsed() < Duration::from_secs(20), "did not wait for sleep 30");
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(json.contains("\"status\": {\"signaled\": 15}") && json.contains("\"error\": \"timed out"), "{json}");
    std::fs::remove_file(&path).unwrap();
    // A program that finishes in time is not affected.
    assert_eq!(umbilical(&["run", "--timeout", "30", "--", "sh", "-c", "exit 2"], b"").status.code(), Some(2));
}

#[test]
fn sixty_four_mib_round_trip_through_cat_is_byte_exact() {
    let input = temp("64m.in");
    let output = temp("64m.out");
    let data = pattern(64 << 20);
    std::fs::write(&input, &data).unwrap();
    for channel in ["socket", "pipes"] {
        // Files on both sides (sendfile in, read/write out), as a user
        // would redirect them.
        let status = Command::new(UMBILICAL)
            .args(["run", "--channel", channel, "--", "cat"])
            .stdin(std::fs::File::open(&input).unwrap())
            .stdout(std::fs::File::create(&output).unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "{channel}");
        let got = std::fs::read(&output).unwrap();
        assert_eq!(got.len(), data.len(), "{channel}");
        assert!(got == data, "{channel}: output differs");
    }
    // Pipes on both sides (splice).
    let mut child = Command::new(UMBILICAL)
        .args(["run", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = data.clone();
    let feeder = std::thread::spawn(move || stdin.write_all(&feed).unwrap());
    let mut got = Vec::with_capacity(data.len());
    child.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(got == data, "piped: output differs");
    std::fs::remove_file(&input).unwrap();
    std::fs::remove_file(&output).unwrap();
}

#[test]
fn half_close_reaches_the_program_and_output_continues() {
    // sort prints only after EOF on its input.
    let out = umbilical(&["run", "--", "sort"], b"c\nb\na\n");
    assert_eq!(out.stdout, b"a\nb\nc\n");
    // The program keeps talking after EOF.
    let out = umbilical(&["run", "--", "sh", "-c", "cat; echo after-eof"], b"in\n");
    assert_eq!(out.stdout, b"in\nafter-eof\n");
}

#[test]
fn stderr_routes() {
    let out = umbilical(&["run", "--stderr", "merge", "--", "sh", "-c", "echo err >&2; echo out"], b"");
    assert_eq!(out.stdout, b"err\nout\n");
    let out = umbilical(&["run", "--stderr", "null", "--", "sh", "-c", "echo err >&2; echo out"], b"");
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out\n"[..], &b""[..]));
    let out = umbilical(&["run", "--", "sh", "-c", "echo err >&2; echo out"], b"");
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
}

#[test]
fn wrapper_that_exits_at_once() {
    // The wrapper exits 0 at once; the real program answers later. (A
    // background job's stdin is /dev/null in sh, so the channel is handed
    // over on fd 4.)
    let script = "exec 4<&0; (sleep 0.3; cat <&4; echo done) & exit 0";
    for wait in ["lifeline", "channel", "process"] {
        let out = umbilical(&["run", "--wait", wait, "--", "sh", "-c", script], b"data\n");
        assert_eq!(out.status.code(), Some(0), "{wait}");
        assert_eq!(out.stdout, b"data\ndone\n", "{wait}: all output delivered");
    }
}

#[test]
fn the_program_inherits_only_its_stdio() {
    let out = umbilical(&["run", "--", "sh", "-c", "ls /proc/self/fd"], b"");
    // `ls` itself opens one descriptor for the listing (3).
    let fds: Vec<u32> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(|s| s.parse().unwrap()).collect();
    assert_eq!(fds, vec![0, 1, 2, 3], "{fds:?}");
}

#[test]
fn via_launchers() {
    let Ok(user) = std::env::var("UMBILICAL_TEST_USER") else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIP: umbilical run --via sudo/runuser: UMBILICAL_TEST_USER is not set (scripts/launchers.sh start)\n",
        );
        return;
    };
    for via in [format!("sudo:{user}"), format!("runuser:{user}"), format!("su:{user}"), format!("doas:{user}")] {
        let out = umbilical(&["run", "--via", &via, "--", "sort"], b"b\na\n");
        assert_eq!(out.stdout, b"a\nb\n", "{via}");
        assert_eq!(umbilical(&["run", "--via", &via, "--", "sh", "-c", "exit 7"], b"").status.code(), Some(7), "{via}");
    }
}

#[test]
fn via_a_detaching_custom_launcher() {
    let report = temp("via-report.json");
    let out = umbilical(
        &[
            "run",
            "--via",
            "custom:setsid,-f",
            "--detaches",
            "--report",
            report.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "sleep 0.3; cat",
        ],
        b"late but whole\n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"late but whole\n");
    let json = std::fs::read_to_string(&report).unwrap();
    assert!(json.starts_with("{\"version\": 1, \"status\": null, \"detected_by\": \"lifeline\""), "{json}");
    std::fs::remove_file(&report).unwrap();
    // Bad specs and launchers are umbilical's own failures.
    assert_eq!(umbilical(&["run", "--via", "telnet:host", "--", "true"], b"").status.code(), Some(125));
    assert_eq!(umbilical(&["run", "--via", "sudo", "--detaches", "--", "true"], b"").status.code(), Some(125));
    let out = umbilical(&["run", "--via", "custom:umbilical-no-such-launcher", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("umbilical-no-such-launcher"));
}

/// `--shim` and `--no-shim` contradict each other: a usage error (125).
#[test]
fn shim_and_no_shim_conflict() {
    let out = umbilical(&["run", "--shim", "--no-shim", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"), "{:?}", out);
}

#[test]
fn doctor_reports_mechanisms_and_launchers() {
    let out = umbilical(&["doctor"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exit detection: pidfd"), "{text}");
    assert!(
        text.contains("shim auth:      Unix socket in a directory of the caller's; peer pid (SO_PEERCRED)"),
        "{text}"
    );
    // `sh` is on PATH everywhere; the launcher list names what it found.
    assert!(text.contains("launchers on PATH:"), "{text}");
    // Linux with glibc's static library (this machine): the build carries
    // the shim; elsewhere it says it carries none.
    let carries = cfg!(target_os = "linux");
    assert_eq!(text.contains("carried shim:   a static umbilical-shim, "), carries, "{text}");
    let json = umbilical(&["doctor", "--json"], b"");
    let json = String::from_utf8_lossy(&json.stdout);
    assert!(json.starts_with("{\"os\": \"linux\"") && json.contains("\"shim_auth\": \"Unix socket"), "{json}");
    assert!(json.contains("\"carried_shim_bytes\": "), "{json}");
    assert_eq!(!json.contains("\"carried_shim_bytes\": null"), carries, "{json}");
    assert!(json.trim_end().ends_with('}'), "{json}");
}

/// `--env`, `--env-remove`, `--env-clear` and `--cwd`, in env(1)'s order
/// (clear, remove, set), directly and through runuser (the shim re-applies
/// them on the far side); bad input is 125 before anything runs.
#[cfg(unix)]
#[test]
fn environment_and_directory_options() {
    let mut vias: Vec<Vec<String>> = vec![vec![]];
    match std::env::var("UMBILICAL_TEST_USER") {
        Ok(user) => vias.push(vec!["--via".into(), format!("runuser:{user}")]),
        Err(_) => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIP: --env/--cwd through runuser: UMBILICAL_TEST_USER is not set\n",
            );
        }
    }
    for via in &vias {
        let with = |extra: &[&str]| {
            let mut args: Vec<&str> = vec!["run"];
            args.extend(via.iter().map(String::as_str));
            args.extend(extra);
            umbilical(&args, b"")
        };
        let out = with(&["--env-clear", "--env", "A=1", "--env", "B=x=y", "--", "/usr/bin/env"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "A=1\nB=x=y\n", "{via:?}");
        let out =
            with(&["--env", "PATH=/usr/bin:/bin", "--env-remove", "HOME", "--", "sh", "-c", "echo ${HOME-unset}"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "unset\n", "{via:?}");
        let out = with(&["--cwd", "/tmp", "--", "pwd"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/tmp\n", "{via:?}");
    }
    let out = umbilical(&["run", "--env", "NOEQUALS", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected KEY=VALUE"));
    let out = umbilical(&["run", "--cwd", "/nonexistent-umbilical-dir", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("working directory /nonexistent-umbilical-dir"));
}

/// `umbilical completions SHELL`: a script each shell accepts (bash checks
/// the syntax with `bash -n`), naming the sub-commands and `run`'s options.
#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_umbilical()"),
        ("zsh", "#compdef umbilical"),
        ("fish", "complete -c umbilical"),
        ("elvish", "edit:completion:arg-completer[umbilical]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = umbilical(&["completions", shell], b"");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {marker}");
        assert!(script.contains("connect-timeout") && script.contains("doctor"), "{shell}: options and sub-commands");
    }
    let script = umbilical(&["completions", "bash"], b"").stdout;
    let mut bash = Command::new("bash").args(["-n"]).stdin(Stdio::piped()).spawn().unwrap();
    bash.stdin.take().unwrap().write_all(&script).unwrap();
    assert!(bash.wait().unwrap().success(), "bash accepts the script");
    assert_eq!(umbilical(&["completions", "tcsh"], b"").status.code(), Some(125), "an unknown shell is a usage error");
}

/// `umbilical man [SUBCOMMAND]`: roff that groff renders without warnings,
/// with every option `--help` lists.
#[test]
fn man_pages_render() {
    if Command::new("groff").arg("-v").output().is_err() {
        common_skip("man pages rendered", "groff is not installed");
        return;
    }
    for (args, must) in [(vec!["man"], "umbilical(1)"), (vec!["man", "run"], "umbilical-run(1)")] {
        let page = umbilical(&args, b"");
        assert_eq!(page.status.code(), Some(0), "{args:?}");
        let mut groff = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        groff.stdin.take().unwrap().write_all(&page.stdout).unwrap();
        let out = groff.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(must), "{args:?}: {must}");
        if args.len() == 2 {
            let help = String::from_utf8(umbilical(&["run", "--help"], b"").stdout).unwrap();
            // grotty marks bold and underline by overstriking (`X\bX`).
            let mut plain = String::new();
            for c in text.chars() {
                if c == '\u{8}' {
                    plain.pop();
                } else {
                    plain.push(c);
                }
            }
            let rendered = plain.replace(['\u{2010}', '\u{2212}'], "-");
            for option in help.split_whitespace().filter(|w| w.starts_with("--") && w.len() > 2) {
                let option = option.trim_end_matches([',', '.', ')', ':']);
                let option = option.split(['=', '[', '<']).next().unwrap();
                assert!(rendered.contains(option), "the man page has {option}");
            }
        }
    }
    assert_eq!(umbilical(&["man", "nope"], b"").status.code(), Some(125));
}

fn common_skip(what: &str, why: &str) {
    let _ = std::io::stderr().write_all(format!("SKIP: {what}: {why}\n").as_bytes());
}
