//! diff(desired, live) → ordered operations. A pure function of two models.
//!
//! What changes in place: class parameters (`tc class change`), leaf qdisc options of
//! the same kind (`tc qdisc change`), a mark moving to another class (`tc filter replace`).
//! What is removed and re-added, and only that: a class that moves to another parent
//! (with its subtree), a leaf qdisc that changes kind, a netem qdisc that must drop rate,
//! slot or ecn (netem keeps them on change), and the whole root tree when htb's `default`
//! changes (the kernel has no `change` for htb itself).
//!
//! Apply order: filters are removed before the classes they point to, classes deepest
//! first; then classes are added or changed top-down, then their leaf qdiscs, then filters.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::model::{
    Class, DeviceState, Filter, FilterKind, Handle, Loss, Netem, Parent, Qdisc, QdiscKind,
};
use crate::tc::render;
use crate::units::{Prob, Rate, Size, Time};

/// One object of the model, for plan entries.
#[allow(clippy::large_enum_variant)] // see QdiscKind
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "object", rename_all = "snake_case")]
pub enum Obj {
    Qdisc(Qdisc),
    Class(Class),
    Filter(Filter),
    /// Every filter at one priority of one qdisc: how foreign classifiers (u32, bpf, …),
    /// or filters of another protocol at qosctl's priority, are removed.
    FilterPrio {
        parent: Handle,
        prio: u16,
        protocol: String,
        kinds: Vec<String>,
        count: usize,
    },
}

/// A field that differs, in display units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    pub field: &'static str,
    pub live: String,
    pub desired: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Add {
        #[serde(flatten)]
        obj: Obj,
        /// Why this is a re-add, when it is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Change {
        #[serde(flatten)]
        obj: Obj,
        fields: Vec<FieldDiff>,
    },
    Remove {
        #[serde(flatten)]
        obj: Obj,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct DevicePlan {
    pub device: String,
    /// The policy key, when the device comes from a policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub ops: Vec<Op>,
    /// Filters the kernel deletes with an ingress or clsact qdisc this plan removes: no
    /// command of their own, listed so that the plan shows all it destroys ([`goes_with`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub goes_with: Vec<Filter>,
}

/// The live filters that go with an ingress or clsact qdisc that `ops` remove. A u32
/// hash-table header (no match of its own) is not a filter anyone wrote: left out.
pub fn goes_with(ops: &[Op], live: &DeviceState) -> Vec<Filter> {
    let removes_ingress = ops.iter().any(
        |op| matches!(op, Op::Remove { obj: Obj::Qdisc(q), .. } if q.parent == Parent::Ingress),
    );
    if !removes_ingress {
        return Vec::new();
    }
    live.filters
        .iter()
        .filter(|f| f.parent.is_ingress_side())
        .filter(|f| match &f.kind {
            FilterKind::Other {
                summary, handle, ..
            } => {
                !(summary.starts_with("ht divisor")
                    && handle.as_deref().is_some_and(|h| h.ends_with(':')))
            }
            FilterKind::Fw { .. } => true,
        })
        .cloned()
        .collect()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub devices: Vec<DevicePlan>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.devices.iter().all(|d| d.ops.is_empty())
    }
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for op in self.devices.iter().flat_map(|d| &d.ops) {
            match op {
                Op::Add { .. } => s.add += 1,
                Op::Change { .. } => s.change += 1,
                Op::Remove { .. } => s.remove += 1,
            }
        }
        s
    }
    /// The `tc -batch` lines of the whole plan, in apply order.
    pub fn commands(&self) -> Vec<String> {
        self.devices
            .iter()
            .flat_map(|d| d.ops.iter().map(move |op| command(&d.device, op)))
            .collect()
    }
}

impl DevicePlan {
    pub fn commands(&self) -> Vec<String> {
        self.ops
            .iter()
            .map(|op| command(&self.device, op))
            .collect()
    }
}

/// The tc line for one operation.
pub fn command(dev: &str, op: &Op) -> String {
    match op {
        Op::Add { obj, .. } => match obj {
            Obj::Qdisc(q) => render::qdisc_add(dev, q),
            Obj::Class(c) => render::class_add(dev, c),
            Obj::Filter(f) => render::filter_add(dev, f),
            Obj::FilterPrio { .. } => unreachable!("filter priorities are only removed"),
        },
        Op::Change { obj, .. } => match obj {
            Obj::Qdisc(q) => render::qdisc_change(dev, q),
            Obj::Class(c) => render::class_change(dev, c),
            Obj::Filter(f) => render::filter_change(dev, f),
            Obj::FilterPrio { .. } => unreachable!("filter priorities are only removed"),
        },
        Op::Remove { obj, .. } => match obj {
            Obj::Qdisc(q) => render::qdisc_del(dev, q),
            Obj::Class(c) => render::class_del(dev, c),
            Obj::Filter(f) => render::filter_del(dev, f),
            Obj::FilterPrio {
                parent,
                prio,
                protocol,
                ..
            } => format!("filter del dev {dev} parent {parent} protocol {protocol} prio {prio}"),
        },
    }
}

