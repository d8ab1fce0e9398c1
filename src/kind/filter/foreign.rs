//! Every classifier qosctl does not write (u32, flower, bpf, basic, matchall, …): read
//! with its tc handle and a readable summary, shown, and removed from managed devices
//! with its whole priority.

use anyhow::Result;

use super::{FilterDef, FilterKind};
use crate::model::Stats;
use crate::tc::read::filter::{self as read, Entry, Opts, Parsed};
use crate::tc::read::json::{J, RAW};
use crate::tc::read::text;

pub struct Def;

fn of(k: &FilterKind) -> (&str, Option<&String>, &str) {
    match k {
        FilterKind::Other {
            kind,
            handle,
            summary,
        } => (kind, handle.as_ref(), summary),
        _ => ("", None, ""),
    }
}

impl FilterDef for Def {
    fn managed(&self) -> bool {
        false
    }
    fn read(&self, e: &Entry) -> Result<Parsed> {
        generic(&e.kind, &e.opts, e.chain)
    }
    fn args(&self, k: &FilterKind) -> String {
        let (kind, _, summary) = of(k);
        format!("{kind} {summary}")
    }
    /// The only deletion that works for every kind without understanding its handles.
    fn del_args(&self, _k: &FilterKind) -> Option<String> {
        None
    }
    fn describe(&self, k: &FilterKind) -> String {
        let (kind, handle, _) = of(k);
        format!("{kind} {}", handle.cloned().unwrap_or_default())
    }
    fn columns(&self, k: &FilterKind) -> (String, String) {
        let (_, handle, summary) = of(k);
        (handle.cloned().unwrap_or_default(), summary.to_string())
    }
    fn key(&self, _k: &FilterKind) -> u64 {
        0
    }
    fn order(&self, k: &FilterKind) -> (u32, String) {
        (0, of(k).1.cloned().unwrap_or_default())
    }
}

/// Every classifier qosctl does not write: kept with its tc handle and a readable summary.
fn generic(kind: &str, o: &Opts, chain: u64) -> Result<Parsed> {
    let mut summary = Vec::new();
    if chain != 0 {
        summary.push(format!("chain {chain}"));
    }
    let (classid, stats) = target_and_stats(o);
    let handle = match o {
        Opts::Json(j) => {
            let handle = j
                .get("fh")
                .or_else(|| j.get("handle"))
                .and_then(|h| match h {
                    J::Str(s) => Some(s.to_string()),
                    J::Num(_) => h.as_u64().map(|v| format!("0x{v:x}")),
                    _ => None,
                });
            for (k, v) in j.members() {
                if k == RAW {
                    continue;
                }
                if let Some(s) = summarize(k, v) {
                    summary.push(s);
                }
            }
            match read::raw_of(o) {
                Some((first, lines)) => {
                    summary.push(text_summary(&first, &lines));
                    handle.or_else(|| text_handle(&first))
                }
                None => handle,
            }
        }
        Opts::Text { text: first, lines } => {
            summary.push(text_summary(first, lines));
            text_handle(first)
        }
    };
    let summary = summary
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok((
        FilterKind::Other {
            kind: kind.to_string(),
            handle,
            summary,
        },
        classid,
        stats,
    ))
}

/// Where a filter steers (`classid`/`flowid`, in JSON or in its text) and its counters:
/// the first action's, else u32's hit count. The same for every kind, including the u32
/// filters qosctl reads as its own (they need nothing else of this reader).
pub(crate) fn target_and_stats(o: &Opts) -> (Option<crate::model::Handle>, Option<Stats>) {
    match o {
        Opts::Json(j) => {
            let mut classid = read::classid_of(j);
            if classid.is_none() {
                if let Some((first, _)) = read::raw_of(o) {
                    let t: Vec<&str> = first.split_whitespace().collect();
                    classid = read::text_classid(&t);
                }
            }
            let mut stats = read::action_stats(j);
            if stats.is_none() {
                // u32's first "success" counts the whole filter (later ones, per key).
                let hits = j.get("success").or_else(|| j.get("rule_hit"));
                stats = hits.and_then(J::as_u64).map(|p| Stats {
                    packets: p,
                    ..Stats::default()
                });
            }
            (classid, stats)
        }
        Opts::Text { text: first, lines } => {
            let t: Vec<&str> = first.split_whitespace().collect();
            let stats = read::text_action_stats(lines).or_else(|| {
                rule_hits(first).map(|p| Stats {
                    packets: p,
                    ..Stats::default()
                })
            });
            (read::text_classid(&t), stats)
        }
    }
}

