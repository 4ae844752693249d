//! An Idempotency-Key the device assigns to a guarded store-wide write its client sent
//! without one, before the write is first sent: every guarded write is then a keyed
//! write, whose second application is a replay of the first outcome
//! ([`posmesh_consensus::idempotency`]), so a follower may send it again to the next
//! leader when the answer was lost with a dead one ([`super::resend`]).
//!
//! Guarded: an operator's command ([`StoreCommand::Authorised`]), a change to the
//! operators ([`StoreCommand::SetOperatorAuthorised`]), and a command of the role matrix
//! ([`posmesh_consensus::roles::needed`]) proposed bare by a store in setup. Sales-path
//! redemptions (deduplicated by their own id), the cloud's catalog, Raft bookkeeping and
//! writes the client keyed already are left as they are.
//!
//! The key is `posmesh device <device id> <128 random bits, hex>`: unique store-wide (the
//! device id, and a random part that needs no counter surviving a restart) and never a
//! client's key — an `Idempotency-Key` header is visible ASCII without spaces
//! ([`crate::api::body::idempotency_key`]), this key has spaces. Its request hash is the
//! SHA-256 of the command's JSON, so the key can only ever replay this very command.
//!
//! Sans-IO: the random part is given by the caller.

use posmesh_consensus::staff::Staff;
use posmesh_consensus::{StoreCommand, StoreResponse};
use sha2::{Digest, Sha256};

/// How every device-assigned key begins (with a space: no client's key can).
pub const ASSIGNED_KEY_PREFIX: &str = "posmesh device ";

/// Whether `command` is a guarded write without an Idempotency-Key (see the module doc).
pub fn needs_key(command: &StoreCommand) -> bool {
    match command {
        StoreCommand::Idempotent { .. } => false,
        StoreCommand::Authorised { command, .. } => {
            !matches!(**command, StoreCommand::Idempotent { .. })
        }
        StoreCommand::SetOperatorAuthorised { .. } => true,
        bare => posmesh_consensus::roles::needed(&Staff::default(), None, bare).is_some(),
    }
}

/// The key device `device_id` assigns with the random part `nonce`.
pub fn key_for(device_id: &str, nonce: u128) -> String {
    format!("{ASSIGNED_KEY_PREFIX}{device_id} {nonce:032x}")
}

/// Whether `key` was assigned by a device (never a client's key).
pub fn is_assigned(key: &str) -> bool {
    key.starts_with(ASSIGNED_KEY_PREFIX)
}

/// `command` under a key of its own if it [`needs_key`] (an operator's command keyed
/// inside its [`StoreCommand::Authorised`], so the state machine answers a replay before
/// it checks the operator's role again), and whether it was keyed here; otherwise
/// `command` unchanged and `false`.
pub fn assign(device_id: &str, nonce: u128, command: StoreCommand) -> (StoreCommand, bool) {
    if !needs_key(&command) {
        return (command, false);
    }
    let key = key_for(device_id, nonce);
    let keyed = match command {
        StoreCommand::Authorised {
            authorised_by,
            command,
        } => StoreCommand::Authorised {
            authorised_by,
            command: Box::new(keyed(key, *command)),
        },
        bare => keyed(key, bare),
    };
    (keyed, true)
}

/// `command` under `idempotency_key`, with [`request_hash`] of `command` as the request
/// hash: a key this device assigned, or a client's key for a device removal (whose
/// request is the retirement alone: the device in the path).
pub fn keyed(idempotency_key: String, command: StoreCommand) -> StoreCommand {
    StoreCommand::Idempotent {
        idempotency_key,
        request_hash: request_hash(&command),
        command: Box::new(command),
    }
}

