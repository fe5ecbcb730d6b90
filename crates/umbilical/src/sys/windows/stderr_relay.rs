//! Copying a pipe into our stderr without a thread of its own: the pipe is
//! bound to the system thread pool's I/O completion port
//! (`BindIoCompletionCallback`), and each completed overlapped read writes
//! what it got to our stderr and starts the next read, on a pool thread.
//!
//! For an elevated program (UAC through the shim), which cannot inherit our
//! stderr: it writes into a pipe of ours, and this puts the bytes where an
//! inherited stderr would have. A thread each was the cost before; a
//! thousand elevated helpers would have been a thousand threads.

use std::io::{self, Write};
use std::os::windows::io::{AsRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{ERROR_IO_PENDING, GetLastError, HANDLE};
use windows_sys::Win32::Storage::FileSystem::ReadFile;
use windows_sys::Win32::System::IO::{BindIoCompletionCallback, OVERLAPPED};
use windows_sys::Win32::System::Threading::SetEvent;

const CHUNK: usize = 16 * 1024;

/// One relay: the OVERLAPPED first, so that the pointer the pool hands the
/// callback is the relay's own.
#[repr(C)]
struct Relay {
    overlapped: OVERLAPPED,
    pipe: OwnedHandle,
    /// A manual-reset event, set once the relay has written everything it
    /// will: its pipe's writers are all gone and the last bytes are in our
    /// stderr.
    done: OwnedHandle,
    buf: [u8; CHUNK],
}

impl Drop for Relay {
    fn drop(&mut self) {
        // SAFETY: an event handle the relay owns.
        unsafe { SetEvent(self.done.as_raw_handle() as HANDLE) };
    }
}

/// Relays everything read from `pipe` (an overlapped handle of ours, not
/// yet bound to a completion port) to this process's stderr until the
/// pipe's other ends are all closed. Returns at once, with what tells the
/// relay's end; the relay frees itself then. If the pool refuses the
/// handle, gives it back with the error, for the caller to copy it another
/// way.
///
/// A write to our stderr that blocks (a full pipe nobody reads) holds one
/// pool thread, as the thread it replaces would have been held.
///
/// OS reference: BindIoCompletionCallback, ReadFile (Microsoft Learn).
pub(crate) fn relay_to_stderr(pipe: OwnedHandle) -> Result<OwnedHandle, (io::Error, OwnedHandle)> {
    // SAFETY: binding an open handle of ours to the pool's port; `completed`
    // has the signature the pool calls.
    if unsafe { BindIoCompletionCallback(pipe.as_raw_handle() as HANDLE, Some(completed), 0) } == 0 {
        return Err((io::Error::last_os_error(), pipe));
    }
    let (done, drained) = match super::handle::manual_event().and_then(|e| Ok((e.try_clone()?, e))) {
        Ok(events) => events,
        Err(e) => return Err((e, pipe)),
    };
    // SAFETY: an all-zero OVERLAPPED is its documented initial state.
    let overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
    let relay = Box::new(Relay { overlapped, pipe, done, buf: [0; CHUNK] });
    let relay = Box::into_raw(relay);
    // SAFETY: a relay just made, owned from here by the read in flight.
    if let Err(e) = unsafe { read_next(relay) } {
        // The pipe's writers are gone already: nothing to relay.
        tracing::debug!(error = %e, "the stderr relay's first read failed");
        // SAFETY: no read is in flight, so nothing else holds it.
        drop(unsafe { Box::from_raw(relay) });
    }
    Ok(drained)
}

/// Starts the next read. On `Ok` the read is in flight and its completion
/// will reach `completed` (a read that finishes at once still posts one);
/// on `Err` none is, and the caller still owns the relay.
///
/// # Safety
/// `relay` is a live relay with no read in flight.
unsafe fn read_next(relay: *mut Relay) -> io::Result<()> {
    // SAFETY: per the contract, nothing else touches the relay now.
    let r = unsafe { &mut *relay };
    // SAFETY: as in `relay_to_stderr`.
    r.overlapped = unsafe { std::mem::zeroed() };
    // SAFETY: the buffer and the OVERLAPPED live in the boxed relay, which
    // stays allocated until the completion for this read has run.
    let ok = unsafe {
        ReadFile(
            r.pipe.as_raw_handle() as HANDLE,
            r.buf.as_mut_ptr(),
            CHUNK as u32,
            std::ptr::null_mut(),
            &mut r.overlapped,
        )
    };
    // SAFETY: reads the calling thread's last error.
    if ok != 0 || unsafe { GetLastError() } == ERROR_IO_PENDING { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Runs on a pool thread when a read completes.
unsafe extern "system" fn completed(error: u32, bytes: u32, overlapped: *mut OVERLAPPED) {
    let relay = overlapped.cast::<Relay>();
    // A failure is the end: ERROR_BROKEN_PIPE once every writer is gone.
    if error == 0 {
        // SAFETY: `overlapped` is the first field of a relay whose read just
        // completed, so the relay is ours until the next read starts.
        let r = unsafe { &*relay };
        let got = &r.buf[..(bytes as usize).min(CHUNK)];
        // Our stderr gone (closed by the host) loses the program's stderr,
        // as it would with an inherited one; the program's pipe is still
        // drained so it never blocks on it.
        let _ = io::stderr().write_all(got);
        // SAFETY: the relay is ours and has no read in flight.
        if unsafe { read_next(relay) }.is_ok() {
            return;
        }
    }
    // SAFETY: the last read has completed and no other starts: nothing
    // else holds the relay. Dropping it closes the pipe.
    drop(unsafe { Box::from_raw(relay) });
}
