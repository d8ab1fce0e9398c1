//! `netem`: delay, loss, duplication, corruption, reordering, rate and slotting.

use anyhow::Result;
use serde::Serialize;
use std::fmt::Write as _;

use super::{QdiscDef, QdiscKind};
use crate::kind::Line;
use crate::plan::fields::{opt, push, time_close};
use crate::plan::FieldDiff;
use crate::tc::read::get;
use crate::tc::read::json::J;
use crate::units::{Prob, Rate, Size, Time};

/// netem. Probabilities are fractions 0..=1; correlations too.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Netem {
    pub delay: Option<Time>,
    pub jitter: Option<Time>,
    pub delay_correlation: Option<Prob>,
    /// normal, pareto, paretonormal, uniform (uniform = no table: tc's default).
    pub distribution: Option<String>,
    pub loss: Option<Loss>,
    pub duplicate: Option<Prob>,
    pub duplicate_correlation: Option<Prob>,
    pub corrupt: Option<Prob>,
    pub corrupt_correlation: Option<Prob>,
    pub reorder: Option<Prob>,
    pub reorder_correlation: Option<Prob>,
    pub gap: Option<u32>,
    pub rate: Option<Rate>,
    /// Queue limit in packets (kernel default 1000).
    pub limit: Option<u32>,
    pub slot: Option<Slot>,
    pub ecn: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Loss {
    Random {
        p: Prob,
        correlation: Option<Prob>,
    },
    /// Gilbert-Elliott: p = good→bad, r = bad→good, h = 1-loss in bad (tc's `1-h`),
    /// k = 1-loss in good (tc's `1-k`), as `tc … loss gemodel p r 1-h 1-k`.
    Gemodel {
        p: Prob,
        r: Option<Prob>,
        h: Option<Prob>,
        k: Option<Prob>,
    },
}

/// netem `slot MIN_DELAY [MAX_DELAY] [packets N] [bytes N]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slot {
    pub min_delay: Time,
    pub max_delay: Option<Time>,
    pub packets: Option<u32>,
    pub bytes: Option<Size>,
}

pub struct Def;

options_of!(Netem, Netem);

const T0: Time = Time(0);
const P0: Prob = Prob(0.0);

impl QdiscDef for Def {
    fn read(&self, o: &J) -> Result<QdiscKind> {
        Ok(QdiscKind::Netem(Box::new(read(o))))
    }
    fn args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        if let Some(n) = of(k) {
            args(n, a);
        }
    }
    fn summary(&self, k: &QdiscKind, line: &mut Line) {
        if let Some(n) = of(k) {
            summary(n, line);
        }
    }
    fn fields(&self, d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        if let (Some(d), Some(l)) = (of(d), of(l)) {
            fields(d, l, &mut v);
        }
        v
    }
    /// netem keeps rate, slot and ecn when a change leaves them out.
    fn recreate_reason(&self, d: &QdiscKind, l: &QdiscKind) -> Option<String> {
        let (d, l) = (of(d)?, of(l)?);
        let mut sticky = Vec::new();
        if l.rate.is_some() && d.rate.is_none() {
            sticky.push("rate");
        }
        if l.slot.is_some() && d.slot.is_none() {
            sticky.push("slot");
        }
        if l.ecn == Some(true) && d.ecn != Some(true) {
            sticky.push("ecn");
        }
        (!sticky.is_empty()).then(|| {
            format!(
                "netem keeps {} on change; re-created to drop it",
                sticky.join(", ")
            )
        })
    }
}

