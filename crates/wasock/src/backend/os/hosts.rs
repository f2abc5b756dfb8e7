//! Names answered in-process, with no blocking-pool hop and no query leaving the machine:
//! - what `/etc/hosts` says, while `/etc/nsswitch.conf` consults `files` before any other source
//!   (so the answer is the one `getaddrinfo` would give);
//! - `localhost` and every name under `.localhost`, which RFC 6761 reserves for loopback: what
//!   the hosts file gives `localhost`, or `::1` and `127.0.0.1` — never a DNS query.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

const HOSTS: &str = "/etc/hosts";
const NSSWITCH: &str = "/etc/nsswitch.conf";
/// How long a read of the two files is trusted before their modification times are checked.
const RECHECK: Duration = Duration::from_secs(1);

/// The parsed files, and when and at which versions they were read.
struct Snapshot {
    checked: Instant,
    versions: (Option<SystemTime>, Option<SystemTime>),
    files_first: bool,
    names: HashMap<String, Vec<IpAddr>>,
}

static CACHE: Mutex<Option<Snapshot>> = Mutex::new(None);

fn modified(path: &str) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The addresses `/etc/hosts` gives `name` (normalized), in the order `getaddrinfo` sorts them;
/// `None` when the file does not decide (name absent, or other sources come first).
pub(crate) fn lookup(name: &str) -> Option<Vec<IpAddr>> {
    let mut cache = crate::sync::lock(&CACHE);
    let stale = cache
        .as_ref()
        .is_none_or(|s| s.checked.elapsed() >= RECHECK);
    if stale {
        let versions = (modified(HOSTS), modified(NSSWITCH));
        match cache.as_mut() {
            Some(s) if s.versions == versions => s.checked = Instant::now(),
            _ => {
                let nsswitch = std::fs::read_to_string(NSSWITCH).unwrap_or_default();
                let hosts = std::fs::read_to_string(HOSTS).unwrap_or_default();
                *cache = Some(Snapshot {
                    checked: Instant::now(),
                    versions,
                    files_first: files_first(&nsswitch),
                    names: parse_hosts(&hosts),
                });
            }
        }
    }
    let snapshot = cache.as_ref()?;
    let is_localhost = name == "localhost" || name.ends_with(".localhost");
    let listed = |n: &str| snapshot.names.get(n).filter(|_| snapshot.files_first);
    let mut addrs = match (listed(name), is_localhost) {
        (Some(addrs), _) => addrs.clone(),
        (None, true) => match listed("localhost") {
            Some(addrs) => addrs.clone(),
            None => vec![
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                IpAddr::from([127, 0, 0, 1]),
            ],
        },
        (None, false) => return None,
    };
    addrs.sort_by_key(|ip| std::cmp::Reverse(precedence(ip)));
    Some(addrs)
}

/// Whether the `hosts:` line of nsswitch.conf starts with `files`.
fn files_first(nsswitch: &str) -> bool {
    nsswitch
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .find_map(|l| l.trim_start().strip_prefix("hosts:"))
        .and_then(|sources| sources.split_whitespace().next())
        == Some("files")
}

/// `/etc/hosts`: address, then names; `#` starts a comment. Names are lower-cased without a
/// trailing dot; an address a name repeats is kept once, in file order.
fn parse_hosts(text: &str) -> HashMap<String, Vec<IpAddr>> {
    let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let mut fields = line
            .split('#')
            .next()
            .unwrap_or_default()
            .split_whitespace();
        let Some(ip) = fields.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in fields {
            let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
            let addrs = names.entry(name).or_default();
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
    }
    names
}

/// RFC 6724's default precedence table (higher is preferred), which orders `getaddrinfo`'s
/// answers when a name has addresses of both families.
fn precedence(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 35,
        IpAddr::V6(v6) if v6.is_loopback() => 50,
        IpAddr::V6(v6) => match v6.segments() {
            [0x2002, ..] => 30,
            [0x2001, 0, ..] => 5,
            [s, ..] if s & 0xfe00 == 0xfc00 => 3,
            [s, ..] if s & 0xffc0 == 0xfec0 || s == 0x3ffe => 1,
            [0, 0, 0, 0, 0, 0, ..] => 1,
            _ => 40,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_are_parsed() {
        let text = "127.0.0.1 localhost Box.Local.\n::1 localhost ip6-localhost # v6\n\
                    # a comment\nnot-an-ip name\n10.0.0.5   db  db.internal\n127.0.0.1 localhost\n";
        let names = parse_hosts(text);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(names["localhost"], vec![ip("127.0.0.1"), ip("::1")]);
        assert_eq!(names["box.local"], vec![ip("127.0.0.1")]);
        assert_eq!(names["db.internal"], vec![ip("10.0.0.5")]);
        assert!(!names.contains_key("name"));
    }

    #[test]
    fn localhost_names_never_leave_the_machine() {
        for name in ["localhost", "xn--bcher-kva.localhost", "a.b.localhost"] {
            let addrs = lookup(name).expect("answered in-process");
            assert!(
                !addrs.is_empty() && addrs.iter().all(IpAddr::is_loopback),
                "{name}: {addrs:?}"
            );
        }
        assert_eq!(lookup("localhost.example"), None);
    }

    #[test]
    fn only_files_first_is_trusted() {
        assert!(files_first("passwd: files\nhosts:          files dns\n"));
        assert!(!files_first("hosts: resolve [!UNAVAIL=return] files dns\n"));
        assert!(!files_first("# hosts: files\n"));
        assert!(!files_first(""));
    }

    #[test]
    fn ipv6_loopback_before_ipv4_as_rfc_6724_orders() {
        let mut v: Vec<IpAddr> = ["127.0.0.1", "::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort_by_key(|ip| std::cmp::Reverse(precedence(ip)));
        assert_eq!(v[0], "::1".parse::<IpAddr>().unwrap());
    }
}
