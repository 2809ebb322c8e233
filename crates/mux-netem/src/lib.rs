//! An emulated network link, for tests and benchmarks that need a round
//! trip longer than a loopback's.
//!
//! [`link`] returns two ends, each an [`AsyncRead`] + [`AsyncWrite`]
//! transport, and a [`Control`] to change the delay and read counters.
//! Each direction models:
//!
//! - **a bottleneck rate**: written bytes leave one after another at
//!   `rate` bytes per second (a token bucket that holds no burst: a
//!   write's bytes depart once the bytes before them have);
//! - **a one-way delay**: bytes become readable `delay` after they
//!   departed; a delay changed mid-transfer applies to bytes written
//!   after the change, and bytes never overtake earlier ones;
//! - **a bounded queue**: at most `queue` bytes are in flight (written
//!   and not yet read, whether waiting for the rate or on the wire); a
//!   writer waits past that, as a sender waits on a full socket buffer.
//!   [`LinkConfig::new`] sizes it at twice the bandwidth-delay product.
//!
//! It does not model loss, reordering, jitter or congestion control: the
//! queue never drops, so a sender never backs off, and the only feedback
//! a sender gets is the writer waiting on a full queue.
//!
//! Time is tokio's clock, so under a paused clock (`tokio::time::pause`,
//! `#[tokio::test(start_paused = true)]`) a transfer is deterministic and
//! takes no wall time waiting; on a running clock it is real time, with
//! the timer's resolution (about a millisecond) as its jitter.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The most a single write puts on the link as one piece.
const MAX_PIECE: usize = 16 * 1024;

/// The least queue [`LinkConfig::new`] gives a link.
const MIN_QUEUE: usize = 64 * 1024;

/// The shape of both directions of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Time from a byte's departure to its arrival.
    pub one_way_delay: Duration,
    /// Bytes per second the bottleneck passes.
    pub rate: u64,
    /// Bytes in flight (written and not yet read) before a writer waits.
    pub queue: usize,
}

impl LinkConfig {
    /// A link with round-trip time `rtt` (the delay each way is half of
    /// it) and `bits_per_second`, queueing up to twice its
    /// bandwidth-delay product (at least 64 KiB).
    pub fn new(rtt: Duration, bits_per_second: u64) -> Self {
        let mut c = Self {
            one_way_delay: rtt.checked_div(2).unwrap_or_default(),
            rate: (bits_per_second / 8).max(1),
            queue: 0,
        };
        c.queue = usize::try_from(c.bdp().saturating_mul(2))
            .unwrap_or(usize::MAX)
            .max(MIN_QUEUE);
        c
    }

    /// The bandwidth-delay product: bytes the link holds at full rate
    /// over one round trip.
    pub fn bdp(&self) -> u64 {
        let bytes = u128::from(self.rate)
            .saturating_mul(self.one_way_delay.saturating_mul(2).as_nanos())
            / 1_000_000_000;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Bytes read at the far end.
    pub delivered: u64,
    /// Bytes in flight now.
    pub in_flight: usize,
    /// The most bytes in flight at any time.
    pub peak_in_flight: usize,
}

/// One direction: bytes in flight, each piece with its arrival time.
#[derive(Debug)]
struct Pipe {
    pieces: VecDeque<(Instant, Bytes)>,
    config: LinkConfig,
    /// When the bottleneck has sent every byte written so far.
    free_at: Instant,
    /// The arrival time of the last piece, which later ones never precede.
    last_arrival: Instant,
    stats: DirectionStats,
    /// The writer shut down or dropped: the reader gets EOF once drained.
    write_closed: bool,
    /// The reader dropped: writes fail.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    fn new(config: LinkConfig) -> Arc<Mutex<Self>> {
        let now = Instant::now();
        Arc::new(Mutex::new(Self {
            pieces: VecDeque::new(),
            config,
            free_at: now,
            last_arrival: now,
            stats: DirectionStats::default(),
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
        }))
    }

    /// How long the bottleneck takes to send `n` bytes.
    fn transmission(&self, n: usize) -> Duration {
        let nanos = u128::try_from(n)
            .unwrap_or(u128::MAX)
            .saturating_mul(1_000_000_000)
            .checked_div(u128::from(self.config.rate))
            .unwrap_or(u128::MAX);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn push(&mut self, data: &[u8]) -> usize {
        let room = self.config.queue.saturating_sub(self.stats.in_flight);
        let n = data.len().min(room).min(MAX_PIECE);
        let Some(piece) = data.get(..n) else {
            return 0;
        };
        let start = self.free_at.max(Instant::now());
        let depart = later(start, self.transmission(n));
        self.free_at = depart;
        let arrival = later(depart, self.config.one_way_delay).max(self.last_arrival);
        self.last_arrival = arrival;
        self.pieces
            .push_back((arrival, Bytes::copy_from_slice(piece)));
        self.stats.in_flight = self.stats.in_flight.saturating_add(n);
        self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.stats.in_flight);
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        n
    }

    /// Copies arrived bytes into `buf`: `Ok(n)`, or `Err(arrival)` of the
    /// first piece when none has arrived, or `Err(None)` when empty.
    fn pull(&mut self, buf: &mut ReadBuf<'_>, now: Instant) -> Result<usize, Option<Instant>> {
        let mut n: usize = 0;
        while buf.remaining() > 0 {
            let Some((arrival, piece)) = self.pieces.front_mut() else {
                break;
            };
            if *arrival > now {
                if n == 0 {
                    return Err(Some(*arrival));
                }
                break;
            }
            let take = piece.len().min(buf.remaining());
            if let Some(bytes) = piece.get(..take) {
                buf.put_slice(bytes);
            }
            piece.advance(take);
            if piece.is_empty() {
                self.pieces.pop_front();
            }
            n = n.saturating_add(take);
        }
        if n == 0 {
            return Err(None);
        }
        self.stats.in_flight = self.stats.in_flight.saturating_sub(n);
        self.stats.delivered = self
            .stats
            .delivered
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        if let Some(w) = self.writer.take() {
            w.wake();
        }
        Ok(n)
    }
}

