//! Exact rollback after a failed apply, and the truth about it.
//!
//! - Before the batch, [`snapshot`] records every device the way tc prints it (`-d`, with
//!   `-raw` for classes: their burst and cburst as the kernel keeps them, in ticks). After
//!   a restore the same dump is taken again and compared as a set of entries, so the
//!   message says "restored" only when the kernel reads back exactly as before, and
//!   otherwise names each entry that differs.
//! - The restore re-creates classes with the burst and cburst that give the very ticks the
//!   kernel had ([`exact_size`]), not tc's default, and leaves alone what the failed batch
//!   never touched (a foreign filter equal before and now is not deleted).
//! - What qosctl cannot re-create (foreign classifiers such as u32 with actions, foreign
//!   qdisc kinds) is never lost on a failure: [`batch_order`] puts the commands that
//!   delete such objects at the very end of the batch when nothing else depends on them
//!   (then any failure happens before them; one such command at most, since a failure of a
//!   second would lose the first), and refuses the apply up front otherwise.

use anyhow::{bail, Result};
use std::collections::{BTreeSet, HashMap};

use crate::model::{DeviceState, FilterKind, Handle, Parent, QdiscKind};
use crate::plan::{self, Obj, Op, Plan};
use crate::tc::Tc;
use crate::units::{Rate, Size};

/// One device as tc prints it, without counters.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceDump {
    pub device: String,
    /// Each entry is a line with the indented lines under it, tagged with what was shown.
    pub entries: BTreeSet<String>,
    /// htb class → (buffer, cbuffer) in kernel ticks.
    pub buffers: HashMap<Handle, (u32, u32)>,
}

/// The dumps of `devices`.
pub fn snapshot(tc: &Tc, devices: &[String]) -> Result<Vec<DeviceDump>> {
    devices.iter().map(|d| dump_device(tc, d)).collect()
}

fn dump_device(tc: &Tc, dev: &str) -> Result<DeviceDump> {
    let mut entries = BTreeSet::new();
    let mut buffers = HashMap::new();
    let shows: [(&str, &[&str]); 6] = [
        ("qdisc", &["-d", "qdisc", "show", "dev", dev]),
        ("class", &["-d", "-raw", "class", "show", "dev", dev]),
        ("filter root", &["-d", "filter", "show", "dev", dev]),
        (
            "filter parent ffff:",
            &["-d", "filter", "show", "dev", dev, "parent", "ffff:"],
        ),
        (
            "filter ingress",
            &["-d", "filter", "show", "dev", dev, "ingress"],
        ),
        (
            "filter egress",
            &["-d", "filter", "show", "dev", dev, "egress"],
        ),
    ];
    for (tag, args) in shows {
        let out = tc.run(args)?;
        if tag == "class" {
            buffers = parse_buffers(&out);
        }
        split_entries(&out, tag, &mut entries);
    }
    Ok(DeviceDump {
        device: dev.to_string(),
        entries,
        buffers,
    })
}

/// Entries of one dump: a line that does not start with whitespace, and the indented
/// lines under it. Counters that the kernel bumps by itself are dropped.
fn split_entries(out: &str, tag: &str, set: &mut BTreeSet<String>) {
    let mut cur = String::new();
    let mut flush = |cur: &mut String| {
        if !cur.is_empty() {
            set.insert(format!("{tag}| {}", std::mem::take(cur).trim_end()));
        }
    };
    for l in out.lines().filter(|l| !l.trim().is_empty()) {
        if !l.starts_with([' ', '\t']) {
            flush(&mut cur);
        }
        cur.push_str(&normalize(l.trim_end()));
        cur.push('\n');
    }
    flush(&mut cur);
}

