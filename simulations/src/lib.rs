//! Deterministic simulation of whole stores (seeded, virtual time, simulated network and
//! disks with faults) with invariant checkers, and the multi-host lab that runs real
//! `posmesh` processes in Linux network namespaces.
//!
//! # Layout
//! Empty in the foundation milestone: the mesh milestone adds the lab, the simulation
//! milestone the harness and its checkers. The crate exists so the workspace has its final
//! shape from the first commit.
