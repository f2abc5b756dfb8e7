//! Helpers shared by the wasock test guests.
//!
//! Every guest calls [`start`] with its name, runs its checks through the `check*` /
//! `expect*` functions below and ends with [`finish`], which prints the single summary
//! line `NAME: N checks passed`. A failed check prints
//! `NAME: check `CHECK` FAILED: MESSAGE (at FILE:LINE)` to stderr and exits with code 1,
//! so the host-side test sees a non-zero exit (a trap would mean something else: a host
//! or guest bug, not a mismatch).
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

/// Names the running guest; used in the summary line and in failure messages.
pub fn start(guest: &'static str) {
    let _ = GUEST.set(guest);
}

fn guest() -> &'static str {
    GUEST.get().copied().unwrap_or("guest")
}

/// Number of checks passed so far.
pub fn passed() -> u32 {
    PASSED.load(Ordering::Relaxed)
}

/// Prints the summary line `NAME: N checks passed` and flushes stdout.
pub fn finish() {
    println!("{}: {} checks passed", guest(), passed());
    let _ = io::stdout().flush();
}

/// Reports a failed check and exits the guest with status 1.
#[track_caller]
pub fn fail(check: &str, msg: impl Display) -> ! {
    let at = Location::caller();
    let _ = io::stdout().flush();
    eprintln!(
        "{}: check `{check}` FAILED: {msg} (at {}:{})",
        guest(),
        at.file(),
        at.line()
    );
    let _ = io::stderr().flush();
    std::process::exit(1)
}

/// Counts a passed check.
pub fn pass() {
    PASSED.fetch_add(1, Ordering::Relaxed);
}

/// Checks that `cond` holds; `msg` describes the mismatch.
#[track_caller]
pub fn check(check: &str, cond: bool, msg: impl FnOnce() -> String) {
    if !cond {
        fail(check, msg());
    }
    pass();
}

/// Checks `got == want`.
#[track_caller]
pub fn check_eq<T: Debug + PartialEq>(check: &str, got: T, want: T) {
    if got != want {
        fail(check, format!("got {got:?}, want {want:?}"));
    }
    pass();
}

/// Checks that `r` is `Ok` and returns its value.
#[track_caller]
pub fn expect_ok<T, E: Debug>(check: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => {
            pass();
            v
        }
        Err(e) => fail(check, format!("got Err({e:?}), want Ok")),
    }
}

/// Checks that `r` is `Err(want)`.
#[track_caller]
pub fn expect_err<T, E: Debug + PartialEq>(check: &str, r: Result<T, E>, want: E) {
    match r {
        Ok(_) => fail(check, format!("got Ok(..), want Err({want:?})")),
        Err(e) if e == want => pass(),
        Err(e) => fail(check, format!("got Err({e:?}), want Err({want:?})")),
    }
}

/// Checks that `r` is an `Err` equal to one of `wants` (for rules where the WIT allows
/// more than one error code).
#[track_caller]
pub fn expect_err_in<T, E: Debug + PartialEq>(check: &str, r: Result<T, E>, wants: &[E]) {
    match r {
        Ok(_) => fail(check, format!("got Ok(..), want Err(one of {wants:?})")),
        Err(e) if wants.contains(&e) => pass(),
        Err(e) => fail(check, format!("got Err({e:?}), want Err(one of {wants:?})")),
    }
}

/// Checks that `o` is `Some` and returns its value.
#[track_caller]
pub fn expect_some<T>(check: &str, o: Option<T>) -> T {
    match o {
        Some(v) => {
            pass();
            v
        }
        None => fail(check, "got None, want Some"),
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
