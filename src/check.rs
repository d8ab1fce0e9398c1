//! `qosctl check`: parse, validate and resolve a policy, and print the resolved tree.
//! Needs neither root nor tc.

use anyhow::Result;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write as _;

use crate::cli::CheckArgs;
use crate::kind::qdisc::htb;
use crate::kind::{self, Line, Style};
use crate::model::{Netem, QdiscKind};
use crate::policy::{self, Checked};
use crate::resolve::{MinorSource, ResolvedInterface};
use crate::Exit;

pub fn run(args: &CheckArgs) -> Result<Exit> {
    let checked = policy::check_file(&args.policy)?;
    if checked.has_errors() {
        let n = checked.error_count();
        eprint!("{}", checked.render());
        eprintln!(
            "{}: {n} error{}",
            checked.name,
            if n == 1 { "" } else { "s" }
        );
        return Ok(Exit::Error);
    }
    if args.quiet {
        return Ok(Exit::Ok);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        // Serialized first so that a closed stdout is a plain io::Error (a broken pipe is
        // not an error: `qosctl check --json p.toml | head`).
        let mut text = serde_json::to_string_pretty(&JsonView::new(&checked))?;
        text.push('\n');
        out.write_all(text.as_bytes())?;
    } else {
        out.write_all(render_tree(&checked).as_bytes())?;
    }
    out.flush()?;
    eprint!("{}", checked.render_warnings());
    let notes = probe_notes(&checked);
    if !notes.is_empty() {
        eprint!("{notes}");
    }
    Ok(Exit::Ok)
}

/// `--json`: the model the apply code works on, plus the named tree.
#[derive(Serialize)]
struct JsonView<'a> {
    policy: &'a str,
    /// `model::Desired`: what `apply` makes the kernel hold.
    devices: Vec<crate::model::DesiredDevice>,
    /// Per interface: class paths with their resolved rates, handles and leaves.
    interfaces: Vec<JsonInterface<'a>>,
}

#[derive(Serialize)]
struct JsonInterface<'a> {
    alias: &'a str,
    device: &'a str,
    rate: Option<crate::units::Rate>,
    default: Option<&'a str>,
    netem: Option<&'a Netem>,
    classes: &'a [crate::resolve::ResolvedClass],
    /// Which classifier implements the matches (`u32` or `flower`).
    classifier: crate::classify::Classifier,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingress: Option<&'a crate::resolve::ResolvedIngress>,
}

impl<'a> JsonView<'a> {
    fn new(c: &'a Checked) -> JsonView<'a> {
        JsonView {
            policy: &c.name,
            devices: c.desired().devices,
            interfaces: c
                .resolved
                .interfaces
                .iter()
                .map(|i| JsonInterface {
                    alias: &i.alias,
                    device: &i.device,
                    rate: i.rate,
                    default: i.default.as_deref(),
                    netem: i.netem.as_ref(),
                    classes: &i.classes,
                    classifier: i.classifier,
                    ingress: i.ingress.as_ref(),
                })
                .collect(),
        }
    }
}

/// Classes whose hashed minor collided: their handle may move on later edits.
fn probe_notes(c: &Checked) -> String {
    let mut out = String::new();
    for i in &c.resolved.interfaces {
        let probed: Vec<_> = i
            .classes
            .iter()
            .filter(|k| k.minor_source == MinorSource::Probe)
            .collect();
        if probed.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "note: {}: {} class{} got a probed handle because {} hashed minor collided with another class; \
             such a handle can change when classes are added or removed. Pin it with `id`:",
            i.alias,
            probed.len(),
            if probed.len() == 1 { "" } else { "es" },
            if probed.len() == 1 { "its" } else { "their" },
        );
        for k in probed.iter().take(5) {
            let _ = writeln!(
                out,
                "  {} = {} (id = {:#x})",
                k.path, k.handle, k.handle.minor
            );
        }
        if probed.len() > 5 {
            let _ = writeln!(out, "  … and {} more", probed.len() - 5);
        }
    }
    out
}

/// The resolved tree, one block per interface.
pub fn render_tree(c: &Checked) -> String {
    let mut out = String::new();
    for (n, i) in c.resolved.interfaces.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        render_interface(&mut out, i);
    }
    out
}

