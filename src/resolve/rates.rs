//! Passes `rates`, `sums` and `root_rate`: percentages become absolute rates top-down,
//! children's guaranteed rates must fit in their parent's, and the root class gets its rate.

use super::tree::Build;
use crate::policy::diag::Diagnostic;
use crate::policy::node::Span;
use crate::policy::problem::{Problem, Who};
use crate::policy::schema::{RateSpec, TreeName};
use crate::units::Rate;

impl<'p> Build<'p> {
    /// Pass `rates`: each class's rate and ceil against its parent's (pre-order visits
    /// parents first). A class whose parent did not resolve is skipped: its error would
    /// only repeat the parent's.
    pub(super) fn rates(&mut self, diags: &mut Vec<Diagnostic>) {
        let n = self.flat.len();
        self.rate = vec![None; n];
        self.ceil = vec![None; n];
        let mut ok = vec![true; n];
        let root = self.tree.rate.as_ref().map(|r| r.v);
        for i in 0..n {
            let f = &self.flat[i];
            let (p_rate, p_ceil, p_ok) = match f.parent {
                Some(p) => (self.rate[p], self.ceil[p], ok[p]),
                None => (root, root, true),
            };
            if !p_ok
                || f.c.broken
                || (f.parent.is_some() && p_rate.is_none())
                || (f.parent.is_none() && self.tree.rate_invalid)
            {
                ok[i] = false;
                continue;
            }
            match self.class_rates(i, p_rate, p_ceil, diags) {
                Some((r, c)) => {
                    self.rate[i] = Some(r);
                    self.ceil[i] = Some(c);
                }
                None => ok[i] = false,
            }
        }
    }

    /// One class's (rate, ceil), with its ceiling rules reported; None when a rate or ceil
    /// cannot be resolved.
    fn class_rates(
        &self,
        i: usize,
        p_rate: Option<Rate>,
        p_ceil: Option<Rate>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<(Rate, Rate)> {
        let c = self.flat[i].c;
        let path = c.path.as_str();
        let rspec = c.rate.as_ref()?;
        let rate = apply_spec(&rspec.v, p_rate, "rate", &rspec.span, self.name, diags)?;
        let ceil = match &c.ceil {
            None => p_ceil.unwrap_or(rate),
            Some(cs) => apply_spec(&cs.v, p_ceil, "ceil", &cs.span, self.name, diags)?,
        };
        // Above the parent's ceil: the rate when the class has no ceil of its own (it
        // inherits the parent's), else the ceil.
        let above = match &c.ceil {
            None => (ceil < rate).then_some(("rate", rate, &rspec.span, ceil)),
            Some(cs) => {
                if ceil < rate {
                    diags.push(Problem::CeilBelowRate { path, ceil, rate }.at(cs.span.clone()));
                }
                let over = p_ceil.filter(|pc| ceil > *pc);
                over.map(|parent_ceil| ("ceil", ceil, &cs.span, parent_ceil))
            }
        };
        if let Some((what, value, span, parent_ceil)) = above {
            let parent = self.parent_of(i);
            let p = Problem::AboveParentCeil {
                what,
                path,
                value,
                parent_ceil,
                parent,
            };
            diags.push(p.at(span.clone()));
        }
        Some((rate, ceil))
    }

    /// The parent of class `i`, as messages name it.
    fn parent_of(&self, i: usize) -> Who<'p> {
        match self.flat[i].parent {
            Some(p) => Who::Class(&self.flat[p].c.path),
            None => Who::Tree(self.name),
        }
    }

    /// Pass `sums`: the children's guaranteed rates fit in the parent's rate, for the root
    /// class and every inner class.
    pub(super) fn sums(&self, diags: &mut Vec<Diagnostic>) {
        let root_span = match &self.tree.rate {
            Some(r) => r.span.clone(),
            None => self.tree.key_span.clone(),
        };
        let root = self.tree.rate.as_ref().map(|r| r.v);
        self.check_sum(&self.top, root, root_span, Who::Tree(self.name), diags);
        for (i, f) in self.flat.iter().enumerate() {
            if f.children.is_empty() {
                continue;
            }
            let span = match &f.c.rate {
                Some(r) => r.span.clone(),
                None => f.c.key_span.clone(),
            };
            self.check_sum(
                &f.children,
                self.rate[i],
                span,
                Who::Class(&f.c.path),
                diags,
            );
        }
    }

    fn check_sum(
        &self,
        kids: &[usize],
        parent_rate: Option<Rate>,
        span: Span,
        parent: Who<'_>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let Some(rate) = parent_rate else { return };
        if kids.iter().any(|k| self.rate[*k].is_none()) {
            return;
        }
        let sum = self.sum_rates(kids);
        if sum > rate.bits() {
            let (sum, over) = (Rate::from_bits(sum), Rate::from_bits(sum - rate.bits()));
            diags.push(
                Problem::ChildrenAboveRate {
                    parent,
                    sum,
                    over,
                    rate,
                }
                .at(span),
            );
        }
    }

    /// The resolved rates of `classes`, summed in bits.
    fn sum_rates(&self, classes: &[usize]) -> u64 {
        classes
            .iter()
            .filter_map(|k| self.rate[*k])
            .map(|r| r.bits())
            .fold(0u64, u64::saturating_add)
    }

    /// Pass `root_rate`: the tree's rate, or when none is given, just enough for its
    /// top-level classes (their sum, or their largest ceil).
    pub(super) fn root_rate(&mut self) {
        let rate = self.tree.rate.as_ref().map(|r| r.v).unwrap_or_else(|| {
            let sum = self.sum_rates(&self.top);
            let max_ceil = self
                .top
                .iter()
                .filter_map(|k| self.ceil[*k])
                .map(|r| r.bits())
                .max()
                .unwrap_or(0);
            Rate::from_bits(sum.max(max_ceil).max(8))
        });
        self.root_rate = rate;
        self.out.rate = Some(rate);
    }
}

/// A rate spec against the parent's value (`rate` of the parent for rate, its ceil for ceil).
fn apply_spec(
    spec: &RateSpec,
    parent: Option<Rate>,
    what: &str,
    span: &Span,
    tree: TreeName<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Rate> {
    match spec {
        RateSpec::Abs(r) => Some(*r),
        RateSpec::Pct { percent, min, max } => {
            let Some(of) = parent else {
                diags.push(Problem::PercentWithoutRate { tree, what }.at(span.clone()));
                return None;
            };
            // Floor, so that shares adding up to 100% never exceed the parent.
            let mut bits = ((of.bits() as f64) * percent / 100.0).floor() as u64;
            if let Some(lo) = min {
                bits = bits.max(lo.bits());
            }
            if let Some(hi) = max {
                bits = bits.min(hi.bits());
            }
            if bits < 8 {
                let p = Problem::PercentBelow8bit {
                    what,
                    percent: *percent,
                    of,
                    bits,
                };
                diags.push(p.at(span.clone()));
                return None;
            }
            Some(Rate::from_bits(bits))
        }
    }
}
