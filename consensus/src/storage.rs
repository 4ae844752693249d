//! RocksDB-backed openraft storage: the log store ([`LogStore`], with its [`LogReader`]) and
//! the state machine ([`StateMachineStore`], which is also its own snapshot builder).
//!
//! One RocksDB directory of its own (the node passes `<data-dir>/raft`), three column
//! families:
//! - `raft_log`: key = log index (u64 big-endian, so keys sort by index), value = the
//!   JSON-encoded openraft entry.
//! - `raft_meta`: `vote`, `committed` and `last_purged` log ids (JSON).
//! - `raft_sm`: `state` (the applied [`StoreState`] with its last applied log id and
//!   membership, without its redemptions), `redemption/<redemption id>` (one key per applied
//!   redemption, JSON), `snapshot_meta` (the meta of the last snapshot built or installed;
//!   its bytes are the applied state, serialised when a follower needs them).
//!
//! Durability (what is on disk when):
//! - `append`: the entries are written (readable at once) and handed to a flusher thread
//!   that fsyncs the WAL and only then calls openraft's `IOFlushed` callback; openraft counts
//!   an entry towards a commit quorum only after that callback (Raft paper §5.3 and
//!   Figure 2: the log is persistent state, "updated on stable storage before responding to
//!   RPCs").
//! - `save_vote`: a synced write before returning (Figure 2: `currentTerm`/`votedFor` are
//!   persistent state updated on stable storage before responding to RPCs).
//! - `apply`: nothing is synced. A client hears its outcome once the entry is fsynced on a
//!   majority's logs (openraft commits only flushed entries) and applied in memory; the
//!   outcome is a pure function of the log (`StoreState::apply`), so it is rebuilt from
//!   the log after a crash. Every [`CHECKPOINT_EVERY_ENTRIES`] entries (and at a
//!   membership change) the applied state and its last applied log id are written as a
//!   checkpoint, unsynced (durable with the next log fsync: one WAL). A checkpoint writes the
//!   state without its redemptions plus one key per redemption applied since the last
//!   checkpoint, in one batch: redemptions are kept for good (deduplication) and are most
//!   of the state, so writing them whole made each checkpoint grow with the store's history
//!   (at 30,000 redemptions, ~9 MB of JSON per checkpoint through the log's WAL). On start openraft
//!   re-applies the committed entries after it (`get_initial_state`, with the committed
//!   index `save_committed` left). The log after the checkpoint is never purged: purges
//!   only reach a snapshot's last index, and a snapshot is written together with the same
//!   state as a checkpoint. Earlier versions synced the whole applied state on every
//!   apply: one more fsync on the write path and a JSON of the whole state per write.
//! - snapshots (built or installed): one synced write of a checkpoint and the snapshot's
//!   meta (built: the state without its redemptions and the redemptions since the last
//!   checkpoint; installed: the whole state it replaces). openraft purges the log only up to
//!   a built snapshot, which that checkpoint covers.
//! - `save_committed`, `truncate_after`, `purge`: unsynced; they become durable with the
//!   next synced write (RocksDB's WAL is ordered). Losing them is safe: a lost truncation
//!   only restores uncommitted entries a leader will overwrite again, a lost purge keeps
//!   entries a snapshot already covers, a lost committed index is learned again from the
//!   leader (openraft docs: `RaftLogStorage::save_committed`, `truncate_after`, `purge`).

use crate::command::{StoreCommand, StoreResponse};
use crate::log_cache::{LogCache, LOG_CACHE_ENTRIES};
use crate::state::{Redemption, StoreState};
use crate::TypeConfig;
use futures_util::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{
    EntryResponder, IOFlushed, LogState, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder,
    RaftStateMachine,
};
use openraft::type_config::alias::{
    EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf,
};
use openraft::{EntryPayload, OptionalSend};
use rocksdb::{
    Cache, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, WriteBatch, WriteOptions,
    DB,
};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};

/// Column family of the log entries.
pub const CF_LOG: &str = "raft_log";
/// Column family of the vote, committed and last purged log ids.
pub const CF_META: &str = "raft_meta";
/// Column family of the applied state machine and the current snapshot.
pub const CF_SM: &str = "raft_sm";
/// All column families of the Raft database.
pub const COLUMN_FAMILIES: [&str; 3] = [CF_LOG, CF_META, CF_SM];

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
/// This Raft database's incarnation ([`LogStore::incarnation`]).
const KEY_INCARNATION: &[u8] = b"incarnation";
const KEY_STATE: &[u8] = b"state";
/// A snapshot as one JSON value, meta and bytes, as the oldest versions wrote it: its
/// presence still means "a snapshot was built"; deleted by the next snapshot.
const KEY_SNAPSHOT: &[u8] = b"snapshot";
/// The meta of the last snapshot built or installed (JSON).
const KEY_SNAPSHOT_META: &[u8] = b"snapshot_meta";
/// A snapshot's bytes, as older versions stored them next to its meta; deleted by the
/// next snapshot (bytes are now serialised on demand).
const KEY_SNAPSHOT_DATA: &[u8] = b"snapshot_data";
/// Key prefix of the checkpoint's redemptions in `raft_sm`: `redemption/<id>`.
const REDEMPTION_PREFIX: &[u8] = b"redemption/";
/// The first key after every `redemption/…` key (`'/' + 1 = '0'`).
const REDEMPTION_PREFIX_END: &[u8] = b"redemption0";

