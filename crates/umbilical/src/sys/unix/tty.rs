//! Asking on the caller's controlling terminal (`/dev/tty`), as sudo's
//! `tgetpass` does: the prompt written there, a secret read with echo off
//! and the terminal's settings restored after, whatever happened.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
use zeroize::Zeroizing;

/// The longest answer read (sudo's own limit is 255).
const MAX_ANSWER: usize = 1024;

fn open_tty() -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")
}

/// Whether this process has a controlling terminal it can open.
pub(crate) fn has_terminal() -> bool {
    open_tty().is_ok()
}

/// Writes `prompt` on the terminal and reads one line; with `secret`,
/// echo is off while reading. `None` at end of file (Ctrl-D) or when
/// there is no terminal.
pub(crate) fn ask_terminal(prompt: &str, secret: bool) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let Ok(mut tty) = open_tty() else { return Ok(None) };
    let saved = tcgetattr(tty.as_fd())?;
    let restore = Restore { tty: tty.try_clone()?, saved: saved.clone(), changed: secret };
    if secret {
        let mut quiet = saved;
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(tty.as_fd(), OptionalActions::Flush, &quiet)?;
    }
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let mut line = Zeroizing::new(Vec::with_capacity(64));
    let mut byte = [0u8; 1];
    loop {
        match tty.read(&mut byte) {
            Ok(0) => {
                drop(restore);
                return Ok((!line.is_empty()).then_some(line));
            }
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() < MAX_ANSWER => line.push(byte[0]),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    drop(restore);
    Ok(Some(line))
}

/// Puts the terminal's settings back (echo on) on every way out.
struct Restore {
    tty: std::fs::File,
    saved: rustix::termios::Termios,
    changed: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.changed {
            let _ = tcsetattr(self.tty.as_fd(), OptionalActions::Flush, &self.saved);
        }
    }
}
