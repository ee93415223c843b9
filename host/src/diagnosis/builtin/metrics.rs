//! Metrics before against during the anomaly: the mean before it against the
//! most extreme reading during it, counters read as rates, stale readings of
//! a component that stopped answering left out.

use plugin_api::{HealthSnapshot, MetricKind, Worse};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
pub(super) struct MetricDelta {
    pub(super) name: String,
    pub(super) node: Option<String>,
    pub(super) unit: String,
    /// Which way is bad news, as the plugin declared it.
    pub(super) worse: Worse,
    pub(super) before: f64,
    pub(super) during: f64,
    /// When `during` was first reached (its peak poll).
    pub(super) at_ms: u64,
    /// The change stands out from the noise seen before the anomaly.
    pub(super) significant: bool,
}

impl MetricDelta {
    pub(super) fn ratio(&self) -> f64 {
        if self.before.abs() < f64::EPSILON {
            if self.during.abs() < f64::EPSILON {
                1.0
            } else {
                f64::INFINITY
            }
        } else {
            self.during / self.before
        }
    }

    /// A significant change in the direction the plugin calls bad (either
    /// direction when it did not say): a hit ratio falling, errors rising.
    pub(super) fn moved_badly(&self) -> bool {
        self.significant
            && match self.worse {
                Worse::Higher => self.during > self.before,
                Worse::Lower => self.during < self.before,
                Worse::Unknown => true,
            }
    }

    /// A latency reading: named like one (generic words only), in a time unit
    /// if it has one, and not declared better when higher.
    pub(super) fn time_like(&self) -> bool {
        let unit = self.unit.to_ascii_lowercase();
        let name = self.name.to_ascii_lowercase();
        let time_unit = unit.is_empty()
            || matches!(
                unit.as_str(),
                "ms" | "s" | "us" | "µs" | "ns" | "seconds" | "milliseconds"
            );
        let named = [
            "latency",
            "p99",
            "p95",
            "p90",
            "p50",
            "duration",
            "response time",
        ]
        .iter()
        .any(|w| name.contains(w));
        time_unit && named && self.worse != Worse::Lower
    }

    pub(super) fn label(&self) -> String {
        match &self.node {
            Some(n) => format!("{} on {n}", self.name),
            None => self.name.clone(),
        }
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "{} went from {} to {}{}",
            self.label(),
            num(self.before),
            num(self.during),
            unit_suffix(&self.unit)
        )
    }
}

/// One metric's identity in the window and what its first reading declared.
struct Key<'a> {
    node: Option<&'a str>,
    name: &'a str,
    unit: &'a str,
    kind: MetricKind,
    worse: Worse,
    series: usize,
}

/// Mean of each metric before the anomaly against its most extreme value during it.
pub(super) fn metric_deltas(
    snapshots: &[HealthSnapshot],
    start_ms: Option<u64>,
) -> Vec<MetricDelta> {
    let Some(start) = start_ms else {
        return Vec::new();
    };
    // One pass over the polls: each (node, metric) reading goes straight to
    // its series, so a thousand-node window costs nodes × polls, not nodes².
    // Keys keep the order they first appear in; within a poll the first
    // reading of a name wins, as a search from the front would find it.
    let mut keys: Vec<Key> = Vec::new();
    let mut seen: HashSet<(Option<&str>, &str, &str)> = HashSet::new();
    let mut index: HashMap<(Option<&str>, &str), usize> = HashMap::new();
    let mut series: Vec<Vec<(u64, f64)>> = Vec::new();
    let mut last_poll: Vec<usize> = Vec::new();
    for (i, s) in snapshots.iter().enumerate() {
        // A stale reading is the last one before the component stopped
        // answering: it says nothing about now, so it is no reading at all
        // (a frozen counter would otherwise read as a collapse to zero).
        let node_metrics = s
            .nodes
            .iter()
            .filter(|n| !n.stale)
            .flat_map(|n| n.metrics.iter().map(move |m| (Some(n.id.as_str()), m)));
        for (node, m) in s.metrics.iter().map(|m| (None, m)).chain(node_metrics) {
            let idx = *index.entry((node, m.name.as_str())).or_insert_with(|| {
                series.push(Vec::new());
                last_poll.push(usize::MAX);
                series.len() - 1
            });
            if seen.insert((node, m.name.as_str(), m.unit.as_str())) {
                keys.push(Key {
                    node,
                    name: m.name.as_str(),
                    unit: m.unit.as_str(),
                    kind: m.kind,
                    worse: m.worse,
                    series: idx,
                });
            }
            if last_poll[idx] != i {
                last_poll[idx] = i;
                series[idx].push((s.at_ms, m.value));
            }
        }
    }
    let mut deltas: Vec<MetricDelta> = keys
        .into_iter()
        .filter_map(|k| {
            let node = k.node.map(str::to_string);
            let series = &series[k.series];
            let d = match as_rates(series, start, k.kind) {
                Some(rates) => delta(
                    node,
                    format!("{} rate", k.name),
                    rate_unit(k.unit),
                    &rates,
                    start,
                ),
                None => delta(node, k.name.to_string(), k.unit.to_string(), series, start),
            };
            d.map(|d| MetricDelta {
                worse: k.worse,
                ..d
            })
        })
        .collect();
    // Stable: equal changes keep the order the window reported them in.
    deltas.sort_by(|a, b| relative_change(b).total_cmp(&relative_change(a)));
    deltas
}

