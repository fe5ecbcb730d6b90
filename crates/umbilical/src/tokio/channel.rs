//! The channel on tokio's reactor: `AsyncRead` for the program's stdout,
//! `AsyncWrite` for its stdin, `poll_shutdown` the half-close.

use crate::tokio::PollCutoff;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::channel::ChannelKind;
use crate::sys;

/// The async [`Channel`](crate::Channel): the same byte stream, with the
/// same semantics, driven by tokio's reactor.
///
/// - [`AsyncRead`] reads what the program writes to its stdout; EOF once
///   every holder of its side closed it.
/// - [`AsyncWrite`] feeds its stdin; writes never raise SIGPIPE, and fail
///   with [`io::ErrorKind::BrokenPipe`] once the program stopped reading.
/// - [`AsyncWriteExt::shutdown`](https://docs.rs/tokio/1/tokio/io/trait.AsyncWriteExt.html#method.shutdown) is
///   the half-close: the program reads EOF after the last byte written,
///   and reading goes on. Nothing is buffered on our side, so `flush` has
///   nothing to do and the half-close never waits for the program.
/// - [`split`](Channel::split) gives owned halves for two tasks.
///
/// Dropping it half-closes and stops reading, as the blocking channel does.
pub struct Channel {
    read: ReadHalf,
    write: WriteHalf,
}

/// The reading half of an async [`Channel`]: the program's stdout.
///
/// Dropping it tells the program nobody reads any more, as
/// [`crate::ReadHalf`] does.
pub struct ReadHalf {
    io: sys::Registered<crate::ReadHalf>,
    /// The wait-delay cutoff's timer, once its moment is known.
    cut_timer: Option<Pin<Box<::tokio::time::Sleep>>>,
}

/// The writing half of an async [`Channel`]: the program's stdin.
///
/// [`AsyncWriteExt::shutdown`](https://docs.rs/tokio/1/tokio/io/trait.AsyncWriteExt.html#method.shutdown), or
/// dropping it, half-closes.
pub struct WriteHalf {
    state: WriteState,
}

enum WriteState {
    Open(sys::Registered<WriteIo>),
    /// Half-closed (a pipe: closed), off the reactor; kept for its drop,
    /// and on Unix for `into_blocking`.
    #[cfg_attr(windows, allow(dead_code))]
    Shut(crate::WriteHalf),
    /// Only while a method moves from one state to the other.
    Moving,
}

/// The blocking write half as the reactor sees it.
struct WriteIo {
    /// A shared socket is registered by the read half already: the write
    /// half registers a duplicate.
    dup: Option<sys::Handle>,
    inner: crate::WriteHalf,
}

impl WriteIo {
    fn handle(&self) -> &sys::Handle {
        match (&self.dup, self.inner.handle()) {
            (Some(h), _) | (None, Some(h)) => h,
            // `WriteHalf::from_blocking` registers an open half only, and
            // it closes only after `into_inner`.
            (None, None) => unreachable!("a registered write half is open"),
        }
    }
}

sys::impl_os_handle!(WriteIo, |s| s.handle());

impl Write for WriteIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Channel {
    /// Puts a blocking channel on the current tokio runtime's reactor.
    ///
    /// Its descriptors turn non-blocking. Must be called from within a
    /// runtime (it panics otherwise, as tokio's own I/O types do).
    pub fn from_blocking(channel: crate::Channel) -> io::Result<Channel> {
        let (read, write) = channel.split();
        Ok(Channel {
            read: ReadHalf { io: sys::Registered::new(read)?, cut_timer: None },
            write: WriteHalf::from_blocking(write)?,
        })
    }

    /// Takes the channel off the reactor and makes its descriptors
    /// blocking again (Unix: on Windows a handle tied to a completion
    /// port cannot be untied).
    #[cfg(unix)]
    pub fn into_blocking(self) -> io::Result<crate::Channel> {
        let Channel { read, write } = self;
        Ok(crate::Channel { read: read.io.into_blocking()?, write: write.into_blocking()? })
    }

