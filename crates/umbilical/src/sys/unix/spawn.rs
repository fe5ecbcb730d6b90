//! Starting a program with exactly the descriptors it was given.
//!
//! The child gets fds 0 and 1 (the channel's child end), 2 (per the stderr
//! setting), 3 if a lifeline is asked for, and nothing else — even when other
//! code in the process opened descriptors without `O_CLOEXEC` and other
//! threads spawn at the same moment. Four ways, best first:
//!
//! - Linux: `clone(CLONE_VM | CLONE_VFORK)` and our own steps before
//!   `execve`, which mark every other descriptor close-on-exec instead of
//!   closing them while the parent waits (`vfork.rs` says why and how);
//! - FreeBSD >= 13.1: `posix_spawn` with
//!   `posix_spawn_file_actions_addclosefrom_np` (looked up at run time, so
//!   the binary still loads on an older libc);
//! - macOS: `posix_spawn` with `POSIX_SPAWN_CLOEXEC_DEFAULT`, which closes
//!   everything that no file action named;
//! - otherwise `fork` + `close_range` (Linux >= 5.9; a `close` loop below
//!   that) + `execve`, with only async-signal-safe calls in the child.
//!
//! The first two do not copy the parent's address space (the child shares
//! it until it execs), which is why they are preferred. In every path the
//! child starts with an empty signal mask and default dispositions.

mod child;
#[cfg(target_os = "linux")]
mod vfork;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString, c_char, c_int};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use super::Process;
use super::resolve::{Resolved, resolve};
use crate::error::ErrorKind;
use crate::sys::{Request, SpawnError, StderrTarget};

