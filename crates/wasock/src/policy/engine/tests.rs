//! The decisions of a `RuleSet`, one semantic rule per test, including the address and name spellings an attacker would try.

use super::super::explain::Reason;
use super::super::{Action, NameBook, Policy, Protocol, RuleSet, Verdict};
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};

/// What this instance's lookups returned, for name-bound rules.
#[derive(Default)]
struct Book(Vec<(IpAddr, Vec<String>)>);

impl Book {
    fn with(mut self, name: &str, ips: &[&str]) -> Self {
        for ip in ips {
            let ip: IpAddr = ip.parse().unwrap();
            match self.0.iter_mut().find(|(i, _)| *i == ip) {
                Some((_, names)) => names.push(name.into()),
                None => self.0.push((ip, vec![name.into()])),
            }
        }
        self
    }
}

impl NameBook for Book {
    fn names_of(&self, ip: IpAddr) -> &[String] {
        self.0
            .iter()
            .find(|(i, _)| *i == ip)
            .map_or(&[], |(_, n)| n.as_slice())
    }
}

fn set(lines: &[&str]) -> RuleSet {
    let mut b = RuleSet::builder();
    for l in lines {
        b.line(l).unwrap_or_else(|e| panic!("{e}"));
    }
    b.build()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn connect(s: &str) -> Action<'static> {
    Action::Connect {
        proto: Protocol::Tcp,
        remote: sa(s),
    }
}

/// The verdict and the deciding rule's text.
fn decide(set: &RuleSet, action: Action<'_>, names: &dyn NameBook) -> (Verdict, Option<String>) {
    let d = set.decide(&action, names);
    (d.verdict, d.rule.map(|r| r.to_string()))
}

fn allowed(set: &RuleSet, action: Action<'_>, names: &dyn NameBook) -> bool {
    set.decide(&action, names).verdict == Verdict::Allow
}

fn reason(set: &RuleSet, action: Action<'_>, names: &dyn NameBook) -> Reason {
    set.explain(&action, names).reason
}

#[test]
fn nothing_is_allowed_by_default() {
    let empty = RuleSet::builder().build();
    assert!(empty.is_empty());
    assert_eq!(
        decide(&empty, connect("1.2.3.4:80"), &()),
        (Verdict::Deny, None)
    );
    assert!(!allowed(
        &empty,
        Action::Create {
            proto: Protocol::Tcp
        },
        &()
    ));
    assert!(!allowed(&empty, Action::Resolve { name: "localhost" }, &()));
}

#[test]
fn deny_beats_allow_and_names_the_normalized_rule() {
    let s = set(&[
        "allow-outbound *://*:*",
        "deny-outbound TCP://10.0.0.0/8:1-65535",
    ]);
    assert_eq!(
        decide(&s, connect("10.1.2.3:443"), &()),
        (
            Verdict::Deny,
            Some("deny-outbound tcp://10.0.0.0/8:*".into())
        )
    );
    assert_eq!(
        decide(&s, connect("11.1.2.3:443"), &()),
        (Verdict::Allow, Some("allow-outbound *://*:*".into()))
    );
    // The deny is TCP only.
    let udp = Action::Send {
        remote: sa("10.1.2.3:53"),
    };
    assert!(allowed(&s, udp, &()));
}

#[test]
fn ipv6_spellings_of_a_denied_ipv4_address_are_denied() {
    let s = set(&["allow-outbound *://*:*", "deny-outbound *://10.0.0.5:*"]);
    for remote in ["10.0.0.5:80", "[::ffff:10.0.0.5]:80", "[::10.0.0.5]:80"] {
        assert!(!allowed(&s, connect(remote), &()), "{remote}");
    }
    assert!(allowed(&s, connect("[::ffff:10.0.0.6]:80"), &()));
    // And an allow of the IPv4 address covers its spellings alike.
    let s = set(&["allow-outbound tcp://loopback:80"]);
    assert!(allowed(&s, connect("[::ffff:127.0.0.1]:80"), &()));
    assert!(allowed(&s, connect("[::1]:80"), &()));
}

