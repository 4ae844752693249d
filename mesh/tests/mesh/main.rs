//! The mesh crate's integration tests, in one test binary.

mod common;
mod pki;
mod transport;
