//! [`RefusalReason`] and [`RefusalCounters`]: why a peer was refused, and how often.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a peer was refused. Every refusal is logged (`tracing::warn`) and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalReason {
    /// The certificate is not issued by our chain's CA and names another chain (the name
    /// is an unverified claim, used only to explain the refusal), or is issued by our CA
    /// for another chain.
    OtherChain,
    /// The peer is a device of another store of our chain.
    OtherStore,
    /// The certificate's serial is in the chain CA's CRL (RFC 5280 §5).
    Revoked,
    /// The certificate's notAfter is in the past (RFC 5280 §4.1.2.5).
    Expired,
    /// The certificate's notBefore is in the future.
    NotYetValid,
    /// The certificate does not chain to our CA.
    UnknownIssuer,
    /// The certificate is self-signed (its own issuer) and is not our CA.
    SelfSigned,
    /// The certificate chains to our CA but names no posmesh identity.
    NoIdentity,
    /// The peer's role is not accepted by the policy (e.g. a cloud dialing the cloud).
    WrongRole,
    /// The certificate cannot be parsed (bad DER).
    Malformed,
    /// Any other failure of path validation (bad signature, unsupported algorithm, wrong
    /// key usage, a CA used as end entity, an unusable CRL…).
    Invalid,
    /// The peer does not speak ALPN `posmesh/1` (RFC 7301; TLS alert 120).
    WrongAlpn,
}

impl RefusalReason {
    /// Every reason, in counter order.
    pub const ALL: [RefusalReason; 12] = [
        Self::OtherChain,
        Self::OtherStore,
        Self::Revoked,
        Self::Expired,
        Self::NotYetValid,
        Self::UnknownIssuer,
        Self::SelfSigned,
        Self::NoIdentity,
        Self::WrongRole,
        Self::Malformed,
        Self::Invalid,
        Self::WrongAlpn,
    ];

    /// A stable snake_case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OtherChain => "other_chain",
            Self::OtherStore => "other_store",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::UnknownIssuer => "unknown_issuer",
            Self::SelfSigned => "self_signed",
            Self::NoIdentity => "no_identity",
            Self::WrongRole => "wrong_role",
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
            Self::WrongAlpn => "wrong_alpn",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Refusals per reason since the endpoint started; shared by the verifiers and the
/// transport, read by the management API and metrics.
#[derive(Debug, Default)]
pub struct RefusalCounters {
    counts: [AtomicU64; RefusalReason::ALL.len()],
}

impl RefusalCounters {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one refusal for `reason`.
    pub fn record(&self, reason: RefusalReason) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals counted for `reason`.
    pub fn get(&self, reason: RefusalReason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }

    /// Refusals counted for every reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Every reason with its count (zeros included), keyed by [`RefusalReason::as_str`].
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        RefusalReason::ALL
            .iter()
            .map(|r| (r.as_str(), self.get(*r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_reason() {
        let counters = RefusalCounters::new();
        counters.record(RefusalReason::Revoked);
        counters.record(RefusalReason::Revoked);
        counters.record(RefusalReason::WrongAlpn);
        assert_eq!(counters.get(RefusalReason::Revoked), 2);
        assert_eq!(counters.get(RefusalReason::WrongAlpn), 1);
        assert_eq!(counters.get(RefusalReason::Expired), 0);
        assert_eq!(counters.total(), 3);
        assert_eq!(counters.snapshot().len(), RefusalReason::ALL.len());
    }

    #[test]
    fn indices_are_distinct() {
        for (i, r) in RefusalReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
