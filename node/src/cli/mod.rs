//! Commands of the `posmesh` binary other than running a node.
//!
//! - [`ca`]: `posmesh ca` — the chain CA: init, issue, revoke.
//! - [`journal`]: `posmesh journal verify` — walk the hash chain, name the first break.
//! - [`status`]: `posmesh status` — a node's state from its management API.
//! - [`init`]: `posmesh init` — found a store on its first device (optionally from a
//!   provisioning file).
//! - [`store`]: `posmesh store force-membership` — recover a store from a permanent quorum
//!   loss.
//! - [`report`]: `posmesh report z` — a closed day's Z-report from a node's API.
//! - [`operator`]: `posmesh operator set` (add or change an operator, authorised) and
//!   `unlock` (a manager lifts a PIN lockout).
//! - [`operator_pin`]: `--as` and the PIN of the authorising operator, shared by every
//!   guarded command.
//! - [`pin_prompt`]: a PIN from its environment variable or stdin (unseen at a terminal).
//! - [`closed_stdout`]: output into a closed pipe ends the command quietly.

pub mod ca;
pub mod closed_stdout;
pub mod init;
pub mod journal;
pub mod operator;
pub mod operator_pin;
pub mod pin_prompt;
pub mod report;
pub mod status;
pub mod store;
