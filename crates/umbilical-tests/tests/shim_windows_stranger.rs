//! A stranger reaches the Windows shim's rendezvous first: it is refused
//! (disconnected unanswered, its pid not the shim's), and the real shim,
//! which found the one pipe instance busy, still connects. Alone in its
//! test binary because it sets an environment variable for the shim.

#![cfg(windows)]

mod common;

use common::*;
use umbilical::{Detection, Exit, ExitStatus, Launcher};

#[test]
fn a_stranger_is_refused_and_the_shim_still_connects() {
    // Directly, and elevated: the elevated shim's pid is the one of the
    // handle ShellExecuteExW returned.
    for launcher in [Launcher::Direct, Launcher::RunAs] {
        let name = launcher.name();
        let verdict = std::env::temp_dir().join(format!("umbilical-stranger-{}-{name}.txt", std::process::id()));
        let _ = std::fs::remove_file(&verdict);
        // The shim (the helper) inherits this process's environment (Wine
        // passes it through elevation too); with this variable it first
        // sends a stranger to the rendezvous and waits for it.
        umbilical_tests::sys::set_env_for_children("UMBILICAL_TEST_STRANGER_FIRST", verdict.as_os_str());
        let mut cmd = helper(&["exit", "6"]);
        cmd.launcher(launcher.clone()).shim(true).shim_path(HELPER);
        let spawned = cmd.spawn();
        umbilical_tests::sys::set_env_for_children("UMBILICAL_TEST_STRANGER_FIRST", "".as_ref());
        let exit = spawned.unwrap_or_else(|e| panic!("{name}: the real shim connects after the stranger: {e}")).wait();
        assert_eq!(exit.unwrap(), Exit { status: ExitStatus::Exited(6), detection: Detection::Shim }, "{name}");
        let said = std::fs::read_to_string(&verdict)
            .unwrap_or_else(|e| panic!("{name}: the stranger ran and wrote its verdict: {e}"));
        let _ = std::fs::remove_file(&verdict);
        assert_eq!(said, "refused", "{name}: the stranger was answered at the rendezvous");
    }
}
