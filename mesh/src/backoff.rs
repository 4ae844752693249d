//! [`Backoff`]: exponential backoff with full jitter, pure and seeded.
//!
//! "Full jitter" from the AWS Architecture Blog, *Exponential Backoff and Jitter* (Marc
//! Brooker, 2015): the n-th delay is uniform in `[0, min(max, initial · 2^n)]`. Spreading
//! retries over the whole window avoids reconnect storms when a store's Wi-Fi comes back
//! and every device redials at once.

/// Reconnect delays for one peer. Deterministic for a given seed (its generator is
/// SplitMix64, independent of any library version), no clock: the caller adds the
/// delay to its own `now_ms`.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    attempt: u32,
    rng_state: u64,
}

impl Backoff {
    /// Delays start with a window of `initial_ms` and double up to `max_ms`.
    /// `initial_ms` is raised to 1 and `max_ms` to `initial_ms` when smaller.
    pub fn new(initial_ms: u64, max_ms: u64, seed: u64) -> Self {
        let initial_ms = initial_ms.max(1);
        Self {
            initial_ms,
            max_ms: max_ms.max(initial_ms),
            attempt: 0,
            rng_state: seed,
        }
    }

    /// Retries since the last [`Backoff::reset`].
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The upper bound of the next delay in ms: `min(max_ms, initial_ms · 2^attempt)`.
    pub fn window_ms(&self) -> u64 {
        let factor = 1u64.checked_shl(self.attempt).unwrap_or(u64::MAX);
        self.initial_ms.saturating_mul(factor).min(self.max_ms)
    }

    /// The next delay in ms, uniform in `[0, window_ms()]`, and advances the attempt.
    pub fn next_delay_ms(&mut self) -> u64 {
        let window = self.window_ms();
        let delay = if window == u64::MAX {
            self.next_u64()
        } else {
            self.next_u64() % (window + 1)
        };
        // Stop counting once the window is capped, so the shift never overflows.
        if window < self.max_ms {
            self.attempt = self.attempt.saturating_add(1);
        }
        debug_assert!(delay <= window);
        delay
    }

    /// Straight to the largest window: the next delay is uniform in `[0, max_ms]`. For a
    /// peer that refused us on purpose (e.g. a device retired from the store), where
    /// retrying sooner cannot help.
    pub fn saturate(&mut self) {
        while self.window_ms() < self.max_ms {
            self.attempt = self.attempt.saturating_add(1);
        }
    }

    /// Back to the first window (after a successful connection). The random sequence
    /// continues; it is not rewound.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// SplitMix64 (Steele, Lea, Flood 2014).
    fn next_u64(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn windows_double_then_cap() {
        let mut b = Backoff::new(100, 1_000, 7);
        let mut windows = Vec::new();
        for _ in 0..7 {
            windows.push(b.window_ms());
            b.next_delay_ms();
        }
        assert_eq!(windows, vec![100, 200, 400, 800, 1_000, 1_000, 1_000]);
        b.reset();
        assert_eq!(b.window_ms(), 100);
        assert_eq!(b.attempt(), 0);
    }

    #[test]
    fn saturate_jumps_to_the_largest_window() {
        let mut b = Backoff::new(250, 10_000, 7);
        b.saturate();
        assert_eq!(b.window_ms(), 10_000);
        let attempt = b.attempt();
        assert!(b.next_delay_ms() <= 10_000);
        assert_eq!(b.window_ms(), 10_000);
        assert_eq!(b.attempt(), attempt, "a capped window stops counting");
        b.reset();
        assert_eq!(b.window_ms(), 250);
        let mut huge = Backoff::new(1, u64::MAX, 1);
        huge.saturate();
        assert_eq!(huge.window_ms(), u64::MAX);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let run = |seed| {
            let mut b = Backoff::new(50, 30_000, seed);
            (0..20).map(|_| b.next_delay_ms()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn jitter_spreads_over_the_window() {
        // 1,000 draws in a capped window of 1,000 ms: both halves are hit.
        let mut b = Backoff::new(1_000, 1_000, 3);
        let draws: Vec<u64> = (0..1_000).map(|_| b.next_delay_ms()).collect();
        assert!(draws.iter().any(|d| *d < 500));
        assert!(draws.iter().any(|d| *d >= 500));
        assert!(draws.iter().all(|d| *d <= 1_000));
    }

    #[test]
    fn degenerate_parameters() {
        let mut b = Backoff::new(0, 0, 1);
        assert_eq!(b.window_ms(), 1);
        assert!(b.next_delay_ms() <= 1);
        let mut huge = Backoff::new(u64::MAX, u64::MAX, 1);
        for _ in 0..100 {
            huge.next_delay_ms();
        }
    }

    proptest! {
        #[test]
        fn delay_within_window(initial in 0u64..10_000, max in 0u64..1_000_000, seed: u64, n in 0usize..80) {
            let mut b = Backoff::new(initial, max, seed);
            for _ in 0..n {
                let window = b.window_ms();
                let delay = b.next_delay_ms();
                prop_assert!(delay <= window);
                prop_assert!(window <= max.max(initial).max(1));
            }
        }
    }
}
