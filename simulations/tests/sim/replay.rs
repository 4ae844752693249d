//! A seed replays exactly: two runs give the same event trace, line for line, and keeping
//! the trace's text does not change the run.

use posmesh_simulations::sim::{run_seed, Canary, RunOptions, SimConfig};

#[test]
fn replaying_a_seed_gives_an_identical_event_trace() {
    let mut traced = RunOptions::new(SimConfig::quick());
    traced.keep_trace = true;
    let untraced = RunOptions::new(SimConfig::quick());
    let mut digests = Vec::new();
    for seed in [1, 2, 77, 4_242, u64::MAX] {
        let first = run_seed(seed, &traced);
        let second = run_seed(seed, &traced);
        assert!(first.events > 1_000, "seed {seed}: {} events", first.events);
        assert_eq!(first.trace.len() as u64, first.events);
        assert_eq!(first.trace, second.trace, "seed {seed}: traces differ");
        assert_eq!(first.digest, second.digest);
        assert_eq!(run_seed(seed, &untraced).digest, first.digest);
        digests.push(first.digest);
    }
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), 5, "different seeds, different runs");
}

#[test]
fn a_failing_seed_replays_with_the_same_violations() {
    let mut options = RunOptions::new(SimConfig::quick());
    options.canary = Some(Canary::AckBeforeSync);
    let seed = (1..200)
        .find(|&s| !run_seed(s, &options).violations.is_empty())
        .expect("the canary is caught within 200 seeds");
    let a = run_seed(seed, &options);
    let b = run_seed(seed, &options);
    assert_eq!(a.violations, b.violations);
    assert_eq!(a.digest, b.digest);
    assert_eq!(
        options.replay_command(seed),
        format!("make sim SEED={seed} SIM_ARGS='--canary ack-before-sync'")
    );
}
