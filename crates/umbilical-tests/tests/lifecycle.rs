//! The program's lifecycle from the library: `stop`, `communicate`,
//! `wait_delay`, "the program closed its stdin", and
//! `kill_on_parent_death` — directly, through runuser with the shim (where
//! `scripts/launchers.sh start` set a test user up), blocking and async,
//! and under Wine for what exists on Windows.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use umbilical::{ChannelKind, Command, Detection, ExitStatus, Stderr};

/// A route's name, and how it makes a command running the helper.
type Route = (String, Box<dyn Fn(&[&str]) -> Command>);

/// Directly, and through runuser with the shim when a test user is set up
/// (and this OS has runuser).
fn routes(test: &str) -> Vec<Route> {
    #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
    let mut routes: Vec<Route> = vec![("directly".into(), Box::new(|args: &[&str]| helper(args)))];
    #[cfg(target_os = "linux")]
    match std::env::var("UMBILICAL_TEST_USER") {
        Ok(user) => {
            let launcher = umbilical::Launcher::Runuser { user };
            routes.push(("runuser with the shim".into(), Box::new(move |args: &[&str]| shimmed(&launcher, args))));
        }
        Err(_) => skip(&format!("{test} through runuser"), "UMBILICAL_TEST_USER is not set"),
    }
    #[cfg(not(target_os = "linux"))]
    skip(&format!("{test} through runuser"), "runuser is Linux-only");
    routes
}

/// swift-subprocess's teardown sequence (`testTeardownSequence`: SIGTERM,
/// a grace, then SIGKILL) and Go's `TestWaitInterrupt/SIGINT-ignored`,
/// through every route: a program that ends on the polite signal reports
/// it; one that ignores it is killed once the grace is over — on the far
/// side through the shim.
#[test]
fn stop_asks_then_kills() {
    let _lock = fd_lock();
    for (route, cmd) in routes("stop") {
        let mut child = cmd(&["sleep", "60000"]).spawn().unwrap();
        let exit = bounded(LIMIT, "stop", move || child.stop(Duration::from_secs(20)).unwrap());
        if cfg!(unix) {
            assert_eq!(exit.status, ExitStatus::Signaled(15), "{route}: ended by the polite signal");
        } else {
            assert!(!exit.success(), "{route}: {exit:?}");
        }
        if route != "directly" {
            assert_eq!(exit.detection, Detection::Shim, "{route}");
        }
    }
    #[cfg(unix)]
    for (route, launcher) in [("directly", None), ("runuser with the shim", std::env::var("UMBILICAL_TEST_USER").ok())]
    {
        if route != "directly" && launcher.is_none() {
            continue;
        }
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; echo ready; exec sleep 600"]);
        if let Some(user) = launcher {
            cmd.launcher(umbilical::Launcher::Runuser { user }).shim(true).shim_path(HELPER);
        }
        let mut child = cmd.spawn().unwrap();
        let mut channel = child.take_channel().unwrap();
        // Kept open (returned) so the program's later writes do not fail.
        let _channel = bounded(LIMIT, "the trap is set", move || {
            let mut ready = [0u8; 6];
            channel.read_exact(&mut ready).unwrap();
            channel
        });
        let started = Instant::now();
        let exit = bounded(LIMIT, "stop", move || child.stop(Duration::from_millis(300)).unwrap());
        assert_eq!(exit.status, ExitStatus::Signaled(9), "{route}: killed after the grace");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "{route}: the grace was given ({took:?})");
    }
}

/// `communicate` through every route: 4 MiB each way with stderr piped,
/// and the status exact.
#[test]
fn communicate_through_every_route() {
    let _lock = fd_lock();
    for (route, cmd) in routes("communicate") {
        let input = pattern(4 << 20, 5);
        let expected = input.clone();
        let mut child = cmd(&["echo"]).stderr(Stderr::Piped).spawn().unwrap();
        let out = bounded(LIMIT, "communicate", move || child.communicate(&input).unwrap());
        assert!(out.stdout == expected, "{route}: byte-exact");
        assert_eq!(out.stderr.as_deref(), Some(&b""[..]), "{route}");
        assert_eq!(out.exit.status, ExitStatus::Exited(0), "{route}");
        let mut child = cmd(&["exit", "9"]).spawn().unwrap();
        let out = bounded(LIMIT, "communicate", move || child.communicate(b"ignored").unwrap());
        assert_eq!(out.exit.status, ExitStatus::Exited(9), "{route}");
    }
}

