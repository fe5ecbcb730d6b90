//! The native half of the `umbilical` Node.js package: `index.js` wraps it
//! in a `stream.Duplex`, a Promise of the exit and Node-style names.
//!
//! Every child lives on napi-rs's one tokio runtime (its worker threads are
//! shared by all children: no thread per child). Each operation JavaScript
//! asks for is a future on that runtime whose result comes back as a
//! Promise through a napi threadsafe function. A child is owned by one
//! task that waits for its end and takes signal requests, so a kill never
//! waits for a pending wait to let go of the child.
//!
//! Errors reach JavaScript as `umbilical:<Kind>: <message>`; `index.js`
//! turns that into an `Error` whose `code` is the kind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{Buffer, Promise, PromiseRaw};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc, oneshot};
use umbilical::tokio as uasync;
use umbilical::{ChannelKind, Command, ErrorKind, Launcher, Secret, ShimMode, Stderr};

/// The options `index.js` passes on, already checked and defaulted there.
#[napi(object)]
pub struct NativeOptions {
    /// Launcher specs, outer first (`["ssh:ops@db1", "sudo"]`); none is direct.
    pub via: Vec<String>,
    /// When set, the program's whole environment (as `child_process`).
    pub env: Option<HashMap<String, String>>,
    pub cwd: Option<String>,
    /// `inherit`, `pipe`, `ignore` or `merge`.
    pub stderr: String,
    /// `socket` or `pipes`.
    pub channel: String,
    /// `auto`, `on` or `off`.
    pub shim: String,
    /// How long the shim may take to connect and report (ms).
    pub connect_timeout_ms: Option<u32>,
    /// The program leads a process group of its own.
    pub process_group: bool,
    /// Unix: hand the channel's descriptors to Node's event loop (else
    /// every read and write goes through this runtime, as on Windows).
    pub hand_out_fds: bool,
    /// The shim where the launcher runs it (`Command::shim_path`).
    pub shim_path: Option<String>,
    /// A shim binary to copy where none is (`Command::shim_source`).
    pub shim_source: Option<String>,
}

/// A launcher's question, as the `askpass` callback receives it.
#[napi(object)]
pub struct NativePrompt {
    pub launcher: String,
    pub hop: u32,
    pub text: String,
    pub secret: bool,
    pub attempt: u32,
}

/// How the program ended.
#[napi(object)]
pub struct NativeExit {
    /// The exit code; none when signalled or unknown.
    pub code: Option<i32>,
    /// The terminating signal's number; none when it exited.
    pub signal: Option<i32>,
    /// How the end was seen: `process`, `shim`, `shim-lost`, `lifeline`, `channel`.
    pub detection: String,
    /// Whether the status should have been known but was lost.
    pub status_lost: bool,
    /// The library's words for it ("exit code 3", "killed by signal 9").
    pub description: String,
}

/// The `askpass` callback: called on Node's thread with the prompt,
/// returning a Promise of the answer (`index.js` makes every answer one).
type Askpass = ThreadsafeFunction<NativePrompt, Promise<Option<String>>, NativePrompt, Status, false, true>;

enum Control {
    Signal(i32, oneshot::Sender<std::io::Result<()>>),
    Kill(oneshot::Sender<std::io::Result<()>>),
}

/// A started program: its channel's halves, its stderr, and the task that
/// owns it.
#[napi]
pub struct NativeChild {
    /// Unix: the channel's descriptors `(read, write)`, until JavaScript
    /// takes them for its own sockets.
    /// Closed with the child if never taken.
    fds: std::sync::Mutex<Option<Fds>>,
    pid: Option<u32>,
    reader: Arc<Mutex<Option<uasync::ReadHalf>>>,
    writer: Arc<Mutex<Option<uasync::WriteHalf>>>,
    stderr: Arc<Mutex<Option<uasync::ChildStderr>>>,
    control: mpsc::UnboundedSender<Control>,
    exit: Arc<Mutex<Option<oneshot::Receiver<std::io::Result<umbilical::Exit>>>>>,
    shim_origin: Option<String>,
}

fn fail(kind: ErrorKind, message: impl std::fmt::Display) -> napi::Error {
    napi::Error::new(Status::GenericFailure, format!("umbilical:{kind:?}: {message}"))
}

fn from_error(e: umbilical::Error) -> napi::Error {
    fail(e.kind(), e)
}

fn from_io(e: std::io::Error) -> napi::Error {
    // An io::Error made from the library's Error keeps its kind.
    let kind = e.get_ref().and_then(|inner| inner.downcast_ref::<umbilical::Error>()).map(umbilical::Error::kind);
    fail(kind.unwrap_or(ErrorKind::Io), e)
}

