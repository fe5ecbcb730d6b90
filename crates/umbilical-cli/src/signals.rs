//! Signals: `--signal` names, and passing the signals a supervisor sends
//! to `umbilical run` on to the program.
//!
//! Without this, `kill -TERM` (a supervisor stopping its job, `timeout(1)`
//! around us, Ctrl-C when the program leads its own process group) would
//! end umbilical and leave the program running, orphaned.

use umbilical::{Child, Signal};

/// SIGKILL's number, which `--signal KILL` means on every Unix.
pub const KILL: i32 = 9;

/// Windows has no signals; the names still parse, to the Unix numbers as
/// stand-ins, so that one command line works everywhere (a timeout then
/// terminates the program).
const WINDOWS_STAND_INS: &[(Signal, i32)] = &[
    (Signal::Hup, 1),
    (Signal::Int, 2),
    (Signal::Quit, 3),
    (Signal::Kill, 9),
    (Signal::Usr1, 10),
    (Signal::Usr2, 12),
    (Signal::Term, 15),
];

/// `sig`'s number here, or its stand-in on Windows.
fn number(sig: Signal) -> Option<i32> {
    sig.number().or_else(|| WINDOWS_STAND_INS.iter().find(|&&(s, _)| s == sig).map(|&(_, n)| n))
}

/// Parses `TERM`, `SIGTERM`, `term` or `15`.
pub fn parse(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) { Ok(n) } else { Err(format!("no signal number {n}")) };
    }
    Signal::from_name(s)
        .and_then(number)
        .ok_or_else(|| format!("unknown signal {s:?} (a name such as TERM, INT, KILL, or a number)"))
}

/// `SIGTERM` for 15; the number for one without a name here.
pub fn name(sig: i32) -> String {
    Signal::ALL.into_iter().find(|&s| number(s) == Some(sig)).map_or_else(|| sig.to_string(), |s| s.to_string())
}

/// Catches the signals to pass on, from before the program starts.
pub struct Forwarder {
    #[cfg(unix)]
    signals: std::sync::Mutex<signal_hook::iterator::Signals>,
}

impl Forwarder {
    /// The signals passed on: what supervisors and terminals send to stop,
    /// reload or resize a job. With `foreground` the program shares our
    /// process group, so the terminal's own INT, QUIT and WINCH reach it
    /// without us (passing them on would deliver them twice).
    #[cfg(unix)]
    pub fn install(foreground: bool) -> std::io::Result<Forwarder> {
        use signal_hook::consts::*;
        let mut list = vec![SIGTERM, SIGHUP, SIGUSR1, SIGUSR2];
        if !foreground {
            list.extend([SIGINT, SIGQUIT, SIGWINCH]);
        }
        let signals = signal_hook::iterator::Signals::new(list)?;
        Ok(Forwarder { signals: std::sync::Mutex::new(signals) })
    }

    /// Windows: Ctrl-C and Ctrl-Break reach every process on the console,
    /// the program's too; umbilical then ends, and the kill-on-close job it
    /// runs the program in ends the program with it. Nothing to pass on.
    #[cfg(not(unix))]
    pub fn install(_foreground: bool) -> std::io::Result<Forwarder> {
        Ok(Forwarder {})
    }

    /// Passes on every signal caught since the last call.
    pub fn forward_pending(&self, child: &mut Child) {
        #[cfg(unix)]
        {
            let mut signals = self.signals.lock().unwrap_or_else(|e| e.into_inner());
            for sig in signals.pending() {
                if let Err(e) = child.signal(sig) {
                    say!("umbilical: passing {} on to the program failed: {e}", name(sig));
                }
            }
        }
        #[cfg(not(unix))]
        let _ = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("sigterm"), Ok(15));
        assert_eq!(parse("SIGKILL"), Ok(KILL));
        assert_eq!(parse("9"), Ok(9));
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("NOPE").is_err());
        assert!(parse("").is_err());
        assert_eq!(name(15), "SIGTERM");
        assert_eq!(name(63), "63");
    }
}
