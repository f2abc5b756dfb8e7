//! Helpers shared by the wasock test guests.
//!
//! Every guest calls [`start`] with its name, runs its checks through the `check*` /
//! `expect*` functions below and ends with [`finish`], which prints the single summary
//! line `NAME: N checks passed`. A failed check prints
//! `NAME: check `CHECK` FAILED: MESSAGE (at FILE:LINE)` to stderr and exits with code 1,
//! so the host-side test sees a non-zero exit (a trap would mean something else: a host
//! or guest bug, not a mismatch).
//!
//! **Check-log mode.** With `GUEST_CHECK_LOG=1` in the guest's environment, every check
//! also prints one record line to stdout:
//!
//! ```text
//! check: CHECK = OBSERVED => ok
//! check: CHECK = OBSERVED => FAILED: WHAT WAS WANTED
//! ```
//!
//! where OBSERVED is what the check saw (`true`/`false` for [`check`], the `Debug` form of
//! the value for the others; a long value is cut short and ends with its length and hash).
//! A failed check is recorded and the guest goes on, except where it cannot ([`fail`],
//! [`expect_ok`], [`expect_some`] and the wait helpers end the guest as usual). The summary
//! line then reads `NAME: N checks passed, M failed` when something failed, and the exit
//! code is 1. The host's differential test compares these records between two hosts.
//!
//! Nothing here depends on WIT bindings: guests built against different `wasi:sockets`
//! versions generate their own bindings and instantiate the wait helpers with
//! [`wasi_wait_helpers!`].

use std::fmt::{Debug, Display};
use std::io::{self, Write};
use std::panic::Location;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static GUEST: OnceLock<&'static str> = OnceLock::new();
static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);

/// The environment variable that switches check-log mode on (value `1`).
pub const CHECK_LOG_VAR: &str = "GUEST_CHECK_LOG";

/// Observed values longer than this are cut short in check records.
const MAX_OBSERVED: usize = 400;

/// Names the running guest; used in the summary line and in failure messages.
pub fn start(guest: &'static str) {
    let _ = GUEST.set(guest);
}

fn guest() -> &'static str {
    GUEST.get().copied().unwrap_or("guest")
}

/// Whether check-log mode is on (see the crate documentation).
pub fn check_log() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(CHECK_LOG_VAR).is_ok_and(|v| v == "1"))
}

/// Number of checks passed so far.
pub fn passed() -> u32 {
    PASSED.load(Ordering::Relaxed)
}

/// Prints the summary line `NAME: N checks passed` and flushes stdout. In check-log mode
/// with failed checks, prints `NAME: N checks passed, M failed` and exits with status 1.
pub fn finish() {
    let failed = FAILED.load(Ordering::Relaxed);
    if failed == 0 {
        println!("{}: {} checks passed", guest(), passed());
        let _ = io::stdout().flush();
    } else {
        exit_failed();
    }
}

/// The summary line with the failure count, then exit status 1.
fn exit_failed() -> ! {
    let failed = FAILED.load(Ordering::Relaxed);
    println!("{}: {} checks passed, {failed} failed", guest(), passed());
    let _ = io::stdout().flush();
    std::process::exit(1)
}

/// `value` as one line of at most about [`MAX_OBSERVED`] characters: a longer one keeps its
/// start and ends with its length and an FNV-1a hash, so that equal values still compare
/// equal and different ones almost surely do not.
fn one_line(value: &str) -> String {
    let value = value.replace('\n', "\\n");
    if value.len() <= MAX_OBSERVED {
        return value;
    }
    let hash = value.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut cut = MAX_OBSERVED / 2;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}... ({} chars, fnv {hash:016x})",
        &value[..cut],
        value.len()
    )
}

/// Prints a check record (check-log mode only).
fn record(check: &str, observed: &str, outcome: &str) {
    if check_log() {
        println!(
            "check: {check} = {} => {}",
            one_line(observed),
            one_line(outcome)
        );
    }
}

/// Records a failed check and reports it on stderr. Outside check-log mode it exits with
/// status 1 here; in check-log mode it counts the failure and returns, and a caller that
/// cannot go on then calls [`exit_failed`].
#[track_caller]
fn failed(check: &str, observed: &str, msg: &str) {
    record(check, observed, &format!("FAILED: {msg}"));
    let at = Location::caller();
    let _ = io::stdout().flush();
    eprintln!(
        "{}: check `{check}` FAILED: {msg} (at {}:{})",
        guest(),
        at.file(),
        at.line()
    );
    let _ = io::stderr().flush();
    if !check_log() {
        std::process::exit(1);
    }
    FAILED.fetch_add(1, Ordering::Relaxed);
}

/// Counts a passed check, and records it with the value `observed` gives (only computed in
/// check-log mode).
fn passed_with(check: &str, observed: impl FnOnce() -> String) {
    if check_log() {
        record(check, &observed(), "ok");
    }
    PASSED.fetch_add(1, Ordering::Relaxed);
}

/// Reports a failed check and exits the guest with status 1.
#[track_caller]
pub fn fail(check: &str, msg: impl Display) -> ! {
    failed(check, "-", &msg.to_string());
    exit_failed()
}

