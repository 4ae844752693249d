//! [`ServiceAnnouncement`]: what a device says about itself in its mDNS TXT record
//! (RFC 6763 §6), and how that is parsed back.
//!
//! # TXT record, version 1
//! | key     | value                                              | example     |
//! | ------- | -------------------------------------------------- | ----------- |
//! | `pv`    | discovery protocol version, decimal                | `1`         |
//! | `chain` | chain id ([`crate::identity::validate_id`])        | `acme`      |
//! | `store` | store id                                           | `store-42`  |
//! | `dev`   | device id (also the instance name)                 | `till-1`    |
//! | `fp`    | SHA-256 of the device certificate, 64 lower-case hex digits | `9f86…` |
//! | `port`  | QUIC (UDP) port, decimal, 1–65535                  | `7400`      |
//!
//! Keys are matched case-insensitively and the first occurrence wins (RFC 6763 §6.4, as
//! mdns-sd decodes them); unknown keys are ignored so that version 1 can grow optional
//! keys. An announcement whose `pv` is not [`PROTOCOL_VERSION`] is refused before any
//! other key is read: a later version may change the schema.
//!
//! # Size
//! Every value is bounded (ids are DNS labels of at most 63 bytes), so the TXT record is
//! at most [`TXT_BYTES_MAX`] bytes and one announcement packet stays within mdns-sd's
//! default packet size of 1452 bytes (one Ethernet frame); see
//! [`ServiceAnnouncement::announce_packet_bytes_max`].
//!
//! The record is unauthenticated: see the [module docs](super) — a hint, mTLS decides.

use mdns_sd::{TxtProperties, TxtProperty};

use super::fingerprint::CertFingerprint;
use super::{PROTOCOL_VERSION, SERVICE_TYPE};
use crate::error::{MeshError, Result};
use crate::identity::{validate_id, IdError, PeerIdentity, Role, ID_BYTES_MAX};

/// TXT key of the protocol version.
pub const KEY_PROTOCOL_VERSION: &str = "pv";
/// TXT key of the chain id.
pub const KEY_CHAIN: &str = "chain";
/// TXT key of the store id.
pub const KEY_STORE: &str = "store";
/// TXT key of the device id.
pub const KEY_DEVICE: &str = "dev";
/// TXT key of the certificate fingerprint.
pub const KEY_FINGERPRINT: &str = "fp";
/// TXT key of the QUIC port.
pub const KEY_QUIC_PORT: &str = "port";

/// Upper bound of the encoded TXT RDATA in bytes. The worst case (three 63-byte ids,
/// five-digit port and version) is 292 bytes; the bound leaves room for a few optional
/// keys of later minor revisions.
pub const TXT_BYTES_MAX: usize = 400;

/// Addresses of one family on one interface that the packet budget allows for
/// ([`ServiceAnnouncement::announce_packet_bytes_max`]). mdns-sd announces per
/// interface and per family; more addresses still work (mdns-sd splits the message over
/// several packets), they just no longer fit in the first one.
pub const ANNOUNCE_ADDRS_BUDGET: usize = 4;

/// Longest suffix mdns-sd appends to a name on a conflict (RFC 6762 §9), e.g. ` (99)`.
const CONFLICT_SUFFIX_BYTES: usize = 5;

/// Why a TXT record is not a version-1 posmesh announcement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxtError {
    /// A required key is absent.
    #[error("TXT key {key:?} missing")]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// A required key is present without `=` (a boolean attribute, RFC 6763 §6.4).
    #[error("TXT key {key:?} has no value")]
    NoValue {
        /// The key.
        key: &'static str,
    },
    /// A value is not UTF-8.
    #[error("TXT key {key:?}: value is not UTF-8")]
    NotUtf8 {
        /// The key.
        key: &'static str,
    },
    /// A number (`pv`, `port`) is not 1–5 decimal digits without sign or leading zero,
    /// or exceeds 65535.
    #[error("TXT key {key:?}: {value:?} is not a decimal number in 0..=65535")]
    BadNumber {
        /// The key.
        key: &'static str,
        /// The value as received.
        value: String,
    },
    /// The protocol version is not the one we speak.
    #[error("unsupported discovery protocol version {version} (we speak {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The announced version.
        version: u16,
    },
    /// An id (`chain`, `store`, `dev`) is not a valid DNS label.
    #[error("TXT key {key:?}: invalid id {value:?}: {error}")]
    InvalidId {
        /// The key.
        key: &'static str,
        /// The value as received.
        value: String,
        /// Why it is not an id.
        error: IdError,
    },
    /// The fingerprint is not 64 lower-case hex digits.
    #[error("TXT key \"fp\": {why}")]
    BadFingerprint {
        /// What is wrong with it.
        why: &'static str,
    },
    /// The QUIC port is 0.
    #[error("TXT key \"port\": port 0")]
    PortZero,
}

