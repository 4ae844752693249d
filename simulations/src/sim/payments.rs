//! Card payments in the simulated store (DESIGN.md guarantee 6, and 8 for card data): a
//! sans-IO model driven by the run's seed, beside the ledger world.
//!
//! What is modelled, per seed:
//! - 2–5 devices take card payments over a trading period; the **acquirer** is the
//!   simulator's own decision core (`posmesh_payments::acquirer::Acquirer`) fed the real
//!   ISO 8583 messages (`connector::build_request`); it is **down** in 1–3 outage windows
//!   drawn from the seed (one of them always at the start).
//! - Acquirer up: online 0200 authorizations. Down: the offline decision
//!   (`offline_limits::decide`) with the device's **applied** allotment — allotments are
//!   committed through a modelled Raft log and each device applies it with its own lag
//!   (partitioned devices fall behind), so a device uses its last committed allotment,
//!   never a newer or larger one — and the device's own unforwarded total.
//! - Accepted offline payments are journaled with the masked PAN and the keyed token and
//!   their card data sealed (`card_data::SealedCardData`); the journal replicates to the
//!   forwarder after a random delay.
//! - The **forwarder** is the current leader (leadership moves at random times). It sends
//!   0220, or 0221 when it sent the advice before; responses are lost at random (timeouts)
//!   and leaders crash with advices in flight, so repeats and duplicates reach the acquirer.
//!   An answered advice is acknowledged (journaled), which empties it from every queue.
//!
//! Checkers (one per guarantee, as in [`super::checkers`]):
//! - `exposure-caps`: every offline acceptance kept the device within its cap and its
//!   applied allotment, that allotment was one the log committed, and the store's
//!   unforwarded total stayed within the budget;
//! - `acquirer-exactly-once`: after the last outage every offline payment reached the
//!   acquirer and it accepted each exactly once (unique advices = offline payments), however
//!   many raw arrivals;
//! - `no-clear-pan`: no journal record, queue item or sealed blob holds a PAN in clear.

use super::checkers::Violation;
use super::rng::SimRng;
use posmesh_domain::{Currency, Money};
use posmesh_payments::acquirer::{Acquirer, AcquirerConfig, Action};
use posmesh_payments::card_data::{CardToken, ForwardingCardData, Pan, SealedCardData};
use posmesh_payments::connector::{
    build_request, interpret_response, CardPayment, DateTime, Decision, EntryMode, PaymentRef,
    Terminal,
};
use posmesh_payments::iso8583::Mti;
use posmesh_payments::offline_limits::{self, CommittedAllotment, Exposure, OfflineLimits};
use std::collections::{BTreeMap, BTreeSet};

/// Virtual length of the trading period, ms.
const TRADING_MS: u64 = 4 * 3600 * 1000;
/// The store's offline budget, minor units.
const BUDGET_MINOR: i64 = 60_000;
/// The per-device cap, minor units.
const DEVICE_CAP_MINOR: i64 = 15_000;
/// Floor limit, minor units.
const FLOOR_LIMIT_MINOR: i64 = 4_000;

/// What one payments run found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentsOutcome {
    /// Payments accepted offline.
    pub offline_accepted: u64,
    /// Offline payments refused by the limits.
    pub offline_refused: u64,
    /// Payments approved online.
    pub online_approved: u64,
    /// Acquirer outage windows.
    pub outages: u64,
    /// Advices that reached the acquirer (raw) and distinct ones.
    pub advices: (u64, u64),
    /// Broken guarantees.
    pub violations: Vec<Violation>,
}

/// One offline payment as journaled (what a device stores about it).
#[derive(Clone, Debug)]
struct Journaled {
    device: usize,
    taken_ms: u64,
    payment: CardPayment,
    record: String,
    sealed: SealedCardData,
}

