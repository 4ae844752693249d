//! [`StoreState`]: the store's replicated state and its sans-IO, deterministic
//! `apply(index, command) -> response`.
//!
//! Pure: no clock, no randomness, no I/O. The only inputs are the command and the log index
//! it was committed at, so every replica that applies the same log gets the same state and
//! the same responses (Raft paper §5.3, "state machine safety": replicas apply the same
//! commands in the same order).

use crate::command::{Outcome, Refusal, StoreCommand, StoreResponse};
use posmesh_domain::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Longest accepted id (card, redemption, device, serial), bytes. Ids end up in every
/// snapshot; a bound keeps a bad client from bloating them.
pub const MAX_ID_BYTES: usize = 128;

/// A gift card's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftCard {
    /// Current balance, minor units of `currency`; never below zero.
    pub balance_minor: i64,
    /// The card's currency.
    pub currency: Currency,
    /// Log index of the issue.
    pub issued_at_index: u64,
}

/// One applied redemption, kept so that a retry of the same `redemption_id` returns the same
/// outcome instead of taking the amount twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    /// The card redeemed.
    pub card_id: String,
    /// Amount taken, minor units.
    pub amount_minor: i64,
    /// Balance right after, minor units.
    pub balance_after_minor: i64,
    /// Log index at which it was applied.
    pub applied_at_index: u64,
}

/// The current catalog/price version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogVersion {
    /// The version.
    pub version: u64,
    /// When its prices apply, ms since the Unix epoch (UTC).
    pub effective_at_ms: i64,
    /// Log index at which it was set.
    pub set_at_index: u64,
}

/// A recorded day close: the consistent cut of the sales ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayClose {
    /// Per device id, the last journal sequence number included.
    pub version_vector: BTreeMap<String, u64>,
    /// Log index of the close.
    pub closed_at_index: u64,
}

/// The store's offline card exposure: the budget and the per-device allotments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    /// Store-wide budget (minor units, currency), once set.
    pub budget: Option<(i64, Currency)>,
    /// Per device id, its allotment in minor units of the budget's currency.
    pub allotments: BTreeMap<String, i64>,
}

impl Exposure {
    /// Sum of all allotments, minor units (`None` on overflow, which the rules prevent).
    pub fn allotted_minor(&self) -> Option<i64> {
        self.allotments
            .values()
            .try_fold(0_i64, |sum, amount| sum.checked_add(*amount))
    }
}

/// The store's replicated state: everything store-wide decisions have established.
///
/// Change it only through [`StoreState::apply`]; read it freely. [`StoreState::default`]
/// is the state of an empty log: rules version 1 ([`crate::rules`]) until an entry adopts
/// another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreState {
    /// Gift cards by card id.
    pub gift_cards: BTreeMap<String, GiftCard>,
    /// Applied redemptions by redemption id: every one ever applied (they deduplicate
    /// retries), so the biggest map of the state and looked up on every redemption. A hash
    /// map (std's SipHash with random keys: ids come from clients) rather than a B-tree: a
    /// B-tree lookup compared ~17 long id strings at 10⁵ redemptions, ~7 % of a busy
    /// store's CPU (P3 profile, BENCHMARKS.md). Serialised in id order, so a state's bytes
    /// do not depend on the map's iteration order.
    #[serde(serialize_with = "serialize_sorted")]
    pub redemptions: HashMap<String, Redemption>,
    /// The current catalog version, once set.
    pub catalog: Option<CatalogVersion>,
    /// Recorded day closes by business date (`YYYY-MM-DD`).
    pub day_closes: BTreeMap<String, DayClose>,
    /// Revoked certificate serials and the log index each revocation is effective from.
    pub revocations: BTreeMap<String, u64>,
    /// Offline card exposure budget and allotments.
    pub exposure: Exposure,
    /// Retired devices and the log index each was retired at (never members again).
    #[serde(default)]
    pub retired_devices: BTreeMap<String, u64>,
    /// The content (TOML) of the current catalog version, when it came with one
    /// ([`StoreCommand::PublishCatalog`]).
    #[serde(default)]
    pub catalog_toml: Option<String>,
    /// Tax rate schedules, versioned with effective times.
    #[serde(default)]
    pub tax: crate::tax::TaxConfig,
    /// Operators (roles, PIN hashes) and shifts.
    #[serde(default)]
    pub staff: crate::staff::Staff,
    /// Applied [`StoreCommand::Idempotent`] writes by Idempotency-Key: the last
    /// [`crate::idempotency::IDEMPOTENT_KEYS_MAX`] recorded.
    #[serde(default)]
    pub idempotent_writes: crate::idempotency::IdempotentWrites,
    /// Log index of the first applied [`StoreCommand::Authorised`] entry: from there on a
    /// guarded command proposed bare is refused (see [`crate::roles`]).
    #[serde(default)]
    pub roles_enforced_from: Option<u64>,
    /// Per device id, the incarnation of its Raft database when it took its seat in the
    /// store's Raft group ([`StoreCommand::RecordRaftIncarnation`]): every Raft call to or
    /// from the device names it, and a device answering under another one lost its Raft
    /// state. A restore from the cloud clears it (every device lost its state).
    #[serde(default)]
    pub raft_incarnations: BTreeMap<String, u64>,
    /// Per device id, where its journal ends for the store ([`crate::ledger_cut`]): set
    /// by the first revocation of its certificate or its retirement that carried one,
    /// never moved.
    #[serde(default)]
    pub ledger_cuts: BTreeMap<String, crate::DeviceCut>,
    /// The rules `apply` follows ([`crate::rules`]): set by [`StoreCommand::AdoptRules`],
    /// never lowered. A state serialised before the field existed is version 1, and a
    /// state at version 1 serialises without it (the bytes it had before).
    #[serde(
        default = "crate::rules::original",
        skip_serializing_if = "crate::rules::is_original"
    )]
    pub rules_version: u32,
}

