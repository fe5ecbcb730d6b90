//! Which OS mechanisms this build uses, and platform facts, for
//! diagnostics (`umbilical doctor`).

/// One entry of the Winsock catalogue.
#[cfg(windows)]
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

/// The Winsock catalogue (`WSCEnumProtocols`). Providers without
/// `XP1_IFS_HANDLES` are non-IFS Layered Service Providers: the reason
/// umbilical never gives a child a socket on Windows.
#[cfg(windows)]
pub fn winsock_catalog() -> std::io::Result<Vec<WinsockProvider>> {
    crate::sys::winsock_catalog()
}

/// Whether this is Wine rather than Windows (used only to report, and to
/// skip visibly the checks Wine cannot honour).
#[cfg(windows)]
pub fn is_wine() -> bool {
    crate::sys::is_wine()
}

/// The Windows version, `major.minor.build`.
#[cfg(windows)]
pub fn windows_version() -> String {
    crate::sys::os_version()
}

/// How programs are started here, e.g. `"posix_spawn (addclosefrom_np)"`.
pub fn spawn() -> &'static str {
    crate::sys::spawn_mechanism()
}

/// How exits are observed here, e.g. `"pidfd (pidfd_open + waitid P_PIDFD)"`.
pub fn exit() -> &'static str {
    crate::sys::exit_mechanism()
}

/// How the shim's connection back is authenticated here, or why the
/// shim is unavailable (it starts with `"unavailable"`).
pub fn shim_auth() -> &'static str {
    crate::sys::shim_auth_mechanism()
}
