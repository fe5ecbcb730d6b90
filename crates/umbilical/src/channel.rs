//! The parent's end of the duplex byte stream.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::cutoff::Cutoff;

use crate::sys;
use crate::sys::Handle;

/// How the channel is built.
///
/// | kind | program's fd 0 / fd 1 | half-close | program closes stdin early |
/// | --- | --- | --- | --- |
/// | [`Socket`](ChannelKind::Socket) | two socketpairs, one per direction | `shutdown(SHUT_WR)` | our writes fail with `BrokenPipe` |
/// | [`SharedSocket`](ChannelKind::SharedSocket) | one socket on both | `shutdown(SHUT_WR)` | our writes block until the program exits (see its docs) |
/// | [`Pipes`](ChannelKind::Pipes) | two pipes | close the write pipe | our writes fail with `BrokenPipe` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ChannelKind {
    /// Two `AF_UNIX` stream socketpairs, one per direction: the program's
    /// fd 0 is a socket it reads, fd 1 another socket it writes. Half-close
    /// is `shutdown(SHUT_WR)` on ours. The default: large transfers move
    /// 2–3x faster than through default-size pipes, and, each direction
    /// being its own socket, it behaves like two pipes where programs
    /// notice (a program that closes its stdin makes our writes fail at
    /// once; a read on one direction never wakes a writer on the other).
    ///
    /// On Windows there is no socket kind (an inherited SOCKET breaks under
    /// Layered Service Providers): this means [`ChannelKind::Pipes`] there.
    #[default]
    Socket,
    /// One `AF_UNIX` stream socketpair: the program's fds 0 and 1 are the
    /// *same* socket, as an inetd-style program expects (one that reads and
    /// writes fd 0, or hands one descriptor to a library that does both).
    ///
    /// The caveat of sharing: the program's stdin is closed only when fd 1
    /// is closed too. A program that closes its stdin but keeps running
    /// (`exec 0<&-`) does not make our writes fail; they block once the
    /// socket buffer is full, until the program exits. Use
    /// [`Socket`](ChannelKind::Socket) or [`Pipes`](ChannelKind::Pipes)
    /// when that matters.
    ///
    /// On Windows this means [`ChannelKind::Pipes`].
    SharedSocket,
    /// Two pipes, one per direction, for programs that treat a socket on
    /// stdin badly (some check `S_ISFIFO`, some call `lseek` or `ioctl`).
    /// Half-close closes the parent's write pipe. On Windows: two one-way
    /// named pipes, overlapped on the parent's side, synchronous on the
    /// program's.
    Pipes,
}

impl ChannelKind {
    /// Whether the parent's ends are sockets.
    pub(crate) fn is_socket(self) -> bool {
        matches!(self, ChannelKind::Socket | ChannelKind::SharedSocket)
    }
}

/// The read side, shared with the `Child` when it must watch for the
/// program's side closing (`ExitDetection::ChannelClosed`).
pub(crate) struct ReadEnd {
    pub(crate) handle: Handle,
    pub(crate) kind: ChannelKind,
    /// The `Child` holds a reference and polls it for hang-up.
    pub(crate) watched: AtomicBool,
    /// The caller dropped its reading half; a watcher must drain instead.
    pub(crate) abandoned: AtomicBool,
    /// Where reads stop after the program's end (`Command::wait_delay`).
    pub(crate) cutoff: OnceLock<Arc<Cutoff>>,
    /// A read ended at the cutoff, not at the program's end of file.
    pub(crate) truncated: AtomicBool,
    /// The descriptor was handed out (`Channel::into_fds`): dropping the
    /// half must not shut the socket down under its new owner.
    pub(crate) released: AtomicBool,
}

/// The reading half of a [`Channel`]: the program's stdout.
///
/// Dropping it tells the program nobody reads any more: on a socket the
/// read side is shut down, so the program's writes fail with `EPIPE`
/// (unless the `Child` is watching the channel for its end, in which case
/// `wait()` reads and discards what the program still writes).
pub struct ReadHalf {
    pub(crate) end: Arc<ReadEnd>,
}

