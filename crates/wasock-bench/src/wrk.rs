//! Runs `wrk` (a child process) against a loopback URL and reads its report.
//!
//! `wrk --latency` prints, among other lines:
//!
//! ```text
//!   Latency Distribution
//!      50%  123.00us
//!      99%    1.23ms
//!   123456 requests in 10.00s, 12.34MB read
//!   Socket errors: connect 0, read 0, write 0, timeout 0
//!   Non-2xx or 3xx responses: 12
//! Requests/sec:  12345.67
//! ```
//!
//! The `Socket errors` and `Non-2xx` lines appear only when their counts are not all zero.

use crate::cpu;
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long past its `-d` duration a `wrk` run may take before it is killed.
const OVERRUN: Duration = Duration::from_secs(60);

/// One `wrk` invocation.
pub(crate) struct Load<'a> {
    pub(crate) url: &'a str,
    pub(crate) connections: u32,
    pub(crate) threads: u32,
    pub(crate) duration: Duration,
    /// A request that takes longer counts as a timeout (`--timeout`).
    pub(crate) timeout: Duration,
    /// A Lua script (`-s`), e.g. from [`post_script`].
    pub(crate) script: Option<&'a Path>,
}

/// What `wrk` reported, and the CPU time it used.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Report {
    /// Requests completed.
    pub(crate) requests: u64,
    /// The measured time (`requests in 10.00s`).
    pub(crate) elapsed: Duration,
    pub(crate) requests_per_sec: f64,
    pub(crate) p50: Duration,
    pub(crate) p75: Duration,
    pub(crate) p90: Duration,
    pub(crate) p99: Duration,
    pub(crate) errors: SocketErrors,
    /// Responses with a status of 400 or more (wrk: "Non-2xx or 3xx responses").
    pub(crate) non_2xx: u64,
    /// User + system CPU time of the `wrk` process.
    pub(crate) cpu: Duration,
}

/// `Socket errors: connect C, read R, write W, timeout T`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SocketErrors {
    pub(crate) connect: u64,
    pub(crate) read: u64,
    pub(crate) write: u64,
    pub(crate) timeout: u64,
}

