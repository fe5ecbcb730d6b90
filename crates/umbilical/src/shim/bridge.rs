//! The bridge: the far end of an in-band link (see `in_band.rs`), started
//! by the launcher as `SHIM shim --umbilical-bridge SOCKET [--umbilical-remove
//! FILE]` in a session of its own.
//!
//! It listens at SOCKET (only its user may connect), says it is ready with
//! one byte on stdout, relays the shim's connection to its stdin/stdout,
//! and removes SOCKET and FILE (a shim copied into a container) as soon as
//! the shim connected, or when the parent gives up first. Anyone else of
//! the same user who connects first gets nothing: the parent's token check
//! fails, and the launch with it.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sys;

/// The byte that tells the parent the socket is listening.
pub(super) const READY: u8 = b'R';

/// How long the bridge waits for the shim to connect, at most: the parent
/// starts the shim right after the ready byte, and hangs up on its own
/// timeout before this.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(600);

/// Files removed when the bridge no longer needs them, whatever the path
/// out.
struct Remove(Vec<PathBuf>);

impl Remove {
    fn now(&mut self) {
        for path in self.0.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Remove {
    fn drop(&mut self) {
        self.now();
    }
}

/// Serves as the bridge; returns the exit code.
pub(super) fn serve(socket: &Path, remove: Option<&Path>) -> io::Result<i32> {
    let mut files = Remove(std::iter::once(socket).chain(remove).map(Path::to_owned).collect());
    let stdin = io::stdin().as_fd().try_clone_to_owned()?;
    let stdout = io::stdout().as_fd().try_clone_to_owned()?;
    let listener = sys::listen_private(socket)?;
    std::fs::File::from(stdout.try_clone()?).write_all(&[READY])?;
    let Some(conn) = sys::accept_or_hangup(&listener, stdin.as_fd(), Instant::now() + ACCEPT_TIMEOUT)? else {
        return Ok(0);
    };
    drop(listener);
    // The shim runs: neither its file nor the socket is needed any more.
    files.now();
    sys::relay(stdin, stdout, conn)?;
    Ok(0)
}
