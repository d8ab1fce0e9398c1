//! Foreign state: traffic control on a managed interface that qosctl did not create.
//!
//! An apply whose plan would remove or rewrite such an object stops before changing
//! anything and names it, with what would replace it; `apply --force` adopts it. This is
//! the one place that says what "qosctl's own" looks like; it follows the handles that
//! `resolve.rs` derives and `tc/render.rs` writes:
//!
//! - **root**: `htb 1:` whose classes all have major 1, whose only parentless class is
//!   `1:1`, every other class below it, no class `1:ffff` (qosctl never hashes there); and
//!   which shares at least one class besides `1:1` with the policy, or has no other class
//!   (or the policy has no classes to compare with: netem-only or empty).
//!   Or `netem 1:` without classes (an impairment-only interface).
//! - **leaf qdisc**: on class `1:m` with handle `m:`, of a kind qosctl writes.
//! - **filter** on the root: `fw`, `protocol all`, at [`FW_FILTER_PRIO`]; u32 filters that
//!   the u32 reader found in qosctl's shape (`kind/filter/u32.rs`).
//! - **ingress**: an `ingress` qdisc whose only filter is qosctl's hook (u32 match-all at
//!   node 1 of prio 1 whose actions restore the mark, police, and redirect to this device's
//!   own ifb, `crate::link`); clsact, OVS's matchall/basic policers and a redirect to any
//!   other device are foreign.
//!
//! Kernel defaults (handle `0:`, noqueue, pfifo_fast, mq) never reach this module: the
//! reader maps them to "nothing". qosctl creates and deletes only ifbs whose alias says they
//! are its own (`crate::link`); a foreign ifb is never touched, and a redirect into one is
//! named when the plan would remove it.
//!
//! The overlap rule is the conservative part: a hand-made `htb 1:` tree built exactly in
//! qosctl's shape *and* sharing a class handle with the policy is taken as qosctl's (the
//! policy then describes it anyway); a tree that shares nothing with the policy is
//! foreign, also when it is qosctl's own from before an edit that renamed every class:
//! then `--force` says so.

use serde::Serialize;
use std::collections::HashSet;
use std::fmt::Write as _;

use crate::classify::action::Action;
use crate::model::{DeviceState, Filter, FilterKind, Handle, Parent, Qdisc, QdiscKind};
use crate::plan::{Obj, Op, Plan};
use crate::resolve::FW_FILTER_PRIO;

/// One foreign object the plan would remove or rewrite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Foreign {
    pub device: String,
    /// The policy key of the interface.
    pub alias: String,
    /// What it is: `root qdisc tbf 8001:`, `ingress qdisc ffff: with 1 u32 filter`.
    pub object: String,
    /// Why it is not qosctl's.
    pub why: String,
    /// What the apply puts in its place.
    pub replaced_by: String,
}

/// Every foreign object that `plan` would remove or rewrite on the devices of `desired`.
/// `live[i]` is the state of `plan.devices[i]`.
pub fn find(desired: &crate::model::Desired, live: &[DeviceState], plan: &Plan) -> Vec<Foreign> {
    let mut out = Vec::new();
    for ((d, l), p) in desired.devices.iter().zip(live).zip(&plan.devices) {
        if p.ops.is_empty() {
            continue;
        }
        let mut push = |object: String, why: String, replaced_by: String| {
            out.push(Foreign {
                device: d.state.device.clone(),
                alias: d.alias.clone(),
                object,
                why,
                replaced_by,
            })
        };
        for q in l.qdiscs.iter().filter(|q| q.parent == Parent::Ingress) {
            let touched = p.ops.iter().any(|op| touches_ingress(op, q));
            if touched && !ingress_is_ours(q, l) {
                push(
                    ingress_object(q, l),
                    ingress_why(q, l),
                    ingress_replacement(&d.state, l),
                );
            }
        }
        let root_ops = p.ops.iter().any(|op| !op.is_ingress_side());
        match l.root_qdisc() {
            Some(r) if root_ops => match root_foreign(&d.state, l, r) {
                Some(why) => push(root_object(r, l), why, root_replacement(&d.state)),
                None => parts(&d.state, l, &p.ops, &mut push),
            },
            _ => {}
        }
    }
    out
}

