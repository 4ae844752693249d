//! The store's Raft commands, their outcomes and refusals: what goes into a log entry and
//! what a client gets back once the entry is committed and applied.
//!
//! Everything here serialises with serde (JSON in the log and in snapshots). Money is always
//! integer minor units of an ISO 4217 currency ([`Currency`]), never a float.

use posmesh_domain::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bytes of a published catalog's TOML at most (1 MiB, some 15,000 items): a
/// [`StoreCommand::PublishCatalog`] is one Raft log entry, and travels in one mesh frame
/// (4 MiB) in every AppendEntries call and forwarded write; JSON at most doubles TOML's
/// text (escaped quotes, newlines and tabs). Checked by the chain's cloud when a catalog is
/// published and by the device before it proposes one.
pub const CATALOG_TOML_BYTES_MAX: usize = 1024 * 1024;

/// A store-wide decision, proposed to the Raft leader and applied in log order on every
/// member by [`StoreState::apply`](crate::StoreState::apply).
///
/// Commands carry every input the state machine needs (ids, amounts, times): applying one
/// never reads a clock or a random source, so every replica computes the same outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoreCommand {
    /// Issues a new gift card with an initial balance. Refused if `card_id` exists.
    IssueGiftCard {
        /// The card's id (printed on the card / encoded in its barcode). Non-empty.
        card_id: String,
        /// Initial balance in minor units of `currency`; must be > 0.
        amount_minor: i64,
        /// ISO 4217 currency of the card; a card never changes currency.
        currency: Currency,
    },
    /// Takes `amount_minor` off a card's balance, exactly once per `redemption_id`.
    ///
    /// A retry with the same `redemption_id` and the same card and amount returns the first
    /// outcome again (nothing is taken twice); the same id with other parameters is refused.
    /// A redemption that would take the balance below zero is refused and changes nothing.
    RedeemGiftCard {
        /// The card to redeem.
        card_id: String,
        /// Amount to take, minor units of the card's currency; must be > 0.
        amount_minor: i64,
        /// Idempotency key chosen by the redeeming device (e.g. `<device>/<receipt>/<tender>`).
        redemption_id: String,
    },
    /// Moves the store to a new catalog/price version from `effective_at_ms` on.
    ///
    /// Versions never go back: `version` must be greater than the current version and
    /// `effective_at_ms` not earlier than the current version's effective time.
    SetCatalogVersion {
        /// The catalog version (monotonic, assigned by HQ).
        version: u64,
        /// When the prices of this version apply, milliseconds since the Unix epoch (UTC).
        effective_at_ms: i64,
    },
    /// Closes a business day: records the sales ledger's version vector at the close, the
    /// consistent cut that the day's Z report covers. Once per `business_date`.
    CloseDay {
        /// The business date in the store's time zone, `YYYY-MM-DD`.
        business_date: String,
        /// Per device id, the last journal sequence number included in the close.
        version_vector: BTreeMap<String, u64>,
    },
    /// Revokes a device certificate. It is refused from the log index of this entry on
    /// (the revocation's effective index); never retroactively.
    RevokeCertificate {
        /// Certificate serial number (hex, as printed by `posmesh ca`). Non-empty.
        serial: String,
        /// Where the certificate's device's journal ends for the store: its entries up to
        /// the cut stay, those beyond it are refused by every ledger and the cloud
        /// ([`crate::LedgerCut`]). Filled by the leader from its ledger when it knows
        /// whose certificate it is; `None` in logs of older versions and for a serial
        /// the leader never saw (then only the mesh refuses the certificate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cut: Option<crate::LedgerCut>,
    },
    /// Sets the store-wide budget of unforwarded offline card payments (the sum of all
    /// devices' allotments may never exceed it). Refused if below the current sum.
    SetExposureBudget {
        /// The budget, minor units of `currency`; must be ≥ 0.
        amount_minor: i64,
        /// ISO 4217 currency of the budget and of every allotment.
        currency: Currency,
    },
    /// Sets (replaces) one device's allotment of offline card exposure out of the store
    /// budget. Refused if no budget is set or if the allotments would sum above it.
    SetExposureAllotment {
        /// The device id.
        device_id: String,
        /// The device's allotment, minor units of the budget's currency; must be ≥ 0.
        amount_minor: i64,
    },
    /// Retires a device from the store for good (removed by a manager, or replaced: a
    /// replacement till gets a new id). A retired device is never added to the Raft group
    /// again. Retiring a retired device is answered again, unchanged.
    RetireDevice {
        /// The device id. Non-empty.
        device_id: String,
        /// The last sequence number of the device's journal the store keeps (what the
        /// leader's ledger held of it when it proposed the retirement): entries beyond
        /// it are refused by every ledger and the cloud ([`crate::LedgerCut`]). `None`
        /// in logs of older versions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        up_to_seq: Option<u64>,
    },
    /// Moves the store to a catalog published at the chain's cloud: its version and
    /// effective time as [`StoreCommand::SetCatalogVersion`] (same rules: never back), and
    /// its content, which every device prices sales from once committed.
    PublishCatalog {
        /// The catalog version (monotonic per store, assigned by HQ at the cloud).
        version: u64,
        /// When its prices apply, milliseconds since the Unix epoch (UTC).
        effective_at_ms: i64,
        /// The catalog file's text (TOML, prices in minor units), validated by the node
        /// before it proposes the command.
        catalog_toml: String,
    },
    /// Sets a new version of the store's tax rates, effective from `effective_at_ms` on
    /// (earlier sales keep the rates of their time). Versions and effective times never go
    /// back.
    SetTaxRates {
        /// The version; must be greater than the current one.
        version: u64,
        /// From when the rates apply, ms since the Unix epoch (UTC); not before the current
        /// version's.
        effective_at_ms: i64,
        /// Rate per tax class, basis points (2000 = 20 %); 1–64 classes, each ≤ 10 000.
        rates_bps: BTreeMap<String, u32>,
    },
    /// Adds an operator or replaces one's name, role and PIN hash.
    SetOperator {
        /// The operator's id (e.g. a staff number). Non-empty.
        operator_id: String,
        /// Display name.
        name: String,
        /// The role.
        role: crate::staff::Role,
        /// Argon2id hash of the PIN as a PHC string (hashed by the node: never a clear PIN).
        pin_hash: String,
    },
    /// Opens a shift of `operator_id` on `device_id`. Refused if the device has an open
    /// shift, the operator is unknown, or the id was used.
    OpenShift {
        /// The shift's id (chosen by the opening device). Non-empty.
        shift_id: String,
        /// The device.
        device_id: String,
        /// The operator.
        operator_id: String,
        /// Cash in the drawer at the opening, minor units of `currency`; ≥ 0.
        opening_float_minor: i64,
        /// ISO 4217 currency of the float.
        currency: Currency,
        /// When it opened, ms since the Unix epoch (the device's clock, carried in the
        /// command so that every replica records the same time).
        opened_at_ms: i64,
    },
    /// Closes an open shift (once).
    CloseShift {
        /// The shift.
        shift_id: String,
        /// When it closed, ms since the Unix epoch; not before it opened.
        closed_at_ms: i64,
    },
    /// `command` under a client's Idempotency-Key (see [`crate::idempotency`]): the first
    /// time it is applied and, if applied, recorded with its outcome; a retry with the same
    /// key and request hash is answered [`StoreResponse::Replayed`] without applying
    /// anything, the key with another request is refused
    /// ([`Refusal::IdempotencyKeyReused`]).
    Idempotent {
        /// The client's key (store-wide: a retry through another device is the same
        /// request). 1–128 bytes, no control characters.
        idempotency_key: String,
        /// SHA-256 of the request (operation, target, canonical body), 64 lowercase hex
        /// digits: what tells a retry from another request under the same key.
        request_hash: String,
        /// The command to apply (not itself `Idempotent`).
        command: Box<StoreCommand>,
    },
    /// Adds an operator or replaces one's name, role and PIN hash, on the authority of
    /// `authorised_by` (whose PIN the proposing node verified): the role rules of
    /// [`Staff::may_set_operator`](crate::staff::Staff::may_set_operator) are checked
    /// against the state at this entry, so a role changed in between cannot be used.
    /// `authorised_by: None` is accepted only for the store's first operator (an admin).
    /// The API proposes this; [`StoreCommand::SetOperator`] is the provisioning file's
    /// (trusted: read by `posmesh init` on the founding device).
    SetOperatorAuthorised {
        /// The operator allowing the change (verified by PIN); `None`: the first operator.
        authorised_by: Option<String>,
        /// The operator's id (e.g. a staff number). Non-empty.
        operator_id: String,
        /// Display name.
        name: String,
        /// The role.
        role: crate::staff::Role,
        /// Argon2id hash of the PIN as a PHC string (hashed by the node: never a clear PIN).
        pin_hash: String,
    },
    /// `command` on the authority of operator `authorised_by` (whose PIN the proposing
    /// node verified): the role matrix ([`crate::roles`]) is checked against the state at
    /// this entry, then `command` applies. Once one has applied, guarded commands
    /// proposed bare are refused ([`Refusal::OperatorRequired`]).
    Authorised {
        /// The operator allowing the command (verified by PIN).
        authorised_by: String,
        /// The command (possibly [`StoreCommand::Idempotent`]; not itself `Authorised`).
        command: Box<StoreCommand>,
    },
    /// Disables an operator for good: removed from the operators and kept as a tombstone
    /// ([`Staff::disabled`](crate::staff::Staff::disabled)), so the id can never be set
    /// again; their PIN no longer opens anything. Their open shifts close in the same
    /// entry, marked [`ShiftCloseReason::OperatorDisabled`](crate::staff::ShiftCloseReason)
    /// (their shifts stay in the record). Only inside [`StoreCommand::Authorised`]: a
    /// manager disables cashiers and supervisors, only an admin managers and admins, and
    /// never the store's only admin.
    DisableOperator {
        /// The operator.
        operator_id: String,
        /// When it was disabled, ms since the Unix epoch (the proposing device's clock,
        /// carried so every replica closes the operator's shifts at the same time; a shift
        /// that opened later by another device's clock closes at its opening time). 0 in
        /// entries written before shifts were closed this way.
        #[serde(default)]
        disabled_at_ms: i64,
    },
    /// Records the incarnation of `device_id`'s Raft database (a random number made when
    /// the database was created, `LogStore::incarnation`) as its seat in the store's Raft
    /// group: proposed by the leader before the device joins as a learner (or, for a
    /// member of an older version, the first time it answers). The seat is pinned: a later
    /// record of another incarnation is refused ([`Refusal::InvalidId`], field
    /// `incarnation`), and a member answering under another incarnation lost its Raft
    /// state and is taken out (it must be enrolled again under a new id). Not an
    /// operator's command: never guarded by roles.
    RecordRaftIncarnation {
        /// The device. Non-empty.
        device_id: String,
        /// Its Raft database's incarnation.
        incarnation: u64,
    },
    /// Switches the store to rules `version` from this entry on ([`crate::rules`]): every
    /// later entry applies under them, on every replica. Proposed by the leader when the
    /// store is founded, and in an existing store once every member supports `version`.
    /// Refused below the current version ([`Refusal::RulesVersionNotNewer`]) and for a
    /// version this binary does not know ([`Refusal::RulesVersionUnknown`]); the current
    /// version again is answered unchanged. Not an operator's command: never guarded by
    /// roles. A node of a version before it cannot decode it (see [`crate::rules`]).
    AdoptRules {
        /// The rules version.
        version: u32,
    },
}

