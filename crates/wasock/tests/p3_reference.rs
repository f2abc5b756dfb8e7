//! The WASI 0.3 TCP conformance guest on the reference host.

mod common;

use common::reference_p3::run_reference_p3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_tcp_on_reference() {
    let r = run_reference_p3(wasock_guests::RAW_P3_TCP, &[], &[("GUEST_CHECK_LOG", "1")]).await;
    println!("{r}");
}
