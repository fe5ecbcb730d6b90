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
//! --bench async_children`. Under Wine (Windows) the children are this
//! binary echoing (`--echo`), 100 of them, and `tokio::process` runs its
//! pipes on tokio's blocking pool there: the thread counts tell.

#[path = "../../../benches/report.rs"]
mod report;

#[cfg(any(target_os = "linux", windows))]
#[path = "async_children/sys/mod.rs"]
mod sys;

#[cfg(any(target_os = "linux", windows))]
fn main() {
    imp::main();
}

#[cfg(not(any(target_os = "linux", windows)))]
fn main() {
    println!("SKIP: the async comparison reads the OS's process figures on Linux and Windows only");
}

#[cfg(any(target_os = "linux", windows))]
mod imp {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::report::{self, Row, Sense};
    use super::sys;

    const BYTES: usize = 64 * 1024;

    /// The program every child runs: `cat`, or this binary echoing where
    /// there is no `cat`.
    fn echo_program() -> (std::path::PathBuf, Vec<&'static str>) {
        if cfg!(windows) {
            (std::env::current_exe().expect("current_exe"), vec!["--echo"])
        } else {
            ("cat".into(), vec![])
        }
    }

    /// `--echo`: stdin to stdout until EOF.
    fn echo() {
        let mut buf = vec![0u8; 64 * 1024];
        let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
        while let Ok(n @ 1..) = i.read(&mut buf) {
            o.write_all(&buf[..n]).expect("echo");
        }
    }

    /// What one run measured.
    struct Figures {
        wall: Duration,
        kib_per_child: f64,
        threads_per_child: f64,
        /// Threads above the start at the busiest moment (all children).
        peak_threads: f64,
    }

    fn raise_fd_limit() {
        #[cfg(unix)]
        {
            use rustix::process::{Resource, getrlimit, setrlimit};
            let mut lim = getrlimit(Resource::Nofile);
            lim.current = lim.maximum;
            let _ = setrlimit(Resource::Nofile, lim);
        }
    }

