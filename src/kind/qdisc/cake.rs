//! `cake`: shaper, AQM and flow isolation in one qdisc.

use anyhow::Result;
use serde::Serialize;

use super::{QdiscDef, QdiscKind};
use crate::kind::{Line, Style};
use crate::plan::fields::{cmp_opt, eq_, opt, push, time_close};
use crate::plan::FieldDiff;
use crate::tc::read::get;
use crate::tc::read::json::J;
use crate::units::{Rate, Time};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cake {
    /// `None` = unlimited.
    pub bandwidth: Option<Rate>,
    /// besteffort, diffserv3, diffserv4, diffserv8, precedence.
    pub diffserv: Option<String>,
    /// flowblind, srchost, dsthost, hosts, flows, dual-srchost, dual-dsthost, triple-isolate.
    pub flow_mode: Option<String>,
    pub rtt: Option<Time>,
    pub nat: Option<bool>,
    pub wash: Option<bool>,
    pub ack_filter: Option<bool>,
    /// Overhead in bytes added per packet (may be negative).
    pub overhead: Option<i32>,
}

pub struct Def;

options_of!(Cake, Cake);

/// The on/off flags: field name, tc's words for on and off.
fn flags(c: &Cake) -> [(&'static str, Option<bool>, &'static str, &'static str); 3] {
    [
        ("nat", c.nat, "nat", "nonat"),
        ("wash", c.wash, "wash", "nowash"),
        ("ack_filter", c.ack_filter, "ack-filter", "no-ack-filter"),
    ]
}

impl QdiscDef for Def {
    fn read(&self, o: &J) -> Result<QdiscKind> {
        let string = |k: &str| o.get(k).and_then(J::as_str).map(str::to_string);
        Ok(QdiscKind::Cake(Cake {
            // "unlimited" when no bandwidth is set.
            bandwidth: o.get("bandwidth").and_then(J::as_u64).map(Rate::from_bytes),
            diffserv: string("diffserv"),
            flow_mode: string("flowmode"),
            rtt: get::us_of(o, "rtt"),
            nat: o.get("nat").and_then(J::as_bool),
            wash: o.get("wash").and_then(J::as_bool),
            ack_filter: o
                .get("ack-filter")
                .and_then(J::as_str)
                .map(|s| s != "disabled"),
            overhead: o
                .get("overhead")
                .and_then(J::as_i64)
                .and_then(|v| i32::try_from(v).ok()),
        }))
    }
    fn args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        let Some(c) = of(k) else { return };
        match c.bandwidth {
            Some(r) => a.push(format!("bandwidth {}", r.tc())),
            None => a.push("unlimited".into()),
        }
        a.extend(c.diffserv.clone());
        a.extend(c.flow_mode.clone());
        if let Some(r) = c.rtt {
            a.push(format!("rtt {}", r.tc_us()));
        }
        for (_, v, on, off) in flags(c) {
            if let Some(v) = v {
                a.push(if v { on } else { off }.to_string());
            }
        }
        if let Some(o) = c.overhead {
            a.push(format!("overhead {o}"));
        }
    }
    /// Brief: what a policy usually sets; Full also says "unlimited" and the flags on.
    fn summary(&self, k: &QdiscKind, line: &mut Line) {
        let Some(c) = of(k) else { return };
        let full = line.style == Style::Full;
        match c.bandwidth {
            None if full => line.word("bandwidth unlimited"),
            b => line.opt("bandwidth", b),
        }
        if let Some(d) = &c.diffserv {
            line.word(d.as_str());
        }
        if let Some(m) = &c.flow_mode {
            line.word(m.as_str());
        }
        line.opt("rtt", c.rtt);
        line.opt("overhead", c.overhead);
        if full {
            for (_, v, on, _) in flags(c) {
                line.flag(on, v == Some(true));
            }
        }
    }
    fn fields(&self, d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        let Some((dc, lc)) = both(d, l) else {
            return v;
        };
        if !bandwidth_eq(dc.bandwidth, lc.bandwidth) {
            let show = |r: Option<Rate>| r.map_or_else(|| "unlimited".into(), |r| r.to_string());
            push(&mut v, "bandwidth", show(lc.bandwidth), show(dc.bandwidth));
        }
        for (name, dv, lv) in [
            ("diffserv", &dc.diffserv, &lc.diffserv),
            ("flow_mode", &dc.flow_mode, &lc.flow_mode),
        ] {
            if let Some(want) = dv {
                if lv.as_ref() != Some(want) {
                    push(&mut v, name, opt(lv.as_ref()), want);
                }
            }
        }
        cmp_opt(&mut v, "rtt", dc.rtt, lc.rtt, time_close);
        for ((name, dv, ..), (_, lv, ..)) in flags(dc).into_iter().zip(flags(lc)) {
            cmp_opt(&mut v, name, dv, lv.or(Some(false)), eq_);
        }
        cmp_opt(&mut v, "overhead", dc.overhead, lc.overhead, eq_);
        v
    }
}

fn bandwidth_eq(d: Option<Rate>, l: Option<Rate>) -> bool {
    match (d, l) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_in_kernel(b),
        // cake reads "unlimited" back as bandwidth 0.
        (None, Some(b)) | (Some(b), None) => b.kernel_bytes() == 0,
    }
}
