//! The SVG chart: throughput against stream count (1, 100, 400, 1000,
//! 10,000; log scale) for every contender, one panel per transport.
//!
//! Drawn with plotters' SVG backend and its built-in text estimate, so no
//! font or system library is involved. Points come from the throughput
//! rows that have a [`Row::chart_streams`]; stalled, failed or n/a points
//! are left out.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::contender::Contender;
use crate::runner::Row;
use crate::transport::Transport;

/// Line colour of each contender.
fn colour(contender: Contender) -> RGBColor {
    match contender {
        Contender::Raw => RGBColor(90, 90, 90),
        Contender::Mux => RGBColor(214, 39, 40),
        Contender::MuxYamuxWire => RGBColor(255, 127, 14),
        Contender::Yamux => RGBColor(31, 119, 180),
        Contender::TokioYamux => RGBColor(44, 160, 44),
        Contender::MuxToYamux => RGBColor(148, 103, 189),
        Contender::YamuxToMux => RGBColor(140, 86, 75),
    }
}

/// The chart's points of `contender` over `transport`, by stream count.
fn points(rows: &[Row], transport: Transport, contender: Contender) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.transport == transport)
        .filter_map(|r| {
            let streams = r.chart_streams?;
            let value = r.cell(contender)?.value()?;
            Some((streams as f64, value))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// Writes the chart of `rows` to `path`; `subtitle` goes under the title.
pub fn write_svg(rows: &[Row], path: &Path, subtitle: &str) -> Result<(), Box<dyn Error>> {
    let transports = [Transport::Duplex, Transport::Tcp];
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("Throughput against stream count: {subtitle}"),
        ("sans-serif", 20),
    )?;
    let panels = root.split_evenly((1, 2));
    for (panel, transport) in panels.iter().zip(transports) {
        let top = Contender::ALL
            .iter()
            .flat_map(|&c| points(rows, transport, c))
            .map(|(_, y)| y)
            .fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(
                match transport {
                    Transport::Duplex => "tokio::io::duplex(1 MiB)",
                    _ => "TCP 127.0.0.1",
                },
                ("sans-serif", 16),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0.7f64..20_000f64).log_scale(), 0f64..top * 1.15)?;
        chart
            .configure_mesh()
            .x_desc("streams at once")
            .y_desc("MiB/s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for contender in Contender::ALL {
            let colour = colour(contender);
            let line = points(rows, transport, contender);
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
                .label(contender.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
