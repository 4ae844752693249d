//! Rules versions: which rules [`StoreState::apply`](crate::StoreState::apply) follows,
//! switched on at a committed log index so that every replica switches at the same entry.
//!
//! # Why
//! A Raft state machine must be a deterministic function of the log (Raft paper §5.3,
//! State Machine Safety; §8). When a new posmesh changes what `apply` computes for a
//! command that already exists, two things break that: a replica of the new version
//! replaying an old log (a restart, a follower catching up from entry 1) would compute
//! another state than the replicas that applied it under the old rules; and during a
//! rolling upgrade of a store's tills an old and a new binary apply the same entries side
//! by side. So a rule change is never switched on by the binary: it is switched on by an
//! entry in the log, [`StoreCommand::AdoptRules`](crate::StoreCommand::AdoptRules), and
//! `apply` follows the rules of [`StoreState::rules_version`](crate::StoreState) — the
//! last version adopted at or before the entry. (CockroachDB's cluster versions and
//! etcd's cluster version work the same way: a feature that changes replicated behaviour
//! is gated on a version the cluster agreed on, never on the running binary.)
//!
//! # Who adopts a version, and when
//! - A store founded by this binary (`posmesh init`, `posmesh device --raft-bootstrap`)
//!   adopts [`RULES_VERSION_LATEST`] in its first entry after the founding membership:
//!   its log never holds an entry applied under older rules.
//! - In an existing store the Raft leader proposes [`RULES_VERSION_LATEST`] once every
//!   member of the current membership (voters and learners) has told it that it supports
//!   that version (the node's `IncarnationOf` answer; a node of an older version says
//!   nothing, which counts as version 1 only). Until then the store keeps its rules, and
//!   `posmesh status` shows which member it waits for.
//! - Why every member: a node of an older version cannot decode an entry it does not know
//!   (JSON with an unknown `type` is refused by serde): an AppendEntries call carrying one
//!   is answered "undecodable request" and that member never receives another entry; and
//!   it would apply later entries under its own rules anyway. For the same reason, once a
//!   version is adopted the leader adds no device as a learner that does not support it.
//! - Versions never go back ([`crate::Refusal::RulesVersionNotNewer`]), and a version this
//!   binary does not know is refused ([`crate::Refusal::RulesVersionUnknown`]): it cannot
//!   follow rules it does not have. A downgrade of a device below the store's adopted
//!   version is not supported (its own log holds an entry it cannot read).
//!
//! # The versions
//! - **1** — the rules before session 10 of the project (the state of a log or snapshot
//!   that never adopted a version, [`RULES_VERSION_ORIGINAL`]):
//!   - `SetExposureAllotment` is given to any device id, retired or not;
//!   - every applied `Idempotent` write's key is kept for good;
//!   - `RevokeCertificate` takes any serial 1–128 bytes without control characters;
//!   - the ledger cut in `RevokeCertificate { cut }` / `RetireDevice { up_to_seq }` is
//!     ignored (versions before it did not have the fields, and ignored them when sent).
//! - **2** — adds, in this order of the session-10 changes:
//!   - an allotment for a retired device is refused (`device_retired`): a retired device
//!     is never a member again;
//!   - only the last [`IDEMPOTENT_KEYS_MAX`](crate::idempotency::IDEMPOTENT_KEYS_MAX)
//!     keyed writes are kept, the oldest dropped at apply (see [`crate::idempotency`]);
//!   - a serial must be canonical ([`crate::serial::check_canonical`]; `00` applies);
//!   - a revocation's or retirement's ledger cut is recorded ([`crate::ledger_cut`]).
//!
//! A change to `apply` that changes an existing command's outcome adds a version here (and
//! gates the change on it); a new command needs none (no old log holds it), but it makes
//! the entry undecodable for older nodes, so it is proposed only once the version that
//! introduced it is adopted, or only where no older node can be a member.

/// The rules of a log or snapshot that never adopted a version: before session 10.
pub const RULES_VERSION_ORIGINAL: u32 = 1;

