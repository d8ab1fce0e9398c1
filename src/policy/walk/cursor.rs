//! Tables and their keys: every key not allowed is reported, with a "did you mean".

use super::{at, Walker};
use crate::policy::diag::did_you_mean;
use crate::policy::node::{Key, Node};
use crate::policy::problem::{Place, Problem};

impl Walker {
    pub(crate) fn wrong_type(&mut self, key: &Key, node: &Node, expected: &str) {
        let found = &node.value;
        self.report(
            at(key, node),
            Problem::WrongType {
                key: &key.name,
                expected,
                found,
            },
        );
    }

    /// The entries of a table, after reporting keys not in `allowed`; `place` is how the
    /// messages name the table.
    pub fn table<'n>(
        &mut self,
        key: &Key,
        node: &'n Node,
        allowed: &[&str],
        place: Place<'_>,
    ) -> Option<&'n [(Key, Node)]> {
        let Some(entries) = node.as_table() else {
            self.wrong_type(key, node, "a table");
            return None;
        };
        for (k, v) in entries {
            if allowed.contains(&k.name.as_str()) {
                continue;
            }
            if allowed.contains(&"classes")
                && v.as_table().is_some()
                && did_you_mean(&k.name, allowed).is_none()
            {
                // `[interfaces.wan.voice]`: a class written without `classes.`.
                let p = Problem::ClassWithoutClasses {
                    key: &k.name,
                    place,
                };
                self.report(k.span.clone(), p);
            } else {
                self.unknown_key(k, allowed, place);
            }
        }
        Some(entries)
    }

    pub(crate) fn unknown_key(&mut self, k: &Key, allowed: &[&str], place: Place<'_>) {
        self.report(
            k.span.clone(),
            Problem::UnknownKey {
                key: &k.name,
                place,
                allowed,
            },
        );
    }

    /// Reports option keys not in `allowed` (nor `kind`); returns the known ones.
    pub(crate) fn known<'e>(
        &mut self,
        opts: &[&'e (Key, Node)],
        allowed: &[&str],
        place: Place<'_>,
    ) -> Vec<(&'e Key, &'e Node)> {
        let mut out = Vec::new();
        for (k, n) in opts.iter().map(|e| (&e.0, &e.1)) {
            if allowed.contains(&k.name.as_str()) {
                out.push((k, n));
            } else {
                let mut with_kind: Vec<&str> = allowed.to_vec();
                with_kind.push("kind");
                self.unknown_key(k, &with_kind, place);
            }
        }
        out
    }
}
