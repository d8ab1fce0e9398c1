//! The policy schema: walks the spanned TOML tree into typed, locally valid policy types,
//! collecting every problem (unknown keys, wrong types, bad units, out-of-range numbers,
//! misplaced sections) instead of stopping at the first.
//!
//! Rules that need resolved numbers (rate sums, ceilings, duplicate marks, handles) are in
//! `resolve.rs`; this file checks what one value or one table can tell on its own.

use std::str::FromStr;

use super::diag::{did_you_mean, Diagnostic};
use super::netem;
use super::node::{Key, Node, Span, Value};
use crate::model::{Cake, FqCodel, QdiscKind, Sfq};
use crate::units::{Rate, Size, Time, UnitError};

/// HTB refuses trees deeper than 8 levels (TC_HTB_MAXDEPTH); the root class is one of them.
pub const MAX_CLASS_DEPTH: usize = 7;

/// A value with the span it was written at.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    pub span: Span,
    pub v: T,
}

/// A whole policy file, locally valid.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub interfaces: Vec<Interface>,
}

#[derive(Debug, Clone)]
pub struct Interface {
    pub alias: String,
    pub key_span: Span,
    pub device: Sp<String>,
    pub rate: Option<Sp<RateSpec>>,
    pub default: Option<Sp<String>>,
    pub leaf: Option<Sp<Leaf>>,
    pub netem: Option<Sp<crate::model::Netem>>,
    /// burst and cburst of the root class `1:1`, which carries the interface rate.
    pub burst: Option<Sp<Size>>,
    pub cburst: Option<Sp<Size>>,
    pub classes: Vec<Class>,
    /// `rate` was written but did not parse: the classes' rates are not checked against
    /// it (that would only repeat the one error).
    pub rate_invalid: bool,
}

#[derive(Debug, Clone)]
pub struct Class {
    /// The table key: `voice`.
    pub name: String,
    /// The path below the interface: `bulk/backup`.
    pub path: String,
    pub key_span: Span,
    pub rate: Option<Sp<RateSpec>>,
    pub ceil: Option<Sp<RateSpec>>,
    pub burst: Option<Size>,
    pub cburst: Option<Size>,
    pub prio: Option<Sp<u32>>,
    pub quantum: Option<Size>,
    pub id: Option<Sp<u16>>,
    pub marks: Vec<Sp<u32>>,
    /// Boxed: most classes have neither, and a class is small without them (10,000 classes).
    pub leaf: Option<Box<Sp<Leaf>>>,
    pub netem: Option<Box<Sp<crate::model::Netem>>>,
    pub children: Vec<Class>,
    /// A rate or ceil of this class did not parse: resolution skips rate checks here.
    pub broken: bool,
}

/// An absolute rate, or a share of the parent's.
#[derive(Debug, Clone, PartialEq)]
pub enum RateSpec {
    Abs(Rate),
    Pct {
        percent: f64,
        min: Option<Rate>,
        max: Option<Rate>,
    },
}

/// A leaf qdisc as written. tbf's rate and burst may be left out: they default from the
/// class (see `resolve.rs`), so they cannot be filled in before resolution.
// One per class, parsed once: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    Kind(QdiscKind),
    Tbf {
        rate: Option<Rate>,
        burst: Option<Size>,
        limit: Option<Size>,
        latency: Option<crate::units::Time>,
    },
}

impl Leaf {
    pub fn kind_name(&self) -> &str {
        match self {
            Leaf::Kind(k) => k.kind_name(),
            Leaf::Tbf { .. } => "tbf",
        }
    }
}

pub const LEAF_KINDS: &[&str] = &["fq_codel", "pfifo", "bfifo", "tbf", "cake", "sfq", "netem"];
const TOP_KEYS: &[&str] = &["interfaces"];
const IFACE_KEYS: &[&str] = &[
    "device", "rate", "burst", "cburst", "default", "leaf", "netem", "classes", "ingress",
];
const CLASS_KEYS: &[&str] = &[
    "rate", "ceil", "burst", "cburst", "prio", "quantum", "id", "marks", "leaf", "netem",
    "classes", "match",
];

/// Collects diagnostics while walking; every `get_*` returns `None` after reporting.
#[derive(Default)]
pub struct Walker {
    pub diags: Vec<Diagnostic>,
}

