//! qosctl: a policy file becomes a resolved model, is diffed against the live model read
//! from tc, and the difference is applied as one `tc -batch`.
//!
//! Pipeline: `policy` (TOML → validated) → `resolve` (→ `model::Desired`) →
//! `tc::read` (live `model::DeviceState`) → `plan` (diff) → `tc::render` (batch lines) →
//! `apply` (run, verify, roll back). Each qdisc and filter kind has one home in `kind`.
//! See docs/architecture.md.

pub mod apply;
pub mod check;
pub mod child;
pub mod classify;
pub mod cli;
pub mod complete;
pub mod confirm;
pub mod escape;
pub mod foreign;
pub mod fuzzing;
pub mod import;
pub mod input;
pub mod kind;
pub mod limits;
pub mod link;
pub mod lock;
pub mod metrics;
pub mod model;
pub mod netlink;
pub mod plan;
pub mod policy;
pub mod prefetch;
pub mod rates;
pub mod reset;
pub mod resolve;
pub mod rollback;
pub mod show;
pub mod state;
pub mod tc;
pub mod term;
pub mod top;
pub mod units;
pub mod watch;

use std::process::ExitCode;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; with `--detailed-exitcode`: in sync.
    Ok = 0,
    /// Any error.
    Error = 1,
    /// With `--detailed-exitcode`: changes pending (dry run) or applied.
    Changes = 2,
    /// `import`: the policy was written, but some objects it cannot express are only
    /// comments in it.
    Partial = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

pub fn run(cli: cli::Cli) -> anyhow::Result<Exit> {
    use cli::Command;
    match cli.command {
        Command::Check(a) => check::run(&a),
        Command::Apply(a) => apply::run(&cli.global, &a),
        Command::Show(a) => show::run(&cli.global, &a),
        Command::Reset(a) => reset::run(&cli.global, &a),
        Command::Top(a) => top::run(&cli.global, &a),
        Command::Metrics(a) => metrics::run(&cli.global, &a),
        Command::Watch(a) => watch::run(&cli.global, &a),
        Command::Confirm(a) => confirm::run(&cli.global, &a),
        Command::Import(a) => import::run(&cli.global, &a),
    }
}

/// True when the error chain holds an EPIPE from writing to stdout.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
