//! The guests in this package import older `wasi:sockets` versions (0.2.0, 0.2.1) on
//! purpose. wasm-component-ld normally merges imports of semver-compatible versions
//! into the newest one it sees (Rust std imports wasi:* 0.2.x too), which would hide
//! the old version from the host; turn that off so the component really imports it.

fn main() {
    println!("cargo:rustc-link-arg=--merge-imports-based-on-semver=false");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../wit/0.2.0");
    println!("cargo:rerun-if-changed=../wit/0.2.1");
}
