//! `flower`: qosctl's flower match filters, for interfaces with `classifier = "flower"`.
//!
//! One filter per match and family, at the match's tier priority (the same priorities as
//! u32, `classify::layout::tier`) with the handle `classify::layout::flower_handle` gives
//! it (class minor, ordinal). Keys by name, the policy's [`Match`] as the model:
//! `src_ip`/`dst_ip` (with prefix), `ip_proto`, `src_port`/`dst_port` (a port, or flower's
//! native `MIN-MAX` range: one key, read back as `{"start","end"}`), `ip_tos VALUE/0xfc`
//! for a DSCP (IPv4 TOS and IPv6 traffic class alike), the classid and the class's actions
//! (`set_dscp`: pedit + csum, `classify::action`, exactly as on u32).
//!
//! **Which flower filters are qosctl's.** A filter at a match priority of its protocol
//! (`ip` / `ipv6`), in chain 0, whose handle carries its class's minor and an ordinal,
//! whose keys are only the ones above (with a DSCP mask of exactly the six DSCP bits, a
//! port without a mask) and decode into a valid match of that very tier, with no flags
//! qosctl does not write (`skip_sw`, `skip_hw`, `indev`, …) and only qosctl's actions.
//! Anything else (a hand-made `flower dst_ip …` at handle 1, OVS's offloaded filters on
//! `ffff:`) stays foreign (`foreign.rs`): shown raw, refused without `--force`, removed with
//! its priority.
//!
//! **Edits.** The keyed diff pairs filters by handle and mask shape ([`FilterDef::key`]);
//! a changed address, port, DSCP, class or action of a filter with the same mask is one
//! `filter replace` of its handle: the kernel's `fl_change` takes the new keys for an
//! existing handle, but refuses a different mask there (`EINVAL`), so a new mask (another
//! prefix length, a port that becomes a range) is a new key: delete + add.

use std::hash::{Hash, Hasher};

use anyhow::Result;

use super::u32::{actions_words, same_actions, show_actions};
use super::{FilterDef, FilterKind};
use crate::classify::action::{self, Action};
use crate::classify::layout::{is_tier, tier};
use crate::classify::matcher::{Dscp, PortRange, Prefix, Proto};
use crate::classify::{Family, Match};
use crate::model::Handle;
use crate::plan::fields::push;
use crate::plan::FieldDiff;
use crate::tc::read::filter::{Entry, Opts, Parsed};
use crate::tc::read::json::J;

pub struct Def;

/// A flower match filter at `handle`.
pub fn rule(handle: u32, m: Match, actions: Vec<Action>) -> FilterKind {
    FilterKind::Flower { handle, m, actions }
}

fn of(k: &FilterKind) -> Option<(u32, &Match, &[Action])> {
    match k {
        FilterKind::Flower { handle, m, actions } => Some((*handle, m, actions)),
        _ => None,
    }
}

/// `ip_proto`'s word: tc reads a number as hex (`get_u8(…, 16)` in f_flower.c), so a
/// protocol without a name is written `0x2f`, as tc prints it.
fn proto_word(p: Proto) -> String {
    match p.0 {
        6 | 17 | 132 | 1 | 58 => p.to_string(),
        n => format!("{n:#04x}"),
    }
}

fn port_word(r: PortRange) -> String {
    r.to_string()
}

/// The DSCP as flower's `ip_tos` value and mask: the six upper bits, ECN left alone.
const DSCP_MASK: u64 = 0xfc;

/// Protocols flower has port keys for (`flower_port_attr_type`: tcp, udp, sctp).
pub fn has_port_keys(p: Proto) -> bool {
    matches!(p.0, 6 | 17 | 132)
}

/// The match as flower keys, in the order tc needs (`ip_proto` before the ports it types).
pub fn keys_args(m: &Match) -> String {
    let mut w = Vec::new();
    if let Some(p) = m.src {
        w.push(format!("src_ip {p}"));
    }
    if let Some(p) = m.dst {
        w.push(format!("dst_ip {p}"));
    }
    if let Some(p) = m.proto {
        w.push(format!("ip_proto {}", proto_word(p)));
    }
    if let Some(r) = m.sport {
        w.push(format!("src_port {}", port_word(r)));
    }
    if let Some(r) = m.dport {
        w.push(format!("dst_port {}", port_word(r)));
    }
    if let Some(d) = m.dscp {
        w.push(format!("ip_tos {:#04x}/{DSCP_MASK:#04x}", d.value() << 2));
    }
    w.join(" ")
}

/// The mask a filter of this match has: flower keeps one hash table per mask, and a
/// `replace` must keep the mask (see the module docs).
fn mask_shape(m: &Match) -> impl Hash {
    let port = |r: Option<PortRange>| r.map(|r| r.lo != r.hi);
    (
        m.src.map(|p| p.len),
        m.dst.map(|p| p.len),
        m.proto.is_some(),
        port(m.sport),
        port(m.dport),
        m.dscp.is_some(),
    )
}

