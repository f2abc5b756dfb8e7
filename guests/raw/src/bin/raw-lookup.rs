//! raw-lookup: `wasi:sockets/ip-name-lookup` (resolve-addresses, resolve-next-address,
//! subscribe) and `network-error-code`, asserting the WIT doc comments and
//! shared/spec/NOTES.md. Only loopback names and literals are looked up.

use guest_support::{Deadline, check, check_eq, expect_err, expect_ok, fail, finish, start};
use raw::wasi::clocks::monotonic_clock::subscribe_duration;
use raw::wasi::io::poll::poll;
use raw::wasi::sockets::ip_name_lookup::{ResolveAddressStream, resolve_addresses};
use raw::wasi::sockets::network::network_error_code;
use raw::{
    ErrorCode as E, IpAddress, IpAddressFamily as Family, LOOPBACK4, LOOPBACK6, Network,
    StreamError, WAIT_MS, instance_network, tcp_pair, wait_ready, write_all,
};

fn main() {
    start("raw-lookup");
    let net = instance_network();
    ip_literals(&net);
    localhost(&net);
    invalid_names(&net);
    unicode_name(&net);
    literal_spellings(&net);
    // Last: a host that reports a reset as the end of stream fails here and stops.
    network_error_code_on_stream_error(&net);
    finish();
}

/// Drains a resolve stream: `would-block` until results are in (waiting on its
/// pollable, bounded), then addresses, then `none` — and `none` again after that.
fn collect(check: &str, stream: &ResolveAddressStream) -> Result<Vec<IpAddress>, E> {
    let deadline = Deadline::secs(10);
    let p = stream.subscribe();
    let mut out = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(a)) => {
                if out.len() > 256 {
                    fail(check, "more than 256 addresses");
                }
                out.push(a)
            }
            Ok(None) => break,
            Err(E::WouldBlock) => {
                if deadline.expired() {
                    fail(check, "still would-block at the deadline");
                }
                wait_ready(check, &p, WAIT_MS);
            }
            Err(e) => return Err(e),
        }
    }
    // "If all addresses have been exhausted, this function returns `none`."
    check_eq(
        &format!("{check}: none again after the end"),
        stream.resolve_next_address(),
        Ok(None),
    );
    Ok(out)
}

fn is_ipv4_mapped(a: &IpAddress) -> bool {
    matches!(a, IpAddress::Ipv6((0, 0, 0, 0, 0, 0xffff, _, _)))
}

/// "If the input is an IP address string, the address is parsed and returned as-is
/// without making any external requests."
fn ip_literals(net: &Network) {
    let s = expect_ok("resolve 127.0.0.1", resolve_addresses(net, "127.0.0.1"));
    check_eq(
        "127.0.0.1 is returned as is",
        collect("resolve 127.0.0.1", &s),
        Ok(vec![IpAddress::Ipv4(LOOPBACK4)]),
    );
    let s = expect_ok("resolve ::1", resolve_addresses(net, "::1"));
    check_eq(
        "::1 is returned as is",
        collect("resolve ::1", &s),
        Ok(vec![IpAddress::Ipv6(LOOPBACK6)]),
    );
}

/// "localhost" resolves to loopback addresses only, and "This function never returns
/// IPv4-mapped IPv6 addresses."
fn localhost(net: &Network) {
    let s = expect_ok("resolve localhost", resolve_addresses(net, "localhost"));
    let addrs = expect_ok("localhost resolves", collect("resolve localhost", &s));
    check(
        "localhost gives at least one address",
        !addrs.is_empty(),
        || "empty result".into(),
    );
    for a in &addrs {
        let loopback = match a {
            IpAddress::Ipv4((127, _, _, _)) => true,
            IpAddress::Ipv6(x) => *x == LOOPBACK6,
            _ => false,
        };
        check("localhost addresses are loopback", loopback, || {
            format!("{a:?}")
        });
        check("no IPv4-mapped IPv6 address", !is_ipv4_mapped(a), || {
            format!("{a:?}")
        });
    }
}

/// "`invalid-argument`: `name` is a syntactically invalid domain name or IP address."
/// resolve-addresses "either immediately fails or immediately returns successfully".
fn invalid_names(net: &Network) {
    let long = "a".repeat(300);
    let names: [(&str, &str); 5] = [
        ("empty name", ""),
        ("empty label a..b", "a..b"),
        ("label with leading/trailing hyphen", "-bad-.example"),
        ("300-character name", &long),
        ("space inside the name", "exa mple.com"),
    ];
    for (what, name) in names {
        expect_err(
            &format!("resolve-addresses: {what}"),
            resolve_addresses(net, name).map(|_| ()),
            E::InvalidArgument,
        );
    }
}

/// "Unicode domain names are automatically converted to ASCII using IDNA encoding." — so a
/// Unicode name is not `invalid-argument`. wasock answers every name under `.localhost` with
/// loopback addresses itself (RFC 6761), so this lookup never leaves the machine.
fn unicode_name(net: &Network) {
    let name = "bücher.localhost";
    let s = match resolve_addresses(net, name) {
        Ok(s) => s,
        Err(e) => fail(
            "resolve-addresses: unicode name is accepted (IDNA-encoded)",
            format!("got Err({e:?})"),
        ),
    };
    let addrs = expect_ok(
        "unicode name resolves",
        collect("resolve bücher.localhost", &s),
    );
    check("unicode name: some address", !addrs.is_empty(), || {
        "none".into()
    });
    for a in &addrs {
        check("unicode name: loopback only", is_loopback_ip(a), || {
            format!("{a:?}")
        });
        check(
            "unicode name: no IPv4-mapped address",
            !is_ipv4_mapped(a),
            || format!("{a:?}"),
        );
    }
}

