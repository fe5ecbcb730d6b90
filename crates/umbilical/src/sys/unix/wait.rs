//! Waiting on descriptors with an optional deadline: the building block for
//! lifeline and channel-closed exit detection.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

/// What to wait for on a descriptor.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// Readable (data or EOF).
    Readable,
    /// Hang-up only: every peer is gone. Buffered data does not wake it.
    HangUp,
    /// Writable (room for a write, or nobody reads any more).
    Writable,
}

/// Waits until `fd` reaches the state, or the deadline passes. Returns
/// `true` when the state was reached. `EINTR` restarts with the time left.
///
/// OS reference: poll(2).
pub(crate) fn wait_fd(fd: BorrowedFd<'_>, until: Until, deadline: Option<Instant>) -> io::Result<bool> {
    let events = match until {
        Until::Readable => PollFlags::IN,
        // HUP and ERR are always reported; asking for nothing else means
        // unread data does not end the wait.
        Until::HangUp => PollFlags::empty(),
        Until::Writable => PollFlags::OUT,
    };
    loop {
        let timeout = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => {
                let got = fds[0].revents();
                if got.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL | PollFlags::IN | PollFlags::OUT) {
                    return Ok(true);
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

/// Waits for EOF on a descriptor nobody else reads (the lifeline); bytes
/// someone wrote into it are discarded.
pub(crate) fn wait_eof(fd: &OwnedFd, deadline: Option<Instant>) -> io::Result<bool> {
    let mut scratch = [0u8; 512];
    loop {
        if !wait_fd(fd.as_fd(), Until::Readable, deadline)? {
            return Ok(false);
        }
        if super::read(fd, &mut scratch)? == 0 {
            return Ok(true);
        }
    }
}

/// Waits until every peer of the channel's read side is gone (hang-up),
/// without consuming unread data.
pub(crate) fn wait_closed(fd: &OwnedFd, deadline: Option<Instant>) -> io::Result<bool> {
    wait_fd(fd.as_fd(), Until::HangUp, deadline)
}

pub(crate) fn timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: d.as_secs().min(i64::MAX as u64 / 2) as _, tv_nsec: d.subsec_nanos() as _ }
}

/// Blocks until `fd` is readable (a pidfd: the process has exited).
///
/// OS reference: poll(2).
#[cfg(target_os = "linux")]
pub(crate) fn wait_readable(fd: BorrowedFd<'_>) -> io::Result<()> {
    wait_fd(fd, Until::Readable, None).map(|_| ())
}

/// Reads exactly `buf.len()` bytes from a blocking descriptor, waiting at
/// most until `deadline` for each part (the shim's token).
pub(crate) fn read_exact_until(fd: &OwnedFd, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        if !wait_fd(fd.as_fd(), Until::Readable, Some(deadline))? {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the token did not arrive on the channel in time"));
        }
        match super::fd::read(fd, &mut buf[filled..])? {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the channel closed before the token")),
            n => filled += n,
        }
    }
    Ok(())
}

/// Waits until one of `fds` is readable (or hung up), or `deadline`
/// passes: the index of the first ready one, `None` on timeout. `EINTR`
/// restarts with the time left.
///
/// OS reference: poll(2).
pub(crate) fn wait_any(fds: &[BorrowedFd<'_>], deadline: Option<Instant>) -> io::Result<Option<usize>> {
    let mut polled: Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN)).collect();
    loop {
        let timeout = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        match rustix::event::poll(&mut polled, timeout.as_ref()) {
            Ok(0) => return Ok(None),
            Ok(_) => {
                let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL;
                if let Some(i) = polled.iter().position(|p| p.revents().intersects(ready)) {
                    return Ok(Some(i));
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// Reads what is there, waiting at most until `deadline` for something;
/// `Ok(None)` when the deadline passed first.
///
/// OS reference: poll(2), read(2).
pub(crate) fn read_until(fd: &OwnedFd, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<Option<usize>> {
    if !wait_fd(fd.as_fd(), Until::Readable, deadline)? {
        return Ok(None);
    }
    super::fd::read(fd, buf).map(Some)
}

/// Waits until nobody reads what is written to `fd` any more (a pipe's
/// readers all closed it: `POLLERR`; a socket's peer closed: `POLLHUP`),
/// without writing.
///
/// OS reference: poll(2).
pub(crate) fn wait_readers_gone(fd: &OwnedFd, deadline: Option<Instant>) -> io::Result<bool> {
    wait_fd(fd.as_fd(), Until::HangUp, deadline)
}

/// Writes part of `buf` once there is room, waiting at most until
/// `deadline`; `Ok(None)` when the deadline passed first. At most one page
/// is written: after `POLLOUT` that much goes into a pipe (a free slot)
/// or a socket (a quarter of its buffer free) without blocking.
///
/// OS reference: poll(2), write(2), send(2).
pub(crate) fn write_until(
    fd: &OwnedFd,
    buf: &[u8],
    socket: bool,
    deadline: Option<Instant>,
) -> io::Result<Option<usize>> {
    if !wait_fd(fd.as_fd(), Until::Writable, deadline)? {
        return Ok(None);
    }
    let part = &buf[..buf.len().min(4096)];
    if socket { super::fd::send(fd, part) } else { super::fd::write_pipe(fd, part) }.map(Some)
}
