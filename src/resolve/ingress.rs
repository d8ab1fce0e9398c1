//! `[interfaces.X.ingress]`: the download tree is built by the one tree builder on X's ifb
//! device (`crate::link::ifb_name`), and X gets the `ingress` qdisc with one hook filter
//! that restores the conntrack mark, polices and redirects to the ifb, each if the policy
//! asks for it (`crate::link::IngressHook`).

use super::tree::{self, BuiltTree};
use super::Target;
use crate::classify::action::{Police, Restore};
use crate::link::{self, IngressHook};
use crate::model::{DeviceState, Filter, Handle, Parent, Qdisc, QdiscKind};
use crate::policy::diag::Diagnostic;
use crate::policy::problem::Problem;
use crate::policy::schema::{Direction, Ingress, Interface};

/// The ingress side of one interface, resolved.
#[derive(Debug)]
pub struct BuiltIngress {
    /// The ifb the tree is built on; `None` when the ingress only polices.
    pub ifb: Option<String>,
    pub tree: BuiltTree,
    pub police: Option<Police>,
    pub restore: Option<Restore>,
    /// The ingress qdisc and the hook filter, for the interface's own state; empty when
    /// the ingress table asks for nothing.
    pub hook: Vec<Qdisc>,
    pub hook_filter: Option<Filter>,
}

/// Builds `ing` of `iface`; problems go to `diags`.
pub fn build(iface: &Interface, ing: &Ingress, diags: &mut Vec<Diagnostic>) -> BuiltIngress {
    let ifb = link::ifb_name(&iface.device.v);
    // The ifb's match filters use the interface's classifier too (the hook stays u32).
    let target = Target::egress(&ifb).with_classifier(iface.classifier);
    let name = iface.name(Direction::Ingress);
    let tree = tree::build(&ing.tree, name, &target, diags);
    let shaped = !tree.state.is_default();
    let police = ing.police.as_ref().map(|p| p.v.clone());
    // Marks on the ingress need the conntrack mark restored (ingress runs before
    // netfilter): connmark unless the policy says otherwise.
    let has_marks = tree.classes.iter().any(|c| !c.marks.is_empty());
    let restore = match &ing.restore {
        Some(r) => r.v,
        None if has_marks => Some(Restore::Connmark),
        None => None,
    };
    if let Some(r) = ing.restore.as_ref().filter(|r| r.v.is_some() && !shaped) {
        diags.push(Problem::RestoreWithoutTree { tree: name }.at(r.span.clone()));
    }
    let hook = IngressHook {
        restore: restore.filter(|_| shaped).map(|how| (how, 0)),
        police: police.clone(),
        ifb: shaped.then(|| ifb.clone()),
    };
    let active = hook.ifb.is_some() || hook.police.is_some();
    let qdisc = Qdisc {
        handle: Handle::INGRESS,
        parent: Parent::Ingress,
        kind: QdiscKind::Ingress,
        name: Some(iface.alias.clone()),
        stats: None,
    };
    BuiltIngress {
        ifb: shaped.then_some(ifb),
        tree,
        police,
        restore,
        hook: if active { vec![qdisc] } else { Vec::new() },
        hook_filter: active.then(|| hook_filter(&hook, &iface.alias)),
    }
}

/// The hook as a filter of the model, on `ffff:` at [`link::REDIRECT_PRIO`].
pub fn hook_filter(hook: &IngressHook, alias: &str) -> Filter {
    Filter {
        parent: Handle::INGRESS,
        prio: link::REDIRECT_PRIO,
        protocol: "all".into(),
        kind: hook.filter_kind(),
        classid: None,
        name: Some(format!("{alias} (ingress hook)")),
        stats: None,
    }
}

/// The ifb's own state: what the tree builder made for it.
pub fn ifb_state(b: &BuiltIngress) -> Option<DeviceState> {
    b.ifb.as_ref().map(|_| b.tree.state.clone())
}
