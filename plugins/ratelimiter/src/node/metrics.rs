//! Prometheus counters and histograms of a node, kept in atomics and rendered as text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A cumulative Prometheus histogram.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Outcome of one `/check`, the label of `ratelimiter_checks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    Error,
}

#[derive(Default)]
pub struct Metrics {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub errors: AtomicU64,
    pub bad_requests: AtomicU64,
    pub check_latency: Histogram,
    pub redis_latency: Histogram,
    pub redis_errors: AtomicU64,
    pub flush_ok: AtomicU64,
    pub flush_failed: AtomicU64,
}

impl Metrics {
    pub fn record_check(&self, outcome: Outcome, took: Duration) {
        let c = match outcome {
            Outcome::Allowed => &self.allowed,
            Outcome::Denied => &self.denied,
            Outcome::Error => &self.errors,
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.check_latency.observe(took);
    }

    /// Prometheus text exposition; `gauges` are node state read at render time.
    pub fn render(
        &self,
        node: &str,
        instance: u64,
        mode: &str,
        gauges: &[(&str, &str, f64)],
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP ratelimiter_node_info The answering process.\n# TYPE ratelimiter_node_info gauge\nratelimiter_node_info{{node=\"{node}\",mode=\"{mode}\",instance=\"{instance}\"}} 1"
        );
        let _ = writeln!(out, "# HELP ratelimiter_checks_total Checks answered, by result.\n# TYPE ratelimiter_checks_total counter");
        for (label, c) in [
            ("allowed", &self.allowed),
            ("denied", &self.denied),
            ("error", &self.errors),
        ] {
            let _ = writeln!(
                out,
                "ratelimiter_checks_total{{result=\"{label}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let simple = [
            (
                "ratelimiter_bad_requests_total",
                "Requests rejected as bad input.",
                &self.bad_requests,
            ),
            (
                "ratelimiter_redis_errors_total",
                "Redis calls that failed or timed out.",
                &self.redis_errors,
            ),
            (
                "ratelimiter_flush_ok_total",
                "Cached mode: flushes Redis acknowledged.",
                &self.flush_ok,
            ),
            (
                "ratelimiter_flush_failed_total",
                "Cached mode: flushes that failed or timed out.",
                &self.flush_failed,
            ),
        ];
        for (name, help, c) in simple {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        self.check_latency.render(
            &mut out,
            "ratelimiter_check_duration_seconds",
            "Time to answer a check.",
        );
        self.redis_latency.render(
            &mut out,
            "ratelimiter_redis_duration_seconds",
            "Time of each Redis call.",
        );
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// What the plugin reads back from `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub instance: u64,
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    /// Cumulative counts per bucket of the check latency histogram, +Inf last.
    pub check_buckets: Vec<u64>,
    pub redis_errors: u64,
    pub partitioned: bool,
    pub pending: u64,
}

impl Scrape {
    /// Parses the exposition written by [`Metrics::render`].
    pub fn parse(text: &str) -> Scrape {
        let mut s = Scrape::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let v: f64 = value.parse().unwrap_or(0.0);
            if let Some(rest) = name.strip_prefix("ratelimiter_node_info{") {
                if let Some(i) = rest.split("instance=\"").nth(1) {
                    s.instance = i
                        .split('"')
                        .next()
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0);
                }
            }
            match name {
                "ratelimiter_checks_total{result=\"allowed\"}" => s.allowed = v as u64,
                "ratelimiter_checks_total{result=\"denied\"}" => s.denied = v as u64,
                "ratelimiter_checks_total{result=\"error\"}" => s.errors = v as u64,
                "ratelimiter_redis_errors_total" => s.redis_errors = v as u64,
                "ratelimiter_partitioned" => s.partitioned = v > 0.0,
                "ratelimiter_pending_increments" => s.pending = v as u64,
                _ if name.starts_with("ratelimiter_check_duration_seconds_bucket") => {
                    s.check_buckets.push(v as u64)
                }
                _ => {}
            }
        }
        s
    }
}

/// Quantile `q` of the observations between two cumulative bucket snapshots,
/// interpolated inside the bucket like Prometheus' `histogram_quantile`.
pub fn quantile(before: &[u64], after: &[u64], q: f64) -> Option<f64> {
    if after.len() != BUCKETS.len() + 1 || before.len() != after.len() {
        return None;
    }
    let delta: Vec<u64> = after
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let total = *delta.last()?;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower_bound = 0.0;
    let mut lower_count = 0u64;
    for (i, &cum) in delta.iter().enumerate() {
        if cum as f64 >= rank {
            let upper = BUCKETS
                .get(i)
                .copied()
                .unwrap_or(BUCKETS[BUCKETS.len() - 1]);
            let in_bucket = (cum - lower_count) as f64;
            let frac = if in_bucket > 0.0 {
                (rank - lower_count as f64) / in_bucket
            } else {
                1.0
            };
            return Some(lower_bound + (upper - lower_bound) * frac.clamp(0.0, 1.0));
        }
        lower_bound = BUCKETS.get(i).copied().unwrap_or(lower_bound);
        lower_count = cum;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_parse_back_and_give_quantiles() {
        let m = Metrics::default();
        for _ in 0..99 {
            m.record_check(Outcome::Allowed, Duration::from_micros(800));
        }
        m.record_check(Outcome::Denied, Duration::from_millis(40));
        let s = Scrape::parse(&m.render(
            "node-1",
            42,
            "cached",
            &[("ratelimiter_partitioned", "x", 1.0)],
        ));
        assert_eq!((s.allowed, s.denied, s.errors, s.instance), (99, 1, 0, 42));
        assert!(s.partitioned);
        let zero = vec![0; s.check_buckets.len()];
        let p50 = quantile(&zero, &s.check_buckets, 0.5).unwrap();
        assert!(p50 > 0.0005 && p50 <= 0.001, "{p50}");
        let p999 = quantile(&zero, &s.check_buckets, 0.999).unwrap();
        assert!(p999 > 0.025 && p999 <= 0.05, "{p999}");
        assert_eq!(quantile(&s.check_buckets, &s.check_buckets, 0.5), None);
    }
}
