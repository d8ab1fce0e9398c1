//! The one keyed diff: two lists of the same kind of object, matched by a key, become
//! what only the desired side has (added), what only the live side has (removed) and
//! the pairs found on both (kept, maybe changed). Classes (by handle), leaf qdiscs (by
//! the class they hang on) and filters (by parent, prio and their kind's key) all go
//! through it, on whatever tree they belong to.

use std::hash::Hash;

// FxHash, not SipHash: the keys are handles, priorities and kinds' own 64-bit keys of the
// policy and of tc's output, three maps of 10,000-20,000 entries in every plan.
use rustc_hash::FxHashMap as HashMap;

/// The parts of a keyed diff. `live` holds every live entry in live order with its
/// desired counterpart (`None`: removed), so removals and re-creations come out in the
/// order they were read; `added` keeps the desired order. The plan is as stable as its
/// inputs.
pub struct Keyed<'a, T> {
    /// `(desired, live)` for every live entry.
    pub live: Vec<(Option<&'a T>, &'a T)>,
    /// Desired entries no live entry has the key of.
    pub added: Vec<&'a T>,
}

impl<'a, T> Keyed<'a, T> {
    /// Live entries the desired side does not have.
    pub fn removed(&self) -> impl Iterator<Item = &'a T> + '_ {
        self.live
            .iter()
            .filter(|(d, _)| d.is_none())
            .map(|(_, l)| *l)
    }
    /// `(desired, live)` pairs with the same key.
    pub fn both(&self) -> impl Iterator<Item = (&'a T, &'a T)> + '_ {
        self.live.iter().filter_map(|(d, l)| d.map(|d| (d, *l)))
    }
}

/// Matches `desired` and `live` by `key`. When the desired side holds one key twice, the
/// later entry is the one matched (and the earlier one is added): the resolver never
/// produces that, and it is what a map built from the list would do.
pub fn diff<'a, T, K, D, L>(desired: D, live: L, key: impl Fn(&T) -> K) -> Keyed<'a, T>
where
    K: Eq + Hash,
    D: IntoIterator<Item = &'a T>,
    L: IntoIterator<Item = &'a T>,
    T: 'a,
{
    let desired: Vec<&T> = desired.into_iter().collect();
    let index: HashMap<K, usize> = desired
        .iter()
        .enumerate()
        .map(|(i, d)| (key(d), i))
        .collect();
    let mut matched = vec![false; desired.len()];
    let live = live
        .into_iter()
        .map(|l| match index.get(&key(l)) {
            Some(&i) => {
                matched[i] = true;
                (Some(desired[i]), l)
            }
            None => (None, l),
        })
        .collect();
    let added = desired
        .into_iter()
        .zip(matched)
        .filter(|(_, m)| !m)
        .map(|(d, _)| d)
        .collect();
    Keyed { live, added }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_key_and_keeps_order() {
        let desired = [(1, "a"), (3, "c"), (2, "b")];
        let live = [(4, "x"), (2, "y"), (1, "z")];
        let k = diff(&desired, &live, |t| t.0);
        assert_eq!(k.added, [&(3, "c")]);
        assert_eq!(k.removed().collect::<Vec<_>>(), [&(4, "x")]);
        let both: Vec<(&str, &str)> = k.both().map(|(d, l)| (d.1, l.1)).collect();
        assert_eq!(both, [("b", "y"), ("a", "z")]);
    }
}
