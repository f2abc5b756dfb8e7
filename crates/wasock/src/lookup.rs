//! The name-lookup state machine of `wasi:sockets/ip-name-lookup`.
//!
//! `resolve-addresses` never blocks: IP literals are answered at once (policy or not: they are
//! checked when used), names are validated and IDNA-encoded, put to the policy, answered from a
//! policy mapping (`name->addr`), by the instance's resolver at once (the hosts file, for the
//! system's) or in the background;
//! `resolve-next-address` reads the results in order. What a name returned is remembered for the
//! instance's name-bound grants.

use crate::addr;
use crate::error::ErrorCode;
use crate::gate::Gate;
use crate::policy::Action;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;
use wasmtime_wasi_io::poll::Pollable;

/// The outcome of one lookup.
type Outcome = Result<Vec<IpAddr>, ErrorCode>;

/// A `resolve-address-stream` resource.
pub struct ResolveAddressStream {
    state: Lookup,
}

enum Lookup {
    Pending(watch::Receiver<Option<Outcome>>),
    Done(VecDeque<IpAddr>),
    Failed(ErrorCode),
}

impl ResolveAddressStream {
    fn done(addrs: Vec<IpAddr>) -> Self {
        ResolveAddressStream {
            state: Lookup::Done(addrs.into()),
        }
    }

    /// `resolve-addresses`: `invalid-argument` for a malformed name; a refused name fails with
    /// `permanent-resolver-failure`, and one past the instance's concurrent lookups with
    /// `temporary-resolver-failure`, on the first `resolve-next-address`.
    pub(crate) fn start(gate: &Arc<Gate>, name: &str) -> Result<Self, ErrorCode> {
        if let Some(ip) = parse_ip_literal(name) {
            return Ok(Self::done(vec![addr::canonical_ip(ip)]));
        }
        let name = normalize_name(name)?;
        if gate.check(Action::Resolve { name: &name }).is_err() {
            return Ok(ResolveAddressStream {
                state: Lookup::Failed(ErrorCode::PermanentResolverFailure),
            });
        }
        if let Some(fixed) = gate
            .mapped_name(&name)
            .or_else(|| gate.resolver().resolve_now(&name))
        {
            let addrs = ordered(fixed);
            gate.remember(&name, &addrs);
            return Ok(Self::done(addrs));
        }
        let slot = match gate.start_lookup() {
            Ok(slot) => slot,
            Err(code) => {
                return Ok(ResolveAddressStream {
                    state: Lookup::Failed(code),
                });
            }
        };
        let (tx, rx) = watch::channel(None);
        let task = {
            let gate = gate.clone();
            async move {
                let _slot = slot;
                let lookup = gate.resolver().resolve(&name);
                let outcome = match gate.lookup_within(lookup).await {
                    Ok(Ok(addrs)) => match ordered(addrs) {
                        addrs if addrs.is_empty() => Err(ErrorCode::NameUnresolvable),
                        addrs => {
                            gate.remember(&name, &addrs);
                            Ok(addrs)
                        }
                    },
                    Ok(Err(e)) => Err(e.into()),
                    Err(code) => Err(code),
                };
                let _ = tx.send(Some(outcome));
            }
        };
        if !gate.spawn(task) {
            return Err(ErrorCode::Unknown);
        }
        Ok(ResolveAddressStream {
            state: Lookup::Pending(rx),
        })
    }

    /// `resolve-next-address`: `would-block` until the results are in, then each address in
    /// order, then `none`.
    pub(crate) fn next(&mut self) -> Result<Option<IpAddr>, ErrorCode> {
        if let Lookup::Pending(rx) = &self.state {
            let outcome = rx.borrow().clone();
            self.state = match outcome {
                None if rx.has_changed().is_err() => {
                    Lookup::Failed(ErrorCode::PermanentResolverFailure)
                }
                None => return Err(ErrorCode::WouldBlock),
                Some(Ok(addrs)) => Lookup::Done(addrs.into()),
                Some(Err(code)) => Lookup::Failed(code),
            };
        }
        match &mut self.state {
            Lookup::Done(addrs) => Ok(addrs.pop_front()),
            Lookup::Failed(code) => Err(*code),
            Lookup::Pending(_) => Err(ErrorCode::WouldBlock),
        }
    }

    /// `subscribe`: ready once the results are in.
    pub(crate) fn readiness(&self) -> LookupReadiness {
        match &self.state {
            Lookup::Pending(rx) => LookupReadiness(Some(rx.clone())),
            _ => LookupReadiness(None),
        }
    }
}

/// Pollable of a `resolve-address-stream`.
pub(crate) struct LookupReadiness(Option<watch::Receiver<Option<Outcome>>>);

#[wasmtime_wasi_io::async_trait]
impl Pollable for LookupReadiness {
    async fn ready(&mut self) {
        if let Some(rx) = &mut self.0 {
            // An error means the resolver task is gone: ready, `next` reports the failure.
            let _ = rx.wait_for(|v| v.is_some()).await;
        }
    }
}

/// Unmaps IPv4-mapped results and drops duplicates, keeping the resolver's order.
fn ordered(addrs: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(addrs.len());
    for ip in addrs.into_iter().map(addr::canonical_ip) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// An IP address literal (`127.0.0.1`, `::1`, `[::1]`), returned as is.
fn parse_ip_literal(name: &str) -> Option<IpAddr> {
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
    match bare {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        None => name.parse().ok(),
    }
}

/// IDNA-encodes, lower-cases and drops one trailing dot; `invalid-argument` when the result is
/// not a valid host name (RFC 1123 labels; underscores allowed; a numeric last label is refused
/// so that `2130706433` or `0x7f.1` never reach a resolver that would read them as addresses).
pub(crate) fn normalize_name(name: &str) -> Result<String, ErrorCode> {
    let ascii = idna::domain_to_ascii(name).map_err(|_| ErrorCode::InvalidArgument)?;
    let ascii = ascii
        .strip_suffix('.')
        .unwrap_or(&ascii)
        .to_ascii_lowercase();
    if ascii.is_empty() || ascii.len() > 253 {
        return Err(ErrorCode::InvalidArgument);
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    for label in &labels {
        let valid_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty()
            || label.len() > 63
            || !valid_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(ErrorCode::InvalidArgument);
        }
    }
    let last = labels.last().copied().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_name("LocalHost.").unwrap(), "localhost");
        assert_eq!(
            normalize_name("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            normalize_name("_srv._tcp.example.com").unwrap(),
            "_srv._tcp.example.com"
        );
    }

    #[test]
    fn malformed_names_are_invalid_argument() {
        let long_label = "a".repeat(64);
        let long_name = ["abc"; 70].join(".");
        for bad in [
            "",
            ".",
            "a..b",
            "-bad-.example",
            "exa mple.com",
            &long_label,
            &long_name,
            "2130706433",
            "0x7f.1",
            "a/b",
        ] {
            assert_eq!(
                normalize_name(bad),
                Err(ErrorCode::InvalidArgument),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn literals_are_recognized() {
        assert_eq!(
            parse_ip_literal("127.0.0.1"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(parse_ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip_literal("::1"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip_literal("localhost"), None);
    }

    #[test]
    fn results_are_unmapped_and_deduplicated() {
        let v: Vec<IpAddr> = ["::ffff:127.0.0.1", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            ordered(v),
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
    }
}
