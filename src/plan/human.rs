//! The plan as people read it: one line per operation, names beside handles, the reason
//! of a rebuild said once.

use std::fmt::Write as _;

use super::fields::opt_handle;
use super::{Obj, Op, Plan};
use crate::kind;
use crate::model::Parent;

/// A line describing one object: `class 1:30 backup  parent 1:20 rate 2mbit …`.
pub fn describe(obj: &Obj) -> (String, String, String) {
    match obj {
        Obj::Qdisc(q) => {
            let at = match q.parent {
                Parent::Root => "root".to_string(),
                // Both hang at TC_H_INGRESS; the kind tells them apart.
                Parent::Ingress if q.kind.kind_name() == "clsact" => "clsact".to_string(),
                Parent::Ingress => "ingress".to_string(),
                Parent::Class(p) => format!("on {p}"),
            };
            // In the same readable form as `qosctl check` shows leaves.
            (
                format!("qdisc {} {at}", q.handle),
                q.name.clone().unwrap_or_default(),
                kind::qdisc::summary(&q.kind, kind::Style::Brief),
            )
        }
        Obj::Class(c) => {
            let mut d = format!(
                "parent {}",
                c.parent
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| format!("{:x}:", c.handle.major))
            );
            let _ = write!(d, " rate {} ceil {}", c.rate, c.ceil);
            if let Some(b) = c.burst {
                let _ = write!(d, " burst {b}");
            }
            if let Some(b) = c.cburst {
                let _ = write!(d, " cburst {b}");
            }
            if let Some(p) = c.prio {
                let _ = write!(d, " prio {p}");
            }
            if let Some(q) = c.quantum {
                let _ = write!(d, " quantum {q}");
            }
            (
                format!("class {}", c.handle),
                c.name.clone().unwrap_or_default(),
                d,
            )
        }
        Obj::Filter(f) => {
            let what = format!("filter {}", kind::filter::describe(&f.kind));
            (
                what,
                f.name.clone().unwrap_or_default(),
                format!("-> {}", opt_handle(f.classid)),
            )
        }
        Obj::FilterPrio {
            parent,
            prio,
            protocol,
            kinds,
            count,
        } => (
            format!("filters prio {prio} on {parent}"),
            String::new(),
            format!(
                "{} {protocol} ({count} filter{})",
                kinds.join(","),
                if *count == 1 { "" } else { "s" }
            ),
        ),
    }
}

/// The plan as people read it.
pub fn render_human<'a>(plan: &'a Plan) -> String {
    let mut out = String::new();
    for d in &plan.devices {
        match &d.alias {
            Some(a) if a != &d.device => {
                let _ = writeln!(out, "{} ({a})", d.device);
            }
            _ => {
                let _ = writeln!(out, "{}", d.device);
            }
        }
        match &d.link {
            Some(super::LinkChange::Create { ifb_for }) => {
                let _ = writeln!(
                    out,
                    "  + ifb device {}  for the ingress of {ifb_for}",
                    d.device
                );
            }
            Some(super::LinkChange::Delete { ifb_for }) => {
                let _ = writeln!(
                    out,
                    "  - ifb device {}  (the ingress of {ifb_for} is gone from the policy; its tree goes with it)",
                    d.device
                );
            }
            Some(super::LinkChange::Up { ifb_for }) => {
                let _ = writeln!(
                    out,
                    "  ~ ifb device {}  for the ingress of {ifb_for}: down -> up",
                    d.device
                );
            }
            None => {}
        }
        if d.ops.is_empty() {
            if d.link.is_none() {
                let _ = writeln!(out, "  in sync");
            }
            continue;
        }
        // A rebuild gives every line the same reason: say it once, on the first.
        let mut last_reason: Option<&String> = None;
        let mut once = |r: &'a Option<String>| -> Option<String> {
            match r {
                Some(r) if last_reason == Some(r) => None,
                Some(r) => {
                    last_reason = Some(r);
                    Some(r.clone())
                }
                None => {
                    last_reason = None;
                    None
                }
            }
        };
        let mut rows: Vec<(char, String, String, String)> = Vec::new();
        for op in &d.ops {
            let row = match op {
                Op::Add { obj, reason } => {
                    let (w, n, det) = describe(obj);
                    ('+', w, n, with_reason(det, &once(reason)))
                }
                Op::Remove { obj, reason } => {
                    let (w, n, det) = describe(obj);
                    let det = match obj {
                        Obj::Class(_) | Obj::Qdisc(_) | Obj::Filter(_) => String::new(),
                        _ => det,
                    };
                    ('-', w, n, with_reason(det, &once(reason)))
                }
                Op::Change { obj, fields } => {
                    let (w, n, _) = describe(obj);
                    let det = fields
                        .iter()
                        .map(|f| format!("{} {} -> {}", f.field, f.live, f.desired))
                        .collect::<Vec<_>>()
                        .join(", ");
                    ('~', w, n, det)
                }
            };
            rows.push(row);
            if let Op::Remove {
                obj: Obj::Qdisc(q), ..
            } = op
            {
                if q.parent == Parent::Ingress {
                    rows.extend(d.goes_with.iter().map(|f| {
                        let (w, n, _) = describe(&Obj::Filter(f.clone()));
                        let w = format!("{} prio {} on {}", w.trim_end(), f.prio, f.parent);
                        ('-', w, n, format!("(goes with qdisc {})", q.handle))
                    }));
                }
            }
        }
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
        for (sign, what, name, det) in rows {
            let line = format!("  {sign} {what:w1$}  {name:w2$}  {det}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    let s = plan.summary();
    if plan.is_empty() {
        let _ = writeln!(out, "In sync: nothing to change.");
    } else {
        let _ = writeln!(
            out,
            "Plan: {} to add, {} to change, {} to remove.",
            s.add, s.change, s.remove
        );
    }
    out
}

fn with_reason(det: String, reason: &Option<String>) -> String {
    match reason {
        Some(r) if det.is_empty() => format!("({r})"),
        Some(r) => format!("{det} ({r})"),
        None => det,
    }
}
