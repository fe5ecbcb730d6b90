//! The control-protocol decoder on hostile bytes: it must never panic, never
//! claim more bytes than it was given, and whatever it accepts must encode
//! back to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbilical::protocol::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((msg, used))) = decode(data) {
        assert!(used <= data.len());
        assert_eq!(encode(&msg), &data[..used], "accepted frame re-encodes identically");
    }
});
