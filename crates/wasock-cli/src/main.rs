//! `wasock`: run a WebAssembly component with full WASI and wasock's sockets, networking denied
//! unless a flag allows it. A thin shell over the `wasock` library.

mod check;
mod limit_args;
mod policy_args;
mod run;
mod sim;
mod usage;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code when wasock itself cannot run the component, or a policy is invalid.
const HOST_EXIT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "wasock",
    version,
    about = "Run WebAssembly components with policy-checked wasi:sockets",
    after_help = "Networking is denied unless a rule or switch allows it. \
                  `wasock run --help` lists the flags; `wasock policy check --help` explains a \
                  policy before you run anything."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a wasi:cli/command component (WASI 0.2 or 0.3); networking is denied unless a flag
    /// allows it.
    Run(Box<run::RunArgs>),
    /// Work with network policies.
    #[command(subcommand)]
    Policy(check::PolicyCommand),
    /// Run a scenario's components on one virtual network, in virtual time, from one seed.
    Sim(Box<sim::SimArgs>),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::CommandFactory;
            return usage::report(e, &Cli::command());
        }
    };
    match cli.command {
        Command::Run(args) => {
            // One guest is one thread of control: on a current-thread runtime the thread that
            // runs it also waits on the reactor, so a wake-up is one context switch, not two.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
            };
            runtime.block_on(run::run(*args))
        }
        Command::Policy(cmd) => check::policy(cmd),
        Command::Sim(args) => sim::sim(*args),
    }
}

/// Prints one line for the operator, never a backtrace, and gives the host's exit code.
fn fail(msg: &str) -> ExitCode {
    eprintln!("wasock: error: {}", one_line(msg));
    ExitCode::from(HOST_EXIT)
}

/// `msg` on one line: every line break (the user's text is quoted with its escapes, but an OS or
/// Wasmtime message may span lines) becomes a space.
fn one_line(msg: &str) -> String {
    let parts: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(super::one_line("a\n  b\r\n\nc"), "a b c");
        assert_eq!(super::one_line("one"), "one");
    }
}
