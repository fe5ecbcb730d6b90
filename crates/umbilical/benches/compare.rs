//! A quick comparison harness for CI: measures umbilical and std's
//! `process::Command` doing the same work in the same run, and prints
//! figures and ratios (below 1.0 means umbilical is faster).
//!
//! `cargo bench -p umbilical --bench compare` (add `-- --quick` for fewer
//! rounds). It also prices the shim: this binary doubles as one.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use umbilical::{ChannelKind, Command};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Times `f` `rounds` times, alternating with `g`, so both see the same
/// machine conditions; returns the medians.
fn paired(rounds: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (Duration, Duration) {
    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let t = Instant::now();
        f();
        a.push(t.elapsed());
        let t = Instant::now();
        g();
        b.push(t.elapsed());
    }
    (median(a), median(b))
}

/// Pushes `total` bytes in `chunk`-sized writes through a writer on another
/// thread and reads them back; returns the byte count read.
fn pump(mut w: impl Write + Send + 'static, mut r: impl Read, total: usize, chunk: usize) -> usize {
    let feeder = std::thread::spawn(move || {
        let data = vec![0x5au8; chunk];
        for _ in 0..total / chunk {
            w.write_all(&data).unwrap();
        }
    });
    let mut buf = vec![0u8; chunk.max(64 * 1024)];
    let mut n = 0;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("read: {e}"),
        }
    }
    feeder.join().unwrap();
    n
}

fn umbilical_cat(kind: ChannelKind, total: usize, chunk: usize) {
    let mut child = Command::new("cat").channel_kind(kind).spawn().unwrap();
    let (r, w) = child.take_channel().unwrap().split();
    assert_eq!(pump(w, r, total, chunk), total);
    assert!(child.wait().unwrap().success());
}

fn std_cat(total: usize, chunk: usize) {
    let mut child = std::process::Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let (w, r) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    assert_eq!(pump(w, r, total, chunk), total);
    assert!(child.wait().unwrap().success());
}

fn main() {
    // Started as the shim by the shim row below.
    umbilical::shim::run_if_invoked();
    let quick = std::env::args().any(|a| a == "--quick");
    let (spawn_rounds, bulk_rounds) = if quick { (200, 5) } else { (1000, 15) };
    println!("umbilical vs std::process::Command, same run, medians (ratio < 1.0: umbilical faster)");

    let (u, s) = paired(
        spawn_rounds,
        || assert!(Command::new("true").spawn().unwrap().wait().unwrap().success()),
        || {
            let mut c =
                std::process::Command::new("true").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
            assert!(c.wait().unwrap().success());
        },
    );
    println!(
        "spawn+wait `true` ({spawn_rounds} rounds): umbilical {:>8.1} us   std {:>8.1} us   ratio {:.2}",
        u.as_secs_f64() * 1e6,
        s.as_secs_f64() * 1e6,
        u.as_secs_f64() / s.as_secs_f64()
    );

    // What the shim costs per launch: a second process, the rendezvous
    // and five control messages. Both sides are umbilical.
    let shim_rounds = spawn_rounds / 2;
    let (with, without) = paired(
        shim_rounds,
        || assert!(Command::new("true").shim(true).spawn().unwrap().wait().unwrap().success()),
        || assert!(Command::new("true").spawn().unwrap().wait().unwrap().success()),
    );
    println!(
        "spawn+wait `true` through the shim ({shim_rounds} rounds): shim {:>8.1} us   direct {:>8.1} us   ratio {:.2}",
        with.as_secs_f64() * 1e6,
        without.as_secs_f64() * 1e6,
        with.as_secs_f64() / without.as_secs_f64()
    );

    let total = 64 << 20;
    for chunk in [4 << 10, 64 << 10, 1 << 20] {
        for kind in [ChannelKind::Socket, ChannelKind::Pipes] {
            let (u, s) = paired(bulk_rounds, || umbilical_cat(kind, total, chunk), || std_cat(total, chunk));
            let mibs = |d: Duration| (total as f64 / (1 << 20) as f64) / d.as_secs_f64();
            println!(
                "64 MiB through cat, {:>4} KiB writes, {:<6}: umbilical {:>7.0} MiB/s   std pipes {:>7.0} MiB/s   time ratio {:.2}",
                chunk >> 10,
                format!("{kind:?}"),
                mibs(u),
                mibs(s),
                u.as_secs_f64() / s.as_secs_f64()
            );
        }
    }
}
