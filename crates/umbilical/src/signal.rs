//! Signals by name: what crosses between hosts.
//!
//! A signal's number is not portable: SIGUSR1 is 10 on Linux x86, 30 on
//! macOS and FreeBSD, 16 on Linux MIPS. Through ssh the shim may run on
//! another OS than the caller, so a kill request names the signal and the
//! shim maps the name to its own number. A number without a name crosses
//! only to a shim on the same OS and architecture (the shim says which it
//! runs on when it reports the program started).

use std::fmt;

/// A signal that keeps its meaning on every Unix, sent by name through the
/// shim.
///
/// ```
/// use umbilical::Signal;
/// assert_eq!(Signal::from_name("sigterm"), Some(Signal::Term));
/// assert_eq!(Signal::Usr1.name(), "USR1");
/// # #[cfg(unix)]
/// assert_eq!(Signal::Term.number(), Some(15));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGHUP.
    Hup,
    /// SIGINT.
    Int,
    /// SIGQUIT.
    Quit,
    /// SIGKILL.
    Kill,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGPIPE.
    Pipe,
    /// SIGALRM.
    Alrm,
    /// SIGTERM.
    Term,
    /// SIGCONT.
    Cont,
    /// SIGSTOP.
    Stop,
    /// SIGTSTP.
    Tstp,
    /// SIGWINCH.
    Winch,
}

impl Signal {
    /// Every signal with a portable name, in wire-code order.
    pub const ALL: [Signal; 13] = [
        Signal::Hup,
        Signal::Int,
        Signal::Quit,
        Signal::Kill,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Pipe,
        Signal::Alrm,
        Signal::Term,
        Signal::Cont,
        Signal::Stop,
        Signal::Tstp,
        Signal::Winch,
    ];

    /// The name without `SIG`: `TERM`, `USR1`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Pipe => "PIPE",
            Signal::Alrm => "ALRM",
            Signal::Term => "TERM",
            Signal::Cont => "CONT",
            Signal::Stop => "STOP",
            Signal::Tstp => "TSTP",
            Signal::Winch => "WINCH",
        }
    }

    /// Parses `TERM`, `SIGTERM` or `term`.
    pub fn from_name(name: &str) -> Option<Signal> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL.into_iter().find(|s| s.name() == bare)
    }

    /// This signal's number on this host; `None` on Windows, which has no
    /// signals.
    pub fn number(self) -> Option<i32> {
        let index = Signal::ALL.iter().position(|&s| s == self)?;
        crate::sys::SIGNAL_NUMBERS.map(|numbers| numbers[index])
    }

    /// The signal with this number on this host, if it has a portable name.
    pub fn from_number(number: i32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == Some(number))
    }

    /// Whether a program on Windows, which has no signals, is terminated
    /// when asked for this one: the signals whose default is to end the
    /// program and that a supervisor sends to stop it. The others (USR1,
    /// WINCH, CONT, ...) are refused there rather than taken for a kill.
    pub fn terminates_on_windows(self) -> bool {
        matches!(self, Signal::Hup | Signal::Int | Signal::Quit | Signal::Kill | Signal::Term)
    }

    /// The wire code (stable within a protocol version).
    pub(crate) fn code(self) -> u8 {
        Signal::ALL.iter().position(|&s| s == self).map_or(0, |i| i as u8 + 1)
    }

    /// The signal with this wire code.
    pub(crate) fn from_code(code: u8) -> Option<Signal> {
        Signal::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

/// A signal as it crosses to a shim: by name, or a raw number that means
/// something only on the host it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireSignal {
    /// A signal every Unix names; the shim sends its own number for it.
    Named(Signal),
    /// A number without a portable name, valid only on `host`
    /// ([`host`]'s form: `linux-x86_64`).
    Raw {
        /// The OS and architecture the number belongs to.
        host: String,
        /// The signal's number there.
        number: i32,
    },
}

/// This host's OS and architecture, as a shim reports them and as a raw
/// signal number is tagged with: `linux-x86_64`, `macos-aarch64`.
pub fn host() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

