//! The lab's own tests: real namespaces, real processes. They need root (CI runs as root) and
//! fail with the lab's `NotRoot` message otherwise. Each test is bounded in time.
#![allow(clippy::disallowed_methods)] // Tests of real processes measure wall-clock time.

mod cleanup;
mod connectivity;
mod faults;
mod support;