#[test]
fn unspecified_addresses_are_never_destinations() {
    let s = set(&["allow-outbound *://*:*", "allow-outbound *://unspecified:*"]);
    for remote in ["0.0.0.0:80", "[::]:80", "[::ffff:0.0.0.0]:80"] {
        assert!(!allowed(&s, connect(remote), &()), "{remote}");
        let send = Action::Send { remote: sa(remote) };
        assert_eq!(reason(&s, send, &()), Reason::UnspecifiedDestination);
    }
}

#[test]
fn cidr_edges_are_exact() {
    let s = set(&[
        "allow-outbound *://*:*",
        "deny-outbound *://172.16.0.0/12:*",
        "deny-outbound *://[fd00::]/8:*",
    ]);
    for (remote, ok) in [
        ("172.16.0.0:1", false),
        ("172.31.255.255:1", false),
        ("172.15.255.255:1", true),
        ("172.32.0.0:1", true),
        ("[fd00::]:1", false),
        ("[fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1", false),
        ("[fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1", true),
        ("[fe00::]:1", true),
    ] {
        assert_eq!(allowed(&s, connect(remote), &()), ok, "{remote}");
    }
}

#[test]
fn ports_lists_ranges_and_edges() {
    let s = set(&["allow-outbound tcp://*:80,443,8000-8099"]);
    for (port, ok) in [
        (80, true),
        (443, true),
        (8000, true),
        (8099, true),
        (7999, false),
        (8100, false),
        (81, false),
        (0, false),
    ] {
        let remote = SocketAddr::from(([1, 2, 3, 4], port));
        assert_eq!(
            allowed(
                &s,
                Action::Connect {
                    proto: Protocol::Tcp,
                    remote
                },
                &()
            ),
            ok,
            "{port}"
        );
    }
}

#[test]
fn schemes_and_families_restrict() {
    let s = set(&[
        "allow-outbound udp://*:53#ipv6-only",
        "allow-outbound tcp://*:443#ipv4-only",
    ]);
    assert!(allowed(
        &s,
        Action::Send {
            remote: sa("[2001:db8::1]:53")
        },
        &()
    ));
    assert!(!allowed(
        &s,
        Action::Send {
            remote: sa("192.0.2.1:53")
        },
        &()
    ));
    // An IPv4-mapped address is IPv4.
    assert!(!allowed(
        &s,
        Action::Send {
            remote: sa("[::ffff:192.0.2.1]:53")
        },
        &()
    ));
    assert!(allowed(&s, connect("[::ffff:192.0.2.1]:443"), &()));
    assert!(!allowed(&s, connect("[2001:db8::1]:443"), &()));
    let udp_connect = Action::Connect {
        proto: Protocol::Udp,
        remote: sa("192.0.2.1:443"),
    };
    assert!(!allowed(&s, udp_connect, &()));
}

#[test]
fn a_name_grant_unlocks_only_what_the_lookup_returned() {
    let s = set(&["allow-outbound tcp://api.example.com:443"]);
    let book = Book::default().with("api.example.com", &["192.0.2.10", "2001:db8::10"]);
    assert!(allowed(&s, connect("192.0.2.10:443"), &book));
    assert!(allowed(&s, connect("[2001:db8::10]:443"), &book));
    assert!(allowed(&s, connect("[::ffff:192.0.2.10]:443"), &book));
    assert!(
        !allowed(&s, connect("192.0.2.11:443"), &book),
        "not returned by the lookup"
    );
    assert!(!allowed(&s, connect("192.0.2.10:80"), &book), "other port");
    assert!(
        !allowed(&s, connect("192.0.2.10:443"), &()),
        "no lookup, no grant"
    );
    let other = Book::default().with("www.example.com", &["192.0.2.10"]);
    assert!(
        !allowed(&s, connect("192.0.2.10:443"), &other),
        "another name's address"
    );
}

