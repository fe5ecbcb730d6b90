//! The bridge: the far end of an in-band link (see `in_band.rs`), started
//! by the launcher as `SHIM shim --umbilical-bridge SOCKET [--umbilical-remove
//! FILE] [--umbilical-owner USER]` in a session of its own.
//!
//! It listens at SOCKET (only its user may connect), says it is ready with
//! one byte on stdout, relays the shim's connection to its stdin/stdout,
//! and removes SOCKET and FILE (a shim copied into a container) as soon as
//! the shim connected, or when the parent gives up first. Anyone else of
//! the same user who connects first gets nothing: the parent's token check
//! fails, and the launch with it.

use std::ffi::OsStr;
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
/// out; with each, the directory made for it (`umbilical-…`: a copy made
/// from inside a container gets a private one) once it is empty.
struct Remove(Vec<PathBuf>);

impl Remove {
    fn now(&mut self) {
        for path in self.0.drain(..) {
            crate::shim::remove_with_own_dir(&path);
        }
    }
}

impl Drop for Remove {
    fn drop(&mut self) {
        self.now();
    }
}

/// Serves as the bridge; returns the exit code.
pub(super) fn serve(socket: &Path, remove: Option<&Path>, owner: Option<&OsStr>) -> io::Result<i32> {
    let mut files = Remove(std::iter::once(socket).chain(remove).map(Path::to_owned).collect());
    // sshd hangs up on its session's group when the client goes (a caller
    // that gave up, or died): killed by it, the bridge would leave its
    // socket and copy behind. Its session's end is its news instead (the
    // end of stdin), after which it removes them and exits.
    sys::ignore_group_signals();
    let stdin = io::stdin().as_fd().try_clone_to_owned()?;
    let stdout = io::stdout().as_fd().try_clone_to_owned()?;
    let owner = owner.map(resolve_user).transpose()?;
    let listener = sys::listen_private(socket)?;
    if let Some((uid, gid)) = owner {
        // Still mode 0600: now the program's user's only.
        std::os::unix::fs::chown(socket, Some(uid), gid)?;
    }
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

/// A user as `docker exec -u` takes it: `UID[:GID]`, or `NAME[:GROUP]`
/// looked up in this host's (the container's) `/etc/passwd` and
/// `/etc/group`.
fn resolve_user(spec: &OsStr) -> io::Result<(u32, Option<u32>)> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    let spec = spec.to_str().ok_or_else(|| bad("the user is not UTF-8".into()))?;
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str, field: usize| -> io::Result<u32> {
        if let Ok(id) = name.parse::<u32>() {
            return Ok(id);
        }
        let text = std::fs::read_to_string(file)?;
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .and_then(|f| f.get(field)?.parse().ok())
            .ok_or_else(|| bad(format!("no user or group {name:?} in {file}")))
    };
    let uid = lookup("/etc/passwd", user, 2)?;
    let gid = match group {
        Some(g) => Some(lookup("/etc/group", g, 2)?),
        // A bare uid names no group; a name has its own in /etc/passwd.
        None if user.parse::<u32>().is_ok() => None,
        None => lookup("/etc/passwd", user, 3).ok(),
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_as_docker_takes_them() {
        assert_eq!(resolve_user(OsStr::new("1000")).unwrap(), (1000, None));
        assert_eq!(resolve_user(OsStr::new("1000:50")).unwrap(), (1000, Some(50)));
        assert_eq!(resolve_user(OsStr::new("root")).unwrap(), (0, Some(0)));
        assert!(resolve_user(OsStr::new("umbilical-no-such-user")).is_err());
    }
}
