//! PIN guessing protection on one device (sans-IO: the caller passes the time and does
//! the storage).
//!
//! After [`PIN_FAILURES_MAX`] wrong PINs in a row for an operator, PIN checks of that
//! operator on this device are refused for [`LOCKOUT_MS`] without looking at the PIN; a
//! right PIN resets the count, and a manager can lift a lockout early
//! (`POST /v1/operators/{id}/unlock`, `posmesh operator unlock`). A 4-digit PIN has 10,000
//! values: at 5 guesses per 5 minutes trying them all takes about a week per device (NIST
//! SP 800-63B §5.2.2 asks for a limit on consecutive failed attempts). The count is kept
//! per device, in the device's own database (`device_meta`, see
//! [`crate::storage::pin_attempts`]), so a restart or crash of the node does not clear it:
//! a store-wide count through Raft would write to the log on every wrong PIN, and a thief
//! at one till cannot use the others unseen.

use std::collections::HashMap;
use std::sync::Mutex;

/// Wrong PINs in a row before an operator is locked out on this device.
pub const PIN_FAILURES_MAX: u32 = 5;
/// How long a lockout lasts, ms.
pub const LOCKOUT_MS: u64 = 5 * 60 * 1000;

/// An operator's wrong PINs in a row on this device, as kept and stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PinAttempts {
    /// Wrong PINs in a row.
    pub failures: u32,
    /// Unix ms until which PIN checks are refused; 0 = not locked out.
    pub locked_until_ms: u64,
}

/// Length of [`PinAttempts::to_bytes`].
pub const PIN_ATTEMPTS_BYTES: usize = 12;

impl PinAttempts {
    /// Stored form: failures (u32 big-endian), then `locked_until_ms` (u64 big-endian).
    pub fn to_bytes(self) -> [u8; PIN_ATTEMPTS_BYTES] {
        let mut bytes = [0; PIN_ATTEMPTS_BYTES];
        bytes[..4].copy_from_slice(&self.failures.to_be_bytes());
        bytes[4..].copy_from_slice(&self.locked_until_ms.to_be_bytes());
        bytes
    }

    /// Parses [`Self::to_bytes`]; `None` if `bytes` is not 12 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let failures: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        let until: [u8; 8] = bytes.get(4..)?.try_into().ok()?;
        Some(Self {
            failures: u32::from_be_bytes(failures),
            locked_until_ms: u64::from_be_bytes(until),
        })
    }

    /// Whether PIN checks are refused at `now_ms`.
    pub fn locked_at(&self, now_ms: u64) -> bool {
        self.locked_until_ms > now_ms
    }
}

/// Consecutive wrong PINs per operator id.
#[derive(Debug, Default)]
pub struct PinLockout {
    attempts: Mutex<HashMap<String, PinAttempts>>,
    /// Held for a whole check (read the lockout, verify, record): see
    /// [`PinLockout::one_check_at_a_time`].
    checks: tokio::sync::Mutex<()>,
}

