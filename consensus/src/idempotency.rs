//! Idempotency of store-wide writes: a client's `Idempotency-Key` recorded with the
//! outcome in the replicated state, so a retried request (through any device) is answered
//! with the first outcome instead of being applied again or refused as a duplicate —
//! the convention of the sales API (`/v1/sales`) for decisions of the state machine.
//!
//! Deterministic, like every apply: the key, the hash of the request and the outcome are
//! all in the log entry or the state, never in a clock or a device's memory. Only applied
//! commands are recorded: a refused command changes nothing, so its key stays free and a
//! retry is decided afresh.
//!
//! Bounded from rules version 2 on ([`crate::rules`]; rules 1 keep every key, as
//! versions before the bound did, and the first key recorded under rules 2 drops the
//! oldest beyond the bound) ([`IdempotentWrites`]): the state keeps the last [`IDEMPOTENT_KEYS_MAX`] keys
//! by the log index they were applied at, and drops the oldest when it records one more —
//! at apply, so every replica drops the same keys at the same entry, and a snapshot
//! carries exactly the keys kept. The window is counted in keyed writes, not in time or
//! log entries: keyed writes are a manager's and the staff's (operators, shifts, tax
//! rates, day close, gift-card issue, budgets, revocations, removals), a few hundred a
//! day in a busy store, so 4,096 keys hold for days there, and still for over an hour at
//! a sustained keyed write a second; gift-card redemptions, the store's busiest entries,
//! take no room (they are deduplicated by their redemption id, kept for good in
//! `redemptions`: forgetting one would let a late retry take the money twice). A retry
//! whose key was dropped is decided afresh, as a new request: the state machine's own
//! rules refuse its second application for every kind but the "set X to V" ones — an
//! issued card (`gift_card_exists`), a closed day or shift, a used shift id, a revoked
//! certificate, a disabled operator are refused; a retired device answers its first
//! retirement; an operator set, an exposure budget or allotment is set to the same value
//! again (at a new index: a change made in between is overwritten, as by any late
//! write).

use crate::command::{Outcome, Refusal, StoreCommand, StoreResponse};
use crate::state::{check_id, StoreState};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// Length of a request hash: SHA-256, lowercase hex.
pub const REQUEST_HASH_HEX_LEN: usize = 64;

/// How many Idempotency-Keys the state keeps: the last this many recorded, by the log
/// index they were applied at (see the module doc for the window it makes). ~250 bytes
/// of JSON each (a device-assigned key, the hash, an outcome): ~1 MB in a snapshot when
/// full.
pub const IDEMPOTENT_KEYS_MAX: usize = 4096;

/// The applied [`StoreCommand::Idempotent`] writes the state keeps, by key: at most
/// [`IDEMPOTENT_KEYS_MAX`], the oldest (lowest applied index) dropped first. Serialised
/// as the map of keys alone (as before it was bounded); the order by index is rebuilt
/// when it is read back.
#[derive(Clone, Debug, Default)]
pub struct IdempotentWrites {
    /// The writes by key.
    by_key: BTreeMap<String, IdempotentWrite>,
    /// The same keys by the index they were applied at: the eviction order.
    by_index: BTreeSet<(u64, String)>,
}

impl IdempotentWrites {
    /// The write recorded under `key`, if it is kept.
    pub fn get(&self, key: &str) -> Option<&IdempotentWrite> {
        self.by_key.get(key)
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The kept writes by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &IdempotentWrite)> {
        self.by_key.iter()
    }

    /// Records `write` under `key` (a key not kept yet), then, when `bounded` (rules 2
    /// on, [`crate::rules`]), drops the oldest keys beyond [`IDEMPOTENT_KEYS_MAX`].
    fn record(&mut self, key: String, write: IdempotentWrite, bounded: bool) {
        self.by_index.insert((write.applied_at_index, key.clone()));
        if let Some(replaced) = self.by_key.insert(key.clone(), write) {
            // Not reached (a kept key is replayed or refused, never recorded again); kept
            // consistent all the same.
            self.by_index.remove(&(replaced.applied_at_index, key));
        }
        while bounded && self.by_key.len() > IDEMPOTENT_KEYS_MAX {
            let Some((_, oldest)) = self.by_index.pop_first() else {
                break;
            };
            self.by_key.remove(&oldest);
        }
    }
}

