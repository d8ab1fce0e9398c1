//! Reading live state from tc output into the model (JSON, and the text forms older tc prints).
//!
//! What tc really prints, per iproute2 version, is in `tests/fixtures/tc/` and
//! `docs/reading.md`: classes only as text up to 6.1, text inside the JSON of u32 (before
//! 6.1), fw (before 6.8), basic and tbf (5.4), duplicate keys. [`json`] reads all of that;
//! the kind-specific modules turn it into the model.

mod class;
pub mod filter;
pub mod get;
pub mod json;
mod qdisc;
pub(crate) mod text;

use anyhow::{anyhow, bail, Context, Result};

use crate::model::{Class, DeviceState, Filter, Handle, Parent, Qdisc};
use crate::tc::Tc;

/// Reads the complete state of `dev` with counters (`-s`), for `show`: `tc -j -s -d qdisc
/// show`, `class show` (text on iproute2 ≤ 6.1), and filters on the root qdisc and on
/// ingress. One tc process per dump; a device at the kernel default costs one.
pub fn read_device(tc: &Tc, dev: &str) -> Result<DeviceState> {
    let stats = true;
    let args = with_stats(stats, &["-j", "-d", "qdisc", "show", "dev", dev]);
    let qdisc_dump = tc.start(&args);
    // One tc process per dump it needs, in turn (its tests with a fake tc count them);
    // only the planning read starts ahead.
    let first = first_dumps(tc, dev, stats, qdisc_dump, None)?;
    rest(tc, dev, stats, first)
}

/// The same without counters, for planning: the planner never looks at them, and at
/// 10,000 classes `-s` triples what tc prints and qosctl parses (3.3 MB → 1.1 MB of classes).
pub fn read_config(tc: &Tc, dev: &str) -> Result<DeviceState> {
    start_config(tc, dev).finish()
}

/// `args` with `-s` after a leading `-j` (tc's usual order: `-j -s -d qdisc show`).
fn with_stats<'a>(stats: bool, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    if stats {
        let at = usize::from(v.first() == Some(&"-j"));
        v.insert(at, "-s");
    }
    v
}

/// The dumps a planning read starts together with the qdisc dump, before it knows whether
/// it needs them: the classes, and the filters on `1:` (the root handle qosctl gives every
/// tree). The kernel and tc then print them side by side while qosctl parses the qdiscs,
/// instead of one after the other (a no-op re-apply of 10,000 classes spent two thirds of
/// its time waiting for the three dumps in turn). They are read and parsed as they land
/// ([`Landed`]); one that is not needed after all (no classful qdisc, another root handle)
/// is dropped unused, so what is read, and every error, is the same as reading in turn.
struct Ahead {
    classes: Option<crate::tc::Started>,
    root_filters: Option<crate::tc::Started>,
}

const AHEAD_ROOT: Handle = Handle::qdisc(1);

impl Ahead {
    fn start(tc: &Tc, dev: &str, stats: bool) -> Ahead {
        let root = AHEAD_ROOT.to_string();
        Ahead {
            classes: Some(tc.start(&class_args(stats, dev))),
            root_filters: Some(tc.start(&filter_args(stats, dev, &root))),
        }
    }
}

fn class_args(stats: bool, dev: &str) -> Vec<&str> {
    with_stats(stats, &["-j", "-d", "class", "show", "dev", dev])
}

fn filter_args<'a>(stats: bool, dev: &'a str, parent: &'a str) -> Vec<&'a str> {
    with_stats(
        stats,
        &["-j", "filter", "show", "dev", dev, "parent", parent],
    )
}

