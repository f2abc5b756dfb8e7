//! The virtual network: an address space in the process, shared by the instances attached to
//! it, with no OS socket at all.
//!
//! Every host has its own loopback (`127.0.0.0/8`, `::1`) and one address of each family of
//! its own (`10.0.x.y`, `fd00::x:y`, in attach order); a directory maps each host's name, and
//! names an embedder adds, to addresses. TCP is reliable, ordered and flow-controlled with
//! bounded buffers; UDP datagrams have the OS's size limits. Ports follow Linux's rules: TCP
//! binds as with `SO_REUSEADDR` (only a listener holds a port against a bind), UDP ports are
//! exclusive, ephemeral ports come from 32768..=60999 in order. Every choice is made in one
//! order from one lock, so the same calls give the same outcome.

mod faults;
mod opts;
mod tcp;
#[cfg(test)]
mod tests;
mod udp;

pub use faults::LinkFaults;
pub(crate) use faults::Path;
pub(crate) use opts::VirtOptions;
pub(crate) use tcp::{VListener, VStream};
pub(crate) use udp::VDatagram;

use super::{ResolveError, ResolveFuture, Resolver};
use crate::addr::Family;
use crate::error::ErrorCode;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;
use std::time::Duration;

/// First and last ephemeral port (Linux's default `ip_local_port_range`).
const EPHEMERAL: (u16, u16) = (32_768, 60_999);
/// Most hosts one network holds (the 10.0.0.0/16 and fd00::/112 plans it numbers them in).
const MAX_HOSTS: usize = 65_000;

/// A virtual network that instances attach to as hosts; cheap to clone (one shared network).
#[derive(Clone, Default)]
pub struct VirtualNetwork {
    world: Arc<Mutex<World>>,
}

impl fmt::Debug for VirtualNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.world();
        f.debug_struct("VirtualNetwork")
            .field("hosts", &w.hosts.len())
            .finish()
    }
}

/// Why a virtual network refused a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VirtualNetworkError {
    /// Host names are unique on a network.
    DuplicateHost(String),
    /// A host name must be a valid DNS name (letters, digits, `-`, `.`).
    BadName(String),
    /// The network's address plan is full.
    Full,
    /// No host of that name is attached.
    UnknownHost(String),
}

impl fmt::Display for VirtualNetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateHost(name) => {
                write!(
                    f,
                    "a host named `{name}` is already attached to this virtual network"
                )
            }
            Self::BadName(name) => write!(
                f,
                "`{name}` is not a valid host name (letters, digits, `-` and `.`, up to 253 characters)"
            ),
            Self::Full => write!(f, "this virtual network already has {MAX_HOSTS} hosts"),
            Self::UnknownHost(name) => write!(f, "no host named `{name}` is attached"),
        }
    }
}

impl std::error::Error for VirtualNetworkError {}

