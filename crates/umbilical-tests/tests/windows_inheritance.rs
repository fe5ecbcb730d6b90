//! Exact inheritance on Windows: an inheritable pipe handle and an
//! inheritable socket are open in the parent while several threads spawn;
//! each child proves those handle values are not valid in it, while its own
//! stdio works.

#![cfg(windows)]

mod common;

use std::io::Read;

use common::*;

#[test]
fn inheritable_pipe_and_socket_do_not_reach_children() {
    let _g = fd_lock();
    let (_r, _w, pipe_value) = umbilical_tests::sys::inheritable_pipe();
    let (_socket, socket_value) = umbilical_tests::sys::inheritable_socket();
    // std's Command, for contrast, passes every inheritable handle on.
    let out = std::process::Command::new(HELPER)
        .args(["handles", &pipe_value.to_string(), &socket_value.to_string()])
        .output()
        .unwrap();
    // Shown (written past libtest's capture) as the contrast to what follows.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "note: a std::process::Command child sees our pipe and socket as: {}\n",
            String::from_utf8_lossy(&out.stdout).trim()
        )
        .as_bytes(),
    );

    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..10 {
                    let mut child = helper(&["handles", &pipe_value.to_string(), &socket_value.to_string()])
                        .lifeline(i % 2 == 0)
                        .stderr(if t % 2 == 0 { umbilical::Stderr::Piped } else { umbilical::Stderr::Inherit })
                        .spawn()
                        .unwrap();
                    let mut ch = child.take_channel().unwrap();
                    ch.shutdown_write().unwrap();
                    let mut out = String::new();
                    ch.read_to_string(&mut out).unwrap();
                    assert!(child.wait().unwrap().success());
                    assert_eq!(out.trim(), "invalid invalid", "thread {t} spawn {i}: the child saw our handles");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a spawning thread failed");
    }
}
