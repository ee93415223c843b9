//! The report's charts, drawn with plotters' SVG backend into strings that
//! the page inlines (no external assets). Three shapes cover every chart:
//! lanes (timelines, distributions, interval bars), lines (metrics over time)
//! and the reliability diagram.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
pub use plotters::style::RGBColor;

#[derive(Debug, thiserror::Error)]
#[error("drawing the chart `{title}`: {message}")]
pub struct ChartError {
    title: String,
    message: String,
}

pub const WIDTH: u32 = 960;
const FONT: &str = "sans-serif";

/// Fault windows across the whole chart.
pub const FAULT: RGBAColor = RGBAColor(220, 38, 38, 0.10);
pub const CHAPTER: RGBColor = RGBColor(99, 102, 241);
pub const OK: RGBColor = RGBColor(34, 197, 94);
pub const WARN: RGBColor = RGBColor(245, 158, 11);
pub const BAD: RGBColor = RGBColor(239, 68, 68);
pub const UNKNOWN: RGBColor = RGBColor(203, 213, 225);
pub const INK: RGBColor = RGBColor(51, 65, 85);
pub const DETECTED: RGBColor = RGBColor(220, 38, 38);
pub const DIAGNOSED: RGBColor = RGBColor(79, 70, 229);
pub const RECOVERED: RGBColor = RGBColor(22, 163, 74);

/// Line colours, distinguishable and readable on white.
const PALETTE: [RGBColor; 8] = [
    RGBColor(37, 99, 235),
    RGBColor(234, 88, 12),
    RGBColor(22, 163, 74),
    RGBColor(147, 51, 234),
    RGBColor(219, 39, 119),
    RGBColor(13, 148, 136),
    RGBColor(202, 138, 4),
    RGBColor(71, 85, 105),
];

pub fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A CSS colour for the page's legends, matching a chart colour.
pub fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// What a vertical mark stands for; its colour and shape follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Detected,
    Diagnosed,
    Recovered,
}

impl MarkKind {
    fn color(self) -> RGBColor {
        match self {
            MarkKind::Detected => DETECTED,
            MarkKind::Diagnosed => DIAGNOSED,
            MarkKind::Recovered => RECOVERED,
        }
    }
}

/// A vertical mark at `at`, over one lane or (lane `None`) the whole chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub lane: Option<usize>,
    pub at: f64,
    pub kind: MarkKind,
}

/// A bar in a lane from `from` to `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub lane: usize,
    pub from: f64,
    pub to: f64,
    pub color: RGBColor,
    /// Thin bars (intervals) instead of full-height ones (states).
    pub thin: bool,
}

/// A dot in a lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    pub lane: usize,
    pub at: f64,
    pub color: RGBColor,
    pub size: u32,
}

/// A chart of named horizontal lanes over a numeric x axis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lanes {
    pub title: String,
    pub x_desc: String,
    /// Top to bottom.
    pub names: Vec<String>,
    pub x_range: (f64, f64),
    /// Shaded across every lane (fault windows).
    pub shaded: Vec<(f64, f64)>,
    pub spans: Vec<Span>,
    pub dots: Vec<Dot>,
    pub marks: Vec<Mark>,
}

fn err(title: &str) -> impl Fn(String) -> ChartError + '_ {
    move |message| ChartError {
        title: title.to_string(),
        message,
    }
}

/// Plotters writes the SVG with fixed pixel sizes; the page scales it.
fn finish(svg: String) -> String {
    svg.replacen("<svg ", "<svg class=\"chart\" role=\"img\" ", 1)
}

fn label_area(names: &[String]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(4) as u32;
    (longest * 7 + 16).clamp(60, 280)
}

fn short(name: &str) -> String {
    match name.chars().count() > 38 {
        true => format!("{}…", name.chars().take(37).collect::<String>()),
        false => name.to_string(),
    }
}

/// Widens an empty or degenerate range so plotters can draw it.
fn range(lo: f64, hi: f64) -> (f64, f64) {
    match (lo.is_finite() && hi.is_finite(), hi - lo) {
        (true, d) if d > 0.0 => (lo, hi),
        (true, _) => (lo - 1.0, lo + 1.0),
        (false, _) => (0.0, 1.0),
    }
}

