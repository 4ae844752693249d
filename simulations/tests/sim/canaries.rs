//! Canaries: each planted bug is caught by the checker of the guarantee it breaks, within a
//! few hundred seeds (most within a handful).

use posmesh_simulations::sim::{run_seed, Canary, RunOptions, SimConfig};

/// Most seeds a canary may survive.
const SEEDS_MAX: u64 = 300;

fn seeds_to_catch(canary: Canary) -> Option<u64> {
    let mut options = RunOptions::new(SimConfig::quick());
    options.canary = Some(canary);
    (1..=SEEDS_MAX).find(|&seed| {
        run_seed(seed, &options)
            .violations
            .iter()
            .any(|v| v.checker == canary.caught_by())
    })
}

/// The order canary is caught on a seed that is clean without it, and the violation names
/// the device, the order and the lost line.
#[test]
fn order_ack_before_sync_is_caught_and_the_seed_is_clean_without_it() {
    let canary = Canary::OrderAckBeforeSync;
    let seed = seeds_to_catch(canary).expect("caught within the seed budget");
    let mut options = RunOptions::new(SimConfig::quick());
    options.canary = Some(canary);
    let caught = run_seed(seed, &options);
    let violation = caught
        .violations
        .iter()
        .find(|v| v.checker == "order-convergence")
        .expect("an order-convergence violation");
    assert!(violation.device.is_some(), "{violation}");
    assert!(
        violation.message.contains("order ") && violation.message.contains(" line "),
        "{violation}"
    );
    let clean = run_seed(seed, &RunOptions::new(SimConfig::quick()));
    assert_eq!(
        clean.violations,
        Vec::new(),
        "seed {seed} without the canary"
    );
    assert!(clean.orders.edits_acked > 0, "{:?}", clean.orders);
}

#[test]
fn every_canary_is_caught_by_its_checker() {
    let mut missed = Vec::new();
    for canary in Canary::ALL {
        match seeds_to_catch(canary) {
            Some(seed) => eprintln!(
                "canary {canary}: caught by {} at seed {seed}",
                canary.caught_by()
            ),
            None => missed.push(canary),
        }
    }
    assert!(
        missed.is_empty(),
        "canaries not caught in {SEEDS_MAX} seeds: {missed:?}"
    );
}
