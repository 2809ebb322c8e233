//! Short answers that leave from the writing task.
//!
//! A short write that follows a read on the same stream is an answer: while
//! nothing is queued ahead of it, the peer's window is open and the
//! transport's writes are cheap, it is written by the writing task itself
//! (`Link::try_send_now`) instead of waiting for the driver's turn. These
//! tests check that an answer is on the wire before the driver runs while a
//! stream's first write, and a second one before the next read, wait for
//! the driver; that a closed window buffers an answer without losing it;
//! that a flush after an answer written whole is done at once; that the
//! bytes keep their order when the transport takes only part of a frame;
//! and that a transport error reaches the writer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

#[path = "support/faulty_io.rs"]
mod faulty_io;
mod support;

use std::io;

use faulty_io::{Fault, FaultyIo};
use futures::FutureExt;
use mux_core::MuxedStream;
use mux_yamux_lite::frame::{Flags, Frame};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use support::{
    bounded, connect_with_capacity, data, handshake_with_window, quiet_config, syn, RawPeer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FRAME: usize = 64 * 1024;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Collects DATA payloads of stream `id` until `len` bytes arrived,
/// answering pings and returning window credit as they are read.
async fn read_data(peer: &mut RawPeer, id: u32, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        match peer.recv_significant().await {
            Some(Frame::Data {
                id: got_id,
                payload,
                ..
            }) if got_id == id => {
                got.extend_from_slice(&payload);
                peer.send(Frame::Window {
                    id,
                    flags: Flags::NONE,
                    delta: payload.len() as u32,
                })
                .await;
            }
            Some(_) => {}
            None => panic!("EOF after {} of {len} bytes", got.len()),
        }
    }
    got
}

/// A client whose peer grants `window` per stream, and a stream it opened,
/// with the SYN already read: (connection, peer, stream, its id).
async fn stream_with(config: Config, window: u32) -> (Connection, RawPeer, Stream, u32) {
    let (conn, mut peer) = connect_with_capacity(Role::Client, config, 1 << 20);
    handshake_with_window(&mut peer, window).await;
    let stream = conn.open_stream().await.unwrap();
    let id = stream.id().0;
    assert_eq!(peer.recv().await, Some(syn(id)));
    (conn, peer, stream, id)
}

/// Writes `bytes` (short) and checks that they are not on the wire until
/// the driver runs, and then are.
async fn left_to_the_driver(peer: &mut RawPeer, stream: &mut Stream, id: u32, bytes: &[u8]) {
    let written = stream.write(bytes).now_or_never();
    assert!(
        matches!(written, Some(Ok(n)) if n == bytes.len()),
        "{written:?}"
    );
    assert_eq!(
        peer.recv().now_or_never(),
        None,
        "written through: {bytes:?}"
    );
    assert_eq!(read_data(peer, id, bytes.len()).await, bytes);
}

/// The peer asks and the stream reads the question.
async fn read_question(peer: &mut RawPeer, stream: &mut Stream, id: u32) {
    peer.send(data(id, Flags::NONE, b"question")).await;
    let mut buf = [0u8; 16];
    assert_eq!(stream.read(&mut buf).await.unwrap(), 8);
}

/// The peer asks; the stream reads the question and answers, and the
/// answer is on the wire before the driver runs.
async fn answer_goes_through(peer: &mut RawPeer, stream: &mut Stream, id: u32) {
    read_question(peer, stream, id).await;
    let written = stream.write(b"answer").now_or_never();
    assert!(matches!(written, Some(Ok(6))), "{written:?}");
    let answer = peer.recv().now_or_never();
    assert_eq!(answer, Some(Some(data(id, Flags::NONE, b"answer"))));
}

