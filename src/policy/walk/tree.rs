//! A tree and its classes. A tree is read the same way wherever it is written (directly
//! under `[interfaces.X]` for egress, under `[interfaces.X.ingress]`); the caller has
//! checked the table's keys.

use super::{at, find, Walker};
use crate::policy::node::{Key, Node, Span, Value};
use crate::policy::problem::{Place, Problem};
use crate::policy::schema::{Class, Direction, Sp, Tree, CLASS_KEYS, MAX_CLASS_DEPTH};

impl Walker {
    /// The tree keys of `entries` (others are the caller's); `key_span` is where to point
    /// at the tree as a whole.
    pub(crate) fn tree(
        &mut self,
        entries: &[(Key, Node)],
        direction: Direction,
        key_span: Span,
    ) -> Tree {
        let mut t = Tree::new(direction, key_span);
        let mut classes = None;
        for (k, n) in entries {
            match k.name.as_str() {
                "rate" => match self.rate(k, n) {
                    Some(v) => t.rate = Some(Sp { span: at(k, n), v }),
                    None => t.rate_invalid = true,
                },
                "default" => t.default = self.string(k, n).map(|v| Sp { span: at(k, n), v }),
                "leaf" => t.leaf = self.leaf(k, n),
                "netem" => t.netem = self.netem(k, n),
                "burst" => t.burst = self.size(k, n).map(|v| Sp { span: at(k, n), v }),
                "cburst" => t.cburst = self.size(k, n).map(|v| Sp { span: at(k, n), v }),
                "classes" => classes = Some((k, n)),
                _ => {}
            }
        }
        if let Some((k, n)) = classes {
            t.classes = self.classes(k, n, "", 1);
        }
        t
    }

    fn classes(&mut self, key: &Key, node: &Node, parent_path: &str, depth: usize) -> Vec<Class> {
        let Some(entries) = node.as_table() else {
            self.wrong_type(key, node, "a table of classes ([...classes.NAME])");
            return Vec::new();
        };
        if depth > MAX_CLASS_DEPTH {
            let first = entries
                .first()
                .map(|(k, _)| k.span.clone())
                .unwrap_or(key.span.clone());
            self.report(first, Problem::TooDeep);
            return Vec::new();
        }
        let mut out = Vec::with_capacity(entries.len());
        for (k, n) in entries {
            if let Some(c) = self.class(k, n, parent_path, depth) {
                out.push(c);
            }
        }
        out
    }

    fn class(&mut self, key: &Key, node: &Node, parent_path: &str, depth: usize) -> Option<Class> {
        let path = if parent_path.is_empty() {
            key.name.clone()
        } else {
            format!("{parent_path}/{}", key.name)
        };
        if key.name.is_empty() || key.name.contains('/') || key.name.chars().any(char::is_control) {
            self.report(
                key.span.clone(),
                Problem::InvalidClassName { name: &key.name },
            );
            return None;
        }
        let entries = self.table(key, node, CLASS_KEYS, Place::Class(&path))?;
        let mut c = Class {
            name: key.name.clone(),
            path,
            key_span: key.span.clone(),
            rate: None,
            ceil: None,
            burst: None,
            cburst: None,
            prio: None,
            quantum: None,
            id: None,
            marks: Vec::new(),
            leaf: None,
            netem: None,
            children: Vec::new(),
            broken: false,
            matches: Vec::new(),
            set_dscp: None,
        };
        let mut children = None;
        for (k, n) in entries {
            match k.name.as_str() {
                "rate" => {
                    c.rate = self.rate_spec(k, n).map(|v| Sp { span: at(k, n), v });
                    c.broken |= c.rate.is_none();
                }
                "ceil" => {
                    c.ceil = self.rate_spec(k, n).map(|v| Sp { span: at(k, n), v });
                    c.broken |= c.ceil.is_none();
                }
                "burst" => c.burst = self.size(k, n),
                "cburst" => c.cburst = self.size(k, n),
                "quantum" => c.quantum = self.size(k, n),
                "prio" => {
                    c.prio = self.int(k, n, 0, 7).map(|v| Sp {
                        span: at(k, n),
                        v: v as u32,
                    })
                }
                "id" => c.id = self.class_id(k, n),
                "marks" => c.marks = self.marks(k, n),
                "leaf" => c.leaf = self.leaf(k, n).map(Box::new),
                "netem" => c.netem = self.netem(k, n).map(Box::new),
                "classes" => children = Some((k, n)),
                "match" => c.matches = self.matches(k, n, &c.path),
                "set_dscp" => c.set_dscp = self.set_dscp(k, n),
                _ => {}
            }
        }
        if c.rate.is_none() && find(entries, "rate").is_none() {
            self.report(key.span.clone(), Problem::NoRate { path: &c.path });
            c.broken = true;
        }
        if let Some((k, n)) = children {
            c.children = self.classes(k, n, &c.path, depth + 1);
            if n.as_table().is_some_and(|t| !t.is_empty()) {
                self.inner_class_rules(&c.path, entries);
            }
        }
        Some(c)
    }

    /// Settings that only a leaf class can use.
    fn inner_class_rules(&mut self, path: &str, entries: &[(Key, Node)]) {
        let rules: [(&str, Problem); 6] = [
            ("netem", Problem::InnerNetem { path }),
            ("leaf", Problem::InnerLeaf { path }),
            ("marks", Problem::InnerMarks { path }),
            ("prio", Problem::InnerPrio { path }),
            ("match", Problem::InnerMatch { path }),
            ("set_dscp", Problem::InnerSetDscp { path }),
        ];
        for (key, problem) in rules {
            if let Some((k, _)) = find(entries, key) {
                self.report(k.span.clone(), problem);
            }
        }
    }

    fn class_id(&mut self, k: &Key, n: &Node) -> Option<Sp<u16>> {
        match &n.value {
            Value::Integer(i) if (2..=0xfffe).contains(i) => Some(Sp {
                span: at(k, n),
                v: *i as u16,
            }),
            Value::Integer(i) => {
                self.report(at(k, n), Problem::IdOutOfRange { value: *i });
                None
            }
            found => {
                self.report(at(k, n), Problem::IdNotInteger { found });
                None
            }
        }
    }

    fn marks(&mut self, key: &Key, node: &Node) -> Vec<Sp<u32>> {
        let items = match &node.value {
            Value::Array(a) => a,
            Value::Integer(i) => {
                self.report(at(key, node), Problem::MarksNotArray { value: *i });
                return Vec::new();
            }
            _ => {
                self.wrong_type(key, node, "an array of integers like [0x10]");
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for n in items {
            let span = n.span.clone().or_else(|| at(key, node));
            match &n.value {
                Value::Integer(0) => self.report(span, Problem::MarkZero),
                Value::Integer(i) if (1..=u32::MAX as i64).contains(i) => {
                    out.push(Sp { span, v: *i as u32 })
                }
                Value::Integer(i) => self.report(span, Problem::MarkOutOfRange { value: *i }),
                found => self.report(span, Problem::MarkNotInteger { found }),
            }
        }
        out
    }
}
