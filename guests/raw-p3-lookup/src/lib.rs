//! raw-p3-lookup: `wasi:sockets/ip-name-lookup@0.3.0` `resolve-addresses`, asserting what its
//! doc comment requires (guests/wit/0.3.0/sockets.wit): `localhost` resolves to at least one
//! address, all loopback and none IPv4-mapped; an IP literal "is parsed and returned as-is";
//! a syntactically invalid name is `invalid-argument`. No name here needs DNS: only
//! `localhost` (the hosts file), literals, and names invalid by their characters alone, which a
//! host rejects before any lookup. Every call is bounded by a timeout. The toolchain and the
//! entry point (`wasi:cli/run@0.3.0`, a cdylib) are explained in guests/raw-p3/src/lib.rs.

use guest_support::{check, check_eq, expect_err, finish, start};
use raw_p3::{IpAddress, LookupErrorCode as E, resolve_addresses, within};

struct Run;

impl raw_p3::exports::wasi::cli::run::Guest for Run {
    async fn run() -> Result<(), ()> {
        start("raw-p3-lookup");
        localhost().await;
        literals().await;
        invalid_names().await;
        finish();
        Ok(())
    }
}

raw_p3::export!(Run with_types_in raw_p3);

/// Whether `a` is a loopback address (`127.0.0.0/8` or `::1`).
fn is_loopback(a: &IpAddress) -> bool {
    match a {
        IpAddress::Ipv4((127, _, _, _)) => true,
        IpAddress::Ipv4(_) => false,
        IpAddress::Ipv6(a) => *a == (0, 0, 0, 0, 0, 0, 0, 1),
    }
}

/// Whether `a` is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
fn is_v4_mapped(a: &IpAddress) -> bool {
    matches!(a, IpAddress::Ipv6((0, 0, 0, 0, 0, 0xffff, _, _)))
}

/// "This function never succeeds with 0 results"; "this function never returns IPv4-mapped
/// IPv6 addresses"; `localhost` is loopback.
async fn localhost() {
    let r = within("localhost", resolve_addresses("localhost".to_string())).await;
    let addrs = match r {
        Ok(addrs) => {
            check("localhost: ok", true, String::new);
            addrs
        }
        Err(e) => {
            check("localhost: ok", false, || format!("{e:?}"));
            Vec::new()
        }
    };
    check("localhost: at least one address", !addrs.is_empty(), || {
        "no address".into()
    });
    check(
        "localhost: every address is loopback",
        addrs.iter().all(is_loopback),
        || format!("{addrs:?}"),
    );
    check(
        "localhost: no IPv4-mapped address",
        !addrs.iter().any(is_v4_mapped),
        || format!("{addrs:?}"),
    );
    // Resolving is repeatable: a second call gives the same set.
    let again = within(
        "localhost again",
        resolve_addresses("localhost".to_string()),
    )
    .await;
    let mut first = addrs.clone();
    let mut second = again.unwrap_or_default();
    first.sort_by_key(|a| format!("{a:?}"));
    second.sort_by_key(|a| format!("{a:?}"));
    check_eq("localhost: the same addresses again", second, first);
}

/// "If the input is an IP address string, the address is parsed and returned as-is without
/// making any external requests."
async fn literals() {
    let cases: [(&str, IpAddress); 4] = [
        ("127.0.0.1", IpAddress::Ipv4((127, 0, 0, 1))),
        ("::1", IpAddress::Ipv6((0, 0, 0, 0, 0, 0, 0, 1))),
        ("192.0.2.7", IpAddress::Ipv4((192, 0, 2, 7))),
        (
            "2001:db8::1:2",
            IpAddress::Ipv6((0x2001, 0xdb8, 0, 0, 0, 0, 1, 2)),
        ),
    ];
    for (name, want) in cases {
        let r = within(name, resolve_addresses(name.to_string())).await;
        check_eq(&format!("literal {name}"), r, Ok(vec![want]));
    }
}

/// "`invalid-argument`: `name` is a syntactically invalid domain name or IP address." Each name
/// holds a character no host name may hold.
async fn invalid_names() {
    for name in [
        "exa mple.localhost",
        "a/b.localhost",
        "user@localhost",
        "local#host",
        "bad?name",
        "[::1",
    ] {
        let r = within(name, resolve_addresses(name.to_string())).await;
        expect_err(&format!("invalid name {name:?}"), r, E::InvalidArgument);
    }
}