/// Counts a passed check that the guest decided on itself. Its record is named after the
/// caller's source line (`pass@FILE:LINE`), since it has no name of its own.
#[track_caller]
pub fn pass() {
    if check_log() {
        let at = Location::caller();
        let file = at.file().rsplit('/').next().unwrap_or(at.file());
        record(&format!("pass@{file}:{}", at.line()), "-", "ok");
    }
    PASSED.fetch_add(1, Ordering::Relaxed);
}

/// Checks that `cond` holds; `msg` describes the mismatch.
#[track_caller]
pub fn check(check: &str, cond: bool, msg: impl FnOnce() -> String) {
    if cond {
        passed_with(check, || "true".into());
    } else {
        failed(check, "false", &msg());
    }
}

/// Checks `got == want`.
#[track_caller]
pub fn check_eq<T: Debug + PartialEq>(check: &str, got: T, want: T) {
    if got == want {
        passed_with(check, || format!("{got:?}"));
    } else {
        let observed = format!("{got:?}");
        failed(check, &observed, &format!("got {observed}, want {want:?}"));
    }
}

/// Checks that `r` is `Ok` and returns its value.
#[track_caller]
pub fn expect_ok<T, E: Debug>(check: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => {
            passed_with(check, || "Ok(..)".into());
            v
        }
        Err(e) => {
            let observed = format!("Err({e:?})");
            failed(check, &observed, &format!("got {observed}, want Ok"));
            exit_failed()
        }
    }
}

/// Checks that `r` is `Err` with a code `is_wanted` accepts; `wanted` describes them.
#[track_caller]
fn expect_err_where<T, E: Debug>(
    check: &str,
    r: Result<T, E>,
    is_wanted: impl FnOnce(&E) -> bool,
    wanted: impl FnOnce() -> String,
) {
    let observed = match &r {
        Ok(_) => "Ok(..)".to_string(),
        Err(e) => format!("Err({e:?})"),
    };
    match r {
        Err(e) if is_wanted(&e) => passed_with(check, || observed),
        _ => failed(
            check,
            &observed,
            &format!("got {observed}, want {}", wanted()),
        ),
    }
}

/// Checks that `r` is `Err(want)`.
#[track_caller]
pub fn expect_err<T, E: Debug + PartialEq>(check: &str, r: Result<T, E>, want: E) {
    expect_err_where(check, r, |e| *e == want, || format!("Err({want:?})"));
}

/// Checks that `r` is an `Err` equal to one of `wants` (for rules where the WIT allows
/// more than one error code).
#[track_caller]
pub fn expect_err_in<T, E: Debug + PartialEq>(check: &str, r: Result<T, E>, wants: &[E]) {
    expect_err_where(
        check,
        r,
        |e| wants.contains(e),
        || format!("Err(one of {wants:?})"),
    );
}

/// Checks that `o` is `Some` and returns its value.
#[track_caller]
pub fn expect_some<T>(check: &str, o: Option<T>) -> T {
    match o {
        Some(v) => {
            passed_with(check, || "Some(..)".into());
            v
        }
        None => {
            failed(check, "None", "got None, want Some");
            exit_failed()
        }
    }
}

/// A point in time after which bounded loops give up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline `d` from now.
    pub fn after(d: Duration) -> Self {
        Deadline(Instant::now() + d)
    }

    /// A deadline `secs` seconds from now.
    pub fn secs(secs: u64) -> Self {
        Self::after(Duration::from_secs(secs))
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.0
    }
}

/// Retries a non-blocking std I/O operation while it reports `WouldBlock`, sleeping a
/// millisecond between tries, and fails `check` when `deadline` passes.
#[track_caller]
pub fn retry_nb<T>(check: &str, deadline: Deadline, mut op: impl FnMut() -> io::Result<T>) -> T {
    loop {
        match op() {
            Ok(v) => return v,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if deadline.expired() {
                    fail(
                        check,
                        "timed out waiting (operation kept reporting WouldBlock)",
                    );
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => fail(check, format!("I/O error: {e} ({:?})", e.kind())),
        }
    }
}

/// Defines `wait_ready` and `ready_within` for one version of the generated WASI
/// bindings: they wait on a pollable together with a monotonic-clock timeout, so a
/// guest can never hang on a pollable that does not resolve.
///
/// ```ignore
/// guest_support::wasi_wait_helpers!(
///     poll: wasi::io::poll::poll,
///     pollable: wasi::io::poll::Pollable,
///     subscribe_duration: wasi::clocks::monotonic_clock::subscribe_duration,
/// );
/// ```
#[macro_export]
macro_rules! wasi_wait_helpers {
    (poll: $poll:path, pollable: $pollable:ty, subscribe_duration: $sub:path $(,)?) => {
        /// Returns whether `p` is ready, or becomes ready within `timeout_ms`.
        pub fn ready_within(p: &$pollable, timeout_ms: u64) -> bool {
            let timer = $sub(timeout_ms.saturating_mul(1_000_000));
            let ready = $poll(&[p, &timer]);
            ready.contains(&0)
        }

        /// Waits until `p` is ready; fails `check` after `timeout_ms`.
        #[track_caller]
        pub fn wait_ready(check: &str, p: &$pollable, timeout_ms: u64) {
            if !ready_within(p, timeout_ms) {
                $crate::fail(
                    check,
                    format!("pollable did not become ready within {timeout_ms} ms"),
                );
            }
        }
    };
}