/// A planning read of one device, started: its first dumps run, and a thread waits for
/// them and parses them (see [`Ahead`]); [`Pending::finish`] completes it.
pub fn start_config(tc: &Tc, dev: &str) -> Pending {
    let args = with_stats(false, &["-j", "-d", "qdisc", "show", "dev", dev]);
    let qdisc_dump = tc.start(&args);
    let ahead = Ahead::start(tc, dev, false);
    let (tc2, dev2) = (tc.clone(), dev.to_string());
    // Only waiting and parsing happen on that thread: any further tc (another filter
    // parent, the text fallback) is started from the caller's, as child::spawn requires.
    let worker =
        std::thread::spawn(move || first_dumps(&tc2, &dev2, false, qdisc_dump, Some(ahead)));
    Pending {
        worker,
        tc: tc.clone(),
        dev: dev.to_string(),
    }
}

/// A planning read whose first dumps are running (see [`start_config`]).
pub struct Pending {
    worker: std::thread::JoinHandle<Result<First>>,
    tc: Tc,
    dev: String,
}

impl Pending {
    /// The device's state, as [`read_config`] returns it.
    pub fn finish(self) -> Result<DeviceState> {
        let first = self
            .worker
            .join()
            .map_err(|_| anyhow!("reading {}: the reading thread panicked", self.dev))??;
        rest(&self.tc, &self.dev, false, first)
    }
}

/// What the first dumps gave: the qdiscs, the classes (when a qdisc is classful), and the
/// filters on `1:` if [`Ahead`] read them (the JSON read of their dump).
pub struct First {
    qdiscs: Vec<Qdisc>,
    classes: Vec<Class>,
    root_filters: Option<Result<Vec<Filter>>>,
}

/// Waits for the qdisc dump and, as the qdiscs require, the class dump and the filters of
/// [`AHEAD_ROOT`] that `ahead` started (without `ahead`, the class dump is run here).
fn first_dumps(
    tc: &Tc,
    dev: &str,
    stats: bool,
    qdisc_dump: crate::tc::Started,
    ahead: Option<Ahead>,
) -> Result<First> {
    let mut landed = ahead.map(|a| Landed::wait(tc, dev, stats, a));
    let args = with_stats(stats, &["-j", "-d", "qdisc", "show", "dev", dev]);
    let out = on_dev(tc, dev, qdisc_dump.output())?;
    let qdiscs = parse_qdiscs(&out).with_context(|| format!("reading `{}`", tc.display(&args)))?;
    let mut first = First {
        qdiscs,
        classes: Vec::new(),
        root_filters: None,
    };
    if first.qdiscs.is_empty() {
        return Ok(first);
    }
    if first.qdiscs.iter().any(|q| q.kind.is_classful()) {
        first.classes = match landed.as_mut().and_then(|l| l.classes.take()) {
            Some(classes) => classes?,
            None => {
                let args = class_args(stats, dev);
                let out = run_dev(tc, dev, &args)?;
                parse_classes(&out).with_context(|| format!("reading `{}`", tc.display(&args)))?
            }
        };
    }
    let root = first.qdiscs.iter().find(|q| q.parent == Parent::Root);
    if root.is_some_and(|r| r.handle == AHEAD_ROOT) {
        if let Some(filters) = landed.as_mut().and_then(|l| l.root_filters.take()) {
            first.root_filters = Some(filters?);
        }
    }
    Ok(first)
}

/// The dumps [`Ahead`] started, waited for and parsed before the qdisc dump is looked at:
/// tc finishes the qdiscs last (10,000 classes: after the class and filter dumps), so
/// parsing those overlaps the wait instead of following it. Whether they are used is
/// still decided by the qdiscs, and what is not used (a result or an error) is dropped
/// unseen, so what is read and every error are those of reading in turn. The price: a
/// dump that turns out not to be needed is waited for instead of killed.
struct Landed {
    classes: Option<Result<Vec<Class>>>,
    /// The dump's own error (outer), or the JSON read of it (inner; see [`or_text`]).
    root_filters: Option<Result<Result<Vec<Filter>>>>,
}

