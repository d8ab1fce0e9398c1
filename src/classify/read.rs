//! u32 filters as `tc filter show` prints them (JSON from iproute2 6.1, text inside the JSON
//! before that, and the plain text form), reduced to what the codec and the planner need:
//! the filter's place (prio, protocol, handle), its keys, target, link, hash and actions.
//!
//! Kept apart from `tc/read/filter.rs` so the u32 kind can own its reader once filter kinds
//! have one home each; it uses the same lenient JSON reader (u32 prints duplicate `match`
//! keys, one per key, which a serde struct refuses and `serde_json::Value` collapses).

use std::fmt;

use anyhow::{anyhow, bail, Result};

use super::action::{self, Action};
use super::matcher::Family;
use super::u32::{decode, Decoded, Key};
use crate::model::Handle;
use crate::tc::read::json::{self, J};

/// A u32 handle `htid:bucket:node` (12, 8 and 12 bits, hex). A hash table is `htid:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct U32Handle {
    pub ht: u16,
    pub bucket: u8,
    pub node: u16,
}

impl U32Handle {
    /// Hash tables the kernel numbers itself (each prio's root table) are 0x800 and up;
    /// qosctl names its own below that (see `layout`).
    pub fn is_auto_root(&self) -> bool {
        self.ht >= 0x800
    }
    pub fn parse(s: &str) -> Option<U32Handle> {
        let mut it = s.split(':');
        let hex = |p: Option<&str>| -> Option<u32> {
            match p {
                None | Some("") => Some(0),
                Some(p) => u32::from_str_radix(p, 16).ok(),
            }
        };
        let (ht, bucket, node) = (hex(it.next())?, hex(it.next())?, hex(it.next())?);
        if it.next().is_some() || ht > 0xfff || bucket > 0xff || node > 0xfff {
            return None;
        }
        Some(U32Handle {
            ht: ht as u16,
            bucket: bucket as u8,
            node: node as u16,
        })
    }
}

impl serde::Serialize for U32Handle {
    /// As tc prints it (`800::5`).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for U32Handle {
    /// As tc prints it: `800:`, `800::801`, `3:5:800`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.bucket, self.node) {
            (0, 0) => write!(f, "{:x}:", self.ht),
            (0, n) => write!(f, "{:x}::{n:x}", self.ht),
            (b, n) => write!(f, "{:x}:{b:x}:{n:x}", self.ht),
        }
    }
}

