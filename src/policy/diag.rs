//! Diagnostics that point into the policy file: `file:line:col: message`, the line, a caret.

use std::fmt::Write as _;
use std::ops::Range;

use super::node::Span;
use crate::escape;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a policy file. `span` is a byte range into the file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    /// The fix, when one is obvious ("did you mean …").
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            hint: None,
        }
    }
    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
    pub fn maybe_hint(mut self, hint: Option<String>) -> Diagnostic {
        self.hint = hint;
        self
    }
}

/// The text of a policy file with its line starts, to turn byte offsets into line:col.
pub struct Source<'a> {
    pub name: String,
    pub text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(name: impl Into<String>, text: &'a str) -> Source<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line + 1, col + 1)
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }

    /// Renders one diagnostic:
    ///
    /// ```text
    /// home.toml:3:8: error: rate "5000" has no unit
    ///     3 | rate = 5000
    ///       |        ^^^^ did you mean "5000kbit"?
    /// ```
    pub fn render(&self, d: &Diagnostic) -> String {
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        // Messages quote policy keys, which may hold any character: a key with a newline
        // or an escape sequence must not forge lines or colours (the plan escapes alike).
        let (name, message) = (escape::controls(&self.name), escape::controls(&d.message));
        let hint = d.hint.as_deref().map(escape::controls);
        let Some(span) = d.span.clone() else {
            let _ = writeln!(out, "{name}: {sev}: {message}");
            if let Some(h) = &hint {
                let _ = writeln!(out, "    = help: {h}");
            }
            return out;
        };
        let Range { start, end } = span;
        let (line, col) = self.line_col(start);
        let _ = writeln!(out, "{name}:{line}:{col}: {sev}: {message}");
        let full = self.line_text(line);
        // A very long line (minified or garbage) is shown as a window around the column.
        let skip = col.saturating_sub(60);
        let text: String = full.chars().skip(skip).take(120).collect();
        let col = col - skip;
        let prefix = if skip > 0 { "…" } else { "" };
        // Printable form of the line: control characters would garble the terminal.
        let shown: String = text
            .chars()
            .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
            .collect();
        let gutter = line.to_string().len().max(3);
        let _ = writeln!(out, " {line:>gutter$} | {prefix}{shown}");
        let line_end_col = text.chars().count() + 1;
        let end_col = if end > start {
            let (el, ec) = self.line_col(end);
            if el == line {
                ec.saturating_sub(skip).min(line_end_col)
            } else {
                line_end_col
            }
        } else {
            col + 1
        };
        let width = end_col.saturating_sub(col).max(1);
        // Keep tabs so the caret lines up under them.
        let pad: String = prefix
            .chars()
            .chain(text.chars())
            .take(col - 1 + prefix.chars().count())
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = write!(out, " {:>gutter$} | {pad}{}", "", "^".repeat(width));
        match &hint {
            Some(h) => {
                let _ = writeln!(out, " {h}");
            }
            None => out.push('\n'),
        }
        out
    }

    /// All diagnostics, errors first in file order, then a count.
    pub fn render_all(&self, diags: &[Diagnostic]) -> String {
        let mut out = String::new();
        for d in diags {
            out.push_str(&self.render(d));
        }
        out
    }
}

/// A close match among `candidates`, for "did you mean …".
///
/// Close means a small edit distance, or one word extending the other ("ceiling" → "ceil").
/// When several candidates are equally close there is no obvious fix: `None`.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    if w.is_empty() {
        return None;
    }
    let mut scored: Vec<(usize, &'a str)> = candidates
        .iter()
        .filter_map(|c| {
            let lc = c.to_ascii_lowercase();
            let d = edit_distance(&w, &lc);
            let near = d <= (lc.len().max(w.len()) / 3).max(1);
            let extends =
                lc.len() >= 3 && w.len() >= 3 && (w.starts_with(&lc) || lc.starts_with(&w));
            (near || extends).then_some((d, *c))
        })
        .collect();
    scored.sort_by_key(|(d, _)| *d);
    match scored.as_slice() {
        [] => None,
        [(_, c)] => Some(c),
        [(d0, c), (d1, _), ..] if d0 < d1 => Some(c),
        _ => None,
    }
}

/// Levenshtein distance with adjacent transpositions (so "rtae" is close to "rate").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Keys are short; a long garbage key is simply "not close".
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_col_and_caret() {
        let src = Source::new("p.toml", "[x]\nrate = 5000\n");
        let d = Diagnostic::error(Some(11..15), "rate 5000 has no unit")
            .hint("did you mean \"5000kbit\"?");
        let r = src.render(&d);
        assert_eq!(
            r,
            "p.toml:2:8: error: rate 5000 has no unit\n   2 | rate = 5000\n     |        ^^^^ did you mean \"5000kbit\"?\n"
        );
    }

    #[test]
    fn control_characters_of_keys_are_escaped_in_message_and_hint() {
        let text = "[interfaces.\"a\\u001b[31mX\\nb\"]\nrate = 1\n";
        let src = Source::new("p\n.toml", text);
        let d = Diagnostic::error(Some(31..35), "interface \"a\u{1b}[31mX\nb\" has a rate")
            .hint("add [interfaces.\"a\\u{1b}[31mX\\nb\".classes.all]");
        let r = src.render(&d);
        // One diagnostic is three lines, whatever the key holds.
        assert_eq!(r.lines().count(), 3, "{r}");
        assert!(!r.contains('\u{1b}'), "{r:?}");
        assert!(
            r.starts_with("p\\n.toml:2:1: error: interface \"a\\x1b[31mX\\nb\" has a rate\n"),
            "{r}"
        );
        // The fix quotes the key the TOML way: kept as written, so it can be copied.
        assert!(
            r.ends_with("^^^^ add [interfaces.\"a\\u{1b}[31mX\\nb\".classes.all]\n"),
            "{r}"
        );
        let no_span = Diagnostic::error(None, "key \"x\ry\"").hint("h\u{7}");
        assert_eq!(
            src.render(&no_span),
            "p\\n.toml: error: key \"x\\ry\"\n    = help: h\\x07\n"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("rtae", &["rate", "ceil"]), Some("rate"));
        assert_eq!(
            did_you_mean("clases", &["classes", "ceil"]),
            Some("classes")
        );
        assert_eq!(did_you_mean("zzz", &["rate", "ceil"]), None);
    }
}
