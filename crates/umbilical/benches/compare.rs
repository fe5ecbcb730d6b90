//! The comparison harness: umbilical and a baseline doing the same work in
//! the same run, interleaved round by round so both see the same machine:
//! std's `process::Command` (spawn, throughput, round trips, exit latency,
//! threads and memory per child), a raw socketpair (throughput), a direct
//! start (the shim's price). Prints each row with its ratio, and writes
//! `target/bench/compare.json` and a chart, `target/bench/compare.svg`
//! (docs/PERFORMANCE.md shows a real run). Timings are never asserted.
//!
//! `cargo bench -p umbilical --bench compare` (add `-- --quick` for fewer
//! rounds, as CI does). This binary doubles as the shim, and as the
//! program that stamps the time just before it exits (exit latency).

#[cfg(unix)]
#[path = "compare/imp.rs"]
mod imp;

#[cfg(unix)]
fn main() {
    imp::main();
}

/// Windows (run under Wine in CI): throughput only, ratio against std's
/// `Command` with piped stdio, this binary echoing (`--echo`). Under Wine
/// the figures measure Wine as much as umbilical; the ratio is what counts.
#[cfg(windows)]
fn main() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    umbilical::shim::run_if_invoked();
    if std::env::args().any(|a| a == "--echo") {
        let mut buf = vec![0u8; 64 * 1024];
        let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
        while let Ok(n @ 1..) = i.read(&mut buf) {
            o.write_all(&buf[..n]).expect("echo");
        }
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (total, rounds) = if quick { (16usize << 20, 3) } else { (64 << 20, 7) };
    let me = std::env::current_exe().expect("current_exe");
    let pump = |mut w: Box<dyn Write + Send>, mut r: Box<dyn Read>| {
        let feeder = std::thread::spawn(move || {
            let chunk = vec![0x5au8; 64 * 1024];
            for _ in 0..total / chunk.len() {
                w.write_all(&chunk).expect("write");
            }
        });
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0;
        while let Ok(k @ 1..) = r.read(&mut buf) {
            n += k;
        }
        feeder.join().expect("feeder");
        assert_eq!(n, total);
    };
    let ours = || {
        let t = Instant::now();
        let mut child = umbilical::Command::new(&me).arg("--echo").spawn().expect("spawn");
        let (r, w) = child.take_channel().expect("channel").split();
        pump(Box::new(w), Box::new(r));
        assert!(child.wait().expect("wait").success());
        t.elapsed()
    };
    let theirs = || {
        let t = Instant::now();
        let mut child = std::process::Command::new(&me)
            .arg("--echo")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let (w, r) = (child.stdin.take().expect("stdin"), child.stdout.take().expect("stdout"));
        pump(Box::new(w), Box::new(r));
        assert!(child.wait().expect("wait").success());
        t.elapsed()
    };
    let (mut a, mut b): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(ours());
        b.push(theirs());
    }
    a.sort_unstable();
    b.sort_unstable();
    let (a, b) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "{} MiB echo, 64 KiB writes, named pipes: throughput ratio umbilical/std {:.2} (under Wine: the ratio, not the figures)",
        total >> 20,
        b.as_secs_f64() / a.as_secs_f64()
    );
}

#[cfg(not(any(unix, windows)))]
fn main() {
    println!("SKIP: the comparison harness runs on Unix and Windows only");
}
