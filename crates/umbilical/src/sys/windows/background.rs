//! The background watch (`sys::Watch`) on the system thread pool: no
//! thread of our own, whose wait threads each watch up to 63 handles.
//!
//! A watch moves on in rounds. A round registers one pool wait on each
//! handle the watch names, each with the watch's deadline as its timeout
//! (a never-set event stands in when it names none). The first callback
//! to fire takes the watch; it unregisters the round's other waits (each
//! then has run or never will), lets the watch move on and, unless it
//! finished, starts the next round. If the pool refuses a wait, a thread
//! of its own drives the watch with `WaitForMultipleObjects`.

use std::ffi::c_void;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::sync::{Arc, Mutex};

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE, WAIT_FAILED};
use windows_sys::Win32::System::Threading::{
    INFINITE, RegisterWaitForSingleObject, UnregisterWaitEx, WT_EXECUTEONLYONCE, WaitForMultipleObjects,
};

use super::handle::{manual_event, millis_until};
use crate::sys::Watch;

/// The most handles one `WaitForMultipleObjects` takes.
const MAXIMUM_WAIT_OBJECTS: usize = 64;

/// One round of a watch's waits.
struct Round {
    /// The watch, until a callback takes it.
    watch: Mutex<Option<Box<dyn Watch>>>,
    /// The registered waits, with the context each holds; locked while
    /// they are registered, so the winner sees them all.
    waits: Mutex<Vec<(HANDLE, *const Round)>>,
    /// Waited on for the deadline alone when the watch names no handle.
    _idle: Option<OwnedHandle>,
}

// SAFETY: the raw wait handles and context pointers are only used under
// the `waits` lock, by the one callback that took the watch; the watch is
// `Send`.
unsafe impl Send for Round {}
// SAFETY: as above; every field is behind a `Mutex` or never touched.
unsafe impl Sync for Round {}

/// Looks after `watch` until it is done: a first look at once, on the
/// caller's thread, then rounds on the thread pool. Never gives the watch
/// back: where the pool refuses, a thread drives it.
pub(crate) fn watch(mut watch: Box<dyn Watch>) -> Result<(), Box<dyn Watch>> {
    if !watch.progress() {
        next_round(watch);
    }
    Ok(())
}

/// Registers the next round of `watch`'s waits.
fn next_round(watch: Box<dyn Watch>) {
    let mut handles = Vec::new();
    watch.interest(&mut handles);
    let deadline = watch.deadline();
    let idle = match (handles.is_empty(), deadline) {
        // Nothing can move it on: one more look, and it is let go.
        (true, None) => {
            let mut watch = watch;
            watch.progress();
            return;
        }
        (true, Some(_)) => match manual_event() {
            Ok(event) => {
                handles.push(event.as_raw_handle());
                Some(event)
            }
            Err(_) => return on_a_thread(watch),
        },
        (false, _) => None,
    };
    let timeout = deadline.map_or(INFINITE, |d| millis_until(Some(d)));
    let round = Arc::new(Round { watch: Mutex::new(Some(watch)), waits: Mutex::new(Vec::new()), _idle: idle });
    let mut waits = round.waits.lock().unwrap_or_else(|e| e.into_inner());
    for &h in &handles {
        let context = Arc::into_raw(round.clone());
        let mut wait: HANDLE = std::ptr::null_mut();
        // SAFETY: the watch keeps `h` open until it finishes, and it
        // finishes only after every wait of this round is unregistered;
        // `context` holds a reference to the round until this wait is
        // unregistered (see `fire`).
        let ok = unsafe {
            RegisterWaitForSingleObject(
                &mut wait,
                h as HANDLE,
                Some(fire),
                context as *const c_void,
                timeout,
                WT_EXECUTEONLYONCE,
            )
        };
        if ok == 0 {
            // SAFETY: the registration failed, so nothing else holds this
            // reference.
            drop(unsafe { Arc::from_raw(context) });
            break;
        }
        waits.push((wait, context));
    }
    let registered = waits.len();
    drop(waits);
    if registered < handles.len() {
        // A round that misses a handle could sleep through its readiness:
        // take the watch back (unless a callback already has it) and let
        // a thread drive it.
        let taken = round.watch.lock().unwrap_or_else(|e| e.into_inner()).take();
        let waits = std::mem::take(&mut *round.waits.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(watch) = taken {
            unregister_all(waits, None);
            on_a_thread(watch);
        }
    }
}

/// Runs on a pool thread when a handle of a round is signalled or the
/// round's deadline passed.
unsafe extern "system" fn fire(context: *mut c_void, _timed_out: bool) {
    let context = context as *const Round;
    // SAFETY: `context` holds a reference to the round until this wait is
    // unregistered, which the winner below does only once this callback
    // has returned (blocking for the others, and for its own once it
    // returns).
    let round = unsafe { &*context };
    let Some(watch) = round.watch.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        // Another wait of the round fired first; it unregisters this one.
        return;
    };
    // Blocks until the round is fully registered.
    let waits = std::mem::take(&mut *round.waits.lock().unwrap_or_else(|e| e.into_inner()));
    unregister_all(waits, Some(context));
    // This callback's own reference goes last: nothing touches the round
    // after this.
    // SAFETY: the reference `next_round` made for this wait, whose
    // unregistering (above, non-blocking) cannot run this callback again.
    drop(unsafe { Arc::from_raw(context) });
    let mut watch = watch;
    if !watch.progress() {
        next_round(watch);
    }
}

