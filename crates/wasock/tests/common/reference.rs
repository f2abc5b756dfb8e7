//! The reference host for `tests/differential.rs`: the same compiled guest on stock
//! `wasmtime-wasi` 48 (`p2::add_to_linker_async`, with `network-error-code`), network and
//! lookups fully allowed.
//!
//! One change to stock behaviour keeps the test on the machine: a name the reference would
//! look up in DNS is looked up as `localhost` instead (see [`no_dns`]).

use std::sync::{Arc, OnceLock};

use wasmtime::Store;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{Host as _, ResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, Network};
use wasmtime_wasi::p2::bindings::{CommandPre, LinkOptions};
use wasmtime_wasi::sockets::WasiSocketsView as _;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use super::{GuestIo, Outcome, Running, engine};

/// Store data of a reference run.
pub struct Reference {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Reference {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// The version of `wasi:sockets` that `wasmtime-wasi` 48 defines; the linker serves every
/// other 0.2.x import from it.
const LOOKUP_INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// Stock `wasmtime-wasi` for all of WASI 0.2, with `resolve-addresses` passing every name
/// through [`no_dns`] first.
pub fn reference_linker() -> Arc<Linker<Reference>> {
    static LINKER: OnceLock<Arc<Linker<Reference>>> = OnceLock::new();
    LINKER
        .get_or_init(|| {
            let mut linker: Linker<Reference> = Linker::new(engine());
            // `add_to_linker_async`, plus the `@unstable` `network-error-code` that wasock
            // also provides (the raw guests import it).
            let mut options = LinkOptions::default();
            options.network_error_code(true);
            wasmtime_wasi::p2::add_to_linker_with_options_async(&mut linker, &options)
                .expect("add_to_linker_with_options_async");
            linker.allow_shadowing(true);
            linker
                .instance(LOOKUP_INTERFACE)
                .expect("the lookup interface")
                .func_wrap(
                    "resolve-addresses",
                    |mut store, (network, name): (Resource<Network>, String)| {
                        let r = store
                            .data_mut()
                            .sockets()
                            .resolve_addresses(network, no_dns(name));
                        type Answer = Result<Resource<ResolveAddressStream>, ErrorCode>;
                        let answer: Answer = match r {
                            Ok(stream) => Ok(stream),
                            Err(e) => Err(e.downcast()?),
                        };
                        Ok((answer,))
                    },
                )
                .expect("shadowing resolve-addresses");
            Arc::new(linker)
        })
        .clone()
}

/// The name the reference is asked to resolve instead of `name`. IP literals, `localhost`
/// (answered from the hosts file) and names the reference rejects as invalid (it parses them
/// with `url::Host::parse` before any lookup) pass unchanged. Any other name would go to the
/// DNS server in `/etc/resolv.conf`; the reference is asked for `localhost` instead:
/// - for a name under `.localhost` that is the answer RFC 6761 asks of a resolver (and the
///   one wasock gives);
/// - the guests look up no other real name (they stay on loopback): the other names are
///   ones a syntax check should reject, where only whether the reference accepts the name
///   matters, and it decides that before any lookup.
///
/// (A name the resolver rejects at once would not do: the reference reports a lookup that
/// fails before it first looks from `resolve-addresses`, else from `resolve-next-address`,
/// so the answer would depend on timing.)
pub fn no_dns(name: String) -> String {
    match url::Host::parse(&name) {
        Ok(url::Host::Domain(domain)) if domain != "localhost" => "localhost".to_string(),
        _ => name,
    }
}

/// Starts the guest at `path` on the reference with `args` (argv[0] is the guest's name)
/// and the environment `env`.
pub fn spawn_reference(path: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut io = GuestIo::new(path, args, env);
    let ctx = io
        .wasi
        .inherit_network()
        .allow_tcp(true)
        .allow_udp(true)
        .allow_ip_name_lookup(true)
        .build();
    let state = Reference {
        ctx,
        table: ResourceTable::new(),
    };
    let (linker, component) = (reference_linker(), io.component.clone());
    io.running(async move {
        // What `wasock::run_command` does, with this store type.
        let pre = match linker.instantiate_pre(&component).and_then(CommandPre::new) {
            Ok(pre) => pre,
            Err(e) => return Outcome::Error(format!("cannot instantiate: {e:?}")),
        };
        let mut store = Store::new(engine(), state);
        // The engine has epoch interruption on: the same time slices as wasock's runs.
        wasock::time_slices(&mut store);
        let command = match pre.instantiate_async(&mut store).await {
            Ok(c) => c,
            Err(e) => return Outcome::Error(format!("cannot instantiate: {e:?}")),
        };
        match command.wasi_cli_run().call_run(&mut store).await {
            Ok(Ok(())) => Outcome::Exit(0),
            Ok(Err(())) => Outcome::Exit(1),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Outcome::Exit(exit.0),
                None => Outcome::Trap(format!("{e:?}")),
            },
        }
    })
}
