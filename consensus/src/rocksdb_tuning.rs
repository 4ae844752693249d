//! How posmesh opens a RocksDB: the one place for the recovery mode and the table options
//! shared by the node's journal store and the Raft storage (this crate is the lowest one of
//! the workspace that links RocksDB, so both use it from here).

use rocksdb::{BlockBasedOptions, Cache, Options};

/// Sizes and limits of one database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RocksTuning {
    /// Open table files kept.
    pub max_open_files: i32,
    /// Total WAL size before column families are flushed, bytes.
    pub max_total_wal_bytes: u64,
    /// Background flush and compaction threads.
    pub max_background_jobs: i32,
    /// Memtable size per column family, bytes.
    pub write_buffer_bytes: usize,
}

impl RocksTuning {
    /// Database options. Recovery: a torn last WAL record (crash mid-write) was never
    /// acknowledged and is dropped; a damaged record anywhere else refuses to open instead
    /// of silently cutting the log there (RocksDB's default, point-in-time recovery, could
    /// lose acknowledged sales or Raft entries and reuse their numbers).
    pub fn db_options(&self) -> Options {
        let mut opts = Options::default();
        opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        opts.set_max_open_files(self.max_open_files);
        opts.set_keep_log_file_num(3);
        opts.set_max_total_wal_size(self.max_total_wal_bytes);
        opts.set_max_background_jobs(self.max_background_jobs);
        opts
    }

    /// Column-family options: two memtables, LZ4, index and filter blocks in the shared
    /// block `cache`.
    pub fn cf_options(&self, cache: &Cache) -> Options {
        let mut opts = Options::default();
        opts.set_write_buffer_size(self.write_buffer_bytes);
        opts.set_max_write_buffer_number(2);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(cache);
        table.set_cache_index_and_filter_blocks(true);
        opts.set_block_based_table_factory(&table);
        opts
    }
}
