//! `wasock policy check`: validate a policy, print it normalized, explain decisions.

use crate::fail;
use crate::policy_args::PolicyArgs;
use clap::{Args, Subcommand};
use std::process::ExitCode;
use wasock::policy::parse_action;

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate the policy of a file and/or flags; print it normalized.
    Check(Box<CheckArgs>),
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Say which rule decides an operation, e.g. 'connect tcp 10.0.0.5:5432' or
    /// 'accept tcp 0.0.0.0:80 from 10.1.2.3:5555' or 'resolve api.example.com'
    /// (repeatable; add `via NAME` to a socket operation to explain name-bound rules).
    #[arg(long, value_name = "OPERATION")]
    explain: Vec<String>,
    /// The policy file (same as --policy FILE).
    #[arg(value_name = "FILE")]
    policy_file: Option<std::path::PathBuf>,
}

/// Runs a `wasock policy` command.
pub(crate) fn policy(cmd: PolicyCommand) -> ExitCode {
    let PolicyCommand::Check(mut args) = cmd;
    if let Some(file) = args.policy_file.take() {
        if args.policy.file.is_some() {
            return fail("give the policy file once: as an argument or with --policy");
        }
        args.policy.file = Some(file);
    }
    let rules = match args.policy.rules() {
        Ok(rules) => rules.unwrap_or_default(),
        Err(msg) => return fail(&msg),
    };
    if rules.is_empty() {
        println!("# no rules: every operation the switches below do not allow is denied");
    } else {
        print!("{rules}");
    }
    if args.policy.allow_all_network {
        println!("# --allow-all-network: socket operations no deny rule refuses are allowed");
    }
    if args.policy.allow_lookup {
        println!("# --allow-lookup: name lookups no deny rule refuses are allowed");
    }
    for text in &args.explain {
        let spec = match parse_action(text) {
            Ok(spec) => spec,
            Err(e) => return fail(&format!("--explain '{text}': {e}")),
        };
        println!("{}", rules.explain(&spec.action(), &spec));
    }
    ExitCode::SUCCESS
}
