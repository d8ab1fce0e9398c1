//! diff(desired, live) → ordered operations. A pure function of two models.
//!
//! What changes in place: class parameters (`tc class change`), leaf qdisc options of
//! the same kind (`tc qdisc change`), a mark moving to another class (`tc filter replace`).
//! What is removed and re-added, and only that: a class that moves to another parent
//! (with its subtree), a leaf qdisc that changes kind, a netem qdisc that must drop rate,
//! slot or ecn (netem keeps them on change), and the whole root tree when htb's `default`
//! changes (the kernel has no `change` for htb itself).
//!
//! The apply order is in [`order`] (and documented there). By role:
//! - [`keyed`]: the one keyed diff (desired, live, key) → added / removed / both;
//! - [`tree`]: the diff of one tree, given its hook, root handle and filter parent;
//! - [`order`]: the apply order, assembled in one place;
//! - [`fields`]: field comparison with the kernel's tolerances (per-kind field diffs live
//!   with their kind in `crate::kind`);
//! - [`human`]: the plan as people read it.

use serde::Serialize;

use crate::model::{Class, DeviceState, Filter, FilterKind, Handle, Parent, Qdisc};
use crate::tc::render;

pub mod fields;
mod human;
pub mod keyed;
pub mod order;
pub mod tree;

pub use fields::FieldDiff;
pub use human::{describe, render_human};

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

impl Op {
    pub fn obj(&self) -> &Obj {
        let (Op::Add { obj, .. } | Op::Change { obj, .. } | Op::Remove { obj, .. }) = self;
        obj
    }
    /// The operation acts on the ingress side (the ingress or clsact qdisc, or a filter
    /// on it), which the egress tree's order and safety rules treat apart.
    pub fn is_ingress_side(&self) -> bool {
        match self.obj() {
            Obj::Qdisc(q) => q.parent == Parent::Ingress,
            Obj::Filter(f) => f.parent.is_ingress_side(),
            Obj::FilterPrio { parent, .. } => parent.is_ingress_side(),
            Obj::Class(_) => false,
        }
    }
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
    /// The ifb device itself is created (before the batch) or deleted (after it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkChange>,
}

/// An `ip link` step of the plan: the ifb of an ingress tree (`crate::link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum LinkChange {
    /// `ip link add NAME type ifb`, marked as qosctl's, up: before the tc batch.
    Create { ifb_for: String },
    /// `ip link del NAME`: after the batch (its qdiscs go with it).
    Delete { ifb_for: String },
    /// `ip link set dev NAME up`: qosctl's ifb is down (it would drop what is redirected).
    Up { ifb_for: String },
}

impl LinkChange {
    /// The `ip` line, for the plan and the dry run.
    pub fn command(&self, ifb: &str) -> String {
        match self {
            LinkChange::Create { ifb_for } => format!(
                "link add {ifb} type ifb; link set dev {ifb} alias {}{ifb_for} txqueuelen 1000 up",
                crate::link::ALIAS_PREFIX
            ),
            LinkChange::Delete { .. } => format!("link del dev {ifb}"),
            LinkChange::Up { .. } => format!("link set dev {ifb} up"),
        }
    }
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
            _ => true,
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
        self.devices
            .iter()
            .all(|d| d.ops.is_empty() && d.link.is_none())
    }
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for d in &self.devices {
            match d.link {
                Some(LinkChange::Create { .. }) => s.add += 1,
                Some(LinkChange::Delete { .. }) => s.remove += 1,
                Some(LinkChange::Up { .. }) => s.change += 1,
                None => {}
            }
        }
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
    order::device(desired, live)
}
