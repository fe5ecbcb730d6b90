//! The rendezvous a Windows shim connects back to: one duplex named pipe
//! (the same protections as the channel's: user-only DACL, one instance,
//! `FILE_FLAG_FIRST_PIPE_INSTANCE`, remote clients rejected, a 128-bit
//! random name), accepted only from the process the parent started — the
//! client pid (`GetNamedPipeClientProcessId`) must equal the pid of the
//! handle `CreateProcessW` or `ShellExecuteExW` returned.
//!
//! A stranger who connects first is disconnected and the pipe listens
//! again; the real shim, which found the one instance busy, waits for it
//! (`WaitNamedPipeW`) and connects next. The name is not a secret (it is on
//! the shim's command line); nothing else is.

use std::ffi::OsString;
use std::io;
use std::os::windows::ffi::OsStringExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::Arc;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, ERROR_PIPE_NOT_CONNECTED, GENERIC_READ, GENERIC_WRITE,
    HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING};
use windows_sys::Win32::System::Pipes::{ConnectNamedPipe, DisconnectNamedPipe, PeekNamedPipe, WaitNamedPipeW};

use super::handle::{overlapped, read_until, write_pipe};
use super::pipe::{Direction, client_pid, server};

/// How a shim is authenticated here, for diagnostics.
pub(crate) fn shim_auth_mechanism() -> &'static str {
    "named pipe with a user-only DACL; client pid (GetNamedPipeClientProcessId) equals the started process's"
}

pub(crate) struct Rendezvous {
    /// NUL-terminated.
    name: Vec<u16>,
    server: Option<OwnedHandle>,
}

impl Rendezvous {
    /// Creates the pipe. Its DACL grants the caller's user only: elevation
    /// keeps the user, and no launcher here switches to another (`target`
    /// is for the Unix signature's sake).
    pub(crate) fn create(_target: Option<&str>) -> io::Result<Rendezvous> {
        let (name, server) = server(Direction::Duplex)?;
        Ok(Rendezvous { name, server: Some(server) })
    }

    /// The pipe name the shim is told about.
    /// No launcher here runs the shim as a user who could not execute it
    /// where it is (RunAs elevates the same user).
    pub(crate) fn place_shim(
        &mut self,
        _from: &std::path::Path,
        _target: Option<&str>,
    ) -> io::Result<std::path::PathBuf> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no copy of the shim is placed on Windows"))
    }

    /// No launcher on Windows takes an askpass helper that umbilical
    /// relays (RunAs's consent dialog is the OS's own).
    pub(crate) fn place_askpass(&mut self, _program: &std::path::Path) -> io::Result<std::path::PathBuf> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no askpass relay on Windows"))
    }

    pub(crate) fn path(&self) -> std::path::PathBuf {
        OsString::from_wide(&self.name[..self.name.len() - 1]).into()
    }

    /// Waits for a client whose pid is `pid` (any client if `None`), disconnecting (and counting)
    /// any other. `gave_up` is polled every 100 ms; when it says the shim's
    /// process is gone, waiting ends with `Ok(None)`.
    pub(crate) fn accept_from<G: FnMut() -> bool>(
        &mut self,
        pid: Option<u32>,
        deadline: Instant,
        mut gave_up: G,
        refused: &mut u32,
    ) -> io::Result<Option<ControlStream>> {
        let server = self.server.as_ref().ok_or_else(|| io::Error::other("the rendezvous was already used"))?;
        loop {
            let slice = (Instant::now() + Duration::from_millis(100)).min(deadline);
            let connected = match overlapped(server, Some(slice), |h, ov| {
                // SAFETY: `ov` is managed by `overlapped`.
                unsafe { ConnectNamedPipe(h, ov) }
            }) {
                Ok(Some(_)) => true,
                Ok(None) => false,
                Err(e) if e.raw_os_error() == Some(ERROR_PIPE_CONNECTED as i32) => true,
                Err(e) => return Err(e),
            };
            if connected {
                if pid.is_none_or(|pid| client_pid(server) == Some(pid)) {
                    let server = self.server.take().expect("checked above");
                    return Ok(Some(ControlStream { handle: Arc::new(server), deadline: None }));
                }
                *refused += 1;
                // SAFETY: a valid server handle of ours; this drops the
                // stranger's connection and lets the pipe listen again.
                unsafe { DisconnectNamedPipe(server.as_raw_handle() as HANDLE) };
            }
            if gave_up() {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the shim did not connect in time"));
            }
        }
    }
}

/// `shutdown` discards what the peer has not read yet.
pub(crate) const SHUTDOWN_DISCARDS_UNREAD: bool = true;

/// A connected control pipe (either side), opened for overlapped I/O so
/// that one thread can read while another writes.
pub(crate) struct ControlStream {
    handle: Arc<OwnedHandle>,
    /// Reads fail with `TimedOut` after this.
    deadline: Option<Instant>,
}