/// A Luhn-valid test PAN for payment `n`.
fn pan_of(n: u64) -> String {
    let body = format!("541333{:09}", n % 1_000_000_000);
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap_or(0);
            match (i % 2 == 0, d * 2) {
                (true, dd) if dd > 9 => dd - 9,
                (true, dd) => dd,
                (false, _) => d,
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Runs the payments model of `seed` with `devices` devices.
pub fn run(rng: &mut SimRng, devices: usize) -> PaymentsOutcome {
    let devices = devices.clamp(2, 5);
    let gbp = Currency::from_code("GBP").expect("GBP is ISO 4217");
    let limits = OfflineLimits {
        currency: gbp,
        floor_limit_minor: FLOOR_LIMIT_MINOR,
        device_cap_minor: DEVICE_CAP_MINOR,
        max_offline_age_secs: 24 * 3600,
    };
    let token_key = [7u8; 32];
    let forwarding_key = [9u8; 32];
    let mut outcome = PaymentsOutcome::default();
    // Outage windows: one at the start, up to two more.
    let mut outages = vec![(0, rng.between(10, 60) * 60_000)];
    for _ in 0..rng.below(3) {
        let start = rng.below(TRADING_MS - 3_600_000);
        outages.push((start, start + rng.between(5, 90) * 60_000));
    }
    outcome.outages = outages.len() as u64;
    let down = |at: u64| outages.iter().any(|(a, b)| (*a..*b).contains(&at));
    // The Raft log of allotments: (index, device, amount), grow-only per device, sum ≤ budget.
    let mut log: Vec<(u64, usize, i64)> = Vec::new();
    let share = BUDGET_MINOR / devices as i64;
    for device in 0..devices {
        log.push((log.len() as u64 + 1, device, share / 2));
    }
    for device in 0..devices {
        if rng.chance(600) {
            log.push((log.len() as u64 + 1, device, share));
        }
    }
    // When each device applies each index (lag; some devices are partitioned for long).
    let apply_ms: Vec<Vec<u64>> = (0..devices)
        .map(|_| {
            let lag = if rng.chance(300) {
                rng.between(1, 120) * 60_000
            } else {
                rng.below(5_000)
            };
            // Raft applies in log order: a later index is never applied before an earlier.
            let mut applied = 0;
            log.iter()
                .map(|(index, _, _)| {
                    applied = u64::max(applied, index * rng.between(1, 30) * 60_000 / 2 + lag);
                    applied
                })
                .collect()
        })
        .collect();
    let applied_allotment = |device: usize, at: u64| -> Option<CommittedAllotment> {
        log.iter()
            .zip(&apply_ms[device])
            .filter(|((_, d, _), applied)| *d == device && **applied <= at)
            .map(|((index, _, amount), _)| CommittedAllotment {
                committed_index: *index,
                allotment_minor: *amount,
            })
            .next_back()
    };
    let mut acquirer = Acquirer::new(AcquirerConfig::default());
    let terminals: Vec<Terminal> = (0..devices)
        .map(|d| Terminal::new(&format!("TILL{d}"), "SIM-STORE").expect("terminal"))
        .collect();
    let mut journal: Vec<Journaled> = Vec::new();
    let mut acked: BTreeSet<usize> = BTreeSet::new();
    let mut unforwarded = vec![0i64; devices];
    let mut oldest: Vec<Option<u64>> = vec![None; devices];
    let mut sent_by: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut pans = Vec::new();
    let mut leader = 0usize;
    let mut now = 0u64;
    let mut n = 0u64;
    while now < TRADING_MS + 6 * 3_600_000 {
        now += rng.between(5, 120) * 1000;
        let trading = now < TRADING_MS;
        if rng.chance(20) {
            leader = rng.index(devices); // an election (or the leader crashed)
        }
        if trading {
            n += 1;
            let device = rng.index(devices);
            let amount = Money::new(rng.between(100, 5_000) as i64, gbp);
            let pan_text = pan_of(n);
            pans.push(pan_text.clone());
            let pan = Pan::parse(&pan_text).expect("test PAN");
            let card = ForwardingCardData::new(pan, "3012").expect("expiry");
            let payment = CardPayment {
                reference: PaymentRef {
                    sale_id: format!("till-{device}:k{n}"),
                    tender_index: 0,
                    attempt: 0,
                },
                card,
                amount,
                taken_at_utc: DateTime::new(1, 1, 12, 0, 0).expect("time"),
                taken_at_local: DateTime::new(1, 1, 12, 0, 0).expect("time"),
                entry_mode: EntryMode::Chip,
            };
            if !down(now) {
                let request = build_request(&terminals[device], &payment, Mti::FinancialRequest)
                    .expect("request");
                if let Action::Respond(response) = acquirer.handle(&request) {
                    if let Ok(Decision::Approved { .. }) = interpret_response(&request, &response) {
                        outcome.online_approved += 1;
                    }
                }
            } else {
                let exposure = Exposure {
                    unforwarded_minor: unforwarded[device],
                    oldest_unforwarded_at_secs: oldest[device].map(|ms| ms / 1000),
                };
                let allotment = applied_allotment(device, now);
                match offline_limits::decide(
                    &limits,
                    &exposure,
                    allotment.as_ref(),
                    amount,
                    now / 1000,
                ) {
                    Ok(()) => {
                        outcome.offline_accepted += 1;
                        unforwarded[device] += amount.minor;
                        oldest[device].get_or_insert(now);
                        check_exposure(&mut outcome, &log, device, allotment, &unforwarded, now);
                        let token = CardToken::new(&token_key, &payment.card.pan);
                        let record = format!(
                            "{}|{}|{}|{}",
                            payment.reference.sale_id,
                            payment.card.pan.masked().as_str(),
                            token.as_str(),
                            amount.minor
                        );
                        let sealed = SealedCardData::seal(
                            &forwarding_key,
                            &payment.reference.sale_id,
                            &payment.card,
                        )
                        .expect("seal");
                        journal.push(Journaled {
                            device,
                            taken_ms: now,
                            payment,
                            record,
                            sealed,
                        });
                    }
                    Err(_) => outcome.offline_refused += 1,
                }
            }
        }
        if !down(now) {
            // The leader forwards what has replicated to it (entries older than 30 s).
            for (i, entry) in journal.iter().enumerate() {
                if acked.contains(&i) || entry.taken_ms + 30_000 > now {
                    continue;
                }
                let sent = sent_by.entry(leader).or_default();
                let mti = if sent.contains(&i) {
                    Mti::FinancialAdviceRepeat
                } else {
                    Mti::FinancialAdvice
                };
                sent.insert(i);
                let advice =
                    build_request(&terminals[entry.device], &entry.payment, mti).expect("advice");
                let answered = matches!(acquirer.handle(&advice), Action::Respond(_));
                if answered && !rng.chance(150) {
                    acked.insert(i);
                    unforwarded[entry.device] -= entry.payment.amount.minor;
                    oldest[entry.device] = journal
                        .iter()
                        .enumerate()
                        .filter(|(j, e)| e.device == entry.device && !acked.contains(j))
                        .map(|(_, e)| e.taken_ms)
                        .min();
                } else if rng.chance(100) {
                    leader = rng.index(devices); // crashed mid-batch
                    break;
                }
            }
        }
    }
    let stats = acquirer.stats();
    let advice = stats.by_class.get("advice").copied().unwrap_or_default();
    outcome.advices = (advice.raw, advice.unique);
    if advice.unique != outcome.offline_accepted || acked.len() as u64 != outcome.offline_accepted {
        outcome.violations.push(Violation {
            checker: "acquirer-exactly-once",
            device: None,
            seq: None,
            message: format!(
                "{} offline payments, the acquirer accepted {} distinct advices ({} raw), {} acknowledged",
                outcome.offline_accepted,
                advice.unique,
                advice.raw,
                acked.len()
            ),
        });
    }
    check_no_clear_pan(&mut outcome, &journal, &pans);
    outcome
}

/// `exposure-caps` at one acceptance.
fn check_exposure(
    outcome: &mut PaymentsOutcome,
    log: &[(u64, usize, i64)],
    device: usize,
    allotment: Option<CommittedAllotment>,
    unforwarded: &[i64],
    now: u64,
) {
    let name = format!("till-{device}");
    let mut fail = |message: String| {
        outcome
            .violations
            .push(Violation::new("exposure-caps", &name, None, message));
    };
    let held = unforwarded[device];
    if held > DEVICE_CAP_MINOR {
        fail(format!(
            "at {now} ms holds {held} unforwarded, cap {DEVICE_CAP_MINOR}"
        ));
    }
    match allotment {
        None => fail(format!(
            "at {now} ms accepted offline without a committed allotment"
        )),
        Some(a) => {
            if held > a.allotment_minor {
                fail(format!(
                    "at {now} ms holds {held}, allotment {}",
                    a.allotment_minor
                ));
            }
            let committed = log.iter().any(|(i, d, amount)| {
                *i == a.committed_index && *d == device && *amount == a.allotment_minor
            });
            if !committed {
                fail(format!(
                    "used allotment {a:?}, which the log never committed"
                ));
            }
        }
    }
    let total: i64 = unforwarded.iter().sum();
    if total > BUDGET_MINOR {
        fail(format!(
            "store holds {total} unforwarded, budget {BUDGET_MINOR}"
        ));
    }
}

/// `no-clear-pan` over every journal record and sealed blob.
fn check_no_clear_pan(outcome: &mut PaymentsOutcome, journal: &[Journaled], pans: &[String]) {
    let pans: BTreeSet<&str> = pans.iter().map(String::as_str).collect();
    for entry in journal {
        let sealed = entry.sealed.as_bytes();
        for pan in &pans {
            let in_record = entry.record.contains(pan);
            let in_blob = sealed.windows(pan.len()).any(|w| w == pan.as_bytes());
            if in_record || in_blob {
                outcome.violations.push(Violation::new(
                    "no-clear-pan",
                    &format!("till-{}", entry.device),
                    None,
                    format!(
                        "payment {} stores a clear PAN",
                        entry.payment.reference.sale_id
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_with_outages_keep_the_payment_guarantees() {
        let mut offline = 0;
        let mut repeats = 0;
        for seed in 1..=20 {
            let mut rng = SimRng::new(seed);
            let outcome = run(&mut rng, 2 + (seed as usize % 4));
            assert!(
                outcome.violations.is_empty(),
                "seed {seed}: {:?}",
                outcome.violations
            );
            assert!(outcome.outages >= 1);
            offline += outcome.offline_accepted;
            repeats += outcome.advices.0 - outcome.advices.1;
        }
        assert!(offline > 0, "the seeds took offline payments");
        assert!(repeats > 0, "the seeds sent repeats or duplicates");
    }

    #[test]
    fn the_exposure_checker_catches_a_device_over_its_allotment() {
        let mut outcome = PaymentsOutcome::default();
        let log = [(1, 0, 1_000)];
        let allotment = CommittedAllotment {
            committed_index: 1,
            allotment_minor: 1_000,
        };
        check_exposure(&mut outcome, &log, 0, Some(allotment), &[1_500, 0], 0);
        assert_eq!(outcome.violations.len(), 1, "{:?}", outcome.violations);
        let forged = CommittedAllotment {
            committed_index: 2,
            allotment_minor: 5_000,
        };
        check_exposure(&mut outcome, &log, 0, Some(forged), &[1_500, 0], 0);
        assert_eq!(
            outcome.violations.len(),
            2,
            "an uncommitted allotment is caught"
        );
    }
}
