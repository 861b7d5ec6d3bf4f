//! `rocklog bench --plot FILE.svg`: the run as a picture. One block per workload, one row
//! per backend: on the left its throughput as a bar (scaled to the workload's fastest
//! backend, the figure written beside it), on the right its latency p50, p99 and p99.9 on
//! a log scale shared by every workload.
#![allow(clippy::cast_precision_loss)] // coordinates of a picture

use std::fmt::Write;

use super::report::Summary;

const ROW: f64 = 18.0;
const LABEL_W: f64 = 210.0;
const BAR_W: f64 = 300.0;
const GAP: f64 = 90.0;
const LAT_W: f64 = 360.0;
const LAT_MIN_US: f64 = 10.0;
const LAT_MAX_US: f64 = 1_000_000.0;

/// Where `us` falls on the latency axis, clamped to it.
fn lat_x(us: f64) -> f64 {
    let span = (LAT_MAX_US / LAT_MIN_US).log10();
    let at = (us.clamp(LAT_MIN_US, LAT_MAX_US) / LAT_MIN_US).log10() / span;
    LABEL_W + BAR_W + GAP + at * LAT_W
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A throughput figure as the bar's label: entries/s, and MiB/s for large entries.
fn rate_label(s: &Summary) -> String {
    if s.params.entry_bytes >= 16 * 1024 {
        format!("{:.0} MiB/s", s.mib_per_sec)
    } else {
        format!("{:.0} e/s", s.entries_per_sec)
    }
}

/// The SVG document for a run's summaries (`title` goes on top: date, machine, rounds).
pub fn svg(all: &[Vec<Summary>], title: &str) -> String {
    let rows: usize = all.iter().map(|w| w.len() + 2).sum();
    let height = 70.0 + rows as f64 * ROW;
    let width = LABEL_W + BAR_W + GAP + LAT_W + 30.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ =
        writeln!(out, r#"<text x="10" y="18" font-size="13" font-weight="bold">{}</text>"#, escape(title));
    let _ = writeln!(
        out,
        r#"<text x="{LABEL_W}" y="38">throughput (bar: share of the workload's fastest)</text><text x="{}" y="38">latency µs, log scale: ● p50  ▲ p99  ✕ p99.9</text>"#,
        LABEL_W + BAR_W + GAP
    );
    let mut y = 50.0;
    // The latency axis's decades, as faint vertical lines with their values.
    let axis_top = y;
    let mut decade = LAT_MIN_US;
    while decade <= LAT_MAX_US {
        let x = lat_x(decade);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{axis_top}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#888">{decade:.0}</text>"##,
            height - 20.0,
            height - 8.0
        );
        decade *= 10.0;
    }
    for workload in all {
        let Some(first) = workload.first() else { continue };
        y += ROW;
        let _ = writeln!(
            out,
            r#"<text x="10" y="{y:.1}" font-weight="bold">{}</text>"#,
            escape(&format!(
                "{} — {} proposers, {} groups, {} B × {}",
                first.workload,
                first.params.proposers,
                first.params.groups,
                first.params.entry_bytes,
                first.params.entries_per_append
            ))
        );
        let best = workload.iter().map(|s| s.entries_per_sec).fold(0.0, f64::max).max(1e-9);
        for s in workload {
            y += ROW;
            let color = if s.backend == "rocklog" { "#d9534f" } else { "#5b7db1" };
            let w = BAR_W * s.entries_per_sec / best;
            let _ = writeln!(
                out,
                r#"<text x="20" y="{y:.1}">{}</text><rect x="{LABEL_W}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{y:.1}">{}</text>"#,
                escape(s.backend),
                y - ROW + 6.0,
                ROW - 4.0,
                LABEL_W + w + 4.0,
                escape(&rate_label(s))
            );
            let (p50, p99, p999) = (lat_x(s.p50_us), lat_x(s.p99_us), lat_x(s.p999_us));
            let mid = y - 4.0;
            let _ = writeln!(
                out,
                r#"<line x1="{p50:.1}" y1="{mid:.1}" x2="{p999:.1}" y2="{mid:.1}" stroke="{color}"/><circle cx="{p50:.1}" cy="{mid:.1}" r="3.5" fill="{color}"/><text x="{p99:.1}" y="{:.1}" text-anchor="middle" fill="{color}">▲</text><text x="{p999:.1}" y="{:.1}" text-anchor="middle" fill="{color}">✕</text>"#,
                mid + 4.0,
                mid + 4.0
            );
        }
        y += ROW * 0.5;
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_axis_is_logarithmic_and_clamped() {
        let (lo, hi) = (lat_x(LAT_MIN_US), lat_x(LAT_MAX_US));
        assert!((lat_x(1000.0) - (lo + (hi - lo) * 0.4)).abs() < 1e-6);
        assert!((lat_x(1.0) - lo).abs() < 1e-9);
        assert!((lat_x(1e9) - hi).abs() < 1e-9);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
