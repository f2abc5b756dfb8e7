//! `wasock run`'s limit flags: each sets one field of `wasock::limits::Limits`; unset ones keep
//! the library's defaults.
//!
//! The values are read by `Limits::set` rather than by clap, so that a bad one is one line
//! naming the flag and quoting the value (whole numbers past their type's range saturate to its
//! largest value; seconds past `wasock::limits::FOREVER`, `inf` included, saturate to it).

use clap::Args;
use wasock::limits::Limits;

#[derive(Args)]
#[command(next_help_heading = "Limits (per instance)")]
pub(crate) struct LimitArgs {
    /// Most sockets open at once (TCP and UDP); more is `new-socket-limit`; 0: none
    /// [default: 1024].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    max_sockets: Option<String>,
    /// No socket limit (beyond the host's file descriptors).
    #[arg(long, conflicts_with = "max_sockets")]
    unlimited_sockets: bool,
    /// Most name lookups under way at once; more is `temporary-resolver-failure`; 0: none that
    /// needs the resolver [default: 16].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    max_lookups: Option<String>,
    /// Seconds a lookup may take before `temporary-resolver-failure`; 0: only answers at hand;
    /// `inf`: no limit [default: 10].
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    lookup_timeout: Option<String>,
    /// Seconds a TCP connect may take before `timeout`; 0 or `inf`: only the OS's own limit
    /// [default: 60].
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    connect_timeout: Option<String>,
    /// Bytes buffered host-side per TCP output stream (one check-write grant), 1 to 16777216
    /// (more counts as 16 MiB) [default: 65536].
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    write_buffer: Option<String>,
    /// Most connections a listener holds pending; 0 counts as 1, the OS caps it too
    /// [default: 1024].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    max_backlog: Option<String>,
    /// Bytes per second the guest may receive, TCP and UDP, at least 1 [default: unlimited].
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    bandwidth_in: Option<String>,
    /// Bytes per second the guest may send, TCP and UDP, at least 1 [default: unlimited].
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    bandwidth_out: Option<String>,
}

