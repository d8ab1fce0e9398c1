//! The tree builder: one policy tree → its qdiscs, classes and filters on one target, in
//! named passes over one `Build`. No pass shares a local with another: what a later pass
//! needs, an earlier one leaves in the `Build`.

use super::minors::MINOR_COUNT;
use super::{MinorSource, ResolvedClass, Target};
use crate::model::{DeviceState, Netem, Qdisc, QdiscKind};
use crate::policy::diag::Diagnostic;
use crate::policy::problem::Problem;
use crate::policy::schema::{self, Tree, TreeName};
use crate::units::Rate;

/// One tree, resolved: what `check` shows of it and the device state the kernel gets.
#[derive(Debug)]
pub struct BuiltTree {
    /// The root class's rate and ceil, when the tree is shaped.
    pub rate: Option<Rate>,
    /// Path of the default class.
    pub default: Option<String>,
    /// netem of an impairment-only tree (the root qdisc).
    pub netem: Option<Netem>,
    pub classes: Vec<ResolvedClass>,
    pub state: DeviceState,
}

/// A class flattened in pre-order (parents before their children).
pub(super) struct Flat<'p> {
    pub c: &'p schema::Class,
    pub parent: Option<usize>,
    pub depth: usize,
    pub children: Vec<usize>,
}

/// The state the passes hand on, indexed like `flat`.
pub(super) struct Build<'p> {
    pub tree: &'p Tree,
    pub name: TreeName<'p>,
    pub target: &'p Target<'p>,
    pub flat: Vec<Flat<'p>>,
    /// The top-level classes: children of the root class.
    pub top: Vec<usize>,
    /// From `minors`.
    pub minors: Vec<(u16, MinorSource)>,
    /// From `rates`: None where a rate could not be resolved (reported).
    pub rate: Vec<Option<Rate>>,
    pub ceil: Vec<Option<Rate>>,
    /// From `root_rate`.
    pub root_rate: Rate,
    /// From `default`: the index of the default class.
    pub default: Option<usize>,
    /// From `leaves`: each leaf class's qdisc (None for inner classes and conflicts).
    /// Boxed as `ResolvedClass` keeps it: the box moves there, and 10,000 slots stay small.
    pub leaves: Vec<Option<Box<QdiscKind>>>,
    pub out: BuiltTree,
}

/// What the tree is, before anything is built.
enum Shape<'p> {
    /// Only a netem: it is the root qdisc.
    Impairment(&'p Netem),
    /// Nothing to build (the kernel default), or refused.
    Nothing,
    Classes,
}

/// Builds `tree` for `target`; problems go to `diags`. The passes, in order.
pub(super) fn build(
    tree: &Tree,
    name: TreeName<'_>,
    target: &Target<'_>,
    diags: &mut Vec<Diagnostic>,
) -> BuiltTree {
    let mut b = Build::new(tree, name, target);
    match b.shape(diags) {
        Shape::Impairment(netem) => b.emit_impairment(netem),
        Shape::Nothing => {}
        Shape::Classes => {
            b.minors(diags);
            b.marks(diags);
            b.rates(diags);
            b.sums(diags);
            b.root_rate();
            b.default(diags);
            b.leaves(diags);
            b.emit_classes();
            b.emit_filters();
            b.match_filters(diags);
            b.duplicating_netem_warnings(diags);
        }
    }
    b.out
}

impl<'p> Build<'p> {
    fn new(tree: &'p Tree, name: TreeName<'p>, target: &'p Target<'p>) -> Build<'p> {
        let mut flat = Vec::new();
        flatten(&tree.classes, &mut flat);
        let top = (0..flat.len())
            .filter(|i| flat[*i].parent.is_none())
            .collect();
        Build {
            tree,
            name,
            target,
            flat,
            top,
            minors: Vec::new(),
            rate: Vec::new(),
            ceil: Vec::new(),
            root_rate: Rate::from_bits(8),
            default: None,
            leaves: Vec::new(),
            out: BuiltTree {
                rate: tree.rate.as_ref().map(|r| r.v),
                default: None,
                netem: None,
                classes: Vec::new(),
                state: DeviceState {
                    device: target.device.to_string(),
                    ..DeviceState::default()
                },
            },
        }
    }

    /// Pass `shape`: a tree is a netem alone, classes under a rate, or nothing; the settings
    /// that do not fit its shape are reported.
    fn shape(&self, diags: &mut Vec<Diagnostic>) -> Shape<'p> {
        let (t, tree) = (self.tree, self.name);
        let mut shape = Shape::Nothing;
        if let Some(n) = &t.netem {
            if !t.classes.is_empty() {
                diags.push(Problem::NetemWithClasses { tree }.at(n.span.clone()));
            } else if let Some(r) = &t.rate {
                diags.push(Problem::NetemWithRate { tree }.at(r.span.clone()));
            } else {
                shape = Shape::Impairment(&n.v);
            }
        }
        if t.classes.is_empty() {
            self.without_classes(diags);
            return shape;
        }
        if self.flat.len() as u64 > MINOR_COUNT {
            let (count, max) = (self.flat.len(), MINOR_COUNT);
            diags.push(Problem::TooManyClasses { tree, count, max }.at(t.key_span.clone()));
            return Shape::Nothing;
        }
        Shape::Classes
    }

    /// The root settings a tree without classes cannot use.
    fn without_classes(&self, diags: &mut Vec<Diagnostic>) {
        let (t, tree) = (self.tree, self.name);
        if let (Some(r), None) = (&t.rate, &t.netem) {
            diags.push(Problem::RateWithoutClasses { tree }.at(r.span.clone()));
        }
        if let Some(d) = &t.default {
            let p = Problem::DefaultWithoutClasses {
                tree,
                default: &d.v,
            };
            diags.push(p.at(d.span.clone()));
        }
        if let Some(l) = &t.leaf {
            diags.push(Problem::LeafWithoutClasses { tree }.at(l.span.clone()));
        }
        for (key, b) in [("burst", &t.burst), ("cburst", &t.cburst)] {
            if let Some(b) = b {
                let netem = t.netem.is_some();
                diags.push(Problem::BurstWithoutClasses { tree, key, netem }.at(b.span.clone()));
            }
        }
    }

    /// Emit for a netem-only tree: the netem is the root qdisc.
    fn emit_impairment(&mut self, netem: &Netem) {
        self.out.netem = Some(netem.clone());
        self.out.state.qdiscs.push(Qdisc {
            handle: self.target.qdisc,
            parent: self.target.parent,
            kind: QdiscKind::Netem(Box::new(netem.clone())),
            name: Some(self.name.alias.to_string()),
            stats: None,
        });
    }
}

fn flatten<'p>(classes: &'p [schema::Class], out: &mut Vec<Flat<'p>>) {
    // Explicit stack: the depth is bounded by the schema, but no recursion is cheaper still.
    let mut stack: Vec<(&'p schema::Class, Option<usize>, usize)> =
        classes.iter().rev().map(|c| (c, None, 0)).collect();
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
