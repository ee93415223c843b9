//! Recent health history: snapshots for the diagnoser, metric series for the charts.

use plugin_api::HealthSnapshot;
use std::collections::{BTreeMap, VecDeque};

/// How far back the history reaches.
pub const HISTORY_MS: u64 = 5 * 60 * 1000;

/// One metric over time: `(unix ms, value)` points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub unit: String,
    pub points: Vec<(u64, f64)>,
}

#[derive(Debug, Default, Clone)]
pub struct Timeline {
    pub snapshots: VecDeque<HealthSnapshot>,
}

impl Timeline {
    pub fn push(&mut self, snapshot: HealthSnapshot) {
        let cutoff = snapshot.at_ms.saturating_sub(HISTORY_MS);
        self.snapshots.push_back(snapshot);
        while self.snapshots.front().is_some_and(|s| s.at_ms < cutoff) {
            self.snapshots.pop_front();
        }
    }

    pub fn latest(&self) -> Option<&HealthSnapshot> {
        self.snapshots.back()
    }

    /// Snapshots taken at or after `from_ms`.
    pub fn since(&self, from_ms: u64) -> impl Iterator<Item = &HealthSnapshot> {
        self.snapshots.iter().filter(move |s| s.at_ms >= from_ms)
    }

    /// Each cluster metric's values since `from_ms`, in the order the subject lists them.
    pub fn metric_series(&self, from_ms: u64) -> Vec<Series> {
        let mut order: Vec<(String, String)> = Vec::new();
        let mut series: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
        for s in self.since(from_ms) {
            for m in &s.metrics {
                if !series.contains_key(&m.name) {
                    order.push((m.name.clone(), m.unit.clone()));
                }
                series
                    .entry(m.name.clone())
                    .or_default()
                    .push((s.at_ms, m.value));
            }
        }
        order
            .into_iter()
            .map(|(name, unit)| {
                let points = series.remove(&name).unwrap_or_default();
                Series { name, unit, points }
            })
            .collect()
    }
}
