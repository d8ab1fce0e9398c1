//! `htb`: the classful root qdisc qosctl builds its trees on. Its classes are not a kind
//! of their own (htb is the only class kind): they are diffed by `plan::fields`.

use anyhow::{anyhow, Result};
use serde::Serialize;

use super::{QdiscDef, QdiscKind};
use crate::kind::Line;
use crate::plan::fields::push;
use crate::plan::FieldDiff;
use crate::tc::read::get;
use crate::tc::read::json::J;

/// `htb` root qdisc. `default` is the minor of the default class (0 = unclassified
/// traffic goes out unshaped, tc's own default).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Htb {
    pub default: u16,
    pub r2q: Option<u32>,
}

pub struct Def;

/// The minor of the default class, when `k` is htb.
pub fn default_minor(k: &QdiscKind) -> Option<u16> {
    of(k).map(|h| h.default)
}

options_of!(Htb, Htb);

impl QdiscDef for Def {
    fn classful(&self) -> bool {
        true
    }
    fn read(&self, o: &J) -> Result<QdiscKind> {
        let default = match o.get("default") {
            None => 0,
            Some(d) => d
                .as_hex()
                .and_then(|v| u16::try_from(v).ok())
                .ok_or_else(|| anyhow!("invalid default {}", d.compact()))?,
        };
        Ok(QdiscKind::Htb(Htb {
            default,
            r2q: get::u32_of(o, "r2q"),
        }))
    }
    fn args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        let Some(h) = of(k) else { return };
        // tc parses htb's default as hex.
        a.push(format!("default {:x}", h.default));
        if let Some(r) = h.r2q {
            a.push(format!("r2q {r}"));
        }
    }
    fn summary(&self, k: &QdiscKind, line: &mut Line) {
        let Some(h) = of(k) else { return };
        line.hex("default", u32::from(h.default));
        line.opt("r2q", h.r2q);
    }
    fn fields(&self, d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        if let (Some(d), Some(l)) = (of(d), of(l)) {
            if d.default != l.default {
                push(
                    &mut v,
                    "default",
                    format!("{:x}", l.default),
                    format!("{:x}", d.default),
                );
            }
        }
        v
    }
    /// The kernel has no `change` for htb itself: the whole tree is rebuilt.
    fn recreate_reason(&self, d: &QdiscKind, l: &QdiscKind) -> Option<String> {
        let (d, l) = (of(d)?, of(l)?);
        if d.default != l.default {
            return Some(format!(
                "htb default changes {:x} -> {:x}; htb cannot change it in place, the tree is rebuilt",
                l.default, d.default
            ));
        }
        if d.r2q.unwrap_or(10) != l.r2q.unwrap_or(10) {
            return Some(
                "htb r2q changes; htb cannot change it in place, the tree is rebuilt".into(),
            );
        }
        None
    }
}