/// `t + d`, or `t` should that not be representable.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

/// One end of a link: writes go to the other end, reads come from it.
#[derive(Debug)]
pub struct End {
    rx: Arc<Mutex<Pipe>>,
    tx: Arc<Mutex<Pipe>>,
    sleep: Pin<Box<Sleep>>,
}

/// Changes the link and reads its counters while it runs.
#[derive(Debug, Clone)]
pub struct Control {
    a_to_b: Arc<Mutex<Pipe>>,
    b_to_a: Arc<Mutex<Pipe>>,
}

/// A link with `config` in both directions: ends `a` and `b`, and its
/// [`Control`].
pub fn link(config: LinkConfig) -> (End, End, Control) {
    let a_to_b = Pipe::new(config);
    let b_to_a = Pipe::new(config);
    let end = |rx: &Arc<Mutex<Pipe>>, tx: &Arc<Mutex<Pipe>>| End {
        rx: rx.clone(),
        tx: tx.clone(),
        sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
    };
    let a = end(&b_to_a, &a_to_b);
    let b = end(&a_to_b, &b_to_a);
    (a, b, Control { a_to_b, b_to_a })
}

impl Control {
    /// Sets the one-way delay of both directions, for bytes written from
    /// now on.
    pub fn set_one_way_delay(&self, delay: Duration) {
        self.a_to_b.lock().config.one_way_delay = delay;
        self.b_to_a.lock().config.one_way_delay = delay;
    }

    /// Counters of the direction from end `a` to end `b`.
    pub fn a_to_b(&self) -> DirectionStats {
        self.a_to_b.lock().stats
    }

    /// Counters of the direction from end `b` to end `a`.
    pub fn b_to_a(&self) -> DirectionStats {
        self.b_to_a.lock().stats
    }
}

impl AsyncRead for End {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut pipe = this.rx.lock();
            match pipe.pull(buf, Instant::now()) {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(Some(arrival)) => {
                    drop(pipe);
                    this.sleep.as_mut().reset(arrival);
                    if this.sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                Err(None) if pipe.write_closed => return Poll::Ready(Ok(())),
                Err(None) => {
                    pipe.reader = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncWrite for End {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = self.tx.lock();
        if pipe.read_closed || pipe.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match pipe.push(buf) {
            0 => {
                pipe.writer = Some(cx.waker().clone());
                Poll::Pending
            }
            n => Poll::Ready(Ok(n)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut pipe = self.tx.lock();
        pipe.write_closed = true;
        if let Some(w) = pipe.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for End {
    fn drop(&mut self) {
        let mut tx = self.tx.lock();
        tx.write_closed = true;
        if let Some(w) = tx.reader.take() {
            w.wake();
        }
        drop(tx);
        let mut rx = self.rx.lock();
        rx.read_closed = true;
        if let Some(w) = rx.writer.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::arithmetic_side_effects)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn bytes_arrive_after_the_delay_at_the_rate() {
        // 8 Mbit/s: 1 MB/s, so 100 KB take 100 ms to send, then 25 ms
        // to arrive.
        let config = LinkConfig::new(Duration::from_millis(50), 8_000_000);
        assert_eq!(config.bdp(), 50_000);
        assert_eq!(config.queue, 100_000);
        let (mut a, mut b, control) = link(config);
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            a.write_all(&[7u8; 100_000]).await.unwrap();
            a.shutdown().await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 100_000);
        assert_eq!(start.elapsed(), Duration::from_millis(125));
        let stats = control.a_to_b();
        assert_eq!((stats.delivered, stats.in_flight), (100_000, 0));
        assert!(stats.peak_in_flight <= 100_000);
        drop(writer.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_waits_on_a_full_queue() {
        let config = LinkConfig {
            one_way_delay: Duration::from_millis(100),
            rate: 1_000_000_000,
            queue: 1000,
        };
        let (mut a, mut b, control) = link(config);
        assert_eq!(a.write(&[1u8; 5000]).await.unwrap(), 1000);
        let blocked = tokio::time::timeout(Duration::from_millis(50), a.write(&[1u8; 10])).await;
        assert!(blocked.is_err(), "the queue is full");
        let mut buf = [0u8; 600];
        assert_eq!(b.read(&mut buf).await.unwrap(), 600);
        assert_eq!(control.a_to_b().in_flight, 400);
        assert_eq!(a.write(&[1u8; 5000]).await.unwrap(), 600);
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_delay_applies_to_later_bytes_and_nothing_overtakes() {
        let (mut a, mut b, control) =
            link(LinkConfig::new(Duration::from_millis(200), 1_000_000_000));
        let start = Instant::now();
        a.write_all(b"x").await.unwrap();
        control.set_one_way_delay(Duration::from_millis(10));
        a.write_all(b"y").await.unwrap();
        let mut buf = [0u8; 2];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"xy");
        // 100 ms of delay plus 8 ns of transmission each, rounded up to
        // the timer's millisecond.
        let elapsed = start.elapsed();
        assert!(
            elapsed > Duration::from_millis(100) && elapsed <= Duration::from_millis(101),
            "{elapsed:?}"
        );
    }
}
