//! `qosctl import DEV…`: the live traffic control of devices as a policy that, applied
//! again, is in sync with no command to run.
//!
//! Every class keeps its handle (`id`), rates are written absolute, and a value is written
//! only where it differs from what the policy would get by default (ceil = the parent's
//! ceil, prio 0, burst = tc's 1600 bytes, quantum = rate / r2q), so the policy reads like
//! one written by hand and still reproduces the tree. Whatever a policy cannot express
//! becomes a `# NOT IMPORTED:` comment naming the object, and the run exits 3 (partial).
//! Objects are "consumed" as they are written; anything left over is reported, so nothing
//! the reader found is dropped silently.

use anyhow::{Context, Result};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;

use crate::cli::{Global, ImportArgs};
use crate::model::{
    Class, DeviceState, Filter, FilterKind, Handle, Loss, Netem, Parent, QdiscKind,
};
use crate::tc::{read, Tc};
use crate::units::{Prob, Rate, Size, Time};
use crate::Exit;

pub fn run(global: &Global, args: &ImportArgs) -> Result<Exit> {
    let tc = Tc::locate(global)?;
    let mut states = Vec::with_capacity(args.devices.len());
    for dev in &args.devices {
        states.push(read::read_config(&tc, dev).with_context(|| format!("importing {dev}"))?);
    }
    let imported = policy_from(&states);
    let mut out = std::io::stdout().lock();
    out.write_all(imported.text.as_bytes())?;
    out.flush()?;

    let checked = crate::policy::check_str("imported policy", &imported.text);
    // With every device left out there is no policy to check: the notes say why.
    let any = imported.text.lines().any(|l| l.starts_with("[interfaces."));
    let invalid = any && checked.has_errors();
    for n in &imported.notes {
        eprintln!("import: not imported: {n}");
    }
    if invalid {
        eprintln!(
            "import: the policy written does not pass `qosctl check` (the live tree breaks a \
             rule of the policy language); fix these before applying it:\n{}",
            checked.render().trim_end()
        );
    }
    let partial = !imported.notes.is_empty() || invalid;
    if partial {
        eprintln!(
            "import: partial: {} object(s) are comments in the policy; `apply` would change them",
            imported.notes.len()
        );
        Ok(Exit::Partial)
    } else {
        Ok(Exit::Ok)
    }
}

/// A policy's text, and one line per live object it does not reproduce.
#[derive(Debug, Default)]
pub struct Imported {
    pub text: String,
    pub notes: Vec<String>,
}

/// htb's burst and cburst when tc is given none: one 1600-byte MTU (plus rate/HZ, which
/// is nothing with the high-resolution timer). What reads back differs by tick rounding,
/// hence the planner's tolerance when comparing.
const TC_DEFAULT_BURST: u64 = 1600;

/// The policy for these devices (pure: the tests feed it states read from fixtures).
pub fn policy_from(states: &[DeviceState]) -> Imported {
    let mut w = Writer::default();
    w.line("# Written by `qosctl import`: the live traffic control of these devices.");
    w.line("# Class names are c<major>_<minor> of their handles; `id` keeps every handle.");
    for st in states {
        w.line("");
        device(&mut w, st);
    }
    Imported {
        text: w.out,
        notes: w.notes,
    }
}

#[derive(Default)]
struct Writer {
    out: String,
    notes: Vec<String>,
}

impl Writer {
    fn line(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }
    /// A `# NOT IMPORTED:` comment at this point of the file, and a note for stderr.
    fn skip(&mut self, dev: &str, what: String) {
        self.line(format!("# NOT IMPORTED: {what}"));
        self.notes.push(format!("{dev}: {what}"));
    }
}

/// What of one device has been written, so the rest can be named.
#[derive(Default)]
struct Used {
    qdiscs: HashSet<Handle>,
    classes: HashSet<Handle>,
    filters: HashSet<usize>,
}

