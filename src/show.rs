//! `qosctl show`: the live qdiscs, classes and filters of devices, with their counters;
//! with `--policy`, the policy's names and rates beside the live ones.
//!
//! Output goes through `writeln!` on a locked stdout so a closed pipe (`qosctl show | head`)
//! surfaces as an `io::Error` that `main` treats as success, never as a panic.

use anyhow::{Context, Result};
use comfy_table::{presets, CellAlignment, Table};
use std::collections::BTreeMap;
use std::io::Write;

use crate::cli::{Global, ShowArgs};
use crate::kind::{self, Style};
use crate::model::{
    Class, Desired, DesiredDevice, DeviceState, Filter, Handle, Parent, Qdisc, Stats,
};
use crate::tc::read::{list_devices, read_device};
use crate::tc::Tc;
use crate::units::Rate;
use crate::Exit;

pub fn run(global: &Global, args: &ShowArgs) -> Result<Exit> {
    let tc = Tc::locate(global)?;
    let desired: Option<Desired> = match &args.policy {
        Some(p) => Some(crate::policy::load(p)?),
        None => None,
    };
    let mut devices = target_devices(&tc, &args.devices, desired.as_ref())?;
    let ifbs = with_ifbs(global, &mut devices, desired.as_ref());
    let mut states = match args.interval {
        Some(iv) => crate::rates::read_measured(&tc, &devices, iv)?,
        None => devices
            .iter()
            .map(|dev| read_device(&tc, dev))
            .collect::<Result<Vec<_>>>()?,
    };
    name_all(&mut states, desired.as_ref());

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let file = crate::state::json::StateFile::from_states(&states, global.netns.as_deref());
        let json = serde_json::to_string_pretty(&file).context("serializing the live state")?;
        writeln!(out, "{json}")?;
        return Ok(Exit::Ok);
    }
    if states.is_empty() {
        writeln!(
            out,
            "{}: all are at the kernel default.",
            no_tree(global.netns.as_deref())
        )?;
        return Ok(Exit::Ok);
    }
    // An interface's ifb is printed under it, as its ingress tree.
    let under = |dev: &str| {
        ifbs.iter()
            .find(|(ifb, owner)| ifb == dev && states.iter().any(|s| &s.device == owner))
    };
    let mut first = true;
    for st in states.iter().filter(|s| under(&s.device).is_none()) {
        if !first {
            writeln!(out)?;
        }
        first = false;
        let want = desired_for(desired.as_ref(), &st.device);
        write_device(&mut out, st, want)?;
        let ifb = ifbs.iter().find(|(_, owner)| owner == &st.device);
        if let Some(ifb_state) = ifb.and_then(|(i, _)| states.iter().find(|s| &s.device == i)) {
            writeln!(
                out,
                "{} ingress tree, on ifb {}:",
                crate::escape::escape(&st.device),
                crate::escape::escape(&ifb_state.device)
            )?;
            let want = desired_for(desired.as_ref(), &ifb_state.device);
            write_tables(&mut out, ifb_state, want)?;
        }
    }
    out.flush()?;
    Ok(Exit::Ok)
}

/// The ifbs qosctl made for the devices shown, as (ifb, interface): added to `devices` so
/// that an interface's ingress tree is shown with it. A policy's ifb that does not exist
/// (not applied yet) is dropped from `devices`. Without `ip` there is nothing to add.
fn with_ifbs(
    global: &Global,
    devices: &mut Vec<String>,
    desired: Option<&Desired>,
) -> Vec<(String, String)> {
    let Ok(ip) = crate::link::Ip::locate(global.netns.clone()) else {
        return Vec::new();
    };
    let Ok(all) = ip.ifbs() else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for i in &all {
        if let Some(owner) = &i.owner {
            out.push((i.name.clone(), owner.clone()));
        }
    }
    let planned = |d: &String| {
        desired.is_some_and(|w| {
            w.devices
                .iter()
                .any(|x| &x.state.device == d && x.ifb_for.is_some())
        })
    };
    devices.retain(|d| !planned(d) || all.iter().any(|i| &i.name == d));
    for (ifb, owner) in &out {
        if devices.contains(owner) && !devices.contains(ifb) {
            devices.push(ifb.clone());
        }
    }
    out
}

