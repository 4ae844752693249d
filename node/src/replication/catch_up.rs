//! [`CatchUp`]: how far this node is behind what its peers advertise, and the progress
//! lines a person sees while it catches up (a new or long-disconnected device).

use posmesh_sync::replication::VersionVector;
use std::time::{Duration, Instant};

/// A progress line is logged at most this often while catching up.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Below this many entries behind, catching up is routine replication, not worth a line.
pub const CATCH_UP_ENTRIES_MIN: u64 = 100;

/// What [`CatchUp::tick`] has to say.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Catching up started: `behind` entries to fetch.
    Started {
        /// Entries behind the peers' vectors.
        behind: u64,
    },
    /// Still catching up.
    Running {
        /// Entries fetched since the start.
        fetched: u64,
        /// Entries still to fetch.
        behind: u64,
        /// Entries per second since the start.
        rate_per_s: f64,
    },
    /// Caught up.
    Done {
        /// Entries fetched.
        fetched: u64,
        /// How long it took.
        took: Duration,
    },
}

/// Tracks the union of the version vectors peers advertised against what is held.
#[derive(Debug, Default)]
pub struct CatchUp {
    advertised: VersionVector,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    started: Instant,
    held_at_start: u64,
    last_line: Instant,
}

impl CatchUp {
    /// A peer advertised `vector` (it durably holds that much).
    pub fn observe(&mut self, vector: &VersionVector) {
        self.advertised.merge(vector);
    }

    /// Entries some peer holds that `held` lacks.
    pub fn behind(&self, held: &VersionVector) -> u64 {
        self.advertised
            .iter()
            .map(|(device, seq)| seq.saturating_sub(held.get(device)))
            .sum()
    }

    /// Called periodically: the line to log, if one is due.
    pub fn tick(&mut self, held: &VersionVector, now: Instant) -> Option<Progress> {
        let behind = self.behind(held);
        let held_total = held.entries_total();
        match &mut self.running {
            None if behind >= CATCH_UP_ENTRIES_MIN => {
                self.running = Some(Running {
                    started: now,
                    held_at_start: held_total,
                    last_line: now,
                });
                Some(Progress::Started { behind })
            }
            None => None,
            Some(running) if behind == 0 => {
                let done = Progress::Done {
                    fetched: held_total.saturating_sub(running.held_at_start),
                    took: now.saturating_duration_since(running.started),
                };
                self.running = None;
                Some(done)
            }
            Some(running)
                if now.saturating_duration_since(running.last_line) >= PROGRESS_INTERVAL =>
            {
                running.last_line = now;
                let fetched = held_total.saturating_sub(running.held_at_start);
                let secs = now.saturating_duration_since(running.started).as_secs_f64();
                Some(Progress::Running {
                    fetched,
                    behind,
                    rate_per_s: if secs > 0.0 {
                        fetched as f64 / secs
                    } else {
                        0.0
                    },
                })
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(entries: &[(&str, u64)]) -> VersionVector {
        let mut v = VersionVector::new();
        for (device, seq) in entries {
            v.advance(device, *seq);
        }
        v
    }

    #[test]
    fn start_progress_and_done_lines() {
        let t0 = Instant::now();
        let mut catch_up = CatchUp::default();
        assert_eq!(catch_up.tick(&vector(&[]), t0), None);
        catch_up.observe(&vector(&[("till-1", 900), ("till-2", 100)]));
        catch_up.observe(&vector(&[("till-1", 1000)]));
        assert_eq!(catch_up.behind(&vector(&[("till-2", 50)])), 1050);
        assert_eq!(
            catch_up.tick(&vector(&[]), t0),
            Some(Progress::Started { behind: 1100 })
        );
        let partway = vector(&[("till-1", 500)]);
        assert_eq!(
            catch_up.tick(&partway, t0 + Duration::from_millis(500)),
            None
        );
        match catch_up.tick(&partway, t0 + Duration::from_secs(2)) {
            Some(Progress::Running {
                fetched, behind, ..
            }) => assert_eq!((fetched, behind), (500, 600)),
            other => panic!("{other:?}"),
        }
        let all = vector(&[("till-1", 1000), ("till-2", 100)]);
        assert_eq!(
            catch_up.tick(&all, t0 + Duration::from_secs(3)),
            Some(Progress::Done {
                fetched: 1100,
                took: Duration::from_secs(3)
            })
        );
        assert_eq!(catch_up.tick(&all, t0 + Duration::from_secs(9)), None);
    }

    #[test]
    fn a_small_gap_is_routine() {
        let mut catch_up = CatchUp::default();
        catch_up.observe(&vector(&[("till-1", CATCH_UP_ENTRIES_MIN - 1)]));
        assert_eq!(catch_up.tick(&vector(&[]), Instant::now()), None);
    }
}
