//! Descriptor primitives for the channel: creation (always close-on-exec, so
//! a concurrent `fork` elsewhere in the process never inherits them), reads,
//! SIGPIPE-free writes and half-close.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::io::FdFlags;
use rustix::net::{AddressFamily, Shutdown, SocketFlags, SocketType};

/// Apple systems have neither `SOCK_CLOEXEC` nor `pipe2`: the flag is set
/// right after creation. Our own spawns are unaffected (they use
/// `POSIX_SPAWN_CLOEXEC_DEFAULT`); another thread's `fork` in that instant
/// could inherit the descriptors, as with std on those systems.
#[cfg(apple)]
const CREATE_CLOEXEC: bool = false;
#[cfg(not(apple))]
const CREATE_CLOEXEC: bool = true;

fn set_cloexec(fds: [&OwnedFd; 2]) -> io::Result<()> {
    if !CREATE_CLOEXEC {
        for fd in fds {
            rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC)?;
        }
    }
    Ok(())
}

/// Moves a new descriptor of ours off 0, 1 and 2, where it lands when the
/// host closed its standard descriptors (CPython's `test_close_fds_0_1_2`,
/// libuv's `spawn_closed_process_io`). Left there, it would *be* the host's
/// stdin, stdout or stderr: a `println!` of the host's would write into the
/// program's input. Costs nothing in the usual case.
fn off_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// A connected `AF_UNIX` stream pair, both ends close-on-exec.
///
/// OS reference: socketpair(2), with `SOCK_CLOEXEC`.
pub(crate) fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(apple))]
    let flags = SocketFlags::CLOEXEC;
    #[cfg(apple)]
    let flags = SocketFlags::empty();
    let (a, b) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, flags, None)?;
    let (a, b) = (off_stdio(a)?, off_stdio(b)?);
    set_cloexec([&a, &b])?;
    // macOS has no MSG_NOSIGNAL; the per-socket option gives the same
    // guarantee that a vanished reader is EPIPE, not a SIGPIPE death.
    #[cfg(any(apple, target_os = "freebsd"))]
    {
        rustix::net::sockopt::set_socket_nosigpipe(&a, true)?;
    }
    Ok((a, b))
}

/// A pipe, both ends close-on-exec: `(read, write)`.
///
/// OS reference: pipe2(2), with `O_CLOEXEC`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(apple))]
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    #[cfg(apple)]
    let (r, w) = rustix::pipe::pipe()?;
    let (r, w) = (off_stdio(r)?, off_stdio(w)?);
    set_cloexec([&r, &w])?;
    #[cfg(apple)]
    {
        // SAFETY: `w` is a valid open descriptor owned by this function;
        // F_SETNOSIGPIPE only sets a flag on it.
        let rc = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETNOSIGPIPE, 1) };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((r, w))
}

/// Two pipes for a channel: the child's stdin and stdout, and the parent's
/// other ends.
pub(crate) fn pipes() -> io::Result<crate::sys::Pipes> {
    let (child_stdin, parent_write) = pipe()?;
    let (parent_read, child_stdout) = pipe()?;
    Ok(crate::sys::Pipes { parent_read, parent_write, child_stdin, child_stdout })
}

/// A pipe from the child to the parent: `(parent_read, child_write)`.
pub(crate) fn inbound_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    pipe()
}

/// Returns a close-on-exec duplicate of `fd` numbered at least `min`, or
/// `None` when `fd` already is. Spawn file actions `dup2` our descriptors
/// onto 0..=3; a source that already sits in that range could be clobbered
/// by an earlier action, so it is lifted out of the way first.
///
/// OS reference: fcntl(2) `F_DUPFD_CLOEXEC`.
pub(crate) fn lift_above(fd: BorrowedFd<'_>, min: i32) -> io::Result<Option<OwnedFd>> {
    if fd.as_raw_fd() >= min {
        return Ok(None);
    }
    Ok(Some(rustix::io::fcntl_dupfd_cloexec(fd, min)?))
}

/// Reads. On a stream socket, `ECONNRESET` is the end of the stream:
/// Linux reports it once every byte the peer sent has been read, when the
/// peer closed with data of ours still unread (a program that exits without
/// reading all its input). No byte is lost, so it reads as EOF, as on a pipe.
///
/// OS reference: read(2).
pub(crate) fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET) => return Ok(0),
            other => return other.map_err(Into::into),
        }
    }
}

/// [`read`] into memory not yet initialised (the async layer's buffers,
/// which would otherwise be zeroed first); returns how many bytes it
/// filled.
#[cfg(feature = "tokio")]
pub(crate) fn read_uninit(fd: BorrowedFd<'_>, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok((filled, _)) => return Ok(filled.len()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes to a socket without ever raising SIGPIPE. A peer that is gone is
/// `EPIPE` ([`io::ErrorKind::BrokenPipe`]) whichever way it went: a peer
/// that closed with our bytes unread makes Linux report `ECONNRESET` once
/// first, which is the same event for the writer.
///
/// OS reference: send(2) with `MSG_NOSIGNAL`.
pub(crate) fn send(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    #[cfg(apple)]
    let flags = rustix::net::SendFlags::empty(); // SO_NOSIGPIPE is set on the socket
    #[cfg(not(apple))]
    let flags = rustix::net::SendFlags::NOSIGNAL;
    loop {
        match rustix::net::send(fd, buf, flags) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET) => return Err(rustix::io::Errno::PIPE.into()),
            other => return other.map_err(Into::into),
        }
    }
}

