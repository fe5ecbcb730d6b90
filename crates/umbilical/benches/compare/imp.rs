//! The harness itself (Unix); see `compare.rs`.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use umbilical::ExitDetection;
use umbilical::{ChannelKind, Command};

#[path = "../../../../benches/report.rs"]
mod report;
use report::{Row, Sense, p50_p90};

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

/// Now on the system-wide monotonic clock, in nanoseconds: comparable
/// between processes (CLOCK_MONOTONIC), unlike `Instant`.
#[cfg(target_os = "linux")]
fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Interleaved rounds of two actions; the samples of each.
fn samples(
    rounds: usize,
    mut f: impl FnMut() -> Duration,
    mut g: impl FnMut() -> Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        a.push(f());
        b.push(g());
    }
    (a, b)
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A latency row: medians, with the 90th percentiles.
fn latency(
    group: &'static str,
    name: String,
    baseline_name: &'static str,
    (a, b): (Vec<Duration>, Vec<Duration>),
) -> Row {
    let ((a50, a90), (b50, b90)) = (p50_p90(a), p50_p90(b));
    Row {
        group,
        name,
        unit: "us",
        sense: Sense::Time,
        ours: us(a50),
        baseline_name,
        baseline: us(b50),
        p90: Some((us(a90), us(b90))),
    }
}

fn spawn_true() {
    assert!(Command::new("true").spawn().unwrap().wait().unwrap().success());
}

fn std_spawn_true(fork_path: bool) {
    let mut cmd = std::process::Command::new("true");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    if fork_path {
        // std takes fork + exec instead of posix_spawn when a uid is set.
        std::os::unix::process::CommandExt::uid(&mut cmd, rustix::process::getuid().as_raw());
    }
    assert!(cmd.spawn().unwrap().wait().unwrap().success());
}

/// A channel to `cat` built from std alone (no umbilical code): the
/// kernel's floor for the channel kinds, and the alternatives weighed for
/// the default.
#[derive(Clone, Copy)]
enum Raw {
    /// One socketpair for both directions (the `SharedSocket` structure).
    OnePair,
    /// A socketpair per direction (the `Socket` structure).
    TwoPairs,
    /// A socketpair into the program (half-closable, fast for bulk) and a
    /// pipe out of it.
    SocketInPipeOut,
}

impl Raw {
    fn name(self) -> &'static str {
        match self {
            Raw::OnePair => "a raw socketpair",
            Raw::TwoPairs => "a raw socketpair per direction",
            Raw::SocketInPipeOut => "a raw socketpair in, a pipe out",
        }
    }
}

/// `argv` started on a `raw` channel: the child, our writing end (which
/// half-closes when dropped) and our reading end.
fn raw_cat(raw: Raw, argv: &[&str]) -> (std::process::Child, HalfCloser, Box<dyn Read + Send>) {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    let mut cmd = std::process::Command::new(argv[0]);
    cmd.args(&argv[1..]);
    let (to_child, theirs_in) = UnixStream::pair().unwrap();
    cmd.stdin(Stdio::from(OwnedFd::from(theirs_in.try_clone().unwrap())));
    let from_child: Option<UnixStream> = match raw {
        Raw::OnePair => {
            cmd.stdout(Stdio::from(OwnedFd::from(theirs_in)));
            Some(to_child.try_clone().unwrap())
        }
        Raw::TwoPairs => {
            let (ours, theirs) = UnixStream::pair().unwrap();
            cmd.stdout(Stdio::from(OwnedFd::from(theirs)));
            Some(ours)
        }
        Raw::SocketInPipeOut => {
            cmd.stdout(Stdio::piped());
            None
        }
    };
    let mut child = cmd.spawn().unwrap();
    let reader: Box<dyn Read + Send> = match from_child {
        Some(sock) => Box::new(sock),
        None => Box::new(child.stdout.take().unwrap()),
    };
    (child, HalfCloser(to_child), reader)
}

/// 64 MiB through `cat` on a raw channel (std, no umbilical): the
/// ceiling for the socket kinds.
fn raw_cat_bulk(raw: Raw, total: usize, chunk: usize) {
    let (mut child, writer, reader) = raw_cat(raw, &["cat"]);
    assert_eq!(pump(writer, reader, total, chunk), total);
    assert!(child.wait().unwrap().success());
}

/// The round trips through `cat` on a raw channel: what the kernel's path
/// costs alone.
fn raw_round_trips(raw: Raw, rounds: usize, pinned: bool) -> Duration {
    let (mut child, writer, reader) = raw_cat(raw, &cat_argv(pinned));
    let d = round_trips(&writer.0, reader, rounds);
    drop(writer);
    assert!(child.wait().unwrap().success());
    d
}

