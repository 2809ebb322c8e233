//! When `flush` and close-write (`shutdown`) return, on the sans-IO session:
//! once every buffered byte (and the FIN) fits the peer's window, so that
//! framing needs nothing more from the peer. They do not wait for the
//! framing itself, which would cost the writer a wakeup per call; they do
//! wait while the window is closed, or before the peer's HELLO.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod support;

use std::time::Instant;

use mux_core::StreamId;
use mux_yamux_lite::frame::{Flags, Frame};
use mux_yamux_lite::session::{ReadOutcome, Session};
use mux_yamux_lite::{Config, Role};
use support::{deliver, exchange_hellos};

/// A client with one open stream, hellos exchanged.
fn connected(now: Instant) -> (Session, Session, StreamId) {
    let mut client = Session::new(Role::Client, Config::default(), now);
    let mut server = Session::new(Role::Server, Config::default(), now);
    exchange_hellos(&mut client, &mut server, now);
    let id = client.open(now).unwrap().unwrap();
    (client, server, id)
}

#[test]
fn flush_and_close_write_return_once_the_window_admits_the_bytes() {
    let now = Instant::now();
    let (mut client, _server, id) = connected(now);
    assert_eq!(client.write(id, &[1u8; 1000]).unwrap(), Some(1000));
    assert!(client.flush(id).unwrap(), "within the window: committed");
    assert!(client.close_write(id).unwrap(), "FIN committed behind them");

    // Nothing was framed yet: one frame carries all of it, the SYN too.
    match client.poll_frame(now) {
        Some(Frame::Data { flags, payload, .. }) => {
            assert_eq!(payload.len(), 1000);
            assert!(flags.contains(Flags::SYN), "{flags:?}");
            assert!(flags.contains(Flags::FIN), "{flags:?}");
        }
        other => panic!("expected DATA with SYN and FIN, got {other:?}"),
    }
    assert!(client.poll_frame(now).is_none());
}

#[test]
fn a_closed_window_makes_flush_and_close_write_wait_for_the_peer() {
    let now = Instant::now();
    let (mut client, mut server, id) = connected(now);
    let window = usize::try_from(Config::default().initial_window).unwrap();
    let mut written = 0;
    while written < window {
        written += client
            .write(id, &vec![2u8; window - written])
            .unwrap()
            .unwrap();
        deliver(&mut client, &mut server, now);
    }
    // The whole window is spent: the next bytes need a window update.
    assert_eq!(client.write(id, b"more").unwrap(), Some(4));
    assert!(!client.flush(id).unwrap());
    assert!(!client.close_write(id).unwrap());

    // The server reads; the window update it owes lets them through.
    let sid = server.accept().unwrap().unwrap();
    let mut buf = vec![0u8; window];
    let mut read = 0;
    while read < window {
        match server.read(sid, &mut buf).unwrap() {
            ReadOutcome::Data(n) => read += n,
            other => panic!("expected data, got {other:?}"),
        }
    }
    deliver(&mut server, &mut client, now);
    assert!(client.flush(id).unwrap());
    assert!(client.close_write(id).unwrap());
}

#[test]
fn before_the_peers_hello_nothing_is_committed() {
    let now = Instant::now();
    let mut client = Session::new(Role::Client, Config::default(), now);
    let mut server = Session::new(Role::Server, Config::default(), now);
    let id = client.open(now).unwrap().unwrap();
    assert!(
        client.flush(id).unwrap(),
        "nothing buffered: nothing to wait for"
    );
    // Buffered, but no window has been granted yet.
    assert_eq!(client.write(id, b"early").unwrap(), Some(5));
    assert!(!client.flush(id).unwrap());
    assert!(!client.close_write(id).unwrap());

    exchange_hellos(&mut client, &mut server, now);
    assert!(client.flush(id).unwrap());
    assert!(client.close_write(id).unwrap());
}

/// The SYN of a stream that writes at once rides on its DATA frame; SYNs
/// must still leave in id order (a receiver treats a SYN at or below the
/// highest id it has seen as a reused id), whichever streams have data.
#[test]
fn syns_leave_in_id_order_whether_or_not_the_stream_has_data() {
    let now = Instant::now();
    let (mut client, mut server, first) = connected(now);
    client.write(first, b"x").unwrap();
    let second = client.open(now).unwrap().unwrap();
    let third = client.open(now).unwrap().unwrap();
    // More than one frame's worth: the stream still has bytes after the
    // frame that carries its SYN, and keeps its one place in the data queue.
    let max = usize::try_from(Config::default().max_frame_payload).unwrap();
    assert_eq!(
        client.write(third, &vec![3u8; 2 * max]).unwrap(),
        Some(2 * max)
    );
    let mut syns = Vec::new();
    while let Some(frame) = client.poll_frame(now) {
        client.check_invariants().unwrap();
        if let Frame::Data { id, flags, .. } | Frame::Window { id, flags, .. } = &frame {
            if flags.contains(Flags::SYN) {
                syns.push(*id);
            }
        }
        server.handle_frame(frame, now);
    }
    assert_eq!(syns, [first.get(), second.get(), third.get()]);
    assert!(
        server.closed_reason().is_none(),
        "{:?}",
        server.closed_reason()
    );
    for _ in 0..3 {
        assert!(server.accept().unwrap().is_some());
    }
}
