//! The annotations of the container the shim was started for, read from its OCI bundle.
//!
//! containerd starts a shim in the bundle directory of the first container it serves (the
//! pod's sandbox on Kubernetes, whose spec carries the pod's annotations that containerd's
//! `pod_annotations` lets through). The shim reads `config.json` there once, before anything
//! else runs: every container process is forked from the shim after that, and finds the
//! annotations in [`annotations`].

use crate::settings::Annotations;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The part of an OCI runtime spec the shim reads.
#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    annotations: Option<Annotations>,
}

/// Why the bundle's annotations could not be read; every container of this shim then fails
/// to start with it (never runs with no policy instead).
#[derive(Debug)]
pub(crate) enum BundleError {
    /// `config.json` exists but cannot be read.
    Read { path: PathBuf, error: String },
    /// `config.json` is not an OCI spec with string annotations.
    Parse { path: PathBuf, error: String },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Read { path, error } => {
                write!(f, "cannot read the container's spec {path:?}: {error}")
            }
            BundleError::Parse { path, error } => write!(
                f,
                "cannot read the annotations of the container's spec {path:?}: {error}"
            ),
        }
    }
}

impl std::error::Error for BundleError {}

static ANNOTATIONS: OnceLock<Result<Annotations, BundleError>> = OnceLock::new();

/// Rule: the annotations are read once, from the directory the shim started in; no
/// `config.json` there (the shim run for `-v`, or by hand) is no annotations: deny by default.
pub(crate) fn remember(dir: &Path) {
    ANNOTATIONS.get_or_init(|| read(dir));
}

/// The annotations [`remember`] read (none when it was not called).
pub(crate) fn annotations() -> Result<&'static Annotations, &'static BundleError> {
    static NONE: Annotations = Annotations::new();
    ANNOTATIONS.get().map_or(Ok(&NONE), |r| r.as_ref())
}

/// The annotations of `dir/config.json`.
fn read(dir: &Path) -> Result<Annotations, BundleError> {
    let path = dir.join("config.json");
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Annotations::new()),
        Err(e) => {
            return Err(BundleError::Read {
                path,
                error: e.to_string(),
            });
        }
    };
    match serde_json::from_slice::<Spec>(&text) {
        Ok(spec) => Ok(spec.annotations.unwrap_or_default()),
        Err(e) => Err(BundleError::Parse {
            path,
            error: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_come_from_config_json() {
        let dir = std::env::temp_dir().join(format!("wasock-shim-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read(&dir).unwrap().is_empty(), "no config.json: none");
        let spec = r#"{"ociVersion":"1.0.2","process":{"args":["/a.wasm"]},
                       "annotations":{"wasock/stats":"true","other":"x"}}"#;
        std::fs::write(dir.join("config.json"), spec).unwrap();
        let found = read(&dir).unwrap();
        assert_eq!(found.get("wasock/stats").map(String::as_str), Some("true"));
        std::fs::write(dir.join("config.json"), r#"{"annotations":{"a":1}}"#).unwrap();
        let e = read(&dir).unwrap_err().to_string();
        assert!(e.starts_with("cannot read the annotations of"), "{e}");
        std::fs::write(dir.join("config.json"), r#"{"ociVersion":"1.0.2"}"#).unwrap();
        assert!(read(&dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
