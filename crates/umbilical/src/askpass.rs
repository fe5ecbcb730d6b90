//! The askpass relay: how a launcher's password prompt reaches the
//! caller's [prompt handler](crate::Command::prompt_handler) without a
//! terminal, for the launchers that take an askpass helper (sudo `-A` with
//! `SUDO_ASKPASS`, ssh with `SSH_ASKPASS` and `SSH_ASKPASS_REQUIRE=force`).
//!
//! The helper is the shim program itself, started by the launcher (as the
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
//! Wire format (one exchange per connection): the helper sends `UASK`, a
//! flags byte (bit 0: the answer is not secret), the prompt's length (u16,
//! big endian) and the prompt; the relay answers `1` and the answer, or
//! `0` (declined), and closes.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::launcher::PromptRoute;
use crate::prompt::{Bound, Handler, Prompt};
use crate::sys;

const MAGIC: &[u8; 4] = b"UASK";
/// The flags bit for a question whose answer is not secret.
const NOT_SECRET: u8 = 1;
/// The longest prompt and the longest answer carried.
const MAX_TEXT: usize = 4096;
/// How long a connected helper has to send its question.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the relay saw, for the launch's error when the launcher refused.
#[derive(Default)]
struct Seen {
    stop: AtomicBool,
    asked: AtomicU32,
    declined: AtomicBool,
}

/// A relay for one launch: its rendezvous until [`Relay::serve`] hands it
/// to the thread, the environment the launcher needs, and what was seen.
/// Dropping it removes its directory at once (no helper can connect after
/// that) and ends the thread at its next look, within 100 ms (a handler
/// already asked finishes first).
pub(crate) struct Relay {
    rendezvous: Option<sys::Rendezvous>,
    /// The entry and the socket, then their directory: removed on drop,
    /// also when the process exits before the thread's next look.
    files: [PathBuf; 3],
    handler: Option<Bound>,
    launcher: String,
    deadline: Instant,
    seen: Arc<Seen>,
    env: Vec<(OsString, OsString)>,
}

impl Relay {
    /// Prepares a relay for `route`; `program` is the shim program (the
    /// helper). Fails for an async handler outside a runtime, and where
    /// the OS has no relay (Windows).
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
            move |e: io::Error| Error::new(ErrorKind::Io, format!("the askpass relay: {what}: {e}"), Some(e))
        };
        let mut rendezvous = sys::Rendezvous::create(None).map_err(io_fail("cannot create its directory"))?;
        let entry = rendezvous.place_askpass(program).map_err(io_fail("cannot place the helper"))?;
        let socket = rendezvous.path();
        let dir = socket.parent().map(Path::to_path_buf).unwrap_or_default();
        let files = [entry.clone(), socket, dir];
        let env = match route {
            PromptRoute::SudoAskpass => vec![("SUDO_ASKPASS".into(), entry.into_os_string())],
            PromptRoute::SshAskpass => vec![
                ("SSH_ASKPASS".into(), entry.into_os_string()),
                // OpenSSH 8.4 and later: the helper even without a display
                // and even with a terminal.
                ("SSH_ASKPASS_REQUIRE".into(), "force".into()),
            ],
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{launcher}: its prompts are not relayed through an askpass helper ({other:?})"),
                    None,
                ));
            }
        };
        Ok(Relay {
            rendezvous: Some(rendezvous),
            files,
            handler: Some(handler),
            launcher,
            deadline,
            seen: Arc::default(),
            env,
        })
    }

    /// The environment the launcher is started with.
    pub(crate) fn env(&self) -> &[(OsString, OsString)] {
        &self.env
    }

    /// Starts answering helpers that descend from `launcher_pid`, on a
    /// thread that ends when this is dropped or at the deadline.
    pub(crate) fn serve(&mut self, launcher_pid: u32) -> io::Result<()> {
        let (Some(mut rendezvous), Some(handler)) = (self.rendezvous.take(), self.handler.take()) else {
            return Ok(());
        };
        let seen = self.seen.clone();
        let launcher = self.launcher.clone();
        let deadline = self.deadline;
        std::thread::Builder::new().name("umbilical-askpass".into()).spawn(move || {
            let mut attempts: Vec<(String, u32)> = Vec::new();
            let mut refused = 0;
            loop {
                let gave_up = || seen.stop.load(Ordering::Acquire);
                match rendezvous.accept_from(Some(launcher_pid), deadline, gave_up, &mut refused) {
                    Ok(Some(stream)) => {
                        if let Err(e) = answer(stream, &handler, &launcher, &mut attempts, &seen) {
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
        Ok(())
    }

    /// What happened, for a refusal's message: `""` when nothing was asked.
    pub(crate) fn outcome(&self) -> String {
        let asked = self.seen.asked.load(Ordering::Acquire);
        if self.seen.declined.load(Ordering::Acquire) {
            "; the prompt handler declined to answer".into()
        } else if asked > 0 {
            format!("; the prompt handler answered {asked} question(s) (a wrong password?)")
        } else {
            String::new()
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.seen.stop.store(true, Ordering::Release);
        let [entry, socket, dir] = &self.files;
        let _ = std::fs::remove_file(entry);
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::remove_dir(dir);
    }
}

/// One helper's question: read, asked, answered.
fn answer(
    mut stream: sys::ControlStream,
    handler: &Bound,
    launcher: &str,
    attempts: &mut Vec<(String, u32)>,
    seen: &Seen,
) -> io::Result<()> {
    stream.set_read_deadline(Some(Instant::now() + REQUEST_TIMEOUT));
    let mut head = [0u8; 7];
    stream.read_exact(&mut head)?;
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
    let prompt = Prompt { launcher: launcher.to_string(), hop: 0, text, secret: head[4] & NOT_SECRET == 0, attempt };
    tracing::info!(launcher, attempt, secret = prompt.secret, "{launcher} asks: {:?}", prompt.text);
    seen.asked.fetch_add(1, Ordering::AcqRel);
    let reply = handler.ask(&prompt);
    let mut out = Zeroizing::new(Vec::with_capacity(64));
    match &reply {
        Some(secret) if secret.expose().len() <= MAX_TEXT => {
            out.push(b'1');
            out.extend_from_slice(secret.expose());
        }
        _ => {
            seen.declined.store(true, Ordering::Release);
            tracing::info!(launcher, "the prompt handler declined");
            out.push(b'0');
        }
    }
    stream.write_all(&out)?;
    stream.shutdown();
    Ok(())
}

/// The helper's side, when this process was started as the askpass entry
/// (`argv0`): asks the relay and returns the exit code (0 with the answer
/// on stdout; 1 declined or failed). `None` when `argv0` is not the entry.
pub(crate) fn helper(argv0: &Path, mut args: impl Iterator<Item = OsString>) -> Option<i32> {
    let socket: PathBuf = sys::askpass_socket(argv0)?;
    let text = args.next().unwrap_or_default().to_string_lossy().into_owned();
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