/// What the filter does, in the policy's words: `dst 10.0.0.5/32 dport 443, set dscp EF`.
pub fn summary(k: &FilterKind) -> String {
    let Some((_, m, actions)) = of(k) else {
        return String::new();
    };
    let mut parts = vec![m.to_string()];
    parts.extend(actions.iter().map(Action::to_string));
    parts.join(", ")
}

impl FilterDef for Def {
    fn read(&self, e: &Entry) -> Result<Parsed> {
        // The foreign reader gives the classid and the counters as for every classifier;
        // this kind only decides whether the filter is one of qosctl's.
        let (other, classid, stats) = super::foreign::Def.read(e)?;
        let kind = match &e.opts {
            Opts::Json(j) => own(e, j, classid).unwrap_or(other),
            // iproute2 prints flower as JSON since before the oldest version qosctl reads
            // with flower; a text dump stays foreign rather than half understood.
            Opts::Text { .. } => other,
        };
        Ok((kind, classid, stats))
    }
    fn args(&self, k: &FilterKind) -> String {
        of(k)
            .map(|(h, m, _)| format!("handle {h:#x} flower {}", keys_args(m)))
            .unwrap_or_default()
    }
    fn action_args(&self, k: &FilterKind) -> String {
        of(k).map(|(_, _, a)| actions_words(a)).unwrap_or_default()
    }
    fn del_args(&self, k: &FilterKind) -> Option<String> {
        of(k).map(|(h, _, _)| format!("handle {h:#x} flower"))
    }
    fn describe(&self, k: &FilterKind) -> String {
        format!("flower {}", summary(k))
    }
    fn columns(&self, k: &FilterKind) -> (String, String) {
        let h = of(k).map(|(h, _, _)| format!("{h:#x}")).unwrap_or_default();
        (h, summary(k))
    }
    /// The handle and the mask: what a `filter replace` can keep (not the key values, the
    /// class or the actions, which it changes in place).
    fn key(&self, k: &FilterKind) -> u64 {
        let Some((h, m, _)) = of(k) else { return 0 };
        let mut s = std::collections::hash_map::DefaultHasher::new();
        (h, mask_shape(m)).hash(&mut s);
        s.finish()
    }
    fn unique_content(&self, k: &FilterKind) -> Option<u64> {
        let (_, m, _) = of(k)?;
        let mut s = std::collections::hash_map::DefaultHasher::new();
        m.hash(&mut s);
        Some(s.finish())
    }
    fn order(&self, k: &FilterKind) -> (u32, String) {
        (of(k).map_or(0, |(h, _, _)| h), String::new())
    }
    fn fields(&self, d: &FilterKind, l: &FilterKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        if let (Some((_, dm, da)), Some((_, lm, la))) = (of(d), of(l)) {
            if dm != lm {
                push(&mut v, "match", lm.to_string(), dm.to_string());
            }
            if !same_actions(da, la) {
                push(&mut v, "actions", show_actions(la), show_actions(da));
            }
        }
        v
    }
}

/// Options of a flower filter qosctl writes or tolerates (the kernel's own flags).
const OWN_OPTIONS: [&str; 6] = [
    "handle",
    "classid",
    "keys",
    "actions",
    "not_in_hw",
    "in_hw",
];

/// The kind of a live flower filter in qosctl's shape (module docs), else `None`.
fn own(e: &Entry, j: &J, classid: Option<Handle>) -> Option<FilterKind> {
    let family = Family::from_tc_protocol(&e.protocol)?;
    let handle = u32::try_from(j.get("handle")?.as_u64()?).ok()?;
    let class = classid?;
    let shaped = e.chain == 0
        && is_tier(e.prio, family)
        && handle & 0xffff != 0
        && handle >> 16 == u32::from(class.minor)
        && j
            .members()
            .iter()
            .all(|(k, _)| OWN_OPTIONS.contains(&k.as_ref()) || k == "in_hw_count");
    if !shaped {
        return None;
    }
    let m = decode(j.get("keys")?, family)?;
    let fits = m.validate().is_ok() && m.families().contains(&family) && tier(&m, family) == e.prio;
    let actions = action::from_json(j.get("actions"));
    let ours = actions
        .iter()
        .all(|a| matches!(a, Action::SetDscp { .. } | Action::Csum));
    (fits && ours).then(|| rule(handle, m, actions))
}

