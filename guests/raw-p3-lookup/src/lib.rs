//! raw-p3-lookup: `resolve-addresses` of `wasi:sockets/ip-name-lookup@0.3.0`, asserting its
//! doc comment (guests/wit/0.3.0/sockets.wit). No check depends on DNS: the names looked up are
//! `localhost` (answered from the host's hosts file, or by the host itself), IP literals
//! ("returned as-is without making any external requests") and names that are not valid, which
//! an implementation rejects before any lookup. The number of checks does not depend on how
//! many addresses `localhost` has on the host. The toolchain and the entry point
//! (`wasi:cli/run@0.3.0`, a cdylib) are explained in guests/raw-p3/src/lib.rs.

use guest_support::{check, check_eq, expect_err, expect_ok, finish, start};
use raw_p3::{IpAddress, LOOPBACK4, LOOPBACK6, LookupErrorCode as E, resolve_addresses, within};

/// The `wasi:cli/run@0.3.0` entry point.
struct Run;

impl raw_p3::exports::wasi::cli::run::Guest for Run {
    async fn run() -> Result<(), ()> {
        checks().await;
        Ok(())
    }
}

raw_p3::export!(Run with_types_in raw_p3);

async fn checks() {
    start("raw-p3-lookup");
    localhost().await;
    ip_literals().await;
    invalid_names().await;
    finish();
}

/// `resolve-addresses(name)`, within the guest's wait bound.
async fn resolve(name: &str) -> Result<Vec<IpAddress>, E> {
    within(
        &format!("resolve {name:?}"),
        resolve_addresses(name.to_string()),
    )
    .await
}

fn is_ipv4_mapped(a: &IpAddress) -> bool {
    matches!(a, IpAddress::Ipv6((0, 0, 0, 0, 0, 0xffff, _, _)))
}

/// Whether `a` is 127.0.0.0/8 or ::1.
fn is_loopback_ip(a: &IpAddress) -> bool {
    match a {
        IpAddress::Ipv4((127, ..)) => true,
        IpAddress::Ipv6(v6) => *v6 == LOOPBACK6,
        IpAddress::Ipv4(_) => false,
    }
}

/// "localhost" resolves, to loopback addresses only, among them 127.0.0.1 or ::1 (which of them
/// and how many is the host's hosts file's to say); "This function never succeeds with 0
/// results"; "this function never returns IPv4-mapped IPv6 addresses". Each rule is one check
/// over the whole list, so the count does not depend on the list.
async fn localhost() {
    let addrs = expect_ok("resolve localhost", resolve("localhost").await);
    check("localhost: at least one address", !addrs.is_empty(), || {
        "empty list".into()
    });
    check(
        "localhost: 127.0.0.1 or ::1 among them",
        addrs.contains(&IpAddress::Ipv4(LOOPBACK4)) || addrs.contains(&IpAddress::Ipv6(LOOPBACK6)),
        || format!("{addrs:?}"),
    );
    check(
        "localhost: loopback addresses only",
        addrs.iter().all(is_loopback_ip),
        || format!("{addrs:?}"),
    );
    check(
        "localhost: no IPv4-mapped IPv6 address",
        !addrs.iter().any(is_ipv4_mapped),
        || format!("{addrs:?}"),
    );
}

/// "If the input is an IP address string, the address is parsed and returned as-is without
/// making any external requests": every spelling of an address (IPv6 case, zero runs, the
/// full form) comes back as the one address it names, unspecified and documentation addresses
/// too.
async fn ip_literals() {
    let v6 = |s: [u16; 8]| IpAddress::Ipv6((s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]));
    let literals: [(&str, IpAddress); 10] = [
        ("127.0.0.1", IpAddress::Ipv4(LOOPBACK4)),
        ("0.0.0.0", IpAddress::Ipv4((0, 0, 0, 0))),
        ("192.0.2.33", IpAddress::Ipv4((192, 0, 2, 33))),
        ("255.255.255.255", IpAddress::Ipv4((255, 255, 255, 255))),
        ("::1", IpAddress::Ipv6(LOOPBACK6)),
        ("::", v6([0; 8])),
        ("2001:db8::1", v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])),
        (
            "2001:0DB8:0000:0000:0000:0000:0000:0002",
            v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2]),
        ),
        ("fe80::1:2", v6([0xfe80, 0, 0, 0, 0, 0, 1, 2])),
        ("DEAD:BEEF::", v6([0xdead, 0xbeef, 0, 0, 0, 0, 0, 0])),
    ];
    for (text, want) in literals {
        check_eq(
            &format!("literal {text} is returned as is"),
            resolve(text).await,
            Ok(vec![want]),
        );
    }
}

/// "`invalid-argument`: `name` is a syntactically invalid domain name or IP address": an empty
/// name, a name longer than a domain name may be (253 characters), a label longer than 63
/// characters, an empty label, a label starting or ending with a hyphen, characters no host
/// name holds (a blank, `<&>`, `/`), an address with a port, a URL.
async fn invalid_names() {
    let long_name = "a".repeat(300);
    let long_label = format!("{}.localhost", "a".repeat(64));
    let names: [(&str, &str); 11] = [
        ("empty name", ""),
        ("a blank", " "),
        ("300-character name", &long_name),
        ("64-character label", &long_label),
        ("empty label a..b", "a..b"),
        ("label with leading/trailing hyphen", "-bad-.localhost"),
        ("space inside the name", "exa mple.localhost"),
        ("characters <&>", "a.b<&>"),
        ("address with a port", "127.0.0.1:80"),
        ("bracketed address with a port", "[::1]:80"),
        ("URL", "http://localhost/"),
    ];
    for (what, name) in names {
        expect_err(
            &format!("invalid name: {what}"),
            resolve(name).await,
            E::InvalidArgument,
        );
    }
}
