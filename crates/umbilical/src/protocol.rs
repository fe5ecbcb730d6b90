//! The control protocol between the parent and a shim: framed, versioned,
//! size-bounded messages.
//!
//! A frame is `magic (4) | version (1) | type (1) | payload length (u32 LE)
//! | payload`. The decoder never panics and never allocates more than
//! [`MAX_PAYLOAD`] for a frame, whatever the bytes (it is fuzzed: see
//! `fuzz/`). A peer speaking another version is refused with an error that
//! names both versions.
//!
//! ```
//! use umbilical::protocol::{Message, decode, encode};
//! let spawned = Message::Spawned { pid: 42, host: "linux-x86_64".into() };
//! let frame = encode(&spawned);
//! assert_eq!(decode(&frame).unwrap(), Some((spawned, frame.len())));
//! // An incomplete frame asks for more bytes.
//! assert_eq!(decode(&frame[..5]).unwrap(), None);
//! ```

use std::fmt;

use crate::signal::{Signal, WireSignal};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"UMBL";
/// The protocol version this build speaks.
pub const VERSION: u8 = 6;
/// The largest payload accepted: bounds memory on hostile input, and
/// admits every spawn request an OS can run. Linux caps a program's
/// arguments plus environment at 6 MiB whatever the stack limit (3/4 of
/// `_STK_LIM`; `ARG_MAX` is 2 MiB with the default 8 MiB stack), macOS at
/// 1 MiB, FreeBSD at 4 MiB, and a Windows command line at 32767 UTF-16
/// units; on the wire each string costs 4 bytes of length where the kernel
/// counts a pointer and a NUL, so 16 MiB is ample.
pub const MAX_PAYLOAD: usize = 16 << 20;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 10;

/// How the program ended, as the shim saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl From<WireStatus> for crate::ExitStatus {
    fn from(status: WireStatus) -> Self {
        match status {
            WireStatus::Exited(c) => crate::ExitStatus::Exited(c),
            WireStatus::Signaled(s) => crate::ExitStatus::Signaled(s),
        }
    }
}

/// Where the program's stderr goes, told to a Windows shim.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireStderr {
    /// The shim's own stderr.
    Inherit,
    /// Discarded.
    Null,
    /// Into the channel, with stdout.
    Merge,
    /// A pipe of the parent's, opened by this name.
    Pipe(Vec<u8>),
}

