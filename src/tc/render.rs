//! Rendering model objects as `tc -batch` lines (without the leading `tc`).
//!
//! Every rate is rendered in bits ([`Rate::tc`]) so tc's byte units (`mbps` = megabytes)
//! never come into play, and every managed parameter is sent on every change, because tc
//! resets what a `change` omits.

use crate::kind::{filter, qdisc};
use crate::model::{Class, Filter, Qdisc, QdiscKind};

/// `qdisc add dev D root handle 1: htb default 10`.
pub fn qdisc_add(dev: &str, q: &Qdisc) -> String {
    if q.parent == crate::model::Parent::Ingress {
        // `ingress` is the kind word here: tc takes no parent for it.
        return format!(
            "qdisc add dev {dev} handle {} {}",
            q.handle,
            qdisc_args(&q.kind)
        );
    }
    format!(
        "qdisc add dev {dev} {} handle {} {}",
        q.parent,
        q.handle,
        qdisc_args(&q.kind)
    )
}

/// In place: same handle, same kind (tc keeps queue and counters).
pub fn qdisc_change(dev: &str, q: &Qdisc) -> String {
    // Some kinds refuse some arguments on change (fq_codel's flows): their home says.
    let args = qdisc::change_args(&q.kind);
    format!(
        "qdisc change dev {dev} {} handle {} {args}",
        q.parent, q.handle
    )
}

pub fn qdisc_del(dev: &str, q: &Qdisc) -> String {
    let words = qdisc::system::del_words(q.parent, &q.kind, q.handle);
    format!("qdisc del dev {dev} {words}")
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
    format!(
        "{} {}",
        filter_head(dev, "replace", f),
        tail(f, filter::change_args(&f.kind))
    )
}

pub fn filter_del(dev: &str, f: &Filter) -> String {
    let head = filter_head(dev, "del", f);
    match filter::del_args(&f.kind) {
        Some(args) => format!("{head} {args}"),
        // A foreign classifier: remove its whole priority (all its handles).
        None => head,
    }
}

fn filter_args(f: &Filter) -> String {
    tail(f, filter::args(&f.kind))
}

/// The kind's arguments `s`, then the classid, then the actions.
fn tail(f: &Filter, mut s: String) -> String {
    if let Some(c) = f.classid {
        s.push_str(&format!(" classid {c}"));
    }
    // Actions last: tc's action parser stops at `classid`, not the other way round.
    let actions = filter::action_args(&f.kind);
    if !actions.is_empty() {
        s.push(' ');
        s.push_str(&actions);
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

/// The kind word and its options, as tc takes them (written by the kind's home).
pub fn qdisc_args(kind: &QdiscKind) -> String {
    qdisc::args(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FilterKind, Handle, Htb, Loss, Netem, Parent};
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