/// The request hash a command is [`keyed`] with: SHA-256 of its JSON (after a domain
/// tag), lowercase hex — the same command, the same hash on every device.
pub fn request_hash(command: &StoreCommand) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"posmesh device-assigned\0");
    // A command of plain data always serialises; an empty body would still hash
    // consistently, and the key is this command's alone anyway.
    hasher.update(serde_json::to_vec(command).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// The answer to a write keyed here, as the client (who sent no key) expects it: a replay
/// of the key — the write was resent after its answer was lost, and had committed — is
/// the committed outcome at the index it was applied at, as the first send would have
/// answered.
pub fn first_answer((index, response): (u64, StoreResponse)) -> (u64, StoreResponse) {
    match response {
        StoreResponse::Replayed {
            applied_at_index,
            outcome,
        } => (applied_at_index, StoreResponse::Applied(outcome)),
        other => (index, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posmesh_consensus::staff::Role;
    use posmesh_domain::money::Currency;

    fn gbp() -> Currency {
        Currency::from_code("GBP").expect("GBP")
    }

    fn by(command: StoreCommand) -> StoreCommand {
        StoreCommand::Authorised {
            authorised_by: "mgr-1".into(),
            command: Box::new(command),
        }
    }

    #[test]
    fn guarded_writes_are_keyed_inside_their_authorisation() {
        let retire = StoreCommand::RetireDevice {
            device_id: "till-3".into(),
            up_to_seq: None,
        };
        let (keyed, assigned) = assign("till-2", 0xab, by(retire.clone()));
        assert!(assigned);
        let StoreCommand::Authorised {
            authorised_by,
            command,
        } = keyed
        else {
            panic!("still authorised: {keyed:?}");
        };
        assert_eq!(authorised_by, "mgr-1");
        let StoreCommand::Idempotent {
            idempotency_key,
            request_hash,
            command,
        } = *command
        else {
            panic!("keyed inside: {command:?}");
        };
        assert_eq!(
            idempotency_key,
            "posmesh device till-2 000000000000000000000000000000ab"
        );
        assert!(is_assigned(&idempotency_key));
        assert_eq!(request_hash.len(), 64);
        assert_eq!(*command, retire);
        // Another nonce, another key; the same command, the same hash.
        let (again, _) = assign("till-2", 0xac, by(retire.clone()));
        let StoreCommand::Authorised { command, .. } = again else {
            panic!("{again:?}");
        };
        let StoreCommand::Idempotent {
            idempotency_key: other_key,
            request_hash: same_hash,
            ..
        } = *command
        else {
            panic!("{command:?}");
        };
        assert_ne!(other_key, idempotency_key);
        assert_eq!(same_hash, request_hash);
    }

    #[test]
    fn an_operator_change_and_setup_commands_are_keyed_bare() {
        for command in [
            StoreCommand::SetOperatorAuthorised {
                authorised_by: Some("adm-1".into()),
                operator_id: "csh-1".into(),
                name: "Cass".into(),
                role: Role::Cashier,
                pin_hash: "h".into(),
            },
            StoreCommand::RevokeCertificate {
                serial: "0a".into(),
                cut: None,
            },
            StoreCommand::SetExposureBudget {
                amount_minor: 10_000,
                currency: gbp(),
            },
        ] {
            let (keyed, assigned) = assign("till-1", 7, command.clone());
            assert!(assigned, "{command:?}");
            assert!(
                matches!(&keyed, StoreCommand::Idempotent { command: inner, .. } if **inner == command),
                "{keyed:?}"
            );
        }
    }

    #[test]
    fn keyed_writes_and_unguarded_ones_are_left_as_they_are() {
        let client_keyed = by(StoreCommand::Idempotent {
            idempotency_key: "k-1".into(),
            request_hash: "a".repeat(64),
            command: Box::new(StoreCommand::CloseDay {
                business_date: "2026-01-02".into(),
                version_vector: std::collections::BTreeMap::new(),
            }),
        });
        for command in [
            client_keyed,
            StoreCommand::RedeemGiftCard {
                card_id: "GC-1".into(),
                amount_minor: 5,
                redemption_id: "r-1".into(),
            },
            StoreCommand::PublishCatalog {
                version: 2,
                effective_at_ms: 0,
                catalog_toml: String::new(),
            },
            StoreCommand::RecordRaftIncarnation {
                device_id: "till-1".into(),
                incarnation: 9,
            },
            StoreCommand::SetOperator {
                operator_id: "adm-1".into(),
                name: "Ada".into(),
                role: Role::Admin,
                pin_hash: "h".into(),
            },
        ] {
            assert_eq!(assign("till-1", 1, command.clone()), (command, false));
        }
    }

    #[test]
    fn a_replay_of_an_assigned_key_answers_as_the_first_send() {
        let outcome = posmesh_consensus::Outcome::DeviceRetired {
            device_id: "till-3".into(),
            retired_at_index: 31,
        };
        assert_eq!(
            first_answer((
                40,
                StoreResponse::Replayed {
                    applied_at_index: 31,
                    outcome: outcome.clone()
                }
            )),
            (31, StoreResponse::Applied(outcome.clone()))
        );
        assert_eq!(
            first_answer((31, StoreResponse::Applied(outcome.clone()))),
            (31, StoreResponse::Applied(outcome))
        );
    }

    #[test]
    fn no_client_key_can_be_an_assigned_one() {
        let mut headers = axum::http::HeaderMap::new();
        let assigned = key_for("till-1", 1);
        headers.insert(
            crate::api::body::IDEMPOTENCY_KEY_HEADER,
            axum::http::HeaderValue::from_str(&assigned).expect("a header value"),
        );
        assert!(crate::api::body::idempotency_key(&headers).is_err());
        assert!(
            assigned.len() <= posmesh_consensus::state::MAX_ID_BYTES,
            "fits the state machine's id rule even for the longest device id"
        );
        let longest = key_for(&"d".repeat(63), u128::MAX);
        assert!(longest.len() <= posmesh_consensus::state::MAX_ID_BYTES);
    }
}