impl PartialEq for IdempotentWrites {
    /// Equal when they keep the same writes (the order by index follows from them).
    fn eq(&self, other: &Self) -> bool {
        self.by_key == other.by_key
    }
}

impl Eq for IdempotentWrites {}

impl Serialize for IdempotentWrites {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_key.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IdempotentWrites {
    /// The map of keys; a state of a version that kept every key keeps them all until
    /// the next key recorded drops the oldest beyond the bound (at apply, so on every
    /// replica alike).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let by_key = BTreeMap::<String, IdempotentWrite>::deserialize(deserializer)?;
        let by_index = by_key
            .iter()
            .map(|(key, write)| (write.applied_at_index, key.clone()))
            .collect();
        Ok(Self { by_key, by_index })
    }
}

/// An applied write and the request it answered, by Idempotency-Key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentWrite {
    /// Hash of the request (operation, target and canonical body) that used the key,
    /// lowercase hex.
    pub request_hash: String,
    /// Log index at which the write was applied.
    pub applied_at_index: u64,
    /// Its outcome.
    pub outcome: Outcome,
}

impl StoreState {
    /// Applies `command` under `idempotency_key` (see the module doc): a key seen with the
    /// same `request_hash` replays the recorded outcome ([`StoreResponse::Replayed`],
    /// nothing applied); with another hash it is refused
    /// ([`Refusal::IdempotencyKeyReused`]); a new key applies `command` and records the
    /// key if it was applied. `authorised`: `command` comes inside a
    /// [`StoreCommand::Authorised`] whose operator was checked.
    /// The answer to `command` if it is an [`StoreCommand::Idempotent`] replay: its key
    /// recorded for the same request (the first outcome, [`StoreResponse::Replayed`]);
    /// `None` otherwise.
    pub(crate) fn replay_of(&self, command: &StoreCommand) -> Option<StoreResponse> {
        let StoreCommand::Idempotent {
            idempotency_key,
            request_hash,
            ..
        } = command
        else {
            return None;
        };
        let done = self.idempotent_writes.get(idempotency_key)?;
        (done.request_hash == *request_hash).then(|| StoreResponse::Replayed {
            applied_at_index: done.applied_at_index,
            outcome: done.outcome.clone(),
        })
    }

