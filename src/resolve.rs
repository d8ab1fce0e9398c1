//! Percentages → absolute rates, stable handles: the validated policy becomes `model::Desired`.
//!
//! Rules that need the resolved numbers are checked here (rate sums, ceilings, the default
//! class, duplicate marks and ids), each pointing at the policy text.
//!
//! Handles: a class's minor is its `id`, else a hash of its path below the interface. When
//! two paths hash to the same minor, the lexicographically smaller path keeps it and the
//! other "probes" further hashes, skipping every minor that any class hashes to. So a class
//! whose hashed minor nobody else claims keeps it whatever else is added, removed or
//! reordered; only probing classes can move (they are reported, `id` pins them).

use serde::Serialize;
use std::collections::{HashMap, HashSet};

use crate::model::{
    self, Class, DeviceState, Filter, FilterKind, Handle, Htb, Parent, Qdisc, QdiscKind, Tbf,
};
use crate::policy::diag::Diagnostic;
use crate::policy::node::Span;
use crate::policy::schema::{self, Interface, Leaf, Policy, RateSpec};
use crate::units::{Rate, Size, Time};

/// The one `prio` (pref) every fw filter qosctl writes uses.
pub const FW_FILTER_PRIO: u16 = 1;
/// Minors a hashed class can get: 2..=0xfffe (0 is the qdisc, 1 the root class, and
/// 0xffff would make a leaf qdisc `ffff:`, the ingress handle).
const MINOR_LO: u64 = 2;
const MINOR_COUNT: u64 = 0xfffe - 2 + 1;

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
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Resolved {
    pub interfaces: Vec<ResolvedInterface>,
}

impl Resolved {
    /// The model without the names tree, for `apply` (no copy of the device states).
    pub fn into_desired(self) -> model::Desired {
        model::Desired {
            devices: self
                .interfaces
                .into_iter()
                .map(|i| model::DesiredDevice {
                    alias: i.alias,
                    state: i.state,
                })
                .collect(),
        }
    }

    pub fn desired(&self) -> model::Desired {
        model::Desired {
            devices: self
                .interfaces
                .iter()
                .map(|i| model::DesiredDevice {
                    alias: i.alias.clone(),
                    state: i.state.clone(),
                })
                .collect(),
        }
    }
}

