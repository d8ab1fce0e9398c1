//! Values that pass validation but that the kernel cannot hold, or holds so that the read
//! back never matches: caught by `check` (and so by `apply`) before anything is touched.
//!
//! **Burst and cburst are time, not bytes.** tc converts a burst of `size` bytes at `rate`
//! into the time the rate needs to send it, in psched ticks of 64 ns (`PSCHED_SHIFT` 6:
//! 15.625 ticks per µs, from `/proc/net/psched`), and the kernel keeps that in a u32 (htb's
//! `buffer`/`cbuffer`, tbf's `buffer`). Reading back turns the ticks into bytes again.
//! - iproute2 ≤ 6.14 (`tc_core.c`) truncates twice each way: the time to whole µs, the
//!   ticks to a whole number; on reading, the ticks to whole µs, then bytes. At 5gbit, 16KiB
//!   (26.2 µs) goes in as 26 µs = 406 ticks and reads back as 25 µs = 15625B.
//! - iproute2 ≥ 6.15 rounds the ticks up and reads back exactly (commit d947f365).
//! - A time above u32::MAX ticks (274.88 s) wraps in iproute2 < 6.18 (8kbit with 2MB reads
//!   back 75854B) and saturates from 6.18; tbf's read back wraps in the kernel itself.
//!
//! qosctl compares a burst the policy sets with the one read back (3 % or 16 bytes,
//! `plan.rs`), so a burst that does not read back as itself on every iproute2 qosctl
//! supports makes `apply` change it forever. Such a burst is an error here, with the
//! nearest one that does read back. `tests/limits.rs` proves the boundaries on the kernel.
//!
//! **tc's default burst is too small above 6.4 gbit.** Without `burst`, tc takes
//! `rate / HZ + mtu` with HZ read from `/proc/net/psched`, which is 10^9 on every current
//! kernel: 1,600 bytes, under 2 µs at 6.4 gbit, which iproute2 ≤ 6.14 stores as 15 ticks and
//! reads back as 0 bytes; the kernel then holds less than one full-size frame, and htb stops
//! the class after every packet and falls far short of its rate. Where that default would read
//! back as 0, qosctl sends `rate / 1000 + 1600` bytes instead: the same formula with the
//! HZ it was written for (1 ms of the rate plus an MTU; 1,251,600 bytes at 10 gbit).
//!
//! **netem's queue.** netem holds every packet for its delay; its default limit is 1,000
//! packets, so a long delay at a high rate drops what does not fit. `check` warns with the
//! limit the delay needs at the class's ceil (or netem's own rate), in full-size frames.

use std::collections::HashMap;

use crate::model::{Class, DeviceState, Handle, Netem, Parent, QdiscKind};
use crate::policy::diag::{Diagnostic, Severity};
use crate::policy::node::{Node, Span};
use crate::resolve::Resolved;
use crate::units::{Rate, Size};

/// psched ticks per µs (64 ns ticks).
const TICKS_PER_US: f64 = 15.625;
/// The longest burst time the kernel's u32 of ticks holds, in whole µs (tc ≤ 6.14 keeps µs).
const MAX_US: u64 = (u32::MAX as f64 / TICKS_PER_US) as u64;
/// tc's mtu for htb's default burst.
const TC_MTU: u64 = 1600;
/// The frame netem's queue is counted in: a full-size Ethernet frame.
const FRAME: u64 = 1514;
/// netem's default `limit`, in packets.
const NETEM_DEFAULT_LIMIT: u64 = 1000;

/// iproute2 ≤ 6.14: `size` bytes at `rate` B/s → ticks (µs truncated, then ticks truncated).
/// None when the ticks do not fit the kernel's u32.
fn ticks_old(rate: u64, size: u64) -> Option<u64> {
    let us = (1e6 * size as f64 / rate as f64) as u64;
    (us <= MAX_US).then_some((us as f64 * TICKS_PER_US) as u64)
}

/// The ticks iproute2 ≤ 6.14 sends for `size` bytes at `rate` B/s, also when they do not
/// fit: it converts through u32 µs and u32 ticks, so both wrap (on x86-64, where the
/// double-to-u32 casts truncate). `tests/limits.rs` compares this with `tc -raw`.
pub fn tc_ticks_before_6_15(rate: u64, size: u64) -> u64 {
    let us = ((1e6 * size as f64 / rate as f64) as u64) % (1 << 32);
    ((us as f64 * TICKS_PER_US) as u64) % (1 << 32)
}

