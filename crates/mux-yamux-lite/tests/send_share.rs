//! The connection-wide send budget, on the sans-IO session: while many
//! streams have bytes waiting, each may queue only its share of
//! `Config::connection_send_buffer`, but never less than `MIN_SEND_SHARE`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod support;

use std::time::Instant;

use mux_core::StreamId;
use mux_yamux_lite::session::{Session, MIN_SEND_SHARE};
use mux_yamux_lite::{Config, Role};
use support::exchange_hellos;

/// Writes until the stream's buffer is full; returns the bytes queued.
fn fill(session: &mut Session, id: StreamId) -> usize {
    let chunk = [7u8; 4096];
    let mut queued = 0;
    while let Some(n) = session.write(id, &chunk).unwrap() {
        queued += n;
    }
    queued
}

#[test]
fn many_writers_share_the_connection_budget_and_none_starves() {
    let now = Instant::now();
    let config = Config::default();
    let (per_stream, budget) = (config.send_buffer, config.connection_send_buffer);
    let mut session = Session::new(Role::Client, config.clone(), now);
    let mut peer = Session::new(Role::Server, config, now);
    // The hellos: until the peer's arrives, nothing may be sent.
    exchange_hellos(&mut session, &mut peer, now);
    let ids: Vec<StreamId> = (0..100)
        .map(|_| session.open(now).unwrap().expect("an open slot"))
        .collect();
    let queued: Vec<usize> = ids.iter().map(|&id| fill(&mut session, id)).collect();

    // Alone, a stream may fill its whole buffer.
    assert_eq!(queued[0], per_stream);
    // The last writer arrived with 99 others waiting: 1 MiB / 99 is
    // under the floor, so it gets exactly the floor.
    assert_eq!(queued[99], MIN_SEND_SHARE);
    assert!(queued.windows(2).all(|w| w[0] >= w[1]), "{queued:?}");
    // Without the budget 100 writers would hold 100 x 256 KiB = 25 MiB.
    let total: usize = queued.iter().sum();
    assert!(total < 5 * budget, "{total} bytes queued");

    // A stream with nothing queued never waits on the others' bytes.
    let late = session.open(now).unwrap().unwrap();
    assert_eq!(session.write_room(late).unwrap(), MIN_SEND_SHARE);

    // Once the frames are pulled (each stream's window is 256 KiB, so
    // everything fits), the share is back to the whole buffer.
    while session.poll_frame(now).is_some() {}
    assert_eq!(session.write_room(late).unwrap(), per_stream);
}
