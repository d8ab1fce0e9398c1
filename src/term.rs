//! How tables meet the terminal: as wide as the terminal (wrapping cells rather than
//! lines), bold and colour only for a person looking at a terminal.
//!
//! The width is the terminal's when stdout is one; otherwise `$COLUMNS` when set (a script
//! that wants a width asks for it), else unlimited, so `qosctl show > file` keeps whole
//! lines. Styling follows <https://no-color.org>: never when `NO_COLOR` is set and not empty,
//! never when stdout is not a terminal.

use comfy_table::{Attribute, Cell, Color, ColumnConstraint, ContentArrangement, Table, Width};
use std::io::IsTerminal;

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// True when output may carry bold and colour.
pub fn styled() -> bool {
    stdout_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The width tables must fit in, or `None` for no limit.
pub fn width() -> Option<u16> {
    if stdout_is_terminal() {
        if let Ok((w, _)) = crossterm::terminal::size() {
            if w > 0 {
                return Some(w);
            }
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .filter(|w: &u16| *w > 0)
}

/// Makes `t` fit [`width`] and styles it only when [`styled`].
pub fn fit(t: &mut Table) {
    t.set_content_arrangement(ContentArrangement::Dynamic);
    if let Some(w) = width() {
        t.set_width(w);
    }
    if styled() {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
}

/// Header cells in bold (shown only when the table is styled).
pub fn header<S: ToString>(names: impl IntoIterator<Item = S>) -> Vec<Cell> {
    names
        .into_iter()
        .map(|n| Cell::new(n).add_attribute(Attribute::Bold))
        .collect()
}

/// A cell coloured as a warning (a full class, drops): red, or yellow for `mild`.
pub fn warn(text: String, mild: bool) -> Cell {
    Cell::new(text).fg(if mild { Color::Yellow } else { Color::Red })
}

/// The widest line of `t` as rendered, in characters (box-drawing characters are one wide,
/// the escape sequences of bold and colour none).
fn rendered_width(t: &Table) -> usize {
    t.to_string().lines().map(visible_width).max().unwrap_or(0)
}

/// Characters of `line` a terminal shows: CSI sequences (`ESC [ … final`) take no room.
fn visible_width(line: &str) -> usize {
    let mut n = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
            continue;
        }
        n += 1;
    }
    n
}

/// Makes `t` fit [`width`] without breaking numbers and handles across lines: only the
/// columns named in `wrap` (free text: options, policy paths) may wrap; while the table is
/// still too wide, the columns in `drop` are hidden, in that order (least useful first).
/// Returns the names of the hidden columns.
pub fn shrink(t: &mut Table, wrap: &[&str], drop: &[&str]) -> Vec<String> {
    let Some(w) = width() else {
        return Vec::new();
    };
    let names: Vec<String> = t
        .header()
        .map(|h| h.cell_iter().map(|c| c.content()).collect())
        .unwrap_or_default();
    for (i, n) in names.iter().enumerate() {
        // Free text may wrap, but not into a sliver: below 14 characters another column goes.
        let longest = t
            .row_iter()
            .filter_map(|r| r.cell_iter().nth(i))
            .map(|c| {
                c.content()
                    .lines()
                    .map(|l| l.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .chain([n.chars().count()])
            .max()
            .unwrap_or(0);
        let constraint = if wrap.contains(&n.as_str()) {
            ColumnConstraint::LowerBoundary(Width::Fixed(longest.min(14) as u16))
        } else {
            ColumnConstraint::ContentWidth
        };
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(constraint);
        }
    }
    let mut hidden = Vec::new();
    for d in drop {
        if rendered_width(t) <= usize::from(w) {
            break;
        }
        if let Some(i) = names.iter().position(|n| n == d) {
            if let Some(c) = t.column_mut(i) {
                c.set_constraint(ColumnConstraint::Hidden);
                hidden.push(d.to_string());
            }
        }
    }
    hidden
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_take_no_room() {
        assert_eq!(super::visible_width("\x1b[1mDEV\x1b[0m ┆ a0"), 8);
    }
}