/// The content of a device's TXT record: who it is and where its QUIC endpoint listens.
///
/// Invariant: the ids are valid DNS labels, `quic_port` is not 0, the encoded TXT fits in
/// [`TXT_BYTES_MAX`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAnnouncement {
    chain_id: String,
    store_id: String,
    device_id: String,
    fingerprint: CertFingerprint,
    quic_port: u16,
}

impl ServiceAnnouncement {
    /// The announcement of `identity` (a device) whose certificate has `fingerprint` and
    /// whose QUIC endpoint listens on `quic_port`.
    ///
    /// # Errors
    /// [`MeshError::Settings`] for a cloud identity (the cloud is not on a store LAN) or
    /// port 0.
    pub fn new(
        identity: &PeerIdentity,
        fingerprint: CertFingerprint,
        quic_port: u16,
    ) -> Result<Self> {
        let store_id = match (identity.role(), identity.store_id()) {
            (Role::Device, Some(store)) => store.to_owned(),
            _ => {
                return Err(MeshError::Settings(
                    "mDNS announcements are for devices; the cloud is not on a store LAN",
                ))
            }
        };
        if quic_port == 0 {
            return Err(MeshError::Settings("QUIC port 0 cannot be announced"));
        }
        let announcement = Self {
            chain_id: identity.chain_id().to_owned(),
            store_id,
            device_id: identity.device_id().to_owned(),
            fingerprint,
            quic_port,
        };
        assert!(announcement.txt_wire_bytes().len() <= TXT_BYTES_MAX);
        Ok(announcement)
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The store id.
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// The device id, also the DNS-SD instance name.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The SHA-256 fingerprint of the device certificate.
    pub fn fingerprint(&self) -> CertFingerprint {
        self.fingerprint
    }

    /// The QUIC (UDP) port.
    pub fn quic_port(&self) -> u16 {
        self.quic_port
    }

    /// The DNS-SD instance name: the device id.
    pub fn instance_name(&self) -> &str {
        &self.device_id
    }

    /// The full service instance name, `<device>._posmesh._udp.local.` (device ids hold
    /// no dots, so nothing needs escaping).
    pub fn instance_fullname(&self) -> String {
        format!("{}.{SERVICE_TYPE}", self.device_id)
    }

    /// The TXT properties in the order of the module docs' table, ready for
    /// `mdns_sd::ServiceInfo::new`.
    pub fn to_txt_properties(&self) -> Vec<TxtProperty> {
        self.txt_pairs()
            .into_iter()
            .map(|(key, value)| TxtProperty::from((key, value)))
            .collect()
    }

    fn txt_pairs(&self) -> [(&'static str, String); 6] {
        [
            (KEY_PROTOCOL_VERSION, PROTOCOL_VERSION.to_string()),
            (KEY_CHAIN, self.chain_id.clone()),
            (KEY_STORE, self.store_id.clone()),
            (KEY_DEVICE, self.device_id.clone()),
            (KEY_FINGERPRINT, self.fingerprint.to_hex()),
            (KEY_QUIC_PORT, self.quic_port.to_string()),
        ]
    }

    /// The TXT RDATA as it goes on the wire (RFC 6763 §6.1): each `key=value` string
    /// prefixed by its length byte. Every string is far below 255 bytes by construction.
    pub fn txt_wire_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(TXT_BYTES_MAX);
        for (key, value) in self.txt_pairs() {
            let entry_len = key.len() + 1 + value.len();
            debug_assert!(entry_len <= usize::from(u8::MAX));
            bytes.push(u8::try_from(entry_len).unwrap_or(u8::MAX));
            bytes.extend_from_slice(key.as_bytes());
            bytes.push(b'=');
            bytes.extend_from_slice(value.as_bytes());
        }
        bytes
    }

    /// An upper bound in bytes of one mDNS message that announces or answers for this
    /// service on one interface with `hostname` (e.g. `till-1.local.`), as mdns-sd 0.21.7
    /// builds it: header, PTR, SRV, TXT, an NSEC for the instance and one for the host,
    /// and [`ANNOUNCE_ADDRS_BUDGET`] AAAA records. mdns-sd writes every name with message
    /// compression (RFC 1035 §4.1.4): the bound counts each distinct name in full, with
    /// room for a conflict suffix, at its first occurrence and as a 2-byte pointer after
    /// that (shared suffixes such as `local.` make the real packet smaller still).
    pub fn announce_packet_bytes_max(&self, hostname: &str) -> usize {
        const HEADER: usize = 12;
        const RR_FIXED: usize = 10; // type, class, TTL, RDLENGTH (RFC 1035 §4.1.3)
        const SRV_FIXED: usize = 6; // priority, weight, port (RFC 2782)
        const NSEC_BITMAP_MAX: usize = 2 + 32; // one window block (RFC 4034 §4.1.2)
        const AAAA_RDATA: usize = 16;
        const POINTER: usize = 2;
        // Encoded name: one length byte per label plus the root byte (RFC 1035 §3.1);
        // for a dotted name ending in '.' that is its length plus one.
        let encoded = |name_len: usize| name_len + 1;
        let type_name = encoded(SERVICE_TYPE.len());
        let instance = encoded(self.instance_fullname().len() + CONFLICT_SUFFIX_BYTES);
        let host = encoded(hostname.len() + CONFLICT_SUFFIX_BYTES);
        // First occurrences: the type (PTR owner), the instance (PTR data), the host (SRV
        // target). Everything after is a pointer.
        let ptr = type_name + RR_FIXED + instance;
        let srv = POINTER + RR_FIXED + SRV_FIXED + host;
        let txt = POINTER + RR_FIXED + self.txt_wire_bytes().len();
        let nsec = 2 * (POINTER + RR_FIXED + POINTER + NSEC_BITMAP_MAX);
        let addrs = ANNOUNCE_ADDRS_BUDGET * (POINTER + RR_FIXED + AAAA_RDATA);
        HEADER + ptr + srv + txt + nsec + addrs
    }

    /// Parses a TXT record written by [`ServiceAnnouncement::to_txt_properties`].
    ///
    /// # Errors
    /// The first [`TxtError`] found, checking `pv` first, then `chain`, `store`, `dev`,
    /// `fp`, `port`.
    pub fn from_txt(txt: &TxtProperties) -> Result<Self, TxtError> {
        let version = parse_number(KEY_PROTOCOL_VERSION, value(txt, KEY_PROTOCOL_VERSION)?)?;
        if version != PROTOCOL_VERSION {
            return Err(TxtError::UnsupportedVersion { version });
        }
        let chain_id = parse_id(KEY_CHAIN, value(txt, KEY_CHAIN)?)?;
        let store_id = parse_id(KEY_STORE, value(txt, KEY_STORE)?)?;
        let device_id = parse_id(KEY_DEVICE, value(txt, KEY_DEVICE)?)?;
        let fingerprint = CertFingerprint::from_hex(value(txt, KEY_FINGERPRINT)?)
            .map_err(|why| TxtError::BadFingerprint { why })?;
        let quic_port = parse_number(KEY_QUIC_PORT, value(txt, KEY_QUIC_PORT)?)?;
        if quic_port == 0 {
            return Err(TxtError::PortZero);
        }
        let announcement = Self {
            chain_id,
            store_id,
            device_id,
            fingerprint,
            quic_port,
        };
        debug_assert!(announcement.txt_wire_bytes().len() <= TXT_BYTES_MAX);
        Ok(announcement)
    }
}

fn value<'t>(txt: &'t TxtProperties, key: &'static str) -> Result<&'t str, TxtError> {
    let property = txt.get(key).ok_or(TxtError::Missing { key })?;
    let bytes = property.val().ok_or(TxtError::NoValue { key })?;
    std::str::from_utf8(bytes).map_err(|_| TxtError::NotUtf8 { key })
}

fn parse_id(key: &'static str, value: &str) -> Result<String, TxtError> {
    validate_id(value).map_err(|error| TxtError::InvalidId {
        key,
        value: truncated(value),
        error,
    })?;
    Ok(value.to_owned())
}

/// 1–5 ASCII digits, no sign, no leading zero (except "0"), at most 65535.
fn parse_number(key: &'static str, value: &str) -> Result<u16, TxtError> {
    let bad = || TxtError::BadNumber {
        key,
        value: truncated(value),
    };
    let canonical = !value.is_empty()
        && value.len() <= 5
        && value.bytes().all(|b| b.is_ascii_digit())
        && !(value.len() > 1 && value.starts_with('0'));
    if !canonical {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// A received value kept in an error, cut to an id's length so that errors (and logs)
/// stay small whatever a peer sends.
fn truncated(value: &str) -> String {
    value.chars().take(ID_BYTES_MAX + 1).collect()
}

#[cfg(test)]
mod tests {
    use mdns_sd::IntoTxtProperties;

    use super::*;

    fn till() -> ServiceAnnouncement {
        let identity = PeerIdentity::new_device("acme", "store-42", "till-1").expect("identity");
        ServiceAnnouncement::new(&identity, CertFingerprint::of_der(b"cert"), 7400)
            .expect("announcement")
    }

    fn txt(pairs: &[(&str, &str)]) -> TxtProperties {
        pairs.into_txt_properties()
    }

    /// The announcement's TXT pairs with `key` replaced by `value` (or dropped if None).
    fn with(key: &str, value: Option<&str>) -> TxtProperties {
        let a = till();
        let mut props: Vec<TxtProperty> = Vec::new();
        for (k, v) in a.txt_pairs() {
            if k != key {
                props.push(TxtProperty::from((k, v)));
            } else if let Some(v) = value {
                props.push(TxtProperty::from((k, v)));
            }
        }
        props.into_txt_properties()
    }

    #[test]
    fn round_trip_through_properties_and_wire() -> Result<(), TxtError> {
        let a = till();
        let props = a.to_txt_properties().into_txt_properties();
        assert_eq!(ServiceAnnouncement::from_txt(&props)?, a);
        // Through mdns-sd's own TXT decoder, from the bytes we would put on the wire.
        let wire = a.txt_wire_bytes();
        let decoded = TxtProperties::from(wire.as_slice());
        assert_eq!(decoded.get_property_val_str("pv"), Some("1"));
        assert_eq!(ServiceAnnouncement::from_txt(&decoded)?, a);
        assert_eq!(a.instance_fullname(), "till-1._posmesh._udp.local.");
        Ok(())
    }

    #[test]
    fn round_trip_through_service_info() -> Result<(), Box<dyn std::error::Error>> {
        // mdns-sd's ServiceInfo (pure, no daemon) validates keys and encodes the record.
        let a = till();
        let info = mdns_sd::ServiceInfo::new(
            SERVICE_TYPE,
            a.instance_name(),
            "till-1.local.",
            "192.0.2.1",
            a.quic_port(),
            a.to_txt_properties(),
        )?;
        assert_eq!(info.get_fullname(), a.instance_fullname());
        let resolved = info.as_resolved_service();
        assert_eq!(ServiceAnnouncement::from_txt(&resolved.txt_properties)?, a);
        Ok(())
    }

    #[test]
    fn unknown_keys_ignored_and_keys_case_insensitive() -> Result<(), TxtError> {
        let a = till();
        let mut props = vec![
            TxtProperty::from(("future", "x")),
            TxtProperty::from("flag"),
        ];
        for (k, v) in a.txt_pairs() {
            props.push(TxtProperty::from((k.to_uppercase(), v)));
        }
        assert_eq!(
            ServiceAnnouncement::from_txt(&props.into_txt_properties())?,
            a
        );
        Ok(())
    }

    #[test]
    fn missing_and_valueless_keys_refused() {
        for key in [
            KEY_PROTOCOL_VERSION,
            KEY_CHAIN,
            KEY_STORE,
            KEY_DEVICE,
            KEY_FINGERPRINT,
            KEY_QUIC_PORT,
        ] {
            assert_eq!(
                ServiceAnnouncement::from_txt(&with(key, None)),
                Err(TxtError::Missing { key }),
                "{key}"
            );
            let mut props: Vec<TxtProperty> = till()
                .txt_pairs()
                .into_iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| TxtProperty::from((k, v)))
                .collect();
            props.insert(0, TxtProperty::from(key));
            assert_eq!(
                ServiceAnnouncement::from_txt(&props.into_txt_properties()),
                Err(TxtError::NoValue { key }),
                "{key}"
            );
        }
        assert_eq!(
            ServiceAnnouncement::from_txt(&txt(&[])),
            Err(TxtError::Missing { key: "pv" })
        );
    }

    #[test]
    fn malformed_values_refused_precisely() {
        let bad_id = |key: &'static str, value: &str, error| TxtError::InvalidId {
            key,
            value: value.to_owned(),
            error,
        };
        let bad_number = |key: &'static str, value: &str| TxtError::BadNumber {
            key,
            value: value.to_owned(),
        };
        let long = "a".repeat(64);
        let cases: Vec<(&str, &str, TxtError)> = vec![
            ("pv", "2", TxtError::UnsupportedVersion { version: 2 }),
            ("pv", "0", TxtError::UnsupportedVersion { version: 0 }),
            ("pv", "", bad_number("pv", "")),
            ("pv", "01", bad_number("pv", "01")),
            ("pv", "+1", bad_number("pv", "+1")),
            ("pv", " 1", bad_number("pv", " 1")),
            ("pv", "1.0", bad_number("pv", "1.0")),
            ("pv", "65536", bad_number("pv", "65536")),
            ("pv", "999999", bad_number("pv", "999999")),
            ("chain", "", bad_id("chain", "", IdError::Empty)),
            (
                "store",
                "Store-42",
                bad_id(
                    "store",
                    "Store-42",
                    IdError::BadCharacter { ch: 'S', index: 0 },
                ),
            ),
            (
                "dev",
                "till.1",
                bad_id("dev", "till.1", IdError::BadCharacter { ch: '.', index: 4 }),
            ),
            ("dev", "-t", bad_id("dev", "-t", IdError::HyphenAtEdge)),
            (
                "dev",
                &long,
                bad_id("dev", &long, IdError::TooLong { len_bytes: 64 }),
            ),
            (
                "fp",
                "abc",
                TxtError::BadFingerprint {
                    why: "not 64 hex digits",
                },
            ),
            ("port", "0", TxtError::PortZero),
            ("port", "70000", bad_number("port", "70000")),
            ("port", "-1", bad_number("port", "-1")),
            ("port", "http", bad_number("port", "http")),
        ];
        for (key, value, want) in cases {
            assert_eq!(
                ServiceAnnouncement::from_txt(&with(key, Some(value))),
                Err(want),
                "{key}={value:?}"
            );
        }
    }