/// htb's `direct_packets_stat N` counts packets: traffic, not configuration. The number of
/// a u32 priority's root table (`fh 803::5`, `key ht 803`) is the kernel's choice, not
/// configuration either: a priority deleted and re-created gets the next free one, so a
/// restored u32 filter equals its old self up to that number (written `R`).
fn normalize(line: &str) -> String {
    let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
    if let Some(i) = words.iter().position(|w| w == "direct_packets_stat") {
        words.drain(i..(i + 2).min(words.len()));
    }
    for i in 1..words.len() {
        let (prev, w) = (words[i - 1].as_str(), words[i].as_str());
        let root =
            |ht: &str| u16::from_str_radix(ht, 16).is_ok_and(|v| (0x800..=0xfff).contains(&v));
        let new = match prev {
            "fh" => w
                .split_once(':')
                .filter(|(ht, _)| root(ht))
                .map(|(_, rest)| format!("R:{rest}")),
            "ht" if i >= 2 && words[i - 2] == "key" => root(w).then(|| "R".to_string()),
            _ => None,
        };
        if let Some(n) = new {
            words[i] = n;
        }
    }
    words.join(" ")
}

/// `class htb 1:10 … buffer [00030c74] cbuffer [00000fa0]` (`tc -raw`) → ticks.
fn parse_buffers(out: &str) -> HashMap<Handle, (u32, u32)> {
    let mut m = HashMap::new();
    for l in out.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (Some(h), Some(b), Some(cb)) = (
            w.get(2).and_then(|h| Handle::parse(h)),
            after(&w, "buffer"),
            after(&w, "cbuffer"),
        ) else {
            continue;
        };
        if w.first() == Some(&"class") {
            m.insert(h, (b, cb));
        }
    }
    m
}

fn after(w: &[&str], key: &str) -> Option<u32> {
    let i = w.iter().position(|x| *x == key)?;
    let v = w.get(i + 1)?.trim_matches(['[', ']']);
    u32::from_str_radix(v, 16).ok()
}

