//! `tc -j -s filter show dev D parent P` (or its text form) → [`Filter`]s.
//!
//! Both forms are first reduced to the same entries (parent, protocol, pref, kind and the
//! options as JSON or as the text tc printed for them), so the text that older tc versions
//! put inside their JSON (u32 before 6.1, fw before 6.8) and the plain text dump are read
//! by the same code.

use anyhow::{anyhow, bail, Result};

use super::json::{self, J, RAW};
use super::{class, qdisc, text};
use crate::model::{Filter, FilterKind, Handle, Stats};

/// A filter's options: parsed JSON (possibly holding raw text), or text only.
enum Opts {
    Json(J),
    Text { text: String, lines: Vec<String> },
}

struct Entry {
    parent: Handle,
    protocol: String,
    prio: u16,
    kind: String,
    chain: u64,
    opts: Opts,
}

pub fn parse(out: &str, parent: Handle) -> Result<Vec<Filter>> {
    let trimmed = out.trim_start();
    let entries = if trimmed.is_empty() {
        Vec::new()
    } else if trimmed.starts_with('[') {
        let v = json::parse(out).map_err(|e| anyhow!("invalid JSON from tc: {e}"))?;
        let items = v
            .as_array()
            .ok_or_else(|| anyhow!("expected a JSON array of filters"))?;
        let mut entries = Vec::new();
        for item in items {
            if let Some(e) = json_entry(item, parent)? {
                entries.push(e);
            }
        }
        entries
    } else if trimmed.starts_with("filter ") {
        text_entries(out, parent)?
    } else {
        let first = trimmed.lines().next().unwrap_or("");
        bail!("unexpected filter output from tc: \"{first}\"");
    };
    build(entries)
}

fn json_entry(o: &J, parent: Handle) -> Result<Option<Entry>> {
    // The first object of each (pref, protocol) only names the classifier; the filters
    // themselves are the objects with options.
    let Some(opts) = o.get("options") else {
        return Ok(None);
    };
    let kind = o
        .get("kind")
        .and_then(J::as_str)
        .ok_or_else(|| anyhow!("a filter without \"kind\""))?;
    let prio = o
        .get("pref")
        .and_then(J::as_u64)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or_else(|| anyhow!("{kind} filter without a valid \"pref\""))?;
    let parent = match o.get("parent").and_then(J::as_str) {
        Some(p) => Handle::parse(p).ok_or_else(|| anyhow!("filter: invalid parent \"{p}\""))?,
        // Omitted because it was the show selector.
        None => parent,
    };
    Ok(Some(Entry {
        parent,
        protocol: o
            .get("protocol")
            .and_then(J::as_str)
            .unwrap_or("all")
            .to_string(),
        prio,
        kind: kind.to_string(),
        chain: o.get("chain").and_then(J::as_u64).unwrap_or(0),
        opts: Opts::Json(opts.clone()),
    }))
}

/// `filter [parent 1:] protocol ip pref 10 fw chain 0 handle 0xa classid 1:10` plus
/// indented continuation lines (matches, actions, statistics).
fn text_entries(out: &str, parent: Handle) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut cur: Option<(Vec<String>, Vec<String>)> = None; // (head tokens, more lines)
    let flush = |cur: Option<(Vec<String>, Vec<String>)>, entries: &mut Vec<Entry>| {
        if let Some((head, lines)) = cur {
            if let Some(e) = text_entry(&head, lines, parent)? {
                entries.push(e);
            }
        }
        Ok::<(), anyhow::Error>(())
    };
    for line in out.lines() {
        if line.starts_with("filter ") {
            flush(cur.take(), &mut entries)?;
            cur = Some((
                line.split_whitespace().map(str::to_string).collect(),
                Vec::new(),
            ));
        } else if !line.trim().is_empty() {
            match &mut cur {
                Some((_, lines)) => lines.push(line.trim().to_string()),
                None => bail!("unexpected filter output from tc: \"{line}\""),
            }
        }
    }
    flush(cur, &mut entries)?;
    Ok(entries)
}