impl VirtualNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        crate::sync::lock(&self.world)
    }

    /// Attaches a host named `name`: it gets the next IPv4 and IPv6 addresses, and the
    /// directory answers `name` with them. Give it to an instance with
    /// [`WasockCtxBuilder::virtual_host`](crate::WasockCtxBuilder::virtual_host).
    pub fn attach(&self, name: &str) -> Result<VirtualHost, VirtualNetworkError> {
        let name = crate::lookup::normalize_name(name)
            .map_err(|_| VirtualNetworkError::BadName(name.to_string()))?;
        let mut w = self.world();
        if w.hosts.iter().any(|h| h.name == name) {
            return Err(VirtualNetworkError::DuplicateHost(name));
        }
        if w.hosts.len() >= MAX_HOSTS {
            return Err(VirtualNetworkError::Full);
        }
        let n = w.hosts.len() as u16 + 1;
        let [hi, lo] = n.to_be_bytes();
        let v4 = Ipv4Addr::new(10, 0, hi, lo);
        let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, n);
        w.names
            .insert(name.clone(), vec![IpAddr::V4(v4), IpAddr::V6(v6)]);
        let id = HostId(w.hosts.len());
        w.hosts.push(HostRecord {
            name: name.clone(),
            v4,
            v6,
            down: false,
        });
        Ok(VirtualHost {
            world: self.world.clone(),
            id,
            name: name.into(),
            v4,
            v6,
        })
    }

    /// An empty network whose random choices (faults) all come from `seed`.
    pub fn seeded(seed: u64) -> Self {
        let net = Self::default();
        net.world().rng = StdRng::seed_from_u64(seed);
        net
    }

    fn host_id(w: &World, name: &str) -> Result<HostId, VirtualNetworkError> {
        w.hosts
            .iter()
            .position(|h| h.name == name)
            .map(HostId)
            .ok_or_else(|| VirtualNetworkError::UnknownHost(name.to_string()))
    }

    /// The path between hosts `a` and `b`, by name.
    fn path_between(&self, a: &str, b: &str) -> Result<Option<Arc<Path>>, VirtualNetworkError> {
        let mut w = self.world();
        let (a, b) = (Self::host_id(&w, a)?, Self::host_id(&w, b)?);
        Ok(w.path(a, b))
    }

    /// How the path between hosts `a` and `b` behaves from now on (chances saturate to 0..=1).
    pub fn set_link(
        &self,
        a: &str,
        b: &str,
        faults: LinkFaults,
    ) -> Result<(), VirtualNetworkError> {
        let mut w = self.world();
        let key = World::path_key(Self::host_id(&w, a)?, Self::host_id(&w, b)?);
        let faults = faults.saturated();
        w.link_faults.insert(key, faults);
        if let Some(path) = w.paths.get(&key) {
            path.set_faults(faults);
        }
        Ok(())
    }

    /// How every path without a [`set_link`](Self::set_link) of its own behaves from now on.
    pub fn set_default_link(&self, faults: LinkFaults) {
        let mut w = self.world();
        let faults = faults.saturated();
        w.default_faults = faults;
        for (key, path) in &w.paths {
            if !w.link_faults.contains_key(key) {
                path.set_faults(faults);
            }
        }
    }

    /// Cuts the path between `a` and `b` (`true`) or heals it (`false`). While cut, datagrams
    /// are lost, connects wait (and time out), and TCP data waits to cross.
    pub fn partition(&self, a: &str, b: &str, cut: bool) -> Result<(), VirtualNetworkError> {
        if let Some(path) = self.path_between(a, b)? {
            path.set_partitioned(cut);
        }
        Ok(())
    }

    /// Resets every TCP connection between `a` and `b` (both ends see `connection-reset`, a
    /// connect under way fails with it, a connection still queued for `accept` is
    /// `connection-aborted` there).
    pub fn reset_connections(&self, a: &str, b: &str) -> Result<(), VirtualNetworkError> {
        if let Some(path) = self.path_between(a, b)? {
            path.reset_all();
        }
        Ok(())
    }

    /// Takes host `name`'s own addresses off the network (`false`) or puts them back (`true`):
    /// while down, nothing reaches it or leaves it but on its loopback, and its connections to
    /// other hosts are reset.
    pub fn set_host_up(&self, name: &str, up: bool) -> Result<(), VirtualNetworkError> {
        let paths: Vec<Arc<Path>> = {
            let mut w = self.world();
            let id = Self::host_id(&w, name)?;
            w.hosts[id.0].down = !up;
            w.paths
                .iter()
                .filter(|((a, b), _)| *a == id || *b == id)
                .map(|(_, p)| p.clone())
                .collect()
        };
        if !up {
            for path in paths {
                path.reset_all();
            }
        }
        Ok(())
    }

    /// Makes the directory fail every lookup of a name with a temporary failure (`true`), or
    /// answer again (`false`).
    pub fn fail_lookups(&self, failing: bool) {
        self.world().lookups_failing = failing;
    }

    /// Has `observer` told of every datagram a fault loses or duplicates, as it happens
    /// (replacing an earlier observer); a simulation writes these into its trace.
    pub fn observe(
        &self,
        observer: impl Fn(Fault, SocketAddr, SocketAddr, usize) + Send + Sync + 'static,
    ) {
        self.world().observer = Some(Box::new(observer));
    }

    /// Makes the directory answer `name` with `addrs` (replacing an earlier answer).
    pub fn add_name(
        &self,
        name: &str,
        addrs: impl IntoIterator<Item = IpAddr>,
    ) -> Result<(), VirtualNetworkError> {
        let name = crate::lookup::normalize_name(name)
            .map_err(|_| VirtualNetworkError::BadName(name.to_string()))?;
        self.world().names.insert(name, addrs.into_iter().collect());
        Ok(())
    }
}

