//! `wasock policy check`: validate a policy, print it normalized, explain decisions.

use crate::fail;
use crate::policy_args::PolicyArgs;
use clap::{Args, Subcommand};
use std::process::ExitCode;
use std::sync::Arc;
use wasock::internals::policy::{ActionSpec, Explanation, Switches, WithSwitches, parse_action};
use wasock::policy::{Action, Policy, RuleSet, Verdict};

/// Exit code of `--explain` when an explained operation is denied.
const DENIED_EXIT: u8 = 1;

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a policy (a file and/or rule flags), print it normalized, explain decisions.
    #[command(
        after_help = "Exit status: 0 when the policy is valid and every --explain \
                            operation is allowed; 1 when the policy is valid and an explained \
                            operation is denied; 2 when the policy or an operation has a \
                            mistake (one line on stderr, nothing on stdout)."
    )]
    Check(Box<CheckArgs>),
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// A TOML policy file (the same as --policy FILE)
    #[arg(value_name = "FILE")]
    policy_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Say whether an operation is allowed, which rule decides and why, e.g. 'connect tcp
    /// 10.0.0.5:5432', 'accept tcp 0.0.0.0:80 from 10.1.2.3:5555' or 'resolve
    /// api.example.com'; add `via NAME` to a socket operation to explain name-bound rules
    /// [repeatable]
    #[arg(long, value_name = "OPERATION", help_heading = "Explain")]
    explain: Vec<String>,
}

/// Runs a `wasock policy` command.
pub(crate) fn policy(cmd: PolicyCommand) -> ExitCode {
    let PolicyCommand::Check(args) = cmd;
    let CheckArgs {
        mut policy,
        explain,
        policy_file,
    } = *args;
    if let Some(file) = policy_file {
        if let Some(flagged) = &policy.file {
            return fail(&format!(
                "the policy file is given twice, {file:?} as the argument and {flagged:?} with \
                 --policy: give one"
            ));
        }
        policy.file = Some(file);
        policy.file_is_argument = true;
    }
    let rules = match policy.rules() {
        Ok(rules) => Arc::new(rules.unwrap_or_default()),
        Err(msg) => return fail(&msg),
    };
    // Every operation is read before anything is printed: a mistake prints only its error.
    let mut operations = Vec::with_capacity(explain.len());
    for text in &explain {
        match parse_action(text) {
            Ok(spec) => operations.push(spec),
            Err(e) => {
                return fail(&format!(
                    "--explain {:?}: column {}: {}",
                    e.text, e.column, e.problem
                ));
            }
        }
    }
    let switches = Switches {
        network: policy.allow_all_network,
        lookup: policy.allow_lookup,
    };
    print!("{}", summary(&rules, switches));
    let mut denied = false;
    for spec in &operations {
        let (verdict, text) = explain_one(&rules, switches, spec);
        denied |= verdict == Verdict::Deny;
        println!("{text}");
    }
    match denied {
        true => ExitCode::from(DENIED_EXIT),
        false => ExitCode::SUCCESS,
    }
}

/// The normalized policy: its rules, then a comment line per switch; a policy with neither says
/// what it denies.
fn summary(rules: &RuleSet, switches: Switches) -> String {
    let mut out = String::new();
    match (rules.is_empty(), switches == Switches::default()) {
        (true, true) => {
            out.push_str("# no rules and no switches: every socket operation and name lookup is denied (IP literals still resolve)\n");
        }
        (true, false) => out.push_str("# no rules: only what the switches below allow\n"),
        (false, _) => out.push_str(&rules.to_string()),
    }
    if switches.network {
        out.push_str("# --allow-all-network: socket operations no deny rule refuses are allowed\n");
    }
    if switches.lookup {
        out.push_str("# --allow-lookup: name lookups no deny rule refuses are allowed\n");
    }
    out
}

/// The verdict `wasock run` would reach for `spec` with these rules and switches, and the
/// explanation: the deciding rule and why, or the switch that allows what no rule decides.
fn explain_one(rules: &Arc<RuleSet>, switches: Switches, spec: &ActionSpec) -> (Verdict, String) {
    let action = spec.action();
    let explained: Explanation = rules.explain(&action, spec);
    // The decision `wasock run` makes: the rules first, then the switches where no rule decides.
    let policy: Arc<dyn Policy> = rules.clone();
    let decided = WithSwitches { policy, switches }.decide(&action, spec);
    if decided.verdict == explained.verdict {
        return (explained.verdict, explained.to_string());
    }
    let (switch, what) = match action {
        Action::Resolve { .. } => ("--allow-lookup", "every name lookup"),
        _ => ("--allow-all-network", "every socket operation"),
    };
    let text = format!(
        "{}: allow\n  switch: {switch}\n  why: no rule decides it ({}), and {switch} allows {what} \
         no deny rule refuses",
        explained.action, explained.reason
    );
    (decided.verdict, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain(rules: &[(&str, &str)], switches: Switches, op: &str) -> (Verdict, String) {
        let mut b = RuleSet::builder();
        for (kind, pattern) in rules {
            b.rule(kind, pattern).unwrap();
        }
        explain_one(&Arc::new(b.build()), switches, &parse_action(op).unwrap())
    }

    const NETWORK: Switches = Switches {
        network: true,
        lookup: false,
    };

    #[test]
    fn switches_decide_what_no_rule_does() {
        let (v, text) = explain(&[], NETWORK, "connect tcp 10.0.0.5:5432");
        assert_eq!(v, Verdict::Allow, "{text}");
        assert!(
            text.starts_with("connect tcp 10.0.0.5:5432: allow\n  switch: --allow-all-network")
        );
        let (v, text) = explain(&[], NETWORK, "resolve api.example.com");
        assert_eq!(v, Verdict::Deny, "{text}");
        // A deny rule beats the switch.
        let rules = [("deny-outbound", "tcp://10.0.0.0/8:*")];
        let (v, text) = explain(&rules, NETWORK, "connect tcp 10.0.0.5:5432");
        assert_eq!(v, Verdict::Deny, "{text}");
        assert!(
            text.contains("rule: deny-outbound tcp://10.0.0.0/8:*"),
            "{text}"
        );
    }

    #[test]
    fn the_summary_names_what_is_denied() {
        let empty = RuleSet::default();
        let none = summary(&empty, Switches::default());
        assert!(none.contains("no rules and no switches"), "{none}");
        assert!(!none.contains("below"), "{none}");
        let lookup = Switches {
            network: false,
            lookup: true,
        };
        let text = summary(&empty, lookup);
        assert!(text.contains("switches below"), "{text}");
        assert!(text.contains("# --allow-lookup"), "{text}");
    }
}
