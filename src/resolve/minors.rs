//! Passes `minors` and `marks`: each class's minor (its `id`, else the hash of its path,
//! else a probe; see the module docs of `resolve`), and each mark steering to one class.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::tree::{Build, Flat};
use super::MinorSource;
use crate::policy::diag::Diagnostic;
use crate::policy::node::Span;
use crate::policy::problem::Problem;

/// Minors a hashed class can get: 2..=0xfffe (0 is the qdisc, 1 the root class, and
/// 0xffff would make a leaf qdisc `ffff:`, the ingress handle).
const MINOR_LO: u64 = 2;
pub(super) const MINOR_COUNT: u64 = 0xfffe - 2 + 1;

/// 64-bit FNV-1a followed by a splitmix finalizer, so that similar paths (`c1`, `c2`) spread.
pub(crate) fn hash(path: &str, round: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes().chain(round.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The minor a class path hashes to (probe round 0), in 2..=0xfffe.
pub fn hashed_minor(path: &str) -> u16 {
    probe_minor(path, 0)
}

fn probe_minor(path: &str, round: u32) -> u16 {
    (MINOR_LO + hash(path, round) % MINOR_COUNT) as u16
}

impl Build<'_> {
    /// Pass `minors`: explicit ids, then hashed minors, then probes for collisions.
    pub(super) fn minors(&mut self, diags: &mut Vec<Diagnostic>) {
        let flat = &self.flat;
        let mut out = vec![(0u16, MinorSource::Hash); flat.len()];
        let mut taken = explicit_ids(flat, &mut out, diags);
        let (owner, mut losers) = hash_owners(flat);
        for (&slot, &w) in &owner {
            if let Entry::Vacant(e) = taken.entry(slot) {
                e.insert(w);
                out[w] = (slot, MinorSource::Hash);
            } else {
                losers.push(w);
            }
        }
        losers.sort_by(|a, b| flat[*a].c.path.cmp(&flat[*b].c.path));
        let claimed: HashSet<u16> = owner.keys().copied().collect();
        for i in losers {
            let path = &flat[i].c.path;
            let free = |m: u16| !taken.contains_key(&m) && !claimed.contains(&m);
            let mut slot = (1..64).map(|r| probe_minor(path, r)).find(|m| free(*m));
            if slot.is_none() {
                // A nearly full minor space: scan, first avoiding claimed minors, then
                // anything free.
                slot = (2..=0xfffeu16)
                    .find(|m| free(*m))
                    .or_else(|| (2..=0xfffeu16).find(|m| !taken.contains_key(m)));
            }
            if let Some(m) = slot {
                taken.insert(m, i);
                out[i] = (m, MinorSource::Probe);
            }
        }
        self.minors = out;
    }

    /// Pass `marks`: a mark steers to one class only.
    pub(super) fn marks(&self, diags: &mut Vec<Diagnostic>) {
        let flat = &self.flat;
        let mut seen: HashMap<u32, usize> = HashMap::new();
        for (i, f) in flat.iter().enumerate() {
            for (mark, span) in class_marks(f.c) {
                if let Some(&j) = seen.get(&mark) {
                    let by = (j != i).then(|| flat[j].c.path.as_str());
                    diags.push(Problem::MarkTaken { mark, by }.at(span));
                } else {
                    seen.insert(mark, i);
                }
            }
        }
    }
}

/// A class's marks: `marks = [...]`, then its match entries that are only a `mark` (marks
/// and matches are one concept; both become fw filters).
pub(super) fn class_marks(c: &crate::policy::schema::Class) -> Vec<(u32, Span)> {
    let mut out: Vec<(u32, Span)> = c.marks.iter().map(|m| (m.v, m.span.clone())).collect();
    for e in &c.matches {
        if let Some(m) = crate::classify::u32::mark_only(&e.m) {
            out.push((m.value, e.span_of(crate::classify::matcher::Field::Mark)));
        }
    }
    out
}

/// The minors `id` pins (each to its first class; a second one is reported).
fn explicit_ids(
    flat: &[Flat],
    out: &mut [(u16, MinorSource)],
    diags: &mut Vec<Diagnostic>,
) -> HashMap<u16, usize> {
    let mut taken: HashMap<u16, usize> = HashMap::with_capacity(flat.len());
    for (i, f) in flat.iter().enumerate() {
        if let Some(id) = &f.c.id {
            if let Some(&j) = taken.get(&id.v) {
                let p = Problem::IdTaken {
                    id: id.v,
                    by: &flat[j].c.path,
                };
                diags.push(p.at(id.span.clone()));
            } else {
                taken.insert(id.v, i);
            }
            out[i] = (id.v, MinorSource::Id);
        }
    }
    taken
}

/// Each hashed minor goes to the smallest path that claims it; the others must probe.
fn hash_owners(flat: &[Flat]) -> (HashMap<u16, usize>, Vec<usize>) {
    let mut owner: HashMap<u16, usize> = HashMap::with_capacity(flat.len());
    let mut losers = Vec::new();
    for (i, f) in flat.iter().enumerate() {
        if f.c.id.is_some() {
            continue;
        }
        match owner.entry(hashed_minor(&f.c.path)) {
            Entry::Vacant(e) => {
                e.insert(i);
            }
            Entry::Occupied(mut e) => {
                let j = *e.get();
                if f.c.path < flat[j].c.path {
                    e.insert(i);
                    losers.push(j);
                } else {
                    losers.push(i);
                }
            }
        }
    }
    (owner, losers)
}