#[test]
fn rule_names_normalize_like_lookups() {
    let s = set(&[
        "allow-outbound tcp://API.Example.COM.:443",
        "allow-outbound tcp://Bücher.Example:443",
    ]);
    let book = Book::default()
        .with("api.example.com", &["192.0.2.10"])
        .with("xn--bcher-kva.example", &["192.0.2.20"]);
    assert!(allowed(&s, connect("192.0.2.10:443"), &book));
    assert!(allowed(&s, connect("192.0.2.20:443"), &book));
    assert!(allowed(
        &s,
        Action::Resolve {
            name: "api.example.com"
        },
        &()
    ));
    assert!(allowed(
        &s,
        Action::Resolve {
            name: "xn--bcher-kva.example"
        },
        &()
    ));
}

#[test]
fn wildcards_cover_subdomains_only() {
    let s = set(&["allow-outbound tcp://*.example.com:443"]);
    let book = Book::default()
        .with("a.b.example.com", &["192.0.2.1"])
        .with("example.com", &["192.0.2.2"]);
    assert!(allowed(&s, connect("192.0.2.1:443"), &book));
    assert!(!allowed(&s, connect("192.0.2.2:443"), &book));
    assert!(allowed(
        &s,
        Action::Resolve {
            name: "a.example.com"
        },
        &()
    ));
    assert!(!allowed(
        &s,
        Action::Resolve {
            name: "example.com"
        },
        &()
    ));
    assert!(!allowed(
        &s,
        Action::Resolve {
            name: "notexample.com"
        },
        &()
    ));
}

#[test]
fn an_allowed_name_resolving_into_a_denied_set_is_denied() {
    let s = set(&[
        "allow-outbound tcp://api.example.com:443",
        "deny-outbound *://private:*",
    ]);
    let book = Book::default().with("api.example.com", &["10.0.0.7", "192.0.2.10"]);
    assert_eq!(
        decide(&s, connect("10.0.0.7:443"), &book),
        (Verdict::Deny, Some("deny-outbound *://private:*".into()))
    );
    assert!(allowed(&s, connect("192.0.2.10:443"), &book));
    let e = s.explain(&connect("10.0.0.7:443"), &book);
    assert_eq!(e.overruled.len(), 1);
    assert_eq!(&*e.overruled[0], "allow-outbound tcp://api.example.com:443");
}

#[test]
fn a_deny_by_name_covers_the_looked_up_addresses() {
    let s = set(&[
        "allow-outbound *://*:*",
        "deny-outbound *://*.evil.example:*",
        "allow-resolve *",
    ]);
    let book = Book::default().with("cdn.evil.example", &["192.0.2.66", "::ffff:192.0.2.67"]);
    assert!(!allowed(&s, connect("192.0.2.66:443"), &book));
    assert!(!allowed(&s, connect("[::ffff:192.0.2.66]:443"), &book));
    assert!(
        !allowed(&s, connect("[::ffff:192.0.2.67]:443"), &book),
        "raw spelling in the book"
    );
    assert!(allowed(&s, connect("192.0.2.68:443"), &book));
    // Looking the name up stays allowed: the deny needs the lookup's answer.
    assert!(allowed(
        &s,
        Action::Resolve {
            name: "cdn.evil.example"
        },
        &book
    ));
}

#[test]
fn a_mapped_name_then_connected_to() {
    let s = set(&[
        "allow-resolve db.internal->127.0.0.1,::1",
        "allow-outbound tcp://db.internal:5432",
    ]);
    assert_eq!(
        s.mapped_name("db.internal"),
        Some(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()])
    );
    assert_eq!(s.mapped_name("other.internal"), None);
    assert!(allowed(
        &s,
        Action::Resolve {
            name: "db.internal"
        },
        &()
    ));
    let book = Book::default().with("db.internal", &["127.0.0.1", "::1"]);
    assert!(allowed(&s, connect("127.0.0.1:5432"), &book));
    assert!(allowed(&s, connect("[::1]:5432"), &book));
    assert!(!allowed(&s, connect("127.0.0.2:5432"), &book));
}

