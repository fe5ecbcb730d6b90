//! `umbilical run`'s relay against a plain `cat` doing the same job in the
//! same run: a file through the program and out into a pipe (`| wc -c`) or
//! into `/dev/null`, and stdin from a pipe. Prints medians and throughput
//! ratios (above 1.0: umbilical moves the bytes faster).
//!
//! `cargo bench -p umbilical-cli --bench relay` (add `-- --quick` for a
//! smaller file and fewer rounds). With `UMBILICAL_RELAY_BEFORE=PATH`
//! (another `umbilical` binary, say an older build) that one is measured
//! too, in the same rounds: before and after side by side. Linux and other
//! Unix only (`sh`, `cat`, `wc`).
//!
//! Then the launch: `umbilical run --via sudo -- true` against plain
//! `sudo -n true`, with the floors of a minimal caller and shim (where
//! `sudo -n` runs).

#[cfg(unix)]
#[path = "../../../benches/report.rs"]
mod report;

#[cfg(unix)]
fn main() {
    use std::time::{Duration, Instant};

    let quick = std::env::args().any(|a| a == "--quick");
    let (mib, rounds) = if quick { (128u64, 3) } else { (512u64, 7) };
    let umb = env!("CARGO_BIN_EXE_umbilical");
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("relay-bench.bin");
    let size = mib << 20;
    if std::fs::metadata(&file).map(|m| m.len()).ok() != Some(size) {
        let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut f = std::fs::File::create(&file).expect("create the bench file");
        for _ in 0..mib {
            std::io::Write::write_all(&mut f, &chunk).expect("write the bench file");
        }
    }
    let f = file.display();
    let run = |script: &str| -> Duration {
        let t = Instant::now();
        let out = std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh");
        let d = t.elapsed();
        assert!(out.status.success(), "{script}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        if script.contains("wc -c") {
            let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("wc output");
            assert_eq!(n, size, "{script}: byte count");
        }
        d
    };
    let median = |mut v: Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    println!("umbilical run -- cat against cat, {mib} MiB, {rounds} rounds, medians (ratio > 1.0: umbilical faster)");
    let before = std::env::var("UMBILICAL_RELAY_BEFORE").ok();
    let cases = [
        ("file -> | wc -c", "{U} run -- cat < {F} | wc -c", "cat < {F} | cat | wc -c"),
        ("file -> /dev/null", "{U} run -- cat < {F} > /dev/null", "cat < {F} | cat > /dev/null"),
        ("pipe -> | wc -c", "cat {F} | {U} run -- cat | wc -c", "cat {F} | cat | cat | wc -c"),
    ];
    let fill = |t: &str, u: &str| t.replace("{U}", u).replace("{F}", &f.to_string());
    let mut rows = Vec::new();
    for (what, ours, theirs) in cases {
        let (mut a, mut b, mut old) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(run(&fill(ours, umb)));
            b.push(run(&fill(theirs, "")));
            if let Some(path) = &before {
                old.push(run(&fill(ours, path)));
            }
        }
        let (a, b) = (median(a), median(b));
        let rate = |d: Duration| mib as f64 / d.as_secs_f64();
        let mut line = format!(
            "{what:<18}: umbilical {:>6.0} MiB/s   cat {:>6.0} MiB/s   throughput ratio {:.2}",
            rate(a),
            rate(b),
            b.as_secs_f64() / a.as_secs_f64()
        );
        if !old.is_empty() {
            let o = median(old);
            line += &format!("   before {:>6.0} MiB/s, ratio {:.2}", rate(o), b.as_secs_f64() / o.as_secs_f64());
        }
        println!("{line}");
        rows.push(report::Row {
            group: "umbilical run -- cat",
            name: what.to_string(),
            unit: "MiB/s",
            sense: report::Sense::Rate,
            ours: rate(a),
            baseline_name: "cat",
            baseline: rate(b),
            p90: None,
        });
    }
    launch_through_sudo(umb, rounds * 20, &mut rows);
    report::write("relay", "umbilical run's relay vs a plain cat in the same run (speed-up)", &rows);
}

/// `umbilical run --via sudo -- true` (the shim by default) against plain
/// `sudo -n true`, paired round by round; and the floors that any caller
/// and any shim pay on this machine: a minimal process (`timeout`, which
/// forks, execs and waits) before sudo, and one before and one behind it.
/// Skipped where `sudo -n true` does not run (not root, no NOPASSWD rule).
#[cfg(unix)]
fn launch_through_sudo(umb: &str, rounds: usize, rows: &mut Vec<report::Row>) {
    use std::time::{Duration, Instant};
    let time = |argv: &[&str]| -> Duration {
        let t = Instant::now();
        let out = std::process::Command::new(argv[0]).args(&argv[1..]).output().expect("start");
        let d = t.elapsed();
        assert!(out.status.success(), "{argv:?}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        d
    };
    if !std::process::Command::new("sudo").args(["-n", "true"]).output().is_ok_and(|o| o.status.success()) {
        println!("SKIP: launch through sudo: `sudo -n true` does not run here (no sudo, or it wants a password)");
        return;
    }
    let plain: &[&str] = &["sudo", "-n", "true"];
    let cases: [(&'static str, &str, Vec<&str>); 4] = [
        ("umbilical run --via sudo -- true", "umbilical", vec![umb, "run", "--via", "sudo", "--", "true"]),
        (
            "umbilical run --no-shim --via sudo -- true",
            "umbilical",
            vec![umb, "run", "--no-shim", "--via", "sudo", "--", "true"],
        ),
        ("timeout 60 sudo -n true (a minimal caller)", "floor", vec!["timeout", "60", "sudo", "-n", "true"]),
        (
            "timeout 60 sudo -n timeout 60 true (a minimal caller and shim)",
            "floor",
            vec!["timeout", "60", "sudo", "-n", "timeout", "60", "true"],
        ),
    ];
    for (name, kind, argv) in cases {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(time(&argv));
            b.push(time(plain));
        }
        let ((a50, a90), (b50, b90)) = (report::p50_p90(a), report::p50_p90(b));
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let row = report::Row {
            group: if kind == "floor" { "floor: launch through sudo" } else { "launch through sudo" },
            name: name.to_string(),
            unit: "us",
            sense: report::Sense::Time,
            ours: us(a50),
            baseline_name: "plain sudo -n true",
            baseline: us(b50),
            p90: Some((us(a90), us(b90))),
        };
        row.print();
        rows.push(row);
    }
}

#[cfg(not(unix))]
fn main() {
    println!("SKIP: relay bench: needs sh, cat and wc (Unix)");
}