    #[test]
    fn unsupported_version_checked_before_the_schema() {
        // A v2 record may look entirely different: we say "version", not "missing key".
        assert_eq!(
            ServiceAnnouncement::from_txt(&txt(&[("pv", "2"), ("whatever", "x")])),
            Err(TxtError::UnsupportedVersion { version: 2 })
        );
    }

    #[test]
    fn non_utf8_value_refused() {
        let mut props: Vec<TxtProperty> = till()
            .txt_pairs()
            .into_iter()
            .filter(|(k, _)| *k != "dev")
            .map(|(k, v)| TxtProperty::from((k, v)))
            .collect();
        props.push(TxtProperty::from(("dev", [0xffu8, 0xfe].as_slice())));
        assert_eq!(
            ServiceAnnouncement::from_txt(&props.into_txt_properties()),
            Err(TxtError::NotUtf8 { key: "dev" })
        );
    }

    #[test]
    fn huge_value_is_truncated_in_the_error() {
        let huge = "x".repeat(200);
        match ServiceAnnouncement::from_txt(&with("chain", Some(&huge))) {
            Err(TxtError::InvalidId { value, .. }) => assert_eq!(value.len(), ID_BYTES_MAX + 1),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn size_bounds_hold_for_the_largest_announcement() -> Result<(), Box<dyn std::error::Error>> {
        let id = "a".repeat(ID_BYTES_MAX);
        let identity = PeerIdentity::new_device(&id, &id[..62], &id[..61])?;
        let a =
            ServiceAnnouncement::new(&identity, CertFingerprint::from_bytes([0xff; 32]), 65535)?;
        let wire = a.txt_wire_bytes();
        assert!(wire.len() <= TXT_BYTES_MAX, "TXT {} bytes", wire.len());
        assert!(wire.len() <= 292);
        // The longest hostname we accept: one 63-byte label under .local.
        let hostname = format!("{id}.local.");
        let packet = a.announce_packet_bytes_max(&hostname);
        assert!(
            packet <= mdns_sd::MAX_PKT_DEFAULT,
            "announcement packet bound {packet} > {}",
            mdns_sd::MAX_PKT_DEFAULT
        );
        assert_eq!(mdns_sd::MAX_PKT_DEFAULT, 1452);
        // Even the TXT record alone, with its owner name uncompressed, fits with room.
        assert!(a.instance_fullname().len() + 1 + 10 + wire.len() < mdns_sd::MAX_PKT_DEFAULT / 2);
        // Every single TXT string is below the 255-byte limit of RFC 6763 §6.1.
        let decoded = TxtProperties::from(wire.as_slice());
        assert_eq!(ServiceAnnouncement::from_txt(&decoded)?, a);
        Ok(())
    }

    #[test]
    fn cloud_and_port_zero_refused() -> Result<()> {
        let cloud = PeerIdentity::new_cloud("acme", "hq")?;
        let fp = CertFingerprint::of_der(b"c");
        assert!(matches!(
            ServiceAnnouncement::new(&cloud, fp, 7400),
            Err(MeshError::Settings(_))
        ));
        let dev = PeerIdentity::new_device("acme", "s", "d")?;
        assert!(matches!(
            ServiceAnnouncement::new(&dev, fp, 0),
            Err(MeshError::Settings(_))
        ));
        Ok(())
    }
}