/// Starts the program a request describes.
///
/// OS reference: posix_spawn(3), or fork(2) + execve(2).
pub(crate) fn spawn(req: &Request<'_>) -> Result<Process, SpawnError> {
    let invalid = |what: String| SpawnError::new(ErrorKind::InvalidInput, what, None);
    let cstr = |s: &OsStr, what: &dyn Fn() -> String| {
        CString::new(s.as_bytes()).map_err(|_| invalid(format!("{} contains a NUL byte", what())))
    };
    let mut argv = Vec::with_capacity(req.spec.args.len() + 1);
    argv.push(cstr(req.spec.program.as_os_str(), &|| "the program name".into())?);
    for arg in &req.spec.args {
        argv.push(cstr(arg, &|| format!("argument {:?}", arg.to_string_lossy()))?);
    }
    // An untouched environment is passed through as it is, as std does;
    // only a changed one is built anew.
    let (path_var, envp) = if req.spec.env_clear || !req.spec.env.is_empty() {
        let mut vars: BTreeMap<OsString, OsString> =
            if req.spec.env_clear { BTreeMap::new() } else { std::env::vars_os().collect() };
        for (k, v) in &req.spec.env {
            match v {
                Some(v) => vars.insert(k.clone(), v.clone()),
                None => vars.remove(k),
            };
        }
        let mut envp = Vec::with_capacity(vars.len());
        for (k, v) in &vars {
            if k.is_empty() || k.as_bytes().contains(&b'=') {
                return Err(invalid(format!("environment variable name {k:?} is empty or contains '='")));
            }
            let mut entry = Vec::with_capacity(k.len() + v.len() + 1);
            entry.extend_from_slice(k.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            envp.push(cstr(OsStr::from_bytes(&entry), &|| format!("environment variable {k:?}"))?);
        }
        (vars.get(OsStr::new("PATH")).cloned(), Some(CStringArray::new(envp)))
    } else {
        (std::env::var_os("PATH"), None)
    };
    let cwd = match req.spec.cwd.as_deref() {
        Some(dir) => Some(cstr(dir.as_os_str(), &|| "the working directory".into())?),
        None => None,
    };
    let path = match resolve(req.spec.program.as_os_str(), path_var.as_deref(), req.spec.cwd.as_deref()) {
        Resolved::Found(p) => cstr(p.as_os_str(), &|| "the program path".into())?,
        Resolved::NotFound => {
            let what = if req.spec.program.as_os_str().as_bytes().contains(&b'/') {
                "no such file"
            } else {
                "not found on PATH"
            };
            return Err(SpawnError::new(ErrorKind::NotFound, what, None));
        }
        Resolved::NotExecutable(p) => {
            return Err(SpawnError::new(
                ErrorKind::NotExecutable,
                format!("{} is not an executable file", p.display()),
                None,
            ));
        }
    };
    let argv = CStringArray::new(argv);
    let plan = Plan {
        path: &path,
        argv: &argv,
        envp: envp.as_ref(),
        cwd: cwd.as_deref(),
        stdin: req.stdin.as_fd(),
        stdout: req.stdout.as_fd(),
        stderr: match req.stderr {
            StderrTarget::Inherit => Stderr::Inherit,
            StderrTarget::Null => Stderr::Null,
            StderrTarget::To(h) => Stderr::Fd(h.as_fd()),
        },
        lifeline: req.lifeline.map(AsFd::as_fd),
        // The fork path: `posix_spawn` has no way to ask for either.
        force_fork: req.force_fork
            || ((req.kill_on_parent_death || req.terminal.is_some()) && !cfg!(target_os = "linux")),
        process_group: req.process_group,
        parent_death: req.kill_on_parent_death.then(|| rustix::process::getpid().as_raw_nonzero().get()),
        terminal: req.terminal.map(|t| t.as_raw_fd()),
    };
    if req.kill_on_parent_death && !PARENT_DEATH {
        return Err(SpawnError::new(
            ErrorKind::InvalidInput,
            "kill_on_parent_death is not available on this OS (Linux and FreeBSD only); \
             through the shim, the shim ends the program when the caller is gone",
            None,
        ));
    }
    let spawned = if plan.parent_death.is_some() && cfg!(target_os = "linux") {
        // Linux ties the parent-death signal to the spawning thread: a
        // program started from a short-lived thread would die with it.
        super::spawner::run(|| spawn_plan(&plan)).unwrap_or_else(|e| Err(Failure::Setup(e)))
    } else {
        spawn_plan(&plan)
    };
    match spawned {
        Ok(pid) => Ok(Process::open(pid, req.process_group)),
        Err(Failure::Chdir(e)) => Err(SpawnError::new(
            ErrorKind::InvalidInput,
            format!("cannot change to the working directory: {e}"),
            Some(e),
        )),
        Err(Failure::Exec(e)) => {
            let kind = classify(&e);
            Err(SpawnError::new(kind, format!("{kind}: {e}"), Some(e)))
        }
        Err(Failure::Setup(e)) => Err(SpawnError::new(ErrorKind::Spawn, e.to_string(), Some(e))),
    }
}

/// Where the child's fd 2 comes from.
enum Stderr<'a> {
    Inherit,
    Null,
    Fd(BorrowedFd<'a>),
}

/// Everything one spawn needs, prepared in the parent before it starts.
struct Plan<'a> {
    path: &'a CStr,
    argv: &'a CStringArray,
    /// `None`: the parent's own environment, passed through uncopied.
    envp: Option<&'a CStringArray>,
    cwd: Option<&'a CStr>,
    stdin: BorrowedFd<'a>,
    stdout: BorrowedFd<'a>,
    stderr: Stderr<'a>,
    lifeline: Option<BorrowedFd<'a>>,
    force_fork: bool,
    /// Make the program the leader of a new process group.
    process_group: bool,
    /// Kill the program when this process (whose pid it is) ends.
    parent_death: Option<libc::pid_t>,
    /// A new session with this terminal as its controlling terminal (the
    /// process group is then the session's).
    terminal: Option<RawFd>,
}

/// Whether the program can be killed when its parent ends.
const PARENT_DEATH: bool = cfg!(any(target_os = "linux", target_os = "freebsd"));

/// Which step failed, so callers can tell a bad working directory from a
/// bad program.
#[derive(Debug)]
enum Failure {
    /// Changing to the working directory failed.
    Chdir(io::Error),
    /// `execve` (or `posix_spawn` as a whole) failed.
    Exec(io::Error),
    /// Preparing the spawn failed (out of memory, descriptor limits).
    Setup(io::Error),
}

