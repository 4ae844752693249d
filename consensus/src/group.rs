//! The identity of a store's Raft group, and the gate every peer's Raft RPC passes (sans-IO).
//!
//! `posmesh init` run on two devices of one store founds two Raft groups. Without an
//! identity they cannot tell each other apart: each one's leader adds the other device as a
//! learner, its AppendEntries and votes truncate the other's log and bump its term, and the
//! two fight for leadership for ever. So a group gets a [`GroupIdentity`] when it is founded
//! (random id, founding device, time); every Raft RPC carries the sender's identity; and
//! [`admit`] decides, before the RPC touches the log or the vote:
//! - same group, or a sender that names none (a node of an older version): accept;
//! - this node is in no group yet (a fresh device waiting to join) and the RPC comes from a
//!   leader (AppendEntries, snapshot): adopt the sender's group, then accept;
//! - another group: refuse with a [`GroupConflict`] that names the peer, its group and what
//!   a manager must do.
//!
//! A forced membership (`posmesh store force-membership`) keeps the group's identity; a
//! store restored from the cloud is a new group (its old devices must not rejoin it).

use serde::{Deserialize, Serialize};

/// Who founded a Raft group, and when: the same on every member for the group's whole life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupIdentity {
    /// 128 random bits, 32 lowercase hex digits.
    pub group_id: String,
    /// The device the group was founded on (`posmesh init`, `--raft-bootstrap` or a restore).
    pub founded_by: String,
    /// When, ms since the Unix epoch (the founding device's wall clock).
    pub founded_at_ms: i64,
}

impl GroupIdentity {
    /// A new group founded on `device` at `now_ms`, its id from `random` (the caller's RNG:
    /// this module reads no clock and no randomness).
    pub fn found(device: &str, now_ms: i64, random: u128) -> Self {
        Self {
            group_id: format!("{random:032x}"),
            founded_by: device.to_owned(),
            founded_at_ms: now_ms,
        }
    }

    /// `group 1a2b3c4d… founded on till-1 at 2026-11-30T10:04:49Z`.
    pub fn describe(&self) -> String {
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(self.founded_at_ms)
            .map_or_else(
                || format!("{} ms", self.founded_at_ms),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        let short: String = self.group_id.chars().take(8).collect();
        format!("group {short}… founded on {} at {at}", self.founded_by)
    }
}

/// What a Raft RPC is, as far as the gate cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcKind {
    /// AppendEntries or a snapshot chunk: only a leader sends these.
    FromLeader,
    /// Votes, pre-votes, leader transfers, forwarded writes and reads.
    Other,
}

/// The gate's decision on one RPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Serve it.
    Accept,
    /// Record this group as this node's own (durably), then serve it.
    Adopt(GroupIdentity),
    /// Refuse it: it must not touch the log or the vote.
    Refuse(GroupConflict),
}

/// A peer of the same store that belongs to another Raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error(
    "{peer} belongs to another Raft group ({}) than this device ({}): the store was \
     initialised twice. Run `posmesh init` on one device only; stop the other group's \
     devices, wipe their data directories and enrol them again under new device ids so \
     they join this group",
    peer_group.describe(),
    local_group.describe()
)]
pub struct GroupConflict {
    /// The peer's device id.
    pub peer: String,
    /// The peer's group.
    pub peer_group: GroupIdentity,
    /// This node's group.
    pub local_group: GroupIdentity,
}

impl GroupConflict {
    /// The machine-readable code of the refusal (in replies, alerts and logs).
    pub const CODE: &'static str = "raft_group_mismatch";
}

/// Decides whether the RPC `kind` sent by `peer` as a member of `remote` may reach a node
/// whose own group is `local`. Pure: the same inputs give the same answer; it changes
/// nothing (an [`Admission::Adopt`] is for the caller to persist).
pub fn admit(
    local: Option<&GroupIdentity>,
    peer: &str,
    remote: Option<&GroupIdentity>,
    kind: RpcKind,
) -> Admission {
    match (local, remote) {
        (_, None) => Admission::Accept,
        (Some(local), Some(remote)) if local == remote => Admission::Accept,
        (Some(local), Some(remote)) => Admission::Refuse(GroupConflict {
            peer: peer.to_owned(),
            peer_group: remote.clone(),
            local_group: local.clone(),
        }),
        (None, Some(remote)) if kind == RpcKind::FromLeader => Admission::Adopt(remote.clone()),
        (None, Some(_)) => Admission::Accept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(device: &str, random: u128) -> GroupIdentity {
        GroupIdentity::found(device, 1_796_032_000_000, random)
    }

    #[test]
    fn another_groups_rpcs_are_refused_whatever_they_are() {
        let mine = group("till-1", 1);
        let theirs = group("till-2", 2);
        for kind in [RpcKind::FromLeader, RpcKind::Other] {
            let Admission::Refuse(conflict) = admit(Some(&mine), "till-2", Some(&theirs), kind)
            else {
                panic!("{kind:?} from another group admitted");
            };
            assert_eq!(conflict.peer, "till-2");
            assert_eq!(conflict.peer_group, theirs);
            assert_eq!(conflict.local_group, mine);
            let text = conflict.to_string();
            assert!(
                text.starts_with("till-2 belongs to another Raft group"),
                "{text}"
            );
            assert!(text.contains("founded on till-2 at 2026-"), "{text}");
            assert!(text.contains("founded on till-1"), "{text}");
            assert!(text.contains("`posmesh init` on one device only"), "{text}");
        }
    }

    #[test]
    fn same_group_differs_from_same_founder_with_another_id() {
        // Founded twice on one device (wiped in between): still two groups.
        let mine = group("till-1", 1);
        assert_eq!(
            admit(
                Some(&mine),
                "till-2",
                Some(&mine.clone()),
                RpcKind::FromLeader
            ),
            Admission::Accept
        );
        assert!(matches!(
            admit(
                Some(&mine),
                "till-2",
                Some(&group("till-1", 3)),
                RpcKind::Other
            ),
            Admission::Refuse(_)
        ));
    }

    #[test]
    fn a_fresh_device_adopts_its_leaders_group_only() {
        let theirs = group("till-1", 7);
        assert_eq!(
            admit(None, "till-1", Some(&theirs), RpcKind::FromLeader),
            Admission::Adopt(theirs.clone())
        );
        // A vote from a candidate does not make a fresh device a member of its group.
        assert_eq!(
            admit(None, "till-1", Some(&theirs), RpcKind::Other),
            Admission::Accept
        );
    }

    #[test]
    fn a_peer_without_an_identity_is_served() {
        let mine = group("till-1", 1);
        assert_eq!(
            admit(Some(&mine), "till-2", None, RpcKind::FromLeader),
            Admission::Accept
        );
        assert_eq!(
            admit(None, "till-2", None, RpcKind::FromLeader),
            Admission::Accept
        );
    }

    #[test]
    fn group_ids_are_32_hex_digits() {
        assert_eq!(group("d", 0xab).group_id.len(), 32);
        assert!(group("d", u128::MAX).group_id.chars().all(|c| c == 'f'));
    }
}
