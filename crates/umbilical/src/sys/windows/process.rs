//! A started process: a handle to wait on, the exit code, termination.
//!
//! Exit codes are DWORDs. [`ExitStatus::Exited`](crate::exit::ExitStatus) holds
//! the same 32 bits as an `i32` (`code as i32`), so an NTSTATUS such as
//! `0xC0000005` reads as a negative number; cast back with `as u32`.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::time::Instant;

use windows_sys::Win32::Foundation::{HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::JobObjects::TerminateJobObject;
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE as SYNCHRONIZE,
    TerminateProcess, WaitForSingleObject,
};

use super::handle::millis_until;
use crate::exit::ExitStatus;

/// The exit code `kill` gives, as std's `Child::kill` does on Windows.
const KILLED_CODE: u32 = 1;

pub(crate) struct Process {
    handle: OwnedHandle,
    pid: u32,
    /// The job the process runs in, if asked for (kill-on-close, or the
    /// tree of a process group); a kill terminates the whole job.
    job: Option<OwnedHandle>,
    /// Started with `CREATE_NEW_PROCESS_GROUP`: `CTRL_BREAK_EVENT` reaches
    /// it.
    group: bool,
}

pub(crate) fn mechanism() -> &'static str {
    "process handle (WaitForSingleObject + GetExitCodeProcess)"
}

impl Process {
    /// The shim's way to stop the program, the same call on every OS:
    /// Windows has no signals; for KILL (9, see `WireSignal::local`) it
    /// terminates the program, for the others it asks first
    /// ([`Process::ask_to_end`]) and terminates only where it cannot ask.
    pub(crate) fn signal_or_terminate(&self, sig: i32) -> io::Result<()> {
        if sig != 9 && self.ask_to_end()? {
            return Ok(());
        }
        self.kill()
    }

    /// Asks the program to end, the ways Windows has: `CTRL_BREAK_EVENT`
    /// to its process group, when it was started as one
    /// (`CREATE_NEW_PROCESS_GROUP`) and shares our console; and `WM_CLOSE`
    /// to each of its top-level windows. `false` when neither reached it
    /// (no shared console, no window: a console program started without
    /// a group, or a service), and then nothing was sent.
    ///
    /// OS reference: GenerateConsoleCtrlEvent, EnumWindows, PostMessageW
    /// (Microsoft Learn).
    pub(crate) fn ask_to_end(&self) -> io::Result<bool> {
        use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, GenerateConsoleCtrlEvent};
        // SAFETY: no pointers; a group id is the leader's pid.
        let broke = self.group && unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, self.pid) } != 0;
        let closed = super::windows_of::post_close(self.pid);
        Ok(broke || closed > 0)
    }

    /// A duplicate of the process handle, signalled when it exits (a
    /// registered wait, the async layer).
    pub(crate) fn exit_handle(&self) -> Option<OwnedHandle> {
        self.handle.try_clone().ok()
    }

    pub(crate) fn new(handle: OwnedHandle, pid: u32, job: Option<OwnedHandle>, group: bool) -> Self {
        Process { handle, pid, job, group }
    }

    /// Opens a process we did not start, to wait on it: only `SYNCHRONIZE`
    /// and `PROCESS_QUERY_LIMITED_INFORMATION`, which is all a wait needs
    /// and what Windows grants across an elevation boundary where it can
    /// (OpenProcess, Microsoft Learn). `None` where the OS refuses.
    fn open(pid: u32) -> Option<Self> {
        // SAFETY: no pointers; the handle is owned at once if valid.
        let h = unsafe { OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if h.is_null() {
            return None;
        }
        // SAFETY: a fresh valid handle nobody else owns.
        let handle = unsafe { <OwnedHandle as std::os::windows::io::FromRawHandle>::from_raw_handle(h as _) };
        Some(Process::new(handle, pid, None, false))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Nothing to release: Windows keeps no zombie.
    pub(crate) fn release(&self) {}

    /// OS reference: WaitForSingleObject, GetExitCodeProcess (Microsoft Learn).
    pub(crate) fn wait(&self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.wait_deadline(None)? {
                return Ok(status);
            }
        }
    }

    /// OS reference: WaitForSingleObject, GetExitCodeProcess (Microsoft Learn).
    pub(crate) fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        self.wait_deadline(Some(Instant::now()))
    }

    /// OS reference: WaitForSingleObject (Microsoft Learn).
    pub(crate) fn wait_deadline(&self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        let h = self.handle.as_raw_handle() as HANDLE;
        loop {
            // SAFETY: a valid process handle we own.
            match unsafe { WaitForSingleObject(h, millis_until(deadline)) } {
                WAIT_OBJECT_0 => {
                    let mut code = 0u32;
                    // SAFETY: valid handle, out-pointer to a local.
                    if unsafe { GetExitCodeProcess(h, &mut code) } == 0 {
                        return Err(io::Error::last_os_error());
                    }
                    return Ok(Some(ExitStatus::Exited(code as i32)));
                }
                WAIT_TIMEOUT if deadline.is_none_or(|d| Instant::now() < d) => continue,
                WAIT_TIMEOUT => return Ok(None),
                _ => return Err(io::Error::last_os_error()),
            }
        }
    }

    /// No process groups here (see `Request::process_group`).
    pub(crate) fn leads_group(&self) -> bool {
        false
    }

    /// Windows has no signals; callers check `TERMINATE_SIGNAL` first.
    pub(crate) fn signal_raw(&self, _sig: i32) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "signals are Unix-only"))
    }

    /// Windows has no stopped state a caller could lift with a signal (a
    /// suspended process stays suspended until its own threads are
    /// resumed): nothing to do.
    pub(crate) fn resume(&self) {}

    /// `TerminateProcess` (or `TerminateJobObject` for a job), exit code 1.
    /// A process that already ended is not an error.
    ///
    /// OS reference: TerminateProcess, or TerminateJobObject for a job (Microsoft Learn).
    pub(crate) fn kill(&self) -> io::Result<()> {
        // SAFETY: valid handles we own.
        let ok = unsafe {
            match &self.job {
                Some(job) => TerminateJobObject(job.as_raw_handle() as HANDLE, KILLED_CODE),
                None => TerminateProcess(self.handle.as_raw_handle() as HANDLE, KILLED_CODE),
            }
        };
        if ok == 0 {
            let err = io::Error::last_os_error();
            // Terminating a process that has exited fails with access denied.
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            return Err(err);
        }
        Ok(())
    }
}

/// A handle on a process we did not start (the program a shim started),
/// held against pid reuse: enough to wait on it, and to terminate it where
/// the OS granted that.
pub(crate) struct OtherProcess(Process);

impl OtherProcess {
    /// Opens `pid` (see `Process::open`); `None` where the OS refuses.
    pub(crate) fn open(pid: u32) -> Option<Self> {
        Process::open(pid).map(OtherProcess)
    }

    /// Blocks until the process has exited.
    pub(crate) fn wait(&self) {
        // A failed wait leaves nothing to wait on; the caller treats it as
        // the end either way.
        let _ = self.0.wait();
    }

    /// Its handle, signalled when it exits, for a background watch.
    pub(crate) fn waitable(&self) -> super::Waitable {
        self.0.handle.as_raw_handle()
    }

    /// Terminates it (`TerminateProcess`); Windows has no signals, so `sig`
    /// is ignored. Fails where the handle lacks `PROCESS_TERMINATE`.
    pub(crate) fn kill(&self, _sig: i32) -> io::Result<()> {
        self.0.kill()
    }
}
