//! Percentages → absolute rates, stable handles: the validated policy becomes `model::Desired`.
//!
//! One tree builder (`tree.rs`) turns a policy tree into qdiscs, classes and filters in
//! named passes, each in its own function and each checking the rules that need its
//! resolved numbers (rate sums, ceilings, the default class, duplicate marks and ids),
//! pointing at the policy text. It is called once per tree with the device and handles the
//! tree is built for (`Target`); egress and ingress differ only in those arguments.
//!
//! - `tree.rs`: the pass order, the tree's shape (netem only, empty, classes).
//! - `minors.rs`: class minors (ids, hashes, probes) and duplicate marks.
//! - `rates.rs`: rates and ceils top-down, children's sums, the root class's rate.
//! - `default.rs`: the default class.
//! - `emit.rs`: leaf qdiscs, then the model: qdiscs, classes, filters; the netem warning.
//! - `matches.rs`: `[[….match]]` entries → u32 filters (layout, conflicts, `set_dscp`).
//!
//! Handles: a class's minor is its `id`, else a hash of its path below the tree's root. When
//! two paths hash to the same minor, the lexicographically smaller path keeps it and the
//! other "probes" further hashes, skipping every minor that any class hashes to. So a class
//! whose hashed minor nobody else claims keeps it whatever else is added, removed or
//! reordered; only probing classes can move (they are reported, `id` pins them).

mod default;
mod emit;
pub mod ingress;
mod matches;
mod minors;
mod rates;
mod tree;

use serde::Serialize;
use std::collections::HashMap;

use crate::model::{self, DeviceState, Handle, Parent, QdiscKind};
use crate::policy::diag::Diagnostic;
use crate::policy::problem::Problem;
use crate::policy::schema::{Direction, Interface, Policy};
use crate::units::Rate;

pub(crate) use minors::hash;
pub use minors::hashed_minor;
pub use tree::BuiltTree;

/// The one `prio` (pref) every fw filter qosctl writes uses.
pub const FW_FILTER_PRIO: u16 = 1;

/// How a class got its minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MinorSource {
    /// `id` in the policy.
    Id,
    /// The hash of its path: stable under any edit of other classes but one with the same hash.
    Hash,
    /// Its hash collided; it took the next free probe. May move when classes are added or
    /// removed: pin it with `id`.
    Probe,
}

/// Serializes matches as the policy's words, as `check` prints them.
fn in_words<S: serde::Serializer>(
    ms: &[crate::classify::matcher::Match],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(ms.iter().map(ToString::to_string))
}

/// A resolved class, for display (`check`) and for matching live classes to names (`show`).
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedClass {
    /// Path below the interface: `bulk/backup`.
    pub path: String,
    pub depth: usize,
    pub handle: Handle,
    pub parent: Handle,
    pub rate: crate::units::Rate,
    pub ceil: crate::units::Rate,
    pub prio: Option<u32>,
    pub marks: Vec<u32>,
    /// Its `[[….match]]` entries, shown and serialized in the policy's words (`dst
    /// 10.0.0.5/32 dport 443`); kept as matches, not text, because only `check` prints them
    /// and formatting 10,000 of them cost a no-op re-apply 6 % of its planning instructions.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "in_words")]
    pub matches: Vec<crate::classify::matcher::Match>,
    /// `set_dscp`, as a DSCP name (`EF`) or number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_dscp: Option<String>,
    /// The leaf qdisc (None for a class with children). Boxed to keep 10,000 classes small.
    pub leaf: Option<Box<QdiscKind>>,
    pub minor_source: MinorSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResolvedInterface {
    pub alias: String,
    pub device: String,
    /// The root class 1:1's rate and ceil, when the interface is shaped.
    pub rate: Option<Rate>,
    /// Path of the default class.
    pub default: Option<String>,
    /// netem of an impairment-only interface (root qdisc 1:).
    pub netem: Option<model::Netem>,
    pub classes: Vec<ResolvedClass>,
    pub state: DeviceState,
    /// Which classifier implements the matches of both trees.
    pub classifier: crate::classify::Classifier,
    /// `[interfaces.X.ingress]`, when the policy has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<ResolvedIngress>,
}

/// The ingress side of an interface: its tree on the ifb, the policer and the mark restore
/// of the hook, for `check` and `show`.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedIngress {
    /// The ifb device the tree is built on (None: the ingress only polices).
    pub ifb: Option<String>,
    /// The hook's policer, in the policy's words (`police 1mbit burst 16KiB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub police: Option<String>,
    /// `connmark` or `ctinfo`, when the conntrack mark is restored before the redirect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_mark: Option<&'static str>,
    pub rate: Option<Rate>,
    pub default: Option<String>,
    pub netem: Option<model::Netem>,
    pub classes: Vec<ResolvedClass>,
    /// The ifb's state (empty when there is no ifb).
    pub state: DeviceState,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Resolved {
    pub interfaces: Vec<ResolvedInterface>,
}

impl Resolved {
    /// The model without the names tree, for `apply` (no copy of the device states).
    /// Each interface's device, followed by its ifb when it has an ingress tree.
    pub fn into_desired(self) -> model::Desired {
        let mut devices = Vec::with_capacity(self.interfaces.len());
        for i in self.interfaces {
            let ifb = i.ingress.and_then(|g| g.ifb.map(|ifb| (ifb, g.state)));
            devices.push(model::DesiredDevice {
                alias: i.alias.clone(),
                state: i.state,
                ifb_for: None,
            });
            if let Some((_, state)) = ifb {
                devices.push(model::DesiredDevice {
                    alias: i.alias,
                    state,
                    ifb_for: Some(i.device),
                });
            }
        }
        model::Desired { devices }
    }

    pub fn desired(&self) -> model::Desired {
        self.clone().into_desired()
    }
}

/// Where a tree is built: the device and the handles of its root.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub device: &'a str,
    /// The root qdisc (`1:`); its major is the major of every class of the tree.
    pub qdisc: Handle,
    /// Where the root qdisc hangs (`root`).
    pub parent: Parent,
    /// The root class (`1:1`), which carries the tree's rate.
    pub root_class: Handle,
    /// Where the tree's filters are attached (`1:`).
    pub filter_parent: Handle,
    /// Which classifier implements the tree's matches (`classifier = "…"`).
    pub classifier: crate::classify::Classifier,
}