fn text_entry(head: &[String], lines: Vec<String>, parent: Handle) -> Result<Option<Entry>> {
    let t: Vec<&str> = head.iter().map(String::as_str).collect();
    let line = t.join(" ");
    let parent = match text::after(&t, "parent") {
        Some(p) => Handle::parse(p).ok_or_else(|| anyhow!("invalid parent in \"{line}\""))?,
        None => parent,
    };
    let pi = t
        .iter()
        .position(|w| *w == "pref")
        .ok_or_else(|| anyhow!("no pref in \"{line}\""))?;
    let prio = t
        .get(pi + 1)
        .and_then(|v| v.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("invalid pref in \"{line}\""))?;
    let kind = t
        .get(pi + 2)
        .ok_or_else(|| anyhow!("no classifier kind in \"{line}\""))?;
    let mut rest = pi + 3;
    let mut chain = 0;
    if t.get(rest) == Some(&"chain") {
        chain = t.get(rest + 1).and_then(|v| v.parse().ok()).unwrap_or(0);
        rest += 2;
    }
    let opts = t.get(rest..).unwrap_or(&[]).join(" ");
    if opts.is_empty() && lines.is_empty() {
        return Ok(None);
    }
    Ok(Some(Entry {
        parent,
        protocol: text::after(&t, "protocol").unwrap_or("all").to_string(),
        prio,
        kind: kind.to_string(),
        chain,
        opts: Opts::Text { text: opts, lines },
    }))
}

fn build(entries: Vec<Entry>) -> Result<Vec<Filter>> {
    let mut filters = Vec::new();
    let mut hash_tables = Vec::new();
    for e in &entries {
        let f = filter(e).map_err(|err| {
            anyhow!(
                "{} filter (parent {}, pref {}): {err}",
                e.kind,
                e.parent,
                e.prio
            )
        })?;
        if e.kind == "u32" && is_hash_table(&e.opts) {
            hash_tables.push(f);
        } else {
            filters.push(f);
        }
    }
    // A u32 hash table is part of its classifier: deleting the rules' prio deletes it too.
    // Keep one only where nothing else marks that (parent, prio, protocol) as in use.
    for h in hash_tables {
        let covered = filters
            .iter()
            .any(|f| f.parent == h.parent && f.prio == h.prio && f.protocol == h.protocol);
        if !covered {
            filters.push(h);
        }
    }
    filters.sort_by_key(sort_key);
    Ok(filters)
}

fn sort_key(f: &Filter) -> (Handle, u16, String, String, u32, String) {
    match &f.kind {
        FilterKind::Fw { mark, .. } => (
            f.parent,
            f.prio,
            f.protocol.clone(),
            "fw".into(),
            *mark,
            String::new(),
        ),
        FilterKind::Other { kind, handle, .. } => (
            f.parent,
            f.prio,
            f.protocol.clone(),
            kind.clone(),
            0,
            handle.clone().unwrap_or_default(),
        ),
    }
}

fn is_hash_table(o: &Opts) -> bool {
    match o {
        Opts::Json(j) => {
            j.get("ht_divisor").is_some() || j.raw_text().is_some_and(|r| r.contains("ht divisor"))
        }
        Opts::Text { text, .. } => text.contains("ht divisor"),
    }
}

/// The raw text of an entry's options (all of it, for text dumps; the part tc printed as
/// text inside JSON otherwise), as one line, and the continuation lines separately.
fn raw_of(o: &Opts) -> Option<(String, Vec<String>)> {
    match o {
        Opts::Json(j) => {
            let r = j.raw_text()?;
            let mut lines = r.lines().map(|l| l.trim().to_string());
            let first = lines.next().unwrap_or_default();
            Some((first, lines.filter(|l| !l.is_empty()).collect()))
        }
        Opts::Text { text, lines } => Some((text.clone(), lines.clone())),
    }
}

fn filter(e: &Entry) -> Result<Filter> {
    let (kind, classid, stats) = match e.kind.as_str() {
        "fw" => fw(&e.opts)?,
        other => generic(other, &e.opts, e.chain)?,
    };
    Ok(Filter {
        parent: e.parent,
        prio: e.prio,
        protocol: e.protocol.clone(),
        kind,
        classid,
        name: None,
        stats,
    })
}

type Parsed = (FilterKind, Option<Handle>, Option<Stats>);

fn classid_of(j: &J) -> Option<Handle> {
    j.get("classid")
        .or_else(|| j.get("flowid"))
        .and_then(J::as_str)
        .and_then(Handle::parse)
}

/// `classid 1:10`, `flowid 1:10`, u32's `*flowid 1:30` (terminal match).
fn text_classid(t: &[&str]) -> Option<Handle> {
    ["classid", "flowid", "*flowid"]
        .iter()
        .find_map(|k| text::after(t, k))
        .and_then(Handle::parse)
}

