//! A transport that accepts a fixed number of bytes and then fails every
//! write: with `Ok(0)` or with an error. A write that straddles the budget
//! is cut short, so the failure lands part-way through a frame.
#![allow(dead_code, unreachable_pub, clippy::arithmetic_side_effects)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// How writes fail once the budget is spent.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `poll_write` returns `Ok(0)`.
    WriteZero,
    /// `poll_write` returns an error of this kind.
    Error(io::ErrorKind),
}

/// A [`DuplexStream`] whose writes fail after `budget` bytes.
pub struct FaultyIo {
    inner: DuplexStream,
    budget: usize,
    fault: Fault,
}

impl FaultyIo {
    pub fn new(inner: DuplexStream, budget: usize, fault: Fault) -> Self {
        Self {
            inner,
            budget,
            fault,
        }
    }
}

impl AsyncRead for FaultyIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.budget == 0 {
            return Poll::Ready(match self.fault {
                Fault::WriteZero => Ok(0),
                Fault::Error(kind) => Err(io::Error::new(kind, "injected write failure")),
            });
        }
        let n = data.len().min(self.budget);
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, data.get(..n).unwrap_or_default()) {
            Poll::Ready(Ok(written)) => {
                this.budget -= written;
                Poll::Ready(Ok(written))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
