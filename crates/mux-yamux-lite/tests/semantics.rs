//! Stream semantics of mux-yamux-lite: half-close, close-read, reset,
//! deadlines and dropped handles, each proved with two real `Connection`s
//! joined by an in-memory duplex pipe (one pair per test).
#![allow(clippy::arithmetic_side_effects)]

mod duplex_pair;

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mux_core::{MuxedStream, StreamError};
use mux_yamux_lite::frame::reset_code;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use duplex_pair::*;

// ----- half-close -----------------------------------------------------------

#[tokio::test]
async fn client_close_write_gives_server_eof_and_server_can_still_write_back() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;

        c.write_all(b"request").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        assert_eq!(s.read(&mut [0u8; 8]).await.unwrap(), 0, "EOF is sticky");

        let e = c.write(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(matches!(stream_err(&e), StreamError::WriteClosed), "{e:?}");

        s.write_all(b"response").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"response");
    })
    .await;
}

#[tokio::test]
async fn server_close_write_gives_client_eof_and_client_can_still_write_back() {
    bounded(async {
        let (client, server) = pair();
        // The server opens, and closes its write side before sending a byte.
        let (mut s, mut c) = open_accept(&server, &client).await;
        assert_eq!(s.id().get() % 2, 0, "server-opened ids are even");
        s.shutdown().await.unwrap();

        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());

        // More than a window: the server still grants credit after its FIN.
        let data = pattern(1, 1 << 20);
        let mut back = Vec::new();
        let (w, r) = tokio::join!(
            async {
                c.write_all(&data).await?;
                c.shutdown().await
            },
            s.read_to_end(&mut back)
        );
        w.unwrap();
        r.unwrap();
        assert!(back == data, "bytes after the peer's FIN arrive intact");
    })
    .await;
}

// ----- close_read -----------------------------------------------------------

#[tokio::test]
async fn close_read_fails_pending_and_later_reads_with_read_closed_while_peer_writes_succeed() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;

        // A read that is pending (nothing was sent yet) ...
        let flag = Arc::new(WakeFlag::default());
        let waker = futures::task::waker(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 64];
        let mut rb = ReadBuf::new(&mut buf);
        assert!(Pin::new(&mut c).poll_read(&mut cx, &mut rb).is_pending());

        // ... is woken by close_read and then fails, not with EOF.
        c.close_read().unwrap();
        assert!(
            flag.0.load(Ordering::SeqCst),
            "close_read wakes the pending read"
        );
        match Pin::new(&mut c).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Err(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::NotConnected);
                assert!(matches!(stream_err(&e), StreamError::ReadClosed), "{e:?}");
            }
            other => panic!("expected ReadClosed, got {other:?}"),
        }
        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert!(matches!(stream_err(&e), StreamError::ReadClosed), "{e:?}");

        // The peer may write far more than one window: the discarded bytes
        // return their credit, so its writes and its FIN complete.
        let data = pattern(2, 1 << 20);
        s.write_all(&data).await.unwrap();
        s.shutdown().await.unwrap();

        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert!(
            matches!(stream_err(&e), StreamError::ReadClosed),
            "still ReadClosed after the peer's FIN, not EOF: {e:?}"
        );

        // The write side is unaffected.
        c.write_all(b"still writable").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"still writable");
    })
    .await;
}

// ----- reset ----------------------------------------------------------------

#[tokio::test]
async fn reset_with_code_fails_both_sides_and_drops_the_peers_unread_data() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;
        let (mut c_mark, mut s_mark) = open_accept(&client, &server).await;

        // The server gets 1000 bytes it does not read. A marker on another
        // stream, queued after them, arrives after them: once the server
        // reads it, the bytes are there, ahead of the RESET.
        c.write_all(&[1u8; 1000]).await.unwrap();
        c_mark.write_all(b"m").await.unwrap();
        s_mark.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(server.stats().bytes_received, 1001);
        c.reset_with(42);
        // A second marker, framed after the RESET: once the server reads
        // it, the RESET has been handled too.
        c_mark.write_all(b"n").await.unwrap();
        s_mark.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(server.stats().bytes_received, 1002);

        let e = s.read(&mut [0u8; 2000]).await.unwrap_err();
        assert_reset(&e, 42, true);
        let e = s.write(b"x").await.unwrap_err();
        assert_reset(&e, 42, true);
        let e = s.shutdown().await.unwrap_err();
        assert_reset(&e, 42, true);

        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert_reset(&e, 42, false);
        let e = c.write(b"x").await.unwrap_err();
        assert_reset(&e, 42, false);

        // Only that stream ended.
        s_mark.write_all(b"alive").await.unwrap();
        let mut back = [0u8; 5];
        c_mark.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"alive");
        assert!(!client.is_closed() && !server.is_closed());
    })
    .await;
}

#[tokio::test]
async fn reset_without_code_reaches_the_peer_as_code_zero() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;
        s.reset();
        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert_reset(&e, reset_code::CANCEL, true);
        assert!(stream_err(&e).is_remote());
    })
    .await;
}

