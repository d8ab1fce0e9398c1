//! Pass `match_filters`: the tree's `[[….match]]` entries become u32 filters (or flower
//! filters, with `classifier = "flower"`: one per match and family at the same tier
//! priorities, `layout::flower_layout`) on the target's filter parent, laid out by `classify::layout` (a priority per specificity tier and
//! family, a handle per match from the hash of its keys, a hash table for tiers with many
//! host addresses), so that adding, removing or editing one match touches only its own
//! filters. A match that is only a `mark` is an fw filter, like `marks` (pass
//! `emit_filters`); a class's `set_dscp` becomes pedit (+ csum for IPv4) actions on the
//! filters of its matches.
//!
//! Checks across entries and classes: the same match steering into two classes, two
//! equally specific overlapping matches of different classes (`classify::matcher::conflicts`),
//! a tier too full for u32's node ids, `set_dscp` on a class without a u32 match.

use std::collections::HashMap;

use super::tree::Build;
use crate::classify::action::Action;
use crate::classify::layout::{self, Body as LBody, Place, Steer};
use crate::classify::matcher::Dscp;
use crate::classify::matcher::{conflicts, Conflict, Field};
use crate::classify::u32::mark_only;
use crate::classify::{Classifier, Family};
use crate::kind::filter::flower;
use crate::kind::filter::u32::{root_node, Body, U32Handle};
use crate::model::{Filter, FilterKind, Handle};
use crate::policy::diag::Diagnostic;
use crate::policy::problem::Problem;
use crate::policy::schema::MatchEntry;

impl Build<'_> {
    /// The `(entry, class)` pairs that are u32 matches (not a mark alone), in policy order.
    fn u32_entries(&self) -> Vec<(&MatchEntry, usize)> {
        let mut out = Vec::new();
        for (i, f) in self.flat.iter().enumerate() {
            for e in &f.c.matches {
                if mark_only(&e.m).is_none() {
                    out.push((e, i));
                }
            }
        }
        out
    }

    /// Pass `match_filters` (after `emit_filters`): checks, then appends the u32 filters.
    pub(super) fn match_filters(&mut self, diags: &mut Vec<Diagnostic>) {
        let entries = self.u32_entries();
        for (i, f) in self.flat.iter().enumerate() {
            if let Some(d) = &f.c.set_dscp {
                if !entries.iter().any(|(_, c)| *c == i) {
                    let p = Problem::SetDscpWithoutMatch { path: &f.c.path };
                    diags.push(p.at(d.span.clone()));
                }
            }
        }
        if entries.is_empty() {
            return;
        }
        let items: Vec<_> = entries.iter().map(|(e, i)| (e.m.clone(), *i)).collect();
        for c in conflicts(&items) {
            let (Conflict::SameMatch { first, second } | Conflict::Ambiguous { first, second }) = c;
            let (e, by) = (entries[second].0, &self.flat[entries[first].1].c.path);
            let words = e.m.to_string();
            let p = match c {
                Conflict::SameMatch { .. } => Problem::MatchTaken { words, by },
                Conflict::Ambiguous { .. } => Problem::MatchAmbiguous {
                    words,
                    other: entries[first].0.m.to_string(),
                    by,
                },
            };
            diags.push(p.at(e.span_of(Field::Entry)));
        }
        let steers: Vec<Steer> = entries
            .iter()
            .map(|(e, i)| Steer {
                m: e.m.clone(),
                classid: self.handle(*i),
                name: self.model_name(*i),
            })
            .collect();
        let dscp: HashMap<Handle, Dscp> = (0..self.flat.len())
            .filter_map(|i| Some((self.handle(i), self.flat[i].c.set_dscp.as_ref()?.v)))
            .collect();
        let actions = |c: Option<Handle>, family| {
            c.and_then(|c| dscp.get(&c))
                .map(|d| dscp_actions(family, *d))
                .unwrap_or_default()
        };
        let filters = match self.target.classifier {
            Classifier::U32 => self.u32_filters(&steers, actions),
            Classifier::Flower => self.flower_filters(&entries, &steers, actions, diags),
        };
        match filters {
            Ok(fs) => self.out.state.filters.extend(fs),
            Err(e) => {
                let error = e.to_string();
                diags.push(Problem::TooManyMatches { error }.at(self.tree.key_span.clone()));
            }
        }
    }

    /// The u32 objects of the tree's matches (`classify::layout`).
    fn u32_filters(
        &self,
        steers: &[Steer],
        actions: impl Fn(Option<Handle>, Family) -> Vec<Action>,
    ) -> Result<Vec<Filter>, layout::LayoutError> {
        let laid = layout::layout(self.target.filter_parent, steers)?;
        let mut out = Vec::new();
        for f in laid.filters {
            let (body, classid, name) = match f.body {
                LBody::HashTable { divisor } => (
                    Body::Table {
                        divisor: u32::from(divisor),
                    },
                    None,
                    None,
                ),
                LBody::Link { table, hash_off } => (Body::Link { table, hash_off }, None, None),
                LBody::Rule {
                    keys,
                    classid,
                    m,
                    name,
                } => (Body::Rule { m: Some(m), keys }, Some(classid), Some(name)),
            };
            out.push(Filter {
                parent: f.parent,
                prio: f.prio,
                protocol: f.family.tc_protocol().into(),
                kind: FilterKind::U32 {
                    handle: handle_of(f.place),
                    body,
                    actions: actions(classid, f.family),
                },
                classid,
                name,
                stats: None,
            });
        }
        Ok(out)
    }

    /// The flower filters of the tree's matches (`layout::flower_layout`). A port next to
    /// a protocol flower has no port keys for (dccp, udplite) is refused at its field.
    fn flower_filters(
        &self,
        entries: &[(&MatchEntry, usize)],
        steers: &[Steer],
        actions: impl Fn(Option<Handle>, Family) -> Vec<Action>,
        diags: &mut Vec<Diagnostic>,
    ) -> Result<Vec<Filter>, layout::LayoutError> {
        for (e, _) in entries {
            let ports = e.m.sport.is_some() || e.m.dport.is_some();
            if let Some(p) = e.m.proto.filter(|p| ports && !flower::has_port_keys(*p)) {
                let problem = Problem::FlowerPortProto {
                    proto: p.to_string(),
                };
                diags.push(problem.at(e.span_of(Field::Proto)));
            }
        }
        let rules = layout::flower_layout(steers)?;
        Ok(rules
            .into_iter()
            .map(|r| Filter {
                parent: self.target.filter_parent,
                prio: r.prio,
                protocol: r.family.tc_protocol().into(),
                kind: flower::rule(r.handle, r.m, actions(Some(r.classid), r.family)),
                classid: Some(r.classid),
                name: Some(r.name),
                stats: None,
            })
            .collect())
    }
}

/// `set_dscp`: rewrite the DS field, then (IPv4) fix the header checksum.
fn dscp_actions(family: Family, dscp: Dscp) -> Vec<Action> {
    let mut a = vec![Action::SetDscp { family, dscp }];
    if family == Family::V4 {
        a.push(Action::Csum);
    }
    a
}

fn handle_of(p: Place) -> U32Handle {
    match p {
        Place::Table(t) => U32Handle {
            ht: t,
            bucket: 0,
            node: 0,
        },
        Place::Root(n) => root_node(n),
        Place::Bucket {
            table,
            bucket,
            node,
        } => U32Handle {
            ht: table,
            bucket,
            node,
        },
    }
}
