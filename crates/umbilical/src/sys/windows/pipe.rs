//! One-way named pipes with the protections a pipe name needs.
//!
//! Each direction is a server end for the parent (overlapped,
//! `FILE_FLAG_FIRST_PIPE_INSTANCE`, one instance, byte mode,
//! `PIPE_REJECT_REMOTE_CLIENTS`, a DACL granting only the current user) and a
//! client end for the program (synchronous: many programs break on an
//! overlapped stdin; not shared). The name has a random 128-bit part.
//!
//! Squatting: if someone already holds the name, the server creation is
//! refused (`ERROR_ACCESS_DENIED` on Windows; Wine 8 says `ERROR_PIPE_BUSY`
//! and ignores `FILE_FLAG_FIRST_PIPE_INSTANCE` unless the first server
//! allowed a single instance). If a stranger connects to our instance
//! before we do, our own client open fails with `ERROR_PIPE_BUSY`, or the
//! connected client's pid is not ours. Every such case retries with a new
//! name, a bounded number of times, and then fails clearly. We never hand a
//! program a pipe someone else controls.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::time::Instant;

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, GENERIC_READ, GENERIC_WRITE, HANDLE,
    INVALID_HANDLE_VALUE, LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::Cryptography::{BCRYPT_USE_SYSTEM_PREFERRED_RNG, BCryptGenRandom};
use windows_sys::Win32::Security::{
    GetTokenInformation, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, OPEN_EXISTING, PIPE_ACCESS_DUPLEX,
    PIPE_ACCESS_INBOUND,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientProcessId, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetCurrentProcessId, OpenProcessToken};

use super::handle::overlapped;
use crate::sys::Pipes;

/// Kernel buffer per direction.
const BUFFER: u32 = 64 * 1024;
/// New names tried before giving up on a squatted or hijacked pipe.
const ATTEMPTS: usize = 8;

/// Which way the bytes flow, seen from the parent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The parent writes, the program reads (stdin).
    Outbound,
    /// The program writes, the parent reads (stdout, stderr, lifeline).
    Inbound,
    /// Both ways: the shim's control stream.
    Duplex,
}

impl Direction {
    /// What the client end needs to open.
    fn client_access(self) -> u32 {
        match self {
            Direction::Outbound => GENERIC_READ,
            Direction::Inbound => GENERIC_WRITE,
            Direction::Duplex => GENERIC_READ | GENERIC_WRITE,
        }
    }
}

/// Two pipes for a channel.
pub(crate) fn pipes() -> io::Result<Pipes> {
    let (parent_write, child_stdin) = pair(Direction::Outbound)?;
    let (parent_read, child_stdout) = pair(Direction::Inbound)?;
    Ok(Pipes { parent_read, parent_write, child_stdin, child_stdout })
}

/// A pipe from the program to the parent: `(parent_read, child_write)`.
pub(crate) fn inbound_pipe() -> io::Result<(OwnedHandle, OwnedHandle)> {
    pair(Direction::Inbound)
}

/// A connected `(server, client)` pair with a fresh name.
pub(crate) fn pair(direction: Direction) -> io::Result<(OwnedHandle, OwnedHandle)> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let name = unique_name()?;
        match pair_named(&name, direction) {
            Ok(pair) => return Ok(pair),
            Err(Attempt::Squatted(e)) => last = Some(e),
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "every pipe name tried was taken or hijacked ({ATTEMPTS} attempts; last: {})",
        last.map_or_else(|| "none".to_string(), |e| e.to_string())
    )))
}

enum Attempt {
    /// The name was taken, or a stranger connected first: try another.
    Squatted(io::Error),
    Failed(io::Error),
}

/// The server end of a new pipe with this exact name; fails if the name is
/// taken.
fn create_server(name: &[u16], direction: Direction) -> io::Result<OwnedHandle> {
    let sd = SecurityDescriptor::current_user_only()?;
    let sa = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let access = match direction {
        // Duplex on our side only (the client opens it read-only, so no
        // byte flows back): a write-only server handle may not read the
        // pipe's state, which is how a close of the reading end is seen
        // without writing (`wait::readers_gone`). libuv makes every
        // child's stdio pipe duplex for the same kind of reason.
        Direction::Outbound => PIPE_ACCESS_DUPLEX,
        Direction::Inbound => PIPE_ACCESS_INBOUND,
        Direction::Duplex => PIPE_ACCESS_DUPLEX,
    };
    // SAFETY: `name` is NUL-terminated UTF-16; `sa` and the descriptor it
    // points to live across the call.
    let h = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            access | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            BUFFER,
            BUFFER,
            0,
            &sa,
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh valid handle, owned from here on.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as _) })
}

