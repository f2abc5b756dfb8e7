//! What the two fuzzers (`fuzz_calls`, `policy_fuzz`) share: their environment knobs and the
//! seedable generator under their random choices.

#![allow(dead_code)]

/// An environment variable as a number, if set and valid.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The first case's seed: `var` if set, else from the clock (printed by the caller, so a
/// failure can be replayed).
pub fn first_seed(var: &str) -> u64 {
    env_u64(var).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            % 1_000_000_000_000
    })
}

/// splitmix64: tiny, seedable, good enough to pick test inputs; the same seed, the same run.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// How long a fuzzer runs: `secs` seconds when set, else `cases` cases.
pub struct Budget {
    secs: Option<u64>,
    cases: u64,
    started: std::time::Instant,
}

impl Budget {
    pub fn new(secs: Option<u64>, cases: u64) -> Self {
        Budget {
            secs,
            cases,
            started: std::time::Instant::now(),
        }
    }

    /// Whether a case may start after `done` cases.
    pub fn allows(&self, done: u64) -> bool {
        match self.secs {
            Some(s) => self.started.elapsed() < std::time::Duration::from_secs(s),
            None => done < self.cases,
        }
    }
}
