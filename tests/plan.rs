//! The differ as a pure function: hand-built desired and live models → the exact tc lines.

use qosctl::model::*;
use qosctl::plan::{diff_device, Obj, Op};
use qosctl::units::{Prob, Rate, Size, Time};

fn h(minor: u16) -> Handle {
    Handle::new(1, minor)
}

fn class(minor: u16, parent: Option<u16>, mbit: u64) -> Class {
    let rate = Rate(mbit * 1_000_000);
    Class::new(h(minor), parent.map(h), rate, rate)
}

fn root(default: u16) -> Qdisc {
    Qdisc {
        handle: Handle::qdisc(1),
        parent: Parent::Root,
        kind: QdiscKind::Htb(Htb { default, r2q: None }),
        name: None,
        stats: None,
    }
}

fn leaf(minor: u16, kind: QdiscKind) -> Qdisc {
    Qdisc {
        handle: Handle::qdisc(minor),
        parent: Parent::Class(h(minor)),
        kind,
        name: None,
        stats: None,
    }
}

fn pfifo(minor: u16) -> Qdisc {
    leaf(minor, QdiscKind::Pfifo { limit: Some(100) })
}

fn fw(mark: u32, to: u16) -> Filter {
    Filter {
        parent: Handle::qdisc(1),
        prio: 1,
        protocol: "all".into(),
        kind: FilterKind::Fw {
            mark,
            mask: u32::MAX,
        },
        classid: Some(h(to)),
        name: None,
        stats: None,
    }
}

/// A tree: 1:1 (100mbit) → 1:10 (60mbit) → {1:11, 1:12}; 1:20 (40mbit) leaf; marks 0x11, 0x20.
fn tree() -> DeviceState {
    DeviceState {
        device: "v0".into(),
        qdiscs: vec![root(0x20), pfifo(0x11), pfifo(0x12), pfifo(0x20)],
        classes: vec![
            class(1, None, 100),
            class(0x10, Some(1), 60),
            class(0x11, Some(0x10), 30),
            class(0x12, Some(0x10), 30),
            class(0x20, Some(1), 40),
        ],
        filters: vec![fw(0x11, 0x11), fw(0x20, 0x20)],
    }
}

fn lines(ops: &[Op]) -> Vec<String> {
    ops.iter().map(|o| qosctl::plan::command("v0", o)).collect()
}

#[test]
fn first_apply_adds_top_down_then_leaves_then_filters() {
    let got = lines(&diff_device(&tree(), &DeviceState::default()));
    assert_eq!(
        got,
        [
            "qdisc add dev v0 root handle 1: htb default 20",
            "class add dev v0 parent 1: classid 1:1 htb rate 100000000bit ceil 100000000bit",
            "class add dev v0 parent 1:1 classid 1:10 htb rate 60000000bit ceil 60000000bit",
            "class add dev v0 parent 1:1 classid 1:20 htb rate 40000000bit ceil 40000000bit",
            "class add dev v0 parent 1:10 classid 1:11 htb rate 30000000bit ceil 30000000bit",
            "class add dev v0 parent 1:10 classid 1:12 htb rate 30000000bit ceil 30000000bit",
            "qdisc add dev v0 parent 1:11 handle 11: pfifo limit 100",
            "qdisc add dev v0 parent 1:12 handle 12: pfifo limit 100",
            "qdisc add dev v0 parent 1:20 handle 20: pfifo limit 100",
            "filter add dev v0 parent 1: protocol all prio 1 handle 0x11 fw classid 1:11",
            "filter add dev v0 parent 1: protocol all prio 1 handle 0x20 fw classid 1:20",
        ]
    );
}

#[test]
fn same_state_is_in_sync() {
    assert!(diff_device(&tree(), &tree()).is_empty());
}

#[test]
fn one_rate_change_is_one_class_change() {
    let mut want = tree();
    want.classes[3].rate = Rate(25_000_000);
    let ops = diff_device(&want, &tree());
    assert_eq!(
        lines(&ops),
        ["class change dev v0 parent 1:10 classid 1:12 htb rate 25000000bit ceil 30000000bit"]
    );
    let Op::Change { fields, .. } = &ops[0] else {
        panic!("expected a change, got {ops:?}")
    };
    assert_eq!(fields[0].field, "rate");
    assert_eq!(
        (fields[0].live.as_str(), fields[0].desired.as_str()),
        ("30mbit", "25mbit")
    );
}

