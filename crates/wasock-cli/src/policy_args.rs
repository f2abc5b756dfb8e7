//! The policy flags shared by `wasock run` and `wasock policy check`.

use clap::Args;
use std::path::PathBuf;
use wasock::WasockCtxBuilder;
use wasock::policy::RuleSet;

/// Network policy: deny by default; rules from a file and from flags add up.
#[derive(Args)]
pub(crate) struct PolicyArgs {
    /// Rules from a TOML policy file (see `wasock policy check`).
    #[arg(long = "policy", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Allow connecting / sending to SCHEME://HOST:PORTS (e.g. tcp://api.example.com:443).
    #[arg(long, value_name = "RULE")]
    allow_outbound: Vec<String>,
    /// Deny connecting / sending to SCHEME://HOST:PORTS (beats any allow).
    #[arg(long, value_name = "RULE")]
    deny_outbound: Vec<String>,
    /// Allow binding / listening on SCHEME://ADDR:PORTS[->HOSTPORT] [from PEERS].
    #[arg(long, value_name = "RULE")]
    allow_inbound: Vec<String>,
    /// Deny binding / listening on SCHEME://ADDR:PORTS, or peers with `from PEERS`.
    #[arg(long, value_name = "RULE")]
    deny_inbound: Vec<String>,
    /// Allow looking up NAMEPATTERN; `NAME->ADDR[,ADDR]` answers it with fixed addresses.
    #[arg(long, value_name = "RULE")]
    allow_resolve: Vec<String>,
    /// Deny looking up NAMEPATTERN.
    #[arg(long, value_name = "RULE")]
    deny_resolve: Vec<String>,
    /// Allow every socket operation no deny rule refuses (default: all denied).
    #[arg(long)]
    pub(crate) allow_all_network: bool,
    /// Allow every name lookup no deny rule refuses (default: denied; IP literals always resolve).
    #[arg(long)]
    pub(crate) allow_lookup: bool,
}

impl PolicyArgs {
    /// The rules of the file and the flags; `None` when there are none. Errors name the flag
    /// or the file line and column.
    pub(crate) fn rules(&self) -> Result<Option<RuleSet>, String> {
        let flags = [
            ("allow-outbound", &self.allow_outbound),
            ("deny-outbound", &self.deny_outbound),
            ("allow-inbound", &self.allow_inbound),
            ("deny-inbound", &self.deny_inbound),
            ("allow-resolve", &self.allow_resolve),
            ("deny-resolve", &self.deny_resolve),
        ];
        if self.file.is_none() && flags.iter().all(|(_, v)| v.is_empty()) {
            return Ok(None);
        }
        let mut b = RuleSet::builder();
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--policy {}: cannot read: {e}", path.display()))?;
            b = b
                .toml(&text, &path.display().to_string())
                .map_err(|e| e.to_string())?;
        }
        for (kind, patterns) in flags {
            for pattern in patterns {
                b = b.rule(kind, pattern).map_err(|e| e.to_string())?;
            }
        }
        Ok(Some(b.build()))
    }

    /// A context builder with these rules and switches.
    pub(crate) fn builder(&self) -> Result<WasockCtxBuilder, String> {
        let mut b = wasock::WasockCtx::builder();
        if let Some(rules) = self.rules()? {
            b = b.policy(rules);
        }
        if self.allow_all_network {
            b = b.allow_all_network();
        }
        if self.allow_lookup {
            b = b.allow_lookup();
        }
        Ok(b)
    }
}