/// Plans one device: what to run so that `live` becomes `desired`.
pub fn diff_device(desired: &DeviceState, live: &DeviceState) -> Vec<Op> {
    let mut ops = Vec::new();

    // Ingress: qosctl writes none yet, so whatever hangs there on a managed device goes.
    for q in live.qdiscs.iter().filter(|q| q.parent == Parent::Ingress) {
        if !desired.qdiscs.iter().any(|d| d.parent == Parent::Ingress) {
            ops.push(Op::Remove {
                obj: Obj::Qdisc(q.clone()),
                reason: None,
            });
        }
    }

    let d_root = desired.root_qdisc();
    let l_root = live.root_qdisc();
    match (d_root, l_root) {
        (None, None) => {}
        (None, Some(l)) => ops.push(Op::Remove {
            obj: Obj::Qdisc(l.clone()),
            reason: None,
        }),
        (Some(_), None) => add_all(desired, &mut ops, None),
        (Some(d), Some(l)) => {
            if let Some(reason) = root_rebuild_reason(d, l) {
                ops.push(Op::Remove {
                    obj: Obj::Qdisc(l.clone()),
                    reason: Some(reason.clone()),
                });
                add_all(desired, &mut ops, Some(reason));
            } else if matches!(d.kind, QdiscKind::Htb(_)) {
                diff_tree(desired, live, d.handle, &mut ops);
            } else {
                diff_qdisc(d, l, &mut ops);
            }
        }
    }
    ops
}

/// Why the root qdisc cannot be kept, if it cannot.
fn root_rebuild_reason(d: &Qdisc, l: &Qdisc) -> Option<String> {
    if d.kind.kind_name() != l.kind.kind_name() {
        return Some(format!(
            "root qdisc changes kind {} -> {}",
            l.kind.kind_name(),
            d.kind.kind_name()
        ));
    }
    if d.handle != l.handle {
        return Some(format!("root handle changes {} -> {}", l.handle, d.handle));
    }
    if let (QdiscKind::Htb(dh), QdiscKind::Htb(lh)) = (&d.kind, &l.kind) {
        if dh.default != lh.default {
            return Some(format!(
                "htb default changes {:x} -> {:x}; htb cannot change it in place, the tree is rebuilt",
                lh.default, dh.default
            ));
        }
        if dh.r2q.unwrap_or(10) != lh.r2q.unwrap_or(10) {
            return Some(
                "htb r2q changes; htb cannot change it in place, the tree is rebuilt".into(),
            );
        }
    }
    None
}

/// Depth of a class in its tree (1 for a class under the root qdisc).
fn depths(classes: &[Class]) -> HashMap<Handle, usize> {
    let parent: HashMap<Handle, Option<Handle>> =
        classes.iter().map(|c| (c.handle, c.parent)).collect();
    let mut out = HashMap::with_capacity(classes.len());
    for c in classes {
        let mut d = 1;
        let mut p = c.parent;
        // Bounded walk: a malformed (cyclic) live dump must not hang us.
        while let Some(h) = p {
            if d > classes.len() {
                break;
            }
            d += 1;
            p = parent.get(&h).copied().flatten();
        }
        out.insert(c.handle, d);
    }
    out
}

fn sorted_top_down(classes: &[Class]) -> Vec<&Class> {
    let depth = depths(classes);
    let mut v: Vec<&Class> = classes.iter().collect();
    v.sort_by_key(|c| (depth[&c.handle], c.handle));
    v
}

/// Everything of `desired` added to an empty root (first apply or rebuild).
fn add_all(desired: &DeviceState, ops: &mut Vec<Op>, reason: Option<String>) {
    let add = |obj: Obj| Op::Add {
        obj,
        reason: reason.clone(),
    };
    if let Some(r) = desired.root_qdisc() {
        ops.push(add(Obj::Qdisc(r.clone())));
    }
    for c in sorted_top_down(&desired.classes) {
        ops.push(add(Obj::Class(c.clone())));
    }
    for q in desired
        .qdiscs
        .iter()
        .filter(|q| matches!(q.parent, Parent::Class(_)))
    {
        ops.push(add(Obj::Qdisc(q.clone())));
    }
    for f in &desired.filters {
        ops.push(add(Obj::Filter(f.clone())));
    }
}

