//! The markdown table of the summary: absolute figures per contender, then
//! the [`RATIOS`]: mux-yamux-lite's to raw and to yamux, on either wire.

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

/// The ratio columns: heading, numerator, denominator. Each ratio against
/// yamux that lite mode has, the yamux wire has too, and the last column
/// divides one mode by the other: the same as dividing their ratios
/// against yamux, as both share the row's yamux figure.
pub const RATIOS: [(&str, Contender, Contender); 4] = [
    ("ours ÷ raw", Contender::Mux, Contender::Raw),
    ("ours ÷ yamux", Contender::Mux, Contender::Yamux),
    (
        "yamux wire ÷ yamux",
        Contender::MuxYamuxWire,
        Contender::Yamux,
    ),
    ("yamux wire ÷ lite", Contender::MuxYamuxWire, Contender::Mux),
];

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
    for (heading, _, _) in RATIOS {
        let _ = write!(out, " {heading} |");
    }
    let _ = write!(out, "\n|---|---|---|---|");
    for _ in 0..Contender::ALL.len() + RATIOS.len() {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out);
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
        for (_, ours, other) in RATIOS {
            let _ = write!(out, " {} |", ratio(row, ours, other));
        }
        let _ = writeln!(out);
    }
    if !errors.is_empty() {
        let _ = writeln!(out, "\nErrors:\n");
        for e in errors {
            let _ = writeln!(out, "- {e}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Work;
    use crate::Transport;

    /// A bulk row where contender number `i` of [`Contender::ALL`] has the
    /// figure `i + 1`, except Mux 4 and MuxYamuxWire 3.
    fn row() -> Row {
        let cells = Contender::ALL
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let value = match c {
                    Contender::Mux => 4.0,
                    Contender::MuxYamuxWire => 3.0,
                    _ => (i + 1) as f64,
                };
                (c, Cell::Value(value))
            })
            .collect();
        let work = Work::Transfer {
            streams: 1,
            per_stream: 1,
        };
        Row {
            case: "bulk",
            sizes: work.describe(),
            transport: Transport::Duplex,
            metric: work.metrics()[0],
            cells,
            chart_streams: None,
        }
    }

    #[test]
    fn every_line_has_a_cell_per_contender_and_ratio_and_the_yamux_wire_has_its_ratios() {
        let table = markdown(&[row()]);
        let lines: Vec<&str> = table.lines().collect();
        let columns = 4 + Contender::ALL.len() + RATIOS.len();
        for line in &lines {
            assert_eq!(line.matches('|').count(), columns + 1, "{line}");
        }
        assert!(lines[0].ends_with("| yamux wire ÷ yamux | yamux wire ÷ lite |"));
        // Raw 1, yamux 4 (4th in ALL): ours 4 ÷ 1, 4 ÷ 4; the yamux wire
        // 3 ÷ 4 and 3 ÷ 4 again against lite.
        assert!(
            lines[2].ends_with("| 4.00× | 1.00× | 0.75× | 0.75× |"),
            "{}",
            lines[2]
        );
    }
}
