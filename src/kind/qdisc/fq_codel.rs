//! `fq_codel`: fair queueing with CoDel (qosctl's default leaf).

use anyhow::Result;
use serde::Serialize;

use super::{QdiscDef, QdiscKind};
use crate::kind::Line;
use crate::plan::fields::{cmp_opt, eq_, time_close};
use crate::plan::FieldDiff;
use crate::tc::read::get;
use crate::tc::read::json::J;
use crate::units::{Size, Time};

/// fq_codel options. `None` = not set by the policy: kernel default, not compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FqCodel {
    pub limit: Option<u32>,
    pub flows: Option<u32>,
    pub target: Option<Time>,
    pub interval: Option<Time>,
    pub quantum: Option<Size>,
    pub ecn: Option<bool>,
    pub memory_limit: Option<Size>,
}

pub struct Def;

options_of!(FqCodel, FqCodel);

impl QdiscDef for Def {
    fn read(&self, o: &J) -> Result<QdiscKind> {
        Ok(QdiscKind::FqCodel(FqCodel {
            limit: get::u32_of(o, "limit"),
            flows: get::u32_of(o, "flows"),
            target: get::us_of(o, "target"),
            interval: get::us_of(o, "interval"),
            quantum: get::size_of(o, "quantum"),
            ecn: o.get("ecn").and_then(J::as_bool),
            memory_limit: get::size_of(o, "memory_limit"),
        }))
    }
    fn args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        if let Some(f) = of(k) {
            args(f, true, a);
        }
    }
    /// fq_codel refuses a change that carries `flows` at all (EINVAL), even the same
    /// value: the flow table is sized once. A new value re-creates it (below).
    fn change_args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        if let Some(f) = of(k) {
            args(f, false, a);
        }
    }
    fn summary(&self, k: &QdiscKind, line: &mut Line) {
        let Some(f) = of(k) else { return };
        line.opt("limit", f.limit);
        line.opt("flows", f.flows);
        line.opt("target", f.target);
        line.opt("interval", f.interval);
        line.size("quantum", f.quantum);
        line.size("memory_limit", f.memory_limit);
        line.flag("ecn", f.ecn == Some(true));
    }
    fn fields(&self, d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        let Some((df, lf)) = both(d, l) else {
            return v;
        };
        cmp_opt(&mut v, "limit", df.limit, lf.limit, eq_);
        cmp_opt(&mut v, "flows", df.flows, lf.flows, eq_);
        cmp_opt(&mut v, "target", df.target, lf.target, time_close);
        cmp_opt(&mut v, "interval", df.interval, lf.interval, time_close);
        cmp_opt(&mut v, "quantum", df.quantum, lf.quantum, eq_);
        let (dm, lm) = (df.memory_limit, lf.memory_limit);
        cmp_opt(&mut v, "memory_limit", dm, lm, eq_);
        cmp_opt(&mut v, "ecn", df.ecn, lf.ecn.or(Some(false)), eq_);
        v
    }
    fn recreate_reason(&self, d: &QdiscKind, l: &QdiscKind) -> Option<String> {
        let (d, l) = (of(d)?, of(l)?);
        (d.flows.is_some() && d.flows != l.flows)
            .then(|| "fq_codel cannot change flows in place; re-created".into())
    }
}

fn args(f: &FqCodel, with_flows: bool, a: &mut Vec<String>) {
    if let Some(v) = f.limit {
        a.push(format!("limit {v}"));
    }
    if let Some(v) = f.flows.filter(|_| with_flows) {
        a.push(format!("flows {v}"));
    }
    if let Some(v) = f.target {
        a.push(format!("target {}", v.tc_us()));
    }
    if let Some(v) = f.interval {
        a.push(format!("interval {}", v.tc_us()));
    }
    if let Some(v) = f.quantum {
        a.push(format!("quantum {}", v.tc()));
    }
    if let Some(v) = f.memory_limit {
        a.push(format!("memory_limit {}", v.tc()));
    }
    match f.ecn {
        Some(true) => a.push("ecn".into()),
        Some(false) => a.push("noecn".into()),
        None => {}
    }
}