#[test]
fn the_most_specific_name_mapping_wins() {
    let s = set(&[
        "allow-resolve *->127.0.0.9",
        "allow-resolve *.example->127.0.0.2",
        "allow-resolve *.a.example->127.0.0.3",
        "allow-resolve db.a.example->127.0.0.4",
        "allow-resolve plain.example",
    ]);
    let one = |n: &str| s.mapped_name(n).map(|v| v[0].to_string());
    assert_eq!(one("db.a.example").as_deref(), Some("127.0.0.4"));
    assert_eq!(one("x.a.example").as_deref(), Some("127.0.0.3"));
    assert_eq!(one("plain.example").as_deref(), Some("127.0.0.2"));
    assert_eq!(one("elsewhere.org").as_deref(), Some("127.0.0.9"));
}

#[test]
fn resolve_rules_and_name_grants() {
    let s = set(&[
        "allow-resolve *.corp.example",
        "deny-resolve secret.corp.example",
        "allow-inbound tcp://me.example:8080",
        "allow-outbound tcp://*:443",
        "deny-outbound tcp://blocked.example:443",
    ]);
    let resolve = |name| Action::Resolve { name };
    assert!(allowed(&s, resolve("a.corp.example"), &()));
    assert_eq!(
        decide(&s, resolve("secret.corp.example"), &()),
        (
            Verdict::Deny,
            Some("deny-resolve secret.corp.example".into())
        )
    );
    assert_eq!(reason(&s, resolve("me.example"), &()), Reason::NameGrant);
    assert!(
        !allowed(&s, resolve("anything.org"), &()),
        "a host * grants no lookups"
    );
    assert!(
        !allowed(&s, resolve("blocked.example"), &()),
        "a deny grants no lookups"
    );
    let s = set(&["allow-outbound tcp://api.example.com:443", "deny-resolve *"]);
    assert!(
        !allowed(&s, resolve("api.example.com"), &()),
        "deny-resolve beats a name grant"
    );
}

#[test]
fn create_needs_a_grant_for_the_protocol() {
    let s = set(&[
        "allow-outbound tcp://api.example.com:443",
        "deny-outbound udp://*:*",
    ]);
    assert!(allowed(
        &s,
        Action::Create {
            proto: Protocol::Tcp
        },
        &()
    ));
    assert!(!allowed(
        &s,
        Action::Create {
            proto: Protocol::Udp
        },
        &()
    ));
    assert_eq!(
        reason(
            &s,
            Action::Create {
                proto: Protocol::Udp
            },
            &()
        ),
        Reason::NoGrantForProtocol
    );
    let s = set(&["allow-inbound udp://loopback:5353"]);
    assert!(allowed(
        &s,
        Action::Create {
            proto: Protocol::Udp
        },
        &()
    ));
    assert!(!allowed(
        &s,
        Action::Create {
            proto: Protocol::Tcp
        },
        &()
    ));
    let s = set(&["allow-outbound *://loopback:*"]);
    assert!(allowed(
        &s,
        Action::Create {
            proto: Protocol::Udp
        },
        &()
    ));
}

#[test]
fn ephemeral_binds_follow_outbound_grants() {
    let s = set(&[
        "allow-outbound tcp://api.example.com:443",
        "deny-inbound *://*:*",
    ]);
    let bind = |proto, local| Action::Bind {
        proto,
        local: sa(local),
    };
    assert!(allowed(&s, bind(Protocol::Tcp, "0.0.0.0:0"), &()));
    assert!(allowed(&s, bind(Protocol::Tcp, "[::]:0"), &()));
    assert_eq!(
        reason(&s, bind(Protocol::Tcp, "0.0.0.0:0"), &()),
        Reason::EphemeralForOutbound
    );
    assert!(!allowed(&s, bind(Protocol::Udp, "0.0.0.0:0"), &()));
    assert!(!allowed(&s, bind(Protocol::Tcp, "0.0.0.0:8080"), &()));
    // An inbound grant with ports * covers an ephemeral port of its address.
    let s = set(&["allow-inbound udp://loopback:*"]);
    assert!(allowed(&s, bind(Protocol::Udp, "127.0.0.1:0"), &()));
    assert!(!allowed(&s, bind(Protocol::Udp, "0.0.0.0:0"), &()));
    let s = set(&["allow-inbound udp://loopback:5353"]);
    assert_eq!(
        reason(&s, bind(Protocol::Udp, "127.0.0.1:0"), &()),
        Reason::NoEphemeralGrant
    );
    let s = set(&["allow-inbound udp://*:*", "deny-inbound udp://loopback:*"]);
    assert!(!allowed(&s, bind(Protocol::Udp, "127.0.0.1:0"), &()));
    assert!(allowed(&s, bind(Protocol::Udp, "0.0.0.0:0"), &()));
}