/// A NUL-terminated array of C strings, as `execve` wants for argv and envp.
struct CStringArray {
    _owned: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

// SAFETY: the pointers point into the `CString`s owned by the same value;
// they are never mutated and live exactly as long as the array.
unsafe impl Send for CStringArray {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for CStringArray {}

impl CStringArray {
    fn new(items: Vec<CString>) -> Self {
        let mut ptrs: Vec<*const c_char> = items.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStringArray { _owned: items, ptrs }
    }

    fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

#[cfg(not(apple))]
unsafe extern "C" {
    static environ: *const *const c_char;
}

/// The process's current environment block.
///
/// Read without std's environment lock, like any C library does: since
/// Rust 2024, `std::env::set_var` is `unsafe` precisely because it must not
/// run while other threads read the environment, so a racing writer is the
/// caller's broken promise, not ours.
fn parent_environ() -> *const *const c_char {
    #[cfg(apple)]
    // SAFETY: _NSGetEnviron returns a valid pointer to the environ pointer.
    unsafe {
        *libc::_NSGetEnviron() as *const *const c_char
    }
    #[cfg(not(apple))]
    // SAFETY: reading the `environ` pointer itself; see above for its
    // contents.
    unsafe {
        environ
    }
}

impl Plan<'_> {
    fn envp(&self) -> *const *const c_char {
        self.envp.map_or_else(parent_environ, CStringArray::as_ptr)
    }
}

/// Which mechanism spawns on this system, for diagnostics.
pub(crate) fn mechanism() -> &'static str {
    #[cfg(target_os = "linux")]
    if vfork::available() {
        return "clone(CLONE_VM | CLONE_VFORK) + close_range(CLOEXEC) + execve";
    }
    if cfg!(apple) {
        "posix_spawn (POSIX_SPAWN_CLOEXEC_DEFAULT)"
    } else if !cfg!(target_os = "linux") && closefrom_np().is_some() {
        "posix_spawn (addclosefrom_np)"
    } else {
        "fork + close_range + execve"
    }
}

/// Starts the program; returns its pid.
fn spawn_plan(plan: &Plan<'_>) -> Result<i32, Failure> {
    // Every source descriptor must sit above the targets it is dup'ed onto
    // (0..=2, or 0..=3 with a lifeline), or an earlier dup2 could clobber it.
    let floor = if plan.lifeline.is_some() { 4 } else { 3 };
    let lift = |fd: BorrowedFd<'_>| super::fd::lift_above(fd, floor).map_err(Failure::Setup);
    let (stdin_l, stdout_l) = (lift(plan.stdin)?, lift(plan.stdout)?);
    let stderr_l = match plan.stderr {
        Stderr::Fd(fd) => lift(fd)?,
        _ => None,
    };
    let life_l = match plan.lifeline {
        Some(fd) => lift(fd)?,
        None => None,
    };
    let pick =
        |l: &Option<std::os::fd::OwnedFd>, fd: BorrowedFd<'_>| l.as_ref().map_or(fd.as_raw_fd(), |o| o.as_raw_fd());
    let fds = Fds {
        stdin: pick(&stdin_l, plan.stdin),
        stdout: pick(&stdout_l, plan.stdout),
        stderr: match plan.stderr {
            Stderr::Inherit => StderrFd::Inherit,
            Stderr::Null => StderrFd::Null,
            Stderr::Fd(fd) => StderrFd::Fd(pick(&stderr_l, fd)),
        },
        lifeline: plan.lifeline.map(|fd| pick(&life_l, fd)),
    };
    if plan.force_fork {
        return fork_exec(plan, &fds);
    }
    #[cfg(target_os = "linux")]
    if vfork::available() {
        let setup = child::Setup {
            plan,
            envp: plan.envp(),
            fds: &fds,
            first_closed: fds.first_closed(),
            keep: None,
            limit: max_fd(),
        };
        if let Some(pid) = vfork::spawn(setup)? {
            return Ok(pid);
        }
    }
    // Not `posix_spawn` on Linux: glibc's starts its child the way `vfork`
    // was just refused, and leaves the program its two internal signals
    // ignored where the parent ignored them (`child.rs`).
    let use_spawn = !cfg!(target_os = "linux")
        && (cfg!(apple) || closefrom_np().is_some())
        && (plan.cwd.is_none() || addchdir_np().is_some());
    if use_spawn { posix_spawn(plan, &fds) } else { fork_exec(plan, &fds) }
}

/// The failure a child reported from `child::exec`.
fn failure(stage: i32, errno: i32) -> Failure {
    let errno = io::Error::from_raw_os_error(errno);
    match stage {
        child::STAGE_CHDIR => Failure::Chdir(errno),
        child::STAGE_EXEC => Failure::Exec(errno),
        _ => Failure::Setup(errno),
    }
}

enum StderrFd {
    Inherit,
    Null,
    Fd(RawFd),
}

struct Fds {
    stdin: RawFd,
    stdout: RawFd,
    stderr: StderrFd,
    lifeline: Option<RawFd>,
}

impl Fds {
    /// The first descriptor the program must not get.
    fn first_closed(&self) -> c_int {
        if self.lifeline.is_some() { 4 } else { 3 }
    }
}

type CloseFromFn = unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, c_int) -> c_int;
type AddChdirFn = unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, *const c_char) -> c_int;