/// "No device (in network namespace NS) has a qdisc tree", for `show` and `top`.
pub fn no_tree(netns: Option<&str>) -> String {
    let ns = netns
        .map(|n| format!(" in network namespace {n}"))
        .unwrap_or_default();
    format!("No device{ns} has a qdisc tree")
}

/// The devices `show`, `top` and `metrics` read: those named, else those of the policy,
/// else every device with a qdisc tree.
pub fn target_devices(tc: &Tc, named: &[String], desired: Option<&Desired>) -> Result<Vec<String>> {
    Ok(if !named.is_empty() {
        named.to_vec()
    } else if let Some(d) = desired {
        d.devices.iter().map(|d| d.state.device.clone()).collect()
    } else {
        list_devices(tc)?
    })
}

/// Gives the live objects of every state the policy's names ([`name_from_policy`]).
pub fn name_all(states: &mut [DeviceState], desired: Option<&Desired>) {
    for st in states {
        if let Some(want) = desired_for(desired, &st.device) {
            name_from_policy(st, &want.state);
        }
    }
}

pub fn desired_for<'a>(desired: Option<&'a Desired>, dev: &str) -> Option<&'a DesiredDevice> {
    desired?.devices.iter().find(|d| d.state.device == dev)
}

/// Copies the policy's names onto the live objects with the same handles, so `--json`
/// and the tables can say which policy entry each live object is.
fn name_from_policy(live: &mut DeviceState, want: &DeviceState) {
    for q in &mut live.qdiscs {
        if let Some(w) = want.qdisc(q.handle) {
            q.name.clone_from(&w.name);
        }
    }
    for c in &mut live.classes {
        if let Some(w) = want.class(c.handle) {
            c.name.clone_from(&w.name);
        }
    }
    // Only a filter the policy itself describes gets a name; one that merely steers into a
    // policy class is not the policy's (apply removes it).
    for f in &mut live.filters {
        // By key: a u32 filter the policy writes `::5` reads back `800::5`.
        let key = kind::filter::key(f);
        let same = want.filters.iter().find(|w| {
            w.kind.kind_name() == f.kind.kind_name()
                && kind::filter::key(w) == key
                && w.classid == f.classid
        });
        f.name = same.and_then(|w| w.name.clone());
    }
}

fn write_device(
    out: &mut impl Write,
    st: &DeviceState,
    want: Option<&DesiredDevice>,
) -> Result<()> {
    match want {
        Some(w) => writeln!(
            out,
            "{} (policy: {})",
            crate::escape::escape(&st.device),
            crate::escape::escape(&w.alias)
        )?,
        None => writeln!(out, "{}", crate::escape::escape(&st.device))?,
    }
    write_tables(out, st, want)
}

/// The qdisc, class and filter tables of one device.
fn write_tables(
    out: &mut impl Write,
    st: &DeviceState,
    want: Option<&DesiredDevice>,
) -> Result<()> {
    if st.is_default() {
        writeln!(out, "  kernel default (no qdisc tree)")?;
        return Ok(());
    }
    let named = want.is_some();
    writeln!(out, "{}", qdisc_table(&st.qdiscs, named))?;
    if !st.classes.is_empty() {
        writeln!(out, "{}", class_table(&st.classes, want.map(|w| &w.state)))?;
    }
    if !st.filters.is_empty() {
        let folded = kind::filter::u32::fold_blocks(&st.filters);
        writeln!(out, "{}", filter_table(&folded, named))?;
    }
    Ok(())
}

