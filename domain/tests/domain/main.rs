//! The domain crate's integration tests, in one test binary.

mod common;
mod errors;
mod examples;
mod properties;