/// What a path did to a datagram, as [`VirtualNetwork::observe`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Lost to the path's loss rate.
    Lost,
    /// Lost to a cut path.
    Cut,
    /// Delivered twice.
    Duplicated,
}

impl Fault {
    /// `lost`, `cut` or `duplicated`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Lost => "lost",
            Fault::Cut => "cut",
            Fault::Duplicated => "duplicated",
        }
    }
}

/// A callback told of each datagram a fault touched: the fault, sender, receiver and size.
type Observer = Box<dyn Fn(Fault, SocketAddr, SocketAddr, usize) + Send + Sync>;

/// One host of a [`VirtualNetwork`]: the place an instance's sockets live. Cheap to clone.
#[derive(Clone)]
pub struct VirtualHost {
    world: Arc<Mutex<World>>,
    id: HostId,
    name: Arc<str>,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
}

impl fmt::Debug for VirtualHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualHost")
            .field("name", &self.name)
            .field("v4", &self.v4)
            .field("v6", &self.v6)
            .finish()
    }
}

impl VirtualHost {
    /// The host's name in the network's directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's own addresses (besides its loopback): IPv4, then IPv6.
    pub fn addresses(&self) -> [IpAddr; 2] {
        [IpAddr::V4(self.v4), IpAddr::V6(self.v6)]
    }

    /// A resolver answering from the network's directory (and `localhost` with the loopback).
    pub fn resolver(&self) -> impl Resolver + use<> {
        Directory(self.world.clone())
    }

    pub(super) fn world(&self) -> MutexGuard<'_, World> {
        crate::sync::lock(&self.world)
    }

    /// The address this host's own traffic to `to` leaves from: the loopback for the loopback,
    /// else its own address of that family.
    pub(super) fn source_for(&self, to: IpAddr) -> IpAddr {
        match to {
            IpAddr::V4(ip) if ip.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(_) => IpAddr::V4(self.v4),
            IpAddr::V6(_) => IpAddr::V6(self.v6),
        }
    }

    /// `local`, with an unspecified address narrowed to the source of traffic to `to`.
    pub(super) fn narrowed(&self, local: SocketAddr, to: IpAddr) -> SocketAddr {
        match local.ip().is_unspecified() {
            true => SocketAddr::new(self.source_for(to), local.port()),
            false => local,
        }
    }
}

/// The index of a host in its network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct HostId(usize);

struct HostRecord {
    name: String,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    /// Taken off the network: unreachable but on its loopback.
    down: bool,
}

/// The protocol a port belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Proto {
    Tcp,
    Udp,
}

/// One port of one host, protocol and family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct PortKey {
    host: HostId,
    proto: Proto,
    v6: bool,
    port: u16,
}

/// What holds a port.
pub(super) enum Role {
    /// A TCP socket bound (or connected) on it: it keeps the port from ephemeral choice only.
    Bound,
    /// A TCP listener: it keeps the port from every other bind.
    Listening(Weak<tcp::ListenShared>),
    /// A bound UDP socket, with where its datagrams go once it has an inbox.
    Udp(Weak<udp::Inbox>),
}

struct Holder {
    lease: u64,
    ip: IpAddr,
    role: Role,
}

/// The network's tables and its random generator, behind one lock.
pub(super) struct World {
    hosts: Vec<HostRecord>,
    names: BTreeMap<String, Vec<IpAddr>>,
    ports: BTreeMap<PortKey, Vec<Holder>>,
    next_ephemeral: u16,
    next_lease: u64,
    paths: BTreeMap<(HostId, HostId), Arc<Path>>,
    link_faults: BTreeMap<(HostId, HostId), LinkFaults>,
    default_faults: LinkFaults,
    lookups_failing: bool,
    rng: StdRng,
    observer: Option<Observer>,
}