/// iproute2's `tick_in_usec` (tc_core.c `tc_core_init`), from /proc/net/psched.
fn tick_in_usec() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/net/psched").ok()?;
    let v: Vec<u64> = s
        .split_whitespace()
        .map(|x| u64::from_str_radix(x, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let (mut t2us, us2t, clock_res) = (*v.first()? as f64, *v.get(1)? as f64, *v.get(2)? as f64);
    if clock_res == 1e9 {
        t2us = us2t;
    }
    Some(t2us / us2t * (clock_res / 1e6))
}

/// tc's `tc_calc_xmittime(rate, size)`, with its double → unsigned truncations.
fn xmittime(rate_bytes: f64, size: u64, tick: f64) -> u64 {
    let time = (1e6 * (size as f64 / rate_bytes)) as u32;
    (time as f64 * tick) as u32 as u64
}

/// A burst size that tc turns into exactly `ticks` at `rate`, if there is one: how a
/// class's burst goes back as the kernel had it (sending the bytes tc printed goes
/// through tc's rounding twice and comes back a few bytes short: 16362b → 16337b).
pub fn exact_size(rate: Rate, ticks: u32) -> Option<Size> {
    let tick = tick_in_usec()?;
    let r = rate.kernel_bytes() as f64;
    if r <= 0.0 {
        return None;
    }
    // The microseconds t with floor(t * tick) == ticks, then the bytes that give t.
    let t = (ticks as f64 / tick).ceil() as u64;
    let s0 = (t as f64 * r / 1e6).ceil() as u64;
    (s0.saturating_sub(2)..=s0 + 2)
        .find(|s| xmittime(r, *s, tick) == ticks as u64)
        .map(Size)
}

/// Entries that differ between two snapshots of the same devices, for messages.
pub fn differences(before: &[DeviceDump], after: &[DeviceDump]) -> Vec<String> {
    let mut v = Vec::new();
    for (b, a) in before.iter().zip(after) {
        let dev = crate::escape::escape(&b.device);
        for e in b.entries.difference(&a.entries) {
            v.push(format!("{dev}: gone: {}", one_line(e)));
        }
        for e in a.entries.difference(&b.entries) {
            v.push(format!("{dev}: now: {}", one_line(e)));
        }
    }
    v
}

fn one_line(e: &str) -> String {
    crate::escape::escape(&e.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The state to restore to: the one read before, with each class's burst and cburst
/// set to the sizes that reproduce the kernel's ticks.
pub fn restore_targets(before: &[DeviceState], dumps: &[DeviceDump]) -> Vec<DeviceState> {
    before
        .iter()
        .map(|b| {
            let mut b = b.clone();
            if let Some(d) = dumps.iter().find(|d| d.device == b.device) {
                for c in &mut b.classes {
                    if let Some((buf, cbuf)) = d.buffers.get(&c.handle) {
                        c.burst = exact_size(c.rate, *buf).or(c.burst);
                        c.cburst = exact_size(c.ceil, *cbuf).or(c.cburst);
                    }
                }
            }
            b
        })
        .collect()
}

/// The restore operation `op` is not needed: what it would change or remove is the same
/// now as before the apply (the failed batch never got to it).
pub fn untouched(op: &Op, before: &DeviceState, now: &DeviceState) -> bool {
    match op {
        Op::Add { .. } => false,
        Op::Change { obj, .. } | Op::Remove { obj, .. } => match obj {
            Obj::Class(c) => {
                before.class(c.handle).is_some() && before.class(c.handle) == now.class(c.handle)
            }
            Obj::Qdisc(q) => {
                let find = |s: &DeviceState| {
                    s.qdiscs
                        .iter()
                        .find(|x| x.handle == q.handle && x.parent == q.parent)
                        .cloned()
                };
                find(before).is_some() && find(before) == find(now)
            }
            Obj::Filter(f) => before.filters.contains(f) && now.filters.contains(f),
            Obj::FilterPrio { parent, prio, .. } => {
                let at = |s: &DeviceState| -> Vec<_> {
                    s.filters
                        .iter()
                        .filter(|f| f.parent == *parent && f.prio == *prio)
                        .cloned()
                        .collect()
                };
                !at(before).is_empty() && at(before) == at(now)
            }
        },
    }
}

/// An add or change of something qosctl only knows by name (u32, clsact, mq, …).
pub fn writes_foreign(op: &Op) -> bool {
    match op {
        Op::Remove { .. } => false,
        Op::Add { obj, .. } | Op::Change { obj, .. } => match obj {
            Obj::Qdisc(q) => matches!(q.kind, QdiscKind::Other { .. }),
            Obj::Filter(f) => matches!(f.kind, FilterKind::Other { .. }),
            Obj::FilterPrio { .. } => true,
            Obj::Class(_) => false,
        },
    }
}

/// What `op` destroys on `live` that qosctl could not re-create after a failure.
fn losses(op: &Op, live: &DeviceState) -> Vec<String> {
    let Op::Remove { obj, .. } = op else {
        return Vec::new();
    };
    let foreign_filters = |pred: &dyn Fn(&crate::model::Filter) -> bool| -> Vec<String> {
        live.filters
            .iter()
            .filter(|f| matches!(f.kind, FilterKind::Other { .. }) && pred(f))
            .map(|f| {
                format!(
                    "{} filter prio {} on {}",
                    f.kind.kind_name(),
                    f.prio,
                    f.parent
                )
            })
            .collect()
    };
    let foreign_leaves = |pred: &dyn Fn(&crate::model::Qdisc) -> bool| -> Vec<String> {
        live.qdiscs
            .iter()
            .filter(|q| matches!(q.kind, QdiscKind::Other { .. }) && pred(q))
            .map(|q| format!("{} qdisc {}", q.kind.kind_name(), q.handle))
            .collect()
    };
    match obj {
        Obj::Qdisc(q) => {
            let mut v = Vec::new();
            if matches!(q.kind, QdiscKind::Other { .. }) {
                v.push(format!("{} qdisc {}", q.kind.kind_name(), q.handle));
            }
            match q.parent {
                Parent::Ingress => v.extend(foreign_filters(&|f| f.parent.is_ingress_side())),
                Parent::Root => {
                    v.extend(foreign_filters(&|f| f.parent == q.handle));
                    v.extend(foreign_leaves(&|l| matches!(l.parent, Parent::Class(_))));
                }
                Parent::Class(_) => {}
            }
            v
        }
        Obj::Class(c) => foreign_leaves(&|l| l.parent == Parent::Class(c.handle)),
        Obj::Filter(f) => foreign_filters(&|x| x == f),
        Obj::FilterPrio { parent, prio, .. } => {
            foreign_filters(&|f| f.parent == *parent && f.prio == *prio)
        }
    }
}

/// Whether `op` (a removal of something not re-creatable) can run after every other
/// command of the device: nothing else in the plan needs it gone first.
fn movable(op: &Op, ops: &[Op], live: &DeviceState) -> bool {
    let Op::Remove { obj, .. } = op else {
        return false;
    };
    let others = || ops.iter().filter(move |o| *o != op);
    match obj {
        // The ingress side is independent of the root tree, unless the plan writes there.
        Obj::Qdisc(q) if q.parent == Parent::Ingress => others().all(|o| !o.is_ingress_side()),
        Obj::Filter(_) | Obj::FilterPrio { .. } => {
            let (parent, prio) = match obj {
                Obj::Filter(f) => (f.parent, f.prio),
                Obj::FilterPrio { parent, prio, .. } => (*parent, *prio),
                _ => unreachable!(),
            };
            let targets: Vec<Handle> = live
                .filters
                .iter()
                .filter(|f| f.parent == parent && f.prio == prio)
                .filter_map(|f| f.classid)
                .collect();
            others().all(|o| match o {
                // A class a filter points at cannot be deleted while the filter exists.
                Op::Remove {
                    obj: Obj::Class(c), ..
                } => !targets.contains(&c.handle),
                Op::Remove {
                    obj: Obj::Qdisc(q), ..
                } => q.parent != Parent::Root,
                Op::Add {
                    obj: Obj::Filter(f),
                    ..
                } => (f.parent, f.prio) != (parent, prio),
                _ => true,
            })
        }
        _ => false,
    }
}

/// The batch lines of `plan`, in the order apply runs them: removals of what qosctl could
/// not re-create come last (so a failure never loses them), or the apply is refused
/// before anything runs when such a removal cannot wait until the end.
pub fn batch_order(plan: &Plan, live: &[DeviceState], netns: Option<&str>) -> Result<Vec<String>> {
    let mut first = Vec::new();
    let mut last = Vec::new();
    let mut refused = Vec::new();
    for (d, l) in plan.devices.iter().zip(live) {
        for op in &d.ops {
            let lost = losses(op, l);
            let line = plan::command(&d.device, op);
            if lost.is_empty() {
                first.push(line);
            } else if movable(op, &d.ops, l) {
                last.push(line);
            } else {
                refused.push(format!(
                    "  {}: `tc {line}` removes {}",
                    crate::escape::escape(&d.device),
                    lost.join(", ")
                ));
            }
        }
    }
    // Two such removals cannot both come last: a failure of the second would lose the first.
    if last.len() > 1 {
        refused.extend(last.drain(..).map(|l| {
            format!(
                "  `tc {}` (one of several such removals)",
                crate::escape::escape(&l)
            )
        }));
    }
    if !refused.is_empty() {
        let n = netns.map(|n| format!(" -n {n}")).unwrap_or_default();
        bail!(
            "refusing to apply: if a command of this plan failed, qosctl could not put back \
             objects it cannot re-create (foreign classifiers or qdisc kinds), and the plan must \
             remove them before other changes:\n{}\nremove them yourself first (e.g. `tc{n} \
             qdisc del dev DEV root`, or `qosctl reset --dev DEV`), then apply again",
            refused.join("\n")
        );
    }
    first.extend(last);
    Ok(first)
}

#[cfg(test)]
mod u32_tests {
    #[test]
    fn u32_root_table_numbers_are_not_configuration() {
        assert_eq!(
            super::normalize("filter parent 1: protocol ip pref 796 u32 chain 0 fh 803::1ab order 427 key ht 803 bkt 0 *flowid 1:10"),
            "filter parent 1: protocol ip pref 796 u32 chain 0 fh R::1ab order 427 key ht R bkt 0 *flowid 1:10"
        );
        // qosctl's own tables (below 800:) are configuration: kept.
        assert_eq!(
            super::normalize("filter parent 1: protocol ip pref 796 u32 chain 0 fh 31c:4:1fe order 510 key ht 31c bkt 4"),
            "filter parent 1: protocol ip pref 796 u32 chain 0 fh 31c:4:1fe order 510 key ht 31c bkt 4"
        );
        assert_eq!(
            super::normalize(
                "filter parent 1: protocol ip pref 796 u32 chain 0 fh 801: ht divisor 1"
            ),
            "filter parent 1: protocol ip pref 796 u32 chain 0 fh R: ht divisor 1"
        );
    }
}
