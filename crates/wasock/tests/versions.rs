//! Guests importing older `wasi:sockets` 0.2.x versions must link against wasock and
//! work. Each test first checks which version the component really imports.

mod common;

use common::{allow_all, component, engine, run};

/// The names of the component's imports (e.g. `wasi:sockets/udp@0.2.1`).
fn imports(path: &str) -> Vec<String> {
    component(path)
        .component_type()
        .imports(engine())
        .map(|(name, _)| name.to_string())
        .collect()
}

#[track_caller]
fn assert_imports(path: &str, want: &str) {
    let names = imports(path);
    assert!(
        names.iter().any(|n| n == want),
        "{path} does not import {want}; it imports: {names:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_v021() {
    assert_imports(wasock_guests::UDP_V021, "wasi:sockets/udp@0.2.1");
    assert_imports(
        wasock_guests::UDP_V021,
        "wasi:sockets/udp-create-socket@0.2.1",
    );
    let r = run(wasock_guests::UDP_V021, &[], allow_all()).await;
    r.assert_passed_count();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_v020() {
    assert_imports(wasock_guests::TCP_V020, "wasi:sockets/tcp@0.2.0");
    assert_imports(wasock_guests::TCP_V020, "wasi:io/streams@0.2.0");
    let r = run(wasock_guests::TCP_V020, &[], allow_all()).await;
    r.assert_passed_count();
}

/// The raw guests import the vendored version, 0.2.12.
#[test]
fn raw_guests_import_0_2_12() {
    assert_imports(wasock_guests::RAW_TCP, "wasi:sockets/tcp@0.2.12");
    assert_imports(wasock_guests::RAW_UDP, "wasi:sockets/udp@0.2.12");
    assert_imports(
        wasock_guests::RAW_LOOKUP,
        "wasi:sockets/ip-name-lookup@0.2.12",
    );
}
