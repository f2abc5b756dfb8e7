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

/// A WASI 0.2 command compiles on an engine without Wasmtime's concurrency support, where
/// `add_wasi_to_linker` links 0.2 only, and runs there.
#[tokio::test(flavor = "current_thread")]
async fn a_0_2_command_compiles_without_concurrency_and_runs() {
    let bytes = std::fs::read(wasock_guests::STD_CLI).unwrap();
    let (engine, component) = wasock::compile_component(&wasock::engine_config(), &bytes).unwrap();
    assert!(!engine.get_concurrency_support());
    let linker = linker(&engine);
    let (mut store, stdout) = std_cli_store(&engine, &["plain"]);
    let code = wasock::run_command(&mut store, &linker, &component).await;
    assert_eq!(code.unwrap(), 0);
    let out = String::from_utf8_lossy(&stdout.contents()).into_owned();
    assert!(out.contains("args: plain"), "{out}");
}

/// A WASI 0.3 command (async imports, `wasi:cli/run@0.3.0`) compiles on an engine with
/// concurrency support and runs its checks there, 0.3 linked by the same call.
#[tokio::test(flavor = "current_thread")]
async fn a_0_3_command_compiles_with_concurrency_and_runs() {
    let bytes = std::fs::read(wasock_guests::RAW_P3_LOOKUP).unwrap();
    let (engine, component) = wasock::compile_component(&wasock::engine_config(), &bytes).unwrap();
    assert!(engine.get_concurrency_support());
    let linker = linker(&engine);
    let stdout = MemoryOutputPipe::new(1 << 16);
    let mut wasi = WasiCtx::builder();
    wasi.arg("raw-p3-lookup").stdout(stdout.clone());
    let sockets = WasockCtx::builder()
        .allow_all_network(true)
        .allow_ip_name_lookup(true)
        .build();
    let mut store = Store::new(&engine, StoreState::new(wasi.build(), sockets));
    let code = wasock::run_command(&mut store, &linker, &component).await;
    let out = String::from_utf8_lossy(&stdout.contents()).into_owned();
    assert_eq!(code.unwrap(), 0, "{out}");
    assert!(
        out.contains("raw-p3-lookup: ") && out.contains("checks passed"),
        "{out}"
    );
}

/// A configuration that asks for the async ABI itself keeps concurrency (without it the
/// configuration is not valid); bytes that are no component say so, as a component error.
#[test]
fn compile_component_keeps_the_embedders_choice_and_names_bad_input() {
    let bytes = std::fs::read(wasock_guests::STD_CLI).unwrap();
    let mut config = wasock::engine_config();
    config.wasm_component_model_async(true);
    let (engine, _) = wasock::compile_component(&config, &bytes).unwrap();
    assert!(engine.get_concurrency_support());

    match wasock::compile_component(&wasock::engine_config(), b"\0asm not a component") {
        Err(e @ wasock::CompileError::Component(_)) => {
            assert!(e.to_string().starts_with("not a valid component: "), "{e}");
        }
        other => panic!("expected a component error, got {:?}", other.map(|_| ())),
    }
}