impl Default for StoreState {
    fn default() -> Self {
        Self {
            gift_cards: BTreeMap::new(),
            redemptions: HashMap::new(),
            catalog: None,
            day_closes: BTreeMap::new(),
            revocations: BTreeMap::new(),
            exposure: Exposure::default(),
            retired_devices: BTreeMap::new(),
            catalog_toml: None,
            tax: crate::tax::TaxConfig::default(),
            staff: crate::staff::Staff::default(),
            idempotent_writes: crate::idempotency::IdempotentWrites::default(),
            roles_enforced_from: None,
            raft_incarnations: BTreeMap::new(),
            ledger_cuts: BTreeMap::new(),
            rules_version: crate::rules::RULES_VERSION_ORIGINAL,
        }
    }
}

impl StoreState {
    /// The state of an empty log that adopted rules `version` ([`crate::rules`]): what a
    /// store founded by this binary holds after its first entry, for checking commands
    /// before they are proposed (provisioning) and for tests.
    pub fn with_rules(version: u32) -> Self {
        Self {
            rules_version: version,
            ..Self::default()
        }
    }

    /// Whether the store's rules are at least `version` ([`crate::rules`]).
    pub fn rules_at_least(&self, version: u32) -> bool {
        self.rules_version >= version
    }

    /// Applies `command`, committed at log `index`, and returns its response.
    ///
    /// Deterministic: same state, index and command → same new state and response. A
    /// [`StoreResponse::Refused`] leaves the state exactly as it was.
    pub fn apply(&mut self, index: u64, command: &StoreCommand) -> StoreResponse {
        self.apply_as(index, command, false)
    }

    /// [`StoreState::apply`]; `authorised`: `command` comes inside a
    /// [`StoreCommand::Authorised`] whose operator the role matrix allowed.
    pub(crate) fn apply_as(
        &mut self,
        index: u64,
        command: &StoreCommand,
        authorised: bool,
    ) -> StoreResponse {
        if !authorised && self.roles_enforced_from.is_some() {
            if let Some(needed) = crate::roles::needed(&self.staff, None, command) {
                return StoreResponse::Refused(Refusal::OperatorRequired {
                    needed: needed.role,
                    operation: needed.operation.to_owned(),
                });
            }
        }
        let result = match command {
            StoreCommand::IssueGiftCard {
                card_id,
                amount_minor,
                currency,
            } => self.issue_gift_card(index, card_id, *amount_minor, *currency),
            StoreCommand::RedeemGiftCard {
                card_id,
                amount_minor,
                redemption_id,
            } => self.redeem_gift_card(index, card_id, *amount_minor, redemption_id),
            StoreCommand::SetCatalogVersion {
                version,
                effective_at_ms,
            } => self.set_catalog_version(index, *version, *effective_at_ms),
            StoreCommand::CloseDay {
                business_date,
                version_vector,
            } => self.close_day(index, business_date, version_vector),
            StoreCommand::RevokeCertificate { serial, cut } => {
                self.revoke_certificate(index, serial, cut.as_ref())
            }
            StoreCommand::SetExposureBudget {
                amount_minor,
                currency,
            } => self.set_exposure_budget(*amount_minor, *currency),
            StoreCommand::SetExposureAllotment {
                device_id,
                amount_minor,
            } => self.set_exposure_allotment(device_id, *amount_minor),
            StoreCommand::RetireDevice {
                device_id,
                up_to_seq,
            } => self.retire_device(index, device_id, *up_to_seq),
            StoreCommand::PublishCatalog {
                version,
                effective_at_ms,
                catalog_toml,
            } => self
                .set_catalog_version(index, *version, *effective_at_ms)
                .inspect(|_| self.catalog_toml = Some(catalog_toml.clone())),
            StoreCommand::SetTaxRates {
                version,
                effective_at_ms,
                rates_bps,
            } => self.tax.set(index, *version, *effective_at_ms, rates_bps),
            // Provisioning (and logs of older versions) set operators unchecked; the API's
            // changes carry who authorised them, checked against the rules here again.
            StoreCommand::SetOperator {
                operator_id,
                name,
                role,
                pin_hash,
            }
            | StoreCommand::SetOperatorAuthorised {
                operator_id,
                name,
                role,
                pin_hash,
                ..
            } => {
                let allowed = match command {
                    StoreCommand::SetOperatorAuthorised { authorised_by, .. } => self
                        .staff
                        .may_set_operator(authorised_by.as_deref(), operator_id, *role),
                    _ => Ok(()),
                };
                allowed.and_then(|()| {
                    self.staff
                        .set_operator(index, operator_id, name, *role, pin_hash)
                })
            }
            StoreCommand::OpenShift {
                shift_id,
                device_id,
                operator_id,
                opening_float_minor,
                currency,
                opened_at_ms,
            } => self.staff.open_shift(
                index,
                shift_id,
                device_id,
                operator_id,
                *opening_float_minor,
                *currency,
                *opened_at_ms,
            ),
            StoreCommand::CloseShift {
                shift_id,
                closed_at_ms,
            } => self.staff.close_shift(index, shift_id, *closed_at_ms),
            StoreCommand::Idempotent {
                idempotency_key,
                request_hash,
                command,
            } => {
                return self.apply_idempotent(
                    index,
                    idempotency_key,
                    request_hash,
                    command,
                    authorised,
                )
            }
            StoreCommand::DisableOperator {
                operator_id,
                disabled_at_ms,
            } => self
                .staff
                .disable_operator(index, operator_id, *disabled_at_ms),
            StoreCommand::RecordRaftIncarnation {
                device_id,
                incarnation,
            } => self.record_raft_incarnation(device_id, *incarnation),
            StoreCommand::AdoptRules { version } => self.adopt_rules(*version),
            StoreCommand::Authorised {
                authorised_by,
                command,
            } => {
                // A replay of an Idempotency-Key whose request committed answers its first
                // outcome, whatever the operator's role is now: the write was authorised
                // when it applied (a follower resends a write whose answer was lost with
                // a dead leader; a role changed in between must not turn it into a
                // refusal of a committed write). Nothing changes either way.
                if let Some(replay) = self.replay_of(command) {
                    return replay;
                }
                if let Err(refusal) = self.staff.may_run(authorised_by, command) {
                    return StoreResponse::Refused(refusal);
                }
                let response = self.apply_as(index, command, true);
                if matches!(response, StoreResponse::Applied(_))
                    && self.roles_enforced_from.is_none()
                {
                    self.roles_enforced_from = Some(index);
                }
                return response;
            }
        };
        match result {
            Ok(outcome) => StoreResponse::Applied(outcome),
            Err(refusal) => StoreResponse::Refused(refusal),
        }
    }

