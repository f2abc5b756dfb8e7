//! The backend seam: the only code that touches real sockets.
//!
//! The state machines in `tcp`, `udp` and `lookup` use only the types re-exported here. Today
//! they are the OS's (tokio's reactor over socket2 sockets); a virtual in-process network
//! replaces this one module.

mod hosts;
mod os;

pub(crate) use hosts::lookup as resolve_local;
pub(crate) use os::{Datagram, Listener, Options, RawSocket, Stream, resolve};