/// Whether `a` is 127.0.0.0/8 or ::1.
fn is_loopback_ip(a: &IpAddress) -> bool {
    match a {
        IpAddress::Ipv4((127, ..)) => true,
        IpAddress::Ipv6(v6) => *v6 == LOOPBACK6,
        IpAddress::Ipv4(_) => false,
    }
}

/// network-error-code on a stream error: provoke a connection reset (the peer closes
/// with unread data, which sends RST), take the `last-operation-failed` error from the
/// stream and pass it to `network-error-code`, which returns `none` or `some`.
fn network_error_code_on_stream_error(net: &Network) {
    let t = tcp_pair("network-error-code: pair", net, Family::Ipv4);
    write_all(
        "network-error-code: client writes",
        &t.client_out,
        b"unread data",
    );
    wait_ready(
        "network-error-code: data reached the peer",
        &t.server_in.subscribe(),
        WAIT_MS,
    );
    drop((t.server_in, t.server_out, t.server));
    let deadline = Deadline::secs(10);
    let p_in = t.client_in.subscribe();
    let p_out = t.client_out.subscribe();
    let (mut in_closed, mut out_closed) = (false, false);
    loop {
        if in_closed && out_closed {
            fail(
                "network-error-code: a stream error after a reset",
                "the reset connection was reported as `closed` on both streams, so there \
                 was no `last-operation-failed` error to pass to network-error-code",
            );
        }
        if deadline.expired() {
            fail(
                "network-error-code: a stream error after a reset",
                "no last-operation-failed error within the deadline",
            );
        }
        let mut err = None;
        if !in_closed {
            match t.client_in.read(64) {
                Err(StreamError::LastOperationFailed(e)) => err = Some(e),
                Err(StreamError::Closed) => in_closed = true,
                Ok(_) => {}
            }
        }
        if err.is_none() && !out_closed {
            // write's precondition: check-write permitted at least that many bytes.
            let written = t.client_out.check_write().and_then(|room| {
                if room >= 4 {
                    t.client_out.write(b"more")?;
                    t.client_out.flush()
                } else {
                    Ok(())
                }
            });
            match written {
                Err(StreamError::LastOperationFailed(e)) => err = Some(e),
                Err(StreamError::Closed) => out_closed = true,
                Ok(()) => {}
            }
        }
        if err.is_none() {
            let timer = subscribe_duration(100_000_000);
            poll(&[&p_in, &p_out, &timer]);
        }
        if let Some(e) = err {
            let code = network_error_code(&e);
            // Either answer is allowed ("this function is fallible because not all
            // stream-related errors are network-related errors"); a reset reported as
            // a network error should be `connection-reset` if it is `some`.
            // wasock promises more than the WIT's "fallible": a stream that failed with a
            // reset reads `connection-reset` through network-error-code.
            check_eq(
                "network-error-code: code for a reset connection",
                code,
                Some(E::ConnectionReset),
            );
            break;
        }
    }
    // Pollables are child resources of their streams ("Implementations may trap if the
    // `input-stream` is dropped before all derived pollables ... are dropped").
    drop((p_in, p_out));
    drop((t.client_in, t.client_out, t.client, t.listener));
}

/// "If the input is an IP address string, the address is parsed and returned as-is without
/// making any external requests": unspecified and documentation addresses, any spelling of
/// IPv6 (case, zero runs), come back as the one address they name. Not addresses, nor names:
/// an address with a port, a bracketed address, a URL, a blank, characters no name may hold.
fn literal_spellings(net: &Network) {
    let v6 = |s: [u16; 8]| IpAddress::Ipv6((s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]));
    let literals: [(&str, IpAddress); 6] = [
        ("0.0.0.0", IpAddress::Ipv4((0, 0, 0, 0))),
        ("192.0.2.0", IpAddress::Ipv4((192, 0, 2, 0))),
        ("::", v6([0; 8])),
        (
            "2001:0db8:0:0:0:0:0:0",
            v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]),
        ),
        ("dead:beef::", v6([0xdead, 0xbeef, 0, 0, 0, 0, 0, 0])),
        ("DEAD:BEEF::0", v6([0xdead, 0xbeef, 0, 0, 0, 0, 0, 0])),
    ];
    for (text, want) in literals {
        let s = expect_ok(&format!("resolve {text}"), resolve_addresses(net, text));
        check_eq(
            &format!("{text} is returned as the one address it names"),
            collect(&format!("resolve {text}"), &s),
            Ok(vec![want]),
        );
    }
    for bad in [
        " ",
        "a.b<&>",
        "127.0.0.1:80",
        "[::]:80",
        "http://example.com/",
    ] {
        expect_err(
            &format!("resolve-addresses: {bad:?} is neither an address nor a name"),
            resolve_addresses(net, bad).map(|_| ()),
            E::InvalidArgument,
        );
    }
}
