//! [`Command::wait_delay`](crate::Command::wait_delay), Go's `WaitDelay`:
//! once the program has ended, how long whatever still holds its output
//! (a background child it left behind) may keep a reader waiting.
//!
//! The race it closes: `sh -c 'sleep 600 & echo done'` ends at once, but
//! the `sleep` holds its stdout, so a reader waits ten minutes for an end
//! of file — go#23019 and go#50436 are that report, and Python's
//! `communicate()` hangs the same way. One [`Cutoff`] per child is shared
//! by its channel's read half and its stderr; the first wait that sees the
//! end sets the moment, and reads stop there: end of file, with the reader
//! marked truncated.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::sys::{self, Handle};

/// How long a blocking read or write waits at once while the end is not
/// yet known: a reader blocked in another thread notices the cutoff at
/// most this late.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// When reads of one child's output stop.
pub(crate) struct Cutoff {
    delay: Duration,
    /// The end as first seen, plus `delay`.
    at: OnceLock<Instant>,
    /// Tasks reading before the end was seen, woken when it is (the async
    /// layer; empty otherwise).
    /// Tasks to wake when the moment becomes known (the async layer).
    pub(crate) wakers: std::sync::Mutex<Vec<std::task::Waker>>,
}

impl Cutoff {
    pub(crate) fn new(delay: Duration) -> Arc<Cutoff> {
        Arc::new(Cutoff { delay, at: OnceLock::new(), wakers: std::sync::Mutex::new(Vec::new()) })
    }

    /// A wait saw the program's end now; later calls change nothing.
    pub(crate) fn program_ended(&self) {
        let _ = self.at.set(Instant::now() + self.delay);
        for waker in std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner())) {
            waker.wake();
        }
    }

    /// When reads stop, once the end was seen.
    pub(crate) fn at(&self) -> Option<Instant> {
        self.at.get().copied()
    }

    /// The deadline for the next wait of a blocking read or write, or
    /// `None` once the cutoff has passed.
    fn next_deadline(&self) -> Option<Instant> {
        let now = Instant::now();
        match self.at() {
            Some(at) if now >= at => None,
            Some(at) => Some(at),
            None => Some(now + LOOK_EVERY),
        }
    }

    /// A blocking read of `handle` that ends at the cutoff: `Ok(0)`, with
    /// `truncated` set.
    pub(crate) fn read(&self, handle: &Handle, buf: &mut [u8], truncated: &AtomicBool) -> io::Result<usize> {
        loop {
            let Some(deadline) = self.next_deadline() else {
                truncated.store(true, Ordering::Release);
                return Ok(0);
            };
            if let Some(n) = sys::read_until(handle, buf, Some(deadline))? {
                return Ok(n);
            }
        }
    }

    /// A blocking write to `handle` that gives up at the cutoff: `Ok(None)`.
    pub(crate) fn write(&self, handle: &Handle, buf: &[u8], socket: bool) -> io::Result<Option<usize>> {
        loop {
            let Some(deadline) = self.next_deadline() else { return Ok(None) };
            if let Some(n) = sys::write_until(handle, buf, socket, Some(deadline))? {
                return Ok(Some(n));
            }
        }
    }
}
