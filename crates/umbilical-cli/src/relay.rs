//! Copying between umbilical's own stdio and the channel.
//!
//! Each copy goes through `std::io::copy`, which on Linux moves the bytes
//! inside the kernel (`splice` when either side is a pipe, `sendfile` from a
//! regular file) and falls back to a read/write loop otherwise. The copy is
//! done in slices so the byte count can be published as it grows.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes per `io::copy` call; the published count lags by at most this.
const SLICE: u64 = 256 * 1024;

/// Copies until EOF on `from` or an error on either side, adding to
/// `count` as it goes. Returns the error that stopped it, if any.
pub fn copy_counted(mut from: impl Read, mut to: impl Write, count: &AtomicU64) -> io::Result<()> {
    loop {
        let moved = io::copy(&mut (&mut from).take(SLICE), &mut to)?;
        if moved == 0 {
            return Ok(());
        }
        count.fetch_add(moved, Ordering::Relaxed);
    }
}
