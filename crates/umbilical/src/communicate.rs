//! `communicate`: input in, output out, at once, then the end (Python's
//! `Popen.communicate()`), and what it returns.

use std::io::{self, Read};
use std::sync::Arc;

use crate::channel::Channel;
use crate::cutoff::Cutoff;
use crate::exit::Exit;

/// What [`Child::communicate`](crate::Child::communicate) gathered: everything the program wrote,
/// and its end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// All the program wrote to its stdout (the channel).
    pub stdout: Vec<u8>,
    /// All it wrote to stderr, when that was
    /// [`Stderr::Piped`](crate::Stderr::Piped) (and not taken before).
    pub stderr: Option<Vec<u8>>,
    /// How it ended.
    pub exit: Exit,
    /// The output was cut at the [`wait_delay`](crate::Command::wait_delay)
    /// cutoff: the program had ended but something it left running still
    /// held its stdout or stderr open, and what that wrote later is not
    /// here.
    pub truncated: bool,
}

/// Feeds `input` into `channel` and half-closes, while reading its output
/// and (with `read_stderr`) the program's stderr; `wait` gives the end.
/// With a `cutoff` the end is waited for while the output is read: it is
/// the end that sets the cutoff stopping reads a background child holds
/// open. Without one, reads end at end of file and the wait comes after.
pub(crate) fn communicate(
    channel: Channel,
    input: &[u8],
    cutoff: Option<Arc<Cutoff>>,
    read_stderr: Option<impl FnOnce() -> io::Result<(Vec<u8>, bool)> + Send>,
    wait: impl FnOnce() -> io::Result<Exit> + Send,
) -> io::Result<Output> {
    let (mut reader, writer) = channel.split();
    let mut wait = Some(wait);
    let gathered = std::thread::scope(|scope| -> io::Result<Gathered> {
        // If a helper cannot start, the read half goes first: the program
        // then sees nobody reads and ends, so the helpers already running
        // (joined when this scope ends) end too.
        let errors = match read_stderr {
            Some(read) => Some(spawn(scope, "umbilical-communicate-err", read)?),
            None => None,
        };
        // Nothing to feed: the half-close alone, no thread.
        let feeding = if input.is_empty() {
            drop(writer);
            None
        } else {
            let cutoff = cutoff.clone();
            let mut writer = writer;
            Some(spawn(scope, "umbilical-communicate-in", move || {
                let fed = writer.feed(input, cutoff.as_deref());
                // The half-close, whatever happened to the input.
                drop(writer);
                fed
            })?)
        };
        let waiting = match cutoff {
            Some(_) => wait.take().map(|w| spawn(scope, "umbilical-communicate-wait", w)).transpose()?,
            None => None,
        };
        let mut stdout = Vec::new();
        let read = reader.read_to_end(&mut stdout).map(drop);
        let truncated = reader.truncated();
        drop(reader);
        Ok(Gathered {
            stdout,
            read,
            truncated,
            stderr: errors.map(joined),
            fed: feeding.map_or(Ok(()), joined),
            exit: waiting.map(joined),
        })
    })?;
    let exit = match (gathered.exit, wait) {
        (Some(exit), _) => exit,
        (None, Some(wait)) => wait(),
        (None, None) => unreachable!("the wait runs inside or after"),
    };
    gathered.read?;
    gathered.fed?;
    let exit = exit?;
    let (stderr, truncated_err) = match gathered.stderr.transpose()? {
        Some((bytes, cut)) => (Some(bytes), cut),
        None => (None, false),
    };
    Ok(Output { stdout: gathered.stdout, stderr, exit, truncated: gathered.truncated || truncated_err })
}

/// What the scope of `communicate` brings out.
struct Gathered {
    stdout: Vec<u8>,
    read: io::Result<()>,
    truncated: bool,
    stderr: Option<io::Result<(Vec<u8>, bool)>>,
    fed: io::Result<()>,
    /// The end, when it was waited for inside (with a cutoff).
    exit: Option<io::Result<Exit>>,
}

fn spawn<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> io::Result<std::thread::ScopedJoinHandle<'scope, T>> {
    std::thread::Builder::new().name(name.into()).stack_size(64 * 1024).spawn_scoped(scope, f)
}

/// A helper thread's result; its panic goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