/// 64-bit FNV-1a followed by a splitmix finalizer, so that similar paths (`c1`, `c2`) spread.
pub(crate) fn hash(path: &str, round: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes().chain(round.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The minor a class path hashes to (probe round 0), in 2..=0xfffe.
pub fn hashed_minor(path: &str) -> u16 {
    probe_minor(path, 0)
}

fn probe_minor(path: &str, round: u32) -> u16 {
    (MINOR_LO + hash(path, round) % MINOR_COUNT) as u16
}

/// A class flattened in pre-order.
struct Flat<'p> {
    c: &'p schema::Class,
    parent: Option<usize>,
    depth: usize,
    children: Vec<usize>,
}

fn flatten<'p>(
    classes: &'p [schema::Class],
    parent: Option<usize>,
    depth: usize,
    out: &mut Vec<Flat<'p>>,
) {
    // Explicit stack: the depth is bounded by the schema, but no recursion is cheaper still.
    let mut stack: Vec<(&'p schema::Class, Option<usize>, usize)> =
        classes.iter().rev().map(|c| (c, parent, depth)).collect();
    while let Some((c, parent, depth)) = stack.pop() {
        let idx = out.len();
        if let Some(p) = parent {
            out[p].children.push(idx);
        }
        out.push(Flat {
            c,
            parent,
            depth,
            children: Vec::new(),
        });
        stack.extend(c.children.iter().rev().map(|ch| (ch, Some(idx), depth + 1)));
    }
}

/// Resolves every interface; problems go to `diags`.
pub fn resolve(policy: &Policy, diags: &mut Vec<Diagnostic>) -> Resolved {
    let mut out = Resolved::default();
    let mut devices: HashMap<&str, &str> = HashMap::new();
    for iface in &policy.interfaces {
        if let Some(prev) = devices.insert(iface.device.v.as_str(), iface.alias.as_str()) {
            diags.push(
                Diagnostic::error(
                    iface.device.span.clone(),
                    format!(
                        "device \"{}\" is already managed by interface \"{prev}\"",
                        iface.device.v
                    ),
                )
                .hint("describe each device once"),
            );
        }
        out.interfaces.push(resolve_interface(iface, diags));
    }
    out
}

fn err(diags: &mut Vec<Diagnostic>, span: Span, msg: String) {
    diags.push(Diagnostic::error(span, msg));
}

fn resolve_interface(iface: &Interface, diags: &mut Vec<Diagnostic>) -> ResolvedInterface {
    let alias = &iface.alias;
    let iface_rate = iface.rate.as_ref().and_then(|r| match r.v {
        RateSpec::Abs(r) => Some(r),
        RateSpec::Pct { .. } => None,
    });
    let mut flat = Vec::new();
    flatten(&iface.classes, None, 0, &mut flat);
    let mut ri = ResolvedInterface {
        alias: alias.clone(),
        device: iface.device.v.clone(),
        rate: iface_rate,
        default: None,
        netem: None,
        classes: Vec::new(),
        state: DeviceState {
            device: iface.device.v.clone(),
            ..DeviceState::default()
        },
    };

    // Interface-level shape rules.
    if let Some(n) = &iface.netem {
        if !iface.classes.is_empty() {
            diags.push(
                Diagnostic::error(
                    n.span.clone(),
                    format!(
                        "interface \"{alias}\" has classes, so netem belongs on its leaf classes"
                    ),
                )
                .hint("move this netem into the class that should be impaired"),
            );
        } else if let Some(r) = &iface.rate {
            diags.push(
                Diagnostic::error(
                    r.span.clone(),
                    format!("interface \"{alias}\" has only netem: the rate would have no class to shape"),
                )
                .hint("limit the impaired link with netem's own rate: netem = { rate = \"…\" }"),
            );
        } else {
            ri.netem = Some(n.v.clone());
            ri.state.qdiscs.push(Qdisc {
                handle: Handle::qdisc(1),
                parent: Parent::Root,
                kind: QdiscKind::Netem(Box::new(n.v.clone())),
                name: Some(alias.clone()),
                stats: None,
            });
        }
    }
    if iface.classes.is_empty() {
        if let (Some(r), None) = (&iface.rate, &iface.netem) {
            diags.push(
                Diagnostic::error(
                    r.span.clone(),
                    format!("interface \"{alias}\" has a rate but no classes to shape into"),
                )
                .hint(format!(
                    "add a class that takes all traffic: [interfaces.{}.classes.all] rate = \"100%\", and default = \"all\"",
                    schema::toml_key(alias)
                )),
            );
        }
        if let Some(d) = &iface.default {
            diags.push(Diagnostic::error(
                d.span.clone(),
                format!(
                    "default names class \"{}\", but interface \"{alias}\" has no classes",
                    d.v
                ),
            ));
        }
        if let Some(l) = &iface.leaf {
            diags.push(
                Diagnostic::error(
                    l.span.clone(),
                    format!("interface \"{alias}\" has no classes, so no leaf qdiscs"),
                )
                .hint("set leaf on an interface with classes"),
            );
        }
        for (name, b) in [("burst", &iface.burst), ("cburst", &iface.cburst)] {
            if let Some(b) = b {
                diags.push(
                    Diagnostic::error(
                        b.span.clone(),
                        format!(
                            "interface \"{alias}\" has no classes: {name} belongs to the root class of an interface with classes"
                        ),
                    )
                    .hint(if iface.netem.is_some() {
                        "remove it; netem's own rate has no burst"
                    } else {
                        "remove it, or add classes"
                    }),
                );
            }
        }
        return ri;
    }

    if flat.len() as u64 > MINOR_COUNT {
        err(
            diags,
            iface.key_span.clone(),
            format!(
                "interface \"{alias}\" has {} classes; htb minors allow at most {MINOR_COUNT}",
                flat.len()
            ),
        );
        return ri;
    }

    let minors = assign_minors(&flat, diags);
    check_marks(&flat, diags);

    // Rates, top-down (pre-order visits parents first).
    let n = flat.len();
    let mut rate: Vec<Option<Rate>> = vec![None; n];
    let mut ceil: Vec<Option<Rate>> = vec![None; n];
    let root = iface_rate.map(|r| (r, r));
    let mut ok = vec![true; n];
    for i in 0..n {
        let f = &flat[i];
        let (p_rate, p_ceil, p_ok) = match f.parent {
            Some(p) => (rate[p], ceil[p], ok[p]),
            None => (root.map(|r| r.0), root.map(|r| r.1), true),
        };
        // Only for messages: formatting it for every class costs more than the rest.
        let p_name = || match f.parent {
            Some(p) => format!("class \"{}\"", flat[p].c.path),
            None => format!("interface \"{alias}\""),
        };
        if !p_ok
            || f.c.broken
            || (f.parent.is_some() && p_rate.is_none())
            || (f.parent.is_none() && iface.rate_invalid)
        {
            ok[i] = false;
            continue;
        }
        let Some(rspec) = &f.c.rate else {
            ok[i] = false;
            continue;
        };
        let Some(r) = apply_spec(&rspec.v, p_rate, "rate", &rspec.span, alias, diags) else {
            ok[i] = false;
            continue;
        };
        let c = match &f.c.ceil {
            None => Some(p_ceil.unwrap_or(r)),
            Some(cs) => apply_spec(&cs.v, p_ceil, "ceil", &cs.span, alias, diags),
        };
        let Some(c) = c else {
            ok[i] = false;
            continue;
        };
        match &f.c.ceil {
            Some(cs) if c < r => {
                err(
                    diags,
                    cs.span.clone(),
                    format!("ceil {c} is below the rate {r} of class \"{}\"", f.c.path),
                );
            }
            None if c < r => {
                err(
                    diags,
                    rspec.span.clone(),
                    format!(
                        "rate {r} of class \"{}\" is above the ceil {c} of its parent {}",
                        f.c.path,
                        p_name()
                    ),
                );
            }
            _ => {}
        }
        if let (Some(cs), Some(pc)) = (&f.c.ceil, p_ceil) {
            if c > pc {
                err(
                    diags,
                    cs.span.clone(),
                    format!(
                        "ceil {c} of class \"{}\" is above the ceil {pc} of its parent {}",
                        f.c.path,
                        p_name()
                    ),
                );
            }
        }
        rate[i] = Some(r);
        ceil[i] = Some(c);
    }

    // Children's guaranteed rates must fit in the parent's rate.
    let top: Vec<usize> = (0..n).filter(|i| flat[*i].parent.is_none()).collect();
    let check_sum = |kids: &[usize],
                     parent_rate: Option<Rate>,
                     span: Span,
                     who: String,
                     diags: &mut Vec<Diagnostic>| {
        let Some(pr) = parent_rate else { return };
        if kids.iter().any(|k| rate[*k].is_none()) {
            return;
        }
        let sum: u64 = kids
            .iter()
            .filter_map(|k| rate[*k])
            .map(|r| r.bits())
            .fold(0u64, u64::saturating_add);
        if sum > pr.bits() {
            diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "the classes under {who} guarantee {} in total, {} more than its rate {pr}",
                        Rate::from_bits(sum),
                        Rate::from_bits(sum - pr.bits())
                    ),
                )
                .hint("lower the children's rates or raise this rate"),
            );
        }
    };
    check_sum(
        &top,
        iface_rate,
        iface
            .rate
            .as_ref()
            .map(|r| r.span.clone())
            .unwrap_or(iface.key_span.clone()),
        format!("interface \"{alias}\""),
        diags,
    );
    for i in 0..n {
        if !flat[i].children.is_empty() {
            let span = flat[i]
                .c
                .rate
                .as_ref()
                .map(|r| r.span.clone())
                .unwrap_or(flat[i].c.key_span.clone());
            check_sum(
                &flat[i].children,
                rate[i],
                span,
                format!("class \"{}\"", flat[i].c.path),
                diags,
            );
        }
    }

    // The root class: the interface rate, or when none is given, just enough for its children.
    let root_rate = iface_rate.unwrap_or_else(|| {
        let sum = top
            .iter()
            .filter_map(|k| rate[*k])
            .map(|r| r.bits())
            .fold(0u64, u64::saturating_add);
        let max_ceil = top
            .iter()
            .filter_map(|k| ceil[*k])
            .map(|r| r.bits())
            .max()
            .unwrap_or(0);
        Rate::from_bits(sum.max(max_ceil).max(8))
    });
    ri.rate = Some(root_rate);

    let default_minor = resolve_default(iface, &flat, diags).map(|i| {
        ri.default = Some(flat[i].c.path.clone());
        minors[i].0
    });

    // Leaves: a class's leaf qdisc is its netem, else its leaf, else the interface's
    // leaf, else fq_codel.
    let leaf_of = |i: usize, diags: &mut Vec<Diagnostic>| -> Option<QdiscKind> {
        let c = flat[i].c;
        if !flat[i].children.is_empty() {
            return None;
        }
        if let (Some(l), Some(nm)) = (&c.leaf, &c.netem) {
            diags.push(
                Diagnostic::error(
                    nm.span.clone(),
                    format!(
                        "class \"{}\" sets both leaf ({}) and netem: a class has one leaf qdisc",
                        c.path,
                        l.v.kind_name()
                    ),
                )
                .hint("remove leaf; netem becomes the leaf qdisc"),
            );
            return None;
        }
        Some(if let Some(nm) = &c.netem {
            QdiscKind::Netem(Box::new(nm.v.clone()))
        } else if let Some(l) = c.leaf.as_deref().or(iface.leaf.as_ref()) {
            concrete_leaf(&l.v, ceil[i].unwrap_or(root_rate))
        } else {
            QdiscKind::FqCodel(model::FqCodel::default())
        })
    };

    // The model.
    let st = &mut ri.state;
    st.qdiscs.reserve(n + 1);
    st.classes.reserve(n + 1);
    ri.classes.reserve(n);
    st.qdiscs.push(Qdisc {
        handle: Handle::qdisc(1),
        parent: Parent::Root,
        kind: QdiscKind::Htb(Htb {
            default: default_minor.unwrap_or(0),
            r2q: None,
        }),
        name: Some(alias.clone()),
        stats: None,
    });
    let root_handle = Handle::new(1, 1);
    st.classes.push(Class {
        burst: iface.burst.as_ref().map(|b| b.v),
        cburst: iface.cburst.as_ref().map(|b| b.v),
        name: Some(alias.clone()),
        ..Class::new(root_handle, None, root_rate, root_rate)
    });
    for i in 0..n {
        let f = &flat[i];
        let (minor, source) = minors[i];
        let handle = Handle::new(1, minor);
        let parent = f
            .parent
            .map(|p| Handle::new(1, minors[p].0))
            .unwrap_or(root_handle);
        let name = format!("{alias}/{}", f.c.path);
        let (r, c) = (
            rate[i].unwrap_or(Rate::from_bits(8)),
            ceil[i].unwrap_or(Rate::from_bits(8)),
        );
        st.classes.push(Class {
            burst: f.c.burst,
            cburst: f.c.cburst,
            prio: f.c.prio.as_ref().map(|p| p.v),
            quantum: f.c.quantum,
            name: Some(name.clone()),
            ..Class::new(handle, Some(parent), r, c)
        });
        let leaf = leaf_of(i, diags);
        if let Some(leaf) = &leaf {
            st.qdiscs.push(Qdisc {
                handle: Handle::qdisc(minor),
                parent: Parent::Class(handle),
                kind: leaf.clone(),
                name: Some(name.clone()),
                stats: None,
            });
        }
        for m in &f.c.marks {
            st.filters.push(Filter {
                parent: Handle::qdisc(1),
                prio: FW_FILTER_PRIO,
                protocol: "all".into(),
                kind: FilterKind::Fw {
                    mark: m.v,
                    mask: 0xffff_ffff,
                },
                classid: Some(handle),
                name: Some(name.clone()),
                stats: None,
            });
        }
        ri.classes.push(ResolvedClass {
            path: f.c.path.clone(),
            depth: f.depth,
            handle,
            parent,
            rate: r,
            ceil: c,
            prio: f.c.prio.as_ref().map(|p| p.v),
            marks: f.c.marks.iter().map(|m| m.v).collect(),
            leaf: leaf.map(Box::new),
            minor_source: source,
        });
    }
    duplicating_netem_warnings(iface, &flat, &ri.state, diags);
    ri
}

