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

// mimalloc instead of glibc's malloc: a no-op re-apply of 10,000 classes with 10,000 matches
// allocates and frees millions of small objects (TOML tree, tc's JSON, the model) on two
// threads; with glibc that cost 368 ms of CPU and 33,800 page faults, with mimalloc 251 ms
// and 2,200 (perf stat -r 8; bench/results/issue10.md). It builds with crt-static too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
