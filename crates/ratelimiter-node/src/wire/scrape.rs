//! Reading back what a node's `/metrics` exposes: the plugin's side of
//! the node's `server::metrics` (both use the same histogram buckets).

/// Upper bounds (seconds) of the latency histogram buckets.
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

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
    /// Parses the exposition the node's `Metrics::render` writes.
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
