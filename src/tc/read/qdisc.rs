//! `tc -j -s -d qdisc show` → [`Qdisc`]s, one kind at a time.

use anyhow::{anyhow, bail, Result};

use super::json::J;
use crate::kind::qdisc::{self, system};
use crate::model::{Handle, Parent, Qdisc, QdiscKind, Stats};

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
    if system::is_kernel_default(kind, handle) {
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

/// The kind's own reader (its home in `crate::kind::qdisc`), or an unmanaged kind.
fn options(kind: &str, o: &J) -> Result<QdiscKind> {
    match qdisc::by_name(kind) {
        Some(def) => def.read(o),
        None => Ok(system::unmanaged(kind)),
    }
}
