//! An AppendEntries call cut to fit one mesh frame (sans-IO).
//!
//! openraft sends up to `max_payload_entries` (300) entries per AppendEntries whatever
//! their size, and a call travels as one mesh frame
//! ([`posmesh_mesh::frame::FRAME_BYTES_MAX`], 4 MiB). A few large entries — catalogs
//! published from the chain's cloud, each up to [`posmesh_consensus::CATALOG_TOML_BYTES_MAX`]
//! — could make every AppendEntries to a lagging follower too large to send, and that
//! follower would never catch up. A call over [`APPEND_CALL_BYTES_MAX`] is cut to the
//! longest prefix of its entries that fits (at least one), and the follower's success is
//! reported to openraft as `PartialSuccess(last entry sent)`: openraft sends the rest in
//! the next call (its documented contract for `RaftNetworkV2::append_entries`).

use openraft::entry::RaftEntry;
use openraft::raft::AppendEntriesRequest;
use openraft::type_config::alias::{EntryOf, LogIdOf};
use posmesh_consensus::TypeConfig;

/// Bytes of one encoded AppendEntries call at most: a mesh frame less room for the
/// envelope (the Raft group's identity) and rounding.
pub const APPEND_CALL_BYTES_MAX: usize = posmesh_mesh::frame::FRAME_BYTES_MAX - 64 * 1024;

/// `rpc` with only the longest prefix of its entries that keeps the call within `budget`
/// bytes, given that the whole call encodes to `encoded_bytes`, and the log id of the last
/// entry kept — `None` when nothing was cut. At least one entry is kept (a single entry
/// over the budget is the proposer's to prevent; it then fails as a frame too large).
/// When entries are cut, `leader_commit` is capped at the last entry sent: a follower
/// commits only what this call proved it holds (Raft §5.3: commit index ≤ index of the
/// last new entry).
///
/// `entry_bytes` gives an entry's encoded size (its JSON in production).
pub fn fit_append(
    mut rpc: AppendEntriesRequest<TypeConfig>,
    encoded_bytes: usize,
    budget: usize,
    entry_bytes: impl Fn(&EntryOf<TypeConfig>) -> usize,
) -> (
    AppendEntriesRequest<TypeConfig>,
    Option<LogIdOf<TypeConfig>>,
) {
    if encoded_bytes <= budget || rpc.entries.len() <= 1 {
        return (rpc, None);
    }
    let sizes: Vec<usize> = rpc.entries.iter().map(&entry_bytes).collect();
    let rest = encoded_bytes.saturating_sub(sizes.iter().sum());
    let mut total = rest;
    let mut keep = 0;
    for size in &sizes {
        if keep > 0 && total + size > budget {
            break;
        }
        total += size;
        keep += 1;
    }
    if keep == rpc.entries.len() {
        return (rpc, None);
    }
    rpc.entries.truncate(keep);
    let last = rpc.entries.last().map(RaftEntry::log_id);
    if let Some(last) = &last {
        if rpc
            .leader_commit
            .as_ref()
            .is_some_and(|commit| commit > last)
        {
            rpc.leader_commit = Some(*last);
        }
    }
    debug_assert!(
        keep >= 1 && total <= budget.max(rest + sizes[0]),
        "a cut AppendEntries keeps its first entry and fits the budget"
    );
    (rpc, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::type_config::alias::{LeaderIdOf, VoteOf};
    use openraft::vote::{RaftLeaderId, RaftVote};

    type Entry = EntryOf<TypeConfig>;

    fn log_id(index: u64) -> LogIdOf<TypeConfig> {
        let leader = <LeaderIdOf<TypeConfig> as RaftLeaderId>::new(3, 1);
        LogIdOf::<TypeConfig>::new(leader.to_committed(), index)
    }

    fn request(entries: u64, commit: u64) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: VoteOf::<TypeConfig>::from_leader_id(
                <LeaderIdOf<TypeConfig> as RaftLeaderId>::new(3, 1),
                true,
            ),
            prev_log_id: Some(log_id(10)),
            entries: (11..11 + entries)
                .map(|i| Entry::new_blank(log_id(i)))
                .collect(),
            leader_commit: Some(log_id(commit)),
        }
    }

    /// Each entry "encodes" to 1,000 bytes; the rest of the call to 100.
    fn thousand(_: &Entry) -> usize {
        1_000
    }

    #[test]
    fn a_call_within_the_budget_is_sent_whole() {
        let (rpc, cut) = fit_append(request(5, 14), 5_100, 5_100, thousand);
        assert_eq!((rpc.entries.len(), cut), (5, None));
        assert_eq!(rpc.leader_commit, Some(log_id(14)));
    }

    #[test]
    fn a_call_over_the_budget_keeps_the_prefix_that_fits_and_caps_the_commit() {
        let (rpc, cut) = fit_append(request(5, 15), 5_100, 3_500, thousand);
        assert_eq!(rpc.entries.len(), 3);
        assert_eq!(cut, Some(log_id(13)));
        assert_eq!(rpc.prev_log_id, Some(log_id(10)));
        assert_eq!(
            rpc.leader_commit,
            Some(log_id(13)),
            "no commit beyond the last entry sent"
        );
        // A commit index already below the cut stays.
        let (rpc, _) = fit_append(request(5, 12), 5_100, 3_500, thousand);
        assert_eq!(rpc.leader_commit, Some(log_id(12)));
    }

    #[test]
    fn one_entry_over_the_budget_still_goes_alone() {
        let (rpc, cut) = fit_append(request(3, 13), 3_100, 500, thousand);
        assert_eq!((rpc.entries.len(), cut), (1, Some(log_id(11))));
        let (rpc, cut) = fit_append(request(1, 11), 1_100, 500, thousand);
        assert_eq!((rpc.entries.len(), cut), (1, None));
    }
}