impl PinLockout {
    /// The counts kept before a restart (from [`crate::storage::pin_attempts`]).
    pub fn restored(stored: impl IntoIterator<Item = (String, PinAttempts)>) -> Self {
        Self {
            attempts: Mutex::new(stored.into_iter().collect()),
            checks: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits for this device's turn to check a PIN; hold the guard from [`Self::check`]
    /// to [`Self::record`]. Checks run concurrently let every request already in flight
    /// past the lockout before the first failure was recorded (a burst of 40 guesses was
    /// 40 checks, not 5), and a right PIN among them cleared a lockout the others had just
    /// set. One at a time, the 6th wrong PIN is refused whatever the concurrency.
    pub async fn one_check_at_a_time(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.checks.lock().await
    }

    /// Whether `operator_id` may try a PIN at `now_ms`; `Err(seconds)` = locked out for
    /// that many more seconds (rounded up).
    pub fn check(&self, operator_id: &str, now_ms: u64) -> Result<(), u64> {
        let attempts = self.lock();
        match attempts.get(operator_id) {
            Some(a) if a.locked_at(now_ms) => Err((a.locked_until_ms - now_ms).div_ceil(1000)),
            _ => Ok(()),
        }
    }

    /// Records the outcome of a PIN check of `operator_id` at `now_ms`; returns whether the
    /// operator is locked out now. `persist` is called with the operator's new count
    /// (`None` = cleared) whenever it changes, while the count is held, so stored counts
    /// follow the order of the checks; its error is returned (the count in memory is
    /// changed all the same: a failed write never makes guessing cheaper).
    ///
    /// # Errors
    /// `persist`'s.
    pub fn record<E>(
        &self,
        operator_id: &str,
        matched: bool,
        now_ms: u64,
        persist: impl FnOnce(&str, Option<PinAttempts>) -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut attempts = self.lock();
        if matched {
            if attempts.remove(operator_id).is_some() {
                persist(operator_id, None)?;
            }
            return Ok(false);
        }
        let entry = attempts.entry(operator_id.to_owned()).or_default();
        if entry.locked_until_ms != 0 && entry.locked_until_ms <= now_ms {
            *entry = PinAttempts::default(); // an expired lockout starts a fresh count
        }
        entry.failures += 1;
        let locked = entry.failures >= PIN_FAILURES_MAX;
        if locked {
            entry.locked_until_ms = now_ms.saturating_add(LOCKOUT_MS);
        }
        persist(operator_id, Some(*entry))?;
        Ok(locked)
    }

    /// A manager's unlock: forgets `operator_id`'s wrong PINs and lockout on this device.
    /// Returns the count it had (`None`: nothing to forget). `persist` as in
    /// [`Self::record`], called only when there was a count.
    ///
    /// # Errors
    /// `persist`'s; the count is then kept (the unlock did not happen).
    pub fn unlock<E>(
        &self,
        operator_id: &str,
        persist: impl FnOnce(&str, Option<PinAttempts>) -> Result<(), E>,
    ) -> Result<Option<PinAttempts>, E> {
        let mut attempts = self.lock();
        let Some(had) = attempts.get(operator_id).copied() else {
            return Ok(None);
        };
        persist(operator_id, None)?;
        attempts.remove(operator_id);
        Ok(Some(had))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PinAttempts>> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_store(_: &str, _: Option<PinAttempts>) -> Result<(), ()> {
        Ok(())
    }

    fn record(lockout: &PinLockout, op: &str, matched: bool, now: u64) -> bool {
        lockout
            .record(op, matched, now, no_store)
            .expect("no store")
    }

    #[test]
    fn five_wrong_pins_lock_the_operator_out_for_five_minutes() {
        let lockout = PinLockout::default();
        let t0 = 1_000_000;
        for i in 0..PIN_FAILURES_MAX - 1 {
            assert_eq!(lockout.check("bob", t0 + u64::from(i)), Ok(()));
            assert!(!record(&lockout, "bob", false, t0 + u64::from(i)));
        }
        assert!(record(&lockout, "bob", false, t0 + 10));
        assert_eq!(lockout.check("bob", t0 + 10), Err(300));
        assert_eq!(lockout.check("bob", t0 + 10 + LOCKOUT_MS - 1), Err(1));
        assert_eq!(lockout.check("alice", t0 + 10), Ok(()), "per operator");
        // Expired: a fresh count of five.
        let later = t0 + 10 + LOCKOUT_MS;
        assert_eq!(lockout.check("bob", later), Ok(()));
        assert!(!record(&lockout, "bob", false, later));
        assert_eq!(lockout.check("bob", later), Ok(()));
    }

    #[test]
    fn a_right_pin_resets_the_count() {
        let lockout = PinLockout::default();
        for _ in 0..PIN_FAILURES_MAX - 1 {
            record(&lockout, "bob", false, 0);
        }
        record(&lockout, "bob", true, 0);
        for _ in 0..PIN_FAILURES_MAX - 1 {
            assert!(!record(&lockout, "bob", false, 1));
        }
        assert_eq!(lockout.check("bob", 1), Ok(()));
    }

    #[test]
    fn every_change_of_a_count_is_handed_to_the_store_and_restores() {
        let lockout = PinLockout::default();
        let mut stored: HashMap<String, PinAttempts> = HashMap::new();
        let mut writes = 0;
        for _ in 0..PIN_FAILURES_MAX {
            lockout
                .record("bob", false, 7, |op, a| {
                    writes += 1;
                    match a {
                        Some(a) => stored.insert(op.to_owned(), a),
                        None => stored.remove(op),
                    };
                    Ok::<(), ()>(())
                })
                .expect("stored");
        }
        assert_eq!(writes, PIN_FAILURES_MAX);
        let after_restart = PinLockout::restored(stored.clone());
        assert_eq!(
            after_restart.check("bob", 8),
            Err(300),
            "survives a restart"
        );
        // A right PIN of someone never wrong writes nothing.
        lockout
            .record("alice", true, 9, |_, _| Err("no write expected"))
            .expect("no write");
        let had = after_restart
            .unlock("bob", |op, a| {
                assert_eq!((op, a), ("bob", None));
                Ok::<(), ()>(())
            })
            .expect("unlocked");
        assert_eq!(
            had,
            Some(PinAttempts {
                failures: PIN_FAILURES_MAX,
                locked_until_ms: 7 + LOCKOUT_MS
            })
        );
        assert_eq!(after_restart.check("bob", 8), Ok(()));
        assert_eq!(after_restart.unlock("bob", no_store), Ok(None));
    }

    #[test]
    fn a_failed_unlock_write_keeps_the_lockout() {
        let lockout = PinLockout::default();
        for _ in 0..PIN_FAILURES_MAX {
            record(&lockout, "bob", false, 0);
        }
        assert_eq!(
            lockout.unlock("bob", |_, _| Err("disk full")),
            Err("disk full")
        );
        assert!(lockout.check("bob", 1).is_err());
    }

    #[test]
    fn stored_form_round_trips_and_refuses_other_lengths() {
        let a = PinAttempts {
            failures: 3,
            locked_until_ms: 1_764_500_000_000,
        };
        assert_eq!(PinAttempts::from_bytes(&a.to_bytes()), Some(a));
        assert_eq!(PinAttempts::from_bytes(&[0; 11]), None);
        assert_eq!(PinAttempts::from_bytes(&[0; 13]), None);
    }
}
