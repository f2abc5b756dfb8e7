//! tokio: a current-thread runtime (one thread, like the guest) and `tokio::net`, adapted to
//! hyper by `hyper_util::rt::TokioIo`. The host's build, and the guest's with the `tokio`
//! feature: the same code on both, as a tokio application is written.

use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::net::SocketAddrV4;
use std::time::Duration;

pub(crate) type Io = TokioIo<tokio::net::TcpStream>;

/// This build's executor is tokio's. The host's build also takes the guest builds' names
/// (`wstd`, `batch`), so that the harness gives the native server the guest's command line.
pub(crate) fn set_executor(name: &str) -> Result<(), String> {
    match name {
        "tokio" => Ok(()),
        "wstd" | "batch" if cfg!(not(target_os = "wasi")) => Ok(()),
        other => Err(format!(
            "unknown executor `{other}` (this build runs tokio)"
        )),
    }
}

/// Runs `fut` to completion on a current-thread runtime.
pub(crate) fn run(fut: impl Future<Output = ()>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-http: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(fut);
}

/// Runs `fut` as a detached task.
pub(crate) fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    drop(tokio::spawn(fut));
}

pub(crate) async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// A listening socket (tokio's backlog: 1024, as the guest asks for).
pub(crate) struct Listener(tokio::net::TcpListener);

impl Listener {
    pub(crate) async fn bind(addr: SocketAddrV4) -> io::Result<Listener> {
        Ok(Listener(tokio::net::TcpListener::bind(addr).await?))
    }

    /// The next connection, with Nagle off as wasock sets it on every connected socket (WASI
    /// has no such option: there the host decides).
    pub(crate) async fn accept(&self) -> io::Result<Io> {
        let (stream, _) = self.0.accept().await?;
        #[cfg(not(target_os = "wasi"))]
        stream.set_nodelay(true)?;
        Ok(TokioIo::new(stream))
    }
}
