//! Half-close: the program sees EOF exactly after the last byte, and the
//! reply is byte-exact, for any size and write pattern.

mod common;

use common::*;
use proptest::prelude::*;
use umbilical::ChannelKind;

fn echo_round_trip(kind: ChannelKind, len: usize, chunks: Vec<usize>, seed: u64) {
    let payload = pattern(len, seed);
    let expected = payload.clone();
    let out = bounded(LIMIT, "echo round trip", move || {
        let mut child = helper(&["echo"]).channel_kind(kind).spawn().expect("spawn echo");
        let out = round_trip(child.take_channel().unwrap(), payload, chunks);
        let exit = child.wait().expect("wait");
        assert_eq!(exit.code(), Some(0), "echo exits 0 after EOF");
        out
    });
    assert_eq!(out.len(), expected.len(), "reply length");
    assert!(out == expected, "reply differs from what was sent ({len} bytes, {kind:?})");
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        1usize..4096,
        4096usize..300_000,
        (1usize..=8).prop_map(|m| m * 1024 * 1024), // up to 8 MiB
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn socket_echo_is_byte_exact(len in sizes(), chunks in prop::collection::vec(1usize..200_000, 1..6), seed in any::<u64>()) {
        echo_round_trip(ChannelKind::Socket, len, chunks, seed);
    }

    #[test]
    fn pipes_echo_is_byte_exact(len in sizes(), chunks in prop::collection::vec(1usize..200_000, 1..6), seed in any::<u64>()) {
        echo_round_trip(ChannelKind::Pipes, len, chunks, seed);
    }
}

/// The program counts what it read before EOF: exactly what was written.
#[test]
fn eof_arrives_exactly_after_the_last_byte() {
    for kind in [ChannelKind::Socket, ChannelKind::Pipes] {
        for len in [0usize, 1, 65_535, 65_536, 1_000_001] {
            let out = bounded(LIMIT, "count", move || {
                let mut child = helper(&["count"]).channel_kind(kind).spawn().unwrap();
                let out = round_trip(child.take_channel().unwrap(), pattern(len, 7), vec![4093]);
                assert!(child.wait().unwrap().success());
                out
            });
            assert_eq!(String::from_utf8(out).unwrap().trim(), len.to_string(), "{kind:?}");
        }
    }
}

/// Real tools, not only the helper.
#[cfg(unix)]
#[test]
fn real_tools_cat_sort_sha256sum() {
    use std::io::{Read, Write};
    // cat: 4 MiB byte-exact.
    let payload = pattern(4 << 20, 99);
    let expected = payload.clone();
    let out = bounded(LIMIT, "cat", move || {
        let mut child = umbilical::Command::new("cat").spawn().unwrap();
        let out = round_trip(child.take_channel().unwrap(), payload, vec![70_000]);
        assert!(child.wait().unwrap().success());
        out
    });
    assert!(out == expected);

    // sort needs EOF before it writes anything.
    let mut child = umbilical::Command::new("sort").env("LC_ALL", "C").spawn().unwrap();
    let ch = child.channel().unwrap();
    ch.write_all(b"pear\napple\nfig\n").unwrap();
    ch.shutdown_write().unwrap();
    let mut sorted = String::new();
    ch.read_to_string(&mut sorted).unwrap();
    assert_eq!(sorted, "apple\nfig\npear\n");
    assert!(child.wait().unwrap().success());

    // sha256sum of "abc".
    let mut child = umbilical::Command::new("sha256sum").channel_kind(ChannelKind::Pipes).spawn().unwrap();
    let ch = child.channel().unwrap();
    ch.write_all(b"abc").unwrap();
    ch.shutdown_write().unwrap();
    let mut sum = String::new();
    ch.read_to_string(&mut sum).unwrap();
    assert!(sum.starts_with("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "{sum}");
    assert!(child.wait().unwrap().success());
}

/// `Channel::pair` with std's `Command`, the building block for people who
/// keep std.
#[test]
fn pair_works_with_std_command() {
    use std::io::{Read, Write};
    for kind in [ChannelKind::Socket, ChannelKind::Pipes] {
        let (mut channel, child_end) = umbilical::Channel::pair(kind).unwrap();
        let (stdin, stdout) = child_end.into_stdio().unwrap();
        let mut child = std::process::Command::new(HELPER).arg("count").stdin(stdin).stdout(stdout).spawn().unwrap();
        channel.write_all(&[1u8; 100_000]).unwrap();
        channel.shutdown_write().unwrap();
        let mut out = String::new();
        channel.read_to_string(&mut out).unwrap();
        assert_eq!(out.trim(), "100000");
        assert!(child.wait().unwrap().success());
    }
}

/// 64 MiB byte-exact through the helper's echo, half-closed at the end.
#[test]
fn sixty_four_mib_round_trip() {
    for kind in [ChannelKind::Socket, ChannelKind::Pipes] {
        echo_round_trip(kind, 64 << 20, vec![1 << 20, 65_536, 77_777], 64);
    }
}

/// A real Windows program: `cmd /c more` passes text through until EOF.
#[cfg(windows)]
#[test]
fn real_tool_cmd_more() {
    use std::io::{Read, Write};
    let text: String = (0..2000).map(|i| format!("line {i}\r\n")).collect();
    let mut child = umbilical::Command::new("cmd").args(["/c", "more"]).spawn().unwrap();
    let (mut r, mut w) = child.take_channel().unwrap().split();
    let input = text.clone();
    let feeder = std::thread::spawn(move || {
        w.write_all(input.as_bytes()).unwrap();
        w.shutdown().unwrap();
    });
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    // Wine's `more` pages even into a pipe, inserting this marker every 24
    // lines; everything else must arrive intact.
    assert_eq!(out.replace("-- More... --\n", "").trim_end(), text.trim_end());
}

/// `Channel::into_fds`: the descriptors handed to another event loop keep
/// the channel's promises. `shutdown(SHUT_WR)` on the write socket (what
/// libuv's `uv_shutdown` does) or closing the write pipe is the half-close,
/// and the output is still read to its end. A channel the `Child` watches
/// for the end is refused, unchanged.
#[cfg(unix)]
#[test]
fn into_fds_keeps_half_close_for_every_kind() {
    use std::io::{Read, Write};
    for kind in [ChannelKind::Socket, ChannelKind::SharedSocket, ChannelKind::Pipes] {
        bounded(LIMIT, "into_fds", move || {
            let mut child = umbilical::Command::new("sort").channel_kind(kind).spawn().expect("spawn sort");
            let (read, write) = child.take_channel().unwrap().into_fds().expect("not watched");
            let mut w = std::fs::File::from(write);
            w.write_all(b"pear\napple\n").unwrap();
            // Kept open until the output is read: the half-close alone must
            // make sort see EOF.
            let _held = if kind == ChannelKind::Pipes {
                drop(w);
                None
            } else {
                let sock = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(w));
                sock.shutdown(std::net::Shutdown::Write).unwrap();
                Some(sock)
            };
            let mut out = String::new();
            std::fs::File::from(read).read_to_string(&mut out).unwrap();
            assert_eq!(out, "apple\npear\n", "{kind:?}");
            assert!(child.wait().unwrap().success());
        });
    }
    let mut watched = umbilical::Command::new("cat")
        .exit_detection(umbilical::ExitDetection::ChannelClosed)
        .spawn()
        .expect("spawn cat");
    let mut channel = watched.take_channel().unwrap().into_fds().expect_err("a watched channel stays whole");
    channel.shutdown_write().unwrap();
    assert!(channel.into_fds().is_err(), "a half-closed channel stays whole");
    watched.wait().unwrap();
}