fn pair_named(name: &[u16], direction: Direction) -> Result<(OwnedHandle, OwnedHandle), Attempt> {
    let server = create_server(name, direction)
        .map_err(|e| if is_taken(&e) { Attempt::Squatted(e) } else { Attempt::Failed(e) })?;
    let access = direction.client_access();
    // SAFETY: NUL-terminated name; no security attributes (not inheritable
    // until spawn says so); synchronous, unshared.
    let client =
        unsafe { CreateFileW(name.as_ptr(), access, 0, std::ptr::null(), OPEN_EXISTING, 0, std::ptr::null_mut()) };
    if client == INVALID_HANDLE_VALUE {
        // ERROR_PIPE_BUSY: a stranger took the only instance first.
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) {
            Attempt::Squatted(e)
        } else {
            Attempt::Failed(e)
        });
    }
    // SAFETY: a fresh valid handle, owned from here on.
    let client = unsafe { OwnedHandle::from_raw_handle(client as _) };
    // The client already connected, so this reports ERROR_PIPE_CONNECTED.
    match overlapped(&server, None, |h, ov| {
        // SAFETY: `ov` is managed by `overlapped`.
        unsafe { ConnectNamedPipe(h, ov) }
    }) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(ERROR_PIPE_CONNECTED as i32) => {}
        Err(e) => return Err(Attempt::Failed(e)),
    }
    // Whoever is connected must be us.
    // SAFETY: no preconditions.
    if client_pid(&server) != Some(unsafe { GetCurrentProcessId() }) {
        return Err(Attempt::Squatted(io::Error::other("another process connected to the pipe first")));
    }
    Ok((server, client))
}

/// A server end with a fresh name, no client yet: for a shim, which opens
/// the client end by name in another process. Returns the NUL-terminated
/// name with the server.
///
/// OS reference: CreateNamedPipeW (Microsoft Learn).
pub(crate) fn server(direction: Direction) -> io::Result<(Vec<u16>, OwnedHandle)> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let name = unique_name()?;
        match create_server(&name, direction) {
            Ok(server) => return Ok((name, server)),
            Err(e) if is_taken(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "every pipe name tried was taken ({ATTEMPTS} attempts; last: {})",
        last.map_or_else(|| "none".to_string(), |e| e.to_string())
    )))
}

/// Whether creating a server failed because the name is someone else's
/// (`ERROR_ACCESS_DENIED` on Windows, `ERROR_PIPE_BUSY` on Wine 8).
fn is_taken(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == ERROR_ACCESS_DENIED as i32 || c == ERROR_PIPE_BUSY as i32)
}

/// Waits (until `deadline`) for the client of a [`server`] end and checks
/// that it is process `pid`: a client that is anyone else is refused with
/// an error, never used.
///
/// OS reference: ConnectNamedPipe, GetNamedPipeClientProcessId (Microsoft Learn).
pub(crate) fn accept_client(server: &OwnedHandle, pid: u32, deadline: Instant) -> io::Result<()> {
    match overlapped(server, Some(deadline), |h, ov| {
        // SAFETY: `ov` is managed by `overlapped`.
        unsafe { ConnectNamedPipe(h, ov) }
    }) {
        Ok(Some(_)) => {}
        Ok(None) => return Err(io::Error::new(io::ErrorKind::TimedOut, "the shim did not open the pipe in time")),
        Err(e) if e.raw_os_error() == Some(ERROR_PIPE_CONNECTED as i32) => {}
        Err(e) => return Err(e),
    }
    match client_pid(server) {
        Some(p) if p == pid => Ok(()),
        other => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("pipe opened by process {other:?}, not by the shim ({pid})"),
        )),
    }
}

/// The pid of the client connected to a server end.
///
/// OS reference: GetNamedPipeClientProcessId (Microsoft Learn).
pub(crate) fn client_pid(server: &OwnedHandle) -> Option<u32> {
    let mut pid = 0u32;
    // SAFETY: valid server handle, out-pointer to a local.
    let ok = unsafe { GetNamedPipeClientProcessId(server.as_raw_handle() as HANDLE, &mut pid) } != 0;
    ok.then_some(pid)
}

/// Opens the client end of a pipe by its NUL-terminated name for a
/// program's stdio: synchronous, not shared, not inheritable (spawn hands
/// it on).
///
/// OS reference: CreateFileW on a pipe name (Microsoft Learn).
pub(crate) fn open_client(name: &[u16], direction: Direction) -> io::Result<OwnedHandle> {
    if name.last() != Some(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "pipe name is not NUL-terminated"));
    }
    // SAFETY: NUL-terminated name; no security attributes.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            direction.client_access(),
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh valid handle, owned from here on.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as _) })
}

/// `N` bytes from the system's preferred random source (`BCryptGenRandom`).
pub(crate) fn random_token<const N: usize>() -> io::Result<[u8; N]> {
    let mut random = [0u8; N];
    let len = u32::try_from(N).map_err(|_| io::Error::other("a token of more than 4 GiB"))?;
    // SAFETY: writes exactly `len` = N bytes into `random`.
    let status =
        unsafe { BCryptGenRandom(std::ptr::null_mut(), random.as_mut_ptr(), len, BCRYPT_USE_SYSTEM_PREFERRED_RNG) };
    if status < 0 {
        return Err(io::Error::other(format!("BCryptGenRandom failed: NTSTATUS {status:#x}")));
    }
    Ok(random)
}