#[test]
fn kernel_rounding_never_causes_a_diff() {
    // 33333bit is stored as 4166 bytes/s and reads back as 33328bit (TC-NOTES).
    let mut want = tree();
    want.classes[4].rate = Rate(33_333);
    let mut live = tree();
    live.classes[4].rate = Rate(33_328);
    assert!(diff_device(&want, &live).is_empty());

    // Text output (iproute2 ≤ 6.1) prints 123456789bit as 123456Kbit.
    want.classes[4].rate = Rate(123_456_789);
    live.classes[4].rate = Rate(123_456_000);
    live.classes[4].rates_from_text = true;
    assert!(diff_device(&want, &live).is_empty());
    // …but a real change is still seen through the rounding.
    want.classes[4].rate = Rate(124_000_000);
    assert_eq!(diff_device(&want, &live).len(), 1);
}

#[test]
fn burst_is_compared_only_when_set_and_with_tolerance() {
    let mut live = tree();
    live.classes[4].burst = Some(Size(15337)); // what 15k reads back as
    assert!(diff_device(&tree(), &live).is_empty());
    let mut want = tree();
    want.classes[4].burst = Some(Size(15 * 1024));
    assert!(diff_device(&want, &live).is_empty());
    want.classes[4].burst = Some(Size(30 * 1024));
    assert_eq!(diff_device(&want, &live).len(), 1);
}

#[test]
fn removed_class_loses_its_filter_first() {
    let mut want = tree();
    want.classes.retain(|c| c.handle != h(0x20));
    want.qdiscs.retain(|q| q.handle != Handle::qdisc(0x20));
    want.filters.retain(|f| f.classid != Some(h(0x20)));
    want.qdiscs[0] = root(0x11);
    let mut live = tree();
    live.qdiscs[0] = root(0x11);
    assert_eq!(
        lines(&diff_device(&want, &live)),
        [
            "filter del dev v0 parent 1: protocol all prio 1 handle 0x20 fw",
            "class del dev v0 classid 1:20",
        ]
    );
}

#[test]
fn moved_class_is_recreated_with_its_subtree_only() {
    // 1:10 (with children 1:11, 1:12) moves under 1:20.
    let mut want = tree();
    want.classes[1].parent = Some(h(0x20));
    want.classes[4].ceil = Rate(100_000_000);
    want.classes[4].rate = Rate(100_000_000);
    want.qdiscs.retain(|q| q.handle != Handle::qdisc(0x20));
    want.filters.retain(|f| f.classid != Some(h(0x20)));
    want.qdiscs[0] = root(0x11);
    let mut live = tree();
    live.qdiscs[0] = root(0x11);
    let got = lines(&diff_device(&want, &live));
    assert_eq!(
        got,
        [
            "filter del dev v0 parent 1: protocol all prio 1 handle 0x11 fw",
            "filter del dev v0 parent 1: protocol all prio 1 handle 0x20 fw",
            "qdisc del dev v0 parent 1:20 handle 20:",
            "class del dev v0 classid 1:11",
            "class del dev v0 classid 1:12",
            "class del dev v0 classid 1:10",
            "class change dev v0 parent 1:1 classid 1:20 htb rate 100000000bit ceil 100000000bit",
            "class add dev v0 parent 1:20 classid 1:10 htb rate 60000000bit ceil 60000000bit",
            "class add dev v0 parent 1:10 classid 1:11 htb rate 30000000bit ceil 30000000bit",
            "class add dev v0 parent 1:10 classid 1:12 htb rate 30000000bit ceil 30000000bit",
            "qdisc add dev v0 parent 1:11 handle 11: pfifo limit 100",
            "qdisc add dev v0 parent 1:12 handle 12: pfifo limit 100",
            "filter add dev v0 parent 1: protocol all prio 1 handle 0x11 fw classid 1:11",
        ]
    );
}

