//! Linking follows Wasmtime: `wasock::add_wasi_to_linker` links every interface `wasmtime-wasi`
//! links (the whole world of its own WIT, read here, not listed), and the socket interfaces in
//! it are wasock's.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime::component::{Linker, ResourceType};
use wasock::audit::AuditEvent;
use wasock::{StoreState, WasockCtx};
use wit_parser::{Resolve, TypeDefKind, TypeOwner, WorldItem};

/// The directory of `wasmtime-wasi`'s WIT (its `bindgen!` reads it), found through
/// `cargo metadata` so that it is the version in Cargo.lock.
fn wasmtime_wasi_wit(version: &str) -> PathBuf {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            // The lock's versions; the network only for a package not yet downloaded.
            "--locked",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let manifest = meta["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "wasmtime-wasi"))
        .and_then(|p| p["manifest_path"].as_str())
        .expect("wasmtime-wasi in cargo metadata");
    PathBuf::from(manifest)
        .parent()
        .expect("a manifest has a directory")
        .join(format!("src/{version}/wit"))
}

/// One named item of an imported interface: a function or a resource type.
#[derive(Debug)]
enum Item {
    Func(String),
    Resource(String),
}

/// Every item of every interface the world of `wasmtime-wasi`'s WIT imports, by interface
/// name (`wasi:io/poll@0.2.12`): its p2 `bindings` world, or its p3 `wasi:cli/command` one.
fn wasmtime_wasi_imports(version: &str) -> Vec<(String, Item)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wasmtime_wasi_wit(version))
        .expect("wasmtime-wasi's WIT parses");
    let world = match version {
        "p2" => resolve.select_world(&[package], Some("bindings")),
        _ => resolve.select_world(&[package], Some("wasi:cli/command@0.3.0")),
    }
    .expect("wasmtime-wasi's WIT has the world its bindgen! reads");
    let mut items = Vec::new();
    for import in resolve.worlds[world].imports.values() {
        let WorldItem::Interface { id, .. } = import else {
            continue;
        };
        let name = resolve.id_of(*id).expect("a named interface");
        let interface = &resolve.interfaces[*id];
        for func in interface.functions.keys() {
            items.push((name.clone(), Item::Func(func.clone())));
        }
        for ty in interface.types.values() {
            let ty = &resolve.types[*ty];
            if matches!(ty.kind, TypeDefKind::Resource) && ty.owner == TypeOwner::Interface(*id) {
                let resource = ty.name.clone().expect("a resource has a name");
                items.push((name.clone(), Item::Resource(resource)));
            }
        }
    }
    items
}

/// A resource type of the probe's own, never defined by anyone.
struct Probe;

/// Whether `linker` defines `item` in the instance `interface`: defining it again, shadowing
/// off, fails exactly when it is there.
fn defines<T: 'static>(linker: &Linker<T>, interface: &str, item: &Item) -> bool {
    let mut probe = linker.clone();
    probe.allow_shadowing(false);
    let Ok(mut instance) = probe.instance(interface) else {
        return false;
    };
    match item {
        Item::Func(name) => instance.func_new(name, |_, _, _, _| Ok(())).is_err(),
        Item::Resource(name) => instance
            .resource(name, ResourceType::host::<Probe>(), |_, _| Ok(()))
            .is_err(),
    }
}

/// WASI 0.3 too: every interface `wasmtime-wasi`'s p3 links, wasock's linker links.
#[test]
fn every_0_3_interface_wasmtime_wasi_links_is_linked() {
    let imports = wasmtime_wasi_imports("p3");
    let interfaces: BTreeSet<&str> = imports.iter().map(|(i, _)| i.as_str()).collect();
    assert!(
        interfaces.contains("wasi:sockets/types@0.3.0")
            && interfaces.contains("wasi:sockets/ip-name-lookup@0.3.0"),
        "wasmtime-wasi's p3 world looks incomplete: {interfaces:?}"
    );
    let wasock = common::linker();
    for (interface, item) in &imports {
        assert!(
            defines(&wasock, interface, item),
            "wasock's linker lacks {interface} {item:?}, which wasmtime-wasi's p3 links"
        );
    }
}

#[test]
fn every_interface_wasmtime_wasi_links_is_linked() {
    let imports = wasmtime_wasi_imports("p2");
    let interfaces: BTreeSet<&str> = imports.iter().map(|(i, _)| i.as_str()).collect();
    assert!(
        interfaces.len() >= 25 && interfaces.contains("wasi:sockets/tcp@0.2.12"),
        "wasmtime-wasi's world looks incomplete: {interfaces:?}"
    );
    let mut reference = Linker::<StoreState>::new(common::engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut reference).unwrap();
    let wasock = common::linker();
    let absent = Item::Func("no-such-function".into());
    assert!(
        !defines(&reference, "wasi:io/poll@0.2.12", &absent),
        "the probe finds what is not there"
    );
    for (interface, item) in &imports {
        // The probe sees what wasmtime-wasi's own linker has, so its answer for wasock's counts.
        assert!(
            defines(&reference, interface, item),
            "wasmtime-wasi's linker lacks {interface} {item:?}"
        );
        assert!(
            defines(&wasock, interface, item),
            "wasock's linker lacks {interface} {item:?}, which wasmtime-wasi links"
        );
    }
}

/// The socket interfaces answer through wasock: with `wasmtime-wasi`'s context left at its
/// default (no network), the conformance guests pass only if wasock serves them, and wasock's
/// audit trail sees their sockets and lookups. A `wasmtime-wasi` function left among wasock's
/// would trap on wasock's resources, so one pass per interface family covers all seven.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_interfaces_are_wasocks() {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    for guest in [
        wasock_guests::RAW_TCP,
        wasock_guests::RAW_UDP,
        wasock_guests::RAW_LOOKUP,
    ] {
        let record = seen.clone();
        let ctx = WasockCtx::builder()
            .allow_all_network(true)
            .allow_ip_name_lookup(true)
            .audit(move |e: &AuditEvent<'_>| {
                let proto = e.proto.map(|p| format!(" {p}")).unwrap_or_default();
                record.lock().unwrap().insert(format!("{}{proto}", e.op));
            })
            .build();
        common::run(guest, &[], ctx).await.assert_passed_count();
    }
    let seen = seen.lock().unwrap();
    for op in ["create tcp", "connect tcp", "create udp", "resolve"] {
        assert!(seen.contains(op), "wasock's audit never saw {op}: {seen:?}");
    }
}

/// The 0.3 sockets answer through wasock too: with `wasmtime-wasi`'s context at its default
/// (no network), the 0.3 guest passes only because wasock serves it, and wasock's audit sees
/// its binds, connects, listens and accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_0_3_socket_interfaces_are_wasocks() {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let record = seen.clone();
    let ctx = WasockCtx::builder()
        .allow_all_network(true)
        .audit(move |e: &AuditEvent<'_>| {
            let proto = e.proto.map(|p| format!(" {p}")).unwrap_or_default();
            record.lock().unwrap().insert(format!("{}{proto}", e.op));
        })
        .build();
    common::run(wasock_guests::RAW_P3_TCP, &[], ctx)
        .await
        .assert_passed_count();
    let seen = seen.lock().unwrap();
    for op in [
        "create tcp",
        "bind tcp",
        "connect tcp",
        "listen tcp",
        "accept tcp",
    ] {
        assert!(seen.contains(op), "wasock's audit never saw {op}: {seen:?}");
    }
}
