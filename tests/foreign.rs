//! Foreign state (src/foreign.rs) on the real kernel in throw-away namespaces: every kind
//! of object qosctl did not create stops `apply` before anything changes (full `tc -d`
//! dumps of every device, compared as sets), the output names it and what replaces it;
//! `--force` adopts it and converges; qosctl's own earlier trees are never foreign; an ifb
//! is never touched. The OVS policer's exact shape (matchall + police, not in this kernel)
//! is covered from a kernel-lab capture.

#[macro_use]
mod common;
use common::{Case, LAB_POLICY};

use std::collections::BTreeSet;
use std::process::{Command, Output};

// Case (namespace, scratch directory, qosctl there) is tests/common's; these are this
// file's own helpers on it.
impl Case {
    /// `tc` or `ip` inside the namespace; must succeed.
    fn run(&self, prog: &str, args: &str) {
        let o = Command::new(prog)
            .args(["-n", &self.ns.0])
            .args(args.split_whitespace())
            .output()
            .unwrap_or_else(|e| {
                panic!("{prog} is missing: tests/install-deps.sh must install it ({e})")
            });
        assert!(
            o.status.success(),
            "{prog} {args}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Every line of `tc -d` qdisc, class and filter dumps (root, ingress, egress hooks)
    /// of every device of the namespace, as a set.
    fn dump(&self) -> BTreeSet<String> {
        self.ns.dump(&["a0", "b0", "ifb0"])
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The lab policy with hashed class minors (no `id`): nothing a hand-made tree would use.
const HASHED: &str = r#"
[interfaces.lab]
device = "a0"
rate = "100mbit"
default = "bulk"
leaf = "pfifo"

[interfaces.lab.classes.voice]
rate = "10%"
prio = 0

[interfaces.lab.classes.bulk]
rate = "20%"
"#;

/// Builds the foreign state, then: the dry run names it and says a real apply would
/// refuse (exit 2 with --detailed-exitcode: changes pending); apply refuses with exit 1
/// and the dumps are equal; apply --force converges and a second apply is in sync.
/// Returns the refused apply's stdout+stderr for case-specific checks.
fn refused_then_adopted(c: &Case, policy: &str, setup: &[(&str, &str)], names: &[&str]) -> String {
    for (prog, args) in setup {
        c.run(prog, args);
    }
    let p = c.policy("p.toml", policy);
    let p = p.to_str().unwrap();
    let before = c.dump();

    let dry = c.qosctl(&["apply", "--dry-run", "--detailed-exitcode", p]);
    assert_eq!(dry.status.code(), Some(2), "{}", text(&dry));
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry_out.contains("apply refuses without --force"),
        "{}",
        text(&dry)
    );
    assert!(
        String::from_utf8_lossy(&dry.stderr).contains("apply would stop here"),
        "{}",
        text(&dry)
    );
    let json = c.qosctl(&["apply", "--dry-run", "--json", p]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
    assert!(
        !v["foreign"].as_array().expect("foreign[]").is_empty(),
        "{v}"
    );

    let o = c.qosctl(&["apply", p]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("did not create, nothing was changed"), "{all}");
    assert!(all.contains("replaced by: "), "{all}");
    for n in names {
        assert!(all.contains(n), "{n:?} not named:\n{all}");
        assert!(dry_out.contains(n), "{n:?} not in the dry run:\n{dry_out}");
    }
    assert_eq!(c.dump(), before, "a refused apply changed something");

    let forced = c.qosctl(&["apply", "--force", p]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(
        String::from_utf8_lossy(&forced.stdout).contains("adopted with --force"),
        "{}",
        text(&forced)
    );
    let again = c.qosctl(&["apply", "--detailed-exitcode", p]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "not in sync: {}",
        text(&again)
    );
    all
}

#[test]
fn a_foreign_root_qdisc_is_refused_then_adopted() {
    need_root!();
    let c = Case::new("frt");
    let out = refused_then_adopted(
        &c,
        LAB_POLICY,
        &[(
            "tc",
            "qdisc add dev a0 root handle 8001: tbf rate 1mbit burst 10k latency 50ms",
        )],
        &["root qdisc tbf 8001:", "htb 1: of the policy (3 classes"],
    );
    assert!(out.contains("qosctl's root is htb 1:"), "{out}");
}

#[test]
fn a_hand_made_htb_tree_is_foreign_when_it_shares_no_class_with_the_policy() {
    need_root!();
    let c = Case::new("fhb");
    let out = refused_then_adopted(
        &c,
        HASHED,
        &[
            ("tc", "qdisc add dev a0 root handle 1: htb default 10"),
            (
                "tc",
                "class add dev a0 parent 1: classid 1:1 htb rate 50mbit",
            ),
            (
                "tc",
                "class add dev a0 parent 1:1 classid 1:10 htb rate 10mbit",
            ),
            (
                "tc",
                "class add dev a0 parent 1:1 classid 1:20 htb rate 10mbit",
            ),
            ("tc", "qdisc add dev a0 parent 1:10 handle 10: pfifo"),
        ],
        &["root qdisc htb 1: with 3 classes, 1 leaf qdisc"],
    );
    assert!(
        out.contains("none of its 2 classes is a class of the policy"),
        "{out}"
    );
}

#[test]
fn an_htb_tree_outside_the_handle_scheme_is_foreign() {
    need_root!();
    let c = Case::new("fhs");
    // A class at the top that is not 1:1: qosctl never makes that.
    let out = refused_then_adopted(
        &c,
        LAB_POLICY,
        &[
            ("tc", "qdisc add dev a0 root handle 1: htb default 30"),
            (
                "tc",
                "class add dev a0 parent 1: classid 1:30 htb rate 50mbit",
            ),
        ],
        &["root qdisc htb 1: with 1 class"],
    );
    assert!(
        out.contains("class 1:30 does not fit qosctl's handles"),
        "{out}"
    );
}

#[test]
fn an_ovs_style_ingress_filter_is_refused_and_listed_with_its_qdisc() {
    need_root!();
    let c = Case::new("fig");
    // What OVS installs is `ingress` + a policer at prio 1 (matchall) or 49 (basic);
    // police is not in this kernel, so the closest real thing: u32 match-all at prio 49.
    let out = refused_then_adopted(
        &c,
        LAB_POLICY,
        &[
            ("tc", "qdisc add dev a0 handle ffff: ingress"),
            (
                "tc",
                "filter add dev a0 parent ffff: protocol all prio 49 u32 match u32 0 0",
            ),
        ],
        &["ingress qdisc ffff: with 1 filter (u32 prio 49)"],
    );
    assert!(out.contains("- qdisc ffff: ingress"), "{out}");
    assert!(
        out.contains("prio 49 on ffff:"),
        "the filter's own plan line:\n{out}"
    );
    assert!(out.contains("(goes with qdisc ffff:)"), "{out}");
    assert!(
        out.contains("nothing: the policy has no ingress side"),
        "{out}"
    );
}

#[test]
fn clsact_is_shown_as_clsact_with_the_filters_of_both_hooks() {
    need_root!();
    let c = Case::new("fcl");
    let out = refused_then_adopted(
        &c,
        LAB_POLICY,
        &[
            ("tc", "qdisc add dev a0 clsact"),
            (
                "tc",
                "filter add dev a0 ingress prio 3 protocol all u32 match u32 0 0",
            ),
            (
                "tc",
                "filter add dev a0 egress prio 4 protocol ip u32 match u32 0 0",
            ),
        ],
        &["clsact qdisc ffff: with 2 filters (u32 prio 3, u32 prio 4)"],
    );
    assert!(out.contains("- qdisc ffff: clsact"), "{out}");
    assert!(
        !out.contains("qdisc ffff: ingress"),
        "clsact labelled ingress:\n{out}"
    );
    assert!(out.contains("prio 3 on ffff:fff2"), "{out}");
    assert!(out.contains("prio 4 on ffff:fff3"), "{out}");
}

#[test]
fn a_foreign_filter_on_qosctls_own_tree_is_refused() {
    need_root!();
    let c = Case::new("fff");
    let p = c.policy("lab.toml", LAB_POLICY);
    let o = c.qosctl(&["apply", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = refused_then_adopted(
        &c,
        LAB_POLICY,
        &[(
            "tc",
            "filter add dev a0 parent 1: protocol ip prio 5 u32 match ip dport 22 0xffff flowid 1:10",
        )],
        &["u32 filter prio 5 protocol ip on 1: -> 1:10"],
    );
    assert!(
        out.contains("qosctl's filters are fw, protocol all, at prio 1"),
        "{out}"
    );
    // Only the filter is foreign: the tree is qosctl's.
    assert!(!out.contains("root qdisc htb"), "{out}");
}

#[test]
fn a_foreign_leaf_qdisc_on_qosctls_own_tree_is_refused() {
    need_root!();
    let c = Case::new("flf");
    let p = c.policy("lab.toml", LAB_POLICY);
    let o = c.qosctl(&["apply", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    refused_then_adopted(
        &c,
        LAB_POLICY,
        &[
            ("tc", "qdisc del dev a0 parent 1:30 handle 30:"),
            (
                "tc",
                "qdisc add dev a0 parent 1:30 handle 77: bfifo limit 9000",
            ),
        ],
        &[
            "leaf qdisc bfifo 77: on class 1:30",
            "pfifo 30: of the policy",
        ],
    );
}

#[test]
fn an_ifb_qosctl_did_not_create_is_never_touched() {
    need_root!();
    let c = Case::new("fib");
    c.run("ip", "link add ifb0 type ifb");
    c.run("ip", "link set ifb0 up");
    c.run(
        "tc",
        "qdisc add dev ifb0 root handle 1: tbf rate 5mbit burst 10k latency 50ms",
    );
    let ifb = |set: &BTreeSet<String>| -> BTreeSet<String> {
        set.iter()
            .filter(|l| l.starts_with("ifb0 "))
            .cloned()
            .collect()
    };
    let ifb_before = ifb(&c.dump());
    assert!(!ifb_before.is_empty());
    let out = refused_then_adopted(
        &c,
        LAB_POLICY,
        &[
            ("tc", "qdisc add dev a0 handle ffff: ingress"),
            (
                "tc",
                "filter add dev a0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb0",
            ),
        ],
        &["ingress qdisc ffff: with 1 filter (u32 prio 1), redirecting to ifb0"],
    );
    assert!(out.contains("redirecting to ifb0"), "{out}");
    // --force removed the redirect on a0; the ifb and its own tree are as they were.
    assert_eq!(ifb(&c.dump()), ifb_before, "the ifb changed");
    let link = Command::new("ip")
        .args(["-n", &c.ns.0, "link", "show", "ifb0"])
        .output()
        .expect("ip");
    assert!(link.status.success(), "the ifb is gone");
}

/// qosctl's own trees, edited in every way an edit can (rates, a class removed, a class
/// added with a hashed minor, a leaf kind, htb default, every class removed and back):
/// never foreign.
#[test]
fn qosctls_own_earlier_tree_is_never_foreign() {
    need_root!();
    let c = Case::new("fown");
    let edits = [
        LAB_POLICY.to_string(),
        LAB_POLICY.replace("rate = \"20%\"", "rate = \"25%\""),
        // voice removed, a hashed class added, a leaf kind changed.
        format!(
            "{}\n[interfaces.lab.classes.web]\nrate = \"5%\"\nleaf = \"bfifo\"\n",
            LAB_POLICY.replace(
                "[interfaces.lab.classes.voice]\nid = 0x10\nrate = \"10%\"\nprio = 0\n",
                ""
            )
        ),
        // default moves: the tree is rebuilt.
        LAB_POLICY.replace("default = \"bulk\"", "default = \"voice\""),
        // every class removed (this kernel has no netem for a netem-only edit), and back.
        "[interfaces.lab]\ndevice = \"a0\"\n".to_string(),
        LAB_POLICY.to_string(),
        "[interfaces.lab]\ndevice = \"a0\"\n".to_string(),
    ];
    for (i, e) in edits.iter().enumerate() {
        let p = c.policy(&format!("e{i}.toml"), e);
        let o = c.qosctl(&["apply", p.to_str().unwrap()]);
        assert!(o.status.success(), "edit {i}: {}", text(&o));
        assert!(!text(&o).contains("Foreign"), "edit {i}: {}", text(&o));
        let again = c.qosctl(&["apply", "--detailed-exitcode", p.to_str().unwrap()]);
        assert_eq!(again.status.code(), Some(0), "edit {i}: {}", text(&again));
    }
}

// ---- without a kernel: the reader's view of real captures ----

fn plan_foreign(policy: &str, live: qosctl::model::DeviceState) -> Vec<qosctl::foreign::Foreign> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, policy).unwrap();
    let desired = qosctl::policy::load(&p).expect("policy");
    let live = vec![live];
    let plan = qosctl::apply::make_plan(&desired, &live);
    qosctl::foreign::find(&desired, &live, &plan)
}

const LAB: &str = "kernel-lab-6.12.95+deb12-amd64";

/// The policy names the lab's device `veth0`; classes hashed as in HASHED.
fn on_veth0(policy: &str) -> String {
    policy.replace("device = \"a0\"", "device = \"veth0\"")
}

#[test]
fn a_hand_made_policer_is_named_a_policer_but_not_ovs() {
    // `tc filter add … parent ffff: protocol ip prio 1 matchall action police rate 5mbit …`
    // as the lab captured it (text): OVS's matchall policer is protocol all, so this one is
    // someone else's, and its rate (in tc's text only) is shown.
    let live = common::captured_state(
        LAB,
        "qdisc.json",
        "veth0",
        None,
        &[("filter-veth0-ingress-matchall-police-s.txt", "ffff:")],
    );
    let live = qosctl::model::DeviceState {
        qdiscs: live
            .qdiscs
            .into_iter()
            .filter(|q| q.parent == qosctl::model::Parent::Ingress)
            .collect(),
        ..live
    };
    assert_eq!(live.filters.len(), 1, "{live:?}");
    let found = plan_foreign(&on_veth0(LAB_POLICY), live);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].object, "ingress qdisc ffff: with 1 filter (matchall prio 1 policing at 5Mbit)",
        "{found:#?}"
    );
    assert!(found[0].why.starts_with("an ingress policer"), "{found:#?}");
    assert!(!found[0].why.contains("Open vSwitch"), "{found:#?}");
    assert!(
        found[0].replaced_by.contains("no longer policed"),
        "{found:#?}"
    );
}

#[test]
fn the_lab_hand_made_tree_and_its_flower_policer_are_foreign() {
    // The lab's veth0: a hand-made htb 1: tree (1:1, 1:10, 1:20, 1:30), fw filters at prio
    // 10 protocol ip, flower/u32/matchall, and ingress with flower + police + mirred.
    let live = common::captured_state(
        LAB,
        "qdisc.json",
        "veth0",
        Some("class-veth0.json"),
        &[
            ("filter-veth0-s.json", "1:"),
            ("filter-veth0-ingress-s.json", "ffff:"),
        ],
    );
    let marked = HASHED.replace("prio = 0\n", "prio = 0\nmarks = [16]\n");
    let found = plan_foreign(&on_veth0(&marked), live);
    let objects: Vec<&str> = found.iter().map(|f| f.object.as_str()).collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(objects[0].starts_with("ingress qdisc ffff: with 2 filters (flower prio 1, matchall prio 2), redirecting to ifb0"), "{objects:?}");
    // Hand-made (flower, protocol ip): a policer, but not in OVS's or Neutron's shape.
    assert!(found[0].why.starts_with("an ingress policer"), "{found:#?}");
    assert!(
        objects[1].starts_with("root qdisc htb 1: with 4 classes, 3 leaf qdiscs"),
        "{objects:?}"
    );
    assert!(
        found[1]
            .replaced_by
            .starts_with("htb 1: of the policy (3 classes, 1 fw filter)"),
        "{found:#?}"
    );
}

/// The policers Open vSwitch and Neutron write, made with real tc in the kernel lab exactly
/// as they make them (tests/klab/guest/cases/foreign-ovs-policer.sh; this kernel has no
/// act_police) and read back here as tc printed them: JSON, text, and both with -s. Each
/// is named by its owner, with its filter, and its rate where tc printed one (text only).
#[test]
fn ovs_and_neutron_policers_captured_in_the_lab_are_named_by_their_owner() {
    let ovs = "Open vSwitch's ingress policer";
    let neutron = "Neutron's policer";
    let forms = [
        ("ovs-matchall", ovs, "matchall prio 1"),
        ("ovs-basic", ovs, "basic prio 49"),
        ("ovs-basic-legacy", ovs, "basic prio 49"),
        ("neutron-u32", neutron, "u32 prio 49"),
        ("neutron-u32-act", neutron, "u32 prio 49"),
    ];
    for (form, who, filter) in forms {
        for file in [".json", ".txt", "-s.json", "-s.txt"].map(|x| format!("{form}{x}")) {
            let live = lab_capture(&file);
            assert_eq!(live.filters.len(), 1, "{file}: {live:?}");
            let found = plan_foreign(&on_veth0(LAB_POLICY), live);
            assert_eq!(found.len(), 1, "{file}: {found:#?}");
            let f = &found[0];
            assert!(f.why.starts_with(who), "{file}: {f:#?}");
            let with = format!("ingress qdisc ffff: with 1 filter ({filter}");
            assert!(f.object.starts_with(&with), "{file}: {f:#?}");
            if file.ends_with(".txt") {
                assert!(f.object.ends_with("policing at 10Mbit)"), "{file}: {f:#?}");
            }
            assert!(
                f.replaced_by.contains("no longer policed"),
                "{file}: {f:#?}"
            );
        }
    }
}

/// veth0 of tests/fixtures/tc/ovs-policer: `tc -j qdisc show dev veth0` (no "dev" field:
/// it was the selector) and one filter dump of `parent ffff:`.
fn lab_capture(filters: &str) -> qosctl::model::DeviceState {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tc/ovs-policer");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let ingress = qosctl::model::Handle::parse("ffff:").unwrap();
    qosctl::model::DeviceState {
        device: "veth0".into(),
        qdiscs: qosctl::tc::read::parse_qdiscs(&read("qdisc.json")).unwrap(),
        filters: qosctl::tc::read::parse_filters(&read(filters), ingress).unwrap(),
        ..Default::default()
    }
}
