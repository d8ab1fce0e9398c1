//! The diff of one qdisc tree: its root qdisc (on a hook: the device root, or later the
//! ingress hook), its htb classes, the leaf qdiscs on them and the filters on one parent.
//!
//! Nothing here knows which tree it is diffing: the hook, the root handle and the filter
//! parent are arguments, so the egress tree (`root`, `1:`, filters on `1:`) and any other
//! tree (an ifb's, or filters on the ingress qdisc `ffff:`) go through the same steps.
//! Each step fills its part of [`TreeOps`]; [`super::order`] puts the parts in apply order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::fields::{class_fields, opt_handle, FieldDiff};
use super::keyed::{self, Keyed};
use super::{order, Obj, Op};
use crate::kind::{self, filter};
use crate::model::{Class, DeviceState, Filter, Handle, Parent, Qdisc};

/// Which tree of a device: its root qdisc's handle and the qdisc its filters hang on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    pub root: Handle,
    pub filter_parent: Handle,
}

impl Tree {
    /// The classes of this tree: those numbered under its root qdisc. Classes of a
    /// classful leaf's own qdisc (another major) are not the tree's: they go with that
    /// qdisc (before the split they were diffed as the tree's own, and a `class del`
    /// after their qdisc was removed would have failed; qosctl writes no such leaf).
    fn classes<'a>(&self, st: &'a DeviceState) -> Vec<&'a Class> {
        st.classes
            .iter()
            .filter(|c| c.handle.major == self.root.major)
            .collect()
    }
    /// The leaf qdiscs on this tree's classes.
    fn leaves<'a>(&self, st: &'a DeviceState) -> impl Iterator<Item = &'a Qdisc> + 'a {
        let major = self.root.major;
        st.qdiscs
            .iter()
            .filter(move |q| matches!(q.parent, Parent::Class(p) if p.major == major))
    }
    fn filters<'a>(&self, st: &'a DeviceState) -> Vec<&'a Filter> {
        st.filters
            .iter()
            .filter(|f| f.parent == self.filter_parent)
            .collect()
    }
}

/// The operations of one tree, by the part of the apply order they belong to.
#[derive(Debug, Default)]
pub struct TreeOps {
    /// Filters removed (whole foreign priorities, stale marks, marks whose class goes).
    pub filters_off: Vec<Op>,
    /// Leaf qdiscs removed (gone, changing kind, or re-created to drop a setting).
    pub leaves_off: Vec<Op>,
    /// Classes removed, deepest first.
    pub classes_off: Vec<Op>,
    /// Classes added or changed, top-down.
    pub classes_on: Vec<Op>,
    /// Leaf qdiscs added or changed, by handle.
    pub leaves_on: Vec<Op>,
    /// Filters added, re-added or steered elsewhere.
    pub filters_on: Vec<Op>,
}

/// Plans the tree on `hook` (`Parent::Root` for egress): what to run so that the live
/// tree there becomes the desired one. Filters are those on the root qdisc's own handle.
pub fn diff_hook(hook: Parent, desired: &DeviceState, live: &DeviceState) -> Vec<Op> {
    let d_root = desired.qdiscs.iter().find(|q| q.parent == hook);
    let l_root = live.qdiscs.iter().find(|q| q.parent == hook);
    match (d_root, l_root) {
        (None, None) => Vec::new(),
        (None, Some(l)) => vec![remove(Obj::Qdisc(l.clone()), None)],
        (Some(d), None) => order::add_tree(d, desired, None),
        (Some(d), Some(l)) => {
            if let Some(reason) = rebuild_reason(d, l) {
                let mut ops = vec![remove(Obj::Qdisc(l.clone()), Some(reason.clone()))];
                ops.extend(order::add_tree(d, desired, Some(reason)));
                ops
            } else if d.kind.is_classful() || hook == Parent::Ingress {
                // The ingress qdisc has no classes: its diff is the diff of its filters.
                let tree = Tree {
                    root: d.handle,
                    filter_parent: d.handle,
                };
                diff_tree(tree, desired, live).in_apply_order()
            } else {
                let mut ops = TreeOps::default();
                same_qdisc(d, l, &mut ops);
                ops.in_apply_order()
            }
        }
    }
}

