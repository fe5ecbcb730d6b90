//! A program with no terminal (a GUI editor) saving a file it may not
//! write, through sudo, the password supplied by a callback: the prompt
//! handler is where a GUI shows `prompt.text` in a dialog. Here the
//! "dialog" is the first line of stdin, read once before anything starts
//! and kept as a [`Secret`] (zeroed when dropped).
//!
//! ```text
//! echo "$PASSWORD" | setsid cargo run -p umbilical --example gui_elevation --features tokio -- \
//!     [--async] [--via sudo|doas|su] [--user USER] FILE CONTENTS
//! ```
//!
//! It answers only the first question: a second one means the password
//! was wrong, and answering it again would only count another failure
//! against the account (pam_faillock). With `--async` it runs on a
//! `current_thread` runtime with an async handler that takes a second to
//! answer (a person typing), while another task keeps ticking: the
//! runtime is never blocked by the prompt.
//!
//! `--via doas` and `--via su` (su needs `--user`) go through those
//! launchers instead: doas asks on a private terminal, su on its own stdin
//! (its stdio a private terminal, the program's own through the shim).
//!
//! Exit: 0 saved, 77 refused (wrong password, declined, no rule), 1 failed.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use umbilical::{Command, ErrorKind, Launcher, Secret, ShimMode, Stderr};
use zeroize::Zeroize;

fn main() -> ExitCode {
    // This binary doubles as the shim and as sudo's askpass helper.
    umbilical::shim::run_if_invoked();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let use_async = take_flag(&mut args, "--async");
    let user = take_value(&mut args, "--user");
    let launcher = match (take_value(&mut args, "--via").as_deref(), user) {
        (None | Some("sudo"), user) => Launcher::Sudo { user, non_interactive: false },
        (Some("doas"), user) => Launcher::Doas { user },
        (Some("su"), Some(user)) => Launcher::Su { user },
        (via, _) => {
            eprintln!("--via {via:?}: sudo, doas, or su with --user");
            return ExitCode::from(2);
        }
    };
    let [path, contents] = &args[..] else {
        eprintln!(
            "usage: gui_elevation [--async] [--via sudo|doas|su] [--user USER] FILE CONTENTS  (the password on stdin)"
        );
        return ExitCode::from(2);
    };
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        eprintln!("no password on stdin");
        return ExitCode::from(2);
    }
    let password = Secret::new(line.trim_end_matches(['\n', '\r']));
    // The Secret took a copy: zero the line's own bytes.
    line.zeroize();

    let mut tee = Command::new("tee");
    tee.arg(path).launcher(launcher).shim(ShimMode::Auto).stderr(Stderr::Inherit);
    if use_async { run_async(tee, password, contents) } else { run_blocking(tee, password, contents) }
}

fn run_blocking(mut tee: Command, password: Secret, contents: &str) -> ExitCode {
    tee.prompt_handler(move |prompt| {
        eprintln!("[dialog] {} asks: {:?} (attempt {})", prompt.launcher, prompt.text, prompt.attempt);
        (prompt.attempt == 1).then(|| password.clone())
    });
    let mut child = match tee.spawn() {
        Ok(child) => child,
        Err(e) => return refused(e),
    };
    let mut channel = child.take_channel().expect("a fresh child has its channel");
    let written = channel.write_all(contents.as_bytes()).and_then(|()| channel.shutdown_write());
    // tee echoes what it wrote; read it, or tee would block.
    let echoed = std::io::copy(&mut channel, &mut std::io::sink());
    saved(written.and(echoed).map(|_| ()), child.wait(), contents)
}

fn run_async(mut tee: Command, password: Secret, contents: &str) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async move {
        tee.prompt_handler_async(move |prompt| {
            let password = password.clone();
            async move {
                eprintln!("[dialog] {} asks: {:?} (attempt {})", prompt.launcher, prompt.text, prompt.attempt);
                // A person typing: the runtime's other tasks go on meanwhile.
                tokio::time::sleep(Duration::from_secs(1)).await;
                (prompt.attempt == 1).then_some(password)
            }
        });
        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let started = match tee.spawn_async().await {
            Ok(child) => child,
            Err(e) => {
                ticker.abort();
                return refused(e);
            }
        };
        let during = ticks.load(Ordering::Relaxed);
        ticker.abort();
        println!("the runtime kept serving: {during} ticks while the launch waited for the answer");
        let mut child = started;
        let (mut reader, mut writer) = child.take_channel().expect("a fresh child has its channel").split();
        let written = async {
            writer.write_all(contents.as_bytes()).await?;
            writer.shutdown().await?;
            let mut echoed = Vec::new();
            reader.read_to_end(&mut echoed).await.map(|_| ())
        }
        .await;
        saved(written, child.wait().await, contents)
    })
}

fn refused(e: umbilical::Error) -> ExitCode {
    if e.kind() == ErrorKind::LauncherRefused {
        eprintln!("not saved: the launcher refused ({e})");
        ExitCode::from(77)
    } else {
        eprintln!("not saved: {e}");
        ExitCode::from(1)
    }
}

fn saved(io: std::io::Result<()>, exit: std::io::Result<umbilical::Exit>, contents: &str) -> ExitCode {
    match (io, exit) {
        (Ok(()), Ok(exit)) if exit.code() == Some(0) => {
            println!("saved {} bytes ({:?})", contents.len(), exit.detection);
            ExitCode::SUCCESS
        }
        (io, exit) => {
            eprintln!("not saved: {io:?}, {exit:?}");
            ExitCode::from(1)
        }
    }
}

fn take_value(args: &mut Vec<String>, flag: &str) -> Option<String> {
    let i = args.iter().position(|a| a == flag).filter(|i| i + 1 < args.len())?;
    let value = args.remove(i + 1);
    args.remove(i);
    Some(value)
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let found = args.iter().position(|a| a == flag);
    if let Some(i) = found {
        args.remove(i);
    }
    found.is_some()
}
