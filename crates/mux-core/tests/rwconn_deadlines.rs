//! Go-style deadlines on `RwConn`: interrupting, moving and clearing them
//! loses no byte. Every test runs on tokio's paused clock.
#![allow(clippy::arithmetic_side_effects)] // Instant/Duration sums in test setup.

use futures::poll;
use mux_core::{RwConn, StreamError};
use std::io::ErrorKind;
use std::pin::pin;
use std::task::Poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter, ReadHalf, SimplexStream, WriteHalf};
use tokio::sync::oneshot;
use tokio::time::{advance, timeout, Duration, Instant};

type Conn = RwConn<ReadHalf<SimplexStream>, WriteHalf<SimplexStream>>;

/// A connection plus the peer's ends: `peer_tx` feeds the connection's reads,
/// `peer_rx` receives its writes. Each pipe buffers at most `cap` bytes.
fn setup(cap: usize) -> (Conn, WriteHalf<SimplexStream>, ReadHalf<SimplexStream>) {
    let (conn_rx, peer_tx) = tokio::io::simplex(cap);
    let (peer_rx, conn_tx) = tokio::io::simplex(cap);
    (RwConn::new(conn_rx, conn_tx), peer_tx, peer_rx)
}

fn assert_timed_out(err: &std::io::Error) {
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        matches!(StreamError::from_io(err), Some(StreamError::TimedOut)),
        "{err:?}"
    );
}

/// Paused-clock deadlines round up to the timer's 1 ms tick.
fn assert_elapsed_about(start: Instant, expected: Duration) {
    let elapsed = start.elapsed();
    assert!(
        elapsed >= expected && elapsed <= expected + Duration::from_millis(2),
        "elapsed {elapsed:?}, expected {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn read_deadline_set_from_another_task_interrupts_pending_read_and_loses_nothing() {
    let (mut conn, mut peer_tx, _peer_rx) = setup(64);
    let deadlines = conn.deadlines();
    let (pending_tx, pending_rx) = oneshot::channel();

    let reader = tokio::spawn(async move {
        let result = {
            let mut buf = [0u8; 16];
            let mut read = pin!(conn.read(&mut buf));
            assert!(poll!(read.as_mut()).is_pending());
            pending_tx.send(Instant::now()).unwrap();
            read.await
        };
        (conn, result)
    });

    let start = pending_rx.await.unwrap();
    // The reader armed no timer (no deadline yet): only the set wakes it.
    tokio::spawn(async move { deadlines.set_read(Some(Instant::now() + Duration::from_secs(1))) })
        .await
        .unwrap();
    let (mut conn, result) = timeout(Duration::from_secs(10), reader)
        .await
        .expect("setting the deadline must wake the pending read")
        .unwrap();
    assert_timed_out(&result.unwrap_err());
    assert_elapsed_about(start, Duration::from_secs(1));

    conn.set_read_deadline(None);
    peer_tx.write_all(b"hello, world").await.unwrap();
    let mut got = [0u8; 12];
    conn.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello, world");
}

#[tokio::test(start_paused = true)]
async fn past_read_deadline_fails_at_once_even_with_data_buffered() {
    let (mut conn, mut peer_tx, _peer_rx) = setup(64);
    peer_tx.write_all(b"buffered bytes").await.unwrap();
    peer_tx.shutdown().await.unwrap();

    let start = Instant::now();
    conn.set_read_deadline(Some(start));
    let mut buf = [0u8; 64];
    assert_timed_out(&conn.read(&mut buf).await.unwrap_err());
    assert_timed_out(&conn.read(&mut buf).await.unwrap_err());
    assert_eq!(start.elapsed(), Duration::ZERO);

    conn.set_read_deadline(None);
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"buffered bytes");
}