/// One control message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Shim → parent, first: who is speaking.
    Hello {
        /// The shim's process id.
        shim_pid: u32,
        /// The first half of the token the parent wrote into the channel,
        /// read back from the shim's stdin: proof that the shim holds the
        /// program's end (Unix; empty on Windows, where the pipe client's
        /// pid is the proof).
        token: Vec<u8>,
    },
    /// Parent → shim, after a hello it accepted: the second half of the
    /// token, which only the writer of the channel knows. The shim trusts
    /// no request before it (Unix; empty on Windows, where no one but the
    /// parent can hold the one-instance pipe the shim connected to).
    Welcome {
        /// The parent's proof.
        token: Vec<u8>,
    },
    /// Parent → shim: what to start (the launcher may have reset the
    /// environment and changed the directory, so they travel here).
    SpawnRequest {
        /// The program.
        program: Vec<u8>,
        /// Its arguments (without the program).
        args: Vec<Vec<u8>>,
        /// Start from an empty environment.
        env_clear: bool,
        /// Environment changes: `None` removes the variable.
        env: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        /// The working directory.
        cwd: Option<Vec<u8>>,
        /// Start the program in a process group of its own, and send it
        /// the kills the parent asks for as a group (Unix).
        process_group: bool,
        /// When the control stream drops without a [`Message::Detach`] (the
        /// caller died or the link broke), the shim sends the program
        /// SIGTERM and, after this many milliseconds, SIGKILL (Windows:
        /// terminates it at once).
        grace_ms: u32,
    },
    /// Shim → parent: the program runs with this pid.
    Spawned {
        /// The program's process id.
        pid: u32,
        /// The shim's OS and architecture ([`crate::signal::host`]): which
        /// raw signal numbers mean the same there.
        host: String,
    },
    /// Shim → parent: the program could not be started.
    SpawnFailed {
        /// An [`ErrorKind`](crate::ErrorKind) code (see [`kind_code`]).
        kind: u8,
        /// The OS error code, 0 if none.
        os_code: i32,
        /// A human-readable message.
        message: String,
    },
    /// Shim → parent: the program ended.
    Exited {
        /// How.
        status: WireStatus,
    },
    /// Parent → shim: signal (Unix) or terminate (Windows) the program.
    Kill {
        /// The signal, by name where it has one; the shim sends its own
        /// number for it.
        signal: WireSignal,
    },
    /// Parent → shim: the parent holds its own handle on the program now.
    PidConfirmed,
    /// Parent → shim: the caller let go of the program on purpose (dropped
    /// its child without kill-on-drop); when the control stream closes, let
    /// the program run on.
    Detach,
    /// Parent → shim: are you there? The shim answers [`Message::Pong`] at
    /// once while it supervises the program. Asked in band when the
    /// session running the shim ended without a report: a report held up
    /// behind a stalled bridge session is then told apart from a shim that
    /// lives on without its session (version 5).
    Ping,
    /// Shim → parent: the answer to [`Message::Ping`]: the shim runs and
    /// has not reported yet.
    Pong,
    /// Parent → Windows shim, after the request: the channel's pipes to
    /// open by name (UTF-16LE bytes), so no byte is relayed through the
    /// shim. Unix shims get the channel as their own stdin/stdout instead.
    Stdio {
        /// The pipe the program reads as stdin.
        stdin: Vec<u8>,
        /// The pipe the program writes as stdout.
        stdout: Vec<u8>,
        /// Where stderr goes.
        stderr: WireStderr,
        /// The parent's working directory, for a request without one: the
        /// shim uses it if it is a directory there (an elevated process
        /// starts in the system directory, and may not see mapped drives).
        default_cwd: Option<Vec<u8>>,
    },
    /// Parent → shim, instead of a [`Message::SpawnRequest`]: serve a
    /// session ([`Session`](crate::Session)) on this link. The shim answers
    /// [`Message::Spawned`] with its own pid, waits for
    /// [`Message::PidConfirmed`], then starts a program for each
    /// [`Message::SessionSpawn`] until the link closes (or a
    /// [`Message::Kill`] or [`Message::Detach`] comes, or it was idle
    /// `idle_ms`), ends the programs still running (SIGTERM, `grace_ms`,
    /// SIGKILL) and reports [`Message::Exited`] (version 6).
    SessionOpen {
        /// With no program running for this long the session closes; 0
        /// never.
        idle_ms: u32,
        /// Between the SIGTERM and the SIGKILL that end the programs
        /// still running when the session closes.
        grace_ms: u32,
    },
    /// Parent → session shim: start a program. Carries four descriptors
    /// (Unix, `SCM_RIGHTS`): the program's own control stream, on which
    /// the parent then speaks as to a shim of its own (the request, the
    /// spawn result, kills, the report), and the program's stdin, stdout
    /// and stderr (version 6).
    SessionSpawn,
    /// Parent → Windows session shim: start a program, whose own
    /// rendezvous is this named pipe (UTF-16LE bytes). The session's shim
    /// connects to it as a program's own shim would (its pid is the proof)
    /// and is then served as one: the request, the pipe names, the spawn
    /// result, kills, the report (version 6).
    SessionConnect {
        /// The program's rendezvous pipe.
        rendezvous: Vec<u8>,
    },
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame does not start with [`MAGIC`]: not our protocol.
    BadMagic,
    /// The peer speaks another version.
    VersionMismatch {
        /// The version the peer sent.
        theirs: u8,
        /// [`VERSION`].
        ours: u8,
    },
    /// The payload is longer than [`MAX_PAYLOAD`].
    TooLarge(u64),
    /// An unknown message type.
    UnknownType(u8),
    /// The payload does not match its type.
    Malformed(&'static str),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::BadMagic => write!(f, "not an umbilical control frame (bad magic)"),
            ProtocolError::VersionMismatch { theirs, ours } => {
                write!(
                    f,
                    "control protocol version mismatch: the peer speaks version {theirs}, this build speaks {ours}"
                )
            }
            ProtocolError::TooLarge(n) => write!(f, "control frame of {n} bytes exceeds the {MAX_PAYLOAD}-byte limit"),
            ProtocolError::UnknownType(t) => write!(f, "unknown control message type {t}"),
            ProtocolError::Malformed(what) => write!(f, "malformed control message: {what}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The wire code of an error kind (stable across versions).
pub fn kind_code(kind: crate::ErrorKind) -> u8 {
    use crate::ErrorKind::*;
    match kind {
        NotFound => 1,
        NotExecutable => 2,
        InvalidInput => 3,
        Spawn => 4,
        Io => 5,
        LauncherNotFound => 6,
        LauncherRefused => 7,
        ShimFailed => 8,
        Protocol => 9,
        TimedOut => 10,
        SessionClosed => 11,
    }
}

/// The error kind of a wire code; unknown codes are [`ErrorKind::Spawn`](crate::ErrorKind::Spawn).
pub fn kind_from_code(code: u8) -> crate::ErrorKind {
    use crate::ErrorKind::*;
    match code {
        1 => NotFound,
        2 => NotExecutable,
        3 => InvalidInput,
        5 => Io,
        6 => LauncherNotFound,
        7 => LauncherRefused,
        8 => ShimFailed,
        9 => Protocol,
        10 => TimedOut,
        11 => SessionClosed,
        _ => Spawn,
    }
}

mod ty {
    pub const HELLO: u8 = 1;
    pub const SPAWN_REQUEST: u8 = 2;
    pub const SPAWNED: u8 = 3;
    pub const SPAWN_FAILED: u8 = 4;
    pub const EXITED: u8 = 5;
    pub const KILL: u8 = 6;
    pub const PID_CONFIRMED: u8 = 7;
    pub const STDIO: u8 = 8;
    pub const WELCOME: u8 = 9;
    pub const DETACH: u8 = 10;
    pub const PING: u8 = 11;
    pub const PONG: u8 = 12;
    pub const SESSION_OPEN: u8 = 13;
    pub const SESSION_SPAWN: u8 = 14;
    pub const SESSION_CONNECT: u8 = 15;
}

/// Encodes one message as a frame.
///
/// # Panics
/// If the message's payload would exceed [`MAX_PAYLOAD`] (a request with
/// more arguments and environment than any OS runs); use [`try_encode`] to
/// get an error instead.
pub fn encode(msg: &Message) -> Vec<u8> {
    try_encode(msg).expect("control message within MAX_PAYLOAD")
}

/// Encodes one message as a frame, or fails if it is too large.
pub fn try_encode(msg: &Message) -> Result<Vec<u8>, ProtocolError> {
    let mut p = Vec::new();
    let t = match msg {
        Message::Hello { shim_pid, token } => {
            p.extend_from_slice(&shim_pid.to_le_bytes());
            put_bytes(&mut p, token);
            ty::HELLO
        }
        Message::Welcome { token } => {
            put_bytes(&mut p, token);
            ty::WELCOME
        }
        Message::SpawnRequest { program, args, env_clear, env, cwd, process_group, grace_ms } => {
            put_bytes(&mut p, program);
            put_u32(&mut p, args.len());
            for a in args {
                put_bytes(&mut p, a);
            }
            p.push(u8::from(*env_clear));
            put_u32(&mut p, env.len());
            for (k, v) in env {
                put_bytes(&mut p, k);
                match v {
                    Some(v) => {
                        p.push(1);
                        put_bytes(&mut p, v);
                    }
                    None => p.push(0),
                }
            }
            match cwd {
                Some(c) => {
                    p.push(1);
                    put_bytes(&mut p, c);
                }
                None => p.push(0),
            }
            p.push(u8::from(*process_group));
            p.extend_from_slice(&grace_ms.to_le_bytes());
            ty::SPAWN_REQUEST
        }
        Message::Spawned { pid, host } => {
            p.extend_from_slice(&pid.to_le_bytes());
            put_bytes(&mut p, host.as_bytes());
            ty::SPAWNED
        }
        Message::SpawnFailed { kind, os_code, message } => {
            p.push(*kind);
            p.extend_from_slice(&os_code.to_le_bytes());
            put_bytes(&mut p, message.as_bytes());
            ty::SPAWN_FAILED
        }
        Message::Exited { status } => {
            let (tag, n) = match status {
                WireStatus::Exited(n) => (0u8, *n),
                WireStatus::Signaled(n) => (1u8, *n),
            };
            p.push(tag);
            p.extend_from_slice(&n.to_le_bytes());
            ty::EXITED
        }
        Message::Kill { signal } => {
            match signal {
                WireSignal::Named(sig) => {
                    p.push(0);
                    p.push(sig.code());
                }
                WireSignal::Raw { host, number } => {
                    p.push(1);
                    put_bytes(&mut p, host.as_bytes());
                    p.extend_from_slice(&number.to_le_bytes());
                }
            }
            ty::KILL
        }
        Message::PidConfirmed => ty::PID_CONFIRMED,
        Message::Detach => ty::DETACH,
        Message::Ping => ty::PING,
        Message::Pong => ty::PONG,
        Message::SessionOpen { idle_ms, grace_ms } => {
            p.extend_from_slice(&idle_ms.to_le_bytes());
            p.extend_from_slice(&grace_ms.to_le_bytes());
            ty::SESSION_OPEN
        }
        Message::SessionSpawn => ty::SESSION_SPAWN,
        Message::SessionConnect { rendezvous } => {
            put_bytes(&mut p, rendezvous);
            ty::SESSION_CONNECT
        }
        Message::Stdio { stdin, stdout, stderr, default_cwd } => {
            put_bytes(&mut p, stdin);
            put_bytes(&mut p, stdout);
            match stderr {
                WireStderr::Inherit => p.push(0),
                WireStderr::Null => p.push(1),
                WireStderr::Merge => p.push(2),
                WireStderr::Pipe(name) => {
                    p.push(3);
                    put_bytes(&mut p, name);
                }
            }
            match default_cwd {
                Some(c) => {
                    p.push(1);
                    put_bytes(&mut p, c);
                }
                None => p.push(0),
            }
            ty::STDIO
        }
    };
    if p.len() > MAX_PAYLOAD {
        return Err(ProtocolError::TooLarge(p.len() as u64));
    }
    let mut frame = Vec::with_capacity(HEADER_LEN + p.len());
    frame.extend_from_slice(&MAGIC);
    frame.push(VERSION);
    frame.push(t);
    frame.extend_from_slice(&(p.len() as u32).to_le_bytes());
    frame.extend_from_slice(&p);
    Ok(frame)
}

fn put_u32(p: &mut Vec<u8>, n: usize) {
    p.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(p: &mut Vec<u8>, b: &[u8]) {
    put_u32(p, b.len());
    p.extend_from_slice(b);
}

/// Decodes the first frame in `buf`: `Ok(None)` if more bytes are needed,
/// else the message and how many bytes it used. Checks the header as soon
/// as it is complete, so a bad peer is refused without waiting for a
/// payload it announced.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, ProtocolError> {
    let magic_len = buf.len().min(4);
    if buf[..magic_len] != MAGIC[..magic_len] {
        return Err(ProtocolError::BadMagic);
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[4] != VERSION {
        return Err(ProtocolError::VersionMismatch { theirs: buf[4], ours: VERSION });
    }
    let t = buf[5];
    let len = u32::from_le_bytes([buf[6], buf[7], buf[8], buf[9]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(ProtocolError::TooLarge(len as u64));
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else { return Ok(None) };
    let mut r = Reader(payload);
    let msg = match t {
        ty::HELLO => Message::Hello { shim_pid: r.u32()?, token: r.bytes()? },
        ty::WELCOME => Message::Welcome { token: r.bytes()? },
        ty::SPAWN_REQUEST => {
            let program = r.bytes()?;
            let n = r.count()?;
            let mut args = Vec::new();
            for _ in 0..n {
                args.push(r.bytes()?);
            }
            let env_clear = r.flag()?;
            let n = r.count()?;
            let mut env = Vec::new();
            for _ in 0..n {
                let k = r.bytes()?;
                let v = if r.flag()? { Some(r.bytes()?) } else { None };
                env.push((k, v));
            }
            let cwd = if r.flag()? { Some(r.bytes()?) } else { None };
            let process_group = r.flag()?;
            let grace_ms = r.u32()?;
            Message::SpawnRequest { program, args, env_clear, env, cwd, process_group, grace_ms }
        }
        ty::SPAWNED => Message::Spawned { pid: r.u32()?, host: r.string("host is not UTF-8")? },
        ty::SPAWN_FAILED => {
            let kind = r.u8()?;
            let os_code = r.u32()? as i32;
            let message = r.string("message is not UTF-8")?;
            Message::SpawnFailed { kind, os_code, message }
        }
        ty::EXITED => {
            let tag = r.u8()?;
            let n = r.u32()? as i32;
            let status = match tag {
                0 => WireStatus::Exited(n),
                1 => WireStatus::Signaled(n),
                _ => return Err(ProtocolError::Malformed("unknown status tag")),
            };
            Message::Exited { status }
        }
        ty::KILL => {
            let signal = match r.u8()? {
                0 => WireSignal::Named(
                    Signal::from_code(r.u8()?).ok_or(ProtocolError::Malformed("unknown signal name"))?,
                ),
                1 => WireSignal::Raw { host: r.string("host is not UTF-8")?, number: r.u32()? as i32 },
                _ => return Err(ProtocolError::Malformed("unknown signal tag")),
            };
            Message::Kill { signal }
        }
        ty::PID_CONFIRMED => Message::PidConfirmed,
        ty::DETACH => Message::Detach,
        ty::SESSION_OPEN => Message::SessionOpen { idle_ms: r.u32()?, grace_ms: r.u32()? },
        ty::SESSION_SPAWN => Message::SessionSpawn,
        ty::SESSION_CONNECT => Message::SessionConnect { rendezvous: r.bytes()? },
        ty::PING => Message::Ping,
        ty::PONG => Message::Pong,
        ty::STDIO => {
            let stdin = r.bytes()?;
            let stdout = r.bytes()?;
            let stderr = match r.u8()? {
                0 => WireStderr::Inherit,
                1 => WireStderr::Null,
                2 => WireStderr::Merge,
                3 => WireStderr::Pipe(r.bytes()?),
                _ => return Err(ProtocolError::Malformed("unknown stderr tag")),
            };
            let default_cwd = if r.flag()? { Some(r.bytes()?) } else { None };
            Message::Stdio { stdin, stdout, stderr, default_cwd }
        }
        other => return Err(ProtocolError::UnknownType(other)),
    };
    if !r.0.is_empty() {
        return Err(ProtocolError::Malformed("trailing bytes after the message"));
    }
    Ok(Some((msg, HEADER_LEN + len)))
}

/// Sends one message. On Unix the stream is std's `UnixStream`, whose
/// writes carry `MSG_NOSIGNAL` (std documents it): a vanished peer is
/// `BrokenPipe`, never a SIGPIPE, also in a host whose SIGPIPE is at its
/// default (tested: `peer_cpython::sigpipe_default_host_dead_shim`).
pub(crate) fn send(stream: &mut impl std::io::Write, msg: &Message) -> std::io::Result<()> {
    let frame = try_encode(msg).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    stream.write_all(&frame)
}

/// Reads one message; `buf` keeps bytes that belong to the next one.
pub(crate) fn recv(stream: &mut impl std::io::Read, buf: &mut Vec<u8>) -> std::io::Result<Message> {
    loop {
        if let Some(msg) = take_message(buf)? {
            return Ok(msg);
        }
        // Read straight into `buf`, in steps large enough that a request
        // of several mebibytes of arguments takes few reads.
        let start = buf.len();
        buf.resize(start + 64 * 1024, 0);
        let n = stream.read(&mut buf[start..]);
        buf.truncate(start + *n.as_ref().unwrap_or(&0));
        if n? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the control stream closed"));
        }
    }
}

/// Takes the first whole message out of `buf`, if it holds one.
pub(crate) fn take_message(buf: &mut Vec<u8>) -> std::io::Result<Option<Message>> {
    match decode(buf) {
        Ok(Some((msg, used))) => {
            buf.drain(..used);
            Ok(Some(msg))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
    }
}

/// A cursor over a payload; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ProtocolError> {
        if n > self.0.len() {
            return Err(ProtocolError::Malformed("field runs past the end of the payload"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn flag(&mut self) -> Result<bool, ProtocolError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtocolError::Malformed("flag is neither 0 nor 1")),
        }
    }

    /// A count of items that each take at least 4 bytes: bounded by what
    /// is left, so a hostile count cannot drive a huge loop or allocation.
    fn count(&mut self) -> Result<usize, ProtocolError> {
        let n = self.u32()? as usize;
        if n > self.0.len() / 4 {
            return Err(ProtocolError::Malformed("item count exceeds the payload"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, ProtocolError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self, malformed: &'static str) -> Result<String, ProtocolError> {
        String::from_utf8(self.bytes()?).map_err(|_| ProtocolError::Malformed(malformed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message() -> impl Strategy<Value = Message> {
        let bytes = || prop::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            (any::<u32>(), bytes()).prop_map(|(shim_pid, token)| Message::Hello { shim_pid, token }),
            bytes().prop_map(|token| Message::Welcome { token }),
            Just(Message::Detach),
            Just(Message::Ping),
            Just(Message::Pong),
            Just(Message::SessionSpawn),
            bytes().prop_map(|rendezvous| Message::SessionConnect { rendezvous }),
            (any::<u32>(), any::<u32>()).prop_map(|(idle_ms, grace_ms)| Message::SessionOpen { idle_ms, grace_ms }),
            (
                bytes(),
                prop::collection::vec(bytes(), 0..5),
                any::<bool>(),
                prop::collection::vec((bytes(), prop::option::of(bytes())), 0..5),
                prop::option::of(bytes()),
                any::<bool>(),
                any::<u32>()
            )
                .prop_map(|(program, args, env_clear, env, cwd, process_group, grace_ms)| {
                    Message::SpawnRequest { program, args, env_clear, env, cwd, process_group, grace_ms }
                }),
            (any::<u32>(), ".{0,20}").prop_map(|(pid, host)| Message::Spawned { pid, host }),
            (any::<u8>(), any::<i32>(), ".{0,40}").prop_map(|(kind, os_code, message)| Message::SpawnFailed {
                kind,
                os_code,
                message
            }),
            any::<i32>().prop_map(|n| Message::Exited { status: WireStatus::Exited(n) }),
            any::<i32>().prop_map(|n| Message::Exited { status: WireStatus::Signaled(n) }),
            prop::sample::select(Signal::ALL.to_vec()).prop_map(|sig| Message::Kill { signal: WireSignal::Named(sig) }),
            (".{0,20}", any::<i32>())
                .prop_map(|(host, number)| Message::Kill { signal: WireSignal::Raw { host, number } }),
            Just(Message::PidConfirmed),
            (
                bytes(),
                bytes(),
                prop_oneof![
                    Just(WireStderr::Inherit),
                    Just(WireStderr::Null),
                    Just(WireStderr::Merge),
                    bytes().prop_map(WireStderr::Pipe)
                ],
                prop::option::of(bytes())
            )
                .prop_map(|(stdin, stdout, stderr, default_cwd)| Message::Stdio {
                    stdin,
                    stdout,
                    stderr,
                    default_cwd
                }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(msg in message(), extra in prop::collection::vec(any::<u8>(), 0..8)) {
            let mut frame = encode(&msg);
            let len = frame.len();
            // Every proper prefix asks for more; the whole frame decodes.
            for cut in 0..len {
                prop_assert_eq!(decode(&frame[..cut]), Ok(None));
            }
            frame.extend_from_slice(&extra);
            prop_assert_eq!(decode(&frame), Ok(Some((msg, len))));
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&buf);
            let mut framed = MAGIC.to_vec();
            framed.push(VERSION);
            framed.extend_from_slice(&buf);
            let _ = decode(&framed);
        }
    }

    #[test]
    fn refusals_are_specific() {
        assert_eq!(decode(b"HTTP/1.1"), Err(ProtocolError::BadMagic));
        assert_eq!(decode(b"UM"), Ok(None));
        let mut frame = encode(&Message::PidConfirmed);
        frame[4] = 9;
        let err = decode(&frame).unwrap_err();
        assert_eq!(err, ProtocolError::VersionMismatch { theirs: 9, ours: VERSION });
        assert!(err.to_string().contains("version 9") && err.to_string().contains(&format!("speaks {VERSION}")));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&[VERSION, ty::HELLO]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), Err(ProtocolError::TooLarge(u32::MAX as u64)));
        let mut unknown = encode(&Message::PidConfirmed);
        unknown[5] = 200;
        assert_eq!(decode(&unknown), Err(ProtocolError::UnknownType(200)));
        // A count claiming more items than the payload could hold.
        let mut lying = MAGIC.to_vec();
        lying.extend_from_slice(&[VERSION, ty::SPAWN_REQUEST, 12, 0, 0, 0]);
        lying.extend_from_slice(&0u32.to_le_bytes()); // empty program
        lying.extend_from_slice(&u32::MAX.to_le_bytes()); // args count
        lying.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(decode(&lying), Err(ProtocolError::Malformed(_))));
        // A signal name this version does not know is refused, not taken
        // for another.
        let mut kill = encode(&Message::Kill { signal: WireSignal::Named(Signal::Term) });
        let last = kill.len() - 1;
        kill[last] = 0;
        assert_eq!(decode(&kill), Err(ProtocolError::Malformed("unknown signal name")));
        kill[last] = Signal::ALL.len() as u8 + 1;
        assert_eq!(decode(&kill), Err(ProtocolError::Malformed("unknown signal name")));
        kill[last - 1] = 7;
        assert_eq!(decode(&kill), Err(ProtocolError::Malformed("unknown signal tag")));
    }
}
