//! The summary runner's loop: every selected case, transport and contender,
//! `runs` times each on a fresh runtime, reduced to medians.

use std::time::{Duration, Instant};

use crate::contender::{Contender, Setup};
use crate::measure::{self, Outcome};
use crate::scenario::{self, Case, Metric};
use crate::transport::Transport;

/// Runs per figure unless asked otherwise: the figures swing by half from
/// run to run on this machine, and five runs of everything but idle memory
/// take about as long as one idle-memory figure.
pub const DEFAULT_RUNS: usize = 5;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Smaller sizes ([`scenario::cases`]).
    pub quick: bool,
    /// Runs per figure; the median is reported.
    pub runs: usize,
    /// Bound on each run.
    pub timeout: Duration,
    /// Only cases whose `name/transport` contains one of these (all when
    /// empty).
    pub filters: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            runs: DEFAULT_RUNS,
            timeout: measure::DEFAULT_TIMEOUT,
            filters: Vec::new(),
        }
    }
}

/// One contender's figure in a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// The median of the runs.
    Value(f64),
    /// A run hit the time bound.
    Stalled,
    /// A run failed; the error.
    Failed(String),
    /// Not run, and why.
    NotApplicable(&'static str),
}

impl Cell {
    /// The figure, if there is one.
    pub fn value(&self) -> Option<f64> {
        match self {
            Self::Value(v) => Some(*v),
            _ => None,
        }
    }
}

/// One line of the table: one metric of one case over one transport.
#[derive(Debug, Clone)]
pub struct Row {
    /// The case's name.
    pub case: &'static str,
    /// The case's sizes.
    pub sizes: String,
    /// The transport.
    pub transport: Transport,
    /// The metric.
    pub metric: Metric,
    /// One cell per contender, in [`Contender::ALL`] order.
    pub cells: Vec<(Contender, Cell)>,
    /// The stream count on the chart's axis, for throughput rows.
    pub chart_streams: Option<usize>,
}

impl Row {
    /// The cell of `contender`.
    pub fn cell(&self, contender: Contender) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|(c, _)| *c == contender)
            .map(|(_, cell)| cell)
    }
}

/// Whether `case` over `transport` passes the filters.
pub fn selected(options: &Options, case: &Case, transport: Transport) -> bool {
    let key = format!("{}/{}", case.name, transport.name());
    options.filters.is_empty() || options.filters.iter().any(|f| key.contains(f.as_str()))
}

/// Runs everything `options` selects; `log` gets one progress line per
/// contender and case.
pub fn run(options: &Options, mut log: impl FnMut(&str)) -> Vec<Row> {
    let mut rows = Vec::new();
    for case in scenario::cases(options.quick) {
        for &transport in &case.transports {
            if !selected(options, &case, transport) {
                continue;
            }
            let metrics = case.work.metrics();
            let work = case.work;
            let rounds = work.runs(options.runs);
            let measured = interleaved(&Contender::ALL, metrics.len(), rounds, |contender| {
                if !case.contenders.contains(&contender) {
                    return Err(Cell::NotApplicable("—"));
                }
                let setup = Setup::new(transport, work.max_streams());
                if let Some(reason) = contender.unsupported(&setup) {
                    return Err(Cell::NotApplicable(reason));
                }
                Ok(move || {
                    measure::run(work.flavor(), options.timeout, || {
                        scenario::run(work, contender, transport)
                    })
                })
            });
            let mut cells: Vec<Vec<(Contender, Cell)>> = vec![Vec::new(); metrics.len()];
            for measured in measured {
                log(&progress_line(&case, transport, &measured));
                for (slot, cell) in cells.iter_mut().zip(measured.cells) {
                    slot.push((measured.contender, cell));
                }
            }
            for (metric, cells) in metrics.iter().zip(cells) {
                rows.push(Row {
                    case: case.name,
                    sizes: case.work.describe(),
                    transport,
                    metric: *metric,
                    cells,
                    chart_streams: case.chart_streams,
                });
            }
        }
    }
    rows
}

