//! `--report` files from real runs, validated against the published JSON
//! Schema (`docs/report.schema.json`) by Python's `jsonschema`, the
//! reference validator (installed by `scripts/install-deps.sh`).

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::umbilical;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/report.schema.json");

/// Validates each file against the schema; returns the validator's verdict
/// per file (`Ok` or the error), or `None` if the validator is missing.
fn validate(files: &[PathBuf]) -> Option<Vec<Result<(), String>>> {
    let script = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    print("MISSING"); sys.exit(0)
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    errors = [e.message for e in v.iter_errors(json.load(open(path)))]
    print("OK" if not errors else "BAD " + "; ".join(errors))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(SCHEMA).args(files).output().ok()?;
    assert!(out.status.success(), "the validator failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    if text.trim() == "MISSING" {
        return None;
    }
    Some(text.lines().map(|l| if l == "OK" { Ok(()) } else { Err(l.to_string()) }).collect())
}

fn report_of(dir: &Path, name: &str, args: &[&str], stdin: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    let mut full = vec!["run", "--report", path.to_str().unwrap()];
    full.extend_from_slice(args);
    umbilical(&full, stdin);
    assert!(path.exists(), "{name}: a report was written");
    path
}

#[test]
fn real_reports_match_the_schema() {
    let dir = std::env::temp_dir().join(format!("umbilical-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = vec![
        report_of(&dir, "exited", &["--", "sh", "-c", "cat; exit 5"], b"hello"),
        report_of(&dir, "signaled", &["--", "sh", "-c", "kill -KILL $$"], b""),
        report_of(&dir, "lifeline", &["--wait", "lifeline", "--", "cat"], b"x"),
        report_of(&dir, "channel", &["--wait", "channel", "--", "cat"], b"x"),
        report_of(&dir, "not-found", &["--", "umbilical-no-such-program"], b""),
        report_of(&dir, "timeout", &["--timeout", "0.3", "--", "sleep", "30"], b""),
        report_of(&dir, "drain", &["--drain", "0.2", "--", "sh", "-c", "(sleep 1; echo late) & echo now"], b""),
    ];
    match std::env::var("UMBILICAL_TEST_USER") {
        Ok(user) => {
            let via = format!("runuser:{user}");
            files.push(report_of(&dir, "shim", &["--via", &via, "--", "sh", "-c", "exit 7"], b""));
        }
        Err(_) => common_skip("the report through the shim", "UMBILICAL_TEST_USER unset"),
    }
    // A report the schema must refuse: the test can fail.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"version": 2, "status": {"exited": "0"}}"#).unwrap();
    files.push(bad);
    let Some(verdicts) = validate(&files) else {
        common_skip("report schema", "python3's jsonschema is not installed (scripts/install-deps.sh installs it)");
        return;
    };
    let (bad_verdict, real) = verdicts.split_last().unwrap();
    assert!(bad_verdict.is_err(), "a malformed report is refused");
    for (file, verdict) in files.iter().zip(real) {
        let json = std::fs::read_to_string(file).unwrap();
        assert!(verdict.is_ok(), "{}: {verdict:?}\n{json}", file.display());
        assert!(json.starts_with("{\"version\": 1, "), "{json}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn common_skip(what: &str, why: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("SKIP: {what}: {why}\n").as_bytes());
}
