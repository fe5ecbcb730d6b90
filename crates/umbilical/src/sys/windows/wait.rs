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

/// Waits until the reading end of the pipe we write (the program's stdin)
/// is closed by every holder, without writing.
///
/// A pipe's writer has no readiness for it either; the pipe's state
/// (`FilePipeLocalInformation`, which libuv reads on write handles too)
/// turns to closing once the other end is gone. Polled as `wait_closed`
/// is. Reading the state needs `FILE_READ_ATTRIBUTES`, which a write-only
/// server end lacks: ours are created duplex for it (`pipe.rs`). A handle
/// without it is [`io::ErrorKind::Unsupported`].
///
/// OS reference: NtQueryInformationFile, FILE_PIPE_LOCAL_INFORMATION
/// (Microsoft Learn).
pub(crate) fn wait_readers_gone(h: &OwnedHandle, deadline: Option<Instant>) -> io::Result<bool> {
    let mut nap = Duration::from_millis(10);
    loop {
        if readers_gone(h)? {
            return Ok(true);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(false);
        }
        std::thread::sleep(deadline.map_or(nap, |d| nap.min(d - now)));
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// Whether the other end of the pipe `h` is closed, without waiting.
pub(crate) fn readers_gone(h: &OwnedHandle) -> io::Result<bool> {
    use windows_sys::Wdk::Storage::FileSystem::{
        FILE_PIPE_CLOSING_STATE, FILE_PIPE_DISCONNECTED_STATE, FILE_PIPE_LOCAL_INFORMATION, FilePipeLocalInformation,
        NtQueryInformationFile,
    };
    use windows_sys::Win32::Foundation::{RtlNtStatusToDosError, STATUS_ACCESS_DENIED, STATUS_PIPE_BROKEN};
    use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

    let mut info = FILE_PIPE_LOCAL_INFORMATION::default();
    // SAFETY: all-zero is a valid IO_STATUS_BLOCK to be written.
    let mut status: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle; `info` and `status` are live locals of the
    // size given, written by the call only.
    let rc = unsafe {
        NtQueryInformationFile(
            h.as_raw_handle() as HANDLE,
            &mut status,
            (&raw mut info).cast(),
            size_of::<FILE_PIPE_LOCAL_INFORMATION>() as u32,
            FilePipeLocalInformation,
        )
    };
    match rc {
        0 => Ok(matches!(info.NamedPipeState, FILE_PIPE_CLOSING_STATE | FILE_PIPE_DISCONNECTED_STATE)),
        STATUS_PIPE_BROKEN => Ok(true),
        STATUS_ACCESS_DENIED => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this pipe handle may not read its state (FILE_READ_ATTRIBUTES), so its reader's close cannot be seen",
        )),
        // SAFETY: no preconditions.
        other => Err(io::Error::from_raw_os_error(unsafe { RtlNtStatusToDosError(other) } as i32)),
    }
}
