//! netem: the table (or preset name) of a class or an impairment-only interface.
//!
//! A preset gives a whole set of values for a common link; every field written next to it
//! overrides the preset's value for that field only. The combined set is then checked as
//! tc would (a jitter needs a delay, a correlation needs its probability, …).

use std::collections::HashMap;

use super::node::{Key, Node, Span, Value};
use super::problem::{Place, Problem};
use super::schema::Sp;
use super::walk::{at, find, track, Walker};
use crate::model::{Loss, Netem, Slot};
use crate::units::{Prob, Rate, Time};

pub const KEYS: &[&str] = &[
    "preset",
    "delay",
    "jitter",
    "delay_correlation",
    "distribution",
    "loss",
    "loss_correlation",
    "duplicate",
    "duplicate_correlation",
    "corrupt",
    "corrupt_correlation",
    "reorder",
    "reorder_correlation",
    "gap",
    "rate",
    "limit",
    "slot",
    "ecn",
];

pub const DISTRIBUTIONS: &[&str] = &["normal", "pareto", "paretonormal", "uniform"];

/// Built-in link presets: (name, what it models, values). One direction of the link:
/// netem delays egress only, so a round trip through one impaired device sees these once.
pub const PRESETS: &[(&str, &str)] = &[
    ("2g", "EDGE-class mobile: 300ms ±50ms, 2% loss, 250kbit"),
    ("3g", "UMTS mobile: 100ms ±20ms, 1% loss, 1.5mbit"),
    ("lte", "4G mobile: 50ms ±10ms, 0.5% loss, 12mbit"),
    ("4g", "the same as \"lte\""),
    (
        "satellite",
        "geostationary satellite: 600ms ±20ms, 1% loss, 5mbit",
    ),
    (
        "lossy-wifi",
        "congested Wi-Fi: 10ms ±5ms, 3% bursty loss (25% correlation)",
    ),
];

fn ms(v: u64) -> Time {
    Time(v * 1_000_000)
}

fn pct(v: f64) -> Prob {
    Prob(v / 100.0)
}

pub fn preset(name: &str) -> Option<Netem> {
    let base = |delay: u64, jitter: u64, loss: f64, rate: Option<u64>| Netem {
        delay: Some(ms(delay)),
        jitter: Some(ms(jitter)),
        loss: Some(Loss::Random {
            p: pct(loss),
            correlation: None,
        }),
        rate: rate.map(Rate::from_bits),
        ..Netem::default()
    };
    Some(match name {
        "2g" => base(300, 50, 2.0, Some(250_000)),
        "3g" => base(100, 20, 1.0, Some(1_500_000)),
        "lte" | "4g" => base(50, 10, 0.5, Some(12_000_000)),
        "satellite" => base(600, 20, 1.0, Some(5_000_000)),
        "lossy-wifi" => Netem {
            loss: Some(Loss::Random {
                p: pct(3.0),
                correlation: Some(pct(25.0)),
            }),
            ..base(10, 5, 3.0, None)
        },
        _ => return None,
    })
}

/// Parses `netem = "3g"` or `netem = { … }`.
pub fn parse(w: &mut Walker, key: &Key, node: &Node) -> Option<Sp<Netem>> {
    let span = at(key, node);
    let entries = match &node.value {
        Value::String(s) => {
            return preset_named(w, s, span.clone()).map(|v| Sp { span, v });
        }
        Value::Table(_) => w.table(key, node, KEYS, Place::Named("netem"))?,
        found => {
            let key = &key.name;
            w.report(span, Problem::NetemWrongType { key, found });
            return None;
        }
    };
    let errors_before = w.diags.len();
    let mut n = Netem::default();
    // Where each field came from: the key written, or the preset.
    let mut from: HashMap<&'static str, Span> = HashMap::new();
    if let Some((k, pn)) = find(entries, "preset") {
        // On a bad preset, go on: the fields' own errors are worth reporting too.
        if let Some(p) = w
            .string(k, pn)
            .and_then(|name| preset_named(w, &name, at(k, pn)))
        {
            n = p;
        }
        for f in KEYS {
            from.insert(f, at(k, pn));
        }
    }
    let loss_correlation = fields(w, entries, &mut n, &mut from);
    if w.diags.len() > errors_before {
        return None;
    }
    // loss_correlation belongs to random loss; written alone it overrides a preset's.
    if let Some((c, c_span)) = loss_correlation {
        match &mut n.loss {
            Some(Loss::Random { correlation, .. }) => *correlation = Some(c),
            Some(Loss::Gemodel { .. }) => w.report(c_span, Problem::LossCorrelationGemodel),
            None => w.report(c_span, Problem::LossCorrelationWithoutLoss),
        }
    }
    let field_span = |f: &str| from.get(f).cloned().flatten().or_else(|| span.clone());
    for field in missing_needs(&n) {
        w.report(field_span(field), Problem::NetemNeeds { field });
    }
    if w.diags.len() > errors_before {
        return None;
    }
    Some(Sp { span, v: n })
}

/// A preset by name; an unknown name is reported.
fn preset_named(w: &mut Walker, name: &str, span: Span) -> Option<Netem> {
    let p = preset(name);
    if p.is_none() {
        let presets: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        w.report(
            span,
            Problem::UnknownPreset {
                name,
                presets: &presets,
            },
        );
    }
    p
}

