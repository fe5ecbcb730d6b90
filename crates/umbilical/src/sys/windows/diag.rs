//! Platform facts for `umbilical doctor`: Windows version, Wine, and the
//! Winsock catalogue (the reason sockets must not be inherited).

use std::io;

use windows_sys::Win32::Networking::WinSock::{
    WSACleanup, WSADATA, WSAENOBUFS, WSAPROTOCOL_INFOW, WSAStartup, WSCEnumProtocols, XP1_IFS_HANDLES,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

/// One entry of the Winsock catalogue.
#[derive(Debug, Clone)]
pub struct WinsockProvider {
    /// The provider's protocol name.
    pub name: String,
    /// The catalogue entry id.
    pub catalog_entry_id: u32,
    /// Whether its sockets are real IFS handles (`XP1_IFS_HANDLES`). A
    /// provider without it is a non-IFS Layered Service Provider (or
    /// sits on one): its sockets cannot be used through an inherited
    /// handle.
    pub ifs_handles: bool,
    /// Length of the protocol chain: 0 layered, 1 base, more for a
    /// chain.
    pub chain_len: i32,
}

fn ntdll_proc(name: &std::ffi::CStr) -> Option<unsafe extern "system" fn() -> isize> {
    let ntdll: Vec<u16> = "ntdll.dll".encode_utf16().chain(Some(0)).collect();
    // SAFETY: NUL-terminated names; ntdll is always loaded.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        if module.is_null() {
            return None;
        }
        GetProcAddress(module, name.as_ptr().cast())
    }
}

/// Whether this is Wine (its ntdll exports `wine_get_version`). Used only
/// to skip, visibly, checks that Wine cannot honour.
pub(crate) fn is_wine() -> bool {
    ntdll_proc(c"wine_get_version").is_some()
}

/// `major.minor.build` from `RtlGetVersion` (which, unlike GetVersionEx,
/// does not lie to unmanifested programs).
pub(crate) fn os_version() -> String {
    #[repr(C)]
    struct OsVersionInfoW {
        size: u32,
        major: u32,
        minor: u32,
        build: u32,
        platform: u32,
        csd: [u16; 128],
    }
    let Some(proc) = ntdll_proc(c"RtlGetVersion") else { return "unknown".into() };
    // SAFETY: RtlGetVersion(PRTL_OSVERSIONINFOW) -> NTSTATUS has this shape;
    // the struct is sized and its size field set as it requires.
    unsafe {
        let f: unsafe extern "system" fn(*mut OsVersionInfoW) -> i32 = std::mem::transmute(proc);
        let mut info: OsVersionInfoW = std::mem::zeroed();
        info.size = size_of::<OsVersionInfoW>() as u32;
        if f(&mut info) != 0 {
            return "unknown".into();
        }
        format!("{}.{}.{}", info.major, info.minor, info.build)
    }
}

/// The Winsock catalogue, via `WSCEnumProtocols`.
pub(crate) fn winsock_catalog() -> io::Result<Vec<WinsockProvider>> {
    // SAFETY: WSADATA is a plain C struct that WSAStartup fills in.
    let mut data: WSADATA = unsafe { std::mem::zeroed() };
    // SAFETY: WSAStartup (Microsoft Learn), paired with WSACleanup below.
    let rc = unsafe { WSAStartup(0x0202, &mut data) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let result = enum_protocols();
    // SAFETY: pairs the successful WSAStartup above.
    unsafe { WSACleanup() };
    result
}

/// `WSCEnumProtocols` (Microsoft Learn): called first to learn the size,
/// then with a buffer of that many bytes, aligned for the struct type.
fn enum_protocols() -> io::Result<Vec<WinsockProvider>> {
    let mut bytes = 0u32;
    let mut err = 0i32;
    // SAFETY: a null buffer with a zero size asks for the size only.
    let n = unsafe { WSCEnumProtocols(std::ptr::null(), std::ptr::null_mut(), &mut bytes, &mut err) };
    if n != -1 || err != WSAENOBUFS {
        if n == 0 {
            return Ok(Vec::new());
        }
        return Err(io::Error::from_raw_os_error(err));
    }
    let count = (bytes as usize).div_ceil(size_of::<WSAPROTOCOL_INFOW>());
    // SAFETY: WSAPROTOCOL_INFOW is a plain C struct; all-zero is valid.
    let mut buf: Vec<WSAPROTOCOL_INFOW> = vec![unsafe { std::mem::zeroed() }; count];
    // SAFETY: `buf` holds at least `bytes` bytes, as the first call asked.
    let n = unsafe { WSCEnumProtocols(std::ptr::null(), buf.as_mut_ptr(), &mut bytes, &mut err) };
    if n < 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(buf[..n as usize]
        .iter()
        .map(|p| {
            let end = p.szProtocol.iter().position(|&c| c == 0).unwrap_or(p.szProtocol.len());
            WinsockProvider {
                name: String::from_utf16_lossy(&p.szProtocol[..end]),
                catalog_entry_id: p.dwCatalogEntryId,
                ifs_handles: p.dwServiceFlags1 & XP1_IFS_HANDLES != 0,
                chain_len: p.ProtocolChain.ChainLen,
            }
        })
        .collect())
}
