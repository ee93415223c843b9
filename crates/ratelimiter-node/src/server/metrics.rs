//! Prometheus counters and histograms of a node, kept in atomics and rendered as text.

pub use crate::wire::scrape::{quantile, Scrape, BUCKETS};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
