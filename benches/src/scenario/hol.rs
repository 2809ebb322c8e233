//! Head-of-line isolation: `streams` streams transfer while one more stream
//! is stalled: the peer accepted it and never reads, and its writer has
//! filled the window and blocks. The throughput is compared with the same
//! transfer on a fresh connection without the stalled stream, the two kinds
//! run in the order [`ORDER`].

use std::io;
use std::time::Duration;

use crate::contender::{Acceptor, Opener};
use crate::pump;
use crate::scenario::throughput;

/// How long the stalled stream's writer gets to fill its window (both
/// runs pause this long before the transfer).
pub const FILL_TIME: Duration = Duration::from_millis(200);

/// Whether each of a run's four transfers has the stalled stream: without,
/// with, with, without. This machine changes speed within milliseconds and
/// drifts over a run; in this order a drift that is steady over the four
/// transfers weighs on both kinds alike, where with one of each it would
/// all land on the ratio.
pub const ORDER: [bool; 4] = [false, true, true, false];

/// Runs the transfer with a stalled stream when `stalled`, else plainly;
/// returns its duration.
pub async fn transfer<O: Opener, A: Acceptor>(
    opener: &O,
    mut acceptor: A,
    streams: usize,
    per_stream: usize,
    stalled: bool,
) -> io::Result<Duration> {
    // Kept alive, unread, until the transfer is over.
    let mut stalled_peer = None;
    if stalled {
        let stream = opener.open().await?;
        let writer = tokio::spawn(pump::write_forever(stream));
        stalled_peer = Some((acceptor.accept().await?, writer));
    }
    // The same pause without a stalled stream, so both runs start alike.
    tokio::time::sleep(FILL_TIME).await;
    if stalled_peer.as_ref().is_some_and(|(_, w)| w.is_finished()) {
        return Err(io::Error::other("the stalled stream's writer failed"));
    }
    let (elapsed, _acceptor) = throughput::transfer(opener, acceptor, streams, per_stream).await?;
    if let Some((peer, writer)) = stalled_peer {
        // Stopped, not left to run: a muxer may keep granting credit to a
        // stream whose reader is gone (ours does, for `close_timeout`), and
        // a writer left pumping would load the machine for the transfers after.
        writer.abort();
        let _ = writer.await;
        drop(peer);
    }
    Ok(elapsed)
}
