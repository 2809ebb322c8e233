//! Hostile peer, floods: SYN floods, Rapid Reset, reset floods, ping floods
//! and empty or tiny DATA frames. Every flood sends far more than the limit
//! and asserts that the connection reacted exactly at the limit, or that
//! what it holds stays bounded while the peer refuses to read. Each runs on
//! both wires.
#![allow(clippy::arithmetic_side_effects)]

mod support;

use std::time::Duration;

use mux_core::{MuxedStream, StreamId};
use mux_yamux_lite::frame::{go_away, reset_code, Flags, Frame};
use mux_yamux_lite::session::ProtocolError;
use mux_yamux_lite::{Role, Wire};
use support::{
    bounded, connect, connect_with_capacity, data, encode_on, expect_protocol_failure,
    handshake_frames, on_each_wire, protocol_error, quiet_on, syn,
};
use tokio::io::AsyncReadExt;

/// Bytes the driver may hold framed but unwritten while the transport has
/// never taken a whole batch (`driver::WRITE_HIGH_WATER_BACKED_UP`; these
/// tests' pipes are smaller than one) plus one frame: what a peer that never
/// reads can make us buffer as output.
const WRITE_BUFFER_BOUND: usize = 256 * 1024 + 64;

/// The duplex capacity of the back-pressure tests, per direction.
const PIPE: usize = 8 * 1024;

/// Client stream ids 1, 3, 5, ... (the peer is the client).
fn client_ids(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|i| 2 * i + 1)
}

/// Reads RESET(REFUSED) for every client id from `first` below `end`, in
/// order and nothing else.
async fn expect_refusals(reader: &mut support::RawReader, first: u32, end: u32) {
    let mut expected_id = first;
    while expected_id < end {
        match reader.recv().await {
            Some(Frame::Reset { id, code }) => {
                assert_eq!((id, code), (expected_id, reset_code::REFUSED));
                expected_id += 2;
            }
            other => panic!("expected RESET({expected_id}, REFUSED), got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_syn_whose_window_the_receive_budget_cannot_admit_is_refused() {
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = quiet_on(wire);
            // 256 KiB: the least the yamux wire grants.
            config.initial_window = 256 * 1024;
            config.connection_receive_budget = 3 * 256 * 1024 + 1;
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            // Three initial windows fit; the fourth and fifth do not, accepted
            // or not.
            for id in client_ids(5) {
                peer.send(syn(id)).await;
            }
            for id in [7, 9] {
                assert_eq!(
                    peer.recv_significant().await,
                    Some(Frame::Reset {
                        id,
                        code: reset_code::REFUSED
                    })
                );
            }
            assert_eq!(conn.stats().streams_refused, 2);
            let first = conn.accept_stream().await.unwrap();
            assert_eq!(first.id(), StreamId(1));
            // A stream that ends gives its window back to the budget.
            peer.send(Frame::Reset { id: 1, code: 0 }).await;
            drop(first);
            peer.send(syn(11)).await;
            peer.send(Frame::Ping {
                ack: false,
                opaque: 7,
            })
            .await;
            assert_eq!(
                peer.recv_significant().await,
                Some(Frame::Ping {
                    ack: true,
                    opaque: 7
                })
            );
            assert_eq!(conn.stats().streams_refused, 2);
            for id in [3, 5, 11] {
                assert_eq!(conn.accept_stream().await.unwrap().id(), StreamId(id));
            }
        })
    })
    .await;
}

