//! `[[interfaces.X.classes.Y.match]]` entries and a class's `set_dscp`. Each field is read
//! by classify's own `FromStr` (`src/classify/matcher.rs`), and the entry is checked by
//! `Match::validate`; every problem points at the field it is about. Rules across entries
//! and classes (the same match steering into two classes) are the builder's
//! (`resolve/matches.rs`).

use std::str::FromStr;

use super::{at, Walker};
use crate::classify::matcher::{Dscp, Field, Match};
use crate::classify::MatchError;
use crate::policy::node::{Key, Node, Value};
use crate::policy::problem::{Place, Problem};
use crate::policy::schema::{MatchEntry, Sp, MATCH_KEYS};

impl Walker {
    /// The entries of a class's `match`: an array of tables (`[[….match]]`), or one table.
    pub(crate) fn matches(&mut self, key: &Key, node: &Node, path: &str) -> Vec<MatchEntry> {
        let tables: Vec<&Node> = match &node.value {
            Value::Array(items) => items.iter().collect(),
            Value::Table(_) => vec![node],
            _ => {
                self.wrong_type(key, node, "match tables ([[….match]] entries)");
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(tables.len());
        for n in tables {
            if let Some(e) = self.match_entry(key, n, path) {
                out.push(e);
            }
        }
        out
    }

    fn match_entry(&mut self, key: &Key, node: &Node, path: &str) -> Option<MatchEntry> {
        if node.as_table().is_none() {
            self.wrong_type(key, node, "a match table with src, dst, proto, …");
            return None;
        }
        let entries = self.table(key, node, MATCH_KEYS, Place::Match(path))?;
        let mut e = MatchEntry {
            m: Match::default(),
            span: at(key, node),
            fields: Vec::new(),
        };
        let mut ok = true;
        for (k, n) in entries {
            let field = match k.name.as_str() {
                "src" => Field::Src,
                "dst" => Field::Dst,
                "proto" => Field::Proto,
                "sport" => Field::Sport,
                "dport" => Field::Dport,
                "dscp" => Field::Dscp,
                "mark" => Field::Mark,
                _ => continue,
            };
            e.fields.push((field, at(k, n)));
            let m = &mut e.m;
            let read = match field {
                Field::Src => self.field(k, n, false, &mut m.src),
                Field::Dst => self.field(k, n, false, &mut m.dst),
                Field::Proto => self.field(k, n, true, &mut m.proto),
                Field::Sport => self.field(k, n, true, &mut m.sport),
                Field::Dport => self.field(k, n, true, &mut m.dport),
                Field::Dscp => self.field(k, n, true, &mut m.dscp),
                Field::Mark => self.field(k, n, true, &mut m.mark),
                Field::Entry => true,
            };
            ok &= read;
        }
        if !ok || e.fields.len() < entries.len() {
            // A field did not read (or is unknown): the combination rules would only guess.
            return None;
        }
        if let Err(errs) = e.m.validate() {
            for fe in errs {
                self.report(e.span_of(fe.field), Problem::Match(fe.error));
            }
            return None;
        }
        if e.m.mark.is_some_and(|m| m.mask != u32::MAX) {
            self.report(e.span_of(Field::Mark), Problem::MarkMask);
            return None;
        }
        if e.m.mark.is_some_and(|m| m.value == 0) {
            self.report(e.span_of(Field::Mark), Problem::MarkZero);
            return None;
        }
        Some(e)
    }

    /// One field: a string (or, where `int` allows, an integer) read by its `FromStr`.
    fn field<T: FromStr<Err = MatchError>>(
        &mut self,
        k: &Key,
        n: &Node,
        int: bool,
        slot: &mut Option<T>,
    ) -> bool {
        let text = match &n.value {
            Value::String(s) => s.clone(),
            Value::Integer(i) if int => i.to_string(),
            _ => {
                let expected = if int {
                    "a string or an integer"
                } else {
                    "a string like \"10.0.0.5\" or \"10.0.0.0/24\""
                };
                self.wrong_type(k, n, expected);
                return false;
            }
        };
        match text.parse::<T>() {
            Ok(v) => {
                *slot = Some(v);
                true
            }
            Err(e) => {
                self.report(at(k, n), Problem::Match(e));
                false
            }
        }
    }

    /// `set_dscp = "EF"` (or 0-63).
    pub(crate) fn set_dscp(&mut self, k: &Key, n: &Node) -> Option<Sp<Dscp>> {
        let mut slot = None;
        self.field(k, n, true, &mut slot)
            .then(|| slot.map(|v| Sp { span: at(k, n), v }))
            .flatten()
    }
}
