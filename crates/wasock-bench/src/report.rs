//! Tables (three columns and two ratios; four and three for the `p3-*` workloads) and the
//! `BENCHMARKS.md` text around them.

use crate::runner::Mode;
use crate::stats::Summary;
use std::fmt::Write as _;

/// Which way a metric improves, for the reader of a ratio.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Better {
    Higher,
    Lower,
}

/// One metric: a summary per mode, `None` where the mode does not apply.
pub(crate) struct Row {
    pub(crate) metric: String,
    pub(crate) better: Better,
    /// Indexed by [`mode_index`].
    pub(crate) values: [Option<Summary>; 5],
}

impl Row {
    pub(crate) fn new(metric: impl Into<String>, better: Better) -> Row {
        Row {
            metric: metric.into(),
            better,
            values: [None; 5],
        }
    }

    pub(crate) fn set(&mut self, mode: Mode, value: Option<Summary>) {
        self.values[mode_index(mode)] = value;
    }

    fn ratio(&self, a: Mode, b: Mode) -> String {
        match (self.values[mode_index(a)], self.values[mode_index(b)]) {
            (Some(a), Some(b)) if b.median != 0.0 => format!("{:.2}×", a.median / b.median),
            _ => "—".into(),
        }
    }
}

fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Wasock => 0,
        Mode::WasmtimeWasi => 1,
        Mode::Native => 2,
        Mode::P3Wasock => 3,
        Mode::P3WasmtimeWasi => 4,
    }
}

/// The columns of a table and the ratios after them: (mode, heading); (mode ÷ mode, heading).
type Layout = (
    &'static [(Mode, &'static str)],
    &'static [(Mode, Mode, &'static str)],
);

/// The three ways the bench guest runs.
const LAYOUT: Layout = (
    &[
        (Mode::Wasock, "wasock"),
        (Mode::WasmtimeWasi, "wasmtime-wasi"),
        (Mode::Native, "native"),
    ],
    &[
        (Mode::Wasock, Mode::WasmtimeWasi, "wasock / wasmtime-wasi"),
        (Mode::Wasock, Mode::Native, "wasock / native"),
    ],
);

/// A `p3-*` workload's: the 0.3 guest on both hosts, the 0.2 guest on wasock and natively.
const P3_LAYOUT: Layout = (
    &[
        (Mode::P3Wasock, "0.3 on wasock"),
        (Mode::P3WasmtimeWasi, "0.3 on wasmtime-wasi"),
        (Mode::Wasock, "0.2 on wasock"),
        (Mode::Native, "native"),
    ],
    &[
        (
            Mode::P3Wasock,
            Mode::P3WasmtimeWasi,
            "0.3 wasock / 0.3 wasmtime-wasi",
        ),
        (Mode::P3Wasock, Mode::Native, "0.3 wasock / native"),
        (Mode::P3Wasock, Mode::Wasock, "0.3 / 0.2 on wasock"),
    ],
);

/// One workload's results.
pub(crate) struct Table {
    pub(crate) title: String,
    /// What the workload does and how to read it (markdown, may be several lines).
    pub(crate) notes: Vec<String>,
    pub(crate) rows: Vec<Row>,
}