fn device(w: &mut Writer, st: &DeviceState) {
    let dev = st.device.as_str();
    let header = format!("interfaces.{}", key(dev));
    let mut used = Used::default();
    match st.root_qdisc() {
        None => {
            w.line(format!("[{header}]"));
            if st.is_default() {
                w.line("# at the kernel default: no qdisc tree");
            }
        }
        Some(root) => match &root.kind {
            QdiscKind::Htb(_) if root.handle == Handle::qdisc(1) => {
                if !htb_tree(w, st, &header, &mut used) {
                    return;
                }
                used_u32_structure(st, &mut used);
            }
            QdiscKind::Netem(n) if root.handle == Handle::qdisc(1) && st.classes.is_empty() => {
                w.line(format!("[{header}]"));
                w.line(format!("netem = {}", netem_table(n)));
                used.qdiscs.insert(root.handle);
            }
            kind => {
                leave_out(w, st, &header, &root_reason(kind.kind_name(), root.handle));
                return;
            }
        },
    }
    leftovers(w, st, &used);
}

fn root_reason(kind: &str, handle: Handle) -> String {
    match kind {
        "cbq" => format!(
            "root qdisc cbq {handle} (CBQ was removed from Linux in 6.3 and qosctl writes htb; \
             docs/cbq.md shows how each CBQ parameter is written as an htb policy)"
        ),
        "htb" => format!("root qdisc htb {handle} (a policy's htb root is always 1:)"),
        "netem" => {
            format!("root qdisc netem {handle} (a policy's netem root is 1: without classes)")
        }
        k => format!("root qdisc {k} {handle} (a policy's root is htb 1: or netem 1:)"),
    }
}

/// The whole interface as a comment: a policy that named it would own it, and `apply`
/// would then remove the tree it cannot express.
fn leave_out(w: &mut Writer, st: &DeviceState, header: &str, reason: &str) {
    w.skip(
        &st.device,
        format!(
            "{reason}; {} is left out of the policy, so apply does not touch it",
            st.device
        ),
    );
    w.line(format!("# [{header}]"));
}

/// Writes a shaped interface. False when the tree has no root class 1:1 with children
/// (the interface is then left out).
fn htb_tree(w: &mut Writer, st: &DeviceState, header: &str, used: &mut Used) -> bool {
    let dev = &st.device;
    let root_class = Handle::new(1, 1);
    let Some(rc) = st.class(root_class).filter(|c| c.parent.is_none()) else {
        leave_out(
            w,
            st,
            header,
            "htb 1: has no root class 1:1 (a policy's classes hang on 1:1)",
        );
        return false;
    };
    if !st.classes.iter().any(|c| c.parent == Some(root_class)) {
        leave_out(w, st, header, "htb 1: has no classes below 1:1");
        return false;
    }
    let (default, r2q) = match st.root_qdisc().map(|q| &q.kind) {
        Some(QdiscKind::Htb(h)) => (h.default, h.r2q.unwrap_or(10)),
        _ => (0, 10),
    };
    used.qdiscs.insert(Handle::qdisc(1));
    used.classes.insert(root_class);
    w.line(format!("[{header}]"));
    w.line(format!("rate = \"{}\"", rc.rate));
    if rc.ceil.kernel_bytes() != rc.rate.kernel_bytes() {
        w.skip(
            dev,
            format!(
                "class 1:1 ceil {} (a policy's root class has ceil = rate {}; apply changes it)",
                rc.ceil, rc.rate
            ),
        );
    }
    bursts(w, rc);
    // qosctl's flower filters come from `classifier = "flower"`: say so, or the imported
    // policy would re-apply them as u32 filters.
    if st
        .filters
        .iter()
        .any(|f| matches!(f.kind, FilterKind::Flower { .. }) && f.parent == Handle::qdisc(1))
    {
        w.line("classifier = \"flower\"");
    }
    let is_leaf = |h: Handle| !st.classes.iter().any(|c| c.parent == Some(h));
    let default_class = Handle::new(1, default);
    if default != 0 && st.class(default_class).is_some() && is_leaf(default_class) {
        w.line(format!("default = \"{}\"", name(default_class)));
    } else {
        let first = leaves(st, root_class)
            .into_iter()
            .next()
            .unwrap_or(root_class);
        w.skip(
            dev,
            format!(
                "htb default {default:#x} is not a leaf class; a policy needs one: default = \
                 \"{}\" (apply rebuilds the tree for it)",
                name(first)
            ),
        );
        w.line(format!("default = \"{}\"", name(first)));
    }
    if r2q != 10 {
        w.skip(
            dev,
            format!("htb r2q {r2q} (a policy's htb has r2q 10; apply rebuilds the tree for it)"),
        );
    }
    let mut ctx = Ctx { st, used };
    for c in children(st, root_class) {
        class(w, &mut ctx, c, rc.ceil, header);
    }
    true
}

