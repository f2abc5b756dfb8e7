//! What the tests, the test-guest build (`crates/wasock-guests/build.rs`) and the benchmark
//! harness (`crates/wasock-bench`) share, kept in one place so that the copies cannot drift:
//! which variables of an outer cargo build a nested guest build must not see, and raising the
//! open-file limit for the workloads that hold many sockets.

#![warn(missing_docs, unreachable_pub)]

use std::process::Command;

/// Variables of the outer build that must not leak into a nested guest build: flags meant for
/// the host target, a forced target or target directory, and wrappers such as clippy-driver.
/// `scripts/lib.sh` reads this list from here, so the scripts' guest build is the same build.
pub const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_PATH",
];

/// Prefixes of further variables a guest build must not see: the outer build's profile and
/// per-target settings.
pub const SCRUBBED_ENV_PREFIXES: &[&str] = &["CARGO_PROFILE_", "CARGO_TARGET_"];

/// Whether the variable `key` of the outer build must not reach a nested guest build.
pub fn is_scrubbed(key: &str) -> bool {
    SCRUBBED_ENV.contains(&key) || SCRUBBED_ENV_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Removes from `cmd` (a nested `cargo build` of guests) every variable of this process's
/// environment that [`is_scrubbed`].
pub fn scrub_build_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if is_scrubbed(&key.to_string_lossy()) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Raises this process's soft limit on open files (children inherit it) to `want`, or as close
/// as the hard limit allows, when it is lower; returns the soft limit now in force. Raising up
/// to the hard limit needs no privilege; `u64::MAX` asks for the hard limit itself.
pub fn raise_open_file_limit(want: u64) -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes the `rlimit` this function owns.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let raised = want.min(limit.rlim_max);
    if limit.rlim_cur < raised {
        limit.rlim_cur = raised;
        // SAFETY: `setrlimit` only reads the `rlimit` this function owns.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_the_list_and_the_prefixes_only() {
        assert!(is_scrubbed("RUSTFLAGS"));
        assert!(is_scrubbed("CARGO_PROFILE_RELEASE_LTO"));
        assert!(is_scrubbed("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER"));
        assert!(!is_scrubbed("CARGO_HOME"));
        assert!(!is_scrubbed("PATH"));
    }

    #[test]
    fn the_open_file_limit_never_goes_down() {
        let before = raise_open_file_limit(0).unwrap();
        assert_eq!(raise_open_file_limit(1).unwrap(), before);
        assert!(raise_open_file_limit(u64::MAX).unwrap() >= before);
    }
}
