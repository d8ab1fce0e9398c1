//! `tc -j -s -d qdisc show` → [`Qdisc`]s, one kind at a time.

use anyhow::{anyhow, bail, Result};

use super::json::J;
use super::text;
use crate::model::{
    Cake, FqCodel, Handle, Htb, Loss, Netem, Parent, Qdisc, QdiscKind, Sfq, Slot, Stats, Tbf,
};
use crate::units::{Prob, Rate, Size, Time};

/// The parent tc prints for ingress and clsact (`TC_H_INGRESS`).
const INGRESS_PARENT: &str = "ffff:fff1";

/// One qdisc object of the dump, `None` when it is a kernel default (qosctl's "nothing").
pub fn qdisc(o: &J) -> Result<Option<(Option<String>, Qdisc)>> {
    let kind = o
        .get("kind")
        .and_then(J::as_str)
        .ok_or_else(|| anyhow!("a qdisc without \"kind\""))?;
    let handle_s = o
        .get("handle")
        .and_then(J::as_str)
        .ok_or_else(|| anyhow!("{kind} qdisc without \"handle\""))?;
    let handle = Handle::parse(handle_s)
        .ok_or_else(|| anyhow!("{kind} qdisc: invalid handle \"{handle_s}\""))?;
    let dev = o.get("dev").and_then(J::as_str).map(str::to_string);
    // Handle 0: is what the kernel attaches by itself (noqueue, pfifo_fast, mq and its
    // per-queue children, a default fq_codel); none of it was configured by anyone.
    if handle.major == 0 || kind == "noqueue" {
        return Ok(None);
    }
    let parent = if o.get("root").and_then(J::as_bool) == Some(true) {
        Parent::Root
    } else {
        match o.get("parent").and_then(J::as_str) {
            Some(INGRESS_PARENT) => Parent::Ingress,
            Some(p) => {
                let h = Handle::parse(p)
                    .ok_or_else(|| anyhow!("{kind} qdisc {handle}: invalid parent \"{p}\""))?;
                // Children of a default mq (parent `:1`) are defaults too.
                if h.major == 0 {
                    return Ok(None);
                }
                Parent::Class(h)
            }
            None => bail!("{kind} qdisc {handle} has neither \"root\" nor \"parent\""),
        }
    };
    let empty = J::Obj(Vec::new());
    let opts = o.get("options").unwrap_or(&empty);
    let kind = options(kind, opts).map_err(|e| anyhow!("{kind} qdisc {handle}: {e}"))?;
    Ok(Some((
        dev,
        Qdisc {
            handle,
            parent,
            kind,
            name: None,
            stats: stats(o),
        },
    )))
}

/// Counters of a qdisc (top level of its object) or of a class (its `stats` object).
pub fn stats(o: &J) -> Option<Stats> {
    let get = |k: &str| o.get(k).and_then(J::as_u64).unwrap_or(0);
    // Without -s there are no counters; "bytes" is absent only then (fq_codel class
    // stats lack it too, but those are not read).
    if o.get("bytes").is_none() && o.get("packets").is_none() {
        return None;
    }
    Some(Stats {
        bytes: get("bytes"),
        packets: get("packets"),
        drops: get("drops"),
        overlimits: get("overlimits"),
        requeues: get("requeues"),
        backlog_bytes: get("backlog"),
        backlog_packets: get("qlen"),
        rate_bps: o.get("rate").and_then(J::as_u64),
        rate_measured_bps: None,
    })
}

fn u32_of(o: &J, k: &str) -> Option<u32> {
    o.get(k)
        .and_then(J::as_u64)
        .and_then(|v| u32::try_from(v).ok())
}
fn size_of(o: &J, k: &str) -> Option<Size> {
    o.get(k).and_then(J::as_u64).map(Size)
}
fn us_of(o: &J, k: &str) -> Option<Time> {
    o.get(k)
        .and_then(J::as_u64)
        .map(|us| Time(us.saturating_mul(1000)))
}
/// netem prints every time as float seconds (`"delay":0.01`, `"min-delay":0.002`).
fn secs_of(o: &J, k: &str) -> Option<Time> {
    o.get(k)?
        .as_f64()
        .filter(|s| *s >= 0.0 && *s < 1e9)
        .map(|s| Time((s * 1e9).round() as u64))
}
fn prob_of(o: &J, k: &str) -> Option<Prob> {
    o.get(k).and_then(J::as_f64).map(Prob)
}

