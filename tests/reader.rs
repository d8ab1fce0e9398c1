//! Golden tests of the tc reader: real `tc` output (tests/fixtures/tc, see its README for
//! the command behind each file) → the model, with concrete values asserted.

mod common;
use common::{fixture, VERSIONS};
use common::{is_root, Netns};

use std::process::Command;

use qosctl::model::{
    Class, DeviceState, Filter, FilterKind, Handle, Loss, Parent, Qdisc, QdiscKind,
};
use qosctl::tc::read::{parse_classes, parse_filters, parse_qdiscs, read_device};
use qosctl::tc::Tc;
use qosctl::units::{Prob, Rate, Size, Time};

fn h(s: &str) -> Handle {
    Handle::parse(s).unwrap()
}

fn mbit(n: u64) -> Rate {
    Rate(n * 1_000_000)
}

fn qdisc<'a>(qs: &'a [Qdisc], handle: &str) -> &'a Qdisc {
    qs.iter()
        .find(|q| q.handle == h(handle))
        .unwrap_or_else(|| panic!("no qdisc {handle} in {qs:#?}"))
}

fn class<'a>(cs: &'a [Class], handle: &str) -> &'a Class {
    cs.iter()
        .find(|c| c.handle == h(handle))
        .unwrap_or_else(|| panic!("no class {handle} in {cs:#?}"))
}

fn other(f: &Filter) -> (&str, Option<&str>, &str) {
    match &f.kind {
        FilterKind::Other {
            kind,
            handle,
            summary,
        } => (kind, handle.as_deref(), summary),
        k => panic!("expected a non-fw filter, got {k:?}"),
    }
}

fn fw(f: &Filter) -> (u32, u32) {
    match f.kind {
        FilterKind::Fw { mark, mask } => (mark, mask),
        ref k => panic!("expected fw, got {k:?}"),
    }
}

// ---- by-version: one kernel state, seven iproute2 versions -------------------------------

#[test]
fn by_version_qdiscs() {
    for v in VERSIONS {
        let qs = parse_qdiscs(&fixture(&format!("by-version/{v}/qdisc-v0-s-d.json")))
            .unwrap_or_else(|e| panic!("{v}: {e:#}"));
        assert_eq!(qs.len(), 4, "{v}: {qs:#?}");
        // Sorted: root first, then by parent class.
        assert_eq!(qs[0].handle, h("1:"), "{v}");
        assert_eq!(qs[0].parent, Parent::Root, "{v}");
        let htb = match &qs[0].kind {
            QdiscKind::Htb(htb) => htb,
            k => panic!("{v}: root is {k:?}"),
        };
        assert_eq!(htb.default, 0x10, "{v}");
        assert_eq!(htb.r2q, Some(10), "{v}");
        let st = qs[0].stats.as_ref().unwrap();
        assert_eq!((st.bytes, st.packets), (5240, 94), "{v}");

        let p10 = qdisc(&qs, "10:");
        assert_eq!(p10.parent, Parent::Class(h("1:10")), "{v}");
        assert_eq!(p10.kind, QdiscKind::Pfifo { limit: Some(200) }, "{v}");
        assert_eq!(p10.stats.as_ref().unwrap().packets, 54, "{v}");
        let p21 = qdisc(&qs, "21:");
        assert_eq!(p21.parent, Parent::Class(h("1:20")), "{v}");
        assert_eq!(p21.kind, QdiscKind::Pfifo { limit: Some(60) }, "{v}");

        // tbf: JSON from 5.5, text inside the JSON on 5.4.
        let tbf = match &qdisc(&qs, "a0:").kind {
            QdiscKind::Tbf(t) => t.clone(),
            k => panic!("{v}: a0: is {k:?}"),
        };
        assert_eq!(tbf.rate, mbit(6), "{v}");
        assert_eq!(tbf.burst, Size(10 * 1024), "{v}");
        assert_eq!(tbf.latency, Some(Time(50_000_000)), "{v}");
    }
}

#[test]
fn by_version_tbf_with_duplicate_mpu() {
    for v in VERSIONS {
        let qs = parse_qdiscs(&fixture(&format!("by-version/{v}/qdisc-v2-tbf-s-d.json")))
            .unwrap_or_else(|e| panic!("{v}: {e:#}"));
        assert_eq!(qs.len(), 1, "{v}");
        assert_eq!(qs[0].handle, h("5:"));
        assert_eq!(qs[0].parent, Parent::Root);
        let QdiscKind::Tbf(t) = &qs[0].kind else {
            panic!("{v}: {:?}", qs[0].kind)
        };
        assert_eq!(t.rate, mbit(2), "{v}");
        assert_eq!(t.burst, Size(10 * 1024), "{v}");
        // 79040us in JSON, "79.0ms" in 5.4's text.
        let lat = t.latency.unwrap().ns();
        assert!((79_000_000..=79_040_000).contains(&lat), "{v}: {lat}");
        assert_eq!(qs[0].stats.as_ref().unwrap().packets, 11, "{v}");
    }
}

