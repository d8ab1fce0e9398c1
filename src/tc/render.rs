//! Rendering model objects as `tc -batch` lines (without the leading `tc`).
//!
//! Every rate is rendered in bits ([`Rate::tc`]) so tc's byte units (`mbps` = megabytes)
//! never come into play, and every managed parameter is sent on every change, because tc
//! resets what a `change` omits.

use crate::model::{Class, Filter, FilterKind, Loss, Netem, Parent, Qdisc, QdiscKind};

/// `qdisc add dev D root handle 1: htb default 10`.
pub fn qdisc_add(dev: &str, q: &Qdisc) -> String {
    format!(
        "qdisc add dev {dev} {} handle {} {}",
        q.parent,
        q.handle,
        qdisc_args(&q.kind)
    )
}

/// In place: same handle, same kind (tc keeps queue and counters).
pub fn qdisc_change(dev: &str, q: &Qdisc) -> String {
    let args = match &q.kind {
        // fq_codel refuses a change that carries `flows` at all (EINVAL), even the same
        // value: the flow table is sized once. The planner re-creates it for a new value.
        QdiscKind::FqCodel(f) if f.flows.is_some() => {
            qdisc_args(&QdiscKind::FqCodel(crate::model::FqCodel {
                flows: None,
                ..f.clone()
            }))
        }
        k => qdisc_args(k),
    };
    format!(
        "qdisc change dev {dev} {} handle {} {args}",
        q.parent, q.handle
    )
}

pub fn qdisc_del(dev: &str, q: &Qdisc) -> String {
    match (q.parent, &q.kind) {
        (Parent::Root, _) => format!("qdisc del dev {dev} root"),
        (Parent::Ingress, QdiscKind::Other { kind }) if kind == "clsact" => {
            format!("qdisc del dev {dev} clsact")
        }
        (Parent::Ingress, _) => format!("qdisc del dev {dev} ingress"),
        (Parent::Class(p), _) => format!("qdisc del dev {dev} parent {p} handle {}", q.handle),
    }
}

/// The parent words of a class: under another class, or directly under its root qdisc.
fn class_parent(c: &Class) -> String {
    match c.parent {
        Some(p) => p.to_string(),
        None => format!("{:x}:", c.handle.major),
    }
}

pub fn class_add(dev: &str, c: &Class) -> String {
    format!(
        "class add dev {dev} parent {} classid {} {}",
        class_parent(c),
        c.handle,
        class_args(c)
    )
}

pub fn class_change(dev: &str, c: &Class) -> String {
    format!(
        "class change dev {dev} parent {} classid {} {}",
        class_parent(c),
        c.handle,
        class_args(c)
    )
}

pub fn class_del(dev: &str, c: &Class) -> String {
    format!("class del dev {dev} classid {}", c.handle)
}

fn filter_head(dev: &str, verb: &str, f: &Filter) -> String {
    format!(
        "filter {verb} dev {dev} parent {} protocol {} prio {}",
        f.parent, f.protocol, f.prio
    )
}

pub fn filter_add(dev: &str, f: &Filter) -> String {
    format!("{} {}", filter_head(dev, "add", f), filter_args(f))
}

/// fw filters change in place (`replace` on the same handle keeps the classifier).
pub fn filter_change(dev: &str, f: &Filter) -> String {
    format!("{} {}", filter_head(dev, "replace", f), filter_args(f))
}

pub fn filter_del(dev: &str, f: &Filter) -> String {
    match &f.kind {
        FilterKind::Fw { mark, mask } => {
            format!(
                "{} handle {} fw",
                filter_head(dev, "del", f),
                fw_handle(*mark, *mask)
            )
        }
        // A foreign classifier: remove its whole priority (all its handles), the only
        // deletion that works for every kind without understanding its handles.
        FilterKind::Other { .. } => filter_head(dev, "del", f),
    }
}

fn fw_handle(mark: u32, mask: u32) -> String {
    if mask == u32::MAX {
        format!("{mark:#x}")
    } else {
        format!("{mark:#x}/{mask:#x}")
    }
}

fn filter_args(f: &Filter) -> String {
    let mut s = match &f.kind {
        FilterKind::Fw { mark, mask } => format!("handle {} fw", fw_handle(*mark, *mask)),
        FilterKind::Other { kind, summary, .. } => format!("{kind} {summary}"),
    };
    if let Some(c) = f.classid {
        s.push_str(&format!(" classid {c}"));
    }
    s
}

pub fn class_args(c: &Class) -> String {
    let mut s = format!("htb rate {} ceil {}", c.rate.tc(), c.ceil.tc());
    if let Some(b) = c.burst {
        s.push_str(&format!(" burst {}", b.tc()));
    }
    if let Some(b) = c.cburst {
        s.push_str(&format!(" cburst {}", b.tc()));
    }
    if let Some(p) = c.prio {
        s.push_str(&format!(" prio {p}"));
    }
    if let Some(q) = c.quantum {
        s.push_str(&format!(" quantum {}", q.tc()));
    }
    s
}