/// Where to point for a value: the value itself, else its key.
pub fn at(key: &Key, node: &Node) -> Span {
    node.span.clone().or_else(|| key.span.clone())
}

pub fn find<'n>(entries: &'n [(Key, Node)], name: &str) -> Option<(&'n Key, &'n Node)> {
    entries
        .iter()
        .find(|(k, _)| k.name == name)
        .map(|(k, n)| (k, n))
}

impl Walker {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn unit_err(&mut self, span: Span, e: UnitError) {
        self.push(Diagnostic::error(span, e.message).maybe_hint(e.hint));
    }

    fn wrong_type(&mut self, key: &Key, node: &Node, expected: &str) {
        self.push(Diagnostic::error(
            at(key, node),
            format!(
                "\"{}\" must be {expected}, found {}",
                key.name,
                node.value.type_name()
            ),
        ));
    }

    /// The entries of a table, after reporting keys not in `allowed`.
    pub fn table<'n>(
        &mut self,
        key: &Key,
        node: &'n Node,
        allowed: &[&str],
        what: &str,
    ) -> Option<&'n [(Key, Node)]> {
        self.table_with(key, node, allowed, || what.to_string())
    }

    /// `table` with the description made only when needed (once per class adds up).
    fn table_with<'n>(
        &mut self,
        key: &Key,
        node: &'n Node,
        allowed: &[&str],
        what: impl Fn() -> String,
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
                self.push(
                    Diagnostic::error(
                        k.span.clone(),
                        format!("unknown key \"{}\" in {}", k.name, what()),
                    )
                    .hint(format!(
                        "a class is a table under classes: did you mean [….classes.{}]?",
                        toml_key(&k.name)
                    )),
                );
            } else {
                self.unknown_key(k, allowed, &what());
            }
        }
        Some(entries)
    }

    fn unknown_key(&mut self, k: &Key, allowed: &[&str], what: &str) {
        let hint = match did_you_mean(&k.name, allowed) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("expected one of: {}", allowed.join(", ")),
        };
        self.push(
            Diagnostic::error(
                k.span.clone(),
                format!("unknown key \"{}\" in {what}", k.name),
            )
            .hint(hint),
        );
    }

    pub fn string(&mut self, key: &Key, node: &Node) -> Option<String> {
        match &node.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(key, node, "a string");
                None
            }
        }
    }

    pub fn boolean(&mut self, key: &Key, node: &Node) -> Option<bool> {
        match &node.value {
            Value::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(key, node, "true or false");
                None
            }
        }
    }

    /// An integer in `lo..=hi`.
    pub fn int(&mut self, key: &Key, node: &Node, lo: i64, hi: i64) -> Option<i64> {
        match &node.value {
            Value::Integer(i) if (lo..=hi).contains(i) => Some(*i),
            Value::Integer(i) => {
                self.push(Diagnostic::error(
                    at(key, node),
                    format!("\"{}\" = {i} is out of range {lo}..={hi}", key.name),
                ));
                None
            }
            Value::Float(f) if *f > i64::MAX as f64 || *f < i64::MIN as f64 => {
                self.push(Diagnostic::error(
                    at(key, node),
                    format!("\"{}\" is out of range {lo}..={hi}", key.name),
                ));
                None
            }
            _ => {
                self.wrong_type(key, node, "an integer");
                None
            }
        }
    }

    pub fn u32(&mut self, key: &Key, node: &Node) -> Option<u32> {
        self.int(key, node, 0, u32::MAX as i64).map(|v| v as u32)
    }

    /// A unit string; a bare number gets the unit parser's "did you mean" for its text.
    fn unit<T: FromStr<Err = UnitError>>(
        &mut self,
        key: &Key,
        node: &Node,
        example: &str,
    ) -> Option<T> {
        let owned;
        let text: &str = match &node.value {
            Value::String(s) => s,
            Value::Integer(i) => {
                owned = i.to_string();
                &owned
            }
            Value::Float(f) => {
                owned = f.to_string();
                &owned
            }
            _ => {
                self.wrong_type(key, node, &format!("a string like \"{example}\""));
                return None;
            }
        };
        match text.parse::<T>() {
            Ok(v) if matches!(node.value, Value::String(_)) => Some(v),
            // A bare number that happens to parse (a size in bytes is fine, see `size`).
            Ok(_) => {
                self.wrong_type(key, node, &format!("a string like \"{example}\""));
                None
            }
            Err(e) => {
                self.unit_err(at(key, node), e);
                None
            }
        }
    }

    pub fn rate(&mut self, key: &Key, node: &Node) -> Option<Rate> {
        if let Value::String(s) = &node.value {
            if s.trim_end().ends_with('%') {
                self.push(
                    Diagnostic::error(
                        at(key, node),
                        format!(
                            "\"{}\" must be an absolute rate, not a percentage",
                            key.name
                        ),
                    )
                    .hint("write e.g. \"20mbit\""),
                );
                return None;
            }
        }
        self.unit::<Rate>(key, node, "20mbit")
    }

    pub fn time(&mut self, key: &Key, node: &Node) -> Option<Time> {
        self.unit::<Time>(key, node, "10ms")
    }

    pub fn prob(&mut self, key: &Key, node: &Node) -> Option<crate::units::Prob> {
        self.unit::<crate::units::Prob>(key, node, "1%")
    }

    /// A size: a unit string, or a bare integer of bytes.
    pub fn size(&mut self, key: &Key, node: &Node) -> Option<Size> {
        match &node.value {
            Value::Integer(i) if *i >= 0 && *i < u32::MAX as i64 => Some(Size(*i as u64)),
            Value::Integer(i) => {
                self.push(Diagnostic::error(
                    at(key, node),
                    format!("size {i} is out of range 0..4GiB"),
                ));
                None
            }
            Value::String(_) => self.unit::<Size>(key, node, "16KiB"),
            _ => {
                self.wrong_type(key, node, "a size like \"16KiB\" or a number of bytes");
                None
            }
        }
    }

    /// `"40%"`, `{ percent = 40, min = "1mbit", max = "20mbit" }` or an absolute rate.
    pub fn rate_spec(&mut self, key: &Key, node: &Node) -> Option<RateSpec> {
        match &node.value {
            Value::String(s) if s.trim_end().ends_with('%') => {
                let num = s.trim().trim_end_matches('%').trim();
                let Some(p) = parse_plain_number(num) else {
                    self.push(
                        Diagnostic::error(at(key, node), format!("invalid percentage \"{s}\""))
                            .hint("write e.g. \"40%\""),
                    );
                    return None;
                };
                self.percent(key, node, p).map(|percent| RateSpec::Pct {
                    percent,
                    min: None,
                    max: None,
                })
            }
            Value::Table(_) => {
                let what = format!("\"{}\"", key.name);
                let entries = self.table(key, node, &["percent", "min", "max"], &what)?;
                let mut percent = None;
                let (mut min, mut max) = (None, None);
                let mut ok = true;
                for (k, n) in entries {
                    match k.name.as_str() {
                        "percent" => {
                            percent = match &n.value {
                                Value::Integer(i) => self.percent(k, n, *i as f64),
                                Value::Float(f) => self.percent(k, n, *f),
                                _ => {
                                    self.wrong_type(k, n, "a number like 40");
                                    ok = false;
                                    None
                                }
                            };
                            ok &= percent.is_some();
                        }
                        "min" => {
                            min = self.rate(k, n);
                            ok &= min.is_some();
                        }
                        "max" => {
                            max = self.rate(k, n);
                            ok &= max.is_some();
                        }
                        _ => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                let Some(percent) = percent else {
                    self.push(
                        Diagnostic::error(
                            at(key, node),
                            format!("\"{}\" has no \"percent\"", key.name),
                        )
                        .hint("write e.g. { percent = 40, min = \"1mbit\" }"),
                    );
                    return None;
                };
                if let (Some(lo), Some(hi)) = (min, max) {
                    if lo > hi {
                        self.push(Diagnostic::error(
                            at(key, node),
                            format!("\"{}\": min {lo} is above max {hi}", key.name),
                        ));
                        return None;
                    }
                }
                Some(RateSpec::Pct { percent, min, max })
            }
            _ => self.rate(key, node).map(RateSpec::Abs),
        }
    }

    fn percent(&mut self, key: &Key, node: &Node, p: f64) -> Option<f64> {
        if p > 0.0 && p <= 100.0 {
            Some(p)
        } else {
            self.push(Diagnostic::error(
                at(key, node),
                format!("percentage {}% is outside (0%, 100%]", fmt_num(p)),
            ));
            None
        }
    }
}

fn fmt_num(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A plain non-negative decimal ("40", "12.5"): no signs, exponents or inf.
fn parse_plain_number(s: &str) -> Option<f64> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Why a name is not a valid Linux interface name (the kernel's `dev_valid_name`).
pub fn invalid_device_name(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("it is empty".into())
    } else if name.len() > 15 {
        Some(format!("it is {} bytes long, the limit is 15", name.len()))
    } else if name == "." || name == ".." {
        Some(format!("\"{name}\" is reserved"))
    } else {
        name.chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
            .map(|c| format!("it contains {c:?}"))
    }
}

impl Walker {
    pub fn policy(&mut self, root: &Node) -> Policy {
        let mut policy = Policy::default();
        let Some(entries) = root.as_table() else {
            return policy;
        };
        for (k, n) in entries {
            if TOP_KEYS.contains(&k.name.as_str()) {
                continue;
            }
            if n.as_table().is_some() && did_you_mean(&k.name, TOP_KEYS).is_none() {
                // `[wan]` instead of `[interfaces.wan]`.
                self.push(
                    Diagnostic::error(
                        k.span.clone(),
                        format!("unknown key \"{}\" in the policy", k.name),
                    )
                    .hint(format!(
                        "interfaces are tables under interfaces: did you mean [interfaces.{}]?",
                        toml_key(&k.name)
                    )),
                );
            } else {
                self.unknown_key(k, TOP_KEYS, "the policy");
            }
        }
        let Some((ik, inode)) = find(entries, "interfaces") else {
            self.push(
                Diagnostic::error(None, "the policy names no interface")
                    .hint("add e.g. [interfaces.wan] with device = \"eth0\" and rate = \"20mbit\""),
            );
            return policy;
        };
        let Some(ifaces) = inode.as_table() else {
            self.wrong_type(ik, inode, "a table of interfaces ([interfaces.NAME])");
            return policy;
        };
        if ifaces.is_empty() {
            self.push(
                Diagnostic::error(at(ik, inode), "the policy names no interface")
                    .hint("add e.g. [interfaces.wan] with device = \"eth0\""),
            );
        }
        for (k, n) in ifaces {
            if let Some(i) = self.interface(k, n) {
                policy.interfaces.push(i);
            }
        }
        policy
    }

    fn interface(&mut self, key: &Key, node: &Node) -> Option<Interface> {
        let what = format!("interface \"{}\"", key.name);
        let entries = self.table(key, node, IFACE_KEYS, &what)?;
        let mut iface = Interface {
            alias: key.name.clone(),
            key_span: key.span.clone(),
            device: Sp {
                span: key.span.clone(),
                v: key.name.clone(),
            },
            rate: None,
            default: None,
            leaf: None,
            netem: None,
            burst: None,
            cburst: None,
            classes: Vec::new(),
            rate_invalid: false,
        };
        let mut device_given = false;
        let mut classes = None;
        for (k, n) in entries {
            match k.name.as_str() {
                "device" => {
                    if let Some(d) = self.string(k, n) {
                        iface.device = Sp {
                            span: at(k, n),
                            v: d,
                        };
                    }
                    device_given = true;
                }
                "rate" => match self.rate(k, n) {
                    Some(r) => {
                        iface.rate = Some(Sp {
                            span: at(k, n),
                            v: RateSpec::Abs(r),
                        })
                    }
                    None => iface.rate_invalid = true,
                },
                "default" => {
                    if let Some(d) = self.string(k, n) {
                        iface.default = Some(Sp {
                            span: at(k, n),
                            v: d,
                        });
                    }
                }
                "leaf" => iface.leaf = self.leaf(k, n),
                "netem" => iface.netem = self.netem(k, n),
                "burst" => iface.burst = self.size(k, n).map(|v| Sp { span: at(k, n), v }),
                "cburst" => iface.cburst = self.size(k, n).map(|v| Sp { span: at(k, n), v }),
                "classes" => classes = Some((k, n)),
                "ingress" => self.push(
                    Diagnostic::error(k.span.clone(), "\"ingress\" is not supported yet")
                        .hint("shape the download direction on the other end of the link for now"),
                ),
                _ => {}
            }
        }
        if let Some(why) = invalid_device_name(&iface.device.v) {
            let mut d = Diagnostic::error(
                iface.device.span.clone(),
                format!(
                    "device name \"{}\" is not a valid Linux interface name: {why}",
                    iface.device.v
                ),
            );
            if !device_given {
                d = d.hint(format!(
                    "the device defaults to the interface key; set device = \"eth0\" in [interfaces.{}]",
                    toml_key(&key.name)
                ));
            }
            self.push(d);
        }
        if let Some((k, n)) = classes {
            iface.classes = self.classes(k, n, "", 1);
        }
        Some(iface)
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
            self.push(
                Diagnostic::error(
                    first,
                    format!("classes are nested too deep: htb allows at most {MAX_CLASS_DEPTH} levels of classes below an interface"),
                )
                .hint("flatten the class tree"),
            );
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
            self.push(Diagnostic::error(
                key.span.clone(),
                format!("class name {:?} is not valid: it must be non-empty, without \"/\" or control characters", key.name),
            ));
            return None;
        }
        let entries = self.table_with(key, node, CLASS_KEYS, || format!("class \"{path}\""))?;
        let mut c = Class {
            name: key.name.clone(),
            path: path.clone(),
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
                "match" => self.push(
                    Diagnostic::error(k.span.clone(), "\"match\" is not supported yet")
                        .hint("steer traffic with firewall marks: marks = [0x10]"),
                ),
                _ => {}
            }
        }
        if c.rate.is_none() && find(entries, "rate").is_none() {
            self.push(
                Diagnostic::error(key.span.clone(), format!("class \"{path}\" has no rate"))
                    .hint("add e.g. rate = \"10%\" or rate = \"2mbit\""),
            );
            c.broken = true;
        }
        if let Some((k, n)) = children {
            c.children = self.classes(k, n, &path, depth + 1);
            if n.as_table().is_some_and(|t| !t.is_empty()) {
                self.inner_class_rules(&c, entries);
            }
        }
        Some(c)
    }

    /// Settings that only a leaf class can use.
    fn inner_class_rules(&mut self, c: &Class, entries: &[(Key, Node)]) {
        let path = &c.path;
        if let Some((k, _)) = find(entries, "netem") {
            self.push(
                Diagnostic::error(
                    k.span.clone(),
                    format!("class \"{path}\" has children, so it cannot have netem"),
                )
                .hint("put netem on a leaf class (one without classes)"),
            );
        }
        if let Some((k, _)) = find(entries, "leaf") {
            self.push(
                Diagnostic::error(
                    k.span.clone(),
                    format!("class \"{path}\" has children, so it has no leaf qdisc"),
                )
                .hint("set leaf on its leaf classes"),
            );
        }
        if let Some((k, _)) = find(entries, "marks") {
            self.push(
                Diagnostic::error(
                    k.span.clone(),
                    format!("class \"{path}\" has children: marks must steer to a leaf class"),
                )
                .hint("move the marks to one of its child classes"),
            );
        }
        if let Some((k, _)) = find(entries, "prio") {
            self.push(
                Diagnostic::error(
                    k.span.clone(),
                    format!("class \"{path}\" has children: htb uses prio only on leaf classes"),
                )
                .hint("set prio on its child classes"),
            );
        }
    }

    fn class_id(&mut self, k: &Key, n: &Node) -> Option<Sp<u16>> {
        match &n.value {
            Value::Integer(i) if (2..=0xfffe).contains(i) => Some(Sp {
                span: at(k, n),
                v: *i as u16,
            }),
            Value::Integer(i) => {
                self.push(Diagnostic::error(
                    at(k, n),
                    format!(
                        "id {} is out of range 0x2..=0xfffe (minors 0 and 1 are reserved, 0xffff too)",
                        if *i < 0 { i.to_string() } else { format!("{i:#x}") }
                    ),
                ));
                None
            }
            _ => {
                self.push(
                    Diagnostic::error(
                        at(k, n),
                        format!(
                            "\"id\" must be an integer like 0x30, found {}",
                            n.value.type_name()
                        ),
                    )
                    .maybe_hint(unquote_hint(&n.value)),
                );
                None
            }
        }
    }

    fn marks(&mut self, key: &Key, node: &Node) -> Vec<Sp<u32>> {
        let items = match &node.value {
            Value::Array(a) => a,
            Value::Integer(i) => {
                self.push(
                    Diagnostic::error(at(key, node), "\"marks\" must be an array of integers")
                        .hint(format!("write marks = [{i:#x}]")),
                );
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
                Value::Integer(0) => self.push(
                    Diagnostic::error(span, "mark 0 means unmarked traffic and cannot be matched")
                        .hint("send unmarked traffic to a class with the interface's `default`"),
                ),
                Value::Integer(i) if (1..=u32::MAX as i64).contains(i) => {
                    out.push(Sp { span, v: *i as u32 })
                }
                Value::Integer(i) => self.push(Diagnostic::error(
                    span,
                    format!("mark {i} is out of range 1..=0xffffffff"),
                )),
                other => self.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "a mark must be an integer like 0x10, found {}",
                            other.type_name()
                        ),
                    )
                    .maybe_hint(unquote_hint(other)),
                ),
            }
        }
        out
    }

    /// `leaf = "fq_codel"` or `leaf = { kind = "fq_codel", target = "5ms" }`.
    fn leaf(&mut self, key: &Key, node: &Node) -> Option<Sp<Leaf>> {
        let span = at(key, node);
        let (kind, kind_span, entries): (String, Span, &[(Key, Node)]) = match &node.value {
            Value::String(s) => (s.clone(), span.clone(), &[]),
            Value::Table(t) => {
                let Some((kk, kn)) = find(t, "kind") else {
                    self.push(
                        Diagnostic::error(span, "\"leaf\" table has no \"kind\"")
                            .hint("write e.g. leaf = { kind = \"fq_codel\", target = \"5ms\" }"),
                    );
                    return None;
                };
                (self.string(kk, kn)?, at(kk, kn), t)
            }
            _ => {
                self.wrong_type(key, node, "a qdisc kind like \"fq_codel\" or a table");
                return None;
            }
        };
        let opts: Vec<&(Key, Node)> = entries.iter().filter(|(k, _)| k.name != "kind").collect();
        let what = format!("leaf \"{kind}\"");
        let leaf = match kind.as_str() {
            "pfifo" => {
                let mut limit = None;
                for (k, n) in self.known(&opts, &["limit"], &what) {
                    limit = self.u32(k, n);
                }
                Leaf::Kind(QdiscKind::Pfifo { limit })
            }
            "bfifo" => {
                let mut limit = None;
                for (k, n) in self.known(&opts, &["limit"], &what) {
                    limit = self.size(k, n);
                }
                Leaf::Kind(QdiscKind::Bfifo { limit })
            }
            "tbf" => {
                let (mut rate, mut burst, mut limit, mut latency) = (None, None, None, None);
                for (k, n) in self.known(&opts, &["rate", "burst", "limit", "latency"], &what) {
                    match k.name.as_str() {
                        "rate" => rate = self.rate(k, n),
                        "burst" => burst = self.size(k, n),
                        "limit" => limit = self.size(k, n),
                        _ => latency = self.time(k, n),
                    }
                }
                if limit.is_some() && latency.is_some() {
                    self.push(
                        Diagnostic::error(
                            span.clone(),
                            "tbf takes either limit or latency, not both",
                        )
                        .hint("remove one of them"),
                    );
                }
                Leaf::Tbf {
                    rate,
                    burst,
                    limit,
                    latency,
                }
            }
            "fq_codel" => {
                let mut q = FqCodel::default();
                let keys = [
                    "limit",
                    "flows",
                    "target",
                    "interval",
                    "quantum",
                    "ecn",
                    "memory_limit",
                ];
                for (k, n) in self.known(&opts, &keys, &what) {
                    match k.name.as_str() {
                        "limit" => q.limit = self.u32(k, n),
                        "flows" => q.flows = self.u32(k, n),
                        "target" => q.target = self.time(k, n),
                        "interval" => q.interval = self.time(k, n),
                        "quantum" => q.quantum = self.size(k, n),
                        "ecn" => q.ecn = self.boolean(k, n),
                        _ => q.memory_limit = self.size(k, n),
                    }
                }
                Leaf::Kind(QdiscKind::FqCodel(q))
            }
            "cake" => {
                let mut q = Cake::default();
                let keys = [
                    "bandwidth",
                    "diffserv",
                    "flow_mode",
                    "rtt",
                    "nat",
                    "wash",
                    "ack_filter",
                    "overhead",
                ];
                for (k, n) in self.known(&opts, &keys, &what) {
                    match k.name.as_str() {
                        "bandwidth" => q.bandwidth = self.rate(k, n),
                        "diffserv" => {
                            q.diffserv = self.one_of(
                                k,
                                n,
                                &[
                                    "besteffort",
                                    "diffserv3",
                                    "diffserv4",
                                    "diffserv8",
                                    "precedence",
                                ],
                            )
                        }
                        "flow_mode" => {
                            q.flow_mode = self.one_of(
                                k,
                                n,
                                &[
                                    "flowblind",
                                    "srchost",
                                    "dsthost",
                                    "hosts",
                                    "flows",
                                    "dual-srchost",
                                    "dual-dsthost",
                                    "triple-isolate",
                                ],
                            )
                        }
                        "rtt" => q.rtt = self.time(k, n),
                        "nat" => q.nat = self.boolean(k, n),
                        "wash" => q.wash = self.boolean(k, n),
                        "ack_filter" => q.ack_filter = self.boolean(k, n),
                        _ => q.overhead = self.int(k, n, -64, 256).map(|v| v as i32),
                    }
                }
                Leaf::Kind(QdiscKind::Cake(q))
            }
            "sfq" => {
                let mut q = Sfq::default();
                for (k, n) in self.known(&opts, &["perturb", "limit", "quantum"], &what) {
                    match k.name.as_str() {
                        "perturb" => q.perturb = self.time(k, n),
                        "limit" => q.limit = self.u32(k, n),
                        _ => q.quantum = self.size(k, n),
                    }
                }
                Leaf::Kind(QdiscKind::Sfq(q))
            }
            "netem" => {
                // `leaf = { kind = "netem", delay = "10ms" }` is the class's `netem` spelled
                // as a leaf; the options are netem's.
                let fake = Node {
                    span: node.span.clone(),
                    value: Value::Table(opts.iter().map(|e| (*e).clone()).collect()),
                };
                let n = netem::parse(self, key, &fake)?;
                Leaf::Kind(QdiscKind::Netem(Box::new(n.v)))
            }
            other => {
                let hint = match did_you_mean(other, LEAF_KINDS) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => format!("use one of: {}", LEAF_KINDS.join(", ")),
                };
                self.push(
                    Diagnostic::error(kind_span, format!("unknown leaf qdisc kind \"{other}\""))
                        .hint(hint),
                );
                return None;
            }
        };
        Some(Sp { span, v: leaf })
    }

    /// Reports option keys not in `allowed`; returns the known ones.
    fn known<'e>(
        &mut self,
        opts: &[&'e (Key, Node)],
        allowed: &[&str],
        what: &str,
    ) -> Vec<(&'e Key, &'e Node)> {
        let mut out = Vec::new();
        for (k, n) in opts.iter().map(|e| (&e.0, &e.1)) {
            if allowed.contains(&k.name.as_str()) {
                out.push((k, n));
            } else {
                let mut with_kind: Vec<&str> = allowed.to_vec();
                with_kind.push("kind");
                self.unknown_key(k, &with_kind, what);
            }
        }
        out
    }

    pub fn one_of(&mut self, k: &Key, n: &Node, choices: &[&str]) -> Option<String> {
        let s = self.string(k, n)?;
        if choices.contains(&s.as_str()) {
            return Some(s);
        }
        let hint = match did_you_mean(&s, choices) {
            Some(c) => format!("did you mean \"{c}\"?"),
            None => format!("use one of: {}", choices.join(", ")),
        };
        self.push(Diagnostic::error(at(k, n), format!("unknown {} \"{s}\"", k.name)).hint(hint));
        None
    }

    fn netem(&mut self, key: &Key, node: &Node) -> Option<Sp<crate::model::Netem>> {
        netem::parse(self, key, node)
    }
}

/// "0x10" in quotes is a string to TOML; say how to write the number.
fn unquote_hint(v: &Value) -> Option<String> {
    let Value::String(s) = v else { return None };
    let t = s.trim();
    let ok = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
        None => !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()),
    };
    ok.then(|| format!("write {t} without quotes"))
}

/// A key as it must be written inside a TOML header.
pub fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}