struct Ctx<'a> {
    st: &'a DeviceState,
    used: &'a mut Used,
}

fn children(st: &DeviceState, parent: Handle) -> Vec<&Class> {
    let mut v: Vec<&Class> = st
        .classes
        .iter()
        .filter(|c| c.parent == Some(parent))
        .collect();
    v.sort_by_key(|c| c.handle);
    v
}

fn leaves(st: &DeviceState, under: Handle) -> Vec<Handle> {
    let kids = children(st, under);
    if kids.is_empty() {
        return vec![under];
    }
    kids.iter().flat_map(|c| leaves(st, c.handle)).collect()
}

/// `c1_10` for class 1:10.
fn name(h: Handle) -> String {
    format!("c{:x}_{:x}", h.major, h.minor)
}

fn class(w: &mut Writer, ctx: &mut Ctx, c: &Class, parent_ceil: Rate, parent_header: &str) {
    let header = format!("{parent_header}.classes.{}", name(c.handle));
    ctx.used.classes.insert(c.handle);
    w.line("");
    w.line(format!("[{header}]"));
    w.line(format!("id = {:#x}", c.handle.minor));
    w.line(format!("rate = \"{}\"", c.rate));
    if c.ceil != parent_ceil {
        w.line(format!("ceil = \"{}\"", c.ceil));
    }
    bursts(w, c);
    if let Some(q) = c.quantum {
        // What the kernel computes under the policy's r2q of 10.
        let default = (c.rate.kernel_bytes() / 10).clamp(1000, 200_000);
        if q.bytes() != default {
            w.line(format!("quantum = {}", q.bytes()));
        }
    }
    let kids = children(ctx.st, c.handle);
    if kids.is_empty() {
        if let Some(p) = c.prio.filter(|p| *p != 0) {
            w.line(format!("prio = {p}"));
        }
        marks(w, ctx, c.handle);
        leaf(w, ctx, c.handle);
        matches(w, ctx, c.handle, &header);
    }
    for k in kids {
        class(w, ctx, k, c.ceil, &header);
    }
}

/// burst and cburst, only where they are not tc's default (within the planner's 3 %) and
/// the kernel can hold them as written (src/limits.rs). A value it cannot hold is one tc
/// rounded itself (its default at a fast rate, say): written out, `check` would refuse it,
/// and left out the planner does not compare it, so the live value stays as it is.
fn bursts(w: &mut Writer, c: &Class) {
    for (key, v, rate) in [("burst", c.burst, c.rate), ("cburst", c.cburst, c.ceil)] {
        if let Some(v) = v {
            let off = (v.bytes() as f64 - TC_DEFAULT_BURST as f64).abs();
            let r = rate.kernel_bytes();
            let holds = r == 0 || crate::limits::holds(r, v.bytes());
            if off > TC_DEFAULT_BURST as f64 * 0.03 && holds {
                w.line(format!("{key} = {}", v.bytes()));
            }
        }
    }
}

/// fw filters on 1: that steer to this class. A policy writes them at prio 1, protocol
/// all, full mask; others are imported as marks too, with a note that they move.
fn marks(w: &mut Writer, ctx: &mut Ctx, class: Handle) {
    let mut marks = Vec::new();
    for (i, f) in ctx.st.filters.iter().enumerate() {
        let FilterKind::Fw { mark, mask } = f.kind else {
            continue;
        };
        if f.parent != Handle::qdisc(1) || f.classid != Some(class) || mark == 0 {
            continue;
        }
        if mask != u32::MAX {
            continue; // a masked mark is not a policy mark: reported as a leftover
        }
        ctx.used.filters.insert(i);
        if f.prio != 1 || f.protocol != "all" {
            w.skip(
                &ctx.st.device,
                format!(
                    "fw mark {mark:#x} at prio {} protocol {} (a policy's marks are prio 1 \
                     protocol all; apply moves it)",
                    f.prio, f.protocol
                ),
            );
        }
        if !marks.contains(&mark) {
            marks.push(mark);
        }
    }
    if !marks.is_empty() {
        let list: Vec<String> = marks.iter().map(|m| format!("{m:#x}")).collect();
        w.line(format!("marks = [{}]", list.join(", ")));
    }
}