impl std::fmt::Display for StoreCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreCommand::IssueGiftCard {
                card_id,
                amount_minor,
                currency,
            } => write!(
                f,
                "issue gift card {card_id} {currency} {amount_minor} minor"
            ),
            StoreCommand::RedeemGiftCard {
                card_id,
                amount_minor,
                redemption_id,
            } => write!(
                f,
                "redeem gift card {card_id} {amount_minor} minor ({redemption_id})"
            ),
            StoreCommand::SetCatalogVersion {
                version,
                effective_at_ms,
            } => write!(f, "catalog version {version} from {effective_at_ms} ms"),
            StoreCommand::CloseDay {
                business_date,
                version_vector,
            } => write!(
                f,
                "close day {business_date} ({} devices)",
                version_vector.len()
            ),
            StoreCommand::RevokeCertificate { serial, cut } => match cut {
                Some(cut) => write!(
                    f,
                    "revoke certificate {serial} ({} cut after seq {})",
                    cut.device_id, cut.up_to_seq
                ),
                None => write!(f, "revoke certificate {serial}"),
            },
            StoreCommand::SetExposureBudget {
                amount_minor,
                currency,
            } => write!(f, "exposure budget {currency} {amount_minor} minor"),
            StoreCommand::SetExposureAllotment {
                device_id,
                amount_minor,
            } => write!(f, "exposure allotment {device_id} {amount_minor} minor"),
            StoreCommand::RetireDevice {
                device_id,
                up_to_seq,
            } => match up_to_seq {
                Some(seq) => write!(f, "retire device {device_id} (cut after seq {seq})"),
                None => write!(f, "retire device {device_id}"),
            },
            StoreCommand::PublishCatalog {
                version,
                effective_at_ms,
                catalog_toml,
            } => write!(
                f,
                "catalog {version} from {effective_at_ms} ms ({} bytes)",
                catalog_toml.len()
            ),
            StoreCommand::SetTaxRates {
                version,
                effective_at_ms,
                rates_bps,
            } => write!(
                f,
                "tax rates version {version} from {effective_at_ms} ms ({} classes)",
                rates_bps.len()
            ),
            StoreCommand::SetOperator {
                operator_id, role, ..
            } => write!(f, "operator {operator_id} as {}", role.as_str()),
            StoreCommand::OpenShift {
                shift_id,
                device_id,
                operator_id,
                ..
            } => write!(f, "open shift {shift_id} of {operator_id} on {device_id}"),
            StoreCommand::CloseShift { shift_id, .. } => write!(f, "close shift {shift_id}"),
            StoreCommand::Idempotent {
                idempotency_key,
                command,
                ..
            } => write!(f, "{command} (Idempotency-Key {idempotency_key})"),
            StoreCommand::SetOperatorAuthorised {
                authorised_by,
                operator_id,
                role,
                ..
            } => write!(
                f,
                "operator {operator_id} as {} (by {})",
                role.as_str(),
                authorised_by.as_deref().unwrap_or("nobody: first operator")
            ),
            StoreCommand::Authorised {
                authorised_by,
                command,
            } => write!(f, "{command} (by {authorised_by})"),
            StoreCommand::DisableOperator { operator_id, .. } => {
                write!(f, "disable operator {operator_id}")
            }
            StoreCommand::RecordRaftIncarnation {
                device_id,
                incarnation,
            } => write!(f, "raft incarnation of {device_id}: {incarnation:016x}"),
            StoreCommand::AdoptRules { version } => write!(f, "adopt rules version {version}"),
        }
    }
}

