//! One background thread for the whole process that reaps children dropped
//! while still running, however many there are: a dropped `Child` leaves
//! no zombie and costs no thread of its own.
//!
//! The thread starts with the first child that needs it and then sleeps in
//! one `poll(2)` on every such child's pidfd (Linux) and a wake-up pipe; a
//! child without a pidfd (old kernels, macOS/BSD) is looked at with growing
//! pauses (1 ms to 100 ms). A child already exited when dropped is reaped
//! on the spot and never reaches the thread.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};

use super::Process;

struct Reaper {
    orphans: Mutex<Vec<Process>>,
    /// Written to when an orphan is added, so the thread rebuilds its poll
    /// set at once.
    wake_read: OwnedFd,
    wake_write: OwnedFd,
}

static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();

/// Takes over `process`, dropped while running: it is reaped when it exits.
/// If no thread can be had, it stays a zombie until this process exits.
pub(crate) fn adopt(process: Process) {
    if !matches!(process.try_wait(), Ok(None)) {
        return; // exited (now reaped) or no longer ours to reap
    }
    let Some(reaper) = REAPER.get_or_init(start) else { return };
    reaper.orphans.lock().unwrap_or_else(|e| e.into_inner()).push(process);
    // A full pipe already holds a wake-up; any error leaves the thread to
    // find the orphan at its next look.
    let _ = rustix::io::write(&reaper.wake_write, &[1]);
}

/// How many children the reaper holds now (for tests and benchmarks).
pub(crate) fn orphans() -> usize {
    REAPER.get().and_then(Option::as_ref).map_or(0, |r| r.orphans.lock().unwrap_or_else(|e| e.into_inner()).len())
}

fn start() -> Option<Reaper> {
    let (wake_read, wake_write) = super::fd::pipe().ok()?;
    rustix::io::ioctl_fionbio(&wake_read, true).ok()?;
    rustix::io::ioctl_fionbio(&wake_write, true).ok()?;
    std::thread::Builder::new()
        .name("umbilical-reaper".into())
        .stack_size(64 * 1024)
        .spawn(|| {
            // The thread starts only once the cell is set: wait for it.
            let reaper = loop {
                if let Some(Some(r)) = REAPER.get() {
                    break r;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            run(reaper);
        })
        .ok()?;
    Some(Reaper { orphans: Mutex::new(Vec::new()), wake_read, wake_write })
}

fn run(reaper: &Reaper) -> ! {
    let mut nap = Duration::from_millis(1);
    loop {
        // Reap what has exited; keep the rest. Only this thread removes
        // orphans, so their descriptors stay open while it polls them.
        let (fds, blind) = {
            let mut orphans = reaper.orphans.lock().unwrap_or_else(|e| e.into_inner());
            orphans.retain(|p| matches!(p.try_wait(), Ok(None)));
            let fds: Vec<i32> = orphans.iter().filter_map(|p| p.pollable().map(raw)).collect();
            let blind = orphans.len() > fds.len();
            (fds, blind)
        };
        let timeout = if blind { Some(nap) } else { None };
        nap = if blind { (nap * 2).min(Duration::from_millis(100)) } else { Duration::from_millis(1) };
        if wait(reaper.wake_read.as_fd(), &fds, timeout).is_err() {
            // poll failing (ENOMEM) must not spin: look again later.
            std::thread::sleep(Duration::from_millis(100));
        }
        drain(&reaper.wake_read);
    }
}

fn raw(fd: BorrowedFd<'_>) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(&fd)
}

/// Sleeps until the wake-up pipe or one of the pidfds is readable, or the
/// timeout passes.
fn wait(wake: BorrowedFd<'_>, pidfds: &[i32], timeout: Option<Duration>) -> io::Result<()> {
    // SAFETY: the descriptors belong to orphans that only this thread
    // removes, so they stay open for this call.
    let borrowed: Vec<BorrowedFd<'_>> = pidfds.iter().map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) }).collect();
    let mut set: Vec<PollFd<'_>> = Vec::with_capacity(borrowed.len() + 1);
    set.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
    set.extend(borrowed.iter().map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN)));
    let timeout = timeout.map(super::wait::timespec);
    match rustix::event::poll(&mut set, timeout.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn drain(wake: &OwnedFd) {
    let mut buf = [0u8; 64];
    while matches!(rustix::io::read(wake, &mut buf), Ok(n) if n > 0) {}
}
