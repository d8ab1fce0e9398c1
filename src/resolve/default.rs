//! Pass `default`: the class unclassified traffic goes to, a path below the tree's root
//! (`bulk/backup`) or a class name that is unique in the tree. It must be a leaf class.

use super::tree::{Build, Flat};
use crate::policy::diag::{did_you_mean, Diagnostic};
use crate::policy::problem::Problem;

impl Build<'_> {
    pub(super) fn default(&mut self, diags: &mut Vec<Diagnostic>) {
        self.default = self.find_default(diags);
        self.out.default = self.default.map(|i| self.flat[i].c.path.clone());
    }

    fn find_default(&self, diags: &mut Vec<Diagnostic>) -> Option<usize> {
        let (flat, tree) = (&self.flat, self.name);
        let Some(d) = &self.tree.default else {
            let first_leaf = flat.iter().find(|f| f.children.is_empty());
            let first_leaf = first_leaf.map(|f| f.c.path.as_str());
            let p = Problem::NoDefault { tree, first_leaf };
            diags.push(p.at(self.tree.key_span.clone()));
            return None;
        };
        let default = d.v.as_str();
        let found = match flat.iter().position(|f| f.c.path == d.v) {
            Some(i) => Some(i),
            None if d.v.contains('/') => None,
            None => {
                let named: Vec<usize> =
                    (0..flat.len()).filter(|i| flat[*i].c.name == d.v).collect();
                if named.len() > 1 {
                    let paths = named.iter().map(|i| flat[*i].c.path.as_str()).collect();
                    diags.push(Problem::DefaultAmbiguous { default, paths }.at(d.span.clone()));
                    return None;
                }
                named.first().copied()
            }
        };
        let Some(i) = found else {
            let all: Vec<&str> = flat.iter().map(|f| f.c.path.as_str()).collect();
            let near = did_you_mean(&d.v, &all);
            let leaves = some_leaves(flat);
            let p = Problem::DefaultUnknown {
                default,
                tree,
                near,
                leaves,
            };
            diags.push(p.at(d.span.clone()));
            return None;
        };
        if !flat[i].children.is_empty() {
            // Pre-order: the subtree of i is the run after it with a greater depth.
            let depth = flat[i].depth;
            let end = flat[i + 1..]
                .iter()
                .position(|f| f.depth <= depth)
                .map_or(flat.len(), |p| i + 1 + p);
            let leaves = some_leaves(&flat[i + 1..end]);
            diags.push(Problem::DefaultNotLeaf { default, leaves }.at(d.span.clone()));
            return None;
        }
        Some(i)
    }
}

/// Leaf paths for hints, at most a few: a tree may have thousands.
fn some_leaves(range: &[Flat]) -> String {
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
}
