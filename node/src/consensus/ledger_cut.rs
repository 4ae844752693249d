//! The leader fills the ledger cut of a revocation or a retirement before it proposes it
//! ([`posmesh_consensus::ledger_cut`]): the device's position in its own chain, as the
//! leader's ledger holds it (its version-vector component). Every device that applies the
//! command then refuses the device's entries beyond it in ledger replication, and the
//! chain's cloud learns it through every uplink's `Hello` and refuses them too.
//!
//! A certificate serial is mapped to its device by what the leader has seen of the
//! certificate: its own, a connected peer's (the mesh connection's certificate), or the
//! certificate of a key attestation it pinned (attestations are relayed to every device,
//! so a device whose entries the leader holds is known). A serial it never saw gets no
//! cut: then only the mesh and the cloud refuse its connections.
//!
//! Only commands proposed here are filled (a follower forwards the command as its client
//! sent it); a cut already filled is kept.

use posmesh_consensus::{LedgerCut, StoreCommand};

/// What the leader reads from its ledger and key directory to fill a cut (the node's
/// replication service).
pub trait LedgerPositions: Send + Sync {
    /// The device whose pinned key attestation carries the certificate of serial
    /// `serial_hex` (lowercase hex), if any.
    fn device_of_serial(&self, serial_hex: &str) -> Option<String>;

    /// The last sequence number of `device_id`'s journal this device's ledger holds (its
    /// version-vector component; 0 when it holds none).
    fn held(&self, device_id: &str) -> u64;
}

/// `command` with its ledger cut filled: a [`StoreCommand::RevokeCertificate`] without a
/// cut whose serial `device_of_serial` maps to a device, and a
/// [`StoreCommand::RetireDevice`] without one, get the device's `held` position. Looks
/// inside [`StoreCommand::Authorised`] and [`StoreCommand::Idempotent`]; every other
/// command comes back unchanged.
pub fn fill(
    command: StoreCommand,
    device_of_serial: &dyn Fn(&str) -> Option<String>,
    held: &dyn Fn(&str) -> u64,
) -> StoreCommand {
    match command {
        StoreCommand::RevokeCertificate { serial, cut: None } => {
            let cut = device_of_serial(&serial).map(|device_id| LedgerCut {
                up_to_seq: held(&device_id),
                device_id,
            });
            StoreCommand::RevokeCertificate { serial, cut }
        }
        StoreCommand::RetireDevice {
            device_id,
            up_to_seq: None,
        } => StoreCommand::RetireDevice {
            up_to_seq: Some(held(&device_id)),
            device_id,
        },
        StoreCommand::Authorised {
            authorised_by,
            command,
        } => StoreCommand::Authorised {
            authorised_by,
            command: Box::new(fill(*command, device_of_serial, held)),
        },
        StoreCommand::Idempotent {
            idempotency_key,
            request_hash,
            command,
        } => StoreCommand::Idempotent {
            idempotency_key,
            request_hash,
            command: Box::new(fill(*command, device_of_serial, held)),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of_serial(serial: &str) -> Option<String> {
        (serial == "0c").then(|| "till-3".to_owned())
    }

    fn held(device: &str) -> u64 {
        if device == "till-3" {
            12
        } else {
            0
        }
    }

    #[test]
    fn revocations_and_retirements_get_the_leaders_position_of_the_device() {
        let revoke = |serial: &str| StoreCommand::Authorised {
            authorised_by: "ada".into(),
            command: Box::new(StoreCommand::Idempotent {
                idempotency_key: "k".into(),
                request_hash: "h".into(),
                command: Box::new(StoreCommand::RevokeCertificate {
                    serial: serial.into(),
                    cut: None,
                }),
            }),
        };
        let filled = fill(revoke("0c"), &of_serial, &held);
        let StoreCommand::Authorised { command, .. } = filled else {
            panic!("still authorised")
        };
        let StoreCommand::Idempotent { command, .. } = *command else {
            panic!("still idempotent")
        };
        assert_eq!(
            *command,
            StoreCommand::RevokeCertificate {
                serial: "0c".into(),
                cut: Some(LedgerCut {
                    device_id: "till-3".into(),
                    up_to_seq: 12
                })
            }
        );
        // A serial never seen here: no cut.
        assert_eq!(fill(revoke("0d"), &of_serial, &held), revoke("0d"));
        let retire = StoreCommand::RetireDevice {
            device_id: "till-2".into(),
            up_to_seq: None,
        };
        assert_eq!(
            fill(retire, &of_serial, &held),
            StoreCommand::RetireDevice {
                device_id: "till-2".into(),
                up_to_seq: Some(0)
            }
        );
        // A cut already filled (by the leader before a resend) is kept.
        let kept = StoreCommand::RetireDevice {
            device_id: "till-3".into(),
            up_to_seq: Some(5),
        };
        assert_eq!(fill(kept.clone(), &of_serial, &held), kept);
    }
}
