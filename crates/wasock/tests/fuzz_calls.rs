//! Host-call fuzzer: random sequences of `wasi:sockets` (and the `wasi:io` calls on their
//! streams and pollables) made directly on the host implementation, with no guest, on live,
//! dead and foreign resource handles, with random arguments.
//!
//! After every call it checks: no panic; a trap only where the WIT allows one (send or write
//! over the permit, a stream dropped before its pollable) or for a dead/foreign handle (which
//! must trap); every error code is one that wasock can return for that call here (the sets
//! below: never `unknown`, which would be an unmapped errno, and never `access-denied`, as
//! every case runs under allow-all with the default limits), and where the state decides the
//! outcome, the one code it decides; and the state invariants a caller can observe
//! (`local-address` only once bound, `is-listening` only after `finish-listen`,
//! `remote-address` only when connected, only the newest datagram stream pair working, a
//! literal lookup answering itself, ...). After each case it drops every resource (in random
//! order) and checks that the resource table is empty, no socket is counted open, and the
//! process's fd count is back to its baseline.
//!
//! Addresses: only loopback (127.0.0.1, ::1) with port 0 or the port of a socket alive in the
//! same case are ever valid connect/send targets; unspecified, IPv4-mapped, wrong-family and
//! (for TCP) multicast and broadcast addresses are sent as invalid inputs, which the host must
//! refuse before any syscall (checked: they must come back as `invalid-argument`). UDP has no
//! "unicast" rule: a multicast or broadcast address is a valid UDP destination that the kernel
//! would really send to, so UDP destinations (`stream`'s peer, `send`'s `remote-address`) are
//! never multicast, broadcast or anything but loopback, unspecified or IPv4-mapped loopback
//! (checked before each such call); multicast and broadcast addresses are only *bound* to by
//! UDP sockets (which sends nothing; the socket's datagrams to loopback still leave from a
//! loopback source).
//!
//! Environment: `WASOCK_FUZZ_CASES` (default 300), `WASOCK_FUZZ_STEPS` (calls per case, default
//! 60), `WASOCK_FUZZ_SECS` (run cases until this many seconds passed, instead of a count),
//! `WASOCK_FUZZ_SEED` (the first case's seed; case `i` uses seed + i; default from the clock).
//! A failure prints the case seed and the case's call log; rerun it with
//! `WASOCK_FUZZ_SEED=<seed> WASOCK_FUZZ_CASES=1` (timing-dependent outcomes such as a connect
//! still in progress may differ between runs).
//!
//! This is its own test binary with one test, so that the fd count is not disturbed by other
//! tests of the same process; cases run one after another.

mod fuzzing;

use fuzzing::{Budget, SplitMix, env_u64, first_seed};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::error::HostError;
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as PollHost, HostPollable};
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    Host as StreamsHost, HostInputStream, HostOutputStream, StreamError as WitStreamError,
};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamError};
use wasock::internals::bindings::instance_network::Host as InstanceNetworkHost;
use wasock::internals::bindings::ip_name_lookup::{Host as LookupHost, HostResolveAddressStream};
use wasock::internals::bindings::network::{
    ErrorCode as E, Host as NetworkHost, HostNetwork, IpAddress, IpAddressFamily as Fam,
    IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasock::internals::bindings::tcp::{HostTcpSocket, ShutdownType};
use wasock::internals::bindings::tcp_create_socket::Host as TcpCreateHost;
use wasock::internals::bindings::udp::{
    HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, OutgoingDatagram,
};
use wasock::internals::bindings::udp_create_socket::Host as UdpCreateHost;
use wasock::internals::{
    IncomingDatagramStream, Network, OutgoingDatagramStream, ResolveAddressStream, SocketError,
    TcpSocket, UdpSocket,
};
use wasock::{WasockCtx, WasockCtxView};

// ---------------------------------------------------------------------------------------------
// Configuration and driver
// ---------------------------------------------------------------------------------------------

const DEFAULT_CASES: u64 = 300;
const DEFAULT_STEPS: usize = 60;
/// How long the fd count may take to come back after a case (lingering writers, resolver
/// threads).
const FD_SETTLE: Duration = Duration::from_secs(10);
/// Upper bound for any single awaited call (poll, blocking read/flush).
const MAX_WAIT_MS: u64 = 25;
/// Longest wait on a pollable that must resolve: a loopback connect, a pending connection,
/// a lookup of `localhost`.
const PAIR_WAIT: Duration = Duration::from_secs(5);

// Error codes per call: what wasock can return here, read from `src/error.rs` (errno -> code)
// and the state machines, not the WIT's catch-all list ("any function may return `unknown`,
// `access-denied`, `not-supported`, `out-of-memory`, `concurrency-conflict`"). In particular:
// - `unknown` is never accepted: it means an errno (or a non-OS error) wasock does not map.
//   wasock's own `unknown`s are for running outside a tokio runtime, which never happens here.
// - `access-denied` is never accepted: every case runs under allow-all with the default limits,
//   so neither the policy nor a limit refuses anything, and no target (loopback, ports of live
//   sockets, or port 0) can draw `EACCES`/`EPERM` from the kernel.
// - `concurrency-conflict` only from a `start-*` made while another asynchronous operation of
//   the socket is under way (TCP: bind, listen or connect started and not finished, a connect
//   that failed at once included; UDP: a started bind), which wasock checks first, before the
//   state's other rules and the arguments (the WIT; as stock wasmtime-wasi). `EALREADY` is
//   otherwise unreachable: the state machines refuse a second operation before any syscall.
// - `new-socket-limit` only where a socket is made (`create-*`, `accept`): the instance's
//   1024 sockets are out of reach, the host's fd limit is not (environment).
// - `out-of-memory` (`ENOMEM`, `ENOBUFS`) only where a syscall allocates: socket creation,
//   `accept`, a reactor registration (TCP `start-listen`, UDP `finish-bind`), datagram sends
//   (reachable here too: see `send`) and receives.

/// Kernel memory: allowed on calls whose syscalls allocate (see above).
const OOM: E = E::OutOfMemory;

/// `create-tcp-socket` / `create-udp-socket`: no IPv6 on the host (`EAFNOSUPPORT`), the
/// host's fd limit, kernel memory.
const CREATE_ERRORS: &[E] = &[E::NotSupported, E::NewSocketLimit, OOM];

/// `start-bind` (TCP and UDP): an operation in progress, the state check, the argument rules,
/// then `bind(2)`.
const START_BIND_ERRORS: &[E] = &[
    E::ConcurrencyConflict,
    E::InvalidArgument,
    E::InvalidState,
    E::AddressInUse,
    E::AddressNotBindable,
];

/// TCP `finish-bind`: the bind happened in `start-bind`; nothing to wait for.
const TCP_FINISH_BIND_ERRORS: &[E] = &[E::NotInProgress];

/// UDP `finish-bind`: also registers the socket with the reactor.
const UDP_FINISH_BIND_ERRORS: &[E] = &[E::NotInProgress, OOM];

/// `start-connect`: an operation in progress, the state check and the argument rules;
/// `connect(2)`'s own failures are reported by `finish-connect`.
const START_CONNECT_ERRORS: &[E] = &[E::ConcurrencyConflict, E::InvalidArgument, E::InvalidState];

/// `start-listen`: an operation in progress, the state check; `listen(2)` fails with
/// `EADDRINUSE` when another socket bound the same port by `SO_REUSEADDR` listens; registering
/// with the reactor may find no memory.
const START_LISTEN_ERRORS: &[E] = &[
    E::ConcurrencyConflict,
    E::InvalidState,
    E::AddressInUse,
    OOM,
];

/// `finish-connect`: `connect(2)`'s outcome (`SO_ERROR`), on loopback: refused (a port bound
/// but not listening), reset (the listener dropped before the connection was accepted), or no
/// free 4-tuple (`EADDRNOTAVAIL`: two sockets bound to one port by `SO_REUSEADDR` connecting
/// to one peer) which the WIT calls `address-in-use`.
const FINISH_CONNECT_ERRORS: &[E] = &[
    E::NotInProgress,
    E::WouldBlock,
    E::ConnectionRefused,
    E::ConnectionReset,
    E::AddressInUse,
];

/// The call log of the running case, printed when it fails.
static LOG: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
const LOG_KEEP: usize = 400;

fn log(line: String) {
    let mut l = LOG.lock().unwrap_or_else(|p| p.into_inner());
    if l.len() == LOG_KEEP {
        l.pop_front();
    }
    l.push_back(line);
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn fd_listing() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            out.push(format!("{} -> {target}", e.file_name().to_string_lossy()));
        }
    }
    out.sort();
    out
}

#[derive(Default)]
struct Totals {
    cases: u64,
    calls: u64,
    /// (function, outcome) -> count
    outcomes: BTreeMap<(String, String), u64>,
}

#[test]
fn fuzz_host_calls() {
    let steps = env_u64("WASOCK_FUZZ_STEPS").unwrap_or(DEFAULT_STEPS as u64) as usize;
    let secs = env_u64("WASOCK_FUZZ_SECS");
    let cases = env_u64("WASOCK_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let seed = first_seed("WASOCK_FUZZ_SEED");
    println!("fuzz_calls: first seed {seed}, {steps} steps per case");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Warm up what the process keeps open after first use (runtime, resolver, reactor).
    rt.block_on(warm_up());
    std::thread::sleep(Duration::from_millis(100));
    let baseline = fd_count();
    let baseline_list = fd_listing();

    let started = Instant::now();
    let mut totals = Totals::default();
    let budget = Budget::new(secs, cases);
    let mut i = 0u64;
    while budget.allows(i) {
        let case_seed = seed.wrapping_add(i);
        LOG.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let r = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(run_case(case_seed, steps, &mut totals))
        }));
        if let Err(panic) = r {
            let log = LOG.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!(
                "---- call log of the failing case (last {}) ----",
                log.len()
            );
            for l in log.iter() {
                eprintln!("{l}");
            }
            eprintln!(
                "fuzz_calls: case {i} FAILED; reproduce with WASOCK_FUZZ_SEED={case_seed} \
                 WASOCK_FUZZ_CASES=1 WASOCK_FUZZ_STEPS={steps}"
            );
            resume_unwind(panic);
        }
        // Everything of the case was dropped: the fd count must come back. Closing is
        // asynchronous in places (a dropped writer lingers, a resolver thread ends) and
        // /proc has no notification for it: a bounded settle loop.
        let deadline = Instant::now() + FD_SETTLE;
        let mut now = fd_count();
        while now > baseline && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            now = fd_count();
        }
        if now > baseline {
            let list = fd_listing();
            let new: Vec<_> = list.iter().filter(|l| !baseline_list.contains(l)).collect();
            let log = LOG.lock().unwrap_or_else(|p| p.into_inner());
            for l in log.iter() {
                eprintln!("{l}");
            }
            panic!(
                "fd leak after case {i} (seed {case_seed}): {now} open, baseline {baseline}; \
                 new: {new:#?}"
            );
        }
        i += 1;
        totals.cases += 1;
    }
    let elapsed = started.elapsed();
    println!(
        "fuzz_calls: {} cases, {} host calls in {:.1?} ({:.0} calls/s); fd baseline {baseline}",
        totals.cases,
        totals.calls,
        elapsed,
        totals.calls as f64 / elapsed.as_secs_f64().max(0.001)
    );
    if std::env::var_os("WASOCK_FUZZ_VERBOSE").is_some() {
        for ((f, o), n) in &totals.outcomes {
            println!("  {f:32} {o:28} {n}");
        }
    }
}

/// One lookup, one connected pair: first-use allocations that stay for the process.
async fn warm_up() {
    let mut totals = Totals::default();
    let mut f = Fuzz::new(0, &mut totals);
    let net = f.net_new();
    f.resolve(net, "localhost");
    let l = f.pick_live(Kind::Lookup).unwrap();
    for _ in 0..3 {
        if !matches!(f.lookup_next(l), Some(Err(E::WouldBlock))) {
            break;
        }
        let mut v = WasockCtxView {
            ctx: &mut f.ctx,
            table: &mut f.table,
        };
        let p = HostResolveAddressStream::subscribe(&mut v, b::<ResolveAddressStream>(l))
            .expect("resolve-address-stream.subscribe")
            .rep();
        f.block_on(p, PAIR_WAIT).await;
    }
    f.pair(Fam::Ipv4).await;
    f.teardown().await;
}

async fn run_case(seed: u64, steps: usize, totals: &mut Totals) {
    let mut f = Fuzz::new(seed, totals);
    log(format!("case seed {seed}"));
    let n = steps / 2 + f.rng.below(steps / 2 + 1);
    for _ in 0..n {
        f.step().await;
    }
    f.teardown().await;
}

// ---------------------------------------------------------------------------------------------
// Random numbers (reproducible from the seed)
// ---------------------------------------------------------------------------------------------

struct Rng(SplitMix);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next()
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Net,
    Tcp,
    Udp,
    In,
    Out,
    DgIn,
    DgOut,
    Poll,
    Lookup,
    Err,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpSt {
    Unbound,
    BindStarted,
    Bound,
    ListenStarted,
    Listening,
    ConnectStarted,
    Connected,
    Closed,
}