/// Looks a libc symbol up at run time, once.
fn lookup(cell: &'static OnceLock<usize>, name: &CStr) -> Option<usize> {
    let addr = *cell.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only
        // searches the loaded objects; a null result means absent.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
    });
    (addr != 0).then_some(addr)
}

fn closefrom_np() -> Option<CloseFromFn> {
    if cfg!(apple) {
        return None;
    }
    static CELL: OnceLock<usize> = OnceLock::new();
    // SAFETY: the symbol, where present, has exactly this C signature
    // (glibc 2.34 and FreeBSD 13.1 document it so).
    lookup(&CELL, c"posix_spawn_file_actions_addclosefrom_np")
        .map(|a| unsafe { std::mem::transmute::<usize, CloseFromFn>(a) })
}

fn addchdir_np() -> Option<AddChdirFn> {
    static CELL: OnceLock<usize> = OnceLock::new();
    // SAFETY: the symbol, where present, has exactly this C signature
    // (glibc 2.29, musl 1.1.24, macOS 10.15, FreeBSD 13.1).
    lookup(&CELL, c"posix_spawn_file_actions_addchdir_np")
        .map(|a| unsafe { std::mem::transmute::<usize, AddChdirFn>(a) })
}

fn check(rc: c_int) -> Result<(), Failure> {
    if rc == 0 { Ok(()) } else { Err(Failure::Setup(io::Error::from_raw_os_error(rc))) }
}

/// The `posix_spawn` file actions and attributes (posix_spawn(3),
/// posix_spawn_file_actions_init(3), posix_spawnattr_init(3)), each method
/// one libc call; `Drop` destroys what was initialised on every exit path.
struct SpawnObjects {
    actions: libc::posix_spawn_file_actions_t,
    attr: libc::posix_spawnattr_t,
    inited: (bool, bool),
}

impl SpawnObjects {
    fn new() -> Result<Self, Failure> {
        // SAFETY: plain C structs; all-zero is a placeholder that the _init
        // calls below overwrite before any other use.
        let (actions, attr) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        let mut objs = SpawnObjects { actions, attr, inited: (false, false) };
        // SAFETY: initialises the object in place.
        check(unsafe { libc::posix_spawn_file_actions_init(&mut objs.actions) })?;
        objs.inited.0 = true;
        // SAFETY: initialises the object in place.
        check(unsafe { libc::posix_spawnattr_init(&mut objs.attr) })?;
        objs.inited.1 = true;
        Ok(objs)
    }

    /// posix_spawn_file_actions_adddup2(3): `fd` becomes `target`.
    fn dup2(&mut self, fd: RawFd, target: c_int) -> Result<(), Failure> {
        // SAFETY: an initialised object; descriptors are plain integers.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut self.actions, fd, target) })
    }

