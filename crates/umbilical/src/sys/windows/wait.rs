//! Lifeline and channel-closed detection on pipe handles.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{ERROR_BROKEN_PIPE, GetLastError, HANDLE};
use windows_sys::Win32::System::Pipes::PeekNamedPipe;

use super::handle::read_until;

/// Waits for EOF on a pipe nobody else reads (the lifeline), discarding
/// anything written into it.
///
/// OS reference: PeekNamedPipe / ReadFile (Microsoft Learn).
pub(crate) fn wait_eof(h: &OwnedHandle, deadline: Option<Instant>) -> io::Result<bool> {
    let mut scratch = [0u8; 512];
    loop {
        match read_until(h, &mut scratch, deadline)? {
            None => return Ok(false),
            Some(0) => return Ok(true),
            Some(_) => {}
        }
    }
}

/// Waits until the writers of the channel's read pipe are all gone.
///
/// Windows has no "hang-up" readiness for pipes, and the unread data
/// belongs to the caller, so this polls `PeekNamedPipe` (10 ms, backing off
/// to 50 ms). While unread data remains the pipe reports success, so the
/// end is seen once the caller has read what the program wrote.
pub(crate) fn wait_closed(h: &OwnedHandle, deadline: Option<Instant>) -> io::Result<bool> {
    let mut nap = Duration::from_millis(10);
    loop {
        let mut avail = 0u32;
        // SAFETY: valid pipe handle; only the count is asked for.
        let ok = unsafe {
            PeekNamedPipe(
                h.as_raw_handle() as HANDLE,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut avail,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            // SAFETY: no preconditions.
            let err = unsafe { GetLastError() };
            if err == ERROR_BROKEN_PIPE {
                return Ok(true);
            }
            return Err(io::Error::from_raw_os_error(err as i32));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(false);
        }
        std::thread::sleep(deadline.map_or(nap, |d| nap.min(d - now)));
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}
