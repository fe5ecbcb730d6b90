//! One background thread for the whole process, however many children it
//! has: it reaps children dropped while still running, and it reads the
//! reports of shims whose callers are not waiting at the moment (closing
//! each control stream as soon as its report comes, which a launcher such
//! as ssh waits for before it ends the channel). A dropped `Child` leaves
//! no zombie, and a child started through the shim costs no thread.
//!
//! The thread (64 KiB of stack) starts with the first thing to watch. It then sleeps in one
//! `poll(2)` on every watched descriptor and a wake-up pipe, until the
//! nearest deadline any watch asked for; a watch gets a look only when one
//! of its descriptors turned ready or its deadline passed. A child without
//! a pidfd (old kernels, macOS/BSD) is looked at with growing pauses
//! (1 ms to 100 ms). A child already exited when dropped is reaped on the
//! spot and never reaches the thread.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use super::Process;
use crate::sys::Watch;

struct Background {
    watches: Mutex<Vec<Box<dyn Watch>>>,
    /// Written to when a watch is added, so the thread rebuilds its poll
    /// set at once.
    wake_read: OwnedFd,
    wake_write: OwnedFd,
}

static BACKGROUND: OnceLock<Option<Background>> = OnceLock::new();

/// Children held by the thread now.
static ORPHANS: AtomicUsize = AtomicUsize::new(0);

/// Hands `watch` to the background thread, starting the thread if this is
/// the first. Fails (giving the watch back) if no thread can be had.
pub(crate) fn watch(watch: Box<dyn Watch>) -> Result<(), Box<dyn Watch>> {
    let Some(bg) = BACKGROUND.get_or_init(start) else { return Err(watch) };
    lock(&bg.watches).push(watch);
    // A full pipe already holds a wake-up; any other error leaves the
    // thread to find the watch at its next look.
    let _ = rustix::io::write(&bg.wake_write, &[1]);
    Ok(())
}

/// Takes over `process`, dropped while running: it is reaped when it exits.
/// If no thread can be had, it stays a zombie until this process exits.
pub(crate) fn adopt(process: Process) {
    if !matches!(process.try_wait(), Ok(None)) {
        return; // exited (now reaped) or no longer ours to reap
    }
    ORPHANS.fetch_add(1, Ordering::Relaxed);
    let _ = watch(Box::new(Orphan { process, nap: Duration::from_millis(1), next: Instant::now() }));
}

/// How many dropped children the thread holds now (for tests and
/// benchmarks).
pub(crate) fn orphans() -> usize {
    ORPHANS.load(Ordering::Relaxed)
}

/// A child dropped while running.
struct Orphan {
    process: Process,
    /// Without a pidfd: the pause before the next look, and its time.
    nap: Duration,
    next: Instant,
}

impl Watch for Orphan {
    fn interest(&self, fds: &mut Vec<RawFd>) {
        fds.extend(self.process.pollable().map(|fd| fd.as_raw_fd()));
    }

    fn deadline(&self) -> Option<Instant> {
        self.process.pollable().is_none().then_some(self.next)
    }

    fn progress(&mut self) -> bool {
        if !matches!(self.process.try_wait(), Ok(None)) {
            return true;
        }
        if self.process.pollable().is_none() && Instant::now() >= self.next {
            self.nap = (self.nap * 2).min(Duration::from_millis(100));
            self.next = Instant::now() + self.nap;
        }
        false
    }
}

impl Drop for Orphan {
    fn drop(&mut self) {
        ORPHANS.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock(watches: &Mutex<Vec<Box<dyn Watch>>>) -> MutexGuard<'_, Vec<Box<dyn Watch>>> {
    watches.lock().unwrap_or_else(|e| e.into_inner())
}

fn start() -> Option<Background> {
    let (wake_read, wake_write) = super::fd::pipe().ok()?;
    rustix::io::ioctl_fionbio(&wake_read, true).ok()?;
    rustix::io::ioctl_fionbio(&wake_write, true).ok()?;
    std::thread::Builder::new()
        .name("umbilical-background".into())
        .stack_size(64 * 1024)
        .spawn(|| {
            // The thread starts only once the cell is set: wait for it.
            let bg = loop {
                if let Some(Some(bg)) = BACKGROUND.get() {
                    break bg;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            run(bg);
        })
        .ok()?;
    Some(Background { watches: Mutex::new(Vec::new()), wake_read, wake_write })
}

fn run(bg: &Background) -> ! {
    let mut fds: Vec<RawFd> = Vec::new();
    // For each entry of `fds`, the index of the watch it belongs to.
    let mut owners: Vec<usize> = Vec::new();
    loop {
        let (polled, deadline) = {
            let watches = lock(&bg.watches);
            fds.clear();
            owners.clear();
            for (i, w) in watches.iter().enumerate() {
                w.interest(&mut fds);
                owners.resize(fds.len(), i);
            }
            (watches.len(), watches.iter().filter_map(|w| w.deadline()).min())
        };
        let ready = match wait(bg.wake_read.as_fd(), &fds, deadline) {
            Ok(ready) => ready,
            Err(_) => {
                // poll failing (ENOMEM) must not spin: look again later.
                std::thread::sleep(Duration::from_millis(100));
                vec![false; fds.len()]
            }
        };
        drain(&bg.wake_read);
        let now = Instant::now();
        let mut watches = lock(&bg.watches);
        // Watches added while we slept get a first look; the others when
        // something of theirs is ready or due. Only this thread removes
        // watches, so the first `polled` indices are the ones polled.
        let mut due = vec![true; watches.len()];
        for (i, w) in watches.iter().enumerate().take(polled) {
            due[i] = w.deadline().is_some_and(|d| d <= now);
        }
        for (k, &r) in ready.iter().enumerate() {
            if r {
                due[owners[k]] = true;
            }
        }
        let mut i = 0;
        watches.retain_mut(|w| {
            let finished = due[i] && w.progress();
            i += 1;
            !finished
        });
    }
}

/// Sleeps until the wake-up pipe or one of `fds` is ready, or `deadline`
/// passes; says which of `fds` are ready.
fn wait(wake: BorrowedFd<'_>, fds: &[RawFd], deadline: Option<Instant>) -> io::Result<Vec<bool>> {
    // SAFETY: the descriptors belong to watches that keep them open until
    // this thread finishes them, which it does only after this call.
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) }).collect();
    let mut set: Vec<PollFd<'_>> = Vec::with_capacity(borrowed.len() + 1);
    set.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
    set.extend(borrowed.iter().map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN)));
    let timeout = deadline.map(|d| super::wait::timespec(d.saturating_duration_since(Instant::now())));
    match rustix::event::poll(&mut set, timeout.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL;
    Ok(set[1..].iter().map(|p| p.revents().intersects(ready)).collect())
}

fn drain(wake: &OwnedFd) {
    let mut buf = [0u8; 64];
    while matches!(rustix::io::read(wake, &mut buf), Ok(n) if n > 0) {}
}
