//! Peer identities and how they are written into certificates.
//!
//! # Scheme
//! A node's identity travels in its X.509 certificate (RFC 5280) as a single DNS
//! `subjectAltName` (§4.2.1.6), so that rustls-webpki can verify the chain and list the name
//! without a general X.509 parser:
//!
//! | role   | DNS SAN                                      | example                              |
//! | ------ | -------------------------------------------- | ------------------------------------ |
//! | device | `<device>.<store>.device.<chain>.posmesh`    | `till-1.store-42.device.acme.posmesh` |
//! | cloud  | `<name>.cloud.<chain>.posmesh`               | `hq.cloud.acme.posmesh`              |
//!
//! Every id is one DNS label (RFC 1035 §2.3.1, lower case only): 1–63 characters of
//! `[a-z0-9-]`, not starting or ending with `-`. Because no label may contain a dot, a name
//! parses back to exactly one identity. The whole name stays below the 253-byte DNS limit
//! for ids of realistic length; [`PeerIdentity::new_device`] checks it.

use std::fmt;

use crate::error::{MeshError, Result};

/// The top-level domain of every posmesh identity name.
pub const IDENTITY_TLD: &str = "posmesh";

/// Longest DNS label in bytes (RFC 1035 §2.3.4).
pub const ID_BYTES_MAX: usize = 63;

/// Longest DNS name in bytes (RFC 1035 §2.3.4, without the trailing dot).
pub const DNS_NAME_BYTES_MAX: usize = 253;

/// What kind of node holds a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A POS device (till, handheld, kiosk) of one store.
    Device,
    /// The chain's cloud peer, which serves every store of the chain.
    Cloud,
}

/// Why an id is not a valid DNS label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    #[error("empty")]
    Empty,
    /// The id is longer than [`ID_BYTES_MAX`] bytes.
    #[error("{len_bytes} bytes, more than 63")]
    TooLong {
        /// The id's length in bytes.
        len_bytes: usize,
    },
    /// The id holds a character outside `[a-z0-9-]`.
    #[error("character {ch:?} at byte {index} is not one of a-z, 0-9, '-'")]
    BadCharacter {
        /// The offending character.
        ch: char,
        /// Its byte offset.
        index: usize,
    },
    /// The id starts or ends with `-`.
    #[error("starts or ends with '-'")]
    HyphenAtEdge,
}

/// Checks that `id` is one lower-case DNS label: 1–63 bytes of `[a-z0-9-]`, no `-` at
/// either end.
///
/// # Errors
/// The first rule the id breaks, as an [`IdError`].
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > ID_BYTES_MAX {
        return Err(IdError::TooLong {
            len_bytes: id.len(),
        });
    }
    if let Some((index, ch)) = id
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(IdError::BadCharacter { ch, index });
    }
    if id.starts_with('-') || id.ends_with('-') {
        return Err(IdError::HyphenAtEdge);
    }
    Ok(())
}

fn checked(kind: &'static str, id: &str) -> Result<String> {
    validate_id(id).map_err(|error| MeshError::InvalidId {
        kind,
        id: id.to_owned(),
        error,
    })?;
    Ok(id.to_owned())
}

/// Who a node is: its chain, its store (devices only), its role and its id.
///
/// Invariant: every id is a valid label ([`validate_id`]), `store_id` is `Some` exactly for
/// [`Role::Device`], and [`PeerIdentity::to_dns_name`] fits in [`DNS_NAME_BYTES_MAX`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PeerIdentity {
    chain_id: String,
    store_id: Option<String>,
    role: Role,
    device_id: String,
}

impl PeerIdentity {
    /// A device of `store_id` in `chain_id`.
    ///
    /// # Errors
    /// [`MeshError::InvalidId`] when an id is not a DNS label, [`MeshError::NotAnIdentity`]
    /// when the whole name would exceed 253 bytes.
    pub fn new_device(chain_id: &str, store_id: &str, device_id: &str) -> Result<Self> {
        let identity = Self {
            chain_id: checked("chain", chain_id)?,
            store_id: Some(checked("store", store_id)?),
            role: Role::Device,
            device_id: checked("device", device_id)?,
        };
        identity.check_length()
    }

    /// The cloud peer `name` of `chain_id` (a chain may run several cloud replicas, each
    /// with its own name).
    ///
    /// # Errors
    /// As [`PeerIdentity::new_device`].
    pub fn new_cloud(chain_id: &str, name: &str) -> Result<Self> {
        let identity = Self {
            chain_id: checked("chain", chain_id)?,
            store_id: None,
            role: Role::Cloud,
            device_id: checked("cloud", name)?,
        };
        identity.check_length()
    }