impl TcpSt {
    /// A bind, listen or connect started and not finished (for wasock, a connect that failed
    /// at once too, which the model keeps in `ConnectStarted` until `finish-connect`): another
    /// `start-*` is `concurrency-conflict`.
    fn in_progress(self) -> bool {
        matches!(
            self,
            TcpSt::BindStarted | TcpSt::ListenStarted | TcpSt::ConnectStarted
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UdpSt {
    Unbound,
    BindStarted,
    Bound,
}

#[derive(Clone, Debug)]
struct TcpM {
    fam: Fam,
    st: TcpSt,
    /// Bound to an unspecified address: never listened on (no port open beyond loopback).
    exposed: bool,
    port: Option<u16>,
    conn: Option<u64>,
}

#[derive(Clone, Debug)]
struct UdpM {
    fam: Fam,
    st: UdpSt,
    id: u64,
    remote: Option<IpSocketAddress>,
    /// The address asked for by a started bind; once bound, the bound address (the port the
    /// kernel picked included), which the socket keeps for life.
    local: Option<IpSocketAddress>,
}

#[derive(Clone, Debug)]
enum Ent {
    Net,
    Tcp(TcpM),
    Udp(UdpM),
    In {
        conn: u64,
    },
    Out {
        conn: u64,
        /// What the last `check-write` granted and no write used; `None` when unknown.
        permit: Option<u64>,
    },
    DgIn {
        udp: u64,
        generation: u64,
        remote: Option<IpSocketAddress>,
    },
    DgOut {
        udp: u64,
        generation: u64,
        fam: Fam,
        remote: Option<IpSocketAddress>,
        permit: u64,
    },
    Poll {
        /// The stream this pollable is a child of.
        parent: Option<u32>,
    },
    Lookup {
        literal: Option<IpAddr>,
        /// What the last `resolve-next-address` reported after the results were in.
        ended: Option<Result<(), E>>,
        served: bool,
    },
    Err,
}

impl Ent {
    fn kind(&self) -> Kind {
        match self {
            Ent::Net => Kind::Net,
            Ent::Tcp(_) => Kind::Tcp,
            Ent::Udp(_) => Kind::Udp,
            Ent::In { .. } => Kind::In,
            Ent::Out { .. } => Kind::Out,
            Ent::DgIn { .. } => Kind::DgIn,
            Ent::DgOut { .. } => Kind::DgOut,
            Ent::Poll { .. } => Kind::Poll,
            Ent::Lookup { .. } => Kind::Lookup,
            Ent::Err => Kind::Err,
        }
    }
}

/// A handle passed to a call: a live one of the right kind, or a dead or foreign one (which
/// must trap).
#[derive(Clone, Copy, Debug)]
struct H {
    rep: u32,
    live: bool,
}

/// A generated address and what the WIT (and, for UDP binds, the kernel) says about it. The
/// family is not judged here: the callers compare it with the socket's.
#[derive(Clone, Copy, Debug)]
struct Addr {
    wit: IpSocketAddress,
    /// Passes TCP `start-bind`'s argument rules (unicast, not IPv4-mapped).
    valid_local: bool,
    valid_remote: bool,
    unspecified: bool,
    /// Multicast or broadcast: invalid for TCP, valid for UDP `start-bind` (no unicast rule).
    group: bool,
    /// `bind(2)` refuses it with `EINVAL` (`invalid-argument`): an IPv6 link-local multicast
    /// address with no scope id ("binding to a link-local address requires an interface").
    bind_einval: bool,
}

impl Addr {
    /// A loopback address (`valid_remote` when `port` is not 0).
    fn lo(wit: IpSocketAddress) -> Addr {
        Addr {
            wit,
            valid_local: true,
            valid_remote: port_of(&wit) != 0,
            unspecified: false,
            group: false,
            bind_einval: false,
        }
    }
}

/// Whether a UDP destination is one the fuzzer may hand to the host: loopback, or one that is
/// local if the host ever let it through (unspecified, IPv4-mapped loopback). Never multicast,
/// broadcast or any other address, which the kernel would send to a real interface.
fn udp_dest_is_safe(a: &IpSocketAddress) -> bool {
    match ip_of(a) {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_unspecified(),
        IpAddr::V6(ip) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
}

/// How a call ended, for the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Ok,
    Code(E),
    Trap,
}

/// What the model knows of a TCP connection's streams.
#[derive(Clone, Copy, Debug, Default)]
struct ConnM {
    /// `shutdown(receive)` (or `both`) was called: every read is `closed`.
    rx_shut: bool,
    /// `shutdown(send)` (or `both`) was called: the output stream is closed at once
    /// (`check-write`, `write`, `flush` and the blocking calls are `closed`), though bytes it
    /// had accepted are still delivered.
    tx_shut: bool,
    /// A read reported end-of-stream (`closed`) or failed: every later read is `closed`,
    /// `read(0)` included.
    rx_done: bool,
}

struct Fuzz<'t> {
    rng: Rng,
    ctx: WasockCtx,
    table: ResourceTable,
    live: BTreeMap<u32, Ent>,
    dead: Vec<(u32, Kind)>,
    /// What the model knows of each connection's streams.
    conns: HashMap<u64, ConnM>,
    next_conn: u64,
    /// Newest stream generation per UDP socket id, and the socket's local port.
    udp_gen: HashMap<u64, u64>,
    udp_port: HashMap<u64, u16>,
    next_udp: u64,
    totals: &'t mut Totals,
}

macro_rules! view {
    ($s:expr) => {
        WasockCtxView {
            ctx: &mut $s.ctx,
            table: &mut $s.table,
        }
    };
}

fn b<T: 'static>(h: H) -> Resource<T> {
    Resource::new_borrow(h.rep)
}

fn own<T: 'static>(h: H) -> Resource<T> {
    Resource::new_own(h.rep)
}

fn sock_fam(a: &IpSocketAddress) -> Fam {
    match a {
        IpSocketAddress::Ipv4(_) => Fam::Ipv4,
        IpSocketAddress::Ipv6(_) => Fam::Ipv6,
    }
}

fn ip_of(a: &IpSocketAddress) -> IpAddr {
    match a {
        IpSocketAddress::Ipv4(a) => {
            let (x, y, z, w) = a.address;
            IpAddr::V4(Ipv4Addr::new(x, y, z, w))
        }
        IpSocketAddress::Ipv6(a) => {
            let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
            IpAddr::V6(Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7))
        }
    }
}

fn port_of(a: &IpSocketAddress) -> u16 {
    match a {
        IpSocketAddress::Ipv4(a) => a.port,
        IpSocketAddress::Ipv6(a) => a.port,
    }
}

fn same_addr(a: &IpSocketAddress, b: &IpSocketAddress) -> bool {
    match (a, b) {
        (IpSocketAddress::Ipv4(x), IpSocketAddress::Ipv4(y)) => {
            x.port == y.port && x.address == y.address
        }
        (IpSocketAddress::Ipv6(x), IpSocketAddress::Ipv6(y)) => {
            x.port == y.port && x.address == y.address
        }
        _ => false,
    }
}

fn exact_addr(a: &IpSocketAddress, b: &IpSocketAddress) -> bool {
    match (a, b) {
        (IpSocketAddress::Ipv6(x), IpSocketAddress::Ipv6(y)) => {
            same_addr(a, b) && x.flow_info == y.flow_info && x.scope_id == y.scope_id
        }
        _ => same_addr(a, b),
    }
}

fn v4(address: (u8, u8, u8, u8), port: u16) -> IpSocketAddress {
    IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address })
}

fn v6(
    address: (u16, u16, u16, u16, u16, u16, u16, u16),
    port: u16,
    flow_info: u32,
    scope_id: u32,
) -> IpSocketAddress {
    IpSocketAddress::Ipv6(Ipv6SocketAddress {
        port,
        flow_info,
        address,
        scope_id,
    })
}

/// What `start-bind` (TCP or UDP) may give for an address that passes the argument rules and
/// `bind(2)` accepts, on an unbound socket: done, or, for a live socket's port, taken (TCP
/// shares a port by `SO_REUSEADDR` unless that socket listens; UDP shares none).
fn bind_outcomes(a: &Addr) -> &'static [Out] {
    if port_of(&a.wit) == 0 {
        &[Out::Ok]
    } else {
        &[Out::Ok, Out::Code(E::AddressInUse)]
    }
}

fn other(f: Fam) -> Fam {
    match f {
        Fam::Ipv4 => Fam::Ipv6,
        Fam::Ipv6 => Fam::Ipv4,
    }
}

fn out_of<T>(r: &Result<T, SocketError>) -> Out {
    match r {
        Ok(_) => Out::Ok,
        // What the guest sees: the 0.2 code of the host's version-neutral one.
        Err(SocketError::Code(c)) => Out::Code((*c).into()),
        Err(SocketError::Trap(_)) => Out::Trap,
    }
}

fn out_name(o: Out) -> String {
    match o {
        Out::Ok => "ok".into(),
        Out::Code(c) => c.name().to_string(),
        Out::Trap => "trap".into(),
    }
}

fn trap<T>(r: wasmtime::Result<T>) -> Result<T, SocketError> {
    r.map_err(SocketError::Trap)
}

/// A stream result in the model's terms: `Closed` and `LastOperationFailed` as codes of
/// their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SOut {
    Ok,
    Closed,
    Failed,
    Trap,
}

impl<'t> Fuzz<'t> {
    fn new(seed: u64, totals: &'t mut Totals) -> Self {
        Fuzz {
            rng: Rng(SplitMix(seed)),
            ctx: WasockCtx::builder()
                .allow_all_network(true)
                .allow_ip_name_lookup(true)
                .build(),
            table: ResourceTable::new(),
            live: BTreeMap::new(),
            dead: Vec::new(),
            conns: HashMap::new(),
            next_conn: 0,
            udp_gen: HashMap::new(),
            udp_port: HashMap::new(),
            next_udp: 0,
            totals,
        }
    }

    #[track_caller]
    fn fail(&self, msg: String) -> ! {
        panic!("fuzz_calls invariant broken: {msg}")
    }

    fn record(&mut self, call: &str, outcome: String, detail: String) {
        self.totals.calls += 1;
        *self
            .totals
            .outcomes
            .entry((call.to_string(), outcome.clone()))
            .or_default() += 1;
        log(format!("{call}{detail} -> {outcome}"));
    }

    /// Checks a socket call's result: traps only for invalid handles (where one is required)
    /// or where `trap_ok`; codes from `allowed` only.
    #[track_caller]
    fn judge<T>(
        &mut self,
        call: &str,
        detail: String,
        valid: bool,
        r: &Result<T, SocketError>,
        allowed: &[E],
        trap_ok: bool,
    ) -> Out {
        let o = out_of(r);
        let extra = match r {
            Err(SocketError::Trap(e)) => format!(" ({e})"),
            _ => String::new(),
        };
        self.record(call, out_name(o), format!("{detail}{extra}"));
        if !valid {
            if o != Out::Trap {
                self.fail(format!(
                    "{call}{detail} on a dead or foreign handle returned {}, expected a trap",
                    out_name(o)
                ));
            }
            return o;
        }
        match o {
            Out::Trap if !trap_ok => self.fail(format!("{call}{detail}: unexpected trap{extra}")),
            Out::Code(E::Unknown) => self.fail(format!(
                "{call}{detail}: `unknown`, an error wasock does not map to a WIT code"
            )),
            Out::Code(E::AccessDenied) => self.fail(format!(
                "{call}{detail}: `access-denied` under an allow-all policy"
            )),
            Out::Code(c) if !allowed.contains(&c) => self.fail(format!(
                "{call}{detail}: error {c:?} is not one this call can return here {allowed:?}"
            )),
            _ => {}
        }
        o
    }

    #[track_caller]
    fn judge_stream<T>(
        &mut self,
        call: &str,
        detail: String,
        valid: bool,
        r: &Result<T, StreamError>,
        trap_ok: bool,
    ) -> SOut {
        let o = match r {
            Ok(_) => SOut::Ok,
            Err(StreamError::Closed) => SOut::Closed,
            Err(StreamError::LastOperationFailed(_)) => SOut::Failed,
            Err(StreamError::Trap(_)) => SOut::Trap,
        };
        let extra = match r {
            Err(StreamError::Trap(e)) | Err(StreamError::LastOperationFailed(e)) => {
                format!(" ({e})")
            }
            _ => String::new(),
        };
        let name = match o {
            SOut::Ok => "ok",
            SOut::Closed => "closed",
            SOut::Failed => "last-operation-failed",
            SOut::Trap => "trap",
        };
        self.record(call, name.into(), format!("{detail}{extra}"));
        if !valid && o != SOut::Trap {
            self.fail(format!(
                "{call}{detail} on a dead or foreign handle returned {o:?}, expected a trap"
            ));
        }
        if valid && o == SOut::Trap && !trap_ok {
            self.fail(format!("{call}{detail}: unexpected trap{extra}"));
        }
        o
    }

    // --- handles ---------------------------------------------------------------------------

    fn add(&mut self, rep: u32, ent: Ent) {
        if let Some(old) = self.live.get(&rep) {
            self.fail(format!(
                "the table handed out rep {rep} again while {old:?} is alive"
            ));
        }
        self.dead.retain(|(r, _)| *r != rep);
        self.live.insert(rep, ent);
    }

    fn kill(&mut self, rep: u32) {
        if let Some(e) = self.live.remove(&rep) {
            self.dead.push((rep, e.kind()));
            if self.dead.len() > 64 {
                self.dead.remove(0);
            }
        }
    }

    fn pick_live(&mut self, k: Kind) -> Option<H> {
        let reps: Vec<u32> = self
            .live
            .iter()
            .filter(|(_, e)| e.kind() == k)
            .map(|(r, _)| *r)
            .collect();
        if reps.is_empty() {
            None
        } else {
            Some(H {
                rep: self.rng.pick(&reps),
                live: true,
            })
        }
    }

    /// A handle for a call taking a `k`: mostly live, sometimes dead or foreign.
    fn target(&mut self, k: Kind) -> H {
        let roll = self.rng.below(100);
        if roll < 90
            && let Some(h) = self.pick_live(k)
        {
            return h;
        }
        let dead: Vec<u32> = self
            .dead
            .iter()
            .filter(|(_, dk)| *dk == k)
            .map(|(r, _)| *r)
            .collect();
        if !dead.is_empty() && self.rng.chance(50) {
            return H {
                rep: self.rng.pick(&dead),
                live: false,
            };
        }
        let others: Vec<u32> = self
            .live
            .iter()
            .filter(|(_, e)| e.kind() != k)
            .map(|(r, _)| *r)
            .collect();
        if !others.is_empty() && self.rng.chance(70) {
            return H {
                rep: self.rng.pick(&others),
                live: false,
            };
        }
        H {
            rep: 100_000 + self.rng.below(1000) as u32,
            live: false,
        }
    }

    /// A handle for a `drop`: live, or dead with a free slot (the component model itself
    /// refuses a foreign or reused handle before the host sees it).
    fn drop_target(&mut self, k: Kind) -> Option<H> {
        if self.rng.chance(90)
            && let Some(h) = self.pick_live(k)
        {
            return Some(h);
        }
        let dead: Vec<u32> = self
            .dead
            .iter()
            .filter(|(r, dk)| *dk == k && self.table.get_any_mut(*r).is_err())
            .map(|(r, _)| *r)
            .collect();
        if dead.is_empty() {
            return self.pick_live(k);
        }
        Some(H {
            rep: self.rng.pick(&dead),
            live: false,
        })
    }

