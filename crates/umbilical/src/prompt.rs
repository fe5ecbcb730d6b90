//! Questions a launcher asks on the way in (a password, ssh's host key),
//! answered by the caller's handler: [`Command::prompt_handler`](crate::Command::prompt_handler).
//!
//! A program with no terminal (an editor, an installer, a GUI) cannot
//! answer `[sudo] password for alice:` itself: the launcher either refuses
//! at once or, worse, prompts on a terminal that no person is looking at.
//! With a handler, umbilical puts itself where the launcher asks (see
//! [`PromptRoute`](crate::PromptRoute) for how, launcher by launcher),
//! hands each question to the handler with what the launcher printed, and
//! gives the launcher the answer. The answer is a [`Secret`]: it never
//! passes through an argv, an environment or a file, and its bytes are
//! zeroed when it is dropped.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// One question a launcher asks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Prompt {
    /// The launcher that asks (`"sudo"`, `"ssh"`, …), as
    /// [`Launcher::name`](crate::Launcher::name) says.
    pub launcher: String,
    /// Which launcher of a chain asks, counted from the caller's side (0:
    /// the first).
    pub hop: usize,
    /// The question exactly as the launcher wrote it, e.g.
    /// `[sudo] password for alice: `.
    pub text: String,
    /// Whether the answer is secret (a password, a passphrase): not shown
    /// as typed. ssh's host-key and confirmation questions are not.
    pub secret: bool,
    /// How many times this launch was asked this same question, this one
    /// included: 2 and more mean the previous answer was refused (a wrong
    /// password), as far as the launcher tells.
    pub attempt: u32,
}

/// An answer: bytes that are zeroed when dropped, and never printed by
/// `Debug`.
///
/// ```
/// let s = umbilical::Secret::new("correct horse");
/// assert_eq!(s.expose(), b"correct horse");
/// assert_eq!(format!("{s:?}"), "Secret(..)");
/// ```
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes the bytes of `answer` (a `String` or `Vec<u8>` moves in
    /// without a copy; zero your own copies of a borrowed one).
    pub fn new(answer: impl Into<Vec<u8>>) -> Self {
        Secret(Zeroizing::new(answer.into()))
    }

    /// The answer's bytes, without their line end.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A blocking handler.
pub(crate) type BlockingFn = Arc<dyn Fn(&Prompt) -> Option<Secret> + Send + Sync>;

/// What makes a handler ready to be called where a launch starts, or says
/// why it cannot be (an async handler outside a runtime).
pub(crate) type BindFn = Arc<dyn Fn() -> Result<BlockingFn, String> + Send + Sync>;

/// A handler as the builder keeps it: called on a thread of umbilical's
/// own while the launch waits for the launcher (a blocking handler may
/// block: a dialog, a person typing), or, for the async form, polled on
/// that thread within the runtime that started the launch.
#[derive(Clone)]
pub(crate) enum Handler {
    /// Nobody answers: every question is declined at once (su with no
    /// handler set, which would otherwise wait on the channel for a
    /// password nobody types; Unix only).
    #[cfg_attr(windows, allow(dead_code))]
    Nobody,
    /// A handler, made ready when the launch starts: a blocking one as it
    /// is; an async one (`Command::prompt_handler_async`) with the runtime
    /// that starts the launch, its future run there by the relay's thread
    /// (within the runtime's context: its timers and sockets are the
    /// runtime's), never on a worker of it.
    Answers(BindFn),
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler(..)")
    }
}

impl Handler {
    /// A blocking handler, ready anywhere.
    pub(crate) fn blocking(f: BlockingFn) -> Handler {
        Handler::Answers(Arc::new(move || Ok(f.clone())))
    }

    /// The handler ready to be called from the relay's thread.
    pub(crate) fn bind(&self) -> Result<Bound, String> {
        match self {
            Handler::Nobody => Ok(Bound::Nobody),
            Handler::Answers(bind) => bind().map(Bound::Blocking),
        }
    }
}

/// A handler bound to where it runs (see [`Handler::bind`]).
pub(crate) enum Bound {
    Nobody,
    Blocking(BlockingFn),
}

impl Bound {
    /// Asks, blocking this (the relay's) thread until the answer.
    pub(crate) fn ask(&self, prompt: &Prompt) -> Option<Secret> {
        match self {
            Bound::Nobody => None,
            Bound::Blocking(f) => f(prompt),
        }
    }
}

/// A handler that asks on the caller's controlling terminal (`/dev/tty`,
/// echo off for a secret), as sudo and ssh would themselves: for a program
/// whose own stdin is not the person's, like the `umbilical` CLI, whose
/// stdin belongs to the program. `None` when this process has no
/// controlling terminal (Windows: never one).
///
/// ```no_run
/// let mut cmd = umbilical::Command::new("id");
/// cmd.launcher(umbilical::Launcher::Sudo { user: None, non_interactive: false });
/// if let Some(ask) = umbilical::prompt::terminal() {
///     cmd.prompt_handler(ask);
/// }
/// ```
pub fn terminal() -> Option<impl Fn(&Prompt) -> Option<Secret> + Send + Sync + 'static> {
    crate::sys::has_terminal().then_some(|prompt: &Prompt| {
        match crate::sys::ask_terminal(&prompt.text, prompt.secret) {
            Ok(answer) => answer.map(Secret),
            Err(e) => {
                tracing::warn!("cannot ask on the terminal: {e}");
                None
            }
        }
    })
}
