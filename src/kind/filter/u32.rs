//! `u32`: qosctl's own u32 objects. Three shapes, all in one priority's classifier:
//!
//! - a **rule**: keys (`match u32 VALUE MASK at OFF`, AND), a target class (the caller's
//!   `classid`) and actions; its keys decode into the policy's [`Match`]
//!   (`dst 10.0.0.5/32 proto tcp dport 443`), or stay raw keys where they do not;
//! - a **hash table** `T:` (`divisor 256`) and the **link** rule that enters it, for tiers
//!   with many host addresses (see `classify::layout`);
//! - an **action filter**: a match-all rule with actions and no class (the ingress
//!   redirect to an ifb, a policer), built with [`match_all`].
//!
//! **Which u32 filters are qosctl's.** The reader gives this kind only to the shapes qosctl
//! writes; any other u32 filter is read by `foreign.rs` into `FilterKind::Other` and
//! handled as before (shown, refused without `--force`, removed with its priority):
//!
//! - a rule at a match priority (`0x100 + 2·n + family`, [`layout::MATCH_PRIO_BASE`] up to
//!   [`MATCH_PRIO_MAX`], even for IPv4, odd for IPv6), in the priority's root table or in a
//!   bucket of qosctl's table `prio:`, whose keys are exactly qosctl's encoding of a match
//!   (`Decoded::canonical`), with actions qosctl writes;
//! - a table `prio:` below `800:` (the kernel numbers its own root tables from `800:`) at a
//!   match priority, and the link into it at node 1 of the root table; and the kernel's
//!   empty root table of a match priority whose last rule was deleted;
//! - a match-all rule at node 1 of a root table (`handle ::1`, [`ACTION_NODE`]) with at least
//!   one action and only actions qosctl writes, at any priority. (tc numbers a filter given
//!   no handle `800::800`, so a hand-made one is never at node 1 unless asked for.)
//!
//! **Handles.** A rule in a root table is written `handle ::N` (`ht` 0 here: the kernel
//! numbers the root table of each priority itself, `800:`, `801:`, … in creation order) and
//! read back as `80x::N`; the key of the keyed diff is the node's place, not the table
//! number, and a change in place (`filter replace`: new class or actions; the kernel keeps
//! a u32 filter's keys on replace) is addressed with the live handle ([`FilterDef::in_place_of`]).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use anyhow::Result;
use serde::Serialize;

use super::{FilterDef, FilterKind};
use crate::classify::action::Action;
use crate::classify::layout::{is_tier, Place, MATCH_PRIO_BASE};
use crate::classify::read::{self as u32read, U32Body};
use crate::classify::matcher::PortRange;
use crate::classify::u32::{bits_of, coalesce, decode, render_keys, Key};
use crate::classify::{Family, Match};
use crate::model::{Filter, Handle, Stats};
use crate::plan::fields::push;
use crate::plan::FieldDiff;
use crate::tc::read::filter::{Entry, Parsed};

pub use crate::classify::read::U32Handle;

pub struct Def;

/// The node of a root table that holds an action filter (and a tier's hash link).
pub const ACTION_NODE: u16 = 1;
/// The highest match priority `classify::layout::tier` gives (IPv6, least specific).
pub const MATCH_PRIO_MAX: u16 = MATCH_PRIO_BASE + 2 * 302 + 1;

/// What one u32 object is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "object", rename_all = "snake_case")]
pub enum Body {
    /// A hash table `T:` of `divisor` buckets (its handle is `T:`).
    Table { divisor: u32 },
    /// The rule that enters table `table`, hashing the last byte of the 32-bit word at
    /// `hash_off` (`match u32 0 0 at OFF hashkey mask 0x000000ff at OFF link T:`).
    Link { table: u16, hash_off: i32 },
    /// A rule: its keys (AND), and what they say in the policy's words where they decode
    /// (`None`: raw keys, shown as `match VALUE/MASK at OFF`). No keys: every packet.
    Rule {
        #[serde(rename = "match")]
        m: Option<Match>,
        keys: Vec<Key>,
    },
}

/// A rule at `handle` steering by `m` (one filter: one block of its port cover, see
/// `classify::u32::encode`), with `keys` its encoding.
pub fn rule(handle: U32Handle, m: Match, keys: Vec<Key>, actions: Vec<Action>) -> FilterKind {
    FilterKind::U32 {
        handle,
        body: Body::Rule { m: Some(m), keys },
        actions,
    }
}

