//! Field comparison, in the kernel's units, with the tolerances the kernel's own rounding
//! needs. The per-kind field diffs (`kind::qdisc::*::fields`) are built from these.

use serde::Serialize;

use crate::model::{Class, Handle};
use crate::units::{Rate, Size, Time};

/// A field that differs, in display units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    pub field: &'static str,
    pub live: String,
    pub desired: String,
}

pub fn push(
    out: &mut Vec<FieldDiff>,
    field: &'static str,
    live: impl ToString,
    desired: impl ToString,
) {
    out.push(FieldDiff {
        field,
        live: live.to_string(),
        desired: desired.to_string(),
    });
}

pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

pub fn opt_handle(h: Option<Handle>) -> String {
    opt(h)
}

/// Compares an option the policy sets (None on the desired side = kernel default, not
/// managed) with what was read back.
pub fn cmp_opt<T: PartialEq + ToString + Copy>(
    v: &mut Vec<FieldDiff>,
    name: &'static str,
    d: Option<T>,
    l: Option<T>,
    eq: impl Fn(T, T) -> bool,
) {
    if let Some(dv) = d {
        if !l.is_some_and(|lv| eq(dv, lv)) {
            push(v, name, opt(l), dv);
        }
    }
}

pub fn eq_<T: PartialEq>(a: T, b: T) -> bool {
    a == b
}

/// Rates the kernel keeps in bytes per second; read from tc's text output they are also
/// rounded, and then compared through the same rounding.
pub fn rate_eq(desired: Rate, live: Rate, live_from_text: bool) -> bool {
    if live_from_text {
        desired.tc_text_rounded() == live.tc_text_rounded()
    } else {
        desired.same_in_kernel(live)
    }
}

/// Burst and cburst are kept as time ticks; what reads back differs by a few bytes and
/// by iproute2 version (15k → 15337 or 15349), and text output rounds to Kb.
pub fn size_close(desired: Size, live: Size) -> bool {
    let (a, b) = (desired.bytes() as f64, live.bytes() as f64);
    (a - b).abs() <= (a * 0.03).max(16.0)
}

/// Times that the kernel keeps in its own ticks (codel's 1024 ns units, µs).
pub fn time_close(desired: Time, live: Time) -> bool {
    let (a, b) = (desired.ns() as f64, live.ns() as f64);
    (a - b).abs() <= (a * 0.01).max(1100.0)
}

/// An htb class (the only class kind qosctl writes).
pub fn class_fields(d: &Class, l: &Class) -> Vec<FieldDiff> {
    let mut v = Vec::new();
    let text = l.rates_from_text;
    if !rate_eq(d.rate, l.rate, text) {
        push(&mut v, "rate", l.rate, d.rate);
    }
    if !rate_eq(d.ceil, l.ceil, text) {
        push(&mut v, "ceil", l.ceil, d.ceil);
    }
    for (name, dv, lv) in [("burst", d.burst, l.burst), ("cburst", d.cburst, l.cburst)] {
        cmp_opt(&mut v, name, dv, lv, size_close);
    }
    // The kernel reports prio only for leaf classes; an unset prio is 0.
    if let Some(lp) = l.prio {
        let dp = d.prio.unwrap_or(0);
        if dp != lp {
            push(&mut v, "prio", lp, dp);
        }
    }
    if let (Some(dq), Some(lq)) = (d.quantum, l.quantum) {
        if dq != lq {
            push(&mut v, "quantum", lq, dq);
        }
    }
    v
}
