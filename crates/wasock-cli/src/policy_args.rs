//! The policy flags shared by `wasock run` and `wasock policy check`.

use clap::Args;
use std::path::PathBuf;
use wasock::WasockCtxBuilder;
use wasock::policy::{ParseError, Problem, RuleSet, Source};

/// Network policy: deny by default; rules from a file and from flags add up.
#[derive(Args)]
#[command(next_help_heading = "Network policy (denied by default; rule flags repeat)")]
pub(crate) struct PolicyArgs {
    /// Rules from a TOML policy file: a list of rules per key, the keys named as the rule flags
    /// (allow-outbound, …); they add up with the flags' rules
    #[arg(long = "policy", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Whether `file` came from `policy check FILE` rather than `--policy FILE` (for messages).
    #[arg(skip)]
    pub(crate) file_is_argument: bool,
    /// Allow connecting / sending to SCHEME://HOST:PORTS, e.g. tcp://api.example.com:443
    /// [repeatable]
    #[arg(long, value_name = "RULE")]
    allow_outbound: Vec<String>,
    /// Deny connecting / sending to SCHEME://HOST:PORTS (beats any allow) [repeatable]
    #[arg(long, value_name = "RULE")]
    deny_outbound: Vec<String>,
    /// Allow binding / listening on SCHEME://ADDR:PORTS[->HOSTPORT] [from PEERS], e.g.
    /// 'tcp://loopback:8080' [repeatable]
    #[arg(long, value_name = "RULE")]
    allow_inbound: Vec<String>,
    /// Deny binding / listening on SCHEME://ADDR:PORTS, or peers with `from PEERS` [repeatable]
    #[arg(long, value_name = "RULE")]
    deny_inbound: Vec<String>,
    /// Allow looking up NAMEPATTERN; NAME->ADDR[,ADDR] answers it with fixed addresses
    /// [repeatable]
    #[arg(long, value_name = "RULE")]
    allow_resolve: Vec<String>,
    /// Deny looking up NAMEPATTERN [repeatable]
    #[arg(long, value_name = "RULE")]
    deny_resolve: Vec<String>,
    /// Allow every socket operation no deny rule refuses (default: all denied)
    #[arg(long)]
    pub(crate) allow_all_network: bool,
    /// Allow every name lookup no deny rule refuses (default: denied; IP literals always resolve)
    #[arg(long)]
    pub(crate) allow_lookup: bool,
}

impl PolicyArgs {
    /// The rules of the file and the flags; `None` when there are none. Errors name the flag
    /// or the file line and column, and quote the rule.
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
            let text = std::fs::read_to_string(path).map_err(|e| match self.file_is_argument {
                true => format!("cannot read the policy file {path:?}: {e}"),
                false => format!("--policy {path:?}: cannot read: {e}"),
            })?;
            b.toml(&text, &path.display().to_string())
                .map_err(|e| rule_error(&e))?;
        }
        for (kind, patterns) in flags {
            for pattern in patterns {
                b.rule(kind, pattern).map_err(|e| rule_error(&e))?;
            }
        }
        Ok(Some(b.build()))
    }

    /// A context builder with these rules and switches.
    pub(crate) fn builder(&self) -> Result<WasockCtxBuilder, String> {
        let mut b = wasock::WasockCtx::builder();
        if let Some(rules) = self.rules()? {
            b.policy(rules);
        }
        b.allow_all_network(self.allow_all_network)
            .allow_ip_name_lookup(self.allow_lookup);
        Ok(b)
    }
}

/// A refused rule in one line: `--allow-outbound "tcp://x:99999": column 9: expected …` for a
/// flag, `FILE:LINE:COLUMN: expected … (in "…")` for a file.
pub(crate) fn rule_error(e: &ParseError) -> String {
    let ParseError {
        source,
        text,
        column,
        problem,
    } = e;
    match (source, problem) {
        (Source::Flag(flag), Problem::EmptyPattern) => {
            format!("{flag} {text:?}: expected a rule, as in {}", example(flag))
        }
        (Source::Flag(flag), _) => format!("{flag} {text:?}: column {column}: {problem}"),
        (Source::File { path, line }, Problem::EmptyPattern) => {
            format!("{path}:{line}:{column}: expected a rule, got {text:?}")
        }
        (Source::File { path, line }, _) => {
            format!("{path}:{line}:{column}: {problem} (in {text:?})")
        }
        (Source::Line, _) => format!("{text:?}: column {column}: {problem}"),
    }
}

/// A rule of the kind `flag` sets, for a message about an empty one.
fn example(flag: &str) -> &'static str {
    match flag.trim_start_matches('-') {
        "allow-outbound" | "deny-outbound" => {
            "SCHEME://HOST:PORTS such as tcp://api.example.com:443"
        }
        "allow-inbound" | "deny-inbound" => "SCHEME://ADDR:PORTS such as tcp://loopback:8080",
        _ => "a name pattern such as api.example.com or *.example.com",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        policy: PolicyArgs,
    }

    fn error(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("wasock").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{e}"));
        let e = cli.policy.rules().expect_err("an error");
        assert_eq!(e.lines().count(), 1, "{e}");
        e
    }

    #[test]
    fn flag_errors_quote_the_rule() {
        assert_eq!(
            error(&["--allow-outbound", "tcp://x:1 tcp://y:2"]),
            "--allow-outbound \"tcp://x:1 tcp://y:2\": column 11: expected the end of the rule \
             (a rule has no spaces but those around `from` on inbound rules)"
        );
        assert_eq!(
            error(&["--deny-resolve", "a\nb"]).split(':').next(),
            Some("--deny-resolve \"a\\nb\"")
        );
    }

    #[test]
    fn an_empty_rule_asks_for_a_rule_not_a_kind() {
        for (flag, example) in [
            ("--allow-outbound", "tcp://api.example.com:443"),
            ("--deny-inbound", "tcp://loopback:8080"),
            ("--allow-resolve", "api.example.com"),
        ] {
            for empty in ["", "  "] {
                let e = error(&[flag, empty]);
                assert!(
                    e.starts_with(&format!("{flag} {empty:?}: expected a rule")),
                    "{e}"
                );
                assert!(e.contains(example), "{e}");
                assert!(!e.contains("kind"), "{e}");
            }
        }
    }
}
