//! Binding glue: one file per WIT interface and version (`p3_*`: `@0.3`). Each converts types, looks resources up in the
//! table, and delegates to the state machine that implements the function.

/// The address conversions of one WIT version, made in the module that invokes it from the
/// types it has in scope (`IpAddressFamily`, `IpAddress`, `IpSocketAddress`,
/// `Ipv4SocketAddress`, `Ipv6SocketAddress`: the same shapes in 0.2 and 0.3): `Family` both
/// ways, and `to_std`, `from_std`, `ip_from_std`, all lossless.
macro_rules! address_conversions {
    () => {
        impl From<IpAddressFamily> for crate::addr::Family {
            fn from(f: IpAddressFamily) -> Self {
                match f {
                    IpAddressFamily::Ipv4 => crate::addr::Family::Ipv4,
                    IpAddressFamily::Ipv6 => crate::addr::Family::Ipv6,
                }
            }
        }

        impl From<crate::addr::Family> for IpAddressFamily {
            fn from(f: crate::addr::Family) -> Self {
                match f {
                    crate::addr::Family::Ipv4 => IpAddressFamily::Ipv4,
                    crate::addr::Family::Ipv6 => IpAddressFamily::Ipv6,
                }
            }
        }

        /// This version's socket address as the core's `SocketAddr`.
        pub(super) fn to_std(addr: IpSocketAddress) -> std::net::SocketAddr {
            use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
            match addr {
                IpSocketAddress::Ipv4(a) => {
                    let (x, y, z, w) = a.address;
                    SocketAddrV4::new(Ipv4Addr::new(x, y, z, w), a.port).into()
                }
                IpSocketAddress::Ipv6(a) => {
                    let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
                    let ip = Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7);
                    SocketAddrV6::new(ip, a.port, a.flow_info, a.scope_id).into()
                }
            }
        }

        /// The core's `SocketAddr` as this version's socket address.
        pub(super) fn from_std(addr: std::net::SocketAddr) -> IpSocketAddress {
            match addr {
                std::net::SocketAddr::V4(a) => {
                    let [x, y, z, w] = a.ip().octets();
                    IpSocketAddress::Ipv4(Ipv4SocketAddress {
                        port: a.port(),
                        address: (x, y, z, w),
                    })
                }
                std::net::SocketAddr::V6(a) => {
                    let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
                    IpSocketAddress::Ipv6(Ipv6SocketAddress {
                        port: a.port(),
                        flow_info: a.flowinfo(),
                        address: (s0, s1, s2, s3, s4, s5, s6, s7),
                        scope_id: a.scope_id(),
                    })
                }
            }
        }

        /// An IP address as this version's `ip-address`.
        pub(super) fn ip_from_std(ip: std::net::IpAddr) -> IpAddress {
            match ip {
                std::net::IpAddr::V4(v4) => {
                    let [x, y, z, w] = v4.octets();
                    IpAddress::Ipv4((x, y, z, w))
                }
                std::net::IpAddr::V6(v6) => {
                    let [s0, s1, s2, s3, s4, s5, s6, s7] = v6.segments();
                    IpAddress::Ipv6((s0, s1, s2, s3, s4, s5, s6, s7))
                }
            }
        }
    };
}
use address_conversions;

mod instance_network;
mod io_poll;
mod io_streams;
mod ip_name_lookup;
mod network;
mod p3_ip_name_lookup;
mod p3_types;
mod p3_types_tcp;
mod p3_types_udp;
mod tcp;
mod tcp_create_socket;
mod udp;
mod udp_create_socket;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi_io::poll::{DynPollable, Pollable, subscribe};

/// A `pollable` that owns what it waits on, so it is no child of the socket that made it: the
/// WIT ties socket pollables to nothing, and a guest may drop the socket first.
fn detached_pollable(
    table: &mut ResourceTable,
    waiter: impl Pollable,
) -> wasmtime::Result<Resource<DynPollable>> {
    let owner = table.push(waiter)?;
    subscribe(table, owner)
}