fn new_table(header: Vec<&str>, right_from: usize) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    let n = header.len();
    t.set_header(crate::term::header(header));
    crate::term::fit(&mut t);
    for i in right_from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The counters every table ends with.
const COUNTERS: [&str; 6] = [
    "bytes",
    "packets",
    "drops",
    "overlimits",
    "backlog",
    "rate now",
];

fn counters(s: Option<&Stats>) -> Vec<String> {
    match s {
        None => vec!["-".to_string(); COUNTERS.len()],
        Some(s) => vec![
            s.bytes.to_string(),
            s.packets.to_string(),
            s.drops.to_string(),
            s.overlimits.to_string(),
            format!("{}B {}p", s.backlog_bytes, s.backlog_packets),
            // qosctl's measurement (`--interval`) when there is one, else the kernel's.
            s.rate_measured_bps
                .map(|b| crate::top::human_bits(b as f64))
                .or_else(|| s.rate_bps.map(|b| Rate::from_bytes(b).to_string()))
                .unwrap_or_else(|| "-".into()),
        ],
    }
}

fn qdisc_table(qs: &[Qdisc], named: bool) -> Table {
    let mut header = vec!["qdisc", "parent", "kind", "options"];
    if named {
        header.push("policy");
    }
    let first_counter = header.len();
    header.extend(COUNTERS);
    let mut t = new_table(header, first_counter);
    for q in qs {
        let parent = match q.parent {
            Parent::Root => "root".to_string(),
            Parent::Ingress => "ingress".to_string(),
            Parent::Class(h) => h.to_string(),
        };
        let mut row = vec![
            q.handle.to_string(),
            parent,
            q.kind.kind_name().to_string(),
            kind::qdisc::options(&q.kind, Style::Full),
        ];
        if named {
            row.push(crate::escape::escape(q.name.as_deref().unwrap_or_default()));
        }
        row.extend(counters(q.stats.as_ref()));
        t.add_row(row);
    }
    crate::term::shrink(
        &mut t,
        &["options", "policy"],
        &["overlimits", "packets", "parent", "bytes", "backlog"],
    );
    t
}

/// Classes in tree order (each parent before its children, siblings by handle), with the
/// depth for indentation.
fn tree_order(cs: &[Class]) -> Vec<(usize, &Class)> {
    let mut children: BTreeMap<Option<Handle>, Vec<&Class>> = BTreeMap::new();
    for c in cs {
        // A class whose parent is not in the dump is shown at the top rather than lost.
        let p = c.parent.filter(|p| cs.iter().any(|x| x.handle == *p));
        children.entry(p).or_default().push(c);
    }
    for v in children.values_mut() {
        v.sort_by_key(|c| c.handle);
    }
    let mut out = Vec::with_capacity(cs.len());
    let mut stack: Vec<(usize, &Class)> = children
        .get(&None)
        .map(|v| v.iter().rev().map(|c| (0, *c)).collect())
        .unwrap_or_default();
    while let Some((depth, c)) = stack.pop() {
        out.push((depth, c));
        // The depth bound keeps a (kernel-impossible) cycle from looping forever.
        if depth < cs.len() {
            if let Some(kids) = children.get(&Some(c.handle)) {
                stack.extend(kids.iter().rev().map(|k| (depth + 1, *k)));
            }
        }
    }
    out
}