/// The writing half of a [`Channel`]: the program's stdin.
///
/// Dropping it half-closes, exactly as [`WriteHalf::shutdown`] does: the
/// program reads EOF after the last byte written.
pub struct WriteHalf {
    pub(crate) inner: WriteEnd,
}

pub(crate) enum WriteEnd {
    /// A socket of its own (`ChannelKind::Socket`); `shut` once half-closed.
    /// Never made where the OS has no socket channel (`sys::HAS_SOCKETS`).
    Socket { handle: Handle, shut: bool },
    /// The socket shared with the read half (`ChannelKind::SharedSocket`).
    Shared { end: Arc<ReadEnd>, shut: bool },
    /// The parent's write pipe; `None` once closed.
    Pipe(Option<Handle>),
}

/// The parent's end of the duplex byte stream wired to a program's stdin and
/// stdout.
///
/// `Read` returns what the program writes to its stdout; `Write` feeds its
/// stdin; [`shutdown_write`](Channel::shutdown_write) signals EOF while
/// reading goes on. Both are available on `&Channel` too, and
/// [`split`](Channel::split) gives halves that two threads can own.
///
/// Writes never raise SIGPIPE: a program that stopped reading makes them
/// fail with [`io::ErrorKind::BrokenPipe`].
///
/// Dropping the channel half-closes it and stops reading, which the program
/// sees as EOF on stdin and `EPIPE` on stdout.
///
/// ```
/// use std::io::{Read, Write};
/// use umbilical::Command;
///
/// let mut child = Command::new("cat").spawn()?;
/// let mut channel = child.take_channel().unwrap();
/// channel.write_all(b"hello")?;
/// channel.shutdown_write()?; // cat sees EOF ...
/// let mut echoed = String::new();
/// channel.read_to_string(&mut echoed)?; // ... and we keep reading
/// assert_eq!(echoed, "hello");
/// assert!(child.wait()?.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Channel {
    pub(crate) read: ReadHalf,
    pub(crate) write: WriteHalf,
}

/// What the program gets: the other socket of the pair, or the child's ends
/// of the two pipes.
///
/// Use it with std's `Command` via [`ChildEnd::into_stdio`]; umbilical's own
/// [`Command`](crate::Command) uses it internally.
pub struct ChildEnd {
    pub(crate) stdin: Handle,
    /// `None` for a socket: stdout is the same socket as stdin.
    pub(crate) stdout: Option<Handle>,
}

impl ChildEnd {
    /// The handle for the program's stdin.
    pub(crate) fn stdin_handle(&self) -> &Handle {
        &self.stdin
    }

    /// The handle for the program's stdout.
    pub(crate) fn stdout_handle(&self) -> &Handle {
        self.stdout.as_ref().unwrap_or(&self.stdin)
    }

    /// Converts into `(stdin, stdout)` for `std::process::Command`.
    ///
    /// For a shared socket this duplicates the descriptor once. Drop the std
    /// `Command` after spawning: it keeps these descriptors open, and the
    /// parent's copy of the child end must be closed for the program's EOF
    /// and for [`Channel`] reads to end.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::process::Command;
    /// use umbilical::{Channel, ChannelKind};
    ///
    /// let (mut channel, child_end) = Channel::pair(ChannelKind::Socket)?;
    /// let (stdin, stdout) = child_end.into_stdio()?;
    /// let mut child = Command::new("tr").arg("a-z").arg("A-Z").stdin(stdin).stdout(stdout).spawn()?;
    /// channel.write_all(b"shout")?;
    /// channel.shutdown_write()?;
    /// let mut out = String::new();
    /// channel.read_to_string(&mut out)?;
    /// assert_eq!(out, "SHOUT");
    /// assert!(child.wait()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_stdio(self) -> io::Result<(std::process::Stdio, std::process::Stdio)> {
        let stdout = match self.stdout {
            Some(fd) => fd,
            None => self.stdin.try_clone()?,
        };
        Ok((self.stdin.into(), stdout.into()))
    }
}

