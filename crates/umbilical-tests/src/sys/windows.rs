//! Windows handles for the exact-inheritance tests: an inheritable pipe and
//! an inheritable socket made on purpose, and a validity check run in the
//! child.

use std::os::windows::io::{AsRawSocket, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{GetHandleInformation, HANDLE, HANDLE_FLAG_INHERIT, SetHandleInformation};
use windows_sys::Win32::Networking::WinSock::{
    AF_INET, INVALID_SOCKET, IPPROTO_TCP, SOCK_STREAM, WSA_FLAG_OVERLAPPED, WSADATA, WSASocketW, WSAStartup,
};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};

/// An anonymous pipe whose read end is inheritable; returns both ends (the
/// caller keeps them open) and the inheritable handle's value.
pub fn inheritable_pipe() -> (OwnedHandle, OwnedHandle, usize) {
    // SAFETY: out-pointers to locals; the handles are owned at once.
    unsafe {
        let (mut r, mut w): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
        assert!(CreatePipe(&mut r, &mut w, std::ptr::null(), 0) != 0, "CreatePipe");
        assert!(SetHandleInformation(r, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) != 0);
        (OwnedHandle::from_raw_handle(r as _), OwnedHandle::from_raw_handle(w as _), r as usize)
    }
}

/// A TCP socket created *without* `WSA_FLAG_NO_HANDLE_INHERIT` and marked
/// inheritable: exactly what must not reach a child. Returns it (as a std
/// listener, which closes it on drop) and its handle value.
pub fn inheritable_socket() -> (std::net::TcpListener, usize) {
    // SAFETY: WSAStartup with a local; WSASocketW returns a fresh socket
    // that the TcpListener owns from here on.
    unsafe {
        let mut data: WSADATA = std::mem::zeroed();
        WSAStartup(0x0202, &mut data);
        let s = WSASocketW(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP, std::ptr::null(), 0, WSA_FLAG_OVERLAPPED);
        assert!(s != INVALID_SOCKET, "WSASocketW");
        assert!(SetHandleInformation(s as HANDLE, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) != 0);
        let listener = <std::net::TcpListener as std::os::windows::io::FromRawSocket>::from_raw_socket(s as _);
        let value = listener.as_raw_socket() as usize;
        (listener, value)
    }
}

/// Whether `value` names an open handle in this process.
pub fn handle_is_valid(value: usize) -> bool {
    let mut flags = 0u32;
    // SAFETY: GetHandleInformation only queries; an invalid value fails.
    unsafe { GetHandleInformation(value as HANDLE, &mut flags) != 0 }
}

/// How many handles this process has open.
pub fn handle_count() -> u32 {
    let mut n = 0u32;
    // SAFETY: out-pointer to a local.
    unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut n) };
    n
}

/// Sets (or, with an empty value, removes) a variable in this process's
/// environment, for the children it starts next.
pub fn set_env_for_children(key: &str, value: &std::ffi::OsStr) {
    // SAFETY: only the single-test binary `shim_windows_stranger` calls
    // this, from its one test thread, while no other thread of the process
    // reads or writes the environment.
    unsafe {
        if value.is_empty() {
            std::env::remove_var(key);
        } else {
            std::env::set_var(key, value);
        }
    }
}

/// The parent process id of `pid`, from a Toolhelp snapshot.
pub fn parent_pid(pid: u32) -> Option<u32> {
    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
    };
    // SAFETY: the snapshot handle is owned at once; `entry` is plain data
    // with its size set as the API requires.
    unsafe {
        let snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
        if snap == INVALID_HANDLE_VALUE {
            return None;
        }
        let _snap = OwnedHandle::from_raw_handle(snap as _);
        let mut entry: PROCESSENTRY32W = std::mem::zeroed();
        entry.dwSize = size_of::<PROCESSENTRY32W>() as u32;
        let mut ok = Process32FirstW(snap, &mut entry) != 0;
        // Bounded by the snapshot's length.
        while ok {
            if entry.th32ProcessID == pid {
                return Some(entry.th32ParentProcessID);
            }
            ok = Process32NextW(snap, &mut entry) != 0;
        }
        None
    }
}

/// How many threads this process has, from a Toolhelp snapshot.
pub fn thread_count() -> usize {
    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
    };
    let me = std::process::id();
    // SAFETY: the snapshot handle is owned at once; `entry` is plain data
    // with its size set as the API requires.
    unsafe {
        let snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
        assert!(snap != INVALID_HANDLE_VALUE, "CreateToolhelp32Snapshot: {}", std::io::Error::last_os_error());
        let _snap = OwnedHandle::from_raw_handle(snap as _);
        let mut entry: THREADENTRY32 = std::mem::zeroed();
        entry.dwSize = size_of::<THREADENTRY32>() as u32;
        let mut count = 0;
        let mut ok = Thread32First(snap, &mut entry) != 0;
        // Bounded by the snapshot's length.
        while ok {
            if entry.th32OwnerProcessID == me {
                count += 1;
            }
            ok = Thread32Next(snap, &mut entry) != 0;
        }
        count
    }
}