fn redemption_key(redemption_id: &str) -> Vec<u8> {
    [REDEMPTION_PREFIX, redemption_id.as_bytes()].concat()
}

/// Memtable size per column family, bytes (the Raft log of a store is small and slow).
const WRITE_BUFFER_BYTES: usize = 2 << 20;
/// Block cache shared by the Raft column families, bytes.
const BLOCK_CACHE_BYTES: usize = 4 << 20;

/// Errors opening the Raft database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process, or a not yet dropped open in this one, holds the directory's lock.
    #[error("the raft database {0} is in use (another process, or a raft node not yet dropped)")]
    InUse(String),
    /// RocksDB refused to open the directory.
    #[error("raft database {dir}: {source}")]
    Rocks {
        /// The directory.
        dir: String,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The stored state machine could not be decoded.
    #[error("raft database {dir}: {source}")]
    Corrupt {
        /// The directory.
        dir: String,
        /// The decode error.
        source: io::Error,
    },
}

/// Opens (creating if needed) the Raft database in `dir` and returns its log store and
/// state machine, ready for `openraft::Raft::new`.
///
/// The state machine is loaded from its last synced state (not re-built from the log):
/// openraft then re-applies committed entries after it, if any.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachineStore), OpenError> {
    let mut db_opts = TUNING.db_options();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let descriptors = COLUMN_FAMILIES
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, TUNING.cf_options(&cache)))
        .collect::<Vec<_>>();
    let db = DB::open_cf_descriptors(&db_opts, dir, descriptors).map_err(|source| {
        let text = source.to_string();
        // Another process: "Resource temporarily unavailable"; this process (a Raft not yet
        // dropped): "lock hold by current process".
        if text.contains("LOCK")
            && (text.contains("temporarily unavailable") || text.contains("lock hold by"))
        {
            OpenError::InUse(dir.display().to_string())
        } else {
            OpenError::Rocks {
                dir: dir.display().to_string(),
                source,
            }
        }
    })?;
    let db = Arc::new(db);
    let log_store = LogStore::new(db.clone());
    let sm = StateMachineStore::load(db).map_err(|source| OpenError::Corrupt {
        dir: dir.display().to_string(),
        source,
    })?;
    Ok((log_store, sm))
}

/// Whether the Raft database in `dir` holds any log entry (a group was initialised there).
/// Opens (and creates) the database, so the directory must not be in use.
///
/// # Errors
/// As [`open`]; read errors as [`OpenError::Corrupt`].
pub async fn has_log(dir: &Path) -> Result<bool, OpenError> {
    let (mut log, _) = open(dir)?;
    let state = log
        .get_log_state()
        .await
        .map_err(|source| OpenError::Corrupt {
            dir: dir.display().to_string(),
            source,
        })?;
    Ok(state.last_log_id.is_some())
}

/// The Raft database's sizes: small (a store's decisions are few).
const TUNING: crate::rocksdb_tuning::RocksTuning = crate::rocksdb_tuning::RocksTuning {
    max_open_files: 64,
    max_total_wal_bytes: 16 << 20,
    max_background_jobs: 1,
    write_buffer_bytes: WRITE_BUFFER_BYTES,
};

fn cf<'a>(db: &'a DB, name: &str) -> io::Result<&'a ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| io::Error::other(format!("column family {name} is not open")))
}

fn rocks(error: rocksdb::Error) -> io::Error {
    io::Error::other(error)
}