#[test]
fn chosen_ports_need_an_inbound_grant_for_the_bound_address() {
    let s = set(&[
        "allow-inbound tcp://loopback:8080",
        "allow-inbound udp://*:5353",
    ]);
    let bind = |proto, local| Action::Bind {
        proto,
        local: sa(local),
    };
    assert!(allowed(&s, bind(Protocol::Tcp, "127.0.0.1:8080"), &()));
    assert!(allowed(&s, bind(Protocol::Tcp, "[::1]:8080"), &()));
    assert!(
        !allowed(&s, bind(Protocol::Tcp, "0.0.0.0:8080"), &()),
        "loopback is not every interface"
    );
    assert!(!allowed(&s, bind(Protocol::Tcp, "127.0.0.1:8081"), &()));
    assert!(!allowed(&s, bind(Protocol::Udp, "127.0.0.1:8080"), &()));
    assert!(allowed(&s, bind(Protocol::Udp, "0.0.0.0:5353"), &()));
    assert!(allowed(&s, bind(Protocol::Udp, "[::]:5353"), &()));
    assert!(allowed(
        &s,
        Action::Listen {
            local: sa("127.0.0.1:8080")
        },
        &()
    ));
    assert!(!allowed(
        &s,
        Action::Listen {
            local: sa("127.0.0.1:5353")
        },
        &()
    ));
    let s = set(&[
        "allow-inbound tcp://unspecified:80",
        "allow-inbound tcp://any-ipv6:81",
    ]);
    assert!(allowed(&s, bind(Protocol::Tcp, "0.0.0.0:80"), &()));
    assert!(allowed(&s, bind(Protocol::Tcp, "[::]:81"), &()));
    assert!(!allowed(&s, bind(Protocol::Tcp, "127.0.0.1:80"), &()));
    let s = set(&["allow-inbound tcp://*:*", "deny-inbound tcp://*:22"]);
    assert!(!allowed(&s, bind(Protocol::Tcp, "0.0.0.0:22"), &()));
    assert!(!allowed(
        &s,
        Action::Listen {
            local: sa("0.0.0.0:22")
        },
        &()
    ));
    assert!(allowed(
        &s,
        Action::Listen {
            local: sa("0.0.0.0:23")
        },
        &()
    ));
}

#[test]
fn inbound_mapping_gives_the_host_port() {
    let s = set(&[
        "allow-inbound tcp://*:80->8080",
        "allow-inbound udp://loopback:53->5353",
    ]);
    assert_eq!(s.mapped_port(Protocol::Tcp, sa("0.0.0.0:80")), Some(8080));
    assert_eq!(s.mapped_port(Protocol::Tcp, sa("0.0.0.0:81")), None);
    assert_eq!(s.mapped_port(Protocol::Udp, sa("0.0.0.0:80")), None);
    assert_eq!(s.mapped_port(Protocol::Udp, sa("127.0.0.1:53")), Some(5353));
    assert_eq!(s.mapped_port(Protocol::Udp, sa("0.0.0.0:53")), None);
    let bind = Action::Bind {
        proto: Protocol::Tcp,
        local: sa("0.0.0.0:80"),
    };
    assert!(
        allowed(&s, bind, &()),
        "the guest's view, port 80, is what is decided"
    );
}

