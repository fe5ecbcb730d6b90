//! Criterion benchmarks: spawn + wait latency and bulk throughput, each next
//! to std's `process::Command` doing the same work.

use std::io::{Read, Write};
use std::process::Stdio;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use umbilical::{ChannelKind, Command};

fn spawn_wait(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_wait_true");
    g.bench_function("umbilical", |b| b.iter(|| Command::new("true").spawn().unwrap().wait().unwrap()));
    g.bench_function("std_piped", |b| {
        b.iter(|| {
            std::process::Command::new("true")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
                .wait()
                .unwrap()
        })
    });
    g.finish();
}

const BULK: usize = 16 << 20;

/// Feeds BULK bytes in `chunk`-sized writes from a thread and reads them
/// back: the same work for umbilical's halves and std's pipes.
fn pump(mut w: impl Write + Send + 'static, mut r: impl Read, chunk: &[u8]) {
    let data = chunk.to_vec();
    let feeder = std::thread::spawn(move || {
        for _ in 0..BULK / data.len() {
            w.write_all(&data).unwrap();
        }
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    while let Ok(k @ 1..) = r.read(&mut buf) {
        n += k;
    }
    feeder.join().unwrap();
    assert_eq!(n, BULK);
}

fn through_cat(c: &mut Criterion) {
    let chunk = vec![7u8; 1 << 20];
    let mut g = c.benchmark_group("round_trip_16MiB_cat");
    g.throughput(Throughput::Bytes(BULK as u64));
    g.sample_size(10);
    for kind in [ChannelKind::Socket, ChannelKind::Pipes] {
        g.bench_function(format!("umbilical_{kind:?}"), |b| {
            b.iter(|| {
                let mut child = Command::new("cat").channel_kind(kind).spawn().unwrap();
                let (r, w) = child.take_channel().unwrap().split();
                pump(w, r, &chunk);
                child.wait().unwrap();
            })
        });
    }
    g.bench_function("std_piped", |b| {
        b.iter(|| {
            let mut child =
                std::process::Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
            pump(child.stdin.take().unwrap(), child.stdout.take().unwrap(), &chunk);
            child.wait().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, spawn_wait, through_cat);
criterion_main!(benches);
