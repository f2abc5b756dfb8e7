//! `wasock run`'s limit flags: each sets one field of `wasock::limits::Limits`; unset ones keep
//! the library's defaults.

use clap::Args;
use std::time::Duration;
use wasock::limits::Limits;

#[derive(Args)]
pub(crate) struct LimitArgs {
    /// Most sockets open at once (TCP and UDP); more is `new-socket-limit` [default: 1024].
    #[arg(long, value_name = "N")]
    max_sockets: Option<usize>,
    /// No socket limit (beyond the host's file descriptors).
    #[arg(long, conflicts_with = "max_sockets")]
    unlimited_sockets: bool,
    /// Most name lookups under way at once; more is `temporary-resolver-failure` [default: 16].
    #[arg(long, value_name = "N")]
    max_lookups: Option<usize>,
    /// Seconds a lookup may take before `temporary-resolver-failure` [default: 10].
    #[arg(long, value_name = "SECS")]
    lookup_timeout: Option<f64>,
    /// Seconds a TCP connect may take before `timeout` [default: 60]; 0: the OS's own.
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<f64>,
    /// Bytes buffered host-side per TCP output stream (one check-write grant) [default: 65536].
    #[arg(long, value_name = "BYTES")]
    write_buffer: Option<usize>,
    /// Most connections a listener holds pending [default: 1024].
    #[arg(long, value_name = "N")]
    max_backlog: Option<u32>,
    /// Bytes per second the guest may receive, TCP and UDP [default: unlimited].
    #[arg(long, value_name = "BYTES")]
    bandwidth_in: Option<u64>,
    /// Bytes per second the guest may send, TCP and UDP [default: unlimited].
    #[arg(long, value_name = "BYTES")]
    bandwidth_out: Option<u64>,
}

impl LimitArgs {
    /// The limits, or a one-line error naming the flag.
    pub(crate) fn limits(&self) -> Result<Limits, String> {
        let mut l = Limits::default();
        if let Some(n) = self.max_sockets {
            l.max_sockets = Some(n);
        }
        if self.unlimited_sockets {
            l.max_sockets = None;
        }
        if let Some(n) = self.max_lookups {
            l.max_lookups = n;
        }
        if let Some(s) = self.lookup_timeout {
            l.lookup_timeout = seconds("--lookup-timeout", s)?;
        }
        if let Some(s) = self.connect_timeout {
            l.connect_timeout = (s != 0.0)
                .then(|| seconds("--connect-timeout", s))
                .transpose()?;
        }
        if let Some(n) = self.write_buffer {
            if n == 0 {
                return Err("--write-buffer: must be at least 1 byte".into());
            }
            l.write_buffer = n;
        }
        if let Some(n) = self.max_backlog {
            l.max_backlog = n.max(1);
        }
        for (flag, rate, field) in [
            ("--bandwidth-in", self.bandwidth_in, &mut l.bandwidth_in),
            ("--bandwidth-out", self.bandwidth_out, &mut l.bandwidth_out),
        ] {
            match rate {
                Some(0) => return Err(format!("{flag}: must be at least 1 byte per second")),
                Some(r) => *field = Some(r),
                None => {}
            }
        }
        Ok(l)
    }
}

fn seconds(flag: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("{flag}: expected a number of seconds, got {s}"))
}