/// `wait_delay` through every route, and for a caller that reads the
/// channel itself: a program that exits and leaves a child writing to its
/// output for 20 s. The output is cut soon after the exit, marked
/// truncated, and the prober, left without a reader, ends.
#[test]
fn wait_delay_cuts_output_held_by_a_background_child() {
    let _lock = fd_lock();
    for (route, cmd) in routes("wait_delay") {
        let started = Instant::now();
        let mut child = cmd(&["leave-prober", "4", "20000"])
            .stderr(Stderr::Piped)
            .wait_delay(Duration::from_millis(200))
            .spawn()
            .unwrap();
        let out = bounded(LIMIT, "communicate", move || child.communicate(b"").unwrap());
        assert_eq!(out.exit.status, ExitStatus::Exited(4), "{route}");
        assert!(out.truncated, "{route}");
        assert!(!out.stdout.is_empty(), "{route}: what came before the cutoff is kept");
        assert!(started.elapsed() < Duration::from_secs(10), "{route}: cut, not 20 s ({:?})", started.elapsed());

        // By hand: a wait in another thread, the read in this one.
        let mut child =
            cmd(&["leave-prober", "0", "20000"]).stderr(Stderr::Null).wait_delay(Duration::ZERO).spawn().unwrap();
        let mut reader = child.take_channel().unwrap().split().0;
        let waiter = std::thread::spawn(move || child.wait().unwrap());
        let read = bounded(LIMIT, "the reader's end of file", move || {
            let mut sink = Vec::new();
            reader.read_to_end(&mut sink).unwrap();
            reader.truncated()
        });
        assert!(read, "{route}: the reader learns its end of file was the cutoff");
        assert!(join_within(waiter, LIMIT, "the waiter").success());
    }
}

/// Without a wait delay nothing changes: a program whose background child
/// writes a little more and then closes is read to the child's end.
#[test]
fn no_wait_delay_reads_to_the_last_holder() {
    let _lock = fd_lock();
    let mut child = helper(&["leave-prober", "0", "300"]).stderr(Stderr::Null).spawn().unwrap();
    let out = bounded(LIMIT, "communicate", move || child.communicate(b"").unwrap());
    assert!(!out.truncated && out.exit.success());
    assert!(out.stdout.len() > 10, "the prober's 300 ms of bytes: {}", out.stdout.len());
}

/// The async forms: `stop`, `communicate` and the wait delay, on a
/// current-thread runtime, through every route.
#[test]
fn async_stop_communicate_and_wait_delay() {
    let _lock = fd_lock();
    for (route, cmd) in routes("async lifecycle") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (c1, c2, c3) = (cmd(&["sleep", "60000"]), cmd(&["echo"]), {
            let mut c = cmd(&["leave-prober", "0", "20000"]);
            c.stderr(Stderr::Piped).wait_delay(Duration::from_millis(100));
            c
        });
        let route2 = route.clone();
        bounded(LIMIT, "async lifecycle", move || {
            rt.block_on(async move {
                let mut child = c1.spawn_async().await.unwrap();
                let exit = child.stop(Duration::from_secs(20)).await.unwrap();
                assert!(!exit.success(), "{route2}: {exit:?}");

                let input = pattern(2 << 20, 9);
                let mut child = c2.spawn_async().await.unwrap();
                let out = child.communicate(&input).await.unwrap();
                assert!(out.stdout == input, "{route2}: byte-exact");
                assert!(out.exit.success() && !out.truncated);

                let started = Instant::now();
                let mut child = c3.spawn_async().await.unwrap();
                let out = child.communicate(b"").await.unwrap();
                assert!(out.exit.success() && out.truncated, "{route2}: {out:?}");
                assert!(started.elapsed() < Duration::from_secs(10), "{route2}: {:?}", started.elapsed());
            })
        });
    }
}

