//! A process's top-level windows, to ask a windowed program to close.

use windows_sys::Win32::Foundation::{HWND, LPARAM};
use windows_sys::Win32::UI::WindowsAndMessaging::{EnumWindows, GetWindowThreadProcessId, PostMessageW, WM_CLOSE};

/// What the enumeration callback reads and counts.
struct Search {
    pid: u32,
    posted: usize,
}

/// Posts `WM_CLOSE` to every top-level window of process `pid`, as
/// Task Manager's "End task" first does; returns how many got it.
///
/// OS reference: EnumWindows, GetWindowThreadProcessId, PostMessageW
/// (Microsoft Learn).
pub(crate) fn post_close(pid: u32) -> usize {
    let mut search = Search { pid, posted: 0 };
    // SAFETY: the callback runs during the call only, with the pointer to
    // `search` it was given, which outlives the call.
    unsafe { EnumWindows(Some(each), (&raw mut search) as LPARAM) };
    search.posted
}

/// SAFETY: called by `EnumWindows` with the `Search` pointer `post_close`
/// passed.
unsafe extern "system" fn each(hwnd: HWND, data: LPARAM) -> i32 {
    // SAFETY: `data` is the `&mut Search` of `post_close`, alive and not
    // otherwise borrowed during the enumeration.
    let search = unsafe { &mut *(data as *mut Search) };
    let mut owner = 0u32;
    // SAFETY: a window handle from the enumeration; `owner` is a live local.
    unsafe { GetWindowThreadProcessId(hwnd, &mut owner) };
    // SAFETY: posting to a window handle is safe even if it went away.
    if owner == search.pid && unsafe { PostMessageW(hwnd, WM_CLOSE, 0, 0) } != 0 {
        search.posted += 1;
    }
    1
}
