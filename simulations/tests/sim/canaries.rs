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