/// Whether `wrk` is on the `PATH`.
pub(crate) fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Writes a Lua script that makes every request a `POST` with a `body_len`-byte body.
pub(crate) fn post_script(dir: &Path, body_len: usize) -> Result<PathBuf> {
    let path = dir.join(format!("wrk-post-{body_len}.lua"));
    let script = format!(
        "-- Written by wasock-bench: every request a POST with a {body_len}-byte body.\n\
         wrk.method = \"POST\"\n\
         wrk.body = string.rep(\"x\", {body_len})\n\
         wrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n"
    );
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs `wrk` to completion (killed past its duration plus [`OVERRUN`]) and parses its report.
///
/// The CPU time is that of every child reaped while waiting: only `wrk` itself as long as no
/// other child of this process is reaped meanwhile.
pub(crate) fn run(load: &Load<'_>) -> Result<Report> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .arg(format!("--timeout={}s", load.timeout.as_secs().max(1)))
        .arg("--latency");
    if let Some(script) = load.script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(load.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu0 = cpu::children();
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .context("starting wrk (Debian: apt-get install wrk)")?;
    let limit = load.duration + OVERRUN;
    // Poll rather than block so that a stuck wrk is killed (its output fits the pipe buffer).
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if t0.elapsed() > limit {
            child.kill()?;
            child.wait()?;
            bail!("wrk ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let cpu = cpu::children().saturating_sub(cpu0);
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !status.success() {
        bail!(
            "wrk exited with {status}: {} {}",
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut report = parse(&stdout).with_context(|| format!("wrk printed: {stdout}"))?;
    report.cpu = cpu;
    Ok(report)
}

/// Parses the text `wrk --latency` prints.
pub(crate) fn parse(text: &str) -> Result<Report> {
    let mut report = Report::default();
    let (mut have_p50, mut have_p99, mut have_total, mut have_rate) = (false, false, false, false);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            report.requests_per_sec = number(rest.trim())?;
            have_rate = true;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            report.errors = socket_errors(rest)?;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            report.non_2xx = number(rest.trim())?;
        } else if let Some((count, rest)) = line.split_once(" requests in ") {
            report.requests = number(count.trim())?;
            let secs = rest.split(',').next().unwrap_or(rest).trim();
            report.elapsed = duration(secs)?;
            have_total = true;
        } else if let Some((pct, value)) = line.split_once('%') {
            let slot = match pct.trim() {
                "50" => {
                    have_p50 = true;
                    &mut report.p50
                }
                "75" => &mut report.p75,
                "90" => &mut report.p90,
                "99" => {
                    have_p99 = true;
                    &mut report.p99
                }
                _ => continue,
            };
            *slot = duration(value.trim())?;
        }
    }
    if !(have_p50 && have_p99 && have_total && have_rate) {
        bail!("not a `wrk --latency` report (no percentiles, total or Requests/sec)");
    }
    Ok(report)
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse::<T>()
        .with_context(|| format!("`{s}` is not a number"))
}

/// `connect 0, read 1, write 0, timeout 2`.
fn socket_errors(s: &str) -> Result<SocketErrors> {
    let mut errors = SocketErrors::default();
    for part in s.split(',') {
        let (name, count) = part
            .trim()
            .split_once(' ')
            .ok_or_else(|| anyhow!("malformed socket error count `{part}`"))?;
        let count: u64 = number(count.trim())?;
        match name {
            "connect" => errors.connect = count,
            "read" => errors.read = count,
            "write" => errors.write = count,
            "timeout" => errors.timeout = count,
            other => bail!("unknown socket error kind `{other}`"),
        }
    }
    Ok(errors)
}

/// wrk's time format: a decimal number and `us`, `ms`, `s`, `m` or `h`.
fn duration(s: &str) -> Result<Duration> {
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| anyhow!("`{s}` has no unit"))?;
    let (value, unit) = s.split_at(split);
    let value: f64 = number(value.trim())?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => bail!("unknown time unit `{other}` in `{s}`"),
    };
    Duration::try_from_secs_f64(value * scale).with_context(|| format!("`{s}` is not a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = "Running 3s test @ http://127.0.0.1:18080/
  2 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   219.91us    0.86ms  24.68ms   98.25%
    Req/Sec    36.15k     2.28k   40.05k    76.67%
  Latency Distribution
     50%  123.00us
     75%  135.00us
     90%  155.00us
     99%    3.05ms
  215834 requests in 3.00s, 26.96MB read
Requests/sec:  71923.08
Transfer/sec:      8.98MB
";

    #[test]
    fn a_clean_run() {
        let r = parse(CLEAN).unwrap();
        assert_eq!(r.requests, 215_834);
        assert_eq!(r.elapsed, Duration::from_secs(3));
        assert!((r.requests_per_sec - 71_923.08).abs() < 1e-6);
        assert_eq!(r.p50, Duration::from_micros(123));
        assert_eq!(r.p75, Duration::from_micros(135));
        assert_eq!(r.p90, Duration::from_micros(155));
        assert_eq!(r.p99, Duration::from_micros(3050));
        assert_eq!(r.errors, SocketErrors::default());
        assert_eq!(r.non_2xx, 0);
    }

    #[test]
    fn errors_and_long_latencies() {
        let text = "  Latency Distribution
     50%  856.09ms
     75%  901.00ms
     90%  950.00ms
     99%    1.02s
  3530 requests in 3.01s, 456.20KB read
  Socket errors: connect 12, read 3, write 1, timeout 47
  Non-2xx or 3xx responses: 5
Requests/sec:   1176.65
";
        let r = parse(text).unwrap();
        assert_eq!(r.p50, Duration::from_micros(856_090));
        assert_eq!(r.p99, Duration::from_millis(1020));
        assert_eq!(r.elapsed, Duration::from_millis(3010));
        assert_eq!(
            r.errors,
            SocketErrors {
                connect: 12,
                read: 3,
                write: 1,
                timeout: 47
            }
        );
        assert_eq!(r.non_2xx, 5);
    }

    #[test]
    fn units() {
        assert_eq!(duration("1.50m").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("2.00s").unwrap(), Duration::from_secs(2));
        assert!(duration("3.0xs").is_err());
        assert!(duration("12").is_err());
    }

    #[test]
    fn not_a_report() {
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }
}
