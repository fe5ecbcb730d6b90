//! The async API (feature `tokio`): the half-close property, the seed
//! scenario, tokio's own `process_*` scenarios, cancellation, and the shim
//! through sudo and ssh, each on a real runtime and bounded. Linux, and
//! Windows under Wine (where the channel is two named pipes on tokio's
//! completion port).

mod common;

use std::future::Future;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use umbilical::tokio::Channel;
use umbilical::{ChannelKind, Detection, ExitDetection, ExitStatus};

/// Runs `fut` on a fresh `current_thread` runtime, failing on a hang.
fn run<T: Send + 'static>(what: &str, fut: impl Future<Output = T> + Send + 'static) -> T {
    bounded(LIMIT, what, move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(fut)
    })
}

/// Writes `payload` in chunks (cycled) from one task, half-closes, and
/// reads everything back in another.
async fn round_trip_async(channel: Channel, payload: Vec<u8>, chunks: Vec<usize>) -> Vec<u8> {
    let (mut reader, mut writer) = channel.split();
    let feeder = tokio::spawn(async move {
        let mut rest = &payload[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunks[i % chunks.len()].clamp(1, rest.len());
            writer.write_all(&rest[..n]).await.expect("write to channel");
            rest = &rest[n..];
            i += 1;
        }
        writer.shutdown().await.expect("half-close");
    });
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.expect("read from channel");
    feeder.await.expect("feeder task");
    out
}

