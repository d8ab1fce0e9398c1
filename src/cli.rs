//! The command line. Doc comments here are the `--help` text, the man page and the
//! shell completions (all generated from this one definition).

use clap::{Args, Parser, Subcommand};
use clap_complete::engine::ArgValueCandidates;
use std::path::PathBuf;

/// Declarative Linux traffic control.
///
/// One TOML policy describes the shaping (HTB class trees, rates absolute or in percent of the
/// parent), classification (firewall marks) and impairment (netem) of the interfaces it names.
/// qosctl reads the live state with `tc`, and changes only what differs, in place, in one
/// `tc -batch`.
///
/// Exit codes: 0 success (with --detailed-exitcode: in sync), 1 error, 2 changes pending
/// (only with --detailed-exitcode), 3 import was partial.
#[derive(Debug, Parser)]
#[command(
    name = "qosctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Act inside the named network namespace (runs `tc -n NAME`).
    #[arg(long, global = true, value_name = "NAME", add = ArgValueCandidates::new(crate::complete::netns))]
    pub netns: Option<String>,
    /// The tc binary to run [default: `tc` found on PATH].
    #[arg(long = "tc", global = true, value_name = "PATH")]
    pub tc: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a policy and print the resolved tree. Needs neither root nor tc.
    Check(CheckArgs),
    /// Make the interfaces of a policy match it, changing only what differs.
    ///
    /// Reads live state, plans, runs the whole plan as one `tc -batch`, then reads back
    /// and verifies. If a command fails, the interfaces are restored to the state read
    /// before the apply.
    Apply(ApplyArgs),
    /// Show the live qdiscs, classes and filters with their counters.
    Show(ShowArgs),
    /// A live table of every class and qdisc, busiest first, refreshed in place; q quits.
    ///
    /// Rates are measured by qosctl from two reads of the counters. Columns: measured
    /// rate, share of the class's ceil (a tbf's rate), packets and drops per second, and
    /// backlog. Without a terminal, prints --count tables (default 1) and exits.
    Top(TopArgs),
    /// Print the counters in the Prometheus text format, or serve them with --listen.
    ///
    /// For node_exporter's textfile collector:
    /// `qosctl metrics > /var/lib/prometheus/node-exporter/qosctl.prom.$$ && mv ...`
    Metrics(MetricsArgs),
    /// Stay running and re-apply a policy when its devices appear, are re-created or come
    /// up, when the policy file changes, and on SIGHUP.
    ///
    /// Link events of the namespace (`ip -o monitor link`) are debounced into one apply;
    /// a failing apply is retried with exponential backoff. One timestamped line per
    /// action on stdout. SIGINT or SIGTERM stop it.
    Watch(WatchArgs),
    /// Keep the changes of a pending `apply --confirm-within`, or roll them back now.
    ///
    /// Exit 1 when nothing awaits confirmation (in this --netns).
    Confirm(ConfirmArgs),
    /// Remove what qosctl manages (root and ingress qdiscs) from interfaces, returning
    /// them to the kernel default.
    ///
    /// Give either POLICY (every interface it names) or --dev DEV... (these devices): one
    /// of the two is required.
    Reset(ResetArgs),
    /// Write a policy (to stdout) that reproduces the live traffic control of devices.
    ///
    /// Applied again, the policy is in sync with no command to run. What a policy cannot
    /// express (foreign filters, unknown qdisc kinds, an ingress qdisc, CBQ) is kept as a
    /// comment naming the object, and the exit code is 3 (partial import).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// Print the resolved model as JSON.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Print nothing when the policy is valid: only errors, and the exit code
    /// (for pre-commit hooks and CI).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// The global --netns, accepted (scripts pass it to every command) but not offered:
    /// check reads no live state. Same id as the global, so clap does not add that one here.
    #[arg(long = "netns", id = "netns", hide = true, value_name = "NAME")]
    pub ignored_netns: Option<String>,
    /// The global --tc, likewise: check runs no tc.
    #[arg(long = "tc", id = "tc", hide = true, value_name = "PATH")]
    pub ignored_tc: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct ApplyArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// Print the plan and change nothing. Works without root.
    #[arg(long)]
    pub dry_run: bool,
    /// Exit 0 when in sync, 2 when changes are pending (or were applied), 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print the plan (and result) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Roll the change back to the state read before it unless `qosctl confirm` runs
    /// within this time (e.g. 60s), also when the session that started it dies.
    #[arg(long, value_name = "TIME", conflicts_with = "dry_run")]
    pub confirm_within: Option<crate::units::Time>,
    /// With --dry-run: plan against saved state instead of the kernel. FILE is what
    /// `qosctl show --json` printed on the target host; `empty` plans from the kernel
    /// default. Runs no tc and needs no root; a device not in FILE is planned as fresh.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Roll the pending change back now instead of keeping it.
    #[arg(long)]
    pub rollback: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The devices whose live traffic control becomes the policy.
    #[arg(value_name = "DEV", required = true)]
    pub devices: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Devices to show [default: those of --policy, else every device with a qdisc tree].
    #[arg(value_name = "DEV", add = ArgValueCandidates::new(crate::complete::devices))]
    pub devices: Vec<String>,
    /// Show the class names and policy rates of this policy beside the live values.
    #[arg(long, short = 'p', value_name = "POLICY")]
    pub policy: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Measure rates: read the counters twice, this long apart (`1s`, `500ms`), and show
    /// the rate between the reads in "rate now" (the kernel's own estimator is off unless
    /// enabled, so without this the column is often `-` or 0).
    #[arg(long, value_name = "TIME", value_parser = crate::rates::parse_interval)]
    pub interval: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ResetArgs {
    /// Reset every interface this policy names.
    #[arg(value_name = "POLICY", group = "target")]
    pub policy: Option<PathBuf>,
    /// Reset these devices.
    #[arg(long = "dev", value_name = "DEV", num_args = 1.., group = "target",
          add = ArgValueCandidates::new(crate::complete::devices))]
    pub devices: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Devices to watch [default: those of --policy, else every device with a qdisc tree].
    #[arg(value_name = "DEV", add = ArgValueCandidates::new(crate::complete::devices))]
    pub devices: Vec<String>,
    /// Name the classes by this policy's paths.
    #[arg(long, short = 'p', value_name = "POLICY")]
    pub policy: Option<PathBuf>,
    /// Time between refreshes; each rate is measured over one interval.
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = crate::rates::parse_interval)]
    pub interval: std::time::Duration,
    /// Stop after this many tables (default without a terminal: 1; with one: until q).
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Devices to export [default: those of --policy, else every device with a qdisc tree].
    #[arg(value_name = "DEV", add = ArgValueCandidates::new(crate::complete::devices))]
    pub devices: Vec<String>,
    /// Label each series with this policy's path for the class or qdisc (label `policy`).
    #[arg(long, short = 'p', value_name = "POLICY")]
    pub policy: Option<PathBuf>,
    /// Serve GET /metrics over HTTP on this address (`127.0.0.1:9877`, `[::]:9877`)
    /// instead of printing once; each scrape reads the counters afresh.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}