#[test]
fn by_version_classes_json_and_text() {
    for v in VERSIONS {
        let cs = parse_classes(&fixture(&format!("by-version/{v}/class-v0-s-d.json")))
            .unwrap_or_else(|e| panic!("{v}: {e:#}"));
        // Five htb classes; tbf's inner class a0:1 is not one of them.
        let handles: Vec<String> = cs.iter().map(|c| c.handle.to_string()).collect();
        assert_eq!(handles, ["1:1", "1:10", "1:20", "1:a0", "1:ff"], "{v}");
        let text = matches!(v, "5.4.0" | "5.5.0" | "5.10.0" | "5.15.0" | "6.1.0");
        assert!(cs.iter().all(|c| c.rates_from_text == text), "{v}");

        let root = class(&cs, "1:1");
        assert_eq!(root.parent, None, "{v}");
        assert_eq!((root.rate, root.ceil), (mbit(100), mbit(100)), "{v}");
        assert_eq!(root.prio, None, "{v}: prio is reported only for leaves");
        let b = root.burst.unwrap().0;
        assert!((15_300..=15_400).contains(&b), "{v}: burst {b}");

        let c10 = class(&cs, "1:10");
        assert_eq!(c10.parent, Some(h("1:1")), "{v}");
        assert_eq!((c10.rate, c10.ceil), (mbit(20), mbit(50)), "{v}");
        assert_eq!(c10.prio, Some(1), "{v}");
        assert_eq!(c10.quantum, Some(Size(1514)), "{v}");
        assert_eq!(
            (c10.burst, c10.cburst),
            (Some(Size(1600)), Some(Size(3200))),
            "{v}"
        );
        let st = c10.stats.as_ref().unwrap();
        assert_eq!((st.bytes, st.packets), (3120, 54), "{v}");

        let c20 = class(&cs, "1:20");
        assert_eq!(
            (c20.rate, c20.ceil, c20.prio),
            (mbit(1), mbit(100), Some(2))
        );
        assert_eq!(c20.stats.as_ref().unwrap().bytes, 2120, "{v}");
        let ca0 = class(&cs, "1:a0");
        assert_eq!((ca0.rate, ca0.ceil, ca0.prio), (mbit(5), mbit(5), Some(0)));
        let cff = class(&cs, "1:ff");
        assert_eq!(cff.rate, Rate(1_000_000_000), "{v}");
        assert_eq!(cff.ceil, Rate(40_000_000_000), "{v}");
        assert_eq!(
            (cff.prio, cff.quantum),
            (Some(7), Some(Size(60_000))),
            "{v}"
        );
    }
}

#[test]
fn by_version_class_text_without_stats() {
    for v in VERSIONS {
        let cs = parse_classes(&fixture(&format!("by-version/{v}/class-v0-d.txt"))).unwrap();
        assert_eq!(cs.len(), 5, "{v}");
        assert!(cs.iter().all(|c| c.rates_from_text && c.stats.is_none()));
        assert_eq!(class(&cs, "1:10").rate, mbit(20), "{v}");
    }
    for v in VERSIONS {
        let cs = parse_classes(&fixture(&format!("by-version/{v}/class-ifb0-s.json"))).unwrap();
        assert_eq!(cs.len(), 1, "{v}");
        assert_eq!((cs[0].handle, cs[0].parent), (h("2:1"), None), "{v}");
        assert_eq!(cs[0].rate, mbit(20), "{v}");
        assert_eq!(cs[0].stats.as_ref().unwrap().packets, 99, "{v}");
    }
}

/// The u32 rules of by-version's v0: (prio, protocol, handle, classid).
const V0_U32: [(u16, &str, &str, Option<&str>); 7] = [
    (1, "ip", "800::800", Some("1:10")),
    (1, "ip", "800::801", None),
    (2, "ip", "801::800", Some("1:20")),
    (3, "ip", "802::10", Some("1:a0")),
    (5, "ipv6", "803::800", Some("1:20")),
    (6, "ip", "3:5:800", Some("1:ff")),
    (9, "all", "805::800", Some("1:1")),
];

fn check_v0_filters(label: &str, fs: &[Filter]) {
    let got: Vec<(u16, &str, &str, Option<String>)> = fs
        .iter()
        .map(|f| {
            let (kind, handle, _) = other(f);
            assert_eq!(kind, "u32", "{label}");
            assert_eq!(f.parent, h("1:"), "{label}");
            (
                f.prio,
                f.protocol.as_str(),
                handle.unwrap_or("-"),
                f.classid.map(|c| c.to_string()),
            )
        })
        .collect();
    let want: Vec<(u16, &str, &str, Option<String>)> = V0_U32
        .iter()
        .map(|(p, proto, hd, c)| (*p, *proto, *hd, c.map(str::to_string)))
        .collect();
    assert_eq!(got, want, "{label}");
    let (_, _, s) = other(&fs[0]);
    assert!(
        s.contains("ffffffff at 16") && s.contains("ffff at 20"),
        "{label}: {s}"
    );
    let (_, _, link) = other(&fs[1]);
    assert!(link.contains("link 3:"), "{label}: {link}");
}

