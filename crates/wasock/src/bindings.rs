//! Host bindings generated from the vendored `wasi:sockets@0.2.12` WIT (`crates/wasock/wit`).
//!
//! `wasi:io` and `wasi:clocks` are mapped to the types of `wasmtime-wasi-io` and `wasmtime-wasi`,
//! so TCP streams and every pollable are ordinary `wasi:io` resources. Each socket resource maps
//! to the state machine type that implements it.

wasmtime::component::bindgen!({
    path: "wit",
    world: "wasi:sockets/imports",
    imports: { default: trappable },
    require_store_data_send: true,
    trappable_error_type: {
        "wasi:sockets/network.error-code" => crate::error::SocketError,
    },
    with: {
        "wasi:io": wasmtime_wasi_io::bindings::wasi::io,
        "wasi:clocks/monotonic-clock": wasmtime_wasi::p2::bindings::clocks::monotonic_clock,
        "wasi:sockets/network.network": crate::network::Network,
        "wasi:sockets/tcp.tcp-socket": crate::tcp::TcpSocket,
        "wasi:sockets/udp.udp-socket": crate::udp::UdpSocket,
        "wasi:sockets/udp.incoming-datagram-stream": crate::udp::IncomingDatagramStream,
        "wasi:sockets/udp.outgoing-datagram-stream": crate::udp::OutgoingDatagramStream,
        "wasi:sockets/ip-name-lookup.resolve-address-stream": crate::lookup::ResolveAddressStream,
    },
});

pub use wasi::sockets::*;
