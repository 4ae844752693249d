//! The event trace of a run: every input the simulator gives a core and every fault, folded
//! into a digest (always) and kept as text lines (when asked, for `make sim SEED=…`). Two runs
//! of one seed must give the same digest and the same lines.

/// The trace of one run.
#[derive(Clone, Debug)]
pub struct Trace {
    lanes: [u64; 2],
    events: u64,
    lines: Option<Vec<String>>,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Trace {
    /// An empty trace; `keep_lines` keeps a text line per event besides the digest.
    pub fn new(keep_lines: bool) -> Self {
        Self {
            lanes: [0x6a09_e667_f3bc_c908, 0xbb67_ae85_84ca_a73b],
            events: 0,
            lines: keep_lines.then(Vec::new),
        }
    }

    fn fold(&mut self, word: u64) {
        self.lanes[0] = mix(self.lanes[0] ^ word);
        self.lanes[1] = mix(self.lanes[1].rotate_left(23) ^ word ^ 0x3c6e_f372_fe94_f82b);
    }

    /// Records an event `kind` at `now_ms` with its identifying numbers `words`; `line`
    /// describes it and is only called when lines are kept.
    pub fn record(
        &mut self,
        now_ms: u64,
        kind: &'static str,
        words: &[u64],
        line: impl FnOnce() -> String,
    ) {
        self.events += 1;
        self.fold(now_ms);
        for byte in kind.bytes() {
            self.fold(u64::from(byte));
        }
        for &word in words {
            self.fold(word);
        }
        if let Some(lines) = &mut self.lines {
            lines.push(format!("{now_ms:>10} {kind:<14} {}", line()));
        }
    }

    /// Digest of every event so far, 32 hex digits.
    pub fn digest(&self) -> String {
        format!("{:016x}{:016x}", self.lanes[0], self.lanes[1])
    }

    /// Events recorded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The text lines (empty unless kept).
    pub fn lines(&self) -> &[String] {
        self.lines.as_deref().unwrap_or(&[])
    }
}
