//! Passes `leaves`, `emit_classes`, `emit_filters` and the netem warning: the tree's model
//! on its target (root qdisc, root class, classes, leaf qdiscs, filters) and, for `check`
//! and `show`, the resolved classes with their names.

use super::tree::Build;
use super::{ResolvedClass, FW_FILTER_PRIO};
use crate::model::{self, Class, Filter, FilterKind, Handle, Htb, Parent, Qdisc, QdiscKind, Tbf};
use crate::policy::diag::Diagnostic;
use crate::policy::problem::Problem;
use crate::policy::schema::Leaf;
use crate::units::{Rate, Size, Time};

impl Build<'_> {
    /// Pass `leaves`: a leaf class's qdisc is its netem, else its leaf, else the tree's
    /// leaf, else fq_codel. Inner classes have none.
    pub(super) fn leaves(&mut self, diags: &mut Vec<Diagnostic>) {
        let mut leaves = Vec::with_capacity(self.flat.len());
        for (i, f) in self.flat.iter().enumerate() {
            let c = f.c;
            let leaf = if !f.children.is_empty() {
                None
            } else if let (Some(l), Some(nm)) = (&c.leaf, &c.netem) {
                let p = Problem::LeafAndNetem {
                    path: &c.path,
                    leaf: l.v.kind_name(),
                };
                diags.push(p.at(nm.span.clone()));
                None
            } else if let Some(nm) = &c.netem {
                Some(QdiscKind::Netem(Box::new(nm.v.clone())))
            } else if let Some(l) = c.leaf.as_deref().or(self.tree.leaf.as_ref()) {
                Some(concrete_leaf(&l.v, self.ceil[i].unwrap_or(self.root_rate)))
            } else {
                Some(QdiscKind::FqCodel(model::FqCodel::default()))
            };
            leaves.push(leaf.map(Box::new));
        }
        self.leaves = leaves;
    }

    /// The handle of class `i` (major of the target's qdisc, minor from `minors`).
    pub(super) fn handle(&self, i: usize) -> Handle {
        Handle::new(self.target.qdisc.major, self.minors[i].0)
    }

    /// The model's name of class `i`: `wan/bulk/backup`.
    pub(super) fn model_name(&self, i: usize) -> String {
        format!("{}/{}", self.name.alias, self.flat[i].c.path)
    }

    /// Pass `emit_classes`: the root qdisc and root class, then each class in pre-order
    /// with its leaf qdisc. A class whose rate did not resolve gets 8bit (the policy has an
    /// error then; the model only has to be complete).
    pub(super) fn emit_classes(&mut self) {
        let n = self.flat.len();
        let alias = self.name.alias;
        let default_minor = self.default.map_or(0, |i| self.minors[i].0);
        let mut qdiscs = Vec::with_capacity(n + 1);
        let mut classes = Vec::with_capacity(n + 1);
        let mut resolved = Vec::with_capacity(n);
        qdiscs.push(Qdisc {
            handle: self.target.qdisc,
            parent: self.target.parent,
            kind: QdiscKind::Htb(Htb {
                default: default_minor,
                r2q: None,
            }),
            name: Some(alias.to_string()),
            stats: None,
        });
        let root = self.target.root_class;
        classes.push(Class {
            burst: self.tree.burst.as_ref().map(|b| b.v),
            cburst: self.tree.cburst.as_ref().map(|b| b.v),
            name: Some(alias.to_string()),
            ..Class::new(root, None, self.root_rate, self.root_rate)
        });
        let mut leaves = std::mem::take(&mut self.leaves);
        for (i, f) in self.flat.iter().enumerate() {
            let (minor, source) = self.minors[i];
            let handle = self.handle(i);
            let parent = f.parent.map_or(root, |p| self.handle(p));
            let name = self.model_name(i);
            let rate = self.rate[i].unwrap_or(Rate::from_bits(8));
            let ceil = self.ceil[i].unwrap_or(Rate::from_bits(8));
            let prio = f.c.prio.as_ref().map(|p| p.v);
            classes.push(Class {
                burst: f.c.burst,
                cburst: f.c.cburst,
                prio,
                quantum: f.c.quantum,
                name: Some(name.clone()),
                ..Class::new(handle, Some(parent), rate, ceil)
            });
            let leaf = leaves[i].take();
            if let Some(leaf) = &leaf {
                qdiscs.push(Qdisc {
                    handle: Handle::qdisc(minor),
                    parent: Parent::Class(handle),
                    kind: QdiscKind::clone(leaf),
                    name: Some(name),
                    stats: None,
                });
            }
            resolved.push(ResolvedClass {
                path: f.c.path.clone(),
                depth: f.depth,
                handle,
                parent,
                rate,
                ceil,
                prio,
                marks: f.c.marks.iter().map(|m| m.v).collect(),
                matches: f.c.matches.iter().map(|e| e.m.clone()).collect(),
                set_dscp: f.c.set_dscp.as_ref().map(|d| d.v.to_string()),
                leaf,
                minor_source: source,
            });
        }
        // The first pass to write the model of a tree with classes: nothing to keep.
        let st = &mut self.out.state;
        st.qdiscs = qdiscs;
        st.classes = classes;
        self.out.classes = resolved;
    }

    /// Pass `emit_filters`: one fw filter per mark (in `marks`, or a match that is only a
    /// `mark`), on the target's filter parent.
    pub(super) fn emit_filters(&mut self) {
        let mut filters = Vec::new();
        for (i, f) in self.flat.iter().enumerate() {
            for (mark, _) in super::minors::class_marks(f.c) {
                filters.push(Filter {
                    parent: self.target.filter_parent,
                    prio: FW_FILTER_PRIO,
                    protocol: "all".into(),
                    kind: FilterKind::Fw {
                        mark,
                        mask: 0xffff_ffff,
                    },
                    classid: Some(self.handle(i)),
                    name: Some(self.model_name(i)),
                    stats: None,
                });
            }
        }
        self.out.state.filters = filters;
    }

    /// Linux refuses a netem that duplicates packets in a tree that holds other netems
    /// ("netem: cannot mix duplicating netems with other netems in tree", measured on
    /// 6.1.192; the rule came with the 2025 stable updates, so older kernels accept it). A
    /// warning, not an error: the policy is valid and an older kernel applies it.
    pub(super) fn duplicating_netem_warnings(&self, diags: &mut Vec<Diagnostic>) {
        let netems = (self.out.state.qdiscs.iter())
            .filter(|q| matches!(q.kind, QdiscKind::Netem(_)))
            .count();
        if netems < 2 {
            return;
        }
        for f in self.flat.iter().filter(|f| f.children.is_empty()) {
            let Some(nm) = &f.c.netem else { continue };
            if nm.v.duplicate.is_none_or(|p| p.kernel() == 0) {
                continue;
            }
            let (path, tree, others) = (f.c.path.as_str(), self.name, netems - 1);
            diags.push(Problem::DuplicatingNetem { path, tree, others }.at(nm.span.clone()));
        }
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
