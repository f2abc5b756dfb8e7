//! On `wasm32-wasip2`, links `wasi-libc-fix`'s `fcntl` in front of wasi-libc's
//! (`--wrap=fcntl`): see that crate for why tokio needs it on this toolchain.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "wasi") {
        println!("cargo:rustc-link-arg-bins=--wrap=fcntl");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
