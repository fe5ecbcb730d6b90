//! Exit statuses, kill, timeouts, and no zombie or descriptor left behind.

mod common;

use std::time::{Duration, Instant};

use common::*;
use umbilical::{Detection, ExitStatus};

#[test]
fn exit_codes_are_exact() {
    let _g = fd_lock();
    for code in [0, 1, 3, 255] {
        let exit = helper(&["exit", &code.to_string()]).spawn().unwrap().wait().unwrap();
        assert_eq!(exit.status, ExitStatus::Exited(code));
        assert_eq!(exit.detection, Detection::Process);
        assert_eq!(exit.success(), code == 0);
    }
}

#[cfg(unix)]
#[test]
fn deaths_by_signal_are_reported() {
    let _g = fd_lock();
    for sig in [rustix::process::Signal::KILL, rustix::process::Signal::TERM] {
        let n = sig.as_raw();
        let exit = helper(&["signal", &n.to_string()]).spawn().unwrap().wait().unwrap();
        assert_eq!(exit.status, ExitStatus::Signaled(n));
        assert_eq!(exit.signal(), Some(n));
        assert_eq!(exit.code(), None);
    }
}

#[test]
fn kill_ends_a_running_program() {
    let _g = fd_lock();
    let mut child = helper(&["sleep", "30000"]).spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None, "still running");
    child.kill().unwrap();
    let exit = bounded(LIMIT, "wait after kill", move || child.wait().unwrap());
    // SIGKILL on Unix; TerminateProcess with exit code 1 on Windows.
    let expected = if cfg!(unix) { ExitStatus::Signaled(9) } else { ExitStatus::Exited(1) };
    assert_eq!(exit.status, expected);
}

#[test]
fn kill_after_exit_is_not_an_error() {
    let _g = fd_lock();
    let mut child = helper(&["exit", "0"]).spawn().unwrap();
    child.wait().unwrap();
    child.kill().unwrap();
    // wait() again returns the same result.
    assert_eq!(child.wait().unwrap().status, ExitStatus::Exited(0));
}

#[test]
fn wait_timeout_both_ways() {
    let _g = fd_lock();
    let mut child = helper(&["sleep", "500"]).spawn().unwrap();
    let start = Instant::now();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(50), "waited the whole timeout");
    let exit = child.wait_timeout(Duration::from_secs(30)).unwrap().expect("ended within the timeout");
    assert_eq!(exit.status, ExitStatus::Exited(0));

    // The waitpid fallback path (no pidfd) cannot be forced from here; the
    // pidfd path is what Linux uses and is exercised above.
    let mut quick = helper(&["exit", "4"]).spawn().unwrap();
    let exit = quick.wait_timeout(Duration::from_secs(30)).unwrap().unwrap();
    assert_eq!(exit.code(), Some(4));
}

#[test]
fn a_thousand_cycles_leave_no_zombie_and_no_descriptor() {
    let _g = fd_lock();
    // Warm up lazily created state (dlsym cache, std's env lock, the
    // per-thread event on Windows).
    helper(&["exit", "0"]).spawn().unwrap().wait().unwrap();
    let before = open_fd_count();
    // Under Wine a spawn costs tens of milliseconds; 200 cycles there.
    let cycles = if cfg!(windows) { 200 } else { 1000 };
    let mut pids = Vec::with_capacity(cycles);
    for i in 0..cycles as i32 {
        let mut child = helper(&["exit", &(i % 7).to_string()]).spawn().unwrap();
        pids.push(child.id().unwrap());
        assert_eq!(child.wait().unwrap().code(), Some(i % 7));
    }
    assert_eq!(open_fd_count(), before, "descriptor count back to its start");
    #[cfg(unix)]
    {
        let zombies: Vec<u32> = pids.into_iter().filter(|&p| is_zombie(p)).collect();
        assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    }
    #[cfg(windows)]
    drop(pids);
}