#[test]
fn by_version_u32_filters_json_with_text_inside_and_duplicate_keys() {
    for v in VERSIONS {
        let fs = parse_filters(
            &fixture(&format!("by-version/{v}/filter-v0-s-d.json")),
            h("1:"),
        )
        .unwrap_or_else(|e| panic!("{v}: {e:#}"));
        check_v0_filters(v, &fs);
    }
}

#[test]
fn by_version_u32_filters_text() {
    for v in VERSIONS {
        let fs = parse_filters(&fixture(&format!("by-version/{v}/filter-v0.txt")), h("1:"))
            .unwrap_or_else(|e| panic!("{v}: {e:#}"));
        check_v0_filters(&format!("{v} text"), &fs);
    }
}

#[test]
fn by_version_ingress_and_clsact() {
    for v in VERSIONS {
        let qs = parse_qdiscs(&fixture(&format!("by-version/{v}/qdisc-v1-ingress.json"))).unwrap();
        assert_eq!(qs.len(), 1, "{v}: the noqueue root is the kernel default");
        assert_eq!(
            (qs[0].handle, qs[0].parent, &qs[0].kind),
            (Handle::INGRESS, Parent::Ingress, &QdiscKind::Ingress),
            "{v}"
        );
        let qs = parse_qdiscs(&fixture(&format!("by-version/{v}/qdisc-v3-clsact.json"))).unwrap();
        assert_eq!(qs.len(), 1, "{v}");
        assert_eq!(qs[0].parent, Parent::Ingress, "{v}");
        assert_eq!(qs[0].kind.kind_name(), "clsact", "{v}");

        // `parent ffff:` was the selector: tc omits it, the reader fills it in.
        let fs = parse_filters(
            &fixture(&format!("by-version/{v}/filter-v1-ingress-s.json")),
            Handle::INGRESS,
        )
        .unwrap_or_else(|e| panic!("{v}: {e:#}"));
        assert_eq!(fs.len(), 1, "{v}: {fs:#?}");
        let (kind, handle, summary) = other(&fs[0]);
        assert_eq!((kind, handle), ("u32", Some("800::800")), "{v}");
        assert_eq!(fs[0].parent, Handle::INGRESS, "{v}");
        assert_eq!(fs[0].classid, None, "{v}");
        assert!(summary.contains("mirred"), "{v}: {summary}");
        let st = fs[0].stats.as_ref().unwrap();
        assert_eq!((st.bytes, st.packets), (3852, 93), "{v}");
    }
}

// ---- iproute2 6.1 (this machine's tc) -----------------------------------------------------

