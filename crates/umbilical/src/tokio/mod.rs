//! The async API on tokio (feature `tokio`): the same channel, exit
//! detection, launchers and shim as the blocking API, with no thread per
//! child.
//!
//! [`Command::spawn_async`](crate::Command::spawn_async) starts a program
//! with every option of the one builder and returns a [`Child`] whose
//! [`Channel`] is `AsyncRead + AsyncWrite`:
//!
//! ```
//! # #[cfg(unix)] {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use umbilical::Command;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let mut child = Command::new("cat").spawn_async().await?;
//! let mut channel = child.take_channel().unwrap();
//! channel.write_all(b"hello").await?;
//! channel.shutdown().await?; // the half-close: cat sees EOF ...
//! let mut echoed = String::new();
//! channel.read_to_string(&mut echoed).await?; // ... and we keep reading
//! assert_eq!(echoed, "hello");
//! assert!(child.wait().await?.success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What runs where
//!
//! - **The channel and stderr**, Unix: the parent's descriptors, made
//!   non-blocking and registered with the runtime's reactor (epoll,
//!   kqueue). A write is one `send` (`MSG_NOSIGNAL`) or one pipe `write`
//!   with SIGPIPE held off, as in the blocking API; nothing is buffered.
//!   Windows: the parent's ends are overlapped named pipes umbilical
//!   created, so a duplicate of each is handed to tokio's named pipes on
//!   the runtime's completion port; never the blocking pool. The
//!   half-close closes both handles of the write pipe (never
//!   `DisconnectNamedPipe`, never a blocking `FlushFileBuffers`); a write
//!   tokio has taken is still delivered before the pipe closes.
//! - **The end**: [`Detection::Process`](crate::Detection::Process) waits
//!   on a pidfd (Linux) or a kqueue with `EVFILT_PROC` (macOS/BSD)
//!   registered with the reactor, then reaps with `waitid(WNOHANG)`; no
//!   SIGCHLD handler is installed. Lifeline and channel-closed detection
//!   wait on the lifeline's or the channel's hang-up, the same way.
//!   Windows: a wait on the process handle registered with the system
//!   thread pool (`RegisterWaitForSingleObject`), whose wait threads are
//!   shared; lifeline and channel-closed detection look again
//!   after a growing sleep (1 to 50 ms), since a Windows pipe has no
//!   hang-up readiness.
//! - **Through the shim**: the control stream is read by the same
//!   background watch as in the blocking API (no task, no thread of its
//!   own), which records the shim's report, closes the stream at once (so
//!   a caller reading the channel to EOF before `wait()` is not stuck
//!   behind a launcher that holds it open) and wakes the waiting task.
//! - **Threads**: none per child. A program
//!   still running when its `Child` is dropped is reaped by the process's
//!   one shared background thread, as in the blocking API (Windows has no
//!   zombies: nothing to reap).
//!
//! # Caveats
//!
//! - **The runtime.** Spawning and converting must happen inside a tokio
//!   runtime (they panic otherwise, as tokio's I/O types do); the child
//!   belongs to that runtime's reactor. Both the `current_thread` and the
//!   multi-thread runtimes work. Where no pidfd can be opened (a seccomp
//!   filter refusing `pidfd_open`, a kernel before 5.3, Unix systems
//!   without kqueue), `wait()` polls with a growing sleep (1 to 50 ms) and
//!   needs the runtime's time driver (`enable_time` or `enable_all`).
//! - **Through the shim** the handshake runs on tokio's blocking pool, for
//!   as long as it lasts (a launcher asking for a password makes it last;
//!   [`Command::connect_timeout`](crate::Command::connect_timeout) bounds
//!   it). The link task lives on the runtime: if the runtime shuts down
//!   while the program runs, the shim sees the caller gone and ends the
//!   program (SIGTERM, then SIGKILL after
//!   [`caller_gone_grace`](crate::Command::caller_gone_grace)).
//! - **Cancellation.** Dropping a pending `wait()` loses nothing: the
//!   next `wait()` or `try_wait()` reports the same exit. Dropping a
//!   pending read or write loses no byte (a read that returned nothing
//!   consumed nothing; a write either wrote its count or nothing).
//!   Dropping a pending `spawn_async` through the shim does not stop the
//!   handshake, which runs on the blocking pool: if it starts the
//!   program, the unclaimed child is dropped there, the link closes
//!   without a detach, and the shim ends the program as for a caller
//!   gone. Without the shim, `spawn_async` completes on its first poll.
//! - **Process groups and `kill`.** As in the blocking API:
//!   [`Child::start_kill`] signals the process umbilical started (through
//!   the shim, the program), and [`Child::kill`] also waits for the end,
//!   as `tokio::process::Child::kill` does.
//! - **The parent's descriptors are non-blocking** while on the runtime.
//!   On Unix, `Channel::into_blocking` and `Child::into_blocking` make
//!   them blocking again. Windows has no way back: a handle tied to a
//!   completion port stays tied, and tokio reads ahead into its own
//!   buffer, which a blocking reader would never see.
//! - **Windows lifeline and channel-closed detection** poll (see above);
//!   they need the runtime's time driver, and see the end up to 50 ms
//!   late.

mod channel;
mod child;
mod communicate;

pub use channel::{Channel, ReadHalf, WriteHalf};
pub use child::{Child, ChildStderr};

/// The wait-delay cutoff as a task's read sees it.
pub(crate) trait PollCutoff {
    /// Whether the cutoff has passed; if not, the task is woken when it
    /// does.
    fn poll_passed(
        &self,
        cx: &mut std::task::Context<'_>,
        sleep: &mut Option<std::pin::Pin<Box<::tokio::time::Sleep>>>,
    ) -> bool;
}

impl PollCutoff for crate::cutoff::Cutoff {
    /// For a task's read: whether the cutoff has passed; if not, the task
    /// is woken when it does (`sleep` holds its timer once the moment is
    /// known; before that, the wait that sees the end wakes it).
    fn poll_passed(
        &self,
        cx: &mut std::task::Context<'_>,
        sleep: &mut Option<std::pin::Pin<Box<::tokio::time::Sleep>>>,
    ) -> bool {
        use std::future::Future;
        let Some(at) = self.at() else {
            let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
            // Seen between the look and the lock: look again.
            if self.at().is_some() {
                drop(wakers);
                return self.poll_passed(cx, sleep);
            }
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            return false;
        };
        let timer = sleep.get_or_insert_with(|| Box::pin(::tokio::time::sleep_until(at.into())));
        timer.as_mut().poll(cx).is_ready()
    }
}