/// Whether process `pid` exists and has not exited.
pub fn alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::WAIT_TIMEOUT;
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_SYNCHRONIZE, WaitForSingleObject};
    // SAFETY: the process handle is owned at once and valid for the wait.
    unsafe {
        let h = OpenProcess(PROCESS_SYNCHRONIZE, 0, pid);
        if h.is_null() {
            return false;
        }
        let h = OwnedHandle::from_raw_handle(h as _);
        WaitForSingleObject(std::os::windows::io::AsRawHandle::as_raw_handle(&h) as HANDLE, 0) == WAIT_TIMEOUT
    }
}

/// Terminates process `pid` with exit code 99.
pub fn terminate(pid: u32) -> bool {
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_TERMINATE, TerminateProcess};
    // SAFETY: the process handle is owned at once and valid for the call.
    unsafe {
        let h = OpenProcess(PROCESS_TERMINATE, 0, pid);
        if h.is_null() {
            return false;
        }
        let h = OwnedHandle::from_raw_handle(h as _);
        TerminateProcess(std::os::windows::io::AsRawHandle::as_raw_handle(&h) as HANDLE, 99) != 0
    }
}

/// Closes this process's standard input handle and nothing else.
pub fn close_stdin() {
    use std::os::windows::io::AsRawHandle;
    let h = std::io::stdin().as_raw_handle();
    // SAFETY: the standard input handle belongs to this process, and the
    // helper program that calls this does not read stdin afterwards.
    unsafe { windows_sys::Win32::Foundation::CloseHandle(h as HANDLE) };
}

/// Sets this process's standard handles to null, the state of a GUI host
/// or a service: the next spawn finds no stdio to inherit.
pub fn close_stdio() {
    use windows_sys::Win32::System::Console::{STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, SetStdHandle};
    for which in [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE] {
        // SAFETY: only this process's standard-handle slots change; the
        // handles they held stay open (owned by the console or parent).
        unsafe { SetStdHandle(which, std::ptr::null_mut()) };
    }
}

/// Whether this process has a console to share with a child (the one a
/// `CTRL_BREAK_EVENT` travels through), after making one if it had none
/// (`AllocConsole`: a test process started from a pipe has none); the
/// reason when it has none.
pub fn has_console() -> Result<(), String> {
    use windows_sys::Win32::System::Console::{AllocConsole, GetConsoleProcessList};
    let mut ids = [0u32; 4];
    // SAFETY: a live local array of the length given.
    if unsafe { GetConsoleProcessList(ids.as_mut_ptr(), 4) } > 0 {
        return Ok(());
    }
    // SAFETY: no arguments.
    if unsafe { AllocConsole() } == 0 {
        return Err(format!("AllocConsole: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

static EXIT_CODE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Exits with `code` when a `CTRL_BREAK_EVENT` (or CTRL_C) arrives.
pub fn exit_on_ctrl_break(code: i32) -> bool {
    unsafe extern "system" fn handler(_event: u32) -> i32 {
        std::process::exit(EXIT_CODE.load(std::sync::atomic::Ordering::Relaxed));
    }
    EXIT_CODE.store(code, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: a handler that lives as long as the process.
    unsafe { windows_sys::Win32::System::Console::SetConsoleCtrlHandler(Some(handler), 1) != 0 }
}

/// Creates a top-level window and runs its message loop; `WM_CLOSE` ends
/// the process with `code`. Calls `ready` once the window exists.
/// Returns only if the window cannot be made (the reason).
pub fn window_until_closed(code: i32, ready: impl FnOnce()) -> String {
    use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
    use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        CreateWindowExW, DefWindowProcW, DispatchMessageW, GetMessageW, MSG, RegisterClassW, TranslateMessage,
        WM_CLOSE, WNDCLASSW, WS_OVERLAPPEDWINDOW,
    };
    unsafe extern "system" fn proc_(hwnd: HWND, msg: u32, w: WPARAM, l: LPARAM) -> LRESULT {
        if msg == WM_CLOSE {
            std::process::exit(EXIT_CODE.load(std::sync::atomic::Ordering::Relaxed));
        }
        // SAFETY: the arguments the system passed us.
        unsafe { DefWindowProcW(hwnd, msg, w, l) }
    }
    EXIT_CODE.store(code, std::sync::atomic::Ordering::Relaxed);
    let class: Vec<u16> = "umbilical-test-window\0".encode_utf16().collect();
    // SAFETY: plain Win32 window creation with live, NUL-terminated names;
    // the message loop runs on this thread, which made the window.
    unsafe {
        let instance = GetModuleHandleW(std::ptr::null());
        let mut wc: WNDCLASSW = std::mem::zeroed();
        wc.lpfnWndProc = Some(proc_);
        wc.hInstance = instance;
        wc.lpszClassName = class.as_ptr();
        if RegisterClassW(&wc) == 0 {
            return format!("RegisterClassW: {}", std::io::Error::last_os_error());
        }
        let hwnd = CreateWindowExW(
            0,
            class.as_ptr(),
            class.as_ptr(),
            WS_OVERLAPPEDWINDOW,
            0,
            0,
            100,
            100,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            instance,
            std::ptr::null(),
        );
        if hwnd.is_null() {
            return format!("CreateWindowExW: {}", std::io::Error::last_os_error());
        }
        ready();
        let mut msg: MSG = std::mem::zeroed();
        while GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) > 0 {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
        "the message loop ended without WM_CLOSE".into()
    }
}