/// Both sides have the same htb root: compare classes, leaf qdiscs and filters.
fn diff_tree(desired: &DeviceState, live: &DeviceState, root: Handle, ops: &mut Vec<Op>) {
    let d_class: HashMap<Handle, &Class> = desired.classes.iter().map(|c| (c.handle, c)).collect();
    let l_class: HashMap<Handle, &Class> = live.classes.iter().map(|c| (c.handle, c)).collect();

    // Live classes that will be deleted: gone from the policy, or moved to another parent
    // (then with their whole live subtree, which the kernel will not move).
    let mut doomed: BTreeSet<Handle> = BTreeSet::new();
    let mut reasons: HashMap<Handle, String> = HashMap::new();
    let mut l_children: HashMap<Handle, Vec<Handle>> = HashMap::new();
    for c in &live.classes {
        if let Some(p) = c.parent {
            l_children.entry(p).or_default().push(c.handle);
        }
    }
    for c in &live.classes {
        match d_class.get(&c.handle) {
            None => {
                doomed.insert(c.handle);
            }
            Some(d) if d.parent != c.parent => {
                let why = format!(
                    "moves from parent {} to {}",
                    parent_str(c.parent, root),
                    parent_str(d.parent, root)
                );
                let mut stack = vec![c.handle];
                while let Some(h) = stack.pop() {
                    if doomed.insert(h) {
                        reasons.entry(h).or_insert_with(|| why.clone());
                        stack.extend(l_children.get(&h).into_iter().flatten().copied());
                    }
                }
            }
            _ => {}
        }
    }

    // Filters: grouped by (qdisc, prio), since one priority holds one classifier of one
    // protocol. A group that holds anything foreign, or another protocol or kind than
    // desired, is removed whole and rebuilt.
    type Group = (Handle, u16);
    // Only the root qdisc's filters: those on the ingress qdisc go with it.
    let live_filters: Vec<&Filter> = live.filters.iter().filter(|f| f.parent == root).collect();
    let mut l_groups: BTreeMap<Group, Vec<&Filter>> = BTreeMap::new();
    for f in &live_filters {
        l_groups.entry((f.parent, f.prio)).or_default().push(f);
    }
    let mut d_groups: BTreeMap<Group, Vec<&Filter>> = BTreeMap::new();
    for f in &desired.filters {
        d_groups.entry((f.parent, f.prio)).or_default().push(f);
    }
    let mut purged: BTreeSet<Group> = BTreeSet::new();
    for (g, lf) in &l_groups {
        let foreign = lf.iter().any(|f| !matches!(f.kind, FilterKind::Fw { .. }));
        let mismatch = d_groups.get(g).is_some_and(|df| {
            df.iter().any(|d| {
                lf.iter()
                    .any(|l| l.protocol != d.protocol || l.kind.kind_name() != d.kind.kind_name())
            })
        });
        if foreign || mismatch {
            purged.insert(*g);
            let mut kinds: Vec<String> =
                lf.iter().map(|f| f.kind.kind_name().to_string()).collect();
            kinds.dedup();
            // Hash-table u32 dumps list one entry per node; count the ones that steer.
            let count = lf.iter().filter(|f| f.classid.is_some()).count().max(1);
            ops.push(Op::Remove {
                obj: Obj::FilterPrio {
                    parent: g.0,
                    prio: g.1,
                    protocol: lf[0].protocol.clone(),
                    kinds,
                    count,
                },
                reason: None,
            });
        }
    }
    let fkey = |f: &Filter| -> (Handle, u16, u32, u32) {
        match f.kind {
            FilterKind::Fw { mark, mask } => (f.parent, f.prio, mark, mask),
            FilterKind::Other { .. } => (f.parent, f.prio, 0, 0),
        }
    };
    let d_fw: HashMap<_, &Filter> = desired
        .filters
        .iter()
        .filter(|f| !purged.contains(&(f.parent, f.prio)))
        .map(|f| (fkey(f), f))
        .collect();
    let mut filter_later: Vec<Op> = Vec::new();
    let mut kept_filters: BTreeSet<(Handle, u16, u32, u32)> = BTreeSet::new();
    for f in live_filters
        .iter()
        .copied()
        .filter(|f| !purged.contains(&(f.parent, f.prio)))
    {
        let into_doomed = f.classid.is_some_and(|c| doomed.contains(&c));
        match d_fw.get(&fkey(f)) {
            None => ops.push(Op::Remove {
                obj: Obj::Filter(f.clone()),
                reason: None,
            }),
            Some(d) if into_doomed => {
                // The class it points to is re-created: the kernel refuses to delete a
                // class a filter is bound to, so the filter goes first and comes back.
                ops.push(Op::Remove {
                    obj: Obj::Filter(f.clone()),
                    reason: Some("its class is re-created".into()),
                });
                filter_later.push(Op::Add {
                    obj: Obj::Filter((*d).clone()),
                    reason: Some("its class is re-created".into()),
                });
                kept_filters.insert(fkey(f));
            }
            Some(d) => {
                kept_filters.insert(fkey(f));
                if d.classid != f.classid {
                    filter_later.push(Op::Change {
                        obj: Obj::Filter((*d).clone()),
                        fields: vec![FieldDiff {
                            field: "classid",
                            live: opt_handle(f.classid),
                            desired: opt_handle(d.classid),
                        }],
                    });
                }
            }
        }
    }
    for f in &desired.filters {
        if !kept_filters.contains(&fkey(f)) || purged.contains(&(f.parent, f.prio)) {
            filter_later.push(Op::Add {
                obj: Obj::Filter(f.clone()),
                reason: None,
            });
        }
    }

    // Leaf qdiscs, keyed by the class they hang on. Those under a doomed class go with it.
    let d_leaf: HashMap<Handle, &Qdisc> = desired
        .qdiscs
        .iter()
        .filter_map(|q| match q.parent {
            Parent::Class(p) => Some((p, q)),
            _ => None,
        })
        .collect();
    let mut qdisc_later: Vec<Op> = Vec::new();
    let mut leaf_done: BTreeSet<Handle> = BTreeSet::new();
    for q in &live.qdiscs {
        let Parent::Class(p) = q.parent else { continue };
        if doomed.contains(&p) || !l_class.contains_key(&p) {
            // Under a class that is deleted (it goes with it), or under another qdisc's
            // class (a classful leaf's own children): not ours to address.
            continue;
        }
        match d_leaf.get(&p) {
            None => ops.push(Op::Remove {
                obj: Obj::Qdisc(q.clone()),
                reason: None,
            }),
            Some(d) if d.handle != q.handle || d.kind.kind_name() != q.kind.kind_name() => {
                let reason = format!(
                    "{} {} -> {} {}",
                    q.kind.kind_name(),
                    q.handle,
                    d.kind.kind_name(),
                    d.handle
                );
                ops.push(Op::Remove {
                    obj: Obj::Qdisc(q.clone()),
                    reason: Some(reason.clone()),
                });
                qdisc_later.push(Op::Add {
                    obj: Obj::Qdisc((*d).clone()),
                    reason: Some(reason),
                });
                leaf_done.insert(p);
            }
            Some(d) => {
                diff_qdisc_into(d, q, ops, &mut qdisc_later);
                leaf_done.insert(p);
            }
        }
    }
    for (p, d) in &d_leaf {
        if !leaf_done.contains(p) {
            qdisc_later.push(Op::Add {
                obj: Obj::Qdisc((*d).clone()),
                reason: reasons.get(p).cloned(),
            });
        }
    }
    qdisc_later.sort_by_key(op_handle);

    // Class removals, deepest first.
    let l_depth = depths(&live.classes);
    let mut gone: Vec<&Class> = live
        .classes
        .iter()
        .filter(|c| doomed.contains(&c.handle))
        .collect();
    gone.sort_by_key(|c| (std::cmp::Reverse(l_depth[&c.handle]), c.handle));
    for c in gone {
        ops.push(Op::Remove {
            obj: Obj::Class(c.clone()),
            reason: reasons.get(&c.handle).cloned(),
        });
    }

    // Class adds and changes, top-down.
    for d in sorted_top_down(&desired.classes) {
        match l_class.get(&d.handle) {
            Some(l) if !doomed.contains(&d.handle) => {
                let fields = class_fields(d, l);
                if !fields.is_empty() {
                    ops.push(Op::Change {
                        obj: Obj::Class(d.clone()),
                        fields,
                    });
                }
            }
            _ => ops.push(Op::Add {
                obj: Obj::Class(d.clone()),
                reason: reasons.get(&d.handle).cloned(),
            }),
        }
    }
    ops.extend(qdisc_later);
    ops.extend(filter_later);
}