/// One u32 object of a dump: a hash table, or a rule (keys plus target, link or actions).
#[derive(Debug, Clone, PartialEq)]
pub struct U32Filter {
    /// `None` when the dump omitted it (it was the `show` selector).
    pub parent: Option<Handle>,
    pub protocol: String,
    pub prio: u16,
    pub handle: U32Handle,
    pub body: U32Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum U32Body {
    HashTable {
        divisor: u32,
    },
    Rule {
        keys: Vec<Key>,
        /// A key relative to the next header (`at nexthdr+N`): not a field qosctl knows.
        nexthdr: bool,
        classid: Option<Handle>,
        /// `link H:` with its `hashkey mask M at OFF`, for the rule that enters a hash table.
        link: Option<u16>,
        hash: Option<(u32, i32)>,
        actions: Vec<Action>,
    },
}

impl U32Filter {
    /// The rule's keys in the policy's words, when they are fields qosctl knows.
    pub fn decoded(&self) -> Option<Decoded> {
        match &self.body {
            U32Body::Rule {
                keys,
                nexthdr: false,
                link: None,
                ..
            } => decode(keys, Family::from_tc_protocol(&self.protocol)?),
            _ => None,
        }
    }
}

impl U32Filter {
    /// What `show` prints for it, in the policy's words where the keys are fields qosctl
    /// knows (`dst 10.0.0.5/32 proto tcp dport 443`), else the raw keys; actions follow
    /// (`redirect to ifb-eth0`). The target class is printed separately (`classid`).
    pub fn summary(&self) -> String {
        let (keys, link, hash, actions) = match &self.body {
            U32Body::HashTable { divisor } => {
                return format!("hash table {:x}: ({divisor} buckets)", self.handle.ht)
            }
            U32Body::Rule {
                keys,
                link,
                hash,
                actions,
                ..
            } => (keys, link, hash, actions),
        };
        let mut parts = Vec::new();
        if let (Some(t), Some((_, off))) = (link, hash) {
            let which = match (self.protocol.as_str(), off) {
                ("ip", 16) | ("ipv6", 36) => "dst",
                ("ip", 12) | ("ipv6", 20) => "src",
                _ => "word",
            };
            parts.push(format!("hash on {which} last byte into table {t:x}:"));
        } else {
            parts.push(match self.decoded() {
                Some(d) => d.m.to_string(),
                // Match-all, also under `protocol all` (no family to decode with).
                None if keys.iter().all(|k| k.mask == 0) => "all".to_string(),
                None => keys
                    .iter()
                    .map(|k| format!("match {:08x}/{:08x} at {}", k.value, k.mask, k.off))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        parts.extend(actions.iter().map(Action::to_string));
        parts.join(", ")
    }
}

/// The (prio, family) of every hash table qosctl made (below 0x800) in a dump: what
/// `layout::layout_keeping` must keep.
pub fn hashed_tiers(live: &[U32Filter]) -> Vec<(u16, Family)> {
    live.iter()
        .filter(|f| matches!(f.body, U32Body::HashTable { .. }) && !f.handle.is_auto_root())
        .filter_map(|f| Some((f.prio, Family::from_tc_protocol(&f.protocol)?)))
        .collect()
}

/// Every u32 object in the output of `tc [-j] [-s] [-d] filter show dev D [parent P]`;
/// filters of other kinds are skipped.
pub fn parse(out: &str) -> Result<Vec<U32Filter>> {
    let t = out.trim_start();
    if t.is_empty() {
        Ok(Vec::new())
    } else if t.starts_with('[') {
        let v = json::parse(out).map_err(|e| anyhow!("invalid JSON from tc: {e}"))?;
        let mut res = Vec::new();
        for o in v
            .as_array()
            .ok_or_else(|| anyhow!("expected a JSON array"))?
        {
            if o.get("kind").and_then(J::as_str) != Some("u32") {
                continue;
            }
            if let Some(opts) = o.get("options") {
                res.push(from_json(o, opts)?);
            }
        }
        Ok(res)
    } else {
        from_text(out)
    }
}

fn head(o: &J) -> Result<(Option<Handle>, String, u16)> {
    let prio = o
        .get("pref")
        .and_then(J::as_u64)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or_else(|| anyhow!("u32 filter without a valid \"pref\""))?;
    let parent = o.get("parent").and_then(J::as_str).and_then(Handle::parse);
    let protocol = o
        .get("protocol")
        .and_then(J::as_str)
        .unwrap_or("all")
        .to_string();
    Ok((parent, protocol, prio))
}

fn from_json(o: &J, opts: &J) -> Result<U32Filter> {
    let (parent, protocol, prio) = head(o)?;
    json_options(opts, parent, protocol, prio)
}

/// One u32 entry of a dump that `tc/read/filter.rs` has already split into its head
/// (parent, protocol, prio) and its options (JSON, or the text form: the words after the
/// kind on the head line and the continuation lines).
pub fn from_entry(e: &crate::tc::read::filter::Entry) -> Result<U32Filter> {
    use crate::tc::read::filter::Opts;
    let parent = Some(e.parent);
    match &e.opts {
        Opts::Json(j) => json_options(j, parent, e.protocol.clone(), e.prio),
        Opts::Text { text, lines } => {
            let all = format!("{text}\n{}", lines.join("\n"));
            text_options(&all, parent, e.protocol.clone(), e.prio)
        }
    }
}

fn json_options(
    opts: &J,
    parent: Option<Handle>,
    protocol: String,
    prio: u16,
) -> Result<U32Filter> {
    // Before 6.1 the options are text inside the JSON; the actions stay JSON.
    if let Some(raw) = opts.raw_text() {
        let mut f = text_options(&raw, parent, protocol, prio)?;
        if let U32Body::Rule { actions, .. } = &mut f.body {
            if actions.is_empty() {
                *actions = action::from_json(opts.get("actions"));
            }
        }
        return Ok(f);
    }
    let fh = opts
        .get("fh")
        .and_then(J::as_str)
        .ok_or_else(|| anyhow!("u32 filter (pref {prio}) without \"fh\""))?;
    let handle = U32Handle::parse(fh).ok_or_else(|| anyhow!("invalid u32 handle \"{fh}\""))?;
    if let Some(d) = opts.get("ht_divisor").and_then(J::as_u64) {
        return Ok(U32Filter {
            parent,
            protocol,
            prio,
            handle,
            body: U32Body::HashTable { divisor: d as u32 },
        });
    }
    let mut keys = Vec::new();
    let mut nexthdr = false;
    for m in opts.get_all("match") {
        let hex = |k: &str| {
            m.get(k)
                .and_then(J::as_hex)
                .and_then(|v| u32::try_from(v).ok())
        };
        let (Some(value), Some(mask)) = (hex("value"), hex("mask")) else {
            bail!("u32 filter {fh}: a match key without value/mask");
        };
        let off = m.get("off").and_then(J::as_i64).unwrap_or(0) as i32;
        nexthdr |= m
            .get("offmask")
            .and_then(J::as_str)
            .is_some_and(|s| !s.is_empty());
        keys.push(Key { value, mask, off });
    }
    let hash = match (
        opts.get("hash_mask").and_then(J::as_hex),
        opts.get("hash_off"),
    ) {
        (Some(mask), Some(off)) => Some((mask as u32, off.as_i64().unwrap_or(0) as i32)),
        _ => None,
    };
    let link = opts
        .get("link")
        .and_then(J::as_str)
        .and_then(U32Handle::parse)
        .map(|h| h.ht);
    let classid = opts
        .get("flowid")
        .or_else(|| opts.get("classid"))
        .and_then(J::as_str)
        .and_then(Handle::parse);
    let actions = action::from_json(opts.get("actions"));
    Ok(rule(
        parent,
        protocol,
        prio,
        handle,
        (keys, nexthdr, classid, link, hash, actions),
    ))
}

/// The plain text dump: a `filter …` head line per object, indented continuation lines.
fn from_text(out: &str) -> Result<Vec<U32Filter>> {
    let mut res = Vec::new();
    let mut cur: Option<(String, Vec<String>)> = None;
    let mut flush = |cur: Option<(String, Vec<String>)>| -> Result<()> {
        let Some((head, lines)) = cur else {
            return Ok(());
        };
        let t: Vec<&str> = head.split_whitespace().collect();
        let Some(pi) = t.iter().position(|w| *w == "pref") else {
            bail!("no pref in \"{head}\"");
        };
        if t.get(pi + 2) != Some(&"u32") || !t.contains(&"fh") {
            return Ok(()); // another kind, or the classifier's own head line
        }
        let prio = t
            .get(pi + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("invalid pref in \"{head}\""))?;
        let parent = after(&t, "parent").and_then(Handle::parse);
        let protocol = after(&t, "protocol").unwrap_or("all").to_string();
        let fh = t.iter().position(|w| *w == "fh").unwrap_or(0);
        let text = format!("{}\n{}", t[fh..].join(" "), lines.join("\n"));
        res.push(text_options(&text, parent, protocol, prio)?);
        Ok(())
    };
    for line in out.lines() {
        if line.starts_with("filter ") {
            flush(cur.take())?;
            cur = Some((line.to_string(), Vec::new()));
        } else if !line.trim().is_empty() {
            match &mut cur {
                Some((_, l)) => l.push(line.trim().to_string()),
                None => bail!("unexpected filter output from tc: \"{line}\""),
            }
        }
    }
    flush(cur)?;
    Ok(res)
}

fn after<'a>(t: &[&'a str], key: &str) -> Option<&'a str> {
    t.iter()
        .position(|w| *w == key)
        .and_then(|i| t.get(i + 1))
        .copied()
}

/// `fh 800::800 order 2048 key ht 800 bkt 0 *flowid 1:10 not_in_hw` + lines
/// `match 0a630002/ffffffff at 16`, `hash mask 000000ff at 16`, `action order 1: …`.
fn text_options(
    text: &str,
    parent: Option<Handle>,
    protocol: String,
    prio: u16,
) -> Result<U32Filter> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let t: Vec<&str> = first.split_whitespace().collect();
    let fh = after(&t, "fh").ok_or_else(|| anyhow!("u32 filter without fh: \"{first}\""))?;
    let handle = U32Handle::parse(fh).ok_or_else(|| anyhow!("invalid u32 handle \"{fh}\""))?;
    if let Some(i) = t.windows(2).position(|w| w == ["ht", "divisor"]) {
        let divisor = t
            .get(i + 2)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("invalid divisor in \"{first}\""))?;
        return Ok(U32Filter {
            parent,
            protocol,
            prio,
            handle,
            body: U32Body::HashTable { divisor },
        });
    }
    let classid = ["flowid", "*flowid", "classid"]
        .iter()
        .find_map(|k| after(&t, k))
        .and_then(Handle::parse);
    let link = after(&t, "link").and_then(U32Handle::parse).map(|h| h.ht);
    let (mut keys, mut nexthdr, mut hash) = (Vec::new(), false, None);
    let rest: Vec<&str> = lines.map(str::trim).collect();
    for l in &rest {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["match", vm, "at", off, ..] => {
                let (v, m) = vm
                    .split_once('/')
                    .ok_or_else(|| anyhow!("invalid u32 key \"{l}\""))?;
                let hex = |s: &str| u32::from_str_radix(s, 16).ok();
                let (Some(value), Some(mask)) = (hex(v), hex(m)) else {
                    bail!("invalid u32 key \"{l}\"");
                };
                let off = match off.strip_prefix("nexthdr+") {
                    Some(o) => {
                        nexthdr = true;
                        o.parse().unwrap_or(0)
                    }
                    None => off
                        .parse()
                        .map_err(|_| anyhow!("invalid u32 key \"{l}\""))?,
                };
                keys.push(Key { value, mask, off });
            }
            ["hash", "mask", m, "at", off, ..] => {
                hash = u32::from_str_radix(m, 16).ok().zip(off.parse().ok());
            }
            _ => {}
        }
    }
    let actions = action::from_text(&rest);
    Ok(rule(
        parent,
        protocol,
        prio,
        handle,
        (keys, nexthdr, classid, link, hash, actions),
    ))
}

type RuleParts = (
    Vec<Key>,
    bool,
    Option<Handle>,
    Option<u16>,
    Option<(u32, i32)>,
    Vec<Action>,
);

/// A rule from the parts both readers (JSON, text) collect.
fn rule(
    parent: Option<Handle>,
    protocol: String,
    prio: u16,
    handle: U32Handle,
    p: RuleParts,
) -> U32Filter {
    let (keys, nexthdr, classid, link, hash, actions) = p;
    U32Filter {
        parent,
        protocol,
        prio,
        handle,
        body: U32Body::Rule {
            keys,
            nexthdr,
            classid,
            link,
            hash,
            actions,
        },
    }
}
