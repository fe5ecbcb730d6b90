//! Copying between umbilical's own stdio and the channel.
//!
//! One rule shapes this file: never block inside a kernel call that holds
//! a pipe another process is using. A thread asleep in `splice(2)` reading
//! the channel into our stdout pipe holds that pipe's lock, so the caller's
//! read of our stdout — even a non-blocking one, even from an event loop —
//! waits until the *next* reply arrives: a line-by-line exchange stalls
//! after the first line. std's `io::copy` calls `splice` exactly that way,
//! so it is not used. Instead:
//!
//! - program → stdout: when stdout is a pipe (Linux), `splice` with
//!   `SPLICE_F_NONBLOCK`, each call made only once `poll` says the channel
//!   is readable, so no call ever sleeps holding the pipe; otherwise plain
//!   reads and writes.
//! - stdin → program: when stdin is a regular file (Linux), `sendfile` into
//!   the channel (no one else's pipe is involved); otherwise plain reads and
//!   writes. (`io::copy` refuses `sendfile` into a socket and falls back to
//!   an 8 KiB loop.)
//!
//! Reads and writes that a signal interrupts are resumed. Windows copies
//! through the channel halves (overlapped handles, umbilical's own I/O).

use std::io::{self, Read, Write};

use umbilical::{ReadHalf, WriteHalf};

/// Bytes per copy step; also the published count's granularity.
const CHUNK: usize = 256 * 1024;

/// A job that copies umbilical's stdin into the program and half-closes at
/// EOF. A program that stops reading ends it with `BrokenPipe`: its choice,
/// not an error of ours.
pub fn to_program(mut writer: WriteHalf, mut count: impl FnMut(u64) + Send + 'static) -> impl FnOnce() + Send {
    move || {
        #[cfg(target_os = "linux")]
        let done = linux::sendfile_stdin(&writer, &mut count);
        #[cfg(not(target_os = "linux"))]
        let done = None::<io::Result<()>>;
        if done.is_none() {
            let _ = copy(io::stdin().lock(), &writer, &mut count);
        }
        let _ = writer.shutdown();
    }
}

/// A job that copies the program's output to umbilical's stdout until the
/// channel closes. Whether it ends by EOF or by our stdout failing, reading
/// stops (the half is dropped), so the program sees `EPIPE` instead of
/// blocking on a full buffer. Returns the error that stopped it, if any.
pub fn from_program(
    reader: ReadHalf,
    stdout_closed: bool,
    mut count: impl FnMut(u64) + Send + 'static,
) -> impl FnOnce() -> io::Result<()> + Send {
    move || {
        if stdout_closed {
            // The first byte the program writes has nowhere to go.
            let result = copy(&reader, Closed, &mut count);
            drop(reader);
            return result;
        }
        #[cfg(target_os = "linux")]
        let done = linux::splice_to_stdout(&reader, &mut count);
        #[cfg(not(target_os = "linux"))]
        let done = None::<io::Result<()>>;
        let result = match done {
            Some(r) => r,
            None => copy(&reader, Stdout::open()?, &mut count),
        };
        drop(reader);
        result
    }
}

/// Plain read/write copy until EOF; `Interrupted` is resumed on both sides.
fn copy(mut from: impl Read, mut to: impl Write, count: &mut impl FnMut(u64)) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return to.flush(),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        to.flush()?;
        count(n as u64);
    }
}

/// Whether our stdout was closed when we started (`>&-`). The Rust
/// runtime puts `/dev/null` on a closed standard descriptor before `main`,
/// opened read-write, where a shell's `> /dev/null` opens it write-only:
/// that is how the two are told apart (Linux; elsewhere `false`).
pub fn stdout_is_closed() -> bool {
    #[cfg(target_os = "linux")]
    return linux::is_runtime_dev_null(io::stdout());
    #[cfg(not(target_os = "linux"))]
    false
}

/// Where output goes when our stdout was closed: nowhere, an error.
struct Closed;

