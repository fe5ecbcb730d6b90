//! The caller of the library dies (killed: SIGKILL on Unix,
//! `TerminateProcess` on Windows, so nothing of it runs) while its program
//! runs through the shim: the shim sees the control link drop and ends the
//! program, within the caller-gone grace (issue #9, item 7). On Linux and,
//! under Wine, on Windows.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn the_program_ends_when_the_caller_is_killed() {
    let mut caller = std::process::Command::new(HELPER)
        .args(["shimmed-parent", "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the caller");
    let out = caller.stdout.take().unwrap();
    let line = bounded(LIMIT, "the caller's report of the program's pid", move || {
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).map(|_| line)
    })
    .expect("read the pid");
    let program: u32 = line.trim().parse().unwrap_or_else(|_| panic!("a pid, not {line:?}"));
    assert!(umbilical_tests::sys::alive(program), "the program runs before the caller dies");
    caller.kill().expect("kill the caller");
    let _ = caller.wait();
    let start = Instant::now();
    while umbilical_tests::sys::alive(program) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the program (pid {program}) outlived its killed caller by 10 s (grace 300 ms)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
