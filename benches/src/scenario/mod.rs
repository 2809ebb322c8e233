//! The scenarios: generic functions over [`Opener`](crate::contender::Opener)
//! and [`Acceptor`](crate::contender::Acceptor) in the submodules, the
//! [`Work`] each case does, and [`cases`], the list the summary runner
//! measures (benches/README.md explains each one).

use std::io;
use std::time::Duration;

use crate::contender::{Contender, Setup};
use crate::measure::Flavor;
use crate::transport::Transport;
use crate::{with_contender, KIB, MIB};

pub mod churn;
pub mod hol;
pub mod idle;
pub mod round_trip;
pub mod throughput;

/// What one measurement does, with its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `streams` streams at once, each `per_stream` bytes one way.
    Transfer {
        /// Streams opened at once.
        streams: usize,
        /// Bytes written on each.
        per_stream: usize,
    },
    /// 64-byte request/response on one open stream.
    RoundTrip {
        /// Untimed round trips first.
        warmup: usize,
        /// Timed round trips.
        iterations: usize,
    },
    /// Open, write 1 byte, close, peer reads to EOF and closes.
    Churn {
        /// Stream lifecycles in all.
        total: usize,
        /// Lifecycles running at a time.
        in_flight: usize,
    },
    /// Heap bytes per idle open stream.
    IdleMemory {
        /// Streams held open.
        streams: usize,
    },
    /// A transfer with and without one more, stalled, stream.
    HeadOfLine {
        /// Streams transferring.
        streams: usize,
        /// Bytes written on each.
        per_stream: usize,
    },
}

/// One figure a [`Work`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// What is measured, e.g. `p50`.
    pub name: &'static str,
    /// The unit, e.g. `MiB/s`.
    pub unit: &'static str,
    /// Whether a larger figure is better.
    pub higher_is_better: bool,
}

const THROUGHPUT: &[Metric] = &[Metric {
    name: "throughput",
    unit: "MiB/s",
    higher_is_better: true,
}];
const LATENCY: &[Metric] = &[
    Metric {
        name: "p50",
        unit: "µs",
        higher_is_better: false,
    },
    Metric {
        name: "p99",
        unit: "µs",
        higher_is_better: false,
    },
];
const CHURN: &[Metric] = &[Metric {
    name: "rate",
    unit: "streams/s",
    higher_is_better: true,
}];
const MEMORY: &[Metric] = &[Metric {
    name: "heap",
    unit: "B/stream",
    higher_is_better: false,
}];
const HOL: &[Metric] = &[
    Metric {
        name: "no stall",
        unit: "MiB/s",
        higher_is_better: true,
    },
    Metric {
        name: "1 stalled",
        unit: "MiB/s",
        higher_is_better: true,
    },
    Metric {
        name: "stalled ÷ no stall",
        unit: "ratio",
        higher_is_better: true,
    },
];

/// The most runs of an idle-memory figure ([`Work::runs`]).
pub const IDLE_RUNS: usize = 3;

/// Round-trip runs per run asked for ([`Work::runs`]), each an eighth as
/// long as a single run would be: the machine changes speed within a few
/// milliseconds, so short runs taking turns put every contender in the
/// same spells, where long ones would each average their own.
pub const ROUND_TRIP_SPLIT: usize = 8;

