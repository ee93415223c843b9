//! The Prometheus text format of TiKV's and PD's `/metrics`, and the few TiKV
//! series the plugin reads: `tikv_storage_command_total` (QPS),
//! `tikv_grpc_msg_duration_seconds_bucket` (p99 latency) and `tikv_store_size_bytes{type}`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the text exposition format; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if rest.starts_with('{') {
        let (parsed, after) = parse_labels(&rest[1..])?;
        labels = parsed;
        rest = after;
    }
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start().trim_start_matches(',').trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// The TiKV series of one scrape, summed over all endpoints and label sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TikvScrape {
    /// Sum of `tikv_storage_command_total` (a counter).
    pub commands_total: Option<f64>,
    /// Cumulative `tikv_grpc_msg_duration_seconds_bucket` counts by upper bound `le`.
    pub grpc_buckets: Vec<(f64, f64)>,
    /// `tikv_store_size_bytes` by `type` (capacity, available, used).
    pub store_size: BTreeMap<String, f64>,
}

impl TikvScrape {
    pub fn add(&mut self, samples: &[Sample]) {
        let mut buckets: BTreeMap<u64, (f64, f64)> = self
            .grpc_buckets
            .iter()
            .map(|&(le, c)| (le.to_bits(), (le, c)))
            .collect();
        for s in samples {
            match s.name.as_str() {
                "tikv_storage_command_total" => *self.commands_total.get_or_insert(0.0) += s.value,
                "tikv_grpc_msg_duration_seconds_bucket" => {
                    if let Some(le) = s.label("le").and_then(parse_value) {
                        buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
                    }
                }
                "tikv_store_size_bytes" => {
                    if let Some(kind) = s.label("type") {
                        *self.store_size.entry(kind.to_string()).or_insert(0.0) += s.value;
                    }
                }
                _ => {}
            }
        }
        let mut merged: Vec<(f64, f64)> = buckets.into_values().collect();
        merged.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.grpc_buckets = merged;
    }

    /// Bucket counts observed between `earlier` and this scrape (counters restart at 0 on a store restart).
    pub fn buckets_since(&self, earlier: &TikvScrape) -> Vec<(f64, f64)> {
        self.grpc_buckets
            .iter()
            .map(|&(le, c)| {
                let before = earlier
                    .grpc_buckets
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0.0, |b| b.1);
                (le, if c >= before { c - before } else { c })
            })
            .collect()
    }

    /// Fraction of TiKV's disk in use by its own report, when it gives capacity and available.
    pub fn disk_used_fraction(&self) -> Option<f64> {
        let (c, a) = (
            self.store_size.get("capacity")?,
            self.store_size.get("available")?,
        );
        (*c > 0.0).then(|| ((c - a) / c).clamp(0.0, 1.0))
    }
}

/// `histogram_quantile` as Prometheus computes it: linear interpolation inside the bucket.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last().map(|b| b.1)?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let in_bucket = count - prev.1;
            let frac = if in_bucket > 0.0 {
                (rank - prev.1) / in_bucket
            } else {
                1.0
            };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, count);
    }
    Some(prev.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP tikv_storage_command_total Total number of commands received.
# TYPE tikv_storage_command_total counter
tikv_storage_command_total{type="get"} 100
tikv_storage_command_total{type="prewrite"} 50
tikv_grpc_msg_duration_seconds_bucket{type="kv_get",le="0.001"} 80
tikv_grpc_msg_duration_seconds_bucket{type="kv_get",le="0.1"} 99
tikv_grpc_msg_duration_seconds_bucket{type="kv_get",le="+Inf"} 100
tikv_grpc_msg_duration_seconds_bucket{type="kv_prewrite",le="0.001"} 0
tikv_grpc_msg_duration_seconds_bucket{type="kv_prewrite",le="0.1"} 0
tikv_grpc_msg_duration_seconds_bucket{type="kv_prewrite",le="+Inf"} 0
tikv_store_size_bytes{type="capacity"} 1000
tikv_store_size_bytes{type="available"} 400
weird{label="with \"quote\", comma"} 3 1700000000000
not a sample line
"#;

    #[test]
    fn parses_labels_escapes_and_timestamps() {
        let samples = parse(TEXT);
        let weird = samples.iter().find(|s| s.name == "weird").unwrap();
        assert_eq!(weird.label("label"), Some("with \"quote\", comma"));
        assert_eq!(weird.value, 3.0);
        assert_eq!(samples.len(), 11);
    }

    #[test]
    fn sums_tikv_series_and_interpolates_p99() {
        let mut s = TikvScrape::default();
        s.add(&parse(TEXT));
        assert_eq!(s.commands_total, Some(150.0));
        assert_eq!(
            s.grpc_buckets,
            vec![(0.001, 80.0), (0.1, 99.0), (f64::INFINITY, 100.0)]
        );
        assert_eq!(s.disk_used_fraction(), Some(0.6));
        // rank 99 of 100 falls at the top of the 0.1 s bucket.
        assert!((quantile(0.99, &s.grpc_buckets).unwrap() - 0.1).abs() < 1e-12);
        // rank 50 lies 50/80 into the first bucket.
        assert!((quantile(0.5, &s.grpc_buckets).unwrap() - 0.000625).abs() < 1e-12);
        assert_eq!(quantile(0.99, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
    }

    #[test]
    fn deltas_between_scrapes_survive_counter_resets() {
        let earlier = TikvScrape {
            grpc_buckets: vec![(0.001, 80.0), (f64::INFINITY, 100.0)],
            ..Default::default()
        };
        let later = TikvScrape {
            grpc_buckets: vec![(0.001, 90.0), (f64::INFINITY, 20.0)],
            ..Default::default()
        };
        assert_eq!(
            later.buckets_since(&earlier),
            vec![(0.001, 10.0), (f64::INFINITY, 20.0)]
        );
    }
}
