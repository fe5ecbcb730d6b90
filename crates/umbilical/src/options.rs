//! How to start a program: every setting of the builder besides the
//! program itself (which is a [`ProgramSpec`](crate::spec::ProgramSpec)).

use std::path::PathBuf;
use std::time::Duration;

use crate::channel::ChannelKind;
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitDetection;
use crate::launcher::{Launcher, ShimRoute};
use crate::prompt::Handler;

/// Where the program's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Stderr {
    /// The parent's stderr (the default).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// Into the channel, mixed with stdout (like `2>&1`).
    Merge,
    /// A separate pipe, read through [`Child::stderr`](crate::Child::stderr).
    ///
    /// The rule, as with std: read it (from another thread, if the channel
    /// is read at the same time) or drop it. A program that fills the pipe
    /// while nobody reads it blocks, and so does whoever waits for its
    /// output. Dropping the [`ChildStderr`](crate::ChildStderr) makes the
    /// program's further stderr writes fail (`EPIPE`) instead.
    Piped,
}

/// Whether to start the program through the shim; see [`Command::shim`](crate::Command::shim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ShimMode {
    /// Never (except [`Launcher::RunAs`](crate::Launcher::RunAs), which always needs it).
    #[default]
    Off,
    /// Always; [`Command::spawn`](crate::Command::spawn) fails where it cannot work.
    On,
    /// Wherever it can work; see [`Command::shim_choice`](crate::Command::shim_choice).
    Auto,
}

impl From<bool> for ShimMode {
    fn from(on: bool) -> Self {
        if on { ShimMode::On } else { ShimMode::Off }
    }
}

/// How the shim's control link gets back to the caller; see
/// [`Command::shim_link`](crate::Command::shim_link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ShimLink {
    /// Forwarded where the launcher can forward a socket the shim's user
    /// can open (every local launcher; ssh with `-R`, then local hops to
    /// root or the ssh user); in band through container exec (which
    /// cannot forward) and through a chain of ssh then local hops to
    /// another user (who cannot open the ssh user's socket).
    #[default]
    Auto,
    /// A socket the shim connects to: the caller's rendezvous, or through
    /// ssh a socket that `ssh -R` forwards to it. Not possible through
    /// container exec.
    Forwarded,
    /// In band: a second session of the same launcher (`ssh HOST`,
    /// `docker exec -i C`) runs a bridge that carries the link on its
    /// stdin/stdout; no socket is forwarded. For ssh servers that forbid
    /// stream-local forwarding (`AllowStreamLocalForwarding no`), and what
    /// container exec always uses. Through a chain the bridge runs through
    /// the hops before the last and hands its socket to the last hop's
    /// user. Unix callers, ssh and container exec (first in a chain) only.
    InBand,
}

/// What [`Command::shim_choice`](crate::Command::shim_choice) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShimChoice {
    /// Whether the shim will be used.
    pub used: bool,
    /// Why, in a few words (for `-v` output and reports).
    pub reason: String,
}

/// The builder's settings, read by both ways of starting (with and
/// without the shim).
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) stderr: Stderr,
    pub(crate) kind: ChannelKind,
    pub(crate) lifeline: bool,
    pub(crate) detection: ExitDetection,
    pub(crate) launcher: Launcher,
    pub(crate) shim: ShimMode,
    pub(crate) shim_path: Option<PathBuf>,
    pub(crate) shim_link: ShimLink,
    pub(crate) shim_source: Option<PathBuf>,
    /// A shim carried in memory, copied where one is needed
    /// (`Command::shim_source_bytes`).
    pub(crate) shim_source_bytes: Option<std::borrow::Cow<'static, [u8]>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) caller_gone_grace: Duration,
    pub(crate) kill_on_drop: bool,
    pub(crate) force_fork: bool,
    pub(crate) process_group: bool,
    /// Windows: `CREATE_NO_WINDOW`.
    pub(crate) no_window: bool,
    /// Windows: a kill-on-close job.
    pub(crate) kill_on_close_job: bool,
    /// Kill the program when the caller's process ends.
    pub(crate) kill_on_parent_death: bool,
    /// After the end, how long the output may still be read (Go's
    /// `WaitDelay`); `None`: until every holder closed it.
    pub(crate) wait_delay: Option<Duration>,
    /// Answers the launcher's questions (`Command::prompt_handler`).
    pub(crate) prompt_handler: Option<Handler>,
    /// The launcher's stdio is its private terminal (su reads its password
    /// on stdin); the program's own stdio is kept in the child, for the
    /// shim to receive over its link.
    pub(crate) stdio_over_link: bool,
    /// The shim is asked to serve a session (`Session::open`), not to
    /// start a program: its idle timeout (`None`: never idle) and the grace
    /// between the SIGTERM and the SIGKILL that end its programs.
    pub(crate) session_open: Option<(Option<Duration>, Duration)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stderr: Stderr::Inherit,
            kind: ChannelKind::Socket,
            lifeline: false,
            detection: ExitDetection::Auto,
            launcher: Launcher::Direct,
            shim: ShimMode::Off,
            shim_path: None,
            shim_link: ShimLink::Auto,
            shim_source: None,
            shim_source_bytes: None,
            connect_timeout: Duration::from_secs(60),
            caller_gone_grace: Duration::from_secs(5),
            kill_on_drop: false,
            force_fork: false,
            process_group: false,
            no_window: false,
            kill_on_close_job: false,
            kill_on_parent_death: false,
            wait_delay: None,
            prompt_handler: None,
            stdio_over_link: false,
            session_open: None,
        }
    }
}

impl Options {
    /// Whether the shim's link goes in band (a bridge in a second session).
    pub(crate) fn in_band(&self) -> bool {
        match self.shim_link {
            ShimLink::InBand => true,
            ShimLink::Forwarded => false,
            // ssh then a hop to a user who cannot open the socket ssh
            // forwards (the ssh user's, 0600): in band, the bridge run by
            // the hops before that one (as root) handing it its socket.
            ShimLink::Auto => match self.launcher.capabilities().shim_route {
                ShimRoute::InBandCopied => true,
                ShimRoute::Forwarded => self.launcher.far_socket_reachable().is_err(),
                _ => false,
            },
        }
    }

    /// The shim binary on this host that is copied into a container: the
    /// one set, else this executable.
    pub(crate) fn shim_source(&self) -> Result<PathBuf> {
        self.shim_source.clone().map_or_else(this_executable, Ok)
    }

    /// The shim to start: the one set, else this executable.
    pub(crate) fn shim_program(&self) -> Result<PathBuf> {
        self.shim_path.clone().map_or_else(this_executable, Ok)
    }

    /// The shim binary on this host that answers as the askpass helper:
    /// the shim source, else the shim path where the shim runs here, else
    /// this executable. Not this executable first: a caller that is not
    /// the `umbilical` CLI (a Node or Python program, an app) does not
    /// answer as a helper, while the shim does.
    pub(crate) fn local_shim_program(&self) -> Result<PathBuf> {
        if let Some(source) = &self.shim_source {
            return Ok(source.clone());
        }
        match &self.shim_path {
            Some(path) if !self.launcher.capabilities().foreign_pids => Ok(path.clone()),
            _ => this_executable(),
        }
    }
}

/// The default shim: this executable.
fn this_executable() -> Result<PathBuf> {
    std::env::current_exe()
        .map_err(|e| Error::new(ErrorKind::ShimFailed, format!("cannot find the shim (current_exe): {e}"), Some(e)))
}