/// A rate spec against the parent's value (`rate` of the parent for rate, its ceil for ceil).
fn apply_spec(
    spec: &RateSpec,
    parent: Option<Rate>,
    what: &str,
    span: &Span,
    alias: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Rate> {
    match spec {
        RateSpec::Abs(r) => Some(*r),
        RateSpec::Pct { percent, min, max } => {
            let Some(p) = parent else {
                diags.push(
                    Diagnostic::error(
                        span.clone(),
                        format!("{what} is a percentage, but interface \"{alias}\" has no rate to take it of"),
                    )
                    .hint(format!(
                        "set rate = \"…\" in [interfaces.{}], or write an absolute {what}",
                        schema::toml_key(alias)
                    )),
                );
                return None;
            };
            // Floor, so that shares adding up to 100% never exceed the parent.
            let mut v = ((p.bits() as f64) * percent / 100.0).floor() as u64;
            if let Some(lo) = min {
                v = v.max(lo.bits());
            }
            if let Some(hi) = max {
                v = v.min(hi.bits());
            }
            if v < 8 {
                diags.push(
                    Diagnostic::error(
                        span.clone(),
                        format!("{what} {}% of {p} is {v}bit, below 8bit, the smallest rate the kernel keeps", fmt_pct(*percent)),
                    )
                    .hint("raise the percentage or add a min"),
                );
                return None;
            }
            Some(Rate::from_bits(v))
        }
    }
}

fn fmt_pct(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as u64)
    } else {
        format!("{p}")
    }
}