    /// posix_spawn_file_actions_addopen(3): `/dev/null` for writing on `target`.
    fn null(&mut self, target: c_int) -> Result<(), Failure> {
        // SAFETY: an initialised object; a NUL-terminated static path.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(&mut self.actions, target, c"/dev/null".as_ptr(), libc::O_WRONLY, 0)
        })
    }

    /// macOS: `fd` survives `POSIX_SPAWN_CLOEXEC_DEFAULT`.
    #[cfg(apple)]
    fn inherit(&mut self, fd: c_int) -> Result<(), Failure> {
        // SAFETY: an initialised object; the function has this signature.
        check(unsafe { posix_spawn_file_actions_addinherit_np(&mut self.actions, fd) })
    }

    /// posix_spawn_file_actions_addclosefrom_np(3): close `first` and up.
    #[cfg(not(apple))]
    fn close_from(&mut self, first: c_int) -> Result<(), Failure> {
        let closefrom = closefrom_np().expect("checked by the caller");
        // SAFETY: an initialised object; the looked-up function has this
        // signature.
        check(unsafe { closefrom(&mut self.actions, first) })
    }

    /// posix_spawn_file_actions_addchdir_np(3).
    fn chdir(&mut self, dir: &CStr) -> Result<(), Failure> {
        let addchdir = addchdir_np().expect("checked by the caller");
        // SAFETY: an initialised object; `dir` is NUL-terminated and the
        // function copies it.
        check(unsafe { addchdir(&mut self.actions, dir.as_ptr()) })
    }

    /// Every signal at its default disposition and none blocked in the
    /// child (posix_spawnattr_setsigmask(3), posix_spawnattr_setsigdefault(3)).
    fn default_signals(&mut self) -> Result<(), Failure> {
        // SAFETY: sigset_t is a plain C type; sigemptyset/sigfillset
        // initialise it before use.
        let (mut empty, mut all): (libc::sigset_t, libc::sigset_t) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        // SAFETY: the sets are locals; the calls only write them.
        unsafe {
            libc::sigemptyset(&mut empty);
            libc::sigfillset(&mut all);
            libc::sigdelset(&mut all, libc::SIGKILL);
            libc::sigdelset(&mut all, libc::SIGSTOP);
        }
        // SAFETY: an initialised object; the set is copied.
        check(unsafe { libc::posix_spawnattr_setsigmask(&mut self.attr, &empty) })?;
        // SAFETY: as above.
        check(unsafe { libc::posix_spawnattr_setsigdefault(&mut self.attr, &all) })
    }

    /// posix_spawnattr_setpgroup(3): a new group led by the child.
    fn new_group(&mut self) -> Result<(), Failure> {
        // SAFETY: an initialised object.
        check(unsafe { libc::posix_spawnattr_setpgroup(&mut self.attr, 0) })
    }

    /// posix_spawnattr_setflags(3).
    fn flags(&mut self, flags: c_int) -> Result<(), Failure> {
        // SAFETY: an initialised object.
        check(unsafe { libc::posix_spawnattr_setflags(&mut self.attr, flags as _) })
    }

    /// posix_spawn(3) itself; returns the child's pid.
    fn spawn(&mut self, plan: &Plan<'_>) -> Result<i32, Failure> {
        let mut pid: libc::pid_t = 0;
        // SAFETY: initialised objects; the path, argv and envp are
        // NUL-terminated (arrays null-terminated) and outlive the call; the
        // descriptors named by the actions are open for its duration
        // because `plan` borrows them.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                plan.path.as_ptr(),
                &self.actions,
                &self.attr,
                plan.argv.as_ptr() as *const *mut c_char,
                plan.envp() as *const *mut c_char,
            )
        };
        if rc != 0 {
            // posix_spawn does not say which step failed; the caller's
            // pre-checks of the directory and the program tell them apart.
            return Err(Failure::Exec(io::Error::from_raw_os_error(rc)));
        }
        Ok(pid)
    }
}

impl Drop for SpawnObjects {
    fn drop(&mut self) {
        if self.inited.0 {
            // SAFETY: destroyed once, only after a successful init.
            unsafe { libc::posix_spawn_file_actions_destroy(&mut self.actions) };
        }
        if self.inited.1 {
            // SAFETY: as above.
            unsafe { libc::posix_spawnattr_destroy(&mut self.attr) };
        }
    }
}

#[cfg(apple)]
const POSIX_SPAWN_CLOEXEC_DEFAULT: c_int = 0x4000;
#[cfg(apple)]
unsafe extern "C" {
    fn posix_spawn_file_actions_addinherit_np(actions: *mut libc::posix_spawn_file_actions_t, fd: c_int) -> c_int;
}