    /// Half the time, a live resource that `want`s (a socket in the state a call is about),
    /// if there is one, instead of `h`: so that the calls on fresh sockets are not rare.
    fn prefer(&mut self, h: H, want: impl Fn(&Ent) -> bool) -> H {
        if !self.rng.chance(50) {
            return h;
        }
        let reps: Vec<u32> = self
            .live
            .iter()
            .filter(|(_, e)| want(e))
            .map(|(r, _)| *r)
            .collect();
        if reps.is_empty() {
            h
        } else {
            H {
                rep: self.rng.pick(&reps),
                live: true,
            }
        }
    }

    fn tcp(&self, h: H) -> Option<TcpM> {
        match (h.live, self.live.get(&h.rep)) {
            (true, Some(Ent::Tcp(m))) => Some(m.clone()),
            _ => None,
        }
    }

    fn tcp_mut(&mut self, h: H) -> Option<&mut TcpM> {
        match (h.live, self.live.get_mut(&h.rep)) {
            (true, Some(Ent::Tcp(m))) => Some(m),
            _ => None,
        }
    }

    fn udp(&self, h: H) -> Option<UdpM> {
        match (h.live, self.live.get(&h.rep)) {
            (true, Some(Ent::Udp(m))) => Some(m.clone()),
            _ => None,
        }
    }

    fn children(&self, rep: u32) -> Vec<u32> {
        self.live
            .iter()
            .filter(|(_, e)| matches!(e, Ent::Poll { parent: Some(p) } if *p == rep))
            .map(|(r, _)| *r)
            .collect()
    }

    /// Ports of sockets alive now: the only ports ever used as targets.
    fn live_ports(&self, proto: Proto, fam: Fam) -> Vec<u16> {
        let mut out = Vec::new();
        match proto {
            Proto::Tcp => {
                for e in self.live.values() {
                    if let Ent::Tcp(m) = e
                        && m.fam == fam
                        && let Some(p) = m.port
                        && m.st != TcpSt::Closed
                    {
                        out.push(p);
                    }
                }
            }
            Proto::Udp => {
                for e in self.live.values() {
                    let (id, f) = match e {
                        Ent::Udp(m) => (m.id, m.fam),
                        Ent::DgOut { udp, fam, .. } => (*udp, *fam),
                        _ => continue,
                    };
                    if f == fam
                        && let Some(p) = self.udp_port.get(&id)
                    {
                        out.push(*p);
                    }
                }
            }
        }
        out
    }

    /// An address for a socket of family `fam`: to bind to (`remote_proto` none) or a
    /// destination of `remote_proto`. UDP destinations are never multicast or broadcast (see
    /// the module's doc): their multicast and broadcast draws become other invalid addresses
    /// that stay on this host.
    fn addr(&mut self, fam: Fam, remote_proto: Option<Proto>) -> Addr {
        let known: Vec<u16> = match remote_proto {
            Some(p) => self.live_ports(p, fam),
            None => {
                let mut v = self.live_ports(Proto::Tcp, fam);
                v.extend(self.live_ports(Proto::Udp, fam));
                v
            }
        };
        let port = if remote_proto.is_some() || self.rng.chance(30) {
            if known.is_empty() {
                0
            } else {
                self.rng.pick(&known)
            }
        } else {
            0
        };
        // A destination's port is never 0 where only the IP is to be wrong; a bind's stays 0
        // or a live socket's (port 1 would need privileges: `access-denied` for some users).
        let rport = if remote_proto.is_some() {
            port.max(1)
        } else {
            port
        };
        let udp_dest = remote_proto == Some(Proto::Udp);
        let scope = if self.rng.chance(10) { 1 } else { 0 };
        let flow = if self.rng.chance(10) { 7 } else { 0 };
        let lo = |f: Fam, port: u16| match f {
            Fam::Ipv4 => v4((127, 0, 0, 1), port),
            Fam::Ipv6 => v6((0, 0, 0, 0, 0, 0, 0, 1), port, flow, scope),
        };
        let unspecified = |port: u16| match fam {
            Fam::Ipv4 => v4((0, 0, 0, 0), port),
            Fam::Ipv6 => v6((0, 0, 0, 0, 0, 0, 0, 0), port, 0, 0),
        };
        // `::ffff:127.0.0.1`: IPv4-mapped (and for an IPv4 socket the wrong family too).
        let mapped = |port: u16| v6((0, 0, 0, 0, 0, 0xffff, 0x7f00, 1), port, 0, 0);
        let invalid = |wit: IpSocketAddress| Addr {
            wit,
            valid_local: false,
            valid_remote: false,
            unspecified: false,
            group: false,
            bind_einval: false,
        };
        let roll = self.rng.below(100);
        let a = match roll {
            0..=64 => Addr::lo(lo(fam, port)),
            65..=71 => Addr {
                valid_remote: false,
                unspecified: true,
                ..Addr::lo(unspecified(port))
            },
            // Right in every way but the family (the callers compare families).
            72..=79 => Addr {
                valid_remote: true,
                ..Addr::lo(lo(other(fam), rport))
            },
            // UDP destinations: no multicast or broadcast; invalid ones that stay local.
            80..=87 if udp_dest => Addr {
                valid_remote: false,
                unspecified: true,
                ..Addr::lo(unspecified(rport))
            },
            88..=93 if udp_dest => invalid(mapped(rport)),
            80..=87 => {
                let wit = match fam {
                    Fam::Ipv4 => v4((224, 0, 0, 1), rport),
                    // With scope id 1 (the loopback interface) Linux binds to it; with none it
                    // wants an interface (`EINVAL`).
                    Fam::Ipv6 => v6((0xff02, 0, 0, 0, 0, 0, 0, 1), rport, 0, scope),
                };
                Addr {
                    group: true,
                    bind_einval: fam == Fam::Ipv6 && scope == 0,
                    ..invalid(wit)
                }
            }
            88..=93 => match fam {
                Fam::Ipv4 => Addr {
                    group: true,
                    ..invalid(v4((255, 255, 255, 255), rport))
                },
                Fam::Ipv6 => invalid(mapped(rport)),
            },
            _ => Addr {
                valid_remote: false,
                ..Addr::lo(lo(fam, 0))
            },
        };
        if udp_dest && !udp_dest_is_safe(&a.wit) {
            self.fail(format!("generated UDP destination {:?}", a.wit));
        }
        a
    }

    fn fam(&mut self) -> Fam {
        if self.rng.chance(50) {
            Fam::Ipv4
        } else {
            Fam::Ipv6
        }
    }

    // --- one random step ---------------------------------------------------------------------

    async fn step(&mut self) {
        // Prefer calls on kinds that have live handles; creators otherwise.
        const OPS: &[(Kind, u8)] = &[
            (Kind::Net, 0),
            (Kind::Tcp, 1),
            (Kind::Udp, 2),
            (Kind::In, 3),
            (Kind::Out, 4),
            (Kind::DgIn, 5),
            (Kind::DgOut, 6),
            (Kind::Poll, 7),
            (Kind::Lookup, 8),
            (Kind::Err, 9),
        ];
        let roll = self.rng.below(100);
        if roll < 12 {
            return self.create_step().await;
        }
        if roll < 18 {
            let fam = self.fam();
            return self.pair(fam).await;
        }
        if roll < 23 {
            let fam = self.fam();
            return self.udp_pair(fam);
        }
        let with_live: Vec<u8> = OPS
            .iter()
            .filter(|(k, _)| self.live.values().any(|e| e.kind() == *k))
            .map(|(_, i)| *i)
            .collect();
        let group = if !with_live.is_empty() && self.rng.chance(92) {
            self.rng.pick(&with_live)
        } else {
            self.rng.below(OPS.len()) as u8
        };
        match group {
            0 => self.net_step(),
            1 => self.tcp_step().await,
            2 => self.udp_step(),
            3 => self.input_step().await,
            4 => self.output_step().await,
            5 => self.dgin_step(),
            6 => self.dgout_step(),
            7 => self.poll_step().await,
            8 => self.lookup_step(),
            _ => self.err_step(),
        }
    }

    async fn create_step(&mut self) {
        match self.rng.below(5) {
            0 => {
                self.net_new();
            }
            1 | 2 => {
                let fam = self.fam();
                self.tcp_new(fam);
            }
            3 => {
                let fam = self.fam();
                // Half the time bound at once, as most guests do.
                if let Some(s) = self.udp_new(fam)
                    && self.rng.chance(50)
                {
                    self.udp_bind_step(s, fam);
                }
            }
            _ => {
                let net = self.target(Kind::Net);
                const NAMES: &[&str] = &[
                    "127.0.0.1",
                    "::1",
                    "[::1]",
                    "::ffff:127.0.0.1",
                    "[::ffff:127.0.0.1]",
                    "0.0.0.0",
                    "224.0.0.1",
                    "localhost",
                    "LOCALHOST.",
                    "",
                    ".",
                    "a..b",
                    "-bad-.example",
                    "2130706433",
                    "0x7f.1",
                    "a/b",
                    "exa mple",
                    "[127.0.0.1]",
                    "1.2.3.4.5",
                ];
                let name = self.rng.pick(NAMES);
                self.resolve(net, name);
            }
        }
    }

    // --- network ------------------------------------------------------------------------------

    fn net_new(&mut self) -> H {
        let r = trap(InstanceNetworkHost::instance_network(&mut view!(self)));
        self.judge("instance-network", String::new(), true, &r, &[], false);
        let res = r.ok().unwrap();
        self.add(res.rep(), Ent::Net);
        H {
            rep: res.rep(),
            live: true,
        }
    }

    /// A live network handle, made if there is none.
    fn any_net(&mut self) -> H {
        match self.pick_live(Kind::Net) {
            Some(n) => n,
            None => self.net_new(),
        }
    }

    fn net_step(&mut self) {
        if self.rng.chance(60) {
            self.net_new();
        } else if let Some(h) = self.drop_target(Kind::Net) {
            let r = trap(HostNetwork::drop(&mut view!(self), own::<Network>(h)));
            self.judge(
                "network.drop",
                format!("({})", h.rep),
                h.live,
                &r,
                &[],
                false,
            );
            if h.live {
                self.kill(h.rep);
            }
        }
    }

    fn err_step(&mut self) {
        if self.rng.chance(60) {
            let h = self.target(Kind::Err);
            let r = trap(NetworkHost::network_error_code(
                &mut view!(self),
                b::<wasmtime::Error>(h),
            ));
            let code = r.as_ref().ok().copied().flatten();
            self.judge(
                "network-error-code",
                format!("({}) = {code:?}", h.rep),
                h.live,
                &r,
                &[],
                false,
            );
            if h.live && code.is_none() {
                self.fail("network-error-code of a socket stream error is none".into());
            }
            // A TCP stream on loopback fails only by the peer's reset (`ECONNRESET`, `EPIPE`)
            // or for want of kernel memory; `unknown` would be an errno wasock does not map.
            if let Some(c) = code
                && !matches!(c, E::ConnectionReset | E::OutOfMemory)
            {
                self.fail(format!("network-error-code of a TCP stream error is {c:?}"));
            }
        } else if let Some(h) = self.drop_target(Kind::Err) {
            let r = trap(HostError::drop(&mut self.table, own::<wasmtime::Error>(h)));
            self.judge("error.drop", format!("({})", h.rep), h.live, &r, &[], false);
            if h.live {
                self.kill(h.rep);
            }
        }
    }

    /// Keeps a stream error as an `error` resource (as the bindings do for a guest).
    fn keep_error(&mut self, e: wasmtime::Error) {
        match StreamsHost::convert_stream_error(
            &mut self.table,
            StreamError::LastOperationFailed(e),
        ) {
            Ok(WitStreamError::LastOperationFailed(res)) => self.add(res.rep(), Ent::Err),
            Ok(other) => self.fail(format!("convert-stream-error gave {other:?}")),
            Err(e) => self.fail(format!("convert-stream-error trapped: {e}")),
        }
    }

    // --- TCP ------------------------------------------------------------------------------------

    fn tcp_new(&mut self, fam: Fam) -> Option<H> {
        let r = TcpCreateHost::create_tcp_socket(&mut view!(self), fam);
        let o = self.judge(
            "create-tcp-socket",
            format!("({fam:?})"),
            true,
            &r,
            CREATE_ERRORS,
            false,
        );
        if o != Out::Ok {
            return None;
        }
        let rep = r.ok().unwrap().rep();
        self.add(
            rep,
            Ent::Tcp(TcpM {
                fam,
                st: TcpSt::Unbound,
                exposed: false,
                port: None,
                conn: None,
            }),
        );
        Some(H { rep, live: true })
    }

    fn tcp_start_bind(&mut self, s: H, net: H, a: Addr) -> Out {
        let m = self.tcp(s);
        let r = HostTcpSocket::start_bind(&mut view!(self), b::<TcpSocket>(s), b(net), a.wit);
        let o = self.judge(
            "tcp.start-bind",
            format!("({}, {:?})", s.rep, a.wit),
            s.live && net.live,
            &r,
            START_BIND_ERRORS,
            false,
        );
        if let (Some(m), true) = (m, net.live) {
            let right_fam = sock_fam(&a.wit) == m.fam;
            let want: &[Out] = if m.st.in_progress() {
                // Checked first: before the state's other rules and the address.
                &[Out::Code(E::ConcurrencyConflict)]
            } else if m.st != TcpSt::Unbound {
                // The state is checked before the address.
                &[Out::Code(E::InvalidState)]
            } else if !a.valid_local || !right_fam {
                // Multicast and broadcast included: TCP keeps the unicast rule.
                &[Out::Code(E::InvalidArgument)]
            } else {
                bind_outcomes(&a)
            };
            if !want.contains(&o) {
                self.fail(format!(
                    "tcp.start-bind({:?}) in {:?} gave {o:?}, want one of {want:?}",
                    a.wit, m.st
                ));
            }
            if o == Out::Ok {
                let t = self.tcp_mut(s).unwrap();
                t.st = TcpSt::BindStarted;
                t.exposed = a.unspecified;
            }
        }
        o
    }