/// A leaf as the kernel will get it: tbf's omitted rate/burst filled from the class.
fn concrete_leaf(l: &Leaf, class_ceil: Rate) -> QdiscKind {
    match l {
        Leaf::Kind(k) => k.clone(),
        Leaf::Tbf {
            rate,
            burst,
            limit,
            latency,
        } => {
            let rate = rate.unwrap_or(class_ceil);
            // 10ms worth of the rate, and never below a full-size frame plus headroom.
            let burst = burst.unwrap_or(Size((rate.kernel_bytes() / 100).max(1600)));
            let latency = if limit.is_none() && latency.is_none() {
                Some(Time(50_000_000))
            } else {
                *latency
            };
            QdiscKind::Tbf(Tbf {
                rate,
                burst,
                limit: *limit,
                latency,
            })
        }
    }
}

/// Explicit ids, then hashed minors, then probes for collisions (see the module docs).
fn assign_minors(flat: &[Flat], diags: &mut Vec<Diagnostic>) -> Vec<(u16, MinorSource)> {
    let n = flat.len();
    let mut out = vec![(0u16, MinorSource::Hash); n];
    let mut taken: HashMap<u16, usize> = HashMap::with_capacity(n);
    for (i, f) in flat.iter().enumerate() {
        if let Some(id) = &f.c.id {
            if let Some(&j) = taken.get(&id.v) {
                diags.push(
                    Diagnostic::error(
                        id.span.clone(),
                        format!(
                            "id {:#x} is already used by class \"{}\"",
                            id.v, flat[j].c.path
                        ),
                    )
                    .hint("give each class its own id, or remove id to get a hashed one"),
                );
            } else {
                taken.insert(id.v, i);
            }
            out[i] = (id.v, MinorSource::Id);
        }
    }
    // Each hashed minor goes to the smallest path that claims it (and no id holds it).
    let mut owner: HashMap<u16, usize> = HashMap::with_capacity(n);
    let mut losers = Vec::new();
    for (i, f) in flat.iter().enumerate() {
        if f.c.id.is_some() {
            continue;
        }
        match owner.entry(hashed_minor(&f.c.path)) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let j = *e.get();
                if f.c.path < flat[j].c.path {
                    e.insert(i);
                    losers.push(j);
                } else {
                    losers.push(i);
                }
            }
        }
    }
    for (&slot, &w) in &owner {
        if let std::collections::hash_map::Entry::Vacant(e) = taken.entry(slot) {
            e.insert(w);
            out[w] = (slot, MinorSource::Hash);
        } else {
            losers.push(w);
        }
    }
    losers.sort_by(|a, b| flat[*a].c.path.cmp(&flat[*b].c.path));
    let claimed: HashSet<u16> = owner.keys().copied().collect();
    for i in losers {
        let path = &flat[i].c.path;
        let free = |m: u16| !taken.contains_key(&m) && !claimed.contains(&m);
        let mut slot = (1..64).map(|r| probe_minor(path, r)).find(|m| free(*m));
        if slot.is_none() {
            // A nearly full minor space: scan, first avoiding claimed minors, then anything free.
            slot = (2..=0xfffeu16)
                .find(|m| free(*m))
                .or_else(|| (2..=0xfffeu16).find(|m| !taken.contains_key(m)));
        }
        if let Some(m) = slot {
            taken.insert(m, i);
            out[i] = (m, MinorSource::Probe);
        }
    }
    out
}

