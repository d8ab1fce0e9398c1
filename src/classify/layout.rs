//! A tree's `(match, class)` pairs become the u32 filter objects to create, each with a
//! priority and handle that depend only on the match itself, so the planner can key them.
//!
//! - **Priority = specificity tier.** u32 tries filters of one priority in handle order and
//!   stops at the first that matches; priorities in numeric order. qosctl puts each match in
//!   the priority of its tier, `MATCH_PRIO_BASE + 2·(MAX − specificity) + family`: more
//!   specific matches (more header bits fixed) are tried first, so `dst 10.0.0.5/32` wins
//!   over `dst 10.0.0.0/24`, and IPv4 and IPv6 never share a priority (the kernel refuses a
//!   second protocol on one priority). Equally specific overlapping matches of different
//!   classes are refused by `matcher::conflicts`: nothing would say which one wins.
//! - **Handle = hash of the keys.** A rule's node id is a hash of its canonical keys (probing
//!   on collision, the smaller key keeping the slot, like class minors): adding or removing a
//!   match adds or removes exactly its filters, and moving a match to another class keeps
//!   its handle, so that is one `filter replace` of the target. The key content is the
//!   identity because the kernel keeps a u32 filter's keys on replace (measured: `replace`
//!   of `800::5` with other keys changes the flowid, not the keys), so an edited match is
//!   always delete + add of its filters.
//! - **Hash tables.** When a tier holds `HASH_MIN` or more host addresses (dst, else src), it
//!   gets a 256-bucket table keyed on the address's last byte: a link rule in the
//!   priority's root table (`match u32 0 0 … hashkey mask 0x000000ff at OFF link T:`), and
//!   each host rule in its bucket `T:BB:`. A packet then walks one bucket (≈ N/256 rules)
//!   instead of N. The table id is the priority (below 0x800, where the kernel numbers the
//!   root tables it creates itself, so they never collide).

use std::collections::BTreeMap;

// FxHash: every key here is the policy's own data (Cargo.toml says why rustc-hash); the
// layout of 10,000 matches hashes each piece's identity and node a few times.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use thiserror::Error;

use super::matcher::{Family, Mark, Match};
use super::read::{U32Body, U32Filter, U32Handle};
use super::u32::{encode, mark_only, render_keys, Key};
use crate::model::Handle;

/// The first priority of match filters (fw filters for marks use 1).
pub const MATCH_PRIO_BASE: u16 = 0x100;
/// Highest specificity a u32 match can have (IPv6: two /128, protocol, two ports, DSCP).
const MAX_SPECIFICITY: u32 = 128 + 128 + 8 + 16 + 16 + 6;
/// Host addresses in one tier from which a hash table pays off.
pub const HASH_MIN: usize = 32;
const HASH_DIVISOR: u16 = 256;
/// Node ids are 12 bits; node 1 of a root table is the link rule.
const NODE_MAX: u16 = 0xfff;
const LINK_NODE: u16 = 1;

/// One match of the policy and the class it steers into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steer {
    pub m: Match,
    pub classid: Handle,
    /// Policy path of the class (for plans and `show`).
    pub name: String,
}

/// Where a u32 object lives: its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// A hash table `T:`.
    Table(u16),
    /// A node of the priority's own root table (numbered by the kernel: `800::N`, `801::N`).
    Root(u16),
    /// A node in a bucket of a qosctl table: `T:B:N`.
    Bucket { table: u16, bucket: u8, node: u16 },
}

