//! Saving a file the caller may not write, the way an editor does: the
//! new contents go to `tee FILE` started through `sudo`, with the shim
//! where it can run, so that "sudo refused" and "tee failed" are told
//! apart from each other and from success.
//!
//! ```text
//! cargo run -p umbilical --example save_as_root -- /etc/motd.new "hello"
//! ```
//!
//! `sudo -n` never prompts: without cached credentials or a NOPASSWD rule
//! it refuses, and this example says so.

use std::io::Write;
use std::process::ExitCode;

use umbilical::{Command, ErrorKind, Launcher, ShimMode, Stderr};

fn main() -> ExitCode {
    // This binary doubles as the shim: sudo starts it again in shim mode.
    umbilical::shim::run_if_invoked();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, contents] = &args[..] else {
        eprintln!("usage: save_as_root FILE CONTENTS");
        return ExitCode::from(2);
    };
    let mut tee = Command::new("tee");
    tee.arg(path)
        .launcher(Launcher::Sudo { user: None, non_interactive: true })
        .shim(ShimMode::Auto)
        .stderr(Stderr::Inherit);
    let mut child = match tee.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::LauncherRefused => {
            eprintln!("not saved: sudo refused ({e})");
            return ExitCode::from(77);
        }
        Err(e) => {
            eprintln!("not saved: {e}");
            return ExitCode::from(1);
        }
    };
    let mut channel = child.take_channel().expect("a fresh child has its channel");
    let written = channel.write_all(contents.as_bytes()).and_then(|()| channel.shutdown_write());
    // tee echoes what it wrote; a caller that does not want it still reads
    // it, or tee would block on a full channel.
    let echoed = std::io::copy(&mut channel, &mut std::io::sink());
    let exit = match child.wait() {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("not known whether it was saved: {e}");
            return ExitCode::from(1);
        }
    };
    match (written, echoed, exit.code()) {
        (Ok(()), Ok(n), Some(0)) if n == contents.len() as u64 => {
            println!("saved {} bytes to {path} ({:?})", contents.len(), exit.detection);
            ExitCode::SUCCESS
        }
        (_, _, code) => {
            eprintln!("not saved: tee ended with {:?} ({code:?})", exit.status);
            ExitCode::from(1)
        }
    }
}
