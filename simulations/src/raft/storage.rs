//! In-memory openraft storage for the Raft simulation: one [`MemDisk`] per device that
//! outlives the device's Raft (a crash-restart builds a new Raft on the same disk).
//!
//! Every write is durable when its call returns (the log's `IOFlushed` callback is called
//! at once), as the production RocksDB storage guarantees with its fsyncs — except under the
//! `fsync-lie` canary, where log entries appended in the last [`LIE_WINDOW_MS`] before a
//! crash are lost although they were acknowledged. The state machine is the production
//! [`StoreState::apply`].

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
use posmesh_consensus::{StoreResponse, StoreState, TypeConfig};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

/// Under the `fsync-lie` canary: entries appended this recently before a crash are lost.
pub const LIE_WINDOW_MS: u64 = 2_000;

/// One device's disk.
#[derive(Default)]
pub struct DiskState {
    /// The vote.
    pub vote: Option<VoteOf<TypeConfig>>,
    /// The committed log id (as openraft saved it).
    pub committed: Option<LogIdOf<TypeConfig>>,
    /// The last purged log id.
    pub last_purged: Option<LogIdOf<TypeConfig>>,
    /// Log entries by index, with the virtual time (ms) they were appended at.
    pub log: BTreeMap<u64, (EntryOf<TypeConfig>, u64)>,
    /// The applied state machine.
    pub last_applied: Option<LogIdOf<TypeConfig>>,
    /// The last applied membership.
    pub last_membership: StoredMembershipOf<TypeConfig>,
    /// The store's state.
    pub state: StoreState,
    /// Every normal entry applied, by index, as JSON (State Machine Safety is checked on
    /// it); entries covered by an installed snapshot are absent.
    pub applied: BTreeMap<u64, String>,
    /// The rules version ([`posmesh_consensus::rules`]) in force right after each normal
    /// entry applied here, by index (checked alike on every device); entries covered by an
    /// installed snapshot are absent.
    pub rules_at: BTreeMap<u64, u32>,
    /// The current snapshot: meta and the state's JSON.
    pub snapshot: Option<(SnapshotMetaOf<TypeConfig>, Vec<u8>)>,
    /// Snapshots installed (sent by a leader).
    pub snapshots_installed: u64,
}

/// A device's disk, shared by its successive Raft instances.
#[derive(Clone)]
pub struct MemDisk {
    inner: Arc<Mutex<DiskState>>,
    /// Virtual time, ms, read when appending (for the canary).
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl MemDisk {
    /// A new empty disk whose append times come from `clock` (virtual ms).
    pub fn new(clock: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        Self {
            inner: Arc::default(),
            clock,
        }
    }

    /// Locks the disk.
    pub fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `fsync-lie` canary at a crash: drops log entries appended after `now_ms -`
    /// [`LIE_WINDOW_MS`] (and the committed id if it pointed at them).
    pub fn lose_recent_appends(&self, now_ms: u64) {
        let mut disk = self.lock();
        let since = now_ms.saturating_sub(LIE_WINDOW_MS);
        let first_lost = disk
            .log
            .iter()
            .find(|(_, (_, at))| *at >= since)
            .map(|(index, _)| *index);
        if let Some(first) = first_lost {
            disk.log.retain(|index, _| *index < first);
            if disk.committed.as_ref().is_some_and(|c| c.index() >= first) {
                disk.committed = None;
            }
        }
    }
}

/// The log store on a [`MemDisk`].
#[derive(Clone)]
pub struct MemLog {
    disk: MemDisk,
}

/// The state machine on a [`MemDisk`].
#[derive(Clone)]
pub struct MemStateMachine {
    disk: MemDisk,
}

/// The log store and state machine of `disk`, for a new Raft instance.
pub fn open(disk: &MemDisk) -> (MemLog, MemStateMachine) {
    (
        MemLog { disk: disk.clone() },
        MemStateMachine { disk: disk.clone() },
    )
}

fn invalid(error: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl RaftLogReader<TypeConfig> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<TypeConfig>>, io::Error> {
        Ok(self
            .disk
            .lock()
            .log
            .range(range)
            .map(|(_, (entry, _))| entry.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        Ok(self.disk.lock().vote)
    }
}

impl RaftLogStorage<TypeConfig> for MemLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let disk = self.disk.lock();
        let last = disk
            .log
            .values()
            .next_back()
            .map(|(entry, _)| entry.log_id());
        Ok(LogState {
            last_purged_log_id: disk.last_purged,
            last_log_id: last.or(disk.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        self.disk.lock().vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        self.disk.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        Ok(self.disk.lock().committed)
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
        let now = (self.disk.clock)();
        {
            let mut disk = self.disk.lock();
            for entry in entries {
                disk.log.insert(entry.index(), (entry, now));
            }
        }
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        self.disk.lock().log.retain(|index, _| *index < from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        let mut disk = self.disk.lock();
        disk.log.retain(|index, _| *index > log_id.index());
        disk.last_purged = Some(log_id);
        Ok(())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotBody {
    state: StoreState,
}

impl RaftSnapshotBuilder<TypeConfig> for MemStateMachine {
    type SnapshotData = std::io::Cursor<Vec<u8>>;

    async fn build_snapshot(
        &mut self,
    ) -> Result<SnapshotOf<TypeConfig, Self::SnapshotData>, io::Error> {
        let mut disk = self.disk.lock();
        let data = serde_json::to_vec(&SnapshotBody {
            state: disk.state.clone(),
        })
        .map_err(invalid)?;
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: disk.last_applied,
            last_membership: disk.last_membership.clone(),
        };
        disk.snapshot = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<TypeConfig, Self::SnapshotData> {
            meta,
            snapshot: std::io::Cursor::new(data),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MemStateMachine {
    type SnapshotData = std::io::Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let disk = self.disk.lock();
        Ok((disk.last_applied, disk.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let response = {
                let mut disk = self.disk.lock();
                disk.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => StoreResponse::None,
                    EntryPayload::Normal(command) => {
                        let json = serde_json::to_string(&command).map_err(invalid)?;
                        disk.applied.insert(entry.log_id.index(), json);
                        let response = disk.state.apply(entry.log_id.index(), &command);
                        let rules = disk.state.rules_version;
                        disk.rules_at.insert(entry.log_id.index(), rules);
                        response
                    }
                    EntryPayload::Membership(membership) => {
                        disk.last_membership =
                            StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id), membership);
                        StoreResponse::None
                    }
                }
            };
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let data = snapshot.into_inner();
        let body: SnapshotBody = serde_json::from_slice(&data).map_err(invalid)?;
        let mut disk = self.disk.lock();
        disk.state = body.state;
        disk.last_applied = meta.last_log_id;
        disk.last_membership = meta.last_membership.clone();
        disk.snapshot = Some((meta.clone(), data));
        disk.snapshots_installed += 1;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Self::SnapshotData>>, io::Error> {
        Ok(self
            .disk
            .lock()
            .snapshot
            .clone()
            .map(
                |(meta, data)| SnapshotOf::<TypeConfig, Self::SnapshotData> {
                    meta,
                    snapshot: std::io::Cursor::new(data),
                },
            ))
    }
}