/// "The program closed its stdin" (node#25131), learnt without writing:
/// for every channel kind, a program that closes fd 0 and runs on is seen
/// at the close; one that keeps it open is not, until the time runs out.
/// A shared socket is its stdout too, so only the program's end shows.
#[test]
fn the_program_closing_its_stdin_is_seen_without_writing() {
    let _lock = fd_lock();
    for (route, cmd) in routes("stdin closed") {
        for kind in kinds() {
            let mut child = cmd(&["close-stdin", "3000"]).channel_kind(kind).kill_on_drop(true).spawn().unwrap();
            let mut closed = [0u8; 6];
            child.channel().unwrap().read_exact(&mut closed).unwrap();
            let seen = child.channel().unwrap().writer().wait_closed(Some(Duration::from_millis(2000)));
            let seen = match seen {
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    skip(&format!("stdin closed, {route}, {kind:?}"), &e.to_string());
                    continue;
                }
                other => other.unwrap(),
            };
            if kind == ChannelKind::SharedSocket {
                assert!(!seen, "{route}: a shared socket stays open while the program runs");
                let exit = child.wait().unwrap();
                assert!(exit.success());
                assert!(
                    child.channel().unwrap().writer().wait_closed(Some(LIMIT)).unwrap(),
                    "{route}: its end is seen"
                );
            } else if route == "directly" {
                assert!(seen, "{route}, {kind:?}: the close is seen while the program still runs");
                assert!(child.try_wait().unwrap().is_none(), "{route}, {kind:?}: still running");
            } else {
                // runuser (like sudo) keeps its own copy of the program's
                // stdin while it waits for it: the close shows at the end.
                assert!(!seen, "{route}, {kind:?}: the launcher's copy keeps it open");
                skip(
                    &format!("stdin closed mid-run, {route}, {kind:?}"),
                    "the launcher holds the program's stdin too (documented caveat); checked: seen at the end",
                );
                child.kill().unwrap();
                child.wait().unwrap();
                assert!(
                    child.channel().unwrap().writer().wait_closed(Some(LIMIT)).unwrap(),
                    "{route}: the end closes it"
                );
            }
            let mut child = cmd(&["sleep", "60000"]).channel_kind(kind).kill_on_drop(true).spawn().unwrap();
            let started = Instant::now();
            assert!(!child.channel().unwrap().writer().wait_closed(Some(Duration::from_millis(300))).unwrap());
            assert!(started.elapsed() >= Duration::from_millis(300), "{route}, {kind:?}: the time given");
            child.kill().unwrap();
            assert!(child.channel().unwrap().writer().wait_closed(Some(LIMIT)).unwrap(), "{route}: the end closes it");
        }
    }
}

