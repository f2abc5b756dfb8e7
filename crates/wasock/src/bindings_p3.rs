//! Host bindings generated from the vendored `wasi:sockets@0.3.0` WIT (`crates/wasock/wit-0.3`).
//!
//! Each socket resource maps to the same state machine type as in 0.2 (one core, two faces).
//! Functions the host answers at once are plain calls; `connect`, the UDP `send`/`receive` and
//! `resolve-addresses` (the WIT's `async func`s) run as host tasks with the store's accessor, and
//! `listen`, `send`, `receive` reach the store to make their streams and futures.

wasmtime::component::bindgen!({
    path: "wit-0.3",
    world: "wasi:sockets/imports",
    imports: {
        "wasi:sockets/types.[method]tcp-socket.listen": store | trappable,
        "wasi:sockets/types.[method]tcp-socket.send": store | trappable,
        "wasi:sockets/types.[method]tcp-socket.receive": store | trappable,
        default: trappable,
    },
    require_store_data_send: true,
    trappable_error_type: {
        "wasi:sockets/types.error-code" => crate::error::SocketError,
    },
    with: {
        "wasi:clocks/types": wasmtime_wasi::p3::bindings::clocks::types,
        "wasi:sockets/types.tcp-socket": crate::tcp::TcpSocket,
        "wasi:sockets/types.udp-socket": crate::udp::UdpSocket,
    },
});

pub(crate) use wasi::sockets::*;
