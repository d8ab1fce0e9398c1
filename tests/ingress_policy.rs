//! `[interfaces.X.ingress]` in the policy language: its keys and their messages (line and
//! column), and what it resolves to: the interface's ingress qdisc and hook filter, and the
//! ifb device with the tree, built by the same tree builder as egress.

use qosctl::model::{DesiredDevice, Handle, Parent, QdiscKind};
use qosctl::policy;

/// Every problem of `src` as "line:col: message", read from the rendered diagnostics (what
/// `qosctl check` prints: `p.toml:2:8: error: …`).
fn errors(src: &str) -> Vec<String> {
    policy::check_str("p.toml", src)
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix("p.toml:"))
        .map(|l| l.replacen(": error: ", ": ", 1))
        .collect()
}

fn devices(src: &str) -> Vec<DesiredDevice> {
    let c = policy::check_str("p.toml", src);
    assert!(!c.has_errors(), "{}", c.render());
    c.desired().devices
}

const TREE: &str = r#"[interfaces.wan]
device = "eth0"

[interfaces.wan.ingress]
rate = "100mbit"
default = "bulk"

[interfaces.wan.ingress.classes.video]
rate = "40%"
marks = [0x20]

[interfaces.wan.ingress.classes.bulk]
rate = "60%"
"#;

#[test]
fn an_ingress_tree_is_the_ifb_s_tree_and_a_hook_on_the_interface() {
    let d = devices(TREE);
    assert_eq!(d.len(), 2, "{d:#?}");
    let (wan, ifb) = (&d[0], &d[1]);
    assert_eq!(
        (wan.state.device.as_str(), wan.ifb_for.as_deref()),
        ("eth0", None)
    );
    assert_eq!(
        (ifb.state.device.as_str(), ifb.ifb_for.as_deref()),
        ("ifb-eth0", Some("eth0"))
    );
    // The interface: no egress tree, the ingress qdisc, one hook filter on ffff:.
    assert_eq!(wan.state.qdiscs.len(), 1);
    assert_eq!(wan.state.qdiscs[0].parent, Parent::Ingress);
    assert!(matches!(wan.state.qdiscs[0].kind, QdiscKind::Ingress));
    assert_eq!(wan.state.filters.len(), 1);
    let hook = &wan.state.filters[0];
    assert_eq!(
        (hook.parent, hook.prio, hook.classid),
        (Handle::INGRESS, 1, None)
    );
    let words = qosctl::tc::render::filter_add("eth0", hook);
    // Marks on the ingress: the conntrack mark is restored (connmark by default), then the
    // packet goes to the ifb.
    assert!(
        words.ends_with("action connmark zone 0 pipe action mirred egress redirect dev ifb-eth0"),
        "{words}"
    );
    // The ifb: the egress tree builder's output (htb 1:, 1:1 at 100mbit, the classes, the
    // fw filter of video's mark on 1:).
    let root = ifb.state.root_qdisc().expect("root");
    assert_eq!(root.handle, Handle::qdisc(1));
    assert_eq!(ifb.state.classes.len(), 3);
    assert_eq!(ifb.state.classes[0].rate.to_string(), "100mbit");
    assert_eq!(ifb.state.filters.len(), 1);
    assert_eq!(ifb.state.filters[0].parent, Handle::qdisc(1));
    // The same tree under [interfaces.wan] gets the same handles: one builder.
    let egress = devices(
        &TREE
            .replace("[interfaces.wan.ingress]\n", "")
            .replace(".ingress.", "."),
    );
    let handles = |s: &qosctl::model::DeviceState| -> Vec<Handle> {
        s.classes.iter().map(|c| c.handle).collect()
    };
    assert_eq!(handles(&egress[0].state), handles(&ifb.state));
}

#[test]
fn restore_mark_and_police_choose_the_hook_s_actions() {
    let hook = |extra: &str| {
        let d = devices(&TREE.replace(
            "default = \"bulk\"\n",
            &format!("default = \"bulk\"\n{extra}\n"),
        ));
        qosctl::tc::render::filter_add("eth0", &d[0].state.filters[0])
    };
    assert!(hook("restore_mark = \"ctinfo\"").contains(
        "u32 match u32 0 0 at 0 action ctinfo cpmark 0xffffffff zone 0 pipe action mirred"
    ));
    assert!(!hook("restore_mark = \"none\"").contains("connmark"));
    let both = hook("police = { rate = \"200mbit\", burst = \"256KiB\" }");
    assert!(
        both.contains(
            "action connmark zone 0 pipe action police rate 200000000bit burst 262144 mtu 65535 \
             conform-exceed drop/pipe action mirred egress redirect dev ifb-eth0"
        ),
        "{both}"
    );
    // Policing alone: no ifb device, conforming packets are accepted.
    let d = devices(
        "[interfaces.tap0.ingress]\npolice = { rate = \"3000kbit\", burst = \"38400B\" }\n",
    );
    assert_eq!(d.len(), 1, "no ifb for a policer: {d:#?}");
    let line = qosctl::tc::render::filter_add("tap0", &d[0].state.filters[0]);
    assert!(
        line.ends_with(
            "u32 match u32 0 0 at 0 action police rate 3000000bit burst 38400 mtu 65535 conform-exceed drop/ok"
        ),
        "{line}"
    );
    // netem alone on the ingress: the ifb's root qdisc.
    let d = devices("[interfaces.lab.ingress]\nnetem = { delay = \"30ms\" }\n");
    assert_eq!(d[1].state.device, "ifb-lab");
    let root = d[1].state.root_qdisc().expect("root");
    assert!(matches!(root.kind, QdiscKind::Netem(_)));
}

