//! Blocking reads and writes on overlapped handles.
//!
//! The parent's pipe ends are opened for overlapped I/O (so that an async
//! layer can later tie them to a completion port, and so that a wait can
//! be cancelled), yet `Read`/`Write` must block. Each operation therefore
//! starts overlapped and waits for its own completion on an event owned by
//! the calling thread.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::time::Instant;

use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_HANDLE_EOF, ERROR_IO_PENDING, ERROR_OPERATION_ABORTED, GetLastError, HANDLE,
    WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Threading::{CreateEventW, WaitForSingleObject};

thread_local! {
    /// One manual-reset event per thread: a thread has at most one
    /// operation in flight, because every operation here waits for itself.
    static EVENT: io::Result<OwnedHandle> = manual_event();
}

/// A new manual-reset event, not set.
pub(crate) fn manual_event() -> io::Result<OwnedHandle> {
    // SAFETY: plain event creation; the handle is owned at once.
    let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
    if h.is_null() {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: `h` is a fresh, valid handle nobody else owns.
        Ok(unsafe { <OwnedHandle as std::os::windows::io::FromRawHandle>::from_raw_handle(h) })
    }
}

/// Milliseconds left until `deadline`, for Win32 waits (`INFINITE` never,
/// since `u32::MAX - 1` is 49 days and the caller loops).
pub(crate) fn millis_until(deadline: Option<Instant>) -> u32 {
    match deadline {
        None => u32::MAX - 1,
        Some(d) => d.saturating_duration_since(Instant::now()).as_millis().min(u128::from(u32::MAX - 1)) as u32,
    }
}

/// Runs one overlapped operation to completion, or until `deadline`, when
/// it is cancelled. `Ok(None)` means the deadline passed first.
///
/// OS reference: GetOverlappedResult, CancelIoEx (Microsoft Learn).
pub(crate) fn overlapped(
    h: &OwnedHandle,
    deadline: Option<Instant>,
    start: impl FnOnce(HANDLE, *mut OVERLAPPED) -> i32,
) -> io::Result<Option<u32>> {
    EVENT.with(|event| {
        let event = event.as_ref().map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
        let handle = h.as_raw_handle() as HANDLE;
        // SAFETY: `ov` lives on this stack frame until the operation has
        // completed or been cancelled and completed: every path below ends
        // with GetOverlappedResult(wait = TRUE) before `ov` goes away. The
        // buffers `start` passes are borrowed by the caller for that long.
        unsafe {
            let mut ov: OVERLAPPED = std::mem::zeroed();
            // The low bit set keeps the completion off any completion port
            // the handle is tied to (the async layer ties the channel's
            // ends to tokio's): this operation waits for itself, and a
            // packet in tokio's port would point at this stack frame
            // (GetQueuedCompletionStatus, Microsoft Learn; libuv does the
            // same).
            ov.hEvent = (event.as_raw_handle() as usize | 1) as HANDLE;
            if start(handle, &mut ov) == 0 {
                let err = GetLastError();
                if err != ERROR_IO_PENDING {
                    return Err(io::Error::from_raw_os_error(err as i32));
                }
                loop {
                    match WaitForSingleObject(event.as_raw_handle() as HANDLE, millis_until(deadline)) {
                        WAIT_OBJECT_0 => break,
                        WAIT_TIMEOUT if deadline.is_some_and(|d| Instant::now() >= d) => {
                            CancelIoEx(handle, &ov);
                            let mut n = 0u32;
                            if GetOverlappedResult(handle, &ov, &mut n, 1) == 0 {
                                let err = GetLastError();
                                if err == ERROR_OPERATION_ABORTED {
                                    return Ok(None);
                                }
                                return Err(io::Error::from_raw_os_error(err as i32));
                            }
                            // It completed while being cancelled.
                            return Ok(Some(n));
                        }
                        WAIT_TIMEOUT => continue,
                        _ => return Err(io::Error::last_os_error()),
                    }
                }
            }
            let mut n = 0u32;
            if GetOverlappedResult(handle, &ov, &mut n, 1) == 0 {
                return Err(io::Error::from_raw_os_error(GetLastError() as i32));
            }
            Ok(Some(n))
        }
    })
}

fn chunk(len: usize) -> u32 {
    len.min(u32::MAX as usize) as u32
}

/// Reads, waiting at most until `deadline`; `Ok(None)` on timeout. A
/// writer that closed its end is EOF (`Ok(Some(0))`).
///
/// OS reference: ReadFile (Microsoft Learn).
pub(crate) fn read_until(h: &OwnedHandle, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<Option<usize>> {
    let ptr = buf.as_mut_ptr();
    let len = chunk(buf.len());
    // SAFETY: `buf` outlives the operation (see `overlapped`).
    match overlapped(h, deadline, |handle, ov| unsafe { ReadFile(handle, ptr, len, std::ptr::null_mut(), ov) }) {
        Ok(n) => Ok(n.map(|n| n as usize)),
        Err(e) if matches!(e.raw_os_error(), Some(c) if c == ERROR_BROKEN_PIPE as i32 || c == ERROR_HANDLE_EOF as i32) => {
            Ok(Some(0))
        }
        Err(e) => Err(e),
    }
}

/// OS reference: ReadFile (Microsoft Learn).
pub(crate) fn read(h: &OwnedHandle, buf: &mut [u8]) -> io::Result<usize> {
    Ok(read_until(h, buf, None)?.unwrap_or(0))
}

/// Writes to a pipe, waiting at most until `deadline` (then cancelled:
/// `Ok(None)`, or what was written before). No sockets here: `_socket`
/// is always `false`.
///
/// OS reference: WriteFile, CancelIoEx (Microsoft Learn).
pub(crate) fn write_until(
    h: &OwnedHandle,
    buf: &[u8],
    _socket: bool,
    deadline: Option<Instant>,
) -> io::Result<Option<usize>> {
    let ptr = buf.as_ptr();
    let len = chunk(buf.len());
    // SAFETY: `buf` outlives the operation (see `overlapped`).
    let n = overlapped(h, deadline, |handle, ov| unsafe { WriteFile(handle, ptr, len, std::ptr::null_mut(), ov) })?;
    Ok(n.map(|n| n as usize))
}

/// Writes to a pipe; a reader that went away is
/// [`io::ErrorKind::BrokenPipe`] (`ERROR_NO_DATA`/`ERROR_BROKEN_PIPE`).
///
/// OS reference: WriteFile (Microsoft Learn).
pub(crate) fn write_pipe(h: &OwnedHandle, buf: &[u8]) -> io::Result<usize> {
    let ptr = buf.as_ptr();
    let len = chunk(buf.len());
    // SAFETY: `buf` outlives the operation (see `overlapped`).
    let n = overlapped(h, None, |handle, ov| unsafe { WriteFile(handle, ptr, len, std::ptr::null_mut(), ov) })?;
    Ok(n.unwrap_or(0) as usize)
}