pub fn lanes(c: &Lanes) -> Result<String, ChartError> {
    let e = err(&c.title);
    let n = c.names.len().max(1);
    let height = (n as u32 * 26 + 90).max(150);
    let (x0, x1) = range(c.x_range.0, c.x_range.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        // Lane 0 is drawn at the top: plotters counts segments from the bottom.
        let seg = |lane: usize| n - 1 - lane.min(n - 1);
        let names: Vec<String> = c.names.iter().map(|s| short(s)).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, (FONT, 17).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(label_area(&names))
            .build_cartesian_2d(x0..x1, (0..n).into_segmented())
            .map_err(|x| e(x.to_string()))?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < n => {
                names.get(n - 1 - *i).cloned().unwrap_or_default()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n + 1)
            .y_label_formatter(&label)
            .x_desc(c.x_desc.as_str())
            .x_labels(10)
            .light_line_style(RGBColor(241, 245, 249))
            .bold_line_style(RGBColor(226, 232, 240))
            .label_style((FONT, 13).into_font().color(&INK))
            .axis_desc_style((FONT, 13).into_font().color(&INK))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        let full =
            |from: f64, to: f64| [(from, SegmentValue::Exact(0)), (to, SegmentValue::Exact(n))];
        chart
            .draw_series(c.spans.iter().filter(|s| !s.thin).map(|s| {
                let lane = seg(s.lane);
                let (from, to) = (s.from.max(x0), s.to.min(x1).max(s.from.max(x0)));
                // Exact(lane) is the lane's bottom edge, Exact(lane + 1) its top.
                Rectangle::new(
                    [
                        (from, SegmentValue::Exact(lane)),
                        (to, SegmentValue::Exact(lane + 1)),
                    ],
                    s.color.mix(0.85).filled(),
                )
            }))
            .map_err(|x| e(x.to_string()))?;
        // Intervals: a bar through the lane's middle with end caps.
        chart
            .draw_series(c.spans.iter().filter(|s| s.thin).map(|s| {
                let mid = SegmentValue::CenterOf(seg(s.lane));
                PathElement::new(
                    vec![(s.from.max(x0), mid.clone()), (s.to.min(x1), mid)],
                    s.color.stroke_width(3),
                )
            }))
            .map_err(|x| e(x.to_string()))?;
        // White outlines keep neighbouring state lanes apart.
        chart
            .draw_series(c.spans.iter().filter(|s| !s.thin).map(|s| {
                let lane = seg(s.lane);
                Rectangle::new(
                    [
                        (s.from.max(x0), SegmentValue::Exact(lane)),
                        (
                            s.to.min(x1).max(s.from.max(x0)),
                            SegmentValue::Exact(lane + 1),
                        ),
                    ],
                    WHITE.stroke_width(2),
                )
            }))
            .map_err(|x| e(x.to_string()))?;
        // Fault windows over everything but the marks, so they show on every lane.
        chart
            .draw_series(
                c.shaded
                    .iter()
                    .map(|&(a, b)| Rectangle::new(full(a.max(x0), b.min(x1)), FAULT.filled())),
            )
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(c.marks.iter().map(|m| {
                let color = m.kind.color();
                let (bottom, top) = match m.lane {
                    Some(l) => (SegmentValue::Exact(seg(l)), SegmentValue::Exact(seg(l) + 1)),
                    None => (SegmentValue::Exact(0), SegmentValue::Exact(n)),
                };
                PathElement::new(vec![(m.at, bottom), (m.at, top)], color.stroke_width(2))
            }))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(c.marks.iter().filter_map(|m| {
                let lane = seg(m.lane?);
                let at = (m.at, SegmentValue::CenterOf(lane));
                let style = m.kind.color().filled();
                Some(match m.kind {
                    MarkKind::Detected => TriangleMarker::new(at, 6, style).into_dyn(),
                    MarkKind::Diagnosed => {
                        Cross::new(at, 5, m.kind.color().stroke_width(2)).into_dyn()
                    }
                    MarkKind::Recovered => Circle::new(at, 5, style).into_dyn(),
                })
            }))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(c.dots.iter().map(|d| {
                Circle::new(
                    (d.at, SegmentValue::CenterOf(seg(d.lane))),
                    d.size,
                    d.color.mix(0.75).filled(),
                )
            }))
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(finish(svg))
}

/// Series of (x, y) points over a shared x axis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lines {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_range: (f64, f64),
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    pub shaded: Vec<(f64, f64)>,
    pub marks: Vec<Mark>,
}