    /// A gift card's balance and currency (a read: for a linearizable answer, read after
    /// `Raft::ensure_linearizable`, see [`crate::read_linearizable`]).
    pub fn gift_card_balance(&self, card_id: &str) -> Option<(i64, Currency)> {
        self.gift_cards
            .get(card_id)
            .map(|card| (card.balance_minor, card.currency))
    }

    /// Whether certificate `serial` is revoked for a decision taken at log index `index`:
    /// true from the revocation's effective index on, never before it.
    pub fn is_revoked_at(&self, serial: &str, index: u64) -> bool {
        self.revocations
            .get(serial)
            .is_some_and(|effective| index >= *effective)
    }

    fn issue_gift_card(
        &mut self,
        index: u64,
        card_id: &str,
        amount_minor: i64,
        currency: Currency,
    ) -> Result<Outcome, Refusal> {
        self.check_issue_gift_card(card_id, amount_minor)?;
        self.gift_cards.insert(
            card_id.to_owned(),
            GiftCard {
                balance_minor: amount_minor,
                currency,
                issued_at_index: index,
            },
        );
        Ok(Outcome::GiftCardIssued {
            card_id: card_id.to_owned(),
            balance_minor: amount_minor,
            currency,
        })
    }

    fn redeem_gift_card(
        &mut self,
        index: u64,
        card_id: &str,
        amount_minor: i64,
        redemption_id: &str,
    ) -> Result<Outcome, Refusal> {
        if let Some(replay) = self.check_redeem_gift_card(card_id, amount_minor, redemption_id)? {
            return Ok(replay);
        }
        let card = self
            .gift_cards
            .get_mut(card_id)
            .ok_or_else(|| Refusal::UnknownGiftCard {
                card_id: card_id.to_owned(),
            })?;
        // Cannot underflow: 0 < amount ≤ balance (checked above).
        card.balance_minor -= amount_minor;
        let balance_after_minor = card.balance_minor;
        let currency = card.currency;
        self.redemptions.insert(
            redemption_id.to_owned(),
            Redemption {
                card_id: card_id.to_owned(),
                amount_minor,
                balance_after_minor,
                applied_at_index: index,
            },
        );
        Ok(Outcome::GiftCardRedeemed {
            card_id: card_id.to_owned(),
            amount_minor,
            balance_after_minor,
            currency,
            applied_at_index: index,
            replayed: false,
        })
    }

    /// What `IssueGiftCard` checks before it changes anything: a valid id, an amount
    /// > 0, a card id never issued.
    pub(crate) fn check_issue_gift_card(
        &self,
        card_id: &str,
        amount_minor: i64,
    ) -> Result<(), Refusal> {
        check_id("card_id", card_id)?;
        check_positive(amount_minor)?;
        if self.gift_cards.contains_key(card_id) {
            return Err(Refusal::GiftCardExists {
                card_id: card_id.to_owned(),
            });
        }
        Ok(())
    }

    /// What `RedeemGiftCard` checks before it changes anything: valid ids, an amount > 0,
    /// a known card, a redemption id not used for another redemption, a balance that
    /// covers the amount. `Some(outcome)`: a retry of the redemption recorded under
    /// `redemption_id`, answered with its first outcome (nothing is taken again).
    pub(crate) fn check_redeem_gift_card(
        &self,
        card_id: &str,
        amount_minor: i64,
        redemption_id: &str,
    ) -> Result<Option<Outcome>, Refusal> {
        check_id("card_id", card_id)?;
        check_id("redemption_id", redemption_id)?;
        check_positive(amount_minor)?;
        let card = self
            .gift_cards
            .get(card_id)
            .ok_or_else(|| Refusal::UnknownGiftCard {
                card_id: card_id.to_owned(),
            })?;
        if let Some(done) = self.redemptions.get(redemption_id) {
            if done.card_id == card_id && done.amount_minor == amount_minor {
                return Ok(Some(Outcome::GiftCardRedeemed {
                    card_id: card_id.to_owned(),
                    amount_minor,
                    balance_after_minor: done.balance_after_minor,
                    currency: card.currency,
                    applied_at_index: done.applied_at_index,
                    replayed: true,
                }));
            }
            return Err(Refusal::RedemptionIdReused {
                redemption_id: redemption_id.to_owned(),
                card_id: done.card_id.clone(),
                amount_minor: done.amount_minor,
            });
        }
        if card.balance_minor < amount_minor {
            return Err(Refusal::InsufficientBalance {
                card_id: card_id.to_owned(),
                balance_minor: card.balance_minor,
                requested_minor: amount_minor,
            });
        }
        Ok(None)
    }

    fn set_catalog_version(
        &mut self,
        index: u64,
        version: u64,
        effective_at_ms: i64,
    ) -> Result<Outcome, Refusal> {
        self.check_catalog_version(version, effective_at_ms)?;
        self.catalog = Some(CatalogVersion {
            version,
            effective_at_ms,
            set_at_index: index,
        });
        Ok(Outcome::CatalogVersionSet {
            version,
            effective_at_ms,
        })
    }

    /// What `SetCatalogVersion` and `PublishCatalog` check before they change anything:
    /// the version is above the one in force and its effective time not before it (a
    /// catalog never goes back, [`Refusal::CatalogVersionNotNewer`]).
    pub(crate) fn check_catalog_version(
        &self,
        version: u64,
        effective_at_ms: i64,
    ) -> Result<(), Refusal> {
        if let Some(current) = self.catalog {
            if version <= current.version || effective_at_ms < current.effective_at_ms {
                return Err(Refusal::CatalogVersionNotNewer {
                    current_version: current.version,
                    current_effective_at_ms: current.effective_at_ms,
                    requested_version: version,
                    requested_effective_at_ms: effective_at_ms,
                });
            }
        }
        Ok(())
    }

    fn close_day(
        &mut self,
        index: u64,
        business_date: &str,
        version_vector: &BTreeMap<String, u64>,
    ) -> Result<Outcome, Refusal> {
        self.check_close_day(business_date, version_vector)?;
        self.day_closes.insert(
            business_date.to_owned(),
            DayClose {
                version_vector: version_vector.clone(),
                closed_at_index: index,
            },
        );
        Ok(Outcome::DayClosed {
            business_date: business_date.to_owned(),
            closed_at_index: index,
        })
    }

