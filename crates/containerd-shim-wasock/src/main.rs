//! `containerd-shim-wasock-v1`: containerd's runtime `io.containerd.wasock.v1`. It runs a
//! container's WebAssembly component as `wasock run` does (all of WASI 0.2 through
//! wasmtime-wasi, sockets through wasock) under the policy of the container's annotations, on
//! runwasi's engine-neutral shim library (`containerd-shim-wasm`), which does the containerd
//! side: the task API, the container's namespaces and cgroups, its image's wasm layers.

mod bundle;
mod sandbox;
mod settings;

use containerd_shim_wasm::shim::{Cli, Compiler, Config, Shim, Version, version};
use sandbox::{Precompiler, WasockSandbox};

/// The shim, as runwasi's library knows it: its name, its sandbox and its precompiler.
struct WasockShim;

impl Shim for WasockShim {
    type Sandbox = WasockSandbox;

    fn name() -> &'static str {
        "wasock"
    }

    fn version() -> Version {
        version!()
    }

    /// Components of an image's wasm layers are compiled once, in the shim, and kept in
    /// containerd's content store, so that the next start of the image does not compile again.
    async fn compiler() -> Option<impl Compiler> {
        Precompiler::new()
    }
}

/// Rule: the annotations are read before runwasi's library forks anything, so that every
/// container process inherits them.
fn main() {
    if let Ok(dir) = std::env::current_dir() {
        bundle::remember(&dir);
    }
    WasockShim::run(Config::default());
}
