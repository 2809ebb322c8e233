//! Writes that leave straight from the application's buffer
//! (`Config::direct_writes`).
//!
//! With the option set, a write with nothing queued ahead of it is framed
//! by `Session::send_direct` and written by the writing task itself; these
//! tests check when the session allows it (sans-IO), that a short write is
//! on the wire before the driver runs (the first of several back to back,
//! and the first after a read; without the option only the latter), that the bytes on the wire keep
//! their order when the transport takes only part of a frame, that a
//! closed window makes a large write wait without losing a byte (and a
//! short one be buffered), that a flush after a direct write is done at
//! once, and that a transport error reaches the writer.

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
use std::time::Instant;

use bytes::BytesMut;
use faulty_io::{Fault, FaultyIo};
use futures::FutureExt;
use mux_core::MuxedStream;
use mux_frame::FrameCodec;
use mux_yamux_lite::frame::{Flags, Frame};
use mux_yamux_lite::session::{DirectSend, ReadChunk, Session};
use mux_yamux_lite::wire::lite;
use mux_yamux_lite::{Config, Connection, Role, Stream};
use support::{
    bounded, connect_with_capacity, data, deliver, handshake_with_window, quiet_config, syn,
    RawPeer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FRAME: usize = 64 * 1024;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// A configuration with direct writes on.
fn direct(mut c: Config) -> Config {
    c.direct_writes = true;
    c
}

/// Exchanges frames until neither side has anything to send (HELLOs,
/// RTT pings and their pongs).
fn settle(a: &mut Session, b: &mut Session, now: Instant) {
    while a.wants_transmit() || b.wants_transmit() {
        deliver(a, b, now);
        deliver(b, a, now);
    }
}

/// Puts a direct frame on a simulated wire: its header from
/// `lite::data_head`, then the payload, decoded as the peer's driver would.
fn wire(head: &[u8], payload: &[u8]) -> Frame {
    let mut bytes = BytesMut::from(head);
    bytes.extend_from_slice(payload);
    let tlv = FrameCodec::default()
        .split_frame(&mut bytes)
        .unwrap()
        .expect("one whole frame");
    assert!(bytes.is_empty(), "the length covers exactly the payload");
    lite::decode(tlv).unwrap()
}

fn drain(session: &mut Session, id: u32) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(ReadChunk::Data(chunk)) = session.read_chunk(id, usize::MAX) {
        out.extend_from_slice(&chunk);
    }
    out
}

#[test]
fn send_direct_frames_only_the_next_frame_and_waits_on_a_closed_window() {
    let now = Instant::now();
    let mut client = Session::new(Role::Client, direct(Config::default()), now);
    let mut server = Session::new(Role::Server, Config::default(), now);
    let id = client.open(now).unwrap().unwrap();
    // No peer HELLO yet: nothing may be sent.
    assert_eq!(client.send_direct(id, FRAME, true), DirectSend::Declined);
    settle(&mut client, &mut server, now);
    let sid = server.accept().unwrap().unwrap();
    settle(&mut client, &mut server, now);
    // Anything queued (here another stream's SYN) has to go first.
    let _queued = client.open(now).unwrap().unwrap();
    assert_eq!(client.send_direct(id, FRAME, true), DirectSend::Declined);
    settle(&mut client, &mut server, now);
    // The caller does not hold a free transport.
    assert_eq!(client.send_direct(id, FRAME, false), DirectSend::Declined);

    let data = pattern(1, 4 * FRAME);
    let before = client.stats();
    for piece in data.chunks(FRAME) {
        // Offered more than a frame, it frames one frame's worth.
        let DirectSend::Framed(d) = client.send_direct(id, 2 * FRAME, true) else {
            panic!("the window (256 KiB) has room");
        };
        assert_eq!((d.id, d.flags, d.len), (id, Flags::NONE, FRAME));
        let head = lite::data_head(d.id, d.flags, d.len);
        // The same bytes the driver would have encoded.
        let mut encoded = BytesMut::new();
        let frame = Frame::Data {
            id,
            flags: d.flags,
            payload: bytes::Bytes::copy_from_slice(piece),
        };
        lite::encode(&frame, &mut encoded);
        assert_eq!(&encoded[..head.len()], &head[..]);
        server.handle_frame(wire(&head, piece), now);
    }
    let after = client.stats();
    assert_eq!(after.frames_sent - before.frames_sent, 4);
    assert_eq!(after.bytes_sent - before.bytes_sent, 4 * FRAME as u64);
    assert!(server.closed_reason().is_none(), "within the window");

    // Window spent: wait, even though the send buffer has room; a small
    // write is still buffered.
    assert_eq!(client.send_direct(id, FRAME, true), DirectSend::AwaitWindow);
    assert_eq!(client.write(id, b"x").unwrap(), Some(1));
    assert_eq!(client.send_direct(id, FRAME, true), DirectSend::AwaitWindow);

    // The peer reads, and its window update opens the window; the byte
    // buffered meanwhile must leave first.
    assert_eq!(drain(&mut server, sid), data);
    deliver(&mut server, &mut client, now);
    assert_eq!(client.send_direct(id, FRAME, true), DirectSend::Declined);
    deliver(&mut client, &mut server, now);
    assert_eq!(drain(&mut server, sid), b"x");
    assert!(matches!(
        client.send_direct(id, 10, true),
        DirectSend::Framed(d) if d.len == 10
    ));

    // A closed write side, a reset stream or a closing connection: never.
    client.close_write(id).unwrap();
    assert_eq!(client.send_direct(id, FRAME, true), DirectSend::Declined);
    deliver(&mut client, &mut server, now);
    let other = client.open(now).unwrap().unwrap();
    deliver(&mut client, &mut server, now);
    client.reset(other, 0);
    assert_eq!(client.send_direct(other, FRAME, true), DirectSend::Declined);
    let third = client.open(now).unwrap().unwrap();
    deliver(&mut client, &mut server, now);
    client.close(now);
    assert_eq!(client.send_direct(third, FRAME, true), DirectSend::Declined);
}

