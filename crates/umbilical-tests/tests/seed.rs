//! The seed scenario: the program is started through a wrapper that exits
//! at once, leaving only the connection. `wait()` must not report the
//! wrapper's exit as the program's.

mod common;

use std::time::{Duration, Instant};

use common::*;
use umbilical::{ChannelKind, Detection, ExitDetection, ExitStatus};

/// The wrapper exits 7 at once; its grandchild sleeps this long, then echoes.
const GRANDCHILD_DELAY_MS: u64 = 400;

fn wrapped(detection: ExitDetection, kind: ChannelKind) -> umbilical::Child {
    helper(&["wrapper", "7", &GRANDCHILD_DELAY_MS.to_string()])
        .exit_detection(detection)
        .channel_kind(kind)
        .spawn()
        .unwrap()
}

#[test]
fn process_detection_reports_the_wrapper() {
    let start = Instant::now();
    let mut child = wrapped(ExitDetection::Process, ChannelKind::Socket);
    let exit = child.wait().unwrap();
    assert_eq!(exit, umbilical::Exit { status: ExitStatus::Exited(7), detection: Detection::Process });
    assert!(start.elapsed() < Duration::from_millis(GRANDCHILD_DELAY_MS), "returned before the grandchild ended");
    // The grandchild still holds the channel and still answers.
    let out = bounded(LIMIT, "grandchild echo", move || {
        round_trip(child.take_channel().unwrap(), b"still here".to_vec(), vec![4])
    });
    assert_eq!(out, b"still here");
}

fn waits_for_grandchild(detection: ExitDetection, expected: Detection) {
    for kind in [ChannelKind::Socket, ChannelKind::Pipes] {
        // The grandchild cannot end before GRANDCHILD_DELAY_MS after this.
        let start = Instant::now();
        let mut child = wrapped(detection, kind);
        let payload = pattern(3 << 20, 5);
        let expected_bytes = payload.clone();
        let channel = child.take_channel().unwrap();
        let (out, exit, after_exit) = bounded(LIMIT, "seed scenario", move || {
            let reader = std::thread::spawn(move || round_trip(channel, payload, vec![65_536]));
            let exit = child.wait().unwrap();
            let waited = start.elapsed();
            (reader.join().unwrap(), exit, waited)
        });
        assert_eq!(exit.detection, expected, "{kind:?}");
        assert_eq!(exit.status, ExitStatus::Unknown, "a lifeline/channel end carries no status");
        assert!(
            after_exit >= Duration::from_millis(GRANDCHILD_DELAY_MS),
            "wait() outlasted the wrapper ({after_exit:?}, {kind:?})"
        );
        assert!(out == expected_bytes, "byte-exact round trip through the grandchild ({kind:?})");
    }
}

#[test]
fn lifeline_waits_for_the_grandchild() {
    waits_for_grandchild(ExitDetection::Lifeline, Detection::Lifeline);
}

#[test]
fn channel_closed_waits_for_the_grandchild() {
    waits_for_grandchild(ExitDetection::ChannelClosed, Detection::ChannelClosed);
}

/// With channel-closed detection, dropping the read half must not leave the
/// program stuck on a full buffer: wait() drains what it still writes.
#[test]
fn channel_closed_wait_drains_when_reader_is_dropped() {
    for kind in [ChannelKind::Socket, ChannelKind::Pipes] {
        let mut child =
            helper(&["echo"]).exit_detection(ExitDetection::ChannelClosed).channel_kind(kind).spawn().unwrap();
        let (reader, mut writer) = child.take_channel().unwrap().split();
        drop(reader);
        let exit = bounded(LIMIT, "drain", move || {
            use std::io::Write;
            // More than any socket or pipe buffer, echoed back while wait()
            // runs.
            let feeder = std::thread::spawn(move || {
                writer.write_all(&vec![b'x'; 8 << 20]).unwrap();
                writer.shutdown().unwrap();
            });
            let exit = child.wait().unwrap();
            feeder.join().unwrap();
            exit
        });
        assert_eq!(exit.detection, Detection::ChannelClosed, "{kind:?}");
    }
}

/// A lifeline wait with a timeout returns None while the grandchild lives.
#[test]
fn lifeline_wait_timeout() {
    let mut child = wrapped(ExitDetection::Lifeline, ChannelKind::Socket);
    let mut channel = child.take_channel().unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    channel.shutdown_write().unwrap();
    let exit = child.wait_timeout(LIMIT).unwrap().expect("grandchild ends after EOF");
    assert_eq!(exit.detection, Detection::Lifeline);
}

/// A real detaching wrapper: `setsid -f` forks the program into a new
/// session and exits at once.
#[cfg(unix)]
#[test]
fn setsid_f_is_waited_for_through_the_lifeline_and_the_channel() {
    for detection in [ExitDetection::Lifeline, ExitDetection::ChannelClosed] {
        let start = Instant::now();
        let mut child = umbilical::Command::new("setsid")
            .args(["-f", HELPER, "echo-after", &GRANDCHILD_DELAY_MS.to_string()])
            .exit_detection(detection)
            .spawn()
            .unwrap();
        let channel = child.take_channel().unwrap();
        let (out, exit) = bounded(LIMIT, "setsid -f", move || {
            let reader = std::thread::spawn(move || round_trip(channel, b"via setsid".to_vec(), vec![5]));
            let exit = child.wait().unwrap();
            (reader.join().unwrap(), exit)
        });
        assert_eq!(out, b"via setsid");
        assert_eq!(exit.status, ExitStatus::Unknown);
        assert!(start.elapsed() >= Duration::from_millis(GRANDCHILD_DELAY_MS), "{detection:?} waited for the program");
    }
}

/// Windows: with a kill-on-close job, `kill()` ends the grandchild too, so
/// the lifeline closes at once.
#[cfg(windows)]
#[test]
fn kill_on_close_job_kills_the_whole_tree() {
    let mut child = helper(&["wrapper", "0", "30000"])
        .exit_detection(ExitDetection::Lifeline)
        .kill_on_close_job(true)
        .spawn()
        .unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(300)).unwrap(), None, "the grandchild holds the lifeline");
    let start = Instant::now();
    child.kill().unwrap();
    let exit = bounded(LIMIT, "wait after job kill", move || child.wait().unwrap());
    assert_eq!(exit.detection, Detection::Lifeline);
    assert!(start.elapsed() < Duration::from_secs(20), "the grandchild died with the job");
}