impl Place {
    /// The place of a handle, read back (`800::5`) or written (`::5`: table 0 is the
    /// priority's root table, which the kernel numbers).
    pub fn of(h: U32Handle) -> Place {
        if h.bucket == 0 && h.node == 0 {
            Place::Table(h.ht)
        } else if h.ht == 0 || h.is_auto_root() {
            Place::Root(h.node)
        } else {
            Place::Bucket {
                table: h.ht,
                bucket: h.bucket,
                node: h.node,
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    HashTable {
        divisor: u16,
    },
    /// Enters table `table`, hashing the last byte of the word at `hash_off`.
    Link {
        table: u16,
        hash_off: i32,
    },
    Rule {
        keys: Vec<Key>,
        classid: Handle,
        /// The policy match this rule implements (one block of its port cover).
        m: Match,
        name: String,
    },
}

/// A u32 object to create: what the planner keys on `(parent, prio, family, place)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchFilter {
    pub parent: Handle,
    pub prio: u16,
    pub family: Family,
    pub place: Place,
    pub body: Body,
}

/// How a desired object compares with the live one at the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Same,
    /// Same keys, other class: `filter replace` with the live handle, in place.
    Retarget,
    /// Anything else: delete the live one, add the desired one.
    Recreate,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LayoutError {
    #[error("more than {max} match filters in one priority (tier {prio:#x}) outside hash tables")]
    TooManyRules { prio: u16, max: usize },
}

impl MatchFilter {
    fn handle_args(&self) -> String {
        match self.place {
            Place::Table(t) => format!("handle {t:x}:"),
            Place::Root(n) => format!("handle ::{n:x}"),
            Place::Bucket {
                table,
                bucket,
                node,
            } => format!("handle {table:x}:{bucket:x}:{node:x}"),
        }
    }

    /// The u32 options after `u32`.
    pub fn u32_args(&self) -> String {
        match &self.body {
            Body::HashTable { divisor } => format!("divisor {divisor}"),
            Body::Link { table, hash_off } => format!(
                "match u32 0 0 at {} hashkey mask 0x000000ff at {hash_off} link {table:x}:",
                hash_off
            ),
            Body::Rule { keys, classid, .. } => {
                let ht = match self.place {
                    Place::Bucket { table, bucket, .. } => format!("ht {table:x}:{bucket:x}: "),
                    _ => String::new(),
                };
                format!("{ht}{} flowid {classid}", render_keys(keys))
            }
        }
    }

    /// The `tc -batch` line that creates it.
    pub fn tc_add(&self, dev: &str) -> String {
        format!(
            "filter add dev {dev} parent {} protocol {} prio {} {} u32 {}",
            self.parent,
            self.family.tc_protocol(),
            self.prio,
            self.handle_args(),
            self.u32_args()
        )
    }

    /// Deletes the live object `live` (its handle as the kernel numbered it).
    pub fn tc_del(dev: &str, live: &U32Filter) -> String {
        format!(
            "filter del dev {dev} parent {} protocol {} prio {} handle {} u32",
            live.parent.unwrap_or(Handle::qdisc(1)),
            live.protocol,
            live.prio,
            live.handle
        )
    }

    /// Points the live rule at this rule's class (for [`Compare::Retarget`]).
    pub fn tc_retarget(&self, dev: &str, live: &U32Filter) -> String {
        format!(
            "filter replace dev {dev} parent {} protocol {} prio {} handle {} u32 {}",
            self.parent,
            self.family.tc_protocol(),
            self.prio,
            live.handle,
            self.u32_args()
        )
    }

    /// Compares with the live object at the same key. Keys compare bit for bit.
    pub fn compare(&self, live: &U32Filter) -> Compare {
        match (&self.body, &live.body) {
            (Body::HashTable { divisor }, U32Body::HashTable { divisor: d }) => {
                if u32::from(*divisor) == *d {
                    Compare::Same
                } else {
                    Compare::Recreate
                }
            }
            (
                Body::Link { table, hash_off },
                U32Body::Rule {
                    link: Some(l),
                    hash: Some((mask, off)),
                    ..
                },
            ) if l == table && *mask == 0xff && off == hash_off => Compare::Same,
            (
                Body::Rule { keys, classid, .. },
                U32Body::Rule {
                    keys: lk,
                    link: None,
                    nexthdr: false,
                    classid: lc,
                    actions,
                    ..
                },
            ) if actions.is_empty() && same_bits(keys, lk) => {
                if Some(*classid) == *lc {
                    Compare::Same
                } else {
                    Compare::Retarget
                }
            }
            _ => Compare::Recreate,
        }
    }
}

fn same_bits(a: &[Key], b: &[Key]) -> bool {
    super::u32::bits_of(a) == super::u32::bits_of(b)
}

/// The planner's key for a live u32 object.
pub fn live_key(f: &U32Filter) -> Option<(u16, Family, Place)> {
    Some((
        f.prio,
        Family::from_tc_protocol(&f.protocol)?,
        Place::of(f.handle),
    ))
}

/// What a tree's matches need: the u32 objects, in creation order (tables, links, rules),
/// and the mark-only matches, which are fw filters (see [`mark_only`]).
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub filters: Vec<MatchFilter>,
    pub marks: Vec<(Mark, Handle, String)>,
}

struct Piece<'a> {
    keys: Vec<Key>,
    m: Match,
    steer: &'a Steer,
    family: Family,
    prio: u16,
    ident: String,
}

