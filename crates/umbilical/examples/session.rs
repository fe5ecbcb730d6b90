//! An installer's job: one authentication, then many programs as root.
//! The session opens through sudo once, its prompt handler answering the
//! one password question (the password is the first line of stdin here;
//! a GUI shows a dialog), and then every step runs through the session
//! with no launcher run and no further question: each step writes a file
//! through `tee`, with its own channel and its own exact status.
//!
//! ```text
//! echo "$PASSWORD" | setsid cargo run -p umbilical --example session -- [--user USER] DIR STEPS
//! ```
//!
//! It prints how many times the launcher asked (once, or none with a
//! NOPASSWD rule or as root) and how long the steps took. Exit: 0 all
//! steps done, 77 the session was refused, 1 a step failed.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use umbilical::{ErrorKind, Launcher, Secret, Session};

fn main() -> ExitCode {
    // This binary doubles as the shim and as sudo's askpass helper.
    umbilical::shim::run_if_invoked();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let user = match args.iter().position(|a| a == "--user") {
        Some(i) if i + 1 < args.len() => Some(args.drain(i..i + 2).nth(1).unwrap_or_default()),
        _ => None,
    };
    let [dir, steps] = &args[..] else {
        eprintln!("usage: session [--user USER] DIR STEPS  (the password on stdin)");
        return ExitCode::from(2);
    };
    let Ok(steps) = steps.parse::<u32>() else {
        eprintln!("STEPS: a number, not {steps:?}");
        return ExitCode::from(2);
    };
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let password = Secret::new(line.trim_end_matches(['\n', '\r']));

    let asked = Arc::new(AtomicU32::new(0));
    let opened = Instant::now();
    let session = Session::builder(Launcher::Sudo { user, non_interactive: false })
        .prompt_handler({
            let asked = asked.clone();
            move |prompt| {
                asked.fetch_add(1, Ordering::Relaxed);
                eprintln!("[dialog] {} asks: {:?}", prompt.launcher, prompt.text);
                // Only the first question: a second one means a wrong password.
                (prompt.attempt == 1).then(|| password.clone())
            }
        })
        .open();
    let session = match session {
        Ok(session) => session,
        Err(e) if e.kind() == ErrorKind::LauncherRefused => {
            eprintln!("refused: {e}");
            return ExitCode::from(77);
        }
        Err(e) => {
            eprintln!("cannot open the session: {e}");
            return ExitCode::from(1);
        }
    };
    let open_took = opened.elapsed();

    let started = Instant::now();
    for step in 1..=steps {
        let path = format!("{dir}/step-{step}.txt");
        let result = session.command("tee").arg(&path).spawn().map_err(std::io::Error::from).and_then(|mut child| {
            let mut channel = child.take_channel().expect("a fresh child has its channel");
            channel.write_all(format!("step {step}\n").as_bytes())?;
            channel.shutdown_write()?; // tee sees EOF ...
            channel.read_to_end(&mut Vec::new())?; // ... and we read its echo to the end
            child.wait()
        });
        match result {
            Ok(exit) if exit.success() => {}
            Ok(exit) => {
                eprintln!("step {step}: tee failed: {exit}");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("step {step}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    println!(
        "asked {} time(s); opened in {:.0?}; {steps} steps in {:.0?}",
        asked.load(Ordering::Relaxed),
        open_took,
        started.elapsed()
    );
    match session.close() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("closing the session: {e}");
            ExitCode::from(1)
        }
    }
}
