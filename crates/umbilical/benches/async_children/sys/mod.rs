//! The figures the OS keeps about this process: threads and resident
//! memory.

#[cfg(target_os = "linux")]
mod imp {
    /// One figure from `/proc/self/status` (`VmRSS:`, `Threads:`, ...).
    fn status(field: &str) -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let line = s.lines().find(|l| l.starts_with(field)).expect("the field");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn threads() -> u64 {
        status("Threads:")
    }

    pub fn resident_kib() -> u64 {
        status("VmRSS:")
    }
}

#[cfg(windows)]
mod imp {
    use std::os::windows::io::{FromRawHandle, OwnedHandle};

    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
    };
    use windows_sys::Win32::System::ProcessStatus::{GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
    use windows_sys::Win32::System::Threading::GetCurrentProcess;

    /// This process's threads, from a Toolhelp snapshot.
    pub fn threads() -> u64 {
        let me = std::process::id();
        // SAFETY: the snapshot handle is owned at once; `entry` is plain
        // data with its size set as the API requires.
        unsafe {
            let snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
            assert!(snap != INVALID_HANDLE_VALUE, "CreateToolhelp32Snapshot");
            let _snap = OwnedHandle::from_raw_handle(snap as _);
            let mut entry: THREADENTRY32 = std::mem::zeroed();
            entry.dwSize = size_of::<THREADENTRY32>() as u32;
            let mut count = 0;
            let mut ok = Thread32First(snap, &mut entry) != 0;
            // Bounded by the snapshot's length.
            while ok {
                count += u64::from(entry.th32OwnerProcessID == me);
                ok = Thread32Next(snap, &mut entry) != 0;
            }
            count
        }
    }

    /// The working set, in KiB.
    pub fn resident_kib() -> u64 {
        // SAFETY: the pseudo-handle needs no closing; `counters` is plain
        // data with its size passed.
        unsafe {
            let mut counters: PROCESS_MEMORY_COUNTERS = std::mem::zeroed();
            let size = size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
            if GetProcessMemoryInfo(GetCurrentProcess(), &mut counters, size) == 0 {
                return 0;
            }
            counters.WorkingSetSize as u64 / 1024
        }
    }
}

pub use imp::*;