    /// Spawns `n` children with `spawn`, records memory and threads with all
    /// alive, then runs each round trip (`trip`) as a task and awaits them.
    async fn measure<C, S, T>(n: usize, mut spawn: impl FnMut() -> S, trip: impl Fn(C) -> T) -> Figures
    where
        S: std::future::Future<Output = C>,
        T: std::future::Future<Output = ()> + 'static,
    {
        let start = Instant::now();
        let mut children = Vec::with_capacity(n);
        // The first child's spawn sets up what a process sets up once (a
        // lazy lock, the runtime's pool, Wine's wait threads): the figures
        // per live child are taken over the others. Counted from the first,
        // 100 blocking spawns under Wine showed 2.6 KiB each and 300 showed
        // 1.4 KiB: about 185 KiB once, 0.8 KiB each.
        children.push(spawn().await);
        let (rss0, threads0) = (sys::resident_kib(), sys::threads());
        for _ in 1..n {
            children.push(spawn().await);
        }
        let (rss1, threads1) = (sys::resident_kib(), sys::threads());
        let local = tokio::task::LocalSet::new();
        let left = std::rc::Rc::new(std::cell::Cell::new(n));
        for c in children {
            let (left, trip) = (left.clone(), trip(c));
            local.spawn_local(async move {
                trip.await;
                left.set(left.get() - 1);
            });
        }
        // The most threads seen while the round trips and waits run.
        let peak = local.spawn_local(async move {
            let mut peak = threads1;
            while left.get() > 0 {
                peak = peak.max(sys::threads());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        });
        local.await;
        let peak = peak.await.expect("the sampler");
        Figures {
            wall: start.elapsed(),
            kib_per_child: rss1.saturating_sub(rss0) as f64 / (n - 1) as f64,
            threads_per_child: threads1.saturating_sub(threads0) as f64 / (n - 1) as f64,
            peak_threads: peak.saturating_sub(threads0) as f64,
        }
    }

    async fn ours(n: usize, kind: umbilical::ChannelKind) -> Figures {
        measure(
            n,
            || async {
                let (program, args) = echo_program();
                umbilical::Command::new(program).args(args).channel_kind(kind).spawn_async().await.expect("spawn")
            },
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
                let (program, args) = echo_program();
                tokio::process::Command::new(program)
                    .args(args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn")
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
            "umbilical" => rt.block_on(ours(n, umbilical::ChannelKind::Socket)),
            "umbilical-pipes" => rt.block_on(ours(n, umbilical::ChannelKind::Pipes)),
            _ => rt.block_on(theirs(n)),
        };
        println!("{} {:.3} {:.4} {}", f.wall.as_micros(), f.kib_per_child, f.threads_per_child, f.peak_threads);
    }

    fn run_one(which: &str, n: usize) -> Figures {
        let me = std::env::current_exe().expect("current_exe");
        let measure = || {
            std::process::Command::new(&me)
                .args(["--one", which, &n.to_string()])
                .output()
                .expect("run one measurement")
        };
        let mut out = measure();
        // Wine's CreateProcess fails now and then with ERROR_INTERNAL_ERROR
        // (1359) under a hundred concurrent spawns; seen once in the
        // baseline's round. The baseline's round is measured again, and
        // says so; ours never is: a failure of ours fails the benchmark.
        if !out.status.success() && which == "tokio" && cfg!(windows) {
            eprintln!(
                "RETRY: the tokio::process round failed under Wine, measured again: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .find(|l| l.contains("spawn"))
                    .unwrap_or("(no spawn error printed)")
            );
            out = measure();
        }
        assert!(out.status.success(), "{which}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("figures");
        let v: Vec<f64> = text.split_whitespace().map(|s| s.parse().expect("a figure")).collect();
        Figures {
            wall: Duration::from_micros(v[0] as u64),
            kib_per_child: v[1],
            threads_per_child: v[2],
            peak_threads: v[3],
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().collect();
        umbilical::shim::run_if_invoked();
        if args.iter().any(|a| a == "--echo") {
            return echo();
        }
        if let Some(i) = args.iter().position(|a| a == "--one") {
            return one(&args[i + 1], args[i + 2].parse().expect("a count"));
        }
        let quick = args.iter().any(|a| a == "--quick");
        let n = if cfg!(windows) { 100 } else { 1000 };
        let rounds = if quick { 3 } else { 15 };
        let (mut o, mut p, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // The order flips every round: a run right after another one
            // (its children still being torn down) is not always ours.
            let mut order =
                if cfg!(windows) { vec!["umbilical", "tokio"] } else { vec!["umbilical", "umbilical-pipes", "tokio"] };
            if round % 2 == 1 {
                order.reverse();
            }
            for which in order {
                let f = run_one(which, n);
                match which {
                    "umbilical" => o.push(f),
                    "umbilical-pipes" => p.push(f),
                    _ => t.push(f),
                }
            }
        }
        let pick = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
        let group = if cfg!(windows) { "async under Wine, 100 children" } else { "async, 1,000 children" };
        let mut rows = vec![
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
                name: "threads per live child (all spawned, none awaited yet)".into(),
                unit: "",
                sense: Sense::Count,
                ours: pick(&o, |f| f.threads_per_child),
                baseline_name: "tokio::process",
                baseline: pick(&t, |f| f.threads_per_child),
                p90: None,
            },
            Row {
                group,
                name: "threads added at the busiest moment, all children".into(),
                unit: "",
                sense: Sense::Count,
                ours: pick(&o, |f| f.peak_threads),
                baseline_name: "tokio::process",
                baseline: pick(&t, |f| f.peak_threads),
                p90: None,
            },
        ];
        // Windows has pipes only: that row would repeat the first.
        if !p.is_empty() {
            rows.insert(
                1,
                Row {
                    group,
                    name: "the same, ChannelKind::Pipes".into(),
                    unit: "ms",
                    sense: Sense::Time,
                    ours: pick(&p, |f| f.wall.as_secs_f64() * 1e3),
                    baseline_name: "tokio::process",
                    baseline: pick(&t, |f| f.wall.as_secs_f64() * 1e3),
                    p90: None,
                },
            );
        }
        for r in &rows {
            r.print();
        }
        report::write("async", "umbilical::tokio vs tokio::process (speed-up, higher is better)", &rows);
    }
}
