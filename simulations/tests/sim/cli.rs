//! `posmesh-sim` (behind `make sim`) prints the seeds run, the faults by kind and the
//! violations, and for a failing seed one command that replays it.

use std::process::Command;

fn sim(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_posmesh-sim"))
        .args(args)
        .output()
        .expect("posmesh-sim runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn a_clean_sweep_prints_seeds_faults_and_zero_violations() {
    let (ok, out) = sim(&["--seeds", "12", "--first-seed", "5", "--threads", "2"]);
    assert!(ok, "{out}");
    assert!(out.contains("seeds run: 12 (seeds 5..=16"), "{out}");
    assert!(out.contains("faults injected: byzantine-link "), "{out}");
    assert!(out.contains("partition "), "{out}");
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l.starts_with("0 violations")),
        "{out}"
    );
}

#[test]
fn a_failing_seed_prints_the_command_that_replays_it() {
    let (ok, out) = sim(&["--seeds", "40", "--canary", "receipt-leak"]);
    assert!(!ok, "violations exit non-zero");
    let replay = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .expect("a replay command");
    let seed = replay
        .strip_prefix("make sim SEED=")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("make sim SEED=…");
    assert_eq!(
        replay,
        format!("make sim SEED={seed} SIM_ARGS='--canary receipt-leak'")
    );
    // What make runs for it: the same seed, traced, with the same violations.
    let (ok, traced) = sim(&["--seed", seed, "--trace", "--canary", "receipt-leak"]);
    assert!(!ok);
    assert!(traced.contains("[receipt-numbers]"), "{traced}");
    assert!(traced.lines().count() > 1_000, "the trace is printed");
}