    /// What `CloseDay` checks before it changes anything.
    pub(crate) fn check_close_day(
        &self,
        business_date: &str,
        version_vector: &BTreeMap<String, u64>,
    ) -> Result<(), Refusal> {
        if !is_business_date(business_date) {
            return Err(Refusal::InvalidBusinessDate {
                business_date: business_date.to_owned(),
            });
        }
        for device_id in version_vector.keys() {
            check_id("version_vector device id", device_id)?;
        }
        if let Some(closed) = self.day_closes.get(business_date) {
            return Err(Refusal::DayAlreadyClosed {
                business_date: business_date.to_owned(),
                closed_at_index: closed.closed_at_index,
            });
        }
        Ok(())
    }

    fn revoke_certificate(
        &mut self,
        index: u64,
        serial: &str,
        cut: Option<&crate::LedgerCut>,
    ) -> Result<Outcome, Refusal> {
        self.check_revoke_certificate(serial)?;
        // Rules 1 ignore the cut: versions before it did not read the field.
        let cut = cut.filter(|_| self.rules_at_least(2));
        if let Some(cut) = cut {
            check_id("cut.device_id", &cut.device_id)?;
        }
        self.revocations.insert(serial.to_owned(), index);
        if let Some(cut) = cut {
            self.cut_ledger(index, &cut.device_id, cut.up_to_seq);
        }
        Ok(Outcome::CertificateRevoked {
            serial: serial.to_owned(),
            effective_index: index,
        })
    }

    /// What `RevokeCertificate` checks before it changes anything: the serial is canonical
    /// ([`crate::serial::check_canonical`]: revocations match presented certificates by
    /// exact string, so every log keeps the one spelling the mesh reads; rules 1 took any
    /// id of 1–[`MAX_ID_BYTES`] bytes without control characters, [`crate::rules`]) and
    /// not revoked yet.
    pub(crate) fn check_revoke_certificate(&self, serial: &str) -> Result<(), Refusal> {
        if self.rules_at_least(2) {
            crate::serial::check_canonical(serial).map_err(|rule| Refusal::InvalidId {
                field: "serial".to_owned(),
                rule,
            })?;
        } else {
            check_id("serial", serial)?;
        }
        if let Some(effective_index) = self.revocations.get(serial) {
            return Err(Refusal::AlreadyRevoked {
                serial: serial.to_owned(),
                effective_index: *effective_index,
            });
        }
        Ok(())
    }

    fn set_exposure_budget(
        &mut self,
        amount_minor: i64,
        currency: Currency,
    ) -> Result<Outcome, Refusal> {
        check_non_negative(amount_minor)?;
        let allotted_minor = self.exposure.allotted_minor().ok_or(Refusal::Overflow)?;
        if let Some((_, current)) = self.exposure.budget {
            if current != currency && allotted_minor > 0 {
                return Err(Refusal::CurrencyMismatch {
                    current,
                    requested: currency,
                });
            }
        }
        if allotted_minor > amount_minor {
            return Err(Refusal::ExposureBudgetExceeded {
                budget_minor: amount_minor,
                would_allot_minor: allotted_minor,
            });
        }
        self.exposure.budget = Some((amount_minor, currency));
        Ok(Outcome::ExposureBudgetSet {
            budget_minor: amount_minor,
            currency,
            allotted_minor,
        })
    }

    fn retire_device(
        &mut self,
        index: u64,
        device_id: &str,
        up_to_seq: Option<u64>,
    ) -> Result<Outcome, Refusal> {
        if device_id.is_empty() {
            return Err(Refusal::InvalidId {
                field: "device_id".into(),
                rule: "must not be empty".into(),
            });
        }
        let retired_at_index = *self
            .retired_devices
            .entry(device_id.to_owned())
            .or_insert(index);
        // Rules 1 ignore the cut: versions before it did not read the field.
        if let Some(up_to_seq) = up_to_seq.filter(|_| self.rules_at_least(2)) {
            self.cut_ledger(index, device_id, up_to_seq);
        }
        Ok(Outcome::DeviceRetired {
            device_id: device_id.to_owned(),
            retired_at_index,
        })
    }

    /// Pins `device_id`'s Raft seat to `incarnation` (see
    /// [`StoreCommand::RecordRaftIncarnation`]): recorded once; the same again is answered
    /// unchanged, another one refused.
    fn record_raft_incarnation(
        &mut self,
        device_id: &str,
        incarnation: u64,
    ) -> Result<Outcome, Refusal> {
        if device_id.is_empty() || device_id.len() > MAX_ID_BYTES {
            return Err(Refusal::InvalidId {
                field: "device_id".into(),
                rule: format!("must be 1–{MAX_ID_BYTES} bytes"),
            });
        }
        match self.raft_incarnations.get(device_id) {
            Some(pinned) if *pinned != incarnation => Err(Refusal::InvalidId {
                field: "incarnation".into(),
                rule: format!(
                    "{device_id}'s Raft seat is pinned to incarnation {pinned:016x}: a device \
                     that lost its Raft state is enrolled again under a new id"
                ),
            }),
            _ => {
                self.raft_incarnations
                    .insert(device_id.to_owned(), incarnation);
                Ok(Outcome::RaftIncarnationRecorded {
                    device_id: device_id.to_owned(),
                    incarnation,
                })
            }
        }
    }

    /// Switches to rules `version` ([`StoreCommand::AdoptRules`]): a version this binary
    /// knows, not below the current one; the current one again is answered unchanged.
    fn adopt_rules(&mut self, version: u32) -> Result<Outcome, Refusal> {
        if !crate::rules::known(version) {
            return Err(Refusal::RulesVersionUnknown {
                version,
                known_from: crate::rules::RULES_VERSION_ORIGINAL,
                known_up_to: crate::rules::RULES_VERSION_LATEST,
            });
        }
        if version < self.rules_version {
            return Err(Refusal::RulesVersionNotNewer {
                current: self.rules_version,
                requested: version,
            });
        }
        self.rules_version = version;
        Ok(Outcome::RulesAdopted { version })
    }