impl Target<'_> {
    /// What leaves `device`: htb `1:` at the device root, root class `1:1`, filters on `1:`.
    pub fn egress(device: &str) -> Target<'_> {
        Target {
            device,
            qdisc: Handle::qdisc(1),
            parent: Parent::Root,
            root_class: Handle::new(1, 1),
            filter_parent: Handle::qdisc(1),
            classifier: crate::classify::Classifier::U32,
        }
    }

    pub fn with_classifier(self, classifier: crate::classify::Classifier) -> Self {
        Target { classifier, ..self }
    }
}

/// Resolves every interface; problems go to `diags`.
pub fn resolve(policy: &Policy, diags: &mut Vec<Diagnostic>) -> Resolved {
    let mut out = Resolved::default();
    let mut devices: HashMap<&str, &str> = HashMap::new();
    for iface in &policy.interfaces {
        if let Some(by) = devices.insert(iface.device.v.as_str(), iface.alias.as_str()) {
            let device = &iface.device.v;
            diags.push(Problem::DeviceTaken { device, by }.at(iface.device.span.clone()));
        }
        out.interfaces.push(resolve_interface(iface, diags));
    }
    ifb_names_free(policy, &out, diags);
    out
}

/// Two ingress trees whose ifbs would share a name, or an ifb name that is a device of the
/// policy itself (the ifb would be shaped twice).
fn ifb_names_free(policy: &Policy, out: &Resolved, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (iface, r) in policy.interfaces.iter().zip(&out.interfaces) {
        let Some(ifb) = r.ingress.as_ref().and_then(|g| g.ifb.as_deref()) else {
            continue;
        };
        let span = iface
            .ingress
            .as_ref()
            .map_or(iface.key_span.clone(), |g| g.tree.key_span.clone());
        let by = policy
            .interfaces
            .iter()
            .find(|o| o.device.v == ifb)
            .map(|o| o.alias.as_str())
            .or_else(|| seen.insert(ifb, iface.alias.as_str()));
        if let Some(by) = by {
            diags.push(Problem::IfbNameTaken { ifb, by }.at(span));
        }
    }
}

/// An interface is its egress tree on its device, and its ingress tree on its ifb device
/// with the hook on its own ingress qdisc (`ingress.rs`).
fn resolve_interface(iface: &Interface, diags: &mut Vec<Diagnostic>) -> ResolvedInterface {
    let target = Target::egress(&iface.device.v).with_classifier(iface.classifier);
    let mut egress = tree::build(&iface.egress, iface.name(Direction::Egress), &target, diags);
    let ingress = iface.ingress.as_ref().map(|g| {
        let b = ingress::build(iface, g, diags);
        egress.state.qdiscs.extend(b.hook.iter().cloned());
        egress.state.filters.extend(b.hook_filter.iter().cloned());
        ResolvedIngress {
            police: b
                .police
                .as_ref()
                .map(|p| format!("police {} burst {}", p.rate, p.burst)),
            restore_mark: b.restore.map(|r| match r {
                crate::classify::action::Restore::Connmark => "connmark",
                crate::classify::action::Restore::Ctinfo { .. } => "ctinfo",
            }),
            ifb: b.ifb,
            rate: b.tree.rate,
            default: b.tree.default,
            netem: b.tree.netem,
            classes: b.tree.classes,
            state: b.tree.state,
        }
    });
    ResolvedInterface {
        ingress,
        alias: iface.alias.clone(),
        device: iface.device.v.clone(),
        rate: egress.rate,
        default: egress.default,
        netem: egress.netem,
        classes: egress.classes,
        state: egress.state,
        classifier: iface.classifier,
    }
}