impl Work {
    /// The figures [`run`] returns, in order.
    pub fn metrics(&self) -> &'static [Metric] {
        match self {
            Self::Transfer { .. } => THROUGHPUT,
            Self::RoundTrip { .. } => LATENCY,
            Self::Churn { .. } => CHURN,
            Self::IdleMemory { .. } => MEMORY,
            Self::HeadOfLine { .. } => HOL,
        }
    }

    /// The runtime it runs on: current-thread for the round trip,
    /// multi-thread with 2 workers otherwise.
    pub fn flavor(&self) -> Flavor {
        match self {
            Self::RoundTrip { .. } => Flavor::CurrentThread,
            _ => Flavor::MultiThread,
        }
    }

    /// Runs per figure when `asked` are asked for. Idle memory is a heap
    /// count that repeats to the byte and each of its runs waits 3 s for
    /// the connection to settle, so it runs at most [`IDLE_RUNS`] times;
    /// the round trip runs [`ROUND_TRIP_SPLIT`] times as often (its sizes
    /// in [`cases`] are per short run).
    pub fn runs(&self, asked: usize) -> usize {
        match self {
            Self::IdleMemory { .. } => asked.min(IDLE_RUNS),
            Self::RoundTrip { .. } => asked.saturating_mul(ROUND_TRIP_SPLIT),
            _ => asked,
        }
    }

    /// Streams open at once.
    pub fn max_streams(&self) -> usize {
        match *self {
            Self::Transfer { streams, .. } | Self::IdleMemory { streams } => streams,
            Self::RoundTrip { .. } => 1,
            Self::Churn { in_flight, .. } => in_flight,
            Self::HeadOfLine { streams, .. } => streams + 1,
        }
    }

    /// The sizes, for the table.
    pub fn describe(&self) -> String {
        match *self {
            Self::Transfer {
                streams,
                per_stream,
            }
            | Self::HeadOfLine {
                streams,
                per_stream,
            } => format!("{streams} × {}", size(per_stream)),
            Self::RoundTrip { iterations, .. } => {
                format!("{} B × {iterations} per run", round_trip::MESSAGE)
            }
            Self::Churn { total, in_flight } => format!("{total}, {in_flight} at a time"),
            Self::IdleMemory { streams } => format!("{streams} streams"),
        }
    }
}