impl Channel {
    /// Creates a channel and the child end to give to a program.
    ///
    /// All descriptors are close-on-exec, so no other spawn in the process
    /// (std's `Command`, another thread's fork) inherits them by accident.
    pub fn pair(kind: ChannelKind) -> io::Result<(Channel, ChildEnd)> {
        let kind = if sys::HAS_SOCKETS { kind } else { ChannelKind::Pipes };
        match kind {
            ChannelKind::Socket => {
                let (parent_write, child_stdin) = sys::socket_pair()?;
                let (parent_read, child_stdout) = sys::socket_pair()?;
                let channel = Channel {
                    read: ReadHalf { end: Arc::new(ReadEnd::new(parent_read, kind)) },
                    write: WriteHalf { inner: WriteEnd::Socket { handle: parent_write, shut: false } },
                };
                Ok((channel, ChildEnd { stdin: child_stdin, stdout: Some(child_stdout) }))
            }
            ChannelKind::SharedSocket => {
                let (parent, child) = sys::socket_pair()?;
                let end = Arc::new(ReadEnd::new(parent, kind));
                let channel = Channel {
                    read: ReadHalf { end: end.clone() },
                    write: WriteHalf { inner: WriteEnd::Shared { end, shut: false } },
                };
                Ok((channel, ChildEnd { stdin: child, stdout: None }))
            }
            _ => {
                let p = sys::pipes()?;
                let channel = Channel::from_pipe_ends(p.parent_read, p.parent_write);
                Ok((channel, ChildEnd { stdin: p.child_stdin, stdout: Some(p.child_stdout) }))
            }
        }
    }

    /// A two-pipe channel from the parent's ends (the program's ends are
    /// given to it, or opened by a Windows shim, by name).
    pub(crate) fn from_pipe_ends(parent_read: Handle, parent_write: Handle) -> Channel {
        Channel {
            read: ReadHalf { end: Arc::new(ReadEnd::new(parent_read, ChannelKind::Pipes)) },
            write: WriteHalf { inner: WriteEnd::Pipe(Some(parent_write)) },
        }
    }

    /// Which kind of channel this is (always [`ChannelKind::Pipes`] on
    /// Windows).
    pub fn kind(&self) -> ChannelKind {
        self.read.end.kind
    }