fn echo_async(kind: ChannelKind, len: usize, chunks: Vec<usize>, seed: u64) {
    let payload = pattern(len, seed);
    let (out, exit) = run("async echo", {
        let payload = payload.clone();
        async move {
            let mut child = helper(&["echo"]).channel_kind(kind).spawn_async().await.unwrap();
            let out = round_trip_async(child.take_channel().unwrap(), payload, chunks).await;
            (out, child.wait().await.unwrap())
        }
    });
    assert!(out == payload, "{kind:?}: {len} bytes echoed byte-exact");
    assert_eq!(exit.status, ExitStatus::Exited(0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    /// The half-close property (`half_close.rs`), async: whatever the
    /// sizes and chunking, the echo is byte-exact and the program ends.
    #[test]
    fn half_close_echo_is_byte_exact(
        kind in prop::sample::select(vec![ChannelKind::Socket, ChannelKind::SharedSocket, ChannelKind::Pipes]),
        len in prop_oneof![0usize..10, 1usize..70_000, 1usize..1_500_000],
        chunks in prop::collection::vec(1usize..200_000, 1..6),
        seed in any::<u64>(),
    ) {
        echo_async(kind, len, chunks, seed);
    }
}

/// The seed scenario (`seed.rs`), async: through a wrapper that exits 7
/// at once, lifeline and channel-closed detection wait for the grandchild
/// that holds the channel; process detection reports the wrapper.
#[test]
fn seed_scenario() {
    for (detection, expected) in [
        (ExitDetection::Lifeline, Detection::Lifeline),
        (ExitDetection::ChannelClosed, Detection::ChannelClosed),
        (ExitDetection::Process, Detection::Process),
    ] {
        let payload = pattern(1 << 20, 9);
        let (out, exit) = run("async seed scenario", {
            let payload = payload.clone();
            async move {
                let mut child = helper(&["wrapper", "7", "300"]).exit_detection(detection).spawn_async().await.unwrap();
                let reader = tokio::spawn(round_trip_async(child.take_channel().unwrap(), payload, vec![65_536]));
                let exit = child.wait().await.unwrap();
                (reader.await.unwrap(), exit)
            }
        });
        assert_eq!(exit.detection, expected);
        let status = if expected == Detection::Process { ExitStatus::Exited(7) } else { ExitStatus::Unknown };
        assert_eq!(exit.status, status, "{detection:?}");
        assert!(out == payload, "{detection:?}: byte-exact through the grandchild");
    }
}

/// Channel-closed detection after the caller dropped its read half: the
/// program's further output is drained, so it is not stuck on a full
/// buffer, and `wait()` ends.
#[test]
fn channel_closed_drains_an_abandoned_channel() {
    let exit = run("abandoned channel", async {
        let mut child =
            helper(&["flood", "4000000"]).exit_detection(ExitDetection::ChannelClosed).spawn_async().await.unwrap();
        let (reader, writer) = child.take_channel().unwrap().split();
        drop(reader);
        drop(writer);
        child.wait().await.unwrap()
    });
    assert_eq!(exit.detection, Detection::ChannelClosed);
}

/// tokio `process_smoke`: the exact exit status, awaited.
#[test]
fn tokio_smoke() {
    let exit = run("smoke", async { helper(&["exit", "2"]).spawn_async().await.unwrap().wait().await.unwrap() });
    assert_eq!(exit.status, ExitStatus::Exited(2));
    // A death by signal (Unix); Windows has none.
    #[cfg(unix)]
    {
        let exit =
            run("smoke signal", async { helper(&["signal", "9"]).spawn_async().await.unwrap().wait().await.unwrap() });
        assert_eq!(exit.status, ExitStatus::Signaled(9));
    }
    // A kill awaited, as tokio's `Child::kill` does: the exact status.
    let exit = run("smoke kill", async {
        let mut child = helper(&["sleep", "30000"]).spawn_async().await.unwrap();
        child.kill().await.unwrap();
        child.wait().await.unwrap()
    });
    #[cfg(unix)]
    assert_eq!(exit.status, ExitStatus::Signaled(9));
    #[cfg(windows)]
    assert_eq!(exit.status, ExitStatus::Exited(1), "TerminateProcess with exit code 1, as std");
}

/// tokio `process_issue_2174`: writing to a program that has exited fails
/// with `BrokenPipe`, it does not hang.
#[test]
fn tokio_issue_2174_writes_after_exit() {
    for kind in [ChannelKind::Socket, ChannelKind::SharedSocket, ChannelKind::Pipes] {
        let kinds = run("writes after the exit", async move {
            let mut child = helper(&["exit", "0"]).channel_kind(kind).spawn_async().await.unwrap();
            assert!(child.wait().await.unwrap().success());
            let mut ch = child.take_channel().unwrap();
            let chunk = vec![0u8; 64 * 1024];
            let mut seen = Vec::new();
            for _ in 0..64 {
                seen.push(ch.write(&chunk).await.map_err(|e| e.kind()));
            }
            seen
        });
        if kind == ChannelKind::SharedSocket {
            // The program's end is closed once it exited, shared or not.
            assert!(kinds.iter().all(Result::is_err), "{kind:?}: {kinds:?}");
        } else {
            assert!(kinds.iter().all(|r| *r == Err(std::io::ErrorKind::BrokenPipe)), "{kind:?}: {kinds:?}");
        }
    }
}

/// tokio `process_issue_42`: many spawns and waits at once on the
/// multi-thread runtime all complete.
#[test]
fn tokio_issue_42_concurrent_spawns() {
    bounded(LIMIT, "concurrent spawns", || {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
            let tasks: Vec<_> = (0..50)
                .map(|i| {
                    tokio::spawn(async move {
                        let mut child = helper(&["echo"]).spawn_async().await.unwrap();
                        let msg = format!("task {i}").into_bytes();
                        let out = round_trip_async(child.take_channel().unwrap(), msg.clone(), vec![3]).await;
                        assert_eq!(out, msg);
                        assert!(child.wait().await.unwrap().success());
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
}

/// tokio `process_kill_on_drop`: with `kill_on_drop`, dropping the child
/// kills it at once.
#[test]
fn tokio_kill_on_drop() {
    let pid = run("kill on drop", async {
        let child = helper(&["sleep", "30000"]).kill_on_drop(true).spawn_async().await.unwrap();
        let pid = child.id().unwrap();
        drop(child);
        pid
    });
    assert!(gone_within(pid, Duration::from_secs(10)), "the program {pid} was killed on drop");
}

/// tokio `process_kill_after_wait`: killing a child that was already
/// waited for is not an error.
#[test]
fn tokio_kill_after_wait() {
    run("kill after wait", async {
        let mut child = helper(&["exit", "0"]).spawn_async().await.unwrap();
        child.wait().await.unwrap();
        child.kill().await.unwrap();
        child.start_kill().unwrap();
    });
}

/// Cancellation: a `wait()` dropped before the exit loses nothing; the
/// next `wait()` reports the exact status. A read dropped before data came
/// loses no byte.
#[test]
fn cancelled_wait_and_read_lose_nothing() {
    for detection in [ExitDetection::Process, ExitDetection::Lifeline, ExitDetection::ChannelClosed] {
        let (early, exit, got) = run("cancelled wait", async move {
            let mut child = helper(&["echo-after", "300"]).exit_detection(detection).spawn_async().await.unwrap();
            let mut ch = child.take_channel().unwrap();
            let early = tokio::time::timeout(Duration::from_millis(50), child.wait()).await.is_err();
            let mut buf = [0u8; 16];
            let read_cancelled = tokio::time::timeout(Duration::from_millis(20), ch.read(&mut buf)).await.is_err();
            assert!(read_cancelled, "nothing to read yet");
            ch.write_all(b"after").await.unwrap();
            ch.shutdown().await.unwrap();
            let mut got = Vec::new();
            ch.read_to_end(&mut got).await.unwrap();
            (early, child.wait().await.unwrap(), got)
        });
        assert!(early, "{detection:?}: the first wait was cancelled before the exit");
        assert_eq!(got, b"after", "{detection:?}");
        let status = if detection == ExitDetection::Process { ExitStatus::Exited(0) } else { ExitStatus::Unknown };
        assert_eq!(exit.status, status, "{detection:?}");
    }
}

/// The async child converts to the blocking one and back, its channel
/// with it (Unix: see `Channel::into_blocking`).
#[cfg(unix)]
#[test]
fn conversions_keep_the_channel_and_the_end() {
    let exit = run("conversions", async {
        let child = helper(&["echo"]).spawn_async().await.unwrap();
        let mut blocking = child.into_blocking().unwrap();
        {
            use std::io::Write;
            blocking.channel().unwrap().write_all(b"blocking ").unwrap();
        }
        let mut child = umbilical::tokio::Child::from_blocking(blocking).unwrap();
        let mut ch = child.take_channel().unwrap();
        ch.write_all(b"async").await.unwrap();
        ch.shutdown().await.unwrap();
        let mut out = String::new();
        ch.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "blocking async");
        child.wait().await.unwrap()
    });
    assert!(exit.success());
}

/// Through sudo and ssh with the shim, async: a round trip read to EOF
/// before `wait()`, the exact status, and a kill that reaches the program.
#[cfg(unix)]
#[test]
fn shim_through_launchers() {
    let Ok(user) = std::env::var("UMBILICAL_TEST_USER") else {
        skip("async shim through launchers", "UMBILICAL_TEST_USER unset (scripts/launchers.sh start)");
        return;
    };
    let mut launchers = vec![umbilical::Launcher::Sudo { user: Some(user), non_interactive: true }];
    match ssh_launcher() {
        Some(ssh) => launchers.push(ssh),
        None => skip("async shim via ssh", "no sshd on loopback"),
    }
    for launcher in launchers {
        let name = launcher.name();
        let l = launcher.clone();
        let (out, exit) = run("async shim round trip", async move {
            let mut child = shimmed(&l, &["echo"]).spawn_async().await.unwrap();
            assert_eq!(child.detection(), Detection::Shim);
            let out = round_trip_async(child.take_channel().unwrap(), pattern(200_000, 3), vec![10_000]).await;
            (out, child.wait().await.unwrap())
        });
        assert!(out == pattern(200_000, 3), "{name}: byte-exact");
        assert_eq!(exit.status, ExitStatus::Exited(0), "{name}");
        let l = launcher.clone();
        let exit =
            run(
                "async shim status",
                async move { shimmed(&l, &["exit", "3"]).spawn_async().await.unwrap().wait().await },
            );
        assert_eq!(exit.unwrap().status, ExitStatus::Exited(3), "{name}");
        let l = launcher.clone();
        let exit = run("async shim kill", async move {
            let mut child = shimmed(&l, &["sleep", "30000"]).spawn_async().await.unwrap();
            child.start_kill().unwrap();
            child.wait().await.unwrap()
        });
        assert_eq!(exit.status, ExitStatus::Signaled(9), "{name}: the kill reached the program");
    }
}

/// The shim started directly (no launcher), async: on Windows its link
/// keeps a thread (a synchronous pipe), which wakes the async `wait()`.
#[test]
fn shim_direct() {
    let (out, exit) = run("async shim, direct", async {
        let mut child = helper(&["echo"]).shim(true).shim_path(HELPER).spawn_async().await.unwrap();
        assert_eq!(child.detection(), Detection::Shim);
        let out = round_trip_async(child.take_channel().unwrap(), b"through the shim".to_vec(), vec![5]).await;
        (out, child.wait().await.unwrap())
    });
    assert_eq!(out, b"through the shim");
    assert_eq!(exit.status, ExitStatus::Exited(0));
    let exit = run("async shim status", async {
        helper(&["exit", "3"]).shim(true).shim_path(HELPER).spawn_async().await.unwrap().wait().await
    });
    assert_eq!(exit.unwrap().status, ExitStatus::Exited(3));
    // A kill across the shim (the thread count of a live shim child is
    // checked in async_scale.rs, alone in its binary).
    let exit = run("async shim, kill", async {
        let mut child = helper(&["sleep", "30000"]).shim(true).shim_path(HELPER).spawn_async().await.unwrap();
        child.start_kill().unwrap();
        child.wait().await.unwrap()
    });
    #[cfg(unix)]
    assert_eq!(exit.status, ExitStatus::Signaled(9), "the kill reached the program");
    #[cfg(windows)]
    assert_eq!(exit.status, ExitStatus::Exited(1), "the shim terminated the program (exit code 1, as std)");
}

/// Whether `pid` has exited within `limit`.
fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if !umbilical_tests::sys::alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
