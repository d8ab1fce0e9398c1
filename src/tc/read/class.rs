//! `tc -j -s -d class show` → htb [`Class`]es. JSON from iproute2 6.2; up to 6.1 tc ignores
//! `-j` here and prints text, which is parsed instead (its rates are rounded).

use anyhow::{anyhow, Result};

use super::json::J;
use super::{qdisc, text};
use crate::model::{Class, Handle, Stats};
use crate::units::{Rate, Size};

/// One class object of the JSON dump; `None` for classes of other kinds (fq_codel flows,
/// prio bands, tbf's inner class): they belong to their qdisc, qosctl writes only htb.
pub fn from_json(o: &J) -> Result<Option<Class>> {
    let kind = o.get("class").and_then(J::as_str).unwrap_or("");
    if kind != "htb" {
        return Ok(None);
    }
    let hs = o
        .get("handle")
        .and_then(J::as_str)
        .ok_or_else(|| anyhow!("htb class without \"handle\""))?;
    let handle = Handle::parse(hs).ok_or_else(|| anyhow!("htb class: invalid handle \"{hs}\""))?;
    let parent = if o.get("root").and_then(J::as_bool) == Some(true) {
        None
    } else {
        let p = o
            .get("parent")
            .and_then(J::as_str)
            .ok_or_else(|| anyhow!("htb class {handle} has neither \"root\" nor \"parent\""))?;
        let ph = Handle::parse(p)
            .ok_or_else(|| anyhow!("htb class {handle}: invalid parent \"{p}\""))?;
        // `parent 1:` (the qdisc itself) is how a class under the root reads in some dumps.
        (ph.minor != 0).then_some(ph)
    };
    let rate = |k: &str| -> Result<Rate> {
        o.get(k)
            .and_then(J::as_u64)
            .map(Rate::from_bytes)
            .ok_or_else(|| anyhow!("htb class {handle} has no {k}"))
    };
    Ok(Some(Class {
        handle,
        parent,
        rate: rate("rate")?,
        ceil: rate("ceil")?,
        burst: o.get("burst").and_then(J::as_u64).map(Size),
        cburst: o.get("cburst").and_then(J::as_u64).map(Size),
        prio: o
            .get("prio")
            .and_then(J::as_u64)
            .and_then(|v| u32::try_from(v).ok()),
        quantum: o.get("quantum").and_then(J::as_u64).map(Size),
        rates_from_text: false,
        name: None,
        stats: o.get("stats").and_then(qdisc::stats),
    }))
}

/// The text form: one block per class, starting with `class KIND HANDLE …`.
pub fn from_text(out: &str) -> Result<Vec<Class>> {
    let mut classes = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in out.lines() {
        if line.starts_with("class ") && !block.is_empty() {
            if let Some(c) = text_block(&block)? {
                classes.push(c);
            }
            block.clear();
        }
        if !line.trim().is_empty() {
            block.push(line);
        }
    }
    if !block.is_empty() {
        if let Some(c) = text_block(&block)? {
            classes.push(c);
        }
    }
    Ok(classes)
}

fn text_block(lines: &[&str]) -> Result<Option<Class>> {
    let head = lines[0];
    let t: Vec<&str> = head.split_whitespace().collect();
    if t.first() != Some(&"class") {
        return Err(anyhow!(
            "expected a line starting with \"class\", got \"{head}\""
        ));
    }
    if t.get(1) != Some(&"htb") {
        return Ok(None);
    }
    let hs = t.get(2).copied().unwrap_or("");
    let handle = Handle::parse(hs).ok_or_else(|| anyhow!("invalid class handle in \"{head}\""))?;
    let parent = if t.contains(&"root") {
        None
    } else {
        let p = text::after(&t, "parent")
            .ok_or_else(|| anyhow!("class {handle}: neither root nor parent in \"{head}\""))?;
        let ph = Handle::parse(p)
            .ok_or_else(|| anyhow!("class {handle}: invalid parent in \"{head}\""))?;
        (ph.minor != 0).then_some(ph)
    };
    let rate = |k: &str| -> Result<Rate> {
        text::after(&t, k)
            .and_then(text::rate)
            .ok_or_else(|| anyhow!("class {handle}: no {k} in \"{}\"", head.trim()))
    };
    let num = |k: &str| text::after(&t, k).and_then(|v| v.parse::<u64>().ok());
    Ok(Some(Class {
        handle,
        parent,
        rate: rate("rate")?,
        ceil: rate("ceil")?,
        burst: text::after(&t, "burst").and_then(text::size),
        cburst: text::after(&t, "cburst").and_then(text::size),
        prio: num("prio").and_then(|v| u32::try_from(v).ok()),
        quantum: num("quantum").map(Size),
        rates_from_text: true,
        name: None,
        stats: text_stats(&lines[1..]),
    }))
}

/// ` Sent 5058 bytes 91 pkt (dropped 0, overlimits 0 requeues 0) ` and
/// ` [rate 0bit 0pps ]backlog 0b 0p requeues 0`.
pub fn text_stats(lines: &[&str]) -> Option<Stats> {
    let mut s = Stats::default();
    let mut seen = false;
    for line in lines {
        let clean = line.replace(['(', ')', ','], " ");
        let t: Vec<&str> = clean.split_whitespace().collect();
        let num = |k: &str| text::after(&t, k).and_then(|v| v.parse::<u64>().ok());
        if t.first() == Some(&"Sent") {
            seen = true;
            s.bytes = t.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            s.packets = t.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
            s.drops = num("dropped").unwrap_or(0);
            s.overlimits = num("overlimits").unwrap_or(0);
            s.requeues = num("requeues").unwrap_or(0);
        }
        if let Some(i) = t.iter().position(|w| *w == "backlog") {
            seen = true;
            s.backlog_bytes = t.get(i + 1).and_then(|v| text::size(v)).map_or(0, |v| v.0);
            s.backlog_packets = t
                .get(i + 2)
                .and_then(|v| v.strip_suffix('p'))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if t.first() == Some(&"rate") {
                s.rate_bps = t.get(1).and_then(|v| text::rate(v)).map(|r| r.bits() / 8);
            }
        }
    }
    seen.then_some(s)
}
