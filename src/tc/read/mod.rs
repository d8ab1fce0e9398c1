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
    read_device_with(tc, dev, true)
}

/// The same without counters, for planning: the planner never looks at them, and at
/// 10,000 classes `-s` triples what tc prints and qosctl parses (3.3 MB → 1.1 MB of classes).
pub fn read_config(tc: &Tc, dev: &str) -> Result<DeviceState> {
    read_device_with(tc, dev, false)
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

fn read_device_with(tc: &Tc, dev: &str, stats: bool) -> Result<DeviceState> {
    let args = with_stats(stats, &["-j", "-d", "qdisc", "show", "dev", dev]);
    let out = run_dev(tc, dev, &args)?;
    let qdiscs = parse_qdiscs(&out).with_context(|| format!("reading `{}`", tc.display(&args)))?;
    let mut state = DeviceState {
        device: dev.to_string(),
        ..DeviceState::default()
    };
    if qdiscs.is_empty() {
        return Ok(state);
    }
    if qdiscs.iter().any(|q| q.kind.is_classful()) {
        let args = with_stats(stats, &["-j", "-d", "class", "show", "dev", dev]);
        let out = run_dev(tc, dev, &args)?;
        state.classes =
            parse_classes(&out).with_context(|| format!("reading `{}`", tc.display(&args)))?;
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
        state.filters.extend(read_filters(tc, dev, parent, stats)?);
    }
    state
        .filters
        .sort_by(|a, b| a.parent.cmp(&b.parent).then(a.prio.cmp(&b.prio)));
    state.qdiscs = qdiscs;
    Ok(state)
}

/// Filters on one qdisc. The JSON is read even where tc prints text inside it; only if
/// that fails (a form not seen yet) the plain text dump is read instead.
fn read_filters(tc: &Tc, dev: &str, parent: Handle, stats: bool) -> Result<Vec<Filter>> {
    let p = parent.to_string();
    let args = with_stats(stats, &["-j", "filter", "show", "dev", dev, "parent", &p]);
    let out = run_dev(tc, dev, &args)?;
    match parse_filters(&out, parent) {
        // iproute2 prints a policer's rate, burst and mtu as text only (`print_police`):
        // where the JSON has a policer, the text dump is read for its numbers.
        Ok(f) if f.iter().any(has_police) => {
            let text_args = with_stats(stats, &["filter", "show", "dev", dev, "parent", &p]);
            let text = run_dev(tc, dev, &text_args)?;
            Ok(parse_filters(&text, parent).unwrap_or(f))
        }
        Ok(f) => Ok(f),
        Err(json_err) => {
            let text_args = with_stats(stats, &["filter", "show", "dev", dev, "parent", &p]);
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
    tc.run(args).map_err(|e| {
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
    q.sort_by(|a, b| a.parent.cmp(&b.parent).then(a.handle.cmp(&b.handle)));
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
    classes.sort_by(|a, b| a.parent.cmp(&b.parent).then(a.handle.cmp(&b.handle)));
    Ok(classes)
}

/// `tc -j -s filter show dev D parent P` output (JSON, or text) → filters on `parent`,
/// sorted by parent, prio, protocol, kind and handle.
pub fn parse_filters(out: &str, parent: Handle) -> Result<Vec<Filter>> {
    filter::parse(out, parent)
}