fn op_handle(op: &Op) -> Handle {
    match op {
        Op::Add {
            obj: Obj::Qdisc(q), ..
        }
        | Op::Change {
            obj: Obj::Qdisc(q), ..
        }
        | Op::Remove {
            obj: Obj::Qdisc(q), ..
        } => q.handle,
        _ => Handle::new(0, 0),
    }
}

fn parent_str(p: Option<Handle>, root: Handle) -> String {
    p.unwrap_or(root).to_string()
}

fn opt_handle(h: Option<Handle>) -> String {
    h.map(|h| h.to_string()).unwrap_or_else(|| "-".into())
}

/// A qdisc kept at the same handle and kind: change in place, or (netem) re-create when
/// the kernel would keep what the policy dropped.
fn diff_qdisc_into(d: &Qdisc, l: &Qdisc, now: &mut Vec<Op>, later: &mut Vec<Op>) {
    let fields = qdisc_fields(&d.kind, &l.kind);
    if fields.is_empty() {
        return;
    }
    if let Some(reason) = needs_recreate(&d.kind, &l.kind) {
        now.push(Op::Remove {
            obj: Obj::Qdisc(l.clone()),
            reason: Some(reason.clone()),
        });
        later.push(Op::Add {
            obj: Obj::Qdisc(d.clone()),
            reason: Some(reason),
        });
    } else {
        later.push(Op::Change {
            obj: Obj::Qdisc(d.clone()),
            fields,
        });
    }
}

/// Root qdisc of a non-htb kind (interface-level netem).
fn diff_qdisc(d: &Qdisc, l: &Qdisc, ops: &mut Vec<Op>) {
    let mut later = Vec::new();
    diff_qdisc_into(d, l, ops, &mut later);
    ops.extend(later);
}