/// Why the root qdisc cannot be kept, if it cannot: another kind, another handle, or a
/// classful kind that cannot take the change in place (htb's `default`, `r2q`).
fn rebuild_reason(d: &Qdisc, l: &Qdisc) -> Option<String> {
    let (dk, lk) = (d.kind.kind_name(), l.kind.kind_name());
    if dk != lk {
        return Some(format!("root qdisc changes kind {lk} -> {dk}"));
    }
    if d.handle != l.handle {
        return Some(format!("root handle changes {} -> {}", l.handle, d.handle));
    }
    d.kind
        .is_classful()
        .then(|| kind::qdisc::recreate_reason(&d.kind, &l.kind))
        .flatten()
}

fn remove(obj: Obj, reason: Option<String>) -> Op {
    Op::Remove { obj, reason }
}

fn add(obj: Obj, reason: Option<String>) -> Op {
    Op::Add { obj, reason }
}

/// Both sides have the same classful root on this tree: compare classes, leaves, filters.
pub fn diff_tree(tree: Tree, desired: &DeviceState, live: &DeviceState) -> TreeOps {
    let l_classes = tree.classes(live);
    let classes = keyed::diff(tree.classes(desired), l_classes.iter().copied(), |c| {
        c.handle
    });
    let doomed = Doomed::of(&classes, &l_classes, tree.root);
    let mut ops = TreeOps::default();
    filter_ops(&tree, desired, live, &doomed, &mut ops);
    leaf_ops(&tree, desired, live, &l_classes, &doomed, &mut ops);
    class_ops(&classes, &l_classes, &doomed, &mut ops);
    ops
}

/// Live classes that will be deleted: gone from the policy, or moved to another parent
/// (then with their whole live subtree, which the kernel will not move), with the reason
/// for those that come back.
struct Doomed {
    set: BTreeSet<Handle>,
    reasons: HashMap<Handle, String>,
}

impl Doomed {
    fn of(classes: &Keyed<Class>, live: &[&Class], root: Handle) -> Doomed {
        let mut set: BTreeSet<Handle> = classes.removed().map(|c| c.handle).collect();
        let mut reasons = HashMap::new();
        let mut children: HashMap<Handle, Vec<Handle>> = HashMap::new();
        for c in live {
            if let Some(p) = c.parent {
                children.entry(p).or_default().push(c.handle);
            }
        }
        for (d, l) in classes.both().filter(|(d, l)| d.parent != l.parent) {
            let why = format!(
                "moves from parent {} to {}",
                l.parent.unwrap_or(root),
                d.parent.unwrap_or(root)
            );
            let mut stack = vec![l.handle];
            while let Some(h) = stack.pop() {
                if set.insert(h) {
                    reasons.entry(h).or_insert_with(|| why.clone());
                    stack.extend(children.get(&h).into_iter().flatten().copied());
                }
            }
        }
        Doomed { set, reasons }
    }
    fn contains(&self, h: Handle) -> bool {
        self.set.contains(&h)
    }
    fn reason(&self, h: Handle) -> Option<String> {
        self.reasons.get(&h).cloned()
    }
}

/// Filters: grouped by (qdisc, prio), since one priority holds one classifier of one
/// protocol. A group that holds anything foreign, or another protocol or kind than
/// desired, is removed whole and rebuilt; the rest are matched by their kind's key.
fn filter_ops(
    tree: &Tree,
    desired: &DeviceState,
    live: &DeviceState,
    doomed: &Doomed,
    ops: &mut TreeOps,
) {
    let d_filters = tree.filters(desired);
    let l_filters = tree.filters(live);
    let purged = purge_groups(&d_filters, &l_filters, ops);
    let kept = l_filters
        .iter()
        .copied()
        .filter(|f| !purged.contains(&(f.parent, f.prio)));
    // A desired filter in a purged group never finds a live one (the live group is gone
    // from `kept`), so it lands in `added` with the others, in policy order.
    let keyed = keyed::diff(d_filters.iter().copied(), kept, filter::key);
    // Content held by live filters that stay (those that go are deleted first).
    let staying: Vec<&Filter> = keyed
        .live
        .iter()
        .filter_map(|(d, l)| d.map(|_| *l))
        .collect();
    let held = held_contents(&staying);
    for (d, l) in &keyed.live {
        match d {
            None => ops
                .filters_off
                .push(remove(Obj::Filter((*l).clone()), None)),
            Some(d) if l.classid.is_some_and(|c| doomed.contains(c)) => {
                // The class it points to is re-created: the kernel refuses to delete a
                // class a filter is bound to, so the filter goes first and comes back.
                let why = || Some("its class is re-created".to_string());
                ops.filters_off
                    .push(remove(Obj::Filter((*l).clone()), why()));
                ops.filters_on.push(add(Obj::Filter((*d).clone()), why()));
            }
            Some(d) if collides(d, l, &held) => {
                // Another live filter still holds this content: a replace would be refused.
                let why = || Some("another filter holds its new keys until it goes".to_string());
                ops.filters_off
                    .push(remove(Obj::Filter((*l).clone()), why()));
                ops.filters_on.push(add(Obj::Filter((*d).clone()), why()));
            }
            Some(d) => {
                let def = d.kind.def();
                let mut fields = Vec::new();
                if d.classid != l.classid {
                    fields.push(FieldDiff {
                        field: "classid",
                        live: opt_handle(l.classid),
                        desired: opt_handle(d.classid),
                    });
                }
                fields.extend(def.fields(&d.kind, &l.kind));
                if !fields.is_empty() {
                    let obj = Filter {
                        kind: def.in_place_of(&d.kind, &l.kind),
                        ..(*d).clone()
                    };
                    ops.filters_on.push(Op::Change {
                        obj: Obj::Filter(obj),
                        fields,
                    });
                }
            }
        }
    }
    for d in keyed.added {
        ops.filters_on.push(add(Obj::Filter(d.clone()), None));
    }
}

