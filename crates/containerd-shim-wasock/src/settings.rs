//! What a container's OCI annotations ask of wasock: its policy (inline, or a file in the
//! image), the two allow-everything switches, the policy mode, its limits, and whether its
//! audit trail and exit-time stats go to the container's stderr.
//!
//! Every annotation under [`PREFIX`] must be one of [`KEYS`] or a limit (`wasock/` and a name
//! of `wasock::limits::LIMIT_NAMES`, as `wasock run`'s flags): a misspelt key is an error,
//! never a setting silently dropped. Networking stays denied unless a rule or switch allows it.

use std::collections::BTreeMap;
use std::fmt;
use wasock::WasockCtxBuilder;
use wasock::audit::PolicyMode;
use wasock::limits::{LIMIT_NAMES, LimitError, Limits};
use wasock::policy::{ParseError, RuleSet};

/// The prefix of wasock's annotations (a Kubernetes annotation prefix, and the glob
/// `wasock/*` for containerd's `pod_annotations`).
pub(crate) const PREFIX: &str = "wasock/";

/// Inline TOML rules, in the format of `wasock run --policy FILE`.
pub(crate) const POLICY: &str = "wasock/policy";
/// The path, inside the container's image, of a TOML policy file.
pub(crate) const POLICY_FILE: &str = "wasock/policy-file";
/// `true`: allow every socket operation no deny rule refuses.
pub(crate) const ALLOW_ALL_NETWORK: &str = "wasock/allow-all-network";
/// `true`: allow every name lookup no deny rule refuses.
pub(crate) const ALLOW_LOOKUP: &str = "wasock/allow-lookup";
/// `enforce` (the default) or `audit`: record what enforce mode would refuse, refuse nothing.
pub(crate) const POLICY_MODE: &str = "wasock/policy-mode";
/// `true`: one JSON line per policy decision on the container's stderr.
pub(crate) const AUDIT: &str = "wasock/audit";
/// `true`: the instance's socket counters on the container's stderr when the guest exits.
pub(crate) const STATS: &str = "wasock/stats";
/// `true`: no socket limit (beyond the host's file descriptors).
pub(crate) const UNLIMITED_SOCKETS: &str = "wasock/unlimited-sockets";

/// Every annotation key the shim reads, but the limits'.
pub(crate) const KEYS: [&str; 8] = [
    POLICY,
    POLICY_FILE,
    ALLOW_ALL_NETWORK,
    ALLOW_LOOKUP,
    POLICY_MODE,
    AUDIT,
    STATS,
    UNLIMITED_SOCKETS,
];

/// A container's annotations, by key.
pub(crate) type Annotations = BTreeMap<String, String>;

/// The settings of one container, read from its annotations.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    /// The rules of `wasock/policy` then `wasock/policy-file`; `None` when neither is given.
    pub(crate) rules: Option<RuleSet>,
    pub(crate) allow_all_network: bool,
    pub(crate) allow_lookup: bool,
    pub(crate) audit_mode: bool,
    pub(crate) limits: Limits,
    /// Audit JSON lines to stderr.
    pub(crate) audit: bool,
    /// Exit-time stats to stderr.
    pub(crate) stats: bool,
}

