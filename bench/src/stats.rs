//! Percentiles over a sorted sample: every figure in the report is a median
//! (and a p99 where the tail matters) over repeated trials.

use std::time::Duration;

/// A finished sample of one measure, in its own unit.
#[derive(Debug, Clone)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for an empty sample: a group that measured nothing says so instead of printing zeros.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Some(Summary {
            n: v.len(),
            p50: quantile(&v, 0.5),
            p99: quantile(&v, 0.99),
            max: v[v.len() - 1],
        })
    }

    /// `p50 1.2 ms · p99 3.4 ms`, with `decimals` places.
    pub fn p50_p99(&self, decimals: usize, unit: &str) -> String {
        format!(
            "p50 {:.decimals$} {unit} · p99 {:.decimals$} {unit}",
            self.p50, self.p99
        )
    }

    pub fn of_ms(durations: &[Duration]) -> Option<Summary> {
        Summary::of(
            &durations
                .iter()
                .map(|d| d.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        )
    }

    pub fn of_us(durations: &[Duration]) -> Option<Summary> {
        Summary::of(
            &durations
                .iter()
                .map(|d| d.as_secs_f64() * 1e6)
                .collect::<Vec<_>>(),
        )
    }
}

/// Nearest-rank quantile of an ascending sample (no interpolation: every value reported was observed).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&v).unwrap();
        assert_eq!((s.n, s.p50, s.p99, s.max), (100, 50.0, 99.0, 100.0));
        let one = Summary::of(&[7.0]).unwrap();
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert!(Summary::of(&[]).is_none());
        let odd = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!(odd.p50, 2.0);
        assert_eq!(odd.p50_p99(1, "ms"), "p50 2.0 ms · p99 3.0 ms");
    }
}
