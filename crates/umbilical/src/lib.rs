//! Start a program and talk to it over **one full-duplex byte channel** wired
//! to its stdin and stdout.
//!
//! # The problem
//!
//! Talking to a helper program looks easy with `std::process`, and breaks in
//! ordinary cases:
//!
//! - **No half-close on one channel.** To make a program see EOF you drop
//!   its stdin pipe, and with it any chance of a request/response on the
//!   same stream; on Windows a pipe cannot be half-closed at all, and an
//!   inherited socket breaks under Layered Service Providers.
//! - **The end of a wrapper is not the end of the program.** Through sudo,
//!   a shell script or `setsid`, the process you started may exit at once
//!   (or report its own refusal as exit code 1), and through ssh there is
//!   no PID of yours to wait for.
//! - **Descriptor races.** A descriptor another thread opened without
//!   `O_CLOEXEC`, or marked inheritable on Windows, leaks into the child if
//!   the spawn happens in between; the child then holds your pipe open and
//!   your reads never see EOF.
//! - **Pid races.** Signalling a pid after it was reaped can hit an
//!   unrelated process that got the same pid.
//!
//! umbilical fixes each, and keeps fixing them through launchers (sudo,
//! doas, pkexec, runuser, su, ssh, container exec, Windows UAC elevation).
//! Three promises, which std's `process` module does not make together:
//!
//! 1. **Half-close.** [`Channel::shutdown_write`] makes the program read EOF
//!    while you keep reading its output to the end — the
//!    `socketpair` + `shutdown(SHUT_WR)` idiom, packaged, and on Windows two
//!    named pipes (never an inherited socket).
//! 2. **An exit you can see without a PID.** [`Child::wait`] reports the
//!    program's end and, where knowable, its status — and with
//!    [`ExitDetection::Lifeline`] or [`ExitDetection::ChannelClosed`] it
//!    waits for the real program even when the process started was only a
//!    wrapper that exited at once. The [`Exit`] says how the end was seen.
//!    Signals and kills go through a pidfd on Linux (never a reused pid) or
//!    to a process not yet reaped.
//! 3. **Nothing leaks.** The program inherits fds 0, 1, 2 and, if asked, the
//!    lifeline on fd 3 — nothing else, even when other code opened
//!    descriptors without `O_CLOEXEC` and other threads spawn at the same
//!    moment (an explicit handle list on Windows).
//!
//! ```
//! use std::io::{Read, Write};
//! use umbilical::Command;
//!
//! let mut child = Command::new("sort").spawn()?;
//! let channel = child.channel().unwrap();
//! channel.write_all(b"pear\napple\n")?;
//! channel.shutdown_write()?; // sort needs EOF before it prints anything
//! let mut sorted = String::new();
//! channel.read_to_string(&mut sorted)?;
//! assert_eq!(sorted, "apple\npear\n");
//! let exit = child.wait()?;
//! assert_eq!(exit.code(), Some(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Launchers
//!
//! [`Command::launcher`] starts the program through sudo, doas, pkexec,
//! runuser, su, ssh, container exec or a custom prefix, keeping the same
//! channel; [`Command::shim`] adds a small helper on the far side that makes
//! the status exact, tells a launcher's refusal from the program's exit
//! code, and relays kills (see [`shim`]).
//!
//! # Sessions
//!
//! [`Session`] runs a local launcher once (one password prompt, one UAC
//! consent) and then starts many programs through its shim, each an
//! ordinary [`Child`]; it ends them when the caller closes or drops it, or
//! dies.
//!
//! # Threads
//!
//! A [`Channel`] is one value with a read side and a write side.
//! [`Channel::shutdown_write`] takes `&mut self`: on Windows (and for
//! [`ChannelKind::Pipes`]) the half-close closes the write end, which must
//! not happen while a write on it is under way, and the borrow checker
//! makes sure none is. To read and write from two threads at once, as a
//! request/response loop or a relay does, call [`Channel::split`]: the
//! [`ReadHalf`] and [`WriteHalf`] move to different threads, and the
//! writer's [`WriteHalf::shutdown`] is the half-close.
//!
//! # Platforms
//!
//! Linux (tested), macOS and FreeBSD (type-checked), Windows (two named
//! pipes per channel; tested under Wine).
//!
//! # Caveats
//!
//! What a program can do to its end of the channel, and what the caller
//! then sees (each is tested, on every channel kind):
//!
//! - **It exits without reading all its input.** Reading its output ends
//!   at EOF with every byte it wrote; writing fails with
//!   [`std::io::ErrorKind::BrokenPipe`]. (On a socket Linux reports this as
//!   `ECONNRESET`; umbilical reports EOF and `BrokenPipe`, as for pipes.)
//! - **It closes its stdin and keeps running.** With
//!   [`ChannelKind::Socket`] and [`ChannelKind::Pipes`] writes fail with
//!   `BrokenPipe` at once. With [`ChannelKind::SharedSocket`] the program's
//!   stdin is the socket it still holds as stdout: writes are accepted
//!   until the buffer is full, then block until the program exits.
//! - **It leaves a grandchild holding the channel.** [`Child::wait`] with
//!   [`ExitDetection::Process`] returns when the process umbilical started
//!   exits; reading goes on until the grandchild closes its end too (use
//!   [`ExitDetection::ChannelClosed`] to wait for that).
//! - **It floods a piped stderr.** Read [`Child::stderr`] or drop it; see
//!   [`Stderr::Piped`].
//!
//! Writes never raise SIGPIPE, even in a host whose SIGPIPE is at its
//! default disposition and when a large write is cut short: on sockets by
//! `MSG_NOSIGNAL` (`SO_NOSIGPIPE` on macOS/BSD), on pipes by blocking the
//! signal in the writing thread for the call and consuming the one the
//! call raised (`F_SETNOSIGPIPE` on macOS). Reads, writes and waits that a
//! signal interrupts are resumed; `Interrupted` never reaches the caller.
//!
//! A relative program path is taken from [`Command::current_dir`] on Unix,
//! as the program sees it after changing directory; on Windows it is taken
//! from the caller's directory, as `CreateProcessW` does.

#![deny(missing_docs)]
// docs.rs (nightly) marks each OS-specific item with the OS it exists on.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod channel;
mod child;
mod command;
mod communicate;
mod cutoff;
mod error;
mod exit;
mod exit_source;
mod launcher;
mod launcher_spec;
mod link;
pub mod mechanisms;
mod options;
pub mod prompt;
mod prompt_relay;
pub mod protocol;
mod session;
pub mod shim;
pub mod signal;
mod spawn;
mod spec;
mod sys;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use channel::{Channel, ChannelKind, ChildEnd, ReadHalf, WriteHalf};
pub use child::{Child, ChildStderr};
pub use command::Command;
pub use communicate::Output;
pub use error::{Error, ErrorKind, Result};
pub use exit::{Detection, Exit, ExitDetection, ExitStatus};
pub use launcher::{Capabilities, Engine, Launcher, PromptRoute, ShimRoute, sh_quote};
pub use options::{ShimChoice, ShimLink, ShimMode, Stderr};
pub use prompt::{Prompt, Secret};
pub use session::{Session, SessionBuilder};
pub use signal::Signal;

/// Makes every later write to a pipe channel in this process take the
/// portable SIGPIPE guard, even on a kernel that offers `RWF_NOSIGNAL`.
/// For testing that path; not part of the stable API.
#[doc(hidden)]
pub fn force_sigpipe_guard() {
    sys::force_sigpipe_guard();
}

/// The README's examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// docs/library.md's examples (the README's, continued), run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/library.md")]
pub struct LibraryDocDoctests;