/// Where a live filter's unique content sits (`FilterDef::unique_content`): its group and
/// content, mapped to its own key.
type Held = HashMap<(Handle, u16, String, u64), u64>;

fn held_contents(live: &[&Filter]) -> Held {
    live.iter()
        .filter_map(|f| {
            let c = f.kind.def().unique_content(&f.kind)?;
            Some(((f.parent, f.prio, f.protocol.clone(), c), filter::key(f).2))
        })
        .collect()
}

/// Whether changing `l` in place into `d` would give it content another live filter holds.
fn collides(d: &Filter, l: &Filter, held: &Held) -> bool {
    let Some(c) = d.kind.def().unique_content(&d.kind) else {
        return false;
    };
    held.get(&(d.parent, d.prio, d.protocol.clone(), c))
        .is_some_and(|&k| k != filter::key(l).2)
}

type Group = (Handle, u16);

/// The (qdisc, prio) groups removed whole: they hold a classifier qosctl does not write,
/// or another protocol or kind than the policy wants there.
fn purge_groups(desired: &[&Filter], live: &[&Filter], ops: &mut TreeOps) -> HashSet<Group> {
    let mut l_groups: BTreeMap<Group, Vec<&Filter>> = BTreeMap::new();
    for f in live {
        l_groups.entry((f.parent, f.prio)).or_default().push(f);
    }
    let mut d_groups: BTreeMap<Group, Vec<&Filter>> = BTreeMap::new();
    for f in desired {
        d_groups.entry((f.parent, f.prio)).or_default().push(f);
    }
    let mut purged = HashSet::new();
    for (g, lf) in &l_groups {
        let foreign = lf.iter().any(|f| !filter::is_managed(&f.kind));
        // Some desired and live filter differ in protocol or kind: that is, the group's
        // filters do not all share one (protocol, kind). Checked against the first live
        // one, in one pass: all pairs were compared before, 10^8 at 10,000 matches.
        fn sig(f: &Filter) -> (&str, &str) {
            (f.protocol.as_str(), f.kind.kind_name())
        }
        let mismatch = d_groups.get(g).is_some_and(|df| {
            let first = sig(lf[0]);
            df.iter().chain(lf.iter()).any(|f| sig(f) != first)
        });
        if !(foreign || mismatch || goes_whole(lf, d_groups.get(g))) {
            continue;
        }
        purged.insert(*g);
        let mut kinds: Vec<String> = lf.iter().map(|f| f.kind.kind_name().to_string()).collect();
        kinds.dedup();
        // Hash-table u32 dumps list one entry per node; count the ones that steer.
        let count = lf.iter().filter(|f| f.classid.is_some()).count().max(1);
        let obj = Obj::FilterPrio {
            parent: g.0,
            prio: g.1,
            protocol: lf[0].protocol.clone(),
            kinds,
            count,
        };
        ops.filters_off.push(remove(obj, None));
    }
    purged
}

