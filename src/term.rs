//! How tables meet the terminal: as wide as the terminal (wrapping cells rather than
//! lines), bold and colour only for a person looking at a terminal.
//!
//! The width is the terminal's when stdout is one; otherwise `$COLUMNS` when set (a script
//! that wants a width asks for it), else unlimited, so `qosctl show > file` keeps whole
//! lines. Styling follows <https://no-color.org>: never when `NO_COLOR` is set and not empty,
//! never when stdout is not a terminal.

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table};
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
