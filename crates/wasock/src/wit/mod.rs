//! Binding glue: one file per WIT interface and version (`p3_*`: `@0.3`). Each converts types, looks resources up in the
//! table, and delegates to the state machine that implements the function.

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
