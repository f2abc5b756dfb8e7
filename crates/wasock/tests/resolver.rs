//! An embedder's resolver behind the lookup seam (`WasockCtxBuilder::resolver`): it answers
//! what the policy allows and nothing else, its answers are unmapped and de-duplicated, its
//! failures reach the guest as the WIT's codes, the lookup timeout bounds it, and what it
//! returned grants name-bound connects as the system resolver's answers do.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::poll::HostPollable;
use wasock::internals::bindings::instance_network::Host as InstanceNetworkHost;
use wasock::internals::bindings::ip_name_lookup::{Host as LookupHost, HostResolveAddressStream};
use wasock::internals::bindings::network::{
    ErrorCode as E, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
};
use wasock::internals::bindings::tcp::HostTcpSocket;
use wasock::internals::bindings::tcp_create_socket::Host as TcpCreateHost;
use wasock::internals::{Network, SocketError, TcpSocket};
use wasock::limits::{Denial, Limits};
use wasock::policy::RuleSet;
use wasock::{ResolveError, ResolveFuture, Resolver, WasockCtx, WasockCtxView};

/// A fixed table of answers; a name it lacks never resolves. Records every name asked.
#[derive(Clone, Default)]
struct Table {
    answers: HashMap<&'static str, Result<Vec<IpAddr>, ResolveError>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Resolver for Table {
    fn resolve(&self, name: &str) -> ResolveFuture {
        self.asked.lock().unwrap().push(name.to_string());
        match self.answers.get(name).cloned() {
            Some(answer) => Box::pin(async move { answer }),
            None => Box::pin(std::future::pending()),
        }
    }
}

fn table() -> Table {
    let lo: IpAddr = Ipv4Addr::LOCALHOST.into();
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    let mut answers = HashMap::new();
    answers.insert("db.internal", Ok(vec![mapped, lo, "::1".parse().unwrap()]));
    answers.insert("gone.internal", Err(ResolveError::NoSuchName));
    answers.insert("flaky.internal", Err(ResolveError::Temporary));
    answers.insert("empty.internal", Ok(vec![]));
    Table {
        answers,
        ..Table::default()
    }
}

struct Host {
    ctx: WasockCtx,
    table: ResourceTable,
}

impl Host {
    fn new(ctx: WasockCtx) -> Self {
        Host {
            ctx,
            table: ResourceTable::new(),
        }
    }

    fn view(&mut self) -> WasockCtxView<'_> {
        WasockCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }

    fn network(&mut self) -> Resource<Network> {
        InstanceNetworkHost::instance_network(&mut self.view()).unwrap()
    }

    /// Every address `name` resolves to, or the error `resolve-next-address` reported; waits
    /// on the stream's pollable (bounded).
    async fn resolve(&mut self, name: &str) -> Result<Vec<IpAddr>, E> {
        let net = self.network();
        let stream = LookupHost::resolve_addresses(&mut self.view(), borrow(&net), name.into())
            .map_err(code)?;
        let pollable =
            HostResolveAddressStream::subscribe(&mut self.view(), borrow(&stream)).unwrap();
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            HostPollable::block(&mut self.table, borrow(&pollable)),
        )
        .await;
        assert!(waited.is_ok(), "the lookup of {name} never resolved");
        HostPollable::drop(&mut self.table, pollable).unwrap();
        let mut out = Vec::new();
        loop {
            let next =
                HostResolveAddressStream::resolve_next_address(&mut self.view(), borrow(&stream))
                    .map_err(code);
            match next {
                Ok(Some(a)) if out.len() < 16 => out.push(ip(a)),
                Ok(_) => break,
                Err(code) => return Err(code),
            }
        }
        HostResolveAddressStream::drop(&mut self.view(), stream).unwrap();
        Ok(out)
    }
}

fn code(e: SocketError) -> E {
    match e {
        SocketError::Code(c) => c.into(),
        SocketError::Trap(t) => panic!("the host trapped: {t:?}"),
    }
}

fn borrow<T: 'static>(r: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(r.rep())
}

const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LO6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);

fn ip(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4((a, b, c, d)) => Ipv4Addr::new(a, b, c, d).into(),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).into()
        }
    }
}

#[tokio::test]
async fn an_embedders_resolver_answers_what_the_policy_allows() {
    let resolver = table();
    let asked = resolver.asked.clone();
    let rules = RuleSet::builder()
        .allow_resolve("*.internal")
        .and_then(|b| b.deny_resolve("secret.internal"))
        .unwrap()
        .build();
    let limits = Limits {
        lookup_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let ctx = WasockCtx::builder()
        .policy(rules)
        .limits(limits)
        .resolver(resolver)
        .build();
    let counters = ctx.counters();
    let mut host = Host::new(ctx);

    assert_eq!(
        host.resolve("DB.Internal.").await,
        Ok(vec![LO4, LO6]),
        "normalized, unmapped and de-duplicated in the resolver's order"
    );
    assert_eq!(
        host.resolve("gone.internal").await,
        Err(E::NameUnresolvable)
    );
    assert_eq!(
        host.resolve("flaky.internal").await,
        Err(E::TemporaryResolverFailure)
    );
    assert_eq!(
        host.resolve("empty.internal").await,
        Err(E::NameUnresolvable)
    );
    assert_eq!(
        host.resolve("slow.internal").await,
        Err(E::TemporaryResolverFailure),
        "the lookup timeout bounds an embedder's resolver too"
    );
    assert_eq!(
        host.resolve("secret.internal").await,
        Err(E::PermanentResolverFailure)
    );
    assert_eq!(
        host.resolve("example.com").await,
        Err(E::PermanentResolverFailure)
    );
    assert_eq!(host.resolve("127.0.0.1").await, Ok(vec![LO4]));
    assert_eq!(
        *asked.lock().unwrap(),
        [
            "db.internal",
            "gone.internal",
            "flaky.internal",
            "empty.internal",
            "slow.internal"
        ],
        "refused names and literals never reach the resolver"
    );
    let stats = counters.stats();
    assert_eq!(stats.denied_by.get(&Denial::LookupTimeout), Some(&1));
    assert_eq!(stats.denied_by.get(&Denial::Policy("resolve")), Some(&2));
}

#[tokio::test]
async fn its_answers_grant_name_bound_connects() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rules = RuleSet::builder()
        .allow_outbound("tcp://db.internal:*")
        .unwrap()
        .build();
    let ctx = WasockCtx::builder().policy(rules).resolver(table()).build();
    let mut host = Host::new(ctx);
    let connect = |host: &mut Host| {
        let net = host.network();
        let sock: Resource<TcpSocket> =
            TcpCreateHost::create_tcp_socket(&mut host.view(), IpAddressFamily::Ipv4).unwrap();
        let to = IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (127, 0, 0, 1),
        });
        HostTcpSocket::start_connect(&mut host.view(), borrow(&sock), borrow(&net), to)
            .map_err(code)
    };
    assert_eq!(
        connect(&mut host),
        Err(E::AccessDenied),
        "before the lookup the name grants nothing"
    );
    assert_eq!(host.resolve("db.internal").await, Ok(vec![LO4, LO6]));
    assert_eq!(
        connect(&mut host),
        Ok(()),
        "the resolver's answer is granted"
    );
}
