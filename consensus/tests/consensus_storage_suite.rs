//! openraft's own storage test suite (`openraft::testing::log::Suite`) against the RocksDB
//! log store and state machine: log reads, purge, truncation, vote, committed index,
//! membership from log and state machine, initial state on restart, apply, and a snapshot
//! built on one store and installed on another.

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;
use posmesh_consensus::{LogStore, StateMachineStore, TypeConfig};

/// Builds each store in a fresh temporary directory, removed when the guard drops.
struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for RocksBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (log, sm) = posmesh_consensus::open(&dir.path().join("raft")).expect("open raft db");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_rocksdb_storage_passes_openraft_suite() {
    Suite::test_all(RocksBuilder)
        .await
        .expect("openraft storage suite");
}