/// The bytes iproute2 ≤ 6.14 prints for `ticks` at `rate` B/s.
pub fn tc_bytes_before_6_15(rate: u64, ticks: u64) -> u64 {
    bytes_old(rate, ticks)
}

/// What iproute2 ≤ 6.14 reads back for a burst too long for the ticks.
fn wrapped(rate: u64, size: u64) -> u64 {
    bytes_old(rate, tc_ticks_before_6_15(rate, size))
}

/// iproute2 ≥ 6.15: ticks rounded up.
fn ticks_new(rate: u64, size: u64) -> Option<u64> {
    let t = (1e6 * size as f64 / rate as f64 * TICKS_PER_US).ceil();
    (t <= u32::MAX as f64).then_some(t as u64)
}

/// What iproute2 ≤ 6.14 prints for `ticks` (whole µs, then whole bytes).
fn bytes_old(rate: u64, ticks: u64) -> u64 {
    let us = (ticks as f64 / TICKS_PER_US) as u64;
    (rate as f64 * us as f64 / 1e6) as u64
}

/// What iproute2 ≥ 6.15 prints for `ticks`.
fn bytes_new(rate: u64, ticks: u64) -> u64 {
    (rate as f64 * (ticks as f64 / TICKS_PER_US) / 1e6) as u64
}

/// The comparison `plan.rs` makes between a burst set and the one read back.
fn close(set: u64, read: u64) -> bool {
    let (a, b) = (set as f64, read as f64);
    (a - b).abs() <= (a * 0.03).max(16.0)
}

/// Every burst `size` at `rate` B/s reads back as within `close` of itself, or None: under
/// both tc conversions, and (for tbf, whose ticks the kernel computes from the bytes) with
/// the kernel's own truncated ticks.
pub fn read_back(rate: u64, size: u64) -> Option<[u64; 3]> {
    let kernel = (1e6 * size as f64 / rate as f64 * TICKS_PER_US) as u64;
    if kernel > u64::from(u32::MAX) {
        return None;
    }
    Some([
        bytes_old(rate, ticks_old(rate, size)?),
        bytes_new(rate, ticks_new(rate, size)?),
        bytes_old(rate, kernel),
    ])
}

/// True when a burst of `size` bytes at `rate` B/s reads back as itself on every supported
/// iproute2 (within the planner's tolerance).
pub fn holds(rate: u64, size: u64) -> bool {
    read_back(rate, size).is_some_and(|r| r.iter().all(|&b| close(size, b)))
}

/// The burst nearest to `size` that `holds` at `rate`: the candidates are whole µs of the
/// rate (what iproute2 ≤ 6.14 keeps) around `size`, and the longest time the kernel holds.
pub fn nearest(rate: u64, size: u64) -> Option<u64> {
    let us = (1e6 * size as f64 / rate as f64) as u64;
    let around = us.saturating_sub(512)..=us.saturating_add(512).min(MAX_US);
    around
        .chain([MAX_US])
        .flat_map(|u| {
            let b = rate as f64 * u as f64 / 1e6;
            [b.floor() as u64, b.ceil() as u64]
        })
        .filter(|&c| c > 0 && holds(rate, c))
        .min_by_key(|&c| c.abs_diff(size))
}

/// True when tc's own default burst (`rate / 10^9 + 1600`) reads back as 0 bytes on
/// iproute2 ≤ 6.14: from about 6.4 gbit.
pub fn default_burst_is_broken(rate: u64) -> bool {
    let size = rate / 1_000_000_000 + TC_MTU;
    rate > 0 && ticks_old(rate, size).is_some_and(|t| bytes_old(rate, t) == 0)
}

/// The burst qosctl sends where tc's default is broken: 1 ms of the rate plus tc's mtu.
pub fn sane_burst(rate: u64) -> u64 {
    rate / 1000 + TC_MTU
}