fn check_marks(flat: &[Flat], diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (i, f) in flat.iter().enumerate() {
        for m in &f.c.marks {
            if let Some(&j) = seen.get(&m.v) {
                let whom = if j == i {
                    "this class".to_string()
                } else {
                    format!("class \"{}\"", flat[j].c.path)
                };
                diags.push(
                    Diagnostic::error(
                        m.span.clone(),
                        format!("mark {:#x} is already used by {whom}", m.v),
                    )
                    .hint("a mark can steer to one class only"),
                );
            } else {
                seen.insert(m.v, i);
            }
        }
    }
}

/// The default class: a path below the interface (`bulk/backup`) or a class name that is
/// unique in the interface.
fn resolve_default(iface: &Interface, flat: &[Flat], diags: &mut Vec<Diagnostic>) -> Option<usize> {
    let alias = &iface.alias;
    // Leaf paths for hints, at most a few: an interface may have thousands.
    let some_leaves = |range: &[Flat]| -> String {
        let leaves: Vec<&str> = range
            .iter()
            .filter(|f| f.children.is_empty())
            .map(|f| f.c.path.as_str())
            .take(6)
            .collect();
        if leaves.len() > 5 {
            format!("{}, …", leaves[..5].join(", "))
        } else {
            leaves.join(", ")
        }
    };
    let Some(d) = &iface.default else {
        let first_leaf = flat.iter().find(|f| f.children.is_empty());
        diags.push(
            Diagnostic::error(
                iface.key_span.clone(),
                format!("interface \"{alias}\" has classes but no default class for unclassified traffic"),
            )
            .maybe_hint(first_leaf.map(|f| format!("add default = \"{}\"", f.c.path))),
        );
        return None;
    };
    let found = match flat.iter().position(|f| f.c.path == d.v) {
        Some(i) => Some(i),
        None if d.v.contains('/') => None,
        None => {
            let named: Vec<usize> = (0..flat.len()).filter(|i| flat[*i].c.name == d.v).collect();
            if named.len() > 1 {
                let paths: Vec<&str> = named.iter().map(|i| flat[*i].c.path.as_str()).collect();
                diags.push(
                    Diagnostic::error(
                        d.span.clone(),
                        format!("default \"{}\" names more than one class", d.v),
                    )
                    .hint(format!("write its path: {}", paths.join(" or "))),
                );
                return None;
            }
            named.first().copied()
        }
    };
    let Some(i) = found else {
        let all: Vec<&str> = flat.iter().map(|f| f.c.path.as_str()).collect();
        let hint = match crate::policy::diag::did_you_mean(&d.v, &all) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("leaf classes: {}", some_leaves(flat)),
        };
        diags.push(
            Diagnostic::error(
                d.span.clone(),
                format!(
                    "default \"{}\" names no class of interface \"{alias}\"",
                    d.v
                ),
            )
            .hint(hint),
        );
        return None;
    };
    if !flat[i].children.is_empty() {
        // Pre-order: the subtree of i is the run after it with a greater depth.
        let depth = flat[i].depth;
        let end = flat[i + 1..]
            .iter()
            .position(|f| f.depth <= depth)
            .map_or(flat.len(), |p| i + 1 + p);
        diags.push(
            Diagnostic::error(
                d.span.clone(),
                format!(
                    "default \"{}\" has child classes; traffic can only wait in a leaf class",
                    d.v
                ),
            )
            .hint(format!(
                "name one of its leaves: {}",
                some_leaves(&flat[i + 1..end])
            )),
        );
        return None;
    }
    Some(i)
}