/// qosctl's own u32 rules (or flower filters) on 1: that steer to this class, as
/// `[[….match]]` entries (a port range's u32 blocks folded back into the range; flower's
/// in the order of their handles, whose ordinals follow the policy's order), and
/// `set_dscp` from their pedit. Written last
/// in the class: after a `[[…]]` header, keys belong to the entry. The tables and links
/// of hashed tiers follow from the matches (`used_u32_structure`).
fn matches(w: &mut Writer, ctx: &mut Ctx, class: Handle, class_header: &str) {
    use crate::classify::action::Action;
    use crate::classify::Match;
    use crate::kind::filter::u32::Body;
    let mut found = Vec::new();
    let mut flower: Vec<(u32, Match)> = Vec::new();
    let mut dscp = None;
    for (i, f) in ctx.st.filters.iter().enumerate() {
        let here = f.parent == Handle::qdisc(1) && f.classid == Some(class);
        if let (FilterKind::Flower { handle, m, .. }, true) = (&f.kind, here) {
            flower.push((*handle, m.clone()));
        }
        let (m, actions) = match &f.kind {
            FilterKind::U32 {
                body: Body::Rule { m: Some(m), .. },
                actions,
                ..
            }
            | FilterKind::Flower { m, actions, .. } => (m, actions),
            _ => continue,
        };
        if f.parent != Handle::qdisc(1) || f.classid != Some(class) {
            continue;
        }
        ctx.used.filters.insert(i);
        found.push(m.clone());
        dscp = dscp.or(actions.iter().find_map(|a| match a {
            Action::SetDscp { dscp, .. } => Some(*dscp),
            _ => None,
        }));
    }
    if let Some(d) = dscp {
        w.line(format!("set_dscp = \"{d}\""));
    }
    let header = format!("{class_header}.match");
    let entries = if flower.is_empty() {
        crate::classify::u32::coalesce(found)
    } else {
        // One entry per match (its IPv4 and IPv6 filters are one entry), in handle order.
        flower.sort_by_key(|(h, _)| *h);
        let mut ms: Vec<Match> = Vec::new();
        for (_, m) in flower {
            if !ms.contains(&m) {
                ms.push(m);
            }
        }
        ms
    };
    for m in entries {
        w.line(format!("[[{header}]]"));
        let port = |p: crate::classify::matcher::PortRange| {
            if p.lo == p.hi {
                p.lo.to_string()
            } else {
                format!("\"{p}\"")
            }
        };
        let fields = [
            ("src", m.src.map(|v| format!("\"{v}\""))),
            ("dst", m.dst.map(|v| format!("\"{v}\""))),
            ("proto", m.proto.map(|v| format!("\"{v}\""))),
            ("sport", m.sport.map(port)),
            ("dport", m.dport.map(port)),
            ("dscp", m.dscp.map(|v| format!("\"{v}\""))),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                w.line(format!("{k} = {v}"));
            }
        }
    }
}

/// The hash tables and links of qosctl's hashed tiers: not written (the policy's matches
/// make them), not left over.
fn used_u32_structure(st: &DeviceState, used: &mut Used) {
    use crate::kind::filter::u32::Body;
    for (i, f) in st.filters.iter().enumerate() {
        if let FilterKind::U32 {
            body: Body::Table { .. } | Body::Link { .. },
            ..
        } = f.kind
        {
            used.filters.insert(i);
        }
    }
}

fn leaf(w: &mut Writer, ctx: &mut Ctx, class: Handle) {
    let dev = ctx.st.device.clone();
    let on_class = ctx
        .st
        .qdiscs
        .iter()
        .find(|q| q.parent == Parent::Class(class));
    let Some(q) = on_class else {
        w.skip(
            &dev,
            format!(
                "class {class} has no leaf qdisc of its own (htb's implicit pfifo): the policy \
                 says leaf = \"pfifo\", which apply adds as {:x}:",
                class.minor
            ),
        );
        w.line("leaf = \"pfifo\"");
        return;
    };
    let table = match &q.kind {
        QdiscKind::Netem(n) => Some(format!("netem = {}", netem_table(n))),
        k => leaf_table(k).map(|t| format!("leaf = {t}")),
    };
    let Some(table) = table else {
        return; // left for `leftovers`, which names it
    };
    ctx.used.qdiscs.insert(q.handle);
    if q.handle != Handle::qdisc(class.minor) {
        w.skip(
            &dev,
            format!(
                "leaf qdisc {} {} of class {class}: a policy's leaf of 1:{:x} is {:x}: (apply \
                 re-creates it there)",
                q.kind.kind_name(),
                q.handle,
                class.minor,
                class.minor
            ),
        );
    }
    w.line(table);
}