impl Landed {
    fn wait(tc: &Tc, dev: &str, stats: bool, ahead: Ahead) -> Landed {
        let root_filters = ahead.root_filters.map(|started| {
            on_dev(tc, dev, started.output()).map(|out| parse_filters(&out, AHEAD_ROOT))
        });
        let classes = ahead.classes.map(|started| {
            let out = on_dev(tc, dev, started.output())?;
            let args = class_args(stats, dev);
            parse_classes(&out).with_context(|| format!("reading `{}`", tc.display(&args)))
        });
        Landed {
            classes,
            root_filters,
        }
    }
}

/// The filters of every parent the qdiscs have (those of `1:` maybe read already), and
/// the state put together.
fn rest(tc: &Tc, dev: &str, stats: bool, first: First) -> Result<DeviceState> {
    let First {
        qdiscs,
        classes,
        mut root_filters,
    } = first;
    let mut state = DeviceState {
        device: dev.to_string(),
        classes,
        ..DeviceState::default()
    };
    if qdiscs.is_empty() {
        return Ok(state);
    }
    let mut filter_parents = Vec::new();
    if let Some(root) = qdiscs.iter().find(|q| q.parent == Parent::Root) {
        filter_parents.push(root.handle);
    }
    match qdiscs.iter().find(|q| q.parent == Parent::Ingress) {
        // clsact keeps its filters on two hooks of its own; `parent ffff:` shows none.
        Some(q) if q.kind.kind_name() == "clsact" => {
            filter_parents.extend([Handle::CLSACT_INGRESS, Handle::CLSACT_EGRESS]);
        }
        Some(_) => filter_parents.push(Handle::INGRESS),
        None => {}
    }
    for parent in filter_parents {
        let filters = match root_filters.take() {
            Some(parsed) if parent == AHEAD_ROOT => or_text(tc, dev, parent, stats, parsed)?,
            _ => read_filters(tc, dev, parent, stats)?,
        };
        state.filters.extend(filters);
    }
    // By a small cached key, stable (the index breaks ties): the sort then moves each
    // filter once, where sorting the structs in place moved each ~14 times.
    state.filters.sort_by_cached_key(|f| (f.parent, f.prio));
    state.qdiscs = qdiscs;
    Ok(state)
}

/// Filters on one qdisc. The JSON is read even where tc prints text inside it; only if
/// that fails (a form not seen yet) the plain text dump is read instead.
fn read_filters(tc: &Tc, dev: &str, parent: Handle, stats: bool) -> Result<Vec<Filter>> {
    let p = parent.to_string();
    let out = run_dev(tc, dev, &filter_args(stats, dev, &p))?;
    or_text(tc, dev, parent, stats, parse_filters(&out, parent))
}

/// The JSON read of a filter dump, or the text dump's where the JSON does not do.
fn or_text(
    tc: &Tc,
    dev: &str,
    parent: Handle,
    stats: bool,
    parsed: Result<Vec<Filter>>,
) -> Result<Vec<Filter>> {
    let p = parent.to_string();
    let text_args = with_stats(stats, &["filter", "show", "dev", dev, "parent", &p]);
    match parsed {
        // iproute2 prints a policer's rate, burst and mtu as text only (`print_police`):
        // where the JSON has a policer, the text dump is read for its numbers.
        Ok(f) if f.iter().any(has_police) => {
            let text = run_dev(tc, dev, &text_args)?;
            Ok(parse_filters(&text, parent).unwrap_or(f))
        }
        Ok(f) => Ok(f),
        Err(json_err) => {
            let args = filter_args(stats, dev, &p);
            let text = run_dev(tc, dev, &text_args)?;
            parse_filters(&text, parent).map_err(|text_err| {
                anyhow!(
                    "cannot read the filters of {dev} (parent {p}): `{}`: {json_err:#}; `{}`: {text_err:#}",
                    tc.display(&args),
                    tc.display(&text_args)
                )
            })
        }
    }
}

fn has_police(f: &Filter) -> bool {
    matches!(&f.kind, crate::model::FilterKind::U32 { actions, .. }
        if actions.iter().any(|a| matches!(a, crate::classify::action::Action::Police(_))))
}

/// Runs a `show` for one device; a missing device becomes an error that names it.
fn run_dev(tc: &Tc, dev: &str, args: &[&str]) -> Result<String> {
    on_dev(tc, dev, tc.run(args))
}

