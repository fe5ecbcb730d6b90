//! The async [`Child::communicate`]: the input fed, the output and stderr
//! read and the end awaited, all in one future on the caller's task.

use crate::tokio::PollCutoff;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Child, WriteHalf};
use crate::Output;
use crate::cutoff::Cutoff;

/// How much one read takes at most.
const CHUNK: usize = 16 * 1024;

pub(super) async fn communicate(child: &mut Child, input: &[u8]) -> io::Result<Output> {
    let channel = child.take_channel().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "communicate: the channel was taken from the child")
    })?;
    let mut stderr = child.take_stderr();
    let cutoff = child.cutoff();
    let (mut reader, writer) = channel.split();
    let mut feed = Feed { writer: Some(writer), input, timer: None };
    if input.is_empty() {
        feed.close();
    }
    let mut stdout = Drain::default();
    let mut errors = stderr.as_ref().map(|_| Drain::default());
    let mut ending = pin!(child.wait());
    let mut exit = None;
    std::future::poll_fn(|cx| {
        feed.poll(cx, cutoff.as_deref())?;
        stdout.poll(cx, Pin::new(&mut reader))?;
        if let (Some(drain), Some(pipe)) = (&mut errors, &mut stderr) {
            drain.poll(cx, Pin::new(pipe))?;
        }
        if exit.is_none()
            && let Poll::Ready(ended) = ending.as_mut().poll(cx)
        {
            exit = Some(ended?);
        }
        let done = feed.writer.is_none() && stdout.done && errors.as_ref().is_none_or(|d| d.done);
        if done && exit.is_some() { Poll::Ready(Ok::<_, io::Error>(())) } else { Poll::Pending }
    })
    .await?;
    let truncated = reader.truncated() || stderr.as_ref().is_some_and(super::ChildStderr::truncated);
    Ok(Output {
        stdout: stdout.bytes,
        stderr: errors.map(|d| d.bytes),
        exit: exit.expect("the loop ends with the exit"),
        truncated,
    })
}

/// The input still to write.
struct Feed<'a> {
    /// `None` once half-closed.
    writer: Option<WriteHalf>,
    input: &'a [u8],
    timer: Option<Pin<Box<::tokio::time::Sleep>>>,
}

impl Feed<'_> {
    /// The half-close (dropping the half does it).
    fn close(&mut self) {
        self.writer = None;
    }

    /// Writes what it can; half-closes once all is written, the program
    /// stopped reading, or the wait-delay cutoff passed.
    fn poll(&mut self, cx: &mut Context<'_>, cutoff: Option<&Cutoff>) -> io::Result<()> {
        while let Some(writer) = &mut self.writer {
            if self.input.is_empty() || cutoff.is_some_and(|c| c.poll_passed(cx, &mut self.timer)) {
                self.close();
                break;
            }
            match Pin::new(writer).poll_write(cx, self.input) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => self.input = &self.input[n..],
                // Python's communicate() ignores a reader that left, too.
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => self.close(),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        Ok(())
    }
}

/// One output read to its end.
#[derive(Default)]
struct Drain {
    bytes: Vec<u8>,
    done: bool,
}

impl Drain {
    fn poll(&mut self, cx: &mut Context<'_>, mut from: Pin<&mut impl AsyncRead>) -> io::Result<()> {
        while !self.done {
            let len = self.bytes.len();
            self.bytes.resize(len + CHUNK, 0);
            let mut buf = ReadBuf::new(&mut self.bytes[len..]);
            let polled = from.as_mut().poll_read(cx, &mut buf);
            let got = buf.filled().len();
            self.bytes.truncate(len + got);
            match polled {
                Poll::Ready(Ok(())) if got == 0 => self.done = true,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        Ok(())
    }
}
