//! Linking: wasock's sockets alone, or all of WASI 0.2 with `wasmtime-wasi` for the rest.
//!
//! Definitions are made at `@0.2.12`; Wasmtime's linker satisfies imports of any `0.2.x` from
//! them by semver, so guests built against 0.2.0 … 0.2.12 all link.

use crate::bindings;
use crate::ctx::{WasockSockets, WasockView};
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::random::WasiRandom;

/// Adds the seven `wasi:sockets` interfaces, implemented by wasock, to `linker`.
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
    Ok(())
}

/// Adds all of WASI 0.2 (`wasi:cli/imports`) to `linker`: wasock for `wasi:sockets`,
/// `wasmtime-wasi` for every other interface. The engine needs async support.
pub fn add_wasi_to_linker<T: WasiView + WasockView + Send + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
    use wasmtime_wasi_io::bindings::wasi::io;

    let l = &mut *linker;
    io::error::add_to_linker::<T, Table>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<T, Table>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<T, Table>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    add_to_linker(linker)
}

/// [`HasData`] for the `wasi:io` interfaces, which need only the resource table.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}
