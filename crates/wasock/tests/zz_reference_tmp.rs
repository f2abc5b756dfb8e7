// TEMPORARY: run guests on wasmtime-wasi's own sockets for comparison. Not to commit.
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

struct S {
    ctx: WasiCtx,
    table: ResourceTable,
}
impl WasiView for S {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

async fn run(engine: &Engine, path: &str, args: &[&str]) -> (String, String, String) {
    let mut linker = Linker::<S>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    let c = Component::from_file(engine, path).unwrap();
    let out = MemoryOutputPipe::new(1 << 20);
    let err = MemoryOutputPipe::new(1 << 20);
    let mut argv = vec!["g".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let ctx = WasiCtx::builder()
        .args(&argv)
        .stdout(out.clone())
        .stderr(err.clone())
        .inherit_network()
        .allow_ip_name_lookup(true)
        .build();
    let mut store = Store::new(
        engine,
        S {
            ctx,
            table: ResourceTable::new(),
        },
    );
    let cmd = Command::instantiate_async(&mut store, &c, &linker)
        .await
        .unwrap();
    let r = match cmd.wasi_cli_run().call_run(&mut store).await {
        Ok(r) => format!("{r:?}"),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(x) => format!("exit {}", x.0),
            None => format!("trap {e:?}"),
        },
    };
    (
        r,
        String::from_utf8_lossy(&out.contents()).into(),
        String::from_utf8_lossy(&err.contents()).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference() {
    let engine = Engine::new(&Config::new()).unwrap();
    let which = std::env::var("REF_GUESTS").unwrap_or_default();
    for (name, path) in wasock_guests::all() {
        if !which.split(',').any(|w| w == *name) {
            continue;
        }
        if *name == "std-echo-server" {
            let e2 = engine.clone();
            let srv = tokio::spawn(async move {
                run(
                    &e2,
                    wasock_guests::STD_ECHO_SERVER,
                    &["127.0.0.1:45678", "1"],
                )
                .await
            });
            tokio::time::sleep(Duration::from_secs(2)).await;
            let cl = run(
                &engine,
                wasock_guests::STD_ECHO_CLIENT,
                &["127.0.0.1:45678", "hello", "world"],
            )
            .await;
            println!("client: {cl:#?}");
            println!("server: {:#?}", srv.await.unwrap());
            continue;
        }
        let r = run(&engine, path, &[]).await;
        println!("=== {name}: {r:#?}");
    }
}