    /// Half-closes: the program reads EOF after everything already written.
    /// Reading goes on. Calling it again does nothing; writing afterwards
    /// fails with [`io::ErrorKind::BrokenPipe`].
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.write.shutdown()
    }

    /// Splits into halves that can move to different threads.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }

    /// The read half, borrowed.
    pub fn reader(&self) -> &ReadHalf {
        &self.read
    }

    /// The write half, borrowed.
    pub fn writer(&self) -> &WriteHalf {
        &self.write
    }

    pub(crate) fn read_end(&self) -> &Arc<ReadEnd> {
        &self.read.end
    }

    /// Takes the channel apart into its descriptors, `(read, write)`: the
    /// program's stdout and stdin ends, for an event loop that does its own
    /// I/O (Node's libuv, an io_uring ring). `shutdown(write, SHUT_WR)` on
    /// a socket, or closing the write pipe, is then the half-close.
    /// Unix only.
    ///
    /// For [`ChannelKind::SharedSocket`] both are the one socket (the
    /// write descriptor a duplicate). What the channel did on its own stops
    /// here: reads no longer stop at the
    /// [`wait_delay`](crate::Command::wait_delay) cutoff, and writes may
    /// raise `SIGPIPE` unless the caller ignores it (Node does).
    ///
    /// # Errors
    ///
    /// The channel back, unchanged, when the [`Child`](crate::Child) is
    /// watching it for the program's end
    /// ([`ExitDetection::ChannelClosed`](crate::ExitDetection::ChannelClosed)),
    /// or when it was already half-closed.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::io::{Read, Write};
    /// let mut child = umbilical::Command::new("cat").spawn()?;
    /// let channel = child.take_channel().unwrap();
    /// let Ok((read, write)) = channel.into_fds() else { panic!("not watched") };
    /// let (mut read, mut write) = (std::fs::File::from(read), std::fs::File::from(write));
    /// write.write_all(b"hi")?;
    /// drop(write); // the last holder closes: cat reads EOF
    /// let mut echoed = String::new();
    /// read.read_to_string(&mut echoed)?;
    /// assert_eq!(echoed, "hi");
    /// assert!(child.wait()?.success());
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    #[cfg_attr(docsrs, doc(cfg(unix)))]
    pub fn into_fds(mut self) -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), Channel> {
        let end = &self.read.end;
        let shut = match &self.write.inner {
            WriteEnd::Socket { shut, .. } | WriteEnd::Shared { shut, .. } => *shut,
            WriteEnd::Pipe(handle) => handle.is_none(),
        };
        if end.watched.load(Ordering::Acquire) || shut {
            return Err(self);
        }
        // Duplicates (close-on-exec), so that the halves' own descriptors
        // close as they drop while the socket lives on in the new owner's.
        let (Ok(read), Some(Ok(write))) =
            (end.handle.try_clone(), self.write.handle().map(std::os::fd::OwnedFd::try_clone))
        else {
            return Err(self);
        };
        end.released.store(true, Ordering::Release);
        match &mut self.write.inner {
            WriteEnd::Socket { shut, .. } | WriteEnd::Shared { shut, .. } => *shut = true,
            WriteEnd::Pipe(handle) => drop(handle.take()),
        }
        Ok((read, write))
    }
}

impl ReadEnd {
    fn new(handle: Handle, kind: ChannelKind) -> Self {
        ReadEnd {
            handle,
            kind,
            watched: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            cutoff: OnceLock::new(),
            truncated: AtomicBool::new(false),
            released: AtomicBool::new(false),
        }
    }
}

impl ReadHalf {
    /// Whether reads stopped at the [`wait_delay`](crate::Command::wait_delay)
    /// cutoff, with the program's side still open (held by something it
    /// left running): what the program wrote after the cutoff was not read.
    pub fn truncated(&self) -> bool {
        self.end.truncated.load(Ordering::Acquire)
    }
}

sys::impl_os_handle!(
    pub ReadHalf,
    "The OS handle reads come from, for `poll` or an event loop (`as_fd` on Unix; on Windows `as_handle`, a pipe \
     handle opened for overlapped I/O).",
    |s| &s.end.handle
);

sys::impl_os_handle!(
    pub optional WriteHalf,
    "The OS handle writes go to, or `None` after a pipe was closed (`as_fd` on Unix; on Windows `as_handle`, a pipe \
     handle opened for overlapped I/O).",
    |s| s.handle()
);

impl Drop for ReadHalf {
    fn drop(&mut self) {
        self.end.abandoned.store(true, Ordering::Release);
        if self.end.kind.is_socket()
            && !self.end.watched.load(Ordering::Acquire)
            && !self.end.released.load(Ordering::Acquire)
        {
            let _ = sys::shutdown(&self.end.handle, false);
        }
    }
}