/// Lays out the u32 filters of one qdisc (`parent`, e.g. `1:`) for `steers`.
pub fn layout(parent: Handle, steers: &[Steer]) -> Result<Layout, LayoutError> {
    layout_keeping(parent, steers, &[])
}

/// [`layout`], keeping the hash table of every tier in `hashed_live` (the live state has
/// one at that priority) as long as the tier has a host rule, whatever its count.
///
/// Why: a u32 table can only be deleted once the kernel has released its link, which it
/// does after an RCU grace period, not within one `tc -batch` (measured: `Can not delete
/// in-use filter` on the line after the link's delete). A tier that drops below
/// [`HASH_MIN`] therefore keeps its table (an almost empty table costs nothing); a tier
/// with no rules left is removed whole, tables included, with one [`tier_removal`].
pub fn layout_keeping(
    parent: Handle,
    steers: &[Steer],
    hashed_live: &[(u16, Family)],
) -> Result<Layout, LayoutError> {
    let (pieces, marks) = split(steers);
    let mut by_tier: BTreeMap<(u16, Family), Vec<&Piece>> = BTreeMap::new();
    for p in &pieces {
        by_tier.entry((p.prio, p.family)).or_default().push(p);
    }
    let mut tiers = Vec::new();
    for ((prio, family), ps) in by_tier {
        let keep = hashed_live.contains(&(prio, family));
        tiers.push(place_tier(parent, prio, family, ps, keep)?);
    }
    // Creation order: every table before any link into it, links before the rules; within
    // each, tier by tier (a stable sort of the tiers' objects, moved, not cloned).
    let mut filters: Vec<MatchFilter> = tiers.into_iter().flatten().collect();
    filters.sort_by_key(order);
    Ok(Layout { filters, marks })
}

fn order(f: &MatchFilter) -> u8 {
    match f.body {
        Body::HashTable { .. } => 0,
        Body::Link { .. } => 1,
        Body::Rule { .. } => 2,
    }
}

/// Each steer's filters (one per family and port block, duplicates dropped), and the
/// mark-only steers, which are fw filters.
fn split(steers: &[Steer]) -> (Vec<Piece<'_>>, Vec<(Mark, Handle, String)>) {
    let (mut pieces, mut marks) = (Vec::new(), Vec::new());
    let mut seen = HashSet::default();
    for s in steers {
        if let Some(mark) = mark_only(&s.m) {
            marks.push((mark, s.classid, s.name.clone()));
            continue;
        }
        for family in s.m.families() {
            let prio = tier(&s.m, family);
            for keys in encode(&s.m, family) {
                let ident = ident(&keys);
                // The same keys twice (a duplicate match) are one filter; the first class wins
                // (`conflicts` reports a duplicate that steers elsewhere).
                if !seen.insert((family, ident.clone())) {
                    continue;
                }
                let m = super::u32::decode_match(&keys, family).unwrap_or_else(|| s.m.clone());
                pieces.push(Piece {
                    keys,
                    m,
                    steer: s,
                    family,
                    prio,
                    ident,
                });
            }
        }
    }
    (pieces, marks)
}