#[test]
fn defaults_read_as_nothing() {
    assert!(
        parse_qdiscs(&fixture("iproute2-6.1/01-default-qdisc-s-d.json"))
            .unwrap()
            .is_empty()
    );
    assert!(parse_qdiscs(&fixture("iproute2-6.1/01-default-qdisc.json"))
        .unwrap()
        .is_empty());
    // No classes: tc 6.1 prints nothing at all, not even [].
    let empty = fixture("iproute2-6.1/01-default-class-v0.json");
    assert!(empty.trim().is_empty());
    assert!(parse_classes(&empty).unwrap().is_empty());
    assert!(
        parse_filters(&fixture("iproute2-6.1/01-default-filter-v0.json"), h("1:"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn htb_tree_with_pfifo_bfifo_tbf_leaves() {
    let qs = parse_qdiscs(&fixture("iproute2-6.1/08-stats-qdisc-v0.json")).unwrap();
    let kinds: Vec<(String, &str)> = qs
        .iter()
        .map(|q| (q.handle.to_string(), q.kind.kind_name()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("1:".into(), "htb"),
            ("10:".into(), "pfifo"),
            ("20:".into(), "bfifo"),
            ("a0:".into(), "tbf")
        ]
    );
    assert_eq!(
        qdisc(&qs, "20:").kind,
        QdiscKind::Bfifo {
            limit: Some(Size(30_000))
        }
    );
    // Without -d tbf prints burst as an integer.
    let QdiscKind::Tbf(t) = &qdisc(&qs, "a0:").kind else {
        panic!()
    };
    assert_eq!((t.rate, t.burst), (mbit(5), Size(10_240)));
    assert_eq!(qdisc(&qs, "20:").stats.as_ref().unwrap().packets, 40);

    let cs = parse_classes(&fixture("iproute2-6.1/08-stats-class-v0-j.out")).unwrap();
    let c10 = class(&cs, "1:10");
    assert_eq!(
        (c10.rate, c10.ceil, c10.prio),
        (mbit(10), mbit(50), Some(1))
    );
    assert_eq!(c10.stats.as_ref().unwrap().packets, 51);
    assert!(c10.rates_from_text);
}

#[test]
fn text_rates_are_tc_rounded() {
    let cs = parse_classes(&fixture("iproute2-6.1/06-rates-class-j-s-d.out")).unwrap();
    assert_eq!(cs.len(), 14);
    assert!(cs.iter().all(|c| c.parent.is_none() && c.rates_from_text));
    let rate = |hd: &str| class(&cs, hd).rate;
    assert_eq!(rate("1:2"), Rate(1_500_000));
    assert_eq!(rate("1:3"), Rate(33_328));
    // 123456789bit is printed "123456Kbit": the planner compares via tc_text_rounded.
    assert_eq!(rate("1:5"), Rate(123_456_000));
    assert_eq!(rate("1:5"), Rate(123_456_789).tc_text_rounded());
    assert_eq!(class(&cs, "1:6").ceil, Rate(1_001_000));
    assert_eq!(rate("1:a"), Rate(50_000_000_000));
    assert_eq!(rate("1:b"), Rate(8));
    assert_eq!(class(&cs, "1:c").burst, Some(Size(1024)));
    assert_eq!(class(&cs, "1:d").quantum, Some(Size(200_000)));
    assert_eq!(rate("1:e"), mbit(7));
    let q = parse_qdiscs(&fixture("iproute2-6.1/06-rates-qdisc.json")).unwrap();
    let QdiscKind::Htb(htb) = &q[0].kind else {
        panic!()
    };
    assert_eq!(htb.default, 0, "\"default\":\"0\"");
}

#[test]
fn rate_estimator_counters() {
    let qs = parse_qdiscs(&fixture("iproute2-6.1/12-estimator-qdisc-s.json")).unwrap();
    assert_eq!(qs[0].stats.as_ref().unwrap().rate_bps, Some(0));
    let QdiscKind::Htb(htb) = &qs[0].kind else {
        panic!()
    };
    assert_eq!(htb.default, 1);
    let cs = parse_classes(&fixture("iproute2-6.1/12-estimator-class-s.txt")).unwrap();
    assert_eq!(cs[0].stats.as_ref().unwrap().rate_bps, Some(0));
    assert_eq!(cs[0].rate, mbit(5));
    // Without -d: no quantum printed.
    assert_eq!(cs[0].quantum, None);
    // Without an estimator there is no rate.
    let qs = parse_qdiscs(&fixture("iproute2-6.1/08-stats-qdisc-v0.json")).unwrap();
    assert_eq!(qs[0].stats.as_ref().unwrap().rate_bps, None);
}

#[test]
fn tbf_variants() {
    let a = parse_qdiscs(&fixture("iproute2-6.1/05-tbf-a-s-d.json")).unwrap();
    let QdiscKind::Tbf(t) = &a[0].kind else {
        panic!()
    };
    assert_eq!((t.rate, t.burst), (mbit(1), Size(4096)));
    assert_eq!(t.latency, Some(Time(400_000_000)));
    let raw = parse_qdiscs(&fixture("iproute2-6.1/09-tbf-raw-d.json")).unwrap();
    let QdiscKind::Tbf(t) = &raw[0].kind else {
        panic!()
    };
    assert_eq!(t.limit, Some(Size(30_000)), "limit is printed with -r only");
    assert_eq!(t.rate, mbit(2));
}

#[test]
fn u32_json_and_text_of_6_1_agree() {
    let j = parse_filters(&fixture("iproute2-6.1/02-u32-filter-s-d.json"), h("1:")).unwrap();
    let t = parse_filters(&fixture("iproute2-6.1/02-u32-filter-s-d.txt"), h("1:")).unwrap();
    let key = |fs: &[Filter]| -> Vec<(u16, String, Option<String>, Option<Handle>)> {
        fs.iter()
            .map(|f| {
                let (_, hd, _) = other(f);
                (
                    f.prio,
                    f.protocol.clone(),
                    hd.map(str::to_string),
                    f.classid,
                )
            })
            .collect()
    };
    assert_eq!(key(&j), key(&t));
    assert_eq!(j.len(), 7);
    // Ingress, JSON and text.
    let ij = parse_filters(
        &fixture("iproute2-6.1/03-ingress-filter-s-d.json"),
        Handle::INGRESS,
    )
    .unwrap();
    let it = parse_filters(
        &fixture("iproute2-6.1/03-ingress-filter.txt"),
        Handle::INGRESS,
    )
    .unwrap();
    assert_eq!(key(&ij), key(&it));
    assert_eq!(ij[0].parent, Handle::INGRESS);
    assert!(other(&it[0]).2.contains("mirred"), "{:?}", it[0]);
}

#[test]
fn ifb_htb_and_clsact() {
    let q = parse_qdiscs(&fixture("iproute2-6.1/03-ifb-qdisc-s-d.json")).unwrap();
    assert_eq!(q[0].handle, h("2:"));
    let c = parse_classes(&fixture("iproute2-6.1/03-ifb-class-s-d.txt")).unwrap();
    assert_eq!(
        (c[0].handle, c[0].rate, c[0].quantum),
        (h("2:1"), mbit(20), Some(Size(200_000)))
    );
    let q = parse_qdiscs(&fixture("iproute2-6.1/04-clsact-qdisc-s-d.json")).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        q[0].kind,
        QdiscKind::Other {
            kind: "clsact".into()
        }
    );
    let q = parse_qdiscs(&fixture("iproute2-6.1/03-ingress-qdisc-s-d.json")).unwrap();
    assert_eq!((q.len(), q[0].parent), (1, Parent::Ingress));
}

// ---- kernel-lab: a full kernel (netem, fq_codel, cake, sfq, fw, flower) ------------------

const LAB_61: &str = "kernel-lab-6.1.0-56-amd64";
const LAB_612: &str = "kernel-lab-6.12.95+deb12-amd64";
const LAB_615: &str = "kernel-lab-6.1.0-56-amd64-iproute2-6.15.0";

#[test]
fn lab_qdiscs_netem_fq_codel_sfq_cake() {
    for lab in [LAB_61, LAB_612, LAB_615] {
        // The all-devices dump; parse_qdiscs drops lo's noqueue and keeps the rest.
        let qs = parse_qdiscs(&fixture(&format!("{lab}/qdisc-s-d.json"))).unwrap();
        assert!(qs.iter().all(|q| q.kind.kind_name() != "noqueue"), "{lab}");

        let netem = qs.iter().find(|q| q.handle == h("20:")).expect("netem 20:");
        assert_eq!(netem.parent, Parent::Class(h("1:20")), "{lab}");
        let QdiscKind::Netem(n) = &netem.kind else {
            panic!("{lab}: {:?}", netem.kind)
        };
        assert_eq!(n.delay, Some(Time(10_000_000)), "{lab}");
        assert_eq!(n.jitter, Some(Time(2_000_000)), "{lab}");
        assert_eq!(
            n.loss,
            Some(Loss::Random {
                p: Prob(0.01),
                correlation: Some(Prob(0.0))
            }),
            "{lab}"
        );
        assert_eq!(n.corrupt, Some(Prob(0.001)), "{lab}");
        assert_eq!(n.reorder, Some(Prob(0.05)), "{lab}");
        assert_eq!((n.limit, n.gap, n.ecn), (Some(1000), Some(1), Some(false)));
        assert_eq!(n.duplicate, None);
        assert!(netem.stats.as_ref().unwrap().packets > 0, "{lab}");

        let fq = qs.iter().find(|q| q.handle == h("10:")).unwrap();
        let QdiscKind::FqCodel(f) = &fq.kind else {
            panic!("{lab}: {:?}", fq.kind)
        };
        assert_eq!(f.limit, Some(10_240), "{lab}");
        assert_eq!(f.flows, Some(1024));
        // 5ms/100ms read back as 4999us/99999us.
        assert_eq!(f.target, Some(Time::from_us(4999)));
        assert_eq!(f.interval, Some(Time::from_us(99_999)));
        assert_eq!((f.quantum, f.ecn), (Some(Size(1514)), Some(true)));
        assert_eq!(f.memory_limit, Some(Size(32 * 1024 * 1024)));

        let sfq = qs.iter().find(|q| q.handle == h("30:")).unwrap();
        let QdiscKind::Sfq(s) = &sfq.kind else {
            panic!("{lab}: {:?}", sfq.kind)
        };
        assert_eq!(s.perturb, Some(Time(10_000_000_000)), "{lab}");
        assert_eq!((s.limit, s.quantum), (Some(127), Some(Size(1514))));

        let QdiscKind::Cake(c) = &qs
            .iter()
            .find(|q| matches!(q.kind, QdiscKind::Cake(_)))
            .unwrap()
            .kind
        else {
            unreachable!()
        };
        assert_eq!(c.bandwidth, Some(mbit(10)), "{lab}");
        assert_eq!(c.diffserv.as_deref(), Some("diffserv3"));
        assert_eq!(c.flow_mode.as_deref(), Some("triple-isolate"));
        assert_eq!(c.rtt, Some(Time(100_000_000)));
        assert_eq!(
            (c.nat, c.wash, c.ack_filter),
            (Some(false), Some(false), Some(false))
        );
        assert_eq!(c.overhead, Some(0));

        // ifb1's root netem has an auto-assigned handle (8001:): configured, so kept.
        assert!(qs.iter().any(|q| q.handle == h("8001:")
            && q.parent == Parent::Root
            && q.kind.kind_name() == "netem"));
        // prio is not a kind qosctl writes.
        assert!(qs.iter().any(|q| q.kind
            == QdiscKind::Other {
                kind: "prio".into()
            }));
        let htb = qs
            .iter()
            .find(|q| matches!(q.kind, QdiscKind::Htb(_)))
            .unwrap();
        assert_eq!(
            htb.kind,
            QdiscKind::Htb(qosctl::model::Htb {
                default: 0x30,
                r2q: Some(10)
            })
        );
    }
}

#[test]
fn lab_classes_text_and_json() {
    for (lab, text) in [(LAB_61, true), (LAB_612, true), (LAB_615, false)] {
        for file in ["class-veth0.json", "class-veth0.txt"] {
            let cs = parse_classes(&fixture(&format!("{lab}/{file}"))).unwrap();
            // fq_codel's flow class 10:302 is not an htb class.
            let handles: Vec<String> = cs.iter().map(|c| c.handle.to_string()).collect();
            assert_eq!(handles, ["1:1", "1:10", "1:20", "1:30"], "{lab}/{file}");
            let c10 = class(&cs, "1:10");
            assert_eq!(
                (c10.rate, c10.ceil, c10.prio),
                (mbit(10), mbit(20), Some(0))
            );
            let c20 = class(&cs, "1:20");
            assert_eq!(
                (c20.rate, c20.ceil, c20.prio),
                (mbit(30), mbit(100), Some(1))
            );
            assert_eq!(class(&cs, "1:30").quantum, Some(Size(12_500)));
            assert_eq!(
                cs[0].rates_from_text,
                text || file.ends_with(".txt"),
                "{lab}/{file}"
            );
            assert!(c20.stats.as_ref().unwrap().packets > 600, "{lab}/{file}");
        }
        // prio and cake classes are not htb classes.
        assert!(parse_classes(&fixture(&format!("{lab}/class-dummy0.json")))
            .unwrap()
            .is_empty());
        assert!(parse_classes(&fixture(&format!("{lab}/class-ifb0.json")))
            .unwrap()
            .is_empty());
    }
}

fn check_lab_veth0_filters(label: &str, fs: &[Filter]) {
    let kinds: Vec<(u16, &str)> = fs.iter().map(|f| (f.prio, f.kind.kind_name())).collect();
    assert_eq!(
        kinds,
        [
            (1, "flower"),
            (2, "flower"),
            (10, "fw"),
            (10, "fw"),
            (20, "u32"),
            (40, "matchall")
        ],
        "{label}"
    );
    assert_eq!(fw(&fs[2]), (0xa, 0xffff_ffff), "{label}");
    assert_eq!(fs[2].classid, Some(h("1:10")), "{label}");
    assert_eq!(fw(&fs[3]), (0x14, 0xffff_ffff), "{label}");
    assert_eq!(fs[3].classid, Some(h("1:20")), "{label}");
    let (_, handle, summary) = other(&fs[1]);
    assert_eq!(handle, Some("0x1"), "{label}");
    assert!(
        summary.contains("5201") && summary.contains("skbedit"),
        "{label}: {summary}"
    );
    assert!(fs[1].stats.as_ref().unwrap().packets > 600, "{label}");
    let (_, handle, _) = other(&fs[4]);
    assert_eq!((handle, fs[4].classid), (Some("800::800"), Some(h("1:30"))));
    assert_eq!(fs[5].classid, Some(h("1:30")), "{label}");
    assert!(fs.iter().all(|f| f.parent == h("1:")));
}

#[test]
fn lab_fw_filters_text_inside_json_and_json_and_text() {
    // 6.1: `"options":{handle 0xa classid 1:10 }` (invalid JSON) — read anyway.
    for lab in [LAB_61, LAB_612, LAB_615] {
        let fs = parse_filters(&fixture(&format!("{lab}/filter-veth0-s.json")), h("1:"))
            .unwrap_or_else(|e| panic!("{lab}: {e:#}"));
        check_lab_veth0_filters(lab, &fs);
        let fs = parse_filters(&fixture(&format!("{lab}/filter-veth0.txt")), h("1:"))
            .unwrap_or_else(|e| panic!("{lab}: {e:#}"));
        check_lab_veth0_filters(&format!("{lab} text"), &fs);
    }
}

#[test]
fn lab_other_filters() {
    for lab in [LAB_61, LAB_612, LAB_615] {
        let fs = parse_filters(
            &fixture(&format!("{lab}/filter-veth0-ingress-s.json")),
            Handle::INGRESS,
        )
        .unwrap();
        assert_eq!(fs.len(), 2, "{lab}");
        let (kind, _, summary) = other(&fs[0]);
        assert_eq!(kind, "flower");
        assert!(
            summary.contains("police") && summary.contains("ifb0"),
            "{summary}"
        );
        assert_eq!(other(&fs[1]).0, "matchall");
        assert!(fs[1].stats.as_ref().unwrap().packets > 400, "{lab}");

        // basic: ematch printed as text inside the JSON (still on 6.15).
        for file in ["filter-dummy1.json", "filter-dummy1.txt"] {
            let fs = parse_filters(&fixture(&format!("{lab}/{file}")), h("1:")).unwrap();
            assert_eq!(fs.len(), 2, "{lab}/{file}");
            let (kind, _, summary) = other(&fs[0]);
            assert_eq!(kind, "basic");
            assert!(
                summary.contains("meta(priority eq 6)"),
                "{lab}/{file}: {summary}"
            );
            assert_eq!(fs[0].classid, Some(h("1:1")));
            assert_eq!(fs[1].classid, Some(h("1:2")));
        }
        let fs = parse_filters(&fixture(&format!("{lab}/filter-dummy0-s.json")), h("1:")).unwrap();
        assert_eq!(fs.len(), 3, "{lab}");
        assert_eq!(
            fs[0].stats.as_ref().unwrap().packets,
            5,
            "{lab}: u32 success count"
        );
        assert!(other(&fs[2]).2.contains("gact"), "{lab}");
    }
}

// ---- public captures ---------------------------------------------------------------------

#[test]
fn public_captures() {
    let q = parse_qdiscs(&fixture(
        "public/iproute2-commit-6af6f02c-fq_codel-stab.json",
    ))
    .unwrap();
    assert_eq!((q[0].handle, q[0].parent), (h("1:"), Parent::Root));
    let QdiscKind::FqCodel(f) = &q[0].kind else {
        panic!()
    };
    assert_eq!(
        (f.limit, f.target),
        (Some(10_240), Some(Time::from_us(4999)))
    );

    // Offloaded htb: the pfifo 0: children are created by the kernel.
    let q = parse_qdiscs(&fixture(
        "public/iproute2-commit-b8b8b6d4-htb-offload-qdisc.json",
    ))
    .unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].kind.kind_name(), "htb");

    let f = parse_filters(
        &fixture("public/iproute2-commit-5295b8f3-flower-cfm-gact.json"),
        Handle::INGRESS,
    )
    .unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].protocol, "cfm");
    assert!(other(&f[0]).2.contains("mdl"), "{:?}", f[0]);

    let q = parse_qdiscs(&fixture(
        "public/libreqos-benches-example_json-tc-s-j-qdisc-mq-htb-cake-clsact.json",
    ))
    .unwrap();
    // An explicitly created mq (7fff:) is configuration, not the kernel default.
    assert!(q
        .iter()
        .any(|q| q.handle == h("7fff:") && q.parent == Parent::Root));
    let unlimited = q
        .iter()
        .find(|q| q.handle == h("8011:"))
        .expect("cake 8011:");
    let QdiscKind::Cake(c) = &unlimited.kind else {
        panic!()
    };
    assert_eq!(c.bandwidth, None, "\"bandwidth\":\"unlimited\"");
    assert_eq!(c.diffserv.as_deref(), Some("diffserv4"));
    assert!(q
        .iter()
        .any(|q| q.kind.kind_name() == "clsact" && q.parent == Parent::Ingress));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for bad in ["[{", "garbage", "[{\"kind\":\"htb\"}]", "{}", "[1]"] {
        assert!(parse_qdiscs(bad).is_err(), "{bad}");
    }
    assert!(parse_classes("class htb 1:1 root rate xyz ceil 1Mbit").is_err());
    assert!(parse_classes("nonsense").is_err());
    assert!(parse_filters("filter protocol ip pref x u32", h("1:")).is_err());
    assert!(parse_filters(
        "[{\"kind\":\"fw\",\"pref\":1,\"options\":{handle zz}}]",
        h("1:")
    )
    .is_err());
}