/// The fields written, over the preset's; `from` learns where each was written. Returns
/// loss_correlation and its span: it applies to the loss, known only once all are read.
fn fields(
    w: &mut Walker,
    entries: &[(Key, Node)],
    n: &mut Netem,
    from: &mut HashMap<&'static str, Span>,
) -> Option<(Prob, Span)> {
    let mut loss_correlation = None;
    for (k, v) in entries {
        let Some(field) = KEYS.iter().find(|f| **f == k.name) else {
            continue;
        };
        from.insert(field, at(k, v));
        match *field {
            "delay" => n.delay = w.time(k, v),
            "jitter" => n.jitter = w.time(k, v),
            "delay_correlation" => n.delay_correlation = w.prob(k, v),
            "distribution" => n.distribution = w.one_of(k, v, DISTRIBUTIONS),
            "loss" => n.loss = loss(w, k, v),
            "loss_correlation" => loss_correlation = w.prob(k, v).map(|p| (p, at(k, v))),
            "duplicate" => n.duplicate = w.prob(k, v),
            "duplicate_correlation" => n.duplicate_correlation = w.prob(k, v),
            "corrupt" => n.corrupt = w.prob(k, v),
            "corrupt_correlation" => n.corrupt_correlation = w.prob(k, v),
            "reorder" => n.reorder = w.prob(k, v),
            "reorder_correlation" => n.reorder_correlation = w.prob(k, v),
            "gap" => n.gap = w.int(k, v, 1, u32::MAX as i64).map(|g| g as u32),
            "rate" => n.rate = w.rate(k, v),
            "limit" => n.limit = w.int(k, v, 1, u32::MAX as i64).map(|g| g as u32),
            "slot" => n.slot = slot(w, k, v),
            "ecn" => n.ecn = w.boolean(k, v),
            _ => {}
        }
    }
    loss_correlation
}

/// The fields set without the field they need (`Problem::NetemNeeds` words each).
fn missing_needs(n: &Netem) -> impl Iterator<Item = &'static str> {
    [
        ("jitter", n.jitter.is_some() && n.delay.is_none()),
        (
            "delay_correlation",
            n.delay_correlation.is_some() && n.jitter.is_none(),
        ),
        (
            "distribution",
            n.distribution.is_some() && n.jitter.is_none(),
        ),
        (
            "duplicate_correlation",
            n.duplicate_correlation.is_some() && n.duplicate.is_none(),
        ),
        (
            "corrupt_correlation",
            n.corrupt_correlation.is_some() && n.corrupt.is_none(),
        ),
        (
            "reorder_correlation",
            n.reorder_correlation.is_some() && n.reorder.is_none(),
        ),
        ("reorder", n.reorder.is_some() && n.delay.is_none()),
        ("gap", n.gap.is_some() && n.reorder.is_none()),
        ("ecn", n.ecn.is_some() && n.loss.is_none()),
    ]
    .into_iter()
    .filter_map(|(field, missing)| missing.then_some(field))
}

/// `loss = "1%"` or `loss = { gemodel = { p = "1%", r = "10%", h = "…", k = "…" } }`.
fn loss(w: &mut Walker, key: &Key, node: &Node) -> Option<Loss> {
    match &node.value {
        Value::Table(_) => {
            let entries = w.table(key, node, &["gemodel"], Place::Named("loss"))?;
            let Some((gk, gn)) = find(entries, "gemodel") else {
                w.report(at(key, node), Problem::LossWithoutGemodel);
                return None;
            };
            let ge = w.table(gk, gn, &["p", "r", "h", "k"], Place::Named("gemodel"))?;
            let (mut p, mut r, mut h, mut k) = (None, None, None, None);
            let mut ok = true;
            for (kk, kn) in ge {
                let v = match kk.name.as_str() {
                    "p" | "r" | "h" | "k" => w.prob(kk, kn),
                    _ => continue,
                };
                ok &= v.is_some();
                match kk.name.as_str() {
                    "p" => p = v,
                    "r" => r = v,
                    "h" => h = v,
                    _ => k = v,
                }
            }
            if !ok {
                return None;
            }
            let Some(p) = p else {
                w.report(at(gk, gn), Problem::GemodelWithoutP);
                return None;
            };
            Some(Loss::Gemodel { p, r, h, k })
        }
        _ => w.prob(key, node).map(|p| Loss::Random {
            p,
            correlation: None,
        }),
    }
}

/// `slot = "10ms"` or `slot = { min_delay = "10ms", max_delay = "20ms", packets = 32, bytes = "64KiB" }`.
fn slot(w: &mut Walker, key: &Key, node: &Node) -> Option<Slot> {
    if let Value::Table(_) = node.value {
        let entries = w.table(
            key,
            node,
            &["min_delay", "max_delay", "packets", "bytes"],
            Place::Named("slot"),
        )?;
        let (mut min, mut max, mut packets, mut bytes) = (None, None, None, None);
        let mut ok = true;
        for (k, n) in entries {
            match k.name.as_str() {
                "min_delay" => min = track(&mut ok, w.time(k, n)),
                "max_delay" => max = track(&mut ok, w.time(k, n)),
                "packets" => {
                    let p = w.int(k, n, 1, u32::MAX as i64).map(|v| v as u32);
                    packets = track(&mut ok, p);
                }
                "bytes" => bytes = track(&mut ok, w.size(k, n)),
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let Some(min_delay) = min else {
            w.report(at(key, node), Problem::SlotWithoutMinDelay);
            return None;
        };
        if max.is_some_and(|m| m < min_delay) {
            w.report(at(key, node), Problem::SlotMaxBelowMin);
            return None;
        }
        Some(Slot {
            min_delay,
            max_delay: max,
            packets,
            bytes,
        })
    } else {
        w.time(key, node).map(|min_delay| Slot {
            min_delay,
            max_delay: None,
            packets: None,
            bytes: None,
        })
    }
}
