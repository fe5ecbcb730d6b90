//! Each portable signal's number is this host's own (the backend's table
//! is in `Signal::ALL`'s order, and Unix numbers differ between systems:
//! SIGUSR1 is 10 on Linux, 30 on macOS): checked against the C library's
//! constants, name by name.
#![cfg(unix)]

use umbilical::Signal;

#[test]
fn numbers_are_this_hosts() {
    let expected = [
        (Signal::Hup, libc::SIGHUP),
        (Signal::Int, libc::SIGINT),
        (Signal::Quit, libc::SIGQUIT),
        (Signal::Kill, libc::SIGKILL),
        (Signal::Usr1, libc::SIGUSR1),
        (Signal::Usr2, libc::SIGUSR2),
        (Signal::Pipe, libc::SIGPIPE),
        (Signal::Alrm, libc::SIGALRM),
        (Signal::Term, libc::SIGTERM),
        (Signal::Cont, libc::SIGCONT),
        (Signal::Stop, libc::SIGSTOP),
        (Signal::Tstp, libc::SIGTSTP),
        (Signal::Winch, libc::SIGWINCH),
    ];
    assert_eq!(expected.len(), Signal::ALL.len(), "every portable signal is checked");
    for (sig, number) in expected {
        assert_eq!(sig.number(), Some(number), "{sig}");
        assert_eq!(Signal::from_number(number), Some(sig), "{sig}");
    }
}