/// The kind word and its options, as tc takes them.
pub fn qdisc_args(kind: &QdiscKind) -> String {
    let mut a: Vec<String> = vec![kind.kind_name().to_string()];
    match kind {
        QdiscKind::Htb(h) => {
            // tc parses htb's default as hex.
            a.push(format!("default {:x}", h.default));
            if let Some(r) = h.r2q {
                a.push(format!("r2q {r}"));
            }
        }
        QdiscKind::Pfifo { limit } => {
            if let Some(l) = limit {
                a.push(format!("limit {l}"));
            }
        }
        QdiscKind::Bfifo { limit } => {
            if let Some(l) = limit {
                a.push(format!("limit {}", l.tc()));
            }
        }
        QdiscKind::Tbf(t) => {
            a.push(format!("rate {} burst {}", t.rate.tc(), t.burst.tc()));
            match (t.limit, t.latency) {
                (Some(l), _) => a.push(format!("limit {}", l.tc())),
                (None, Some(l)) => a.push(format!("latency {}", l.tc_us())),
                // tc needs one of the two; 50ms is what most guides use.
                (None, None) => a.push("latency 50000us".into()),
            }
        }
        QdiscKind::FqCodel(f) => {
            if let Some(v) = f.limit {
                a.push(format!("limit {v}"));
            }
            if let Some(v) = f.flows {
                a.push(format!("flows {v}"));
            }
            if let Some(v) = f.target {
                a.push(format!("target {}", v.tc_us()));
            }
            if let Some(v) = f.interval {
                a.push(format!("interval {}", v.tc_us()));
            }
            if let Some(v) = f.quantum {
                a.push(format!("quantum {}", v.tc()));
            }
            if let Some(v) = f.memory_limit {
                a.push(format!("memory_limit {}", v.tc()));
            }
            match f.ecn {
                Some(true) => a.push("ecn".into()),
                Some(false) => a.push("noecn".into()),
                None => {}
            }
        }
        QdiscKind::Cake(c) => {
            match c.bandwidth {
                Some(r) => a.push(format!("bandwidth {}", r.tc())),
                None => a.push("unlimited".into()),
            }
            if let Some(d) = &c.diffserv {
                a.push(d.clone());
            }
            if let Some(m) = &c.flow_mode {
                a.push(m.clone());
            }
            if let Some(r) = c.rtt {
                a.push(format!("rtt {}", r.tc_us()));
            }
            for (v, on, off) in [
                (c.nat, "nat", "nonat"),
                (c.wash, "wash", "nowash"),
                (c.ack_filter, "ack-filter", "no-ack-filter"),
            ] {
                if let Some(v) = v {
                    a.push(if v { on } else { off }.to_string());
                }
            }
            if let Some(o) = c.overhead {
                a.push(format!("overhead {o}"));
            }
        }
        QdiscKind::Sfq(s) => {
            if let Some(p) = s.perturb {
                // sfq takes whole seconds.
                a.push(format!("perturb {}", p.ns().div_ceil(1_000_000_000)));
            }
            if let Some(l) = s.limit {
                a.push(format!("limit {l}"));
            }
            if let Some(q) = s.quantum {
                a.push(format!("quantum {}", q.tc()));
            }
        }
        QdiscKind::Netem(n) => a.extend(netem_args(n)),
        QdiscKind::Ingress | QdiscKind::Other { .. } => {}
    }
    a.join(" ")
}

