//! Entry point: parse arguments, run, map the result to an exit code. Nothing else.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = qosctl::cli::Cli::parse();
    match qosctl::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            // A closed stdout (`qosctl show | head`) is not an error.
            if qosctl::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