// ---- a real kernel --------------------------------------------------------------------------

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn root_read_device_returns_exactly_the_tree() {
    if !is_root() {
        eprintln!("SKIP: root_read_device_returns_exactly_the_tree needs root");
        return;
    }
    common::require("tc");
    let ns = Netns::with_veth("reader");
    let n = ns.0.as_str();
    let tc = Tc::new("tc", Some(n.to_string()));

    // Nothing configured yet: the kernel default reads as empty.
    let st = read_device(&tc, "a0").unwrap();
    assert!(st.is_default(), "{st:#?}");

    let tcs: &[&str] = &[
        "qdisc add dev a0 root handle 1: htb default 20 r2q 10",
        "class add dev a0 parent 1: classid 1:1 htb rate 100mbit ceil 100mbit",
        "class add dev a0 parent 1:1 classid 1:10 htb rate 10mbit ceil 50mbit prio 1 quantum 1514",
        "class add dev a0 parent 1:1 classid 1:20 htb rate 33333bit ceil 100mbit prio 2",
        "class add dev a0 parent 1:1 classid 1:a0 htb rate 5mbit ceil 5mbit prio 3",
        "qdisc add dev a0 parent 1:10 handle 10: pfifo limit 100",
        "qdisc add dev a0 parent 1:20 handle 20: bfifo limit 30000",
        "qdisc add dev a0 parent 1:a0 handle a0: tbf rate 4mbit burst 10kb latency 50ms",
        "qdisc add dev a0 handle ffff: ingress",
        "filter add dev a0 parent 1: protocol ip prio 3 u32 match ip dst 10.9.0.2/32 flowid 1:10",
    ];
    for line in tcs {
        let args: Vec<&str> = line.split(' ').collect();
        let mut full = vec!["-n", n];
        full.extend(args);
        run("tc", &full);
    }
    let st: DeviceState = read_device(&tc, "a0").unwrap();
    assert_eq!(st.device, "a0");
    let qs: Vec<(String, Parent, &str)> = st
        .qdiscs
        .iter()
        .map(|q| (q.handle.to_string(), q.parent, q.kind.kind_name()))
        .collect();
    assert_eq!(
        qs,
        [
            ("1:".to_string(), Parent::Root, "htb"),
            ("ffff:".to_string(), Parent::Ingress, "ingress"),
            ("10:".to_string(), Parent::Class(h("1:10")), "pfifo"),
            ("20:".to_string(), Parent::Class(h("1:20")), "bfifo"),
            ("a0:".to_string(), Parent::Class(h("1:a0")), "tbf"),
        ]
    );
    assert_eq!(
        st.qdisc(h("1:")).unwrap().kind,
        QdiscKind::Htb(qosctl::model::Htb {
            default: 0x20,
            r2q: Some(10)
        })
    );
    assert_eq!(
        st.qdisc(h("10:")).unwrap().kind,
        QdiscKind::Pfifo { limit: Some(100) }
    );
    assert_eq!(
        st.qdisc(h("20:")).unwrap().kind,
        QdiscKind::Bfifo {
            limit: Some(Size(30_000))
        }
    );
    let QdiscKind::Tbf(t) = &st.qdisc(h("a0:")).unwrap().kind else {
        panic!()
    };
    assert_eq!((t.rate, t.burst), (mbit(4), Size(10_240)));
    assert_eq!(t.latency, Some(Time(50_000_000)));

    let cs: Vec<String> = st.classes.iter().map(|c| c.handle.to_string()).collect();
    assert_eq!(cs, ["1:1", "1:10", "1:20", "1:a0"]);
    let c10 = st.class(h("1:10")).unwrap();
    assert_eq!(
        (c10.rate, c10.ceil, c10.prio),
        (mbit(10), mbit(50), Some(1))
    );
    assert_eq!(c10.quantum, Some(Size(1514)));
    assert_eq!(c10.parent, Some(h("1:1")));
    // The kernel keeps 33333bit as 4166 bytes/s; compare the way the planner does.
    let c20 = st.class(h("1:20")).unwrap();
    let want = if c20.rates_from_text {
        Rate(33_333).tc_text_rounded()
    } else {
        Rate(33_333)
    };
    assert!(c20.rate.same_in_kernel(want), "{:?}", c20.rate);
    assert_eq!(st.class(h("1:1")).unwrap().parent, None);

    assert_eq!(st.filters.len(), 1, "{:#?}", st.filters);
    let f = &st.filters[0];
    assert_eq!((f.parent, f.prio, f.protocol.as_str()), (h("1:"), 3, "ip"));
    assert_eq!(f.classid, Some(h("1:10")));
    assert_eq!(other(f).1, Some("800::800"));

    // A missing device names itself and the namespace.
    let e = read_device(&tc, "nosuch0").unwrap_err().to_string();
    assert!(e.contains("\"nosuch0\"") && e.contains(n), "{e}");

    // list_devices: only the configured device, not b0 or lo.
    assert_eq!(
        qosctl::tc::read::list_devices(&tc).unwrap(),
        vec!["a0".to_string()]
    );
}

