//! Percentiles of latency samples.

use serde::Serialize;
use std::time::Duration;

/// p50 / p99 / max of a set of samples, microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Median, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Largest, µs.
    pub max_us: u64,
}

impl Percentiles {
    /// Percentiles (nearest-rank method) of `samples`.
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let at = |q: f64| -> u64 {
            if samples.is_empty() {
                return 0;
            }
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_micros() as u64
        };
        Self {
            count: samples.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: samples.last().map(|d| d.as_micros() as u64).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!((p.count, p.p50_us, p.p99_us, p.max_us), (100, 50, 99, 100));
        assert_eq!(Percentiles::of(&mut []).p99_us, 0);
    }
}
