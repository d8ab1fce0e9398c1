//! Entry point: parse arguments, run, map the result to an exit code. Nothing else.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    purge_soon();
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

/// mimalloc's `purge_delay` option (its index in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the kernel after 2 ms instead of mimalloc's default 1 s,
/// which is longer than qosctl lives: with the default, the dry run of the 10,000-class
/// first apply peaked at 59 MB, above issue 5's 50 MB (glibc: 41 MB; with 2 ms: ~41 MB).
/// Purging at once (0 ms) costs most of what the allocator saves; 2 ms keeps most of it
/// (no-op of the 10,000-match tree, 15 interleaved runs: glibc 164 ms, 1 s 110 ms,
/// 2 ms 122 ms, 0 ms 131 ms; bench/results/issue10.md).
fn purge_soon() {
    // SAFETY: sets one integer option; mimalloc reads it whenever it schedules a purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 2) }
}