/// A socket writer that half-closes when dropped (as a channel's write
/// half does), so `cat` sees EOF.
struct HalfCloser(std::os::unix::net::UnixStream);

impl Write for HalfCloser {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for HalfCloser {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Write);
    }
}

/// Exit latency: from the program's last act (it stamps the monotonic
/// clock on its stdout and exits) to the caller's `wait()` returning.
#[cfg(target_os = "linux")]
fn exit_latency(detection: Option<ExitDetection>, shim: bool) -> Duration {
    let me = std::env::current_exe().unwrap();
    let stamp = |line: &str| -> Duration {
        let then: u64 = line.trim().parse().expect("a stamp");
        Duration::from_nanos(mono_ns().saturating_sub(then))
    };
    match detection {
        Some(d) => {
            let mut cmd = Command::new(&me);
            cmd.arg("--stamp-and-exit").exit_detection(d).shim(shim);
            let mut child = cmd.spawn().unwrap();
            let mut line = String::new();
            child.channel().unwrap().read_to_string(&mut line).unwrap();
            child.wait().unwrap();
            stamp(&line)
        }
        None => {
            let mut child =
                std::process::Command::new(&me).arg("--stamp-and-exit").stdout(Stdio::piped()).spawn().unwrap();
            let mut line = String::new();
            child.stdout.take().unwrap().read_to_string(&mut line).unwrap();
            child.wait().unwrap();
            stamp(&line)
        }
    }
}

/// A session through `sudo -n` (root's own, or a NOPASSWD rule), or why
/// not.
fn sudo_session() -> Result<umbilical::Session, String> {
    let sudo_works = std::process::Command::new("sudo")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !sudo_works {
        return Err("`sudo -n true` does not run here (no sudo, or it wants a password)".into());
    }
    umbilical::Session::open(umbilical::Launcher::Sudo { user: None, non_interactive: true }).map_err(|e| e.to_string())
}

/// This process's threads and resident memory (KiB), from /proc.
#[cfg(target_os = "linux")]
fn threads_and_rss() -> (usize, usize) {
    let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (threads, rss)
}

