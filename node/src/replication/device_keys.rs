//! [`DeviceKeys`]: the chain-head verifying keys of the store's devices, learnt from
//! verified key attestations.

use crate::clock::wall_clock_ms;
use posmesh_mesh::tls::{AcceptPolicy, AttestedKey, ChainTrust, KeyAttestation};
use posmesh_mesh::Role;
use posmesh_proto::mesh::v1 as wire;
use posmesh_sync::chain_head::PUBLIC_KEY_LEN;
use posmesh_sync::replication::{judge_key, KeyClaim, KeyConflict, KeyVerdict, SigningKeys};
use rustls::pki_types::UnixTime;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

/// A key attestation that passed [`DeviceKeys::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The device (from the verified certificate).
    pub device_id: String,
    /// The incarnation the key belongs to.
    pub device_incarnation: u64,
    /// The Ed25519 public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// The attestation as received (relayed unchanged, stored).
    pub attestation: wire::KeyAttestation,
}

impl VerifiedKey {
    /// The incarnation and key, as [`judge_key`] compares them.
    pub fn claim(&self) -> KeyClaim {
        KeyClaim {
            incarnation: self.device_incarnation,
            public_key: self.public_key,
        }
    }
}

/// Verifies a key attestation as received on the wire, now: the certificate against `trust`
/// (chain, expiry, CRL) and `policy`, the role (a device), then the certificate's signature
/// over the Ed25519 key. Used by peers ([`DeviceKeys::verify`]) and by the chain's cloud.
///
/// # Errors
/// Why it was refused, as text for the log or the refusal: a key that is not 32 bytes, a
/// certificate or signature that does not verify, a certificate of another role.
pub fn verify_device_attestation(
    trust: &ChainTrust,
    policy: &AcceptPolicy,
    attestation: &wire::KeyAttestation,
) -> Result<AttestedKey, String> {
    let public_key: [u8; PUBLIC_KEY_LEN] = attestation
        .signing_public_key
        .as_slice()
        .try_into()
        .map_err(|_| "the signing key is not 32 bytes".to_owned())?;
    let checked = KeyAttestation {
        cert_der: attestation.cert_der.clone(),
        device_incarnation: attestation.device_incarnation,
        signing_public_key: public_key,
        signature: attestation.signature.clone(),
    };
    let now = UnixTime::since_unix_epoch(Duration::from_millis(wall_clock_ms()));
    let attested = checked
        .verify(trust, policy, now)
        .map_err(|e| e.to_string())?;
    if attested.identity.role() != Role::Device {
        return Err(format!("{} is not a device", attested.identity));
    }
    Ok(attested)
}

/// What [`DeviceKeys::offer`] did with a verified key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// A device not known before: now pinned (relay and store it).
    Adopted,
    /// The same key was known already.
    Known,
    /// Another key of an older incarnation replaced a pinned key that verified no entry
    /// held here (relay and store it; report the conflict).
    Replaced(KeyConflict),
    /// Refused: another key for a device whose pinned key stays (report the conflict;
    /// neither store nor relay it).
    Conflict(KeyConflict),
    /// A claim to this node's own device: not taken (the service judges it).
    Ignored,
}

/// The directory behind [`SigningKeys`]: device id → its pinned key
/// ([`posmesh_sync::replication::key_pinning`]: the first verified key, never replaced once
/// it verifies entries held here; no key rotation — a new key is a new device id). Keys
/// come only from attestations verified against the chain CA, CRL and the accept policy
/// (never from the batches they verify), so a relay cannot forge them.
pub struct DeviceKeys {
    local_device: String,
    trust: Arc<ChainTrust>,
    policy: AcceptPolicy,
    keys: RwLock<BTreeMap<String, VerifiedKey>>,
}

impl DeviceKeys {
    /// A directory holding only this node's own key (`own`, already known valid).
    pub fn new(
        local_device: &str,
        trust: Arc<ChainTrust>,
        policy: AcceptPolicy,
        own: VerifiedKey,
    ) -> Self {
        assert_eq!(own.device_id, local_device, "own key of another device");
        Self {
            local_device: local_device.to_owned(),
            trust,
            policy,
            keys: RwLock::new(BTreeMap::from([(local_device.to_owned(), own)])),
        }
    }

    /// Verifies an attestation now: certificate chain, expiry, CRL, policy (same store),
    /// role (a device), then the signature over the key.
    ///
    /// # Errors
    /// Why it was refused, as text for the log.
    pub fn verify(&self, attestation: &wire::KeyAttestation) -> Result<VerifiedKey, String> {
        let attested = verify_device_attestation(&self.trust, &self.policy, attestation)?;
        Ok(VerifiedKey {
            device_id: attested.identity.device_id().to_owned(),
            device_incarnation: attested.device_incarnation,
            public_key: attested.signing_public_key,
            attestation: attestation.clone(),
        })
    }

    /// Takes a verified key into the directory, for a device of which `entries_held`
    /// entries (its last seq) are held here ([`judge_key`], see [`Offer`]).
    pub fn offer(&self, key: VerifiedKey, entries_held: u64) -> Offer {
        if key.device_id == self.local_device {
            return Offer::Ignored;
        }
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let pinned = keys.get(&key.device_id).map(VerifiedKey::claim);
        match judge_key(pinned.as_ref(), entries_held, &key.claim()) {
            KeyVerdict::Known => Offer::Known,
            KeyVerdict::Refuse(conflict) => Offer::Conflict(conflict),
            KeyVerdict::Adopt => {
                keys.insert(key.device_id.clone(), key);
                Offer::Adopted
            }
            KeyVerdict::Replace(conflict) => {
                keys.insert(key.device_id.clone(), key);
                Offer::Replaced(conflict)
            }
        }
    }

    /// This node's own key.
    pub fn own(&self) -> Option<VerifiedKey> {
        self.read().get(&self.local_device).cloned()
    }

    /// Every known key's attestation, own first then by device id (sent to a new peer).
    pub fn attestations(&self) -> Vec<wire::KeyAttestation> {
        let keys = self.read();
        let own = keys.get(&self.local_device).map(|k| k.attestation.clone());
        own.into_iter()
            .chain(
                keys.values()
                    .filter(|k| k.device_id != self.local_device)
                    .map(|k| k.attestation.clone()),
            )
            .collect()
    }

    /// The device whose pinned attestation carries the certificate of serial `serial_hex`
    /// (lowercase hex, [`posmesh_mesh::tls::serial_hex_of_der`]), if any.
    pub fn device_of_serial(&self, serial_hex: &str) -> Option<String> {
        self.read()
            .values()
            .find(|key| {
                posmesh_mesh::tls::serial_hex_of_der(&key.attestation.cert_der).as_deref()
                    == Some(serial_hex)
            })
            .map(|key| key.device_id.clone())
    }

    /// The devices with a known key, in order.
    pub fn devices(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, VerifiedKey>> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SigningKeys for DeviceKeys {
    fn public_key(&self, device_id: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
        self.read().get(device_id).map(|k| k.public_key)
    }
}