fn command(program: String, args: Vec<String>, o: NativeOptions, askpass: Option<Askpass>) -> napi::Result<Command> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if !o.via.is_empty() {
        cmd.launcher(Launcher::from_specs(&o.via).map_err(from_error)?);
    }
    if let Some(env) = o.env {
        cmd.env_clear().envs(env);
    }
    if let Some(cwd) = o.cwd {
        cmd.current_dir(cwd);
    }
    cmd.stderr(match o.stderr.as_str() {
        "inherit" => Stderr::Inherit,
        "pipe" => Stderr::Piped,
        "ignore" => Stderr::Null,
        "merge" => Stderr::Merge,
        other => {
            return Err(fail(
                ErrorKind::InvalidInput,
                format!("stderr: {other:?} is not inherit, pipe, ignore or merge"),
            ));
        }
    });
    cmd.channel_kind(match o.channel.as_str() {
        "socket" => ChannelKind::Socket,
        "pipes" => ChannelKind::Pipes,
        other => return Err(fail(ErrorKind::InvalidInput, format!("channel: {other:?} is not socket or pipes"))),
    });
    cmd.shim(match o.shim.as_str() {
        "auto" => ShimMode::Auto,
        "on" => ShimMode::On,
        "off" => ShimMode::Off,
        other => return Err(fail(ErrorKind::InvalidInput, format!("shim: {other:?} is not auto, on or off"))),
    });
    if let Some(ms) = o.connect_timeout_ms {
        cmd.connect_timeout(Duration::from_millis(ms.into()));
    }
    if let Some(path) = o.shim_path {
        cmd.shim_path(path);
    }
    if let Some(source) = o.shim_source {
        cmd.shim_source(source);
    }
    cmd.process_group(o.process_group);
    if let Some(askpass) = askpass {
        let askpass = Arc::new(askpass);
        cmd.prompt_handler_async(move |p| {
            let askpass = askpass.clone();
            async move {
                let prompt = NativePrompt {
                    launcher: p.launcher,
                    hop: p.hop.try_into().unwrap_or(u32::MAX),
                    text: p.text,
                    secret: p.secret,
                    attempt: p.attempt,
                };
                // A callback that throws or rejects declines: the launcher
                // then refuses, as for a `null` answer.
                let answer = askpass.call_async(prompt).await.ok()?;
                answer.await.ok().flatten().map(Secret::new)
            }
        });
    }
    Ok(cmd)
}

/// Starts `program` with `args`; resolves to the started child.
#[napi]
pub async fn spawn(
    program: String,
    args: Vec<String>,
    options: NativeOptions,
    askpass: Option<Askpass>,
) -> napi::Result<NativeChild> {
    let hand_out_fds = options.hand_out_fds;
    let cmd = command(program, args, options, askpass)?;
    let mut child = cmd.spawn_async().await.map_err(from_error)?;
    let pid = child.id();
    let shim_origin = child.shim_origin().map(str::to_string);
    let (channel, fds) = match child.take_channel() {
        channel if hand_out_fds => hand_out(channel),
        channel => (channel, None),
    };
    let (reader, writer) = match channel {
        Some(channel) => {
            let (r, w) = channel.split();
            (Some(r), Some(w))
        }
        None => (None, None),
    };
    let stderr = child.take_stderr();
    let (control, mut requests) = mpsc::unbounded_channel();
    let (exited, exit) = oneshot::channel();
    tokio::spawn(async move {
        let result = loop {
            tokio::select! {
                result = child.wait() => break result,
                Some(request) = requests.recv() => match request {
                    Control::Signal(sig, reply) => { let _ = reply.send(child.signal(sig)); }
                    Control::Kill(reply) => { let _ = reply.send(child.start_kill()); }
                },
            }
        };
        let _ = exited.send(result);
        // Requests after the end: the program is gone.
        while let Some(request) = requests.recv().await {
            let reply = match request {
                Control::Signal(_, reply) | Control::Kill(reply) => reply,
            };
            let _ = reply.send(Err(std::io::Error::other("the program has already ended")));
        }
    });
    Ok(NativeChild {
        fds: std::sync::Mutex::new(fds),
        pid,
        reader: Arc::new(Mutex::new(reader)),
        writer: Arc::new(Mutex::new(writer)),
        stderr: Arc::new(Mutex::new(stderr)),
        control,
        exit: Arc::new(Mutex::new(Some(exit))),
        shim_origin,
    })
}

#[napi]
impl NativeChild {
    /// The program's pid where it is known (through ssh or a container:
    /// the shim's report, else none).
    #[napi(getter)]
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Unix: the channel's descriptors `[read, write]`, once: from then on
    /// they are JavaScript's (`net.Socket` on each, on Node's own event
    /// loop, as `child_process` does), and `read`/`write` here see none.
    #[napi]
    pub fn take_fds(&self) -> Option<Vec<i32>> {
        let fds = self.fds.lock().ok()?.take()?;
        Some(raw(fds))
    }

    /// Where the shim came from and ran, when one was used.
    #[napi(getter)]
    pub fn shim_origin(&self) -> Option<String> {
        self.shim_origin.clone()
    }