/// The newest rules this binary knows and follows once adopted.
pub const RULES_VERSION_LATEST: u32 = 2;

/// Whether this binary can follow rules `version`.
pub fn known(version: u32) -> bool {
    (RULES_VERSION_ORIGINAL..=RULES_VERSION_LATEST).contains(&version)
}

/// The serde default of [`StoreState::rules_version`](crate::StoreState): a state
/// serialised before rules versions existed follows version 1.
pub(crate) fn original() -> u32 {
    RULES_VERSION_ORIGINAL
}

/// Whether `version` is the original (serialised states leave it out, so a state that
/// never adopted a version keeps the bytes it had before the field existed).
pub(crate) fn is_original(version: &u32) -> bool {
    *version == RULES_VERSION_ORIGINAL
}

/// One line for `posmesh status`: the store's rules version, and when this binary knows a
/// newer one, that it is available and what the store waits for (`waiting`: the member
/// the leader waits for, if this device leads and found one).
pub fn describe(adopted: u32, waiting: Option<&str>) -> String {
    if adopted >= RULES_VERSION_LATEST {
        return format!("rules version {adopted}");
    }
    match waiting {
        Some(device) => format!(
            "rules version {adopted} ({RULES_VERSION_LATEST} available, waiting for \
             {device} to upgrade)"
        ),
        None => format!(
            "rules version {adopted} ({RULES_VERSION_LATEST} available: the leader adopts it \
             once every member runs a posmesh that supports it)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Outcome, Refusal, StoreCommand, StoreResponse};
    use crate::idempotency::IDEMPOTENT_KEYS_MAX;
    use crate::state::StoreState;
    use posmesh_domain::money::Currency;

    fn adopt(version: u32) -> StoreCommand {
        StoreCommand::AdoptRules { version }
    }

    fn gbp() -> Currency {
        Currency::from_code("GBP").expect("GBP")
    }

    fn allot(device: &str) -> StoreCommand {
        StoreCommand::SetExposureAllotment {
            device_id: device.into(),
            amount_minor: 1_000,
        }
    }

    fn revoke(serial: &str, cut: Option<(&str, u64)>) -> StoreCommand {
        StoreCommand::RevokeCertificate {
            serial: serial.into(),
            cut: cut.map(|(device, up_to_seq)| crate::LedgerCut {
                device_id: device.into(),
                up_to_seq,
            }),
        }
    }

    fn keyed_issue(i: usize) -> StoreCommand {
        StoreCommand::Idempotent {
            idempotency_key: format!("k-{i}"),
            request_hash: "a".repeat(64),
            command: Box::new(StoreCommand::IssueGiftCard {
                card_id: format!("card-{i}"),
                amount_minor: 100,
                currency: gbp(),
            }),
        }
    }

    /// A log holding every kind of entry whose outcome rules 2 changed: an allotment for a
    /// retired device, a serial in upper case, a revocation and a retirement with ledger
    /// cuts, and more keyed writes than rules 2 keep. `first`: entries before it (e.g. an
    /// `AdoptRules`).
    fn log_with(first: Vec<StoreCommand>) -> Vec<StoreCommand> {
        let mut log = first;
        log.extend([
            StoreCommand::SetExposureBudget {
                amount_minor: 10_000,
                currency: gbp(),
            },
            StoreCommand::RetireDevice {
                device_id: "till-3".into(),
                up_to_seq: Some(41),
            },
            allot("till-3"),
            revoke("0C", None),
            revoke("00", None),
            revoke("0d", Some(("till-4", 7))),
        ]);
        log.extend((0..IDEMPOTENT_KEYS_MAX + 3).map(keyed_issue));
        log
    }

    /// Applies `log` from index 1 on: the state and every response.
    fn replay(log: &[StoreCommand]) -> (StoreState, Vec<StoreResponse>) {
        let mut state = StoreState::default();
        let responses = log
            .iter()
            .enumerate()
            .map(|(i, command)| state.apply(i as u64 + 1, command))
            .collect();
        (state, responses)
    }

    #[test]
    fn a_log_that_never_adopted_a_version_replays_with_the_rules_it_was_written_under() {
        let log = log_with(Vec::new());
        let (state, responses) = replay(&log);
        assert_eq!(state.rules_version, 1);
        // Rules 1: the retired device got its allotment, `0C` was revoked as written, the
        // cuts were not recorded, and every key is kept.
        assert!(
            matches!(
                responses[2],
                StoreResponse::Applied(Outcome::ExposureAllotmentSet { .. })
            ),
            "{:?}",
            responses[2]
        );
        assert_eq!(state.exposure.allotments.get("till-3"), Some(&1_000));
        assert!(state.is_revoked_at("0C", 4) && state.is_revoked_at("00", 5));
        assert!(state.ledger_cuts.is_empty(), "{:?}", state.ledger_cuts);
        assert_eq!(state.idempotent_writes.len(), IDEMPOTENT_KEYS_MAX + 3);
        assert!(state.idempotent_writes.get("k-0").is_some());
        // A state at rules 1 serialises as before the field existed.
        let json = serde_json::to_value(&state).expect("json");
        assert!(
            json.get("rules_version").is_none(),
            "rules_version serialised"
        );
    }

    #[test]
    fn the_same_log_after_adopting_rules_2_gets_the_new_outcomes() {
        let (state, responses) = replay(&log_with(vec![adopt(2)]));
        assert_eq!(
            responses[0],
            StoreResponse::Applied(Outcome::RulesAdopted { version: 2 })
        );
        assert_eq!(state.rules_version, 2);
        assert_eq!(
            responses[3],
            StoreResponse::Refused(Refusal::DeviceRetired {
                device_id: "till-3".into(),
                retired_at_index: 3
            })
        );
        assert!(state.exposure.allotments.is_empty());
        assert!(
            matches!(&responses[4], StoreResponse::Refused(Refusal::InvalidId { field, .. }) if field == "serial"),
            "{:?}",
            responses[4]
        );
        assert!(!state.is_revoked_at("0C", 9));
        // `00` of an old log still applies under rules 2.
        assert!(state.is_revoked_at("00", 6));
        assert_eq!(state.ledger_cut("till-3"), Some(41));
        assert_eq!(state.ledger_cut("till-4"), Some(7));
        assert_eq!(state.idempotent_writes.len(), IDEMPOTENT_KEYS_MAX);
        assert!(state.idempotent_writes.get("k-2").is_none());
        assert!(state.idempotent_writes.get("k-3").is_some());
    }

    #[test]
    fn rules_switch_at_the_entry_that_adopts_them_and_every_replica_switches_there() {
        // The switch in the middle of a log: entries before it keep their old outcomes,
        // entries after it get the new ones.
        let log = vec![
            StoreCommand::SetExposureBudget {
                amount_minor: 10_000,
                currency: gbp(),
            },
            StoreCommand::RetireDevice {
                device_id: "till-3".into(),
                up_to_seq: None,
            },
            allot("till-3"),
            revoke("0C", None),
            adopt(2),
            allot("till-3"),
            revoke("0E", None),
            StoreCommand::RetireDevice {
                device_id: "till-5".into(),
                up_to_seq: Some(3),
            },
        ];
        let (through, responses) = replay(&log);
        assert!(matches!(responses[2], StoreResponse::Applied(_)));
        assert!(matches!(responses[3], StoreResponse::Applied(_)));
        assert!(matches!(
            responses[5],
            StoreResponse::Refused(Refusal::DeviceRetired { .. })
        ));
        assert!(matches!(
            responses[6],
            StoreResponse::Refused(Refusal::InvalidId { .. })
        ));
        assert_eq!(through.ledger_cut("till-5"), Some(3));
        // Another replica restarts from a snapshot taken before, and one after, the
        // switch (the state serialised and read back), then applies the rest: the same
        // state and the same bytes as the one that applied the whole log.
        for split in [3, 5] {
            let mut replica = StoreState::default();
            for (i, command) in log[..split].iter().enumerate() {
                replica.apply(i as u64 + 1, command);
            }
            let bytes = serde_json::to_vec(&replica).expect("json");
            let mut replica: StoreState = serde_json::from_slice(&bytes).expect("reads back");
            let rest: Vec<StoreResponse> = log[split..]
                .iter()
                .enumerate()
                .map(|(i, command)| replica.apply((split + i) as u64 + 1, command))
                .collect();
            assert_eq!(rest, responses[split..], "split {split}");
            assert_eq!(replica, through, "split {split}");
            assert_eq!(
                serde_json::to_vec(&replica).expect("json"),
                serde_json::to_vec(&through).expect("json"),
                "split {split}"
            );
        }
        // A state of an older version (no field) reads back as rules 1.
        let mut old = serde_json::to_value(&through).expect("json");
        old.as_object_mut().expect("object").remove("rules_version");
        let old: StoreState = serde_json::from_value(old).expect("old state");
        assert_eq!(old.rules_version, 1);
    }

    #[test]
    fn rules_never_go_back_and_unknown_versions_are_refused() {
        let mut state = StoreState::default();
        for unknown in [0, RULES_VERSION_LATEST + 1, u32::MAX] {
            assert_eq!(
                state.apply(1, &adopt(unknown)),
                StoreResponse::Refused(Refusal::RulesVersionUnknown {
                    version: unknown,
                    known_from: 1,
                    known_up_to: RULES_VERSION_LATEST
                })
            );
            assert_eq!(state, StoreState::default(), "a refusal changes nothing");
        }
        // The current version again: answered, unchanged.
        assert_eq!(
            state.apply(2, &adopt(1)),
            StoreResponse::Applied(Outcome::RulesAdopted { version: 1 })
        );
        assert_eq!(state, StoreState::default());
        assert!(matches!(
            state.apply(3, &adopt(2)),
            StoreResponse::Applied(_)
        ));
        let adopted = state.clone();
        assert_eq!(
            state.apply(4, &adopt(1)),
            StoreResponse::Refused(Refusal::RulesVersionNotNewer {
                current: 2,
                requested: 1
            })
        );
        assert_eq!(
            state.apply(5, &adopt(2)),
            StoreResponse::Applied(Outcome::RulesAdopted { version: 2 })
        );
        assert_eq!(state, adopted);
        // The pre-check and the role rules let it through (not an operator's command).
        assert_eq!(state.precheck(&adopt(2)), Ok(()));
        assert!(crate::roles::needed(&state.staff, None, &adopt(2)).is_none());
    }

    #[test]
    fn a_command_an_older_binary_does_not_know_does_not_decode() {
        // What a node of an older version does with an `AdoptRules` entry: serde refuses
        // an unknown `type`, so the whole AppendEntries call carrying it is undecodable
        // there (why the leader waits for every member's support).
        let unknown = r#"{"type":"adopt_rules_of_the_future","version":3}"#;
        let error = serde_json::from_str::<StoreCommand>(unknown).expect_err("refused");
        assert!(error.to_string().contains("unknown variant"), "{error}");
        let adopt_json = serde_json::to_string(&adopt(2)).expect("json");
        assert_eq!(adopt_json, r#"{"type":"adopt_rules","version":2}"#);
    }

    #[test]
    fn versions_known_and_described() {
        assert!(!known(0));
        assert!(known(1) && known(RULES_VERSION_LATEST));
        assert!(!known(RULES_VERSION_LATEST + 1));
        assert_eq!(
            describe(RULES_VERSION_LATEST, None),
            format!("rules version {RULES_VERSION_LATEST}")
        );
        assert_eq!(
            describe(1, Some("till-3")),
            "rules version 1 (2 available, waiting for till-3 to upgrade)"
        );
        assert!(describe(1, None).contains("2 available"));
    }
}