    /// Records `device_id`'s ledger cut at `up_to_seq` (log index `index`) unless it has
    /// one: the first cut stays ([`crate::ledger_cut`]).
    fn cut_ledger(&mut self, index: u64, device_id: &str, up_to_seq: u64) {
        self.ledger_cuts
            .entry(device_id.to_owned())
            .or_insert(crate::DeviceCut {
                up_to_seq,
                cut_at_index: index,
            });
    }

    /// The last sequence number of `device_id`'s journal the store keeps, if its journal
    /// was cut (its certificate revoked or the device retired, [`crate::ledger_cut`]).
    pub fn ledger_cut(&self, device_id: &str) -> Option<u64> {
        self.ledger_cuts.get(device_id).map(|cut| cut.up_to_seq)
    }

    /// True when `device_id` was retired from the store.
    pub fn is_retired(&self, device_id: &str) -> bool {
        self.retired_devices.contains_key(device_id)
    }

    /// The checks of an allotment that need no budget: a valid id and amount, and from
    /// rules 2 on a device not retired ([`Refusal::DeviceRetired`]; a retirement is never
    /// undone; rules 1 gave a retired device an allotment, [`crate::rules`]).
    pub(crate) fn check_exposure_allotment(
        &self,
        device_id: &str,
        amount_minor: i64,
    ) -> Result<(), Refusal> {
        check_id("device_id", device_id)?;
        check_non_negative(amount_minor)?;
        if !self.rules_at_least(2) {
            return Ok(());
        }
        if let Some(retired_at_index) = self.retired_devices.get(device_id) {
            return Err(Refusal::DeviceRetired {
                device_id: device_id.to_owned(),
                retired_at_index: *retired_at_index,
            });
        }
        Ok(())
    }

    fn set_exposure_allotment(
        &mut self,
        device_id: &str,
        amount_minor: i64,
    ) -> Result<Outcome, Refusal> {
        self.check_exposure_allotment(device_id, amount_minor)?;
        let Some((budget_minor, _)) = self.exposure.budget else {
            return Err(Refusal::NoExposureBudget);
        };
        let others = self
            .exposure
            .allotments
            .iter()
            .filter(|(device, _)| device.as_str() != device_id)
            .try_fold(0_i64, |sum, (_, amount)| sum.checked_add(*amount))
            .ok_or(Refusal::Overflow)?;
        let would_allot_minor = others.checked_add(amount_minor).ok_or(Refusal::Overflow)?;
        if would_allot_minor > budget_minor {
            return Err(Refusal::ExposureBudgetExceeded {
                budget_minor,
                would_allot_minor,
            });
        }
        self.exposure
            .allotments
            .insert(device_id.to_owned(), amount_minor);
        Ok(Outcome::ExposureAllotmentSet {
            device_id: device_id.to_owned(),
            amount_minor,
            unallotted_minor: budget_minor - would_allot_minor,
        })
    }
}

pub(crate) fn check_id(field: &str, id: &str) -> Result<(), Refusal> {
    let rule = if id.is_empty() {
        "must not be empty".to_owned()
    } else if id.len() > MAX_ID_BYTES {
        format!("longer than {MAX_ID_BYTES} bytes")
    } else if id.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(Refusal::InvalidId {
        field: field.to_owned(),
        rule,
    })
}

fn check_positive(amount_minor: i64) -> Result<(), Refusal> {
    if amount_minor > 0 {
        Ok(())
    } else {
        Err(Refusal::InvalidAmount {
            amount_minor,
            rule: "must be greater than zero".to_owned(),
        })
    }
}

fn check_non_negative(amount_minor: i64) -> Result<(), Refusal> {
    if amount_minor >= 0 {
        Ok(())
    } else {
        Err(Refusal::InvalidAmount {
            amount_minor,
            rule: "must not be negative".to_owned(),
        })
    }
}

/// `YYYY-MM-DD` with a real calendar date (Gregorian, leap years included).
fn is_business_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = &text[range];
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year >= 1970 && (1..=days_in_month).contains(&day)
}

