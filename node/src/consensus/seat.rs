//! A device's seat in the store's Raft group is tied to its Raft database: a device whose
//! Raft state (log and vote) was lost — its data directory wiped, restarted under its old
//! id and certificate — never votes or counts towards a commit under its old seat.
//!
//! Why: Raft's safety rests on every voter keeping its log and its vote on stable storage
//! (Raft paper Figure 2, §5.2: one vote per term; §5.4: a committed entry is on a majority,
//! so every future leader holds it). A voter that comes back empty may vote twice in one
//! term, and an entry committed with its copy may be left on a minority; Ongaro's thesis
//! (§4.2, servers that lose their disk) has such a server rejoin as a new server.
//!
//! How:
//! - Every Raft database gets a random **incarnation** when it is created
//!   ([`posmesh_consensus::LogStore::incarnation`]); a wipe makes a new one.
//! - The leader records a device's incarnation in the replicated state before it adds the
//!   device as a learner ([`posmesh_consensus::StoreCommand::RecordRaftIncarnation`]; a
//!   member of an older version is recorded the first time it answers, unless its log is
//!   empty). The seat is pinned to it.
//! - Every Raft call names the sender's incarnation and the one the sender has recorded
//!   for the receiver ([`super::wire::CallHeader`]); [`judge`] decides on the receiver,
//!   before the call touches the log or the vote:
//!   - the receiver is not the incarnation the sender expects, or already knows its seat
//!     lost, or is in `device_identity_conflict` (its journal's id has history it does
//!     not hold): it refuses AppendEntries, votes, snapshots and leader transfers for
//!     that seat ([`SeatVerdict::LostHere`]), and on the first such call it logs an ERROR,
//!     raises the lasting alert [`SEAT_LOST_CODE`] and shows it in `posmesh status`
//!     ([`SeatLoss`]);
//!   - the sender calls under another incarnation than its recorded seat: refused
//!     ([`SeatVerdict::SenderLost`]);
//!   - a vote asked of a device whose Raft log is empty is refused
//!     ([`SeatVerdict::NoVoteWithEmptyLog`]): a device only becomes a voter after it was
//!     sent the log, so an empty log asked for a vote is a lost one (this covers a
//!     candidate that has not applied the receiver's record yet).
//! - A refused caller learns the device is lost ([`super::wire::RaftReply::SeatLost`]);
//!   the leader raises [`super::lost_member::MEMBER_LOST_CODE`] naming it, no longer
//!   counts it, and takes it out of the group ([`super::lost_member`]).
//!
//! What a manager does: remove the device (`posmesh store remove-device <id>`, which
//! retires it) and enrol the till again under a new id (README, replacing a till).

use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// Code of the alert, the status line and the log line on a device that lost its Raft
/// state.
pub const SEAT_LOST_CODE: &str = "raft_state_lost";

/// What a Raft call is, as far as seats care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatRpc {
    /// AppendEntries, a snapshot chunk or a leader transfer: the receiver's seat takes
    /// part in replication.
    Replication,
    /// A vote or pre-vote asked of the receiver.
    Vote,
    /// A forwarded write or read, a membership question: the receiver's seat is not used.
    Other,
}

/// What the receiver of a Raft call knows when it judges the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeatCheck {
    /// The receiver's Raft incarnation.
    pub own: u64,
    /// The receiver already knows its seat lost, or must not use it (identity conflict).
    pub own_seat_barred: bool,
    /// The incarnation the sender has recorded for the receiver, if it named one.
    pub to: Option<u64>,
    /// The sender's incarnation, if it named one.
    pub from: Option<u64>,
    /// The sender's seat as recorded in the state applied on the receiver, if any.
    pub sender_seat: Option<u64>,
    /// The receiver's Raft log is empty (no entry, no snapshot).
    pub empty_log: bool,
    /// What the call is.
    pub rpc: SeatRpc,
}

