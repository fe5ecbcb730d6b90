//! The rendezvous a shim connects back to: a Unix socket in a fresh
//! directory of the caller's, accepted only from the launcher or one of its
//! descendants (and, checked by the caller, only with the token written
//! into the channel).
//!
//! Who can do what (`docs/SECURITY.md` has the whole threat model):
//! - The directory is always the caller's, in a sticky temporary directory:
//!   nobody else (the shim's user included) can rename, unlink or replace
//!   the socket, or the directory itself.
//! - When the shim runs as the caller or as root, the directory is `0700`.
//! - When it runs as another user, the directory is `0711` (that user may
//!   pass through it, not list or change it) and the socket is handed to
//!   that user (`0600`) if we are root, or left connectable by any local
//!   user (`0666`) if we are not (we cannot give it away). Connecting is
//!   then all anyone can do, and every connection is authenticated: the
//!   peer pid (`SO_PEERCRED`, `LOCAL_PEERPID` on macOS, `LOCAL_PEERCRED` on
//!   FreeBSD) must descend from the launcher, and the peer must send back
//!   the token's first half. A refused connection does not stop the real
//!   shim from connecting next.
//! - Directories left by a caller that was killed are swept by the next
//!   caller of the same user (at its first rendezvous), once the pid in
//!   their name is gone.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::control::ControlStream;
use super::wait::{Until, wait_fd};

/// The prefix of every rendezvous directory's name.
const PREFIX: &str = "umbilical-";

pub(crate) struct Rendezvous {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
    /// A copy of the shim placed here for the target user
    /// ([`Rendezvous::place_shim`]); removed with the rendezvous.
    shim: Option<PathBuf>,
    /// The askpass entry ([`Rendezvous::place_askpass`]); removed with the
    /// rendezvous.
    askpass: Option<PathBuf>,
}

/// The name of the askpass entry: the shim program, which serves as an
/// askpass helper when started under this name (`shim::run_if_invoked`).
pub(crate) const ASKPASS_NAME: &str = "umbilical-askpass";

/// The socket of every rendezvous, in its directory.
const SOCKET_NAME: &str = "control.sock";

/// The name of a shim placed in the directory.
const SHIM_NAME: &str = "shim";

impl Rendezvous {
    /// Creates the directory and the listening socket; `target` is the user
    /// the shim will run as, when a launcher switches user.
    pub(crate) fn create(target: Option<&str>) -> io::Result<Rendezvous> {
        let base = base_dir();
        // Once per process: what a killed caller left does not come back
        // while we run, and a listing of /tmp on every launch costs.
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| sweep(&base));
        let me = rustix::process::geteuid();
        // Another user who is neither us nor root needs to pass through
        // the directory and connect to the socket.
        let other = target.and_then(uid_of).filter(|uid| *uid != me && !uid.is_root());
        let mut last = None;
        for _ in 0..16 {
            let name = format!("{PREFIX}{}-{:016x}", std::process::id(), u64::from_le_bytes(random_token::<8>()?));
            let dir = base.join(name);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    // Remove the directory if anything below fails.
                    let guard = DirGuard(Some(dir.clone()));
                    let path = dir.join(SOCKET_NAME);
                    let listener = UnixListener::bind(&path)?;
                    if let Some(uid) = other {
                        if me.is_root() {
                            rustix::fs::chown(&path, Some(uid), None)?;
                            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                        } else {
                            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
                        }
                        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
                    } else {
                        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                    }
                    listener.set_nonblocking(true)?;
                    std::mem::forget(guard);
                    return Ok(Rendezvous { dir, path, listener, shim: None, askpass: None });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no fresh rendezvous directory")))
    }