/// A piece's identity: its keys in tc's argument form, space-separated (`match u32 0x… 0x…
/// at 16 match …`). Node handles are hashed from it, so it must stay this exact text.
fn ident(keys: &[Key]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(keys.len() * 40);
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        write!(s, "{k}").expect("a String takes any text");
    }
    s
}

/// The objects of one tier: its table and link when hashed, its rules with their nodes.
fn place_tier(
    parent: Handle,
    prio: u16,
    family: Family,
    ps: Vec<&Piece>,
    keep_table: bool,
) -> Result<Vec<MatchFilter>, LayoutError> {
    let hashed = hash_on(&ps, keep_table);
    let mut root: Vec<&Piece> = Vec::new();
    let mut buckets: BTreeMap<u8, Vec<&Piece>> = BTreeMap::new();
    for p in ps {
        match hashed.and_then(|dst| last_byte(&p.m, dst)) {
            Some(b) => buckets.entry(b).or_default().push(p),
            None => root.push(p),
        }
    }
    let mk = |place, body| MatchFilter {
        parent,
        prio,
        family,
        place,
        body,
    };
    let mut out = Vec::new();
    if let Some(dst) = hashed {
        let divisor = HASH_DIVISOR;
        out.push(mk(Place::Table(prio), Body::HashTable { divisor }));
        let hash_off = hash_word(family, dst);
        out.push(mk(
            Place::Root(LINK_NODE),
            Body::Link {
                table: prio,
                hash_off,
            },
        ));
    }
    let first = if hashed.is_some() { LINK_NODE + 1 } else { 1 };
    let nodes = assign_nodes(&root, first).ok_or(LayoutError::TooManyRules {
        prio,
        max: usize::from(NODE_MAX - first + 1),
    })?;
    for (p, n) in root.iter().zip(nodes) {
        out.push(mk(Place::Root(n), rule_body(p)));
    }
    for (bucket, ps) in buckets {
        // A bucket holds the hosts with one last byte: 4095 of them per tier and byte is far
        // beyond any policy, so a full bucket is an error, not a case to handle.
        let nodes = assign_nodes(&ps, 1).ok_or(LayoutError::TooManyRules {
            prio,
            max: usize::from(NODE_MAX),
        })?;
        for (p, node) in ps.iter().zip(nodes) {
            let place = Place::Bucket {
                table: prio,
                bucket,
                node,
            };
            out.push(mk(place, rule_body(p)));
        }
    }
    Ok(out)
}

fn rule_body(p: &Piece) -> Body {
    Body::Rule {
        keys: p.keys.clone(),
        classid: p.steer.classid,
        m: p.m.clone(),
        name: p.steer.name.clone(),
    }
}

/// One flower filter to create (`classifier = "flower"`): one match in one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowerRule {
    pub prio: u16,
    pub family: Family,
    /// See [`flower_handle`].
    pub handle: u32,
    pub m: Match,
    pub classid: Handle,
    pub name: String,
}

/// A flower filter's handle: the class's minor in the upper 16 bits, and the match's
/// ordinal (from 1) among that class's matches of the same tier and family below.
///
/// Why not a hash of the keys as for u32: flower's `filter replace` of an existing handle
/// takes the new keys (cls_flower `fl_change` with the old filter, when the mask is the
/// same), so a handle that survives an edit turns "an address changed" into one command.
/// The class and the match's place among its class's matches of one tier are what an edit
/// of an address, a port or a DSCP keeps. Handles are per priority, and a class's minor is
/// unique in its tree, so two classes never collide.
pub fn flower_handle(classid: Handle, ordinal: u16) -> u32 {
    (u32::from(classid.minor) << 16) | u32::from(ordinal)
}

