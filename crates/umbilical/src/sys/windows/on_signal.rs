//! A callback run once when a handle turns signalled (a process exits), on
//! the system thread pool, whose wait threads each watch up to 63 handles:
//! how the blocking API learns of a shim's end without a thread of its own.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::sync::Mutex;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Threading::{
    INFINITE, RegisterWaitForSingleObject, UnregisterWaitEx, WT_EXECUTEONLYONCE,
};

type Callback = Box<dyn FnOnce() + Send>;

/// A registered wait; dropping it unregisters the wait, first waiting for
/// a callback already running to return.
pub(crate) struct OnSignal {
    wait: HANDLE,
    /// The callback until it runs (it takes itself out), freed on drop.
    context: *mut Mutex<Option<Callback>>,
    _handle: OwnedHandle,
}

// SAFETY: `wait` and `context` are only used by `drop`, from whichever
// thread drops, and by the callback through a `Mutex`; the callback is
// `Send`.
unsafe impl Send for OnSignal {}
// SAFETY: a shared `&OnSignal` gives access to nothing (no methods).
unsafe impl Sync for OnSignal {}

/// Runs on a thread-pool thread once the handle is signalled.
unsafe extern "system" fn fire(context: *mut c_void, _timed_out: bool) {
    // SAFETY: `context` is the slot `on_signal` leaked, freed only by
    // `OnSignal::drop` after the wait is unregistered and this callback
    // has returned.
    let slot = unsafe { &*(context as *const Mutex<Option<Callback>>) };
    let callback = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(callback) = callback {
        callback();
    }
}

/// Runs `callback` once `handle` is signalled (at once if it already is).
/// The callback must not drop the returned `OnSignal` (that would wait for
/// itself).
///
/// OS reference: RegisterWaitForSingleObject, UnregisterWaitEx (Microsoft
/// Learn).
pub(crate) fn on_signal(handle: OwnedHandle, callback: impl FnOnce() + Send + 'static) -> io::Result<OnSignal> {
    let context: *mut Mutex<Option<Callback>> = Box::into_raw(Box::new(Mutex::new(Some(Box::new(callback)))));
    let mut wait: HANDLE = std::ptr::null_mut();
    // SAFETY: `handle` stays open in the `OnSignal` for as long as the
    // wait; `context` stays valid until the wait is unregistered.
    let ok = unsafe {
        RegisterWaitForSingleObject(
            &mut wait,
            handle.as_raw_handle() as HANDLE,
            Some(fire),
            context as *const c_void,
            INFINITE,
            WT_EXECUTEONLYONCE,
        )
    };
    if ok == 0 {
        let err = io::Error::last_os_error();
        // SAFETY: the registration failed, so no callback holds `context`.
        drop(unsafe { Box::from_raw(context) });
        return Err(err);
    }
    Ok(OnSignal { wait, context, _handle: handle })
}

impl Drop for OnSignal {
    fn drop(&mut self) {
        // SAFETY: `wait` came from RegisterWaitForSingleObject and is
        // unregistered once; INVALID_HANDLE_VALUE makes the call wait for a
        // running callback, after which none can start, so the slot is
        // ours to free.
        unsafe {
            UnregisterWaitEx(self.wait, INVALID_HANDLE_VALUE);
            drop(Box::from_raw(self.context));
        }
    }
}