    fn check_length(self) -> Result<Self> {
        let name = self.to_dns_name();
        if name.len() > DNS_NAME_BYTES_MAX {
            return Err(MeshError::NotAnIdentity {
                name,
                why: "longer than 253 bytes",
            });
        }
        Ok(self)
    }

    /// The chain (retailer) this node belongs to.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The store of a device; `None` for the cloud.
    pub fn store_id(&self) -> Option<&str> {
        self.store_id.as_deref()
    }

    /// Device or cloud.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The device id (for the cloud: the cloud node's name). Unique within the store
    /// (resp. the chain's cloud).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The DNS SAN that carries this identity (see the module docs).
    pub fn to_dns_name(&self) -> String {
        match &self.store_id {
            Some(store) => format!(
                "{}.{}.device.{}.{IDENTITY_TLD}",
                self.device_id, store, self.chain_id
            ),
            None => format!("{}.cloud.{}.{IDENTITY_TLD}", self.device_id, self.chain_id),
        }
    }

    /// Parses a DNS SAN written by [`PeerIdentity::to_dns_name`]. A trailing dot is not
    /// accepted; upper case is refused (names are issued lower case).
    ///
    /// # Errors
    /// [`MeshError::NotAnIdentity`] when the name does not follow the scheme,
    /// [`MeshError::InvalidId`] when a label is not a valid id.
    pub fn from_dns_name(name: &str) -> Result<Self> {
        let not = |why| MeshError::NotAnIdentity {
            name: name.to_owned(),
            why,
        };
        let labels: Vec<&str> = name.split('.').collect();
        match labels.as_slice() {
            [device, store, "device", chain, IDENTITY_TLD] => {
                Self::new_device(chain, store, device)
            }
            [cloud, "cloud", chain, IDENTITY_TLD] => Self::new_cloud(chain, cloud),
            [.., last] if *last != IDENTITY_TLD => Err(not("does not end in .posmesh")),
            _ => Err(not(
                "expected <device>.<store>.device.<chain>.posmesh or <name>.cloud.<chain>.posmesh",
            )),
        }
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_dns_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules_table() {
        let long = "a".repeat(64);
        let cases: &[(&str, Result<(), IdError>)] = &[
            ("a", Ok(())),
            ("till-01", Ok(())),
            ("0", Ok(())),
            (&long[..63], Ok(())),
            ("", Err(IdError::Empty)),
            (&long, Err(IdError::TooLong { len_bytes: 64 })),
            ("Till", Err(IdError::BadCharacter { ch: 'T', index: 0 })),
            ("a.b", Err(IdError::BadCharacter { ch: '.', index: 1 })),
            ("a_b", Err(IdError::BadCharacter { ch: '_', index: 1 })),
            ("é", Err(IdError::BadCharacter { ch: 'é', index: 0 })),
            ("-a", Err(IdError::HyphenAtEdge)),
            ("a-", Err(IdError::HyphenAtEdge)),
        ];
        for (id, want) in cases {
            assert_eq!(validate_id(id), *want, "id {id:?}");
        }
    }

    #[test]
    fn device_round_trip() -> Result<()> {
        let id = PeerIdentity::new_device("acme", "store-42", "till-1")?;
        assert_eq!(id.to_dns_name(), "till-1.store-42.device.acme.posmesh");
        assert_eq!(PeerIdentity::from_dns_name(&id.to_dns_name())?, id);
        assert_eq!(id.role(), Role::Device);
        assert_eq!(id.store_id(), Some("store-42"));
        Ok(())
    }

    #[test]
    fn cloud_round_trip() -> Result<()> {
        let id = PeerIdentity::new_cloud("acme", "hq")?;
        assert_eq!(id.to_dns_name(), "hq.cloud.acme.posmesh");
        assert_eq!(PeerIdentity::from_dns_name(&id.to_dns_name())?, id);
        assert_eq!(id.store_id(), None);
        Ok(())
    }

    #[test]
    fn bad_names_refused() {
        for name in [
            "",
            "posmesh",
            "a.b.device.c.posmesh.",
            "a.b.device.c.example",
            "a.b.c.d.posmesh",
            "a.cloud.posmesh",
            "A.b.device.c.posmesh",
            "-a.b.device.c.posmesh",
            "a.b.device.c.d.posmesh",
        ] {
            assert!(PeerIdentity::from_dns_name(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn invalid_id_names_the_field() {
        match PeerIdentity::new_device("acme", "Store", "t") {
            Err(MeshError::InvalidId { kind, .. }) => assert_eq!(kind, "store"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