fn posix_spawn(plan: &Plan<'_>, fds: &Fds) -> Result<i32, Failure> {
    let mut objs = SpawnObjects::new()?;
    objs.dup2(fds.stdin, 0)?;
    objs.dup2(fds.stdout, 1)?;
    match fds.stderr {
        StderrFd::Fd(fd) => objs.dup2(fd, 2)?,
        StderrFd::Null => objs.null(2)?,
        StderrFd::Inherit =>
        {
            #[cfg(apple)]
            objs.inherit(2)?
        }
    }
    if let Some(fd) = fds.lifeline {
        objs.dup2(fd, 3)?;
    }
    #[cfg(not(apple))]
    objs.close_from(fds.first_closed())?;
    if let Some(cwd) = plan.cwd {
        objs.chdir(cwd)?;
    }
    objs.default_signals()?;
    #[allow(unused_mut)]
    let mut flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
    if plan.process_group {
        objs.new_group()?;
        flags |= libc::POSIX_SPAWN_SETPGROUP;
    }
    #[cfg(apple)]
    {
        flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
    }
    objs.flags(flags as c_int)?;
    objs.spawn(plan)
}

/// The descriptor limit, read before `fork` (getrlimit is not on the
/// async-signal-safe list).
fn max_fd() -> c_int {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    if n <= 0 { 1024 } else { n.min(1 << 16) as c_int }
}

fn fork_exec(plan: &Plan<'_>, fds: &Fds) -> Result<i32, Failure> {
    let (err_r, err_w) = super::fd::pipe().map_err(Failure::Setup)?;
    // The report pipe must survive the dup2 and close steps in the child.
    let err_w = match super::fd::lift_above(std::os::fd::AsFd::as_fd(&err_w), 4).map_err(Failure::Setup)? {
        Some(lifted) => lifted,
        None => err_w,
    };
    let setup = child::Setup {
        plan,
        envp: plan.envp(),
        fds,
        first_closed: fds.first_closed(),
        keep: Some(err_w.as_raw_fd()),
        limit: max_fd(),
    };
    // SAFETY: between fork and execve/_exit the child calls only
    // async-signal-safe functions (`child::exec`, write, _exit) on data
    // prepared before the fork; it never allocates, locks or unwinds.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Failure::Setup(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: we are the child after fork; the parent's data was copied
        // with the address space.
        let (stage, errno) = unsafe { child::exec(&setup) };
        let mut msg = [0u8; 8];
        msg[0..4].copy_from_slice(&stage.to_ne_bytes());
        msg[4..8].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: write and _exit are async-signal-safe; msg is a local.
        unsafe {
            libc::write(err_w.as_raw_fd(), msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    }
    if plan.process_group && plan.terminal.is_none() {
        // (With a terminal the child makes a session, which a group made
        // first here would refuse.)
        // Also from the parent, as shells do: whichever runs first makes
        // the group, so no signal sent after spawn() returns can miss it.
        // SAFETY: plain syscall on our own child; EACCES after its exec is
        // harmless (the child did it already).
        unsafe { libc::setpgid(pid, pid) };
    }
    drop(err_w);
    let mut report = [0u8; 8];
    let mut got = 0;
    while got < report.len() {
        match super::read(&err_r, &mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(Failure::Setup(e)),
        }
    }
    if got == 0 {
        return Ok(pid);
    }
    // The child failed before exec: reap it so no zombie is left.
    let _ = super::Process::open(pid, false).wait();
    Err(failure(
        i32::from_ne_bytes(report[0..4].try_into().unwrap()),
        i32::from_ne_bytes(report[4..8].try_into().unwrap()),
    ))
}

/// Which error kind an `execve`/`posix_spawn` errno means.
fn classify(e: &io::Error) -> crate::error::ErrorKind {
    use crate::error::ErrorKind;
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => ErrorKind::NotFound,
        Some(libc::EACCES | libc::EPERM | libc::ENOEXEC | libc::EISDIR | libc::ETXTBSY) => ErrorKind::NotExecutable,
        Some(libc::E2BIG) => ErrorKind::InvalidInput,
        _ => ErrorKind::Spawn,
    }
}
