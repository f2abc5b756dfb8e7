//! `wasock`: run a WebAssembly component with full WASI and wasock's sockets, networking denied
//! unless a flag allows it. A thin shell over the `wasock` library.

mod check;
mod limit_args;
mod policy_args;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code when wasock itself cannot run the component, or a policy is invalid.
const HOST_EXIT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "wasock",
    version,
    about = "Run WebAssembly components with policy-checked wasi:sockets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a wasi:cli/command component.
    Run(Box<run::RunArgs>),
    /// Work with network policies.
    #[command(subcommand)]
    Policy(check::PolicyCommand),
}

fn main() -> ExitCode {
    match Cli::parse().command {
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
    }
}

/// Prints one line for the operator, never a backtrace.
fn fail(msg: &str) -> ExitCode {
    eprintln!("wasock: error: {msg}");
    ExitCode::from(HOST_EXIT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