#[test]
fn accepted_peers_must_pass_from() {
    let s = set(&[
        "allow-inbound tcp://*:8080 from loopback,192.0.2.0/24",
        "deny-inbound tcp://*:* from 192.0.2.66",
    ]);
    let accept = |peer| Action::Accept {
        local: sa("0.0.0.0:8080"),
        peer: sa(peer),
    };
    assert!(allowed(&s, accept("127.0.0.1:5000"), &()));
    assert!(allowed(&s, accept("[::ffff:127.0.0.1]:5000"), &()));
    assert!(allowed(&s, accept("192.0.2.1:5000"), &()));
    assert_eq!(
        decide(&s, accept("192.0.2.66:5000"), &()),
        (
            Verdict::Deny,
            Some("deny-inbound tcp://*:* from 192.0.2.66".into())
        )
    );
    assert_eq!(
        reason(&s, accept("198.51.100.1:5000"), &()),
        Reason::PeerNotAdmitted
    );
    // The deny with `from` does not stop binding or listening.
    assert!(allowed(
        &s,
        Action::Listen {
            local: sa("0.0.0.0:8080")
        },
        &()
    ));
    let other_port = Action::Accept {
        local: sa("0.0.0.0:9090"),
        peer: sa("127.0.0.1:1"),
    };
    assert_eq!(reason(&s, other_port, &()), Reason::NoRule);
}

#[test]
fn received_datagrams_pass_from_on_granted_sockets() {
    let s = set(&[
        "allow-inbound udp://*:5353 from private",
        "allow-outbound udp://*:*",
    ]);
    let receive = |peer| Action::Receive {
        local: sa("0.0.0.0:5353"),
        peer: sa(peer),
    };
    assert!(allowed(&s, receive("10.1.1.1:5353"), &()));
    // The socket has an inbound grant: its `from` decides, even for an address it may send to.
    assert_eq!(
        reason(&s, receive("192.0.2.1:53"), &()),
        Reason::PeerNotAdmitted
    );
}

#[test]
fn ungranted_sockets_hear_replies_only() {
    let s = set(&[
        "allow-outbound udp://192.0.2.53:53",
        "allow-outbound udp://resolver.example:53",
        "deny-inbound udp://*:* from 192.0.2.54",
        "allow-outbound udp://192.0.2.54:53",
    ]);
    let receive = |peer| Action::Receive {
        local: sa("0.0.0.0:40000"),
        peer: sa(peer),
    };
    assert_eq!(reason(&s, receive("192.0.2.53:53"), &()), Reason::Reply);
    assert_eq!(reason(&s, receive("192.0.2.53:54"), &()), Reason::NotAReply);
    assert_eq!(
        reason(&s, receive("198.51.100.1:53"), &()),
        Reason::NotAReply
    );
    let book = Book::default().with("resolver.example", &["198.51.100.1"]);
    assert!(allowed(&s, receive("198.51.100.1:53"), &book));
    assert!(
        !allowed(&s, receive("192.0.2.54:53"), &()),
        "a deny-inbound `from` beats replies"
    );
}

#[test]
fn explanations_name_rule_reason_and_overruled_rules() {
    let s = set(&["allow-outbound tcp://*:5432", "deny-outbound *://private:*"]);
    let e = s.explain(&connect("10.0.0.5:5432"), &());
    assert_eq!(
        e.to_string(),
        "connect tcp 10.0.0.5:5432: deny\n  rule: deny-outbound *://private:*\n  \
         why: the rule matches (deny rules beat allow rules)\n  \
         overrules: allow-outbound tcp://*:5432"
    );
    let e = s.explain(&connect("192.0.2.1:80"), &());
    assert_eq!(
        e.to_string(),
        "connect tcp 192.0.2.1:80: deny\n  why: no rule allows it: default deny"
    );
    let spec = super::super::action::parse_action("connect tcp 192.0.2.1:5432").unwrap();
    let e = s.explain(&spec.action(), &spec);
    assert_eq!(e.verdict, Verdict::Allow);
    assert_eq!(e.rule.as_deref(), Some("allow-outbound tcp://*:5432"));
}