/// The result of a `show` for one device, a missing device as an error that names it.
fn on_dev(tc: &Tc, dev: &str, out: Result<String>) -> Result<String> {
    out.map_err(|e| {
        let msg = format!("{e:#}");
        if msg.contains("Cannot find device") {
            match &tc.netns {
                Some(ns) => anyhow!(
                    "device \"{dev}\" does not exist in network namespace \"{ns}\" (see `ip -n {ns} link`)"
                ),
                None => anyhow!("device \"{dev}\" does not exist (see `ip link`)"),
            }
        } else {
            e
        }
    })
}

/// Devices with a qdisc tree of their own (a non-default root or an ingress qdisc), in
/// the kernel's order, from one `tc -j qdisc show`. Devices at the kernel default are
/// not listed.
pub fn list_devices(tc: &Tc) -> Result<Vec<String>> {
    let args = ["-j", "qdisc", "show"];
    let out = tc.run(&args)?;
    let mut devs: Vec<String> = Vec::new();
    for (dev, _) in
        qdiscs_with_dev(&out).with_context(|| format!("reading `{}`", tc.display(&args)))?
    {
        if let Some(d) = dev {
            if !devs.contains(&d) {
                devs.push(d);
            }
        }
    }
    Ok(devs)
}

fn qdiscs_with_dev(out: &str) -> Result<Vec<(Option<String>, Qdisc)>> {
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v = json::parse(out).map_err(|e| anyhow!("invalid JSON from tc: {e}"))?;
    let items = v
        .as_array()
        .ok_or_else(|| anyhow!("expected a JSON array of qdiscs"))?;
    let mut res = Vec::new();
    for item in items {
        if let Some(q) = qdisc::qdisc(item)? {
            res.push(q);
        }
    }
    Ok(res)
}

/// `tc -j qdisc show` output → qdiscs. Kernel defaults (handle 0:, noqueue, pfifo_fast,
/// mq and its children) are left out: they are "nothing" to qosctl. Sorted by parent
/// (root, ingress, then classes), then handle.
pub fn parse_qdiscs(out: &str) -> Result<Vec<Qdisc>> {
    let mut q: Vec<Qdisc> = qdiscs_with_dev(out)?.into_iter().map(|(_, q)| q).collect();
    q.sort_by_cached_key(|q| (q.parent, q.handle)); // moves each once (see `rest`)
    Ok(q)
}

/// `tc -j -s -d class show` output (JSON, or the text iproute2 ≤ 6.1 prints) → htb
/// classes, sorted by parent then handle. Text rates are marked `rates_from_text`.
pub fn parse_classes(out: &str) -> Result<Vec<Class>> {
    let trimmed = out.trim_start();
    let mut classes = if trimmed.is_empty() {
        // iproute2 ≤ 6.1 prints nothing at all when there are no classes.
        Vec::new()
    } else if trimmed.starts_with('[') {
        let v = json::parse(out).map_err(|e| anyhow!("invalid JSON from tc: {e}"))?;
        let items = v
            .as_array()
            .ok_or_else(|| anyhow!("expected a JSON array of classes"))?;
        let mut res = Vec::new();
        for item in items {
            if let Some(c) = class::from_json(item)? {
                res.push(c);
            }
        }
        res
    } else if trimmed.starts_with("class ") {
        class::from_text(out)?
    } else {
        let first = trimmed.lines().next().unwrap_or("");
        bail!("unexpected class output from tc: \"{first}\"");
    };
    classes.sort_by_cached_key(|c| (c.parent, c.handle)); // moves each once (see `rest`)
    Ok(classes)
}

/// `tc -j -s filter show dev D parent P` output (JSON, or text) → filters on `parent`,
/// sorted by parent, prio, protocol, kind and handle.
pub fn parse_filters(out: &str, parent: Handle) -> Result<Vec<Filter>> {
    filter::parse(out, parent)
}