    fn tcp_finish_bind(&mut self, s: H) -> Out {
        let m = self.tcp(s);
        let r = HostTcpSocket::finish_bind(&mut view!(self), b::<TcpSocket>(s));
        let o = self.judge(
            "tcp.finish-bind",
            format!("({})", s.rep),
            s.live,
            &r,
            TCP_FINISH_BIND_ERRORS,
            false,
        );
        if let Some(m) = m {
            match (m.st, o) {
                (TcpSt::BindStarted, Out::Ok) => self.tcp_mut(s).unwrap().st = TcpSt::Bound,
                (TcpSt::BindStarted, o) => {
                    self.fail(format!("tcp.finish-bind after a started bind gave {o:?}"))
                }
                (_, Out::Code(E::NotInProgress)) => {}
                (st, o) => self.fail(format!("tcp.finish-bind in {st:?} gave {o:?}")),
            }
        }
        o
    }

    fn tcp_start_connect(&mut self, s: H, net: H, a: Addr) -> Out {
        let m = self.tcp(s);
        let r = HostTcpSocket::start_connect(&mut view!(self), b::<TcpSocket>(s), b(net), a.wit);
        let o = self.judge(
            "tcp.start-connect",
            format!("({}, {:?})", s.rep, a.wit),
            s.live && net.live,
            &r,
            START_CONNECT_ERRORS,
            false,
        );
        if let (Some(m), true) = (m, net.live) {
            let right_fam = sock_fam(&a.wit) == m.fam;
            let want = if m.st.in_progress() {
                // Checked first: before the state's other rules and the address.
                Out::Code(E::ConcurrencyConflict)
            } else if !matches!(m.st, TcpSt::Unbound | TcpSt::Bound) {
                // The state is checked before the address.
                Out::Code(E::InvalidState)
            } else if !a.valid_remote || !right_fam {
                Out::Code(E::InvalidArgument)
            } else {
                // Every `instance-network` handle names the one default network, so a bind's
                // network always matches; `connect(2)`'s own failures are `finish-connect`'s.
                Out::Ok
            };
            if o != want {
                self.fail(format!(
                    "tcp.start-connect({:?}) in {:?} gave {o:?}, want {want:?}",
                    a.wit, m.st
                ));
            }
            if o == Out::Ok {
                self.tcp_mut(s).unwrap().st = TcpSt::ConnectStarted;
            }
        }
        o
    }

    fn tcp_finish_connect(&mut self, s: H) -> Out {
        let m = self.tcp(s);
        let r = HostTcpSocket::finish_connect(&mut view!(self), b::<TcpSocket>(s));
        let o = self.judge(
            "tcp.finish-connect",
            format!("({})", s.rep),
            s.live,
            &r,
            FINISH_CONNECT_ERRORS,
            false,
        );
        if let Ok((i, w)) = r {
            let conn = self.new_conn();
            self.add(i.rep(), Ent::In { conn });
            self.add(
                w.rep(),
                Ent::Out {
                    conn,
                    permit: Some(0),
                },
            );
            if let Some(m) = &m
                && m.st != TcpSt::ConnectStarted
            {
                self.fail(format!("tcp.finish-connect succeeded in {:?}", m.st));
            }
            if let Some(t) = self.tcp_mut(s) {
                t.st = TcpSt::Connected;
                t.conn = Some(conn);
            }
            return o;
        }
        if let Some(m) = m {
            match (m.st, o) {
                (TcpSt::ConnectStarted, Out::Code(E::WouldBlock)) => {}
                (TcpSt::ConnectStarted, Out::Code(E::NotInProgress)) => {
                    self.fail("tcp.finish-connect after a started connect: not-in-progress".into())
                }
                (TcpSt::ConnectStarted, _) => self.tcp_mut(s).unwrap().st = TcpSt::Closed,
                (_, Out::Code(E::NotInProgress)) => {}
                (st, o) => self.fail(format!("tcp.finish-connect in {st:?} gave {o:?}")),
            }
        }
        o
    }

    fn new_conn(&mut self) -> u64 {
        self.next_conn += 1;
        self.conns.insert(self.next_conn, ConnM::default());
        self.next_conn
    }

    fn tcp_start_listen(&mut self, s: H) -> Out {
        let m = self.tcp(s);
        let r = HostTcpSocket::start_listen(&mut view!(self), b::<TcpSocket>(s));
        let o = self.judge(
            "tcp.start-listen",
            format!("({})", s.rep),
            s.live,
            &r,
            START_LISTEN_ERRORS,
            false,
        );
        if let Some(m) = m {
            match (m.st, o) {
                // Checked first: before the state's other rules.
                (st, Out::Code(E::ConcurrencyConflict)) if st.in_progress() => {}
                (st, o) if st.in_progress() => self.fail(format!(
                    "tcp.start-listen in {st:?} gave {o:?}, want concurrency-conflict"
                )),
                (TcpSt::Bound, Out::Ok) => self.tcp_mut(s).unwrap().st = TcpSt::ListenStarted,
                // A failed listen(2) spends the socket.
                (TcpSt::Bound, Out::Code(E::AddressInUse | E::OutOfMemory)) => {
                    self.tcp_mut(s).unwrap().st = TcpSt::Closed
                }
                (TcpSt::Bound, o) => {
                    self.fail(format!("tcp.start-listen on a bound socket gave {o:?}"))
                }
                (_, Out::Code(E::InvalidState)) => {}
                (st, o) => self.fail(format!("tcp.start-listen in {st:?} gave {o:?}")),
            }
        }
        o
    }

    fn tcp_finish_listen(&mut self, s: H) -> Out {
        let m = self.tcp(s);
        let r = HostTcpSocket::finish_listen(&mut view!(self), b::<TcpSocket>(s));
        let o = self.judge(
            "tcp.finish-listen",
            format!("({})", s.rep),
            s.live,
            &r,
            // The listen happened in `start-listen`; nothing to wait for.
            &[E::NotInProgress],
            false,
        );
        if let Some(m) = m {
            match (m.st, o) {
                (TcpSt::ListenStarted, Out::Ok) => self.tcp_mut(s).unwrap().st = TcpSt::Listening,
                (TcpSt::ListenStarted, o) => {
                    self.fail(format!("tcp.finish-listen after start-listen gave {o:?}"))
                }
                (_, Out::Code(E::NotInProgress)) => {}
                (st, o) => self.fail(format!("tcp.finish-listen in {st:?} gave {o:?}")),
            }
        }
        o
    }

    fn tcp_accept(&mut self, s: H) -> Out {
        let m = self.tcp(s);
        let r = HostTcpSocket::accept(&mut view!(self), b::<TcpSocket>(s));
        let o = self.judge(
            "tcp.accept",
            format!("({})", s.rep),
            s.live,
            &r,
            // `accept4(2)`: a peer that gave up while queued, the host's fd limit, memory.
            &[
                E::InvalidState,
                E::WouldBlock,
                E::ConnectionAborted,
                E::NewSocketLimit,
                OOM,
            ],
            false,
        );
        if let Ok((sock, i, w)) = r {
            let m = m.expect("accept worked on a live listener");
            if m.st != TcpSt::Listening {
                self.fail(format!("tcp.accept succeeded in {:?}", m.st));
            }
            let conn = self.new_conn();
            self.add(
                sock.rep(),
                Ent::Tcp(TcpM {
                    fam: m.fam,
                    st: TcpSt::Connected,
                    exposed: false,
                    port: m.port,
                    conn: Some(conn),
                }),
            );
            self.add(i.rep(), Ent::In { conn });
            self.add(
                w.rep(),
                Ent::Out {
                    conn,
                    permit: Some(0),
                },
            );
        } else if let Some(m) = m {
            match (m.st, o) {
                (TcpSt::Listening, Out::Code(E::InvalidState)) => {
                    self.fail("tcp.accept on a listener: invalid-state".into())
                }
                (TcpSt::Listening, _) => {}
                (_, Out::Code(E::InvalidState)) => {}
                (st, o) => self.fail(format!("tcp.accept in {st:?} gave {o:?}")),
            }
        }
        o
    }

    fn tcp_query(&mut self, s: H) {
        let m = self.tcp(s);
        let st = m.as_ref().map(|m| m.st);
        match self.rng.below(4) {
            0 => {
                let r = HostTcpSocket::local_address(&mut view!(self), b::<TcpSocket>(s));
                let detail = format!("({}) = {:?}", s.rep, r.as_ref().ok());
                let o = self.judge(
                    "tcp.local-address",
                    detail,
                    s.live,
                    &r,
                    &[E::InvalidState],
                    false,
                );
                let Some(m) = m else { return };
                let bound = matches!(
                    m.st,
                    TcpSt::Bound
                        | TcpSt::ListenStarted
                        | TcpSt::Listening
                        | TcpSt::ConnectStarted
                        | TcpSt::Connected
                );
                if o == Out::Ok && !bound {
                    self.fail(format!("tcp.local-address is Ok in {:?}", m.st));
                }
                if o != Out::Ok
                    && matches!(m.st, TcpSt::Bound | TcpSt::ListenStarted | TcpSt::Listening)
                {
                    self.fail(format!("tcp.local-address failed ({o:?}) in {:?}", m.st));
                }
                if let Ok(a) = r {
                    if sock_fam(&a) != m.fam {
                        self.fail(format!("tcp.local-address {a:?} of a {:?} socket", m.fam));
                    }
                    if port_of(&a) == 0 {
                        self.fail(format!("tcp.local-address {a:?} has port 0"));
                    }
                    if matches!(m.st, TcpSt::Bound | TcpSt::ListenStarted | TcpSt::Listening) {
                        self.tcp_mut(s).unwrap().port = Some(port_of(&a));
                    }
                }
            }
            1 => {
                let r = HostTcpSocket::remote_address(&mut view!(self), b::<TcpSocket>(s));
                let detail = format!("({}) = {:?}", s.rep, r.as_ref().ok());
                let o = self.judge(
                    "tcp.remote-address",
                    detail,
                    s.live,
                    &r,
                    &[E::InvalidState],
                    false,
                );
                if o == Out::Ok && st.is_some_and(|st| st != TcpSt::Connected) {
                    self.fail(format!("tcp.remote-address is Ok in {st:?}"));
                }
            }
            2 => {
                let r = trap(HostTcpSocket::is_listening(
                    &mut view!(self),
                    b::<TcpSocket>(s),
                ));
                let detail = format!("({}) = {:?}", s.rep, r.as_ref().ok());
                self.judge("tcp.is-listening", detail, s.live, &r, &[], false);
                if let (Ok(l), Some(st)) = (r, st)
                    && l != (st == TcpSt::Listening)
                {
                    self.fail(format!("tcp.is-listening = {l} in {st:?}"));
                }
            }
            _ => {
                let r = trap(HostTcpSocket::address_family(
                    &mut view!(self),
                    b::<TcpSocket>(s),
                ));
                let detail = format!("({}) = {:?}", s.rep, r.as_ref().ok());
                self.judge("tcp.address-family", detail, s.live, &r, &[], false);
                if let (Ok(f), Some(m)) = (r, m)
                    && f != m.fam
                {
                    self.fail(format!("tcp.address-family = {f:?}, created {:?}", m.fam));
                }
            }
        }
    }

    fn tcp_option(&mut self, s: H) {
        let m = self.tcp(s);
        let st = m.as_ref().map(|m| m.st);
        let w64 = self
            .rng
            .pick(&[0u64, 1, 2, 1000, 1 << 20, 1_500_000_000, u64::MAX]);
        let w32 = self.rng.pick(&[0u32, 1, 5, 200, u32::MAX]);
        let w8 = self.rng.pick(&[0u8, 1, 64, 255]);
        let on = self.rng.chance(50);
        let mut v = view!(self);
        let sock = || b::<TcpSocket>(s);
        let (name, r, set_zero): (&str, Result<(), SocketError>, bool) = match self.rng.below(14) {
            0 => (
                "tcp.keep-alive-enabled",
                HostTcpSocket::keep_alive_enabled(&mut v, sock()).map(drop),
                false,
            ),
            1 => (
                "tcp.set-keep-alive-enabled",
                HostTcpSocket::set_keep_alive_enabled(&mut v, sock(), on),
                false,
            ),
            2 => (
                "tcp.keep-alive-idle-time",
                HostTcpSocket::keep_alive_idle_time(&mut v, sock()).map(drop),
                false,
            ),
            3 => (
                "tcp.set-keep-alive-idle-time",
                HostTcpSocket::set_keep_alive_idle_time(&mut v, sock(), w64),
                w64 == 0,
            ),
            4 => (
                "tcp.keep-alive-interval",
                HostTcpSocket::keep_alive_interval(&mut v, sock()).map(drop),
                false,
            ),
            5 => (
                "tcp.set-keep-alive-interval",
                HostTcpSocket::set_keep_alive_interval(&mut v, sock(), w64),
                w64 == 0,
            ),
            6 => (
                "tcp.keep-alive-count",
                HostTcpSocket::keep_alive_count(&mut v, sock()).map(drop),
                false,
            ),
            7 => (
                "tcp.set-keep-alive-count",
                HostTcpSocket::set_keep_alive_count(&mut v, sock(), w32),
                w32 == 0,
            ),
            8 => (
                "tcp.hop-limit",
                HostTcpSocket::hop_limit(&mut v, sock()).map(drop),
                false,
            ),
            9 => (
                "tcp.set-hop-limit",
                HostTcpSocket::set_hop_limit(&mut v, sock(), w8),
                w8 == 0,
            ),
            10 => (
                "tcp.receive-buffer-size",
                HostTcpSocket::receive_buffer_size(&mut v, sock()).map(drop),
                false,
            ),
            11 => (
                "tcp.set-receive-buffer-size",
                HostTcpSocket::set_receive_buffer_size(&mut v, sock(), w64),
                w64 == 0,
            ),
            12 => (
                "tcp.send-buffer-size",
                HostTcpSocket::send_buffer_size(&mut v, sock()).map(drop),
                false,
            ),
            _ => (
                "tcp.set-send-buffer-size",
                HostTcpSocket::set_send_buffer_size(&mut v, sock(), w64),
                w64 == 0,
            ),
        };
        let o = self.judge(
            name,
            format!("({}) [{w64}/{w32}/{w8}/{on}]", s.rep),
            s.live,
            &r,
            &[E::InvalidArgument, E::InvalidState],
            false,
        );
        let Some(st) = st else { return };
        // `connect-in-progress` in the model may be a connect that failed at once, which has no
        // options left: either answer there. A closed socket is checked before the value.
        let no_options = matches!(st, TcpSt::Closed | TcpSt::ConnectStarted);
        let ok = match o {
            Out::Ok => !set_zero,
            Out::Code(E::InvalidArgument) => set_zero && st != TcpSt::Closed,
            Out::Code(E::InvalidState) => no_options,
            _ => false,
        };
        if !ok {
            self.fail(format!("{name} in {st:?} (zero: {set_zero}) gave {o:?}"));
        }
    }