pub fn lines(c: &Lines) -> Result<String, ChartError> {
    let e = err(&c.title);
    let (x0, x1) = range(c.x_range.0, c.x_range.1);
    let ys = c.series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    let pad = ((hi - lo).abs() * 0.08).max(1e-9);
    let (y0, y1) = range(lo.min(0.0_f64.max(lo - pad)), hi + pad);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH / 2 - 8, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(short(&c.title), (FONT, 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(c.x_desc.as_str())
            .y_desc(c.y_desc.as_str())
            .x_labels(6)
            .y_labels(5)
            .light_line_style(RGBColor(241, 245, 249))
            .bold_line_style(RGBColor(226, 232, 240))
            .label_style((FONT, 12).into_font().color(&INK))
            .axis_desc_style((FONT, 12).into_font().color(&INK))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(
                c.shaded.iter().map(|&(a, b)| {
                    Rectangle::new([(a.max(x0), y0), (b.min(x1), y1)], FAULT.filled())
                }),
            )
            .map_err(|x| e(x.to_string()))?;
        for (i, (_, points)) in c.series.iter().enumerate() {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    palette(i).stroke_width(2),
                ))
                .map_err(|x| e(x.to_string()))?;
        }
        chart
            .draw_series(c.marks.iter().map(|m| {
                PathElement::new(vec![(m.at, y0), (m.at, y1)], m.kind.color().stroke_width(1))
            }))
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(finish(svg))
}

/// One point of a reliability diagram: mean confidence, observed accuracy with its interval, n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliabilityPoint {
    pub confidence: f64,
    pub accuracy: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

pub fn reliability(title: &str, points: &[ReliabilityPoint]) -> Result<String, ChartError> {
    let e = err(title);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 15).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1.05f64)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("stated confidence")
            .y_desc("observed accuracy")
            .light_line_style(RGBColor(241, 245, 249))
            .bold_line_style(RGBColor(226, 232, 240))
            .label_style((FONT, 12).into_font().color(&INK))
            .axis_desc_style((FONT, 12).into_font().color(&INK))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                RGBColor(148, 163, 184).stroke_width(1),
            ))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(points.iter().map(|p| {
                PathElement::new(
                    vec![(p.confidence, p.lo), (p.confidence, p.hi)],
                    DIAGNOSED.stroke_width(2),
                )
            }))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(points.iter().map(|p| {
                let r = (3.0 + (p.n as f64).sqrt() * 1.5).min(14.0) as u32;
                Circle::new((p.confidence, p.accuracy), r, DIAGNOSED.mix(0.7).filled())
            }))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(points.iter().map(|p| {
                Text::new(
                    format!("n={}", p.n),
                    (p.confidence + 0.02, p.accuracy.min(0.97) + 0.04),
                    (FONT, 12).into_font().color(&INK),
                )
            }))
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(finish(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_draw_names_shading_and_marks() {
        let svg = lanes(&Lanes {
            title: "timeline".into(),
            x_desc: "s".into(),
            names: vec!["chapter one".into(), "replicas agree".into()],
            x_range: (0.0, 10.0),
            shaded: vec![(2.0, 5.0)],
            spans: vec![Span {
                lane: 0,
                from: 0.0,
                to: 4.0,
                color: CHAPTER,
                thin: false,
            }],
            dots: vec![],
            marks: vec![Mark {
                lane: Some(1),
                at: 3.0,
                kind: MarkKind::Detected,
            }],
        })
        .unwrap();
        assert!(svg.starts_with("<svg class=\"chart\""), "{}", &svg[..80]);
        assert!(svg.contains("chapter one") && svg.contains("replicas agree"));
        assert!(svg.contains("<rect") && svg.contains("<polygon") || svg.contains("<path"));
    }

    #[test]
    fn empty_inputs_still_draw() {
        assert!(lanes(&Lanes::default()).is_ok());
        assert!(lines(&Lines::default()).is_ok());
        assert!(reliability("r", &[]).is_ok());
    }
}
