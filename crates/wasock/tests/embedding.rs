//! The library as an embedder meets it: nothing process-wide starts unless asked, and the
//! embedder's own epoch deadlines apply to the stores they run guests in.
//!
//! No `common` here: its engine turns on time slices for every guest, as the CLI does.

use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasock::{RunError, StoreState, WasockCtx};

/// Threads of this process named like wasock's epoch ticker.
fn tickers() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|name| name.trim_end() == "wasock-ticker")
        })
        .count()
}

/// Waits (bounded) until `tickers() == n`; returns whether it got there.
fn wait_for_tickers(n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while tickers() != n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// `std-cli` in a fresh store on `engine`, its stdout captured.
fn std_cli_store(engine: &Engine, args: &[&str]) -> (Store<StoreState>, MemoryOutputPipe) {
    let stdout = MemoryOutputPipe::new(1 << 16);
    let mut wasi = WasiCtx::builder();
    wasi.arg("std-cli").args(args).stdout(stdout.clone());
    let state = StoreState::new(wasi.build(), WasockCtx::builder().build());
    (Store::new(engine, state), stdout)
}

fn linker(engine: &Engine) -> Linker<StoreState> {
    let mut linker = Linker::new(engine);
    wasock::add_wasi_to_linker(&mut linker).unwrap();
    linker
}

#[tokio::test(flavor = "current_thread")]
async fn no_ticker_runs_unless_asked() {
    let engine = Engine::new(&wasock::engine_config()).unwrap();
    let linker = linker(&engine);
    let component = Component::from_file(&engine, wasock_guests::STD_CLI).unwrap();
    let (mut store, stdout) = std_cli_store(&engine, &["hello"]);
    let code = wasock::run_command(&mut store, &linker, &component).await;
    assert_eq!(code.unwrap(), 0);
    let out = String::from_utf8_lossy(&stdout.contents()).into_owned();
    assert!(out.contains("args: hello"), "{out}");
    assert_eq!(tickers(), 0, "run_command started a ticker thread");

    // Asked for, the ticker runs while its engine lives: the check above can see it.
    let mut config = wasock::engine_config();
    config.epoch_interruption(true);
    let sliced = Engine::new(&config).unwrap();
    let (mut store, _) = std_cli_store(&sliced, &[]);
    wasock::time_slices(&mut store);
    assert!(wait_for_tickers(1), "time_slices started no ticker thread");
    drop(store);
    drop(sliced);
    assert!(wait_for_tickers(0), "the ticker outlived its engine");
}

/// An embedder's own epoch deadline (here: trap at the next epoch check) is what the guest
/// meets: `run_command` leaves the store's deadline as the embedder set it.
#[tokio::test(flavor = "current_thread")]
async fn the_embedders_epoch_deadline_applies() {
    let mut config = wasock::engine_config();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let linker = linker(&engine);
    let component = Component::from_file(&engine, wasock_guests::STD_CLI).unwrap();
    let (mut store, _) = std_cli_store(&engine, &[]);
    store.set_epoch_deadline(1);
    store.epoch_deadline_trap();
    engine.increment_epoch();
    // The trap comes at the first epoch check, during instantiation: still the guest's trap.
    match wasock::run_command(&mut store, &linker, &component).await {
        Err(RunError::Trap(e)) => assert_eq!(
            e.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::Interrupt),
            "not the epoch interrupt: {e:?}"
        ),
        other => panic!("expected the embedder's epoch trap, got {other:?}"),
    }
}