    async fn tcp_step(&mut self) {
        let s = self.target(Kind::Tcp);
        let m = self.tcp(s);
        match self.rng.below(16) {
            0 | 1 => {
                let s = self.prefer(s, |e| matches!(e, Ent::Tcp(m) if m.st == TcpSt::Unbound));
                let m = self.tcp(s);
                let net = self.target(Kind::Net);
                let fam = m.as_ref().map(|m| m.fam).unwrap_or(Fam::Ipv4);
                let a = self.addr(fam, None);
                if self.tcp_start_bind(s, net, a) == Out::Ok && self.rng.chance(30) {
                    self.tcp_start_again(s);
                }
            }
            2 => {
                let s = self.prefer(
                    s,
                    |e| matches!(e, Ent::Tcp(m) if m.st == TcpSt::BindStarted),
                );
                self.tcp_finish_bind(s);
            }
            3 | 4 => {
                let s = self.prefer(
                    s,
                    |e| matches!(e, Ent::Tcp(m) if matches!(m.st, TcpSt::Unbound | TcpSt::Bound)),
                );
                let m = self.tcp(s);
                let net = self.target(Kind::Net);
                let fam = m.as_ref().map(|m| m.fam).unwrap_or(Fam::Ipv4);
                let a = self.addr(fam, Some(Proto::Tcp));
                if self.tcp_start_connect(s, net, a) == Out::Ok && self.rng.chance(30) {
                    self.tcp_start_again(s);
                }
            }
            5 => {
                let s = self.prefer(
                    s,
                    |e| matches!(e, Ent::Tcp(m) if m.st == TcpSt::ConnectStarted),
                );
                self.tcp_finish_connect(s);
            }
            6 => {
                let s = self.prefer(
                    s,
                    |e| matches!(e, Ent::Tcp(m) if m.st == TcpSt::Bound && !m.exposed),
                );
                let m = self.tcp(s);
                // Never listen on an unspecified address.
                if !m.as_ref().is_some_and(|m| m.exposed)
                    && self.tcp_start_listen(s) == Out::Ok
                    && self.rng.chance(30)
                {
                    self.tcp_start_again(s);
                }
            }
            7 => {
                let s = self.prefer(
                    s,
                    |e| matches!(e, Ent::Tcp(m) if m.st == TcpSt::ListenStarted),
                );
                self.tcp_finish_listen(s);
            }
            8 => {
                self.tcp_accept(s);
            }
            9 | 10 => self.tcp_query(s),
            11 => {
                let v = self.rng.pick(&[0u64, 1, 5, 128, u64::MAX]);
                let r =
                    HostTcpSocket::set_listen_backlog_size(&mut view!(self), b::<TcpSocket>(s), v);
                let o = self.judge(
                    "tcp.set-listen-backlog-size",
                    format!("({}, {v})", s.rep),
                    s.live,
                    &r,
                    // Linux changes a listener's backlog (`listen(2)` again): never
                    // `not-supported`.
                    &[E::InvalidArgument, E::InvalidState],
                    false,
                );
                if let Some(m) = m {
                    // The value is checked before the state.
                    let ok = match o {
                        Out::Ok => {
                            v != 0
                                && !matches!(
                                    m.st,
                                    TcpSt::ConnectStarted | TcpSt::Connected | TcpSt::Closed
                                )
                        }
                        Out::Code(E::InvalidArgument) => v == 0,
                        Out::Code(E::InvalidState) => {
                            v != 0
                                && matches!(
                                    m.st,
                                    TcpSt::ConnectStarted | TcpSt::Connected | TcpSt::Closed
                                )
                        }
                        _ => false,
                    };
                    if !ok {
                        self.fail(format!(
                            "set-listen-backlog-size({v}) in {:?} gave {o:?}",
                            m.st
                        ));
                    }
                }
            }
            12 => self.tcp_option(s),
            13 => {
                let r = trap(HostTcpSocket::subscribe(
                    &mut view!(self),
                    b::<TcpSocket>(s),
                ));
                self.judge(
                    "tcp.subscribe",
                    format!("({})", s.rep),
                    s.live,
                    &r,
                    &[],
                    false,
                );
                if let Ok(p) = r {
                    self.add(p.rep(), Ent::Poll { parent: None });
                }
            }
            14 => {
                let how = self.rng.pick(&[
                    ShutdownType::Receive,
                    ShutdownType::Send,
                    ShutdownType::Both,
                ]);
                let r = HostTcpSocket::shutdown(&mut view!(self), b::<TcpSocket>(s), how);
                let o = self.judge(
                    "tcp.shutdown",
                    format!("({}, {how:?})", s.rep),
                    s.live,
                    &r,
                    &[E::InvalidState],
                    false,
                );
                if let Some(m) = m {
                    match (m.st, o) {
                        (TcpSt::Connected, Out::Ok) => {
                            let c = self.conns.get_mut(&m.conn.unwrap()).unwrap();
                            if matches!(how, ShutdownType::Receive | ShutdownType::Both) {
                                c.rx_shut = true;
                            }
                            if matches!(how, ShutdownType::Send | ShutdownType::Both) {
                                c.tx_shut = true;
                            }
                        }
                        // wasock's `connected` is its own state: a connection the peer reset
                        // (`ENOTCONN` from `shutdown(2)`) still shuts down without an error.
                        (TcpSt::Connected, o) => {
                            self.fail(format!("tcp.shutdown on a connected socket gave {o:?}"))
                        }
                        (_, Out::Code(E::InvalidState)) => {}
                        (st, o) => self.fail(format!("tcp.shutdown in {st:?} gave {o:?}")),
                    }
                }
            }
            _ => {
                if let Some(h) = self.drop_target(Kind::Tcp) {
                    let r = trap(HostTcpSocket::drop(&mut view!(self), own::<TcpSocket>(h)));
                    self.judge("tcp.drop", format!("({})", h.rep), h.live, &r, &[], false);
                    if h.live {
                        self.kill(h.rep);
                    }
                }
            }
        }
    }

    /// Right after a `start-*` of `s` succeeded, while that operation is under way: another
    /// `start-*` (the model wants `concurrency-conflict`, whatever its arguments).
    fn tcp_start_again(&mut self, s: H) {
        let Some(m) = self.tcp(s) else { return };
        let net = self.any_net();
        match self.rng.below(3) {
            0 => {
                let a = self.addr(m.fam, None);
                self.tcp_start_bind(s, net, a);
            }
            1 => {
                let a = self.addr(m.fam, Some(Proto::Tcp));
                self.tcp_start_connect(s, net, a);
            }
            // Never a listen on an unspecified address, even one that must be refused.
            _ if m.exposed => {}
            _ => {
                self.tcp_start_listen(s);
            }
        }
    }

    /// A listener, a client connected to it, and the accepted socket, all through the
    /// checked calls (so the stream calls get live streams to work on).
    async fn pair(&mut self, fam: Fam) {
        let net = match self.pick_live(Kind::Net) {
            Some(n) => n,
            None => self.net_new(),
        };
        let Some(l) = self.tcp_new(fam) else { return };
        let lo = match fam {
            Fam::Ipv4 => v4((127, 0, 0, 1), 0),
            Fam::Ipv6 => v6((0, 0, 0, 0, 0, 0, 0, 1), 0, 0, 0),
        };
        let local = Addr::lo(lo);
        if self.tcp_start_bind(l, net, local) != Out::Ok || self.tcp_finish_bind(l) != Out::Ok {
            return;
        }
        if self.tcp_start_listen(l) != Out::Ok || self.tcp_finish_listen(l) != Out::Ok {
            return;
        }
        let r = HostTcpSocket::local_address(&mut view!(self), b::<TcpSocket>(l));
        self.judge("tcp.local-address", String::new(), true, &r, &[], false);
        let Ok(addr) = r else { return };
        self.tcp_mut(l).unwrap().port = Some(port_of(&addr));
        let Some(c) = self.tcp_new(fam) else { return };
        let remote = Addr::lo(addr);
        if self.tcp_start_connect(c, net, remote) != Out::Ok {
            return;
        }
        // Between tries, wait on the socket's pollable as a guest would.
        let mut connected = false;
        for _ in 0..3 {
            match self.tcp_finish_connect(c) {
                Out::Code(E::WouldBlock) => self.wait_tcp(c, "finish-connect").await,
                o => {
                    connected = o == Out::Ok;
                    break;
                }
            }
        }
        if !connected {
            self.tcp_accept(l);
            return;
        }
        for _ in 0..3 {
            if self.tcp_accept(l) != Out::Code(E::WouldBlock) {
                break;
            }
            self.wait_tcp(l, "accept").await;
        }
    }

    /// Waits on a new pollable of TCP socket `s` (then drops it) after `call` said
    /// `would-block`; on loopback it must resolve within [`PAIR_WAIT`].
    async fn wait_tcp(&mut self, s: H, call: &str) {
        let p = match HostTcpSocket::subscribe(&mut view!(self), b::<TcpSocket>(s)) {
            Ok(p) => p.rep(),
            Err(e) => self.fail(format!("tcp.subscribe({}) trapped: {e}", s.rep)),
        };
        let ready = self.block_on(p, PAIR_WAIT).await;
        log(format!(
            "wait on tcp socket {} after {call}: ready {ready}",
            s.rep
        ));
        if !ready {
            self.fail(format!(
                "{call} would block, and the socket's pollable was not ready within {PAIR_WAIT:?}"
            ));
        }
    }

    /// Blocks (at most `max`) on pollable `p`, made for this wait alone, then drops it;
    /// whether it became ready.
    async fn block_on(&mut self, p: u32, max: Duration) -> bool {
        let waited = tokio::time::timeout(
            max,
            HostPollable::block(&mut self.table, Resource::<DynPollable>::new_borrow(p)),
        )
        .await;
        if let Ok(Err(e)) = &waited {
            self.fail(format!("pollable.block({p}) trapped: {e}"));
        }
        if let Err(e) = HostPollable::drop(&mut self.table, Resource::<DynPollable>::new_own(p)) {
            self.fail(format!("pollable.drop({p}) trapped: {e}"));
        }
        waited.is_ok()
    }

    // --- UDP ------------------------------------------------------------------------------------

    fn udp_new(&mut self, fam: Fam) -> Option<H> {
        let r = UdpCreateHost::create_udp_socket(&mut view!(self), fam);
        let o = self.judge(
            "create-udp-socket",
            format!("({fam:?})"),
            true,
            &r,
            CREATE_ERRORS,
            false,
        );
        if o != Out::Ok {
            return None;
        }
        let rep = r.ok().unwrap().rep();
        self.next_udp += 1;
        let id = self.next_udp;
        self.udp_gen.insert(id, 0);
        self.add(
            rep,
            Ent::Udp(UdpM {
                fam,
                st: UdpSt::Unbound,
                id,
                remote: None,
                local: None,
            }),
        );
        Some(H { rep, live: true })
    }

    fn udp_step(&mut self) {
        let s = self.target(Kind::Udp);
        let m = self.udp(s);
        let fam = m.as_ref().map(|m| m.fam).unwrap_or(Fam::Ipv6);
        match self.rng.below(11) {
            0 | 1 => {
                let s = self.prefer(s, |e| matches!(e, Ent::Udp(m) if m.st == UdpSt::Unbound));
                let fam = self.udp(s).map(|m| m.fam).unwrap_or(fam);
                self.udp_bind_step(s, fam);
            }
            2 => {
                let s = self.prefer(
                    s,
                    |e| matches!(e, Ent::Udp(m) if m.st == UdpSt::BindStarted),
                );
                self.udp_finish_bind(s);
            }
            3 | 4 => self.udp_stream(s),
            5 | 6 => {
                let local = self.rng.chance(50);
                self.udp_addresses(s, local);
            }
            7 => {
                let r = trap(HostUdpSocket::address_family(
                    &mut view!(self),
                    b::<UdpSocket>(s),
                ));
                self.judge("udp.address-family", String::new(), s.live, &r, &[], false);
                if let (Ok(f), Some(m)) = (r, m)
                    && f != m.fam
                {
                    self.fail(format!("udp.address-family {f:?}, created {:?}", m.fam));
                }
            }
            8 => {
                let w64 = self.rng.pick(&[0u64, 1, 4096, u64::MAX]);
                let w8 = self.rng.pick(&[0u8, 1, 255]);
                let mut v = view!(self);
                let sock = || b::<UdpSocket>(s);
                let (name, r, zero): (&str, Result<(), SocketError>, bool) = match self.rng.below(6)
                {
                    0 => (
                        "udp.unicast-hop-limit",
                        HostUdpSocket::unicast_hop_limit(&mut v, sock()).map(drop),
                        false,
                    ),
                    1 => (
                        "udp.set-unicast-hop-limit",
                        HostUdpSocket::set_unicast_hop_limit(&mut v, sock(), w8),
                        w8 == 0,
                    ),
                    2 => (
                        "udp.receive-buffer-size",
                        HostUdpSocket::receive_buffer_size(&mut v, sock()).map(drop),
                        false,
                    ),
                    3 => (
                        "udp.set-receive-buffer-size",
                        HostUdpSocket::set_receive_buffer_size(&mut v, sock(), w64),
                        w64 == 0,
                    ),
                    4 => (
                        "udp.send-buffer-size",
                        HostUdpSocket::send_buffer_size(&mut v, sock()).map(drop),
                        false,
                    ),
                    _ => (
                        "udp.set-send-buffer-size",
                        HostUdpSocket::set_send_buffer_size(&mut v, sock(), w64),
                        w64 == 0,
                    ),
                };
                let o = self.judge(
                    name,
                    format!("({}) [{w64}/{w8}]", s.rep),
                    s.live,
                    &r,
                    &[E::InvalidArgument],
                    false,
                );
                if m.is_some() && (o == Out::Ok) == zero {
                    self.fail(format!("{name} (zero: {zero}) gave {o:?}"));
                }
            }
            9 => {
                let r = trap(HostUdpSocket::subscribe(
                    &mut view!(self),
                    b::<UdpSocket>(s),
                ));
                self.judge(
                    "udp.subscribe",
                    format!("({})", s.rep),
                    s.live,
                    &r,
                    &[],
                    false,
                );
                if let Ok(p) = r {
                    self.add(p.rep(), Ent::Poll { parent: None });
                }
            }
            _ => {
                if let Some(h) = self.drop_target(Kind::Udp) {
                    let r = trap(HostUdpSocket::drop(&mut view!(self), own::<UdpSocket>(h)));
                    self.judge("udp.drop", format!("({})", h.rep), h.live, &r, &[], false);
                    if h.live {
                        self.kill(h.rep);
                    }
                }
            }
        }
    }

