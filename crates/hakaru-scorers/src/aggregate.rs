//! Aggregates with 95% intervals: a rate with the Wilson score interval, a mean with a
//! percentile bootstrap (1000 resamples, fixed seed, so the same values give the same interval).

use hakaru_types::MetricSummary;
use serde_json::Value;

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959963984540054;
/// Bootstrap resamples for means.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
/// Seed of the bootstrap's generator: fixed, so intervals are reproducible.
pub const BOOTSTRAP_SEED: u64 = 0x6861_6b61_7275; // "hakaru"

/// One observation of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Bool(bool),
    Number(f64),
}

impl MetricValue {
    /// A boolean or a finite number; anything else is not a metric value.
    pub fn from_json(v: &Value) -> Option<MetricValue> {
        match v {
            Value::Bool(b) => Some(MetricValue::Bool(*b)),
            Value::Number(n) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(MetricValue::Number),
            _ => None,
        }
    }
    pub fn as_f64(self) -> f64 {
        match self {
            MetricValue::Bool(b) => b as u8 as f64,
            MetricValue::Number(x) => x,
        }
    }
}

/// Wilson score interval (95%) for `successes` out of `n`. `None` when `n == 0`.
pub fn wilson_interval(successes: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n_f = n as f64;
    let p = successes as f64 / n_f;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = Z95 * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    // At 0/n and n/n the bound is exactly 0 or 1; rounding would leave 1e-17 off.
    let low = if successes == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let high = if successes == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some((low, high))
}

/// SplitMix64: tiny, portable, and enough for resampling indices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for the n used here).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// Percentile bootstrap interval (95%) of the mean: `resamples` resamples with replacement, drawn
/// from a generator seeded with `seed`. `None` with fewer than two values.
pub fn bootstrap_mean_ci(xs: &[f64], resamples: usize, seed: u64) -> Option<(f64, f64)> {
    let n = xs.len();
    if n < 2 || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut s = 0.0;
            for _ in 0..n {
                s += xs[rng.below(n)];
            }
            s / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Some((quantile(&means, 0.025), quantile(&means, 0.975)))
}

/// Linear-interpolated quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Summary of one metric: all booleans → rate with a Wilson interval; otherwise (numbers, or a
/// mix) → mean with a bootstrap interval. `None` when there are no values.
pub fn mean_with_ci(values: &[MetricValue]) -> Option<MetricSummary> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let xs: Vec<f64> = values.iter().map(|v| v.as_f64()).collect();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let ci = if values.iter().all(|v| matches!(v, MetricValue::Bool(_))) {
        let k = values
            .iter()
            .filter(|v| matches!(v, MetricValue::Bool(true)))
            .count();
        wilson_interval(k, n)
    } else {
        bootstrap_mean_ci(&xs, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
    };
    Some(MetricSummary {
        n,
        mean,
        ci_low: ci.map(|c| c.0),
        ci_high: ci.map(|c| c.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605.
        let (l, h) = wilson_interval(81, 263).unwrap();
        assert!(close(l, 0.2553) && close(h, 0.3662), "{l} {h}");
        let (l, h) = wilson_interval(15, 148).unwrap();
        assert!(close(l, 0.0624) && close(h, 0.1605), "{l} {h}");
        // 0/10 and 10/10 stay inside [0, 1] and are not degenerate.
        let (l, h) = wilson_interval(0, 10).unwrap();
        assert!(l == 0.0 && close(h, 0.2775), "{l} {h}");
        let (l, h) = wilson_interval(10, 10).unwrap();
        assert!(close(l, 0.7225) && h == 1.0, "{l} {h}");
        assert!(wilson_interval(0, 0).is_none());
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_mean() {
        let xs: Vec<f64> = (0..50).map(|i| (i * 37 % 11) as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let a = bootstrap_mean_ci(&xs, 1000, 1).unwrap();
        assert_eq!(a, bootstrap_mean_ci(&xs, 1000, 1).unwrap());
        assert!(a.0 < mean && mean < a.1, "{a:?} around {mean}");
        // The standard error of this mean is about 0.45; the interval is about ±1.96 of it.
        let width = a.1 - a.0;
        assert!(width > 1.2 && width < 2.4, "{width}");
        assert_ne!(a, bootstrap_mean_ci(&xs, 1000, 2).unwrap());
        assert!(bootstrap_mean_ci(&[1.0], 1000, 1).is_none());
        // Constant values: a zero-width interval.
        assert_eq!(
            bootstrap_mean_ci(&[2.0, 2.0, 2.0], 100, 1),
            Some((2.0, 2.0))
        );
    }

    #[test]
    fn summaries_pick_the_interval_by_type() {
        let rate = mean_with_ci(&[
            MetricValue::Bool(true),
            MetricValue::Bool(false),
            MetricValue::Bool(true),
            MetricValue::Bool(true),
        ])
        .unwrap();
        assert_eq!((rate.n, rate.mean), (4, 0.75));
        let w = wilson_interval(3, 4).unwrap();
        assert_eq!((rate.ci_low, rate.ci_high), (Some(w.0), Some(w.1)));
        let m = mean_with_ci(&[MetricValue::Number(1.0), MetricValue::Number(3.0)]).unwrap();
        assert_eq!(m.mean, 2.0);
        let b = bootstrap_mean_ci(&[1.0, 3.0], BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        assert_eq!((m.ci_low, m.ci_high), (Some(b.0), Some(b.1)));
        assert!(mean_with_ci(&[]).is_none());
        assert_eq!(
            MetricValue::from_json(&serde_json::json!("x")),
            None,
            "strings are not metric values"
        );
    }
}
