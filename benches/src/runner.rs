//! The summary runner's loop: every selected case, transport and contender,
//! `runs` times each on a fresh runtime, reduced to medians.

use std::time::{Duration, Instant};

use crate::contender::{Contender, Setup};
use crate::measure::{self, Outcome};
use crate::scenario::{self, Case, Metric};
use crate::transport::Transport;

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
            runs: 3,
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
            let mut cells: Vec<Vec<(Contender, Cell)>> = vec![Vec::new(); metrics.len()];
            for contender in Contender::ALL {
                let started = Instant::now();
                let figures = measure_contender(options, &case, transport, contender);
                log(&format!(
                    "{:<15} {:<10} {:<16} {} ({:.1} s)",
                    case.name,
                    transport.name(),
                    contender.name(),
                    figures
                        .iter()
                        .zip(metrics)
                        .map(|(cell, m)| match cell {
                            Cell::Value(_) => {
                                format!("{} {}", crate::report::cell_text(cell, m), m.unit)
                            }
                            Cell::Failed(e) => format!("error: {e}"),
                            _ => crate::report::cell_text(cell, m),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    started.elapsed().as_secs_f64()
                ));
                for (slot, cell) in cells.iter_mut().zip(figures) {
                    slot.push((contender, cell));
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

/// The cells of one contender for one case and transport: medians over
/// the runs, or the reason there are none. A stall or failure ends the
/// runs of that contender there.
fn measure_contender(
    options: &Options,
    case: &Case,
    transport: Transport,
    contender: Contender,
) -> Vec<Cell> {
    let metrics = case.work.metrics().len();
    let setup = Setup::new(transport, case.work.max_streams());
    if !case.contenders.contains(&contender) {
        return vec![Cell::NotApplicable("—"); metrics];
    }
    if let Some(reason) = contender.unsupported(&setup) {
        return vec![Cell::NotApplicable(reason); metrics];
    }
    let mut runs: Vec<Vec<f64>> = Vec::new();
    for _ in 0..options.runs.max(1) {
        let work = case.work;
        match measure::run(work.flavor(), options.timeout, || {
            scenario::run(work, contender, transport)
        }) {
            Outcome::Done(figures) => runs.push(figures),
            Outcome::Stalled => return vec![Cell::Stalled; metrics],
            Outcome::Failed(e) => return vec![Cell::Failed(e); metrics],
        }
    }
    (0..metrics)
        .map(|i| Cell::Value(median(runs.iter().map(|r| r[i]).collect())))
        .collect()
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