#[tokio::test]
async fn syn_flood_beyond_max_inbound_streams_is_refused_stream_by_stream() {
    const FLOOD: u32 = 100_000;
    const LIMIT: usize = 100;
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = quiet_on(wire);
            config.max_inbound_streams = LIMIT;
            config.accept_backlog = 1000;
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            let (mut reader, mut writer) = peer.split();
            let flood = encode_on(wire, client_ids(FLOOD).map(syn));
            let write_task = tokio::spawn(async move {
                writer.send_raw(&flood).await.unwrap();
                writer
            });
            let first_refused = 2 * u32::try_from(LIMIT).unwrap() + 1;
            expect_refusals(&mut reader, first_refused, 2 * FLOOD).await;
            let mut writer = write_task.await.unwrap();
            let stats = conn.stats();
            assert_eq!(stats.streams, LIMIT);
            assert_eq!(stats.streams_refused, u64::from(FLOOD) - LIMIT as u64);
            assert!(!conn.is_closed());
            // An admitted stream still carries data.
            writer
                .send(data(1, Flags::FIN, b"admitted before the flood"))
                .await
                .unwrap();
            let mut s = conn.accept_stream().await.unwrap();
            assert_eq!(s.id().get(), 1);
            let mut got = String::new();
            s.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "admitted before the flood");
        })
    })
    .await;
}

/// Cancelling before accept is counted against the Rapid Reset limit only
/// while such streams outnumber the ones the application accepted: the soak
/// test (a million streams, a quarter reset by the client) crossed 10,000 of
/// them after about 150 s and was closed as an attacker. Sans-IO, so the
/// counts are exact.
#[test]
fn cancelling_before_accept_trips_the_limit_only_while_it_outnumbers_accepted_streams() {
    use mux_yamux_lite::session::Session;
    let now = std::time::Instant::now();
    let mut config = support::quiet_config();
    config.max_reset_before_accept = 4;
    let mut server = Session::new(Role::Server, config.clone(), now);
    let mut client = Session::new(Role::Client, config, now);
    while let Some(frame) = client.poll_frame(now) {
        server.handle_frame(frame, now);
    }
    let mut ids = client_ids(100);
    let open_and_cancel = |server: &mut Session, n: usize, ids: &mut dyn Iterator<Item = u32>| {
        for id in ids.take(n) {
            server.handle_frame(syn(id), now);
            server.handle_frame(Frame::Reset { id, code: 0 }, now);
        }
    };
    // Ten requests accepted, then eight cancelled before accept: 8 > 4, but
    // fewer than the ten accepted.
    for id in ids.by_ref().take(10) {
        server.handle_frame(syn(id), now);
        assert_eq!(server.accept().unwrap(), Some(StreamId(id)));
    }
    open_and_cancel(&mut server, 8, &mut ids);
    assert!(
        server.closed_reason().is_none(),
        "{:?}",
        server.closed_reason()
    );
    // Three more: 11 cancelled against 10 accepted is a flood.
    open_and_cancel(&mut server, 3, &mut ids);
    let reason = server.closed_reason().expect("closed as a flood");
    assert_eq!(protocol_error(reason), Some(ProtocolError::TooManyResets));
}

#[tokio::test]
async fn rapid_reset_is_stopped_at_max_reset_before_accept_with_reset_streams_freed_at_once() {
    // CVE-2023-44487: open and reset streams faster than the app accepts.
    const PAIRS: u32 = 100_000;
    const FIRST: u32 = 5_000;
    on_each_wire(|wire| {
        bounded(async move {
            let config = quiet_on(wire);
            let limit = config.max_reset_before_accept;
            assert_eq!(limit, 10_000);
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            let (mut reader, mut writer) = peer.split();
            let pair = |id| [syn(id), Frame::Reset { id, code: 0 }];
            let mut ids = client_ids(PAIRS);
            let first = encode_on(wire, ids.by_ref().take(FIRST as usize).flat_map(pair));
            writer.send_raw(&first).await.unwrap();
            writer
                .send(Frame::Ping {
                    ack: false,
                    opaque: 42,
                })
                .await
                .unwrap();
            // We never answer a peer's RESET, so the pong is the next frame.
            assert_eq!(
                reader.recv().await,
                Some(Frame::Ping {
                    ack: true,
                    opaque: 42
                })
            );
            let stats = conn.stats();
            assert_eq!(stats.streams, 0, "reset streams are freed at once");
            assert!(!conn.is_closed());

            let rest = encode_on(wire, ids.flat_map(pair));
            let write_task = tokio::spawn(async move { writer.send_raw(&rest).await });
            let frames = reader.recv_until_eof().await;
            assert_eq!(
                frames,
                [Frame::GoAway {
                    code: go_away::PROTOCOL_ERROR
                }]
            );
            assert!(
                write_task.await.unwrap().is_err(),
                "the connection must stop reading long before 100k pairs"
            );
            let err = conn.accept_stream().await.unwrap_err();
            assert_eq!(protocol_error(&err), Some(ProtocolError::TooManyResets));
            // The handshake's frames + sync ping + (limit + 1) SYN/RESET pairs:
            // not one frame was processed past the limit.
            assert_eq!(
                conn.stats().frames_received,
                handshake_frames(wire) + 1 + 2 * (u64::from(limit) + 1)
            );
            assert_eq!(conn.stats().streams, 0);
        })
    })
    .await;
}