/// `fh 800::800` or `handle 0xa` in a filter's text.
fn text_handle(first: &str) -> Option<String> {
    let t: Vec<&str> = first.split_whitespace().collect();
    text::after(&t, "fh")
        .or_else(|| text::after(&t, "handle"))
        .map(str::to_string)
}

/// Text options minus what has a field of its own, and minus statistics and noise.
fn text_summary(first: &str, lines: &[String]) -> String {
    let mut words: Vec<&str> = Vec::new();
    let t: Vec<&str> = first.split_whitespace().collect();
    let mut i = 0;
    while i < t.len() {
        match t[i] {
            "fh" | "handle" | "order" | "bkt" | "flowid" | "*flowid" | "classid" => i += 2,
            "key" if t.get(i + 1) == Some(&"ht") => i += 3,
            "not_in_hw" | "in_hw" | "terminal" => i += 1,
            w if w.starts_with('(') => {
                // `(rule hit 0 success 0)`: counters, not configuration.
                while i < t.len() && !t[i].ends_with(')') {
                    i += 1;
                }
                i += 1;
            }
            w => {
                words.push(w);
                i += 1;
            }
        }
    }
    let mut out = words.join(" ");
    for l in lines {
        let l = l.trim();
        // Action bookkeeping and statistics lines are not what the filter does.
        if l.starts_with("index ")
            || l.starts_with("Action statistics")
            || l.starts_with("Sent ")
            || l.starts_with("backlog ")
            || l.starts_with("not_in_hw")
            || l.starts_with("in_hw")
        {
            continue;
        }
        let l = match l.find(" (success") {
            Some(i) => &l[..i],
            None => l,
        };
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&text::squash(l));
    }
    out
}

fn rule_hits(first: &str) -> Option<u64> {
    let clean = first.replace(['(', ')'], " ");
    let t: Vec<&str> = clean.split_whitespace().collect();
    text::after(&t, "success")
        .or_else(|| {
            t.windows(3)
                .find(|w| w[0] == "rule" && w[1] == "hit")
                .map(|w| w[2])
        })
        .and_then(|v| v.parse().ok())
}

fn summarize(k: &str, v: &J) -> Option<String> {
    match k {
        "fh" | "handle" | "flowid" | "classid" | "order" | "key_ht" | "bkt" | "not_in_hw"
        | "in_hw" | "in_hw_count" | "rule_hit" | "success" | "skip_hw" | "skip_sw" => None,
        "match" => Some(format!(
            "match {}/{} at {}",
            v.get("value").and_then(J::as_str).unwrap_or("?"),
            v.get("mask").and_then(J::as_str).unwrap_or("?"),
            v.get("off").map(J::compact).unwrap_or_default()
        )),
        "ht_divisor" => Some(format!("ht divisor {}", v.compact())),
        "keys" => Some(
            v.members()
                .iter()
                .map(|(k, v)| format!("{k} {}", v.compact()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "actions" => Some(
            v.as_array()
                .unwrap_or(&[])
                .iter()
                .map(action_summary)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => Some(match v {
            J::Bool(true) => k.to_string(),
            _ => format!("{k} {}", v.compact()),
        }),
    }
}

fn action_summary(a: &J) -> String {
    let kind = a.get("kind").and_then(J::as_str).unwrap_or("?");
    let mut s = format!("action {kind}");
    for k in ["mirred_action", "direction", "to_dev", "mark"] {
        if let Some(v) = a.get(k) {
            s.push(' ');
            s.push_str(&v.compact());
        }
    }
    if let Some(c) = a
        .get("control_action")
        .and_then(|c| c.get("type"))
        .and_then(J::as_str)
    {
        s.push(' ');
        s.push_str(c);
    }
    if let Some(r) = a.raw_text() {
        s.push(' ');
        s.push_str(&text::squash(&r));
    }
    s
}
