//! The apply order, assembled here and nowhere else.
//!
//! For one device, in this order:
//!
//! 1. **The ingress hook**: without an ingress side in the policy, every live qdisc on the
//!    ingress hook (`ingress`, `clsact`) goes, with its filters ([`hooks_without_tree`]);
//!    with one (`[interfaces.X.ingress]`: qdisc `ffff:` and the hook filter that redirects
//!    to the ifb and/or polices), it is diffed by the tree differ ([`super::tree`]) with the
//!    ingress hook as its hook and `ffff:` as its filter parent (no classes there). The
//!    ingress tree itself is on the ifb, a device of its own, planned after this one.
//! 2. **The egress tree** (root hook), whose own order is:
//!    1. the root qdisc removed, when it cannot be kept (kind, handle, htb `default` or
//!       `r2q` change), and then everything re-added as on a first apply ([`add_tree`]);
//!    2. otherwise, per [`TreeOps`]: filters off (before the classes they point to: the
//!       kernel refuses to delete a class a filter is bound to), leaf qdiscs off, classes
//!       off deepest first, classes added or changed top-down (a parent before its
//!       children), leaf qdiscs added or changed (on classes that exist by now), filters
//!       on (into classes that exist by now).
//!
//! Only filters on the tree's own filter parent (`1:` for egress) are diffed; filters
//! elsewhere go with their qdisc.

use std::collections::HashMap;

use super::tree::{self, TreeOps};
use super::{Obj, Op};
use crate::model::{Class, DeviceState, Handle, Parent, Qdisc};

/// Plans one device: what to run so that `live` becomes `desired`.
pub fn device(desired: &DeviceState, live: &DeviceState) -> Vec<Op> {
    let mut ops = hooks_without_tree(desired, live);
    // The ingress hook (qdisc `ffff:` and its filters: the redirect to the ifb, the
    // policer) before the egress tree: it is independent of it. The ifb's tree is another
    // device, planned right after this one; until its commands run (microseconds later,
    // in the same batch) redirected packets pass the ifb's default qdisc.
    if desired.qdiscs.iter().any(|q| q.parent == Parent::Ingress) {
        ops.extend(tree::diff_hook(Parent::Ingress, desired, live));
    }
    ops.extend(tree::diff_hook(Parent::Root, desired, live));
    ops
}

/// Step 1: a policy without an ingress side: whatever hangs there on a managed
/// device goes (its filters with it).
fn hooks_without_tree(desired: &DeviceState, live: &DeviceState) -> Vec<Op> {
    let hook = Parent::Ingress;
    if desired.qdiscs.iter().any(|d| d.parent == hook) {
        return Vec::new();
    }
    live.qdiscs
        .iter()
        .filter(|q| q.parent == hook)
        .map(|q| Op::Remove {
            obj: Obj::Qdisc(q.clone()),
            reason: None,
        })
        .collect()
}

impl TreeOps {
    /// The parts of a tree's diff in apply order (see the module documentation).
    pub fn in_apply_order(self) -> Vec<Op> {
        [
            self.filters_off,
            self.leaves_off,
            self.classes_off,
            self.classes_on,
            self.leaves_on,
            self.filters_on,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A whole tree added to an empty hook (first apply, or after a rebuild): the root
/// qdisc, its classes top-down, their leaf qdiscs, then the filters.
pub fn add_tree(root: &Qdisc, desired: &DeviceState, reason: Option<String>) -> Vec<Op> {
    let add = |obj: Obj| Op::Add {
        obj,
        reason: reason.clone(),
    };
    let major = root.handle.major;
    let mut ops = vec![add(Obj::Qdisc(root.clone()))];
    let classes = desired.classes.iter().filter(|c| c.handle.major == major);
    for c in top_down(classes.collect()) {
        ops.push(add(Obj::Class(c.clone())));
    }
    for q in &desired.qdiscs {
        if matches!(q.parent, Parent::Class(p) if p.major == major) {
            ops.push(add(Obj::Qdisc(q.clone())));
        }
    }
    for f in desired.filters.iter().filter(|f| f.parent == root.handle) {
        ops.push(add(Obj::Filter(f.clone())));
    }
    ops
}

/// Depth of each class in its tree (1 for a class under the root qdisc).
pub fn depths<'a>(classes: impl Iterator<Item = &'a Class> + Clone) -> HashMap<Handle, usize> {
    let parent: HashMap<Handle, Option<Handle>> =
        classes.clone().map(|c| (c.handle, c.parent)).collect();
    let n = parent.len();
    let mut out = HashMap::with_capacity(n);
    for c in classes {
        let mut d = 1;
        let mut p = c.parent;
        // Bounded walk: a malformed (cyclic) live dump must not hang us.
        while let Some(h) = p {
            if d > n {
                break;
            }
            d += 1;
            p = parent.get(&h).copied().flatten();
        }
        out.insert(c.handle, d);
    }
    out
}

/// Classes parents first (by depth, then handle).
pub fn top_down(mut classes: Vec<&Class>) -> Vec<&Class> {
    let depth = depths(classes.iter().copied());
    classes.sort_by_key(|c| (depth[&c.handle], c.handle));
    classes
}
