//! Metrics before against during the anomaly: the mean before it against the
//! most extreme reading during it, counters read as rates, stale readings of
//! a component that stopped answering left out.

use super::slots::Slots;
#[cfg(test)]
use plugin_api::HealthSnapshot;
use plugin_api::{Metric, MetricKind, Worse};
use rustc_hash::FxHashMap;

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
        // Case-insensitive without allocating: the builtin asks this of
        // every metric of every node, several times per diagnosis.
        let time_unit = self.unit.is_empty()
            || ["ms", "s", "us", "µs", "ns", "seconds", "milliseconds"]
                .iter()
                .any(|u| self.unit.eq_ignore_ascii_case(u));
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
        .any(|w| contains_ignore_ascii_case(&self.name, w));
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

/// `needle` (ASCII lowercase) in `text`, ignoring ASCII case.
fn contains_ignore_ascii_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
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

/// Every metric's readings over the window, gathered reading by reading
/// (the caller walks the polls once, for its nodes too): each (node, metric)
/// reading goes straight to its series, so a thousand-node window costs
/// nodes × polls, not nodes². Keys keep the order they first appear in;
/// within a poll the first reading of a name wins, as a search from the
/// front would find it.
pub(super) struct MetricSeries<'a> {
    keys: Vec<Key<'a>>,
    /// A key is (node slot, name, unit); a series is (node slot, name), whatever its unit.
    key_slots: Slots<(Option<usize>, &'a str, &'a str)>,
    series_of_key: Vec<usize>,
    index: FxHashMap<(Option<usize>, &'a str), usize>,
    series: Vec<Vec<(u64, f64)>>,
    last_poll: Vec<usize>,
    poll: usize,
    at_ms: u64,
    position: usize,
}

impl<'a> MetricSeries<'a> {
    pub(super) fn new() -> Self {
        MetricSeries {
            keys: Vec::new(),
            key_slots: Slots::new(),
            series_of_key: Vec::new(),
            index: FxHashMap::default(),
            series: Vec::new(),
            last_poll: Vec::new(),
            poll: usize::MAX,
            at_ms: 0,
            position: 0,
        }
    }

    /// Readings from here on are of poll `poll` (counted from 0), taken at `at_ms`.
    pub(super) fn poll(&mut self, poll: usize, at_ms: u64) {
        self.poll = poll;
        self.at_ms = at_ms;
        self.position = 0;
    }

    /// One reading: of the subject (`node` `None`) or of a node, given with
    /// its slot (the same for the same id throughout the window).
    pub(super) fn reading(&mut self, node: Option<(usize, &'a str)>, m: &'a Metric) {
        let slot = node.map(|n| n.0);
        let (key, new) = self
            .key_slots
            .slot(self.position, (slot, m.name.as_str(), m.unit.as_str()));
        self.position += 1;
        if new {
            let (series, last_poll) = (&mut self.series, &mut self.last_poll);
            let idx = *self
                .index
                .entry((slot, m.name.as_str()))
                .or_insert_with(|| {
                    series.push(Vec::new());
                    last_poll.push(usize::MAX);
                    series.len() - 1
                });
            self.series_of_key.push(idx);
            self.keys.push(Key {
                node: node.map(|n| n.1),
                name: m.name.as_str(),
                unit: m.unit.as_str(),
                kind: m.kind,
                worse: m.worse,
                series: idx,
            });
        }
        let idx = self.series_of_key[key];
        if self.last_poll[idx] != self.poll {
            self.last_poll[idx] = self.poll;
            self.series[idx].push((self.at_ms, m.value));
        }
    }

    /// Each metric's mean before the anomaly against its most extreme value
    /// during it, the largest changes first.
    pub(super) fn deltas(self, start_ms: Option<u64>) -> Vec<MetricDelta> {
        let Some(start) = start_ms else {
            return Vec::new();
        };
        let MetricSeries { keys, series, .. } = self;
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
}

/// Mean of each metric before the anomaly against its most extreme value during it.
#[cfg(test)]
pub(super) fn metric_deltas(
    snapshots: &[HealthSnapshot],
    start_ms: Option<u64>,
) -> Vec<MetricDelta> {
    let mut all = MetricSeries::new();
    super::facts::nodes_and_changes(snapshots, &mut all);
    all.deltas(start_ms)
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
    // Counted, not collected: a thousand series per window.
    let baseline = series.windows(2).filter(|w| w[1].0 < start);
    let (steps, rising) = baseline.fold((0, 0), |(n, up), w| {
        (n + 1, up + usize::from(w[1].1 > w[0].1))
    });
    let never_falls = series
        .windows(2)
        .all(|w| w[1].1 >= w[0].1 && w[1].0 > w[0].0);
    let grows = match kind {
        MetricKind::Counter => steps > 0 && never_falls,
        MetricKind::Gauge => steps >= 3 && never_falls && rising * 4 >= steps * 3,
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

/// Mean before `start` against the most extreme value from `start` on.
fn delta(
    node: Option<String>,
    name: String,
    unit: String,
    series: &[(u64, f64)],
    start: u64,
) -> Option<MetricDelta> {
    let before = || series.iter().filter(|(t, _)| *t < start);
    let during = series.iter().filter(|(t, _)| *t >= start);
    let count = before().count();
    if count == 0 || count == series.len() {
        return None;
    }
    let n = count as f64;
    let mean = before().map(|x| x.1).sum::<f64>() / n;
    let sd = (before().map(|x| (x.1 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let &(at_ms, peak) = during.max_by(|x, y| (x.1 - mean).abs().total_cmp(&(y.1 - mean).abs()))?;
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
