//! `fw`: steers by firewall mark (`handle MARK[/MASK] fw classid X`).

use anyhow::{anyhow, bail, Result};

use super::{FilterDef, FilterKind};
use crate::tc::read::filter::{self as read, Entry, Opts, Parsed};
use crate::tc::read::json::J;
use crate::tc::read::text;

pub struct Def;

fn of(k: &FilterKind) -> Option<(u32, u32)> {
    match k {
        FilterKind::Fw { mark, mask } => Some((*mark, *mask)),
        _ => None,
    }
}

/// `0x10`, or `0x10/0xff` with a mask other than all ones.
fn handle(k: &FilterKind) -> String {
    match of(k) {
        Some((mark, u32::MAX)) => format!("{mark:#x}"),
        Some((mark, mask)) => format!("{mark:#x}/{mask:#x}"),
        None => String::new(),
    }
}

impl FilterDef for Def {
    fn read(&self, e: &Entry) -> Result<Parsed> {
        read_fw(&e.opts)
    }
    fn args(&self, k: &FilterKind) -> String {
        format!("handle {} fw", handle(k))
    }
    fn del_args(&self, k: &FilterKind) -> Option<String> {
        Some(format!("handle {} fw", handle(k)))
    }
    fn describe(&self, k: &FilterKind) -> String {
        format!("fw {}", handle(k))
    }
    fn columns(&self, k: &FilterKind) -> (String, String) {
        let mark = of(k).map_or(0, |(m, _)| m);
        (format!("{mark:#x}"), format!("mark {}", handle(k)))
    }
    fn key(&self, k: &FilterKind) -> u64 {
        of(k).map_or(0, |(mark, mask)| u64::from(mark) << 32 | u64::from(mask))
    }
    fn order(&self, k: &FilterKind) -> (u32, String) {
        (of(k).map_or(0, |(m, _)| m), String::new())
    }
}

fn read_fw(o: &Opts) -> Result<Parsed> {
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
            let kind = FilterKind::Fw { mark, mask };
            return Ok((kind, read::classid_of(j), read::action_stats(j)));
        }
    }
    // Text (or the text 6.1 prints inside its JSON): `handle 0xa[/0xff] classid 1:10`.
    let (first, lines) = read::raw_of(o).ok_or_else(|| anyhow!("no fw mark in the output"))?;
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
        Opts::Json(j) => read::action_stats(j),
        Opts::Text { lines, .. } => read::text_action_stats(lines),
    };
    let kind = FilterKind::Fw { mark, mask };
    Ok((kind, read::text_classid(&t), stats))
}