/// Unregisters `waits` and drops the references their contexts held.
/// `own`, the calling callback's wait, is unregistered without waiting
/// (it is running) and its reference left to the caller; the others are
/// waited for, so none of them runs after this.
fn unregister_all(waits: Vec<(HANDLE, *const Round)>, own: Option<*const Round>) {
    for (wait, context) in waits {
        if Some(context) == own {
            // SAFETY: a wait of this round; unregistering it without
            // waiting is allowed from its own callback.
            unsafe { UnregisterWaitEx(wait, std::ptr::null_mut()) };
            continue;
        }
        // SAFETY: a wait of this round, unregistered once; waiting for its
        // callback cannot deadlock, because a callback that does not take
        // the watch returns at once.
        unsafe { UnregisterWaitEx(wait, INVALID_HANDLE_VALUE) };
        // SAFETY: its callback has returned or never will run: its
        // reference is released exactly here.
        drop(unsafe { Arc::from_raw(context) });
    }
}

/// Drives `watch` on a thread of its own, where the pool refused a wait.
fn on_a_thread(watch: Box<dyn Watch>) {
    let mut watch = watch;
    let spawned = std::thread::Builder::new().name("umbilical-watch".into()).stack_size(64 * 1024).spawn(move || {
        let mut handles = Vec::new();
        loop {
            handles.clear();
            watch.interest(&mut handles);
            handles.truncate(MAXIMUM_WAIT_OBJECTS);
            let deadline = watch.deadline();
            if handles.is_empty() {
                match deadline {
                    Some(d) => std::thread::sleep(d.saturating_duration_since(std::time::Instant::now())),
                    None => {
                        watch.progress();
                        return;
                    }
                }
            } else {
                let raw: Vec<HANDLE> = handles.iter().map(|&h| h as HANDLE).collect();
                // SAFETY: the watch keeps its handles open until it
                // finishes; the array outlives the call.
                let r = unsafe { WaitForMultipleObjects(raw.len() as u32, raw.as_ptr(), 0, millis_until(deadline)) };
                if r == WAIT_FAILED {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
            if watch.progress() {
                return;
            }
        }
    });
    // Without a thread either, the watch is lost with what it holds; its
    // waiter sees the end never published, as it would a dead shim.
    drop(spawned);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sys::Waitable;

    /// Finishes once `event` is signalled or, with `until`, at that time;
    /// counts its looks.
    struct Waiter {
        event: Option<OwnedHandle>,
        until: Option<Instant>,
        looks: Arc<AtomicUsize>,
        done: Arc<(Mutex<bool>, std::sync::Condvar)>,
    }

    impl Watch for Waiter {
        fn interest(&self, out: &mut Vec<Waitable>) {
            out.extend(self.event.as_ref().map(|e| e.as_raw_handle()));
        }
        fn deadline(&self) -> Option<Instant> {
            self.until
        }
        fn progress(&mut self) -> bool {
            self.looks.fetch_add(1, Ordering::SeqCst);
            let signalled = self.event.as_ref().is_some_and(|e| crate::sys::is_ready(e.as_raw_handle()));
            let due = self.until.is_some_and(|u| Instant::now() >= u);
            if signalled || due {
                *self.done.0.lock().unwrap() = true;
                self.done.1.notify_all();
                return true;
            }
            false
        }
    }

    fn finished(done: &(Mutex<bool>, std::sync::Condvar), within: Duration) -> bool {
        let guard = done.0.lock().unwrap();
        let (guard, _) = done.1.wait_timeout_while(guard, within, |d| !*d).unwrap();
        *guard
    }

    #[test]
    fn a_watch_moves_on_when_its_handle_is_signalled() {
        let event = manual_event().unwrap();
        let raw = event.as_raw_handle();
        let done = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let looks = Arc::new(AtomicUsize::new(0));
        let w = Waiter { event: Some(event), until: None, looks: looks.clone(), done: done.clone() };
        assert!(watch(Box::new(w)).is_ok());
        assert!(!finished(&done, Duration::from_millis(200)), "finished before its event was set");
        // SAFETY: the watch keeps the event open until it finishes.
        unsafe { windows_sys::Win32::System::Threading::SetEvent(raw as HANDLE) };
        assert!(finished(&done, Duration::from_secs(10)), "not finished 10 s after its event was set");
        assert_eq!(looks.load(Ordering::SeqCst), 2, "one look when handed over, one when signalled");
    }

    #[test]
    fn a_watch_with_only_a_deadline_moves_on_at_it() {
        let done = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let start = Instant::now();
        let w = Waiter {
            event: None,
            until: Some(start + Duration::from_millis(300)),
            looks: Arc::default(),
            done: done.clone(),
        };
        assert!(watch(Box::new(w)).is_ok());
        assert!(finished(&done, Duration::from_secs(10)), "not finished 10 s after its deadline");
        assert!(start.elapsed() >= Duration::from_millis(300), "finished before its deadline");
    }

    #[test]
    fn many_watches_at_once_each_finish_once() {
        let mut events = Vec::new();
        let mut all = Vec::new();
        for _ in 0..150 {
            let event = manual_event().unwrap();
            events.push(event.as_raw_handle());
            let mine = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
            all.push(mine.clone());
            let w = Waiter { event: Some(event), until: None, looks: Arc::default(), done: mine };
            assert!(watch(Box::new(w)).is_ok());
        }
        for raw in events {
            // SAFETY: each watch keeps its event open until it finishes.
            unsafe { windows_sys::Win32::System::Threading::SetEvent(raw as HANDLE) };
        }
        for (i, mine) in all.iter().enumerate() {
            assert!(finished(mine, Duration::from_secs(20)), "watch {i} of 150 never finished");
        }
    }
}