/// The unit of a counter's rate: `ops` → `ops/s`, none → `/s` (not `s`).
pub(super) fn rate_unit(unit: &str) -> String {
    format!("{unit}/s")
}

/// A counter says more through its rate: per-second rates between
/// consecutive polls, or `None` when the series is not a counter. A declared
/// counter only has to never fall; an undeclared one must also rise in three
/// of four polls before the anomaly.
fn as_rates(series: &[(u64, f64)], start: u64, kind: MetricKind) -> Option<Vec<(u64, f64)>> {
    let baseline: Vec<&[(u64, f64)]> = series.windows(2).filter(|w| w[1].0 < start).collect();
    let rising = baseline.iter().filter(|w| w[1].1 > w[0].1).count();
    let never_falls = series
        .windows(2)
        .all(|w| w[1].1 >= w[0].1 && w[1].0 > w[0].0);
    let grows = match kind {
        MetricKind::Counter => !baseline.is_empty() && never_falls,
        MetricKind::Gauge => baseline.len() >= 3 && never_falls && rising * 4 >= baseline.len() * 3,
    };
    grows.then(|| {
        series
            .windows(2)
            .map(|w| {
                (
                    w[1].0,
                    (w[1].1 - w[0].1) * 1000.0 / (w[1].0 - w[0].0) as f64,
                )
            })
            .collect()
    })
}

/// `(unix ms, value)` readings of one metric.
type Points = Vec<(u64, f64)>;

/// Mean before `start` against the most extreme value from `start` on.
fn delta(
    node: Option<String>,
    name: String,
    unit: String,
    series: &[(u64, f64)],
    start: u64,
) -> Option<MetricDelta> {
    let (before, during): (Points, Points) = series.iter().partition(|(t, _)| *t < start);
    if before.is_empty() || during.is_empty() {
        return None;
    }
    let n = before.len() as f64;
    let mean = before.iter().map(|x| x.1).sum::<f64>() / n;
    let sd = (before.iter().map(|x| (x.1 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let &(at_ms, peak) = during
        .iter()
        .max_by(|x, y| (x.1 - mean).abs().total_cmp(&(y.1 - mean).abs()))?;
    Some(MetricDelta {
        name,
        node,
        unit,
        worse: Worse::Unknown,
        before: mean,
        during: peak,
        at_ms,
        significant: (peak - mean).abs() > (3.0 * sd).max(0.2 * mean.abs()).max(1e-9),
    })
}

fn relative_change(d: &MetricDelta) -> f64 {
    let base = d.before.abs().max(1e-9);
    ((d.during - d.before).abs() / base).min(1e6)
}

pub(super) fn num(x: f64) -> String {
    if x.is_infinite() {
        "∞".into()
    } else if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.2}")
    }
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{Metric, NodeHealth, NodeStatus};

    #[test]
    fn a_counter_without_a_unit_has_its_rate_per_second() {
        assert_eq!(rate_unit(""), "/s");
        assert_eq!(rate_unit("ops"), "ops/s");
    }

    fn poll(at_ms: u64, applied: f64, stale: bool) -> HealthSnapshot {
        let status = if stale {
            NodeStatus::Down
        } else {
            NodeStatus::Up
        };
        HealthSnapshot {
            at_ms,
            nodes: vec![NodeHealth::new("m-1", "member", "", status)
                .metric(Metric::counter("applied", applied, ""))
                .stale(stale)],
            ..Default::default()
        }
    }

    #[test]
    fn a_stale_counter_is_not_read_as_a_collapse() {
        // Steady 100/s, then the member stops answering and its last reading is kept.
        let polls: Vec<HealthSnapshot> = (0..10u64)
            .map(|k| poll(k * 1000, 100.0 * k.min(5) as f64, k > 5))
            .collect();
        let deltas = metric_deltas(&polls, Some(6_000));
        assert!(
            deltas.iter().all(|d| !d.significant),
            "a frozen reading moved: {deltas:?}"
        );
    }

    #[test]
    fn a_declared_counter_is_read_as_a_rate_and_a_fall_in_a_lower_is_worse_metric_is_bad() {
        let polls: Vec<HealthSnapshot> = (0..10u64)
            .map(|k| HealthSnapshot {
                at_ms: k * 1000,
                metrics: vec![
                    Metric::counter("served", if k < 2 { 0.0 } else { 50.0 * k as f64 }, ""),
                    Metric::new("hit ratio", if k < 6 { 0.95 } else { 0.4 }, "")
                        .worse(Worse::Lower),
                ],
                ..Default::default()
            })
            .collect();
        let deltas = metric_deltas(&polls, Some(6_000));
        assert!(deltas.iter().any(|d| d.name == "served rate"), "{deltas:?}");
        let hit = deltas
            .iter()
            .find(|d| d.name == "hit ratio")
            .expect("hit ratio");
        assert!(hit.moved_badly());
    }
}