    /// Reads up to `max` bytes of the program's output; `null` at its end.
    #[napi]
    pub fn read<'env>(&self, env: &'env Env, max: u32) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let reader = self.reader.clone();
        env.spawn_future(async move {
            let mut reader = reader.lock().await;
            let Some(reader) = reader.as_mut() else { return Ok(None) };
            read_some(reader, max).await
        })
    }

    /// Reads up to `max` bytes of the program's stderr (when piped).
    #[napi]
    pub fn read_stderr<'env>(&self, env: &'env Env, max: u32) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let stderr = self.stderr.clone();
        env.spawn_future(async move {
            let mut stderr = stderr.lock().await;
            let Some(stderr) = stderr.as_mut() else { return Ok(None) };
            read_some(stderr, max).await
        })
    }

    /// Writes all of `data` to the program's input.
    #[napi]
    pub fn write<'env>(&self, env: &'env Env, data: Buffer) -> napi::Result<PromiseRaw<'env, ()>> {
        // The bytes are copied: a JavaScript buffer cannot leave Node's thread.
        let data = data.to_vec();
        let writer = self.writer.clone();
        env.spawn_future(async move {
            let mut writer = writer.lock().await;
            let Some(writer) = writer.as_mut() else {
                return Err(fail(ErrorKind::Io, "write after the input was closed"));
            };
            writer.write_all(&data).await.map_err(from_io)
        })
    }

    /// The half-close: the program reads EOF; its output can still be read.
    #[napi]
    pub fn shutdown_write<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let writer = self.writer.clone();
        env.spawn_future(async move {
            let Some(mut writer) = writer.lock().await.take() else { return Ok(()) };
            writer.shutdown().await.map_err(from_io)
        })
    }

    /// Lets go of the output side (the stream was destroyed): the program
    /// then gets EPIPE or SIGPIPE if it writes more.
    #[napi]
    pub fn close_read(&self) {
        if let Ok(mut reader) = self.reader.try_lock() {
            reader.take();
        } else {
            let reader = self.reader.clone();
            napi::bindgen_prelude::spawn(async move {
                reader.lock().await.take();
            });
        }
    }

    /// Resolves when the program is done. Called once by `index.js`.
    #[napi]
    pub fn wait<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, NativeExit>> {
        let exit = self.exit.clone();
        env.spawn_future(async move {
            let Some(exit) = exit.lock().await.take() else {
                return Err(fail(ErrorKind::InvalidInput, "wait() was already called"));
            };
            let exit = exit.await.map_err(|_| fail(ErrorKind::Io, "the child's task ended early"))?.map_err(from_io)?;
            Ok(NativeExit {
                code: exit.code(),
                signal: exit.signal(),
                detection: exit.detection.as_str().to_string(),
                status_lost: exit.status_lost(),
                description: exit.to_string(),
            })
        })
    }

    /// Sends signal `sig` (a number); `kill` is the library's kill (SIGKILL,
    /// relayed by the shim; on Windows, TerminateProcess).
    #[napi]
    pub fn signal<'env>(&self, env: &'env Env, sig: i32, kill: bool) -> napi::Result<PromiseRaw<'env, ()>> {
        let (reply, answer) = oneshot::channel();
        let request = if kill { Control::Kill(reply) } else { Control::Signal(sig, reply) };
        let sent = self.control.send(request);
        env.spawn_future(async move {
            sent.map_err(|_| fail(ErrorKind::Io, "the child's task ended early"))?;
            answer.await.map_err(|_| fail(ErrorKind::Io, "the child's task ended early"))?.map_err(from_io)
        })
    }
}

/// Unix: the channel's descriptors for Node's event loop, where libuv reads
/// and writes them with no hop through this runtime. Elsewhere (Windows'
/// overlapped pipes), or if the library keeps the channel, it stays here.
#[cfg(unix)]
type Fds = (std::os::fd::OwnedFd, std::os::fd::OwnedFd);
#[cfg(not(unix))]
type Fds = std::convert::Infallible;

#[cfg(unix)]
fn hand_out(channel: Option<uasync::Channel>) -> (Option<uasync::Channel>, Option<Fds>) {
    let Some(channel) = channel else { return (None, None) };
    // Fails only where the descriptor cannot be made blocking again; the
    // channel then stays on this runtime.
    let blocking = match channel.into_blocking() {
        Ok(blocking) => blocking,
        Err(_) => return (None, None),
    };
    match blocking.into_fds() {
        Ok(fds) => (None, Some(fds)),
        Err(kept) => (uasync::Channel::from_blocking(kept).ok(), None),
    }
}

#[cfg(not(unix))]
fn hand_out(channel: Option<uasync::Channel>) -> (Option<uasync::Channel>, Option<Fds>) {
    (channel, None)
}

#[cfg(unix)]
fn raw((read, write): Fds) -> Vec<i32> {
    use std::os::fd::IntoRawFd;
    vec![read.into_raw_fd(), write.into_raw_fd()]
}

#[cfg(not(unix))]
fn raw(never: Fds) -> Vec<i32> {
    match never {}
}

async fn read_some(from: &mut (impl AsyncReadExt + Unpin), max: u32) -> napi::Result<Option<Buffer>> {
    // Not zeroed first: read_buf fills spare capacity.
    let mut buf = Vec::with_capacity(max.clamp(1, 1 << 20) as usize);
    if from.read_buf(&mut buf).await.map_err(from_io)? == 0 {
        return Ok(None);
    }
    Ok(Some(buf.into()))
}
