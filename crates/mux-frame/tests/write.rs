//! `write_frame`: correct bytes, vectored and without copying the value.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::StreamExt;
use mux_frame::{write_frame, Frame, FrameCodec, HEADER_LEN};
use tokio::io::AsyncWrite;
use tokio_util::codec::FramedRead;

/// A writer that records what each call was handed.
struct Recorder {
    vectored: bool,
    /// Most bytes accepted per call; 0 simulates a writer that stopped.
    per_call: usize,
    out: Vec<u8>,
    /// For each call, the (address, length) of every slice offered.
    calls: Vec<Vec<(usize, usize)>>,
}

impl Recorder {
    fn new(vectored: bool, per_call: usize) -> Self {
        Self {
            vectored,
            per_call,
            out: Vec::new(),
            calls: Vec::new(),
        }
    }

    fn accept(&mut self, bufs: &[&[u8]]) -> usize {
        self.calls
            .push(bufs.iter().map(|b| (b.as_ptr().addr(), b.len())).collect());
        let mut budget = self.per_call;
        for buf in bufs {
            let accepted = buf.get(..budget).unwrap_or(buf);
            self.out.extend_from_slice(accepted);
            budget = budget.saturating_sub(accepted.len());
        }
        self.per_call.saturating_sub(budget)
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().accept(&[buf])))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let slices: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
        Poll::Ready(Ok(self.get_mut().accept(&slices)))
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn write_frame_over_duplex_reads_back_with_framed_read() {
    let frames = vec![
        Frame::new(1, "abc"),
        Frame::new(2, ""),
        Frame::new(3, vec![0xEEu8; 5000]),
    ];
    // A small pipe forces partial writes and interleaves with the reader.
    let (mut tx, rx) = tokio::io::duplex(64);
    let sent = frames.clone();
    let writer = tokio::spawn(async move {
        for frame in sent {
            write_frame(&mut tx, frame).await.unwrap();
        }
    });
    let received: Vec<Frame> = FramedRead::new(rx, FrameCodec::new())
        .map(Result::unwrap)
        .collect()
        .await;
    writer.await.unwrap();
    assert_eq!(received, frames);
}

#[tokio::test]
async fn write_frame_is_one_vectored_write_of_the_original_value() {
    let frame = Frame::new(9, vec![1u8; 4096]);
    let value_addr = frame.value.as_ptr().addr();
    let mut w = Recorder::new(true, usize::MAX);
    write_frame(&mut w, frame.clone()).await.unwrap();

    assert_eq!(
        w.calls,
        [vec![(w.calls[0][0].0, HEADER_LEN), (value_addr, 4096)]]
    );
    assert_eq!(w.out[..HEADER_LEN], frame.header().unwrap().encode());
    assert_eq!(w.out[HEADER_LEN..], frame.value);
}

#[tokio::test]
async fn write_frame_survives_tiny_partial_writes() {
    let frame = Frame::new(4, "partial");
    // 12 bytes, 2 per call: a vectored write crosses the header/value
    // boundary in one call (6 calls); a plain one stops at it (3 + 4 calls).
    for (vectored, calls) in [(false, 7), (true, 6)] {
        let mut w = Recorder::new(vectored, 2);
        write_frame(&mut w, frame.clone()).await.unwrap();
        assert_eq!(
            w.out, b"\x04\x00\x00\x00\x07partial",
            "vectored: {vectored}"
        );
        assert_eq!(w.calls.len(), calls, "vectored: {vectored}");
    }
}

#[tokio::test]
async fn write_frame_reports_a_writer_that_stops() {
    let mut w = Recorder::new(true, 0);
    let err = write_frame(&mut w, Frame::new(1, "x")).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WriteZero);
}
