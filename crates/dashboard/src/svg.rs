//! Small inline-SVG charts (no JavaScript): bar and line charts over
//! labelled values, for dashboard pages and static sites. Every label is
//! HTML-escaped; the output is a self-contained `<svg>` element with a
//! `<title>` for accessibility.

use std::fmt::Write;

use crate::escape;

const W: f64 = 640.0;
const H: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn axis(out: &mut String, max: f64) {
    let plot_h = H - TOP - BOTTOM;
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{y}\" stroke=\"#999\"/>\
         <line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#999\"/>\
         <text x=\"{tx}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\">{max}</text>\
         <text x=\"{tx}\" y=\"{y}\" font-size=\"10\" text-anchor=\"end\">0</text>",
        y = TOP + plot_h,
        x2 = W - RIGHT,
        tx = LEFT - 4.0,
        ty = TOP + 8.0,
        max = fmt_num(max),
    );
}

/// Step between printed x labels so at most ~16 are shown.
fn label_step(n: usize) -> usize {
    n.div_ceil(16).max(1)
}

/// A vertical bar chart of `(label, value)` pairs (negative values are
/// drawn as 0). `class` becomes the `<svg>` element's class.
pub fn bar_chart(title: &str, class: &str, points: &[(String, f64)]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart {}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" width=\"100%\" style=\"max-width:{W}px\"><title>{}</title>",
        escape(class),
        escape(title)
    );
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    axis(&mut out, max);
    if points.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">no data</text>",
            W / 2.0,
            H / 2.0
        );
        out.push_str("</svg>");
        return out;
    }
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / points.len() as f64;
    let bar = (slot * 0.8).max(1.0);
    let step = label_step(points.len());
    for (i, (label, v)) in points.iter().enumerate() {
        let v = v.max(0.0);
        let h = if max > 0.0 { v / max * plot_h } else { 0.0 };
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let y = TOP + plot_h - h;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"#3b6ea5\"><title>{}: {}</title></rect>",
            escape(label),
            fmt_num(v)
        );
        if i % step == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                TOP + plot_h + 14.0,
                escape(label)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A line chart of one or more series over shared x labels. Each series
/// is `(name, values)` with one value per label; a legend names them.
pub fn line_chart(
    title: &str,
    class: &str,
    labels: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    const COLORS: [&str; 4] = ["#3b6ea5", "#c0392b", "#27ae60", "#8e44ad"];
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart {}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" width=\"100%\" style=\"max-width:{W}px\"><title>{}</title>",
        escape(class),
        escape(title)
    );
    let max = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0_f64, f64::max);
    axis(&mut out, max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len();
    let x_of = |i: usize| {
        if n <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y_of = |v: f64| {
        TOP + plot_h
            - if max > 0.0 {
                v.max(0.0) / max * plot_h
            } else {
                0.0
            }
    };
    let step = label_step(n);
    for (i, l) in labels.iter().enumerate() {
        if i % step == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x_of(i),
                TOP + plot_h + 14.0,
                escape(l)
            );
        }
    }
    for (si, (name, values)) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let pts: Vec<String> = values
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            pts.join(" "),
            escape(name)
        );
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
            LEFT + 8.0 + 130.0 * si as f64,
            H - 14.0,
            LEFT + 22.0 + 130.0 * si as f64,
            H - 5.0,
            escape(name)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_escape_labels_and_scale() {
        let svg = bar_chart("T<1>", "c", &[("a&b".into(), 2.0), ("z".into(), 4.0)]);
        assert!(svg.starts_with("<svg class=\"chart c\""));
        assert!(svg.contains("T&lt;1&gt;"));
        assert!(svg.contains("a&amp;b: 2"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn empty_and_lines() {
        assert!(bar_chart("t", "c", &[]).contains("no data"));
        let svg = line_chart(
            "t",
            "c",
            &["2020".into(), "2021".into()],
            &[
                ("all".into(), vec![1.0, 3.0]),
                ("boost".into(), vec![0.0, 1.0]),
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
    }
}
