//! The markdown table of the summary: absolute figures per contender, then
//! mux-yamux-lite's ratio to raw and to yamux.

use std::fmt::Write as _;

use crate::contender::Contender;
use crate::runner::{Cell, Row};
use crate::scenario::Metric;

/// A figure formatted for its unit.
pub fn number(value: f64, metric: &Metric) -> String {
    match metric.unit {
        "µs" => format!("{value:.1}"),
        "ratio" => format!("{value:.2}"),
        _ if value >= 100.0 => format!("{value:.0}"),
        _ => format!("{value:.1}"),
    }
}

/// A cell's text: the figure, `stalled`, `error` or the n/a reason.
pub fn cell_text(cell: &Cell, metric: &Metric) -> String {
    match cell {
        Cell::Value(v) => number(*v, metric),
        Cell::Stalled => "stalled".to_owned(),
        Cell::Failed(_) => "error".to_owned(),
        Cell::NotApplicable(reason) => (*reason).to_owned(),
    }
}

/// `ours ÷ other` as `0.42×`, when both are figures.
fn ratio(row: &Row, ours: Contender, other: Contender) -> String {
    match (
        row.cell(ours).and_then(Cell::value),
        row.cell(other).and_then(Cell::value),
    ) {
        (Some(ours), Some(theirs)) if theirs != 0.0 => format!("{:.2}×", ours / theirs),
        _ => "—".to_owned(),
    }
}

/// The markdown table of `rows`, followed by the errors met (if any).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = write!(out, "| scenario | sizes | transport | metric |");
    for contender in Contender::ALL {
        let _ = write!(out, " {} |", contender.name());
    }
    let _ = writeln!(out, " ours ÷ raw | ours ÷ yamux |");
    let _ = write!(out, "|---|---|---|---|");
    for _ in Contender::ALL {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out, "---:|---:|");
    let mut errors = Vec::new();
    for row in rows {
        let better = if row.metric.higher_is_better {
            "↑"
        } else {
            "↓"
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {} ({}) {better} |",
            row.case,
            row.sizes,
            row.transport.name(),
            row.metric.name,
            row.metric.unit
        );
        for (contender, cell) in &row.cells {
            let _ = write!(out, " {} |", cell_text(cell, &row.metric));
            if let Cell::Failed(e) = cell {
                let note = format!(
                    "{} / {} / {}: {e}",
                    row.case,
                    row.transport.name(),
                    contender.name()
                );
                if !errors.contains(&note) {
                    errors.push(note);
                }
            }
        }
        let _ = writeln!(
            out,
            " {} | {} |",
            ratio(row, Contender::Mux, Contender::Raw),
            ratio(row, Contender::Mux, Contender::Yamux),
        );
    }
    if !errors.is_empty() {
        let _ = writeln!(out, "\nErrors:\n");
        for e in errors {
            let _ = writeln!(out, "- {e}");
        }
    }
    out
}