fn class_table(cs: &[Class], want: Option<&DeviceState>) -> Table {
    let mut header = vec!["class", "parent"];
    if want.is_some() {
        header.push("policy");
    }
    header.extend(["rate", "ceil"]);
    if want.is_some() {
        header.extend(["policy rate", "policy ceil"]);
    }
    header.push("prio");
    let first_counter = header.len();
    header.extend(COUNTERS);
    let mut t = new_table(header, first_counter);
    for (depth, c) in tree_order(cs) {
        let mut row = vec![
            format!("{}{}", "  ".repeat(depth), c.handle),
            c.parent.map_or("root".into(), |p| p.to_string()),
        ];
        let w = want.and_then(|w| w.class(c.handle));
        if want.is_some() {
            row.push(crate::escape::escape(c.name.as_deref().unwrap_or_default()));
        }
        row.push(c.rate.to_string());
        row.push(c.ceil.to_string());
        if want.is_some() {
            let mark = |live: Rate, wanted: Rate| {
                let live_cmp = if c.rates_from_text {
                    wanted.tc_text_rounded()
                } else {
                    wanted
                };
                // A `*` flags a live rate that differs from the policy (in the kernel's units).
                if live.same_in_kernel(live_cmp) {
                    wanted.to_string()
                } else {
                    format!("{wanted} *")
                }
            };
            row.push(
                w.map(|w| mark(c.rate, w.rate))
                    .unwrap_or_else(|| "-".into()),
            );
            row.push(
                w.map(|w| mark(c.ceil, w.ceil))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        row.push(c.prio.map_or("-".into(), |p| p.to_string()));
        row.extend(counters(c.stats.as_ref()));
        t.add_row(row);
    }
    crate::term::shrink(
        &mut t,
        &["policy"],
        &[
            "overlimits",
            "packets",
            "prio",
            "policy rate",
            "policy ceil",
            "parent",
            "bytes",
            "backlog",
        ],
    );
    t
}

fn filter_table(fs: &[Filter], named: bool) -> Table {
    let mut header = vec![
        "filter", "prio", "protocol", "kind", "handle", "match", "classid",
    ];
    if named {
        header.push("policy");
    }
    let first_counter = header.len();
    header.extend(["bytes", "packets"]);
    let mut t = new_table(header, first_counter);
    for f in fs {
        let (handle, summary) = kind::filter::columns(&f.kind);
        let mut row = vec![
            f.parent.to_string(),
            f.prio.to_string(),
            f.protocol.clone(),
            f.kind.kind_name().to_string(),
            handle,
            summary,
            f.classid.map_or("-".into(), |c| c.to_string()),
        ];
        if named {
            row.push(crate::escape::escape(f.name.as_deref().unwrap_or_default()));
        }
        match &f.stats {
            Some(s) => {
                row.push(if s.bytes > 0 || s.packets == 0 {
                    s.bytes.to_string()
                } else {
                    "-".into()
                });
                row.push(s.packets.to_string());
            }
            None => row.extend(["-".to_string(), "-".to_string()]),
        }
        t.add_row(row);
    }
    crate::term::shrink(
        &mut t,
        &["match", "policy"],
        &["packets", "protocol", "handle", "prio"],
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FilterKind;

    fn class(minor: u16, rate: u64, ceil: u64, name: Option<&str>) -> Class {
        let parent = (minor != 1).then_some(Handle::new(1, 1));
        Class {
            name: name.map(str::to_string),
            ..Class::new(Handle::new(1, minor), parent, Rate(rate), Rate(ceil))
        }
    }

    #[test]
    fn policy_columns_flag_rates_that_differ() {
        let mut live = DeviceState {
            device: "v0".into(),
            classes: vec![
                class(1, 100_000_000, 100_000_000, None),
                class(0x10, 20_000_000, 50_000_000, None),
                // 123456789bit read from text prints as 123456Kbit: still in sync.
                Class {
                    rates_from_text: true,
                    ..class(0x20, 123_456_000, 100_000_000, None)
                },
                class(0x30, 1_000_000, 100_000_000, None),
            ],
            ..DeviceState::default()
        };
        let want = DeviceState {
            device: "v0".into(),
            classes: vec![
                class(1, 100_000_000, 100_000_000, Some("lan")),
                class(0x10, 20_000_000, 60_000_000, Some("lan/voice")),
                class(0x20, 123_456_789, 100_000_000, Some("lan/bulk")),
            ],
            ..DeviceState::default()
        };
        name_from_policy(&mut live, &want);
        assert_eq!(live.classes[1].name.as_deref(), Some("lan/voice"));
        assert_eq!(live.classes[3].name, None, "1:30 is not in the policy");
        let t = class_table(&live.classes, Some(&want)).to_string();
        let line = |h: &str| {
            t.lines()
                .find(|l| l.contains(&format!(" {h} ")))
                .unwrap_or_else(|| panic!("{h} in\n{t}"))
                .to_string()
        };
        assert!(line("1:10").contains("lan/voice"), "{t}");
        assert!(line("1:10").contains("60mbit *"), "ceil differs:\n{t}");
        assert!(
            !line("1:20").contains('*'),
            "text rounding is not a diff:\n{t}"
        );
        assert!(line("1:30").contains(" - "), "{t}");
    }

    #[test]
    fn only_filters_the_policy_describes_get_its_name() {
        let fw = |mark: u32, name: Option<&str>| Filter {
            parent: Handle::qdisc(1),
            prio: 10,
            protocol: "ip".into(),
            kind: FilterKind::Fw {
                mark,
                mask: u32::MAX,
            },
            classid: Some(Handle::new(1, 0x10)),
            name: name.map(str::to_string),
            stats: None,
        };
        let u32f = Filter {
            kind: FilterKind::Other {
                kind: "u32".into(),
                handle: Some("800::800".into()),
                summary: String::new(),
            },
            prio: 1,
            ..fw(0, None)
        };
        let mut live = DeviceState {
            device: "v0".into(),
            filters: vec![u32f, fw(0x10, None), fw(0x11, None)],
            ..DeviceState::default()
        };
        let want = DeviceState {
            device: "v0".into(),
            classes: vec![class(0x10, 1, 1, Some("lan/voice"))],
            filters: vec![fw(0x10, Some("lan/voice"))],
            ..DeviceState::default()
        };
        name_from_policy(&mut live, &want);
        let names: Vec<Option<&str>> = live.filters.iter().map(|f| f.name.as_deref()).collect();
        assert_eq!(names, [None, Some("lan/voice"), None]);
    }

    #[test]
    fn tree_order_puts_children_under_parents() {
        let cs = vec![
            class(0x20, 1, 1, None),
            class(0x1, 1, 1, None),
            Class {
                parent: Some(Handle::new(1, 0x20)),
                ..class(0x21, 1, 1, None)
            },
            class(0x10, 1, 1, None),
        ];
        let order: Vec<(usize, String)> = tree_order(&cs)
            .into_iter()
            .map(|(d, c)| (d, c.handle.to_string()))
            .collect();
        assert_eq!(
            order,
            [
                (0, "1:1".to_string()),
                (1, "1:10".to_string()),
                (1, "1:20".to_string()),
                (2, "1:21".to_string())
            ]
        );
    }

    #[test]
    fn qdisc_options_read_like_tc() {
        use crate::kind::qdisc::options;
        use crate::model::{Loss, Netem, QdiscKind, Tbf};
        use crate::units::{Prob, Size, Time};
        let n = QdiscKind::Netem(Box::new(Netem {
            delay: Some(Time(40_000_000)),
            jitter: Some(Time(5_000_000)),
            loss: Some(Loss::Random {
                p: Prob(0.005),
                correlation: None,
            }),
            limit: Some(1000),
            ..Netem::default()
        }));
        // The same words as `check` and the plan (one summary per kind), in tc's units.
        assert_eq!(
            options(&n, Style::Full),
            "delay 40ms jitter 5ms loss 0.5% limit 1000"
        );
        let t = QdiscKind::Tbf(Tbf {
            rate: Rate(4_000_000),
            burst: Size(10_240),
            limit: None,
            latency: Some(Time(50_000_000)),
        });
        assert_eq!(
            options(&t, Style::Full),
            "rate 4mbit burst 10240B latency 50ms"
        );
        assert_eq!(
            options(&t, Style::Brief),
            "rate 4mbit burst 10KiB latency 50ms"
        );
    }
}
