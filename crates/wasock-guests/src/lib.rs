//! Paths of the wasock test guests: WebAssembly components (`wasi:cli/command`) built
//! from the `guests/` workspace for `wasm32-wasip2` by this crate's build script.
//!
//! ```no_run
//! let component = std::fs::read(wasock_guests::RAW_TCP).unwrap();
//! # let _ = component;
//! ```

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The path of the guest named `name` (its bin name, e.g. `"raw-tcp"`).
pub fn path(name: &str) -> Option<&'static str> {
    all().iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_guest_exists() {
        assert!(!super::all().is_empty());
        for (name, path) in super::all() {
            assert!(std::path::Path::new(path).is_file(), "{name}: {path}");
            assert!(path.ends_with(&format!("{name}.wasm")));
        }
        assert_eq!(super::path("raw-tcp"), Some(super::RAW_TCP));
        assert_eq!(super::path("nope"), None);
    }
}