/// A match-all filter with `actions` (no class): `u32 match u32 0 0 at 0 action …`, at
/// `handle ::1` of its priority's root table. The ingress redirect to an ifb
/// (`[RestoreMark, redirect_to(ifb)]`) and a policer (`[Police(..)]`) are this.
pub fn match_all(actions: Vec<Action>) -> FilterKind {
    rule(root_node(ACTION_NODE), Match::default(), Vec::new(), actions)
}

/// `::N`: node N of the priority's root table, whose number the kernel picks.
pub fn root_node(node: u16) -> U32Handle {
    U32Handle {
        ht: 0,
        bucket: 0,
        node,
    }
}

fn of(k: &FilterKind) -> Option<(&U32Handle, &Body, &[Action])> {
    match k {
        FilterKind::U32 {
            handle,
            body,
            actions,
        } => Some((handle, body, actions)),
        _ => None,
    }
}

/// Where a handle sits, whatever number the kernel gave the priority's root table.
pub fn place(h: &U32Handle) -> Place {
    Place::of(*h)
}

/// The handle as tc takes it to find a live filter (delete, replace): `800::5` as read, `::5`
/// for a desired root node (`ht` 0) whose table the kernel numbered.
fn handle_words(h: &U32Handle) -> String {
    if h.ht == 0 {
        format!("::{:x}", h.node)
    } else {
        h.to_string()
    }
}

/// The handle as tc takes it to create a filter: a root-table node is always `::5`, also
/// when it was read as `801::5`, since the root table of a re-created priority gets another
/// number (`filter add … handle 801::5` into root table `805:` is refused: a rollback
/// re-creates filters read before the apply).
fn add_handle(h: &U32Handle) -> String {
    match place(h) {
        Place::Root(n) => format!("::{n:x}"),
        _ => h.to_string(),
    }
}

/// tc's u32 arguments with the handle written as `handle`.
fn u32_args(handle: &str, h: &U32Handle, body: &Body) -> String {
    match body {
        Body::Table { divisor } => format!("handle {handle} u32 divisor {divisor}"),
        Body::Link { table, hash_off } => format!(
            "handle {handle} u32 match u32 0 0 at {hash_off} hashkey mask 0x000000ff at {hash_off} link {table:x}:"
        ),
        Body::Rule { keys, .. } => {
            let ht = match place(h) {
                Place::Bucket { table, bucket, .. } => format!("ht {table:x}:{bucket:x}: "),
                _ => String::new(),
            };
            format!("handle {handle} u32 {ht}{}", render_keys(keys))
        }
    }
}