#[tokio::test(start_paused = true)]
async fn moving_read_deadline_later_while_pending_fires_only_at_new_time() {
    let (mut conn, _peer_tx, _peer_rx) = setup(64);
    let deadlines = conn.deadlines();
    let start = Instant::now();
    conn.set_read_deadline(Some(start + Duration::from_secs(1)));

    let mut buf = [0u8; 8];
    let mut read = pin!(conn.read(&mut buf));
    assert!(poll!(read.as_mut()).is_pending());
    advance(Duration::from_millis(500)).await;
    assert!(poll!(read.as_mut()).is_pending());

    tokio::spawn(async move { deadlines.set_read(Some(start + Duration::from_secs(3))) })
        .await
        .unwrap();
    advance(Duration::from_millis(1000)).await; // 1.5 s: past the old deadline
    assert!(poll!(read.as_mut()).is_pending());
    advance(Duration::from_millis(1499)).await; // 2.999 s
    assert!(poll!(read.as_mut()).is_pending());
    advance(Duration::from_millis(1)).await; // 3 s
    match poll!(read.as_mut()) {
        Poll::Ready(Err(e)) => assert_timed_out(&e),
        other => panic!("expected TimedOut at the new deadline, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn moving_read_deadline_earlier_while_pending_fires_at_new_time() {
    let (mut conn, _peer_tx, _peer_rx) = setup(64);
    let deadlines = conn.deadlines();
    let start = Instant::now();
    conn.set_read_deadline(Some(start + Duration::from_secs(60)));

    let mut buf = [0u8; 8];
    let mut read = pin!(conn.read(&mut buf));
    assert!(poll!(read.as_mut()).is_pending());
    tokio::spawn(async move { deadlines.set_read(Some(start + Duration::from_secs(2))) })
        .await
        .unwrap();
    let err = timeout(Duration::from_secs(30), read)
        .await
        .expect("the earlier deadline must fire")
        .unwrap_err();
    assert_timed_out(&err);
    assert_elapsed_about(start, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn blocked_write_times_out_then_resumes_and_peer_gets_exactly_the_reported_bytes() {
    const CAP: usize = 16;
    let (mut conn, _peer_tx, mut peer_rx) = setup(CAP);
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let start = Instant::now();
    conn.set_write_deadline(Some(start + Duration::from_secs(1)));

    // The peer does not read, so the pipe fills and a write blocks.
    let mut sent = 0;
    let err = loop {
        let end = (sent + 7).min(data.len());
        let write = timeout(Duration::from_secs(10), conn.write(&data[sent..end]));
        match write.await.expect("the write deadline must fire") {
            Ok(n) => {
                assert!(n > 0);
                sent += n;
            }
            Err(e) => break e,
        }
    };
    assert_timed_out(&err);
    assert_eq!(sent, CAP);
    assert_elapsed_about(start, Duration::from_secs(1));
    // Still past the deadline: fails at once.
    assert_timed_out(&conn.write(&data[sent..]).await.unwrap_err());

    let mut got = vec![0u8; sent];
    peer_rx.read_exact(&mut got).await.unwrap();
    let peer = tokio::spawn(async move {
        let mut rest = Vec::new();
        peer_rx.read_to_end(&mut rest).await.unwrap();
        rest
    });

    conn.set_write_deadline(None);
    while sent < data.len() {
        let end = (sent + 100).min(data.len());
        sent += conn.write(&data[sent..end]).await.unwrap();
    }
    conn.shutdown().await.unwrap();
    got.extend(peer.await.unwrap());
    assert_eq!(got, data);
}

#[tokio::test(start_paused = true)]
async fn flush_of_a_stuck_writer_times_out_under_the_write_deadline() {
    let (conn_rx, _peer_tx) = tokio::io::simplex(64);
    let (mut peer_rx, conn_tx) = tokio::io::simplex(4);
    let mut conn = RwConn::new(conn_rx, BufWriter::new(conn_tx));
    conn.write_all(b"more than four bytes").await.unwrap();

    let start = Instant::now();
    conn.set_write_deadline(Some(start + Duration::from_secs(1)));
    let flush = timeout(Duration::from_secs(10), conn.flush()).await;
    assert_timed_out(&flush.expect("the write deadline must fire").unwrap_err());
    assert_elapsed_about(start, Duration::from_secs(1));

    conn.set_deadline(None);
    let peer = tokio::spawn(async move {
        let mut got = Vec::new();
        peer_rx.read_to_end(&mut got).await.unwrap();
        got
    });
    conn.flush().await.unwrap();
    conn.shutdown().await.unwrap();
    assert_eq!(peer.await.unwrap(), b"more than four bytes");
}

#[tokio::test(start_paused = true)]
async fn read_and_write_deadlines_are_independent() {
    let (mut conn, mut peer_tx, mut peer_rx) = setup(64);
    conn.set_read_deadline(Some(Instant::now()));
    conn.write_all(b"out").await.unwrap();
    let mut got = [0u8; 3];
    peer_rx.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"out");

    conn.set_read_deadline(None);
    conn.set_write_deadline(Some(Instant::now()));
    peer_tx.write_all(b"in").await.unwrap();
    let mut got = [0u8; 2];
    conn.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"in");
    assert_timed_out(&conn.write(b"x").await.unwrap_err());

    let deadlines = conn.deadlines();
    assert_eq!(deadlines.read(), None);
    assert!(deadlines.write().is_some());
}

#[test]
fn rwconn_is_send_sync_and_unpin_when_its_halves_are() {
    fn check<T: Send + Sync + Unpin>() {}
    check::<Conn>();
    check::<mux_core::rwconn::Done>();
}