/// tc's `keys` object → the match; `None` for any key or mask qosctl does not write.
pub fn decode(keys: &J, family: Family) -> Option<Match> {
    let mut m = Match::default();
    let mut tos: Option<(u64, u64)> = None;
    for (k, v) in keys.members() {
        match k.as_ref() {
            "eth_type" => {
                let want = match family {
                    Family::V4 => "ipv4",
                    Family::V6 => "ipv6",
                };
                if v.as_str()? != want {
                    return None;
                }
            }
            "src_ip" => m.src = Some(address(v, family)?),
            "dst_ip" => m.dst = Some(address(v, family)?),
            "ip_proto" => m.proto = Some(proto(v.as_str()?)?),
            "src_port" => m.sport = Some(port(v)?),
            "dst_port" => m.dport = Some(port(v)?),
            "ip_tos" => tos = Some((v.as_u64().or_else(|| v.as_hex())?, tos.map_or(0xff, |t| t.1))),
            "ip_tos_mask" => tos = Some((tos.map_or(0, |t| t.0), v.as_hex()?)),
            _ => return None,
        }
    }
    if let Some((value, mask)) = tos {
        if mask != DSCP_MASK || value & !DSCP_MASK != 0 {
            return None;
        }
        m.dscp = Some(Dscp::new(u8::try_from(value >> 2).ok()?)?);
    }
    Some(m)
}

/// `10.0.0.5` (tc leaves out a full prefix) or `10.0.0.0/24`; a non-prefix mask
/// (`10.0.0.0/255.0.255.0`) is not a match field.
fn address(v: &J, family: Family) -> Option<Prefix> {
    let p: Prefix = v.as_str()?.parse().ok()?;
    (p.family() == family).then_some(p)
}

/// tc's names (f_flower.c `flower_print_ip_proto`), else `0x2f`.
fn proto(s: &str) -> Option<Proto> {
    match s.strip_prefix("0x") {
        Some(h) => u8::from_str_radix(h, 16).ok().map(Proto),
        None => s.parse().ok().filter(|_| s.parse::<u8>().is_err()),
    }
}

/// A port (`443`) or flower's range (`{"start": 1000, "end": 2000}`).
fn port(v: &J) -> Option<PortRange> {
    let p = |j: &J| u16::try_from(j.as_u64()?).ok();
    match v {
        J::Obj(_) => Some(PortRange {
            lo: p(v.get("start")?)?,
            hi: p(v.get("end")?)?,
        })
        .filter(|r| r.lo < r.hi),
        _ => p(v).map(PortRange::one),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Match {
        s.parse().unwrap()
    }

    #[test]
    fn keys_render_by_name() {
        assert_eq!(
            keys_args(&m("dst 10.0.0.5/32 proto tcp dport 443 dscp EF")),
            "dst_ip 10.0.0.5/32 ip_proto tcp dst_port 443 ip_tos 0xb8/0xfc"
        );
        assert_eq!(
            keys_args(&m("src 2001:db8::/48 proto 47")),
            "src_ip 2001:db8::/48 ip_proto 0x2f"
        );
        assert_eq!(
            keys_args(&m("proto udp sport 1000-2000")),
            "ip_proto udp src_port 1000-2000"
        );
    }

    #[test]
    fn keys_decode_back_and_refuse_what_qosctl_does_not_write() {
        fn keys(s: &str) -> J<'_> {
            crate::tc::read::json::parse(s).unwrap()
        }
        let k = keys(
            r#"{"eth_type":"ipv4","ip_proto":"tcp","ip_tos":184,"ip_tos_mask":"fc","dst_ip":"10.0.0.5","dst_port":{"start":1000,"end":2000}}"#,
        );
        assert_eq!(
            decode(&k, Family::V4).unwrap().to_string(),
            "dst 10.0.0.5/32 proto tcp dport 1000-2000 dscp EF"
        );
        assert!(decode(&k, Family::V6).is_none());
        for bad in [
            r#"{"eth_type":"ipv4","ip_tos":184}"#,
            r#"{"eth_type":"ipv4","dst_ip":"10.0.0.0/255.0.255.0"}"#,
            r#"{"eth_type":"ipv4","ip_proto":"tcp","dst_port":443,"dst_port_mask":"fff0"}"#,
            r#"{"eth_type":"ipv4","ip_ttl":4}"#,
            r#"{"eth_type":"8902","cfm":{"mdl":5}}"#,
        ] {
            assert!(decode(&keys(bad), Family::V4).is_none(), "{bad}");
        }
        assert_eq!(
            decode(&keys(r#"{"eth_type":"ipv6","ip_proto":"0x2f"}"#), Family::V6),
            Some(m("proto 47"))
        );
    }

    #[test]
    fn an_edit_with_the_same_mask_keeps_the_key() {
        let a = rule(0x10001, m("dst 10.0.0.5/32"), vec![]);
        let b = rule(0x10001, m("dst 10.0.0.6/32"), vec![]);
        let wider = rule(0x10001, m("dst 10.0.0.0/24"), vec![]);
        assert_eq!(Def.key(&a), Def.key(&b));
        assert_ne!(Def.key(&a), Def.key(&wider));
        let f = Def.fields(&b, &a);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field, "match");
        assert_eq!(Def.del_args(&a).unwrap(), "handle 0x10001 flower");
    }
}