impl Default for World {
    fn default() -> Self {
        World {
            hosts: Vec::new(),
            names: BTreeMap::new(),
            ports: BTreeMap::new(),
            next_ephemeral: EPHEMERAL.0,
            next_lease: 0,
            paths: BTreeMap::new(),
            link_faults: BTreeMap::new(),
            default_faults: LinkFaults::default(),
            lookups_failing: false,
            rng: StdRng::seed_from_u64(0),
            observer: None,
        }
    }
}

/// Whether a bind on `a` and one on `b` (same port) overlap.
fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

impl World {
    /// Which host traffic from `from` to `ip` reaches, if any: its own loopback, or a host
    /// that is up, from a host that is up.
    pub(super) fn route(&self, from: HostId, ip: IpAddr) -> Option<HostId> {
        if ip.is_loopback() {
            return Some(from);
        }
        let to = self
            .hosts
            .iter()
            .position(|h| IpAddr::V4(h.v4) == ip || IpAddr::V6(h.v6) == ip)
            .map(HostId)?;
        let up = |h: HostId| !self.hosts[h.0].down;
        (to == from || (up(to) && up(from))).then_some(to)
    }

    fn path_key(a: HostId, b: HostId) -> (HostId, HostId) {
        (a.min(b), a.max(b))
    }

    /// The path between two hosts (`None` within a host: nothing faults its own traffic).
    pub(super) fn path(&mut self, a: HostId, b: HostId) -> Option<Arc<Path>> {
        if a == b {
            return None;
        }
        let faults = self.faults(a, b);
        let path =
            (self.paths.entry(Self::path_key(a, b))).or_insert_with(|| Arc::new(Path::new(faults)));
        Some(path.clone())
    }

    /// The direction of traffic from `from` to `to` on their path (see [`Path::arrival`]).
    pub(super) fn direction(from: HostId, to: HostId) -> usize {
        usize::from(from > to)
    }

    /// How the path between two hosts behaves now.
    pub(super) fn faults(&self, a: HostId, b: HostId) -> LinkFaults {
        match a == b {
            true => LinkFaults::default(),
            false => *self
                .link_faults
                .get(&Self::path_key(a, b))
                .unwrap_or(&self.default_faults),
        }
    }

    /// Tells the observer, if any, what a fault did to a datagram.
    pub(super) fn observe(&self, fault: Fault, from: SocketAddr, to: SocketAddr, len: usize) {
        if let Some(observer) = &self.observer {
            observer(fault, from, to, len);
        }
    }

