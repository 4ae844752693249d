//! Whether a card payment may be accepted offline (without the acquirer): a pure decision.
//!
//! A payment of `amount` is accepted only if all of these hold (DESIGN.md guarantee 6):
//! 1. `amount <= floor limit` (per payment);
//! 2. `device's unforwarded exposure + amount <= per-device cap`;
//! 3. `device's unforwarded exposure + amount <= the device's allotment of the store-wide
//!    budget`, where the allotment is the **last Raft-committed** one — the caller passes
//!    it; with no committed allotment the device may take no offline card payment;
//! 4. the oldest unforwarded payment is not older than the maximum offline age (a device
//!    that has not reached the acquirer for too long stops accepting, whatever the amounts).
//!
//! Time is passed in (seconds since the Unix epoch); nothing here reads a clock. Every
//! amount is `i64` minor units of one ISO 4217 currency, and all sums are checked.
//! A refusal is an [`OfflineRefusal`] whose `Display` is a sentence a cashier can act on.

use posmesh_domain::{Currency, Money};
use std::fmt;

/// The store's offline card rules (from its configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflineLimits {
    /// Currency of every amount here and of the payments.
    pub currency: Currency,
    /// Largest single offline card payment, minor units.
    pub floor_limit_minor: i64,
    /// Largest unforwarded offline total one device may hold, minor units.
    pub device_cap_minor: i64,
    /// Longest time an offline payment may stay unforwarded before the device stops
    /// accepting offline payments, seconds.
    pub max_offline_age_secs: u64,
}

/// The device's share of the store-wide offline budget, as last committed by Raft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedAllotment {
    /// Raft log index at which this allotment was committed (for the audit trail).
    pub committed_index: u64,
    /// The device's allotment, minor units.
    pub allotment_minor: i64,
}

/// The device's current unforwarded offline payments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Exposure {
    /// Sum of the device's accepted-but-not-forwarded offline card payments, minor units.
    pub unforwarded_minor: i64,
    /// When the oldest of them was accepted, seconds since the Unix epoch; `None` if none.
    pub oldest_unforwarded_at_secs: Option<u64>,
}

/// Why an offline card payment was refused. `Display` is the cashier's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfflineRefusal {
    /// The amount is zero or negative, or in another currency.
    #[error("Card payment amount {amount} is not valid for this store ({currency}).")]
    InvalidAmount {
        /// The amount asked for.
        amount: Money,
        /// The store's currency.
        currency: Currency,
    },
    /// Over the per-payment floor limit.
    #[error("Card reader is offline: card payments above {limit} cannot be taken now. Ask for a smaller card amount or another way to pay.")]
    OverFloorLimit {
        /// The floor limit.
        limit: Money,
    },
    /// The device's unforwarded total would exceed its cap.
    #[error("Card reader is offline and this till already holds {held} of unsent card payments (limit {limit}). Take at most {room} by card, or another way to pay.")]
    OverDeviceCap {
        /// Unforwarded total now.
        held: Money,
        /// The cap.
        limit: Money,
        /// What could still be taken (cap − held, at least 0).
        room: Money,
    },
    /// The device has no committed allotment of the store budget.
    #[error("Card reader is offline and this till has no offline card allowance from the store yet. Take another way to pay.")]
    NoAllotment,
    /// The device's allotment of the store budget would be exceeded.
    #[error("Card reader is offline and the store's offline card budget for this till is used up ({held} of {limit}). Take at most {room} by card, or another way to pay.")]
    OverAllotment {
        /// Unforwarded total now.
        held: Money,
        /// The committed allotment.
        limit: Money,
        /// What could still be taken.
        room: Money,
    },
    /// The oldest unforwarded payment is too old.
    #[error("Card reader has been offline too long (oldest unsent card payment is {age_mins} minutes old, limit {max_mins}). Take another way to pay until the connection is back.")]
    TooLongOffline {
        /// Age of the oldest unforwarded payment, minutes (rounded down).
        age_mins: u64,
        /// The maximum, minutes (rounded down).
        max_mins: u64,
    },
    /// The exposure sum overflowed (corrupt input).
    #[error("Card reader is offline and this till's offline totals are inconsistent. Take another way to pay and call the manager.")]
    Inconsistent,
}