fn options(kind: &str, o: &J) -> Result<QdiscKind> {
    Ok(match kind {
        "htb" => {
            let default = match o.get("default") {
                None => 0,
                Some(d) => d
                    .as_hex()
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or_else(|| anyhow!("invalid default {}", d.compact()))?,
            };
            QdiscKind::Htb(Htb {
                default,
                r2q: u32_of(o, "r2q"),
            })
        }
        "pfifo" => QdiscKind::Pfifo {
            limit: u32_of(o, "limit"),
        },
        "bfifo" => QdiscKind::Bfifo {
            limit: size_of(o, "limit"),
        },
        "tbf" => QdiscKind::Tbf(tbf(o)?),
        "fq_codel" => QdiscKind::FqCodel(FqCodel {
            limit: u32_of(o, "limit"),
            flows: u32_of(o, "flows"),
            target: us_of(o, "target"),
            interval: us_of(o, "interval"),
            quantum: size_of(o, "quantum"),
            ecn: o.get("ecn").and_then(J::as_bool),
            memory_limit: size_of(o, "memory_limit"),
        }),
        "cake" => QdiscKind::Cake(Cake {
            // "unlimited" when no bandwidth is set.
            bandwidth: o.get("bandwidth").and_then(J::as_u64).map(Rate::from_bytes),
            diffserv: o.get("diffserv").and_then(J::as_str).map(str::to_string),
            flow_mode: o.get("flowmode").and_then(J::as_str).map(str::to_string),
            rtt: us_of(o, "rtt"),
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
        }),
        "sfq" => QdiscKind::Sfq(Sfq {
            // sfq prints perturb in whole seconds.
            perturb: o
                .get("perturb")
                .and_then(J::as_u64)
                .map(|s| Time(s.saturating_mul(1_000_000_000))),
            limit: u32_of(o, "limit"),
            quantum: size_of(o, "quantum"),
        }),
        "netem" => QdiscKind::Netem(Box::new(netem(o))),
        "ingress" => QdiscKind::Ingress,
        other => QdiscKind::Other {
            kind: other.to_string(),
        },
    })
}

/// tbf: JSON from iproute2 5.5; 5.4 prints its options as text inside the JSON.
fn tbf(o: &J) -> Result<Tbf> {
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
        limit: size_of(o, "limit"),
        latency: us_of(o, "lat"),
    })
}

fn netem(o: &J) -> Netem {
    let mut n = Netem {
        limit: u32_of(o, "limit"),
        ecn: o.get("ecn").and_then(J::as_bool),
        gap: u32_of(o, "gap"),
        ..Netem::default()
    };
    if let Some(d) = o.get("delay") {
        n.delay = secs_of(d, "delay");
        n.jitter = secs_of(d, "jitter");
        n.delay_correlation = prob_of(d, "correlation");
    }
    if let Some(l) = o.get("loss-random") {
        if let Some(p) = prob_of(l, "loss") {
            n.loss = Some(Loss::Random {
                p,
                correlation: prob_of(l, "correlation"),
            });
        }
    } else if let Some(g) = o.get("loss-gemodel") {
        if let Some(p) = prob_of(g, "p") {
            n.loss = Some(Loss::Gemodel {
                p,
                r: prob_of(g, "r"),
                h: prob_of(g, "1-h"),
                k: prob_of(g, "1-k"),
            });
        }
    }
    if let Some(d) = o.get("duplicate") {
        n.duplicate = prob_of(d, "duplicate");
        n.duplicate_correlation = prob_of(d, "correlation");
    }
    if let Some(r) = o.get("reorder") {
        n.reorder = prob_of(r, "reorder");
        n.reorder_correlation = prob_of(r, "correlation");
    }
    if let Some(c) = o.get("corrupt") {
        n.corrupt = prob_of(c, "corrupt");
        n.corrupt_correlation = prob_of(c, "correlation");
    }
    if let Some(r) = o.get("rate") {
        n.rate = r.get("rate").and_then(J::as_u64).map(Rate::from_bytes);
    }
    if let Some(s) = o.get("slot") {
        if let Some(min_delay) = secs_of(s, "min-delay") {
            n.slot = Some(Slot {
                min_delay,
                max_delay: secs_of(s, "max-delay"),
                packets: u32_of(s, "packets"),
                bytes: size_of(s, "bytes"),
            });
        }
    }
    n
}