/// The receiver's decision on one call ([`judge`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatVerdict {
    /// Serve it.
    Accept,
    /// Refuse it: this device lost its Raft state for the seat the sender knows
    /// (`expected`: the other incarnation the sender has recorded), or must not use its
    /// seat (`expected: None`: a loss known already, or an identity conflict).
    LostHere {
        /// The seat's incarnation as the sender knows it.
        expected: Option<u64>,
    },
    /// Refuse it: the sender calls under another incarnation than its seat's.
    SenderLost {
        /// The sender's seat (recorded incarnation).
        seat: u64,
        /// The incarnation it calls as.
        calling_as: u64,
    },
    /// Refuse the vote: a device with an empty Raft log never votes.
    NoVoteWithEmptyLog,
}

/// Judges one call (see the module docs). Pure.
pub fn judge(check: &SeatCheck) -> SeatVerdict {
    if let (Some(seat), Some(calling_as)) = (check.sender_seat, check.from) {
        if seat != calling_as {
            return SeatVerdict::SenderLost { seat, calling_as };
        }
    }
    if check.rpc == SeatRpc::Other {
        return SeatVerdict::Accept;
    }
    if let Some(expected) = check.to {
        if expected != check.own {
            return SeatVerdict::LostHere {
                expected: Some(expected),
            };
        }
    }
    if check.own_seat_barred {
        // Its own incarnation, or none named: nothing new learned about the state here.
        return SeatVerdict::LostHere { expected: None };
    }
    if check.rpc == SeatRpc::Vote && check.empty_log {
        return SeatVerdict::NoVoteWithEmptyLog;
    }
    SeatVerdict::Accept
}

/// This device's Raft state lost, as it learned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatLoss {
    /// This device.
    pub device_id: String,
    /// Its Raft database's incarnation now.
    pub incarnation: u64,
    /// The incarnation its seat is recorded under, if the peer said.
    pub seat: Option<u64>,
    /// How it was learned (`a call from till-1`, `refused by till-2`).
    pub learned_from: String,
}

impl std::fmt::Display for SeatLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seat = self
            .seat
            .map_or_else(|| "another one".to_owned(), |s| format!("{s:016x}"));
        write!(
            f,
            "{} lost its Raft state (its Raft database is incarnation {:016x}, the store's \
             Raft group knows its seat as incarnation {seat}; {}): it refuses every Raft call \
             for that seat, so it never votes or counts towards a commit with a lost log. \
             On another device run `posmesh store remove-device {}`, then enrol this till \
             as a new device with a new id (`posmesh ca issue … --device <new id>`, an empty \
             data directory)",
            self.device_id, self.incarnation, self.learned_from, self.device_id
        )
    }
}

/// Told once, when this device learns its Raft state was lost (raises the alert).
pub type SeatLossListener = Arc<dyn Fn(&SeatLoss) + Send + Sync>;

/// Whether this device learned its Raft state was lost, recorded once.
#[derive(Default)]
pub struct SeatLossNotice {
    loss: OnceLock<SeatLoss>,
    listener: OnceLock<SeatLossListener>,
}

impl SeatLossNotice {
    /// Sets who is told of the loss (once).
    pub fn on_lost(&self, listener: SeatLossListener) {
        let _ = self.listener.set(listener);
    }

    /// Records the loss: the first time it is logged at ERROR and passed to the listener;
    /// later records change nothing. True when this was the first.
    pub fn record(&self, loss: SeatLoss) -> bool {
        if self.loss.set(loss).is_err() {
            return false;
        }
        if let Some(loss) = self.loss.get() {
            tracing::error!(code = SEAT_LOST_CODE, device = %loss.device_id, "{loss}");
            if let Some(listener) = self.listener.get() {
                listener(loss);
            }
        }
        true
    }

