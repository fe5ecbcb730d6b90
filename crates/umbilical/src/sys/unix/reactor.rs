//! Our descriptors in tokio's reactor (feature `tokio`): the channel's
//! ends, a process's exit, and the shim's control stream, each driven by
//! readiness (epoll on Linux, kqueue on macOS/BSD) instead of a thread.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll, ready};

use rustix::fs::OFlags;
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, ReadBuf};

/// The reactor's view of an object that owns a descriptor.
pub(crate) struct ByFd<T>(T);

impl<T: AsFd> AsRawFd for ByFd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An object owning a descriptor (`T`), registered with the current tokio
/// runtime's reactor.
///
/// Registration is by descriptor number and open file: one open file is
/// registered once per number, so a second watcher of the same file
/// (channel-closed detection beside the channel's reader, the write half
/// of a shared socket) registers a duplicate.
pub(crate) struct Registered<T: AsFd>(AsyncFd<ByFd<T>>);

impl<T: AsFd> Registered<T> {
    /// Makes `inner`'s descriptor non-blocking and registers it for
    /// reading and writing. `inner` keeps its own semantics: its reads and
    /// writes are the ones made.
    pub(crate) fn new(inner: T) -> io::Result<Self> {
        set_nonblocking(inner.as_fd(), true)?;
        Self::register(inner, Interest::READABLE | Interest::WRITABLE)
    }

    /// Registers `inner` for readiness to read only, its flags left alone
    /// (another holder of the same open file may rely on them).
    pub(crate) fn watch(inner: T) -> io::Result<Self> {
        Self::register(inner, Interest::READABLE)
    }

    fn register(inner: T, interest: Interest) -> io::Result<Self> {
        // SAFETY: `ByFd` owns `inner`, which owns the descriptor: it stays
        // open, on the same open file, for as long as the registration,
        // and `as_raw_fd` keeps returning it (`T: AsFd` borrows it from
        // the owner; none of ours swaps it while registered: `into_inner`
        // deregisters first).
        let fd = unsafe { AsyncFd::register_with_interest(ByFd(inner), interest) };
        Ok(Registered(fd.map_err(io::Error::from)?))
    }

    /// Deregisters and hands the object back (its descriptor still
    /// non-blocking: enough to close it or shut it down).
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner().0
    }

    /// The object.
    pub(crate) fn get_ref(&self) -> &T {
        &self.0.get_ref().0
    }

    /// Reads into `buf` once the descriptor is readable (one non-blocking
    /// `read(2)` with the channel's semantics, `fd::read`'s: a reset
    /// stream is EOF; again after each `WouldBlock`). `T: Read` marks the
    /// objects that are read this way. The unfilled part of `buf` is
    /// read into as it is, not zeroed first.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>>
    where
        T: Read,
    {
        let n = loop {
            let mut guard = ready!(self.0.poll_read_ready_mut(cx))?;
            // SAFETY: `read(2)` only writes into the slice, never
            // de-initialises it; exactly the `n` bytes it reports are
            // marked initialised below.
            let unfilled = unsafe { buf.unfilled_mut() };
            if let Ok(result) = guard.try_io(|fd| super::fd::read_uninit(fd.get_ref().0.as_fd(), unfilled)) {
                break result?;
            }
        };
        // SAFETY: the read above initialised the first `n` bytes of the
        // unfilled part.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    /// Writes `data` once the descriptor is writable (a non-blocking
    /// `T::write`, again after each `WouldBlock`).
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>
    where
        T: Write,
    {
        loop {
            let mut guard = ready!(self.0.poll_write_ready_mut(cx))?;
            if let Ok(result) = guard.try_io(|fd| fd.get_mut().0.write(data)) {
                return Poll::Ready(result);
            }
        }
    }

    /// Deregisters and makes the descriptor blocking again.
    pub(crate) fn into_blocking(self) -> io::Result<T> {
        let inner = self.into_inner();
        set_nonblocking(inner.as_fd(), false)?;
        Ok(inner)
    }

    /// Waits for the next readiness (an exit, an EOF or hang-up, or data)
    /// and consumes it: the caller looks at the state itself, and anything
    /// that happens after this returns wakes the next call.
    pub(crate) async fn changed(&self) -> io::Result<()> {
        let mut guard = self.0.readable().await?;
        guard.clear_ready();
        Ok(())
    }
}

/// A close-on-exec duplicate of `fd`, off the standard descriptors.
///
/// OS reference: fcntl(2) `F_DUPFD_CLOEXEC`.
pub(crate) fn duplicate(fd: &OwnedFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?)
}

/// Sets or clears `O_NONBLOCK` on the open file behind `fd`.
///
/// OS reference: fcntl(2) `F_SETFL`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    let new = if on { flags | OFlags::NONBLOCK } else { flags - OFlags::NONBLOCK };
    if new != flags {
        rustix::fs::fcntl_setfl(fd, new)?;
    }
    Ok(())
}

/// A process's exit as a readiness event: a pidfd (Linux) or a kqueue with
/// `EVFILT_PROC` (macOS/BSD) turns readable when the process exits.
pub(crate) type ExitReady = Registered<OwnedFd>;

/// Registers `handle` (from `Process::exit_handle`) for its exit.
pub(crate) fn exit_ready(handle: OwnedFd) -> io::Result<ExitReady> {
    Registered::watch(handle)
}

/// Waits on the reactor until nobody reads what is written to `fd` any
/// more (see `wait_readers_gone`).
///
/// A duplicate is registered on its own: its readiness is cleared after
/// each look without touching the writer's registration (clearing that
/// one could leave a pending write asleep on a writable descriptor). A
/// pipe turns writable again each time its reader reads, so each of those
/// costs one look; a hang-up is an edge of its own.
pub(crate) async fn readers_gone(fd: &OwnedFd) -> io::Result<()> {
    let watch = Registered::register(duplicate(fd)?, Interest::WRITABLE)?;
    loop {
        let mut ready = watch.0.writable().await?;
        if super::wait::wait_readers_gone(watch.get_ref(), Some(std::time::Instant::now()))? {
            return Ok(());
        }
        ready.clear_ready();
    }
}