impl LimitArgs {
    /// The limits, or a one-line error naming the flag and quoting its value.
    pub(crate) fn limits(&self) -> Result<Limits, String> {
        let mut l = Limits::default();
        for (name, text) in [
            ("max-sockets", &self.max_sockets),
            ("max-lookups", &self.max_lookups),
            ("lookup-timeout", &self.lookup_timeout),
            ("connect-timeout", &self.connect_timeout),
            ("write-buffer", &self.write_buffer),
            ("max-backlog", &self.max_backlog),
            ("bandwidth-in", &self.bandwidth_in),
            ("bandwidth-out", &self.bandwidth_out),
        ] {
            if let Some(text) = text {
                l.set(name, text).map_err(|e| format!("--{name}: {e}"))?;
            }
        }
        if self.unlimited_sockets {
            l.max_sockets = None;
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;
    use wasock::limits::{FOREVER, MAX_WRITE_BUFFER};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: LimitArgs,
    }

    /// The limits from `args`, or the one-line error.
    fn limits(args: &[&str]) -> Result<Limits, String> {
        let cli = Cli::try_parse_from(std::iter::once("wasock").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.limits.limits()
    }

    fn error(args: &[&str]) -> String {
        let e = limits(args).expect_err("an error");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.starts_with(args[0]), "names the flag: {e}");
        e
    }

    #[test]
    fn timeouts_saturate_at_forever() {
        for huge in [
            "1e19",
            "1e400",
            "inf",
            "+inf",
            "infinity",
            "18446744073709551616",
        ] {
            let l = limits(&["--connect-timeout", huge, "--lookup-timeout", huge]).unwrap();
            assert_eq!(l.connect_timeout, Some(FOREVER), "{huge}");
            assert_eq!(l.lookup_timeout, FOREVER, "{huge}");
        }
        let l = limits(&["--connect-timeout", "0", "--lookup-timeout", "0"]).unwrap();
        assert_eq!(
            (l.connect_timeout, l.lookup_timeout),
            (None, Duration::ZERO)
        );
        let l = limits(&["--connect-timeout=-0", "--lookup-timeout", "2.5"]).unwrap();
        assert_eq!(l.connect_timeout, None);
        assert_eq!(l.lookup_timeout, Duration::from_millis(2500));
        // A positive value too small for a nanosecond is a (zero) timeout, not "the OS's own".
        let l = limits(&["--connect-timeout", "1e-300"]).unwrap();
        assert_eq!(l.connect_timeout, Some(Duration::ZERO));
    }

    #[test]
    fn bad_seconds_are_one_line_errors() {
        for flag in ["--connect-timeout", "--lookup-timeout"] {
            for bad in [
                "NaN", "nan", "-1", "-inf", "-1e400", "0x10", "", " 1", "1s", "1,5",
            ] {
                let e = error(&[flag, bad]);
                assert!(e.contains("expected a number of seconds"), "{e}");
                assert!(e.contains(&format!("{bad:?}")), "quotes the value: {e}");
            }
        }
        assert!(error(&["--connect-timeout", "-1"]).contains("0 or more"));
        // A value with a newline still makes one line.
        let e = error(&["--lookup-timeout", "1\n2"]);
        assert!(e.contains(r#""1\n2""#), "{e}");
    }

    #[test]
    fn counts_saturate_at_their_type_s_largest_value() {
        let huge = "18446744073709551616";
        let l = limits(&[
            "--max-sockets",
            huge,
            "--max-lookups",
            huge,
            "--write-buffer",
            huge,
            "--max-backlog",
            huge,
            "--bandwidth-in",
            huge,
            "--bandwidth-out",
            "18446744073709551615",
        ])
        .unwrap();
        assert_eq!(l.max_sockets, Some(usize::MAX));
        assert_eq!(l.max_lookups, usize::MAX);
        assert_eq!(l.write_buffer, MAX_WRITE_BUFFER);
        assert_eq!(l.max_backlog, u32::MAX);
        assert_eq!(
            (l.bandwidth_in, l.bandwidth_out),
            (Some(u64::MAX), Some(u64::MAX))
        );
        let l = limits(&[
            "--max-backlog",
            "4294967296",
            "--write-buffer",
            "4294967296",
        ])
        .unwrap();
        assert_eq!(
            (l.max_backlog, l.write_buffer),
            (u32::MAX, MAX_WRITE_BUFFER)
        );
    }

    #[test]
    fn zero_counts_keep_their_meaning() {
        let l = limits(&[
            "--max-sockets",
            "0",
            "--max-lookups",
            "0",
            "--max-backlog",
            "0",
        ])
        .unwrap();
        assert_eq!(
            (l.max_sockets, l.max_lookups, l.max_backlog),
            (Some(0), 0, 1)
        );
        for flag in ["--write-buffer", "--bandwidth-in", "--bandwidth-out"] {
            assert!(error(&[flag, "0"]).contains("must be at least 1"), "{flag}");
        }
        assert_eq!(limits(&["--unlimited-sockets"]).unwrap().max_sockets, None);
    }

    #[test]
    fn bad_counts_are_one_line_errors() {
        for flag in [
            "--max-sockets",
            "--max-lookups",
            "--write-buffer",
            "--max-backlog",
            "--bandwidth-in",
            "--bandwidth-out",
        ] {
            assert!(error(&[flag, "-1"]).contains(r#"must not be negative, got "-1""#));
            for bad in ["", "0x10", "1e3", "1.5", "12 ", "ten", "1_000"] {
                let e = error(&[flag, bad]);
                assert!(
                    e.contains(&format!("expected a whole number, got {bad:?}")),
                    "{e}"
                );
            }
        }
    }
}