/// A group of a kind that deletes whole priorities (`FilterDef::whole_prio`, u32) goes with
/// one command when the policy keeps nothing of it, or when an object that can only go
/// with its priority (a u32 hash table) goes; what the policy keeps there is then re-added.
fn goes_whole(live: &[&Filter], desired: Option<&Vec<&Filter>>) -> bool {
    if !live.iter().all(|f| f.kind.def().whole_prio()) {
        return false;
    }
    let Some(desired) = desired else {
        return true;
    };
    let keys: HashSet<_> = desired.iter().map(|f| filter::key(f)).collect();
    live.iter()
        .any(|f| f.kind.def().pins_prio(&f.kind) && !keys.contains(&filter::key(f)))
}

/// Leaf qdiscs, keyed by the class they hang on. Those under a doomed class go with it;
/// those under a class of another qdisc (a classful leaf's own children) are not ours.
fn leaf_ops(
    tree: &Tree,
    desired: &DeviceState,
    live: &DeviceState,
    l_classes: &[&Class],
    doomed: &Doomed,
    ops: &mut TreeOps,
) {
    let ours: HashSet<Handle> = l_classes.iter().map(|c| c.handle).collect();
    let on = |q: &Qdisc| match q.parent {
        Parent::Class(p) => p,
        _ => unreachable!("Tree::leaves yields qdiscs on classes"),
    };
    let l_leaves = tree
        .leaves(live)
        .filter(|q| ours.contains(&on(q)) && !doomed.contains(on(q)));
    let keyed = keyed::diff(tree.leaves(desired), l_leaves, on);
    for (d, l) in &keyed.live {
        match d {
            None => ops.leaves_off.push(remove(Obj::Qdisc((*l).clone()), None)),
            Some(d) if d.handle != l.handle || d.kind.kind_name() != l.kind.kind_name() => {
                let reason = format!(
                    "{} {} -> {} {}",
                    l.kind.kind_name(),
                    l.handle,
                    d.kind.kind_name(),
                    d.handle
                );
                ops.leaves_off
                    .push(remove(Obj::Qdisc((*l).clone()), Some(reason.clone())));
                ops.leaves_on
                    .push(add(Obj::Qdisc((*d).clone()), Some(reason)));
            }
            Some(d) => same_qdisc(d, l, ops),
        }
    }
    for d in keyed.added {
        let reason = doomed.reason(on(d));
        ops.leaves_on.push(add(Obj::Qdisc(d.clone()), reason));
    }
    ops.leaves_on.sort_by_key(op_handle);
}

/// A qdisc kept at the same handle and kind: change in place, or re-create when its kind
/// cannot take the change (netem keeping what the policy dropped, sfq, fq_codel flows).
fn same_qdisc(d: &Qdisc, l: &Qdisc, ops: &mut TreeOps) {
    let fields = kind::qdisc::fields(&d.kind, &l.kind);
    if fields.is_empty() {
        return;
    }
    if let Some(reason) = kind::qdisc::recreate_reason(&d.kind, &l.kind) {
        ops.leaves_off
            .push(remove(Obj::Qdisc(l.clone()), Some(reason.clone())));
        ops.leaves_on.push(add(Obj::Qdisc(d.clone()), Some(reason)));
    } else {
        ops.leaves_on.push(Op::Change {
            obj: Obj::Qdisc(d.clone()),
            fields,
        });
    }
}