impl WireSignal {
    /// The caller's side: signal `number` of this host, for a shim on
    /// `far_host`. A number with a portable name goes by name; another goes
    /// as a number only to a shim on this same OS and architecture.
    pub(crate) fn for_host(number: i32, far_host: &str) -> Result<WireSignal, String> {
        match Signal::from_number(number) {
            Some(sig) if far_host.starts_with("windows-") && !sig.terminates_on_windows() => {
                Err(format!("{sig} has no meaning for a program on Windows (the shim runs on {far_host})"))
            }
            Some(sig) => Ok(WireSignal::Named(sig)),
            None if far_host == host() => Ok(WireSignal::Raw { host: host(), number }),
            None => Err(format!(
                "signal {number} has no portable name, and the shim runs on {far_host}, not {}: \
                 send one of {}",
                host(),
                Signal::ALL.map(Signal::name).join(", ")
            )),
        }
    }

    /// The shim's side: the number to send on this host, or why not.
    pub(crate) fn local(&self) -> Result<i32, String> {
        match self {
            WireSignal::Named(sig) => match sig.number() {
                Some(number) => Ok(number),
                // No signals here (Windows): what a supervisor sends to stop
                // the program ends it; `signal_or_terminate` asks politely
                // first for all but KILL (9 here, 15 for the others).
                None if sig.terminates_on_windows() => Ok(if *sig == Signal::Kill { 9 } else { 15 }),
                None => Err(format!("{sig} has no meaning on {}", host())),
            },
            WireSignal::Raw { host: theirs, number } if *theirs == host() => Ok(*number),
            WireSignal::Raw { host: theirs, number } => {
                Err(format!("signal number {number} of {theirs} means nothing on {}", host()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_codes_are_dense() {
        for (i, sig) in Signal::ALL.into_iter().enumerate() {
            assert_eq!(Signal::from_name(sig.name()), Some(sig));
            assert_eq!(Signal::from_name(&format!("sig{}", sig.name().to_lowercase())), Some(sig));
            assert_eq!(sig.code(), i as u8 + 1);
            assert_eq!(Signal::from_code(sig.code()), Some(sig));
        }
        assert_eq!(Signal::from_code(0), None);
        assert_eq!(Signal::from_code(Signal::ALL.len() as u8 + 1), None);
        assert_eq!(Signal::from_name("BOGUS"), None);
    }

    /// Each portable signal's number here maps back to it (Windows: no
    /// signal has a number).
    #[test]
    fn numbers_are_one_each() {
        for sig in Signal::ALL {
            match sig.number() {
                Some(n) => assert_eq!(Signal::from_number(n), Some(sig), "{sig}: one number each"),
                None => assert!(crate::sys::SIGNAL_NUMBERS.is_none(), "{sig} has no number on a host with signals"),
            }
        }
    }

    #[test]
    fn numbers_cross_by_name_and_raw_only_to_the_same_host() {
        let (Some(usr1), Some(term)) = (Signal::Usr1.number(), Signal::Term.number()) else {
            // Windows: no numbers to send; a shim here maps names only.
            assert!(crate::sys::SIGNAL_NUMBERS.is_none());
            return;
        };
        // SIGUSR1 to a macOS shim goes by name: its number there is 30.
        assert_eq!(WireSignal::for_host(usr1, "macos-aarch64"), Ok(WireSignal::Named(Signal::Usr1)));
        // A number with no portable name here (SIGVTALRM, say).
        let unnamed = (1..64).find(|n| Signal::from_number(*n).is_none()).expect("a signal number without a name");
        assert_eq!(WireSignal::for_host(unnamed, &host()), Ok(WireSignal::Raw { host: host(), number: unnamed }));
        let err = WireSignal::for_host(unnamed, "haiku-riscv64").unwrap_err();
        assert!(err.contains("no portable name") && err.contains("haiku-riscv64"), "{err}");
        // A Windows shim terminates for TERM, and refuses USR1.
        assert_eq!(WireSignal::for_host(term, "windows-x86_64"), Ok(WireSignal::Named(Signal::Term)));
        assert!(WireSignal::for_host(usr1, "windows-x86_64").is_err());
        // The shim's side refuses another host's raw number.
        assert_eq!(WireSignal::Raw { host: host(), number: unnamed }.local(), Ok(unnamed));
        assert!(WireSignal::Raw { host: "haiku-riscv64".into(), number: 30 }.local().is_err());
        assert_eq!(WireSignal::Named(Signal::Term).local(), Ok(term));
    }
}