/// Why a qdisc of the same kind cannot take the change in place, if it cannot.
fn needs_recreate(d: &QdiscKind, l: &QdiscKind) -> Option<String> {
    let (d, l) = match (d, l) {
        (QdiscKind::Netem(d), QdiscKind::Netem(l)) => (d, l),
        // sfq has no change operation in the kernel (measured in the kernel lab).
        (QdiscKind::Sfq(_), QdiscKind::Sfq(_)) => {
            return Some("sfq cannot change in place; re-created".into())
        }
        (QdiscKind::FqCodel(d), QdiscKind::FqCodel(l))
            if d.flows.is_some() && d.flows != l.flows =>
        {
            return Some("fq_codel cannot change flows in place; re-created".into())
        }
        _ => return None,
    };
    let mut sticky = Vec::new();
    if l.rate.is_some() && d.rate.is_none() {
        sticky.push("rate");
    }
    if l.slot.is_some() && d.slot.is_none() {
        sticky.push("slot");
    }
    if l.ecn == Some(true) && d.ecn != Some(true) {
        sticky.push("ecn");
    }
    (!sticky.is_empty()).then(|| {
        format!(
            "netem keeps {} on change; re-created to drop it",
            sticky.join(", ")
        )
    })
}

// ---- field comparison, in the kernel's units ----

fn push(
    out: &mut Vec<FieldDiff>,
    field: &'static str,
    live: impl ToString,
    desired: impl ToString,
) {
    out.push(FieldDiff {
        field,
        live: live.to_string(),
        desired: desired.to_string(),
    });
}

fn rate_eq(desired: Rate, live: Rate, live_from_text: bool) -> bool {
    if live_from_text {
        desired.tc_text_rounded() == live.tc_text_rounded()
    } else {
        desired.same_in_kernel(live)
    }
}

/// Burst and cburst are kept as time ticks; what reads back differs by a few bytes and
/// by iproute2 version (15k → 15337 or 15349), and text output rounds to Kb.
fn size_close(desired: Size, live: Size) -> bool {
    let (a, b) = (desired.bytes() as f64, live.bytes() as f64);
    (a - b).abs() <= (a * 0.03).max(16.0)
}

/// Times that the kernel keeps in its own ticks (codel's 1024 ns units, µs).
fn time_close(desired: Time, live: Time) -> bool {
    let (a, b) = (desired.ns() as f64, live.ns() as f64);
    (a - b).abs() <= (a * 0.01).max(1100.0)
}

