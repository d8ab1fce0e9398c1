//! One home per kind: every qdisc kind and filter kind qosctl writes has one module that
//! holds its tc arguments, its one-line summary (used by `check`, the plan and `show`
//! alike), its field diff with tolerances, its re-create reason and its reader (tc's
//! JSON or text → model). Each kind is one line of its registry ([`qdisc`], [`filter`]):
//! adding a kind is its own file plus that line. See docs/architecture.md.

use std::fmt::Display;

use crate::units::Size;

pub mod filter;
pub mod qdisc;

/// How a summary writes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `check` and the plan: the policy's own units (`64KiB`, htb `default db9d`), the
    /// knobs a policy sets.
    Brief,
    /// `show`: the kernel's values exactly (`30000B`, `default 0x10`), every flag it reports.
    Full,
}

/// A one-line summary being written: `name value name value flag …`.
pub struct Line {
    pub style: Style,
    words: Vec<String>,
}

impl Line {
    pub fn new(style: Style) -> Line {
        Line {
            style,
            words: Vec::new(),
        }
    }
    /// A bare word (`diffserv4`, `ecn`).
    pub fn word(&mut self, w: impl Into<String>) {
        self.words.push(w.into());
    }
    /// `name value`, when there is a value.
    pub fn opt(&mut self, name: &str, v: Option<impl Display>) {
        if let Some(v) = v {
            self.words.push(format!("{name} {v}"));
        }
    }
    /// A size: in the policy's units (Brief) or in bytes as the kernel keeps it (Full).
    pub fn size(&mut self, name: &str, v: Option<Size>) {
        let style = self.style;
        self.opt(
            name,
            v.map(|s| match style {
                Style::Brief => s.to_string(),
                Style::Full => format!("{}B", s.bytes()),
            }),
        );
    }
    /// A hex number: `db9d` (Brief, as tc takes it) or `0xdb9d` (Full, as tc prints it).
    pub fn hex(&mut self, name: &str, v: u32) {
        match self.style {
            Style::Brief => self.words.push(format!("{name} {v:x}")),
            Style::Full => self.words.push(format!("{name} {v:#x}")),
        }
    }
    pub fn flag(&mut self, name: &str, on: bool) {
        if on {
            self.words.push(name.to_string());
        }
    }
    pub fn finish(self) -> String {
        self.words.join(" ")
    }
}
