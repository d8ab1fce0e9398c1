//! Text from outside (policy keys, device names, tc's output) made safe to print: a name
//! holding a newline or an escape sequence must not forge lines in a plan or a table.
//!
//! Hook: the printers call [`escape`] on every such string at the printing boundary
//! (`plan::render_human`, `show`'s tables, error messages naming a device).

use std::fmt::Write;

/// `s` with control characters (and the backslash, so that the result is unambiguous)
/// written as escapes: `\n`, `\t`, `\r`, `\\`, `\x1b`, `\u{85}`. Printable text, including
/// any non-ASCII letter, is unchanged; so is every name qosctl can apply.
pub fn escape(s: &str) -> String {
    escape_with(s, true)
}

/// `s` with control characters escaped as [`escape`] writes them, backslashes kept: for
/// text that may already hold escapes of its own, such as a diagnostic whose fix quotes a
/// policy key the TOML way (`[interfaces."a\u{1b}".classes.all]`), which must stay
/// copyable. Policy keys inside a diagnostic's message then read as in the plan.
pub fn controls(s: &str) -> String {
    escape_with(s, false)
}

fn escape_with(s: &str, backslash: bool) -> String {
    if !s
        .chars()
        .any(|c| c.is_control() || (backslash && c == '\\'))
    {
        return s.to_string();
    }
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            '\\' if backslash => o.push_str("\\\\"),
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(o, "\\u{{{:x}}}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// `"s"`, escaped, for messages.
pub fn quoted(s: &str) -> String {
    format!("\"{}\"", escape(s).replace('"', "\\\""))
}

/// A copy of `plan` whose every name from outside (device, alias, object names from
/// policy keys, foreign filter handles and summaries read from tc, field values and
/// reasons) is escaped: what `plan::render_human` prints then cannot hold a forged line.
/// The commands must still be rendered from the original plan.
pub fn plan_for_display(plan: &crate::plan::Plan) -> crate::plan::Plan {
    use crate::model::FilterKind;
    use crate::plan::{Obj, Op};
    let name = |n: &mut Option<String>| {
        if let Some(v) = n {
            *v = escape(v);
        }
    };
    let mut p = plan.clone();
    for d in &mut p.devices {
        d.device = escape(&d.device);
        name(&mut d.alias);
        for op in &mut d.ops {
            let (obj, reason) = match op {
                Op::Add { obj, reason } | Op::Remove { obj, reason } => (obj, Some(reason)),
                Op::Change { obj, fields } => {
                    for f in fields.iter_mut() {
                        f.live = escape(&f.live);
                        f.desired = escape(&f.desired);
                    }
                    (obj, None)
                }
            };
            if let Some(r) = reason {
                name(r);
            }
            match obj {
                Obj::Qdisc(q) => name(&mut q.name),
                Obj::Class(c) => name(&mut c.name),
                Obj::Filter(f) => {
                    name(&mut f.name);
                    f.protocol = escape(&f.protocol);
                    if let FilterKind::Other {
                        kind,
                        handle,
                        summary,
                    } = &mut f.kind
                    {
                        *kind = escape(kind);
                        name(handle);
                        *summary = escape(summary);
                    }
                }
                Obj::FilterPrio {
                    protocol, kinds, ..
                } => {
                    *protocol = escape(protocol);
                    for k in kinds.iter_mut() {
                        *k = escape(k);
                    }
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(escape("wan"), "wan");
        assert_eq!(escape("a\nb\tc\x1b[31m"), "a\\nb\\tc\\x1b[31m");
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_eq!(escape("é\u{85}"), "é\\u{85}");
        assert_eq!(quoted("\"d1\""), "\"\\\"d1\\\"\"");
        assert!(!escape("x\ny\r\u{2028}").contains(['\n', '\r']));
    }
}