/// The match in the policy's words (`all` for every packet), or the raw keys.
fn match_words(m: &Option<Match>, keys: &[Key]) -> String {
    match m {
        Some(m) => m.to_string(),
        None => keys
            .iter()
            .map(|k| format!("match {:08x}/{:08x} at {}", k.value, k.mask, k.off))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// What the object does, in the policy's words: `dst 10.0.0.5/32 dport 443`,
/// `all, redirect to ifb-eth0`, `hash table 100: (256 buckets)`.
pub fn summary(k: &FilterKind) -> String {
    let Some((_, body, actions)) = of(k) else {
        return String::new();
    };
    let mut parts = vec![match body {
        Body::Table { divisor } => {
            return format!("hash table ({divisor} buckets)");
        }
        Body::Link { table, hash_off } => {
            let which = match hash_off {
                16 | 36 => "dst",
                12 | 20 => "src",
                _ => "word",
            };
            format!("hash on {which} last byte into table {table:x}:")
        }
        Body::Rule { m, keys } => match_words(m, keys),
    }];
    parts.extend(actions.iter().map(Action::to_string));
    parts.join(", ")
}


pub(super) fn actions_words(a: &[Action]) -> String {
    a.iter().map(Action::tc_args).collect::<Vec<_>>().join(" ")
}

impl FilterDef for Def {
    fn read(&self, e: &Entry) -> Result<Parsed> {
        // The classid and counters are read the same way for every u32 filter; only a
        // filter that is not qosctl's needs the foreign reader's summary (building it for
        // each of 10,000 own rules was a fifth of reading them).
        match u32read::from_entry(e).ok().and_then(|f| own(&f)) {
            Some(kind) => {
                let (classid, stats) = super::foreign::target_and_stats(&e.opts);
                Ok((kind, classid, stats))
            }
            None => super::foreign::Def.read(e),
        }
    }
    fn args(&self, k: &FilterKind) -> String {
        of(k)
            .map(|(h, body, _)| u32_args(&add_handle(h), h, body))
            .unwrap_or_default()
    }
    /// `filter replace` finds the live filter by its full handle (`801::5`, see
    /// `in_place_of`); `::5` would name no table and be refused.
    fn change_args(&self, k: &FilterKind) -> String {
        of(k)
            .map(|(h, body, _)| u32_args(&handle_words(h), h, body))
            .unwrap_or_default()
    }
    fn action_args(&self, k: &FilterKind) -> String {
        of(k).map(|(_, _, a)| actions_words(a)).unwrap_or_default()
    }
    fn del_args(&self, k: &FilterKind) -> Option<String> {
        of(k).map(|(h, _, _)| format!("handle {} u32", handle_words(h)))
    }
    fn describe(&self, k: &FilterKind) -> String {
        format!("u32 {}", summary(k))
    }
    fn columns(&self, k: &FilterKind) -> (String, String) {
        let h = of(k).map(|(h, _, _)| handle_words(h)).unwrap_or_default();
        (h, summary(k))
    }
    /// The place and what the object matches (not its class or actions: those change in
    /// place with `filter replace`, which keeps a u32 filter's keys).
    fn key(&self, k: &FilterKind) -> u64 {
        let Some((h, body, _)) = of(k) else {
            return 0;
        };
        let mut s = std::collections::hash_map::DefaultHasher::new();
        place(h).hash(&mut s);
        match body {
            Body::Table { divisor } => (0u8, *divisor).hash(&mut s),
            Body::Link { table, hash_off } => (1u8, *table, *hash_off).hash(&mut s),
            Body::Rule { keys, .. } => (2u8, bits_of(keys)).hash(&mut s),
        }
        s.finish()
    }
    fn order(&self, k: &FilterKind) -> (u32, String) {
        let Some((h, _, _)) = of(k) else {
            return (0, String::new());
        };
        let n = match place(h) {
            Place::Table(_) => 0,
            Place::Root(n) => u32::from(n),
            Place::Bucket { bucket, node, .. } => 0x1000 + (u32::from(bucket) << 12) + u32::from(node),
        };
        (n, String::new())
    }
    fn fields(&self, d: &FilterKind, l: &FilterKind) -> Vec<FieldDiff> {
        let mut v = Vec::new();
        if let (Some((_, _, da)), Some((_, _, la))) = (of(d), of(l)) {
            if !same_actions(da, la) {
                push(&mut v, "actions", show_actions(la), show_actions(da));
            }
        }
        v
    }
    fn in_place_of(&self, d: &FilterKind, l: &FilterKind) -> FilterKind {
        match (d, of(l)) {
            (FilterKind::U32 { body, actions, .. }, Some((lh, _, _))) => FilterKind::U32 {
                handle: *lh,
                body: body.clone(),
                actions: actions.clone(),
            },
            _ => d.clone(),
        }
    }
    fn whole_prio(&self) -> bool {
        true
    }
    fn pins_prio(&self, k: &FilterKind) -> bool {
        matches!(of(k), Some((_, Body::Table { .. }, _)))
    }
}

pub(super) fn show_actions(a: &[Action]) -> String {
    if a.is_empty() {
        "none".into()
    } else {
        a.iter()
            .map(Action::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Actions compare by what they do. A policer read from JSON carries no numbers (tc prints
/// them as text only), so its rate and burst count only where both sides have them.
pub(super) fn same_actions(d: &[Action], l: &[Action]) -> bool {
    d.len() == l.len()
        && d.iter().zip(l).all(|(d, l)| match (d, l) {
            (Action::Police(d), Action::Police(l)) => {
                (d.exceed, d.conform) == (l.exceed, l.conform)
                    && (l.rate.0 == 0 || crate::plan::fields::rate_eq(d.rate, l.rate, true))
                    && (l.burst.0 == 0 || crate::plan::fields::size_close(d.burst, l.burst))
            }
            _ => d == l,
        })
}

/// The kind of a live u32 object when it is in qosctl's shape (see the module docs), else
/// `None` (it stays foreign).
fn own(f: &u32read::U32Filter) -> Option<FilterKind> {
    let (prio, h) = (f.prio, f.handle);
    let family = Family::from_tc_protocol(&f.protocol);
    let match_prio = family.is_some_and(|fam| is_tier(prio, fam));
    let body = match &f.body {
        U32Body::HashTable { divisor } => {
            // qosctl's table `prio:`, or the kernel's root table of a match priority (the
            // reader keeps one only when nothing else is left at its priority: then it is
            // what deleting the last rule left behind, and the planner deletes the prio).
            let ok = match_prio
                && place(&h) == Place::Table(if h.is_auto_root() { h.ht } else { prio })
                && (!h.is_auto_root() || *divisor == 1);
            return ok.then(|| FilterKind::U32 {
                handle: h,
                body: Body::Table { divisor: *divisor },
                actions: Vec::new(),
            });
        }
        U32Body::Rule {
            keys,
            nexthdr: false,
            classid,
            link,
            hash,
            actions,
        } => {
            if actions.iter().any(|a| matches!(a, Action::Other { .. })) {
                return None;
            }
            let all = keys.iter().all(|k| k.mask == 0);
            if let Some(table) = *link {
                let (mask, hash_off) = (*hash)?;
                let ok = match_prio
                    && table == prio
                    && mask == 0xff
                    && all
                    && place(&h) == Place::Root(ACTION_NODE)
                    && actions.is_empty()
                    && classid.is_none();
                return ok.then(|| FilterKind::U32 {
                    handle: h,
                    body: Body::Link { table, hash_off },
                    actions: Vec::new(),
                });
            }
            if all {
                // Match-all: an action filter.
                let ok = !actions.is_empty()
                    && classid.is_none()
                    && place(&h) == Place::Root(ACTION_NODE);
                if !ok {
                    return None;
                }
                Body::Rule {
                    m: Some(Match::default()),
                    keys: Vec::new(),
                }
            } else {
                let d = decode(keys, family?)?;
                // Any node of the root table (an unhashed tier's rules start at node 1).
                let placed = match place(&h) {
                    Place::Root(_) => true,
                    Place::Bucket { table, .. } => table == prio,
                    Place::Table(_) => false,
                };
                if !(d.canonical && match_prio && placed) {
                    return None;
                }
                Body::Rule {
                    m: Some(d.m),
                    keys: keys.clone(),
                }
            }
        }
        U32Body::Rule { .. } => return None,
    };
    let actions = match &f.body {
        U32Body::Rule { actions, .. } => actions.clone(),
        U32Body::HashTable { .. } => Vec::new(),
    };
    Some(FilterKind::U32 {
        handle: h,
        body,
        actions,
    })
}

/// The filters as `show` lists them: the port blocks of one match (a u32 filter each, see
/// `classify::u32::encode`) folded back into one row with the match's range
/// (`dport 16384-32767`), its first block's handle and the blocks' counters summed.
pub fn fold_blocks(fs: &[Filter]) -> Vec<Filter> {
    let bare = |m: &Match| Match {
        sport: None,
        dport: None,
        ..m.clone()
    };
    let rule_match = |f: &Filter| match &f.kind {
        FilterKind::U32 {
            body: Body::Rule { m: Some(m), .. },
            ..
        } if m.sport.is_some() || m.dport.is_some() => Some(m.clone()),
        _ => None,
    };
    type Group = (Handle, u16, String, Option<Handle>, String, Match);
    let group_of = |f: &Filter, m: &Match| -> Group {
        let actions = of(&f.kind).map(|(_, _, a)| actions_words(a)).unwrap_or_default();
        (f.parent, f.prio, f.protocol.clone(), f.classid, actions, bare(m))
    };
    let mut groups: BTreeMap<Group, Vec<usize>> = BTreeMap::new();
    for (i, f) in fs.iter().enumerate() {
        if let Some(m) = rule_match(f) {
            groups.entry(group_of(f, &m)).or_default().push(i);
        }
    }
    let within = |r: Option<PortRange>, big: Option<PortRange>| match (r, big) {
        (Some(r), Some(b)) => b.lo <= r.lo && r.hi <= b.hi,
        (None, None) => true,
        _ => false,
    };
    // For each member: Some(folded filter) at the first block of its range, None after.
    let mut slot: Vec<Option<Option<Filter>>> = vec![None; fs.len()];
    for members in groups.values().filter(|m| m.len() > 1) {
        let ms: Vec<Match> = members.iter().filter_map(|&i| rule_match(&fs[i])).collect();
        for big in coalesce(ms) {
            let mine: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| {
                    rule_match(&fs[i]).is_some_and(|m| {
                        within(m.sport, big.sport) && within(m.dport, big.dport)
                    })
                })
                .collect();
            let Some(&first) = mine.first() else { continue };
            let mut f = fs[first].clone();
            if let FilterKind::U32 {
                body: Body::Rule { m, .. },
                ..
            } = &mut f.kind
            {
                *m = Some(big.clone());
            }
            f.stats = sum_stats(mine.iter().map(|&i| &fs[i]));
            slot[first] = Some(Some(f));
            for &i in &mine[1..] {
                slot[i] = Some(None);
            }
        }
    }
    fs.iter()
        .zip(slot)
        .filter_map(|(f, s)| match s {
            None => Some(f.clone()),
            Some(folded) => folded,
        })
        .collect()
}

fn sum_stats<'a>(fs: impl Iterator<Item = &'a Filter>) -> Option<Stats> {
    let mut out: Option<Stats> = None;
    for s in fs.filter_map(|f| f.stats.as_ref()) {
        let o = out.get_or_insert_with(Stats::default);
        o.bytes += s.bytes;
        o.packets += s.packets;
        o.drops += s.drops;
        o.overlimits += s.overlimits;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::action::{Police, Restore};
    use crate::units::{Rate, Size};

    fn filter(kind: FilterKind, prio: u16, protocol: &str, classid: Option<&str>) -> Filter {
        Filter {
            parent: Handle::qdisc(1),
            prio,
            protocol: protocol.into(),
            kind,
            classid: classid.and_then(Handle::parse),
            name: None,
            stats: None,
        }
    }

    #[test]
    fn action_filters_render_with_their_actions_after_the_class() {
        let redirect = match_all(vec![
            Action::RestoreMark {
                how: Restore::Ctinfo { mask: 0xff },
                zone: 0,
            },
            Action::redirect_to("ifb-eth0"),
        ]);
        let mut f = filter(redirect, 1, "all", None);
        f.parent = Handle::INGRESS;
        assert_eq!(
            crate::tc::render::filter_add("eth0", &f),
            "filter add dev eth0 parent ffff: protocol all prio 1 handle ::1 u32 match u32 0 0 at 0 \
             action ctinfo cpmark 0xff zone 0 pipe action mirred egress redirect dev ifb-eth0"
        );
        assert_eq!(
            super::super::describe(&f.kind),
            "u32 all, restore conntrack mark 0xff, redirect to ifb-eth0"
        );
        let police = match_all(vec![Action::Police(Police::drop_above(
            Rate(8_000_000),
            Size(100_000),
        ))]);
        assert_eq!(
            super::super::args(&police) + " " + &Def.action_args(&police),
            "handle ::1 u32 match u32 0 0 at 0 \
             action police rate 8000000bit burst 100000 mtu 65535 conform-exceed drop/ok"
        );
    }

    #[test]
    fn rules_tables_and_links() {
        let m: Match = "dst 10.0.0.5/32 proto tcp dport 443".parse().unwrap();
        let keys = crate::classify::u32::encode(&m, Family::V4).remove(0);
        let r = filter(rule(root_node(0x2a), m, keys, vec![]), 0x120, "ip", Some("1:10"));
        assert_eq!(
            crate::tc::render::filter_add("d", &r),
            "filter add dev d parent 1: protocol ip prio 288 handle ::2a u32 \
             match u32 0x05000000 0x0f000000 at 0 match u32 0x00000000 0x00001fff at 4 \
             match u32 0x00060000 0x00ff0000 at 8 match u32 0x0a000005 0xffffffff at 16 match u32 0x000001bb 0x0000ffff at 20 \
             classid 1:10"
        );
        assert_eq!(
            super::super::columns(&r.kind),
            ("::2a".into(), "dst 10.0.0.5/32 proto tcp dport 443".into())
        );
        let bucket = U32Handle {
            ht: 0x120,
            bucket: 5,
            node: 3,
        };
        let m: Match = "dst 10.0.0.5/32".parse().unwrap();
        let keys = crate::classify::u32::encode(&m, Family::V4).remove(0);
        let b = rule(bucket, m, keys, vec![]);
        assert!(super::super::args(&b).starts_with("handle 120:5:3 u32 ht 120:5: match u32"));
        let table = FilterKind::U32 {
            handle: U32Handle {
                ht: 0x120,
                bucket: 0,
                node: 0,
            },
            body: Body::Table { divisor: 256 },
            actions: vec![],
        };
        assert_eq!(super::super::args(&table), "handle 120: u32 divisor 256");
        let link = FilterKind::U32 {
            handle: root_node(1),
            body: Body::Link {
                table: 0x120,
                hash_off: 16,
            },
            actions: vec![],
        };
        assert_eq!(
            super::super::args(&link),
            "handle ::1 u32 match u32 0 0 at 16 hashkey mask 0x000000ff at 16 link 120:"
        );
        assert_eq!(summary(&link), "hash on dst last byte into table 120:");
        // The key is the place and the content: the kernel's root table number is not.
        let live = FilterKind::U32 {
            handle: U32Handle {
                ht: 0x801,
                bucket: 0,
                node: 1,
            },
            body: Body::Link {
                table: 0x120,
                hash_off: 16,
            },
            actions: vec![],
        };
        assert_eq!(Def.key(&link), Def.key(&live));
        assert_eq!(
            Def.del_args(&Def.in_place_of(&link, &live)).unwrap(),
            "handle 801::1 u32"
        );
    }
}