/// netem's options. Sent in full on every change: netem keeps what a change omits.
/// Probabilities the policy does not set are sent as 0 % so a removed impairment is
/// really removed; rate, slot and ecn cannot be cleared in place (the planner recreates
/// the qdisc for that).
fn args(n: &Netem, a: &mut Vec<String>) {
    if let Some(l) = n.limit {
        a.push(format!("limit {l}"));
    }
    a.push(format!(
        "delay {} {} {}",
        n.delay.unwrap_or(T0).tc_ns(),
        n.jitter.unwrap_or(T0).tc_ns(),
        n.delay_correlation.unwrap_or(P0).tc()
    ));
    // Uniform jitter is netem's default and has no table file (tc fails on
    // "distribution uniform": no uniform.dist): it is the absence of a table.
    if let Some(dist) = n.distribution.as_deref().filter(|d| *d != "uniform") {
        a.push(format!("distribution {dist}"));
    }
    a.push(loss_args(n.loss.as_ref()));
    for (name, p, c) in [
        ("duplicate", n.duplicate, n.duplicate_correlation),
        ("corrupt", n.corrupt, n.corrupt_correlation),
        ("reorder", n.reorder, n.reorder_correlation),
    ] {
        a.push(format!(
            "{name} {} {}",
            p.unwrap_or(P0).tc(),
            c.unwrap_or(P0).tc()
        ));
    }
    if let Some(g) = n.gap {
        a.push(format!("gap {g}"));
    }
    if let Some(r) = n.rate {
        a.push(format!("rate {}", r.tc()));
    }
    if let Some(s) = &n.slot {
        a.push(format!("slot {}", slot_words(s, Time::tc_ns, Size::tc)));
    }
    if n.ecn == Some(true) {
        a.push("ecn".into());
    }
}

fn loss_args(l: Option<&Loss>) -> String {
    match l {
        Some(Loss::Random { p, correlation }) => format!(
            "loss random {} {}",
            p.tc(),
            correlation.unwrap_or(P0).tc()
        ),
        Some(Loss::Gemodel { p, r, h, k }) => {
            let mut s = format!("loss gemodel {}", p.tc());
            // tc's positional form: p [r [1-h [1-k]]]; later ones need the earlier.
            let rest = [r, h, k];
            if let Some(last) = rest.iter().rposition(|x| x.is_some()) {
                for (i, v) in rest.iter().enumerate().take(last + 1) {
                    // tc's own defaults for an omitted earlier value: r 100 %, 1-h 0 %.
                    let v = v.unwrap_or(Prob(if i == 0 { 1.0 } else { 0.0 }));
                    let _ = write!(s, " {}", v.tc());
                }
            }
            s
        }
        None => "loss random 0% 0%".into(),
    }
}

/// The policy's words in the policy's order: `delay 40ms jitter 5ms loss 0.5%`.
pub fn summary(n: &Netem, line: &mut Line) {
    line.opt("delay", n.delay);
    line.opt("jitter", n.jitter);
    line.opt("delay_correlation", n.delay_correlation);
    line.opt("distribution", n.distribution.as_ref());
    match &n.loss {
        Some(Loss::Random { p, correlation }) => {
            line.opt("loss", Some(p));
            line.opt("loss_correlation", correlation.as_ref());
        }
        Some(Loss::Gemodel { p, r, h, k }) => {
            let mut g = format!("p {p}");
            for (name, v) in [("r", r), ("h", h), ("k", k)] {
                if let Some(v) = v {
                    let _ = write!(g, " {name} {v}");
                }
            }
            line.opt("loss gemodel", Some(g));
        }
        None => {}
    }
    for (k, v) in [
        ("duplicate", n.duplicate),
        ("duplicate_correlation", n.duplicate_correlation),
        ("corrupt", n.corrupt),
        ("corrupt_correlation", n.corrupt_correlation),
        ("reorder", n.reorder),
        ("reorder_correlation", n.reorder_correlation),
    ] {
        line.opt(k, v);
    }
    line.opt("gap", n.gap);
    line.opt("rate", n.rate);
    line.opt("limit", n.limit);
    let slot = n.slot.as_ref();
    line.opt("slot", slot.map(|s| slot_words(s, |t| t.to_string(), |b| b.to_string())));
    line.flag("ecn", n.ecn == Some(true));
}