fn class_fields(d: &Class, l: &Class) -> Vec<FieldDiff> {
    let mut v = Vec::new();
    let text = l.rates_from_text;
    if !rate_eq(d.rate, l.rate, text) {
        push(&mut v, "rate", l.rate, d.rate);
    }
    if !rate_eq(d.ceil, l.ceil, text) {
        push(&mut v, "ceil", l.ceil, d.ceil);
    }
    for (name, dv, lv) in [("burst", d.burst, l.burst), ("cburst", d.cburst, l.cburst)] {
        if let Some(dv) = dv {
            if !lv.is_some_and(|lv| size_close(dv, lv)) {
                push(&mut v, name, opt(lv), dv);
            }
        }
    }
    // The kernel reports prio only for leaf classes; an unset prio is 0.
    if let Some(lp) = l.prio {
        let dp = d.prio.unwrap_or(0);
        if dp != lp {
            push(&mut v, "prio", lp, dp);
        }
    }
    if let (Some(dq), Some(lq)) = (d.quantum, l.quantum) {
        if dq != lq {
            push(&mut v, "quantum", lq, dq);
        }
    }
    v
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// Compares an option the policy sets (None on the desired side = kernel default, not
/// managed) with what was read back.
fn cmp_opt<T: PartialEq + ToString + Copy>(
    v: &mut Vec<FieldDiff>,
    name: &'static str,
    d: Option<T>,
    l: Option<T>,
    eq: impl Fn(T, T) -> bool,
) {
    if let Some(dv) = d {
        if !l.is_some_and(|lv| eq(dv, lv)) {
            push(v, name, opt(l), dv);
        }
    }
}

fn qdisc_fields(d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
    let mut v = Vec::new();
    match (d, l) {
        (QdiscKind::Htb(dh), QdiscKind::Htb(lh)) if dh.default != lh.default => {
            push(
                &mut v,
                "default",
                format!("{:x}", lh.default),
                format!("{:x}", dh.default),
            );
        }
        (QdiscKind::Pfifo { limit: dl }, QdiscKind::Pfifo { limit: ll }) => {
            cmp_opt(&mut v, "limit", *dl, *ll, eq_)
        }
        (QdiscKind::Bfifo { limit: dl }, QdiscKind::Bfifo { limit: ll }) => {
            cmp_opt(&mut v, "limit", *dl, *ll, eq_)
        }
        (QdiscKind::Tbf(dt), QdiscKind::Tbf(lt)) => {
            if !dt.rate.same_in_kernel(lt.rate) {
                push(&mut v, "rate", lt.rate, dt.rate);
            }
            if !size_close(dt.burst, lt.burst) {
                push(&mut v, "burst", lt.burst, dt.burst);
            }
            cmp_opt(&mut v, "latency", dt.latency, lt.latency, time_close);
            if lt.limit.is_some() {
                cmp_opt(&mut v, "limit", dt.limit, lt.limit, size_close);
            }
        }
        (QdiscKind::FqCodel(df), QdiscKind::FqCodel(lf)) => {
            cmp_opt(&mut v, "limit", df.limit, lf.limit, eq_);
            cmp_opt(&mut v, "flows", df.flows, lf.flows, eq_);
            cmp_opt(&mut v, "target", df.target, lf.target, time_close);
            cmp_opt(&mut v, "interval", df.interval, lf.interval, time_close);
            cmp_opt(&mut v, "quantum", df.quantum, lf.quantum, eq_);
            cmp_opt(
                &mut v,
                "memory_limit",
                df.memory_limit,
                lf.memory_limit,
                eq_,
            );
            cmp_opt(&mut v, "ecn", df.ecn, lf.ecn.or(Some(false)), eq_);
        }
        (QdiscKind::Cake(dc), QdiscKind::Cake(lc)) => {
            if !opt_rate_eq(dc.bandwidth, lc.bandwidth) {
                push(
                    &mut v,
                    "bandwidth",
                    opt_rate(lc.bandwidth),
                    opt_rate(dc.bandwidth),
                );
            }
            if let Some(ds) = &dc.diffserv {
                if lc.diffserv.as_ref() != Some(ds) {
                    push(&mut v, "diffserv", opt(lc.diffserv.as_ref()), ds);
                }
            }
            if let Some(fm) = &dc.flow_mode {
                if lc.flow_mode.as_ref() != Some(fm) {
                    push(&mut v, "flow_mode", opt(lc.flow_mode.as_ref()), fm);
                }
            }
            cmp_opt(&mut v, "rtt", dc.rtt, lc.rtt, time_close);
            cmp_opt(&mut v, "nat", dc.nat, lc.nat.or(Some(false)), eq_);
            cmp_opt(&mut v, "wash", dc.wash, lc.wash.or(Some(false)), eq_);
            cmp_opt(
                &mut v,
                "ack_filter",
                dc.ack_filter,
                lc.ack_filter.or(Some(false)),
                eq_,
            );
            cmp_opt(&mut v, "overhead", dc.overhead, lc.overhead, eq_);
        }
        (QdiscKind::Sfq(ds), QdiscKind::Sfq(ls)) => {
            cmp_opt(
                &mut v,
                "perturb",
                ds.perturb,
                ls.perturb,
                |a: Time, b: Time| a.ns().div_ceil(1_000_000_000) == b.ns().div_ceil(1_000_000_000),
            );
            cmp_opt(&mut v, "limit", ds.limit, ls.limit, eq_);
            cmp_opt(&mut v, "quantum", ds.quantum, ls.quantum, eq_);
        }
        (QdiscKind::Netem(dn), QdiscKind::Netem(ln)) => netem_fields(dn, ln, &mut v),
        _ => {}
    }
    v
}

fn eq_<T: PartialEq>(a: T, b: T) -> bool {
    a == b
}

fn opt_rate_eq(d: Option<Rate>, l: Option<Rate>) -> bool {
    match (d, l) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_in_kernel(b),
        // cake reads "unlimited" back as bandwidth 0.
        (None, Some(b)) | (Some(b), None) => b.kernel_bytes() == 0,
    }
}

fn opt_rate(r: Option<Rate>) -> String {
    r.map(|r| r.to_string())
        .unwrap_or_else(|| "unlimited".into())
}

