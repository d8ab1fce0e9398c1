//! Every problem a policy can have, worded once.
//!
//! The walker (`walk/*`) and the tree builder (`resolve/*`) name a problem and where it is
//! (`Problem::Foo { .. }.at(span)`); this file says what it means (`Display`), how to fix
//! it (`hint`) and whether it stops the policy (`severity`). A check is then one line at its
//! call site, and a change of wording is one line here. tests/policy.rs asserts the rendered
//! texts, so a wording change shows there.

use std::fmt;

use super::diag::{did_you_mean, Diagnostic, Severity};
use super::node::{Span, Value};
use super::schema::{toml_key, TreeName, LEAF_KINDS, MAX_CLASS_DEPTH};
use crate::classify::MatchError;
use crate::units::{Rate, UnitError};

/// Who a rate rule speaks of: a tree (its root class) or one of its classes.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    Tree(TreeName<'a>),
    Class(&'a str),
}

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Tree(t) => t.fmt(f),
            Who::Class(path) => write!(f, "class \"{path}\""),
        }
    }
}

/// The table a key was found in, as "unknown key … in {place}" names it.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    Policy,
    Interface(&'a str),
    /// A tree with a table of its own (ingress).
    Tree(TreeName<'a>),
    Class(&'a str),
    /// A `[[….match]]` entry of a class.
    Match(&'a str),
    Leaf(&'a str),
    /// A value written as a table: `rate = { percent = 40 }`.
    Value(&'a str),
    /// A table named by its key: netem, loss, gemodel, slot.
    Named(&'static str),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Policy => write!(f, "the policy"),
            Place::Interface(alias) => write!(f, "interface \"{alias}\""),
            Place::Tree(t) => t.fmt(f),
            Place::Class(path) => write!(f, "class \"{path}\""),
            Place::Match(path) => write!(f, "a match of class \"{path}\""),
            Place::Leaf(kind) => write!(f, "leaf \"{kind}\""),
            Place::Value(key) => write!(f, "\"{key}\""),
            Place::Named(name) => write!(f, "{name}"),
        }
    }
}

/// One problem of a policy, with what its message and hint need to say.
#[derive(Debug)]
pub enum Problem<'a> {
    // ---- the file ----
    /// toml's own message, already joined into one line.
    Toml(&'a str),
    NotUtf8 {
        byte: u8,
    },

    // ---- values and keys (walk/fields.rs, walk/cursor.rs) ----
    WrongType {
        key: &'a str,
        expected: &'a str,
        found: &'a Value,
    },
    /// A unit value written as something else than a string.
    NotUnitString {
        key: &'a str,
        example: &'a str,
        found: &'a Value,
    },
    Unit(UnitError),
    UnknownKey {
        key: &'a str,
        place: Place<'a>,
        allowed: &'a [&'a str],
    },
    /// A table written where a class belongs, without `classes.`.
    ClassWithoutClasses {
        key: &'a str,
        place: Place<'a>,
    },
    IntOutOfRange {
        key: &'a str,
        value: i64,
        lo: i64,
        hi: i64,
    },
    FloatOutOfRange {
        key: &'a str,
        lo: i64,
        hi: i64,
    },
    PercentNotAbsolute {
        key: &'a str,
    },
    SizeOutOfRange {
        value: i64,
    },
    InvalidPercentage {
        text: &'a str,
    },
    PercentMissing {
        key: &'a str,
    },
    MinAboveMax {
        key: &'a str,
        min: Rate,
        max: Rate,
    },
    PercentOutside {
        percent: f64,
    },
    UnknownChoice {
        key: &'a str,
        value: &'a str,
        choices: &'a [&'a str],
    },

    // ---- the policy and its interfaces (walk/interface.rs) ----
    TopLevelTable {
        key: &'a str,
    },
    NoInterface,
    NoInterfaceInTable,
    /// `police = { … }` without its rate or its burst.
    PoliceMissing {
        key: &'static str,
    },
    /// `restore_mark` on an ingress without a tree: no class to classify into.
    RestoreWithoutTree {
        tree: TreeName<'a>,
    },
    /// The ifb of an ingress tree would be named like another interface's ifb, or like a
    /// device of the policy.
    IfbNameTaken {
        ifb: &'a str,
        by: &'a str,
    },
    InvalidDevice {
        device: &'a str,
        why: String,
        defaulted_from: Option<&'a str>,
    },

    // ---- trees and classes (walk/tree.rs) ----
    TooDeep,
    InvalidClassName {
        name: &'a str,
    },
    /// A match field or entry that is not valid (classify's own words and fix).
    Match(MatchError),
    InnerMatch {
        path: &'a str,
    },
    InnerSetDscp {
        path: &'a str,
    },
    NoRate {
        path: &'a str,
    },
    InnerNetem {
        path: &'a str,
    },
    InnerLeaf {
        path: &'a str,
    },
    InnerMarks {
        path: &'a str,
    },
    InnerPrio {
        path: &'a str,
    },
    IdOutOfRange {
        value: i64,
    },
    IdNotInteger {
        found: &'a Value,
    },
    MarksNotArray {
        value: i64,
    },
    MarkZero,
    MarkOutOfRange {
        value: i64,
    },
    MarkNotInteger {
        found: &'a Value,
    },

    // ---- leaf qdiscs (walk/leaf.rs) ----
    LeafWithoutKind,
    TbfLimitAndLatency,
    UnknownLeafKind {
        kind: &'a str,
    },
    /// A port with a protocol flower has no port keys for (flower: tcp, udp, sctp).
    FlowerPortProto {
        proto: String,
    },
    /// `classifier = "…"` on an interface: not u32 or flower.
    UnknownClassifier {
        name: &'a str,
    },

    // ---- netem (netem.rs) ----
    UnknownPreset {
        name: &'a str,
        presets: &'a [&'a str],
    },
    NetemWrongType {
        key: &'a str,
        found: &'a Value,
    },
    LossCorrelationGemodel,
    LossCorrelationWithoutLoss,
    /// A netem field that needs another one; `NETEM_NEEDS` words it.
    NetemNeeds {
        field: &'static str,
    },
    LossWithoutGemodel,
    GemodelWithoutP,
    SlotWithoutMinDelay,
    SlotMaxBelowMin,

    // ---- the tree builder (resolve/*) ----
    DeviceTaken {
        device: &'a str,
        by: &'a str,
    },
    NetemWithClasses {
        tree: TreeName<'a>,
    },
    NetemWithRate {
        tree: TreeName<'a>,
    },
    RateWithoutClasses {
        tree: TreeName<'a>,
    },
    DefaultWithoutClasses {
        tree: TreeName<'a>,
        default: &'a str,
    },
    LeafWithoutClasses {
        tree: TreeName<'a>,
    },
    BurstWithoutClasses {
        tree: TreeName<'a>,
        key: &'a str,
        netem: bool,
    },
    TooManyClasses {
        tree: TreeName<'a>,
        count: usize,
        max: u64,
    },
    CeilBelowRate {
        path: &'a str,
        ceil: Rate,
        rate: Rate,
    },
    /// `what` ("rate" or "ceil") of a class is above its parent's ceil.
    AboveParentCeil {
        what: &'a str,
        path: &'a str,
        value: Rate,
        parent_ceil: Rate,
        parent: Who<'a>,
    },
    ChildrenAboveRate {
        parent: Who<'a>,
        sum: Rate,
        over: Rate,
        rate: Rate,
    },
    PercentWithoutRate {
        tree: TreeName<'a>,
        what: &'a str,
    },
    PercentBelow8bit {
        what: &'a str,
        percent: f64,
        of: Rate,
        bits: u64,
    },
    LeafAndNetem {
        path: &'a str,
        leaf: &'a str,
    },
    IdTaken {
        id: u16,
        by: &'a str,
    },
    /// `by` is None when the class itself lists the mark twice.
    MarkTaken {
        mark: u32,
        by: Option<&'a str>,
    },
    /// The same match steers into another class.
    MatchTaken {
        words: String,
        by: &'a str,
    },
    /// Two equally specific matches of different classes overlap: nothing says which wins.
    MatchAmbiguous {
        words: String,
        other: String,
        by: &'a str,
    },
    MarkMask,
    TooManyMatches {
        error: String,
    },
    SetDscpWithoutMatch {
        path: &'a str,
    },
    NoDefault {
        tree: TreeName<'a>,
        first_leaf: Option<&'a str>,
    },
    DefaultAmbiguous {
        default: &'a str,
        paths: Vec<&'a str>,
    },
    DefaultUnknown {
        default: &'a str,
        tree: TreeName<'a>,
        near: Option<&'a str>,
        leaves: String,
    },
    DefaultNotLeaf {
        default: &'a str,
        leaves: String,
    },
    DuplicatingNetem {
        path: &'a str,
        tree: TreeName<'a>,
        others: usize,
    },
}

/// netem fields that need another field: (field, what it needs, the fix).
const NETEM_NEEDS: &[(&str, &str, &str)] = &[
    ("jitter", "a delay", "add delay = \"100ms\""),
    ("delay_correlation", "a jitter", "add jitter = \"10ms\""),
    ("distribution", "a jitter", "add jitter = \"10ms\""),
    (
        "duplicate_correlation",
        "duplicate",
        "add duplicate = \"1%\"",
    ),
    ("corrupt_correlation", "corrupt", "add corrupt = \"0.1%\""),
    ("reorder_correlation", "reorder", "add reorder = \"25%\""),
    (
        "reorder",
        "a delay (reordered packets are the ones sent without it)",
        "add delay = \"10ms\"",
    ),
    ("gap", "reorder", "add reorder = \"25%\""),
    ("ecn", "a loss", "add loss = \"1%\""),
];

fn netem_need(field: &str) -> (&'static str, &'static str) {
    NETEM_NEEDS
        .iter()
        .find(|(f, _, _)| *f == field)
        .map_or(("another field", "see docs/policy.md"), |(_, n, h)| {
            (*n, *h)
        })
}

impl Problem<'_> {
    /// The diagnostic of this problem at `span`.
    pub fn at(self, span: Span) -> Diagnostic {
        let d = Diagnostic::error(span, self.to_string()).maybe_hint(self.hint());
        Diagnostic {
            severity: self.severity(),
            ..d
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Problem::DuplicatingNetem { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The fix, when one is obvious. One arm per variant that has one.
    pub fn hint(&self) -> Option<String> {
        use Problem::*;
        let s = |t: &str| Some(t.to_string());
        match self {
            Toml(_) | WrongType { .. } | NotUnitString { .. } | IntOutOfRange { .. } => None,
            FloatOutOfRange { .. } | SizeOutOfRange { .. } | MinAboveMax { .. } => None,
            PercentOutside { .. } | InvalidClassName { .. } | IdOutOfRange { .. } => None,
            MarkOutOfRange { .. } | NetemWrongType { .. } | SlotMaxBelowMin => None,
            DefaultWithoutClasses { .. } | TooManyClasses { .. } | CeilBelowRate { .. } => None,
            AboveParentCeil { .. } => None,
            NotUtf8 { .. } => s("a policy is a TOML text file"),
            Unit(e) => e.hint.clone(),
            UnknownKey { key, allowed, .. } => Some(match did_you_mean(key, allowed) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => format!("expected one of: {}", allowed.join(", ")),
            }),
            ClassWithoutClasses { key, .. } => Some(format!(
                "a class is a table under classes: did you mean [….classes.{}]?",
                toml_key(key)
            )),
            PercentNotAbsolute { .. } => s("write e.g. \"20mbit\""),
            InvalidPercentage { .. } => s("write e.g. \"40%\""),
            PercentMissing { .. } => s("write e.g. { percent = 40, min = \"1mbit\" }"),
            UnknownChoice { value, choices, .. } => Some(one_of_hint(value, choices)),
            TopLevelTable { key } => Some(format!(
                "interfaces are tables under interfaces: did you mean [interfaces.{}]?",
                toml_key(key)
            )),
            NoInterface => s("add e.g. [interfaces.wan] with device = \"eth0\" and rate = \"20mbit\""),
            NoInterfaceInTable => s("add e.g. [interfaces.wan] with device = \"eth0\""),
            RestoreWithoutTree { .. } => s("give the ingress classes with marks, or drop restore_mark"),
            IfbNameTaken { .. } => s("rename one of the devices (the ifb name is derived from the device: docs/ingress.md)"),
            PoliceMissing { .. } => s("write e.g. police = { rate = \"1mbit\", burst = \"16KiB\" }"),
            InvalidDevice { defaulted_from, .. } => defaulted_from.map(|k| {
                format!(
                    "the device defaults to the interface key; set device = \"eth0\" in [interfaces.{}]",
                    toml_key(k)
                )
            }),
            TooDeep => s("flatten the class tree"),
            Match(e) => e.hint(),
            InnerMatch { .. } => s("move the match to one of its child classes"),
            InnerSetDscp { .. } => s("set set_dscp on its leaf classes"),
            NoRate { .. } => s("add e.g. rate = \"10%\" or rate = \"2mbit\""),
            InnerNetem { .. } => s("put netem on a leaf class (one without classes)"),
            InnerLeaf { .. } => s("set leaf on its leaf classes"),
            InnerMarks { .. } => s("move the marks to one of its child classes"),
            InnerPrio { .. } => s("set prio on its child classes"),
            IdNotInteger { found } | MarkNotInteger { found } => unquote_hint(found),
            MarksNotArray { value } => Some(format!("write marks = [{value:#x}]")),
            MarkZero => s("send unmarked traffic to a class with the interface's `default`"),
            LeafWithoutKind => s("write e.g. leaf = { kind = \"fq_codel\", target = \"5ms\" }"),
            TbfLimitAndLatency => s("remove one of them"),
            UnknownLeafKind { kind } => Some(one_of_hint(kind, LEAF_KINDS)),
            FlowerPortProto { .. } => {
                s("use tcp, udp or sctp, or classifier = \"u32\" on this interface")
            }
            UnknownClassifier { name } => Some(one_of_hint(
                name,
                &crate::classify::Classifier::NAMES,
            )),
            UnknownPreset { name, presets } => Some(match did_you_mean(name, presets) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => format!("presets: {}", presets.join(", ")),
            }),
            LossCorrelationGemodel => {
                s("the Gilbert-Elliott model has its own p and r; remove loss_correlation")
            }
            LossCorrelationWithoutLoss => s("add loss = \"1%\""),
            NetemNeeds { field } => s(netem_need(field).1),
            LossWithoutGemodel => {
                s("write loss = \"1%\" or loss = { gemodel = { p = \"1%\", r = \"10%\" } }")
            }
            GemodelWithoutP => s("add p = \"1%\""),
            SlotWithoutMinDelay => s("write slot = { min_delay = \"10ms\" }"),
            DeviceTaken { .. } => s("describe each device once"),
            NetemWithClasses { .. } => s("move this netem into the class that should be impaired"),
            NetemWithRate { .. } => {
                s("limit the impaired link with netem's own rate: netem = { rate = \"…\" }")
            }
            RateWithoutClasses { tree } => Some(format!(
                "add a class that takes all traffic: [{}.classes.all] rate = \"100%\", and default = \"all\"",
                tree.header()
            )),
            LeafWithoutClasses { .. } => s("set leaf on an interface with classes"),
            BurstWithoutClasses { netem: true, .. } => s("remove it; netem's own rate has no burst"),
            BurstWithoutClasses { netem: false, .. } => s("remove it, or add classes"),
            ChildrenAboveRate { .. } => s("lower the children's rates or raise this rate"),
            PercentWithoutRate { tree, what } => Some(format!(
                "set rate = \"…\" in [{}], or write an absolute {what}",
                tree.header()
            )),
            PercentBelow8bit { .. } => s("raise the percentage or add a min"),
            LeafAndNetem { .. } => s("remove leaf; netem becomes the leaf qdisc"),
            IdTaken { .. } => s("give each class its own id, or remove id to get a hashed one"),
            MarkTaken { .. } => s("a mark can steer to one class only"),
            MatchTaken { .. } => s("a match can steer to one class only: remove one of them"),
            MatchAmbiguous { .. } => s(
                "make one of them more specific (e.g. add a port or a longer prefix), or steer both to one class",
            ),
            MarkMask => s("write the whole mark (fw filters with a mask are not written yet)"),
            TooManyMatches { .. } => s("split the addresses into prefixes, or the classes over interfaces"),
            SetDscpWithoutMatch { .. } => s(
                "add a [[….match]] entry: set_dscp rewrites the packets its matches steer (not marked ones)",
            ),
            NoDefault { first_leaf, .. } => first_leaf.map(|p| format!("add default = \"{p}\"")),
            DefaultAmbiguous { paths, .. } => Some(format!("write its path: {}", paths.join(" or "))),
            DefaultUnknown { near: Some(n), .. } => Some(format!("did you mean \"{n}\"?")),
            DefaultUnknown { leaves, .. } => Some(format!("leaf classes: {leaves}")),
            DefaultNotLeaf { leaves, .. } => Some(format!("name one of its leaves: {leaves}")),
            DuplicatingNetem { .. } => {
                s("put the duplicating netem on an interface of its own, or drop duplicate here")
            }
        }
    }
}

impl fmt::Display for Problem<'_> {
    /// The message. One arm per variant: a flat table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            Toml(m) => write!(f, "{m}"),
            NotUtf8 { byte } => write!(f, "the file is not UTF-8 text (byte {byte:#04x})"),
            WrongType { key, expected, found } => {
                write!(f, "\"{key}\" must be {expected}, found {}", found.type_name())
            }
            NotUnitString { key, example, found } => write!(
                f,
                "\"{key}\" must be a string like \"{example}\", found {}",
                found.type_name()
            ),
            Unit(e) => write!(f, "{}", e.message),
            UnknownKey { key, place, .. } | ClassWithoutClasses { key, place } => {
                write!(f, "unknown key \"{key}\" in {place}")
            }
            IntOutOfRange { key, value, lo, hi } => {
                write!(f, "\"{key}\" = {value} is out of range {lo}..={hi}")
            }
            FloatOutOfRange { key, lo, hi } => write!(f, "\"{key}\" is out of range {lo}..={hi}"),
            PercentNotAbsolute { key } => {
                write!(f, "\"{key}\" must be an absolute rate, not a percentage")
            }
            SizeOutOfRange { value } => write!(f, "size {value} is out of range 0..4GiB"),
            InvalidPercentage { text } => write!(f, "invalid percentage \"{text}\""),
            PercentMissing { key } => write!(f, "\"{key}\" has no \"percent\""),
            MinAboveMax { key, min, max } => write!(f, "\"{key}\": min {min} is above max {max}"),
            PercentOutside { percent } => {
                write!(f, "percentage {}% is outside (0%, 100%]", fmt_num(*percent))
            }
            UnknownChoice { key, value, .. } => write!(f, "unknown {key} \"{value}\""),
            TopLevelTable { key } => write!(f, "unknown key \"{key}\" in the policy"),
            NoInterface | NoInterfaceInTable => write!(f, "the policy names no interface"),
            RestoreWithoutTree { tree } => write!(
                f,
                "restore_mark: {tree} has no tree whose marks could use the restored mark"
            ),
            IfbNameTaken { ifb, by } => write!(
                f,
                "the ifb device \"{ifb}\" of this ingress tree is already used by interface \"{by}\""
            ),
            PoliceMissing { key } => write!(f, "police needs a \"{key}\""),
            InvalidDevice { device, why, .. } => write!(
                f,
                "device name \"{device}\" is not a valid Linux interface name: {why}"
            ),
            TooDeep => write!(
                f,
                "classes are nested too deep: htb allows at most {MAX_CLASS_DEPTH} levels of classes below an interface"
            ),
            InvalidClassName { name } => write!(
                f,
                "class name {name:?} is not valid: it must be non-empty, without \"/\" or control characters"
            ),
            Match(e) => write!(f, "{e}"),
            InnerMatch { path } => write!(
                f,
                "class \"{path}\" has children: a match must steer to a leaf class"
            ),
            InnerSetDscp { path } => write!(
                f,
                "class \"{path}\" has children: set_dscp marks the packets of a leaf class"
            ),
            NoRate { path } => write!(f, "class \"{path}\" has no rate"),
            InnerNetem { path } => {
                write!(f, "class \"{path}\" has children, so it cannot have netem")
            }
            InnerLeaf { path } => write!(f, "class \"{path}\" has children, so it has no leaf qdisc"),
            InnerMarks { path } => write!(
                f,
                "class \"{path}\" has children: marks must steer to a leaf class"
            ),
            InnerPrio { path } => write!(
                f,
                "class \"{path}\" has children: htb uses prio only on leaf classes"
            ),
            IdOutOfRange { value } => write!(
                f,
                "id {} is out of range 0x2..=0xfffe (minors 0 and 1 are reserved, 0xffff too)",
                if *value < 0 { value.to_string() } else { format!("{value:#x}") }
            ),
            IdNotInteger { found } => write!(
                f,
                "\"id\" must be an integer like 0x30, found {}",
                found.type_name()
            ),
            MarksNotArray { .. } => write!(f, "\"marks\" must be an array of integers"),
            MarkZero => write!(f, "mark 0 means unmarked traffic and cannot be matched"),
            MatchTaken { words, by } => write!(
                f,
                "the match \"{words}\" already steers into class \"{by}\""
            ),
            MatchAmbiguous { words, other, by } => write!(
                f,
                "the match \"{words}\" overlaps \"{other}\" of class \"{by}\", and neither is more specific"
            ),
            MarkMask => write!(f, "a mark with a mask is not supported in a match"),
            TooManyMatches { error } => write!(f, "{error}"),
            SetDscpWithoutMatch { path } => write!(
                f,
                "class \"{path}\" has set_dscp but no match entry to mark"
            ),
            MarkOutOfRange { value } => write!(f, "mark {value} is out of range 1..=0xffffffff"),
            MarkNotInteger { found } => write!(
                f,
                "a mark must be an integer like 0x10, found {}",
                found.type_name()
            ),
            LeafWithoutKind => write!(f, "\"leaf\" table has no \"kind\""),
            TbfLimitAndLatency => write!(f, "tbf takes either limit or latency, not both"),
            UnknownLeafKind { kind } => write!(f, "unknown leaf qdisc kind \"{kind}\""),
            FlowerPortProto { proto } => write!(
                f,
                "flower has no port keys for protocol {proto} (only tcp, udp and sctp)"
            ),
            UnknownClassifier { name } => write!(
                f,
                "unknown classifier \"{name}\" (matches are u32 or flower filters)"
            ),
            UnknownPreset { name, .. } => write!(f, "unknown netem preset \"{name}\""),
            NetemWrongType { key, found } => write!(
                f,
                "\"{key}\" must be a table or a preset name like \"3g\", found {}",
                found.type_name()
            ),
            LossCorrelationGemodel => {
                write!(f, "loss_correlation does not apply to a gemodel loss")
            }
            LossCorrelationWithoutLoss => write!(f, "loss_correlation without loss"),
            NetemNeeds { field } => write!(f, "netem {field} needs {}", netem_need(field).0),
            LossWithoutGemodel => write!(f, "loss table has no \"gemodel\""),
            GemodelWithoutP => write!(f, "gemodel needs p (the good→bad probability)"),
            SlotWithoutMinDelay => write!(f, "slot needs min_delay"),
            SlotMaxBelowMin => write!(f, "slot max_delay is below min_delay"),
            DeviceTaken { device, by } => write!(
                f,
                "device \"{device}\" is already managed by interface \"{by}\""
            ),
            NetemWithClasses { tree } => {
                write!(f, "{tree} has classes, so netem belongs on its leaf classes")
            }
            NetemWithRate { tree } => write!(
                f,
                "{tree} has only netem: the rate would have no class to shape"
            ),
            RateWithoutClasses { tree } => {
                write!(f, "{tree} has a rate but no classes to shape into")
            }
            DefaultWithoutClasses { tree, default } => write!(
                f,
                "default names class \"{default}\", but {tree} has no classes"
            ),
            LeafWithoutClasses { tree } => write!(f, "{tree} has no classes, so no leaf qdiscs"),
            BurstWithoutClasses { tree, key, .. } => write!(
                f,
                "{tree} has no classes: {key} belongs to the root class of an interface with classes"
            ),
            TooManyClasses { tree, count, max } => write!(
                f,
                "{tree} has {count} classes; htb minors allow at most {max}"
            ),
            CeilBelowRate { path, ceil, rate } => {
                write!(f, "ceil {ceil} is below the rate {rate} of class \"{path}\"")
            }
            AboveParentCeil { what, path, value, parent_ceil, parent } => write!(
                f,
                "{what} {value} of class \"{path}\" is above the ceil {parent_ceil} of its parent {parent}"
            ),
            ChildrenAboveRate { parent, sum, over, rate } => write!(
                f,
                "the classes under {parent} guarantee {sum} in total, {over} more than its rate {rate}"
            ),
            PercentWithoutRate { tree, what } => write!(
                f,
                "{what} is a percentage, but {tree} has no rate to take it of"
            ),
            PercentBelow8bit { what, percent, of, bits } => write!(
                f,
                "{what} {}% of {of} is {bits}bit, below 8bit, the smallest rate the kernel keeps",
                fmt_pct(*percent)
            ),
            LeafAndNetem { path, leaf } => write!(
                f,
                "class \"{path}\" sets both leaf ({leaf}) and netem: a class has one leaf qdisc"
            ),
            IdTaken { id, by } => write!(f, "id {id:#x} is already used by class \"{by}\""),
            MarkTaken { mark, by: None } => {
                write!(f, "mark {mark:#x} is already used by this class")
            }
            MarkTaken { mark, by: Some(by) } => {
                write!(f, "mark {mark:#x} is already used by class \"{by}\"")
            }
            NoDefault { tree, .. } => write!(
                f,
                "{tree} has classes but no default class for unclassified traffic"
            ),
            DefaultAmbiguous { default, .. } => {
                write!(f, "default \"{default}\" names more than one class")
            }
            DefaultUnknown { default, tree, .. } => {
                write!(f, "default \"{default}\" names no class of {tree}")
            }
            DefaultNotLeaf { default, .. } => write!(
                f,
                "default \"{default}\" has child classes; traffic can only wait in a leaf class"
            ),
            DuplicatingNetem { path, tree, others } => write!(
                f,
                "class \"{path}\" duplicates packets, and {tree} has {others} other netem{}: \
                 current Linux kernels refuse that (\"netem: cannot mix duplicating netems \
                 with other netems in tree\")",
                if *others == 1 { "" } else { "s" }
            ),
        }
    }
}

/// "did you mean" for a close choice, else the whole list.
fn one_of_hint(value: &str, choices: &[&str]) -> String {
    match did_you_mean(value, choices) {
        Some(c) => format!("did you mean \"{c}\"?"),
        None => format!("use one of: {}", choices.join(", ")),
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

fn fmt_num(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn fmt_pct(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as u64)
    } else {
        format!("{p}")
    }
}
