//! Our handles in tokio's reactor (feature `tokio`): the channel's pipe
//! ends through tokio's named pipes (the runtime's I/O completion port),
//! and a process's exit by a registered wait.
//!
//! A pipe end is handed to tokio as a duplicate: the blocking half keeps
//! its own handle (closing it is part of the half-close), and both must be
//! closed for the program to read EOF. Once a handle is tied to a
//! completion port every overlapped operation on that pipe posts there, so
//! nothing but tokio reads or writes it afterwards; there is no way back
//! to blocking I/O.

use std::io::{self, Read, Write};
use std::os::windows::io::{AsHandle, IntoRawHandle, OwnedHandle};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::windows::named_pipe::NamedPipeServer;
use tokio::sync::Notify;

/// A duplicate of `h` (same object, same access, not inheritable).
///
/// OS reference: DuplicateHandle (Microsoft Learn).
pub(crate) fn duplicate(h: &OwnedHandle) -> io::Result<OwnedHandle> {
    h.try_clone()
}

/// An object owning a parent's pipe end (`T`), with a duplicate of its
/// handle driven by tokio once it is first read or written.
///
/// The duplicate is tied to the runtime lazily: tokio's named pipe keeps
/// a read (and its buffer, 4 KiB) in flight from the moment it is
/// registered, on the write end of stdin as well (that end is duplex, see
/// `pipe::create_server`), so a child whose channel is not used yet would
/// hold two buffers and two registrations for nothing.
pub(crate) struct Registered<T: AsHandle> {
    pipe: Option<NamedPipeServer>,
    /// The runtime the object was made in, where its duplicate is
    /// registered on first use (which may be polled from elsewhere).
    runtime: tokio::runtime::Handle,
    inner: T,
}

impl<T: AsHandle> Registered<T> {
    /// Keeps `inner` (a server end of one of our named pipes, opened with
    /// `FILE_FLAG_OVERLAPPED`) for the current runtime; panics outside
    /// one, as tokio's own I/O types do.
    pub(crate) fn new(inner: T) -> io::Result<Self> {
        Ok(Registered { pipe: None, runtime: tokio::runtime::Handle::current(), inner })
    }

    /// Tokio's duplicate of the handle, tied to the runtime on first use.
    fn pipe(&mut self) -> io::Result<&mut NamedPipeServer> {
        if self.pipe.is_none() {
            let dup = self.inner.as_handle().try_clone_to_owned()?;
            let _entered = self.runtime.enter();
            // SAFETY: `dup` is a fresh handle that nothing else owns, given
            // away here: tokio becomes its sole owner. It is a named pipe
            // server end created overlapped by `pipe::pair`, and no handle
            // of that pipe was tied to a completion port before (this is
            // the first use, and nothing else does I/O on `inner`).
            self.pipe = Some(unsafe { NamedPipeServer::from_raw_handle(dup.into_raw_handle())? });
        }
        Ok(self.pipe.as_mut().expect("registered above"))
    }

    /// Lets go of tokio's duplicate (its pending write still completes
    /// before it closes) and hands the object back, to be closed: its
    /// handle must see no I/O of its own any more.
    pub(crate) fn into_inner(self) -> T {
        self.inner
    }

    /// The object.
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Reads into `buf` through tokio; a writer that closed its end is
    /// EOF.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>>
    where
        T: Read,
    {
        match self.pipe() {
            Ok(pipe) => Pin::new(pipe).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Writes `data` through tokio; a reader that went away is
    /// `BrokenPipe` (`ERROR_NO_DATA`).
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>
    where
        T: Write,
    {
        match self.pipe() {
            Ok(pipe) => Pin::new(pipe).poll_write(cx, data),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// What the wait callback and the waiter share.
#[derive(Default)]
struct Fired {
    fired: AtomicBool,
    notify: Notify,
}

/// A process's exit as an event: a wait registered with the system thread
/// pool (`RegisterWaitForSingleObject`, see `on_signal`), whose wait
/// threads each watch up to 63 handles: no thread per child.
pub(crate) struct ExitReady {
    fired: Arc<Fired>,
    /// Unregistered when dropped, after a running callback returns.
    _wait: super::OnSignal,
}

/// Registers a wait for `process` (from `Process::exit_handle`).
pub(crate) fn exit_ready(process: OwnedHandle) -> io::Result<ExitReady> {
    let fired = Arc::new(Fired::default());
    let on_exit = fired.clone();
    let wait = super::on_signal(process, move || {
        on_exit.fired.store(true, Ordering::Release);
        on_exit.notify.notify_one();
    })?;
    Ok(ExitReady { fired, _wait: wait })
}

impl ExitReady {
    /// Waits until the process has exited (at once if it already has).
    pub(crate) async fn changed(&self) -> io::Result<()> {
        if !self.fired.fired.load(Ordering::Acquire) {
            // A notification given before this awaits is kept as a permit.
            self.fired.notify.notified().await;
        }
        Ok(())
    }
}

/// Waits until the other end of the pipe `h` is closed (see
/// `wait_readers_gone`): its state polled from a timer, 10 ms backing off
/// to 50 ms, since a pipe's writer has no readiness for it.
pub(crate) async fn readers_gone(h: &OwnedHandle) -> io::Result<()> {
    let mut nap = std::time::Duration::from_millis(10);
    while !super::wait::readers_gone(h)? {
        tokio::time::sleep(nap).await;
        nap = (nap * 2).min(std::time::Duration::from_millis(50));
    }
    Ok(())
}