/// A leaf qdisc as a TOML inline table; None for a kind a policy cannot name.
fn leaf_table(k: &QdiscKind) -> Option<String> {
    let mut t = Table::new(k.kind_name());
    match k {
        QdiscKind::Pfifo { limit } => t.num("limit", *limit),
        QdiscKind::Bfifo { limit } => t.num("limit", limit.map(Size::bytes)),
        QdiscKind::Tbf(b) => {
            t.str("rate", Some(b.rate));
            t.num("burst", Some(b.burst.bytes()));
            // A policy's tbf has one of limit or latency; limit is the exact one.
            match b.limit {
                Some(l) => t.num("limit", Some(l.bytes())),
                None => t.str("latency", b.latency),
            }
        }
        QdiscKind::FqCodel(f) => {
            t.num("limit", f.limit);
            t.num("flows", f.flows);
            t.str("target", f.target);
            t.str("interval", f.interval);
            t.num("quantum", f.quantum.map(Size::bytes));
            t.raw("ecn", f.ecn);
            t.num("memory_limit", f.memory_limit.map(Size::bytes));
        }
        QdiscKind::Cake(c) => {
            t.str("bandwidth", c.bandwidth);
            t.str("diffserv", c.diffserv.as_ref());
            t.str("flow_mode", c.flow_mode.as_ref());
            t.str("rtt", c.rtt);
            t.raw("nat", c.nat);
            t.raw("wash", c.wash);
            t.raw("ack_filter", c.ack_filter);
            t.raw("overhead", c.overhead);
        }
        QdiscKind::Sfq(s) => {
            t.str("perturb", s.perturb.filter(|p| p.ns() > 0));
            t.num("limit", s.limit);
            t.num("quantum", s.quantum.map(Size::bytes));
        }
        _ => return None,
    }
    Some(t.finish())
}

/// netem as an inline table. Zero values are tc's way of printing "off" and are left out,
/// as are fields whose prerequisite is off (the policy refuses those, the kernel ignores
/// them).
fn netem_table(n: &Netem) -> String {
    let mut t = Table::bare();
    let time = |v: Option<Time>| v.filter(|t| t.ns() > 0);
    let prob = |v: Option<Prob>| v.filter(|p| p.fraction() > 0.0).map(Prob::tc);
    let delay = time(n.delay);
    let jitter = delay.and(time(n.jitter));
    t.str("delay", delay);
    t.str("jitter", jitter);
    if jitter.is_some() {
        t.str("delay_correlation", prob(n.delay_correlation));
        t.str(
            "distribution",
            n.distribution.as_ref().filter(|d| d.as_str() != "uniform"),
        );
    }
    match &n.loss {
        Some(Loss::Random { p, correlation }) if p.fraction() > 0.0 => {
            t.str("loss", Some(p.tc()));
            t.str("loss_correlation", prob(*correlation));
        }
        Some(Loss::Gemodel { p, r, h, k }) => {
            let mut g = Table::bare();
            g.str("p", Some(p.tc()));
            g.str("r", r.map(Prob::tc));
            g.str("h", h.map(Prob::tc));
            g.str("k", k.map(Prob::tc));
            t.raw("loss", Some(format!("{{ gemodel = {} }}", g.finish())));
        }
        _ => {}
    }
    let dup = prob(n.duplicate);
    t.str("duplicate", dup.clone());
    if dup.is_some() {
        t.str("duplicate_correlation", prob(n.duplicate_correlation));
    }
    let corrupt = prob(n.corrupt);
    t.str("corrupt", corrupt.clone());
    if corrupt.is_some() {
        t.str("corrupt_correlation", prob(n.corrupt_correlation));
    }
    let reorder = delay.and(prob(n.reorder));
    t.str("reorder", reorder.clone());
    if reorder.is_some() {
        t.str("reorder_correlation", prob(n.reorder_correlation));
        t.num("gap", n.gap.filter(|g| *g > 0));
    }
    t.str("rate", n.rate.filter(|r| r.bits() > 0));
    t.num("limit", n.limit);
    if let Some(s) = &n.slot {
        let mut st = Table::bare();
        st.str("min_delay", Some(s.min_delay));
        st.str("max_delay", s.max_delay.filter(|m| *m != s.min_delay));
        st.num("packets", s.packets.filter(|p| *p > 0));
        st.num("bytes", s.bytes.map(Size::bytes).filter(|b| *b > 0));
        t.raw("slot", Some(st.finish()));
    }
    if n.loss.is_some() {
        t.raw("ecn", n.ecn.filter(|e| *e));
    }
    t.finish()
}

