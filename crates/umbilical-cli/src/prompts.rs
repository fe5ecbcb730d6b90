//! Who answers a launcher's password prompt: `--askpass PROGRAM` (the
//! SUDO_ASKPASS/SSH_ASKPASS convention), else umbilical's controlling
//! terminal (its stdin belongs to the program), else nobody: the launcher
//! then refuses at once and the message names `--askpass`.

use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use umbilical::{Prompt, PromptRoute, Secret};

/// Sets the prompt handler on `cmd` where the launcher's prompts can be
/// relayed; returns whether someone answers.
/// An explicit `--askpass` is set whatever the launcher; the terminal only
/// where the launcher may ask.
pub fn install(cmd: &mut umbilical::Command, route: PromptRoute, askpass: Option<&OsString>, verbose: u8) -> bool {
    let relayed = matches!(
        route,
        PromptRoute::SudoAskpass
            | PromptRoute::SshAskpass
            | PromptRoute::ControllingTerminal
            | PromptRoute::StandardInput
            | PromptRoute::PolkitAgent
    );
    let started = Instant::now();
    let tell = move |prompt: &Prompt| {
        if verbose > 0 {
            let what = if prompt.secret { "asks for a password" } else { "asks a question" };
            let hop = if prompt.hop > 0 { format!(" (hop {})", prompt.hop + 1) } else { String::new() };
            say!(
                "umbilical: [{:.3}s] {}{hop} {what} (attempt {}): {:?}",
                started.elapsed().as_secs_f64(),
                prompt.launcher,
                prompt.attempt,
                prompt.text
            );
        }
    };
    if let Some(program) = askpass {
        let program = program.clone();
        cmd.prompt_handler(move |prompt| {
            tell(prompt);
            run_askpass(&program, &prompt.text)
        });
        return relayed;
    }
    if !relayed {
        return false;
    }
    if let Some(ask) = umbilical::prompt::terminal() {
        cmd.prompt_handler(move |prompt| {
            tell(prompt);
            ask(prompt)
        });
        return true;
    }
    false
}

/// Runs the askpass program with the prompt as its one argument: its
/// stdout, without the line end, is the answer; a non-zero exit declines.
fn run_askpass(program: &OsString, text: &str) -> Option<Secret> {
    let mut child = match Command::new(program)
        .arg(text)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            say!("umbilical: cannot run the askpass program {}: {e}", program.to_string_lossy());
            return None;
        }
    };
    let mut answer = Vec::with_capacity(64);
    let read = child.stdout.take().map(|mut out| out.read_to_end(&mut answer));
    let status = child.wait();
    // The answer is a Secret from here (zeroed when dropped), also when it
    // is not used.
    let answer = Secret::new(answer);
    let ok = matches!(read, Some(Ok(_))) && status.is_ok_and(|s| s.success());
    if !ok {
        return None;
    }
    let bytes = answer.expose();
    let end = bytes.iter().rposition(|b| *b != b'\n' && *b != b'\r').map_or(0, |i| i + 1);
    Some(if end < bytes.len() { Secret::new(&bytes[..end]) } else { answer })
}

/// What to add to a launcher's refusal when nobody could answer a prompt.
pub fn refusal_hint(route: PromptRoute, answered: bool) -> &'static str {
    match route {
        PromptRoute::Never | PromptRoute::OsDialog => "",
        _ if !answered => {
            " (if it asked for a password: there is no terminal to ask on; --askpass PROGRAM answers the launcher's \
             prompts)"
        }
        _ => "",
    }
}