/// `case transport contender figures [each run's first figure] (seconds)`,
/// for the runner's log.
fn progress_line(case: &Case, transport: Transport, measured: &Measured) -> String {
    let metrics = case.work.metrics();
    let figures = measured
        .cells
        .iter()
        .zip(metrics)
        .map(|(cell, m)| match cell {
            Cell::Value(_) => format!("{} {}", crate::report::cell_text(cell, m), m.unit),
            Cell::Failed(e) => format!("error: {e}"),
            _ => crate::report::cell_text(cell, m),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let runs = match metrics.first() {
        Some(m) if measured.runs.len() > 1 => {
            let each: Vec<String> = measured
                .runs
                .iter()
                .filter_map(|r| r.first())
                .map(|&v| crate::report::cell_text(&Cell::Value(v), m))
                .collect();
            format!(" [{}]", each.join(", "))
        }
        _ => String::new(),
    };
    format!(
        "{:<15} {:<10} {:<16} {figures}{runs} ({:.1} s)",
        case.name,
        transport.name(),
        measured.contender.name(),
        measured.took.as_secs_f64()
    )
}

/// What [`interleaved`] measured of one contender.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Who.
    pub contender: Contender,
    /// One cell per metric: the median of the runs, or why there is none.
    pub cells: Vec<Cell>,
    /// Every run's figures, in the order they ran.
    pub runs: Vec<Vec<f64>>,
    /// The time its runs took.
    pub took: Duration,
}

/// Measures `contenders` in `rounds` rounds of one run each, not one
/// contender's runs back to back: this machine runs in fast and slow spells
/// of a few hundred milliseconds, longer than several runs together, so
/// back-to-back runs could give one contender a spell of its own and the
/// ratio would measure the machine. Each round starts one contender later
/// than the one before, so that none always runs first or always follows
/// the same other. `prepare` gives a contender's single-run measurement,
/// or the cell it shows instead (not applicable); a run returns `metrics`
/// figures. A run that stalls or fails ends that contender's runs: its
/// cells say so. Returns one [`Measured`] per contender, in `contenders`
/// order.
pub fn interleaved<M>(
    contenders: &[Contender],
    metrics: usize,
    rounds: usize,
    mut prepare: impl FnMut(Contender) -> Result<M, Cell>,
) -> Vec<Measured>
where
    M: FnMut() -> Outcome<Vec<f64>>,
{
    // A contender's measurement, while it still runs.
    let mut running: Vec<Option<M>> = Vec::with_capacity(contenders.len());
    let mut measured: Vec<Measured> = Vec::with_capacity(contenders.len());
    for &contender in contenders {
        let (measure, ended) = match prepare(contender) {
            Ok(measure) => (Some(measure), None),
            Err(cell) => (None, Some(cell)),
        };
        running.push(measure);
        measured.push(Measured {
            contender,
            cells: ended.map_or_else(Vec::new, |cell| vec![cell; metrics]),
            runs: Vec::new(),
            took: Duration::ZERO,
        });
    }
    let n = contenders.len();
    for round in 0..rounds.max(1) {
        for i in (0..n).map(|k| (k + round) % n) {
            let (Some(slot), Some(m)) = (running.get_mut(i), measured.get_mut(i)) else {
                continue;
            };
            let Some(measure) = slot else {
                continue;
            };
            let started = Instant::now();
            let outcome = measure();
            m.took += started.elapsed();
            let ended = match outcome {
                Outcome::Done(figures) => {
                    m.runs.push(figures);
                    continue;
                }
                Outcome::Stalled => Cell::Stalled,
                Outcome::Failed(e) => Cell::Failed(e),
            };
            m.cells = vec![ended; metrics];
            *slot = None;
        }
    }
    for m in &mut measured {
        if m.cells.is_empty() {
            m.cells = (0..metrics)
                .map(|i| {
                    Cell::Value(median(
                        m.runs.iter().filter_map(|r| r.get(i).copied()).collect(),
                    ))
                })
                .collect();
        }
    }
    measured
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_interleave_contenders_and_rotate_who_goes_first() {
        let order = std::cell::RefCell::new(Vec::new());
        let contenders = [Contender::Raw, Contender::Mux, Contender::Yamux];
        let cells = interleaved(&contenders, 1, 3, |c| {
            let order = &order;
            Ok(move || {
                order.borrow_mut().push(c);
                Outcome::Done(vec![order.borrow().len() as f64])
            })
        });
        use Contender::{Mux, Raw, Yamux};
        assert_eq!(
            *order.borrow(),
            [Raw, Mux, Yamux, Mux, Yamux, Raw, Yamux, Raw, Mux]
        );
        // Raw ran 1st, 6th and 8th: its median is 6.
        assert_eq!(cells[0].cells, [Cell::Value(6.0)]);
        // Yamux ran 3rd, 5th and 7th.
        assert_eq!(cells[2].cells, [Cell::Value(5.0)]);
    }

    #[test]
    fn a_stall_ends_only_that_contenders_runs_and_fills_its_cells() {
        use Contender::{Mux, Raw, Yamux};
        let mux_runs = std::cell::Cell::new(0);
        let cells = interleaved(&[Raw, Mux, Yamux], 2, 4, |c| {
            if c == Yamux {
                return Err(Cell::NotApplicable("no"));
            }
            let mux_runs = &mux_runs;
            Ok(move || {
                if c == Mux {
                    mux_runs.set(mux_runs.get() + 1);
                    if mux_runs.get() == 2 {
                        return Outcome::Stalled;
                    }
                }
                Outcome::Done(vec![1.0, 2.0])
            })
        });
        assert_eq!(mux_runs.get(), 2, "no run after the stall");
        assert_eq!(cells[1].runs, [vec![1.0, 2.0]], "the run before it is kept");
        assert_eq!(cells[0].cells, [Cell::Value(1.0), Cell::Value(2.0)]);
        assert_eq!(cells[1].cells, [Cell::Stalled, Cell::Stalled]);
        assert_eq!(
            cells[2].cells,
            [Cell::NotApplicable("no"), Cell::NotApplicable("no")]
        );
    }
}