    /// The loss, once learned.
    pub fn get(&self) -> Option<&SeatLoss> {
        self.loss.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn check(rpc: SeatRpc) -> SeatCheck {
        SeatCheck {
            own: 7,
            own_seat_barred: false,
            to: Some(7),
            from: Some(3),
            sender_seat: Some(3),
            empty_log: false,
            rpc,
        }
    }

    #[test]
    fn a_call_between_known_incarnations_is_served() {
        for rpc in [SeatRpc::Replication, SeatRpc::Vote, SeatRpc::Other] {
            assert_eq!(judge(&check(rpc)), SeatVerdict::Accept);
        }
        // Nothing named (an older version, or a seat not recorded yet): served.
        let unnamed = SeatCheck {
            to: None,
            from: None,
            sender_seat: None,
            ..check(SeatRpc::Replication)
        };
        assert_eq!(judge(&unnamed), SeatVerdict::Accept);
    }

    #[test]
    fn a_receiver_of_another_incarnation_refuses_its_old_seat() {
        let wiped = SeatCheck {
            own: 8,
            ..check(SeatRpc::Replication)
        };
        assert_eq!(judge(&wiped), SeatVerdict::LostHere { expected: Some(7) });
        assert_eq!(
            judge(&SeatCheck {
                rpc: SeatRpc::Vote,
                ..wiped
            }),
            SeatVerdict::LostHere { expected: Some(7) }
        );
        // A forwarded write or a question does not use the seat.
        assert_eq!(
            judge(&SeatCheck {
                rpc: SeatRpc::Other,
                ..wiped
            }),
            SeatVerdict::Accept
        );
    }

    #[test]
    fn a_barred_seat_refuses_even_calls_that_name_nothing() {
        let barred = SeatCheck {
            own_seat_barred: true,
            to: None,
            ..check(SeatRpc::Vote)
        };
        assert_eq!(judge(&barred), SeatVerdict::LostHere { expected: None });
        // Its own incarnation named (an identity conflict with the Raft state intact).
        assert_eq!(
            judge(&SeatCheck {
                to: Some(7),
                ..barred
            }),
            SeatVerdict::LostHere { expected: None }
        );
        assert_eq!(
            judge(&SeatCheck {
                rpc: SeatRpc::Replication,
                ..barred
            }),
            SeatVerdict::LostHere { expected: None }
        );
    }

    #[test]
    fn a_sender_calling_under_another_incarnation_is_refused() {
        let impostor = SeatCheck {
            from: Some(4),
            ..check(SeatRpc::Other)
        };
        assert_eq!(
            judge(&impostor),
            SeatVerdict::SenderLost {
                seat: 3,
                calling_as: 4
            }
        );
    }

    #[test]
    fn an_empty_log_never_votes_but_takes_the_log() {
        let empty = SeatCheck {
            to: None,
            empty_log: true,
            ..check(SeatRpc::Vote)
        };
        assert_eq!(judge(&empty), SeatVerdict::NoVoteWithEmptyLog);
        assert_eq!(
            judge(&SeatCheck {
                rpc: SeatRpc::Replication,
                ..empty
            }),
            SeatVerdict::Accept,
            "a new learner is sent the log"
        );
    }

    #[test]
    fn the_first_loss_learned_is_kept_and_told_once() {
        let notice = SeatLossNotice::default();
        let told = Arc::new(Mutex::new(Vec::new()));
        let seen = told.clone();
        notice.on_lost(Arc::new(move |loss: &SeatLoss| {
            seen.lock().expect("lock").push(loss.learned_from.clone());
        }));
        let loss = |from: &str| SeatLoss {
            device_id: "till-3".into(),
            incarnation: 0xab,
            seat: Some(0xcd),
            learned_from: from.into(),
        };
        assert!(notice.record(loss("a call from till-1")));
        assert!(!notice.record(loss("refused by till-2")));
        assert_eq!(*told.lock().expect("lock"), vec!["a call from till-1"]);
        let text = notice.get().expect("recorded").to_string();
        for part in [
            "till-3 lost its Raft state",
            "00000000000000cd",
            "remove-device till-3",
            "new id",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }
}
