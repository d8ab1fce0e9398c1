//! Classification without a firewall: the policy's `match` entries, their u32 encoding and
//! decoding, and the layout of a tree's match filters (priorities, handles, hash tables).
//!
//! Two backends implement a [`Match`]: u32 (the default: every kernel has it) and flower
//! (opt-in per interface, `classifier = "flower"`: needs `cls_flower`, keys by name, an
//! edited match is one `filter replace`). How the choice is made: docs/match.md.

pub mod action;
pub mod layout;
pub mod matcher;
pub mod read;
pub mod u32;

use std::fmt;
use std::str::FromStr;

pub use matcher::{Family, Match, MatchError};

/// Which tc classifier implements an interface's matches (`classifier = "…"`).
///
/// Chosen by the policy, never by probing the router: a plan must be a function of the
/// policy and the live state only, so that `apply --dry-run --state FILE` offline plans
/// the same commands as a live apply (docs/match.md, "u32 or flower").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classifier {
    #[default]
    U32,
    Flower,
}

impl Classifier {
    pub const NAMES: [&'static str; 2] = ["u32", "flower"];
}

impl FromStr for Classifier {
    type Err = ();
    fn from_str(s: &str) -> Result<Classifier, ()> {
        match s {
            "u32" => Ok(Classifier::U32),
            "flower" => Ok(Classifier::Flower),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Classifier::U32 => "u32",
            Classifier::Flower => "flower",
        })
    }
}