/// Why a container's annotations cannot be followed; its start fails with this message.
#[derive(Debug)]
pub(crate) enum SettingsError {
    /// A `wasock/…` key the shim does not know (a misspelling, most likely).
    UnknownKey(String),
    /// A switch whose value is neither `true` nor `false`.
    NotASwitch { key: &'static str, value: String },
    /// `wasock/policy-mode` neither `enforce` nor `audit`.
    NotAMode(String),
    /// A limit's value refused (the key names the limit).
    Limit { key: String, error: LimitError },
    /// The policy file named by `wasock/policy-file` cannot be read.
    PolicyFile { path: String, error: std::io::Error },
    /// A rule or the TOML of a policy is wrong: the parse error names the annotation or file,
    /// its line and column.
    Rule(ParseError),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::UnknownKey(key) => write!(
                f,
                "annotation {key:?}: not a wasock annotation (expected one of {}, or \
                 wasock/ and a limit: {})",
                KEYS.join(", "),
                LIMIT_NAMES.join(", ")
            ),
            SettingsError::NotASwitch { key, value } => {
                write!(f, "annotation {key}: expected true or false, got {value:?}")
            }
            SettingsError::NotAMode(value) => write!(
                f,
                "annotation {POLICY_MODE}: expected enforce or audit, got {value:?}"
            ),
            SettingsError::Limit { key, error } => write!(f, "annotation {key}: {error}"),
            SettingsError::PolicyFile { path, error } => write!(
                f,
                "annotation {POLICY_FILE}: cannot read the policy file {path:?} in the image: \
                 {error}"
            ),
            SettingsError::Rule(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Rule: deny by default, and every `wasock/…` annotation is known and well-formed, or the
    /// container does not run. `read` reads a file of the container's image (for
    /// `wasock/policy-file`).
    pub(crate) fn from_annotations(
        annotations: &Annotations,
        read: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<Settings, SettingsError> {
        let mut limits = Limits::default();
        for (key, value) in annotations {
            let Some(name) = key.strip_prefix(PREFIX) else {
                continue;
            };
            if LIMIT_NAMES.contains(&name) {
                (limits.set(name, value.trim())).map_err(|error| SettingsError::Limit {
                    key: key.clone(),
                    error,
                })?;
            } else if !KEYS.contains(&key.as_str()) {
                return Err(SettingsError::UnknownKey(key.clone()));
            }
        }
        let switch = |key: &'static str| match annotations.get(key).map(|v| v.trim()) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(SettingsError::NotASwitch {
                key,
                value: other.to_string(),
            }),
        };
        let audit_mode = match annotations.get(POLICY_MODE).map(|v| v.trim()) {
            None | Some("enforce") => false,
            Some("audit") => true,
            Some(other) => return Err(SettingsError::NotAMode(other.to_string())),
        };
        let inline = annotations.get(POLICY);
        let file = annotations.get(POLICY_FILE);
        let rules = match (inline, file) {
            (None, None) => None,
            _ => {
                let mut b = RuleSet::builder();
                if let Some(text) = inline {
                    (b.toml(text, &format!("annotation {POLICY}"))).map_err(SettingsError::Rule)?;
                }
                if let Some(path) = file {
                    let text = read(path).map_err(|error| SettingsError::PolicyFile {
                        path: path.clone(),
                        error,
                    })?;
                    b.toml(&text, path).map_err(SettingsError::Rule)?;
                }
                Some(b.build())
            }
        };
        if switch(UNLIMITED_SOCKETS)? {
            limits.max_sockets = None;
        }
        Ok(Settings {
            rules,
            limits,
            allow_all_network: switch(ALLOW_ALL_NETWORK)?,
            allow_lookup: switch(ALLOW_LOOKUP)?,
            audit_mode,
            audit: switch(AUDIT)?,
            stats: switch(STATS)?,
        })
    }