/// netem's options. Sent in full on every change: netem keeps what a change omits.
/// Probabilities the policy does not set are sent as 0 % so a removed impairment is
/// really removed; rate, slot and ecn cannot be cleared in place (the planner recreates
/// the qdisc for that).
fn netem_args(n: &Netem) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(l) = n.limit {
        a.push(format!("limit {l}"));
    }
    let t0 = crate::units::Time(0);
    let p0 = crate::units::Prob(0.0);
    // Every probability and correlation is sent, zeros too: netem keeps what a change
    // omits, so this is how a removed impairment is really removed.
    a.push(format!(
        "delay {} {} {}",
        n.delay.unwrap_or(t0).tc_ns(),
        n.jitter.unwrap_or(t0).tc_ns(),
        n.delay_correlation.unwrap_or(p0).tc()
    ));
    // Uniform jitter is netem's default and has no table file (tc fails on
    // "distribution uniform": no uniform.dist): it is the absence of a table.
    if let Some(dist) = n.distribution.as_deref().filter(|d| *d != "uniform") {
        a.push(format!("distribution {dist}"));
    }
    match &n.loss {
        Some(Loss::Random { p, correlation }) => a.push(format!(
            "loss random {} {}",
            p.tc(),
            correlation.unwrap_or(p0).tc()
        )),
        Some(Loss::Gemodel { p, r, h, k }) => {
            let mut s = format!("loss gemodel {}", p.tc());
            // tc's positional form: p [r [1-h [1-k]]]; later ones need the earlier.
            let rest = [r, h, k];
            if let Some(last) = rest.iter().rposition(|x| x.is_some()) {
                for (i, v) in rest.iter().enumerate().take(last + 1) {
                    // tc's own defaults for an omitted earlier value: r 100 %, 1-h 0 %.
                    let v = v.unwrap_or(crate::units::Prob(if i == 0 { 1.0 } else { 0.0 }));
                    s.push_str(&format!(" {}", v.tc()));
                }
            }
            a.push(s);
        }
        None => a.push("loss random 0% 0%".into()),
    }
    for (name, p, c) in [
        ("duplicate", n.duplicate, n.duplicate_correlation),
        ("corrupt", n.corrupt, n.corrupt_correlation),
        ("reorder", n.reorder, n.reorder_correlation),
    ] {
        a.push(format!(
            "{name} {} {}",
            p.unwrap_or(p0).tc(),
            c.unwrap_or(p0).tc()
        ));
    }
    if let Some(g) = n.gap {
        a.push(format!("gap {g}"));
    }
    if let Some(r) = n.rate {
        a.push(format!("rate {}", r.tc()));
    }
    if let Some(s) = &n.slot {
        let mut t = format!("slot {}", s.min_delay.tc_ns());
        if let Some(m) = s.max_delay {
            t.push_str(&format!(" {}", m.tc_ns()));
        }
        if let Some(p) = s.packets {
            t.push_str(&format!(" packets {p}"));
        }
        if let Some(b) = s.bytes {
            t.push_str(&format!(" bytes {}", b.tc()));
        }
        a.push(t);
    }
    if n.ecn == Some(true) {
        a.push("ecn".into());
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Handle, Htb};
    use crate::units::{Prob, Rate, Time};

    fn class(minor: u16, parent: Option<u16>, rate: u64) -> Class {
        let h = |m| Handle::new(1, m);
        Class::new(h(minor), parent.map(h), Rate(rate), Rate(rate))
    }

    #[test]
    fn class_lines_use_bits_and_hex_handles() {
        let mut c = class(0x30, Some(0x20), 2_000_000);
        c.prio = Some(4);
        assert_eq!(
            class_add("eth0", &c),
            "class add dev eth0 parent 1:20 classid 1:30 htb rate 2000000bit ceil 2000000bit prio 4"
        );
        assert_eq!(
            class_add("eth0", &class(1, None, 33_333)),
            "class add dev eth0 parent 1: classid 1:1 htb rate 33328bit ceil 33328bit"
        );
    }

    #[test]
    fn htb_default_is_hex() {
        let q = Qdisc {
            handle: Handle::qdisc(1),
            parent: Parent::Root,
            kind: QdiscKind::Htb(Htb {
                default: 0x30,
                r2q: None,
            }),
            name: None,
            stats: None,
        };
        assert_eq!(
            qdisc_add("v0", &q),
            "qdisc add dev v0 root handle 1: htb default 30"
        );
        assert_eq!(qdisc_del("v0", &q), "qdisc del dev v0 root");
    }

    #[test]
    fn netem_sends_the_full_set() {
        let n = Netem {
            delay: Some(Time(40_000_000)),
            jitter: Some(Time(5_000_000)),
            loss: Some(Loss::Random {
                p: Prob(0.005),
                correlation: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            qdisc_args(&QdiscKind::Netem(Box::new(n))),
            "netem delay 40000us 5000us 0% loss random 0.5% 0% duplicate 0% 0% corrupt 0% 0% reorder 0% 0%"
        );
    }

    #[test]
    fn uniform_distribution_is_no_table() {
        let mut n = Netem {
            delay: Some(Time(40_000_000)),
            jitter: Some(Time(10_000_000)),
            distribution: Some("uniform".into()),
            ..Default::default()
        };
        let args = qdisc_args(&QdiscKind::Netem(Box::new(n.clone())));
        assert!(!args.contains("distribution"), "{args}");
        n.distribution = Some("pareto".into());
        let args = qdisc_args(&QdiscKind::Netem(Box::new(n)));
        assert!(
            args.contains("delay 40000us 10000us 0% distribution pareto"),
            "{args}"
        );
    }

    #[test]
    fn fw_filters() {
        let f = Filter {
            parent: Handle::qdisc(1),
            prio: 1,
            protocol: "all".into(),
            kind: FilterKind::Fw {
                mark: 0x30,
                mask: u32::MAX,
            },
            classid: Some(Handle::new(1, 0x30)),
            name: None,
            stats: None,
        };
        assert_eq!(
            filter_add("eth0", &f),
            "filter add dev eth0 parent 1: protocol all prio 1 handle 0x30 fw classid 1:30"
        );
        assert_eq!(
            filter_del("eth0", &f),
            "filter del dev eth0 parent 1: protocol all prio 1 handle 0x30 fw"
        );
    }
}