/// What applying a log entry produced: the outcome of a command, its refusal, or nothing
/// (blank and membership entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StoreResponse {
    /// The command was applied and changed the state (or, for a retried redemption,
    /// had changed it the first time).
    Applied(Outcome),
    /// The command was refused; the state is unchanged.
    Refused(Refusal),
    /// A blank or membership entry: no application response.
    None,
    /// A retry of an [`StoreCommand::Idempotent`] request already applied: its recorded
    /// outcome; nothing was applied this time.
    Replayed {
        /// Log index at which the request was applied the first time.
        applied_at_index: u64,
        /// The outcome it had then.
        outcome: Outcome,
    },
}

/// The outcome of an applied command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A gift card was issued.
    GiftCardIssued {
        /// The card.
        card_id: String,
        /// Its balance, minor units.
        balance_minor: i64,
        /// Its currency.
        currency: Currency,
    },
    /// A redemption took `amount_minor` off the card.
    GiftCardRedeemed {
        /// The card.
        card_id: String,
        /// Amount taken, minor units.
        amount_minor: i64,
        /// Balance right after this redemption, minor units.
        balance_after_minor: i64,
        /// The card's currency.
        currency: Currency,
        /// Log index at which the redemption was applied the first time.
        applied_at_index: u64,
        /// True when this was a retry of an already applied `redemption_id` (nothing was
        /// taken this time).
        replayed: bool,
    },
    /// The catalog version changed.
    CatalogVersionSet {
        /// The new version.
        version: u64,
        /// When it applies, ms since the Unix epoch.
        effective_at_ms: i64,
    },
    /// The day was closed at this cut.
    DayClosed {
        /// The business date.
        business_date: String,
        /// Log index of the close.
        closed_at_index: u64,
    },
    /// The certificate is revoked from `effective_index` on.
    CertificateRevoked {
        /// The serial.
        serial: String,
        /// Log index from which the certificate is refused.
        effective_index: u64,
    },
    /// The store-wide exposure budget changed.
    ExposureBudgetSet {
        /// New budget, minor units.
        budget_minor: i64,
        /// Its currency.
        currency: Currency,
        /// Current sum of all allotments, minor units.
        allotted_minor: i64,
    },
    /// A device's allotment changed.
    ExposureAllotmentSet {
        /// The device.
        device_id: String,
        /// Its allotment, minor units.
        amount_minor: i64,
        /// Budget left unallotted after this change, minor units.
        unallotted_minor: i64,
    },
    /// A device was retired.
    DeviceRetired {
        /// The device.
        device_id: String,
        /// Log index at which it was first retired.
        retired_at_index: u64,
    },
    /// A tax rate version was set.
    TaxRatesSet {
        /// The version.
        version: u64,
        /// When it applies, ms since the Unix epoch.
        effective_at_ms: i64,
        /// Log index of the change.
        set_at_index: u64,
    },
    /// An operator was added or changed.
    OperatorSet {
        /// The operator.
        operator_id: String,
        /// Its role.
        role: crate::staff::Role,
        /// Log index of the change.
        set_at_index: u64,
    },
    /// A shift opened.
    ShiftOpened {
        /// The shift.
        shift_id: String,
        /// Log index of the opening.
        opened_at_index: u64,
    },
    /// A shift closed.
    ShiftClosed {
        /// The shift.
        shift_id: String,
        /// Log index of the close.
        closed_at_index: u64,
    },
    /// An operator was disabled (removed from the operators, kept as a tombstone).
    OperatorDisabled {
        /// The operator.
        operator_id: String,
        /// Log index of the change.
        disabled_at_index: u64,
        /// The operator's shifts that were open and closed by this entry, by id.
        #[serde(default)]
        shifts_closed: Vec<String>,
    },
    /// A device's Raft incarnation was recorded (or was already, the same).
    RaftIncarnationRecorded {
        /// The device.
        device_id: String,
        /// Its Raft database's incarnation.
        incarnation: u64,
    },
    /// The store follows rules `version` from this entry on (or already did).
    RulesAdopted {
        /// The rules version now in force.
        version: u32,
    },
}