impl Table {
    pub(crate) fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.title);
        for note in &self.notes {
            out.push_str(note);
            out.push_str("\n\n");
        }
        // A table with a 0.3 column is a `p3-*` workload's.
        let p3 = self.rows.iter().any(|r| {
            r.values[mode_index(Mode::P3Wasock)].is_some()
                || r.values[mode_index(Mode::P3WasmtimeWasi)].is_some()
        });
        let (columns, ratios) = if p3 { P3_LAYOUT } else { LAYOUT };
        out.push_str("| metric ");
        let headings = columns.iter().map(|(_, h)| h);
        for heading in headings.chain(ratios.iter().map(|(_, _, h)| h)) {
            let _ = write!(out, "| {heading} ");
        }
        out.push_str("|\n|---");
        for _ in 0..columns.len() + ratios.len() {
            out.push_str("|---");
        }
        out.push_str("|\n");
        // Cells with fewer samples than the fullest cell (failed runs) say how many they have.
        let full = self
            .rows
            .iter()
            .flat_map(|r| r.values.iter().flatten())
            .map(|s| s.n)
            .max()
            .unwrap_or(0);
        for row in &self.rows {
            let arrow = match row.better {
                Better::Higher => "↑",
                Better::Lower => "↓",
            };
            let _ = write!(out, "| {} {arrow} ", row.metric);
            for (mode, _) in columns {
                let _ = write!(out, "| {} ", cell(row.values[mode_index(*mode)], full));
            }
            for (a, b, _) in ratios {
                let _ = write!(out, "| {} ", row.ratio(*a, *b));
            }
            out.push_str("|\n");
        }
        out
    }
}

fn cell(value: Option<Summary>, full: usize) -> String {
    match value {
        None => "—".into(),
        Some(s) if s.n < full => format!(
            "{} ({}–{}) [{} of {full} runs]",
            num(s.median),
            num(s.min),
            num(s.max),
            s.n
        ),
        Some(s) => format!("{} ({}–{})", num(s.median), num(s.min), num(s.max)),
    }
}

/// Three significant digits or so, no exponent.
pub(crate) fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// `YYYY-MM-DD HH:MM UTC` for a time in seconds since the Unix epoch.
pub(crate) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400 + 3_723), "2000-02-29 01:02 UTC");
        assert_eq!(utc(1_767_225_600), "2026-01-01 00:00 UTC");
    }

    #[test]
    fn a_row_with_a_missing_column() {
        let mut row = Row::new("MB/s", Better::Higher);
        row.set(Mode::Wasock, Summary::of(&[2.0]));
        row.set(Mode::WasmtimeWasi, Summary::of(&[1.0]));
        let table = Table {
            title: "t".into(),
            notes: vec![],
            rows: vec![row],
        };
        let md = table.markdown();
        assert!(md.contains("| MB/s ↑ | 2.00 (2.00–2.00) | 1.00 (1.00–1.00) | — | 2.00× | — |"));

        let mut row = Row::new("x", Better::Lower);
        row.set(Mode::Wasock, Summary::of(&[1.0]));
        row.set(Mode::Native, Summary::of(&[1.0, 2.0, 3.0]));
        let table = Table {
            title: "t".into(),
            notes: vec![],
            rows: vec![row],
        };
        assert!(
            table
                .markdown()
                .contains("| 1.00 (1.00–1.00) [1 of 3 runs] |")
        );
    }

    #[test]
    fn a_p3_table() {
        let mut row = Row::new("MB/s", Better::Higher);
        row.set(Mode::P3Wasock, Summary::of(&[4.0]));
        row.set(Mode::P3WasmtimeWasi, Summary::of(&[2.0]));
        row.set(Mode::Wasock, Summary::of(&[1.0]));
        row.set(Mode::Native, Summary::of(&[8.0]));
        let table = Table {
            title: "t".into(),
            notes: vec![],
            rows: vec![row],
        };
        let md = table.markdown();
        assert!(md.contains(
            "| metric | 0.3 on wasock | 0.3 on wasmtime-wasi | 0.2 on wasock | native \
             | 0.3 wasock / 0.3 wasmtime-wasi | 0.3 wasock / native | 0.3 / 0.2 on wasock |\n\
             |---|---|---|---|---|---|---|---|\n"
        ));
        assert!(md.contains(
            "| MB/s ↑ | 4.00 (4.00–4.00) | 2.00 (2.00–2.00) | 1.00 (1.00–1.00) | 8.00 (8.00–8.00) \
             | 2.00× | 0.50× | 4.00× |"
        ));
    }
}