/// Checks the resolved policy against the kernel's limits; fills in the bursts tc would get
/// wrong. Runs only on a policy without errors (resolution fills placeholders otherwise).
pub fn check(root: &Node, resolved: &mut Resolved, diags: &mut Vec<Diagnostic>) {
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return;
    }
    for iface in &mut resolved.interfaces {
        let alias = iface.alias.clone();
        check_device(root, &alias, &mut iface.state, diags);
    }
}

fn check_device(root: &Node, alias: &str, st: &mut DeviceState, diags: &mut Vec<Diagnostic>) {
    for c in &mut st.classes {
        class_bursts(root, alias, c, diags);
    }
    // By handle: a linear search per leaf made this check quadratic (a third of a no-op
    // re-apply's own time at 10,000 leaves).
    let ceils: HashMap<Handle, Rate> = st.classes.iter().map(|c| (c.handle, c.ceil)).collect();
    for q in &st.qdiscs {
        // Paths and names are made only for the leaves checked: a no-op re-apply of
        // 10,000 pfifo leaves made and dropped them all for nothing.
        let path = || policy_path(alias, q.name.as_deref());
        match &q.kind {
            QdiscKind::Tbf(t) => {
                let mut at = path();
                at.push("leaf".into());
                let what = format!("tbf leaf of \"{}\"", q.name.as_deref().unwrap_or(alias));
                burst_holds(root, &at, "burst", &what, t.rate, t.burst, diags);
            }
            QdiscKind::Netem(n) => {
                let ceil = match q.parent {
                    Parent::Class(h) => ceils.get(&h).copied(),
                    _ => None,
                };
                netem_limit(root, &path(), n, ceil, diags)
            }
            _ => {}
        }
    }
}

/// The TOML path of a class (`wan/bulk/web` → interfaces.wan.classes.bulk.classes.web), or
/// of the interface for its root class.
fn policy_path(alias: &str, name: Option<&str>) -> Vec<String> {
    let mut p = vec!["interfaces".to_string(), alias.to_string()];
    let below = name
        .and_then(|n| n.strip_prefix(alias))
        .and_then(|n| n.strip_prefix('/'));
    for part in below.into_iter().flat_map(|b| b.split('/')) {
        p.push("classes".into());
        p.push(part.to_string());
    }
    p
}

fn class_bursts(root: &Node, alias: &str, c: &mut Class, diags: &mut Vec<Diagnostic>) {
    // Made only for a class with a burst to check (most have none).
    let path = || policy_path(alias, c.name.as_deref());
    let what = || format!("class \"{}\"", c.name.as_deref().unwrap_or("?"));
    for (key, rate, slot) in [
        ("burst", c.rate, &mut c.burst),
        ("cburst", c.ceil, &mut c.cburst),
    ] {
        match slot {
            Some(size) => burst_holds(root, &path(), key, &what(), rate, *size, diags),
            None if default_burst_is_broken(rate.kernel_bytes()) => {
                *slot = Some(Size(sane_burst(rate.kernel_bytes())));
            }
            None => {}
        }
    }
}

fn burst_holds(
    root: &Node,
    path: &[String],
    key: &str,
    what: &str,
    rate: Rate,
    size: Size,
    diags: &mut Vec<Diagnostic>,
) {
    let r = rate.kernel_bytes();
    if r == 0 || holds(r, size.bytes()) {
        return;
    }
    let rate_s = Rate::from_bits(r * 8);
    let msg = match read_back(r, size.bytes()) {
        Some(b) => {
            let worst = b.iter().copied().max_by_key(|v| v.abs_diff(size.bytes()));
            format!(
                "{what}: {key} {size} at {rate_s} reads back as {}B: the kernel keeps a burst \
                 as the time to send it at the rate, in 64 ns ticks that tc rounds through whole \
                 µs, so apply would never see it in sync",
                worst.unwrap_or(0)
            )
        }
        None => format!(
            "{what}: {key} {size} at {rate_s} takes {:.1} s to send, more than the 274.9 s the \
             kernel's 32-bit count of 64 ns ticks holds: iproute2 before 6.18 wraps it (it \
             reads back as {}B)",
            size.bytes() as f64 / r as f64,
            wrapped(r, size.bytes())
        ),
    };
    let hint = match nearest(r, size.bytes()) {
        Some(n) => format!("the nearest {key} the kernel holds at this rate is {key} = \"{n}B\""),
        None => format!("leave {key} out, or change the rate"),
    };
    let mut keys = path.to_vec();
    keys.push(key.to_string());
    diags.push(Diagnostic::error(span_of(root, &keys), msg).hint(hint));
}