    /// A draw from the network's generator: `true` with chance `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p)
    }

    /// A draw from the network's generator: a delay of up to `max`.
    pub(super) fn jitter(&mut self, max: Duration) -> Duration {
        match max.as_nanos() as u64 {
            0 => Duration::ZERO,
            n => Duration::from_nanos(self.rng.random_range(0..=n)),
        }
    }

    /// Whether `host` can bind `ip`: the unspecified address, its loopback, its own addresses;
    /// for UDP also a multicast group or the broadcast address (how a socket hears them).
    fn bindable(&self, host: HostId, proto: Proto, ip: IpAddr) -> bool {
        let group = match ip {
            IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
            IpAddr::V6(v6) => v6.is_multicast(),
        };
        ip.is_unspecified()
            || ip.is_loopback()
            || self.route(host, ip) == Some(host)
            || (proto == Proto::Udp && group)
    }

    fn key(host: HostId, proto: Proto, addr: SocketAddr) -> PortKey {
        PortKey {
            host,
            proto,
            v6: addr.is_ipv6(),
            port: addr.port(),
        }
    }

    /// The next free ephemeral port of `host`, in order, wrapping once.
    fn ephemeral(&mut self, host: HostId, proto: Proto, v6: bool) -> Option<u16> {
        let (first, last) = EPHEMERAL;
        let span = u32::from(last - first) + 1;
        let start = self.next_ephemeral.clamp(first, last);
        for i in 0..span {
            let port = first + ((u32::from(start - first) + i) % span) as u16;
            let key = PortKey {
                host,
                proto,
                v6,
                port,
            };
            if self.ports.get(&key).is_none_or(Vec::is_empty) {
                self.next_ephemeral = if port == last { first } else { port + 1 };
                return Some(port);
            }
        }
        None
    }

    /// Binds `addr` on `host`: `address-not-bindable` for an address the host does not have,
    /// `address-in-use` when taken (a listener's for TCP, anyone's for UDP), port 0 picks a free
    /// ephemeral port (`address-in-use` when none is left).
    pub(super) fn bind(
        this: &Arc<Mutex<World>>,
        host: HostId,
        proto: Proto,
        addr: SocketAddr,
        role: Role,
    ) -> Result<PortLease, ErrorCode> {
        let mut w = crate::sync::lock(this);
        if !w.bindable(host, proto, addr.ip()) {
            return Err(ErrorCode::AddressNotBindable);
        }
        let port = match addr.port() {
            0 => w
                .ephemeral(host, proto, addr.is_ipv6())
                .ok_or(ErrorCode::AddressInUse)?,
            p => p,
        };
        let addr = SocketAddr::new(addr.ip(), port);
        let key = Self::key(host, proto, addr);
        let holders = w.ports.entry(key).or_default();
        let taken = holders.iter().any(|h| {
            overlaps(h.ip, addr.ip())
                && match proto {
                    Proto::Tcp => matches!(h.role, Role::Listening(_)),
                    Proto::Udp => true,
                }
        });
        if taken {
            return Err(ErrorCode::AddressInUse);
        }
        w.next_lease += 1;
        let lease = w.next_lease;
        w.ports.entry(key).or_default().push(Holder {
            lease,
            ip: addr.ip(),
            role,
        });
        Ok(PortLease {
            world: this.clone(),
            key,
            id: lease,
            addr,
        })
    }

    /// What holds `to` on `host`, as `pick` takes it from a holder's role: a holder bound to
    /// exactly that address first, else one bound to the unspecified address.
    fn holder_of<T>(
        &self,
        host: HostId,
        proto: Proto,
        to: SocketAddr,
        pick: impl Fn(&Role) -> Option<T>,
    ) -> Option<T> {
        let holders = self.ports.get(&Self::key(host, proto, to))?;
        let find = |exact: bool| {
            holders
                .iter()
                .filter(|h| {
                    if exact {
                        h.ip == to.ip()
                    } else {
                        h.ip.is_unspecified()
                    }
                })
                .find_map(|h| pick(&h.role))
        };
        find(true).or_else(|| find(false))
    }

    /// The TCP listener a connection to `to` on `host` reaches.
    pub(super) fn listener(&self, host: HostId, to: SocketAddr) -> Option<Arc<tcp::ListenShared>> {
        self.holder_of(host, Proto::Tcp, to, |role| match role {
            Role::Listening(l) => l.upgrade(),
            _ => None,
        })
    }

    /// The UDP socket a datagram to `to` on `host` reaches.
    pub(super) fn udp_inbox(&self, host: HostId, to: SocketAddr) -> Option<Arc<udp::Inbox>> {
        self.holder_of(host, Proto::Udp, to, |role| match role {
            Role::Udp(inbox) => inbox.upgrade(),
            _ => None,
        })
    }
}

/// A port held on the network; released when dropped.
pub(super) struct PortLease {
    world: Arc<Mutex<World>>,
    key: PortKey,
    id: u64,
    /// The address as bound (the unspecified address stays unspecified).
    pub(super) addr: SocketAddr,
}

impl fmt::Debug for PortLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortLease({})", self.addr)
    }
}

impl PortLease {
    /// Changes what holds the port: `listen` (`address-in-use` if another listener overlaps),
    /// or a UDP socket's inbox.
    pub(super) fn set_role(&self, role: Role) -> Result<(), ErrorCode> {
        let mut w = crate::sync::lock(&self.world);
        let holders = w.ports.entry(self.key).or_default();
        if matches!(role, Role::Listening(_))
            && holders.iter().any(|h| {
                h.lease != self.id
                    && overlaps(h.ip, self.addr.ip())
                    && matches!(h.role, Role::Listening(_))
            })
        {
            return Err(ErrorCode::AddressInUse);
        }
        if let Some(h) = holders.iter_mut().find(|h| h.lease == self.id) {
            h.role = role;
        }
        Ok(())
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut w = crate::sync::lock(&self.world);
        if let Some(holders) = w.ports.get_mut(&self.key) {
            holders.retain(|h| h.lease != self.id);
            if holders.is_empty() {
                w.ports.remove(&self.key);
            }
        }
    }
}

