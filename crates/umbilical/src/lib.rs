//! Start a program and talk to it over **one full-duplex byte channel** wired
//! to its stdin and stdout.
//!
//! Three promises, which std's `process` module does not make together:
//!
//! 1. **Half-close.** [`Channel::shutdown_write`] makes the program read EOF
//!    while you keep reading its output to the end — the
//!    `socketpair` + `shutdown(SHUT_WR)` idiom, packaged.
//! 2. **An exit you can see without a PID.** [`Child::wait`] reports the
//!    program's end and, where knowable, its status — and with
//!    [`ExitDetection::Lifeline`] or [`ExitDetection::ChannelClosed`] it
//!    waits for the real program even when the process started was only a
//!    wrapper that exited at once. The [`Exit`] says how the end was seen.
//! 3. **Nothing leaks.** The program inherits fds 0, 1, 2 and, if asked, the
//!    lifeline on fd 3 — nothing else, even when other code opened
//!    descriptors without `O_CLOEXEC` and other threads spawn at the same
//!    moment.
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

mod channel;
mod child;
mod command;
mod error;
mod exit;
mod launcher;
mod link;
pub mod mechanisms;
mod options;
pub mod protocol;
pub mod shim;
mod spawn;
mod spec;
mod sys;

pub use channel::{Channel, ChannelKind, ChildEnd, ReadHalf, WriteHalf};
pub use child::{Child, ChildStderr};
pub use command::Command;
pub use error::{Error, ErrorKind, Result};
pub use exit::{Detection, Exit, ExitDetection, ExitStatus};
pub use launcher::{Capabilities, Engine, Launcher, sh_quote};
pub use options::{ShimChoice, ShimMode, Stderr};

/// The README's examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