// ----- deadlines ------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn read_deadline_set_while_a_read_is_pending_times_out_and_clearing_it_loses_no_byte() {
    let (client, server) = pair_with(quiet(), quiet());
    let (c, mut s) = open_accept(&client, &server).await;
    let deadlines = c.deadlines();
    let reader = tokio::spawn(async move {
        let mut c = c;
        let result = c.read(&mut [0u8; 16]).await;
        (c, result)
    });
    yield_many().await;
    assert!(!reader.is_finished(), "nothing to read yet");

    // Set from this task while the other one is blocked in the read.
    let start = Instant::now();
    deadlines.set_read(Some(start + Duration::from_secs(5)));
    tokio::time::advance(Duration::from_secs(4)).await;
    yield_many().await;
    assert!(!reader.is_finished(), "the deadline has not passed yet");
    tokio::time::advance(Duration::from_secs(1)).await;
    let (mut c, result) = reader.await.unwrap();
    let e = result.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(matches!(stream_err(&e), StreamError::TimedOut), "{e:?}");
    assert_eq!(Instant::now() - start, Duration::from_secs(5));

    // The deadline closed nothing: clear it, and later data arrives in full.
    c.set_read_deadline(None);
    let data = pattern(3, 100_000);
    s.write_all(&data).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert!(got == data, "every byte written after the timeout is read");
}

#[tokio::test(start_paused = true)]
async fn write_deadline_on_an_exhausted_window_times_out_and_after_clearing_every_byte_arrives() {
    const WINDOW: usize = 1024;
    const SEND_BUFFER: usize = 4096;
    let mut client_cfg = quiet();
    client_cfg.send_buffer = SEND_BUFFER;
    let mut server_cfg = quiet();
    server_cfg.initial_window = WINDOW as u32; // what the server grants the client
    let (client, server) = pair_with(client_cfg, server_cfg);
    let (mut c, mut s) = open_accept(&client, &server).await;

    let data = Arc::new(pattern(4, 64 * 1024));
    let start = Instant::now();
    c.set_write_deadline(Some(start + Duration::from_secs(10)));
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            let mut off = 0;
            let err = loop {
                if off == data.len() {
                    break None;
                }
                match c.write(&data[off..]).await {
                    Ok(n) => off += n,
                    Err(e) => break Some(e),
                }
            };
            (c, off, err)
        })
    };
    tokio::time::advance(Duration::from_secs(9)).await;
    yield_many().await;
    assert!(
        !writer.is_finished(),
        "blocked on the window, deadline not reached"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let (mut c, off, err) = writer.await.unwrap();
    let e = err.expect("the write must time out, not complete");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(matches!(stream_err(&e), StreamError::TimedOut), "{e:?}");
    assert_eq!(
        off,
        WINDOW + SEND_BUFFER,
        "one window sent plus a full send buffer"
    );

    c.set_write_deadline(None);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.map(|_| got)
    });
    c.write_all(&data[off..]).await.unwrap();
    c.shutdown().await.unwrap();
    let got = reader.await.unwrap().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(
        got == *data,
        "nothing was lost or duplicated by the timeout"
    );
}

// ----- dropping handles -----------------------------------------------------

#[tokio::test]
async fn dropping_a_stream_after_writing_delivers_every_byte_then_eof_and_reclaims_it() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;
        let (mut c_mark, mut s_mark) = open_accept(&client, &server).await;

        // More than one window, so bytes are still buffered at the drop.
        let data = pattern(7, 400_000);
        c.write_all(&data).await.unwrap();
        drop(c);

        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data);

        // What the peer sends to the dropped handle within the credit it
        // held is discarded, and the stream leaves the table once done
        // (more would get it reset: `stress.rs`, `transcript.rs`).
        s.write_all(&pattern(8, 100_000)).await.unwrap();
        s.shutdown().await.unwrap();
        // Marker framed after the FIN: once it is read, the FIN was handled.
        s_mark.write_all(b"m").await.unwrap();
        c_mark.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(client.stats().streams, 1, "only the marker stream is left");
    })
    .await;
}

#[tokio::test]
async fn dropping_every_connection_handle_closes_gracefully_once_streams_finish() {
    bounded(async {
        let (client, server, mut shut) = tracked_pair();
        let (mut c, mut s) = open_accept(&client, &server).await;

        // Dropping one clone closes nothing.
        let last = client.clone();
        drop(client);
        let (mut c2, mut s2) = open_accept(&last, &server).await;
        c2.write_all(b"x").await.unwrap();
        s2.read_exact(&mut [0u8; 1]).await.unwrap();
        drop((c2, s2));

        drop(last);
        // The stream still held keeps working in both directions.
        c.write_all(b"after the last handle").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"after the last handle");
        assert!(server.open_stream().await.unwrap_err().is_go_away());
        assert!(
            shut.try_recv().is_err(),
            "transport stays up until streams finish"
        );

        s.write_all(b"bye").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"bye");

        shut.await
            .expect("the transport is shut down once streams finished");
        assert!(server.accept_stream().await.is_err());
    })
    .await;
}
