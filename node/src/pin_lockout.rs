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
//!
//! Ids that name no operator are counted too, so that a made-up id is locked out after
//! [`PIN_FAILURES_MAX`] guesses exactly like a real one (else the first 429 would tell
//! which ids exist). Their counts are kept in memory only — never stored, so guessing ids
//! cannot fill the device's storage — and at most [`UNKNOWN_IDS_MAX`] of them: a new
//! unknown id beyond that replaces the one guessed longest ago. The cost: a restart
//! forgets these counts, and someone cycling through more than [`UNKNOWN_IDS_MAX`] made-up
//! ids between two guesses at one of them sees that id never lock (a real id, whose count
//! is stored, would); that takes thousands of Argon2 checks, one at a time.

use std::collections::HashMap;
use std::sync::Mutex;

/// Wrong PINs in a row before an operator is locked out on this device.
pub const PIN_FAILURES_MAX: u32 = 5;
/// How long a lockout lasts, ms.
pub const LOCKOUT_MS: u64 = 5 * 60 * 1000;
/// Most ids naming no operator whose wrong PINs are counted (in memory) at once.
pub const UNKNOWN_IDS_MAX: usize = 4096;

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
    /// Ids naming no operator: their count and the time of their last wrong PIN (ms), at
    /// most [`UNKNOWN_IDS_MAX`], never stored.
    unknown: Mutex<HashMap<String, (PinAttempts, u64)>>,
    /// Held for a whole check (read the lockout, verify, record): see
    /// [`PinLockout::one_check_at_a_time`].
    checks: tokio::sync::Mutex<()>,
}

impl PinLockout {
    /// The counts kept before a restart (from [`crate::storage::pin_attempts`]).
    pub fn restored(stored: impl IntoIterator<Item = (String, PinAttempts)>) -> Self {
        Self {
            attempts: Mutex::new(stored.into_iter().collect()),
            unknown: Mutex::default(),
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
        locked_for(attempts.get(operator_id), now_ms)
    }

    /// As [`Self::check`], for an id that names no operator (its in-memory count).
    pub fn check_unknown(&self, id: &str, now_ms: u64) -> Result<(), u64> {
        let unknown = self.lock_unknown();
        locked_for(unknown.get(id).map(|(a, _)| a), now_ms)
    }

    /// Records a wrong PIN for `id`, which names no operator, at `now_ms` (in memory only,
    /// see the module's doc); returns whether the id is locked out now, after
    /// [`PIN_FAILURES_MAX`] in a row as for an operator. A new id when
    /// [`UNKNOWN_IDS_MAX`] are counted replaces the one whose last wrong PIN is oldest.
    pub fn record_unknown(&self, id: &str, now_ms: u64) -> bool {
        let mut unknown = self.lock_unknown();
        if !unknown.contains_key(id) && unknown.len() >= UNKNOWN_IDS_MAX {
            let oldest = unknown
                .iter()
                .min_by_key(|(_, (_, last_ms))| *last_ms)
                .map(|(oldest, _)| oldest.clone());
            if let Some(oldest) = oldest {
                unknown.remove(&oldest);
            }
        }
        let (entry, last_ms) = unknown.entry(id.to_owned()).or_default();
        *last_ms = now_ms;
        fail(entry, now_ms)
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
        let locked = fail(entry, now_ms);
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

    fn lock_unknown(&self) -> std::sync::MutexGuard<'_, HashMap<String, (PinAttempts, u64)>> {
        self.unknown.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `Err(seconds left, rounded up)` if `attempts` is a lockout still running at `now_ms`.
fn locked_for(attempts: Option<&PinAttempts>, now_ms: u64) -> Result<(), u64> {
    match attempts {
        Some(a) if a.locked_at(now_ms) => Err((a.locked_until_ms - now_ms).div_ceil(1000)),
        _ => Ok(()),
    }
}

/// Counts one more wrong PIN at `now_ms` in `entry` (an expired lockout starts a fresh
/// count); returns whether that locks it out.
fn fail(entry: &mut PinAttempts, now_ms: u64) -> bool {
    if entry.locked_until_ms != 0 && entry.locked_until_ms <= now_ms {
        *entry = PinAttempts::default();
    }
    entry.failures += 1;
    let locked = entry.failures >= PIN_FAILURES_MAX;
    if locked {
        entry.locked_until_ms = now_ms.saturating_add(LOCKOUT_MS);
    }
    locked
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
    fn a_made_up_id_locks_out_like_an_operator_within_a_bounded_memory() {
        let lockout = PinLockout::default();
        let t0 = 1_000_000;
        for i in 0..PIN_FAILURES_MAX - 1 {
            assert_eq!(lockout.check_unknown("ghost", t0), Ok(()));
            assert!(!lockout.record_unknown("ghost", t0 + u64::from(i)));
        }
        assert!(lockout.record_unknown("ghost", t0 + 10));
        assert_eq!(lockout.check_unknown("ghost", t0 + 10), Err(300));
        assert_eq!(lockout.check("ghost", t0 + 10), Ok(()), "kept apart");
        // Expired: a fresh count, as for an operator.
        let later = t0 + 10 + LOCKOUT_MS;
        assert_eq!(lockout.check_unknown("ghost", later), Ok(()));
        assert!(!lockout.record_unknown("ghost", later));
        // Bounded: more ids than the cap keep the map at the cap, dropping the oldest.
        for k in 0..UNKNOWN_IDS_MAX + 10 {
            lockout.record_unknown(&format!("id-{k}"), later + 1 + k as u64);
        }
        assert_eq!(lockout.lock_unknown().len(), UNKNOWN_IDS_MAX);
        assert!(
            !lockout.lock_unknown().contains_key("ghost"),
            "oldest dropped"
        );
        assert!(lockout
            .lock_unknown()
            .contains_key(&format!("id-{}", UNKNOWN_IDS_MAX + 9)));
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