#[test]
fn truncated_and_mangled_output_never_panics() {
    let files = [
        "by-version/5.4.0/qdisc-v0-s-d.json",
        "by-version/5.4.0/filter-v1-ingress-s.json",
        "by-version/6.1.0/class-v0-s-d.json",
        "by-version/7.1.0/class-v0-s-d.json",
        "by-version/6.1.0/filter-v0.txt",
        "kernel-lab-6.1.0-56-amd64/filter-veth0-s.json",
        "kernel-lab-6.1.0-56-amd64/qdisc-s-d.json",
        "kernel-lab-6.1.0-56-amd64/filter-dummy1.json",
    ];
    let mut checked = 0;
    for f in files {
        let s = fixture(f);
        let cuts = (0..=s.len()).filter(|i| s.is_char_boundary(*i)).step_by(3);
        for cut in cuts {
            let t = &s[..cut];
            let _ = parse_qdiscs(t);
            let _ = parse_classes(t);
            let _ = parse_filters(t, h("1:"));
            checked += 1;
        }
        // Every byte replaced by characters that mean something to the parsers.
        for (i, _) in s.char_indices().step_by(31) {
            for c in ["\"", "{", "}", ",", "\\u12", "é", "9999999999999999999999"] {
                let t = format!("{}{}{}", &s[..i], c, &s[i..]);
                let _ = parse_qdiscs(&t);
                let _ = parse_classes(&t);
                let _ = parse_filters(&t, h("1:"));
            }
        }
    }
    assert!(checked > 4_000, "{checked}");
}