/// The async "closed" future, and the half-closed pipe that cannot tell.
#[test]
fn the_async_closed_future() {
    let _lock = fd_lock();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    bounded(LIMIT, "closed()", move || {
        rt.block_on(async {
            for kind in [ChannelKind::Socket, ChannelKind::Pipes] {
                let mut child =
                    helper(&["close-stdin", "3000"]).channel_kind(kind).kill_on_drop(true).spawn_async().await.unwrap();
                let (_reader, writer) = child.take_channel().unwrap().split();
                match tokio::time::timeout(Duration::from_secs(20), writer.closed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                        skip(&format!("async closed(), {kind:?}"), &e.to_string());
                        continue;
                    }
                    other => panic!("{kind:?}: {other:?}"),
                }
                assert!(child.try_wait().unwrap().is_none(), "{kind:?}: seen while the program runs");
                // A program that keeps its stdin: still pending after a while.
                let mut child =
                    helper(&["sleep", "60000"]).channel_kind(kind).kill_on_drop(true).spawn_async().await.unwrap();
                let (_reader, writer) = child.take_channel().unwrap().split();
                assert!(tokio::time::timeout(Duration::from_millis(300), writer.closed()).await.is_err(), "{kind:?}");
                child.kill().await.unwrap();
                tokio::time::timeout(Duration::from_secs(20), writer.closed()).await.unwrap().unwrap();
            }
        })
    });
    let mut child = helper(&["sleep", "60000"]).channel_kind(ChannelKind::Pipes).kill_on_drop(true).spawn().unwrap();
    let channel = child.channel().unwrap();
    channel.shutdown_write().unwrap();
    assert_eq!(
        channel.writer().wait_closed(Some(Duration::ZERO)).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

/// `kill_on_parent_death` (codex PR#1626, dune PR#15483, bun PR#39044): a
/// caller that spawned its program from a thread that has since ended, and
/// is then killed with SIGKILL (nothing of it runs), takes its program
/// with it — and the thread's end alone did not.
#[cfg(any(target_os = "linux", target_os = "freebsd", windows))]
#[test]
fn kill_on_parent_death_outlives_the_thread_not_the_process() {
    let _lock = fd_lock();
    let mut caller = helper(&["parent-dies"]).spawn().unwrap();
    let mut channel = caller.take_channel().unwrap();
    let line = bounded(LIMIT, "the caller's report", move || {
        let mut text = String::new();
        let mut byte = [0u8; 1];
        while !text.ends_with("thread-ended\n") {
            if channel.read(&mut byte).unwrap() == 0 {
                break;
            }
            text.push(byte[0] as char);
        }
        (text, channel)
    });
    let (text, _channel) = line;
    let pid: u32 = text.lines().next().and_then(|l| l.parse().ok()).unwrap_or_else(|| panic!("no pid in {text:?}"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(umbilical_tests::sys::alive(pid), "the program must not die with the thread that spawned it");
    caller.kill().unwrap();
    caller.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while umbilical_tests::sys::alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!umbilical_tests::sys::alive(pid), "the program outlived its killed parent");
}

/// `kill_on_parent_death` where nothing can keep the promise: refused up
/// front, before anything starts, not silently ignored.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "freebsd"))))]
#[test]
fn kill_on_parent_death_is_refused_where_impossible() {
    let err = Command::new("true").kill_on_parent_death(true).spawn().unwrap_err();
    assert_eq!(err.kind(), umbilical::ErrorKind::InvalidInput);
}

/// The write side of `communicate` is bounded too: a program that exits
/// leaving a child that holds its stdin without reading (`wrapper`'s
/// `echo-after`, asleep for 12 s) does not keep `communicate` writing 16
/// MiB for ever once the wait delay is over.
#[test]
fn communicate_stops_feeding_at_the_cutoff() {
    let _lock = fd_lock();
    let mut child =
        helper(&["wrapper", "0", "12000"]).stderr(Stderr::Null).wait_delay(Duration::from_millis(200)).spawn().unwrap();
    let started = Instant::now();
    let out = bounded(LIMIT, "communicate into a stdin nobody reads", move || {
        child.communicate(&vec![b'z'; 16 << 20]).unwrap()
    });
    assert!(out.exit.success());
    assert!(out.truncated, "the grandchild still held the output");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

/// The first line the helper prints.
#[cfg(windows)]
fn first_line(child: &mut umbilical::Child) -> String {
    let mut channel = child.take_channel().unwrap();
    let (line, channel) = bounded(LIMIT, "the helper's first line", move || {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while channel.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        (String::from_utf8_lossy(&line).trim_end().to_string(), channel)
    });
    drop(channel);
    line
}

/// Windows: a console program started as its own process group is asked
/// with `CTRL_BREAK_EVENT` and ends its own way (exit 42), within the
/// grace. It needs a console this test process shares with it.
#[cfg(windows)]
#[test]
fn terminate_asks_a_console_group_with_ctrl_break() {
    let _lock = fd_lock();
    if let Err(why) = umbilical_tests::sys::has_console() {
        skip(
            "CTRL_BREAK_EVENT to a process group",
            &format!(
                "this test process has no console for the child to share and cannot make one ({why}), so the event cannot be delivered; the fallback, a kill of the group's job at once, is checked instead"
            ),
        );
        let mut child = helper(&["ctrl-break", "42"]).process_group(true).spawn().unwrap();
        assert_eq!(first_line(&mut child), "ready");
        stopped_at_once(child);
        return;
    }
    let mut child = helper(&["ctrl-break", "42"]).process_group(true).spawn().unwrap();
    assert_eq!(first_line(&mut child), "ready");
    let exit = bounded(LIMIT, "stop", move || child.stop(Duration::from_secs(20)).unwrap());
    assert_eq!(exit.status, ExitStatus::Exited(42), "it ended its own way, not killed");
}

/// Windows: a windowed program gets `WM_CLOSE` and ends its own way (exit
/// 43), within the grace.
#[cfg(windows)]
#[test]
fn terminate_closes_a_windowed_program() {
    let _lock = fd_lock();
    let mut child = helper(&["window", "43"]).spawn().unwrap();
    let line = first_line(&mut child);
    if let Some(why) = line.strip_prefix("no-window: ") {
        // Wine without an X display makes no window; its null graphics
        // driver would, but makes ShellExecuteEx "runas" hang, which the
        // elevation tests need.
        skip("WM_CLOSE to a windowed program", &format!("no window can be made here (Wine with no display): {why}"));
        let _ = child.kill();
        return;
    }
    assert_eq!(line, "ready");
    let exit = bounded(LIMIT, "stop", move || child.stop(Duration::from_secs(20)).unwrap());
    assert_eq!(exit.status, ExitStatus::Exited(43), "it closed itself, not killed");
}

/// Windows: where nothing polite reaches the program (a console program
/// without a group of its own, no window), `stop` kills it at once rather
/// than wait a grace nobody can use.
#[cfg(windows)]
#[test]
fn stop_kills_at_once_where_nothing_polite_reaches() {
    let _lock = fd_lock();
    stopped_at_once(helper(&["sleep", "60000"]).spawn().unwrap());
}

/// Windows: `stop` with a long grace kills `child` at once (exit code 1,
/// `TerminateProcess`'s), nothing polite reaching it.
#[cfg(windows)]
fn stopped_at_once(mut child: umbilical::Child) {
    let started = Instant::now();
    let exit = bounded(LIMIT, "stop", move || child.stop(Duration::from_secs(30)).unwrap());
    assert_eq!(exit.status, ExitStatus::Exited(1), "killed: nothing polite could reach it");
    assert!(started.elapsed() < Duration::from_secs(10), "no grace waited: {:?}", started.elapsed());
}
