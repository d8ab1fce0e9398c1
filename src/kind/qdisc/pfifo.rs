//! `pfifo`: a packet-counted FIFO (`limit` in packets).

use anyhow::Result;

use super::{QdiscDef, QdiscKind};
use crate::kind::Line;
use crate::plan::fields::{cmp_opt, eq_};
use crate::plan::FieldDiff;
use crate::tc::read::get;
use crate::tc::read::json::J;

pub struct Def;

fn limit(k: &QdiscKind) -> Option<u32> {
    match k {
        QdiscKind::Pfifo { limit } => *limit,
        _ => None,
    }
}

impl QdiscDef for Def {
    fn read(&self, o: &J) -> Result<QdiscKind> {
        Ok(QdiscKind::Pfifo {
            limit: get::u32_of(o, "limit"),
        })
    }
    fn args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        if let Some(l) = limit(k) {
            a.push(format!("limit {l}"));
        }
    }
    fn summary(&self, k: &QdiscKind, line: &mut Line) {
        line.opt("limit", limit(k));
    }
    fn fields(&self, d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        cmp_opt(&mut v, "limit", limit(d), limit(l), eq_);
        v
    }
}
