//! The policy's types: what the walker (`walk/`) makes of the file, locally valid.
//!
//! An interface holds trees; a tree (rate, burst, default, leaf, netem, classes) is the same
//! value wherever it is written, so one walker reads it and one builder (`resolve/`) turns it
//! into qdiscs, classes and filters. Rules that need resolved numbers (rate sums, ceilings,
//! duplicate marks, handles) are the builder's; the walker checks what one value or one table
//! can tell on its own.

use std::fmt;

use super::node::Span;
use crate::classify::action::{Police, Restore};
use crate::classify::matcher::{Dscp, Field, Match};
use crate::model::{Netem, QdiscKind};
use crate::units::{Rate, Size, Time};

/// HTB refuses trees deeper than 8 levels (TC_HTB_MAXDEPTH); the root class is one of them.
pub const MAX_CLASS_DEPTH: usize = 7;

pub const LEAF_KINDS: &[&str] = &["fq_codel", "pfifo", "bfifo", "tbf", "cake", "sfq", "netem"];
pub const TOP_KEYS: &[&str] = &["interfaces"];
/// The keys of a tree, in the order "expected one of" lists them.
pub const TREE_KEYS: &[&str] = &[
    "rate", "burst", "cburst", "default", "leaf", "netem", "classes",
];
/// An interface: its device, its egress tree written inline, and its ingress tree.
#[rustfmt::skip]
pub const IFACE_KEYS: &[&str] = &[
    "device", "rate", "burst", "cburst", "default", "leaf", "netem", "classes", "ingress",
    "classifier",
];
/// `[interfaces.X.ingress]`: a tree, and what the ingress hook does before the redirect.
pub const INGRESS_KEYS: &[&str] = &[
    "rate",
    "burst",
    "cburst",
    "default",
    "leaf",
    "netem",
    "classes",
    "police",
    "restore_mark",
];
/// `police = { rate, burst }`.
pub const POLICE_KEYS: &[&str] = &["rate", "burst"];
/// `restore_mark = "…"`: which tc action copies the conntrack mark to the packet.
/// `none` turns off the default (`connmark` when an ingress class has marks).
pub const RESTORE_CHOICES: &[&str] = &["connmark", "ctinfo", "none"];
pub const CLASS_KEYS: &[&str] = &[
    "rate", "ceil", "burst", "cburst", "prio", "quantum", "id", "marks", "leaf", "netem",
    "classes", "match", "set_dscp",
];
/// The fields of one `[[….classes.Y.match]]` entry, in the order messages list them.
pub const MATCH_KEYS: &[&str] = &["src", "dst", "proto", "sport", "dport", "dscp", "mark"];

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
    /// What leaves the device: the tree written directly under `[interfaces.X]`.
    pub egress: Tree,
    /// What arrives at the device: `[interfaces.X.ingress]`, a tree built on the
    /// interface's ifb device, and/or a policer on the interface's ingress hook.
    pub ingress: Option<Ingress>,
    /// `classifier = "u32" | "flower"`: which tc classifier implements the matches of both
    /// trees (u32 when absent; docs/match.md).
    pub classifier: crate::classify::Classifier,
}

/// `[interfaces.X.ingress]`: the download tree (shaped on an ifb), a policer, and whether
/// the conntrack mark is restored before the tree's filters see the packet.
#[derive(Debug, Clone)]
pub struct Ingress {
    pub tree: Tree,
    pub police: Option<Sp<Police>>,
    /// `restore_mark` as written: `Some(None)` is `"none"`.
    pub restore: Option<Sp<Option<Restore>>>,
}

impl Interface {
    /// What messages about one of this interface's trees call it.
    pub fn name(&self, direction: Direction) -> TreeName<'_> {
        TreeName {
            alias: &self.alias,
            direction,
        }
    }
}

/// Which traffic a tree shapes: what leaves the device, or what arrives at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Egress,
    Ingress,
}

/// A tree as messages name it (`interface "wan"`) and as a hint writes its TOML header.
#[derive(Debug, Clone, Copy)]
pub struct TreeName<'a> {
    pub alias: &'a str,
    pub direction: Direction,
}

impl TreeName<'_> {
    /// The TOML table the tree is written in: `interfaces.wan`, `interfaces.wan.ingress`.
    pub fn header(&self) -> String {
        match self.direction {
            Direction::Egress => format!("interfaces.{}", toml_key(self.alias)),
            Direction::Ingress => format!("interfaces.{}.ingress", toml_key(self.alias)),
        }
    }
}

impl fmt::Display for TreeName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direction {
            Direction::Egress => write!(f, "interface \"{}\"", self.alias),
            Direction::Ingress => write!(f, "the ingress of interface \"{}\"", self.alias),
        }
    }
}

/// One shaping tree: a root (rate, burst, cburst of the root class) and its classes, or
/// only a netem.
#[derive(Debug, Clone)]
pub struct Tree {
    pub direction: Direction,
    /// Where to point at the tree as a whole: the interface key, or the `ingress` key.
    pub key_span: Span,
    pub rate: Option<Sp<Rate>>,
    /// `rate` was written but did not parse: the classes' rates are not checked against
    /// it (that would only repeat the one error).
    pub rate_invalid: bool,
    /// burst and cburst of the root class, which carries the tree's rate.
    pub burst: Option<Sp<Size>>,
    pub cburst: Option<Sp<Size>>,
    pub default: Option<Sp<String>>,
    pub leaf: Option<Sp<Leaf>>,
    pub netem: Option<Sp<Netem>>,
    pub classes: Vec<Class>,
}

impl Tree {
    pub fn new(direction: Direction, key_span: Span) -> Tree {
        Tree {
            direction,
            key_span,
            rate: None,
            rate_invalid: false,
            burst: None,
            cburst: None,
            default: None,
            leaf: None,
            netem: None,
            classes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Class {
    /// The table key: `voice`.
    pub name: String,
    /// The path below the tree's root: `bulk/backup`.
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
    pub netem: Option<Box<Sp<Netem>>>,
    pub children: Vec<Class>,
    /// A rate or ceil of this class did not parse: resolution skips rate checks here.
    pub broken: bool,
    /// `[[….match]]` entries that read and validated (fields AND, entries OR).
    pub matches: Vec<MatchEntry>,
    /// `set_dscp`: the DSCP its matched packets leave with.
    pub set_dscp: Option<Sp<Dscp>>,
}

/// One `[[….classes.Y.match]]` entry: the match and where each of its fields was written.
#[derive(Debug, Clone)]
pub struct MatchEntry {
    pub m: Match,
    /// The entry as a whole (its `[[…match]]` header, or the inline table).
    pub span: Span,
    pub fields: Vec<(Field, Span)>,
}

impl MatchEntry {
    /// Where to point at `field` of this entry (the entry when it was not written).
    pub fn span_of(&self, field: Field) -> Span {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map_or_else(|| self.span.clone(), |(_, s)| s.clone())
    }
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
/// class (see `resolve/`), so they cannot be filled in before resolution.
// One per class, parsed once: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    Kind(QdiscKind),
    Tbf {
        rate: Option<Rate>,
        burst: Option<Size>,
        limit: Option<Size>,
        latency: Option<Time>,
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