/// netem, normalised: a field the policy leaves out is netem's default (0, or limit
/// 1000), since qosctl sends the full set on every change.
fn fields(d: &Netem, l: &Netem, v: &mut Vec<FieldDiff>) {
    let t0 = |t: Option<Time>| t.unwrap_or(T0);
    let p0 = |p: Option<Prob>| p.unwrap_or(P0);
    for (name, dv, lv) in [("delay", d.delay, l.delay), ("jitter", d.jitter, l.jitter)] {
        if !time_close(t0(dv), t0(lv)) && (t0(dv).ns() != 0 || t0(lv).ns() != 0) {
            push(v, name, t0(lv), t0(dv));
        }
    }
    for (name, dv, lv) in probabilities(d, l) {
        if !p0(dv).same_in_kernel(p0(lv)) {
            push(v, name, p0(lv), p0(dv));
        }
    }
    if !loss_eq(d.loss.as_ref(), l.loss.as_ref()) {
        let (ls, ds) = (loss_str(l.loss.as_ref()), loss_str(d.loss.as_ref()));
        push(v, "loss", ls, ds);
    }
    // tc sets gap 1 whenever reorder is used without one.
    let gap = |n: &Netem| {
        let g = n.gap.unwrap_or(0);
        if p0(n.reorder).fraction() > 0.0 {
            g.max(1)
        } else {
            g
        }
    };
    if gap(d) != gap(l) {
        push(v, "gap", gap(l), gap(d));
    }
    let limit = |n: &Netem| n.limit.unwrap_or(1000);
    if limit(d) != limit(l) {
        push(v, "limit", limit(l), limit(d));
    }
    let rate_same = match (d.rate, l.rate) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_in_kernel(b),
        (a, b) => a.or(b).is_some_and(|r| r.kernel_bytes() == 0),
    };
    if !rate_same {
        push(v, "rate", opt(l.rate), opt(d.rate));
    }
    let slot = |n: &Netem| n.slot.as_ref().map(slot_str);
    if slot(d) != slot(l) {
        let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
        push(v, "slot", dash(slot(l)), dash(slot(d)));
    }
    if d.ecn.unwrap_or(false) != l.ecn.unwrap_or(false) {
        push(v, "ecn", l.ecn.unwrap_or(false), d.ecn.unwrap_or(false));
    }
}