impl OfflineRefusal {
    /// A stable machine code for the refusal (`over_floor_limit`, …).
    pub fn code(&self) -> &'static str {
        match self {
            OfflineRefusal::InvalidAmount { .. } => "invalid_amount",
            OfflineRefusal::OverFloorLimit { .. } => "over_floor_limit",
            OfflineRefusal::OverDeviceCap { .. } => "over_device_cap",
            OfflineRefusal::NoAllotment => "no_allotment",
            OfflineRefusal::OverAllotment { .. } => "over_allotment",
            OfflineRefusal::TooLongOffline { .. } => "too_long_offline",
            OfflineRefusal::Inconsistent => "inconsistent",
        }
    }
}

/// Decides whether an offline card payment of `amount` may be accepted at `now_secs`.
///
/// # Errors
/// The first rule broken, in the order of the module doc (age first: it overrides amounts).
pub fn decide(
    limits: &OfflineLimits,
    exposure: &Exposure,
    allotment: Option<&CommittedAllotment>,
    amount: Money,
    now_secs: u64,
) -> Result<(), OfflineRefusal> {
    let money = |minor| Money::new(minor, limits.currency);
    if amount.currency != limits.currency || amount.minor <= 0 {
        return Err(OfflineRefusal::InvalidAmount {
            amount,
            currency: limits.currency,
        });
    }
    if exposure.unforwarded_minor < 0 {
        return Err(OfflineRefusal::Inconsistent);
    }
    if let Some(oldest) = exposure.oldest_unforwarded_at_secs {
        let age = now_secs.saturating_sub(oldest);
        if age > limits.max_offline_age_secs {
            return Err(OfflineRefusal::TooLongOffline {
                age_mins: age / 60,
                max_mins: limits.max_offline_age_secs / 60,
            });
        }
    }
    if amount.minor > limits.floor_limit_minor {
        return Err(OfflineRefusal::OverFloorLimit {
            limit: money(limits.floor_limit_minor),
        });
    }
    let held = exposure.unforwarded_minor;
    let after = held
        .checked_add(amount.minor)
        .ok_or(OfflineRefusal::Inconsistent)?;
    let room = |limit: i64| money(limit.saturating_sub(held).max(0));
    if after > limits.device_cap_minor {
        return Err(OfflineRefusal::OverDeviceCap {
            held: money(held),
            limit: money(limits.device_cap_minor),
            room: room(limits.device_cap_minor),
        });
    }
    let allotment = allotment.ok_or(OfflineRefusal::NoAllotment)?;
    if after > allotment.allotment_minor {
        return Err(OfflineRefusal::OverAllotment {
            held: money(held),
            limit: money(allotment.allotment_minor),
            room: room(allotment.allotment_minor),
        });
    }
    Ok(())
}