fn netem_limit(
    root: &Node,
    path: &[String],
    n: &Netem,
    class_ceil: Option<Rate>,
    diags: &mut Vec<Diagnostic>,
) {
    if n.limit.is_some() {
        return;
    }
    let hold_ns = n.delay.map_or(0, |d| d.ns()) + n.jitter.map_or(0, |j| j.ns());
    let (rate, whose) = match (n.rate, class_ceil) {
        (Some(a), Some(b)) if a <= b => (a, "netem's rate"),
        (_, Some(b)) => (b, "the class's ceil"),
        (Some(a), None) => (a, "netem's rate"),
        (None, None) => return,
    };
    let bytes = rate.kernel_bytes() as f64 * hold_ns as f64 / 1e9;
    let need = (bytes / FRAME as f64).ceil() as u64;
    if need <= NETEM_DEFAULT_LIMIT {
        return;
    }
    let mut keys = path.to_vec();
    keys.push("netem".into());
    let mut at = keys.clone();
    at.push(if n.delay.is_some() { "delay" } else { "jitter" }.into());
    let span = span_of(root, &at).or_else(|| span_of(root, &keys));
    let hold = crate::units::Time(hold_ns);
    diags.push(
        Diagnostic::warning(
            span,
            format!(
                "netem holds each packet {hold}: at {rate} ({whose}) that is up to {need} \
                 full-size packets, and netem's default limit of 1000 packets drops the rest"
            ),
        )
        .hint(format!("set limit = {need} in this netem")),
    );
}

/// The span of the value at `keys` (or of its key), or of the deepest part of the path that
/// exists, so a diagnostic always points as close as the file allows.
fn span_of(root: &Node, keys: &[String]) -> Span {
    let mut node = root;
    let mut best = root.span.clone();
    for k in keys {
        let Some((key, next)) = node
            .as_table()
            .and_then(|t| t.iter().find(|(key, _)| &key.name == k))
        else {
            break;
        };
        best = next.span.clone().or_else(|| key.span.clone()).or(best);
        node = next;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const GBIT: u64 = 125_000_000; // bytes/s

    #[test]
    fn the_issues_examples() {
        // 5gbit with cburst 16KiB reads back 15625B on iproute2 ≤ 6.14.
        assert_eq!(read_back(5 * GBIT, 16384).unwrap()[0], 15625);
        assert!(!holds(5 * GBIT, 16384));
        // 8kbit with burst 2MB overflows the ticks.
        assert!(read_back(1000, 2_000_000).is_none());
        assert_eq!(wrapped(1000, 2_000_000), 75854);
        assert_eq!(wrapped(1000, 2 * 1024 * 1024), 173_006); // tc's "2MB" (MiB), on this host
        assert!(!holds(1000, 2_000_000));
        // Everyday values hold.
        assert!(holds(GBIT / 10, 15_000)); // 100mbit, 15kB
        assert!(holds(1000, 274_877));
    }

    #[test]
    fn nearest_holds_and_is_close() {
        let n = nearest(5 * GBIT, 16384).unwrap();
        assert!(holds(5 * GBIT, n));
        assert!(n.abs_diff(16384) < 5000, "{n}");
        // The largest burst at 8kbit: 274877B holds, 274878B wraps (measured in tests/limits.rs).
        assert_eq!(nearest(1000, 2_000_000), Some(274_877));
        assert!(!holds(1000, 274_878));
    }

    #[test]
    fn default_burst_breaks_from_about_6_4_gbit() {
        assert!(!default_burst_is_broken(GBIT)); // 1gbit
        assert!(!default_burst_is_broken(6 * GBIT));
        assert!(default_burst_is_broken(7 * GBIT));
        assert!(default_burst_is_broken(10 * GBIT));
        assert!(default_burst_is_broken(100 * GBIT));
        let b = sane_burst(10 * GBIT);
        assert_eq!(b, 1_251_600);
        assert!(holds(10 * GBIT, b));
        assert!(holds(100 * GBIT, sane_burst(100 * GBIT)));
    }
}