    /// `start-bind` to a generated address; after a success, now and then more at once.
    fn udp_bind_step(&mut self, s: H, fam: Fam) {
        let net = self.target(Kind::Net);
        let a = self.addr(fam, None);
        if self.udp_start_bind(s, net, a) != Out::Ok {
            return;
        }
        match self.rng.below(10) {
            // A second bind while the first is under way.
            0..=2 => {
                let net = self.any_net();
                let a = self.addr(fam, None);
                self.udp_start_bind(s, net, a);
            }
            // Finished at once, and used: so that sockets bound to other addresses than
            // loopback (unspecified, multicast, broadcast) are not rare.
            3..=6 => {
                self.udp_finish_bind(s);
                if self.rng.chance(50) {
                    self.udp_stream(s);
                }
                self.udp_addresses(s, true);
            }
            _ => {}
        }
    }

    fn udp_finish_bind(&mut self, s: H) {
        let m = self.udp(s);
        let r = HostUdpSocket::finish_bind(&mut view!(self), b::<UdpSocket>(s));
        let o = self.judge(
            "udp.finish-bind",
            format!("({})", s.rep),
            s.live,
            &r,
            UDP_FINISH_BIND_ERRORS,
            false,
        );
        if let Some(m) = m {
            match (m.st, o) {
                (UdpSt::BindStarted, Out::Ok) => self.udp_bound(s),
                (UdpSt::BindStarted, o) => {
                    self.fail(format!("udp.finish-bind after start-bind gave {o:?}"))
                }
                (_, Out::Code(E::NotInProgress)) => {}
                (st, o) => self.fail(format!("udp.finish-bind in {st:?} gave {o:?}")),
            }
        }
    }

    fn udp_stream(&mut self, s: H) {
        let m = self.udp(s);
        let fam = m.as_ref().map(|m| m.fam).unwrap_or(Fam::Ipv6);
        let remote = if self.rng.chance(30) {
            None
        } else {
            Some(self.addr(fam, Some(Proto::Udp)))
        };
        self.check_udp_dests("udp.stream", remote.iter().map(|a| &a.wit));
        let r = HostUdpSocket::stream(&mut view!(self), b::<UdpSocket>(s), remote.map(|a| a.wit));
        let o = self.judge(
            "udp.stream",
            format!("({}, {:?})", s.rep, remote.map(|a| a.wit)),
            s.live,
            &r,
            // The state check and the argument rules; then a `connect(2)` to a loopback
            // peer (or `AF_UNSPEC` to dissolve one), which cannot fail here.
            &[E::InvalidArgument, E::InvalidState],
            false,
        );
        let Some(m) = m else { return };
        let bad_remote = remote.is_some_and(|a| !a.valid_remote || sock_fam(&a.wit) != m.fam);
        match (m.st, o) {
            (UdpSt::Bound, Out::Ok) if bad_remote => {
                self.fail(format!("udp.stream({remote:?}) succeeded"))
            }
            (UdpSt::Bound, Out::Ok) => {
                let (i, w) = r.ok().unwrap();
                let generation = self.udp_gen[&m.id] + 1;
                self.udp_gen.insert(m.id, generation);
                let wit = remote.map(|a| a.wit);
                if let Some(Ent::Udp(u)) = self.live.get_mut(&s.rep) {
                    u.remote = wit;
                }
                self.add(
                    i.rep(),
                    Ent::DgIn {
                        udp: m.id,
                        generation,
                        remote: wit,
                    },
                );
                self.add(
                    w.rep(),
                    Ent::DgOut {
                        udp: m.id,
                        generation,
                        fam: m.fam,
                        remote: wit,
                        permit: 0,
                    },
                );
            }
            (UdpSt::Bound, Out::Code(E::InvalidArgument)) if bad_remote => {}
            (UdpSt::Bound, o) => self.fail(format!("udp.stream({remote:?}) gave {o:?}")),
            // The state is checked before the address.
            (_, Out::Code(E::InvalidState)) => {}
            (st, o) => self.fail(format!("udp.stream in {st:?} gave {o:?}")),
        }
    }

    /// `local-address` (`local`) or `remote-address`.
    fn udp_addresses(&mut self, s: H, local: bool) {
        let m = self.udp(s);
        let r = if local {
            HostUdpSocket::local_address(&mut view!(self), b::<UdpSocket>(s))
        } else {
            HostUdpSocket::remote_address(&mut view!(self), b::<UdpSocket>(s))
        };
        let name = if local {
            "udp.local-address"
        } else {
            "udp.remote-address"
        };
        let detail = format!("({}) = {:?}", s.rep, r.as_ref().ok());
        let o = self.judge(name, detail, s.live, &r, &[E::InvalidState], false);
        let Some(m) = m else { return };
        let want_ok = m.st == UdpSt::Bound && (local || m.remote.is_some());
        if (o == Out::Ok) != want_ok {
            self.fail(format!(
                "{name} in {:?} (remote {:?}) gave {o:?}",
                m.st, m.remote
            ));
        }
        if let (false, Ok(a), Some(want)) = (local, &r, &m.remote)
            && !same_addr(a, want)
        {
            self.fail(format!("udp.remote-address = {a:?}, streamed to {want:?}"));
        }
        // The port stays for life (`stream(none)` keeps it too); the IP is the bound
        // one, except that an unspecified one narrows to the route's source (loopback)
        // while streaming to a (loopback) peer.
        if let (true, Ok(a), Some(bound)) = (local, &r, m.local) {
            let narrowed = match m.fam {
                Fam::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Fam::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            let want_ip = match m.remote {
                Some(_) if ip_of(&bound).is_unspecified() => narrowed,
                _ => ip_of(&bound),
            };
            if sock_fam(a) != m.fam || ip_of(a) != want_ip || port_of(a) != port_of(&bound) {
                self.fail(format!(
                    "udp.local-address = {a:?}, bound to {bound:?}, streaming to {:?}",
                    m.remote
                ));
            }
        }
    }

    fn udp_start_bind(&mut self, s: H, net: H, a: Addr) -> Out {
        let m = self.udp(s);
        // Multicast and broadcast ones apart, to see them in the outcome counts.
        let call = if a.group {
            "udp.start-bind[multicast/broadcast]"
        } else {
            "udp.start-bind"
        };
        let r = HostUdpSocket::start_bind(&mut view!(self), b::<UdpSocket>(s), b(net), a.wit);
        let o = self.judge(
            call,
            format!("({}, {:?})", s.rep, a.wit),
            s.live && net.live,
            &r,
            START_BIND_ERRORS,
            false,
        );
        if let (Some(m), true) = (m, net.live) {
            let right_fam = sock_fam(&a.wit) == m.fam;
            let want: &[Out] = if m.st == UdpSt::BindStarted {
                // Checked first: before the state's other rules and the address.
                &[Out::Code(E::ConcurrencyConflict)]
            } else if m.st != UdpSt::Unbound {
                // The state is checked before the address.
                &[Out::Code(E::InvalidState)]
            } else if !(a.valid_local || a.group) || !right_fam {
                // No unicast rule for UDP: the family and IPv4-mapped only.
                &[Out::Code(E::InvalidArgument)]
            } else if a.bind_einval {
                &[Out::Code(E::InvalidArgument)]
            } else {
                // Multicast and broadcast bind like any other address (Linux).
                bind_outcomes(&a)
            };
            if !want.contains(&o) {
                self.fail(format!(
                    "udp.start-bind({:?}) in {:?} gave {o:?}, want one of {want:?}",
                    a.wit, m.st
                ));
            }
            if o == Out::Ok {
                self.udp_bind_started(s, a.wit);
            }
        }
        o
    }

    /// Two UDP sockets bound on loopback, one streaming to the other and one unconnected, all
    /// through the checked calls (so the datagram calls get live streams to work on).
    fn udp_pair(&mut self, fam: Fam) {
        let mut socks = Vec::new();
        for _ in 0..2 {
            let Some(s) = self.udp_new(fam) else { return };
            let net = match self.pick_live(Kind::Net) {
                Some(n) => n,
                None => self.net_new(),
            };
            let lo = match fam {
                Fam::Ipv4 => v4((127, 0, 0, 1), 0),
                Fam::Ipv6 => v6((0, 0, 0, 0, 0, 0, 0, 1), 0, 0, 0),
            };
            let r = HostUdpSocket::start_bind(&mut view!(self), b::<UdpSocket>(s), b(net), lo);
            if self.judge(
                "udp.start-bind",
                format!("({}, {lo:?})", s.rep),
                true,
                &r,
                START_BIND_ERRORS,
                false,
            ) != Out::Ok
            {
                return;
            }
            self.udp_bind_started(s, lo);
            let r = HostUdpSocket::finish_bind(&mut view!(self), b::<UdpSocket>(s));
            if self.judge(
                "udp.finish-bind",
                format!("({})", s.rep),
                true,
                &r,
                UDP_FINISH_BIND_ERRORS,
                false,
            ) != Out::Ok
            {
                self.fail(format!(
                    "udp.finish-bind after start-bind gave {:?}",
                    out_of(&r)
                ));
            }
            self.udp_bound(s);
            let Some(a) = self.udp(s).and_then(|m| m.local) else {
                return;
            };
            socks.push((s, a));
        }
        let (a, b_addr) = (socks[0], socks[1].1);
        let (b_sock, a_addr) = (socks[1].0, socks[0].1);
        for (s, remote) in [(a.0, Some(b_addr)), (b_sock, None)] {
            let _ = a_addr;
            self.check_udp_dests("udp.stream", remote.iter());
            let r = HostUdpSocket::stream(&mut view!(self), b::<UdpSocket>(s), remote);
            let o = self.judge(
                "udp.stream",
                format!("({}, {remote:?})", s.rep),
                true,
                &r,
                &[],
                false,
            );
            if o != Out::Ok {
                return;
            }
            let (i, w) = r.ok().unwrap();
            let m = self.udp(s).unwrap();
            let generation = self.udp_gen[&m.id] + 1;
            self.udp_gen.insert(m.id, generation);
            if let Some(Ent::Udp(u)) = self.live.get_mut(&s.rep) {
                u.remote = remote;
            }
            self.add(
                i.rep(),
                Ent::DgIn {
                    udp: m.id,
                    generation,
                    remote,
                },
            );
            self.add(
                w.rep(),
                Ent::DgOut {
                    udp: m.id,
                    generation,
                    fam,
                    remote,
                    permit: 0,
                },
            );
        }
    }

    fn udp_set_state(&mut self, s: H, st: UdpSt) {
        if let Some(Ent::Udp(u)) = self.live.get_mut(&s.rep) {
            u.st = st;
        }
    }

    /// A UDP `start-bind` to `asked` succeeded.
    fn udp_bind_started(&mut self, s: H, asked: IpSocketAddress) {
        if let Some(Ent::Udp(u)) = self.live.get_mut(&s.rep) {
            u.st = UdpSt::BindStarted;
            u.local = Some(asked);
        }
    }

    /// A UDP `finish-bind` succeeded: the socket is bound to the IP asked for (multicast and
    /// broadcast ones too) and the port asked for or one the kernel picked. The model keeps
    /// that address (the port as a target for later steps).
    fn udp_bound(&mut self, s: H) {
        self.udp_set_state(s, UdpSt::Bound);
        let Some(m) = self.udp(s) else { return };
        let r = HostUdpSocket::local_address(&mut view!(self), b::<UdpSocket>(s));
        let detail = format!("({}) = {:?}", s.rep, r.as_ref().ok());
        self.judge("udp.local-address", detail, true, &r, &[], false);
        let Ok(a) = r else { return };
        if let Some(asked) = m.local
            && (sock_fam(&a) != m.fam
                || ip_of(&a) != ip_of(&asked)
                || port_of(&a) == 0
                || (port_of(&asked) != 0 && port_of(&a) != port_of(&asked)))
        {
            self.fail(format!(
                "udp.local-address after a bind to {asked:?} is {a:?}"
            ));
        }
        self.udp_port.insert(m.id, port_of(&a));
        if let Some(Ent::Udp(u)) = self.live.get_mut(&s.rep) {
            u.local = Some(a);
        }
    }

    /// Fails unless every UDP destination of a call is safe to hand to the host (see
    /// [`udp_dest_is_safe`]); called before the call, so nothing unsafe is ever sent.
    fn check_udp_dests<'a>(
        &self,
        call: &str,
        dests: impl IntoIterator<Item = &'a IpSocketAddress>,
    ) {
        for a in dests {
            if !udp_dest_is_safe(a) {
                self.fail(format!(
                    "{call}: the fuzzer generated UDP destination {a:?}"
                ));
            }
        }
    }

