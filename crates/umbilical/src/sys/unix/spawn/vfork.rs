//! Linux: the child is started by `clone(CLONE_VM | CLONE_VFORK)`, as
//! glibc's `posix_spawn` does, but runs our own steps before `execve`.
//!
//! Why not `posix_spawn`: its only way to keep the parent's descriptors
//! from the program is a `closefrom` file action, which glibc runs as
//! `close_range(3, ~0, 0)` while the parent is suspended. A parent with
//! 1,500 descriptors open (3 per live child in a server with 500 of them)
//! waits about 70 µs a spawn for those closes. Marking the range
//! close-on-exec instead (`CLOSE_RANGE_CLOEXEC`) costs a flip of bits; the
//! kernel closes them during `execve`, after the parent has resumed. std and
//! tokio close nothing, relying on every descriptor being close-on-exec;
//! this keeps the promise that the program inherits nothing, at their
//! cost.
//!
//! The hazards of a child that shares the parent's memory, and how each is
//! met:
//! - a signal handler of the parent's running in the child: every signal is
//!   blocked around `clone`, and the child resets every disposition to the
//!   default before it unblocks;
//! - the child's stack: a separate one (mapped once per spawning thread,
//!   with a guard page below it), never the parent's;
//! - the child's writes: only its own stack, `errno`, and the report of a
//!   failure, read by the parent once `clone` has returned (with
//!   `CLONE_VFORK`, after the child exec'd or exited);
//! - other threads: they keep running and never see the child's state; the
//!   child reads only data this thread prepared and does not change.
//!
//! Where `clone` is refused (a seccomp filter: `EPERM`, `ENOSYS`), the
//! refusal is learnt once and the caller falls back to `fork`.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::Failure;
use super::child::{self, Setup};

/// The child's stack: far more than the few frames it runs.
const STACK_LEN: usize = 64 * 1024;

static REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether this path is open (not yet refused by the kernel).
pub(super) fn available() -> bool {
    !REFUSED.load(Ordering::Relaxed)
}

/// What the child reads, and where it reports a failure.
struct Shared<'a> {
    setup: Setup<'a>,
    stage: AtomicI32,
    errno: AtomicI32,
}

/// Starts the program; `Ok(None)` if the kernel refused this way of
/// starting it (then learnt: the caller uses another).
pub(super) fn spawn(setup: Setup<'_>) -> Result<Option<i32>, Failure> {
    // A fresh stack if this thread has none (or is tearing its locals down).
    let stack = SPARE.try_with(Cell::take).ok().flatten().map_or_else(Stack::new, Ok).map_err(Failure::Setup)?;
    let shared = Shared { setup, stage: AtomicI32::new(0), errno: AtomicI32::new(0) };
    let old = block_all_signals();
    // SAFETY: `child_main` runs on `stack` (mapped, writable, 16-byte
    // aligned top) and only reads `shared`, which outlives the call because
    // CLONE_VFORK suspends this thread until the child exec'd or exited.
    // The child's hazards are handled as the module docs list.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw const shared).cast_mut().cast::<c_void>(),
        )
    };
    let clone_error = io::Error::last_os_error();
    restore_signals(&old);
    let _ = SPARE.try_with(|spare| spare.set(Some(stack)));
    if pid < 0 {
        return match clone_error.raw_os_error() {
            Some(libc::EPERM | libc::ENOSYS | libc::EINVAL) => {
                tracing::debug!(error = %clone_error, "clone(CLONE_VM | CLONE_VFORK) refused; using fork from now on");
                REFUSED.store(true, Ordering::Relaxed);
                Ok(None)
            }
            _ => Err(Failure::Setup(clone_error)),
        };
    }
    let stage = shared.stage.load(Ordering::Acquire);
    if stage == 0 {
        return Ok(Some(pid));
    }
    // The child failed before exec and exited: reap it, no zombie left.
    let _ = super::super::Process::open(pid, false).wait();
    Err(super::failure(stage, shared.errno.load(Ordering::Relaxed)))
}

/// The child: set up and exec, or report the failure and exit.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Shared` the parent passed, alive until this
    // child exec's or exits (the parent is suspended until then).
    let shared = unsafe { &*arg.cast::<Shared<'_>>() };
    // SAFETY: we are the child, before execve; the parent's data is valid.
    let (stage, errno) = unsafe { child::exec(&shared.setup) };
    shared.errno.store(errno, Ordering::Relaxed);
    shared.stage.store(stage, Ordering::Release);
    // SAFETY: _exit(2) ends this child without running anything of the
    // parent's (no atexit handlers, no flushing of shared stdio buffers).
    unsafe { libc::_exit(127) }
}

/// Blocks every signal the C library lets us block, in this thread, for
/// the span of the `clone`; returns the mask to restore.
fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is a plain C type; sigfillset initialises `all`, and
    // pthread_sigmask writes `old` before it is read.
    unsafe {
        let (mut all, mut old): (libc::sigset_t, libc::sigset_t) = (std::mem::zeroed(), std::mem::zeroed());
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Puts back the mask `block_all_signals` returned.
fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: `old` is a mask pthread_sigmask filled.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

thread_local! {
    /// The stack of this thread's last spawn, kept for the next: one
    /// mapping per spawning thread instead of a map and unmap each time.
    static SPARE: Cell<Option<Stack>> = const { Cell::new(None) };
}

/// An anonymous mapping for the child to run on, with a guard page (one
/// page below it, never accessible, so an overflow faults).
struct Stack {
    base: *mut c_void,
    guard: usize,
}

impl Stack {
    fn new() -> io::Result<Stack> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let guard = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(4096);
        // SAFETY: a fresh private anonymous mapping; nothing else refers to
        // it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                guard + STACK_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, guard };
        // SAFETY: the lowest page of the mapping just made.
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The highest address: stacks grow down on every Linux target Rust
    /// supports. A multiple of 16 past a page-aligned base, so 16-byte
    /// aligned.
    fn top(&self) -> *mut c_void {
        self.base.wrapping_byte_add(self.guard + STACK_LEN)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, unmapped once; no child runs on it
        // (a spawn holds the stack until its child exec'd or exited).
        unsafe { libc::munmap(self.base, self.guard + STACK_LEN) };
    }
}