#[tokio::test(start_paused = true)]
async fn without_the_option_a_large_write_on_a_closed_window_is_buffered() {
    bounded(async {
        let (conn, mut peer) = connect_with_capacity(Role::Client, quiet_config(), 1 << 20);
        handshake_with_window(&mut peer, FRAME as u32).await;
        let mut stream = conn.open_stream().await.unwrap();
        assert_eq!(peer.recv().await, Some(syn(stream.id().0)));
        let data = pattern(5, 2 * FRAME);
        assert_eq!(stream.write(&data[..FRAME]).await.unwrap(), FRAME);
        let buffered = stream.write(&data[FRAME..]).now_or_never();
        assert!(
            matches!(buffered, Some(Ok(n)) if n == FRAME),
            "buffered within send_buffer: {buffered:?}"
        );
    })
    .await;
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

#[tokio::test]
async fn a_direct_frame_the_transport_takes_in_part_is_finished_by_the_driver_in_order() {
    bounded(async {
        // A 1000-byte pipe: every 64 KiB frame is taken in small parts.
        let (conn, mut peer) = connect_with_capacity(Role::Client, direct(quiet_config()), 1000);
        peer.handshake().await;
        let mut stream = conn.open_stream().await.unwrap();
        assert_eq!(peer.recv().await, Some(syn(stream.id().0)));
        let id = stream.id().0;

        // Once "a" has left, nothing is queued: the next write goes direct.
        stream.write_all(b"a").await.unwrap();
        assert_eq!(read_data(&mut peer, id, 1).await, b"a");
        let data = pattern(2, 3 * FRAME + 5);
        let writer = tokio::spawn(async move {
            for piece in data.chunks(FRAME) {
                // Accepted whole even though the pipe takes 1000 bytes.
                assert_eq!(stream.write(piece).await.unwrap(), piece.len());
            }
            stream.write_all(b"b").await.unwrap();
            (stream, data)
        });
        let got = read_data(&mut peer, id, 3 * FRAME + 6).await;
        let (_stream, data) = writer.await.unwrap();
        let mut expected = data;
        expected.push(b'b');
        assert!(got == expected, "bytes lost or reordered");
    })
    .await;
}

/// A client with direct writes whose peer grants `window` per stream, and
/// a stream it opened, with the SYN already read: (connection, peer,
/// stream, its id).
async fn direct_stream(window: u32) -> (Connection, RawPeer, Stream, u32) {
    stream_with(direct(quiet_config()), window).await
}

/// [`direct_stream`] with any configuration.
async fn stream_with(config: Config, window: u32) -> (Connection, RawPeer, Stream, u32) {
    let (conn, mut peer) = connect_with_capacity(Role::Client, config, 1 << 20);
    handshake_with_window(&mut peer, window).await;
    let stream = conn.open_stream().await.unwrap();
    let id = stream.id().0;
    assert_eq!(peer.recv().await, Some(syn(id)));
    (conn, peer, stream, id)
}

#[tokio::test(start_paused = true)]
async fn a_large_write_on_a_closed_window_waits_and_loses_nothing() {
    bounded(async {
        let (_conn, mut peer, mut stream, id) = direct_stream(FRAME as u32).await;

        let data = pattern(3, 2 * FRAME);
        assert_eq!(stream.write(&data[..FRAME]).await.unwrap(), FRAME);
        // The window is spent: a large write waits (it is not buffered).
        assert!(
            stream.write(&data[FRAME..]).now_or_never().is_none(),
            "a large write must wait for window"
        );
        let first = read_data(&mut peer, id, FRAME).await;
        // read_data returned the credit; the waiting write can go now.
        assert_eq!(stream.write(&data[FRAME..]).await.unwrap(), FRAME);
        let second = read_data(&mut peer, id, FRAME).await;
        assert!([first, second].concat() == data);
    })
    .await;
}

// The default test runtime runs one task at a time: the driver cannot run
// between the write and the peer's read, so the frame can only be on the
// wire if the writer put it there.
#[tokio::test]
async fn a_short_write_is_on_the_wire_before_the_driver_runs() {
    bounded(async {
        let (_conn, mut peer, mut stream, id) = direct_stream(256 * 1024).await;

        let written = stream.write(b"ping").now_or_never();
        assert!(matches!(written, Some(Ok(4))), "{written:?}");
        let frame = peer.recv().now_or_never();
        assert_eq!(frame, Some(Some(data(id, Flags::NONE, b"ping"))));
    })
    .await;
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

/// The peer asks; the stream reads the question and answers, and the
/// answer is on the wire before the driver runs.
async fn answer_goes_through(peer: &mut RawPeer, stream: &mut Stream, id: u32) {
    peer.send(data(id, Flags::NONE, b"question")).await;
    let mut buf = [0u8; 16];
    assert_eq!(stream.read(&mut buf).await.unwrap(), 8);
    let written = stream.write(b"answer").now_or_never();
    assert!(matches!(written, Some(Ok(6))), "{written:?}");
    let answer = peer.recv().now_or_never();
    assert_eq!(answer, Some(Some(data(id, Flags::NONE, b"answer"))));
}

// As above, the driver cannot run between a write and the next line. A
// writer streaming short writes would otherwise make one transport write
// per message; one that answers what it read waits on the peer anyway.
#[tokio::test]
async fn back_to_back_short_writes_leave_the_second_to_the_driver_until_the_stream_reads() {
    bounded(async {
        let (_conn, mut peer, mut stream, id) = direct_stream(256 * 1024).await;

        assert!(matches!(stream.write(b"one").now_or_never(), Some(Ok(3))));
        let first = peer.recv().now_or_never();
        assert_eq!(first, Some(Some(data(id, Flags::NONE, b"one"))));
        left_to_the_driver(&mut peer, &mut stream, id, b"two").await;

        answer_goes_through(&mut peer, &mut stream, id).await;
    })
    .await;
}

// Without the option too, a short write that answers a read leaves from
// the writer's task while the transport's writes are cheap (under the
// paused clock they cost nothing); a stream's first write, and a second
// one before the next read, wait for the driver, which batches them.
#[tokio::test(start_paused = true)]
async fn without_the_option_an_answer_to_a_read_is_on_the_wire_before_the_driver_runs() {
    bounded(async {
        let (_conn, mut peer, mut stream, id) = stream_with(quiet_config(), 256 * 1024).await;

        left_to_the_driver(&mut peer, &mut stream, id, b"hello").await;

        answer_goes_through(&mut peer, &mut stream, id).await;

        left_to_the_driver(&mut peer, &mut stream, id, b"more").await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_short_write_on_a_closed_window_is_buffered_and_sent_when_it_opens() {
    bounded(async {
        let (_conn, mut peer, mut stream, id) = direct_stream(FRAME as u32).await;

        let data = pattern(6, FRAME);
        assert_eq!(stream.write(&data).await.unwrap(), FRAME);
        let buffered = stream.write(b"tail").now_or_never();
        assert!(matches!(buffered, Some(Ok(4))), "buffered: {buffered:?}");
        let got = read_data(&mut peer, id, FRAME + 4).await;
        assert!(got[..FRAME] == data[..] && &got[FRAME..] == b"tail");
    })
    .await;
}

// A stream whose last write went whole to the transport answers a flush
// without asking the session; any other write must make it ask again.
#[tokio::test]
async fn a_flush_after_a_direct_write_is_done_at_once_and_after_a_buffered_one_waits_for_the_window(
) {
    bounded(async {
        let (_conn, mut peer, mut stream, id) = direct_stream(FRAME as u32).await;

        let data = pattern(7, FRAME);
        assert_eq!(stream.write(&data).await.unwrap(), FRAME);
        let flushed = stream.flush().now_or_never();
        assert!(matches!(flushed, Some(Ok(()))), "on the wire: {flushed:?}");
        // The window is spent: the tail is buffered, and waits for credit.
        assert!(matches!(stream.write(b"tail").now_or_never(), Some(Ok(4))));
        let early = stream.flush().now_or_never();
        assert!(
            early.is_none(),
            "flushed before the window opened: {early:?}"
        );

        let got = read_data(&mut peer, id, FRAME + 4).await;
        assert!(got[..FRAME] == data[..] && &got[FRAME..] == b"tail");
        stream.flush().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_transport_error_in_a_direct_write_fails_the_writer_and_the_connection() {
    bounded(async {
        // Enough for the handshake and the SYN, not for a 64 KiB frame.
        let (a, b) = tokio::io::duplex(1 << 20);
        let io = FaultyIo::new(a, 1000, Fault::Error(io::ErrorKind::BrokenPipe));
        let conn = Connection::new(io, Role::Client, direct(quiet_config()));
        let mut peer = RawPeer::new(b);
        peer.handshake().await;
        let mut stream = conn.open_stream().await.unwrap();
        assert_eq!(peer.recv().await, Some(syn(stream.id().0)));

        let err = stream.write(&pattern(4, FRAME)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err:?}");
        assert!(conn.is_closed(), "the connection ends with its transport");
        assert!(stream.write(b"more").await.is_err());
    })
    .await;
}