type ProbField = (&'static str, Option<Prob>, Option<Prob>);

fn probabilities(d: &Netem, l: &Netem) -> [ProbField; 7] {
    [
        ("delay_correlation", d.delay_correlation, l.delay_correlation),
        ("duplicate", d.duplicate, l.duplicate),
        ("duplicate_correlation", d.duplicate_correlation, l.duplicate_correlation),
        ("corrupt", d.corrupt, l.corrupt),
        ("corrupt_correlation", d.corrupt_correlation, l.corrupt_correlation),
        ("reorder", d.reorder, l.reorder),
        ("reorder_correlation", d.reorder_correlation, l.reorder_correlation),
    ]
}

/// `MIN [MAX] [packets N] [bytes B]`, the times and sizes written by `time` and `bytes`.
fn slot_words(s: &Slot, time: impl Fn(Time) -> String, bytes: impl Fn(Size) -> String) -> String {
    let mut t = time(s.min_delay);
    if let Some(m) = s.max_delay {
        let _ = write!(t, " {}", time(m));
    }
    if let Some(p) = s.packets {
        let _ = write!(t, " packets {p}");
    }
    if let Some(b) = s.bytes {
        let _ = write!(t, " bytes {}", bytes(b));
    }
    t
}

/// Compared at µs precision: netem prints slot times rounded.
fn slot_str(s: &Slot) -> String {
    slot_words(s, |t| format!("{}us", t.us()), |b| b.bytes().to_string())
}

fn loss_eq(d: Option<&Loss>, l: Option<&Loss>) -> bool {
    let zero = |x: Option<&Loss>| match x {
        None => true,
        Some(Loss::Random { p, correlation }) => {
            p.fraction() == 0.0 && correlation.is_none_or(|c| c.fraction() == 0.0)
        }
        Some(Loss::Gemodel { .. }) => false,
    };
    let peq = |a: Option<Prob>, b: Option<Prob>| {
        Prob(a.map_or(0.0, |p| p.0)).same_in_kernel(Prob(b.map_or(0.0, |p| p.0)))
    };
    match (d, l) {
        (
            Some(Loss::Random {
                p: dp,
                correlation: dc,
            }),
            Some(Loss::Random {
                p: lp,
                correlation: lc,
            }),
        ) => dp.same_in_kernel(*lp) && peq(*dc, *lc),
        (
            Some(Loss::Gemodel {
                p: dp,
                r: dr,
                h: dh,
                k: dk,
            }),
            Some(Loss::Gemodel {
                p: lp,
                r: lr,
                h: lh,
                k: lk,
            }),
        ) => {
            // tc's defaults for omitted values: r 100 %, 1-h 0 %, 1-k 0 %.
            let r1 = |r: &Option<Prob>| Some(r.unwrap_or(Prob(1.0)));
            dp.same_in_kernel(*lp) && peq(r1(dr), r1(lr)) && peq(*dh, *lh) && peq(*dk, *lk)
        }
        (a, b) => zero(a) && zero(b),
    }
}

fn loss_str(l: Option<&Loss>) -> String {
    match l {
        None => "0%".into(),
        Some(Loss::Random {
            p,
            correlation: None,
        }) => p.to_string(),
        Some(Loss::Random {
            p,
            correlation: Some(c),
        }) => format!("{p} {c}"),
        Some(Loss::Gemodel { p, r, h, k }) => {
            format!("gemodel p {p} r {} h {} k {}", opt(*r), opt(*h), opt(*k))
        }
    }
}

/// `tc -j qdisc show` prints every netem time as float seconds (`"delay":0.01`).
fn read(o: &J) -> Netem {
    let mut n = Netem {
        limit: get::u32_of(o, "limit"),
        ecn: o.get("ecn").and_then(J::as_bool),
        gap: get::u32_of(o, "gap"),
        ..Netem::default()
    };
    if let Some(d) = o.get("delay") {
        n.delay = get::secs_of(d, "delay");
        n.jitter = get::secs_of(d, "jitter");
        n.delay_correlation = get::prob_of(d, "correlation");
    }
    n.loss = read_loss(o);
    // Each impairment is an object with its probability and its correlation.
    let pair = |k: &str| {
        o.get(k)
            .map(|x| (get::prob_of(x, k), get::prob_of(x, "correlation")))
            .unwrap_or((None, None))
    };
    (n.duplicate, n.duplicate_correlation) = pair("duplicate");
    (n.reorder, n.reorder_correlation) = pair("reorder");
    (n.corrupt, n.corrupt_correlation) = pair("corrupt");
    if let Some(r) = o.get("rate") {
        n.rate = r.get("rate").and_then(J::as_u64).map(Rate::from_bytes);
    }
    if let Some(s) = o.get("slot") {
        if let Some(min_delay) = get::secs_of(s, "min-delay") {
            n.slot = Some(Slot {
                min_delay,
                max_delay: get::secs_of(s, "max-delay"),
                packets: get::u32_of(s, "packets"),
                bytes: get::size_of(s, "bytes"),
            });
        }
    }
    n
}

fn read_loss(o: &J) -> Option<Loss> {
    if let Some(l) = o.get("loss-random") {
        let p = get::prob_of(l, "loss")?;
        return Some(Loss::Random {
            p,
            correlation: get::prob_of(l, "correlation"),
        });
    }
    let g = o.get("loss-gemodel")?;
    Some(Loss::Gemodel {
        p: get::prob_of(g, "p")?,
        r: get::prob_of(g, "r"),
        h: get::prob_of(g, "1-h"),
        k: get::prob_of(g, "1-k"),
    })
}
