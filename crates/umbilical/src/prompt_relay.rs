//! The prompt relay: how a launcher's password prompt reaches the
//! caller's [prompt handler](crate::Command::prompt_handler) without a
//! terminal. Two ways, by [`PromptRoute`]:
//!
//! - **An askpass helper**, for the launchers that take one (sudo `-A`
//!   with `SUDO_ASKPASS`, ssh with `SSH_ASKPASS` and
//!   `SSH_ASKPASS_REQUIRE=force`).
//! - **A private terminal**, for a launcher that reads its password from
//!   its controlling terminal only (doas; pkexec's textual polkit agent)
//!   or from its stdin (su, whose stdio is then that terminal, the
//!   program's own going to the shim over its link): the launcher starts
//!   in a session of its own whose controlling terminal is a fresh
//!   pseudo-terminal (doas's and pkexec's stdin and stdout stay the
//!   channel); the relay reads what the launcher writes there, and when
//!   it stops with a line not ended (a prompt) for [`QUIET`], asks the
//!   handler and types the answer; a declined question is an interrupt
//!   (`^C`), which ends the launcher without an attempt. The terminal
//!   stays open as long as the child (its program's session keeps it as
//!   controlling terminal; closing it would hang that session up).
//!
//! The askpass helper is the shim program itself, started by the launcher (as the
//! caller's user) through a link named `umbilical-askpass` in a fresh
//! rendezvous directory of the caller's (`0700`); under that name it
//! connects to the socket beside it, sends the prompt it was given, and
//! prints what comes back. The relay accepts a connection only from a
//! descendant of the launcher it started (`sys::Rendezvous::accept_from`),
//! asks the handler on a thread of its own, and answers once per
//! connection: never an answer the launcher did not ask for. The secret
//! passes through the socket and the helper's stdout to the launcher, as
//! any askpass helper's does; never an argv, an environment or a file.
//!
//! A sudo beyond ssh (a chain) asks through the far shim program as its
//! askpass helper, told the shim's forwarded rendezvous by
//! [`ASKPASS_SOCKET_VAR`]; the handshake answers it ([`InnerPrompts`]).
//!
//! Wire format (one exchange per connection): the helper sends `UASK`, a
//! flags byte (bit 0: the answer is not secret), the prompt's length (u16,
//! big endian) and the prompt; the relay answers `1` and the answer, or
//! `0` (declined), and closes.

// Windows has no relay (its prompts are the OS's consent dialog, and
// `Relay::open` says so): what only the Unix shim calls is unused there.
#![cfg_attr(windows, allow(dead_code))]

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::launcher::PromptRoute;
use crate::prompt::{Bound, Handler, Prompt, Secret};
use crate::sys;

const MAGIC: &[u8; 4] = b"UASK";
/// The flags bit for a question whose answer is not secret.
const NOT_SECRET: u8 = 1;
/// The longest prompt and the longest answer carried.
const MAX_TEXT: usize = 4096;
/// How long a connected helper has to send its question.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a launcher's terminal stays quiet after a line not ended
/// before it counts as a prompt.
const QUIET: Duration = Duration::from_millis(150);

/// What the relay saw, for the launch's error when the launcher refused.
#[derive(Default)]
struct Seen {
    stop: AtomicBool,
    asked: AtomicU32,
    declined: AtomicBool,
    /// The last line the launcher wrote on its private terminal after a
    /// question (su's "Authentication failure"): its own words.
    said: std::sync::Mutex<String>,
}

impl Seen {
    fn remember(&self, text: &[u8]) {
        let text = String::from_utf8_lossy(text).replace('\r', "");
        if let Some(line) = text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
            let mut said = self.said.lock().unwrap_or_else(|p| p.into_inner());
            *said = line.chars().take(200).collect();
        }
    }
}

/// How the questions reach the relay.
enum Via {
    /// The helper's rendezvous until [`Relay::serve`] hands it to the
    /// thread; the entry and the socket, then their directory, removed by
    /// [`Relay::stop`], also when the process exits before the thread's
    /// next look.
    Askpass { rendezvous: Option<sys::Rendezvous>, files: [PathBuf; 3] },
    /// Our side of the private terminal and the launcher's side.
    Terminal(Arc<(sys::Handle, sys::Handle)>),
}

