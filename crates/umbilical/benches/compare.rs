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

/// Times `rounds` one-byte request/response exchanges with a running `cat`
/// (spawn and exit not included).
fn round_trips(mut w: impl Write, mut r: impl Read, rounds: usize) -> Duration {
    let mut byte = [0u8; 1];
    let t = Instant::now();
    for i in 0..rounds {
        w.write_all(&[i as u8]).unwrap();
        r.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], i as u8);
    }
    t.elapsed()
}

/// `cat`, or `taskset -c 0 cat` when pinned (taskset execs in place).
fn cat_argv(pinned: bool) -> Vec<&'static str> {
    if pinned { vec!["taskset", "-c", "0", "cat"] } else { vec!["cat"] }
}

fn umbilical_round_trips(kind: ChannelKind, rounds: usize, pinned: bool) -> Duration {
    let argv = cat_argv(pinned);
    let mut child = Command::new(argv[0]).args(&argv[1..]).channel_kind(kind).spawn().unwrap();
    let (r, w) = child.take_channel().unwrap().split();
    let d = round_trips(&w, &r, rounds);
    drop(w);
    assert!(child.wait().unwrap().success());
    d
}

fn std_round_trips(rounds: usize, pinned: bool) -> Duration {
    let argv = cat_argv(pinned);
    let mut child = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (w, r) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let d = round_trips(&w, r, rounds);
    drop(w);
    assert!(child.wait().unwrap().success());
    d
}

/// Pins this process's main thread (and so the threads it starts later)
/// to CPU 0 with `taskset`; false if that is not possible here.
fn pin_self_to_cpu0() -> bool {
    std::process::Command::new("taskset")
        .args(["-p", "-c", "0", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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

    // Every kind against std in one run; `SharedSocket` is the single
    // socket that `Socket` was before it became a socket per direction.
    let kinds = [ChannelKind::Socket, ChannelKind::SharedSocket, ChannelKind::Pipes];
    let total = 64 << 20;
    for chunk in [4 << 10, 64 << 10, 1 << 20] {
        for kind in kinds {
            let (u, s) = paired(bulk_rounds, || umbilical_cat(kind, total, chunk), || std_cat(total, chunk));
            let mibs = |d: Duration| (total as f64 / (1 << 20) as f64) / d.as_secs_f64();
            println!(
                "64 MiB through cat, {:>4} KiB writes, {:<12}: umbilical {:>7.0} MiB/s   std pipes {:>7.0} MiB/s   time ratio {:.2}",
                chunk >> 10,
                format!("{kind:?}"),
                mibs(u),
                mibs(s),
                u.as_secs_f64() / s.as_secs_f64()
            );
        }
    }

    // One-byte request/response through a running cat: latency, where a
    // shared socket wakes the side asleep on the other direction. Pinned
    // last (the pin is for the rest of this process): both processes on
    // one CPU, as the issue measured.
    let trips = if quick { 20_000 } else { 100_000 };
    let trip_rounds = if quick { 3 } else { 7 };
    for pinned in [false, true] {
        if pinned && !pin_self_to_cpu0() {
            println!("SKIP: pinned round trips: `taskset -p` failed here");
            continue;
        }
        for kind in kinds {
            let (mut u, mut s) = (Vec::new(), Vec::new());
            for _ in 0..trip_rounds {
                u.push(umbilical_round_trips(kind, trips, pinned));
                s.push(std_round_trips(trips, pinned));
            }
            let (u, s) = (median(u), median(s));
            let per = |d: Duration| d.as_secs_f64() * 1e6 / trips as f64;
            println!(
                "1-byte round trip via cat, {:<8}, {:<12}: umbilical {:>6.2} us   std pipes {:>6.2} us   ratio {:.2}",
                if pinned { "one CPU" } else { "free" },
                format!("{kind:?}"),
                per(u),
                per(s),
                u.as_secs_f64() / s.as_secs_f64()
            );
        }
    }
}
