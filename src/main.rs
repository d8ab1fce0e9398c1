//! Entry point: parse arguments, run, map the result to an exit code. Nothing else.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Shell completion: when the shell calls `COMPLETE=bash qosctl -- WORDS`, print the
    // candidates and exit (see src/complete.rs); otherwise this returns at once.
    clap_complete::CompleteEnv::with_factory(<qosctl::cli::Cli as clap::CommandFactory>::command)
        .complete();
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