fn fw(o: &Opts) -> Result<Parsed> {
    if let Opts::Json(j) = o {
        if let Some(m) = j.get("fw") {
            // iproute2 ≥ 6.8: "fw":{"mark":"0xa","mask":"0xffffffff"}
            let mark = m
                .get("mark")
                .and_then(J::as_hex)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| anyhow!("invalid fw mark in {}", m.compact()))?;
            let mask = m
                .get("mask")
                .and_then(J::as_hex)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(u32::MAX);
            return Ok((
                FilterKind::Fw { mark, mask },
                classid_of(j),
                action_stats(j),
            ));
        }
    }
    // Text (or the text 6.1 prints inside its JSON): `handle 0xa[/0xff] classid 1:10`.
    let (first, lines) = raw_of(o).ok_or_else(|| anyhow!("no fw mark in the output"))?;
    let all = format!("{first} {}", lines.join(" "));
    let t: Vec<&str> = all.split_whitespace().collect();
    let h = text::after(&t, "handle").ok_or_else(|| anyhow!("no handle in \"{first}\""))?;
    let (mark, mask) = match h.split_once('/') {
        Some((m, k)) => (text::hex(m), text::hex(k)),
        None => (text::hex(h), Some(u64::from(u32::MAX))),
    };
    let to_u32 = |v: Option<u64>| v.and_then(|v| u32::try_from(v).ok());
    let (Some(mark), Some(mask)) = (to_u32(mark), to_u32(mask)) else {
        bail!("invalid fw handle \"{h}\"");
    };
    let stats = match o {
        Opts::Json(j) => action_stats(j),
        Opts::Text { lines, .. } => text_action_stats(lines),
    };
    Ok((FilterKind::Fw { mark, mask }, text_classid(&t), stats))
}

/// Every classifier qosctl does not write: kept with its tc handle and a readable summary.
fn generic(kind: &str, o: &Opts, chain: u64) -> Result<Parsed> {
    let mut summary = Vec::new();
    if chain != 0 {
        summary.push(format!("chain {chain}"));
    }
    let (handle, classid, stats) = match o {
        Opts::Json(j) => {
            let mut handle = j
                .get("fh")
                .or_else(|| j.get("handle"))
                .and_then(|h| match h {
                    J::Str(s) => Some(s.clone()),
                    J::Num(_) => h.as_u64().map(|v| format!("0x{v:x}")),
                    _ => None,
                });
            let mut classid = classid_of(j);
            for (k, v) in j.members() {
                if k == RAW {
                    continue;
                }
                if let Some(s) = summarize(k, v) {
                    summary.push(s);
                }
            }
            if let Some((first, lines)) = raw_of(o) {
                let t: Vec<&str> = first.split_whitespace().collect();
                handle = handle.or_else(|| {
                    text::after(&t, "fh")
                        .or_else(|| text::after(&t, "handle"))
                        .map(str::to_string)
                });
                classid = classid.or_else(|| text_classid(&t));
                summary.push(text_summary(&first, &lines));
            }
            let mut stats = action_stats(j);
            if stats.is_none() {
                // u32's first "success" counts the whole filter (later ones, per key).
                let hits = j.get("success").or_else(|| j.get("rule_hit"));
                stats = hits.and_then(J::as_u64).map(|p| Stats {
                    packets: p,
                    ..Stats::default()
                });
            }
            (handle, classid, stats)
        }
        Opts::Text { text: first, lines } => {
            let t: Vec<&str> = first.split_whitespace().collect();
            let handle = text::after(&t, "fh")
                .or_else(|| text::after(&t, "handle"))
                .map(str::to_string);
            summary.push(text_summary(first, lines));
            let mut stats = text_action_stats(lines);
            if stats.is_none() {
                stats = rule_hits(first).map(|p| Stats {
                    packets: p,
                    ..Stats::default()
                });
            }
            (handle, text_classid(&t), stats)
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

/// The first action's counters: what the filter has matched and acted on.
fn action_stats(j: &J) -> Option<Stats> {
    j.get("actions")?
        .as_array()?
        .iter()
        .find_map(|a| a.get("stats").and_then(qdisc::stats))
}

fn text_action_stats(lines: &[String]) -> Option<Stats> {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let first_sent = refs.iter().position(|l| l.starts_with("Sent "))?;
    class::text_stats(&refs[first_sent..(first_sent + 2).min(refs.len())])
}