/// Why a command was refused. A refused command changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// An amount was zero/negative where it must be positive, or negative where it must
    /// be ≥ 0.
    #[error("invalid amount {amount_minor} minor units: {rule}")]
    InvalidAmount {
        /// The amount given.
        amount_minor: i64,
        /// The rule it broke.
        rule: String,
    },
    /// An id (card, redemption, device, serial) was empty or too long.
    #[error("invalid {field}: {rule}")]
    InvalidId {
        /// Which field.
        field: String,
        /// The rule it broke.
        rule: String,
    },
    /// A gift card with this id already exists.
    #[error("gift card {card_id} already exists")]
    GiftCardExists {
        /// The card.
        card_id: String,
    },
    /// No gift card with this id.
    #[error("unknown gift card {card_id}")]
    UnknownGiftCard {
        /// The card.
        card_id: String,
    },
    /// The redemption would take the card below zero.
    #[error(
        "gift card {card_id}: balance {balance_minor} minor is less than {requested_minor} minor"
    )]
    InsufficientBalance {
        /// The card.
        card_id: String,
        /// Its balance, minor units.
        balance_minor: i64,
        /// Amount asked for, minor units.
        requested_minor: i64,
    },
    /// The redemption id was already used for another card or amount.
    #[error("redemption id {redemption_id} was already used for {card_id} ({amount_minor} minor)")]
    RedemptionIdReused {
        /// The id.
        redemption_id: String,
        /// Card of the first use.
        card_id: String,
        /// Amount of the first use, minor units.
        amount_minor: i64,
    },
    /// The catalog version or its effective time would go back.
    #[error("catalog version {requested_version} (from {requested_effective_at_ms} ms) is not after the current {current_version} (from {current_effective_at_ms} ms)")]
    CatalogVersionNotNewer {
        /// Current version.
        current_version: u64,
        /// Its effective time, ms.
        current_effective_at_ms: i64,
        /// Version asked for.
        requested_version: u64,
        /// Effective time asked for, ms.
        requested_effective_at_ms: i64,
    },
    /// The business date is not a valid `YYYY-MM-DD` date.
    #[error("invalid business date {business_date:?}: expected YYYY-MM-DD")]
    InvalidBusinessDate {
        /// The date given.
        business_date: String,
    },
    /// The day was already closed.
    #[error("business date {business_date} was already closed at log index {closed_at_index}")]
    DayAlreadyClosed {
        /// The date.
        business_date: String,
        /// Log index of the recorded close.
        closed_at_index: u64,
    },
    /// The certificate was already revoked (its effective index never moves).
    #[error("certificate {serial} is already revoked from log index {effective_index}")]
    AlreadyRevoked {
        /// The serial.
        serial: String,
        /// Index of the first revocation.
        effective_index: u64,
    },
    /// The device was retired from the store (`posmesh store remove-device`): it is never a
    /// member again, so it gets no allotment of the offline card budget.
    #[error("device {device_id} was retired from the store at log index {retired_at_index}: it gets no offline card allotment")]
    DeviceRetired {
        /// The device.
        device_id: String,
        /// Log index of its retirement.
        retired_at_index: u64,
    },
    /// No exposure budget has been set yet, so no allotment can be given.
    #[error("no offline exposure budget is set")]
    NoExposureBudget,
    /// The new budget is in another currency than the existing non-zero allotments.
    #[error("exposure budget currency {requested} differs from the allotted {current}")]
    CurrencyMismatch {
        /// Current currency.
        current: Currency,
        /// Currency asked for.
        requested: Currency,
    },
    /// The allotments would sum above the budget.
    #[error("exposure allotments would sum to {would_allot_minor} minor, above the budget of {budget_minor} minor")]
    ExposureBudgetExceeded {
        /// The budget, minor units.
        budget_minor: i64,
        /// The sum the change would make, minor units.
        would_allot_minor: i64,
    },
    /// An amount or sum does not fit in i64 minor units.
    #[error("amount overflows i64 minor units")]
    Overflow,
    /// A tax schedule with no classes or too many.
    #[error("a tax schedule needs 1–{max} tax classes, got {count}")]
    InvalidTaxClasses {
        /// Classes given.
        count: usize,
        /// Most allowed.
        max: usize,
    },
    /// A tax rate above 100 %.
    #[error("tax class {tax_class}: rate {rate_bps} bp is above {max_bps} bp")]
    InvalidTaxRate {
        /// The class.
        tax_class: String,
        /// The rate given, basis points.
        rate_bps: u32,
        /// Highest allowed, basis points.
        max_bps: u32,
    },
    /// The tax version or its effective time would go back.
    #[error("tax rates version {requested_version} (from {requested_effective_at_ms} ms) is not after the current {current_version} (from {current_effective_at_ms} ms)")]
    TaxVersionNotNewer {
        /// Current version.
        current_version: u64,
        /// Its effective time, ms.
        current_effective_at_ms: i64,
        /// Version asked for.
        requested_version: u64,
        /// Effective time asked for, ms.
        requested_effective_at_ms: i64,
    },
    /// A PIN hash that is not an Argon2id PHC string.
    #[error("invalid pin_hash: {rule}")]
    InvalidPinHash {
        /// What it must be.
        rule: String,
    },
    /// No operator with this id.
    #[error("unknown operator {operator_id}")]
    UnknownOperator {
        /// The operator.
        operator_id: String,
    },
    /// A shift id already used.
    #[error("shift {shift_id} already exists")]
    ShiftExists {
        /// The shift.
        shift_id: String,
    },
    /// The device already has an open shift.
    #[error("device {device_id} already has shift {shift_id} open: close it first")]
    ShiftAlreadyOpen {
        /// The device.
        device_id: String,
        /// Its open shift.
        shift_id: String,
    },
    /// No shift with this id.
    #[error("unknown shift {shift_id}")]
    UnknownShift {
        /// The shift.
        shift_id: String,
    },
    /// The shift was already closed.
    #[error("shift {shift_id} was already closed at log index {closed_at_index}")]
    ShiftAlreadyClosed {
        /// The shift.
        shift_id: String,
        /// Log index of the close.
        closed_at_index: u64,
    },
    /// A time that breaks a rule.
    #[error("invalid time: {rule}")]
    InvalidTime {
        /// The rule.
        rule: String,
    },
    /// The Idempotency-Key was already used for another request (a client bug: a retry
    /// must send the same request; a new request needs a new key).
    #[error("Idempotency-Key {idempotency_key:?} was already used for another request (applied at log index {applied_at_index}): retry with the same request, or use a new key")]
    IdempotencyKeyReused {
        /// The key.
        idempotency_key: String,
        /// Log index of the request that used it.
        applied_at_index: u64,
    },
    /// A change to the operators named no authorising operator, and the store has
    /// operators already (only the first operator is set without one).
    #[error("{why}")]
    AuthorisationRequired {
        /// Why, for a person.
        why: String,
    },
    /// The authorising operator's role may not make this change (see
    /// [`Staff::may_set_operator`](crate::staff::Staff::may_set_operator)).
    #[error("{rule}")]
    RoleInsufficient {
        /// The authorising operator (`None`: the first operator's bootstrap).
        authorised_by: Option<String>,
        /// The rule the change breaks, for a person.
        rule: String,
    },
    /// The change would take the admin role from the store's only admin, leaving nobody
    /// who can appoint managers or admins.
    #[error("{operator_id:?} is the store's only admin: appoint another admin first, then change or disable {operator_id:?}")]
    LastAdmin {
        /// The only admin.
        operator_id: String,
    },
    /// The authorising operator's role is below what the operation needs (the role
    /// matrix, [`crate::roles`]).
    #[error("{authorised_by:?} is {} and may not {operation}: it needs {} or above", role.with_article(), needed.with_article())]
    RoleForbidden {
        /// The authorising operator.
        authorised_by: String,
        /// Their role.
        role: crate::staff::Role,
        /// The lowest role allowed.
        needed: crate::staff::Role,
        /// The operation, in words.
        operation: String,
    },
    /// A guarded command proposed without its authorising operator after the store began
    /// enforcing roles (see [`crate::roles`]).
    #[error("to {operation} the store needs an authorising operator ({} or above) with their PIN", needed.with_article())]
    OperatorRequired {
        /// The lowest role allowed.
        needed: crate::staff::Role,
        /// The operation, in words.
        operation: String,
    },
    /// The operator id was disabled for good: it can be neither set again (a returning
    /// person gets a new id) nor given a shift, and a second disable changes nothing.
    #[error("operator {operator_id:?} was disabled for good at log index {disabled_at_index}: their id is never used again (give the person a new id)")]
    OperatorDisabled {
        /// The operator id.
        operator_id: String,
        /// Log index of the disable.
        disabled_at_index: u64,
    },
    /// A rules version this binary does not know ([`crate::rules`]): it cannot follow it.
    #[error("rules version {version} is unknown to this posmesh (it knows {known_from}–{known_up_to}): upgrade every device before adopting it")]
    RulesVersionUnknown {
        /// The version asked for.
        version: u32,
        /// The oldest version known.
        known_from: u32,
        /// The newest version known.
        known_up_to: u32,
    },
    /// A rules version below the store's: rules never go back.
    #[error("the store follows rules version {current}: rules never go back to {requested}")]
    RulesVersionNotNewer {
        /// The store's version.
        current: u32,
        /// The version asked for.
        requested: u32,
    },
}