fn render_interface(out: &mut String, i: &ResolvedInterface) {
    let dev = if i.device == i.alias {
        i.device.clone()
    } else {
        format!("{} ({})", i.device, i.alias)
    };
    let egress = Block {
        alias: &i.alias,
        rate: i.rate,
        default: i.default.as_deref(),
        netem: i.netem.as_ref(),
        classes: &i.classes,
        state: &i.state,
        classifier: i.classifier,
    };
    render_block(
        out,
        &dev,
        &egress,
        "kernel default (qosctl removes its qdiscs)",
    );
    let Some(g) = &i.ingress else { return };
    let mut hook = Vec::new();
    if let Some(r) = g.restore_mark {
        hook.push(format!("restore mark ({r})"));
    }
    if let Some(p) = &g.police {
        hook.push(p.clone());
    }
    match &g.ifb {
        Some(ifb) => hook.push(format!("redirect to ifb {ifb}")),
        None => hook.push("no ifb".into()),
    }
    let head = format!("{dev} ingress [{}]", hook.join(", "));
    let ingress = Block {
        alias: &i.alias,
        rate: g.rate,
        default: g.default.as_deref(),
        netem: g.netem.as_ref(),
        classes: &g.classes,
        state: &g.state,
        classifier: i.classifier,
    };
    render_block(out, &head, &ingress, "no tree (policing only)");
}

/// One resolved tree: the egress tree of an interface or its ingress tree on the ifb.
struct Block<'a> {
    alias: &'a str,
    rate: Option<crate::units::Rate>,
    default: Option<&'a str>,
    netem: Option<&'a Netem>,
    classes: &'a [crate::resolve::ResolvedClass],
    state: &'a crate::model::DeviceState,
    classifier: crate::classify::Classifier,
}

fn render_block(out: &mut String, dev: &str, i: &Block<'_>, empty: &str) {
    if let Some(n) = i.netem {
        let _ = writeln!(out, "{dev}: root qdisc 1: {}", netem_summary(n));
        return;
    }
    if i.classes.is_empty() {
        let _ = writeln!(out, "{dev}: {empty}");
        return;
    }
    let rate = i.rate.map(|r| r.to_string()).unwrap_or_default();
    let minor = i
        .state
        .root_qdisc()
        .and_then(|q| htb::default_minor(&q.kind));
    let default = match (i.default, minor) {
        (Some(d), Some(m)) => format!("{d} (1:{m:x})"),
        (Some(d), None) => d.to_string(),
        _ => "-".into(),
    };
    // The classifier is named only where it is not the default, so u32 trees print as before.
    let by = match i.classifier {
        crate::classify::Classifier::U32 => String::new(),
        c => format!(", matches by {c}"),
    };
    let _ = writeln!(out, "{dev}: htb rate {rate}, default {default}{by}");
    class_rows(out, i, rate);
}

fn class_rows(out: &mut String, i: &Block<'_>, rate: String) {
    let mut rows: Vec<[String; 7]> = vec![[
        "CLASS".into(),
        "HANDLE".into(),
        "RATE".into(),
        "CEIL".into(),
        "PRIO".into(),
        "MARKS".into(),
        "LEAF".into(),
    ]];
    rows.push([
        i.alias.to_string(),
        "1:1".into(),
        rate.clone(),
        rate,
        String::new(),
        String::new(),
        String::new(),
    ]);
    // Under a class: its matches and set_dscp, one per line, in the policy's words.
    let mut under: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for k in i.classes {
        let pad = "  ".repeat(k.depth + 3);
        let mut lines: Vec<String> = k
            .matches
            .iter()
            .map(|m| format!("{pad}match {m}"))
            .collect();
        if let Some(d) = &k.set_dscp {
            lines.push(format!("{pad}set_dscp {d}"));
        }
        under.push(lines);
        let name = k.path.rsplit('/').next().unwrap_or(&k.path);
        let marks: Vec<String> = k.marks.iter().map(|m| format!("{m:#x}")).collect();
        rows.push([
            format!("{}{name}", "  ".repeat(k.depth + 1)),
            k.handle.to_string(),
            k.rate.to_string(),
            k.ceil.to_string(),
            k.prio.map(|p| p.to_string()).unwrap_or_default(),
            marks.join(","),
            k.leaf.as_deref().map(leaf_summary).unwrap_or_default(),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for (r, notes) in rows.iter().zip(&under) {
        let mut line = String::from("  ");
        for (n, (cell, w)) in r.iter().zip(widths.iter()).enumerate() {
            if n == 6 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
        for n in notes {
            let _ = writeln!(out, "{n}");
        }
    }
}

/// A leaf qdisc in one line, tc-like: `netem delay 40ms jitter 5ms loss 0.5%` (written
/// by the kind's home, the same line the plan shows).
pub fn leaf_summary(q: &QdiscKind) -> String {
    kind::qdisc::summary(q, Style::Brief)
}

/// netem's options in one line, with the kind word.
pub fn netem_summary(n: &Netem) -> String {
    let mut line = Line::new(Style::Brief);
    line.word("netem");
    kind::qdisc::netem::summary(n, &mut line);
    line.finish()
}