#[cfg(unix)]
#[test]
fn dropping_a_running_child_leaves_no_zombie() {
    let _g = fd_lock();
    let child = helper(&["sleep", "200"]).spawn().unwrap();
    let pid = child.id().unwrap();
    drop(child);
    // The background reaper collects it after it exits; poll for at most
    // LIMIT.
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) || is_zombie(pid) {
        assert!(start.elapsed() < LIMIT, "pid {pid} not reaped");
        std::thread::sleep(Duration::from_millis(20));
    }

    // One that has already exited is reaped by drop itself.
    let mut child = helper(&["exit", "0"]).spawn().unwrap();
    let pid = child.id().unwrap();
    child.take_channel();
    std::thread::sleep(Duration::from_millis(200));
    drop(child);
    assert!(!is_zombie(pid));
}

/// Issue #13: dropping 500 running children used to start 500 reaper
/// threads; now one thread reaps them all (the process has its main thread
/// and that one), and none is left a zombie once they are killed. Runs in a
/// helper process, so that this test binary's own threads do not count.
#[cfg(target_os = "linux")]
#[test]
fn five_hundred_dropped_children_cost_one_thread_and_leave_no_zombie() {
    let out = bounded(LIMIT, "drop-many", || {
        std::process::Command::new(HELPER).args(["drop-many", "500"]).output().expect("run the helper")
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("threads=2\n"), "main thread + one reaper: {text}");
    assert!(text.contains("left=0\n"), "every dropped child reaped after it was killed: {text}");
}

/// Issues #11 and #13: through the shim, a live child used to cost a
/// thread reading its link until its end. Now the process's one
/// background thread reads every link: 40 live children through the shim
/// leave the helper with its main thread and that one. The reports still
/// come while nobody waits (a `try_wait` sees the status), kills and
/// waits still give `Signaled(9)`, and nothing is left running.
#[cfg(target_os = "linux")]
#[test]
fn forty_children_through_the_shim_cost_one_thread() {
    let out = bounded(LIMIT, "shim-many", || {
        std::process::Command::new(HELPER).args(["shim-many", "40"]).output().expect("run the helper")
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("threads=2\n"), "main thread + the background one, with 41 live shim children: {text}");
    assert!(text.contains("early=Exited(3)\n"), "the report read with nobody waiting: {text}");
    assert!(text.contains("killed=20\n"), "each kill through the shim gave Signaled(9): {text}");
    assert!(text.contains("threads_after=2\n"), "{text}");
    assert!(text.contains("left=0\n"), "every shim and program ended and reaped: {text}");
}

/// The same on Windows: each shim child's report is read on its exit by a
/// wait of the system thread pool (63 to a wait thread), where each had a
/// thread before. 41 live shim children add a few pool threads at most
/// (a Toolhelp snapshot), not 41; kills through the shim still end each
/// program (`Exited(1)`, `TerminateProcess`).
#[cfg(windows)]
#[test]
fn forty_children_through_the_shim_add_no_thread_each() {
    forty_shim_children_add_few_threads(&[], "a thread each would be 41");
}

/// The same, elevated (UAC through the shim, which Wine carries out without
/// a prompt) with our stderr inherited: an elevated program cannot inherit
/// it, so its stderr comes back through a pipe copied to ours. The copy
/// runs on the system thread pool's completion port; each child had a
/// thread for it before.
#[cfg(windows)]
#[test]
fn forty_elevated_children_with_relayed_stderr_add_no_thread_each() {
    forty_shim_children_add_few_threads(&["runas"], "a relay thread each would be 41+");
}

/// Runs the helper's `shim-many 40` (with `extra` arguments) and checks:
/// at most 4 threads added for 41 live children, the quick one's report
/// seen with nobody waiting, and 20 kills through the shim.
#[cfg(windows)]
fn forty_shim_children_add_few_threads(extra: &'static [&'static str], per_child: &str) {
    let mut args = vec!["shim-many", "40"];
    args.extend_from_slice(extra);
    let out = bounded(LIMIT, "shim-many", move || {
        std::process::Command::new(HELPER).args(&args).output().expect("run the helper")
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let added: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("added="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no added= line: {text}"));
    assert!(added <= 4, "41 live shim children {extra:?} added {added} threads ({per_child}): {text}");
    assert!(text.contains("early=Exited(3)"), "the report read with nobody waiting: {text}");
    assert!(text.contains("killed=20"), "each kill through the shim ended its program: {text}");
}