pub fn main() {
    // Started as the shim by the shim rows below.
    umbilical::shim::run_if_invoked();
    #[cfg(target_os = "linux")]
    if std::env::args().any(|a| a == "--stamp-and-exit") {
        println!("{}", mono_ns());
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (spawn_rounds, bulk_rounds) = if quick { (200, 5) } else { (1000, 15) };
    println!("umbilical against a baseline measured in the same run, interleaved; medians (p90 where latency)");
    println!("umbilical's default spawn path here: {}", umbilical::mechanisms::spawn());
    let mut rows: Vec<Row> = Vec::new();
    let mut emit = |row: Row| {
        row.print();
        rows.push(row);
    };

    emit(latency(
        "spawn+wait `true`",
        "default path".into(),
        "std",
        samples(spawn_rounds, || timed(spawn_true), || timed(|| std_spawn_true(false))),
    ));
    emit(latency(
        "spawn+wait `true`",
        "fork+exec path".into(),
        "std fork+exec",
        samples(
            spawn_rounds,
            || timed(|| assert!(Command::new("true").force_fork_exec(true).spawn().unwrap().wait().unwrap().success())),
            || timed(|| std_spawn_true(true)),
        ),
    ));

    // What the shim costs per launch: a second process, the rendezvous
    // and the handshake. Both sides are umbilical.
    let shim_rounds = spawn_rounds / 2;
    emit(latency(
        "spawn+wait `true`",
        "through the shim".into(),
        "direct",
        samples(
            shim_rounds,
            || timed(|| assert!(Command::new("true").shim(true).spawn().unwrap().wait().unwrap().success())),
            || timed(spawn_true),
        ),
    ));

    // The shim the CLI carries (static, `opt-level = "s"`): the one a
    // container or far host gets, and the cheapest to start (no dynamic
    // loading). CI points UMBILICAL_BENCH_STATIC_SHIM at it.
    let static_shim = std::env::var_os("UMBILICAL_BENCH_STATIC_SHIM").map(std::path::PathBuf::from);
    match &static_shim {
        Some(shim) => emit(latency(
            "spawn+wait `true`",
            "through the shim, the static umbilical-shim".into(),
            "direct",
            samples(
                shim_rounds,
                || {
                    timed(|| {
                        let mut cmd = Command::new("true");
                        cmd.shim(true).shim_path(shim);
                        assert!(cmd.spawn().unwrap().wait().unwrap().success())
                    })
                },
                || timed(spawn_true),
            ),
        )),
        None => println!("SKIP: the static shim's rows: UMBILICAL_BENCH_STATIC_SHIM is not set"),
    }
    // The floor of any shim: a second process that starts the program and
    // waits for it, with no message at all (coreutils `timeout`, which
    // forks, execs and waits). What a launch costs above this is the
    // shim's own.
    emit(latency(
        "floor: spawn+wait `true`",
        "under a minimal parent (`timeout 60 true`)".into(),
        "direct",
        samples(
            shim_rounds,
            || {
                timed(|| {
                    assert!(Command::new("timeout").args(["60", "true"]).spawn().unwrap().wait().unwrap().success())
                })
            },
            || timed(spawn_true),
        ),
    ));

    // A session: one shim started once, then each program through it
    // (no launcher run, no rendezvous). Against a direct start, and
    // against a fresh shim per program.
    let session = umbilical::Session::open(umbilical::Launcher::Direct).expect("a session");
    let through_session = || assert!(session.command("true").spawn().unwrap().wait().unwrap().success());
    let fresh_shim = || assert!(Command::new("true").shim(true).spawn().unwrap().wait().unwrap().success());
    emit(latency(
        "spawn+wait `true`",
        "through an open session".into(),
        "direct",
        samples(shim_rounds, || timed(through_session), || timed(spawn_true)),
    ));
    emit(latency(
        "spawn+wait `true`",
        "through an open session".into(),
        "a fresh shim each time",
        samples(shim_rounds, || timed(through_session), || timed(fresh_shim)),
    ));
    session.close().expect("close the session");

    // Through sudo (root here, in CI: no password): a session against
    // sudo and the shim per program, and that against plain `sudo true`.
    match sudo_session() {
        Ok(session) => {
            let sudo = umbilical::Launcher::Sudo { user: None, non_interactive: true };
            let rounds = shim_rounds / 4;
            let sudo_shim = || {
                let mut cmd = Command::new("true");
                cmd.launcher(sudo.clone()).shim(true);
                assert!(cmd.spawn().unwrap().wait().unwrap().success());
            };
            let plain_sudo = || {
                assert!(std::process::Command::new("sudo").args(["-n", "true"]).status().unwrap().success());
            };
            emit(latency(
                "spawn+wait `true` through sudo",
                "through an open session".into(),
                "sudo + the shim each time",
                samples(
                    rounds,
                    || timed(|| assert!(session.command("true").spawn().unwrap().wait().unwrap().success())),
                    || timed(sudo_shim),
                ),
            ));
            emit(latency(
                "spawn+wait `true` through sudo",
                "sudo + the shim each time".into(),
                "plain `sudo -n true`",
                samples(rounds, || timed(sudo_shim), || timed(plain_sudo)),
            ));
            if let Some(shim) = &static_shim {
                let sudo_static = || {
                    let mut cmd = Command::new("true");
                    cmd.launcher(sudo.clone()).shim(true).shim_path(shim);
                    assert!(cmd.spawn().unwrap().wait().unwrap().success());
                };
                emit(latency(
                    "spawn+wait `true` through sudo",
                    "sudo + the static shim each time".into(),
                    "plain `sudo -n true`",
                    samples(rounds, || timed(sudo_static), || timed(plain_sudo)),
                ));
            }
            // What sudo allows at best for a shim: a minimal second
            // process behind it (`timeout`), no message.
            let sudo_timeout = || {
                let ok = std::process::Command::new("sudo").args(["-n", "timeout", "60", "true"]).status();
                assert!(ok.unwrap().success());
            };
            emit(latency(
                "floor: spawn+wait `true` through sudo",
                "a minimal parent behind sudo (`sudo -n timeout 60 true`)".into(),
                "plain `sudo -n true`",
                samples(rounds, || timed(sudo_timeout), || timed(plain_sudo)),
            ));
            session.close().expect("close the sudo session");
        }
        Err(why) => println!("SKIP: the rows through sudo: {why}"),
    }

    // A server's parent: 1,500 descriptors open (500 live children's
    // worth), all close-on-exec. The time spawn() holds the caller: std
    // closes nothing (the kernel closes them in the exec); umbilical must
    // keep them all from the program too.
    let held: Vec<_> = (0..750).map(|_| std::os::unix::net::UnixStream::pair().expect("a socketpair")).collect();
    emit(latency(
        "spawn `true`, 1,500 descriptors open",
        "until spawn returns".into(),
        "std",
        samples(
            spawn_rounds,
            || {
                let t = Instant::now();
                let mut c = Command::new("true").spawn().unwrap();
                let d = t.elapsed();
                assert!(c.wait().unwrap().success());
                d
            },
            || {
                let t = Instant::now();
                let mut c =
                    std::process::Command::new("true").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
                let d = t.elapsed();
                assert!(c.wait().unwrap().success());
                d
            },
        ),
    ));
    drop(held);

    // Every kind against std and a raw socketpair, in one run;
    // `SharedSocket` is the single socket that `Socket` was before.
    let kinds = [ChannelKind::Socket, ChannelKind::SharedSocket, ChannelKind::Pipes];
    let total = 64 << 20;
    let mibs = |d: Duration| (total as f64 / (1 << 20) as f64) / d.as_secs_f64();
    for chunk in [64 << 10, 256 << 10, 1 << 20] {
        let name = |what: &str| format!("{} KiB writes, {what}", chunk >> 10);
        for kind in kinds {
            let (u, s) = paired(bulk_rounds, || umbilical_cat(kind, total, chunk), || std_cat(total, chunk));
            emit(Row {
                group: "64 MiB echo through cat",
                name: name(&format!("{kind:?}")),
                unit: "MiB/s",
                sense: Sense::Rate,
                ours: mibs(u),
                baseline_name: "std pipes",
                baseline: mibs(s),
                p90: None,
            });
        }
        // Against a raw socketpair, and against its own structure built
        // raw, a socketpair per direction (the single pair is faster for
        // bulk and slower per round trip; see the floor rows).
        for (raw, baseline_name) in [(Raw::OnePair, "raw socketpair"), (Raw::TwoPairs, "raw socketpair per direction")]
        {
            let (u, r) = paired(
                bulk_rounds,
                || umbilical_cat(ChannelKind::Socket, total, chunk),
                || raw_cat_bulk(raw, total, chunk),
            );
            emit(Row {
                group: "64 MiB echo through cat",
                name: name("Socket"),
                unit: "MiB/s",
                sense: Sense::Rate,
                ours: mibs(u),
                baseline_name,
                baseline: mibs(r),
                p90: None,
            });
        }
    }

    // The same kernel objects without umbilical (a socketpair per
    // direction, as `Socket` is made), the hybrid weighed for the default,
    // and the run's own noise: a raw socketpair against itself.
    let chunk = 256 << 10;
    for (raw, against, against_name) in [
        (Raw::TwoPairs, None, "std pipes"),
        (Raw::SocketInPipeOut, None, "std pipes"),
        (Raw::OnePair, Some(Raw::OnePair), "the same, again"),
    ] {
        let (r, b) = paired(
            bulk_rounds,
            || raw_cat_bulk(raw, total, chunk),
            || match against {
                Some(other) => raw_cat_bulk(other, total, chunk),
                None => std_cat(total, chunk),
            },
        );
        emit(Row {
            group: "floor: 64 MiB echo through cat",
            name: format!("256 KiB writes, {}", raw.name()),
            unit: "MiB/s",
            sense: Sense::Rate,
            ours: mibs(r),
            baseline_name: against_name,
            baseline: mibs(b),
            p90: None,
        });
    }

    #[cfg(target_os = "linux")]
    {
        // Exit-detection latency: the program stamps the monotonic clock
        // and exits; the row is how long until `wait()` returns.
        let rounds = if quick { 100 } else { 400 };
        for (name, detection, shim) in [
            ("Process", ExitDetection::Process, false),
            ("Lifeline", ExitDetection::Lifeline, false),
            ("ChannelClosed", ExitDetection::ChannelClosed, false),
            ("the shim's report", ExitDetection::Process, true),
        ] {
            emit(latency(
                "exit to wait() returning",
                name.into(),
                "std wait",
                samples(rounds, || exit_latency(Some(detection), shim), || exit_latency(None, false)),
            ));
        }

        // Threads and memory per live child: 100 `sleep`s kept running.
        let live = 100;
        let per_child = |spawn: &mut dyn FnMut() -> Box<dyn std::any::Any>| {
            let (t0, m0) = threads_and_rss();
            let kids: Vec<_> = (0..live).map(|_| spawn()).collect();
            let (t1, m1) = threads_and_rss();
            drop(kids);
            ((t1 as f64 - t0 as f64) / live as f64, (m1 as f64 - m0 as f64) / live as f64)
        };
        let (ut, um) = per_child(&mut || {
            let mut c = Command::new("sleep").arg("30").kill_on_drop(true).spawn().unwrap();
            let _ = c.take_channel();
            Box::new(c)
        });
        let (st, sm) = per_child(&mut || {
            struct Killed(std::process::Child);
            impl Drop for Killed {
                fn drop(&mut self) {
                    let _ = self.0.kill();
                    let _ = self.0.wait();
                }
            }
            Box::new(Killed(
                std::process::Command::new("sleep")
                    .arg("30")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap(),
            ))
        });
        let count = |name: &str, unit: &'static str, ours: f64, baseline: f64| Row {
            group: "per live child",
            name: name.into(),
            unit,
            sense: Sense::Count,
            ours,
            baseline_name: "std",
            baseline,
            p90: None,
        };
        // Through the shim (this binary), the same 100: the link of each
        // is read by the process's one background thread.
        let (sht, shm) = per_child(&mut || {
            let mut c = Command::new("sleep").arg("30").shim(true).kill_on_drop(true).spawn().unwrap();
            let _ = c.take_channel();
            Box::new(c)
        });
        emit(count("threads", "", ut, st));
        emit(count("resident memory", "KiB", um, sm));
        emit(count("threads, through the shim", "", sht, st));
        emit(count("resident memory, through the shim", "KiB", shm, sm));

        // Spawning from a large parent: 2 GiB touched. posix_spawn does
        // not copy the page tables; a fork does.
        let big = vec![1u8; 2 << 30];
        let rounds = if quick { 50 } else { 200 };
        emit(latency(
            "spawn+wait `true`, 2 GiB parent",
            "default path".into(),
            "std",
            samples(rounds, || timed(spawn_true), || timed(|| std_spawn_true(false))),
        ));
        emit(latency(
            "spawn+wait `true`, 2 GiB parent",
            "fork+exec path".into(),
            "std fork+exec",
            samples(
                rounds,
                || {
                    timed(|| {
                        assert!(Command::new("true").force_fork_exec(true).spawn().unwrap().wait().unwrap().success())
                    })
                },
                || timed(|| std_spawn_true(true)),
            ),
        ));
        drop(std::hint::black_box(big));

        // Threads after dropping 500 running children (std leaves them
        // zombies and starts nothing; umbilical reaps them with one
        // shared thread).
        let (t0, _) = threads_and_rss();
        let pids: Vec<u32> =
            (0..500).map(|_| Command::new("sleep").arg("30").spawn().unwrap().id().unwrap_or(0)).collect();
        let (t1, _) = threads_and_rss();
        for pid in pids {
            let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        }
        emit(Row {
            group: "after dropping 500 running children",
            name: "new threads".into(),
            unit: "",
            sense: Sense::Count,
            ours: t1 as f64 - t0 as f64,
            baseline_name: "std (leaves 500 zombies)",
            baseline: 0.0,
            p90: None,
        });
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
        // `trip_rounds` of `ours` against as many of std's pipes.
        let trip_row = |group: &'static str, name: String, ours: &mut dyn FnMut() -> Duration| {
            let (mut u, mut s) = (Vec::new(), Vec::new());
            for _ in 0..trip_rounds {
                u.push(ours());
                s.push(std_round_trips(trips, pinned));
            }
            let per = |d: Duration| d.as_secs_f64() * 1e6 / trips as f64;
            Row {
                group,
                name,
                unit: "us",
                sense: Sense::Time,
                ours: per(median(u)),
                baseline_name: "std pipes",
                baseline: per(median(s)),
                p90: None,
            }
        };
        let how = if pinned { "one CPU" } else { "free" };
        for kind in kinds {
            emit(trip_row("1-byte round trip via cat", format!("{how}, {kind:?}"), &mut || {
                umbilical_round_trips(kind, trips, pinned)
            }));
        }
        // The kernel's floor for the socket kinds (`cat` on raw
        // socketpairs, no umbilical code), and the hybrid weighed for the
        // default, against the same pipes.
        for raw in [Raw::OnePair, Raw::TwoPairs, Raw::SocketInPipeOut] {
            emit(trip_row("floor: 1-byte round trip via cat", format!("{how}, {}", raw.name()), &mut || {
                raw_round_trips(raw, trips, pinned)
            }));
        }
    }
    report::write("compare", "umbilical vs the baseline in the same run (speed-up; right of 1.0 is faster)", &rows);
}
