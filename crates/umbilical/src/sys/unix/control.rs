//! The shim's control stream (a connected Unix stream socket), and our own
//! handle on a process we did not start (the program the shim started).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A connected control stream. Writes carry `MSG_NOSIGNAL` (std's
/// `UnixStream` documents it): a vanished peer is `BrokenPipe`, never a
/// SIGPIPE.
pub(crate) struct ControlStream(UnixStream, Option<Instant>);

/// The most descriptors one message carries (the program's stdin, stdout
/// and stderr, with room to spare).
const MAX_FDS: usize = 8;

/// `MSG_NOSIGNAL` where it exists; macOS has none (std's sockets carry
/// `SO_NOSIGPIPE` there).
#[cfg(not(apple))]
const SEND_FLAGS: rustix::net::SendFlags = rustix::net::SendFlags::NOSIGNAL;
#[cfg(apple)]
const SEND_FLAGS: rustix::net::SendFlags = rustix::net::SendFlags::empty();
/// `MSG_CMSG_CLOEXEC` where it exists (see `recv_with_fds` for macOS).
#[cfg(not(apple))]
const RECV_FLAGS: rustix::net::RecvFlags = rustix::net::RecvFlags::CMSG_CLOEXEC;
#[cfg(apple)]
const RECV_FLAGS: rustix::net::RecvFlags = rustix::net::RecvFlags::empty();

/// `shutdown(2)` keeps what the peer has not read yet: a last message
/// before it still arrives.
pub(crate) const SHUTDOWN_DISCARDS_UNREAD: bool = false;

impl ControlStream {
    pub(crate) fn from_std(stream: UnixStream) -> Self {
        ControlStream(stream, None)
    }

    /// The shim's side: `connect(2)` to the socket at `path`.
    pub(crate) fn connect(path: &Path) -> io::Result<Self> {
        UnixStream::connect(path).map(ControlStream::from_std)
    }

    /// Reads after `deadline` fail with `TimedOut` or `WouldBlock`;
    /// `None` waits for ever (`SO_RCVTIMEO`, socket(7)).
    pub(crate) fn set_read_deadline(&mut self, deadline: Option<Instant>) {
        self.1 = deadline;
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
        // Fails only for a zero duration, which `max` rules out.
        let _ = self.0.set_read_timeout(timeout);
    }

    /// Reads what is there without waiting (`MSG_DONTWAIT`, leaving the
    /// stream's own blocking mode alone for other holders): `WouldBlock`
    /// when nothing is, `Ok(0)` at the end.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match rustix::net::recv(&self.0, &mut *buf, rustix::net::RecvFlags::DONTWAIT) {
                Ok((n, _)) => return Ok(n),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The socket, which turns readable when the peer wrote or left.
    pub(crate) fn waitable(&self) -> Option<super::Waitable> {
        Some(std::os::fd::AsRawFd::as_raw_fd(&self.0))
    }

    /// Another handle on the same stream (`dup(2)`).
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        self.0.try_clone().map(ControlStream::from_std)
    }

    /// Sends `bytes` with `fds` attached (`SCM_RIGHTS`): the peer gets its
    /// own copies of the descriptors with the first of these bytes it
    /// reads. For a shim whose stdio had to be the launcher's terminal
    /// (su asks for its password on its stdin), the program's stdio.
    ///
    /// OS reference: sendmsg(2), unix(7).
    pub(crate) fn send_with_fds(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, sendmsg};
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut ancillary = SendAncillaryBuffer::new(&mut space);
        if fds.len() > MAX_FDS || !ancillary.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many descriptors for one message"));
        }
        let sent = loop {
            match sendmsg(&self.0, &[io::IoSlice::new(bytes)], &mut ancillary, SEND_FLAGS) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        };
        // The descriptors went with the first byte; the rest is plain.
        io::Write::write_all(&mut &self.0, &bytes[sent..])
    }

    /// Reads like `read`, adding the descriptors attached to what it read
    /// to `fds` (close-on-exec). `TimedOut` after the read deadline.
    ///
    /// OS reference: recvmsg(2), unix(7).
    pub(crate) fn recv_with_fds(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, recvmsg};
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match recvmsg(&self.0, &mut [io::IoSliceMut::new(buf)], &mut ancillary, RECV_FLAGS) {
                Ok(got) => break got,
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no message before the deadline"));
                }
                Err(e) => return Err(e.into()),
            }
        };
        for message in ancillary.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = message {
                for fd in rights {
                    // macOS has no MSG_CMSG_CLOEXEC: marked here (the
                    // shim alone receives, and starts nothing meanwhile).
                    #[cfg(apple)]
                    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
                    fds.push(fd);
                }
            }
        }
        Ok(got.bytes)
    }

    /// Ends the stream for every holder of it (`shutdown(2)`, both ways):
    /// the peer reads EOF, and so does a thread of ours blocked reading it.
    pub(crate) fn shutdown(&self) {
        // ENOTCONN (the peer already left) is the state we want anyway.
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

impl std::os::fd::AsFd for ControlStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl io::Read for ControlStream {
    /// A signal handler's interruption is resumed, also under a deadline
    /// (`SO_RCVTIMEO` reads are never restarted by `SA_RESTART`,
    /// signal(7)), with what is left of the deadline: a caller that catches
    /// SIGINT must not see its handshake fail with `Interrupted`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if self.1.is_some_and(|d| Instant::now() >= d) {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "the control stream's deadline passed"));
                    }
                    let deadline = self.1;
                    self.set_read_deadline(deadline);
                }
                other => return other,
            }
        }
    }
}

impl io::Write for ControlStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A handle on a process we did not start, held against pid reuse: on
/// Linux a pidfd (`pidfd_open(2)`); elsewhere none can be had (kqueue can
/// watch a pid but not hold it), and `open` says so.
pub(crate) struct OtherProcess {
    #[cfg(target_os = "linux")]
    pidfd: std::os::fd::OwnedFd,
    #[cfg(not(target_os = "linux"))]
    never: std::convert::Infallible,
}

impl OtherProcess {
    /// Opens `pid`, if this OS can hold it.
    pub(crate) fn open(pid: u32) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
            let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
            Some(OtherProcess { pidfd })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = pid;
            None
        }
    }

    /// Blocks until the process has exited (the pidfd turns readable,
    /// pidfd_open(2)). Its status is not ours to collect.
    pub(crate) fn wait(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            // An error here (EINTR is retried inside) leaves nothing to
            // wait on; the caller treats it as the end either way.
            let _ = super::wait::wait_fd(self.pidfd.as_fd(), super::wait::Until::Readable, None);
        }
        #[cfg(not(target_os = "linux"))]
        match self.never {}
    }

    /// The descriptor that turns readable when the process exits (the
    /// pidfd), for a background watch.
    pub(crate) fn waitable(&self) -> super::Waitable {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            self.pidfd.as_raw_fd()
        }
        #[cfg(not(target_os = "linux"))]
        match self.never {}
    }

    /// Sends signal `sig` (`pidfd_send_signal(2)`: never a reused pid).
    pub(crate) fn kill(&self, sig: i32) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let sig = rustix::process::Signal::from_named_raw(sig)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("unknown signal {sig}")))?;
            rustix::process::pidfd_send_signal(&self.pidfd, sig).map_err(Into::into)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = sig;
            match self.never {}
        }
    }
}
