//! The checkers: one file per guarantee of DESIGN.md, each reading the finished `World`
//! (its disks and its `History`) and returning [`Violation`]s with the device and seq
//! concerned.
//!
//! | guarantee (DESIGN.md) | checker |
//! | --- | --- |
//! | 1 durable on ack | [`durable_on_ack`] |
//! | 2 local first | [`local_first`] |
//! | 3 convergence of the ledger | [`convergence`] |
//! | 3 convergence of Automerge orders (and 1 for acknowledged order edits) | [`order_convergence`] |
//! | 5 unique, gap-free receipt numbers | [`receipt_numbers`] |
//! | 3, 8 tampered or forged batches refused, nothing stored | [`tamper_refusal`] |
//! | 4 exactly once in the cloud | [`exactly_once_in_cloud`] |
//! | 6 offline card risk bounded; exactly-once acceptance at the acquirer; 8 no clear PAN | `exposure-caps`, `acquirer-exactly-once`, `no-clear-pan` in [`super::payments`] (a sans-IO model beside the world) |
//! | 7 store-wide decisions linearizable | the consensus issue (#6) |

pub mod convergence;
pub mod durable_on_ack;
pub mod exactly_once_in_cloud;
pub mod local_first;
pub mod order_convergence;
pub mod receipt_numbers;
pub mod tamper_refusal;

use super::world::World;
use std::fmt;

/// One broken guarantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name (`durable-on-ack`, …).
    pub checker: &'static str,
    /// The device concerned, when one is.
    pub device: Option<String>,
    /// The journal seq concerned, when one is.
    pub seq: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl Violation {
    /// A violation of `checker` on `device` (and `seq`).
    pub fn new(checker: &'static str, device: &str, seq: Option<u64>, message: String) -> Self {
        Self {
            checker,
            device: Some(device.to_owned()),
            seq,
            message,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.checker)?;
        if let Some(device) = &self.device {
            write!(f, " {device}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, " seq {seq}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every checker over a finished run, in a fixed order.
pub fn check_all(world: &World) -> Vec<Violation> {
    let mut violations = durable_on_ack::check(world);
    violations.extend(local_first::check(world));
    violations.extend(convergence::check(world));
    violations.extend(receipt_numbers::check(world));
    violations.extend(tamper_refusal::check(world));
    violations.extend(order_convergence::check(world));
    violations.extend(exactly_once_in_cloud::check(world));
    violations
}
