//! The mesh crate's integration tests, in one test binary.

mod attestation;
mod common;
mod pki;
mod transport;