#[test]
fn new_default_rebuilds_the_root() {
    let mut want = tree();
    want.qdiscs[0] = root(0x11);
    let ops = diff_device(&want, &tree());
    let got = lines(&ops);
    assert_eq!(got[0], "qdisc del dev v0 root");
    assert_eq!(got[1], "qdisc add dev v0 root handle 1: htb default 11");
    assert_eq!(got.len(), 1 + 1 + 5 + 3 + 2);
    let Op::Remove { reason, .. } = &ops[0] else {
        panic!()
    };
    assert!(reason
        .as_deref()
        .unwrap()
        .contains("htb default changes 20 -> 11"));
}

#[test]
fn mark_moved_is_one_filter_replace() {
    let mut want = tree();
    want.filters[0].classid = Some(h(0x12));
    assert_eq!(
        lines(&diff_device(&want, &tree())),
        ["filter replace dev v0 parent 1: protocol all prio 1 handle 0x11 fw classid 1:12"]
    );
}

#[test]
fn leaf_kind_change_is_delete_and_add_of_that_leaf() {
    let mut want = tree();
    want.qdiscs[3] = leaf(
        0x20,
        QdiscKind::Bfifo {
            limit: Some(Size(30000)),
        },
    );
    assert_eq!(
        lines(&diff_device(&want, &tree())),
        [
            "qdisc del dev v0 parent 1:20 handle 20:",
            "qdisc add dev v0 parent 1:20 handle 20: bfifo limit 30000",
        ]
    );
}

#[test]
fn same_kind_leaf_changes_in_place() {
    let mut want = tree();
    want.qdiscs[3] = leaf(0x20, QdiscKind::Pfifo { limit: Some(500) });
    assert_eq!(
        lines(&diff_device(&want, &tree())),
        ["qdisc change dev v0 parent 1:20 handle 20: pfifo limit 500"]
    );
}

#[test]
fn foreign_filters_are_removed_by_priority() {
    let mut live = tree();
    live.filters.push(Filter {
        parent: Handle::qdisc(1),
        prio: 5,
        protocol: "ip".into(),
        kind: FilterKind::Other {
            kind: "u32".into(),
            handle: Some("800::800".into()),
            summary: "match ip dst 10.0.0.1/32".into(),
        },
        classid: Some(h(0x20)),
        name: None,
        stats: None,
    });
    let ops = diff_device(&tree(), &live);
    assert_eq!(
        lines(&ops),
        ["filter del dev v0 parent 1: protocol ip prio 5"]
    );
    assert!(matches!(
        &ops[0],
        Op::Remove {
            obj: Obj::FilterPrio { count: 1, .. },
            ..
        }
    ));
}

#[test]
fn unmanaged_ingress_is_removed() {
    let mut live = tree();
    live.qdiscs.push(Qdisc {
        handle: Handle::INGRESS,
        parent: Parent::Ingress,
        kind: QdiscKind::Ingress,
        name: None,
        stats: None,
    });
    assert_eq!(
        lines(&diff_device(&tree(), &live)),
        ["qdisc del dev v0 ingress"]
    );
}

fn netem_root(n: Netem) -> DeviceState {
    DeviceState {
        device: "v0".into(),
        qdiscs: vec![Qdisc {
            handle: Handle::qdisc(1),
            parent: Parent::Root,
            kind: QdiscKind::Netem(Box::new(n)),
            name: None,
            stats: None,
        }],
        classes: vec![],
        filters: vec![],
    }
}