/// Leaf qdiscs and root filters the plan removes from qosctl's own tree that are not its.
fn parts(
    desired: &DeviceState,
    live: &DeviceState,
    ops: &[Op],
    push: &mut dyn FnMut(String, String, String),
) {
    for op in ops {
        let Op::Remove { obj, .. } = op else { continue };
        match obj {
            Obj::Qdisc(q) => {
                if let Parent::Class(c) = q.parent {
                    if !leaf_is_ours(q, c) {
                        let by = match desired.qdiscs.iter().find(|d| d.parent == q.parent) {
                            Some(d) => format!("{} {} of the policy", d.kind.kind_name(), d.handle),
                            None => "nothing".into(),
                        };
                        push(
                            format!(
                                "leaf qdisc {} {} on class {c}",
                                q.kind.kind_name(),
                                q.handle
                            ),
                            format!(
                                "qosctl's leaf on class {c} is {:x}: of a kind it writes",
                                c.minor
                            ),
                            by,
                        );
                    }
                }
            }
            // A leaf under a removed class goes with it without an op of its own.
            Obj::Class(c) => {
                for q in live
                    .qdiscs
                    .iter()
                    .filter(|q| q.parent == Parent::Class(c.handle))
                {
                    if !leaf_is_ours(q, c.handle) {
                        push(
                            format!(
                                "leaf qdisc {} {} on class {}",
                                q.kind.kind_name(),
                                q.handle,
                                c.handle
                            ),
                            format!(
                                "qosctl's leaf on class {} is {:x}: of a kind it writes",
                                c.handle, c.handle.minor
                            ),
                            format!("nothing: class {} is removed", c.handle),
                        );
                    }
                }
            }
            Obj::Filter(f) if !filter_is_ours(f) => push(
                filter_object(f),
                filter_why(),
                filter_replacement(desired, f.prio),
            ),
            Obj::FilterPrio { parent, prio, .. } => {
                let theirs: Vec<&Filter> = live
                    .filters
                    .iter()
                    .filter(|f| f.parent == *parent && f.prio == *prio && !filter_is_ours(f))
                    .collect();
                if let Some(f) = theirs.first() {
                    let more = match theirs.len() {
                        1 => String::new(),
                        n => format!(" (and {} more at this prio)", n - 1),
                    };
                    push(
                        format!("{}{more}", filter_object(f)),
                        filter_why(),
                        filter_replacement(desired, *prio),
                    );
                }
            }
            _ => {}
        }
    }
}

/// Why the live root tree is not qosctl's, or `None` when it is.
fn root_foreign(desired: &DeviceState, live: &DeviceState, root: &Qdisc) -> Option<String> {
    let scheme = "qosctl's root is htb 1: over class 1:1, or netem 1: without classes";
    match &root.kind {
        QdiscKind::Netem(_) if root.handle == Handle::qdisc(1) && live.classes.is_empty() => {
            return None
        }
        QdiscKind::Htb(_) if root.handle == Handle::qdisc(1) => {}
        _ => return Some(scheme.into()),
    }
    let top = Handle::new(1, 1);
    let handles: HashSet<Handle> = live.classes.iter().map(|c| c.handle).collect();
    for c in &live.classes {
        let fits = c.handle.major == 1
            && c.handle.minor != 0xffff
            && match c.parent {
                None => c.handle == top,
                Some(p) => p != c.handle && handles.contains(&p),
            };
        if !fits {
            return Some(format!(
                "class {} does not fit qosctl's handles (1:1 at the top, every other class below it)",
                c.handle
            ));
        }
    }
    let others: Vec<Handle> = live
        .classes
        .iter()
        .map(|c| c.handle)
        .filter(|h| *h != top)
        .collect();
    // A policy without classes (netem-only, or nothing) gives no handles to compare with:
    // the shape alone decides then.
    let shared = others.iter().any(|h| desired.class(*h).is_some());
    if !others.is_empty() && !desired.classes.is_empty() && !shared {
        return Some(format!(
            "none of its {} classes is a class of the policy",
            others.len()
        ));
    }
    None
}