    /// Puts the shim `from` where `target` (root when `None`) can execute
    /// it and nobody but us can replace it: this directory (ours, `0711`
    /// or `0700`), as `shim`. A hard link when the file's own bits already
    /// let `target` execute it and nobody else write it (free); otherwise
    /// a copy, written while only we can open it, its length checked, then
    /// made `0755`. Gone when the rendezvous is dropped, which the caller
    /// does once the shim connected (it runs from its own mapping then).
    ///
    /// Nothing else can write in this directory, so what the launcher
    /// executes is what we put there; a process of `target` racing to
    /// replace it between the copy and the exec cannot (tested).
    pub(crate) fn place_shim(&mut self, from: &Path, target: Option<&str>) -> io::Result<PathBuf> {
        let to = self.dir.join(SHIM_NAME);
        let linkable =
            std::fs::metadata(from).is_ok_and(|m| m.mode() & 0o022 == 0) && std::fs::hard_link(from, &to).is_ok();
        self.shim = Some(to.clone());
        if !(linkable && super::can_execute_as(&to, target).is_ok()) {
            if linkable {
                std::fs::remove_file(&to)?;
            }
            let mut source = std::fs::File::open(from)?;
            let mut copy = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o700).open(&to)?;
            let copied = io::copy(&mut source, &mut copy)?;
            let expected = source.metadata()?.len();
            if copied != expected {
                return Err(io::Error::other(format!(
                    "copying the shim {} gave {copied} bytes of {expected}",
                    from.display()
                )));
            }
            copy.set_permissions(std::fs::Permissions::from_mode(0o755))?;
            drop(copy);
            super::can_execute_as(&to, target).map_err(io::Error::other)?;
        }
        Ok(to)
    }

    /// Makes this rendezvous an askpass endpoint: a symbolic link named
    /// [`ASKPASS_NAME`] to `program` (the shim program, absolute), which a
    /// launcher runs as its askpass helper (`SUDO_ASKPASS`, `SSH_ASKPASS`)
    /// as the caller's user; started under that name it connects to the
    /// socket beside it. Only this user (and root) can reach the directory
    /// (`0700`), and the connection is accepted from the launcher's
    /// descendants only (`accept_from`).
    pub(crate) fn place_askpass(&mut self, program: &Path) -> io::Result<PathBuf> {
        let program = std::fs::canonicalize(program)?;
        let entry = self.dir.join(ASKPASS_NAME);
        std::os::unix::fs::symlink(&program, &entry)?;
        self.askpass = Some(entry.clone());
        Ok(entry)
    }

    /// The socket path the shim is told about. It is not a secret.
    pub(crate) fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Waits for a connection whose peer descends from `launcher_pid` (any
    /// peer if `None`), refusing (and counting) any other. `gave_up` is
    /// polled every 100 ms; when it says the launcher is gone, waiting ends
    /// with `Ok(None)`.
    pub(crate) fn accept_from<G: FnMut() -> bool>(
        &mut self,
        launcher_pid: Option<u32>,
        deadline: Instant,
        mut gave_up: G,
        refused: &mut u32,
    ) -> io::Result<Option<ControlStream>> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if launcher_pid.is_none_or(|pid| peer_descends_from(&stream, pid)) {
                        stream.set_nonblocking(false)?;
                        return Ok(Some(ControlStream::from_std(stream)));
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
        for placed in [&self.shim, &self.askpass].into_iter().flatten() {
            let _ = std::fs::remove_file(placed);
        }
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The askpass helper's side: the socket beside the entry it was started
/// as (`entry` is its `argv[0]`), if the entry is ours.
pub(crate) fn askpass_socket(entry: &Path) -> Option<PathBuf> {
    (entry.file_name()? == ASKPASS_NAME).then(|| entry.with_file_name(SOCKET_NAME))
}

/// Connects to a rendezvous (the askpass helper; Windows: not supported).
pub(crate) fn connect_rendezvous(path: &Path, _deadline: Instant) -> io::Result<ControlStream> {
    ControlStream::connect(path)
}

struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `N` bytes from the OS's random source (`getrandom(2)` on Linux,
/// `/dev/urandom` elsewhere). Never a weaker fallback: without randomness
/// the shim is not used.
pub(crate) fn random_token<const N: usize>() -> io::Result<[u8; N]> {
    let mut token = [0u8; N];
    #[cfg(target_os = "linux")]
    {
        let mut filled = 0;
        while filled < N {
            match rustix::rand::getrandom(&mut token[filled..], rustix::rand::GetRandomFlags::empty()) {
                Ok(n) => filled += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
        if filled == N {
            return Ok(token);
        }
    }
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut token)?;
    Ok(token)
}

/// Where rendezvous directories go: the temporary directory, unless a
/// socket path there would not fit `sun_path` (104 bytes on macOS and the
/// BSDs, 108 on Linux; macOS's per-user `TMPDIR` can be that long), or
/// others could rename what we create there (writable by group or others
/// without the sticky bit): then `/tmp`.
/// Whether a shim placed in a rendezvous directory could be executed:
/// not where the temporary directory is mounted `noexec` (Linux; elsewhere
/// `statvfs` does not say, and a launcher that cannot run the copy fails
/// and says so).
///
/// OS reference: statvfs(3) `ST_NOEXEC`.
pub(crate) fn shim_placeable() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        let base = base_dir();
        if let Ok(st) = rustix::fs::statvfs(&base)
            && st.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC)
        {
            return Err(format!("{} is mounted noexec, so a copy of the shim there could not run", base.display()));
        }
    }
    Ok(())
}

fn base_dir() -> PathBuf {
    let base = std::env::temp_dir();
    let fits = base.as_os_str().len() + 64 <= 104;
    let safe = std::fs::metadata(&base).is_ok_and(|m| m.mode() & 0o022 == 0 || m.mode() & 0o1000 != 0);
    if fits && safe { base } else { PathBuf::from("/tmp") }
}

/// Removes rendezvous directories of this user whose creator (the pid in
/// the name) is gone: a caller killed before its shim connected cannot
/// remove its own. Only directories we own are touched; a pid that was
/// reused keeps its directory until a later sweep.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        if !meta.is_dir() || meta.uid() != me || pid_alive(pid) {
            continue;
        }
        let _ = std::fs::remove_file(entry.path().join("control.sock"));
        let _ = std::fs::remove_file(entry.path().join(SHIM_NAME));
        let _ = std::fs::remove_dir(entry.path());
    }
}

fn pid_alive(pid: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else { return false };
    // ESRCH: no such process; EPERM: it exists, as another user.
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
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
        "Unix socket in a directory of the caller's; peer pid (SO_PEERCRED) descends from the launcher, plus a channel token"
    } else if cfg!(apple) {
        "Unix socket in a directory of the caller's; peer pid (LOCAL_PEERPID) descends from the launcher, plus a channel token"
    } else if cfg!(target_os = "freebsd") {
        "Unix socket in a directory of the caller's; peer pid (LOCAL_PEERCRED) descends from the launcher, plus a channel token"
    } else {
        "unavailable: no peer-pid check written for this OS (every shim is refused)"
    }
}

/// A user's uid from the password database.
/// Whether this process runs as root (`geteuid`).
pub(crate) fn caller_is_root() -> bool {
    rustix::process::geteuid().is_root()
}

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
