//! [`LogCache`]: the most recent entries of the Raft log in memory, so that the leader's
//! replication to each follower and the state machine's apply take an entry just appended
//! without reading it back from RocksDB and decoding its JSON again (on a leader at 256
//! clients those reads were ~9 % of the process's CPU: one per follower and one for the
//! apply, for every entry). The same idea as etcd/raft's in-memory "unstable" log and its
//! entry cache.
//!
//! Invariant: when not empty, the cache holds a contiguous run of entries that ends at the
//! log's last entry (a suffix of the log). Appends extend it, or restart it when they do not
//! follow its last entry; a truncation cuts it back; a purge drops its front; it never holds
//! more than its capacity (the oldest entries go first). A read is served from it only when
//! the cache holds the whole range; otherwise the caller reads the store.

use crate::TypeConfig;
use openraft::entry::RaftEntry;
use openraft::type_config::alias::EntryOf;
use std::collections::VecDeque;

/// Entries kept by the node's log cache: a few seconds of a busy store's writes (~500 bytes
/// each in memory, so ~2 MB), far more than a follower in step is behind.
pub const LOG_CACHE_ENTRIES: usize = 4_096;

/// The most recent log entries (see the module docs).
#[derive(Debug)]
pub struct LogCache {
    entries: VecDeque<EntryOf<TypeConfig>>,
    capacity: usize,
}

impl LogCache {
    /// An empty cache of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Index of the first cached entry.
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(RaftEntry::index)
    }

    /// Index of the last cached entry (the log's last entry when the cache is not empty).
    fn last_index(&self) -> Option<u64> {
        self.entries.back().map(RaftEntry::index)
    }

    /// Records `entry`, just appended to the log after every cached entry's successor was
    /// removed (openraft truncates before it overwrites). An entry that does not follow the
    /// last cached one starts the cache again.
    pub fn appended(&mut self, entry: EntryOf<TypeConfig>) {
        if self.last_index().map(|last| last + 1) != Some(entry.index()) {
            self.entries.clear();
        }
        self.entries.push_back(entry);
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
        }
        // Each entry follows the one before it (the reset above), so the run is contiguous
        // exactly when its length spans first..=last: an O(1) check on the write path (a
        // walk of the whole cache here cost ~8 % of a busy leader's CPU).
        debug_assert_eq!(
            self.first_index()
                .zip(self.last_index())
                .map(|(first, last)| last - first + 1),
            Some(self.entries.len() as u64),
            "log cache not contiguous"
        );
    }

    /// The entries of indexes `start..end` (`end` exclusive; `None`: to the log's end), if
    /// the cache holds every one of them; `None` when the caller must read the store.
    pub fn get(&self, start: u64, end: Option<u64>) -> Option<Vec<EntryOf<TypeConfig>>> {
        let (first, last) = (self.first_index()?, self.last_index()?);
        let end = end.unwrap_or(last + 1);
        if start < first || end > last + 1 {
            return None;
        }
        if start >= end {
            return Some(Vec::new());
        }
        let from = usize::try_from(start - first).ok()?;
        let to = usize::try_from(end - first).ok()?;
        Some(self.entries.range(from..to).cloned().collect())
    }

    /// Forgets the entries after index `last_kept` (all of them for `None`): the log was
    /// truncated there.
    pub fn truncated_after(&mut self, last_kept: Option<u64>) {
        while let Some(last) = self.last_index() {
            if last_kept.is_some_and(|kept| last <= kept) {
                break;
            }
            self.entries.pop_back();
        }
    }

    /// Forgets the entries up to and including index `upto`: the log was purged there.
    pub fn purged_upto(&mut self, upto: u64) {
        while self.first_index().is_some_and(|first| first <= upto) {
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::type_config::alias::{LeaderIdOf, LogIdOf};
    use openraft::vote::RaftLeaderId;
    use openraft::EntryPayload;

    fn entry(term: u64, index: u64) -> EntryOf<TypeConfig> {
        let leader = <LeaderIdOf<TypeConfig> as RaftLeaderId>::new(term, 1);
        EntryOf::<TypeConfig> {
            log_id: LogIdOf::<TypeConfig>::new(leader.to_committed(), index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(entries: &[EntryOf<TypeConfig>]) -> Vec<(u64, u64)> {
        entries
            .iter()
            .map(|e| (e.log_id.committed_leader_id().term, e.index()))
            .collect()
    }

    #[test]
    fn serves_only_ranges_it_holds_whole() {
        let mut cache = LogCache::new(8);
        assert!(cache.get(0, None).is_none(), "empty: read the store");
        for i in 5..=9 {
            cache.appended(entry(1, i));
        }
        assert_eq!(
            indexes(&cache.get(6, Some(9)).expect("held")),
            [(1, 6), (1, 7), (1, 8)]
        );
        assert_eq!(cache.get(7, None).expect("held").len(), 3);
        assert!(cache.get(4, Some(7)).is_none(), "starts before the cache");
        assert!(cache.get(8, Some(11)).is_none(), "runs past the last entry");
        assert_eq!(cache.get(9, Some(9)), Some(Vec::new()));
    }

    #[test]
    fn keeps_at_most_its_capacity_newest_first() {
        let mut cache = LogCache::new(3);
        for i in 1..=10 {
            cache.appended(entry(1, i));
        }
        assert_eq!(indexes(&cache.get(8, None).expect("held")).len(), 3);
        assert!(cache.get(7, None).is_none());
    }

    #[test]
    fn a_truncation_and_a_new_term_replace_the_tail() {
        let mut cache = LogCache::new(8);
        for i in 1..=6 {
            cache.appended(entry(1, i));
        }
        cache.truncated_after(Some(4));
        assert!(
            cache.get(5, Some(6)).is_none(),
            "truncated entries are gone"
        );
        cache.appended(entry(2, 5));
        assert_eq!(
            indexes(&cache.get(3, None).expect("held")),
            [(1, 3), (1, 4), (2, 5)]
        );
        cache.truncated_after(None);
        assert!(cache.get(1, None).is_none());
    }

    #[test]
    fn an_append_that_does_not_follow_restarts_it_and_a_purge_drops_the_front() {
        let mut cache = LogCache::new(8);
        for i in 1..=4 {
            cache.appended(entry(1, i));
        }
        // After a snapshot install the log goes on elsewhere.
        cache.appended(entry(3, 100));
        assert!(cache.get(4, Some(5)).is_none());
        assert_eq!(indexes(&cache.get(100, None).expect("held")), [(3, 100)]);
        cache.appended(entry(3, 101));
        cache.purged_upto(100);
        assert_eq!(indexes(&cache.get(101, None).expect("held")), [(3, 101)]);
        assert!(cache.get(100, None).is_none());
    }
}