#[tokio::test]
async fn stream_fault_reset_flood_is_stopped_at_max_peer_error_resets() {
    // RUSTSEC-2024-0003: make us reset streams (DATA after FIN) without end.
    const STREAMS: u32 = 5_000;
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = quiet_on(wire);
            // Faulty streams wait in the backlog (the app is not accepting),
            // each with its window in the receive budget; make room so the
            // fault limit, not the backlog or the budget, is what binds.
            config.accept_backlog = 2_000;
            config.connection_receive_budget = u64::MAX;
            let limit = config.max_peer_error_resets;
            assert_eq!(limit, 1024);
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            let (mut reader, mut writer) = peer.split();
            let flood = encode_on(
                wire,
                client_ids(STREAMS).flat_map(|id| {
                    [
                        data(id, Flags::SYN.with(Flags::FIN), b""),
                        data(id, Flags::NONE, b"x"),
                    ]
                }),
            );
            let write_task = tokio::spawn(async move { writer.send_raw(&flood).await });
            let frames = reader.recv_until_eof().await;
            let (go_away_frame, resets) = frames.split_last().unwrap();
            assert_eq!(
                go_away_frame,
                &Frame::GoAway {
                    code: go_away::PROTOCOL_ERROR
                }
            );
            assert!(resets.len() <= limit as usize, "{} resets", resets.len());
            for (f, id) in resets.iter().zip(client_ids(STREAMS)) {
                assert_eq!(
                    f,
                    &Frame::Reset {
                        id,
                        code: reset_code::STREAM_CLOSED
                    }
                );
            }
            // The flood may already sit in the pipe; what matters is that
            // nothing past the limit was processed.
            let _ = write_task.await.unwrap();
            let err = conn.accept_stream().await.unwrap_err();
            assert_eq!(protocol_error(&err), Some(ProtocolError::TooManyResets));
            let stats = conn.stats();
            assert_eq!(stats.peer_error_resets, limit + 1);
            // The handshake's frames + (limit + 1) streams of two frames each.
            assert_eq!(
                stats.frames_received,
                handshake_frames(wire) + 2 * (u64::from(limit) + 1)
            );
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn refusal_flood_while_the_peer_never_reads_stalls_the_peer_not_our_memory() {
    const FLOOD: u32 = 100_000;
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = quiet_on(wire);
            config.max_inbound_streams = 0; // every SYN forces a RESET
            let (conn, mut peer) = connect_with_capacity(Role::Server, config, PIPE);
            peer.handshake().await;
            let (mut reader, mut writer) = peer.split();
            let flood = encode_on(wire, client_ids(FLOOD).map(syn));
            let mut write_task = tokio::spawn(async move { writer.send_raw(&flood).await });

            // The peer never reads: once everything is blocked, virtual time
            // advances and the timeout fires with the flood still unwritten.
            let stalled = tokio::time::timeout(Duration::from_secs(5), &mut write_task).await;
            assert!(stalled.is_err(), "a peer that never reads cannot finish");
            let held = conn.stats().streams_refused;
            // What we hold is bounded by the pipe, the driver's write buffer and
            // the control-queue limit, not by the size of the flood.
            let reset_len = encode_on(wire, [Frame::Reset { id: 1, code: 0 }]).len();
            let bound = ((PIPE + WRITE_BUFFER_BOUND) / reset_len
                + mux_yamux_lite::session::CONTROL_QUEUE_LIMIT
                + 2) as u64;
            assert!(held <= bound, "{held} refusals processed, bound {bound}");
            assert_eq!(conn.stats().streams, 0);
            // Still stalled later: nothing more is read while nothing is written.
            let _ = tokio::time::timeout(Duration::from_secs(20), &mut write_task).await;
            assert_eq!(conn.stats().streams_refused, held);
            assert!(!conn.is_closed());

            // Once the peer reads, every refusal arrives in order and the rest
            // of the flood goes through.
            expect_refusals(&mut reader, 1, 2 * FLOOD).await;
            write_task.await.unwrap().unwrap();
            assert_eq!(conn.stats().streams_refused, u64::from(FLOOD));
            assert!(!conn.is_closed());
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn ping_flood_while_the_peer_never_reads_holds_bounded_pongs() {
    // CVE-2024-32984: a pong queue that grew while the attacker never read.
    const FLOOD: u32 = 100_000;
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect_with_capacity(Role::Server, quiet_on(wire), PIPE);
            peer.handshake().await;
            let (mut reader, mut writer) = peer.split();
            let flood = encode_on(
                wire,
                (0..FLOOD).map(|opaque| Frame::Ping { ack: false, opaque }),
            );
            let mut write_task = tokio::spawn(async move { writer.send_raw(&flood).await });

            let stalled = tokio::time::timeout(Duration::from_secs(5), &mut write_task).await;
            assert!(stalled.is_err(), "a peer that never reads cannot finish");
            // Pings decoded = pongs owed or framed: one owed pong in the
            // session, the rest already bytes in the bounded write path.
            let pings = conn.stats().frames_received - handshake_frames(wire);
            let bound = ((PIPE + WRITE_BUFFER_BOUND) / 10 + 2) as u64;
            assert!(pings <= bound, "{pings} pings decoded, bound {bound}");
            let _ = tokio::time::timeout(Duration::from_secs(20), &mut write_task).await;
            assert_eq!(
                conn.stats().frames_received - handshake_frames(wire),
                pings,
                "still stalled"
            );
            assert!(!conn.is_closed());

            // Reading again, the peer gets exactly one pong per ping, in order.
            for opaque in 0..FLOOD {
                assert_eq!(reader.recv().await, Some(Frame::Ping { ack: true, opaque }));
            }
            write_task.await.unwrap().unwrap();
            assert!(!conn.is_closed());
        })
    })
    .await;
}