impl fmt::Display for OfflineLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let money = |minor| Money::new(minor, self.currency);
        write!(
            f,
            "floor limit {}, device cap {}, max offline age {} s",
            money(self.floor_limit_minor),
            money(self.device_cap_minor),
            self.max_offline_age_secs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gbp() -> Currency {
        Currency::from_code("GBP").expect("GBP")
    }

    fn limits() -> OfflineLimits {
        OfflineLimits {
            currency: gbp(),
            floor_limit_minor: 5_000,
            device_cap_minor: 20_000,
            max_offline_age_secs: 3_600,
        }
    }

    const ALLOT: CommittedAllotment = CommittedAllotment {
        committed_index: 7,
        allotment_minor: 15_000,
    };

    fn held(minor: i64, at: u64) -> Exposure {
        Exposure {
            unforwarded_minor: minor,
            oldest_unforwarded_at_secs: Some(at),
        }
    }

    #[test]
    fn each_rule_refuses_with_a_readable_reason() {
        let gbp = |m| Money::new(m, gbp());
        let none = Exposure::default();
        assert_eq!(
            decide(&limits(), &none, Some(&ALLOT), gbp(5_000), 0),
            Ok(())
        );
        let e = decide(&limits(), &none, Some(&ALLOT), gbp(5_001), 0).expect_err("floor");
        assert_eq!(e.code(), "over_floor_limit");
        assert!(e.to_string().contains("above GBP 50.00"), "{e}");
        // Device cap below the allotment.
        let big = CommittedAllotment {
            committed_index: 8,
            allotment_minor: 100_000,
        };
        let e =
            decide(&limits(), &held(18_000, 100), Some(&big), gbp(3_000), 200).expect_err("cap");
        assert_eq!(e.code(), "over_device_cap");
        assert!(e.to_string().contains("Take at most GBP 20.00"), "{e}");
        // Allotment below the device cap.
        let e = decide(&limits(), &held(14_000, 100), Some(&ALLOT), gbp(1_001), 200)
            .expect_err("allotment");
        assert_eq!(e.code(), "over_allotment");
        assert!(e.to_string().contains("GBP 140.00 of GBP 150.00"), "{e}");
        assert_eq!(
            decide(&limits(), &held(14_000, 100), Some(&ALLOT), gbp(1_000), 200),
            Ok(())
        );
        // No committed allotment: nothing offline.
        let e = decide(&limits(), &none, None, gbp(1), 0).expect_err("no allotment");
        assert_eq!(e, OfflineRefusal::NoAllotment);
        // Too old: even a small payment is refused.
        let e = decide(
            &limits(),
            &held(100, 1_000),
            Some(&ALLOT),
            gbp(1),
            1_000 + 3_601,
        )
        .expect_err("age");
        assert_eq!(
            e,
            OfflineRefusal::TooLongOffline {
                age_mins: 60,
                max_mins: 60
            }
        );
        assert!(e.to_string().contains("offline too long"), "{e}");
        assert_eq!(
            decide(
                &limits(),
                &held(100, 1_000),
                Some(&ALLOT),
                gbp(1),
                1_000 + 3_600
            ),
            Ok(())
        );
        // Bad amounts.
        for bad in [
            gbp(0),
            gbp(-5),
            Money::new(100, Currency::from_code("EUR").expect("EUR")),
        ] {
            let e = decide(&limits(), &none, Some(&ALLOT), bad, 0).expect_err("bad");
            assert_eq!(e.code(), "invalid_amount");
        }
        let e = decide(&limits(), &held(i64::MAX, 0), Some(&ALLOT), gbp(1), 0).expect_err("o");
        assert_eq!(e, OfflineRefusal::Inconsistent);
    }

    proptest! {
        /// Whatever sequence of offline payments is attempted (with some forwarded in
        /// between), the accepted unforwarded total never exceeds the cap or the
        /// allotment, no accepted payment exceeds the floor limit, and nothing is accepted
        /// while the oldest unforwarded payment is older than the maximum age.
        #[test]
        fn accepted_exposure_never_exceeds_any_limit(
            floor in 1i64..10_000,
            cap in 0i64..50_000,
            allot in proptest::option::of(0i64..50_000),
            max_age in 0u64..10_000,
            steps in proptest::collection::vec((1i64..12_000, 0u64..2_000, any::<bool>()), 1..60),
        ) {
            let limits = OfflineLimits {
                currency: gbp(),
                floor_limit_minor: floor,
                device_cap_minor: cap,
                max_offline_age_secs: max_age,
            };
            let allotment = allot.map(|a| CommittedAllotment { committed_index: 1, allotment_minor: a });
            let mut queue: Vec<(i64, u64)> = Vec::new();
            let mut now = 0u64;
            for (amount, dt, forward_all) in steps {
                now += dt;
                if forward_all {
                    queue.clear();
                }
                let exposure = Exposure {
                    unforwarded_minor: queue.iter().map(|(a, _)| a).sum(),
                    oldest_unforwarded_at_secs: queue.first().map(|(_, t)| *t),
                };
                let accepted = decide(&limits, &exposure, allotment.as_ref(), Money::new(amount, gbp()), now).is_ok();
                if accepted {
                    prop_assert!(amount <= floor);
                    prop_assert!(allotment.is_some());
                    if let Some((_, oldest)) = queue.first() {
                        prop_assert!(now - oldest <= max_age);
                    }
                    queue.push((amount, now));
                    let total: i64 = queue.iter().map(|(a, _)| a).sum();
                    prop_assert!(total <= cap);
                    prop_assert!(total <= allotment.map_or(0, |a| a.allotment_minor));
                }
            }
        }
    }
}