    fn dgin_step(&mut self) {
        let h = self.target(Kind::DgIn);
        let m = match (h.live, self.live.get(&h.rep)) {
            (
                true,
                Some(Ent::DgIn {
                    udp,
                    generation,
                    remote,
                }),
            ) => Some((*udp, *generation, *remote)),
            _ => None,
        };
        match self.rng.below(5) {
            0..=2 => {
                let max = self.rng.pick(&[0u64, 1, 3, 1000, u64::MAX]);
                let r = HostIncomingDatagramStream::receive(
                    &mut view!(self),
                    b::<IncomingDatagramStream>(h),
                    max,
                );
                let detail = format!(
                    "({}, {max}) = {:?}",
                    h.rep,
                    r.as_ref().ok().map(|v| v.len())
                );
                let o = self.judge(
                    "incoming-datagram-stream.receive",
                    detail,
                    h.live,
                    &r,
                    // ICMP errors queued on the socket (`IP_RECVERR`), memory for `recvmmsg`.
                    &[
                        E::RemoteUnreachable,
                        E::ConnectionRefused,
                        E::InvalidState,
                        OOM,
                    ],
                    false,
                );
                let Some((udp, generation, remote)) = m else {
                    return;
                };
                let current = self.udp_gen[&udp] == generation;
                match (current, o) {
                    (true, Out::Code(E::InvalidState)) => {
                        self.fail("receive on the newest stream: invalid-state".into())
                    }
                    (false, o) if o != Out::Code(E::InvalidState) => {
                        self.fail(format!("receive on an older stream gave {o:?}"))
                    }
                    _ => {}
                }
                if let Ok(list) = r {
                    if list.len() as u64 > max {
                        self.fail(format!("receive({max}) returned {}", list.len()));
                    }
                    if let Some(want) = remote {
                        for d in &list {
                            if !same_addr(&d.remote_address, &want) {
                                self.fail(format!(
                                    "stream to {want:?} received from {:?}",
                                    d.remote_address
                                ));
                            }
                        }
                    }
                }
            }
            3 => {
                let r = trap(HostIncomingDatagramStream::subscribe(
                    &mut view!(self),
                    b::<IncomingDatagramStream>(h),
                ));
                self.judge(
                    "incoming-datagram-stream.subscribe",
                    format!("({})", h.rep),
                    h.live,
                    &r,
                    &[],
                    false,
                );
                if let Ok(p) = r {
                    self.add(p.rep(), Ent::Poll { parent: None });
                }
            }
            _ => {
                if let Some(h) = self.drop_target(Kind::DgIn) {
                    let r = trap(HostIncomingDatagramStream::drop(
                        &mut view!(self),
                        own::<IncomingDatagramStream>(h),
                    ));
                    self.judge(
                        "incoming-datagram-stream.drop",
                        format!("({})", h.rep),
                        h.live,
                        &r,
                        &[],
                        false,
                    );
                    if h.live {
                        self.kill(h.rep);
                    }
                }
            }
        }
    }

    fn dgout_step(&mut self) {
        let h = self.target(Kind::DgOut);
        let m = match (h.live, self.live.get(&h.rep)) {
            (
                true,
                Some(Ent::DgOut {
                    udp,
                    generation,
                    fam,
                    remote,
                    permit,
                }),
            ) => Some((*udp, *generation, *fam, *remote, *permit)),
            _ => None,
        };
        let current = m.is_some_and(|(udp, g, ..)| self.udp_gen[&udp] == g);
        match self.rng.below(6) {
            0 | 1 => {
                let r = HostOutgoingDatagramStream::check_send(
                    &mut view!(self),
                    b::<OutgoingDatagramStream>(h),
                );
                let detail = format!("({}) = {:?}", h.rep, r.as_ref().ok());
                let o = self.judge(
                    "outgoing-datagram-stream.check-send",
                    detail,
                    h.live,
                    &r,
                    &[E::InvalidState],
                    false,
                );
                if m.is_some() && current != (o != Out::Code(E::InvalidState)) {
                    self.fail(format!("check-send (newest: {current}) gave {o:?}"));
                }
                if let Ok(n) = r
                    && let Some(Ent::DgOut { permit, .. }) = self.live.get_mut(&h.rep)
                {
                    *permit = n;
                }
            }
            2 | 3 => {
                let (fam, remote, permit) =
                    m.map(|(_, _, f, r, p)| (f, r, p))
                        .unwrap_or((Fam::Ipv4, None, 0));
                let count = if self.rng.chance(12) {
                    permit as usize + 1
                } else {
                    self.rng.below(4).min(permit as usize)
                };
                let count = count.min(70);
                let mut list = Vec::new();
                // Index of the first datagram the WIT calls invalid.
                let mut first_bad = None;
                let mut ambiguous = false;
                for i in 0..count {
                    let size = self
                        .rng
                        .pick(&[0usize, 1, 16, 1000, 1000, 65_507, 65_508, 65_527, 65_528]);
                    let addr = match (remote, self.rng.below(4)) {
                        (Some(r), 0) => (Some(r), true),
                        (Some(r), 1) => {
                            let a = self.addr(fam, Some(Proto::Udp));
                            // The same IP and port with another flow-info or scope-id may
                            // count as either.
                            if same_addr(&a.wit, &r) && !exact_addr(&a.wit, &r) {
                                ambiguous = true;
                            }
                            (Some(a.wit), exact_addr(&a.wit, &r))
                        }
                        (Some(_), _) => (None, true),
                        (None, 0) => (None, false),
                        (None, _) => {
                            let a = self.addr(fam, Some(Proto::Udp));
                            (Some(a.wit), a.valid_remote && sock_fam(&a.wit) == fam)
                        }
                    };
                    let too_big = size > 65_527 || (fam == Fam::Ipv4 && size > 65_507);
                    if (!addr.1 || too_big) && first_bad.is_none() {
                        first_bad = Some(i);
                    }
                    list.push(OutgoingDatagram {
                        data: vec![0x5a; size],
                        remote_address: addr.0,
                    });
                }
                self.check_udp_dests(
                    "outgoing-datagram-stream.send",
                    list.iter().filter_map(|d| d.remote_address.as_ref()),
                );
                let sizes: Vec<usize> = list.iter().map(|d| d.data.len()).collect();
                let r = HostOutgoingDatagramStream::send(
                    &mut view!(self),
                    b::<OutgoingDatagramStream>(h),
                    list,
                );
                let detail = format!(
                    "({}, {count} [{sizes:?}], permit {permit}) = {:?}",
                    h.rep,
                    r.as_ref().ok()
                );
                let over = count as u64 > permit;
                let o = self.judge(
                    "outgoing-datagram-stream.send",
                    detail,
                    h.live,
                    &r,
                    &[
                        E::InvalidArgument,
                        E::InvalidState,
                        E::RemoteUnreachable,
                        E::ConnectionRefused,
                        E::DatagramTooLarge,
                        // Not only memory pressure: Linux fails a datagram that needs more than
                        // twice the socket's send buffer with `ENOBUFS` (a 65 507-byte one after
                        // `set-send-buffer-size(1)`, seed 1000004).
                        OOM,
                    ],
                    over,
                );
                if m.is_none() {
                    return;
                }
                if over {
                    if o != Out::Trap {
                        self.fail(format!(
                            "send of {count} datagrams with a permit of {permit} gave {o:?}, \
                             the WIT says it must trap"
                        ));
                    }
                    return;
                }
                if let Some(Ent::DgOut { permit: p, .. }) = self.live.get_mut(&h.rep) {
                    *p -= count as u64;
                }
                if !current {
                    if o != Out::Code(E::InvalidState) {
                        self.fail(format!("send on an older stream gave {o:?}"));
                    }
                    return;
                }
                if ambiguous {
                    first_bad = None;
                }
                match (first_bad, &r) {
                    (Some(0), Ok(n)) => {
                        self.fail(format!("send with an invalid first datagram sent {n}"))
                    }
                    (Some(0), Err(SocketError::Code(c)))
                        if matches!(E::from(*c), E::InvalidArgument | E::DatagramTooLarge) => {}
                    (Some(0), _) => {
                        self.fail(format!("send with an invalid first datagram: {o:?}"))
                    }
                    (Some(i), Ok(n)) if *n > i as u64 => {
                        self.fail(format!("send went past the invalid datagram {i}: sent {n}"))
                    }
                    (_, Ok(n)) if *n > count as u64 => {
                        self.fail(format!("send of {count} reports {n} sent"))
                    }
                    _ => {}
                }
            }
            4 => {
                let r = trap(HostOutgoingDatagramStream::subscribe(
                    &mut view!(self),
                    b::<OutgoingDatagramStream>(h),
                ));
                self.judge(
                    "outgoing-datagram-stream.subscribe",
                    format!("({})", h.rep),
                    h.live,
                    &r,
                    &[],
                    false,
                );
                if let Ok(p) = r {
                    self.add(p.rep(), Ent::Poll { parent: None });
                }
            }
            _ => {
                if let Some(h) = self.drop_target(Kind::DgOut) {
                    let r = trap(HostOutgoingDatagramStream::drop(
                        &mut view!(self),
                        own::<OutgoingDatagramStream>(h),
                    ));
                    self.judge(
                        "outgoing-datagram-stream.drop",
                        format!("({})", h.rep),
                        h.live,
                        &r,
                        &[],
                        false,
                    );
                    if h.live {
                        self.kill(h.rep);
                    }
                }
            }
        }
    }

    // --- wasi:io streams of TCP connections ---------------------------------------------------

    fn conn_of(&self, h: H) -> Option<u64> {
        match (h.live, self.live.get(&h.rep)) {
            (true, Some(Ent::In { conn } | Ent::Out { conn, .. })) => Some(*conn),
            _ => None,
        }
    }

    async fn input_step(&mut self) {
        let h = self.target(Kind::In);
        let conn = self.conn_of(h);
        // Reads must say `closed`.
        let shut = conn.is_some_and(|c| self.conns[&c].rx_shut || self.conns[&c].rx_done);
        match self.rng.below(7) {
            0..=2 => {
                let len = self.rng.pick(&[0u64, 1, 100, 65_536, u64::MAX]);
                let r = HostInputStream::read(&mut self.table, b::<DynInputStream>(h), len);
                let detail = format!("({}, {len}) = {:?}", h.rep, r.as_ref().ok().map(Vec::len));
                let o = self.judge_stream("input-stream.read", detail, h.live, &r, false);
                self.after_read(h, conn, shut, o, len, r.map(|v| v.len() as u64));
            }
            3 => {
                let len = self.rng.pick(&[0u64, 1, 4096]);
                let wait = self.wait();
                let r = tokio::time::timeout(
                    wait,
                    HostInputStream::blocking_read(&mut self.table, b::<DynInputStream>(h), len),
                )
                .await;
                let Ok(r) = r else {
                    self.record(
                        "input-stream.blocking-read",
                        "timeout".into(),
                        String::new(),
                    );
                    return;
                };
                let detail = format!("({}, {len}) = {:?}", h.rep, r.as_ref().ok().map(Vec::len));
                let o = self.judge_stream("input-stream.blocking-read", detail, h.live, &r, false);
                self.after_read(h, conn, shut, o, len, r.map(|v| v.len() as u64));
            }
            4 => {
                let len = self.rng.pick(&[0u64, 1, 100, u64::MAX]);
                let r = HostInputStream::skip(&mut self.table, b::<DynInputStream>(h), len);
                let detail = format!("({}, {len}) = {:?}", h.rep, r.as_ref().ok());
                let o = self.judge_stream("input-stream.skip", detail, h.live, &r, false);
                self.after_read(h, conn, shut, o, len, r);
            }
            5 => {
                // wasi-io's subscribe does not check the parent's type (the component model
                // does): only live handles and dead ones with a free slot.
                let Some(h) = self.drop_target(Kind::In) else {
                    return;
                };
                let r = HostInputStream::subscribe(&mut self.table, b::<DynInputStream>(h));
                let rr = trap(r.map(|p| p.rep()));
                self.judge(
                    "input-stream.subscribe",
                    format!("({})", h.rep),
                    h.live,
                    &rr,
                    &[],
                    false,
                );
                if let Ok(p) = rr {
                    self.add(
                        p,
                        Ent::Poll {
                            parent: Some(h.rep),
                        },
                    );
                }
            }
            _ => {
                if let Some(h) = self.drop_target(Kind::In) {
                    let has_children = !self.children(h.rep).is_empty();
                    let r = trap(
                        HostInputStream::drop(&mut self.table, own::<DynInputStream>(h)).await,
                    );
                    self.judge(
                        "input-stream.drop",
                        format!("({}, children: {has_children})", h.rep),
                        h.live,
                        &r,
                        &[],
                        has_children,
                    );
                    self.after_stream_drop(h, has_children, r.is_ok());
                }
            }
        }
    }

    fn after_read(
        &mut self,
        h: H,
        conn: Option<u64>,
        shut: bool,
        o: SOut,
        len: u64,
        r: Result<u64, StreamError>,
    ) {
        if !h.live {
            return;
        }
        if shut && o != SOut::Closed {
            self.fail(format!(
                "a read({len}) after shutdown(receive) or the end of the stream gave {o:?}, \
                 want closed"
            ));
        }
        if matches!(o, SOut::Closed | SOut::Failed)
            && let Some(c) = conn.and_then(|c| self.conns.get_mut(&c))
        {
            c.rx_done = true;
        }
        match r {
            Ok(n) if n > len => self.fail(format!("read({len}) returned {n} bytes")),
            Err(StreamError::LastOperationFailed(e)) if self.rng.chance(60) => self.keep_error(e),
            _ => {}
        }
    }

    fn after_stream_drop(&mut self, h: H, has_children: bool, ok: bool) {
        if !h.live {
            return;
        }
        if has_children {
            if ok {
                self.fail("a stream with a live pollable was dropped without a trap".into());
            }
            // The failed drop left it in place.
            if self.table.get_any_mut(h.rep).is_err() {
                self.fail("a refused stream drop removed the stream".into());
            }
        } else {
            self.kill(h.rep);
        }
    }

    fn wait(&mut self) -> Duration {
        Duration::from_millis(1 + self.rng.below(MAX_WAIT_MS as usize) as u64)
    }

