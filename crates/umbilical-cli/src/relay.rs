//! Copying between umbilical's own stdio and the channel.
//!
//! On Linux each copy goes through `std::io::copy` on plain files made from
//! duplicated descriptors, which moves the bytes inside the kernel
//! (`splice` when either side is a pipe, `sendfile` from a regular file)
//! and falls back to a read/write loop otherwise. Elsewhere, and always on
//! Windows (where the channel's handles are overlapped and must only be
//! used through umbilical's own reads and writes), a plain loop copies
//! through the channel halves. Copies go in slices so the byte count can be
//! published as it grows.

use std::io::{self, Read, Write};

use umbilical::{ReadHalf, WriteHalf};

/// Bytes per copy step; the published count lags by at most this.
const SLICE: u64 = 256 * 1024;

/// Copies until EOF on `from` or an error on either side, reporting each
/// step's byte count. Returns the error that stopped it, if any.
fn copy_counted(mut from: impl Read, mut to: impl Write, mut count: impl FnMut(u64)) -> io::Result<()> {
    loop {
        let moved = io::copy(&mut (&mut from).take(SLICE), &mut to)?;
        if moved == 0 {
            return Ok(());
        }
        count(moved);
    }
}

/// A job that copies umbilical's stdin into the program and half-closes at
/// EOF. A program that stops reading ends it with EPIPE: its choice, not an
/// error of ours.
pub fn to_program(mut writer: WriteHalf, count: impl FnMut(u64) + Send + 'static) -> io::Result<impl FnOnce() + Send> {
    #[cfg(unix)]
    let (stdin, sink) = {
        use std::os::fd::AsFd;
        let fd = writer.as_fd().expect("a fresh channel is open for writing");
        (std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?), std::fs::File::from(fd.try_clone_to_owned()?))
    };
    Ok(move || {
        #[cfg(unix)]
        {
            let _ = copy_counted(stdin, &sink, count);
            drop(sink);
        }
        #[cfg(not(unix))]
        {
            let _ = copy_counted(io::stdin().lock(), &writer, count);
        }
        let _ = writer.shutdown();
    })
}

/// A job that copies the program's output to umbilical's stdout until the
/// channel closes. Whether it ends by EOF or by our stdout failing, reading
/// stops, so the program sees EPIPE instead of blocking on a full buffer.
pub fn from_program(
    reader: ReadHalf,
    count: impl FnMut(u64) + Send + 'static,
) -> io::Result<impl FnOnce() -> io::Result<()> + Send> {
    #[cfg(unix)]
    let (source, stdout) = {
        use std::os::fd::AsFd;
        (
            std::fs::File::from(reader.as_fd().try_clone_to_owned()?),
            std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?),
        )
    };
    Ok(move || {
        #[cfg(unix)]
        let result = copy_counted(&source, &stdout, count);
        #[cfg(not(unix))]
        let result = {
            let mut stdout = io::stdout().lock();
            copy_counted(&reader, &mut FlushEach(&mut stdout), count)
        };
        drop(reader);
        result
    })
}

/// Flushes after every write, so output is not held back in std's stdout
/// buffer while the program waits for input.
#[cfg(not(unix))]
struct FlushEach<'a, W: Write>(&'a mut W);

#[cfg(not(unix))]
impl<W: Write> Write for FlushEach<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(buf)?;
        self.0.flush()?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