impl ControlStream {
    /// The shim's side: opens the rendezvous by name, waiting (until
    /// `deadline`) while a stranger holds the one instance.
    pub(crate) fn connect(name: &std::path::Path, deadline: Instant) -> io::Result<ControlStream> {
        use std::os::windows::ffi::OsStrExt;
        let name: Vec<u16> = name.as_os_str().encode_wide().chain(Some(0)).collect();
        loop {
            // SAFETY: NUL-terminated name; no security attributes.
            let h = unsafe {
                CreateFileW(
                    name.as_ptr(),
                    GENERIC_READ | GENERIC_WRITE,
                    0,
                    std::ptr::null(),
                    OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED,
                    std::ptr::null_mut(),
                )
            };
            if h != INVALID_HANDLE_VALUE {
                // SAFETY: a fresh valid handle, owned from here on.
                let handle = unsafe { OwnedHandle::from_raw_handle(h as _) };
                return Ok(ControlStream { handle: Arc::new(handle), deadline: None });
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(ERROR_PIPE_BUSY as i32) || Instant::now() >= deadline {
                return Err(e);
            }
            // SAFETY: NUL-terminated name. Returns when an instance is free
            // or after the timeout; either way the loop tries again.
            unsafe { WaitNamedPipeW(name.as_ptr(), 100) };
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<ControlStream> {
        Ok(ControlStream { handle: self.handle.clone(), deadline: None })
    }

    /// Breaks the connection for every holder of this end: the peer's
    /// reads and writes fail, and so do ours (DisconnectNamedPipe, Microsoft
    /// Learn: it discards what the peer has not read yet). Only the server
    /// end (the parent's) can do this; on the client end it does nothing.
    pub(crate) fn shutdown(&self) {
        // SAFETY: a valid pipe handle of ours; on a client handle the call
        // fails harmlessly.
        unsafe { DisconnectNamedPipe(self.handle.as_raw_handle() as HANDLE) };
    }

    /// A pipe has no readiness to wait on; the caller waits on the peer's
    /// exit instead (it writes before it exits).
    pub(crate) fn waitable(&self) -> Option<super::Waitable> {
        None
    }

    /// Reads what is there without waiting: `WouldBlock` when nothing is,
    /// `Ok(0)` once the peer is gone and everything was read.
    ///
    /// OS reference: PeekNamedPipe (Microsoft Learn).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut available = 0u32;
        // SAFETY: a valid pipe handle of ours; only the count is asked for.
        let ok = unsafe {
            PeekNamedPipe(
                self.handle.as_raw_handle() as HANDLE,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut available,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error().map(|c| c as u32) {
                Some(ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED) => Ok(0),
                _ => Err(e),
            };
        }
        if available == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(available as usize);
        // What is in the pipe is read at once; the deadline only guards
        // against a pipe emptied by another reader of ours meanwhile.
        read_until(&self.handle, &mut buf[..n], Some(Instant::now() + Duration::from_secs(1)))?
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }

    /// Reads after `deadline` fail with `TimedOut`; `None` waits for ever.
    pub(crate) fn set_read_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }
}

impl io::Read for ControlStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_until(&self.handle, buf, self.deadline)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "the control stream was silent too long"))
    }
}

impl io::Write for ControlStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_pipe(&self.handle, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// No copy of the shim is placed on Windows (see `Rendezvous::place_shim`).
/// Whether the caller is root: no such thing on Windows (elevation is
/// asked for through RunAs).
pub(crate) fn caller_is_root() -> bool {
    false
}

/// Never an askpass entry on Windows (see `Rendezvous::place_askpass`).
pub(crate) fn askpass_socket(_entry: &std::path::Path) -> Option<std::path::PathBuf> {
    None
}

/// Connects to a rendezvous by its pipe name.
pub(crate) fn connect_rendezvous(path: &std::path::Path, deadline: Instant) -> io::Result<ControlStream> {
    ControlStream::connect(path, deadline)
}

/// No launcher on Windows reads its password from a terminal that
/// umbilical would hand it.
pub(crate) fn open_pty() -> io::Result<(OwnedHandle, OwnedHandle)> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no private terminal for a launcher on Windows"))
}

/// See [`open_pty`]: never called.
pub(crate) fn terminal_echoes(_terminal: &OwnedHandle) -> bool {
    false
}

/// See [`open_pty`]: never called.
pub(crate) fn write_terminal(_terminal: &OwnedHandle, _buf: &[u8]) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no private terminal on Windows"))
}

/// Windows has no controlling terminal that a prompt handler asks on.
pub(crate) fn has_terminal() -> bool {
    false
}

/// See [`has_terminal`]: nothing is asked.
pub(crate) fn ask_terminal(_prompt: &str, _secret: bool) -> io::Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    Ok(None)
}

pub(crate) fn shim_placeable() -> Result<(), String> {
    Err("no copy of the shim is placed on Windows".into())
}