impl WriteHalf {
    /// Half-closes; see [`Channel::shutdown_write`].
    pub fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.inner {
            WriteEnd::Socket { handle, shut } => half_close_socket(handle, shut),
            WriteEnd::Shared { end, shut } => half_close_socket(&end.handle, shut),
            WriteEnd::Pipe(handle) => {
                drop(handle.take());
                Ok(())
            }
        }
    }

    /// Waits until the program has closed its stdin — every process
    /// holding the read side closed it, or ended — without writing, at
    /// most `timeout` (`None`: no limit). `Ok(true)` once closed,
    /// `Ok(false)` when the time ran out.
    ///
    /// A program that reads nothing and exits is seen here at its exit; one
    /// that closes fd 0 and runs on (`exec 0<&-`) is seen at the close. How:
    /// a hang-up of the pipe or socket (`poll`), or on Windows the pipe's
    /// state (`NtQueryInformationFile`, looked at every 10–50 ms).
    ///
    /// # Caveats
    /// - [`ChannelKind::SharedSocket`]: the program's stdin is its stdout
    ///   too, so closing only one of them is not seen; its end is.
    /// - Through a launcher (with or without the shim), the launcher and
    ///   the shim keep a copy of the program's stdin while they wait for
    ///   it (sudo, runuser and su do; ssh relays it), so the close is seen
    ///   when they end, after the program.
    /// - After a pipe channel was half-closed our end is gone and nothing
    ///   can be seen: [`io::ErrorKind::InvalidInput`].
    /// - Windows: a handle that may not read its own state gives
    ///   [`io::ErrorKind::Unsupported`].
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::time::Duration;
    /// use umbilical::Command;
    ///
    /// let mut child = Command::new("sh").args(["-c", "exec 0<&-; exec sleep 5"]).kill_on_drop(true).spawn()?;
    /// let channel = child.channel().unwrap();
    /// assert!(channel.writer().wait_closed(Some(Duration::from_secs(5)))?);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_closed(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let Some(handle) = self.handle() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the channel's write pipe was closed by the half-close: its reader's close cannot be seen",
            ));
        };
        sys::wait_readers_gone(handle, timeout.map(|t| Instant::now() + t))
    }

    /// Writes all of `buf` unless the program's side went away (then
    /// `Ok(())`: Python's `communicate()` ignores a broken pipe too) or
    /// `cutoff` passed (`Ok(())` too: the program has ended and nobody
    /// reads).
    pub(crate) fn feed(&mut self, mut buf: &[u8], cutoff: Option<&Cutoff>) -> io::Result<()> {
        let socket = !matches!(self.inner, WriteEnd::Pipe(_));
        while !buf.is_empty() {
            let written = match (cutoff, self.handle()) {
                (Some(cutoff), Some(handle)) => cutoff.write(handle, buf, socket),
                _ => self.write_impl(buf).map(Some),
            };
            match written {
                Ok(Some(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Some(n)) => buf = &buf[n..],
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub(crate) fn handle(&self) -> Option<&Handle> {
        match &self.inner {
            WriteEnd::Socket { handle, .. } => Some(handle),
            WriteEnd::Shared { end, .. } => Some(&end.handle),
            WriteEnd::Pipe(handle) => handle.as_ref(),
        }
    }

    fn write_impl(&self, buf: &[u8]) -> io::Result<usize> {
        match &self.inner {
            WriteEnd::Socket { handle, .. } => sys::send(handle, buf),
            WriteEnd::Shared { end, .. } => sys::send(&end.handle, buf),
            WriteEnd::Pipe(Some(handle)) => sys::write_pipe(handle, buf),
            WriteEnd::Pipe(None) => {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "the channel's write side was shut down"))
            }
        }
    }
}

/// `shutdown(SHUT_WR)` once; again is a no-op.
fn half_close_socket(handle: &Handle, shut: &mut bool) -> io::Result<()> {
    if !*shut {
        sys::shutdown(handle, true)?;
        *shut = true;
    }
    Ok(())
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Read for &ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.end.cutoff.get() {
            Some(cutoff) => cutoff.read(&self.end.handle, buf, &self.end.truncated),
            None => sys::read(&self.end.handle, buf),
        }
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for &WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for &Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.read).read(buf)
    }
}

impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.read).read(buf)
    }
}

impl Write for &Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write.write_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write.write_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("kind", &self.kind()).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf").field("kind", &self.end.kind).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ChildEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildEnd").finish_non_exhaustive()
    }
}
