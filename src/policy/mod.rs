//! The policy file: TOML schema, units, validation with spans into the file.
//!
//! Pipeline: text → `node` (spanned TOML tree; only syntax errors here) → `walk` (into the
//! types of `schema`: typed, locally valid; every unknown key, wrong type and bad unit is
//! collected) → `resolve` (one tree builder: absolute rates, handles, cross-class rules) →
//! `model::Desired`. Every problem of every stage is a `problem::Problem`, worded there;
//! all are reported together. docs/architecture.md walks through it.

pub mod diag;
mod events;
pub mod netem;
pub mod node;
pub mod problem;
pub mod schema;
pub mod walk;

use anyhow::{anyhow, Context, Result};
use std::path::Path;

use crate::model::Desired;
use crate::resolve::{self, Resolved};
use diag::{Diagnostic, Severity, Source};
use problem::Problem;

/// The result of checking a policy: the resolved interfaces (complete only when there are
/// no errors) and every diagnostic, in file order.
#[derive(Debug)]
pub struct Checked {
    /// The name the diagnostics use for the file (its path as given).
    pub name: String,
    pub text: String,
    pub diagnostics: Vec<Diagnostic>,
    pub resolved: Resolved,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
    /// Every diagnostic as `file:line:col: severity: message`, the line and a caret.
    pub fn render(&self) -> String {
        Source::new(self.name.clone(), &self.text).render_all(&self.diagnostics)
    }
    pub fn desired(&self) -> Desired {
        self.resolved.desired()
    }
    /// Only the warnings, rendered like `render` (empty when there are none).
    pub fn render_warnings(&self) -> String {
        let warnings: Vec<Diagnostic> = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .cloned()
            .collect();
        Source::new(self.name.clone(), &self.text).render_all(&warnings)
    }
}

/// Checks policy text. `name` is what the diagnostics call the file.
pub fn check_str(name: &str, text: &str) -> Checked {
    let mut diagnostics = Vec::new();
    let mut resolved = Resolved::default();
    match node::parse(text) {
        Err(e) => {
            let msg = toml_message(e.message().trim());
            diagnostics.push(Problem::Toml(&msg).at(e.span()));
        }
        Ok(root) => {
            let mut w = walk::Walker::default();
            let policy = w.policy(&root);
            diagnostics = w.diags;
            resolved = resolve::resolve(&policy, &mut diagnostics);
            crate::limits::check(&root, &mut resolved, &mut diagnostics);
        }
    }
    // File order reads best; errors without a position (none in the file) go first.
    diagnostics.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
    Checked {
        name: name.to_string(),
        text: text.to_string(),
        diagnostics,
        resolved,
    }
}

/// toml's messages sometimes span lines ("invalid table header" then the reason).
fn toml_message(msg: &str) -> String {
    let parts: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if parts.is_empty() {
        "invalid TOML".into()
    } else {
        format!("invalid TOML: {}", parts.join(": "))
    }
}

/// Reads and checks a policy file. Only an unreadable file is an `Err`; a file that is not
/// UTF-8 is a diagnostic pointing at the first bad byte.
pub fn check_file(path: &Path) -> Result<Checked> {
    let bytes = crate::input::read_bounded(path, crate::input::MAX_POLICY_BYTES)
        .with_context(|| format!("cannot read policy file {}", path.display()))?;
    let name = path.display().to_string();
    match String::from_utf8(bytes) {
        Ok(text) => Ok(check_str(&name, &text)),
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // Show the file up to the bad byte, so line:col point at it.
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let lossy_offset = String::from_utf8_lossy(&bytes[..good]).len();
            let bad = bytes.get(good).copied().unwrap_or(0);
            Ok(Checked {
                name,
                text,
                diagnostics: vec![
                    Problem::NotUtf8 { byte: bad }.at(Some(lossy_offset..lossy_offset + 1))
                ],
                resolved: Resolved::default(),
            })
        }
    }
}

/// Parses, validates and resolves a policy file. The error lists every problem found,
/// each with file:line:col, the offending line and a caret.
pub fn load(path: &Path) -> Result<Desired> {
    load_with_warnings(path).map(|(desired, _)| desired)
}

/// As `load`, and the policy's warnings rendered (empty when there are none), for commands
/// that change the kernel to show before they do.
pub fn load_with_warnings(path: &Path) -> Result<(Desired, String)> {
    let checked = check_file(path)?;
    if checked.has_errors() {
        let n = checked.error_count();
        return Err(anyhow!(
            "policy {} has {n} error{}:\n{}",
            path.display(),
            if n == 1 { "" } else { "s" },
            checked.render().trim_end()
        ));
    }
    let warnings = checked.render_warnings();
    Ok((checked.resolved.into_desired(), warnings))
}
