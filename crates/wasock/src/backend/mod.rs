//! The backend seam: the only code that touches real sockets.
//!
//! The state machines in `tcp`, `udp` and `lookup` use only the types re-exported here. Today
//! they are the OS's (tokio's reactor over socket2 sockets); a virtual in-process network
//! replaces this one module.

mod datagram;
mod hosts;
mod os;
mod resolve;

pub(crate) use datagram::Datagram;
pub(crate) use os::{Listener, Options, RawSocket, Stream};
pub use resolve::{ResolveError, ResolveFuture, Resolver, SystemResolver};