/// A virtual socket that is neither listening nor connected: the `unbound` and `bound` states.
pub(crate) struct VSocket {
    host: VirtualHost,
    proto: Proto,
    family: Family,
    opts: VirtOptions,
    lease: std::sync::OnceLock<PortLease>,
}

impl fmt::Debug for VSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VSocket({:?} {:?} on {})",
            self.proto, self.family, self.host.name
        )
    }
}

impl VSocket {
    /// A new TCP socket on `host`.
    pub(crate) fn tcp(host: &VirtualHost, family: Family) -> Self {
        Self::new(host, Proto::Tcp, family)
    }

    /// A new UDP socket on `host`.
    pub(crate) fn udp(host: &VirtualHost, family: Family) -> Self {
        Self::new(host, Proto::Udp, family)
    }

    fn new(host: &VirtualHost, proto: Proto, family: Family) -> Self {
        VSocket {
            host: host.clone(),
            proto,
            family,
            opts: VirtOptions::default(),
            lease: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn options(&self) -> &VirtOptions {
        &self.opts
    }

    /// Binds `addr` (see [`World::bind`]); `invalid-state` when already bound.
    pub(crate) fn bind(&self, addr: SocketAddr) -> Result<(), ErrorCode> {
        if self.lease.get().is_some() {
            return Err(ErrorCode::InvalidState);
        }
        let role = match self.proto {
            Proto::Tcp => Role::Bound,
            Proto::Udp => Role::Udp(Weak::new()),
        };
        let lease = World::bind(&self.host.world, self.host.id, self.proto, addr, role)?;
        let _ = self.lease.set(lease);
        Ok(())
    }

    /// The bound address; `invalid-state` before a bind.
    pub(crate) fn local_addr(&self) -> Result<SocketAddr, ErrorCode> {
        self.lease
            .get()
            .map(|l| l.addr)
            .ok_or(ErrorCode::InvalidState)
    }

    /// Listens on the bound address (`invalid-state` unbound).
    pub(crate) fn listen(self, backlog: u32) -> Result<VListener, ErrorCode> {
        let lease = self.lease.into_inner().ok_or(ErrorCode::InvalidState)?;
        VListener::listen(lease, self.opts, backlog)
    }

    /// Starts a connect (see [`VStream::connect`]).
    pub(crate) fn connect(self, remote: SocketAddr) -> Result<VStream, ErrorCode> {
        VStream::connect(&self.host, self.lease.into_inner(), self.opts, remote)
    }

    /// The bound UDP socket, taking datagrams from now on (`invalid-state` unbound).
    pub(crate) fn into_datagram(self) -> Result<VDatagram, ErrorCode> {
        let lease = self.lease.into_inner().ok_or(ErrorCode::InvalidState)?;
        Ok(VDatagram::new(&self.host, lease, self.opts))
    }
}

/// Wakers waiting on one condition; each is woken once, when it changes.
#[derive(Default)]
pub(super) struct Wakers(Vec<Waker>);

impl Wakers {
    /// Remembers `waker` (once, however often the same task asks).
    pub(super) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    /// Wakes every waiter.
    pub(super) fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

/// The network's directory as a [`Resolver`]: every host's name, the names added with
/// [`VirtualNetwork::add_name`], and `localhost`.
struct Directory(Arc<Mutex<World>>);

impl Resolver for Directory {
    fn resolve_now(&self, name: &str) -> Option<Vec<IpAddr>> {
        let w = crate::sync::lock(&self.0);
        if w.lookups_failing {
            return None;
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return Some(vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        w.names.get(name).cloned()
    }

    /// Reached only for a name the directory lacks, or while lookups fail.
    fn resolve(&self, _name: &str) -> ResolveFuture {
        let failing = crate::sync::lock(&self.0).lookups_failing;
        Box::pin(async move {
            match failing {
                true => Err(ResolveError::Temporary),
                false => Err(ResolveError::NoSuchName),
            }
        })
    }
}