impl Write for Closed {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("standard output is closed"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Our stdout, written without std's buffer (so output is never held back
/// while the program waits for input) and with every error reported.
struct Stdout(#[cfg(unix)] std::fs::File, #[cfg(not(unix))] io::Stdout);

impl Stdout {
    fn open() -> io::Result<Stdout> {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            Ok(Stdout(std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?)))
        }
        #[cfg(not(unix))]
        Ok(Stdout(io::stdout()))
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    //! The kernel fast paths, each one only where it cannot sleep holding
    //! someone else's pipe.

    use std::io;
    use std::os::fd::{AsFd, BorrowedFd};

    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::fs::{FileType, fstat};
    use rustix::io::Errno;
    use rustix::pipe::SpliceFlags;
    use umbilical::{ReadHalf, WriteHalf};

    use super::CHUNK;

    /// `/dev/null` (char device 1:3) opened read-write: see
    /// `stdout_is_closed`.
    pub fn is_runtime_dev_null(fd: impl AsFd) -> bool {
        let fd = fd.as_fd();
        let Ok(st) = fstat(fd) else { return false };
        let dev_null = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
            && rustix::fs::major(st.st_rdev) == 1
            && rustix::fs::minor(st.st_rdev) == 3;
        dev_null
            && rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f & rustix::fs::OFlags::ACCMODE == rustix::fs::OFlags::RDWR)
    }

    fn file_type(fd: BorrowedFd<'_>) -> Option<FileType> {
        fstat(fd).ok().map(|st| FileType::from_raw_mode(st.st_mode))
    }

    /// `sendfile` from a regular-file stdin into the channel; `None` when
    /// stdin is something else or the kernel refuses before any byte moved
    /// (then the caller copies).
    pub fn sendfile_stdin(writer: &WriteHalf, count: &mut impl FnMut(u64)) -> Option<io::Result<()>> {
        let stdin = io::stdin();
        let input = stdin.as_fd();
        if file_type(input) != Some(FileType::RegularFile) {
            return None;
        }
        let out = writer.as_fd()?;
        let mut moved = false;
        loop {
            match rustix::fs::sendfile(out, input, None, CHUNK) {
                Ok(0) => return Some(Ok(())),
                Ok(n) => {
                    moved = true;
                    count(n as u64);
                }
                Err(Errno::INTR) => {}
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if !moved => return None,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// `splice` from the channel into a stdout pipe without ever sleeping
    /// inside the call; `None` when stdout is not a pipe or the kernel
    /// refuses before any byte moved (then the caller copies).
    pub fn splice_to_stdout(reader: &ReadHalf, count: &mut impl FnMut(u64)) -> Option<io::Result<()>> {
        let stdout = io::stdout();
        let out = stdout.as_fd();
        if file_type(out) != Some(FileType::Fifo) {
            return None;
        }
        splice_loop(reader.as_fd(), out, count)
    }

    /// Each `splice` runs only once the channel is readable, so reading it
    /// cannot sleep (we are its only reader; a plain `O_NONBLOCK` is not an
    /// option, since with one shared socket it would make the other
    /// thread's writes non-blocking too), and `SPLICE_F_NONBLOCK` keeps it
    /// from sleeping on a full stdout pipe: then it waits in `poll`, which
    /// holds no lock.
    fn splice_loop(src: BorrowedFd<'_>, out: BorrowedFd<'_>, count: &mut impl FnMut(u64)) -> Option<io::Result<()>> {
        let mut moved = false;
        loop {
            if let Err(e) = wait(src, PollFlags::IN) {
                return Some(Err(e));
            }
            match rustix::pipe::splice(src, None, out, None, CHUNK, SpliceFlags::NONBLOCK | SpliceFlags::MOVE) {
                Ok(0) => return Some(Ok(())),
                Ok(n) => {
                    moved = true;
                    count(n as u64);
                }
                Err(Errno::INTR) => {}
                // A peer that closed with our bytes unread: the end of its
                // output, as a plain read reports it (see the library).
                Err(Errno::CONNRESET) => return Some(Ok(())),
                // The channel had data, so our stdout pipe is full.
                Err(Errno::AGAIN) => {
                    if let Err(e) = wait(out, PollFlags::OUT) {
                        return Some(Err(e));
                    }
                }
                Err(Errno::INVAL | Errno::NOSYS) if !moved => return None,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// Blocks in `poll` until `fd` is ready for `events`, or hung up or in
    /// error (the next call then reports what happened).
    fn wait(fd: BorrowedFd<'_>, events: PollFlags) -> io::Result<()> {
        loop {
            let mut fds = [PollFd::from_borrowed_fd(fd, events)];
            match poll(&mut fds, None) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
