//! A run's charts over time, from its journal: the timeline's lanes (chapters,
//! nodes, invariants) with fault windows shaded and detection / diagnosis /
//! recovery marked, and one line chart per metric.

use super::*;

/// A chart has at most this many points per series: enough for a 960 px wide page.
const MAX_POINTS: usize = 1000;

/// Runs of equal values over the health timeline, as (from, to, value).
fn runs<T: PartialEq + Copy>(points: &[(u64, Option<T>)], end: u64) -> Vec<(u64, u64, T)> {
    let mut out: Vec<(u64, u64, T)> = Vec::new();
    for (i, &(at, v)) in points.iter().enumerate() {
        let next = points.get(i + 1).map(|p| p.0).unwrap_or(end.max(at));
        let Some(v) = v else { continue };
        match out.last_mut() {
            Some(last) if last.2 == v && last.1 == at => last.1 = next,
            _ => out.push((at, next, v)),
        }
    }
    out
}

pub(super) fn timeline(j: &Journal, recovered: &[Option<u64>]) -> Lanes {
    let t0 = j.started_ms;
    let end = j.ended_ms.max(t0);
    let secs = |ms: u64| ms.saturating_sub(t0) as f64 / 1000.0;
    let mut names = Vec::new();
    let mut spans = Vec::new();
    let mut marks = Vec::new();

    let mut chapter_lane: BTreeMap<usize, usize> = BTreeMap::new();
    for c in &j.chapters {
        let lane = *chapter_lane.entry(c.index).or_insert_with(|| {
            names.push(format!("{}. {}", c.index + 1, c.title));
            names.len() - 1
        });
        spans.push(Span {
            lane,
            from: secs(c.started_ms),
            to: secs(c.ended_ms.unwrap_or(end)),
            color: charts::CHAPTER,
            thin: false,
        });
    }
    let invariant_names: Vec<String> = {
        let mut v: Vec<String> = j.invariants.keys().cloned().collect();
        for p in &j.health_timeline {
            for k in p.invariants.keys() {
                if !v.contains(k) {
                    v.push(k.clone());
                }
            }
        }
        v
    };
    let mut invariant_lane = BTreeMap::new();
    for name in &invariant_names {
        names.push(format!("invariant: {name}"));
        let lane = names.len() - 1;
        invariant_lane.insert(name.clone(), lane);
        let points: Vec<(u64, Option<InvariantStatus>)> = j
            .health_timeline
            .iter()
            .map(|p| (p.at_ms, p.invariants.get(name).copied()))
            .collect();
        for (from, to, status) in runs(&points, end) {
            let color = match status {
                InvariantStatus::Ok => charts::OK,
                InvariantStatus::Violated => charts::BAD,
                InvariantStatus::Unknown => charts::UNKNOWN,
            };
            spans.push(Span {
                lane,
                from: secs(from),
                to: secs(to),
                color,
                thin: false,
            });
        }
    }
    for (node, points) in j.node_series() {
        names.push(format!("node: {node}"));
        let lane = names.len() - 1;
        for (from, to, status) in runs(&points, end) {
            let color = match status {
                NodeStatus::Up => charts::OK,
                NodeStatus::Degraded => charts::WARN,
                NodeStatus::Down => charts::BAD,
                NodeStatus::Unknown => charts::UNKNOWN,
            };
            spans.push(Span {
                lane,
                from: secs(from),
                to: secs(to),
                color,
                thin: false,
            });
        }
    }
    for d in &j.detections {
        if let Some(at) = d.detected_ms {
            marks.push(Mark {
                lane: None,
                at: secs(at),
                kind: MarkKind::Detected,
            });
            for lane in [
                chapter_lane.get(&d.chapter),
                invariant_lane.get(&d.invariant),
            ]
            .into_iter()
            .flatten()
            {
                marks.push(Mark {
                    lane: Some(*lane),
                    at: secs(at),
                    kind: MarkKind::Detected,
                });
            }
        }
    }
    for r in j.diagnoses.iter().filter(|r| r.finished_ms > 0) {
        marks.push(Mark {
            lane: None,
            at: secs(r.finished_ms),
            kind: MarkKind::Diagnosed,
        });
        if let Some(lane) = chapter_lane.get(&r.chapter) {
            marks.push(Mark {
                lane: Some(*lane),
                at: secs(r.finished_ms),
                kind: MarkKind::Diagnosed,
            });
        }
    }
    for at in recovered.iter().flatten() {
        marks.push(Mark {
            lane: None,
            at: secs(*at),
            kind: MarkKind::Recovered,
        });
    }
    Lanes {
        title: "Timeline".into(),
        x_desc: "seconds since the run started".into(),
        names,
        x_range: (0.0, secs(end)),
        shaded: shaded(j),
        spans,
        dots: vec![],
        marks,
    }
}

fn shaded(j: &Journal) -> Vec<(f64, f64)> {
    let t0 = j.started_ms;
    let secs = |ms: u64| ms.saturating_sub(t0) as f64 / 1000.0;
    j.chaos_windows
        .iter()
        .map(|w| (secs(w.started_ms), secs(w.ended_ms.unwrap_or(j.ended_ms))))
        .collect()
}

pub(super) fn metric_charts(
    j: &Journal,
    recovered: &[Option<u64>],
) -> Result<Vec<String>, ReportError> {
    let t0 = j.started_ms;
    let secs = |ms: u64| ms.saturating_sub(t0) as f64 / 1000.0;
    let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let stride = j.health_timeline.len().div_ceil(MAX_POINTS).max(1);
    for p in j.health_timeline.iter().step_by(stride) {
        for (name, v) in &p.metrics {
            if v.is_finite() {
                series.entry(name).or_default().push((secs(p.at_ms), *v));
            }
        }
    }
    let mut marks: Vec<Mark> = j
        .detections
        .iter()
        .filter_map(|d| d.detected_ms)
        .map(|at| Mark {
            lane: None,
            at: secs(at),
            kind: MarkKind::Detected,
        })
        .collect();
    marks.extend(recovered.iter().flatten().map(|at| Mark {
        lane: None,
        at: secs(*at),
        kind: MarkKind::Recovered,
    }));
    let end = secs(j.ended_ms.max(t0));
    series
        .into_iter()
        .map(|(name, points)| {
            Ok(charts::lines(&Lines {
                title: name.to_string(),
                x_desc: "s".into(),
                y_desc: String::new(),
                x_range: (0.0, end),
                series: vec![(name.to_string(), points)],
                shaded: shaded(j),
                marks: marks.clone(),
            })?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_equal_neighbours() {
        let pts = [
            (0, Some(1)),
            (10, Some(1)),
            (20, Some(2)),
            (30, None),
            (40, Some(2)),
        ];
        assert_eq!(runs(&pts, 50), vec![(0, 20, 1), (20, 30, 2), (40, 50, 2)]);
    }
}
