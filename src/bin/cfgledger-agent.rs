//! `cfgledger-agent`: `cfgledger agent` as a binary of its own. It calls only the agent's code, so the
//! linker leaves the server (axum, tokio, the stores) out, and an idle agent holds half the memory.
//! Exit codes as `cfgledger`'s (`Error::exit_code`), and the child's once it runs.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cfgledger::cli::agent::AgentCli::parse();
    match cfgledger::cli::agent::run_alone(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !matches!(e, cfgledger::Error::ChildExit(_)) {
                eprintln!("{}", cfgledger::error::report(&e));
            }
            ExitCode::from(e.exit_code())
        }
    }
}