/// Linux refuses a netem that duplicates packets in a tree that holds other netems ("netem:
/// cannot mix duplicating netems with other netems in tree", measured on 6.1.192; the rule came
/// with the 2025 stable updates, so older kernels accept it). A warning, not an error: the
/// policy is valid and an older kernel applies it.
fn duplicating_netem_warnings(
    iface: &Interface,
    flat: &[Flat],
    tree: &DeviceState,
    diags: &mut Vec<Diagnostic>,
) {
    let netems = tree
        .qdiscs
        .iter()
        .filter(|q| matches!(q.kind, QdiscKind::Netem(_)))
        .count();
    if netems < 2 {
        return;
    }
    for f in flat.iter().filter(|f| f.children.is_empty()) {
        let Some(nm) = &f.c.netem else { continue };
        if nm.v.duplicate.is_none_or(|p| p.kernel() == 0) {
            continue;
        }
        diags.push(
            Diagnostic::warning(
                nm.span.clone(),
                format!(
                    "class \"{}\" duplicates packets, and interface \"{}\" has {} other netem{}: \
                     current Linux kernels refuse that (\"netem: cannot mix duplicating netems \
                     with other netems in tree\")",
                    f.c.path,
                    iface.alias,
                    netems - 1,
                    if netems == 2 { "" } else { "s" }
                ),
            )
            .hint("put the duplicating netem on an interface of its own, or drop duplicate here"),
        );
    }
}
