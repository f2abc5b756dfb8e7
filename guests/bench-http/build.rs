//! With the `tokio` feature on `wasm32-wasip2`, links `wasi-libc-fix`'s `fcntl` in front of
//! wasi-libc's (`--wrap=fcntl`): see that crate for why.

fn main() {
    let wasi = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "wasi");
    let tokio = std::env::var_os("CARGO_FEATURE_TOKIO").is_some();
    if wasi && tokio {
        println!("cargo:rustc-link-arg-bins=--wrap=fcntl");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
