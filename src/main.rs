//! The `cfgledger` binary: parse with clap, run, and map errors to exit codes in one place
//! (`Error::exit_code`: 0 ok, 1 rejected, 2 usage or bad input, 3 unavailable, 4 integrity, 5 failure).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cfgledger::cli::Cli::parse();
    match cfgledger::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !matches!(e, cfgledger::Error::BrokenPipe | cfgledger::Error::ChildExit(_)) {
                eprintln!("{}", cfgledger::error::report(&e));
            }
            ExitCode::from(e.exit_code())
        }
    }
}
