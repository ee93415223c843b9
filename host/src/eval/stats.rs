//! The statistics of a campaign: pure functions over plain numbers.
//!
//! Every figure carries its `n`, so a reader can tell 1/1 from 100/100.
//! Proportions get Wilson score intervals (they stay inside [0, 1] and behave
//! at 0/n and n/n, unlike the normal approximation); latency quantiles get
//! percentile bootstrap intervals from a seeded RNG, so a report is
//! reproducible from its inputs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The two-sided 95 % normal quantile.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Bootstrap resamples: enough for stable 2.5 / 97.5 % percentiles, cheap for a few hundred trials.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// `k` successes out of `n`, with the Wilson 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    pub k: usize,
    pub n: usize,
    /// `k / n`, `None` when `n` is 0.
    pub p: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

impl Proportion {
    pub fn new(k: usize, n: usize) -> Proportion {
        let (lo, hi) = match wilson(k, n) {
            Some((lo, hi)) => (Some(lo), Some(hi)),
            None => (None, None),
        };
        Proportion {
            k,
            n,
            p: (n > 0).then(|| k as f64 / n as f64),
            lo,
            hi,
        }
    }

    /// Counts the `true`s.
    pub fn of<I: IntoIterator<Item = bool>>(outcomes: I) -> Proportion {
        let (mut k, mut n) = (0, 0);
        for ok in outcomes {
            n += 1;
            k += usize::from(ok);
        }
        Proportion::new(k, n)
    }
}

/// The Wilson score 95 % interval for `k` successes in `n` trials; `None` for `n == 0`.
pub fn wilson(k: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 || k > n {
        return None;
    }
    let n_f = n as f64;
    let p = k as f64 / n_f;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n_f;
    let center = (p + z2 / (2.0 * n_f)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    // At k = 0 or k = n the bound is exactly 0 or 1; rounding must not push it past.
    let lo = if k == 0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Some((lo, hi))
}

/// The `q` quantile (0..=1) by linear interpolation between order statistics
/// (Hyndman & Fan type 7, the default of R and NumPy); `None` for no data.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = q.clamp(0.0, 1.0) * last as f64;
    let i = h.floor() as usize;
    let frac = h - i as f64;
    let below = sorted[i];
    let above = sorted[(i + 1).min(last)];
    Some(below + frac * (above - below))
}

/// A quantile with its percentile bootstrap 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantileCi {
    pub n: usize,
    /// Which quantile, 0..=1 (0.5 for the median).
    pub q: f64,
    pub value: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// The `q` quantile of `values` with a percentile bootstrap 95 % interval:
