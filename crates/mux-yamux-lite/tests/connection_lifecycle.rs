//! Connection semantics of mux-yamux-lite: graceful shutdown, prompt
//! close, transport failure, stream limits and measurements, each proved with two real
//! `Connection`s joined by an in-memory duplex pipe (one pair per test).
#![allow(clippy::arithmetic_side_effects)]

mod duplex_pair;

use std::io;
use std::pin::pin;
use std::time::Duration;

use futures::{poll, FutureExt};
use mux_core::{ConnError, MuxedStream, ShutdownOutcome, StreamError};
use mux_yamux_lite::frame::{go_away, reset_code};
use mux_yamux_lite::{Config, Connection, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use duplex_pair::*;

/// A deadline no test reaches.
fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

// ----- graceful shutdown ----------------------------------------------------

#[tokio::test]
async fn shutdown_sends_go_away_refuses_new_streams_drains_open_ones_then_shuts_the_transport() {
    bounded(async {
        let (client, server, mut shut) = tracked_pair();
        let (mut c, mut s) = open_accept(&client, &server).await;
        c.write_all(b"before close, ").await.unwrap();

        let mut closing = pin!(client.shutdown(far()));
        assert!(
            poll!(closing.as_mut()).is_pending(),
            "a stream is still open"
        );
        assert!(client.is_closed(), "closing counts as closed");
        let e = client.open_stream().await.unwrap_err();
        assert!(
            matches!(
                e,
                ConnError::GoAwaySent {
                    code: go_away::NORMAL
                }
            ),
            "{e:?}"
        );

        // The open stream drains: bytes written after close() started arrive.
        c.write_all(b"after close").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"before close, after close");

        // GO_AWAY preceded those bytes, so the server knows.
        let e = server.open_stream().await.unwrap_err();
        assert!(
            matches!(
                e,
                ConnError::GoAway {
                    code: go_away::NORMAL
                }
            ),
            "{e:?}"
        );
        assert!(e.is_go_away());

        assert!(
            poll!(closing.as_mut()).is_pending(),
            "server's half still open"
        );
        assert!(
            shut.try_recv().is_err(),
            "transport still up while draining"
        );

        s.write_all(b"reply").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"reply");

        assert_eq!(closing.await.unwrap(), ShutdownOutcome::Drained);
        assert!(
            shut.try_recv().is_ok(),
            "the transport is shut down by the time shutdown() returns"
        );
        assert!(server.accept_stream().await.is_err());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_resets_a_stream_that_never_finishes_once_its_deadline_passes() {
    let (client, server) = pair_with(quiet(), quiet());
    let (mut c, mut s) = open_accept(&client, &server).await;

    let start = Instant::now();
    let mut closing = pin!(client.shutdown(start + Duration::from_secs(5)));
    assert!(
        poll!(closing.as_mut()).is_pending(),
        "shutdown() started, draining"
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    yield_many().await;
    assert!(
        poll!(closing.as_mut()).is_pending(),
        "still draining before the deadline"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(closing.await.unwrap(), ShutdownOutcome::Cut { streams: 1 });
    assert_eq!(Instant::now() - start, Duration::from_secs(5));

    let e = c.read(&mut [0u8; 8]).await.unwrap_err();
    assert_reset(&e, reset_code::CLOSE_TIMEOUT, false);
    let e = s.read(&mut [0u8; 8]).await.unwrap_err();
    assert_reset(&e, reset_code::CLOSE_TIMEOUT, true);
}

#[tokio::test]
async fn received_go_away_refuses_new_opens_but_existing_streams_carry_data_both_ways() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;

        let mut closing = pin!(server.shutdown(far()));
        assert!(poll!(closing.as_mut()).is_pending());
        // Written after shutdown() started, so it follows the GO_AWAY.
        s.write_all(b"go-away sent").await.unwrap();
        let mut first = [0u8; 12];
        c.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"go-away sent");

        let e = client.open_stream().await.unwrap_err();
        assert!(
            matches!(
                e,
                ConnError::GoAway {
                    code: go_away::NORMAL
                }
            ),
            "{e:?}"
        );
        assert!(client.accept_stream().await.is_err());

        // More than a window in each direction, so flow control keeps working.
        let up = pattern(5, 1 << 20);
        let mut got = Vec::new();
        let (w, r) = tokio::join!(
            async {
                c.write_all(&up).await?;
                c.shutdown().await
            },
            s.read_to_end(&mut got)
        );
        w.unwrap();
        r.unwrap();
        assert!(got == up);

        let down = pattern(6, 1 << 20);
        let mut back = Vec::new();
        let (w, r) = tokio::join!(
            async {
                s.write_all(&down).await?;
                s.shutdown().await
            },
            c.read_to_end(&mut back)
        );
        w.unwrap();
        r.unwrap();
        assert!(back == down);

        assert_eq!(closing.await.unwrap(), ShutdownOutcome::Drained);
    })
    .await;
}

