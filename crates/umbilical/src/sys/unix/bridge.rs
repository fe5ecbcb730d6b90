//! The far end of an in-band shim link: a socket for the shim to connect
//! to, on the host or in the container where the shim runs, relayed to the
//! bridge's own stdin/stdout — a session of the launcher the parent holds.
//!
//! This is what `ssh -R` does for a forwarded link, done by a process of
//! ours inside the session instead: container exec forwards no socket, and
//! hardened sshd configurations (`AllowStreamLocalForwarding no`) refuse
//! to.

use std::io::{self, Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::Mode;

use super::wait::timespec;

/// Listens at `path` with a socket only its owner may connect to: the
/// mode comes from the umask at `bind(2)`, so there is no moment when
/// another user could (connecting needs write permission on the socket,
/// unix(7)).
pub(crate) fn listen_private(path: &Path) -> io::Result<UnixListener> {
    let old = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    bound
}

/// Waits for the shim's connection until `deadline`, or until `stdin`
/// hangs up (the parent gave up): `Ok(None)` then.
pub(crate) fn accept_or_hangup(
    listener: &UnixListener,
    stdin: BorrowedFd<'_>,
    deadline: Instant,
) -> io::Result<Option<UnixStream>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the shim did not connect to the bridge in time"));
        }
        let timeout = timespec(left);
        let mut fds = [PollFd::new(listener, PollFlags::IN), PollFd::from_borrowed_fd(stdin, PollFlags::empty())];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if fds[1].revents().intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
            return Ok(None);
        }
        if fds[0].revents().contains(PollFlags::IN) {
            return listener.accept().map(|(stream, _)| Some(stream));
        }
    }
}

/// Relays between the session (`stdin`, `stdout`) and the shim's
/// connection until either side ends. The session's EOF (the parent closed
/// the link, or it died) closes the connection both ways, which the shim
/// reads as the link dropping; the connection's EOF (the shim is done)
/// ends the relay, and the bridge's exit closes the session.
pub(crate) fn relay(stdin: OwnedFd, stdout: OwnedFd, conn: UnixStream) -> io::Result<()> {
    let mut stdout = std::fs::File::from(stdout);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = [PollFd::new(&stdin, PollFlags::IN), PollFd::new(&conn, PollFlags::IN)];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| fds[i].revents().intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR);
        if ready(0) {
            let n = match super::fd::read(&stdin, &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                let _ = conn.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            if (&conn).write_all(&buf[..n]).is_err() {
                return Ok(());
            }
        }
        if ready(1) {
            let n = match (&conn).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                return Ok(());
            }
        }
    }
}
