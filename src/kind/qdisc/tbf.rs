//! `tbf`: a token bucket (a rate limit with a burst and a queue bound).

use anyhow::{anyhow, Result};
use serde::Serialize;

use super::{QdiscDef, QdiscKind};
use crate::kind::Line;
use crate::plan::fields::{cmp_opt, push, size_close, time_close};
use crate::plan::FieldDiff;
use crate::tc::read::json::J;
use crate::tc::read::{get, text};
use crate::units::{Rate, Size, Time};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tbf {
    pub rate: Rate,
    pub burst: Size,
    /// `limit` in bytes; tc needs exactly one of limit or latency. The reader reports the
    /// latency it prints (`lat`) as `latency`.
    pub limit: Option<Size>,
    pub latency: Option<Time>,
}

pub struct Def;

options_of!(Tbf, Tbf);

impl QdiscDef for Def {
    fn read(&self, o: &J) -> Result<QdiscKind> {
        read(o).map(QdiscKind::Tbf)
    }
    fn args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        let Some(t) = of(k) else { return };
        a.push(format!("rate {} burst {}", t.rate.tc(), t.burst.tc()));
        match (t.limit, t.latency) {
            (Some(l), _) => a.push(format!("limit {}", l.tc())),
            (None, Some(l)) => a.push(format!("latency {}", l.tc_us())),
            // tc needs one of the two; 50ms is what most guides use.
            (None, None) => a.push("latency 50000us".into()),
        }
    }
    fn summary(&self, k: &QdiscKind, line: &mut Line) {
        let Some(t) = of(k) else { return };
        line.opt("rate", Some(t.rate));
        line.size("burst", Some(t.burst));
        line.size("limit", t.limit);
        line.opt("latency", t.latency);
    }
    fn fields(&self, d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        let Some((dt, lt)) = both(d, l) else {
            return v;
        };
        if !dt.rate.same_in_kernel(lt.rate) {
            push(&mut v, "rate", lt.rate, dt.rate);
        }
        if !size_close(dt.burst, lt.burst) {
            push(&mut v, "burst", lt.burst, dt.burst);
        }
        cmp_opt(&mut v, "latency", dt.latency, lt.latency, time_close);
        if lt.limit.is_some() {
            cmp_opt(&mut v, "limit", dt.limit, lt.limit, size_close);
        }
        v
    }
}

/// JSON from iproute2 5.5; 5.4 prints tbf's options as text inside the JSON.
fn read(o: &J) -> Result<Tbf> {
    if let Some(raw) = o.raw_text() {
        let t: Vec<&str> = raw.split_whitespace().collect();
        let rate = text::after(&t, "rate")
            .and_then(text::rate)
            .ok_or_else(|| anyhow!("no rate in \"{raw}\""))?;
        let burst = text::after(&t, "burst")
            .and_then(text::size)
            .ok_or_else(|| anyhow!("no burst in \"{raw}\""))?;
        return Ok(Tbf {
            rate,
            burst,
            limit: text::after(&t, "limit").and_then(text::size),
            latency: text::after(&t, "lat").and_then(text::time),
        });
    }
    let rate = match o.get("rate") {
        Some(J::Str(s)) => text::rate(s),
        Some(v) => v.as_u64().map(Rate::from_bytes),
        None => None,
    }
    .ok_or_else(|| anyhow!("no rate in {}", o.compact()))?;
    // Integer bytes without -d, `"10Kb/1"` with it.
    let burst = match o.get("burst") {
        Some(J::Str(s)) => text::size(s),
        Some(v) => v.as_u64().map(Size),
        None => None,
    }
    .ok_or_else(|| anyhow!("no burst in {}", o.compact()))?;
    Ok(Tbf {
        rate,
        burst,
        limit: get::size_of(o, "limit"),
        latency: get::us_of(o, "lat"),
    })
}