// ----- prompt close ---------------------------------------------------------

/// Waits for `task` at most `bound`; a task still pending then fails the test.
async fn within<T>(bound: Duration, task: tokio::task::JoinHandle<T>) -> T {
    match tokio::time::timeout(bound, task).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("task panicked: {e}"),
        Err(_) => panic!("operation still pending after {bound:?}"),
    }
}

/// Asserts a stream operation failed because the connection ended with
/// `want` (compared by `Debug`, as `ConnError` holds no `PartialEq`).
fn assert_conn_closed(e: &io::Error, want: &ConnError) {
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
    match stream_err(e) {
        StreamError::ConnectionClosed(got) => assert_eq!(format!("{got:?}"), format!("{want:?}")),
        other => panic!("expected the connection's end, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn close_returns_within_its_bound_and_fails_every_pending_operation_on_both_sides() {
    let mut server_cfg = quiet();
    server_cfg.max_inbound_streams = 2;
    let (client, server) = pair_with(quiet(), server_cfg);
    let (mut c_read, mut s_read) = open_accept(&client, &server).await;
    let (mut c_write, mut s_write) = open_accept(&client, &server).await;

    // Each side has a read waiting on an idle peer and a writer blocked on
    // a full window (nobody reads the other direction of the second
    // stream); the client has an open waiting at the server's stream
    // limit, and both have an accept waiting.
    let c_reader = tokio::spawn(async move { c_read.read(&mut [0u8; 16]).await });
    let s_reader = tokio::spawn(async move { s_read.read(&mut [0u8; 16]).await });
    let c_writer = tokio::spawn(async move { c_write.write_all(&vec![1u8; 4 << 20]).await });
    let s_writer = tokio::spawn(async move { s_write.write_all(&vec![2u8; 4 << 20]).await });
    let c_open = {
        let client = client.clone();
        tokio::spawn(async move { client.open_stream().await.map(|_| ()) })
    };
    let c_accept = {
        let client = client.clone();
        tokio::spawn(async move { client.accept_stream().await.map(|_| ()) })
    };
    let s_accept = {
        let server = server.clone();
        tokio::spawn(async move { server.accept_stream().await.map(|_| ()) })
    };
    yield_many().await;
    for (name, done) in [
        ("client read", c_reader.is_finished()),
        ("server read", s_reader.is_finished()),
        ("client write", c_writer.is_finished()),
        ("server write", s_writer.is_finished()),
        ("client open", c_open.is_finished()),
        ("client accept", c_accept.is_finished()),
        ("server accept", s_accept.is_finished()),
    ] {
        assert!(!done, "{name} should be pending before the close");
    }

    let start = Instant::now();
    client.close().await.unwrap();
    let bound = Config::default().close_flush_timeout;
    assert!(
        Instant::now() - start <= bound,
        "close() took {:?}",
        Instant::now() - start
    );
    assert!(client.is_closed());

    // This side: everything fails at once, as a local close.
    let closed = ConnError::Closed;
    let at_once = Duration::ZERO;
    assert_conn_closed(&within(at_once, c_reader).await.unwrap_err(), &closed);
    assert_conn_closed(&within(at_once, c_writer).await.unwrap_err(), &closed);
    assert!(matches!(
        within(at_once, c_open).await,
        Err(ConnError::Closed)
    ));
    assert!(matches!(
        within(at_once, c_accept).await,
        Err(ConnError::Closed)
    ));

    // The peer: everything fails as the GO_AWAY it got, code 0.
    let go_away = ConnError::GoAway {
        code: go_away::NORMAL,
    };
    assert_conn_closed(&within(bound, s_reader).await.unwrap_err(), &go_away);
    assert_conn_closed(&within(bound, s_writer).await.unwrap_err(), &go_away);
    let e = within(bound, s_accept).await.unwrap_err();
    assert!(
        matches!(
            e,
            ConnError::GoAway {
                code: go_away::NORMAL
            }
        ),
        "{e:?}"
    );
    assert!(server.is_closed());
}

#[tokio::test]
async fn close_with_a_code_reaches_the_peers_pending_operations() {
    bounded(async {
        let (client, server) = pair();
        let (_c, mut s) = open_accept(&client, &server).await;
        let s_reader = tokio::spawn(async move { s.read(&mut [0u8; 16]).await });
        let s_accept = {
            let server = server.clone();
            tokio::spawn(async move { server.accept_stream().await.map(|_| ()) })
        };
        yield_many().await;

        let code = go_away::APPLICATION_MIN + 7;
        client.close_with(code).await.unwrap();

        let want = ConnError::GoAway { code };
        assert_conn_closed(&s_reader.await.unwrap().unwrap_err(), &want);
        let e = s_accept.await.unwrap().unwrap_err();
        assert!(
            matches!(e, ConnError::GoAway { code: c } if c == code),
            "{e:?}"
        );
        let e = server.open_stream().await.unwrap_err();
        assert!(
            matches!(e, ConnError::GoAway { code: c } if c == code),
            "{e:?}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn close_during_a_shutdown_cuts_it_short_within_the_close_bound() {
    let (client, server) = pair_with(quiet(), quiet());
    let (mut c, _s) = open_accept(&client, &server).await;

    let mut shutting = pin!(client.shutdown(far()));
    assert!(poll!(shutting.as_mut()).is_pending(), "a stream is open");
    let start = Instant::now();
    client.close().await.unwrap();
    assert!(Instant::now() - start <= Config::default().close_flush_timeout);
    assert_eq!(shutting.await.unwrap(), ShutdownOutcome::Cut { streams: 1 });
    assert_conn_closed(
        &c.read(&mut [0u8; 4]).await.unwrap_err(),
        &ConnError::Closed,
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_ends_the_driver_by_close_timeout_even_with_a_stream_left_open() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (a, shut) = duplex_pair::Tracked::new(a);
    let client = Connection::new(a, Role::Client, quiet());
    let server = Connection::new(b, Role::Server, quiet());
    let (c, _s) = open_accept(&client, &server).await;
    let start = Instant::now();
    // The server end stays open and idle: the stream never finishes.
    drop((client, c));
    shut.await
        .expect("the driver shut the transport down and ended");
    assert_eq!(Instant::now() - start, quiet().close_timeout);
}

// ----- transport failure ----------------------------------------------------

#[tokio::test]
async fn transport_loss_fails_pending_reads_writes_and_accepts_promptly() {
    bounded(async {
        // client <-> proxy <-> server; aborting the proxy drops both raw ends.
        let (a, mut a_raw) = tokio::io::duplex(1 << 16);
        let (mut b_raw, b) = tokio::io::duplex(1 << 16);
        let proxy = tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut a_raw, &mut b_raw).await;
        });
        let client = Connection::new(a, Role::Client, Config::default());
        let server = Connection::new(b, Role::Server, Config::default());
        let (mut c_read, mut s_read) = open_accept(&client, &server).await;
        let (mut c_write, _s_write) = open_accept(&client, &server).await;

        let reader = tokio::spawn(async move { c_read.read(&mut [0u8; 16]).await });
        let writer = tokio::spawn(async move {
            // Far beyond window plus send buffer: blocks, the server never reads.
            c_write.write_all(&vec![0u8; 4 << 20]).await
        });
        let acceptor = {
            let client = client.clone();
            tokio::spawn(async move { client.accept_stream().await })
        };
        yield_many().await;
        assert!(!reader.is_finished() && !writer.is_finished() && !acceptor.is_finished());

        proxy.abort();

        let e = reader.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(
            matches!(stream_err(&e), StreamError::ConnectionClosed(_)),
            "{e:?}"
        );
        let e = writer.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(
            matches!(stream_err(&e), StreamError::ConnectionClosed(_)),
            "{e:?}"
        );
        let e = acceptor.await.unwrap().unwrap_err();
        assert!(e.is_io(), "{e:?}");

        let e = s_read.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(server.accept_stream().await.unwrap_err().is_io());
        assert!(client.open_stream().await.is_err());
        assert!(client.is_closed() && server.is_closed());
        // close() reports why the connection had already ended.
        assert!(client.close().await.unwrap_err().is_io());
    })
    .await;
}

#[tokio::test]
async fn dropped_raw_peer_fails_streams_opened_before_any_handshake() {
    bounded(async {
        let (a, raw) = tokio::io::duplex(1 << 16);
        let client = Connection::new(a, Role::Client, Config::default());
        let mut c = client.open_stream().await.unwrap();
        let queued = c.write(b"queued, never sent").await.unwrap();
        assert!(queued > 0, "writes are buffered before the handshake");
        let acceptor = {
            let client = client.clone();
            tokio::spawn(async move { client.accept_stream().await })
        };
        {
            let mut buf = [0u8; 8];
            let mut read = pin!(c.read(&mut buf));
            assert!(poll!(read.as_mut()).is_pending());

            drop(raw);

            let e = read.await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        }
        let e = c.write(b"more").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(acceptor.await.unwrap().is_err());
        assert!(client.is_closed());
    })
    .await;
}

// ----- limits ---------------------------------------------------------------

#[tokio::test]
async fn open_stream_waits_while_max_pending_opens_are_unacknowledged_and_resumes_on_accept() {
    bounded(async {
        let mut cfg = Config::default();
        cfg.max_pending_opens = 2;
        let (client, server) = pair_with(cfg, Config::default());
        let _a = client.open_stream().await.unwrap();
        let _b = client.open_stream().await.unwrap();
        let mut third = pin!(client.open_stream());
        assert!(poll!(third.as_mut()).is_pending(), "waits, does not fail");

        // A round trip on a server-opened stream, framed after both SYNs:
        // the server has them, and would have ACKed had it accepted.
        let (mut s_x, mut c_x) = open_accept(&server, &client).await;
        c_x.write_all(b"?").await.unwrap();
        s_x.read_exact(&mut [0u8; 1]).await.unwrap();
        s_x.write_all(b"!").await.unwrap();
        c_x.read_exact(&mut [0u8; 1]).await.unwrap();
        assert!(
            poll!(third.as_mut()).is_pending(),
            "still waiting for an ACK"
        );

        let accepted = server.accept_stream().await.unwrap();
        assert_eq!(accepted.id().get(), 1);
        let third = third.await.unwrap();
        assert_eq!(third.id().get(), 5);
    })
    .await;
}

#[tokio::test]
async fn inbound_streams_beyond_max_inbound_streams_are_refused_and_the_rest_keep_working() {
    bounded(async {
        let mut server_cfg = Config::default();
        server_cfg.max_inbound_streams = 2;
        let (client, server) = pair_with(Config::default(), server_cfg);
        // Opened before the client can have read the server's HELLO (the
        // test runtime is single-threaded and nothing yields), so the client
        // cannot hold the third back; the server must refuse it.
        let open_now = || {
            client
                .open_stream()
                .now_or_never()
                .expect("opens at once: the peer's limit is not known yet")
                .unwrap()
        };
        let mut c1 = open_now();
        let mut c2 = open_now();
        let mut c3 = open_now();

        let e = c3.read(&mut [0u8; 1]).await.unwrap_err();
        assert_reset(&e, reset_code::REFUSED, true);
        let e = c3.write(b"x").await.unwrap_err();
        assert_reset(&e, reset_code::REFUSED, true);
        assert_eq!(server.stats().streams_refused, 1);

        for c in [&mut c1, &mut c2] {
            let mut s = server.accept_stream().await.unwrap();
            assert_eq!(s.id(), c.id());
            c.write_all(b"ping").await.unwrap();
            c.shutdown().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, b"ping");
        }
        assert!(!client.is_closed() && !server.is_closed());

        // With both finished, a new stream fits under the limit again.
        let (mut c4, mut s4) = open_accept(&client, &server).await;
        c4.write_all(b"4").await.unwrap();
        s4.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(server.stats().streams_refused, 1);
    })
    .await;
}

#[tokio::test]
async fn open_stream_waits_at_the_peers_announced_stream_limit_instead_of_being_refused() {
    bounded(async {
        let mut server_cfg = Config::default();
        server_cfg.max_inbound_streams = 2;
        let (client, server) = pair_with(Config::default(), server_cfg);
        let (mut c1, mut s1) = open_accept(&client, &server).await;
        // A round trip: the client has the server's HELLO now.
        c1.write_all(b"?").await.unwrap();
        s1.read_exact(&mut [0u8; 1]).await.unwrap();
        s1.write_all(b"!").await.unwrap();
        c1.read_exact(&mut [0u8; 1]).await.unwrap();
        let (_c2, _s2) = open_accept(&client, &server).await;

        let mut third = pin!(client.open_stream());
        assert!(poll!(third.as_mut()).is_pending(), "at the peer's limit");

        // Finishing stream 1 on both sides frees a slot.
        c1.shutdown().await.unwrap();
        s1.shutdown().await.unwrap();
        c1.read_to_end(&mut Vec::new()).await.unwrap();
        let mut c3 = third.await.unwrap();
        let mut s3 = server.accept_stream().await.unwrap();
        c3.write_all(b"3").await.unwrap();
        s3.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(server.stats().streams_refused, 0);
    })
    .await;
}

// ----- measurements ---------------------------------------------------------

#[tokio::test]
async fn rtt_is_measured_by_the_handshake_ping_and_stats_count_payload_bytes() {
    bounded(async {
        let (client, server) = pair();
        assert!(client.rtt().is_none() && server.rtt().is_none());
        let (mut c, mut s) = open_accept(&client, &server).await;

        c.write_all(&[1u8; 10_000]).await.unwrap();
        s.read_exact(&mut [0u8; 10_000]).await.unwrap();
        s.write_all(&[2u8; 20_000]).await.unwrap();
        c.read_exact(&mut [0u8; 20_000]).await.unwrap();
        // The server's PONG preceded its data.
        assert!(client.rtt().is_some(), "client rtt after a round trip");
        c.write_all(&[3u8; 5]).await.unwrap();
        s.read_exact(&mut [0u8; 5]).await.unwrap();
        // The client's PONG preceded these 5 bytes.
        assert!(server.rtt().is_some(), "server rtt after a round trip");

        let cs = client.stats();
        let ss = server.stats();
        assert_eq!((cs.bytes_sent, cs.bytes_received), (10_005, 20_000));
        assert_eq!((ss.bytes_sent, ss.bytes_received), (20_000, 10_005));
        assert!(cs.frames_sent >= 4 && cs.frames_received >= 4, "{cs:?}");
        assert!(ss.frames_sent >= 4 && ss.frames_received >= 4, "{ss:?}");
        assert_eq!((cs.streams, ss.streams), (1, 1));
        assert_eq!(cs.streams_refused + ss.streams_refused, 0);
    })
    .await;
}