/// Serialises `map` in key order (deterministic bytes for a hash map).
fn serialize_sorted<S, V>(map: &HashMap<String, V>, serializer: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    V: Serialize,
{
    let sorted: BTreeMap<&String, &V> = map.iter().collect();
    sorted.serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::from_code("EUR").expect("EUR is ISO 4217")
    }

    fn issue(card: &str, amount: i64) -> StoreCommand {
        StoreCommand::IssueGiftCard {
            card_id: card.into(),
            amount_minor: amount,
            currency: eur(),
        }
    }

    fn redeem(card: &str, amount: i64, id: &str) -> StoreCommand {
        StoreCommand::RedeemGiftCard {
            card_id: card.into(),
            amount_minor: amount,
            redemption_id: id.into(),
        }
    }

    /// The state after an entry adopting rules 2 ([`crate::rules`]).
    fn rules_2() -> StoreState {
        StoreState::with_rules(2)
    }

    fn refused(response: StoreResponse) -> Refusal {
        match response {
            StoreResponse::Refused(refusal) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn gift_card_issue_redeem_and_balance() {
        let mut state = StoreState::default();
        assert!(matches!(
            state.apply(1, &issue("card-1", 5_000)),
            StoreResponse::Applied(Outcome::GiftCardIssued {
                balance_minor: 5_000,
                ..
            })
        ));
        let response = state.apply(2, &redeem("card-1", 1_250, "r-1"));
        assert_eq!(
            response,
            StoreResponse::Applied(Outcome::GiftCardRedeemed {
                card_id: "card-1".into(),
                amount_minor: 1_250,
                balance_after_minor: 3_750,
                currency: eur(),
                applied_at_index: 2,
                replayed: false,
            })
        );
        assert_eq!(state.gift_card_balance("card-1"), Some((3_750, eur())));
        assert_eq!(state.gift_card_balance("nope"), None);
    }

    #[test]
    fn issuing_an_existing_card_is_refused_and_changes_nothing() {
        let mut state = StoreState::default();
        state.apply(1, &issue("card-1", 5_000));
        let before = state.clone();
        assert_eq!(
            refused(state.apply(2, &issue("card-1", 9_000))),
            Refusal::GiftCardExists {
                card_id: "card-1".into()
            }
        );
        assert_eq!(state, before);
    }

    #[test]
    fn redemption_is_exactly_once_per_id() {
        let mut state = StoreState::default();
        state.apply(1, &issue("card-1", 5_000));
        state.apply(2, &redeem("card-1", 1_000, "r-1"));
        // A retry (e.g. after a client timeout) returns the first outcome, takes nothing.
        let retry = state.apply(3, &redeem("card-1", 1_000, "r-1"));
        assert_eq!(
            retry,
            StoreResponse::Applied(Outcome::GiftCardRedeemed {
                card_id: "card-1".into(),
                amount_minor: 1_000,
                balance_after_minor: 4_000,
                currency: eur(),
                applied_at_index: 2,
                replayed: true,
            })
        );
        assert_eq!(state.gift_card_balance("card-1"), Some((4_000, eur())));
        // The same id for another amount is a client bug: refused.
        assert!(matches!(
            refused(state.apply(4, &redeem("card-1", 2_000, "r-1"))),
            Refusal::RedemptionIdReused {
                amount_minor: 1_000,
                ..
            }
        ));
    }

    #[test]
    fn a_states_bytes_do_not_depend_on_the_order_redemptions_were_held() {
        let ids: Vec<String> = (0..200).map(|i| format!("till-{}/{i}", i % 3)).collect();
        let mut forward = StoreState::default();
        let mut backward = StoreState::default();
        forward.apply(1, &issue("card-1", 1_000_000));
        backward.apply(1, &issue("card-1", 1_000_000));
        for (k, id) in ids.iter().enumerate() {
            forward.apply(k as u64 + 2, &redeem("card-1", 1, id));
        }
        // The same redemptions, held in maps built in the other order.
        backward.gift_cards = forward.gift_cards.clone();
        for id in ids.iter().rev() {
            backward
                .redemptions
                .insert(id.clone(), forward.redemptions[id].clone());
        }
        assert_eq!(forward, backward);
        let (a, b) = (
            serde_json::to_vec(&forward).expect("json"),
            serde_json::to_vec(&backward).expect("json"),
        );
        assert_eq!(a, b, "serialised in id order");
        let text = String::from_utf8(a).expect("utf-8");
        let first = text.find("\"till-0/0\"").expect("till-0/0");
        let second = text.find("\"till-0/102\"").expect("till-0/102");
        assert!(first < second, "id order: till-0/0 before till-0/102");
        let back: StoreState = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, forward);
    }

    #[test]
    fn redemption_never_takes_the_balance_below_zero() {
        let mut state = StoreState::default();
        state.apply(1, &issue("card-1", 5_000));
        // Two devices redeem the full balance; Raft orders them, the second is refused.
        assert!(matches!(
            state.apply(2, &redeem("card-1", 5_000, "till-1/7")),
            StoreResponse::Applied(Outcome::GiftCardRedeemed {
                balance_after_minor: 0,
                ..
            })
        ));
        let before = state.clone();
        assert_eq!(
            refused(state.apply(3, &redeem("card-1", 5_000, "till-2/3"))),
            Refusal::InsufficientBalance {
                card_id: "card-1".into(),
                balance_minor: 0,
                requested_minor: 5_000
            }
        );
        assert_eq!(state, before, "a refusal changes nothing");
        // A refused id is not consumed: nothing was taken under it.
        assert!(!state.redemptions.contains_key("till-2/3"));
    }

    #[test]
    fn bad_amounts_and_ids_are_refused() {
        let mut state = StoreState::default();
        assert!(matches!(
            refused(state.apply(1, &issue("card-1", 0))),
            Refusal::InvalidAmount { .. }
        ));
        assert!(matches!(
            refused(state.apply(1, &issue("", 10))),
            Refusal::InvalidId { .. }
        ));
        assert!(matches!(
            refused(state.apply(1, &issue(&"x".repeat(MAX_ID_BYTES + 1), 10))),
            Refusal::InvalidId { .. }
        ));
        state.apply(1, &issue("card-1", 10));
        assert!(matches!(
            refused(state.apply(2, &redeem("card-1", -5, "r"))),
            Refusal::InvalidAmount { .. }
        ));
        assert!(matches!(
            refused(state.apply(2, &redeem("card-2", 5, "r"))),
            Refusal::UnknownGiftCard { .. }
        ));
        assert_eq!(state.redemptions.len(), 0);
    }

    #[test]
    fn catalog_version_never_goes_back() {
        let mut state = StoreState::default();
        let set = |version, effective_at_ms| StoreCommand::SetCatalogVersion {
            version,
            effective_at_ms,
        };
        assert!(matches!(
            state.apply(1, &set(5, 1_000)),
            StoreResponse::Applied(_)
        ));
        assert!(matches!(
            refused(state.apply(2, &set(4, 2_000))),
            Refusal::CatalogVersionNotNewer {
                current_version: 5,
                ..
            }
        ));
        assert!(matches!(
            refused(state.apply(2, &set(5, 2_000))),
            Refusal::CatalogVersionNotNewer { .. }
        ));
        assert!(matches!(
            refused(state.apply(2, &set(6, 999))),
            Refusal::CatalogVersionNotNewer { .. }
        ));
        assert!(matches!(
            state.apply(3, &set(6, 1_000)),
            StoreResponse::Applied(_)
        ));
        assert_eq!(
            state.catalog,
            Some(CatalogVersion {
                version: 6,
                effective_at_ms: 1_000,
                set_at_index: 3
            })
        );
    }

    #[test]
    fn a_day_is_closed_once() {
        let mut state = StoreState::default();
        let close = |date: &str, seq| StoreCommand::CloseDay {
            business_date: date.into(),
            version_vector: BTreeMap::from([("till-1".to_owned(), seq)]),
        };
        assert!(matches!(
            state.apply(7, &close("2016-10-30", 41)),
            StoreResponse::Applied(Outcome::DayClosed {
                closed_at_index: 7,
                ..
            })
        ));
        assert_eq!(
            refused(state.apply(8, &close("2016-10-30", 99))),
            Refusal::DayAlreadyClosed {
                business_date: "2016-10-30".into(),
                closed_at_index: 7
            }
        );
        assert_eq!(state.day_closes["2016-10-30"].version_vector["till-1"], 41);
        for bad in [
            "2016-02-30",
            "2016-13-01",
            "16-10-30",
            "2016-1-300",
            "2016/10/30",
        ] {
            assert!(
                matches!(
                    refused(state.apply(9, &close(bad, 1))),
                    Refusal::InvalidBusinessDate { .. }
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            state.apply(9, &close("2016-02-29", 1)),
            StoreResponse::Applied(_)
        ));
    }

    #[test]
    fn revocation_is_effective_from_its_index_never_before() {
        let mut state = StoreState::default();
        let revoke = StoreCommand::RevokeCertificate {
            serial: "0a1b".into(),
            cut: None,
        };
        state.apply(12, &revoke);
        assert!(!state.is_revoked_at("0a1b", 11));
        assert!(state.is_revoked_at("0a1b", 12));
        assert!(state.is_revoked_at("0a1b", 13));
        assert!(!state.is_revoked_at("ffff", 13));
        assert_eq!(
            refused(state.apply(20, &revoke)),
            Refusal::AlreadyRevoked {
                serial: "0a1b".into(),
                effective_index: 12
            }
        );
    }

    #[test]
    fn only_canonical_serials_are_revoked_and_a_zero_of_an_old_log_still_applies() {
        let mut state = rules_2();
        for bad in ["", "0C", "c", "000c", "0x0c", "0c:1a"] {
            let before = state.clone();
            let refusal = refused(state.apply(
                3,
                &StoreCommand::RevokeCertificate {
                    serial: bad.into(),
                    cut: None,
                },
            ));
            assert!(
                matches!(&refusal, Refusal::InvalidId { field, .. } if field == "serial"),
                "{bad}: {refusal:?}"
            );
            assert_eq!(state, before, "{bad}: a refusal changes nothing");
        }
        // The API refuses a zero serial at the edge, but logs of older versions may hold one.
        let zero = StoreCommand::RevokeCertificate {
            serial: "00".into(),
            cut: None,
        };
        assert!(matches!(state.apply(4, &zero), StoreResponse::Applied(_)));
        assert!(state.is_revoked_at("00", 4));
    }

    #[test]
    fn the_first_ledger_cut_of_a_device_stays() {
        let mut state = rules_2();
        let revoke = |serial: &str, up_to_seq| StoreCommand::RevokeCertificate {
            serial: serial.into(),
            cut: Some(crate::LedgerCut {
                device_id: "till-3".into(),
                up_to_seq,
            }),
        };
        assert!(matches!(
            state.apply(12, &revoke("0c", 7)),
            StoreResponse::Applied(_)
        ));
        assert_eq!(state.ledger_cut("till-3"), Some(7));
        assert_eq!(state.ledger_cut("till-1"), None);
        // Another certificate of the device, then its retirement: the cut never moves.
        state.apply(13, &revoke("0d", 9));
        state.apply(
            14,
            &StoreCommand::RetireDevice {
                device_id: "till-3".into(),
                up_to_seq: Some(11),
            },
        );
        assert_eq!(
            state.ledger_cuts.get("till-3"),
            Some(&crate::DeviceCut {
                up_to_seq: 7,
                cut_at_index: 12
            })
        );
        // A retirement cuts a device that has no cut yet.
        state.apply(
            15,
            &StoreCommand::RetireDevice {
                device_id: "till-2".into(),
                up_to_seq: Some(0),
            },
        );
        assert_eq!(state.ledger_cut("till-2"), Some(0));
        // A cut naming no device is refused whole: the serial is not revoked either.
        let before = state.clone();
        let bad = StoreCommand::RevokeCertificate {
            serial: "0e".into(),
            cut: Some(crate::LedgerCut {
                device_id: String::new(),
                up_to_seq: 1,
            }),
        };
        assert!(matches!(
            refused(state.apply(16, &bad)),
            Refusal::InvalidId { .. }
        ));
        assert_eq!(state, before);
    }

    #[test]
    fn commands_and_states_of_older_versions_decode_without_a_cut() {
        let revoke: StoreCommand =
            serde_json::from_str(r#"{"type":"revoke_certificate","serial":"0c"}"#)
                .expect("an old revocation decodes");
        assert_eq!(
            revoke,
            StoreCommand::RevokeCertificate {
                serial: "0c".into(),
                cut: None
            }
        );
        let retire: StoreCommand =
            serde_json::from_str(r#"{"type":"retire_device","device_id":"till-3"}"#)
                .expect("an old retirement decodes");
        assert_eq!(
            retire,
            StoreCommand::RetireDevice {
                device_id: "till-3".into(),
                up_to_seq: None
            }
        );
        // Without a cut a command serialises as before (request hashes do not change).
        assert_eq!(
            serde_json::to_string(&revoke).expect("serialises"),
            r#"{"type":"revoke_certificate","serial":"0c"}"#
        );
        let mut state = StoreState::default();
        state.apply(3, &revoke);
        assert!(state.ledger_cuts.is_empty());
    }

    #[test]
    fn exposure_allotments_never_exceed_the_budget() {
        let mut state = StoreState::default();
        let allot = |device: &str, amount| StoreCommand::SetExposureAllotment {
            device_id: device.into(),
            amount_minor: amount,
        };
        let budget = |amount| StoreCommand::SetExposureBudget {
            amount_minor: amount,
            currency: eur(),
        };
        assert_eq!(
            refused(state.apply(1, &allot("till-1", 100))),
            Refusal::NoExposureBudget
        );
        state.apply(2, &budget(50_000));
        assert!(matches!(
            state.apply(3, &allot("till-1", 30_000)),
            StoreResponse::Applied(Outcome::ExposureAllotmentSet {
                unallotted_minor: 20_000,
                ..
            })
        ));
        assert_eq!(
            refused(state.apply(4, &allot("till-2", 20_001))),
            Refusal::ExposureBudgetExceeded {
                budget_minor: 50_000,
                would_allot_minor: 50_001
            }
        );
        // Replacing a device's own allotment counts it once.
        assert!(matches!(
            state.apply(5, &allot("till-1", 50_000)),
            StoreResponse::Applied(_)
        ));
        assert!(matches!(
            refused(state.apply(6, &budget(49_999))),
            Refusal::ExposureBudgetExceeded { .. }
        ));
        assert!(matches!(
            refused(state.apply(6, &allot("till-2", -1))),
            Refusal::InvalidAmount { .. }
        ));
        assert!(matches!(
            refused(state.apply(
                6,
                &StoreCommand::SetExposureBudget {
                    amount_minor: i64::MAX,
                    currency: Currency::from_code("GBP").expect("GBP"),
                }
            )),
            Refusal::CurrencyMismatch { .. }
        ));
        assert_eq!(state.exposure.allotted_minor(), Some(50_000));
    }

    #[test]
    fn apply_is_deterministic_and_state_round_trips_through_serde() {
        let commands = vec![
            issue("a", 100),
            redeem("a", 40, "r1"),
            redeem("a", 70, "r2"),
            StoreCommand::SetExposureBudget {
                amount_minor: 10,
                currency: eur(),
            },
            StoreCommand::RevokeCertificate {
                serial: "0a".into(),
                cut: None,
            },
        ];
        let run = || {
            let mut state = StoreState::default();
            let responses: Vec<_> = commands
                .iter()
                .enumerate()
                .map(|(i, c)| state.apply(i as u64 + 1, c))
                .collect();
            (state, responses)
        };
        let (a, ra) = run();
        let (b, rb) = run();
        assert_eq!(a, b);
        assert_eq!(ra, rb);
        let bytes = serde_json::to_vec(&a).expect("serialise");
        let back: StoreState = serde_json::from_slice(&bytes).expect("deserialise");
        assert_eq!(back, a);
        for command in &commands {
            let bytes = serde_json::to_vec(command).expect("serialise");
            let back: StoreCommand = serde_json::from_slice(&bytes).expect("deserialise");
            assert_eq!(&back, command);
        }
    }

    #[test]
    fn a_raft_seat_is_pinned_to_its_first_incarnation() {
        let mut state = StoreState::default();
        let record = |incarnation| StoreCommand::RecordRaftIncarnation {
            device_id: "till-2".into(),
            incarnation,
        };
        let recorded = StoreResponse::Applied(Outcome::RaftIncarnationRecorded {
            device_id: "till-2".into(),
            incarnation: 11,
        });
        assert_eq!(state.apply(3, &record(11)), recorded);
        assert_eq!(
            state.apply(5, &record(11)),
            recorded,
            "the same again: unchanged"
        );
        let before = state.clone();
        match state.apply(6, &record(12)) {
            StoreResponse::Refused(Refusal::InvalidId { field, rule }) => {
                assert_eq!(field, "incarnation");
                assert!(rule.contains("new id"), "{rule}");
            }
            other => panic!("another incarnation accepted: {other:?}"),
        }
        let empty = StoreCommand::RecordRaftIncarnation {
            device_id: String::new(),
            incarnation: 1,
        };
        assert!(matches!(
            state.apply(7, &empty),
            StoreResponse::Refused(Refusal::InvalidId { .. })
        ));
        assert_eq!(state, before, "refusals change nothing");
        assert_eq!(state.raft_incarnations.get("till-2"), Some(&11));
    }

    #[test]
    fn a_retired_device_stays_retired() {
        let mut state = StoreState::default();
        let retire = StoreCommand::RetireDevice {
            device_id: "till-3".into(),
            up_to_seq: None,
        };
        assert_eq!(
            state.apply(4, &retire),
            StoreResponse::Applied(Outcome::DeviceRetired {
                device_id: "till-3".into(),
                retired_at_index: 4
            })
        );
        assert_eq!(
            state.apply(9, &retire),
            StoreResponse::Applied(Outcome::DeviceRetired {
                device_id: "till-3".into(),
                retired_at_index: 4
            })
        );
        assert!(state.is_retired("till-3") && !state.is_retired("till-4"));
        let before = state.clone();
        assert!(matches!(
            state.apply(
                10,
                &StoreCommand::RetireDevice {
                    device_id: String::new(),
                    up_to_seq: None,
                }
            ),
            StoreResponse::Refused(Refusal::InvalidId { .. })
        ));
        assert_eq!(state, before);
    }

    #[test]
    fn a_retired_device_gets_no_allotment() {
        let mut state = rules_2();
        let gbp = Currency::from_code("GBP").expect("GBP");
        state.apply(
            2,
            &StoreCommand::SetExposureBudget {
                amount_minor: 10_000,
                currency: gbp,
            },
        );
        state.apply(
            3,
            &StoreCommand::RetireDevice {
                device_id: "till-3".into(),
                up_to_seq: None,
            },
        );
        let allot = |device: &str| StoreCommand::SetExposureAllotment {
            device_id: device.into(),
            amount_minor: 1_000,
        };
        let before = state.clone();
        let refused = Refusal::DeviceRetired {
            device_id: "till-3".into(),
            retired_at_index: 3,
        };
        assert_eq!(state.precheck(&allot("till-3")), Err(refused.clone()));
        assert_eq!(
            state.apply(4, &allot("till-3")),
            StoreResponse::Refused(refused)
        );
        assert_eq!(state, before, "a refusal changes nothing");
        assert!(matches!(
            state.apply(5, &allot("till-4")),
            StoreResponse::Applied(Outcome::ExposureAllotmentSet { .. })
        ));
    }

    #[test]
    fn a_published_catalog_carries_its_content_and_never_goes_back() {
        let mut state = StoreState::default();
        let publish = |version, toml: &str| StoreCommand::PublishCatalog {
            version,
            effective_at_ms: 1_000,
            catalog_toml: toml.into(),
        };
        assert!(matches!(
            state.apply(3, &publish(2, "v2")),
            StoreResponse::Applied(Outcome::CatalogVersionSet { version: 2, .. })
        ));
        assert_eq!(state.catalog_toml.as_deref(), Some("v2"));
        assert_eq!(state.catalog.map(|c| c.version), Some(2));
        let before = state.clone();
        assert!(matches!(
            state.apply(4, &publish(2, "again")),
            StoreResponse::Refused(Refusal::CatalogVersionNotNewer { .. })
        ));
        assert!(matches!(
            state.apply(5, &publish(1, "older")),
            StoreResponse::Refused(Refusal::CatalogVersionNotNewer { .. })
        ));
        assert_eq!(state, before, "a refused publish changes nothing");
    }
}