fn invalid(error: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

fn get_json<T: for<'de> Deserialize<'de>>(
    db: &DB,
    family: &str,
    key: &[u8],
) -> io::Result<Option<T>> {
    match db.get_pinned_cf(cf(db, family)?, key).map_err(rocks)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(invalid),
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> io::Result<u64> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("raft log key of {} bytes, expected 8", key.len()),
        )
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Reads log entries; cloned for every replication task (openraft's `LogReader`). Recent
/// entries come from the [`LogCache`] the log store fills as it appends.
#[derive(Clone)]
pub struct LogReader {
    db: Arc<DB>,
    cache: Arc<Mutex<LogCache>>,
}

impl LogReader {
    fn cache(&self) -> std::sync::MutexGuard<'_, LogCache> {
        // The cache is changed only by whole operations that cannot panic half-way.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> io::Result<Vec<EntryOf<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(index) => *index,
            Bound::Excluded(index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(index) => Some(index.saturating_add(1)),
            Bound::Excluded(index) => Some(*index),
            Bound::Unbounded => None,
        };
        if let Some(cached) = self.cache().get(start, end) {
            return Ok(cached);
        }
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            cf(&self.db, CF_LOG)?,
            IteratorMode::From(&index_key(start), Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(rocks)?;
            let index = key_index(&key)?;
            if !range.contains(&index) {
                break;
            }
            let entry: EntryOf<TypeConfig> = serde_json::from_slice(&value).map_err(invalid)?;
            if entry.index() != index {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("raft log key {index} holds entry {}", entry.index()),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<TypeConfig>>, io::Error> {
        self.entries(range)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        get_json(&self.db, CF_META, KEY_VOTE)
    }
}

/// The Raft log store (openraft `RaftLogStorage`): entries, vote, committed index, purge.
pub struct LogStore {
    reader: LogReader,
    /// Callbacks of appended, not yet fsynced entries, in append order.
    flusher: mpsc::Sender<IOFlushed<TypeConfig>>,
}

impl LogStore {
    fn new(db: Arc<DB>) -> Self {
        let (flusher, pending) = mpsc::channel::<IOFlushed<TypeConfig>>();
        // The thread holds the database weakly: the database closes where its last owner
        // drops it (the Raft core, on the runtime's threads, before the process exits), never
        // in this detached thread racing the process's exit.
        let flush_db = Arc::downgrade(&db);
        // One thread fsyncs the WAL for every append, in order; it groups the callbacks that
        // queued up during an fsync under the next one. It ends when the store is dropped.
        std::thread::Builder::new()
            .name("raft-log-fsync".into())
            .spawn(move || {
                while let Ok(first) = pending.recv() {
                    let mut batch = vec![first];
                    batch.extend(pending.try_iter());
                    let result = match flush_db.upgrade() {
                        Some(db) => db.flush_wal(true).map_err(|e| e.to_string()),
                        None => Err("the raft database is closed".to_owned()),
                    };
                    for callback in batch {
                        callback.io_completed(result.clone().map_err(io::Error::other));
                    }
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the raft log fsync thread: {e}"));
        Self {
            reader: LogReader {
                db,
                cache: Arc::new(Mutex::new(LogCache::new(LOG_CACHE_ENTRIES))),
            },
            flusher,
        }
    }

    fn db(&self) -> &DB {
        &self.reader.db
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], value: &T, sync: bool) -> io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(invalid)?;
        let opts = if sync {
            synced()
        } else {
            WriteOptions::default()
        };
        self.db()
            .put_cf_opt(cf(self.db(), CF_META)?, key, bytes, &opts)
            .map_err(rocks)
    }
}

impl LogStore {
    /// This Raft database's incarnation: a random number written once, when the database
    /// is first opened by a version that knows incarnations (a wiped or new `raft`
    /// directory gets a new one; a database of an older version gets one on its first
    /// start). The store's Raft group records each member's incarnation when it joins
    /// (`StoreCommand::RecordRaftIncarnation`), so a member answering under another one
    /// is known to have lost its Raft state (log and vote) and never votes or counts
    /// towards a commit under its old seat (Raft §5.2/§5.4; Ongaro's thesis §4.2: a
    /// server that lost its disk rejoins as a new server). `fresh` is used only when the
    /// database has none yet (the caller's randomness: this crate reads none); synced.
    ///
    /// # Errors
    /// Read or write errors of the database.
    pub fn incarnation(&self, fresh: u64) -> io::Result<u64> {
        if let Some(known) = get_json::<u64>(self.db(), CF_META, KEY_INCARNATION)? {
            return Ok(known);
        }
        self.put_meta(KEY_INCARNATION, &fresh, true)?;
        Ok(fresh)
    }

    /// Writes a forced membership `entry` (at the end of the log) and `vote` in one synced
    /// batch, for [`crate::forced_membership::force`] on a stopped survivor.
    pub(crate) fn write_forced(
        &self,
        entry: &EntryOf<TypeConfig>,
        vote: &VoteOf<TypeConfig>,
    ) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            cf(self.db(), CF_LOG)?,
            index_key(entry.index()),
            serde_json::to_vec(entry).map_err(invalid)?,
        );
        batch.put_cf(
            cf(self.db(), CF_META)?,
            KEY_VOTE,
            serde_json::to_vec(vote).map_err(invalid)?,
        );
        self.db().write_opt(batch, &synced()).map_err(rocks)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogIdOf<TypeConfig>> =
            get_json(self.db(), CF_META, KEY_LAST_PURGED)?;
        let last = self
            .db()
            .iterator_cf(cf(self.db(), CF_LOG)?, IteratorMode::End)
            .next();
        let last_log_id = match last {
            None => last_purged_log_id,
            Some(item) => {
                let (_, value) = item.map_err(rocks)?;
                let entry: EntryOf<TypeConfig> = serde_json::from_slice(&value).map_err(invalid)?;
                Some(entry.log_id())
            }
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        self.put_meta(KEY_VOTE, vote, true)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        self.put_meta(KEY_COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        Ok(get_json::<Option<LogIdOf<TypeConfig>>>(self.db(), CF_META, KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let family = cf(self.db(), CF_LOG)?;
        let mut batch = WriteBatch::default();
        let entries: Vec<_> = entries.into_iter().collect();
        for entry in &entries {
            let value = serde_json::to_vec(entry).map_err(invalid)?;
            batch.put_cf(family, index_key(entry.index()), value);
        }
        // Written now (readable when this returns, as openraft requires), fsynced by the
        // flusher thread, which calls `callback` only after the fsync. Cached after the
        // write: a reader that misses the cache finds them in the store.
        self.db().write(batch).map_err(rocks)?;
        {
            let mut cache = self.reader.cache();
            for entry in entries {
                cache.appended(entry);
            }
        }
        self.flusher
            .send(callback)
            .map_err(|_| io::Error::other("the raft log fsync thread has stopped"))
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        // The cache first: no reader may find a truncated entry there once it is gone from
        // the store.
        self.reader
            .cache()
            .truncated_after(last_log_id.map(|id| id.index()));
        self.db()
            .delete_range_cf(cf(self.db(), CF_LOG)?, index_key(from), index_key(u64::MAX))
            .map_err(rocks)
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        // The last purged id and the deletion in one batch: never a hole, never entries
        // before `last_purged` that openraft would have to skip.
        self.reader.cache().purged_upto(log_id.index());
        let mut batch = WriteBatch::default();
        batch.put_cf(
            cf(self.db(), CF_META)?,
            KEY_LAST_PURGED,
            serde_json::to_vec(&log_id).map_err(invalid)?,
        );
        batch.delete_range_cf(
            cf(self.db(), CF_LOG)?,
            index_key(0),
            index_key(log_id.index() + 1),
        );
        self.db().write(batch).map_err(rocks)
    }
}

/// What the state machine persists: the applied state, its last applied log id and the
/// last applied membership. Also the content of a snapshot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Applied {
    pub(crate) last_applied: Option<LogIdOf<TypeConfig>>,
    pub(crate) last_membership: StoredMembershipOf<TypeConfig>,
    pub(crate) state: StoreState,
    /// Redemption ids applied since the last checkpoint (not yet under their own key).
    #[serde(skip)]
    pub(crate) unsaved_redemptions: Vec<String>,
}

/// The bytes of a snapshot (the JSON of the applied state, its last applied log id and
/// membership), as openraft's `SnapshotData`.
pub type SnapshotData = std::io::Cursor<Vec<u8>>;

/// A read handle on the applied [`StoreState`], for the node's reads (gift-card balance,
/// revocations, …). For a linearizable read use [`crate::read_linearizable`].
#[derive(Clone)]
pub struct StoreReader {
    applied: Arc<RwLock<Applied>>,
}

impl StoreReader {
    /// Runs `read` on the currently applied state.
    pub fn read<T>(&self, read: impl FnOnce(&StoreState) -> T) -> T {
        // The guarded state is replaced only whole, by `apply`/`install_snapshot`; a panic
        // elsewhere cannot leave it half-changed, so a poisoned lock is still readable.
        let guard = self.applied.read().unwrap_or_else(|p| p.into_inner());
        read(&guard.state)
    }

    /// Index of the last applied log entry (0 before any).
    pub fn last_applied_index(&self) -> u64 {
        let guard = self.applied.read().unwrap_or_else(|p| p.into_inner());
        guard.last_applied.map_or(0, |id| id.index())
    }
}

/// The Raft state machine (openraft `RaftStateMachine`), holding the applied
/// [`StoreState`] in memory and on disk. Cloned as its own snapshot builder.
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<DB>,
    applied: Arc<RwLock<Applied>>,
    /// Last applied index written to `raft_sm`/`state` (a checkpoint, a snapshot built or
    /// installed).
    checkpointed: Arc<AtomicU64>,
}

/// Applied entries between two checkpoints of the applied state (`raft_sm`/`state`). Each
/// checkpoint serialises the whole [`StoreState`], so writing it on every apply made a
/// write's cost grow with the store's history; a restart re-applies at most this many
/// entries (plus those of the last apply batch) from the log.
pub const CHECKPOINT_EVERY_ENTRIES: u64 = 256;

impl StateMachineStore {
    fn load(db: Arc<DB>) -> io::Result<Self> {
        let mut applied: Applied = get_json(&db, CF_SM, KEY_STATE)?.unwrap_or_default();
        let checkpointed = applied.last_applied.map_or(0, |id| id.index());
        // Written before redemptions had keys of their own: they are in the blob, and the
        // next checkpoint moves them to their keys.
        applied.unsaved_redemptions = applied.state.redemptions.keys().cloned().collect();
        let iter = db.iterator_cf(
            cf(&db, CF_SM)?,
            IteratorMode::From(REDEMPTION_PREFIX, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(rocks)?;
            let Some(id) = key.strip_prefix(REDEMPTION_PREFIX) else {
                break;
            };
            let id = String::from_utf8(id.to_vec()).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("redemption key: {e}"))
            })?;
            let redemption: Redemption = serde_json::from_slice(&value).map_err(invalid)?;
            // A checkpoint's redemption keys are written in one batch with its state, so
            // none can be newer than the state's last applied entry.
            if redemption.applied_at_index > checkpointed {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "redemption {id:?} applied at index {} is past the checkpoint's last applied index {checkpointed}",
                        redemption.applied_at_index
                    ),
                ));
            }
            applied.state.redemptions.insert(id, redemption);
        }
        Ok(Self {
            db,
            applied: Arc::new(RwLock::new(applied)),
            checkpointed: Arc::new(AtomicU64::new(checkpointed)),
        })
    }

    /// Whether the applied state is [`CHECKPOINT_EVERY_ENTRIES`] or more past the last
    /// checkpoint, or holds a membership change the checkpoint lacks.
    fn should_checkpoint(&self) -> bool {
        let guard = self.applied.read().unwrap_or_else(|p| p.into_inner());
        let applied = guard.last_applied.map_or(0, |id| id.index());
        let membership_at = guard
            .last_membership
            .log_id()
            .as_ref()
            .map_or(0, |id| id.index());
        let checkpointed = self.checkpointed.load(Ordering::Relaxed);
        applied >= checkpointed.saturating_add(CHECKPOINT_EVERY_ENTRIES)
            || membership_at > checkpointed
    }

    /// A read handle on the applied state.
    pub fn reader(&self) -> StoreReader {
        StoreReader {
            applied: self.applied.clone(),
        }
    }

    /// Adds a checkpoint of `applied` to `batch`: the state without its redemptions, and
    /// the redemptions applied since the last checkpoint under their own keys. Returns the
    /// redemption ids it took from `unsaved_redemptions`: give them back with
    /// [`Self::unsaved_again`] if the batch is not written.
    fn checkpoint(&self, batch: &mut WriteBatch, applied: &mut Applied) -> io::Result<Vec<String>> {
        let family = cf(&self.db, CF_SM)?;
        let taken = std::mem::take(&mut applied.unsaved_redemptions);
        let written = (|| {
            for id in &taken {
                if let Some(redemption) = applied.state.redemptions.get(id) {
                    let value = serde_json::to_vec(redemption).map_err(invalid)?;
                    batch.put_cf(family, redemption_key(id), value);
                }
            }
            let redemptions = std::mem::take(&mut applied.state.redemptions);
            let base = serde_json::to_vec(&*applied);
            applied.state.redemptions = redemptions;
            batch.put_cf(family, KEY_STATE, base.map_err(invalid)?);
            Ok(())
        })();
        match written {
            Ok(()) => Ok(taken),
            Err(error) => {
                applied.unsaved_redemptions = taken;
                Err(error)
            }
        }
    }

    /// Gives back redemption ids a failed checkpoint took.
    fn unsaved_again(&self, mut ids: Vec<String>) {
        let mut guard = self.applied.write().unwrap_or_else(|p| p.into_inner());
        ids.append(&mut guard.unsaved_redemptions);
        guard.unsaved_redemptions = ids;
    }

    /// Adds the snapshot `meta` to `batch`, replacing the current one and dropping the
    /// bytes older versions stored with it.
    fn put_snapshot_meta(
        &self,
        batch: &mut WriteBatch,
        meta: &SnapshotMetaOf<TypeConfig>,
    ) -> io::Result<()> {
        let family = cf(&self.db, CF_SM)?;
        batch.put_cf(
            family,
            KEY_SNAPSHOT_META,
            serde_json::to_vec(meta).map_err(invalid)?,
        );
        batch.delete_cf(family, KEY_SNAPSHOT_DATA);
        batch.delete_cf(family, KEY_SNAPSHOT);
        Ok(())
    }

    fn last_applied_of(applied: &Applied) -> u64 {
        applied.last_applied.map_or(0, |id| id.index())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;

    /// Records a snapshot at the last applied entry: a checkpoint and the snapshot's meta,
    /// synced. The bytes are not built here (the returned snapshot's are empty): openraft
    /// keeps only the meta of a snapshot it asked for (0.10.0-alpha.37 `core/sm/worker.rs`,
    /// `BuildSnapshotDone(meta)`) and purges the log up to it, which the durable checkpoint
    /// makes safe; the bytes a follower needs come from
    /// [`RaftStateMachine::get_current_snapshot`]. Cost: the state without its redemptions
    /// and the redemptions applied since the last checkpoint, not the whole history.
    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, SnapshotData>, io::Error> {
        let this = self.clone();
        let meta = tokio::task::spawn_blocking(move || this.record_snapshot())
            .await
            .map_err(io::Error::other)??;
        Ok(SnapshotOf::<TypeConfig, SnapshotData> {
            meta,
            snapshot: std::io::Cursor::new(Vec::new()),
        })
    }
}

impl StateMachineStore {
    /// Writes a checkpoint of the applied state and the meta of a snapshot at its last
    /// applied entry, in one synced batch, and returns the meta. Durable when this returns:
    /// the log up to the snapshot may be purged from then on, and a restart never needs it.
    ///
    /// Earlier versions wrote the whole state's JSON as the snapshot every
    /// `snapshot_every_entries` entries; with every redemption kept for deduplication that
    /// grew with the store's history (tens of MB), and P3's 256-client p99 was set by it.
    fn record_snapshot(&self) -> io::Result<SnapshotMetaOf<TypeConfig>> {
        let mut batch = WriteBatch::default();
        let (taken, meta) = {
            let mut guard = self.applied.write().unwrap_or_else(|p| p.into_inner());
            let taken = self.checkpoint(&mut batch, &mut guard)?;
            (taken, Self::meta_of(&guard))
        };
        if let Err(error) = self
            .put_snapshot_meta(&mut batch, &meta)
            .and_then(|()| self.db.write_opt(batch, &synced()).map_err(rocks))
        {
            self.unsaved_again(taken);
            return Err(error);
        }
        self.checkpointed.fetch_max(
            meta.last_log_id.map_or(0, |id| id.index()),
            Ordering::Relaxed,
        );
        Ok(meta)
    }

    /// The meta of a snapshot of `applied`: its last applied log id and membership.
    fn meta_of(applied: &Applied) -> SnapshotMetaOf<TypeConfig> {
        SnapshotMetaOf::<TypeConfig> {
            last_log_id: applied.last_applied,
            last_membership: applied.last_membership.clone(),
        }
    }

    /// Whether a snapshot was ever built or installed here (its meta, in this layout or an
    /// older one).
    fn has_snapshot(&self) -> io::Result<bool> {
        let family = cf(&self.db, CF_SM)?;
        for key in [KEY_SNAPSHOT_META, KEY_SNAPSHOT] {
            if self.db.get_pinned_cf(family, key).map_err(rocks)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let guard = self.applied.read().unwrap_or_else(|p| p.into_inner());
        Ok((guard.last_applied, guard.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut responses = Vec::new();
        while let Some((entry, responder)) = entries.try_next().await? {
            let response = {
                let mut guard = self.applied.write().unwrap_or_else(|p| p.into_inner());
                guard.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => StoreResponse::None,
                    EntryPayload::Normal(command) => {
                        let index = entry.log_id.index();
                        let response = guard.state.apply(index, &command);
                        if let StoreCommand::RedeemGiftCard { redemption_id, .. } = &command {
                            let new = guard
                                .state
                                .redemptions
                                .get(redemption_id)
                                .is_some_and(|r| r.applied_at_index == index);
                            if new {
                                guard.unsaved_redemptions.push(redemption_id.clone());
                            }
                        }
                        response
                    }
                    EntryPayload::Membership(membership) => {
                        guard.last_membership =
                            StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id), membership);
                        StoreResponse::None
                    }
                }
            };
            if let Some(responder) = responder {
                responses.push((responder, response));
            }
        }
        // A checkpoint of the applied state now and then, unsynced: the entries are
        // already on a quorum's disks (synced log), and openraft re-applies the committed
        // entries after the checkpoint when the node starts (see the module docs).
        if self.should_checkpoint() {
            let mut batch = WriteBatch::default();
            let (taken, last_applied) = {
                let mut guard = self.applied.write().unwrap_or_else(|p| p.into_inner());
                let taken = self.checkpoint(&mut batch, &mut guard)?;
                (taken, Self::last_applied_of(&guard))
            };
            if let Err(error) = self.db.write(batch) {
                self.unsaved_again(taken);
                return Err(rocks(error));
            }
            self.checkpointed.store(last_applied, Ordering::Relaxed);
        }
        for (responder, response) in responses {
            responder.send(response);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let data = snapshot.into_inner();
        let decoded: Applied = serde_json::from_slice(&data).map_err(invalid)?;
        // The meta is authoritative for what the snapshot covers.
        let mut applied = Applied {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            unsaved_redemptions: decoded.state.redemptions.keys().cloned().collect(),
            state: decoded.state,
        };
        // The snapshot replaces the state whole: the old redemption keys go, the snapshot's
        // are written.
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            cf(&self.db, CF_SM)?,
            REDEMPTION_PREFIX,
            REDEMPTION_PREFIX_END,
        );
        self.checkpoint(&mut batch, &mut applied)?;
        self.put_snapshot_meta(&mut batch, meta)?;
        self.db.write_opt(batch, &synced()).map_err(rocks)?;
        self.checkpointed.store(
            applied.last_applied.map_or(0, |id| id.index()),
            Ordering::Relaxed,
        );
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = applied;
        Ok(())
    }

    /// The current snapshot: the applied state now, serialised on demand (on a blocking
    /// thread, from a copy taken under the lock), with its own meta — at or past the last
    /// snapshot built or installed, as openraft may send any snapshot of committed entries
    /// (the follower's progress becomes the snapshot's last log id). `None` until a snapshot
    /// was built or installed (openraft's storage suite: a fresh store has none).
    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, SnapshotData>>, io::Error> {
        if !self.has_snapshot()? {
            return Ok(None);
        }
        let copy = self
            .applied
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let meta = Self::meta_of(&copy);
        let data = tokio::task::spawn_blocking(move || serde_json::to_vec(&copy))
            .await
            .map_err(io::Error::other)?
            .map_err(invalid)?;
        Ok(Some(SnapshotOf::<TypeConfig, SnapshotData> {
            meta,
            snapshot: std::io::Cursor::new(data),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::type_config::alias::LeaderIdOf;
    use openraft::vote::RaftLeaderId;
    use posmesh_domain::Currency;

    fn log_id(index: u64) -> LogIdOf<TypeConfig> {
        let leader = <LeaderIdOf<TypeConfig> as RaftLeaderId>::new(1, 1);
        LogIdOf::<TypeConfig>::new(leader.to_committed(), index)
    }

    fn redeem(n: u64) -> StoreCommand {
        StoreCommand::RedeemGiftCard {
            card_id: "GC-1".into(),
            amount_minor: 1,
            redemption_id: format!("till-1/{n}"),
        }
    }

    /// Applies `commands` at `first..`, in one apply call.
    async fn apply(sm: &mut StateMachineStore, first: u64, commands: Vec<StoreCommand>) {
        let entries = commands.into_iter().zip(first..).map(|(command, index)| {
            Ok::<EntryResponder<TypeConfig>, io::Error>((
                EntryOf::<TypeConfig>::new_normal(log_id(index), command),
                None,
            ))
        });
        sm.apply(futures_util::stream::iter(entries))
            .await
            .expect("apply");
    }

    fn issue() -> StoreCommand {
        StoreCommand::IssueGiftCard {
            card_id: "GC-1".into(),
            amount_minor: 100_000,
            currency: Currency::from_code("GBP").expect("currency"),
        }
    }

    fn state_of(sm: &StateMachineStore) -> StoreState {
        sm.reader().read(StoreState::clone)
    }

    fn redemption_keys(db: &DB) -> usize {
        let family = cf(db, CF_SM).expect("cf");
        db.iterator_cf(
            family,
            IteratorMode::From(REDEMPTION_PREFIX, Direction::Forward),
        )
        .map(|item| item.expect("read"))
        .take_while(|(key, _)| key.starts_with(REDEMPTION_PREFIX))
        .count()
    }

    #[test]
    fn an_incarnation_is_kept_across_restarts_and_new_after_a_wipe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = {
            let (log, _) = open(dir.path()).expect("open");
            log.incarnation(7).expect("incarnation")
        };
        assert_eq!(first, 7, "a new database takes the fresh number");
        {
            let (log, _) = open(dir.path()).expect("reopen");
            assert_eq!(
                log.incarnation(8).expect("incarnation"),
                7,
                "kept on restart"
            );
        }
        std::fs::remove_dir_all(dir.path()).expect("wipe");
        let (log, _) = open(dir.path()).expect("open the wiped directory");
        assert_eq!(
            log.incarnation(9).expect("incarnation"),
            9,
            "a wipe makes a new one"
        );
    }

    /// A store in `dir` with a card issued and one checkpoint interval of redemptions.
    async fn checkpointed_store(dir: &Path) -> (LogStore, StateMachineStore) {
        let (log, mut sm) = open(dir).expect("open");
        let mut commands = vec![issue()];
        commands.extend((0..CHECKPOINT_EVERY_ENTRIES).map(redeem));
        apply(&mut sm, 1, commands).await;
        (log, sm)
    }

    #[tokio::test]
    async fn a_checkpoint_writes_each_redemption_once_under_its_own_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_log, mut sm) = checkpointed_store(dir.path()).await;
        let first = state_of(&sm);
        assert_eq!(first.redemptions.len() as u64, CHECKPOINT_EVERY_ENTRIES);
        // The checkpoint's state blob holds no redemption; each has its key.
        let base: Applied = get_json(&sm.db, CF_SM, KEY_STATE)
            .expect("read")
            .expect("a checkpoint");
        assert!(base.state.redemptions.is_empty());
        assert_eq!(redemption_keys(&sm.db) as u64, CHECKPOINT_EVERY_ENTRIES);
        // A second checkpoint adds only the new ones (and a retry of an old id adds none).
        let mut more = vec![redeem(0)];
        more.extend((1_000..1_000 + CHECKPOINT_EVERY_ENTRIES).map(redeem));
        apply(&mut sm, 2 + CHECKPOINT_EVERY_ENTRIES, more).await;
        assert_eq!(redemption_keys(&sm.db) as u64, 2 * CHECKPOINT_EVERY_ENTRIES);
        let before = state_of(&sm);
        drop(sm);
        drop(_log);
        let (_log, sm) = open(dir.path()).expect("reopen");
        assert_eq!(
            state_of(&sm),
            before,
            "the checkpoint is the whole state again"
        );
        assert_ne!(before, first);
    }

    #[tokio::test]
    async fn a_state_written_whole_by_an_older_version_still_loads_and_moves_to_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_log, sm) = open(dir.path()).expect("open");
        // An older version's checkpoint: the whole state, redemptions inside, no keys.
        let mut state = StoreState::default();
        state.apply(1, &issue());
        for n in 0..5 {
            state.apply(2 + n, &redeem(n));
        }
        let old = Applied {
            last_applied: Some(log_id(6)),
            state: state.clone(),
            ..Applied::default()
        };
        sm.db
            .put_cf(
                cf(&sm.db, CF_SM).expect("cf"),
                KEY_STATE,
                serde_json::to_vec(&old).expect("json"),
            )
            .expect("write");
        drop(sm);
        drop(_log);
        let (_log, mut sm) = open(dir.path()).expect("reopen");
        assert_eq!(state_of(&sm), state);
        // The next checkpoint writes the old redemptions under their keys too.
        apply(
            &mut sm,
            7,
            (100..100 + CHECKPOINT_EVERY_ENTRIES).map(redeem).collect(),
        )
        .await;
        assert_eq!(redemption_keys(&sm.db) as u64, 5 + CHECKPOINT_EVERY_ENTRIES);
        let before = state_of(&sm);
        drop(sm);
        drop(_log);
        let (_log, sm) = open(dir.path()).expect("reopen again");
        assert_eq!(state_of(&sm), before);
        assert!(before.redemptions.contains_key("till-1/0"));
    }

    #[tokio::test]
    async fn an_installed_snapshot_replaces_the_redemption_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_log, mut sm) = checkpointed_store(dir.path()).await;
        // A snapshot of another history: one redemption only.
        let mut state = StoreState::default();
        state.apply(1, &issue());
        state.apply(2, &redeem(9_999));
        let applied = Applied {
            last_applied: Some(log_id(2)),
            state: state.clone(),
            ..Applied::default()
        };
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: Some(log_id(2)),
            last_membership: StoredMembershipOf::<TypeConfig>::default(),
        };
        let data = serde_json::to_vec(&applied).expect("json");
        sm.install_snapshot(&meta, std::io::Cursor::new(data))
            .await
            .expect("install");
        assert_eq!(state_of(&sm), state);
        assert_eq!(redemption_keys(&sm.db), 1);
        drop(sm);
        drop(_log);
        let (_log, sm) = open(dir.path()).expect("reopen");
        assert_eq!(state_of(&sm), state);
    }

    #[tokio::test]
    async fn a_built_snapshot_is_a_checkpoint_and_its_bytes_are_made_on_demand() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_log, mut sm) = open(dir.path()).expect("open");
        assert!(
            sm.get_current_snapshot().await.expect("read").is_none(),
            "no snapshot before one is built"
        );
        apply(&mut sm, 1, vec![issue(), redeem(1), redeem(2)]).await;
        let built = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        assert_eq!(built.meta.last_log_id, Some(log_id(3)));
        // Durable: a checkpoint at the snapshot (the redemptions under their keys) and the
        // meta, so the log up to it may go.
        assert_eq!(redemption_keys(&sm.db), 2);
        let base: Applied = get_json(&sm.db, CF_SM, KEY_STATE)
            .expect("read")
            .expect("a checkpoint");
        assert_eq!(base.last_applied, Some(log_id(3)));
        let meta: Option<SnapshotMetaOf<TypeConfig>> =
            get_json(&sm.db, CF_SM, KEY_SNAPSHOT_META).expect("read");
        assert_eq!(meta, Some(built.meta.clone()));
        // The bytes a follower gets are the state now, with the meta of now.
        let current = sm.get_current_snapshot().await.expect("read").expect("one");
        assert_eq!(current.meta, built.meta);
        let decoded: Applied =
            serde_json::from_slice(&current.snapshot.into_inner()).expect("json");
        assert_eq!(decoded.state, state_of(&sm));
        apply(&mut sm, 4, vec![redeem(3)]).await;
        let later = sm.get_current_snapshot().await.expect("read").expect("one");
        assert_eq!(later.meta.last_log_id, Some(log_id(4)));
        let decoded: Applied = serde_json::from_slice(&later.snapshot.into_inner()).expect("json");
        assert!(decoded.state.redemptions.contains_key("till-1/3"));
        // Installing it elsewhere gives the same state.
        let other_dir = tempfile::tempdir().expect("tempdir");
        let (_other_log, mut other) = open(other_dir.path()).expect("open other");
        let later = sm.get_current_snapshot().await.expect("read").expect("one");
        other
            .install_snapshot(&later.meta, later.snapshot)
            .await
            .expect("install");
        assert_eq!(state_of(&other), state_of(&sm));
    }

    #[tokio::test]
    async fn an_older_snapshot_layout_still_counts_and_the_next_snapshot_replaces_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_log, mut sm) = open(dir.path()).expect("open");
        apply(&mut sm, 1, vec![issue(), redeem(1)]).await;
        // The oldest layout: one JSON value under `snapshot`; the next: bytes beside the meta.
        let db = sm.db.clone();
        let family = cf(&db, CF_SM).expect("cf");
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: Some(log_id(2)),
            last_membership: StoredMembershipOf::<TypeConfig>::default(),
        };
        db.put_cf(
            family,
            KEY_SNAPSHOT,
            serde_json::to_vec(&serde_json::json!({"meta": meta, "data": [1, 2]})).expect("json"),
        )
        .expect("write");
        db.put_cf(family, KEY_SNAPSHOT_DATA, b"older")
            .expect("write");
        let current = sm.get_current_snapshot().await.expect("read").expect("one");
        assert_eq!(current.meta.last_log_id, Some(log_id(2)));
        let decoded: Applied =
            serde_json::from_slice(&current.snapshot.into_inner()).expect("json");
        assert_eq!(decoded.state, state_of(&sm));
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        for key in [KEY_SNAPSHOT, KEY_SNAPSHOT_DATA] {
            assert!(
                db.get_cf(family, key).expect("read").is_none(),
                "{} left behind",
                String::from_utf8_lossy(key)
            );
        }
    }
}