#[tokio::test]
async fn empty_data_frame_flood_is_stopped_at_max_empty_frames() {
    const FLOOD: usize = 100_000;
    on_each_wire(|wire| {
        bounded(async move {
            let config = quiet_on(wire);
            let limit = config.max_empty_frames;
            assert_eq!(limit, 1000);
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            peer.send(syn(1)).await;
            let (mut reader, mut writer) = peer.split();
            let flood = encode_on(wire, std::iter::repeat_n(data(1, Flags::NONE, b""), FLOOD));
            let write_task = tokio::spawn(async move { writer.send_raw(&flood).await });
            let frames = reader.recv_until_eof().await;
            assert_eq!(
                frames.last(),
                Some(&Frame::GoAway {
                    code: go_away::PROTOCOL_ERROR
                }),
                "{frames:?}"
            );
            // The flood may already sit in the pipe; what matters is that
            // nothing past the limit was processed.
            let _ = write_task.await.unwrap();
            let err = conn.accept_stream().await.unwrap_err();
            assert_eq!(
                protocol_error(&err),
                Some(ProtocolError::TooManyEmptyFrames)
            );
            // The handshake's frames + SYN + (limit + 1) empty frames.
            assert_eq!(
                conn.stats().frames_received,
                handshake_frames(wire) + 1 + u64::from(limit) + 1
            );
        })
    })
    .await;
}