/// A relay for one launch: how the questions come, the environment the
/// launcher needs, and what was seen. [`Relay::stop`] (or dropping it)
/// ends it: no helper can connect after that, and the thread ends at its
/// next look, within 150 ms (a handler already asked finishes first).
pub(crate) struct Relay {
    via: Via,
    handler: Option<Bound>,
    /// Nobody answers ([`Handler::Nobody`]): a question is a refusal.
    nobody: bool,
    launcher: String,
    deadline: Instant,
    seen: Arc<Seen>,
    env: Vec<(OsString, OsString)>,
}

impl Relay {
    /// Prepares a relay for `route`; `program` is the shim program (the
    /// askpass helper). Fails for an async handler outside a runtime, for
    /// a route nothing relays, and where the OS has no relay (Windows).
    pub(crate) fn open(
        route: PromptRoute,
        handler: &Handler,
        launcher: String,
        program: &Path,
        deadline: Instant,
    ) -> Result<Relay, Error> {
        let handler = handler.bind().map_err(|what| Error::new(ErrorKind::InvalidInput, what, None))?;
        let io_fail = |what: &str| {
            let what = what.to_string();
            move |e: io::Error| Error::new(ErrorKind::Io, format!("the prompt relay: {what}: {e}"), Some(e))
        };
        let nobody = matches!(handler, Bound::Nobody);
        let relay = |via, env| Relay {
            via,
            handler: Some(handler),
            nobody,
            launcher: launcher.clone(),
            deadline,
            seen: Arc::default(),
            env,
        };
        match route {
            PromptRoute::SudoAskpass | PromptRoute::SshAskpass => {
                let mut rendezvous = sys::Rendezvous::create(None).map_err(io_fail("cannot create its directory"))?;
                let entry = rendezvous.place_askpass(program).map_err(io_fail("cannot place the helper"))?;
                let socket = rendezvous.path();
                let dir = socket.parent().map(Path::to_path_buf).unwrap_or_default();
                let files = [entry.clone(), socket, dir];
                let env = if route == PromptRoute::SudoAskpass {
                    vec![("SUDO_ASKPASS".into(), entry.into_os_string())]
                } else {
                    vec![
                        ("SSH_ASKPASS".into(), entry.into_os_string()),
                        // OpenSSH 8.4 and later: the helper even without a
                        // display and even with a terminal.
                        ("SSH_ASKPASS_REQUIRE".into(), "force".into()),
                    ]
                };
                Ok(relay(Via::Askpass { rendezvous: Some(rendezvous), files }, env))
            }
            PromptRoute::ControllingTerminal | PromptRoute::PolkitAgent | PromptRoute::StandardInput => {
                let pair = sys::open_pty().map_err(io_fail("cannot open a pseudo-terminal"))?;
                Ok(relay(Via::Terminal(Arc::new(pair)), Vec::new()))
            }
            other => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{launcher}: a prompt handler cannot answer it ({other:?}): it reads its password from its \
                     standard input, which is the program's channel; settle its authentication first (a rule \
                     without a password) or use sudo, doas or ssh"
                ),
                None,
            )),
        }
    }

    /// The environment the launcher is started with.
    pub(crate) fn env(&self) -> &[(OsString, OsString)] {
        &self.env
    }

    /// The terminal the launcher is given as its controlling terminal.
    pub(crate) fn terminal(&self) -> Option<&sys::Handle> {
        match &self.via {
            Via::Terminal(pair) => Some(&pair.1),
            Via::Askpass { .. } => None,
        }
    }

    /// Writes `line` and a line end on the private terminal, as typed.
    pub(crate) fn type_line(&self, line: &[u8]) -> io::Result<()> {
        match &self.via {
            Via::Terminal(pair) => {
                let mut typed = Zeroizing::new(line.to_vec());
                typed.push(b'\n');
                sys::write_terminal(&pair.0, &typed)
            }
            Via::Askpass { .. } => Err(io::Error::other("no private terminal")),
        }
    }

    /// Starts answering, on a thread that ends at [`Relay::stop`] or at the
    /// deadline: helpers that descend from `launcher_pid`, or what the
    /// launcher writes on its terminal.
    pub(crate) fn serve(&mut self, launcher_pid: u32) -> io::Result<()> {
        let Some(handler) = self.handler.take() else { return Ok(()) };
        let seen = self.seen.clone();
        let launcher = self.launcher.clone();
        let deadline = self.deadline;
        let name = "umbilical-prompts".to_string();
        match &mut self.via {
            Via::Askpass { rendezvous, .. } => {
                let Some(mut rendezvous) = rendezvous.take() else { return Ok(()) };
                std::thread::Builder::new().name(name).spawn(move || {
                    let mut attempts: Vec<(String, u32)> = Vec::new();
                    let mut refused = 0;
                    loop {
                        let gave_up = || seen.stop.load(Ordering::Acquire);
                        match rendezvous.accept_from(Some(launcher_pid), deadline, gave_up, &mut refused) {
                            Ok(Some(stream)) => {
                                let asker = (launcher.as_str(), 0);
                                if let Err(e) = answer_helper(stream, &[], asker, &handler, &mut attempts, &seen) {
                                    tracing::warn!(%launcher, "askpass relay: {e}");
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                if e.kind() != io::ErrorKind::TimedOut {
                                    tracing::warn!(%launcher, "askpass relay: {e}");
                                }
                                break;
                            }
                        }
                    }
                    if refused > 0 {
                        tracing::warn!(%launcher, refused, "askpass relay: connections from outside the launch refused");
                    }
                })?;
            }
            Via::Terminal(pair) => {
                let pair = pair.clone();
                std::thread::Builder::new().name(name).spawn(move || {
                    if let Err(e) = answer_terminal(&pair, &handler, &launcher, deadline, &seen) {
                        tracing::warn!(%launcher, "terminal relay: {e}");
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Ends the relay: the launcher asks nothing more (the shim connected,
    /// or the launch is over). A private terminal stays open until this is
    /// dropped.
    pub(crate) fn stop(&self) {
        self.seen.stop.store(true, Ordering::Release);
        if let Via::Askpass { files: [entry, socket, dir], .. } = &self.via {
            let _ = std::fs::remove_file(entry);
            let _ = std::fs::remove_file(socket);
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// What happened, for a refusal's message: `""` when nothing was asked.
    /// With a private terminal, what the launcher last wrote there after a
    /// question (read now if the relay's thread has not yet).
    pub(crate) fn outcome(&self) -> String {
        let asked = self.seen.asked.load(Ordering::Acquire);
        let said = match &self.via {
            Via::Terminal(pair) if asked > 0 => {
                let mut buf = [0u8; 1024];
                while let Ok(Some(n @ 1..)) = sys::read_until(&pair.0, &mut buf, Some(Instant::now())) {
                    self.seen.remember(&buf[..n]);
                }
                let said = self.seen.said.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if said.is_empty() { String::new() } else { format!("; it said: {said}") }
            }
            _ => String::new(),
        };
        format!("{}{said}", self.outcome_of_questions(asked))
    }

    fn outcome_of_questions(&self, asked: u32) -> String {
        if self.nobody && asked > 0 {
            "; it asked for a password and no prompt handler was set to answer it".into()
        } else if self.seen.declined.load(Ordering::Acquire) {
            match asked {
                0 | 1 => "; the prompt handler declined to answer".into(),
                n => format!("; the prompt handler answered {} question(s), then declined (a wrong password?)", n - 1),
            }
        } else if asked > 0 {
            format!("; the prompt handler answered {asked} question(s) (a wrong password?)")
        } else {
            String::new()
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asks the handler one question and records it.
fn consult(
    handler: &Bound,
    launcher: &str,
    hop: usize,
    text: String,
    secret: bool,
    attempts: &mut Vec<(String, u32)>,
    seen: &Seen,
) -> Option<Secret> {
    let attempt = match attempts.iter_mut().find(|(t, _)| *t == text) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            attempts.push((text.clone(), 1));
            1
        }
    };
    let prompt = Prompt { launcher: launcher.to_string(), hop, text, secret, attempt };
    tracing::info!(launcher, hop, attempt, secret, "{launcher} asks: {:?}", prompt.text);
    seen.asked.fetch_add(1, Ordering::AcqRel);
    let reply = handler.ask(&prompt).filter(|s| s.expose().len() <= MAX_TEXT);
    if reply.is_none() {
        seen.declined.store(true, Ordering::Release);
        tracing::info!(launcher, "the prompt handler declined");
    }
    reply
}

/// One helper's question: read (after the `prefix` of it already read),
/// asked, answered.
fn answer_helper(
    mut stream: sys::ControlStream,
    prefix: &[u8],
    asker: (&str, usize),
    handler: &Bound,
    attempts: &mut Vec<(String, u32)>,
    seen: &Seen,
) -> io::Result<()> {
    let (launcher, hop) = asker;
    stream.set_read_deadline(Some(Instant::now() + REQUEST_TIMEOUT));
    let mut head = [0u8; 7];
    let had = prefix.len().min(head.len());
    head[..had].copy_from_slice(&prefix[..had]);
    stream.read_exact(&mut head[had..])?;
    if &head[..4] != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not an askpass request"));
    }
    let len = usize::from(u16::from_be_bytes([head[5], head[6]]));
    if len > MAX_TEXT {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "prompt too long"));
    }
    let mut text = vec![0u8; len];
    stream.read_exact(&mut text)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let reply = consult(handler, launcher, hop, text, head[4] & NOT_SECRET == 0, attempts, seen);
    let mut out = Zeroizing::new(Vec::with_capacity(64));
    match &reply {
        Some(secret) => {
            out.push(b'1');
            out.extend_from_slice(secret.expose());
        }
        None => out.push(b'0'),
    }
    stream.write_all(&out)?;
    stream.shutdown();
    Ok(())
}

/// The questions of a hop beyond ssh (sudo on the far host), answered on
/// the shim's own rendezvous: ssh forwards it, and the far sudo's askpass
/// helper, the far shim program told the far socket by
/// [`ASKPASS_SOCKET_VAR`], connects there before the shim does. The
/// rendezvous accepts it as it accepts the shim (a descendant of the
/// launcher: the ssh client), and the handshake tells the two apart by
/// their first bytes.
pub(crate) struct InnerPrompts {
    handler: Bound,
    launcher: String,
    hop: usize,
    attempts: Vec<(String, u32)>,
    seen: Seen,
}

impl InnerPrompts {
    pub(crate) fn new(handler: &Handler, launcher: String, hop: usize) -> Result<InnerPrompts, Error> {
        let handler = handler.bind().map_err(|what| Error::new(ErrorKind::InvalidInput, what, None))?;
        Ok(InnerPrompts { handler, launcher, hop, attempts: Vec::new(), seen: Seen::default() })
    }

    /// Whether a connection's first four bytes are a helper's question.
    pub(crate) fn is_question(first: &[u8]) -> bool {
        first == MAGIC
    }

    /// Answers the question whose first bytes, `first`, were read.
    pub(crate) fn answer(&mut self, stream: sys::ControlStream, first: &[u8]) -> io::Result<()> {
        let asker = (self.launcher.as_str(), self.hop);
        answer_helper(stream, first, asker, &self.handler, &mut self.attempts, &self.seen)
    }

    /// What happened, for a refusal's message.
    pub(crate) fn outcome(&self) -> String {
        let asked = self.seen.asked.load(Ordering::Acquire);
        match (asked, self.seen.declined.load(Ordering::Acquire)) {
            (0, _) => String::new(),
            (_, true) => format!("; {} (hop {}) asked, and the prompt handler declined", self.launcher, self.hop + 1),
            (n, false) => format!(
                "; the prompt handler answered {n} question(s) of {} (hop {}) (a wrong password?)",
                self.launcher,
                self.hop + 1
            ),
        }
    }
}

/// The variable that tells a far askpass helper its socket (the shim's
/// forwarded rendezvous), where it does not run as `umbilical-askpass`.
pub(crate) const ASKPASS_SOCKET_VAR: &str = "UMBILICAL_ASKPASS_SOCKET";

/// What a launcher writes on its private terminal, until the relay stops:
/// a line not ended followed by [`QUIET`] is a question (with the lines
/// before it since the last answer: polkit's agent says who it asks
/// for), secret when the launcher turned echo off.
fn answer_terminal(
    pair: &(sys::Handle, sys::Handle),
    handler: &Bound,
    launcher: &str,
    deadline: Instant,
    seen: &Seen,
) -> io::Result<()> {
    let (ours, theirs) = pair;
    let mut attempts: Vec<(String, u32)> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match sys::read_until(ours, &mut buf, Some((now + QUIET).min(deadline))) {
            Ok(Some(0)) => break,
            Ok(Some(n)) => {
                if seen.asked.load(Ordering::Acquire) > 0 {
                    seen.remember(&buf[..n]);
                }
                pending.extend_from_slice(&buf[..n]);
                if pending.len() > MAX_TEXT {
                    pending.drain(..pending.len() - MAX_TEXT);
                }
            }
            Ok(None) if !pending.is_empty() && pending.last() != Some(&b'\n') => {
                // Carriage returns are the terminal's (readpassphrase starts
                // with one; output processing turns \n into \r\n), not text.
                let text = String::from_utf8_lossy(&pending).replace('\r', "");
                pending.clear();
                let secret = !sys::terminal_echoes(theirs);
                match consult(handler, launcher, 0, text, secret, &mut attempts, seen) {
                    Some(answer) => {
                        let mut typed = Zeroizing::new(answer.expose().to_vec());
                        typed.push(b'\n');
                        sys::write_terminal(ours, &typed)?;
                    }
                    // An interrupt (VINTR): the launcher ends, no attempt.
                    None => sys::write_terminal(ours, b"\x03")?,
                }
            }
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The helper's side, when this process was started as the askpass entry
/// (`argv0`): asks the relay and returns the exit code (0 with the answer
/// on stdout; 1 declined or failed). `None` when `argv0` is not the entry.
///
/// `shim_call`: the arguments are a shim's own (`shim ...`), never a
/// helper's, whatever the environment says.
pub(crate) fn helper(argv0: &Path, args: impl Iterator<Item = OsString>, shim_call: bool) -> Option<i32> {
    let args: Vec<OsString> = args.collect();
    // As `umbilical-askpass` beside its socket; or, on a far host, the
    // shim program itself with the socket in the environment and the
    // prompt as its one argument.
    let socket: PathBuf = sys::askpass_socket(argv0).or_else(|| {
        let [_prompt] = &args[..] else { return None };
        (!shim_call).then(|| std::env::var_os(ASKPASS_SOCKET_VAR).map(PathBuf::from)).flatten()
    })?;
    let text = args.first().cloned().unwrap_or_default().to_string_lossy().into_owned();
    // ssh says what kind of question it is: `confirm` (yes/no: a host key)
    // and `none` (a notice) are not secrets.
    let kind = std::env::var("SSH_ASKPASS_PROMPT").unwrap_or_default();
    let not_secret = kind == "confirm" || kind == "none" || text.contains("(yes/no");
    Some(match ask_relay(&socket, &text, not_secret) {
        Ok(Some(answer)) => {
            let mut stdout = io::stdout().lock();
            let mut line = Zeroizing::new(answer.to_vec());
            line.push(b'\n');
            if stdout.write_all(&line).and_then(|()| stdout.flush()).is_ok() { 0 } else { 1 }
        }
        Ok(None) => 1,
        Err(e) => {
            eprintln!("umbilical askpass: {e}");
            1
        }
    })
}

fn ask_relay(socket: &Path, text: &str, not_secret: bool) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let text = &text.as_bytes()[..text.len().min(MAX_TEXT)];
    let mut stream = sys::connect_rendezvous(socket, Instant::now() + REQUEST_TIMEOUT)?;
    let mut request = Vec::with_capacity(7 + text.len());
    request.extend_from_slice(MAGIC);
    request.push(if not_secret { NOT_SECRET } else { 0 });
    request.extend_from_slice(&(text.len() as u16).to_be_bytes());
    request.extend_from_slice(text);
    stream.write_all(&request)?;
    // The answer takes as long as the handler (a person typing): no
    // deadline here; the relay's own deadline ends the connection.
    let mut reply = Zeroizing::new(Vec::with_capacity(64));
    (&mut stream).take(MAX_TEXT as u64 + 1).read_to_end(&mut reply)?;
    match reply.first() {
        Some(b'1') => Ok(Some(Zeroizing::new(reply[1..].to_vec()))),
        _ => Ok(None),
    }
}
