//! Whether a short answer should be written by the task that wrote it.
//!
//! A short write that follows a read is usually an answer: the peer waits
//! for it, and handing it to the driver costs a task wakeup before it
//! leaves. Writing it from the writer's task pays when the transport's
//! write is cheap (an in-memory pipe: a 64-byte round trip 1.6 → 1.2 µs)
//! and costs when it is a syscall (TCP: many streams answering at once lost
//! a quarter of their rate, each answer's syscall on its own task instead
//! of in the driver's batch). The two differ by more than an order of
//! magnitude per call, so the connection keeps a running cost of these
//! writes (timing one in [`SAMPLE_EVERY`] while they are cheap) and writes
//! answers through only while it is low.
//!
//! The cost of one small write is mostly the call itself, so it tells an
//! in-memory pipe from a socket where per-byte costs of large writes do
//! not.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

/// A short write through at most this dear, in nanoseconds, keeps answers
/// going through. Measured on the benchmark machine (64-byte echoes): a
/// `tokio::io::duplex` write averaged 70–90, a loopback TCP write 4,600–5,000.
const CHEAP_NS: u32 = 2_000;

/// While answers are dear, one in this many goes through anyway, so that
/// a passing stall (a preempted thread) does not switch them off for good.
const PROBE_EVERY: u32 = 32;

/// While answers are cheap, one in this many is timed. Reading the clock
/// twice costs about 50 ns on the benchmark machine's virtual CPU, which
/// is a twentieth of a 64-byte round trip when every answer pays it; a
/// transport that turns dear is still noticed within a few dozen answers.
const SAMPLE_EVERY: u32 = 8;

/// What to do with a short answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Leave it to the driver.
    Queue,
    /// Write it through; time the write (and [`AnswerCost::record`] it)
    /// if `timed`.
    Write { timed: bool },
}

/// The running cost of short writes made by the writing task.
#[derive(Debug, Default)]
pub(crate) struct AnswerCost {
    /// Exponential average, weight ½: two dear writes switch answers off.
    /// Races between writers lose a sample at worst.
    average_ns: AtomicU32,
    /// Answers decided so far, for the probe and the sampling. A plain load
    /// and store, not a read-modify-write: a race between writers skews a
    /// count by one, which only moves a sample or a probe.
    counted: AtomicU32,
}

impl AnswerCost {
    /// What to do with the next short answer.
    pub(crate) fn decide(&self) -> Answer {
        let n = self.counted.load(Relaxed).wrapping_add(1);
        self.counted.store(n, Relaxed);
        if self.average_ns.load(Relaxed) <= CHEAP_NS {
            return Answer::Write {
                timed: n % SAMPLE_EVERY == 0,
            };
        }
        if n % PROBE_EVERY == 0 {
            Answer::Write { timed: true }
        } else {
            Answer::Queue
        }
    }

    /// Records what one written-through answer took.
    pub(crate) fn record(&self, took: Duration) {
        let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let old = u64::from(self.average_ns.load(Relaxed));
        let average = old.saturating_add(sample) / 2;
        self.average_ns
            .store(u32::try_from(average).unwrap_or(u32::MAX), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dear_writes_switch_answers_off_and_a_probe_lets_cheap_ones_back() {
        let cost = AnswerCost::default();
        let decide = |n: u32| (0..n).map(|_| cost.decide()).collect::<Vec<_>>();
        let cheap = decide(SAMPLE_EVERY);
        assert!(
            cheap.iter().all(|a| matches!(a, Answer::Write { .. })),
            "optimistic until measured: {cheap:?}"
        );
        let timed = cheap
            .iter()
            .filter(|a| **a == Answer::Write { timed: true })
            .count();
        assert_eq!(timed, 1, "one cheap answer in {SAMPLE_EVERY} is timed");
        cost.record(Duration::from_micros(8));
        cost.record(Duration::from_micros(8));
        let dear = decide(PROBE_EVERY);
        let probes: Vec<_> = dear.iter().filter(|a| **a != Answer::Queue).collect();
        assert_eq!(
            probes,
            [&Answer::Write { timed: true }],
            "one timed probe per {PROBE_EVERY} while dear"
        );
        for _ in 0..4 {
            cost.record(Duration::from_nanos(300));
        }
        assert!(
            matches!(cost.decide(), Answer::Write { .. }),
            "cheap again after a few cheap probes"
        );
    }
}