    /// Which kind of channel this is.
    pub fn kind(&self) -> ChannelKind {
        self.read.io.get_ref().end.kind
    }

    /// Splits into owned halves that two tasks can hold.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }
}

impl WriteHalf {
    fn from_blocking(inner: crate::WriteHalf) -> io::Result<WriteHalf> {
        let Some(handle) = inner.handle() else { return Ok(WriteHalf { state: WriteState::Shut(inner) }) };
        let dup = if matches!(inner.inner, crate::channel::WriteEnd::Shared { .. }) {
            Some(sys::duplicate(handle)?)
        } else {
            None
        };
        Ok(WriteHalf { state: WriteState::Open(sys::Registered::new(WriteIo { dup, inner })?) })
    }

    #[cfg(unix)]
    fn into_blocking(mut self) -> io::Result<crate::WriteHalf> {
        match std::mem::replace(&mut self.state, WriteState::Moving) {
            WriteState::Open(io) => Ok(io.into_blocking()?.inner),
            WriteState::Shut(inner) => Ok(inner),
            WriteState::Moving => unreachable!("no method leaves a write half moving"),
        }
    }

    /// Completes once the program has closed its stdin (every holder of
    /// the read side closed it, or ended), without writing: the async
    /// [`crate::WriteHalf::wait_closed`], with its caveats. Wrap it in
    /// `tokio::time::timeout` for a deadline. Cancel-safe. On Unix it is a
    /// readiness of the reactor; on Windows the pipe's state is looked at
    /// every 10–50 ms.
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let mut child = umbilical::Command::new("head").args(["-c", "1"]).spawn_async().await?;
    /// let (_, mut writer) = child.take_channel().unwrap().split();
    /// // ... write when asked; learn without writing that `head` stopped reading:
    /// writer.closed().await?;
    /// # Ok(()) }
    /// ```
    pub async fn closed(&self) -> io::Result<()> {
        match &self.state {
            WriteState::Open(io) => sys::readers_gone(io.get_ref().handle()).await,
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the channel's write side was shut down: its reader's close cannot be seen",
            )),
        }
    }

    /// Half-closes now, as the blocking [`crate::WriteHalf::shutdown`]
    /// does (what `poll_shutdown` does, without a context).
    pub fn shutdown_now(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.state, WriteState::Moving) {
            WriteState::Open(io) => {
                // Off the reactor first: a pipe's descriptor closes below.
                let mut inner = io.into_inner().inner;
                let result = inner.shutdown();
                self.state = WriteState::Shut(inner);
                result
            }
            other => {
                self.state = other;
                Ok(())
            }
        }
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        // Off the reactor before the blocking half closes its pipe.
        let _ = self.shutdown_now();
    }
}

impl ReadHalf {
    /// Whether reads stopped at the
    /// [`wait_delay`](crate::Command::wait_delay) cutoff; see
    /// [`crate::ReadHalf::truncated`].
    pub fn truncated(&self) -> bool {
        self.io.get_ref().truncated()
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let end = &*this.io.get_ref().end;
        if let Some(cutoff) = end.cutoff.get()
            && cutoff.poll_passed(cx, &mut this.cut_timer)
        {
            // End of file at the cutoff.
            end.truncated.store(true, std::sync::atomic::Ordering::Release);
            return Poll::Ready(Ok(()));
        }
        this.io.poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().state {
            WriteState::Open(io) => io.poll_write(cx, buf),
            _ => Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the channel's write side was shut down"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().shutdown_now())
    }
}

impl AsyncRead for Channel {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Channel {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_shutdown(cx)
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("kind", &self.kind()).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf").field("kind", &self.io.get_ref().end.kind).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf")
            .field("shut_down", &!matches!(self.state, WriteState::Open(_)))
            .finish_non_exhaustive()
    }
}
