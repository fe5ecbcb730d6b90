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
    let verdict = std::env::temp_dir().join(format!("umbilical-stranger-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&verdict);
    // The shim (the helper) inherits this process's environment; with this
    // variable it first sends a stranger to the rendezvous and waits for it.
    umbilical_tests::sys::set_env_for_children("UMBILICAL_TEST_STRANGER_FIRST", verdict.as_os_str());
    let mut cmd = helper(&["exit", "6"]);
    cmd.launcher(Launcher::Direct).shim(true).shim_path(HELPER);
    let spawned = cmd.spawn();
    umbilical_tests::sys::set_env_for_children("UMBILICAL_TEST_STRANGER_FIRST", "".as_ref());
    let exit = spawned.expect("the real shim connects after the stranger").wait().unwrap();
    assert_eq!(exit, Exit { status: ExitStatus::Exited(6), detection: Detection::Shim });
    let said = std::fs::read_to_string(&verdict).expect("the stranger ran and wrote its verdict");
    let _ = std::fs::remove_file(&verdict);
    assert_eq!(said, "refused", "the stranger was answered at the rendezvous");
}