/// `256 MiB`, `64 KiB`, `12 B`.
pub fn size(bytes: usize) -> String {
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Runs `work` once for `contender` over `transport` (on the current
/// runtime) and returns the figures of [`Work::metrics`].
pub async fn run(work: Work, contender: Contender, transport: Transport) -> io::Result<Vec<f64>> {
    let setup = Setup::new(transport, work.max_streams());
    match work {
        Work::Transfer {
            streams,
            per_stream,
        } => with_contender!(contender, setup, |opener, acceptor| {
            let (elapsed, _acceptor) =
                throughput::transfer(&opener, acceptor, streams, per_stream).await?;
            Ok(vec![throughput::mib_per_s(streams * per_stream, elapsed)])
        }),
        Work::RoundTrip { warmup, iterations } => {
            with_contender!(contender, setup, |opener, acceptor| {
                let times = round_trip::latencies(&opener, acceptor, warmup, iterations).await?;
                let micros = |p| round_trip::percentile(&times, p).as_secs_f64() * 1e6;
                Ok(vec![micros(50), micros(99)])
            })
        }
        Work::Churn { total, in_flight } => {
            with_contender!(contender, setup, |opener, acceptor| {
                let elapsed = churn::lifecycles(&opener, acceptor, total, in_flight).await?;
                Ok(vec![total as f64 / elapsed.as_secs_f64().max(1e-9)])
            })
        }
        Work::IdleMemory { streams } => with_contender!(contender, setup, |opener, acceptor| {
            match idle::bytes_per_stream(&opener, acceptor, streams).await? {
                Some(bytes) => Ok(vec![bytes]),
                None => Err(io::Error::other("the counting allocator is not installed")),
            }
        }),
        Work::HeadOfLine {
            streams,
            per_stream,
        } => {
            // [without, with] the stalled stream, each the sum of two
            // transfers in the order of `hol::ORDER`.
            let mut elapsed = [Duration::ZERO; 2];
            for stalled in hol::ORDER {
                let took = with_contender!(contender, setup, |opener, acceptor| {
                    hol::transfer(&opener, acceptor, streams, per_stream, stalled).await?
                });
                let total = &mut elapsed[usize::from(stalled)];
                *total = total.saturating_add(took);
            }
            let [plain, with_stall] = [false, true].map(|stalled| {
                let transfers = hol::ORDER.iter().filter(|&&s| s == stalled).count();
                let took = elapsed[usize::from(stalled)];
                throughput::mib_per_s(transfers * streams * per_stream, took)
            });
            Ok(vec![plain, with_stall, with_stall / plain])
        }
    }
}

/// Runs `work` once for `contender` over `transport` (on the current
/// runtime) and returns the time of its measured part only: the transfer,
/// the churn, or the sum of the timed round trips. For the criterion
/// benches; the other kinds of work return an error.
pub async fn elapsed(
    work: Work,
    contender: Contender,
    transport: Transport,
) -> io::Result<Duration> {
    let setup = Setup::new(transport, work.max_streams());
    match work {
        Work::Transfer {
            streams,
            per_stream,
        } => with_contender!(contender, setup, |opener, acceptor| {
            Ok(throughput::transfer(&opener, acceptor, streams, per_stream)
                .await?
                .0)
        }),
        Work::RoundTrip { warmup, iterations } => {
            with_contender!(contender, setup, |opener, acceptor| {
                let times = round_trip::latencies(&opener, acceptor, warmup, iterations).await?;
                Ok(times.iter().sum())
            })
        }
        Work::Churn { total, in_flight } => {
            with_contender!(contender, setup, |opener, acceptor| {
                churn::lifecycles(&opener, acceptor, total, in_flight).await
            })
        }
        Work::IdleMemory { .. } | Work::HeadOfLine { .. } => Err(io::Error::other(
            "only transfers, round trips and churn have a single elapsed time",
        )),
    }
}

/// One row group of the summary: a named [`Work`] over some transports,
/// for some contenders.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short name, matched by the runner's filter.
    pub name: &'static str,
    /// What it does and its sizes.
    pub work: Work,
    /// The transports it runs over.
    pub transports: Vec<Transport>,
    /// The contenders it runs (the others show `n/a`).
    pub contenders: Vec<Contender>,
    /// Its stream count on the chart's axis, for throughput cases.
    pub chart_streams: Option<usize>,
}

/// The cases of the summary, in table order; `quick` shrinks the sizes
/// (benches/README.md lists both).
pub fn cases(quick: bool) -> Vec<Case> {
    let pick = |full: usize, small: usize| if quick { small } else { full };
    let both = vec![Transport::Duplex, Transport::Tcp];
    let all = Contender::ALL.to_vec();
    // The heap count covers both sides, so a pair of two implementations
    // would give a figure of neither: idle memory leaves them out.
    let muxers = vec![
        Contender::Mux,
        Contender::MuxYamuxWire,
        Contender::Yamux,
        Contender::TokioYamux,
    ];
    let transfer = |name, streams, per_stream: usize| Case {
        name,
        work: Work::Transfer {
            streams,
            per_stream,
        },
        transports: both.clone(),
        contenders: all.clone(),
        chart_streams: Some(streams),
    };
    vec![
        transfer("bulk", 1, pick(256 * MIB, 64 * MIB)),
        transfer("concurrent-100", 100, pick(MIB, 256 * KIB)),
        transfer("concurrent-400", 400, 64 * KIB),
        transfer("streams-1000", 1000, pick(256 * KIB, 64 * KIB)),
        transfer("streams-10000", 10_000, pick(64 * KIB, 16 * KIB)),
        Case {
            name: "round-trip",
            work: Work::RoundTrip {
                warmup: pick(1000, 200) / ROUND_TRIP_SPLIT,
                iterations: pick(10_000, 2000) / ROUND_TRIP_SPLIT,
            },
            transports: both.clone(),
            contenders: all.clone(),
            chart_streams: None,
        },
        Case {
            name: "churn",
            work: Work::Churn {
                total: pick(5000, 1000),
                in_flight: 16,
            },
            transports: both.clone(),
            contenders: all.clone(),
            chart_streams: None,
        },
        Case {
            name: "idle-400",
            work: Work::IdleMemory { streams: 400 },
            transports: both.clone(),
            contenders: muxers,
            chart_streams: None,
        },
        Case {
            name: "idle-many",
            work: Work::IdleMemory {
                streams: pick(100_000, 10_000),
            },
            transports: vec![Transport::Duplex],
            contenders: vec![Contender::Mux],
            chart_streams: None,
        },
        Case {
            name: "head-of-line",
            work: Work::HeadOfLine {
                streams: 10,
                per_stream: pick(16 * MIB, 4 * MIB),
            },
            transports: both,
            contenders: all.clone(),
            chart_streams: None,
        },
        Case {
            name: "tunnel-bulk",
            work: Work::Transfer {
                streams: 1,
                per_stream: pick(64 * MIB, 16 * MIB),
            },
            transports: vec![Transport::H2],
            contenders: all.clone(),
            chart_streams: None,
        },
        Case {
            name: "tunnel-100",
            work: Work::Transfer {
                streams: 100,
                per_stream: pick(MIB, 256 * KIB),
            },
            transports: vec![Transport::H2],
            contenders: all,
            chart_streams: None,
        },
    ]
}