#[tokio::test]
async fn zero_delta_flagless_window_updates_share_the_empty_frame_budget() {
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = quiet_on(wire);
            config.max_empty_frames = 100;
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            peer.send(syn(1)).await;
            // 60 empty DATA, then zero updates: the 41st update is the 101st
            // empty frame. Flagged empty frames (the SYN above) are not counted.
            let flood = encode_on(
                wire,
                std::iter::repeat_n(data(1, Flags::NONE, b""), 60).chain(std::iter::repeat_n(
                    Frame::Window {
                        id: 1,
                        flags: Flags::NONE,
                        delta: 0,
                    },
                    10_000,
                )),
            );
            peer.send_raw(&flood).await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(err, ProtocolError::TooManyEmptyFrames);
            assert_eq!(
                conn.stats().frames_received,
                handshake_frames(wire) + 1 + 101
            );
        })
    })
    .await;
}

#[tokio::test]
async fn tiny_data_frame_flood_is_bounded_by_the_stream_window() {
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = quiet_on(wire);
            // The yamux wire grants at least the 256 KiB every peer assumes.
            config.initial_window = match wire {
                Wire::Yamux => 256 * 1024,
                _ => 16 * 1024,
            };
            let window = config.initial_window;
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            peer.send(syn(1)).await;
            let (mut reader, mut writer) = peer.split();
            // One-byte frames, far beyond the window, on a stream never read.
            let flood = encode_on(
                wire,
                std::iter::repeat_n(data(1, Flags::NONE, b"x"), window as usize + 64),
            );
            let write_task = tokio::spawn(async move { writer.send_raw(&flood).await });
            let frames = reader.recv_until_eof().await;
            assert_eq!(
                frames.last(),
                Some(&Frame::GoAway {
                    code: go_away::PROTOCOL_ERROR
                })
            );
            // The flood may already sit in the pipe; what matters is that
            // nothing past the limit was processed.
            let _ = write_task.await.unwrap();
            let err = conn.accept_stream().await.unwrap_err();
            assert_eq!(
                protocol_error(&err),
                Some(ProtocolError::WindowExceeded {
                    id: 1,
                    len: 1,
                    credit: 0
                })
            );
            assert_eq!(conn.stats().bytes_received, u64::from(window) + 1);
        })
    })
    .await;
}

#[tokio::test]
async fn empty_frames_count_over_the_lifetime_whatever_comes_between() {
    on_each_wire(|wire| {
        bounded(async move {
            let config = quiet_on(wire);
            let limit = config.max_empty_frames;
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            peer.send(syn(1)).await;
            let empty = |n| encode_on(wire, std::iter::repeat_n(data(1, Flags::NONE, b""), n));
            // Bursts of empty frames with real traffic and a ping round trip
            // between them: nothing resets the count.
            let first = limit as usize / 2;
            for (n, opaque) in [(first, 7), (limit as usize - first, 8)] {
                peer.send_raw(&empty(n)).await;
                peer.send(data(1, Flags::NONE, b"real")).await;
                peer.send(Frame::Ping { ack: false, opaque }).await;
                assert_eq!(
                    peer.recv_significant().await,
                    Some(Frame::Ping { ack: true, opaque })
                );
            }
            assert!(!conn.is_closed(), "exactly the limit is allowed");
            peer.send_raw(&empty(1)).await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(err, ProtocolError::TooManyEmptyFrames);
        })
    })
    .await;
}
