//! Which OS mechanisms this build uses, and platform facts, for
//! diagnostics (`umbilical doctor`).

/// Windows only.
#[cfg(windows)]
mod windows {
    pub use crate::sys::WinsockProvider;

    /// The Winsock catalogue (`WSCEnumProtocols`). Providers without
    /// `XP1_IFS_HANDLES` are non-IFS Layered Service Providers: the reason
    /// umbilical never gives a child a socket on Windows.
    pub fn winsock_catalog() -> std::io::Result<Vec<WinsockProvider>> {
        crate::sys::winsock_catalog()
    }

    /// Whether this is Wine rather than Windows (used only to report, and to
    /// skip visibly the checks Wine cannot honour).
    pub fn is_wine() -> bool {
        crate::sys::is_wine()
    }

    /// The Windows version, `major.minor.build`.
    pub fn windows_version() -> String {
        crate::sys::os_version()
    }
}
#[cfg(windows)]
pub use windows::*;

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
