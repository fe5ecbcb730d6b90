//! Windows elevation: `ShellExecuteExW` with the "runas" verb.
//!
//! Elevation cannot be done by `CreateProcessW`; only the shell can ask for
//! consent (UAC), and it passes no handles: the elevated process gets none
//! of ours, and its stdio is its own. That is why elevation always goes
//! through the shim, which opens the channel's pipes by name.

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::ERROR_CANCELLED;
use windows_sys::Win32::System::Threading::GetProcessId;
use windows_sys::Win32::UI::Shell::{
    SEE_MASK_FLAG_NO_UI, SEE_MASK_NOASYNC, SEE_MASK_NOCLOSEPROCESS, SHELLEXECUTEINFOW, ShellExecuteExW,
};

use super::process::Process;

/// `SW_HIDE`: the shim needs no window (its stdio are pipes). Spelled out
/// here so as not to pull in the large `Win32_UI_WindowsAndMessaging`.
const SW_HIDE: i32 = 0;

/// Why an elevation did not start.
pub(crate) enum ElevateError {
    /// The user declined the consent prompt (`ERROR_CANCELLED`).
    Declined(io::Error),
    Failed(io::Error),
}

/// Starts `program` elevated with `parameters` (one command-line string,
/// already quoted) and returns its process.
///
/// OS reference: ShellExecuteExW with the `runas` verb (Microsoft Learn).
pub(crate) fn run_elevated(program: &OsStr, parameters: &OsStr) -> Result<Process, ElevateError> {
    let wide = |s: &OsStr| -> Vec<u16> { s.encode_wide().chain(Some(0)).collect() };
    let verb = wide(OsStr::new("runas"));
    let file = wide(program);
    let params = wide(parameters);
    // SAFETY: SHELLEXECUTEINFOW is plain data; all-zero is its documented
    // empty value.
    let mut info: SHELLEXECUTEINFOW = unsafe { std::mem::zeroed() };
    info.cbSize = size_of::<SHELLEXECUTEINFOW>() as u32;
    // NOCLOSEPROCESS: we need the handle (to wait, and to check the pid of
    // who connects back). NOASYNC: the call completes before returning.
    // FLAG_NO_UI: errors come back as codes, not dialog boxes.
    info.fMask = SEE_MASK_NOCLOSEPROCESS | SEE_MASK_NOASYNC | SEE_MASK_FLAG_NO_UI;
    info.lpVerb = verb.as_ptr();
    info.lpFile = file.as_ptr();
    info.lpParameters = params.as_ptr();
    info.nShow = SW_HIDE;
    // SAFETY: `info` and the strings it points to live across the call.
    if unsafe { ShellExecuteExW(&mut info) } == 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(ERROR_CANCELLED as i32) {
            ElevateError::Declined(e)
        } else {
            ElevateError::Failed(e)
        });
    }
    if info.hProcess.is_null() {
        // The shell handed the request to something that is not a process
        // (a DDE server); nothing to wait on.
        return Err(ElevateError::Failed(io::Error::other("the shell started no process to wait on")));
    }
    // SAFETY: with NOCLOSEPROCESS the handle is ours to close.
    let handle = unsafe { OwnedHandle::from_raw_handle(info.hProcess as _) };
    // SAFETY: a valid process handle.
    let pid = unsafe { GetProcessId(info.hProcess) };
    Ok(Process::new(handle, pid, None, false))
}