fn leaf_is_ours(q: &Qdisc, class: Handle) -> bool {
    q.handle == Handle::qdisc(class.minor) && !matches!(q.kind, QdiscKind::Other { .. })
}

/// fw at its priority, or a u32 or flower filter in qosctl's shape (their readers give
/// `FilterKind::U32` / `FilterKind::Flower` only to those, see `kind/filter/`).
fn filter_is_ours(f: &Filter) -> bool {
    match f.kind {
        FilterKind::Fw { .. } => f.prio == FW_FILTER_PRIO && f.protocol == "all",
        FilterKind::U32 { .. } | FilterKind::Flower { .. } => true,
        FilterKind::Other { .. } => false,
    }
}

fn filter_why() -> String {
    format!(
        "qosctl's filters are fw, protocol all, at prio {FW_FILTER_PRIO}, and u32 in its \
         own layout, and flower in the same layout (docs/match.md)"
    )
}

fn filter_object(f: &Filter) -> String {
    let mut s = format!(
        "{} filter prio {} protocol {} on {}",
        f.kind.kind_name(),
        f.prio,
        f.protocol,
        f.parent
    );
    if let Some(c) = f.classid {
        let _ = write!(s, " -> {c}");
    }
    if let FilterKind::Other { summary, .. } = &f.kind {
        if !summary.is_empty() {
            let _ = write!(s, " ({summary})");
        }
    }
    s
}

