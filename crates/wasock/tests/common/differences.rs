//! The table of accepted differences between wasock and the reference hosts,
//! `tests/differences.toml`, read by tests/differential.rs (0.2: both hosts' answers compared)
//! and tests/p3_reference.rs (0.3: the guests assert the WIT; the reference's deviations).

use serde::Deserialize;

/// The table of accepted differences, `tests/differences.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub difference: Vec<Entry>,
}

/// One accepted difference: the checks of `guest` named in `checks`, each answering
/// `wasock` on wasock and `reference` on the reference, for the reason in `wit`/`note`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub guest: String,
    /// Check names, or `(run)` for how the reference's run ended.
    pub checks: Vec<String>,
    /// wasock's answer (normalized observed value).
    pub wasock: String,
    /// The reference's answer.
    pub reference: String,
    /// The reference's answer varies from run to run (it may even agree with wasock's):
    /// `reference` describes it, any answer matches, and the entry is never stale.
    #[serde(default)]
    pub reference_varies: bool,
    /// The WIT sentence that makes wasock's answer the right one, quoted.
    pub wit: String,
    /// Where the sentence is.
    pub source: String,
    /// Why the hosts differ; says so when the reference is wrong by the WIT.
    pub note: String,
}

/// The table, every entry.
pub fn table() -> Vec<Entry> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/differences.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match toml::from_str::<Table>(&text) {
        Ok(t) => t.difference,
        Err(e) => panic!("{path}: {e}"),
    }
}
