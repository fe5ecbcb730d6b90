//! 1,000 concurrent children on one `current_thread` runtime: umbilical's
//! async API against `tokio::process` with piped stdio doing the same work
//! (spawn every `cat` first, then a 64 KiB round trip with half-close
//! through each, then wait for each), measured in the same run,
//! interleaved.
//!
//! Each measurement runs in a fresh process of this binary (`--one NAME`),
//! so peak memory is that run's alone: wall time of the work, the parent's
//! resident memory with every child alive (minus before, per child), and
//! its thread count then (minus before).
//!
//! Needs the `tokio` feature: `cargo bench -p umbilical --features tokio
//! --bench async_children`.

#[path = "../../../benches/report.rs"]
mod report;

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("SKIP: the async comparison reads /proc and runs on Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::report::{self, Row, Sense};

    const BYTES: usize = 64 * 1024;

    /// One figure from `/proc/self/status` (`VmRSS:`, `Threads:`, ...).
    fn status(field: &str) -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let line = s.lines().find(|l| l.starts_with(field)).expect("the field");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// What one run measured.
    struct Figures {
        wall: Duration,
        kib_per_child: f64,
        threads_per_child: f64,
    }

    fn raise_fd_limit() {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut lim = getrlimit(Resource::Nofile);
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }

    /// Spawns `n` children with `spawn`, records memory and threads with all
    /// alive, then runs each round trip (`trip`) as a task and awaits them.
    async fn measure<C, S, T>(n: usize, mut spawn: impl FnMut() -> S, trip: impl Fn(C) -> T) -> Figures
    where
        S: std::future::Future<Output = C>,
        T: std::future::Future<Output = ()> + 'static,
    {
        let (rss0, threads0) = (status("VmRSS:"), status("Threads:"));
        let start = Instant::now();
        let mut children = Vec::with_capacity(n);
        for _ in 0..n {
            children.push(spawn().await);
        }
        let (rss1, threads1) = (status("VmRSS:"), status("Threads:"));
        let local = tokio::task::LocalSet::new();
        for c in children {
            local.spawn_local(trip(c));
        }
        local.await;
        Figures {
            wall: start.elapsed(),
            kib_per_child: rss1.saturating_sub(rss0) as f64 / n as f64,
            threads_per_child: threads1.saturating_sub(threads0) as f64 / n as f64,
        }
    }

    async fn ours(n: usize) -> Figures {
        measure(
            n,
            || async { umbilical::Command::new("cat").spawn_async().await.expect("spawn") },
            |mut child: umbilical::tokio::Child| async move {
                let (mut r, mut w) = child.take_channel().expect("channel").split();
                let payload = vec![0x5au8; BYTES];
                let write = async {
                    w.write_all(&payload).await.expect("write");
                    w.shutdown().await.expect("half-close");
                };
                let mut out = Vec::with_capacity(BYTES);
                let (_, n) = tokio::join!(write, r.read_to_end(&mut out));
                assert_eq!(n.expect("read"), BYTES);
                assert!(child.wait().await.expect("wait").success());
            },
        )
        .await
    }

    async fn theirs(n: usize) -> Figures {
        use std::process::Stdio;
        measure(
            n,
            || async {
                tokio::process::Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn")
            },
            |mut child: tokio::process::Child| async move {
                let (mut w, mut r) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
                let payload = vec![0x5au8; BYTES];
                let write = async {
                    w.write_all(&payload).await.expect("write");
                    drop(w); // tokio's half-close
                };
                let mut out = Vec::with_capacity(BYTES);
                let (_, n) = tokio::join!(write, r.read_to_end(&mut out));
                assert_eq!(n.expect("read"), BYTES);
                assert!(child.wait().await.expect("wait").success());
            },
        )
        .await
    }

    /// One measurement in this process: prints `wall_us kib threads`.
    fn one(which: &str, n: usize) {
        raise_fd_limit();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let f = match which {
            "umbilical" => rt.block_on(ours(n)),
            _ => rt.block_on(theirs(n)),
        };
        println!("{} {:.3} {:.4}", f.wall.as_micros(), f.kib_per_child, f.threads_per_child);
    }

    fn run_one(which: &str, n: usize) -> Figures {
        let me = std::env::current_exe().expect("current_exe");
        let out = std::process::Command::new(me)
            .args(["--one", which, &n.to_string()])
            .output()
            .expect("run one measurement");
        assert!(out.status.success(), "{which}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("figures");
        let v: Vec<f64> = text.split_whitespace().map(|s| s.parse().expect("a figure")).collect();
        Figures { wall: Duration::from_micros(v[0] as u64), kib_per_child: v[1], threads_per_child: v[2] }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().collect();
        if let Some(i) = args.iter().position(|a| a == "--one") {
            return one(&args[i + 1], args[i + 2].parse().expect("a count"));
        }
        let quick = args.iter().any(|a| a == "--quick");
        let (n, rounds) = if quick { (1000, 3) } else { (1000, 7) };
        let (mut o, mut t) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            o.push(run_one("umbilical", n));
            t.push(run_one("tokio", n));
        }
        let pick = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
        let group = "async, 1,000 children";
        let rows = vec![
            Row {
                group,
                name: "spawn + 64 KiB round trip + wait, all".into(),
                unit: "ms",
                sense: Sense::Time,
                ours: pick(&o, |f| f.wall.as_secs_f64() * 1e3),
                baseline_name: "tokio::process",
                baseline: pick(&t, |f| f.wall.as_secs_f64() * 1e3),
                p90: None,
            },
            Row {
                group,
                name: "parent memory per live child".into(),
                unit: "KiB",
                sense: Sense::Count,
                ours: pick(&o, |f| f.kib_per_child),
                baseline_name: "tokio::process",
                baseline: pick(&t, |f| f.kib_per_child),
                p90: None,
            },
            Row {
                group,
                name: "threads per live child".into(),
                unit: "",
                sense: Sense::Count,
                ours: pick(&o, |f| f.threads_per_child),
                baseline_name: "tokio::process",
                baseline: pick(&t, |f| f.threads_per_child),
                p90: None,
            },
        ];
        for r in &rows {
            r.print();
        }
        report::write("async", "umbilical::tokio vs tokio::process (speed-up, higher is better)", &rows);
    }
}
