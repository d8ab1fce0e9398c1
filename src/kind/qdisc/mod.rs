//! The qdisc kinds: one module each, one line each in the registry below.
//!
//! The registry line declares the kind's module, its variant of the model's
//! [`QdiscKind`] (re-exported as `crate::model::QdiscKind`) and the [`QdiscDef`] that
//! the reader, the renderer, the planner, `check` and `show` reach it through. Qdiscs
//! qosctl does not write (kernel defaults, ingress, clsact, foreign kinds) are in
//! [`system`].

use anyhow::Result;
use serde::Serialize;

use super::{Line, Style};
use crate::plan::FieldDiff;
use crate::tc::read::json::J;

pub mod system;

/// What one qdisc kind knows about itself. Every method gets the whole [`QdiscKind`];
/// a kind's methods are only ever called with its own variant (and `fields` and
/// `recreate_reason` with its own variant on both sides).
pub trait QdiscDef: Sync {
    /// Holds classes: the planner diffs the tree under it.
    fn classful(&self) -> bool {
        false
    }
    /// The `options` object of `tc -j -d qdisc show` → this kind.
    fn read(&self, opts: &J) -> Result<QdiscKind>;
    /// tc's arguments after the kind word, for `qdisc add`.
    fn args(&self, k: &QdiscKind, a: &mut Vec<String>);
    /// The same for `qdisc change` (where the kernel refuses some of them).
    fn change_args(&self, k: &QdiscKind, a: &mut Vec<String>) {
        self.args(k, a)
    }
    /// The one-line summary after the kind word.
    fn summary(&self, k: &QdiscKind, line: &mut Line);
    /// The fields that differ, desired `d` against live `l`, with the kernel's tolerances.
    fn fields(&self, d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff>;
    /// Why the kernel cannot take the change in place, if it cannot: the qdisc (for a
    /// classful root: its whole tree) is removed and added again.
    fn recreate_reason(&self, _d: &QdiscKind, _l: &QdiscKind) -> Option<String> {
        None
    }
}

/// `fn of(k) -> Option<&Options>`: a kind's own options out of a [`QdiscKind`], and
/// `fn both(d, l)`: those of a desired and a live qdisc of that kind.
macro_rules! options_of {
    ($variant:ident, $ty:ty) => {
        fn of(k: &QdiscKind) -> Option<&$ty> {
            match k {
                QdiscKind::$variant(o) => {
                    let o: &$ty = o;
                    Some(o)
                }
                _ => None,
            }
        }
        #[allow(dead_code)] // not every kind compares options
        fn both<'a>(d: &'a QdiscKind, l: &'a QdiscKind) -> Option<(&'a $ty, &'a $ty)> {
            Some((of(d)?, of(l)?))
        }
    };
}

/// The registry: `Variant(options) = "tc word" => module::Def,` declares the module, the
/// model's variant, the kind word and the kind's [`QdiscDef`] in one line.
macro_rules! qdisc_kinds {
    ($( $(#[$doc:meta])* $variant:ident $fields:tt = $name:literal => $module:ident :: $def:ident, )*) => {
        $( pub mod $module; )*

        /// The qdisc kinds qosctl writes, with the options it manages. `Other` is whatever
        /// the reader found that qosctl does not write (it is removed when on a managed
        /// device).
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum QdiscKind {
            $( $(#[$doc])* $variant $fields, )*
            Ingress,
            Other { kind: String },
        }

        /// Every kind qosctl writes, by kind word; the reader looks a kind up here.
        pub static QDISCS: &[(&str, &dyn QdiscDef)] = &[$( ($name, &$module::$def), )*];

        impl QdiscKind {
            /// The tc kind word.
            pub fn kind_name(&self) -> &str {
                match self {
                    $( QdiscKind::$variant { .. } => $name, )*
                    QdiscKind::Ingress => system::INGRESS,
                    QdiscKind::Other { kind } => kind,
                }
            }
            /// This kind's home; `None` for the qdiscs qosctl does not write.
            pub fn def(&self) -> Option<&'static dyn QdiscDef> {
                match self {
                    $( QdiscKind::$variant { .. } => Some(&$module::$def), )*
                    QdiscKind::Ingress | QdiscKind::Other { .. } => None,
                }
            }
        }
    };
}

qdisc_kinds! {
    Htb(htb::Htb) = "htb" => htb::Def,
    Pfifo { limit: Option<u32> } = "pfifo" => pfifo::Def,
    Bfifo { limit: Option<crate::units::Size> } = "bfifo" => bfifo::Def,
    Tbf(tbf::Tbf) = "tbf" => tbf::Def,
    FqCodel(fq_codel::FqCodel) = "fq_codel" => fq_codel::Def,
    Cake(cake::Cake) = "cake" => cake::Def,
    Sfq(sfq::Sfq) = "sfq" => sfq::Def,
    /// Boxed: netem's ~400 bytes would make every qdisc that large, and a 10,000-class
    /// tree holds 10,000 leaf qdiscs.
    Netem(Box<netem::Netem>) = "netem" => netem::Def,
}

impl QdiscKind {
    /// Holds classes (htb): the planner diffs its tree.
    pub fn is_classful(&self) -> bool {
        self.def().is_some_and(|d| d.classful())
    }
}

/// The kind registered under a tc kind word.
pub fn by_name(name: &str) -> Option<&'static dyn QdiscDef> {
    QDISCS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

/// The kind word and its options, as tc takes them for `qdisc add`.
pub fn args(k: &QdiscKind) -> String {
    let mut a = vec![k.kind_name().to_string()];
    if let Some(d) = k.def() {
        d.args(k, &mut a);
    }
    a.join(" ")
}

/// The same for `qdisc change`.
pub fn change_args(k: &QdiscKind) -> String {
    let mut a = vec![k.kind_name().to_string()];
    if let Some(d) = k.def() {
        d.change_args(k, &mut a);
    }
    a.join(" ")
}

/// The options in one line, without the kind word (`show` has a column for that).
pub fn options(k: &QdiscKind, style: Style) -> String {
    let mut line = Line::new(style);
    if let Some(d) = k.def() {
        d.summary(k, &mut line);
    }
    line.finish()
}

/// The kind word and its options in one line: `netem delay 40ms jitter 5ms loss 0.5%`.
pub fn summary(k: &QdiscKind, style: Style) -> String {
    let mut line = Line::new(style);
    line.word(k.kind_name());
    if let Some(d) = k.def() {
        d.summary(k, &mut line);
    }
    line.finish()
}

/// Fields that differ between two qdiscs of the same kind (none for different kinds:
/// those are re-created, never compared).
pub fn fields(d: &QdiscKind, l: &QdiscKind) -> Vec<FieldDiff> {
    match (d.def(), l.def()) {
        (Some(def), Some(_)) if same_kind(d, l) => def.fields(d, l),
        _ => Vec::new(),
    }
}

/// Why a qdisc of the same kind cannot take the change in place, if it cannot.
pub fn recreate_reason(d: &QdiscKind, l: &QdiscKind) -> Option<String> {
    match (d.def(), l.def()) {
        (Some(def), Some(_)) if same_kind(d, l) => def.recreate_reason(d, l),
        _ => None,
    }
}

fn same_kind(d: &QdiscKind, l: &QdiscKind) -> bool {
    std::mem::discriminant(d) == std::mem::discriminant(l)
}
