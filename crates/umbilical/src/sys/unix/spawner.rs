//! One thread that lives as long as the process, for spawns whose fate is
//! tied to the spawning thread.
//!
//! Linux delivers `PR_SET_PDEATHSIG` when the *thread* that started the
//! child exits, not the process (prctl(2): "the parent … is considered to
//! be the thread that created this process"). A program spawned with
//! `kill_on_parent_death` from a worker thread would be killed when that
//! thread finishes — Go's `Pdeathsig` users meet it (golang/go#27505), and
//! it is why they lock the goroutine to its thread. Such spawns run here
//! instead: the thread is started on first use and never exits, so the
//! signal comes when the process ends.

use std::io;
use std::sync::mpsc::{Sender, channel, sync_channel};
use std::sync::{Mutex, OnceLock};

/// A job handed to the thread; it only ever runs while its sender waits.
type Job = Box<dyn FnOnce() + Send + 'static>;

static JOBS: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();

/// Runs `f` on the long-lived spawning thread and returns its result.
pub(crate) fn run<R: Send>(f: impl FnOnce() -> R + Send) -> io::Result<R> {
    let jobs = match JOBS.get() {
        Some(jobs) => jobs,
        None => {
            let (tx, rx) = channel::<Job>();
            std::thread::Builder::new().name("umbilical-spawner".into()).stack_size(128 * 1024).spawn(move || {
                for job in rx {
                    job();
                }
            })?;
            // Two first users at once: one thread is lost to the race and
            // ends when its sender, never stored, drops.
            let _ = JOBS.set(Mutex::new(tx));
            JOBS.get().expect("set just above")
        }
    };
    let (done_tx, done_rx) = sync_channel::<std::thread::Result<R>>(1);
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let _ = done_tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    // SAFETY: only the lifetime is changed. The job borrows from this
    // frame, and this frame does not return before the job is over: it
    // waits below until the job sent its result, or until the job was
    // dropped unrun (the thread is gone: `recv` fails once the job and its
    // sender are dropped). A job is never kept after it ran.
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    let sent = jobs.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    if let Err(unsent) = sent {
        drop(unsent);
        return Err(io::Error::other("the spawning thread is gone"));
    }
    match done_rx.recv() {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(io::Error::other("the spawning thread is gone")),
    }
}