/// The flower filters of a tree's matches: each match's tier priority (as u32's, so the
/// more specific match is tried first, and IPv4 and IPv6 never share a priority), one
/// filter per family. Mark-only matches are left out: they are fw filters with either
/// backend (`resolve`'s pass `emit_filters`).
///
/// No hash tables and no links: flower hashes the filters of one priority per mask itself
/// (one rhashtable lookup per distinct mask, cls_flower `fl_classify`), so a packet costs a
/// lookup per mask of a tier, however many matches the tier holds. Within one tier two
/// filters of different masks that both match a packet would be equally specific matches
/// that overlap, which `matcher::conflicts` refuses, so flower's first-matching mask is the
/// only match.
pub fn flower_layout(steers: &[Steer]) -> Result<Vec<FlowerRule>, LayoutError> {
    let mut rules = Vec::new();
    let mut seen = HashSet::default();
    let mut ordinals: HashMap<(Handle, u16, Family), u16> = HashMap::default();
    for s in steers {
        if mark_only(&s.m).is_some() {
            continue;
        }
        for family in s.m.families() {
            // The same match twice is one filter; the first class wins (`conflicts`
            // reports a duplicate that steers elsewhere).
            if !seen.insert((family, s.m.clone())) {
                continue;
            }
            let prio = tier(&s.m, family);
            let n = ordinals.entry((s.classid, prio, family)).or_insert(0);
            *n = n.checked_add(1).ok_or(LayoutError::TooManyRules {
                prio,
                max: usize::from(u16::MAX),
            })?;
            rules.push(FlowerRule {
                prio,
                family,
                handle: flower_handle(s.classid, *n),
                m: s.m.clone(),
                classid: s.classid,
                name: s.name.clone(),
            });
        }
    }
    Ok(rules)
}

/// Whether `prio` is a match tier of `family` (even for IPv4, odd for IPv6): where the
/// readers of both backends look for qosctl's match filters.
pub fn is_tier(prio: u16, family: Family) -> bool {
    let max = MATCH_PRIO_BASE + 2 * MAX_SPECIFICITY as u16 + 1;
    (MATCH_PRIO_BASE..=max).contains(&prio)
        && (prio - MATCH_PRIO_BASE) % 2 == u16::from(family == Family::V6)
}

/// The priority of a match's tier (see the module docs).
pub fn tier(m: &Match, family: Family) -> u16 {
    let spec = m.specificity().min(MAX_SPECIFICITY);
    MATCH_PRIO_BASE + 2 * (MAX_SPECIFICITY - spec) as u16 + u16::from(family == Family::V6)
}

/// Deletes a whole tier (all its rules, links and tables): one command, and the only way
/// to drop a table within one batch (see [`layout_keeping`]).
pub fn tier_removal(dev: &str, parent: Handle, prio: u16, family: Family) -> String {
    format!(
        "filter del dev {dev} parent {parent} protocol {} prio {prio}",
        family.tc_protocol()
    )
}

/// Whether a tier gets a hash table, and on which address: `Some(true)` = dst. `keep`:
/// it has one live, so any host keeps it.
fn hash_on(ps: &[&Piece], keep: bool) -> Option<bool> {
    let min = if keep { 1 } else { HASH_MIN };
    let hosts = |dst: bool| {
        ps.iter()
            .filter(|p| if dst { p.m.dst } else { p.m.src }.is_some_and(|a| a.is_host()))
            .count()
    };
    if hosts(true) >= min {
        Some(true)
    } else if hosts(false) >= min {
        Some(false)
    } else {
        None
    }
}

fn last_byte(m: &Match, dst: bool) -> Option<u8> {
    let a = if dst { m.dst } else { m.src }?;
    a.is_host().then(|| *a.octets().last().unwrap_or(&0))
}

/// The word whose last byte is the address's last byte.
fn hash_word(family: Family, dst: bool) -> i32 {
    match (family, dst) {
        (Family::V4, true) => 16,
        (Family::V4, false) => 12,
        (Family::V6, true) => 36,
        (Family::V6, false) => 20,
    }
}

