//! PIN guessing protection on one device (sans-IO: the caller passes the time).
//!
//! After [`PIN_FAILURES_MAX`] wrong PINs in a row for an operator, PIN checks of that
//! operator on this device are refused for [`LOCKOUT_MS`] without looking at the PIN; a
//! right PIN resets the count. A 4-digit PIN has 10,000 values: at 5 guesses per 5 minutes
//! trying them all takes about a week per device (NIST SP 800-63B §5.2.2 asks for a limit
//! on consecutive failed attempts). The count lives in memory on the device that checks the
//! PIN: a store-wide count through Raft would write to the log on every wrong PIN, and a
//! thief at one till cannot use the others unseen.

use std::collections::HashMap;
use std::sync::Mutex;

/// Wrong PINs in a row before an operator is locked out on this device.
pub const PIN_FAILURES_MAX: u32 = 5;
/// How long a lockout lasts, ms.
pub const LOCKOUT_MS: u64 = 5 * 60 * 1000;

#[derive(Debug, Default, Clone, Copy)]
struct Attempts {
    failures: u32,
    locked_until_ms: u64,
}

/// Consecutive wrong PINs per operator id.
#[derive(Debug, Default)]
pub struct PinLockout {
    attempts: Mutex<HashMap<String, Attempts>>,
}

impl PinLockout {
    /// Whether `operator_id` may try a PIN at `now_ms`; `Err(seconds)` = locked out for
    /// that many more seconds (rounded up).
    pub fn check(&self, operator_id: &str, now_ms: u64) -> Result<(), u64> {
        let attempts = self.lock();
        match attempts.get(operator_id) {
            Some(a) if a.locked_until_ms > now_ms => {
                Err((a.locked_until_ms - now_ms).div_ceil(1000))
            }
            _ => Ok(()),
        }
    }

    /// Records the outcome of a PIN check of `operator_id` at `now_ms`; returns whether the
    /// operator is locked out now.
    pub fn record(&self, operator_id: &str, matched: bool, now_ms: u64) -> bool {
        let mut attempts = self.lock();
        if matched {
            attempts.remove(operator_id);
            return false;
        }
        let entry = attempts.entry(operator_id.to_owned()).or_default();
        if entry.locked_until_ms != 0 && entry.locked_until_ms <= now_ms {
            *entry = Attempts::default(); // an expired lockout starts a fresh count
        }
        entry.failures += 1;
        if entry.failures >= PIN_FAILURES_MAX {
            entry.locked_until_ms = now_ms.saturating_add(LOCKOUT_MS);
            return true;
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Attempts>> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_pins_lock_the_operator_out_for_five_minutes() {
        let lockout = PinLockout::default();
        let t0 = 1_000_000;
        for i in 0..PIN_FAILURES_MAX - 1 {
            assert_eq!(lockout.check("bob", t0 + u64::from(i)), Ok(()));
            assert!(!lockout.record("bob", false, t0 + u64::from(i)));
        }
        assert!(lockout.record("bob", false, t0 + 10));
        assert_eq!(lockout.check("bob", t0 + 10), Err(300));
        assert_eq!(lockout.check("bob", t0 + 10 + LOCKOUT_MS - 1), Err(1));
        assert_eq!(lockout.check("alice", t0 + 10), Ok(()), "per operator");
        // Expired: a fresh count of five.
        let later = t0 + 10 + LOCKOUT_MS;
        assert_eq!(lockout.check("bob", later), Ok(()));
        assert!(!lockout.record("bob", false, later));
        assert_eq!(lockout.check("bob", later), Ok(()));
    }

    #[test]
    fn a_right_pin_resets_the_count() {
        let lockout = PinLockout::default();
        for _ in 0..PIN_FAILURES_MAX - 1 {
            lockout.record("bob", false, 0);
        }
        lockout.record("bob", true, 0);
        for _ in 0..PIN_FAILURES_MAX - 1 {
            assert!(!lockout.record("bob", false, 1));
        }
        assert_eq!(lockout.check("bob", 1), Ok(()));
    }
}