#[test]
fn netem_changes_in_place_with_the_full_set() {
    let live = netem_root(Netem {
        delay: Some(Time(1_000_000_000)),
        loss: Some(Loss::Random {
            p: Prob(0.5),
            correlation: None,
        }),
        ..Default::default()
    });
    let want = netem_root(Netem {
        delay: Some(Time(100_000_000)),
        ..Default::default()
    });
    let ops = diff_device(&want, &live);
    assert_eq!(
        lines(&ops),
        ["qdisc change dev v0 root handle 1: netem delay 100000us 0us 0% loss random 0% 0% duplicate 0% 0% corrupt 0% 0% reorder 0% 0%"]
    );
    let Op::Change { fields, .. } = &ops[0] else {
        panic!()
    };
    let names: Vec<_> = fields.iter().map(|f| f.field).collect();
    assert_eq!(names, ["delay", "loss"]);
    // Reading back what netem reports for no loss (0 or absent) is in sync.
    let mut back = want.clone();
    if let QdiscKind::Netem(n) = &mut back.qdiscs[0].kind {
        n.loss = Some(Loss::Random {
            p: Prob(0.0),
            correlation: Some(Prob(0.0)),
        });
        n.limit = Some(1000);
    }
    assert!(diff_device(&want, &back).is_empty());
}

#[test]
fn netem_rate_dropped_recreates_the_qdisc() {
    let live = netem_root(Netem {
        delay: Some(Time(10_000_000)),
        rate: Some(Rate(1_000_000)),
        ..Default::default()
    });
    let want = netem_root(Netem {
        delay: Some(Time(10_000_000)),
        ..Default::default()
    });
    let got = lines(&diff_device(&want, &live));
    assert_eq!(got[0], "qdisc del dev v0 root");
    assert!(got[1].starts_with("qdisc add dev v0 root handle 1: netem delay 10000us"));
    assert_eq!(got.len(), 2);
}

#[test]
fn human_plan_has_signs_names_and_summary() {
    let mut want = tree();
    want.classes[3].rate = Rate(25_000_000);
    want.classes[3].name = Some("wan/web/b".into());
    want.filters.push(fw(0x12, 0x12));
    let plan = qosctl::plan::Plan {
        devices: vec![qosctl::plan::DevicePlan {
            device: "eth0".into(),
            alias: Some("wan".into()),
            ops: diff_device(&want, &tree()),
            goes_with: Vec::new(),
            link: None,
        }],
    };
    let text = qosctl::plan::render_human(&plan);
    assert!(text.starts_with("eth0 (wan)\n"), "{text}");
    assert!(text.contains("~ class 1:12"), "{text}");
    assert!(text.contains("wan/web/b  rate 30mbit -> 25mbit"), "{text}");
    assert!(text.contains("+ filter fw 0x12"), "{text}");
    assert!(
        text.ends_with("Plan: 1 to add, 1 to change, 0 to remove.\n"),
        "{text}"
    );
}

#[test]
fn sfq_is_recreated_and_fq_codel_changes_without_flows() {
    let mut live = tree();
    live.qdiscs[3] = leaf(
        0x20,
        QdiscKind::Sfq(Sfq {
            perturb: Some(Time(10_000_000_000)),
            limit: None,
            quantum: None,
        }),
    );
    let mut want = live.clone();
    want.qdiscs[3] = leaf(
        0x20,
        QdiscKind::Sfq(Sfq {
            perturb: Some(Time(5_000_000_000)),
            limit: None,
            quantum: None,
        }),
    );
    assert_eq!(
        lines(&diff_device(&want, &live)),
        [
            "qdisc del dev v0 parent 1:20 handle 20:",
            "qdisc add dev v0 parent 1:20 handle 20: sfq perturb 5"
        ]
    );

    let fq = |target_ms: u64, flows: u32| {
        leaf(
            0x20,
            QdiscKind::FqCodel(FqCodel {
                target: Some(Time(target_ms * 1_000_000)),
                flows: Some(flows),
                ..Default::default()
            }),
        )
    };
    live.qdiscs[3] = fq(5, 1024);
    want.qdiscs[3] = fq(10, 1024);
    assert_eq!(
        lines(&diff_device(&want, &live)),
        ["qdisc change dev v0 parent 1:20 handle 20: fq_codel target 10000us"]
    );
    want.qdiscs[3] = fq(5, 2048);
    let got = lines(&diff_device(&want, &live));
    assert_eq!(got[0], "qdisc del dev v0 parent 1:20 handle 20:");
    assert_eq!(
        got[1],
        "qdisc add dev v0 parent 1:20 handle 20: fq_codel flows 2048 target 5000us"
    );
}
