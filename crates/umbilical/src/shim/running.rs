//! The programs a session's shim runs ([`crate::Session`]): counted for
//! its idle timeout, and ended together when the session closes.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::signal::Signal;
use crate::sys;

/// The programs running in one session.
pub(crate) struct Running {
    state: Mutex<State>,
    /// Notified as each program ends.
    changed: Condvar,
}

struct State {
    programs: Vec<(u64, Arc<sys::Process>)>,
    next: u64,
    /// Since when none runs (`None` while one does).
    idle_since: Option<Instant>,
    /// The session closes: a program that would start now is refused.
    closing: bool,
}

impl Running {
    pub(crate) fn new() -> Running {
        Running {
            state: Mutex::new(State {
                programs: Vec::new(),
                next: 0,
                idle_since: Some(Instant::now()),
                closing: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `process` in; its key for [`Running::remove`]. `None` once
    /// the session closes: the caller then ends the program itself.
    pub(crate) fn add(&self, process: Arc<sys::Process>) -> Option<u64> {
        let mut state = self.lock();
        if state.closing {
            return None;
        }
        let key = state.next;
        state.next += 1;
        state.programs.push((key, process));
        state.idle_since = None;
        Some(key)
    }

    /// The program `key` ended (it was waited for).
    pub(crate) fn remove(&self, key: u64) {
        let mut state = self.lock();
        state.programs.retain(|(k, _)| *k != key);
        if state.programs.is_empty() {
            state.idle_since = Some(Instant::now());
        }
        self.changed.notify_all();
    }

    /// How long no program has run (`None` while one runs).
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        self.lock().idle_since.map(|since| since.elapsed())
    }

    /// Closes the session: no program starts from now on; those running
    /// get SIGTERM (Windows: terminated), `grace` to end, then SIGKILL,
    /// and up to 2 s more to be reaped. Returns how many were still
    /// running after all that (0 when every one ended).
    pub(crate) fn end_all(&self, grace: Duration) -> usize {
        let mut state = self.lock();
        state.closing = true;
        for (_, process) in &state.programs {
            let _ = process.signal_or_terminate(here(Signal::Term));
        }
        state = self.wait_empty(state, Instant::now() + grace);
        for (_, process) in &state.programs {
            let _ = process.signal_or_terminate(here(Signal::Kill));
        }
        self.wait_empty(state, Instant::now() + Duration::from_secs(2)).programs.len()
    }

    fn wait_empty<'a>(&self, mut state: MutexGuard<'a, State>, until: Instant) -> MutexGuard<'a, State> {
        while !state.programs.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self.changed.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        state
    }
}

/// A program counted in a session's [`Running`], until this drops.
pub(crate) struct Counted<'a> {
    pub(crate) running: &'a Running,
    pub(crate) key: u64,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.running.remove(self.key);
    }
}

fn here(sig: Signal) -> i32 {
    super::here(sig)
}