#[test]
fn ingress_problems_point_into_the_ingress_table() {
    // Its own problems, named as the ingress of the interface.
    assert_eq!(
        errors("[interfaces.wan.ingress]\nrate = \"10mbit\"\nbogus = 1\n"),
        [
            "2:8: the ingress of interface \"wan\" has a rate but no classes to shape into",
            "3:1: unknown key \"bogus\" in the ingress of interface \"wan\"",
        ]
    );
    assert_eq!(
        errors("[interfaces.tap0.ingress]\npolice = { rate = \"1mbit\" }\n"),
        ["2:10: police needs a \"burst\""]
    );
    assert_eq!(
        errors("[interfaces.tap0.ingress]\npolice = { rate = \"1mbit\", burst = \"1KiB\", peak = 1 }\n"),
        ["2:44: unknown key \"peak\" in police"]
    );
    assert_eq!(
        errors("[interfaces.tap0.ingress]\nrestore_mark = \"conmark\"\n"),
        ["2:16: unknown restore_mark \"conmark\""]
    );
    assert_eq!(
        errors(
            "[interfaces.tap0.ingress]\nrestore_mark = \"ctinfo\"\npolice = { rate = \"1mbit\", burst = \"16KiB\" }\n"
        ),
        ["2:16: restore_mark: the ingress of interface \"tap0\" has no tree whose marks could use the restored mark"]
    );
    // Two interfaces whose ifbs would share a name, and an ifb name the policy uses itself.
    let tree = "rate = \"1mbit\"\ndefault = \"a\"\n";
    let class = |alias: &str| {
        format!("[interfaces.{alias}.ingress.classes.a]\nrate = \"100%\"\nleaf = \"pfifo\"\n")
    };
    let src = format!(
        "[interfaces.x]\ndevice = \"eth0\"\n[interfaces.x.ingress]\n{tree}{}\
         [interfaces.y]\ndevice = \"ifb-eth0\"\n",
        class("x")
    );
    let e = errors(&src);
    assert_eq!(
        e,
        ["3:15: the ifb device \"ifb-eth0\" of this ingress tree is already used by interface \"y\""],
    );
}

#[test]
fn check_prints_the_ingress_tree_under_its_interface() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, TREE).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .arg("check")
        .arg(&p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "eth0 (wan) ingress [restore mark (connmark), redirect to ifb ifb-eth0]: htb rate 100mbit, default bulk"
        ),
        "{text}"
    );
    assert!(text.contains("    video"), "{text}");
}

/// The foreign objects an apply of `policy` would replace on `live` (one device).
fn foreign_on(policy: &str, live: qosctl::model::DeviceState) -> Vec<qosctl::foreign::Foreign> {
    let c = policy::check_str("p.toml", policy);
    assert!(!c.has_errors(), "{}", c.render());
    let desired = c.desired();
    let live = vec![live];
    let plan = qosctl::apply::make_plan(&desired, &live);
    assert!(!plan.is_empty());
    qosctl::foreign::find(&desired, &live, &plan)
}

/// One device's state from a golden case's live capture (qdiscs and the ingress filters).
fn golden_live(case: &str, dev: &str) -> qosctl::model::DeviceState {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plan")
        .join(case)
        .join("live")
        .join(dev);
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    qosctl::model::DeviceState {
        device: dev.into(),
        qdiscs: qosctl::tc::read::parse_qdiscs(&read("qdisc.json")).unwrap(),
        classes: Vec::new(),
        filters: qosctl::tc::read::parse_filters(&read("filter-ffff.json"), Handle::INGRESS)
            .unwrap(),
    }
}

#[test]
fn qosctl_s_own_policer_is_not_foreign_and_an_ovs_policer_still_is() {
    let police = |rate: &str| {
        format!(
            "[interfaces.vm]\ndevice = \"veth0\"\n[interfaces.vm.ingress]\n\
             police = {{ rate = \"{rate}\", burst = \"64KiB\" }}\n"
        )
    };
    // qosctl's own hook, as the kernel lab read it back: a new rate is a change, not foreign.
    let own = golden_live("police-lab-in-sync", "veth0");
    assert_eq!(own.filters.len(), 1, "{own:#?}");
    assert!(foreign_on(&police("2mbit"), own).is_empty());
    // A matchall policer at prio 1 (captured in the lab, protocol ip: not OVS's exact rule,
    // which is protocol all, so it is named as some ingress policer) is foreign, also when
    // the policy polices there itself.
    let dir = "kernel-lab-6.12.95+deb12-amd64";
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tc")
        .join(dir);
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("qdisc.json")).unwrap()).unwrap();
    let ingress: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["dev"] == "veth0" && q["kind"] == "ingress")
        .cloned()
        .collect();
    let ovs = qosctl::model::DeviceState {
        device: "veth0".into(),
        qdiscs: qosctl::tc::read::parse_qdiscs(&serde_json::to_string(&ingress).unwrap()).unwrap(),
        classes: Vec::new(),
        filters: qosctl::tc::read::parse_filters(
            &std::fs::read_to_string(p.join("filter-veth0-ingress-matchall-police-s.txt")).unwrap(),
            Handle::INGRESS,
        )
        .unwrap(),
    };
    let found = foreign_on(&police("1mbit"), ovs);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].why.contains("ingress policer"), "{found:#?}");
    assert!(
        found[0]
            .replaced_by
            .contains("the policy's ingress hook (u32 all, police 1mbit burst 64KiB)"),
        "{found:#?}"
    );
}