/// `\\.\pipe\umbilical-<pid>-<128 random bits>`, NUL-terminated.
fn unique_name() -> io::Result<Vec<u16>> {
    let hex: String = random_token::<16>()?.iter().map(|b| format!("{b:02x}")).collect();
    // SAFETY: no preconditions.
    let pid = unsafe { GetCurrentProcessId() };
    Ok(format!(r"\\.\pipe\umbilical-{pid}-{hex}").encode_utf16().chain(Some(0)).collect())
}

/// A self-relative security descriptor from `LocalAlloc`, freed on drop.
struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

impl SecurityDescriptor {
    /// A protected DACL with one entry: full access for the current user.
    fn current_user_only() -> io::Result<Self> {
        let sid = current_user_sid()?;
        let sddl: Vec<u16> = format!("D:P(A;;GA;;;{sid})").encode_utf16().chain(Some(0)).collect();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: NUL-terminated SDDL; `sd` receives a LocalAlloc'ed block.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SecurityDescriptor(sd))
    }
}

/// The current user's SID as a string (`S-1-5-21-...`).
fn current_user_sid() -> io::Result<String> {
    // SAFETY: each call gets valid out-pointers; the token handle is owned
    // right away; the string SID is freed with LocalFree after copying.
    unsafe {
        let mut token: HANDLE = std::ptr::null_mut();
        if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
            return Err(io::Error::last_os_error());
        }
        let token = OwnedHandle::from_raw_handle(token as _);
        let mut len = 0u32;
        GetTokenInformation(token.as_raw_handle() as HANDLE, TokenUser, std::ptr::null_mut(), 0, &mut len);
        let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
        if GetTokenInformation(token.as_raw_handle() as HANDLE, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) == 0
        {
            return Err(io::Error::last_os_error());
        }
        let user = &*(buf.as_ptr() as *const TOKEN_USER);
        let mut wide: windows_sys::core::PWSTR = std::ptr::null_mut();
        if ConvertSidToStringSidW(user.User.Sid, &mut wide) == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut n = 0;
        while *wide.add(n) != 0 {
            n += 1;
        }
        let sid = String::from_utf16_lossy(std::slice::from_raw_parts(wide, n));
        LocalFree(wide.cast());
        Ok(sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::System::Pipes::PIPE_UNLIMITED_INSTANCES;

    /// A stranger's server with this name and `max_instances`.
    fn stranger(name: &[u16], max_instances: u32) -> OwnedHandle {
        // SAFETY: NUL-terminated name, default security.
        let h = unsafe {
            CreateNamedPipeW(
                name.as_ptr(),
                PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED,
                PIPE_TYPE_BYTE | PIPE_WAIT,
                max_instances,
                BUFFER,
                BUFFER,
                0,
                std::ptr::null(),
            )
        };
        assert!(h != INVALID_HANDLE_VALUE, "stranger's pipe: {}", io::Error::last_os_error());
        // SAFETY: fresh valid handle.
        unsafe { OwnedHandle::from_raw_handle(h as _) }
    }

    fn refused(result: Result<(OwnedHandle, OwnedHandle), Attempt>) -> bool {
        match result {
            Err(Attempt::Squatted(e)) => {
                let code = e.raw_os_error().unwrap_or(0) as u32;
                assert!(code == ERROR_ACCESS_DENIED || code == ERROR_PIPE_BUSY || e.raw_os_error().is_none(), "{e}");
                true
            }
            Err(Attempt::Failed(e)) => panic!("a squatted name must be retried, not fail outright: {e}"),
            Ok(_) => false,
        }
    }

    #[test]
    fn a_squatted_name_is_never_used() {
        // A squatter that allows one instance: refused everywhere.
        let name = unique_name().unwrap();
        let _squatter = stranger(&name, 1);
        assert!(refused(pair_named(&name, Direction::Inbound)), "connected to a stranger's single-instance pipe");

        // A squatter that allows many: FILE_FLAG_FIRST_PIPE_INSTANCE must
        // refuse us. Wine 8 ignores that flag (see WINDOWS-ON-LINUX.md).
        let name = unique_name().unwrap();
        let _squatter = stranger(&name, PIPE_UNLIMITED_INSTANCES);
        let result = pair_named(&name, Direction::Outbound);
        if crate::sys::is_wine() {
            // Written to the handle directly: libtest captures print!.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIP: FILE_FLAG_FIRST_PIPE_INSTANCE against a many-instance squatter: Wine 8 ignores the flag\n",
            );
        } else {
            assert!(refused(result), "FILE_FLAG_FIRST_PIPE_INSTANCE did not refuse a taken name");
        }
    }

    #[test]
    fn fresh_names_connect_and_are_ours() {
        for direction in [Direction::Inbound, Direction::Outbound] {
            let (server, client) = pair(direction).unwrap();
            drop((server, client));
        }
        let a = unique_name().unwrap();
        let b = unique_name().unwrap();
        assert_ne!(a, b, "names carry 128 random bits");
    }
}