/// netem, normalised: a field the policy leaves out is netem's default (0, or limit
/// 1000), since qosctl sends the full set on every change.
fn netem_fields(d: &Netem, l: &Netem, v: &mut Vec<FieldDiff>) {
    let t0 = |t: Option<Time>| t.unwrap_or(Time(0));
    let p0 = |p: Option<Prob>| p.unwrap_or(Prob(0.0));
    let times = [("delay", d.delay, l.delay), ("jitter", d.jitter, l.jitter)];
    for (name, dv, lv) in times {
        if !time_close(t0(dv), t0(lv)) && (t0(dv).ns() != 0 || t0(lv).ns() != 0) {
            push(v, name, t0(lv), t0(dv));
        }
    }
    let probs = [
        (
            "delay_correlation",
            d.delay_correlation,
            l.delay_correlation,
        ),
        ("duplicate", d.duplicate, l.duplicate),
        (
            "duplicate_correlation",
            d.duplicate_correlation,
            l.duplicate_correlation,
        ),
        ("corrupt", d.corrupt, l.corrupt),
        (
            "corrupt_correlation",
            d.corrupt_correlation,
            l.corrupt_correlation,
        ),
        ("reorder", d.reorder, l.reorder),
        (
            "reorder_correlation",
            d.reorder_correlation,
            l.reorder_correlation,
        ),
    ];
    for (name, dv, lv) in probs {
        if !p0(dv).same_in_kernel(p0(lv)) {
            push(v, name, p0(lv), p0(dv));
        }
    }
    if !loss_eq(d.loss.as_ref(), l.loss.as_ref()) {
        push(
            v,
            "loss",
            loss_str(l.loss.as_ref()),
            loss_str(d.loss.as_ref()),
        );
    }
    // tc sets gap 1 whenever reorder is used without one.
    let gap = |n: &Netem| {
        let g = n.gap.unwrap_or(0);
        if p0(n.reorder).fraction() > 0.0 {
            g.max(1)
        } else {
            g
        }
    };
    if gap(d) != gap(l) {
        push(v, "gap", gap(l), gap(d));
    }
    if d.limit.unwrap_or(1000) != l.limit.unwrap_or(1000) {
        push(v, "limit", l.limit.unwrap_or(1000), d.limit.unwrap_or(1000));
    }
    let rate_same = match (d.rate, l.rate) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_in_kernel(b),
        (a, b) => a.or(b).is_some_and(|r| r.kernel_bytes() == 0),
    };
    if !rate_same {
        push(v, "rate", opt(l.rate), opt(d.rate));
    }
    if d.slot.as_ref().map(slot_str) != l.slot.as_ref().map(slot_str) {
        push(
            v,
            "slot",
            l.slot.as_ref().map(slot_str).unwrap_or_else(|| "-".into()),
            d.slot.as_ref().map(slot_str).unwrap_or_else(|| "-".into()),
        );
    }
    if d.ecn.unwrap_or(false) != l.ecn.unwrap_or(false) {
        push(v, "ecn", l.ecn.unwrap_or(false), d.ecn.unwrap_or(false));
    }
}

fn slot_str(s: &crate::model::Slot) -> String {
    // Compared at µs precision: netem prints slot times rounded.
    let mut t = format!("{}us", s.min_delay.us());
    if let Some(m) = s.max_delay {
        let _ = write!(t, " {}us", m.us());
    }
    if let Some(p) = s.packets {
        let _ = write!(t, " packets {p}");
    }
    if let Some(b) = s.bytes {
        let _ = write!(t, " bytes {}", b.bytes());
    }
    t
}

fn loss_eq(d: Option<&Loss>, l: Option<&Loss>) -> bool {
    let zero = |x: Option<&Loss>| match x {
        None => true,
        Some(Loss::Random { p, correlation }) => {
            p.fraction() == 0.0 && correlation.is_none_or(|c| c.fraction() == 0.0)
        }
        Some(Loss::Gemodel { .. }) => false,
    };
    let peq = |a: Option<Prob>, b: Option<Prob>| {
        Prob(a.map_or(0.0, |p| p.0)).same_in_kernel(Prob(b.map_or(0.0, |p| p.0)))
    };
    match (d, l) {
        (
            Some(Loss::Random {
                p: dp,
                correlation: dc,
            }),
            Some(Loss::Random {
                p: lp,
                correlation: lc,
            }),
        ) => dp.same_in_kernel(*lp) && peq(*dc, *lc),
        (
            Some(Loss::Gemodel {
                p: dp,
                r: dr,
                h: dh,
                k: dk,
            }),
            Some(Loss::Gemodel {
                p: lp,
                r: lr,
                h: lh,
                k: lk,
            }),
        ) => {
            // tc's defaults for omitted values: r 100 %, 1-h 0 %, 1-k 0 %.
            let r1 = |r: &Option<Prob>| Some(r.unwrap_or(Prob(1.0)));
            dp.same_in_kernel(*lp) && peq(r1(dr), r1(lr)) && peq(*dh, *lh) && peq(*dk, *lk)
        }
        (a, b) => zero(a) && zero(b),
    }
}

fn loss_str(l: Option<&Loss>) -> String {
    match l {
        None => "0%".into(),
        Some(Loss::Random {
            p,
            correlation: None,
        }) => p.to_string(),
        Some(Loss::Random {
            p,
            correlation: Some(c),
        }) => format!("{p} {c}"),
        Some(Loss::Gemodel { p, r, h, k }) => {
            format!("gemodel p {p} r {} h {} k {}", opt(*r), opt(*h), opt(*k))
        }
    }
}

// ---- the human plan ----

