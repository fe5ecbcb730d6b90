//! The `umbilical` binary on Windows (run under Wine here).

#![cfg(windows)]

mod common;

use common::umbilical;

#[test]
fn round_trip_through_cmd_more() {
    let text: String = (0..5000).map(|i| format!("line {i}\r\n")).collect();
    let out = umbilical(&["run", "--", "cmd", "/c", "more"], text.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Wine's `more` pages even into a pipe, inserting this marker every 24
    // lines; everything else must arrive intact.
    let got = String::from_utf8_lossy(&out.stdout).replace("-- More... --\n", "");
    assert_eq!(got.trim_end(), text.trim_end());
}

#[test]
fn exit_codes_and_report() {
    assert_eq!(umbilical(&["run", "--", "cmd", "/c", "exit 3"], b"").status.code(), Some(3));
    // Windows exit codes are 32-bit and pass through whole.
    assert_eq!(umbilical(&["run", "--", "cmd", "/c", "exit 300"], b"").status.code(), Some(300));
    assert_eq!(umbilical(&["run", "--", "umbilical-no-such-program"], b"").status.code(), Some(127));
    let report = std::env::temp_dir().join(format!("umbilical-report-{}.json", std::process::id()));
    let out = umbilical(&["run", "--report", report.to_str().unwrap(), "--", "cmd", "/c", "exit 5"], b"");
    assert_eq!(out.status.code(), Some(5));
    let json = std::fs::read_to_string(&report).unwrap();
    assert!(json.starts_with("{\"version\": 1, \"status\": {\"exited\": 5}, \"detected_by\": \"process\""), "{json}");
    std::fs::remove_file(&report).unwrap();
    // The job object ends ping (cmd's child) too: nothing keeps the
    // inherited stderr open for the 30 seconds ping would take.
    let start = std::time::Instant::now();
    let out = umbilical(&["run", "--timeout", "0.5", "--", "cmd", "/c", "ping -n 30 127.0.0.1 >NUL"], b"");
    assert_eq!(out.status.code(), Some(124));
    assert!(start.elapsed() < std::time::Duration::from_secs(20), "the whole tree was killed");
}

#[test]
fn doctor_reports_the_winsock_catalogue() {
    let out = umbilical(&["doctor"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CreateProcessW + PROC_THREAD_ATTRIBUTE_HANDLE_LIST"), "{text}");
    assert!(text.contains("winsock catalogue ("), "{text}");
    println!("{text}");
    let json = umbilical(&["doctor", "--json"], b"");
    assert!(String::from_utf8_lossy(&json.stdout).contains("\"winsock\": ["));
    assert!(text.contains("shim auth:      named pipe"), "{text}");
    assert!(String::from_utf8_lossy(&json.stdout).contains("\"shim_auth\": \"named pipe"));
}

#[test]
fn via_runas_and_the_shim() {
    // Elevation through ShellExecuteExW "runas" (Wine grants it without a
    // prompt); this binary is the shim.
    let text: String = (0..100).map(|i| format!("line {i}\r\n")).collect();
    for via in [&["--via", "runas"][..], &["--shim"][..]] {
        let mut args = vec!["run"];
        args.extend(via);
        args.extend(["--", "cmd", "/c", "more"]);
        let out = umbilical(&args, text.as_bytes());
        assert!(out.status.success(), "{via:?}: {}", String::from_utf8_lossy(&out.stderr));
        let got = String::from_utf8_lossy(&out.stdout).replace("-- More... --\n", "");
        assert_eq!(got.trim_end(), text.trim_end(), "{via:?}");
        let report = std::env::temp_dir().join(format!("umbilical-report-shim-{}.json", std::process::id()));
        let mut args = vec!["run", "--report", report.to_str().unwrap()];
        args.extend(via);
        args.extend(["--", "cmd", "/c", "exit 300"]);
        assert_eq!(umbilical(&args, b"").status.code(), Some(300), "{via:?}");
        let json = std::fs::read_to_string(&report).unwrap();
        std::fs::remove_file(&report).unwrap();
        assert!(
            json.starts_with("{\"version\": 1, \"status\": {\"exited\": 300}, \"detected_by\": \"shim\""),
            "{via:?}: {json}"
        );
        let mut args = vec!["run"];
        args.extend(via);
        args.extend(["--", "umbilical-no-such-program"]);
        assert_eq!(umbilical(&args, b"").status.code(), Some(127), "{via:?}: missing program");
    }
}
