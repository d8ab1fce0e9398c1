//! `tc -j -s filter show dev D parent P` (or its text form) → [`Filter`]s.
//!
//! Both forms are first reduced to the same entries (parent, protocol, pref, kind and the
//! options as JSON or as the text tc printed for them), so the text that older tc versions
//! put inside their JSON (u32 before 6.1, fw before 6.8) and the plain text dump are read
//! by the same code.

use anyhow::{anyhow, bail, Result};

use super::json::{self, J};
use super::{class, qdisc, text};
use crate::kind::filter;
use crate::model::{Filter, FilterKind, Handle, Stats};

/// A filter's options: parsed JSON (possibly holding raw text), or text only.
pub enum Opts<'a> {
    Json(J<'a>),
    Text { text: String, lines: Vec<String> },
}

/// One filter of a dump, before its kind's reader (`crate::kind::filter`) reads it.
pub struct Entry<'a> {
    pub parent: Handle,
    pub protocol: String,
    pub prio: u16,
    pub kind: String,
    pub chain: u64,
    pub opts: Opts<'a>,
}

pub fn parse(out: &str, parent: Handle) -> Result<Vec<Filter>> {
    let trimmed = out.trim_start();
    let entries = if trimmed.is_empty() {
        Vec::new()
    } else if trimmed.starts_with('[') {
        let v = json::parse(out).map_err(|e| anyhow!("invalid JSON from tc: {e}"))?;
        let J::Arr(items) = v else {
            bail!("expected a JSON array of filters");
        };
        let mut entries = Vec::with_capacity(items.len());
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

/// Takes the object by value: its options move into the entry (cloning them cost a tenth
/// of reading 10,000 u32 filters).
fn json_entry(mut o: J<'_>, parent: Handle) -> Result<Option<Entry<'_>>> {
    // The first object of each (pref, protocol) only names the classifier; the filters
    // themselves are the objects with options.
    let Some(opts) = o.take("options") else {
        return Ok(None);
    };
    let o = &o;
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
        opts: Opts::Json(opts),
    }))
}

/// `filter [parent 1:] protocol ip pref 10 fw chain 0 handle 0xa classid 1:10` plus
/// indented continuation lines (matches, actions, statistics).
fn text_entries(out: &str, parent: Handle) -> Result<Vec<Entry<'static>>> {
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

fn text_entry(
    head: &[String],
    lines: Vec<String>,
    parent: Handle,
) -> Result<Option<Entry<'static>>> {
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
    let mut filters = Vec::with_capacity(entries.len());
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
        // qosctl's own tables are objects of the policy (`FilterKind::U32` below `800:`);
        // the kernel's root tables (`80x:`) and foreign ones are not.
        let own = matches!(&f.kind, FilterKind::U32 { handle, .. } if !handle.is_auto_root());
        if e.kind == "u32" && is_hash_table(&e.opts) && !own {
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
    // Each key computed once: its strings cloned per comparison were a tenth of the read.
    filters.sort_by_cached_key(sort_key);
    Ok(filters)
}

fn sort_key(f: &Filter) -> (Handle, u16, String, String, (u32, String)) {
    (
        f.parent,
        f.prio,
        f.protocol.clone(),
        f.kind.kind_name().to_string(),
        f.kind.def().order(&f.kind),
    )
}

pub(crate) fn is_hash_table(o: &Opts) -> bool {
    match o {
        Opts::Json(j) => {
            j.get("ht_divisor").is_some() || j.raw_text().is_some_and(|r| r.contains("ht divisor"))
        }
        Opts::Text { text, .. } => text.contains("ht divisor"),
    }
}

/// The raw text of an entry's options (all of it, for text dumps; the part tc printed as
/// text inside JSON otherwise), as one line, and the continuation lines separately.
pub(crate) fn raw_of(o: &Opts) -> Option<(String, Vec<String>)> {
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
    let (kind, classid, stats) = filter::by_name(&e.kind).read(e)?;
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

/// What a kind's reader makes of an entry: its kind, where it steers, its counters.
pub type Parsed = (FilterKind, Option<Handle>, Option<Stats>);

pub(crate) fn classid_of(j: &J) -> Option<Handle> {
    j.get("classid")
        .or_else(|| j.get("flowid"))
        .and_then(J::as_str)
        .and_then(Handle::parse)
}

/// `classid 1:10`, `flowid 1:10`, u32's `*flowid 1:30` (terminal match).
pub(crate) fn text_classid(t: &[&str]) -> Option<Handle> {
    ["classid", "flowid", "*flowid"]
        .iter()
        .find_map(|k| text::after(t, k))
        .and_then(Handle::parse)
}

/// The first action's counters: what the filter has matched and acted on.
pub(crate) fn action_stats(j: &J) -> Option<Stats> {
    j.get("actions")?
        .as_array()?
        .iter()
        .find_map(|a| a.get("stats").and_then(qdisc::stats))
}

pub(crate) fn text_action_stats(lines: &[String]) -> Option<Stats> {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let first_sent = refs.iter().position(|l| l.starts_with("Sent "))?;
    class::text_stats(&refs[first_sent..(first_sent + 2).min(refs.len())])
}