#[test]
fn explain_follows_via_names() {
    let s = set(&["allow-outbound tcp://api.example.com:443"]);
    let spec = super::super::action::parse_action("connect tcp 192.0.2.1:443 via api.example.com")
        .unwrap();
    assert_eq!(s.explain(&spec.action(), &spec).verdict, Verdict::Allow);
    let spec = super::super::action::parse_action("connect tcp 192.0.2.1:443").unwrap();
    assert_eq!(s.explain(&spec.action(), &spec).verdict, Verdict::Deny);
}

#[test]
fn a_set_prints_grouped_normalized_and_deduplicated() {
    let s = RuleSet::builder()
        .deny_resolve("*.Evil.Example")
        .and_then(|b| b.allow_inbound("tcp://*:80->8080 from 127.0.0.0/8"))
        .and_then(|b| b.allow_outbound("TCP://Api.Example.com.:443"))
        .and_then(|b| b.allow_outbound("tcp://api.example.com:443"))
        .and_then(|b| b.rule("--deny-outbound", "*://[::ffff:169.254.169.254]:*"))
        .and_then(|b| b.allow_resolve("db.internal->127.0.0.1"))
        .and_then(|b| b.deny_inbound("udp://*:* from cloud-metadata"))
        .unwrap()
        .build();
    assert_eq!(
        s.to_string(),
        "allow-outbound tcp://api.example.com:443\n\
         deny-outbound *://169.254.169.254:*\n\
         allow-inbound tcp://*:80->8080 from 127.0.0.0/8\n\
         deny-inbound udp://*:* from cloud-metadata\n\
         allow-resolve db.internal->127.0.0.1\n\
         deny-resolve *.evil.example\n"
    );
    assert_eq!(s.rules().len(), 6);
    let mut again = RuleSet::builder();
    for l in s.to_string().lines() {
        again.line(l).unwrap();
    }
    let again = again.build();
    assert_eq!(again.to_string(), s.to_string());
    let e = RuleSet::builder()
        .rule("allow-outbond", "tcp://x:1")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--allow-outbond tcp://x:1: column 1: expected a rule kind: allow-outbound, deny-outbound, allow-inbound, deny-inbound, allow-resolve or deny-resolve"
    );
}

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Counts this thread's allocations, to show decisions make none.
struct Counting;

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

#[test]
fn decisions_do_not_allocate() {
    let s = set(&[
        "allow-outbound tcp://api.example.com:443",
        "allow-outbound udp://loopback:53",
        "deny-outbound *://private:*",
        "deny-outbound *://*.evil.example:*",
        "allow-inbound tcp://*:80->8080 from loopback",
        "allow-resolve *.example.com",
    ]);
    let book = Book::default().with("api.example.com", &["192.0.2.10"]);
    let actions = [
        connect("192.0.2.10:443"),
        connect("[::ffff:10.0.0.1]:443"),
        Action::Send {
            remote: sa("127.0.0.1:53"),
        },
        Action::Bind {
            proto: Protocol::Tcp,
            local: sa("0.0.0.0:0"),
        },
        Action::Listen {
            local: sa("0.0.0.0:80"),
        },
        Action::Accept {
            local: sa("0.0.0.0:80"),
            peer: sa("127.0.0.1:9"),
        },
        Action::Receive {
            local: sa("0.0.0.0:9"),
            peer: sa("127.0.0.1:53"),
        },
        Action::Resolve {
            name: "a.example.com",
        },
        Action::Create {
            proto: Protocol::Udp,
        },
    ];
    let before = ALLOCATIONS.with(Cell::get);
    let mut allows = 0;
    for action in &actions {
        let d = s.decide(action, &book);
        allows += usize::from(d.verdict == Verdict::Allow);
    }
    assert_eq!(ALLOCATIONS.with(Cell::get), before);
    assert_eq!(allows, 8);
    // The counter does count.
    std::hint::black_box(vec![0u8; 1]);
    assert!(ALLOCATIONS.with(Cell::get) > before);
}
