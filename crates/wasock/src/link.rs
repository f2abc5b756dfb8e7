//! Linking: wasock's sockets alone, or all of WASI 0.2 with `wasmtime-wasi` for the rest (its
//! full set, then wasock's sockets over its own: no list of interfaces to keep).
//!
//! Definitions are made at `@0.2.12` and `@0.3.0`; Wasmtime's linker satisfies imports of any
//! `0.2.x` (or `0.3.x`) from them by semver, so guests built against 0.2.0 … 0.2.12 all link,
//! 0.3 guests beside them, and a component importing both versions too.

use crate::ctx::{WasockIo, WasockSockets, WasockView, io_view};
use crate::{bindings, bindings_p3};
use wasmtime::component::Linker;
use wasmtime_wasi::WasiView;

/// Adds the `wasi:sockets` interfaces, implemented by wasock, to `linker`: 0.2's seven and,
/// when the engine has concurrency support (Wasmtime's default), 0.3's `types` and
/// `ip-name-lookup`.
///
/// The store's data gives wasock its context through [`WasockView`]. The `wasi:io` resources
/// wasock hands out (streams, pollables) need `wasi:io` from the same linker, e.g. through
/// [`add_wasi_to_linker`] or `wasmtime_wasi_io::add_to_linker_async`.
pub fn add_to_linker<T: WasockView + Send + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    let mut net_opts = bindings::network::LinkOptions::default();
    net_opts.network_error_code(true);
    bindings::network::add_to_linker::<T, WasockSockets>(linker, &net_opts, T::sockets)?;
    bindings::instance_network::add_to_linker::<T, WasockSockets>(linker, T::sockets)?;
    bindings::ip_name_lookup::add_to_linker::<T, WasockSockets>(linker, T::sockets)?;
    bindings::tcp::add_to_linker::<T, WasockSockets>(linker, T::sockets)?;
    bindings::tcp_create_socket::add_to_linker::<T, WasockSockets>(linker, T::sockets)?;
    bindings::udp::add_to_linker::<T, WasockSockets>(linker, T::sockets)?;
    bindings::udp_create_socket::add_to_linker::<T, WasockSockets>(linker, T::sockets)?;
    if linker.engine().get_concurrency_support() {
        bindings_p3::types::add_to_linker::<T, WasockSockets>(linker, T::sockets)?;
        bindings_p3::ip_name_lookup::add_to_linker::<T, WasockSockets>(linker, T::sockets)?;
    }
    Ok(())
}

/// Adds all of WASI 0.2 and 0.3 (0.3 when the engine has concurrency support, Wasmtime's
/// default; see [`compile_component`](crate::compile_component)) to `linker`: `wasmtime-wasi`'s whole sets
/// (`wasmtime_wasi::p2::add_to_linker_async`, `wasmtime_wasi::p3::add_to_linker`), then
/// wasock's `wasi:sockets` of both versions in place of its sockets, so every interface a
/// Wasmtime release links is there and the sockets are wasock's.
/// `wasi:io/poll` and `wasi:io/streams` are wasock's too: the same resources, with its TCP
/// streams' pollables answered from the host's own readiness.
///
/// The engine needs async support. Shadowing is turned on for wasock's definitions and off
/// again afterwards (the [`Linker`] default); set it after this call if you want it on.
pub fn add_wasi_to_linker<T: WasiView + WasockView + Send + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    if linker.engine().get_concurrency_support() {
        wasmtime_wasi::p3::add_to_linker(linker)?;
    }
    linker.allow_shadowing(true);
    let sockets = add_to_linker(linker).and_then(|()| add_io_to_linker(linker));
    linker.allow_shadowing(false);
    sockets
}

/// `wasi:io/poll` and `wasi:io/streams` over the same table: `wasmtime-wasi-io`'s for every
/// resource, with wasock's TCP stream pollables answered from the state the host holds.
fn add_io_to_linker<T: WasockView + Send + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi_io::bindings::wasi::io::{poll, streams};
    poll::add_to_linker::<T, WasockIo>(linker, io_view::<T>)?;
    streams::add_to_linker::<T, WasockIo>(linker, io_view::<T>)?;
    Ok(())
}
