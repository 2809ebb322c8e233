//! Hostile peer, stalls: an application that never accepts, a stream whose
//! reader never reads, a peer that never reads the transport, a peer that
//! goes silent, and a transport whose writes fail part-way through a frame.
//! Timing runs on tokio's paused clock; "everything is blocked" is detected
//! by a virtual-time timeout firing, never by sleeping.
#![allow(clippy::arithmetic_side_effects)]

#[path = "support/faulty_io.rs"]
mod faulty_io;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faulty_io::{Fault, FaultyIo};
use mux_core::{ConnError, MuxedStream, ShutdownOutcome, StreamError};
use mux_yamux_lite::config::MAX_WINDOW;
use mux_yamux_lite::frame::{go_away, reset_code, Flags, Frame};
use mux_yamux_lite::{Config, Connection, Role, Stream, Wire};
use support::{
    bounded, connect, connect_with_capacity, data, handshake_with_window, on_each_wire, quiet_on,
    syn, RawPeer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Pipe capacity of the back-pressure tests, per direction.
const PIPE: usize = 8 * 1024;
/// Framed-but-unwritten output the driver may hold while the transport has
/// never taken a whole batch (`WRITE_HIGH_WATER_BACKED_UP`; these tests'
/// pipes are smaller than one), plus one maximal DATA frame.
const WRITE_BUFFER_BOUND: usize = 256 * 1024 + 64 * 1024 + 10;

/// Writes `total` bytes to `s` chunk by chunk, publishing how many bytes
/// the stream has accepted so far.
fn spawn_writer(
    mut s: Stream,
    total: usize,
    accepted: Arc<AtomicUsize>,
) -> JoinHandle<(std::io::Result<()>, Stream)> {
    tokio::spawn(async move {
        let chunk = vec![0xABu8; 16 * 1024];
        let mut done = 0usize;
        while done < total {
            let want = chunk.len().min(total - done);
            match s.write(chunk.get(..want).unwrap_or_default()).await {
                Ok(n) => {
                    done += n;
                    accepted.fetch_add(n, Ordering::SeqCst);
                }
                Err(e) => return (Err(e), s),
            }
        }
        (Ok(()), s)
    })
}

/// Waits until every task is blocked (virtual time then jumps `secs`),
/// asserting the writer did not finish.
async fn assert_stays_blocked<T>(task: &mut JoinHandle<T>, secs: u64) {
    let r = tokio::time::timeout(Duration::from_secs(secs), task).await;
    assert!(r.is_err(), "the blocked task finished");
}

/// Asserts `elapsed` is `secs` of virtual time (timers round up to 1 ms).
fn assert_elapsed(elapsed: Duration, secs: u64) {
    let want = Duration::from_secs(secs);
    assert!(
        elapsed >= want && elapsed <= want + Duration::from_millis(20),
        "elapsed {elapsed:?}, expected {want:?}"
    );
}

fn conn_closed_reason(e: &std::io::Error) -> ConnError {
    match StreamError::from_io(e) {
        Some(StreamError::ConnectionClosed(c)) => c.clone(),
        other => panic!("expected ConnectionClosed, got {other:?} ({e:?})"),
    }
}

#[tokio::test]
async fn application_that_never_accepts_gets_excess_syns_refused_at_the_backlog() {
    on_each_wire(|wire| {
        bounded(async move {
            let config = quiet_on(wire);
            let backlog = config.accept_backlog;
            assert_eq!(backlog, 256);
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            let ids: Vec<u32> = (0..1000u32).map(|i| 2 * i + 1).collect();
            peer.send_raw(&support::encode_on(wire, ids.iter().map(|&id| syn(id))))
                .await;
            for &id in &ids[backlog..] {
                assert_eq!(
                    peer.recv_significant().await,
                    Some(Frame::Reset {
                        id,
                        code: reset_code::REFUSED
                    })
                );
            }
            let stats = conn.stats();
            assert_eq!(stats.streams, backlog);
            assert_eq!(stats.streams_refused, (1000 - backlog) as u64);
            // Accepting one frees exactly one slot.
            let mut first = conn.accept_stream().await.unwrap();
            assert_eq!(first.id().get(), 1);
            peer.send(syn(2001)).await;
            peer.send(syn(2003)).await;
            // The ACK of stream 1 and the refusal of 2003 only (2001 took the
            // freed slot), in either order.
            let mut next_two = [
                peer.recv_significant().await.unwrap(),
                peer.recv_significant().await.unwrap(),
            ];
            next_two.sort_by_key(|f| matches!(f, Frame::Reset { .. }));
            assert_eq!(
                next_two,
                [
                    Frame::Window {
                        id: 1,
                        flags: Flags::ACK,
                        delta: 0
                    },
                    Frame::Reset {
                        id: 2003,
                        code: reset_code::REFUSED
                    }
                ]
            );
            // The accepted stream works; backlogged ones are still there.
            peer.send(data(1, Flags::FIN, b"served")).await;
            let mut got = String::new();
            first.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "served");
            assert_eq!(conn.accept_stream().await.unwrap().id().get(), 3);
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn stream_whose_reader_never_reads_blocks_only_its_writer_with_bounded_buffers() {
    on_each_wire(|wire| {
        bounded(async move {
            // The window the peer grants: 64 KiB on lite, the 256 KiB every
            // yamux peer starts with on yamux.
            let window: usize = match wire {
                Wire::Yamux => 256 * 1024,
                _ => 64 * 1024,
            };
            let config = quiet_on(wire);
            let send_buffer = config.send_buffer;
            let (conn, mut peer) = connect(Role::Client, config);
            handshake_with_window(&mut peer, window as u32).await;
            let stalled = conn.open_stream().await.unwrap();
            let mut busy = conn.open_stream().await.unwrap();
            let accepted = Arc::new(AtomicUsize::new(0));
            let mut writer = spawn_writer(stalled, 4 << 20, accepted.clone());
            // The peer reads the transport but never grants stream 1 more credit.
            let mut stalled_bytes = 0usize;
            while stalled_bytes < window {
                match peer.recv().await {
                    Some(Frame::Data { id: 1, payload, .. }) => stalled_bytes += payload.len(),
                    Some(_) => {}
                    None => panic!("EOF"),
                }
            }
            assert_stays_blocked(&mut writer, 5).await;
            assert_eq!(stalled_bytes, window, "no byte beyond the window");
            let held = accepted.load(Ordering::SeqCst);
            assert!(
                (window..=window + send_buffer).contains(&held),
                "{held} bytes accepted: at most the send buffer beyond the window"
            );
            // Stream 3 moves 48 KiB meanwhile, then FIN.
            let payload = vec![0x33u8; 48 * 1024];
            busy.write_all(&payload).await.unwrap();
            busy.shutdown().await.unwrap();
            assert_eq!(peer.read_until_fin(3).await, payload);
            assert!(!writer.is_finished());
            assert_eq!(accepted.load(Ordering::SeqCst), held);
            // Granting credit releases stream 1 again.
            peer.send(Frame::Window {
                id: 1,
                flags: Flags::ACK,
                delta: 1000,
            })
            .await;
            let mut more = 0usize;
            while more < 1000 {
                match peer.recv().await {
                    Some(Frame::Data { id: 1, payload, .. }) => more += payload.len(),
                    Some(_) => {}
                    None => panic!("EOF"),
                }
            }
            assert_eq!(more, 1000);
            writer.abort();
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn peer_that_never_reads_the_transport_blocks_writers_with_bounded_buffers() {
    on_each_wire(|wire| {
        bounded(async move {
            let config = quiet_on(wire);
            let send_buffer = config.send_buffer;
            let (conn, mut peer) = connect_with_capacity(Role::Client, config, PIPE);
            // A huge window: only the transport can push back.
            handshake_with_window(&mut peer, MAX_WINDOW).await;
            let mut writers = Vec::new();
            let accepted = Arc::new(AtomicUsize::new(0));
            for _ in 0..4 {
                let s = conn.open_stream().await.unwrap();
                peer.grant_announced(s.id().get()).await;
                writers.push(spawn_writer(s, 16 << 20, accepted.clone()));
            }
            for w in &mut writers {
                assert_stays_blocked(w, 5).await;
            }
            let held = accepted.load(Ordering::SeqCst);
            // Pipe + the driver's write buffer + one send buffer per stream.
            let bound = PIPE + WRITE_BUFFER_BOUND + 4 * send_buffer;
            assert!(held <= bound, "{held} bytes accepted, bound {bound}");
            assert_stays_blocked(&mut writers[0], 20).await;
            assert_eq!(accepted.load(Ordering::SeqCst), held, "still stalled");
            assert!(!conn.is_closed());
            // Once the peer reads, the bytes flow again.
            let mut got = 0usize;
            while got < held + 1 {
                match peer.recv().await {
                    Some(Frame::Data { payload, .. }) => got += payload.len(),
                    Some(_) => {}
                    None => panic!("EOF"),
                }
            }
            for w in writers {
                w.abort();
            }
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn peer_that_goes_silent_after_the_handshake_is_dropped_at_interval_plus_timeout() {
    // transcript.rs `keepalive_timeout_fails_every_stream` covers a peer that
    // never answers the first ping; here the peer answered it, so the timing
    // of the keepalive ping and of the timeout is what is checked.
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = Config::default();
            config.wire = wire;
            config.keepalive_interval = Some(Duration::from_secs(10));
            config.keepalive_timeout = Duration::from_secs(5);
            let (conn, mut peer) = connect(Role::Client, config);
            peer.handshake().await;
            let t0 = Instant::now();
            let mut s = conn.open_stream().await.unwrap();
            assert_eq!(peer.recv().await, Some(syn(1)));
            // The peer keeps reading but never answers again.
            assert!(matches!(
                peer.recv().await,
                Some(Frame::Ping { ack: false, .. })
            ));
            assert_elapsed(t0.elapsed(), 10);
            let e = s.read(&mut [0u8; 4]).await.unwrap_err();
            assert_elapsed(t0.elapsed(), 15);
            assert!(matches!(
                conn_closed_reason(&e),
                ConnError::KeepaliveTimeout
            ));
            assert_eq!(
                peer.recv().await,
                Some(Frame::GoAway {
                    code: go_away::KEEPALIVE_TIMEOUT
                })
            );
            assert_eq!(peer.recv().await, None);
            assert!(matches!(
                conn.open_stream().await,
                Err(ConnError::KeepaliveTimeout)
            ));
        })
    })
    .await;
}

/// A connection whose peer stopped reading, with writers blocked on the
/// transport: returns the connection, the peer and the blocked writers.
async fn stalled_connection(
    config: Config,
) -> (
    Connection,
    RawPeer,
    Vec<JoinHandle<(std::io::Result<()>, Stream)>>,
) {
    let (conn, mut peer) = connect_with_capacity(Role::Client, config, PIPE);
    handshake_with_window(&mut peer, MAX_WINDOW).await;
    let mut writers = Vec::new();
    for _ in 0..2 {
        let s = match conn.open_stream().await {
            Ok(s) => s,
            Err(e) => panic!("open: {e:?}"),
        };
        peer.grant_announced(s.id().get()).await;
        writers.push(spawn_writer(s, 16 << 20, Arc::new(AtomicUsize::new(0))));
    }
    for w in &mut writers {
        assert_stays_blocked(w, 1).await;
    }
    (conn, peer, writers)
}

#[tokio::test(start_paused = true)]
async fn keepalive_timeout_against_a_peer_that_never_reads_fails_streams() {
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = Config::default();
            config.wire = wire;
            config.keepalive_interval = Some(Duration::from_secs(10));
            config.keepalive_timeout = Duration::from_secs(5);
            let (conn, _peer, writers) = stalled_connection(config).await;
            for w in writers {
                let (r, _s) = w.await.unwrap();
                let e = r.unwrap_err();
                assert!(
                    matches!(conn_closed_reason(&e), ConnError::KeepaliveTimeout),
                    "{e:?}"
                );
            }
            assert!(matches!(
                conn.accept_stream().await,
                Err(ConnError::KeepaliveTimeout)
            ));
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn keepalive_timeout_against_a_peer_that_never_reads_releases_the_transport() {
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = Config::default();
            config.wire = wire;
            config.keepalive_interval = Some(Duration::from_secs(10));
            config.keepalive_timeout = Duration::from_secs(5);
            let (conn, _peer, writers) = stalled_connection(config).await;
            for w in writers {
                let _ = w.await.unwrap();
            }
            // The connection is dead; close must report it, not wait for a
            // peer that will never read the bytes still queued for it.
            let closed = tokio::time::timeout(Duration::from_secs(30), conn.close()).await;
            match closed {
                Ok(Err(ConnError::KeepaliveTimeout)) => {}
                Ok(other) => panic!("close returned {other:?}"),
                Err(_) => panic!("close() still pending 30 s after the keepalive timeout"),
            }
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_against_a_peer_that_never_reads_ends_at_its_deadline() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, _peer, writers) = stalled_connection(quiet_on(wire)).await;
            let t0 = Instant::now();
            let closing = {
                let conn = conn.clone();
                tokio::spawn(async move { conn.shutdown(t0 + Duration::from_secs(10)).await })
            };
            for w in writers {
                let (r, _s) = w.await.unwrap();
                let e = r.unwrap_err();
                assert_eq!(
                    StreamError::from_io(&e).and_then(StreamError::reset_code),
                    Some(reset_code::CLOSE_TIMEOUT),
                    "{e:?}"
                );
            }
            assert_elapsed(t0.elapsed(), 10);
            let r = tokio::time::timeout(Duration::from_secs(30), closing).await;
            let outcome = r.expect("shutdown() still pending 30 s after its deadline");
            assert_eq!(
                outcome.unwrap().unwrap(),
                ShutdownOutcome::Cut { streams: 2 }
            );
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn close_against_a_peer_that_never_reads_returns_within_the_flush_bound() {
    on_each_wire(|wire| {
        bounded(async move {
            let config = quiet_on(wire);
            let bound = config.close_flush_timeout;
            let (conn, _peer, writers) = stalled_connection(config).await;
            let t0 = Instant::now();
            conn.close().await.unwrap();
            assert!(t0.elapsed() <= bound, "close() took {:?}", t0.elapsed());
            let closed_at = t0.elapsed();
            for w in writers {
                let (r, _s) = w.await.unwrap();
                let e = r.unwrap_err();
                assert!(matches!(conn_closed_reason(&e), ConnError::Closed), "{e:?}");
            }
            assert_eq!(t0.elapsed(), closed_at, "the writers had failed already");
        })
    })
    .await;
}

/// Runs a connection over a transport that fails after `budget` bytes and
/// checks how every pending operation ends.
async fn write_fault_fails_everything(wire: Wire, fault: Fault, want: std::io::ErrorKind) {
    let (a, b) = tokio::io::duplex(1 << 20);
    // HELLO (18) and the RTT ping (10) on lite, the ping (12) alone on
    // yamux, then 5 bytes into the next frame.
    let before_cut = match wire {
        Wire::Yamux => 12,
        _ => 18 + 10,
    };
    let conn = Connection::new(
        FaultyIo::new(a, before_cut + 5, fault),
        Role::Client,
        quiet_on(wire),
    );
    let mut peer = RawPeer::on_wire(b, wire);
    if wire == Wire::Lite {
        peer.send(support::hello()).await;
    }
    let mut s = match conn.open_stream().await {
        Ok(s) => s,
        Err(e) => panic!("open: {e:?}"),
    };
    let write = s.write_all(b"never fully sent").await;
    let e = match s.read(&mut [0u8; 4]).await {
        Err(e) => e,
        Ok(n) => panic!("read returned {n} bytes instead of failing"),
    };
    let reason = conn_closed_reason(&e);
    match &reason {
        ConnError::Io(io) => assert_eq!(io.kind(), want, "{reason:?}"),
        other => panic!("expected ConnError::Io, got {other:?}"),
    }
    if let Err(e) = write {
        assert!(matches!(conn_closed_reason(&e), ConnError::Io(_)));
    }
    assert!(s.write_all(b"more").await.is_err());
    match conn.accept_stream().await {
        Err(ConnError::Io(io)) => assert_eq!(io.kind(), want),
        other => panic!("accept: {other:?}"),
    }
    match conn.close().await {
        Err(ConnError::Io(io)) => assert_eq!(io.kind(), want),
        other => panic!("close: {other:?}"),
    }
    assert!(conn.is_closed());
    // The peer saw HELLO (on lite), the ping, then a cut frame and EOF.
    if wire == Wire::Lite {
        assert!(matches!(peer.recv().await, Some(Frame::Hello(_))));
    }
    assert!(matches!(peer.recv().await, Some(Frame::Ping { .. })));
    assert_eq!(peer.recv().await, None);
}

#[tokio::test]
async fn transport_write_returning_zero_mid_frame_fails_the_connection_with_write_zero() {
    on_each_wire(|wire| {
        bounded(write_fault_fails_everything(
            wire,
            Fault::WriteZero,
            std::io::ErrorKind::WriteZero,
        ))
    })
    .await;
}

#[tokio::test]
async fn transport_write_error_mid_frame_fails_the_connection_with_that_error() {
    on_each_wire(|wire| {
        bounded(write_fault_fails_everything(
            wire,
            Fault::Error(std::io::ErrorKind::ConnectionReset),
            std::io::ErrorKind::ConnectionReset,
        ))
    })
    .await;
}