    async fn output_step(&mut self) {
        let h = self.target(Kind::Out);
        let conn = self.conn_of(h);
        // Every call on the stream must say `closed`.
        let shut = conn.is_some_and(|c| self.conns[&c].tx_shut);
        let permit = match (h.live, self.live.get(&h.rep)) {
            (true, Some(Ent::Out { permit, .. })) => *permit,
            _ => Some(0),
        };
        match self.rng.below(9) {
            0 | 1 => {
                let r = HostOutputStream::check_write(&mut self.table, b::<DynOutputStream>(h));
                let detail = format!("({}) = {:?}", h.rep, r.as_ref().ok());
                let o = self.judge_stream("output-stream.check-write", detail, h.live, &r, false);
                if !h.live {
                    return;
                }
                if shut && o != SOut::Closed {
                    self.fail(format!("check-write after shutdown(send) gave {o:?}"));
                }
                match r {
                    Ok(n) => {
                        if n > 64 * 1024 {
                            self.fail(format!("check-write granted {n}, over the 64 KiB budget"));
                        }
                        self.set_permit(h, Some(n));
                    }
                    Err(StreamError::LastOperationFailed(e)) if self.rng.chance(60) => {
                        self.keep_error(e)
                    }
                    _ => {}
                }
            }
            2 | 3 => {
                let len = match permit {
                    Some(p) if self.rng.chance(12) => p + 1,
                    Some(p) => self.rng.below(p.min(8192) as usize + 1) as u64,
                    None => self.rng.below(64) as u64,
                };
                let r = HostOutputStream::write(
                    &mut self.table,
                    b::<DynOutputStream>(h),
                    vec![0xa5; len as usize],
                );
                let over = permit.is_none_or(|p| len > p);
                let o = self.judge_stream(
                    "output-stream.write",
                    format!("({}, {len}, permit {permit:?})", h.rep),
                    h.live,
                    &r,
                    over,
                );
                if !h.live {
                    return;
                }
                if permit.is_some() && over && o == SOut::Ok {
                    self.fail(format!(
                        "write of {len} over a permit of {permit:?} succeeded"
                    ));
                }
                // Closed before the permit is looked at: no trap over the permit either.
                if shut && o != SOut::Closed {
                    self.fail(format!("write after shutdown(send) gave {o:?}"));
                }
                if o == SOut::Ok {
                    self.set_permit(h, permit.map(|p| p - len));
                }
                if let Err(StreamError::LastOperationFailed(e)) = r
                    && self.rng.chance(60)
                {
                    self.keep_error(e);
                }
            }
            4 => {
                let r = HostOutputStream::flush(&mut self.table, b::<DynOutputStream>(h));
                let o = self.judge_stream(
                    "output-stream.flush",
                    format!("({})", h.rep),
                    h.live,
                    &r,
                    false,
                );
                if h.live && shut && o != SOut::Closed {
                    self.fail(format!("flush after shutdown(send) gave {o:?}"));
                }
            }
            5 => {
                let wait = self.wait();
                let blocking_write = self.rng.chance(50);
                let data = vec![7u8; self.rng.below(4097)];
                let r = if blocking_write {
                    tokio::time::timeout(
                        wait,
                        HostOutputStream::blocking_write_and_flush(
                            &mut self.table,
                            b::<DynOutputStream>(h),
                            data,
                        ),
                    )
                    .await
                } else {
                    tokio::time::timeout(
                        wait,
                        HostOutputStream::blocking_flush(&mut self.table, b::<DynOutputStream>(h)),
                    )
                    .await
                };
                let name = if blocking_write {
                    "output-stream.blocking-write-and-flush"
                } else {
                    "output-stream.blocking-flush"
                };
                // Both ask `check-write` themselves: the permit is unknown afterwards.
                self.set_permit(h, None);
                match r {
                    Ok(r) => {
                        let o = self.judge_stream(name, format!("({})", h.rep), h.live, &r, false);
                        if h.live && shut && o != SOut::Closed {
                            self.fail(format!("{name} after shutdown(send) gave {o:?}"));
                        }
                    }
                    // The closed stream is ready at once: it cannot time out.
                    Err(_) if h.live && shut => {
                        self.fail(format!("{name} after shutdown(send) timed out"))
                    }
                    Err(_) => self.record(name, "timeout".into(), String::new()),
                }
            }
            6 => {
                // wasi-io's subscribe does not check the parent's type (the component model
                // does): only live handles and dead ones with a free slot.
                let Some(h) = self.drop_target(Kind::Out) else {
                    return;
                };
                let r = HostOutputStream::subscribe(&mut self.table, b::<DynOutputStream>(h));
                let rr = trap(r.map(|p| p.rep()));
                self.judge(
                    "output-stream.subscribe",
                    format!("({})", h.rep),
                    h.live,
                    &rr,
                    &[],
                    false,
                );
                if let Ok(p) = rr {
                    self.add(
                        p,
                        Ent::Poll {
                            parent: Some(h.rep),
                        },
                    );
                }
            }
            _ => {
                if let Some(h) = self.drop_target(Kind::Out) {
                    let has_children = !self.children(h.rep).is_empty();
                    let r = trap(
                        HostOutputStream::drop(&mut self.table, own::<DynOutputStream>(h)).await,
                    );
                    self.judge(
                        "output-stream.drop",
                        format!("({}, children: {has_children})", h.rep),
                        h.live,
                        &r,
                        &[],
                        has_children,
                    );
                    self.after_stream_drop(h, has_children, r.is_ok());
                }
            }
        }
    }

    fn set_permit(&mut self, h: H, p: Option<u64>) {
        if let Some(Ent::Out { permit, .. }) = self.live.get_mut(&h.rep) {
            *permit = p;
        }
    }

    // --- pollables ------------------------------------------------------------------------------

    async fn poll_step(&mut self) {
        match self.rng.below(6) {
            0..=2 => {
                let n = 1 + self.rng.below(3);
                let mut list = Vec::new();
                let mut valid = true;
                for _ in 0..n {
                    let h = self.target(Kind::Poll);
                    valid &= h.live;
                    list.push(h);
                }
                let wait = self.wait();
                let reps: Vec<u32> = list.iter().map(|h| h.rep).collect();
                let res: Vec<Resource<DynPollable>> = list.iter().map(|h| b(*h)).collect();
                let r = tokio::time::timeout(wait, PollHost::poll(&mut self.table, res)).await;
                match r {
                    Err(_) => {
                        self.record("poll", "timeout".into(), format!("({reps:?})"));
                        if !valid {
                            self.fail(format!("poll({reps:?}) with a dead handle did not trap"));
                        }
                    }
                    Ok(r) => {
                        let detail = format!("({reps:?}) = {:?}", r.as_ref().ok());
                        let rr: Result<(), SocketError> = match &r {
                            Ok(_) => Ok(()),
                            Err(e) => Err(SocketError::trap(e.to_string())),
                        };
                        self.judge("poll", detail, valid, &rr, &[], false);
                        if let Ok(ready) = r
                            && (ready.is_empty() || ready.iter().any(|i| *i as usize >= n))
                        {
                            self.fail(format!("poll of {n} returned {ready:?}"));
                        }
                    }
                }
            }
            3 => {
                let h = self.target(Kind::Poll);
                let r = HostPollable::ready(&mut self.table, b::<DynPollable>(h)).await;
                let detail = format!("({}) = {:?}", h.rep, r.as_ref().ok());
                self.judge("pollable.ready", detail, h.live, &trap(r), &[], false);
            }
            4 => {
                let h = self.target(Kind::Poll);
                let wait = self.wait();
                let r =
                    tokio::time::timeout(wait, HostPollable::block(&mut self.table, b(h))).await;
                match r {
                    Ok(r) => {
                        self.judge(
                            "pollable.block",
                            format!("({})", h.rep),
                            h.live,
                            &trap(r),
                            &[],
                            false,
                        );
                    }
                    Err(_) => self.record("pollable.block", "timeout".into(), String::new()),
                }
            }
            _ => {
                if let Some(h) = self.drop_target(Kind::Poll) {
                    let r = trap(HostPollable::drop(&mut self.table, own::<DynPollable>(h)));
                    self.judge(
                        "pollable.drop",
                        format!("({})", h.rep),
                        h.live,
                        &r,
                        &[],
                        false,
                    );
                    if h.live {
                        self.kill(h.rep);
                    }
                }
            }
        }
    }

    // --- name lookup ----------------------------------------------------------------------------

    fn resolve(&mut self, net: H, name: &str) {
        let r = LookupHost::resolve_addresses(&mut view!(self), b::<Network>(net), name.into());
        let o = self.judge(
            "resolve-addresses",
            format!("({name:?})"),
            net.live,
            &r,
            &[E::InvalidArgument],
            false,
        );
        if !net.live {
            return;
        }
        let literal = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .map(|n| n.parse::<Ipv6Addr>().map(IpAddr::V6))
            .unwrap_or_else(|| name.parse::<IpAddr>())
            .ok();
        let valid_name =
            literal.is_some() || name.eq_ignore_ascii_case("localhost") || name == "LOCALHOST.";
        match (valid_name, o) {
            (true, Out::Ok) | (false, Out::Code(E::InvalidArgument)) => {}
            _ => self.fail(format!("resolve-addresses({name:?}) gave {o:?}")),
        }
        if let Ok(res) = r {
            let literal = literal.map(|ip| match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                v4 => v4,
            });
            self.add(
                res.rep(),
                Ent::Lookup {
                    literal,
                    ended: None,
                    served: false,
                },
            );
        }
    }

    fn lookup_next(&mut self, h: H) -> Option<Result<Option<IpAddr>, E>> {
        let m = match (h.live, self.live.get(&h.rep)) {
            (
                true,
                Some(Ent::Lookup {
                    literal,
                    ended,
                    served,
                }),
            ) => Some((*literal, *ended, *served)),
            _ => None,
        };
        let r = HostResolveAddressStream::resolve_next_address(
            &mut view!(self),
            b::<ResolveAddressStream>(h),
        );
        let detail = format!("({}) = {:?}", h.rep, r.as_ref().ok());
        let o = self.judge(
            "resolve-next-address",
            detail,
            h.live,
            &r,
            // `EAI_MEMORY` is `out-of-memory`; `getaddrinfo` runs on a thread of the host's.
            &[
                E::NameUnresolvable,
                E::TemporaryResolverFailure,
                E::PermanentResolverFailure,
                E::WouldBlock,
                OOM,
            ],
            false,
        );
        let (literal, ended, served) = m?;
        let got: Result<Option<IpAddr>, E> = match (&r, o) {
            (Ok(a), _) => Ok(a.map(|a| match a {
                IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
                    IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
                }
            })),
            (_, Out::Code(c)) => Err(c),
            _ => return None,
        };
        if let Ok(Some(IpAddr::V6(v6))) = got
            && v6.to_ipv4_mapped().is_some()
        {
            self.fail(format!("resolve-next-address returned IPv4-mapped {v6}"));
        }
        if let Some(ip) = literal {
            let want = if served { Ok(None) } else { Ok(Some(ip)) };
            if got != want {
                self.fail(format!(
                    "literal lookup of {ip}: got {got:?}, want {want:?}"
                ));
            }
        }
        match (ended, got) {
            (Some(Ok(())), g) if g != Ok(None) => {
                self.fail(format!("resolve-next-address after none gave {g:?}"))
            }
            (Some(Err(c)), g) if g != Err(c) => {
                self.fail(format!("resolve-next-address after {c:?} gave {g:?}"))
            }
            (None, Err(E::WouldBlock)) if served => {
                self.fail("resolve-next-address would-block after an address".into())
            }
            _ => {}
        }
        if let Some(Ent::Lookup { ended, served, .. }) = self.live.get_mut(&h.rep) {
            match got {
                Ok(Some(_)) => *served = true,
                Ok(None) => *ended = Some(Ok(())),
                Err(E::WouldBlock) => {}
                Err(c) => *ended = Some(Err(c)),
            }
        }
        Some(got)
    }

    fn lookup_step(&mut self) {
        match self.rng.below(5) {
            0..=2 => {
                let h = self.target(Kind::Lookup);
                self.lookup_next(h);
            }
            3 => {
                let h = self.target(Kind::Lookup);
                let r = trap(HostResolveAddressStream::subscribe(
                    &mut view!(self),
                    b::<ResolveAddressStream>(h),
                ));
                self.judge(
                    "resolve-address-stream.subscribe",
                    format!("({})", h.rep),
                    h.live,
                    &r,
                    &[],
                    false,
                );
                if let Ok(p) = r {
                    self.add(p.rep(), Ent::Poll { parent: None });
                }
            }
            _ => {
                if let Some(h) = self.drop_target(Kind::Lookup) {
                    let r = trap(HostResolveAddressStream::drop(
                        &mut view!(self),
                        own::<ResolveAddressStream>(h),
                    ));
                    self.judge(
                        "resolve-address-stream.drop",
                        format!("({})", h.rep),
                        h.live,
                        &r,
                        &[],
                        false,
                    );
                    if h.live {
                        self.kill(h.rep);
                    }
                }
            }
        }
    }

    // --- end of a case --------------------------------------------------------------------------

    /// Drops every live resource in random order (a stream's pollables before the stream, as
    /// `wasi:io` requires) and checks that nothing is left.
    async fn teardown(&mut self) {
        log("teardown".into());
        let mut reps: Vec<u32> = self.live.keys().copied().collect();
        for i in (1..reps.len()).rev() {
            let j = self.rng.below(i + 1);
            reps.swap(i, j);
        }
        // Children of streams first.
        reps.sort_by_key(|r| !matches!(self.live.get(r), Some(Ent::Poll { parent: Some(_) })));
        for rep in reps {
            let Some(ent) = self.live.get(&rep).cloned() else {
                continue;
            };
            let h = H { rep, live: true };
            let mut v = view!(self);
            let r: wasmtime::Result<()> = match ent {
                Ent::Net => HostNetwork::drop(&mut v, own::<Network>(h)),
                Ent::Tcp(_) => HostTcpSocket::drop(&mut v, own::<TcpSocket>(h)),
                Ent::Udp(_) => HostUdpSocket::drop(&mut v, own::<UdpSocket>(h)),
                Ent::In { .. } => HostInputStream::drop(&mut self.table, own(h)).await,
                Ent::Out { .. } => HostOutputStream::drop(&mut self.table, own(h)).await,
                Ent::DgIn { .. } => {
                    HostIncomingDatagramStream::drop(&mut v, own::<IncomingDatagramStream>(h))
                }
                Ent::DgOut { .. } => {
                    HostOutgoingDatagramStream::drop(&mut v, own::<OutgoingDatagramStream>(h))
                }
                Ent::Poll { .. } => HostPollable::drop(&mut self.table, own(h)),
                Ent::Lookup { .. } => {
                    HostResolveAddressStream::drop(&mut v, own::<ResolveAddressStream>(h))
                }
                Ent::Err => HostError::drop(&mut self.table, own(h)),
            };
            self.judge(
                "teardown.drop",
                format!("({rep}: {:?})", ent.kind()),
                true,
                &trap(r),
                &[],
                false,
            );
            self.live.remove(&rep);
        }
        let left = self.table.iter_mut().count();
        if left != 0 {
            self.fail(format!(
                "{left} table entries left after every resource was dropped"
            ));
        }
        let stats = self.ctx.stats();
        if stats.sockets_open != 0 {
            self.fail(format!(
                "sockets_open = {} after every socket was dropped",
                stats.sockets_open
            ));
        }
    }
}