    pub(crate) fn apply_idempotent(
        &mut self,
        index: u64,
        idempotency_key: &str,
        request_hash: &str,
        command: &StoreCommand,
        authorised: bool,
    ) -> StoreResponse {
        if let Err(refusal) = check_id("idempotency_key", idempotency_key) {
            return StoreResponse::Refused(refusal);
        }
        if request_hash.len() != REQUEST_HASH_HEX_LEN
            || !request_hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return StoreResponse::Refused(Refusal::InvalidId {
                field: "request_hash".into(),
                rule: format!("must be {REQUEST_HASH_HEX_LEN} lowercase hex digits"),
            });
        }
        if let Some(done) = self.idempotent_writes.get(idempotency_key) {
            if done.request_hash == request_hash {
                return StoreResponse::Replayed {
                    applied_at_index: done.applied_at_index,
                    outcome: done.outcome.clone(),
                };
            }
            return StoreResponse::Refused(Refusal::IdempotencyKeyReused {
                idempotency_key: idempotency_key.to_owned(),
                applied_at_index: done.applied_at_index,
            });
        }
        if matches!(command, StoreCommand::Idempotent { .. }) {
            return StoreResponse::Refused(Refusal::InvalidId {
                field: "command".into(),
                rule: "an idempotent command cannot wrap another".into(),
            });
        }
        let response = self.apply_as(index, command, authorised);
        if let StoreResponse::Applied(outcome) = &response {
            self.idempotent_writes.record(
                idempotency_key.to_owned(),
                IdempotentWrite {
                    request_hash: request_hash.to_owned(),
                    applied_at_index: index,
                    outcome: outcome.clone(),
                },
                self.rules_at_least(2),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use crate::command::{Outcome, Refusal, StoreCommand, StoreResponse};
    use crate::state::StoreState;
    use posmesh_domain::money::Currency;

    fn issue(card: &str, amount: i64) -> StoreCommand {
        StoreCommand::IssueGiftCard {
            card_id: card.into(),
            amount_minor: amount,
            currency: Currency::from_code("GBP").expect("GBP"),
        }
    }

    fn keyed(key: &str, hash: char, command: StoreCommand) -> StoreCommand {
        StoreCommand::Idempotent {
            idempotency_key: key.into(),
            request_hash: hash.to_string().repeat(64),
            command: Box::new(command),
        }
    }

    #[test]
    fn a_retry_replays_the_first_outcome_and_another_request_is_refused() {
        let mut state = StoreState::default();
        let first = state.apply(3, &keyed("k-1", 'a', issue("card-1", 500)));
        let StoreResponse::Applied(outcome) = first else {
            panic!("applied: {first:?}");
        };
        assert!(matches!(
            outcome,
            Outcome::GiftCardIssued {
                balance_minor: 500,
                ..
            }
        ));
        let after_first = state.clone();
        // The same request again (a client retry, through any device): the first outcome.
        assert_eq!(
            state.apply(4, &keyed("k-1", 'a', issue("card-1", 500))),
            StoreResponse::Replayed {
                applied_at_index: 3,
                outcome: outcome.clone()
            }
        );
        assert_eq!(state, after_first, "a replay changes nothing");
        // The same key for another request: refused, nothing changes.
        assert_eq!(
            state.apply(5, &keyed("k-1", 'b', issue("card-1", 900))),
            StoreResponse::Refused(Refusal::IdempotencyKeyReused {
                idempotency_key: "k-1".into(),
                applied_at_index: 3
            })
        );
        assert_eq!(state, after_first);
        // Without the key, the duplicate is the state machine's usual refusal.
        assert!(matches!(
            state.apply(6, &issue("card-1", 500)),
            StoreResponse::Refused(Refusal::GiftCardExists { .. })
        ));
    }

    #[test]
    fn a_refused_command_leaves_its_key_free() {
        let mut state = StoreState::default();
        state.apply(1, &issue("card-1", 500));
        let before = state.clone();
        assert!(matches!(
            state.apply(2, &keyed("k-2", 'c', issue("card-1", 700))),
            StoreResponse::Refused(Refusal::GiftCardExists { .. })
        ));
        assert_eq!(state, before, "the key is not recorded");
        assert!(matches!(
            state.apply(3, &keyed("k-2", 'c', issue("card-2", 700))),
            StoreResponse::Applied(_)
        ));
    }

    #[test]
    fn bad_keys_hashes_and_nesting_are_refused() {
        let mut state = StoreState::default();
        let before = state.clone();
        for bad in [
            keyed("", 'a', issue("c", 1)),
            StoreCommand::Idempotent {
                idempotency_key: "k".into(),
                request_hash: "A".repeat(64),
                command: Box::new(issue("c", 1)),
            },
            StoreCommand::Idempotent {
                idempotency_key: "k".into(),
                request_hash: "ab".into(),
                command: Box::new(issue("c", 1)),
            },
            keyed("k", 'a', keyed("k2", 'a', issue("c", 1))),
        ] {
            assert!(
                matches!(
                    state.apply(1, &bad),
                    StoreResponse::Refused(Refusal::InvalidId { .. })
                ),
                "{bad:?}"
            );
            assert_eq!(state, before);
        }
    }

    /// Keyed issues of cards `card-<i>` under keys `k-<i>` at index `10 + i`, for `i` in
    /// `range`: each applied.
    fn issue_keyed(state: &mut StoreState, range: std::ops::Range<usize>) {
        for i in range {
            let command = keyed(&format!("k-{i}"), 'a', issue(&format!("card-{i}"), 100));
            let response = state.apply(10 + i as u64, &command);
            assert!(
                matches!(response, StoreResponse::Applied(_)),
                "{i}: {response:?}"
            );
        }
    }

    #[test]
    fn the_oldest_keys_are_dropped_beyond_the_bound_alike_on_every_replica() {
        use crate::idempotency::IDEMPOTENT_KEYS_MAX;
        let total = IDEMPOTENT_KEYS_MAX + 10;
        // One replica applies the whole log; another restarts halfway from its snapshot
        // (the state serialised and read back) and applies the rest.
        let mut through = StoreState::with_rules(2);
        issue_keyed(&mut through, 0..total);
        let mut restarted = StoreState::with_rules(2);
        issue_keyed(&mut restarted, 0..total / 2);
        let bytes = serde_json::to_vec(&restarted).expect("json");
        let mut restarted: StoreState = serde_json::from_slice(&bytes).expect("reads back");
        issue_keyed(&mut restarted, total / 2..total);
        assert_eq!(restarted, through);
        assert_eq!(
            serde_json::to_vec(&restarted).expect("json"),
            serde_json::to_vec(&through).expect("json"),
            "the same snapshot bytes"
        );
        // The last IDEMPOTENT_KEYS_MAX keys are kept, the 10 oldest dropped.
        assert_eq!(through.idempotent_writes.len(), IDEMPOTENT_KEYS_MAX);
        for i in 0..10 {
            assert!(
                through.idempotent_writes.get(&format!("k-{i}")).is_none(),
                "{i}"
            );
        }
        for i in 10..total {
            let kept = through.idempotent_writes.get(&format!("k-{i}"));
            assert_eq!(kept.map(|w| w.applied_at_index), Some(10 + i as u64), "{i}");
        }
        // A refused command drops nothing: the state is as it was.
        let before = through.clone();
        let refused = through.apply(
            99_999,
            &keyed("k-new", 'a', issue(&format!("card-{}", total - 1), 100)),
        );
        assert!(matches!(
            refused,
            StoreResponse::Refused(Refusal::GiftCardExists { .. })
        ));
        assert_eq!(through, before);
    }

    #[test]
    fn a_retry_inside_the_window_replays_and_one_after_is_decided_afresh() {
        use crate::idempotency::IDEMPOTENT_KEYS_MAX;
        let mut state = StoreState::with_rules(2);
        issue_keyed(&mut state, 0..IDEMPOTENT_KEYS_MAX + 1);
        // The oldest key kept (k-1): its retry is the first outcome, nothing applied.
        let before = state.clone();
        let retry = state.apply(50_000, &keyed("k-1", 'a', issue("card-1", 100)));
        let StoreResponse::Replayed {
            applied_at_index, ..
        } = retry
        else {
            panic!("replayed: {retry:?}");
        };
        assert_eq!(applied_at_index, 11);
        assert_eq!(state, before);
        // k-0 was dropped: its retry is a new request, which the card's own rule refuses
        // (issued already): never applied twice, and the key stays free.
        let late = state.apply(50_001, &keyed("k-0", 'a', issue("card-0", 100)));
        assert!(
            matches!(late, StoreResponse::Refused(Refusal::GiftCardExists { .. })),
            "{late:?}"
        );
        assert_eq!(state, before);
        assert_eq!(state.gift_card_balance("card-0").map(|(b, _)| b), Some(100));
    }

    #[test]
    fn old_states_and_commands_still_load() {
        // A state serialised before `idempotent_writes` existed.
        let old = serde_json::to_value(StoreState::default()).expect("json");
        let mut old = old.as_object().cloned().expect("object");
        old.remove("idempotent_writes");
        let state: StoreState =
            serde_json::from_value(serde_json::Value::Object(old)).expect("loads");
        assert!(state.idempotent_writes.is_empty());
        let command = keyed("k", 'f', issue("c", 1));
        let back: StoreCommand =
            serde_json::from_slice(&serde_json::to_vec(&command).expect("json")).expect("back");
        assert_eq!(back, command);
    }

    /// Every kind of guarded write a device keys itself when its client sent no key (the
    /// node's `assigned_key`): its replay answers the first outcome even after the
    /// authorising operator was disabled — what a follower's resend after a leader's death
    /// relies on; unkeyed, the same second entry is refused — and the key with another
    /// command is refused, changing nothing.
    #[test]
    fn every_guarded_write_kind_replays_under_its_key_after_the_operator_is_disabled() {
        use crate::staff::Role;
        let gbp = Currency::from_code("GBP").expect("GBP");
        let mut state = crate::test_fixtures::state_with_operators(&[
            ("ada", Role::Admin),
            ("bob", Role::Admin),
            ("cas", Role::Cashier),
        ]);
        let by_bob = |command: StoreCommand| StoreCommand::Authorised {
            authorised_by: "bob".into(),
            command: Box::new(command),
        };
        let kinds = [
            by_bob(StoreCommand::RetireDevice {
                device_id: "till-3".into(),
                up_to_seq: None,
            }),
            by_bob(StoreCommand::SetExposureBudget {
                amount_minor: 10_000,
                currency: gbp,
            }),
            by_bob(StoreCommand::SetExposureAllotment {
                device_id: "till-2".into(),
                amount_minor: 500,
            }),
            by_bob(StoreCommand::RevokeCertificate {
                serial: "0a".into(),
                cut: None,
            }),
            by_bob(StoreCommand::DisableOperator {
                operator_id: "cas".into(),
                disabled_at_ms: 0,
            }),
            StoreCommand::SetOperatorAuthorised {
                authorised_by: Some("bob".into()),
                operator_id: "new-1".into(),
                name: "New".into(),
                role: Role::Cashier,
                pin_hash: crate::test_fixtures::PIN_HASH.into(),
            },
        ];
        // Keyed as the device keys them: inside the authorisation, or bare.
        let keyed_as_device = |n: usize, hash: char, command: &StoreCommand| match command {
            StoreCommand::Authorised {
                authorised_by,
                command,
            } => StoreCommand::Authorised {
                authorised_by: authorised_by.clone(),
                command: Box::new(keyed(
                    &format!("posmesh device till-1 {n}"),
                    hash,
                    (**command).clone(),
                )),
            },
            bare => keyed(&format!("posmesh device till-1 {n}"), hash, bare.clone()),
        };
        let mut first = Vec::new();
        for (n, command) in kinds.iter().enumerate() {
            let index = 10 + n as u64;
            match state.apply(index, &keyed_as_device(n, 'a', command)) {
                StoreResponse::Applied(outcome) => first.push((index, outcome)),
                other => panic!("{command}: {other:?}"),
            }
        }
        // The key with another request: refused, nothing changes.
        let applied = state.clone();
        for (n, (command, (applied_at_index, _))) in kinds.iter().zip(&first).enumerate() {
            assert_eq!(
                state.apply(20 + n as u64, &keyed_as_device(n, 'b', command)),
                StoreResponse::Refused(Refusal::IdempotencyKeyReused {
                    idempotency_key: format!("posmesh device till-1 {n}"),
                    applied_at_index: *applied_at_index,
                }),
                "{command}"
            );
        }
        assert_eq!(state, applied);
        let disabled = state.apply(
            29,
            &StoreCommand::Authorised {
                authorised_by: "ada".into(),
                command: Box::new(StoreCommand::DisableOperator {
                    operator_id: "bob".into(),
                    disabled_at_ms: 0,
                }),
            },
        );
        assert!(
            matches!(disabled, StoreResponse::Applied(_)),
            "{disabled:?}"
        );
        let before = state.clone();
        for (n, (command, (applied_at_index, outcome))) in kinds.iter().zip(first).enumerate() {
            let index = 30 + n as u64;
            // The resend: the first outcome, nothing applied.
            assert_eq!(
                state.apply(index, &keyed_as_device(n, 'a', command)),
                StoreResponse::Replayed {
                    applied_at_index,
                    outcome
                },
                "{command}"
            );
            // Unkeyed, the second entry would be refused: bob is disabled.
            assert!(
                matches!(state.apply(index, command), StoreResponse::Refused(_)),
                "{command}"
            );
            assert!(
                matches!(
                    state.apply(index, &keyed_as_device(n, 'b', command)),
                    StoreResponse::Refused(_)
                ),
                "{command}"
            );
            assert_eq!(state, before, "{command}: nothing changes");
        }
    }
}
