//! The rendezvous a shim connects back to: a Unix socket in a fresh `0700`
//! directory, accepted only from the launcher or one of its descendants
//! (and, checked by the caller, only with the token written into the
//! channel).
//!
//! When the parent is root and the launcher switches to another user, the
//! directory is handed to that user (still `0700`), or the shim could not
//! reach it. Same-user strangers who find the path are refused by the peer
//! check (the peer pid from `SO_PEERCRED`, `LOCAL_PEERPID` on macOS or
//! `LOCAL_PEERCRED` on FreeBSD must descend from the launcher), and a refused
//! connection does not stop the real shim from connecting next.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::wait::{Until, wait_fd};

pub(crate) struct Rendezvous {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl Rendezvous {
    /// Creates the directory and the listening socket; `owner` is the user
    /// the shim will run as, if the directory must be handed over.
    pub(crate) fn create(owner: Option<&str>) -> io::Result<Rendezvous> {
        // A socket path must fit `sun_path` (104 bytes on macOS and the
        // BSDs, 108 on Linux); macOS's per-user TMPDIR can be long enough
        // to overflow it with our names, so fall back to /tmp there.
        let mut base = std::env::temp_dir();
        if base.as_os_str().len() + 64 > 104 {
            base = PathBuf::from("/tmp");
        }
        let mut last = None;
        for _ in 0..16 {
            let dir = base.join(format!("umbilical-{}-{:016x}", std::process::id(), random_u64()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    // Remove the directory if anything below fails.
                    let guard = DirGuard(Some(dir.clone()));
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                    let path = dir.join("control.sock");
                    let listener = UnixListener::bind(&path)?;
                    // Connecting needs search on the directory and write on
                    // the socket: both go to the shim's user.
                    if let Some(user) = owner
                        && rustix::process::geteuid().is_root()
                        && let Some(uid) = uid_of(user)
                    {
                        rustix::fs::chown(&path, Some(uid), None)?;
                        rustix::fs::chown(&dir, Some(uid), None)?;
                    }
                    listener.set_nonblocking(true)?;
                    std::mem::forget(guard);
                    return Ok(Rendezvous { dir, path, listener });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no fresh rendezvous directory")))
    }

    /// The socket path the shim is told about. It is not a secret.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for a connection whose peer descends from `launcher_pid` (any
    /// peer if `None`), refusing (and counting) any other. `gave_up` is
    /// polled every 100 ms; when it says the launcher is gone, waiting ends
    /// with `Ok(None)`.
    pub(crate) fn accept_from(
        &self,
        launcher_pid: Option<u32>,
        deadline: Instant,
        mut gave_up: impl FnMut() -> bool,
        refused: &mut u32,
    ) -> io::Result<Option<UnixStream>> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if launcher_pid.is_none_or(|pid| peer_descends_from(&stream, pid)) {
                        stream.set_nonblocking(false)?;
                        return Ok(Some(stream));
                    }
                    // Refused; the deadline and the launcher's end are
                    // still checked below, so strangers cannot keep us here.
                    *refused += 1;
                    drop(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if gave_up() {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the shim did not connect in time"));
            }
            let slice = (now + Duration::from_millis(100)).min(deadline);
            wait_fd(std::os::fd::AsFd::as_fd(&self.listener), Until::Readable, Some(slice))?;
        }
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh 16-byte token from the OS's random source.
pub(crate) fn random_token() -> [u8; 16] {
    let mut token = [0u8; 16];
    // getrandom(2) on Linux; elsewhere rustix falls back as the OS allows.
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut token)).is_err() {
        token[..8].copy_from_slice(&random_u64().to_le_bytes());
        token[8..].copy_from_slice(&random_u64().to_le_bytes());
    }
    token
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS; the name only needs to be fresh,
    // not secret (authentication is by peer pid).
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// Whether the peer's pid is `ancestor` or descends from it. The peer pid
/// is the one the kernel recorded at `connect` (Linux `SO_PEERCRED`, macOS
/// `LOCAL_PEERPID`, FreeBSD `LOCAL_PEERCRED`'s `cr_pid`); the walk up the
/// parent chain is bounded and ends at init or at a process that is gone.
fn peer_descends_from(stream: &UnixStream, ancestor: u32) -> bool {
    let Some(mut pid) = peer_pid(stream) else { return false };
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        match parent_of(pid) {
            Some(ppid) if ppid > 1 => pid = ppid,
            _ => return false,
        }
    }
    false
}

#[cfg(target_os = "linux")]
fn peer_pid(stream: &UnixStream) -> Option<u32> {
    let cred = rustix::net::sockopt::socket_peercred(stream).ok()?;
    Some(cred.pid.as_raw_nonzero().get() as u32)
}

#[cfg(target_os = "linux")]
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: parse after
    // the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(apple)]
fn peer_pid(stream: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut pid: libc::pid_t = 0;
    let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
    // SAFETY: `pid` and `len` are valid for writes of the sizes given;
    // the descriptor is borrowed from a live stream.
    let rc = unsafe {
        libc::getsockopt(stream.as_raw_fd(), libc::SOL_LOCAL, libc::LOCAL_PEERPID, (&raw mut pid).cast(), &mut len)
    };
    (rc == 0 && pid > 0).then_some(pid as u32)
}

#[cfg(apple)]
fn parent_of(pid: u32) -> Option<u32> {
    // SAFETY: `proc_bsdinfo` is plain integers and byte arrays; all-zero
    // is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is valid for writes of `size` bytes.
    let n = unsafe { libc::proc_pidinfo(pid as libc::c_int, libc::PROC_PIDTBSDINFO, 0, (&raw mut info).cast(), size) };
    (n == size).then_some(info.pbi_ppid)
}

#[cfg(target_os = "freebsd")]
fn peer_pid(stream: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: `xucred` is plain integers (and a union of a pid and an
    // unused pointer); all-zero is a valid value.
    let mut cred: libc::xucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::xucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(stream.as_raw_fd(), libc::SOL_LOCAL, libc::LOCAL_PEERCRED, (&raw mut cred).cast(), &mut len)
    };
    if rc != 0 || cred.cr_version != libc::XUCRED_VERSION {
        return None;
    }
    // SAFETY: FreeBSD 13 and later fill `cr_pid`; earlier ones leave the
    // union zeroed, which reads as pid 0 and is refused.
    let pid = unsafe { cred.cr_pid__c_anonymous_union.cr_pid };
    (pid > 0).then_some(pid as u32)
}

#[cfg(target_os = "freebsd")]
fn parent_of(pid: u32) -> Option<u32> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid as libc::c_int];
    // The kernel's `kinfo_proc` may be larger than the libc crate's, so
    // ask for its size and read into a buffer of that size; `ki_ppid` sits
    // near the start, at an offset no FreeBSD release has moved.
    let mut size: libc::size_t = 0;
    // SAFETY: a null old pointer asks only for the size, written to `size`.
    let rc = unsafe { libc::sysctl(mib.as_ptr(), 4, std::ptr::null_mut(), &mut size, std::ptr::null(), 0) };
    if rc != 0 || size < std::mem::offset_of!(libc::kinfo_proc, ki_ppid) + 4 {
        return None;
    }
    let mut buf = vec![0u64; size.div_ceil(8)];
    // SAFETY: `buf` is valid for writes of at least `size` bytes.
    let rc = unsafe { libc::sysctl(mib.as_ptr(), 4, buf.as_mut_ptr().cast(), &mut size, std::ptr::null(), 0) };
    if rc != 0 || size < std::mem::offset_of!(libc::kinfo_proc, ki_ppid) + 4 {
        return None;
    }
    // SAFETY: the offset is within the `size` bytes the kernel wrote, and
    // the u64 buffer is aligned for a pid_t.
    let ppid = unsafe {
        buf.as_ptr().cast::<u8>().add(std::mem::offset_of!(libc::kinfo_proc, ki_ppid)).cast::<libc::pid_t>().read()
    };
    (ppid >= 0).then_some(ppid as u32)
}

/// Elsewhere (other BSDs, illumos) peer-pid authentication is not
/// written: every peer is refused, so the shim cannot be used there.
#[cfg(not(any(target_os = "linux", apple, target_os = "freebsd")))]
fn peer_pid(_stream: &UnixStream) -> Option<u32> {
    None
}

#[cfg(not(any(target_os = "linux", apple, target_os = "freebsd")))]
fn parent_of(_pid: u32) -> Option<u32> {
    None
}

/// How a shim is authenticated here, for diagnostics.
pub(crate) fn shim_auth_mechanism() -> &'static str {
    if cfg!(target_os = "linux") {
        "Unix socket in a 0700 directory; peer pid (SO_PEERCRED) descends from the launcher, plus a channel token"
    } else if cfg!(apple) {
        "Unix socket in a 0700 directory; peer pid (LOCAL_PEERPID) descends from the launcher, plus a channel token"
    } else if cfg!(target_os = "freebsd") {
        "Unix socket in a 0700 directory; peer pid (LOCAL_PEERCRED) descends from the launcher, plus a channel token"
    } else {
        "unavailable: no peer-pid check written for this OS (every shim is refused)"
    }
}

/// A user's uid from the password database.
pub(crate) fn uid_of(user: &str) -> Option<rustix::process::Uid> {
    let name = std::ffi::CString::new(user).ok()?;
    let mut pwd: libc::passwd = unsafe_zeroed_passwd();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r writes into `pwd` and `buf`, both valid for the
    // sizes given, and sets `result` to `&pwd` or null.
    let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(rustix::process::Uid::from_raw(pwd.pw_uid))
}

fn unsafe_zeroed_passwd() -> libc::passwd {
    // SAFETY: `passwd` is a plain C struct of integers and pointers, for
    // which all-zero is a valid (empty) value.
    unsafe { std::mem::zeroed() }
}
