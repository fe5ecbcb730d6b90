//! Running the `umbilical` binary as a user would.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

pub const UMBILICAL: &str = env!("CARGO_BIN_EXE_umbilical");

/// Runs `umbilical ARGS`, feeding `stdin` from a thread, and collects all.
pub fn umbilical(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(UMBILICAL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start umbilical");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}