/// Class removals deepest first; adds and changes top-down. Depths are computed only
/// when there is something to order: a no-op re-apply of 10,000 classes used to sort them
/// all to find no change.
fn class_ops(classes: &Keyed<Class>, l_classes: &[&Class], doomed: &Doomed, ops: &mut TreeOps) {
    let mut gone: Vec<&Class> = l_classes
        .iter()
        .copied()
        .filter(|c| doomed.contains(c.handle))
        .collect();
    if !gone.is_empty() {
        let l_depth = order::depths(l_classes.iter().copied());
        gone.sort_by_key(|c| (std::cmp::Reverse(l_depth[&c.handle]), c.handle));
    }
    for c in gone {
        let reason = doomed.reason(c.handle);
        ops.classes_off.push(remove(Obj::Class(c.clone()), reason));
    }
    // Each desired class with what it needs, in any order; then top-down (by depth in the
    // desired tree, then handle), which is the order of the full sort filtered.
    let mut on: Vec<(&Class, Op)> = Vec::new();
    for (d, l) in classes.both() {
        if doomed.contains(d.handle) {
            on.push((d, add(Obj::Class(d.clone()), doomed.reason(d.handle))));
            continue;
        }
        let fields = class_fields(d, l);
        if !fields.is_empty() {
            let obj = Obj::Class(d.clone());
            on.push((d, Op::Change { obj, fields }));
        }
    }
    for d in classes.added.iter().copied() {
        on.push((d, add(Obj::Class(d.clone()), doomed.reason(d.handle))));
    }
    if on.is_empty() {
        return;
    }
    let desired: Vec<&Class> = classes.both().map(|(d, _)| d).collect();
    let depth = order::depths(desired.iter().copied().chain(classes.added.iter().copied()));
    on.sort_by_key(|(c, _)| (depth[&c.handle], c.handle));
    ops.classes_on.extend(on.into_iter().map(|(_, op)| op));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FilterKind, Qdisc, QdiscKind};
    use crate::units::Rate;

    fn class(major: u16, minor: u16, parent: Option<u16>, rate: u64) -> Class {
        let p = parent.map(|p| Handle::new(major, p));
        Class::new(Handle::new(major, minor), p, Rate(rate), Rate(rate))
    }

    fn fw(parent: Handle, mark: u32, to: Option<Handle>) -> Filter {
        Filter {
            parent,
            prio: 1,
            protocol: "all".into(),
            kind: FilterKind::Fw {
                mark,
                mask: u32::MAX,
            },
            classid: to,
            name: None,
            stats: None,
        }
    }

    fn pfifo(on: Handle, limit: u32) -> Qdisc {
        Qdisc {
            handle: Handle::qdisc(on.minor),
            parent: Parent::Class(on),
            kind: QdiscKind::Pfifo { limit: Some(limit) },
            name: None,
            stats: None,
        }
    }

    /// The tc lines of the tree rooted at `root`, with its filters on `root`.
    fn diff_at(root: Handle, desired: &DeviceState, live: &DeviceState) -> Vec<String> {
        let tree = Tree {
            root,
            filter_parent: root,
        };
        let ops = diff_tree(tree, desired, live).in_apply_order();
        ops.iter().map(|o| super::super::command("d", o)).collect()
    }

    /// The same code diffs a tree that is not `1:` with its filters on its own parent, and
    /// leaves the other tree on the device alone.
    #[test]
    fn any_tree_by_its_root_and_filter_parent() {
        let (q1, q2) = (Handle::qdisc(1), Handle::qdisc(2));
        // Tree 1: differs too (rate, a filter), and must not show up in tree 2's diff.
        let state = |r1: u64, r10: u64, limit: u32, filters: Vec<Filter>| DeviceState {
            device: "d".into(),
            classes: vec![
                class(1, 1, None, r1),
                class(2, 1, None, 8_000),
                class(2, 0x10, Some(1), r10),
            ],
            qdiscs: vec![pfifo(Handle::new(2, 0x10), limit)],
            filters,
        };
        let desired = state(
            1_000,
            4_000,
            20,
            vec![fw(q2, 0x10, Some(Handle::new(2, 0x10)))],
        );
        let live = state(
            9_000,
            2_000,
            10,
            vec![
                fw(q1, 0x5, Some(Handle::new(1, 1))),
                fw(q2, 0x10, Some(Handle::new(2, 1))),
            ],
        );
        assert_eq!(
            diff_at(q2, &desired, &live),
            [
                "class change dev d parent 2:1 classid 2:10 htb rate 4000bit ceil 4000bit",
                "qdisc change dev d parent 2:10 handle 10: pfifo limit 20",
                "filter replace dev d parent 2: protocol all prio 1 handle 0x10 fw classid 2:10",
            ]
        );
    }

    /// Filters on the ingress qdisc go through the same filter steps: a foreign
    /// classifier's priority is removed whole, the policy's filter added.
    #[test]
    fn filters_on_the_ingress_qdisc() {
        let ingress = Handle::INGRESS;
        let desired = DeviceState {
            filters: vec![fw(ingress, 0x1, None)],
            ..DeviceState::default()
        };
        let mut u32f = fw(ingress, 0, None);
        u32f.kind = FilterKind::Other {
            kind: "u32".into(),
            handle: Some("800::800".into()),
            summary: String::new(),
        };
        let live = DeviceState {
            filters: vec![u32f],
            ..DeviceState::default()
        };
        assert_eq!(
            diff_at(ingress, &desired, &live),
            [
                "filter del dev d parent ffff: protocol all prio 1",
                "filter add dev d parent ffff: protocol all prio 1 handle 0x1 fw",
            ]
        );
    }
}
