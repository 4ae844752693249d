//! Store-wide decisions through Raft: openraft with RocksDB-backed log and state machine,
//! Raft RPCs over the QUIC mesh, membership (join as learner, promote, remove).
//!
//! # Layout
//! Empty in the foundation milestone: the consensus milestone fills it (membership,
//! catalog and prices, operators, shift and day close, gift cards, offline exposure
//! allotments). Its dependencies (openraft, rocksdb) are declared already so that adding
//! the code does not change the workspace's build graph (see the root `Cargo.toml`).