    /// A sockets context builder with these rules, switches and mode (the audit sink is the
    /// caller's: it owns the container's stderr).
    pub(crate) fn builder(self) -> WasockCtxBuilder {
        let mut b = wasock::WasockCtx::builder();
        if let Some(rules) = self.rules {
            b.policy(rules);
        }
        b.allow_all_network(self.allow_all_network)
            .allow_ip_name_lookup(self.allow_lookup)
            .limits(self.limits);
        if self.audit_mode {
            b.policy_mode(PolicyMode::Audit);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> Annotations {
        (pairs.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn no_file(path: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no {path}"),
        ))
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        Settings::from_annotations(&annotations(pairs), no_file)
            .expect_err("an error")
            .to_string()
    }

    #[test]
    fn no_annotation_denies_everything() {
        let s = Settings::from_annotations(&annotations(&[("other/key", "x")]), no_file).unwrap();
        assert!(s.rules.is_none());
        assert!(!(s.allow_all_network || s.allow_lookup || s.audit_mode || s.audit || s.stats));
    }

    #[test]
    fn inline_rules_and_switches_are_read() {
        let s = Settings::from_annotations(
            &annotations(&[
                (POLICY, "allow-outbound = [\"tcp://127.0.0.1:8080\"]\n"),
                (AUDIT, "true"),
                (STATS, " true "),
                (ALLOW_LOOKUP, "false"),
                (POLICY_MODE, "audit"),
            ]),
            no_file,
        )
        .unwrap();
        let rules = s.rules.as_ref().expect("rules").to_string();
        assert_eq!(rules, "allow-outbound tcp://127.0.0.1:8080\n");
        assert!(s.audit && s.stats && s.audit_mode && !s.allow_lookup);
    }

    #[test]
    fn a_rule_error_names_the_annotation_line_and_column() {
        let e = error(&[(
            POLICY,
            "allow-inbound = [\"tcp://loopback:*\"]\nallow-outbound = [\"tcp://x:99999\"]\n",
        )]);
        assert_eq!(
            e,
            "annotation wasock/policy:2:28: expected a port 1-65535 or a range A-B \
             (in `tcp://x:99999`)"
        );
        let e = error(&[(POLICY, "allow-outbond = []")]);
        assert!(e.starts_with("annotation wasock/policy:1:1: "), "{e}");
        let e = error(&[(POLICY, "allow-outbound = [\"a\"\nx")]);
        assert!(e.starts_with("annotation wasock/policy:"), "{e}");
    }

    #[test]
    fn the_policy_file_is_read_from_the_image() {
        let read = |path: &str| match path {
            "/policy.toml" => Ok("allow-resolve = [\"db.internal->127.0.0.1\"]\n".to_string()),
            "/bad.toml" => Ok("\n\ndeny-outbound = [\"tcp://a:1\", 7]\n".to_string()),
            other => no_file(other),
        };
        let with = |path: &str| {
            Settings::from_annotations(&annotations(&[(POLICY_FILE, path)]), read)
                .map_err(|e| e.to_string())
        };
        let rules = with("/policy.toml").unwrap().rules.unwrap().to_string();
        assert_eq!(rules, "allow-resolve db.internal->127.0.0.1\n");
        let e = with("/bad.toml").unwrap_err();
        assert!(e.starts_with("/bad.toml:3:31: "), "{e}");
        let e = with("/missing.toml").unwrap_err();
        assert!(
            e.starts_with("annotation wasock/policy-file: cannot read the policy file"),
            "{e}"
        );
    }

    #[test]
    fn limits_are_read_as_wasock_run_s_flags() {
        let s = Settings::from_annotations(
            &annotations(&[
                ("wasock/max-sockets", "8"),
                ("wasock/connect-timeout", "2.5"),
                ("wasock/bandwidth-out", "1000"),
            ]),
            no_file,
        )
        .unwrap();
        assert_eq!(s.limits.max_sockets, Some(8));
        assert_eq!(
            s.limits.connect_timeout,
            Some(std::time::Duration::from_millis(2500))
        );
        assert_eq!(s.limits.bandwidth_out, Some(1000));
        let s = Settings::from_annotations(
            &annotations(&[("wasock/unlimited-sockets", "true")]),
            no_file,
        )
        .unwrap();
        assert_eq!(s.limits.max_sockets, None);
        assert_eq!(
            error(&[("wasock/max-sockets", "-1")]),
            "annotation wasock/max-sockets: must not be negative, got \"-1\""
        );
        assert_eq!(
            error(&[("wasock/write-buffer", "0")]),
            "annotation wasock/write-buffer: must be at least 1 byte, got \"0\""
        );
    }

    #[test]
    fn a_misspelt_key_or_value_is_an_error_not_a_default() {
        let e = error(&[("wasock/polcy", "allow-outbound = []")]);
        assert!(
            e.starts_with("annotation \"wasock/polcy\": not a wasock"),
            "{e}"
        );
        assert_eq!(
            error(&[(AUDIT, "yes")]),
            "annotation wasock/audit: expected true or false, got \"yes\""
        );
        assert_eq!(
            error(&[(POLICY_MODE, "permissive")]),
            "annotation wasock/policy-mode: expected enforce or audit, got \"permissive\""
        );
    }
}