/// Writes to a pipe without ever raising SIGPIPE in this process.
///
/// A library may not change the process-wide SIGPIPE disposition. Linux
/// 6.15 and later take `RWF_NOSIGNAL` on `pwritev2`: that one write raises
/// no SIGPIPE and an absent reader is `EPIPE`, in a single syscall. Older
/// Linux (the flag refused with `EOPNOTSUPP`, learnt once) and the BSDs
/// block the signal in this thread for the duration of the write, and
/// consume a SIGPIPE that the write itself raised before the mask is
/// restored. macOS marks the pipe F_SETNOSIGPIPE at creation instead.
///
/// OS reference: pwritev2(2), write(2).
pub(crate) fn write_pipe(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    if let Some(result) = write_nosignal(fd, buf) {
        return result;
    }
    #[cfg(apple)]
    {
        loop {
            match rustix::io::write(fd, buf) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(Into::into),
            }
        }
    }
    #[cfg(not(apple))]
    {
        sigpipe_guarded(buf.len(), || {
            loop {
                match rustix::io::write(fd, buf) {
                    Err(rustix::io::Errno::INTR) => continue,
                    other => return other.map_err(Into::into),
                }
            }
        })
    }
}

/// `RWF_NOSIGNAL` (include/uapi/linux/fs.h, Linux 6.15): pipe and socket
/// writes raise no SIGPIPE.
#[cfg(target_os = "linux")]
const RWF_NOSIGNAL: u32 = 0x100;

/// Whether this kernel refused `RWF_NOSIGNAL` (or the guard was forced).
#[cfg(target_os = "linux")]
static NOSIGNAL_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One write with `RWF_NOSIGNAL`, at the pipe's current position (offset
/// -1); `None` when the kernel does not know the flag (`EOPNOTSUPP`; it
/// checks the flags before writing anything), or `pwritev2` itself
/// (`ENOSYS`, before Linux 4.6, or a seccomp filter that refuses it).
#[cfg(target_os = "linux")]
fn write_nosignal(fd: &OwnedFd, buf: &[u8]) -> Option<io::Result<usize>> {
    use std::sync::atomic::Ordering;
    if NOSIGNAL_REFUSED.load(Ordering::Relaxed) {
        return None;
    }
    let flags = rustix::io::ReadWriteFlags::from_bits_retain(RWF_NOSIGNAL);
    loop {
        match rustix::io::pwritev2(fd, &[io::IoSlice::new(buf)], u64::MAX, flags) {
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                NOSIGNAL_REFUSED.store(true, Ordering::Relaxed);
                return None;
            }
            other => return Some(other.map_err(Into::into)),
        }
    }
}

/// Makes every later pipe write take the portable SIGPIPE guard, as on a
/// kernel without `RWF_NOSIGNAL` (for tests of that path).
pub(crate) fn force_sigpipe_guard() {
    #[cfg(target_os = "linux")]
    NOSIGNAL_REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Runs one `write` with SIGPIPE blocked in this thread, and consumes the
/// SIGPIPE the write itself raised before the mask is restored.
///
/// The kernel raises SIGPIPE whenever a pipe write finds no reader, also
/// when it returns a partial count (the reader left while a large write
/// was under way). A write that moved every byte raised none, so only a
/// short count or an error is checked. A SIGPIPE that was already pending
/// before the write is left pending: it is not ours.
#[cfg(not(apple))]
fn sigpipe_guarded(len: usize, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before
    // use; pthread_sigmask(3) changes only this thread's mask (restored
    // below) and writes the old one into a local.
    let (pipe_only, old) = unsafe {
        let mut pipe_only: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe_only);
        libc::sigaddset(&mut pipe_only, libc::SIGPIPE);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe_only, &mut old);
        (pipe_only, old)
    };
    // Unblocked until now, nothing could be pending for this thread (it
    // would have been delivered): sigpending(2) is needed only when the
    // caller had SIGPIPE blocked already.
    // SAFETY: reads the locals; sigpending writes only `pending`.
    let already_pending = unsafe {
        libc::sigismember(&old, libc::SIGPIPE) == 1 && {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pending);
            libc::sigpending(&mut pending);
            libc::sigismember(&pending, libc::SIGPIPE) == 1
        }
    };
    let result = f();
    let short = match &result {
        Ok(n) => *n < len,
        Err(_) => true,
    };
    if short && !already_pending {
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // Consume the SIGPIPE our write raised, if it did (sigtimedwait(2)
        // fails with EAGAIN when none is pending); loop over EINTR only.
        // SAFETY: the set is initialised; no siginfo is asked for.
        while unsafe { libc::sigtimedwait(&pipe_only, std::ptr::null_mut(), &zero) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
    // SAFETY: restores this thread's mask as it was on entry.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    result
}

/// Half-close a socket. A peer that is already gone makes EOF moot, so
/// `ENOTCONN` (which BSDs report then) is not an error.
///
/// OS reference: shutdown(2).
pub(crate) fn shutdown(fd: &OwnedFd, write: bool) -> io::Result<()> {
    let how = if write { Shutdown::Write } else { Shutdown::Read };
    match rustix::net::shutdown(fd, how) {
        Ok(()) | Err(rustix::io::Errno::NOTCONN) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