/// `resamples` resamples with replacement drawn from an RNG seeded with `seed`,
/// so the interval is the same for the same inputs.
pub fn bootstrap_quantile(values: &[f64], q: f64, resamples: usize, seed: u64) -> QuantileCi {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let value = quantile_sorted(&sorted, q);
    if n == 0 || resamples == 0 {
        return QuantileCi {
            n,
            q,
            value,
            lo: None,
            hi: None,
        };
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut estimates = Vec::with_capacity(resamples);
    let mut sample = vec![0.0; n];
    for _ in 0..resamples {
        for slot in sample.iter_mut() {
            *slot = sorted[rng.random_range(0..n)];
        }
        sample.sort_by(f64::total_cmp);
        estimates.extend(quantile_sorted(&sample, q));
    }
    estimates.sort_by(f64::total_cmp);
    QuantileCi {
        n,
        q,
        value,
        lo: quantile_sorted(&estimates, 0.025),
        hi: quantile_sorted(&estimates, 0.975),
    }
}

/// The Brier score of `(confidence, correct)` pairs: the mean squared gap
/// between the stated confidence and what happened (0 is perfect; always
/// saying 0.5 scores 0.25). `None` for no pairs.
pub fn brier(pairs: &[(f64, bool)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let sum: f64 = pairs
        .iter()
        .map(|&(c, ok)| (c.clamp(0.0, 1.0) - f64::from(u8::from(ok))).powi(2))
        .sum();
    Some(sum / pairs.len() as f64)
}

/// One confidence bin of a reliability table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// The bin's range of confidence, `[lo, hi)` (the last bin includes 1).
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    /// Mean stated confidence in the bin, `None` when empty.
    pub mean_confidence: Option<f64>,
    /// Observed accuracy with its Wilson interval.
    pub accuracy: Proportion,
}

/// A reliability table with `bins` equal-width bins over [0, 1]: a calibrated
/// diagnoser is right 80 % of the time when it says 0.8.
pub fn reliability(pairs: &[(f64, bool)], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    let width = 1.0 / bins as f64;
    let index = |c: f64| ((c.clamp(0.0, 1.0) / width).floor() as usize).min(bins - 1);
    (0..bins)
        .map(|b| {
            let inside: Vec<(f64, bool)> = pairs
                .iter()
                .copied()
                .filter(|&(c, _)| index(c) == b)
                .collect();
            let n = inside.len();
            ReliabilityBin {
                lo: b as f64 * width,
                hi: (b + 1) as f64 * width,
                n,
                mean_confidence: (n > 0)
                    .then(|| inside.iter().map(|&(c, _)| c).sum::<f64>() / n as f64),
                accuracy: Proportion::of(inside.iter().map(|&(_, ok)| ok)),
            }
        })
        .collect()
}

/// Top-k accuracy: the share of trials whose correct answer is among the first
/// `k` hypotheses. `ranks` holds each trial's 1-based rank of the first correct
/// hypothesis (the conclusion is rank 1, then the weighed alternatives in order),
/// `None` when none was correct.
pub fn top_k(ranks: &[Option<usize>], k: usize) -> Proportion {
    Proportion::of(ranks.iter().map(|r| r.is_some_and(|r| r >= 1 && r <= k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_published_values() {
        // Wilson (1927); the values tabulated by Newcombe (1998), and R's
        // prop.test(8, 10, correct = FALSE): 0.4901625 0.9433178.
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!(
            close(lo, 0.4902, 5e-4) && close(hi, 0.9433, 5e-4),
            "{lo} {hi}"
        );
        // prop.test(81, 263, correct = FALSE): 0.2553 0.3662 (Newcombe's example).
        let (lo, hi) = wilson(81, 263).unwrap();
        assert!(
            close(lo, 0.2553, 5e-4) && close(hi, 0.3662, 5e-4),
            "{lo} {hi}"
        );
        // 15/148: 0.0624 0.1605 (Newcombe, Table I).
        let (lo, hi) = wilson(15, 148).unwrap();
        assert!(
            close(lo, 0.0624, 5e-4) && close(hi, 0.1605, 5e-4),
            "{lo} {hi}"
        );
    }

    #[test]
    fn wilson_edges_stay_inside_the_unit_interval() {
        let (lo, hi) = wilson(0, 10).unwrap();
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.2775, 5e-4), "{hi}");
        let (lo, hi) = wilson(10, 10).unwrap();
        assert_eq!(hi, 1.0);
        assert!(close(lo, 0.7225, 5e-4), "{lo}");
        assert_eq!(wilson(0, 0), None);
        assert_eq!(wilson(3, 2), None);
        let p = Proportion::new(0, 0);
        assert_eq!((p.p, p.lo, p.hi), (None, None, None));
    }

    #[test]
    fn proportion_counts_and_narrows_with_n() {
        let p = Proportion::of([true, false, true, true]);
        assert_eq!((p.k, p.n, p.p), (3, 4, Some(0.75)));
        let small = Proportion::new(8, 10);
        let large = Proportion::new(80, 100);
        let width = |p: Proportion| p.hi.unwrap() - p.lo.unwrap();
        assert!(width(large) < width(small));
    }

    #[test]
    fn quantile_interpolates_like_r_type_7() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(5.5));
        // R: quantile(1:10, 0.95) = 9.55
        assert!(close(quantile(&v, 0.95).unwrap(), 9.55, 1e-12));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(10.0));
        assert_eq!(quantile(&[7.0], 0.95), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[3.0, f64::NAN, 1.0], 0.5), Some(2.0));
    }

    /// Latencies in ms, skewed like detection times: a fixed, varied sample.
    fn latencies(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 100.0 + ((i * 37) % 101) as f64 * 3.0 + ((i * 11) % 7) as f64 * 40.0)
            .collect()
    }

    #[test]
    fn bootstrap_is_deterministic_for_a_seed_and_brackets_the_estimate() {
        let v = latencies(40);
        let a = bootstrap_quantile(&v, 0.5, BOOTSTRAP_RESAMPLES, 7);
        let b = bootstrap_quantile(&v, 0.5, BOOTSTRAP_RESAMPLES, 7);
        assert_eq!(a, b);
        let c = bootstrap_quantile(&v, 0.5, BOOTSTRAP_RESAMPLES, 8);
        assert_ne!(
            (a.lo, a.hi),
            (c.lo, c.hi),
            "another seed draws other resamples"
        );
        for q in [0.5, 0.95] {
            let ci = bootstrap_quantile(&v, q, BOOTSTRAP_RESAMPLES, 1);
            let (value, lo, hi) = (ci.value.unwrap(), ci.lo.unwrap(), ci.hi.unwrap());
            assert_eq!(ci.n, 40);
            assert_eq!(Some(value), quantile(&v, q));
            assert!(lo <= value && value <= hi, "q{q}: {lo} <= {value} <= {hi}");
            assert!(lo < hi, "a varied sample has a proper interval");
        }
    }

    #[test]
    fn bootstrap_interval_shrinks_with_n() {
        let width = |n| {
            let ci = bootstrap_quantile(&latencies(n), 0.5, BOOTSTRAP_RESAMPLES, 3);
            ci.hi.unwrap() - ci.lo.unwrap()
        };
        let (w20, w400) = (width(20), width(400));
        assert!(w400 < w20 / 2.0, "n=20: {w20}, n=400: {w400}");
    }

    #[test]
    fn bootstrap_of_nothing_or_one_value() {
        let none = bootstrap_quantile(&[], 0.5, 100, 0);
        assert_eq!(
            (none.n, none.value, none.lo, none.hi),
            (0, None, None, None)
        );
        let one = bootstrap_quantile(&[42.0], 0.95, 100, 0);
        assert_eq!(
            (one.value, one.lo, one.hi),
            (Some(42.0), Some(42.0), Some(42.0))
        );
    }

    #[test]
    fn brier_scores_known_forecasts() {
        assert_eq!(brier(&[]), None);
        assert_eq!(brier(&[(1.0, true), (0.0, false)]), Some(0.0));
        assert_eq!(brier(&[(0.5, true), (0.5, false)]), Some(0.25));
        // (0.9-1)² + (0.8-0)² + (0.3-1)² = 0.01 + 0.64 + 0.49 = 1.14, / 3
        let b = brier(&[(0.9, true), (0.8, false), (0.3, true)]).unwrap();
        assert!(close(b, 0.38, 1e-12), "{b}");
    }

    #[test]
    fn reliability_bins_confidence_with_accuracy_and_n() {
        let pairs = [
            (0.05, false),
            (0.55, true),
            (0.58, false),
            (0.92, true),
            (0.97, true),
            (1.0, false),
        ];
        let table = reliability(&pairs, 5);
        assert_eq!(table.len(), 5);
        assert_eq!(table.iter().map(|b| b.n).sum::<usize>(), pairs.len());
        assert_eq!(table[0].n, 1);
        assert_eq!(table[0].accuracy.k, 0);
        assert_eq!(table[1].n, 0);
        assert_eq!(table[1].mean_confidence, None);
        assert_eq!(table[2].n, 2);
        assert!(close(table[2].mean_confidence.unwrap(), 0.565, 1e-12));
        assert_eq!(table[2].accuracy.p, Some(0.5));
        // 1.0 falls in the last bin, [0.8, 1.0].
        assert_eq!(table[4].n, 3);
        assert_eq!((table[4].accuracy.k, table[4].accuracy.n), (2, 3));
        assert!(close(table[4].lo, 0.8, 1e-12) && table[4].hi == 1.0);
    }

    #[test]
    fn top_k_counts_ranks_within_k() {
        let ranks = [Some(1), Some(2), None, Some(3), Some(1)];
        assert_eq!(top_k(&ranks, 1).k, 2);
        assert_eq!(top_k(&ranks, 2).k, 3);
        assert_eq!(top_k(&ranks, 3).k, 4);
        assert_eq!(top_k(&ranks, 3).n, 5);
        assert_eq!(top_k(&[], 1).n, 0);
    }
}
