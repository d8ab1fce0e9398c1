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

/// The dumps of `devices`, all started at once. `ingress_expected(dev)`: whether an
/// ingress or clsact qdisc is expected on `dev` (the planning read saw one); then its
/// filter dumps under `ffff:`, `ingress` and `egress` start with the others. Without such
/// a qdisc they are empty (the kernel finds no qdisc to dump filters of), so they are only
/// taken when the device's own qdisc dump shows one: each dump stays exact, whatever was
/// expected, and a snapshot after a restore compares like with like.
pub fn snapshot(
    tc: &Tc,
    devices: &[String],
    ingress_expected: impl Fn(&str) -> bool,
) -> Result<Vec<DeviceDump>> {
    let started: Vec<Dumps> = devices
        .iter()
        .map(|d| Dumps::start(tc, d, ingress_expected(d)))
        .collect();
    started.into_iter().map(|s| s.finish(tc)).collect()
}

/// The dumps every device gets: what tc shows on every device, its classes with `-raw`
/// (their buffers in ticks), and the filters of its root qdisc.
const ALWAYS: [(&str, &[&str]); 3] = [
    ("qdisc", &["-d", "qdisc", "show"]),
    ("class", &["-d", "-raw", "class", "show"]),
    ("filter root", &["-d", "filter", "show"]),
];

/// The filter dumps of the ingress side (an `ingress` qdisc keeps its filters on `ffff:`,
/// clsact on its two hooks).
const INGRESS_SIDE: [(&str, &[&str]); 3] = [
    ("filter parent ffff:", &["parent", "ffff:"]),
    ("filter ingress", &["ingress"]),
    ("filter egress", &["egress"]),
];

/// One device's dumps, running side by side (each is a tc process of its own: `tc
/// -batch` would print them one after the other with nothing in between, and `-raw`, which
/// the classes need, also changes how u32 prints its handles).
struct Dumps {
    dev: String,
    always: Vec<crate::tc::Started>,
    ingress: Option<Vec<crate::tc::Started>>,
}

impl Dumps {
    fn start(tc: &Tc, dev: &str, ingress: bool) -> Dumps {
        let always = ALWAYS
            .iter()
            .map(|(_, show)| tc.start(&[*show, &["dev", dev]].concat()))
            .collect();
        Dumps {
            dev: dev.to_string(),
            always,
            ingress: ingress.then(|| start_ingress_side(tc, dev)),
        }
    }

    fn finish(self, tc: &Tc) -> Result<DeviceDump> {
        let mut entries = BTreeSet::new();
        let mut buffers = HashMap::new();
        let mut ingress_side = false;
        for ((tag, _), started) in ALWAYS.iter().zip(self.always) {
            let out = started.output()?;
            match *tag {
                "qdisc" => ingress_side = has_ingress_side(&out),
                "class" => buffers = parse_buffers(&out),
                _ => {}
            }
            split_entries(&out, tag, &mut entries);
        }
        // Not expected but there (the state changed since the planning read, or a restore
        // left one): dumped now, so that nothing there goes unseen.
        let ingress = match self.ingress {
            Some(started) => Some(started),
            None => ingress_side.then(|| start_ingress_side(tc, &self.dev)),
        };
        for ((tag, _), started) in INGRESS_SIDE.iter().zip(ingress.into_iter().flatten()) {
            split_entries(&started.output()?, tag, &mut entries);
        }
        Ok(DeviceDump {
            device: self.dev,
            entries,
            buffers,
        })
    }
}

fn start_ingress_side(tc: &Tc, dev: &str) -> Vec<crate::tc::Started> {
    INGRESS_SIDE
        .iter()
        .map(|(_, at)| tc.start(&[&["-d", "filter", "show", "dev", dev], *at].concat()))
        .collect()
}

/// Whether a text qdisc dump shows an ingress-side qdisc: `qdisc ingress ffff: parent
/// ffff:fff1 …` or `qdisc clsact ffff: parent ffff:fff1` (any qdisc at ffff:fff1 counts).
fn has_ingress_side(qdiscs: &str) -> bool {
    qdiscs.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.first() == Some(&"qdisc")
            && (matches!(w.get(1), Some(&"ingress" | &"clsact")) || w.contains(&"ffff:fff1"))
    })
}

impl DeviceDump {
    /// Whether the device had an ingress or clsact qdisc when this dump was taken.
    pub fn has_ingress_side(&self) -> bool {
        let tag = format!("{}| ", ALWAYS[0].0);
        self.entries
            .iter()
            .filter_map(|e| e.strip_prefix(&tag))
            .any(has_ingress_side)
    }
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