/// A line describing one object: `class 1:30 backup  parent 1:20 rate 2mbit …`.
pub fn describe(obj: &Obj) -> (String, String, String) {
    match obj {
        Obj::Qdisc(q) => {
            let at = match q.parent {
                Parent::Root => "root".to_string(),
                // Both hang at TC_H_INGRESS; the kind tells them apart.
                Parent::Ingress if q.kind.kind_name() == "clsact" => "clsact".to_string(),
                Parent::Ingress => "ingress".to_string(),
                Parent::Class(p) => format!("on {p}"),
            };
            // Leaves in the same readable form as `qosctl check`; htb with its default.
            let args = match &q.kind {
                QdiscKind::Htb(_) => render::qdisc_args(&q.kind),
                k => crate::check::leaf_summary(k),
            };
            (
                format!("qdisc {} {at}", q.handle),
                q.name.clone().unwrap_or_default(),
                args,
            )
        }
        Obj::Class(c) => {
            let mut d = format!(
                "parent {}",
                c.parent
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| format!("{:x}:", c.handle.major))
            );
            let _ = write!(d, " rate {} ceil {}", c.rate, c.ceil);
            if let Some(b) = c.burst {
                let _ = write!(d, " burst {b}");
            }
            if let Some(b) = c.cburst {
                let _ = write!(d, " cburst {b}");
            }
            if let Some(p) = c.prio {
                let _ = write!(d, " prio {p}");
            }
            if let Some(q) = c.quantum {
                let _ = write!(d, " quantum {q}");
            }
            (
                format!("class {}", c.handle),
                c.name.clone().unwrap_or_default(),
                d,
            )
        }
        Obj::Filter(f) => {
            let what = match &f.kind {
                FilterKind::Fw { mark, mask } if *mask == u32::MAX => {
                    format!("filter fw {mark:#x}")
                }
                FilterKind::Fw { mark, mask } => format!("filter fw {mark:#x}/{mask:#x}"),
                FilterKind::Other { kind, handle, .. } => {
                    format!("filter {kind} {}", handle.clone().unwrap_or_default())
                }
            };
            (
                what,
                f.name.clone().unwrap_or_default(),
                format!("-> {}", opt_handle(f.classid)),
            )
        }
        Obj::FilterPrio {
            parent,
            prio,
            protocol,
            kinds,
            count,
        } => (
            format!("filters prio {prio} on {parent}"),
            String::new(),
            format!(
                "{} {protocol} ({count} filter{})",
                kinds.join(","),
                if *count == 1 { "" } else { "s" }
            ),
        ),
    }
}

/// The plan as people read it.
pub fn render_human<'a>(plan: &'a Plan) -> String {
    let mut out = String::new();
    for d in &plan.devices {
        match &d.alias {
            Some(a) if a != &d.device => {
                let _ = writeln!(out, "{} ({a})", d.device);
            }
            _ => {
                let _ = writeln!(out, "{}", d.device);
            }
        }
        if d.ops.is_empty() {
            let _ = writeln!(out, "  in sync");
            continue;
        }
        // A rebuild gives every line the same reason: say it once, on the first.
        let mut last_reason: Option<&String> = None;
        let mut once = |r: &'a Option<String>| -> Option<String> {
            match r {
                Some(r) if last_reason == Some(r) => None,
                Some(r) => {
                    last_reason = Some(r);
                    Some(r.clone())
                }
                None => {
                    last_reason = None;
                    None
                }
            }
        };
        let mut rows: Vec<(char, String, String, String)> = Vec::new();
        for op in &d.ops {
            let row = match op {
                Op::Add { obj, reason } => {
                    let (w, n, det) = describe(obj);
                    ('+', w, n, with_reason(det, &once(reason)))
                }
                Op::Remove { obj, reason } => {
                    let (w, n, det) = describe(obj);
                    let det = match obj {
                        Obj::Class(_) | Obj::Qdisc(_) | Obj::Filter(_) => String::new(),
                        _ => det,
                    };
                    ('-', w, n, with_reason(det, &once(reason)))
                }
                Op::Change { obj, fields } => {
                    let (w, n, _) = describe(obj);
                    let det = fields
                        .iter()
                        .map(|f| format!("{} {} -> {}", f.field, f.live, f.desired))
                        .collect::<Vec<_>>()
                        .join(", ");
                    ('~', w, n, det)
                }
            };
            rows.push(row);
            if let Op::Remove {
                obj: Obj::Qdisc(q), ..
            } = op
            {
                if q.parent == Parent::Ingress {
                    rows.extend(d.goes_with.iter().map(|f| {
                        let (w, n, _) = describe(&Obj::Filter(f.clone()));
                        let w = format!("{} prio {} on {}", w.trim_end(), f.prio, f.parent);
                        ('-', w, n, format!("(goes with qdisc {})", q.handle))
                    }));
                }
            }
        }
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
        for (sign, what, name, det) in rows {
            let line = format!("  {sign} {what:w1$}  {name:w2$}  {det}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    let s = plan.summary();
    if plan.is_empty() {
        let _ = writeln!(out, "In sync: nothing to change.");
    } else {
        let _ = writeln!(
            out,
            "Plan: {} to add, {} to change, {} to remove.",
            s.add, s.change, s.remove
        );
    }
    out
}

fn with_reason(det: String, reason: &Option<String>) -> String {
    match reason {
        Some(r) if det.is_empty() => format!("({r})"),
        Some(r) => format!("{det} ({r})"),
        None => det,
    }
}
