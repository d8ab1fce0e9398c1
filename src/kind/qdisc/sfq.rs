//! `sfq`: stochastic fairness queueing.

use anyhow::Result;
use serde::Serialize;

use super::{QdiscDef, QdiscKind};
use crate::kind::Line;
use crate::plan::fields::{cmp_opt, eq_};
use crate::plan::FieldDiff;
use crate::tc::read::get;
use crate::tc::read::json::J;
use crate::units::{Size, Time};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sfq {
    pub perturb: Option<Time>,
    pub limit: Option<u32>,
    pub quantum: Option<Size>,
}

pub struct Def;

options_of!(Sfq, Sfq);

/// sfq takes and prints perturb in whole seconds.
fn secs(t: Time) -> u64 {
    t.ns().div_ceil(1_000_000_000)
}

impl QdiscDef for Def {
    fn read(&self, o: &J) -> Result<QdiscKind> {
        Ok(QdiscKind::Sfq(Sfq {
            perturb: o
                .get("perturb")
                .and_then(J::as_u64)
                .map(|s| Time(s.saturating_mul(1_000_000_000))),
            limit: get::u32_of(o, "limit"),
            quantum: get::size_of(o, "quantum"),
        }))
    }
    fn args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        let Some(s) = of(k) else { return };
        if let Some(p) = s.perturb {
            a.push(format!("perturb {}", secs(p)));
        }
        if let Some(l) = s.limit {
            a.push(format!("limit {l}"));
        }
        if let Some(q) = s.quantum {
            a.push(format!("quantum {}", q.tc()));
        }
    }
    fn summary(&self, k: &QdiscKind, line: &mut Line) {
        let Some(s) = of(k) else { return };
        line.opt("perturb", s.perturb);
        line.opt("limit", s.limit);
        line.size("quantum", s.quantum);
    }
    fn fields(&self, d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        let Some((ds, ls)) = both(d, l) else {
            return v;
        };
        let same_secs = |a: Time, b: Time| secs(a) == secs(b);
        cmp_opt(&mut v, "perturb", ds.perturb, ls.perturb, same_secs);
        cmp_opt(&mut v, "limit", ds.limit, ls.limit, eq_);
        cmp_opt(&mut v, "quantum", ds.quantum, ls.quantum, eq_);
        v
    }
    /// sfq has no change operation in the kernel (measured in the kernel lab).
    fn recreate_reason(&self, _d: &QdiscKind, _l: &QdiscKind) -> Option<String> {
        Some("sfq cannot change in place; re-created".into())
    }
}