// The test runtime runs one task at a time: the driver cannot run between
// a write and the next line, so a frame can only be on the wire then if the
// writer put it there. Under the paused clock the transport's writes cost
// nothing, so answers go through; a stream's first write, and a second one
// before the next read, wait for the driver, which batches them.
#[tokio::test(start_paused = true)]
async fn an_answer_to_a_read_is_on_the_wire_before_the_driver_runs_and_other_writes_are_not() {
    bounded(async {
        let (_conn, mut peer, mut stream, id) = stream_with(quiet_config(), 256 * 1024).await;

        left_to_the_driver(&mut peer, &mut stream, id, b"hello").await;

        answer_goes_through(&mut peer, &mut stream, id).await;

        left_to_the_driver(&mut peer, &mut stream, id, b"more").await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_answer_on_a_closed_window_is_buffered_and_sent_when_it_opens() {
    bounded(async {
        let (_conn, mut peer, mut stream, id) = stream_with(quiet_config(), FRAME as u32).await;

        let data = pattern(6, FRAME);
        assert_eq!(stream.write(&data).await.unwrap(), FRAME);
        read_question(&mut peer, &mut stream, id).await;
        let buffered = stream.write(b"tail").now_or_never();
        assert!(matches!(buffered, Some(Ok(4))), "buffered: {buffered:?}");
        let got = read_data(&mut peer, id, FRAME + 4).await;
        assert!(got[..FRAME] == data[..] && &got[FRAME..] == b"tail");
    })
    .await;
}

// A stream whose last write went whole to the transport answers a flush
// without asking the session; any other write must make it ask again.
#[tokio::test(start_paused = true)]
async fn a_flush_after_an_answer_written_through_is_done_at_once_and_after_a_buffered_one_waits() {
    bounded(async {
        let window = 4096;
        let (_conn, mut peer, mut stream, id) = stream_with(quiet_config(), window).await;

        read_question(&mut peer, &mut stream, id).await;
        let data = pattern(7, window as usize);
        assert_eq!(stream.write(&data).await.unwrap(), data.len());
        let flushed = stream.flush().now_or_never();
        assert!(matches!(flushed, Some(Ok(()))), "on the wire: {flushed:?}");
        assert_eq!(
            peer.recv().now_or_never(),
            Some(Some(Frame::Data {
                id,
                flags: Flags::NONE,
                payload: data.clone().into()
            })),
            "written through"
        );
        // The window is spent: the tail is buffered, and waits for credit.
        read_question(&mut peer, &mut stream, id).await;
        assert!(matches!(stream.write(b"tail").now_or_never(), Some(Ok(4))));
        let early = stream.flush().now_or_never();
        assert!(
            early.is_none(),
            "flushed before the window opened: {early:?}"
        );

        peer.send(Frame::Window {
            id,
            flags: Flags::NONE,
            delta: window,
        })
        .await;
        assert_eq!(read_data(&mut peer, id, 4).await, b"tail");
        stream.flush().await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_answer_the_transport_takes_in_part_is_finished_by_the_driver_in_order() {
    bounded(async {
        // A 1000-byte pipe: a 7 KiB answer is taken in parts.
        let (_conn, mut peer, mut stream, id) = {
            let (conn, mut peer) = connect_with_capacity(Role::Client, quiet_config(), 1000);
            peer.handshake().await;
            let stream = conn.open_stream().await.unwrap();
            let id = stream.id().0;
            assert_eq!(peer.recv().await, Some(syn(id)));
            (conn, peer, stream, id)
        };
        read_question(&mut peer, &mut stream, id).await;
        let answer = pattern(2, 7 * 1024);
        let writer = tokio::spawn(async move {
            assert_eq!(stream.write(&answer).await.unwrap(), answer.len());
            stream.write_all(b"b").await.unwrap();
            (stream, answer)
        });
        let got = read_data(&mut peer, id, 7 * 1024 + 1).await;
        let (_stream, mut expected) = writer.await.unwrap();
        expected.push(b'b');
        assert!(got == expected, "bytes lost or reordered");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_transport_error_in_an_answer_fails_the_writer_and_the_connection() {
    bounded(async {
        // Enough for the handshake, the SYN and the question's window
        // update, not for a 7 KiB answer.
        let (a, b) = tokio::io::duplex(1 << 20);
        let io = FaultyIo::new(a, 1000, Fault::Error(io::ErrorKind::BrokenPipe));
        let conn = Connection::new(io, Role::Client, quiet_config());
        let mut peer = RawPeer::new(b);
        peer.handshake().await;
        let mut stream = conn.open_stream().await.unwrap();
        let id = stream.id().0;
        assert_eq!(peer.recv().await, Some(syn(id)));
        read_question(&mut peer, &mut stream, id).await;

        let err = stream.write(&pattern(4, 7 * 1024)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err:?}");
        assert!(conn.is_closed(), "the connection ends with its transport");
        assert!(stream.write(b"more").await.is_err());
    })
    .await;
}
