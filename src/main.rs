//! The `cfgledger` binary: parse with clap, run, map errors to exit codes in one place.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cfgledger::cli::Cli::parse();
    match cfgledger::cli::run(cli) {
        Ok(()) | Err(cfgledger::Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
