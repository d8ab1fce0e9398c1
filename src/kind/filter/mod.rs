//! The filter (classifier) kinds: one module each, one line each in the registry below.
//!
//! The registry line declares the kind's module, its variant of the model's
//! [`FilterKind`] (re-exported as `crate::model::FilterKind`) and its [`FilterDef`].
//! Classifiers qosctl does not write (bpf, matchall, …, and u32 and flower filters not in
//! qosctl's shape) are read by [`foreign`] into `FilterKind::Other`, shown, and removed from managed
//! devices.

use anyhow::Result;
use serde::Serialize;

use crate::model::{Filter, Handle};
use crate::plan::FieldDiff;
use crate::tc::read::filter::{Entry, Parsed};

pub mod foreign;

/// What one filter kind knows about itself. Methods get the whole [`FilterKind`] and are
/// only called with the kind's own variant.
pub trait FilterDef: Sync {
    /// qosctl writes it: a live filter of a kind that is not managed is removed with its
    /// whole priority.
    fn managed(&self) -> bool {
        true
    }
    /// One entry of `tc filter show` (JSON or text) → kind, classid and counters.
    fn read(&self, e: &Entry) -> Result<Parsed>;
    /// tc's arguments after `filter add … prio N` (the classid is added by the caller).
    fn args(&self, k: &FilterKind) -> String;
    /// The words after `filter del … prio N` that pick exactly this filter; `None`:
    /// delete the whole priority (all its handles).
    fn del_args(&self, k: &FilterKind) -> Option<String>;
    /// The filter in the plan, after "filter ": `fw 0x10`.
    fn describe(&self, k: &FilterKind) -> String;
    /// `show`'s handle and match columns.
    fn columns(&self, k: &FilterKind) -> (String, String);
    /// What tells two filters at one (parent, prio) apart, for the keyed diff.
    fn key(&self, k: &FilterKind) -> u64;
    /// The reader's order within one (parent, prio, protocol, kind).
    fn order(&self, k: &FilterKind) -> (u32, String);
    /// tc's arguments for `filter replace` of a live filter (default: [`FilterDef::args`]).
    fn change_args(&self, k: &FilterKind) -> String {
        self.args(k)
    }
    /// tc's words after the classid: the filter's actions (`action mirred …`).
    fn action_args(&self, _k: &FilterKind) -> String {
        String::new()
    }
    /// What differs between a desired and a live filter of one key besides the classid;
    /// changed in place (`filter replace`) like the classid.
    fn fields(&self, _d: &FilterKind, _l: &FilterKind) -> Vec<FieldDiff> {
        Vec::new()
    }
    /// The desired filter as a change in place writes it: with the live filter's identity
    /// where the kernel numbered part of it (u32: the root table of the priority).
    fn in_place_of(&self, d: &FilterKind, _l: &FilterKind) -> FilterKind {
        d.clone()
    }
    /// A priority left with none of the policy's filters is deleted whole (one command)
    /// instead of filter by filter (u32: deleting its last rule would leave the kernel's
    /// root table behind, and a hash table cannot go in the batch that unlinks it).
    fn whole_prio(&self) -> bool {
        false
    }
    /// What the kernel holds at most once per (parent, prio, protocol), whatever the handle
    /// (flower: the masked key; `fl_change` refuses a second filter with it, `EEXIST`).
    /// A change in place whose new content another live filter that stays holds is planned as
    /// delete + add instead, so the other one is gone (filters off come first) before it
    /// lands: two matches that swap addresses, or a match that takes over a deleted one's.
    fn unique_content(&self, _k: &FilterKind) -> Option<u64> {
        None
    }
    /// An object that can only go with its whole priority (a u32 hash table: the kernel
    /// frees it only after its link, after an RCU grace period, not within one batch).
    fn pins_prio(&self, _k: &FilterKind) -> bool {
        false
    }
}

/// The registry: `Variant { fields } = "tc word" => module::Def,` declares the module,
/// the model's variant, the kind word and the kind's [`FilterDef`] in one line.
macro_rules! filter_kinds {
    ($( $(#[$doc:meta])* $variant:ident $fields:tt = $name:literal => $module:ident :: $def:ident, )*) => {
        $( pub mod $module; )*

        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum FilterKind {
            $( $(#[$doc])* $variant $fields, )*
            /// Anything else the reader found (u32, flower, bpf, …): qosctl does not write
            /// these, it removes them from managed devices. `handle` is the filter handle
            /// as tc printed it (e.g. `800::800`), needed to delete exactly this filter;
            /// `summary` is for display.
            Other {
                kind: String,
                handle: Option<String>,
                summary: String,
            },
        }

        /// Every filter kind qosctl writes, by kind word; the reader looks a kind up here.
        pub static FILTERS: &[(&str, &dyn FilterDef)] = &[$( ($name, &$module::$def), )*];

        impl FilterKind {
            pub fn kind_name(&self) -> &str {
                match self {
                    $( FilterKind::$variant { .. } => $name, )*
                    FilterKind::Other { kind, .. } => kind,
                }
            }
            /// This kind's home (the foreign catch-all for `Other`).
            pub fn def(&self) -> &'static dyn FilterDef {
                match self {
                    $( FilterKind::$variant { .. } => &$module::$def, )*
                    FilterKind::Other { .. } => &foreign::Def,
                }
            }
        }
    };
}

filter_kinds! {
    /// `fw`: firewall mark `handle` (with `mask`, default 0xffffffff).
    Fw { mark: u32, mask: u32 } = "fw" => fw::Def,
    /// `u32`: qosctl's own u32 objects (match rules, hash tables and their links, action
    /// filters; see `u32.rs` for which live u32 filters are qosctl's). `handle` as written
    /// (`::5` = node 5 of the root table the kernel numbers) or read (`800::5`).
    U32 {
        handle: u32::U32Handle,
        body: u32::Body,
        actions: Vec<crate::classify::action::Action>,
    } = "u32" => u32::Def,
    /// `flower`: a match filter of an interface with `classifier = "flower"` (see
    /// `flower.rs` for which live flower filters are qosctl's). `handle`: class minor and
    /// ordinal (`classify::layout::flower_handle`).
    Flower {
        handle: u32,
        #[serde(rename = "match")]
        m: crate::classify::Match,
        actions: Vec<crate::classify::action::Action>,
    } = "flower" => flower::Def,
}

/// The reader for a tc kind word: its registered kind, or the foreign catch-all.
pub fn by_name(name: &str) -> &'static dyn FilterDef {
    FILTERS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&foreign::Def, |(_, d)| *d)
}

/// Whether qosctl writes filters of this kind.
pub fn is_managed(k: &FilterKind) -> bool {
    k.def().managed()
}

/// The key of a filter in the keyed diff: where it hangs, its priority, and what its
/// kind tells apart there.
pub fn key(f: &Filter) -> (Handle, u16, u64) {
    (f.parent, f.prio, f.kind.def().key(&f.kind))
}

pub fn describe(k: &FilterKind) -> String {
    k.def().describe(k)
}

pub fn args(k: &FilterKind) -> String {
    k.def().args(k)
}

pub fn del_args(k: &FilterKind) -> Option<String> {
    k.def().del_args(k)
}

pub fn columns(k: &FilterKind) -> (String, String) {
    k.def().columns(k)
}

pub fn change_args(k: &FilterKind) -> String {
    k.def().change_args(k)
}

pub fn action_args(k: &FilterKind) -> String {
    k.def().action_args(k)
}