/// Node ids in `first..=NODE_MAX` from the hash of each piece's keys. Round 0's slot goes to
/// the smallest key that claims it; the others probe later rounds, avoiding every round-0
/// claim, so a rule nobody collides with keeps its node whatever else is added or removed.
fn assign_nodes(ps: &[&Piece], first: u16) -> Option<Vec<u16>> {
    let span = u64::from(NODE_MAX - first + 1);
    if ps.len() as u64 > span {
        return None;
    }
    // The class minors' hash (stable across releases, unlike std's hasher).
    let node = |p: &Piece, r: u32| first + (crate::resolve::hash(&p.ident, r) % span) as u16;
    let mut owner: HashMap<u16, usize> = HashMap::default();
    for (i, p) in ps.iter().enumerate() {
        let n = node(p, 0);
        match owner.get(&n) {
            Some(&j) if ps[j].ident <= p.ident => {}
            _ => {
                owner.insert(n, i);
            }
        }
    }
    let mut out = vec![0u16; ps.len()];
    let mut taken: HashSet<u16> = HashSet::default();
    for (&n, &i) in &owner {
        out[i] = n;
        taken.insert(n);
    }
    let claimed = taken.clone();
    let mut losers: Vec<usize> = (0..ps.len())
        .filter(|i| owner.get(&out[*i]) != Some(i) || out[*i] == 0)
        .collect();
    losers.sort_by(|a, b| ps[*a].ident.cmp(&ps[*b].ident));
    for i in losers {
        let free = |n: &u16| !taken.contains(n) && !claimed.contains(n);
        let slot = (1..64)
            .map(|r| node(ps[i], r))
            .find(free)
            .or_else(|| (first..=NODE_MAX).find(free))
            .or_else(|| (first..=NODE_MAX).find(|n| !taken.contains(n)))?;
        taken.insert(slot);
        out[i] = slot;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steer(m: &str, minor: u16) -> Steer {
        Steer {
            m: m.replace('=', " ").parse().unwrap(),
            classid: Handle::new(1, minor),
            name: format!("c{minor:x}"),
        }
    }

    fn rules(l: &Layout) -> Vec<&MatchFilter> {
        l.filters
            .iter()
            .filter(|f| matches!(f.body, Body::Rule { .. }))
            .collect()
    }

    #[test]
    fn few_matches_are_plain_rules_most_specific_first() {
        let l = layout(
            Handle::qdisc(1),
            &[
                steer("dst=10.0.0.0/24", 0x10),
                steer("dst=10.0.0.5", 0x20),
                steer("proto=tcp dport=443", 0x30),
                steer("mark=0x40", 0x40),
            ],
        )
        .unwrap();
        assert_eq!(l.marks.len(), 1);
        let r = rules(&l);
        // /32 (32 bits) before /24 (24 bits); tcp/443 (24 bits) for both families.
        assert_eq!(r.len(), 4);
        let prio_of = |minor: u16, fam: Family| {
            r.iter()
                .find(|f| {
                    f.family == fam
                        && matches!(&f.body, Body::Rule { classid, .. } if classid.minor == minor)
                })
                .unwrap()
                .prio
        };
        assert!(prio_of(0x20, Family::V4) < prio_of(0x10, Family::V4));
        assert_eq!(prio_of(0x30, Family::V6), prio_of(0x30, Family::V4) + 1);
        assert!(l
            .filters
            .iter()
            .all(|f| !matches!(f.body, Body::HashTable { .. })));
        let line = r
            .iter()
            .find(|f| matches!(&f.body, Body::Rule { classid, .. } if classid.minor == 0x20))
            .unwrap()
            .tc_add("eth0");
        assert!(
            line.starts_with("filter add dev eth0 parent 1: protocol ip prio ")
                && line.ends_with(" u32 match u32 0x0a000005 0xffffffff at 16 flowid 1:20"),
            "{line}"
        );
    }

    #[test]
    fn handles_are_stable_when_others_change() {
        let base: Vec<Steer> = (0..20u16)
            .map(|i| steer(&format!("dst=10.0.{i}.0/24"), 0x10 + i))
            .collect();
        let a = layout(Handle::qdisc(1), &base).unwrap();
        let mut edited = base.clone();
        edited.remove(3);
        edited.push(steer("dst=10.9.9.0/24", 0x99));
        edited[0].classid = Handle::new(1, 0x77); // moved to another class
        let b = layout(Handle::qdisc(1), &edited).unwrap();
        let place = |l: &Layout, m: &Match| {
            rules(l)
                .into_iter()
                .find(|f| matches!(&f.body, Body::Rule { m: x, .. } if x == m))
                .map(|f| (f.prio, f.place))
        };
        for s in &base[4..] {
            assert_eq!(place(&a, &s.m), place(&b, &s.m), "{}", s.m);
        }
        assert_eq!(place(&a, &base[0].m), place(&b, &base[0].m));
        assert_eq!(rules(&b).len(), 20);
    }

    #[test]
    fn many_hosts_get_a_hash_table_on_the_last_byte() {
        let steers: Vec<Steer> = (0..1000u32)
            .map(|i| {
                let a = std::net::Ipv4Addr::from(0x0a01_0000 + i);
                steer(&format!("dst={a}"), 0x100 + i as u16)
            })
            .chain([steer("dst=10.2.0.0/16", 0x20)])
            .collect();
        let l = layout(Handle::qdisc(1), &steers).unwrap();
        let tables: Vec<_> = l
            .filters
            .iter()
            .filter(|f| matches!(f.body, Body::HashTable { .. }))
            .collect();
        assert_eq!(tables.len(), 1);
        let t = tables[0];
        assert_eq!(
            t.tc_add("a0"),
            format!(
                "filter add dev a0 parent 1: protocol ip prio {} handle {:x}: u32 divisor 256",
                t.prio, t.prio
            )
        );
        let link = l
            .filters
            .iter()
            .find(|f| matches!(f.body, Body::Link { .. }))
            .unwrap();
        assert_eq!(
            link.u32_args(),
            format!(
                "match u32 0 0 at 16 hashkey mask 0x000000ff at 16 link {:x}:",
                t.prio
            )
        );
        assert_eq!(link.place, Place::Root(1));
        // Creation order: the table, then its link, then the rules.
        assert!(matches!(l.filters[0].body, Body::HashTable { .. }));
        assert!(matches!(l.filters[1].body, Body::Link { .. }));
        // Every host sits in the bucket of its last byte; handles are unique.
        let mut seen = HashSet::default();
        let mut in_buckets = 0;
        for f in rules(&l) {
            assert!(seen.insert((f.prio, f.place)), "{:?}", f.place);
            if let (Place::Bucket { bucket, .. }, Body::Rule { m, .. }) = (f.place, &f.body) {
                assert_eq!(bucket, *m.dst.unwrap().octets().last().unwrap());
                assert!(f
                    .tc_add("a0")
                    .contains(&format!(" u32 ht {:x}:{bucket:x}: match", t.prio)));
                in_buckets += 1;
            }
        }
        assert_eq!(in_buckets, 1000);
        // The /16 is another tier: a plain rule at a later priority.
        assert_eq!(rules(&l).len(), 1001);
    }

    #[test]
    fn a_live_table_is_kept_below_the_threshold() {
        let few: Vec<Steer> = (1..=3u16)
            .map(|i| steer(&format!("dst=10.0.0.{i}"), 0x10 + i))
            .collect();
        let fresh = layout(Handle::qdisc(1), &few).unwrap();
        assert!(fresh
            .filters
            .iter()
            .all(|f| matches!(f.body, Body::Rule { .. })));
        let prio = fresh.filters[0].prio;
        let kept = layout_keeping(Handle::qdisc(1), &few, &[(prio, Family::V4)]).unwrap();
        assert!(matches!(kept.filters[0].body, Body::HashTable { .. }));
        assert!(matches!(kept.filters[1].body, Body::Link { .. }));
        assert!(rules(&kept)
            .iter()
            .all(|f| matches!(f.place, Place::Bucket { .. })));
        assert_eq!(
            tier_removal("eth0", Handle::qdisc(1), prio, Family::V4),
            format!("filter del dev eth0 parent 1: protocol ip prio {prio}")
        );
    }

    #[test]
    fn port_range_is_one_rule_per_block() {
        let l = layout(
            Handle::qdisc(1),
            &[steer("dst=10.0.0.5 proto=udp dport=16384-32767", 0x10)],
        )
        .unwrap();
        assert_eq!(rules(&l).len(), 1);
        let l = layout(
            Handle::qdisc(1),
            &[steer("dst=10.0.0.5 proto=udp dport=1000-2000", 0x10)],
        )
        .unwrap();
        assert_eq!(rules(&l).len(), 8);
    }

    #[test]
    fn compare_with_live() {
        let l = layout(Handle::qdisc(1), &[steer("dst=10.0.0.5", 0x10)]).unwrap();
        let f = &l.filters[0];
        let Body::Rule { keys, .. } = &f.body else {
            panic!()
        };
        let live = |classid: u16, keys: Vec<Key>| U32Filter {
            parent: Some(Handle::qdisc(1)),
            protocol: "ip".into(),
            prio: f.prio,
            handle: U32Handle {
                ht: 0x800,
                bucket: 0,
                node: 7,
            },
            body: U32Body::Rule {
                keys,
                nexthdr: false,
                classid: Some(Handle::new(1, classid)),
                link: None,
                hash: None,
                actions: vec![],
            },
        };
        assert_eq!(f.compare(&live(0x10, keys.clone())), Compare::Same);
        assert_eq!(f.compare(&live(0x11, keys.clone())), Compare::Retarget);
        let other = vec![Key {
            value: 0x0a00_0006,
            mask: u32::MAX,
            off: 16,
        }];
        assert_eq!(f.compare(&live(0x10, other)), Compare::Recreate);
        let lv = live(0x11, keys.clone());
        assert_eq!(
            f.tc_retarget("a0", &lv),
            format!("filter replace dev a0 parent 1: protocol ip prio {} handle 800::7 u32 match u32 0x0a000005 0xffffffff at 16 flowid 1:10", f.prio)
        );
        assert_eq!(
            MatchFilter::tc_del("a0", &lv),
            format!(
                "filter del dev a0 parent 1: protocol ip prio {} handle 800::7 u32",
                f.prio
            )
        );
    }
}

#[cfg(test)]
mod scale {
    use super::*;
    use crate::classify::matcher::Prefix;

    /// The 10,000-subscriber tree: one /32 each, hashed; every handle unique, every host in
    /// its bucket, and fast enough to be no part of the apply budget (debug build: < 2 s).
    #[test]
    fn ten_thousand_subscribers() {
        let steers: Vec<Steer> = (0..10_000u32)
            .map(|i| Steer {
                m: Match {
                    dst: Some(Prefix::from_octets(&(0x0a40_0000 + i).to_be_bytes(), 32).unwrap()),
                    ..Match::default()
                },
                classid: Handle::new(1, 2 + i as u16),
                name: format!("sub{i}"),
            })
            .collect();
        let t = std::time::Instant::now();
        let l = layout(Handle::qdisc(1), &steers).unwrap();
        let took = t.elapsed();
        assert_eq!(l.filters.len(), 10_002);
        let places: HashSet<(u16, Place)> = l.filters.iter().map(|f| (f.prio, f.place)).collect();
        assert_eq!(places.len(), 10_002);
        assert!(took.as_millis() < 2_000, "{took:?}");
        // The largest bucket: 10,000 / 256 ≈ 39 rules walked per packet, not 10,000.
        let mut per_bucket: HashMap<u8, usize> = HashMap::default();
        for f in &l.filters {
            if let Place::Bucket { bucket, .. } = f.place {
                *per_bucket.entry(bucket).or_default() += 1;
            }
        }
        assert!(per_bucket.values().all(|n| *n <= 40), "{per_bucket:?}");
    }
}