fn filter_replacement(desired: &DeviceState, prio: u16) -> String {
    let at: Vec<&Filter> = desired.filters.iter().filter(|f| f.prio == prio).collect();
    match at.first() {
        None => "nothing".into(),
        Some(f) => format!(
            "the policy's {} {} filter{} at prio {prio}",
            at.len(),
            f.kind.kind_name(),
            plural(at.len())
        ),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn root_object(r: &Qdisc, live: &DeviceState) -> String {
    let mut s = format!("root qdisc {} {}", r.kind.kind_name(), r.handle);
    let leaves = live
        .qdiscs
        .iter()
        .filter(|q| matches!(q.parent, Parent::Class(_)))
        .count();
    let filters = live.filters.iter().filter(|f| f.parent == r.handle).count();
    let parts: Vec<String> = [
        (live.classes.len(), "class", "classes"),
        (leaves, "leaf qdisc", "leaf qdiscs"),
        (filters, "filter", "filters"),
    ]
    .iter()
    .filter(|(n, ..)| *n > 0)
    .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
    .collect();
    if !parts.is_empty() {
        let _ = write!(s, " with {}", parts.join(", "));
    }
    s
}

fn root_replacement(desired: &DeviceState) -> String {
    match desired.root_qdisc() {
        None => "nothing: the policy shapes no egress here".into(),
        Some(r) => {
            let mut s = format!("{} {} of the policy", r.kind.kind_name(), r.handle);
            let (c, f) = (desired.classes.len(), desired.filters.len());
            if c > 0 {
                let _ = write!(s, " ({c} class{}", if c == 1 { "" } else { "es" });
                if f > 0 {
                    let _ = write!(s, ", {f} fw filter{}", plural(f));
                }
                s.push(')');
            }
            s
        }
    }
}

/// qosctl's ingress side: an `ingress` qdisc whose every filter is qosctl's hook into this
/// device's own ifb, or its policer (`link::hook_of`). An OVS or Neutron policer, a
/// redirect to another ifb, any other classifier there, or clsact, is foreign.
fn ingress_is_ours(q: &Qdisc, live: &DeviceState) -> bool {
    matches!(q.kind, QdiscKind::Ingress)
        && live
            .filters
            .iter()
            .filter(|f| f.parent.is_ingress_side())
            .all(|f| crate::link::is_own_hook(f, &live.device))
}

/// `ingress`/`clsact`: the tc kind word (the model's `Parent::Ingress` holds both).
fn ingress_kind(q: &Qdisc) -> &str {
    q.kind.kind_name()
}

fn ingress_object(q: &Qdisc, live: &DeviceState) -> String {
    let filters: Vec<&Filter> = live
        .filters
        .iter()
        .filter(|f| f.parent.is_ingress_side())
        .collect();
    let mut s = format!("{} qdisc {}", ingress_kind(q), q.handle);
    if !filters.is_empty() {
        let kinds: Vec<String> = filters
            .iter()
            .map(|f| {
                let mut k = format!("{} prio {}", f.kind.kind_name(), f.prio);
                if let Some(r) = police_rate(f) {
                    let _ = write!(k, " policing at {r}");
                }
                k
            })
            .collect();
        let _ = write!(
            s,
            " with {} filter{} ({})",
            filters.len(),
            plural(filters.len()),
            kinds.join(", ")
        );
    }
    let to: Vec<&str> = filters.iter().filter_map(|f| redirect_target(f)).collect();
    if !to.is_empty() {
        let _ = write!(s, ", redirecting to {}", to.join(", "));
    }
    s
}

fn ingress_why(q: &Qdisc, live: &DeviceState) -> String {
    let policers = live
        .filters
        .iter()
        .filter(|f| f.parent.is_ingress_side())
        .filter_map(policer);
    // The most specific owner wins: one OVS rule among hand-made ones is still OVS's.
    match policers.min() {
        Some(p) => p.why(&crate::escape::escape(&live.device)),
        None => format!("qosctl writes no {} qdisc", ingress_kind(q)),
    }
}

fn ingress_replacement(desired: &DeviceState, live: &DeviceState) -> String {
    if let Some(f) = desired.filters.iter().find(|f| f.parent == Handle::INGRESS) {
        return format!(
            "the policy's ingress hook ({})",
            crate::kind::filter::describe(&f.kind)
        );
    }
    let policed = live
        .filters
        .iter()
        .any(|f| f.parent.is_ingress_side() && policer(f).is_some());
    if policed {
        "nothing: the policy has no ingress side, so what arrives here is no longer policed".into()
    } else {
        "nothing: the policy has no ingress side".into()
    }
}

/// Who put an ingress policer there, judged by the exact rule each tool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Policer {
    /// Open vSwitch's `ingress_policing_rate` (ovs lib/netdev-linux.c): `matchall` at prio 1
    /// (`tc_add_matchall_policer`, TC_RESERVED_PRIORITY_POLICE) or, where cls_matchall is
    /// missing and in older releases, `basic` at prio 49 (`tc_add_policer`); protocol all.
    /// Neutron's OVS agent sets that column for a QoS bandwidth-limit rule.
    Ovs,
    /// Neutron's linuxbridge agent (neutron/agent/linux/tc_lib.py `_add_policy_filter`):
    /// `u32` match 0/0 at prio 49, protocol all, police … drop, flowid :1.
    NeutronLinuxbridge,
    /// Any other filter that polices.
    Other,
}

impl Policer {
    fn why(self, dev: &str) -> String {
        match self {
            Policer::Ovs => format!(
                "Open vSwitch's ingress policer: the Interface's ingress_policing_rate, which \
                 Neutron's OVS agent also sets for a QoS bandwidth limit, not qosctl's: \
                 clear it in OVS (ovs-vsctl set interface {dev} \
                 ingress_policing_rate=0), or let --force remove it (OVS puts it back when it \
                 reconfigures the port)"
            ),
            Policer::NeutronLinuxbridge => format!(
                "Neutron's policer: the linuxbridge agent's QoS bandwidth limit on traffic \
                 from the VM on {dev}, not qosctl's: remove the QoS policy from \
                 the port in Neutron, or let --force remove it (the agent puts it back on its \
                 next sync)"
            ),
            Policer::Other => "an ingress policer (a police action) that qosctl did not write: \
                 remove it yourself or with --force"
                .into(),
        }
    }
}

/// A filter that polices (`police` as an action of matchall, u32, flower, basic, or as the
/// old police option of basic and u32, which tc prints as `police 0x1 rate …`), and whose
/// rule it is.
fn policer(f: &Filter) -> Option<Policer> {
    let FilterKind::Other { kind, summary, .. } = &f.kind else {
        return None;
    };
    if !summary.split_whitespace().any(|w| w == "police") {
        return None;
    }
    let all = f.protocol == "all";
    Some(match (kind.as_str(), f.prio) {
        ("matchall", 1) | ("basic", 49) if all => Policer::Ovs,
        ("u32", 49) if all && matches_everything(summary) => Policer::NeutronLinuxbridge,
        _ => Policer::Other,
    })
}

/// The rate of a policer, where tc printed it: in text only (iproute2's JSON has none).
fn police_rate(f: &Filter) -> Option<&str> {
    let FilterKind::Other { summary, .. } = &f.kind else {
        return None;
    };
    let w: Vec<&str> = summary.split_whitespace().collect();
    let at = w.iter().position(|x| *x == "police")?;
    let r = w[at..].windows(2).find(|p| p[0] == "rate")?[1];
    Some(r.trim_end_matches(','))
}

/// u32's `match u32 0 0` and nothing else: `match 00000000/00000000 at 0` in text,
/// `match 0/0 at 0` from JSON.
fn matches_everything(summary: &str) -> bool {
    let w: Vec<&str> = summary.split_whitespace().collect();
    let keys: Vec<&str> = w
        .windows(2)
        .filter(|p| p[0] == "match")
        .map(|p| p[1])
        .collect();
    let zero = |h: &str| u32::from_str_radix(h.trim_start_matches("0x"), 16) == Ok(0);
    match keys.as_slice() {
        [k] => k.split_once('/').is_some_and(|(v, m)| zero(v) && zero(m)),
        _ => false,
    }
}

/// `to_dev` of a mirred action (`action mirred "redirect" "egress" "ifb0"`).
fn redirect_target(f: &Filter) -> Option<&str> {
    if let FilterKind::U32 { actions, .. } = &f.kind {
        return actions.iter().find_map(|a| match a {
            Action::Mirred {
                redirect: true,
                dev,
                ..
            } => Some(dev.as_str()),
            _ => None,
        });
    }
    let FilterKind::Other { summary, .. } = &f.kind else {
        return None;
    };
    let words: Vec<&str> = summary.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "mirred")?;
    words
        .get(at + 3)
        .map(|w| w.trim_matches('"'))
        .filter(|w| !w.is_empty())
}

