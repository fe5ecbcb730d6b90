//! Waiting on descriptors with an optional deadline: the building block for
//! lifeline and channel-closed exit detection.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

/// What to wait for on a descriptor.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// Readable (data or EOF).
    Readable,
    /// Hang-up only: every peer is gone. Buffered data does not wake it.
    HangUp,
}

/// Waits until `fd` reaches the state, or the deadline passes. Returns
/// `true` when the state was reached. `EINTR` restarts with the time left.
pub(crate) fn wait_fd(fd: BorrowedFd<'_>, until: Until, deadline: Option<Instant>) -> io::Result<bool> {
    let events = match until {
        Until::Readable => PollFlags::IN,
        // HUP and ERR are always reported; asking for nothing else means
        // unread data does not end the wait.
        Until::HangUp => PollFlags::empty(),
    };
    loop {
        let timeout = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => {
                let got = fds[0].revents();
                if got.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL | PollFlags::IN) {
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

pub(crate) fn timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: d.as_secs().min(i64::MAX as u64 / 2) as _, tv_nsec: d.subsec_nanos() as _ }
}
