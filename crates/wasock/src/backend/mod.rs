//! The backend seam: the only code that touches sockets.
//!
//! The state machines in `tcp`, `udp` and `lookup` use only the types of `socket` (and the
//! [`Resolver`]); each of those is the OS's (`os`: tokio's reactor over socket2 sockets) or a
//! virtual network's (`virt`: an in-process address space), as the instance's [`Net`] chose,
//! and each answers in the WIT's `error-code` whichever backend ran it.

mod os;
mod resolve;
mod socket;
mod virt;

pub use resolve::{ResolveError, ResolveFuture, Resolver, SystemResolver};
pub(crate) use socket::{Datagram, Listener, Net, NetResult, Opts, RawSocket, Stream};
pub use virt::{Fault, LinkFaults, VirtualHost, VirtualNetwork, VirtualNetworkError};

/// An instance's backend: where its sockets live and how its allowed lookups are answered.
pub(crate) struct Backend {
    pub(crate) net: Net,
    pub(crate) resolver: std::sync::Arc<dyn Resolver>,
}