fn touches_ingress(op: &Op, q: &Qdisc) -> bool {
    op.is_ingress_side()
        || matches!(op, Op::Remove { obj: Obj::Qdisc(x), .. } if x.handle == q.handle)
}

/// The human section printed under the plan.
pub fn render(found: &[Foreign], forced: bool) -> String {
    if found.is_empty() {
        return String::new();
    }
    let mut s = if forced {
        "Foreign state, adopted with --force (qosctl did not create it):\n".to_string()
    } else {
        "Foreign state (qosctl did not create it; apply refuses without --force):\n".to_string()
    };
    for f in found {
        let dev = crate::escape::escape(&f.device);
        let alias = crate::escape::escape(&f.alias);
        let at = if alias == dev {
            dev
        } else {
            format!("{dev} ({alias})")
        };
        let _ = writeln!(
            s,
            "  ! {at}: {}\n      not qosctl's: {}\n      replaced by: {}",
            crate::escape::escape(&f.object),
            f.why,
            crate::escape::escape(&f.replaced_by)
        );
    }
    s
}

/// The error of a refused apply.
pub fn refusal(found: &[Foreign]) -> anyhow::Error {
    let names: Vec<String> = found
        .iter()
        .map(|f| {
            format!(
                "  {}: {}",
                crate::escape::escape(&f.device),
                crate::escape::escape(&f.object)
            )
        })
        .collect();
    anyhow::anyhow!(
        "refusing to apply: the plan would replace {} object{} that qosctl did not create, \
         nothing was changed:\n{}\nadopt them with `qosctl apply --force`, or remove them yourself",
        found.len(),
        plural(found.len()),
        names.join("\n")
    )
}