/// A TOML inline table, written field by field; `None` fields are left out.
struct Table(Vec<String>);

impl Table {
    fn new(kind: &str) -> Table {
        Table(vec![format!("kind = \"{kind}\"")])
    }
    fn bare() -> Table {
        Table(Vec::new())
    }
    fn str(&mut self, k: &str, v: Option<impl std::fmt::Display>) {
        if let Some(v) = v {
            self.0.push(format!("{k} = {}", quote(&v.to_string())));
        }
    }
    fn num(&mut self, k: &str, v: Option<impl std::fmt::Display>) {
        self.raw(k, v);
    }
    fn raw(&mut self, k: &str, v: Option<impl std::fmt::Display>) {
        if let Some(v) = v {
            self.0.push(format!("{k} = {v}"));
        }
    }
    fn finish(self) -> String {
        if self.0.is_empty() {
            "{}".to_string()
        } else {
            format!("{{ {} }}", self.0.join(", "))
        }
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be, else quoted (`"eth0.10"`).
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        s.to_string()
    } else {
        quote(s)
    }
}

/// Every object of the device that was not written, named, as comments.
fn leftovers(w: &mut Writer, st: &DeviceState, used: &Used) {
    let dev = st.device.as_str();
    let mut lines = Vec::new();
    for q in &st.qdiscs {
        if !used.qdiscs.contains(&q.handle) {
            let at = match q.parent {
                Parent::Root => " root".to_string(),
                Parent::Ingress => String::new(),
                Parent::Class(h) => format!(" parent {h}"),
            };
            let why = if matches!(q.kind, QdiscKind::Ingress) {
                "a policy has no ingress yet"
            } else {
                "a policy cannot express it"
            };
            lines.push(format!(
                "qdisc {} {}{at} ({why}; apply removes it)",
                q.kind.kind_name(),
                q.handle
            ));
        }
    }
    for c in &st.classes {
        if !used.classes.contains(&c.handle) {
            lines.push(format!(
                "class {} rate {} ceil {} (not below 1:1; apply removes it)",
                c.handle, c.rate, c.ceil
            ));
        }
    }
    for (i, f) in st.filters.iter().enumerate() {
        if !used.filters.contains(&i) {
            lines.push(format!("{} (apply removes it)", filter_words(f)));
        }
    }
    if !lines.is_empty() {
        w.line("");
        for l in lines {
            w.skip(dev, l);
        }
    }
}

fn filter_words(f: &Filter) -> String {
    let mut s = format!(
        "filter {} parent {} prio {} protocol {}",
        f.kind.kind_name(),
        f.parent,
        f.prio,
        f.protocol
    );
    match &f.kind {
        FilterKind::Fw { mark, mask } => {
            let _ = write!(s, " mark {mark:#x}/{mask:#x}");
        }
        FilterKind::U32 { handle, .. } => {
            let _ = write!(
                s,
                " handle {handle} [{}]",
                crate::kind::filter::u32::summary(&f.kind)
            );
        }
        FilterKind::Flower { handle, .. } => {
            let summary = crate::kind::filter::flower::summary(&f.kind);
            let _ = write!(s, " handle {handle:#x} [{summary}]");
        }
        FilterKind::Other {
            handle, summary, ..
        } => {
            if let Some(h) = handle {
                let _ = write!(s, " handle {h}");
            }
            if !summary.is_empty() {
                let _ = write!(s, " [{summary}]");
            }
        }
    }
    if let Some(c) = f.classid {
        let _ = write!(s, " -> {c}");
    }
    s
}
