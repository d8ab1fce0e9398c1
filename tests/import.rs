//! `qosctl import`: live tc → policy → applied again with 0 commands.
//!
//! Two tiers. Fixtures (no root): real tc output of the kernel lab (netem, fq_codel, sfq,
//! fw, flower, ingress, which this machine's kernel lacks) and a CBQ dump are imported, and
//! the policy is planned against the very state it came from with the real planner.
//! Namespaces (root): trees built by raw tc scripts, a wondershaper-style script and
//! FireQoS itself are imported and the policy is applied to the same namespace.

mod common;
use common::fixture;
use common::{is_root, Netns};

use std::path::PathBuf;
use std::process::{Command, Output};

use qosctl::model::{DeviceState, Handle, Parent, QdiscKind};
use qosctl::plan::{diff_device, Obj, Op};
use qosctl::tc::read::parse_qdiscs;

fn state_of(dir: &str, dev: &str, classes: Option<&str>, filters: &[(&str, &str)]) -> DeviceState {
    common::captured_state(dir, "qdisc.json", dev, classes, filters)
}

/// Imports `st`, checks the policy, and plans it against `st` itself.
fn round_trip(st: &DeviceState) -> (qosctl::import::Imported, Vec<Op>) {
    let imp = qosctl::import::policy_from(std::slice::from_ref(st));
    let checked = qosctl::policy::check_str("imported.toml", &imp.text);
    assert!(
        !checked.has_errors(),
        "the imported policy does not check:\n{}\n{}",
        checked.render(),
        imp.text
    );
    let desired = checked.desired();
    let ops = diff_device(&desired.devices[0].state, st);
    (imp, ops)
}

fn obj(op: &Op) -> &Obj {
    match op {
        Op::Add { obj, .. } | Op::Change { obj, .. } | Op::Remove { obj, .. } => obj,
    }
}

#[test]
fn kernel_lab_tree_with_netem_fq_codel_sfq_and_fw_leaves_round_trips() {
    for dir in [
        "kernel-lab-6.1.0-56-amd64",
        "kernel-lab-6.12.95+deb12-amd64",
        "kernel-lab-6.1.0-56-amd64-iproute2-6.15.0",
    ] {
        let st = state_of(
            dir,
            "veth0",
            Some("class-veth0.json"),
            &[
                ("filter-veth0-s.json", "1:"),
                ("filter-veth0-ingress-s.json", "ffff:"),
            ],
        );
        let (imp, ops) = round_trip(&st);
        let t = &imp.text;
        assert!(t.contains("netem = {"), "{dir}: {t}");
        assert!(t.contains("kind = \"fq_codel\""), "{dir}: {t}");
        assert!(t.contains("kind = \"sfq\""), "{dir}: {t}");
        assert!(t.contains("marks = [0xa]"), "{dir}: {t}");
        // Nothing of the htb tree itself changes: no class op, no leaf qdisc op.
        for op in &ops {
            match obj(op) {
                Obj::Class(c) => panic!("{dir}: class {} would change: {op:?}\n{t}", c.handle),
                Obj::Qdisc(q) => assert!(
                    matches!(q.kind, QdiscKind::Ingress),
                    "{dir}: qdisc {} would change: {op:?}\n{t}",
                    q.handle
                ),
                Obj::Filter(_) | Obj::FilterPrio { .. } => {}
            }
        }
        // What a policy cannot say is named: the flower and u32 filters, the ingress
        // qdisc, and the fw filters' prio 10 (a policy's marks are prio 1).
        let notes = imp.notes.join("\n");
        for want in [
            "filter flower",
            "filter u32",
            "qdisc ingress ffff:",
            "at prio 10",
        ] {
            assert!(
                notes.contains(want),
                "{dir}: no note with {want:?}:\n{notes}"
            );
        }
        assert!(
            t.contains("# NOT IMPORTED: filter flower parent 1: prio 1"),
            "{t}"
        );
    }
}

#[test]
fn interface_level_netem_round_trips_with_zero_ops() {
    // ifb1 of the kernel lab has a root netem with an automatic handle (8001:); a policy's
    // impairment-only interface has it at 1:, as qosctl would have created it.
    let mut st = state_of("kernel-lab-6.1.0-56-amd64", "ifb1", None, &[]);
    let (imp, _) = {
        let imp = qosctl::import::policy_from(std::slice::from_ref(&st));
        (imp, ())
    };
    assert_eq!(imp.notes.len(), 1, "{:?}", imp.notes);
    assert!(
        imp.notes[0].contains("root qdisc netem 8001:"),
        "{:?}",
        imp.notes
    );
    assert!(imp.text.contains("# [interfaces.ifb1]"), "{}", imp.text);

    st.qdiscs[0].handle = Handle::qdisc(1);
    let (imp, ops) = round_trip(&st);
    assert!(imp.notes.is_empty(), "{:?}", imp.notes);
    assert!(
        imp.text.contains("[interfaces.ifb1]\nnetem = { delay = "),
        "{}",
        imp.text
    );
    assert!(ops.is_empty(), "{ops:?}\n{}", imp.text);
}

#[test]
fn roots_a_policy_cannot_express_leave_the_interface_out() {
    // cake and prio roots (kernel lab), and a CBQ root as older kernels print it.
    let cake = state_of("kernel-lab-6.1.0-56-amd64", "ifb0", None, &[]);
    let prio = state_of("kernel-lab-6.1.0-56-amd64", "dummy0", None, &[]);
    let cbq = DeviceState {
        device: "eth0".into(),
        qdiscs: parse_qdiscs(&fixture("synthetic-cbq/qdisc-eth0.json")).unwrap(),
        ..DeviceState::default()
    };
    assert_eq!(cbq.qdiscs[0].kind.kind_name(), "cbq");
    assert_eq!(cbq.qdiscs[0].parent, Parent::Root);
    let imp = qosctl::import::policy_from(&[cake, prio, cbq]);
    assert_eq!(imp.notes.len(), 3, "{:?}", imp.notes);
    assert!(
        imp.notes[0].starts_with("ifb0: root qdisc cake 1:"),
        "{:?}",
        imp.notes
    );
    assert!(
        imp.notes[1].starts_with("dummy0: root qdisc prio 1:"),
        "{:?}",
        imp.notes
    );
    assert!(
        imp.notes[2].starts_with("eth0: root qdisc cbq 1: (CBQ was removed from Linux in 6.3")
            && imp.notes[2].contains("docs/cbq.md"),
        "{:?}",
        imp.notes
    );
    // Left out, so applying the policy does not remove what it cannot re-create.
    for dev in ["ifb0", "dummy0", "eth0"] {
        assert!(
            imp.text.contains(&format!("# [interfaces.{dev}]")),
            "{}",
            imp.text
        );
        assert!(
            !imp.text.contains(&format!("\n[interfaces.{dev}]")),
            "{}",
            imp.text
        );
    }
    // Nothing is left to own: the policy names no interface, which `check` refuses.
    let checked = qosctl::policy::check_str("imported.toml", &imp.text);
    assert!(
        checked.render().contains("the policy names no interface"),
        "{}",
        checked.render()
    );
}

// ---- real namespaces ---------------------------------------------------------------

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: {} needs root (network namespaces)", module_path!());
            return;
        }
    };
}

fn qosctl(ns: &Netns, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .args(["--netns", &ns.0])
        .args(args)
        .output()
        .expect("run qosctl")
}

/// Runs a tc script (one command a line, `tc` left out) in the namespace, line by line
/// as a user's script would.
fn tc_script(ns: &Netns, script: &str) {
    for line in script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = Command::new("tc")
            .args(["-n", &ns.0])
            .args(&args)
            .output()
            .expect("run tc");
        assert!(
            out.status.success(),
            "tc {line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// import DEVS → file; returns (exit code, policy text, stderr).
fn import(ns: &Netns, devs: &[&str]) -> (i32, String, String, PathBuf) {
    let mut args = vec!["import"];
    args.extend_from_slice(devs);
    let out = qosctl(ns, &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let path = std::env::temp_dir().join(format!("{}-import.toml", ns.0));
    std::fs::write(&path, &text).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path,
    )
}

/// The policy is in sync with the kernel: `--detailed-exitcode` 0 and `apply --json`
/// runs 0 commands.
fn assert_in_sync(ns: &Netns, policy: &std::path::Path, text: &str) {
    let p = policy.to_str().unwrap();
    let dry = qosctl(ns, &["apply", p, "--dry-run", "--detailed-exitcode"]);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "not in sync:\n{}\n{}\npolicy:\n{text}",
        String::from_utf8_lossy(&dry.stdout),
        String::from_utf8_lossy(&dry.stderr)
    );
    let apply = qosctl(ns, &["apply", p, "--json"]);
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&apply.stdout).unwrap();
    assert_eq!(v["applied"], 0, "{v}");
    assert_eq!(v["plan"]["commands"].as_array().unwrap().len(), 0, "{v}");
}

/// The shapes people write by hand: absolute rates everywhere, no percentages.
const SCRIPTS: &[(&str, &str)] = &[
    (
        "nested htb, pfifo/bfifo/tbf leaves, prio, quantum and burst set",
        "qdisc add dev a0 root handle 1: htb default 30
         class add dev a0 parent 1: classid 1:1 htb rate 100mbit burst 15k cburst 15k
         class add dev a0 parent 1:1 classid 1:10 htb rate 20mbit ceil 50mbit burst 1600 cburst 3200 prio 1 quantum 1514
         class add dev a0 parent 1:1 classid 1:20 htb rate 30mbit ceil 100mbit
         class add dev a0 parent 1:20 classid 1:21 htb rate 10mbit ceil 60mbit prio 3
         class add dev a0 parent 1:20 classid 1:22 htb rate 5mbit ceil 30mbit prio 7 quantum 60000
         class add dev a0 parent 1:20 classid 1:23 htb rate 12345678bit ceil 12345678bit
         class add dev a0 parent 1:1 classid 1:30 htb rate 1mbit ceil 100mbit prio 2
         qdisc add dev a0 parent 1:10 handle 10: pfifo limit 100
         qdisc add dev a0 parent 1:21 handle 21: bfifo limit 30000
         qdisc add dev a0 parent 1:22 handle 22: tbf rate 5mbit burst 10kb latency 50ms
         qdisc add dev a0 parent 1:23 handle 23: tbf rate 2mbit burst 8000 limit 30000
         qdisc add dev a0 parent 1:30 handle 30: pfifo",
    ),
    (
        "flat htb at gigabit rates (default bursts that tick rounding moves) on both ends",
        "qdisc add dev a0 root handle 1: htb default 2
         class add dev a0 parent 1: classid 1:1 htb rate 10gbit
         class add dev a0 parent 1:1 classid 1:2 htb rate 1gbit ceil 10gbit
         class add dev a0 parent 1:1 classid 1:fffe htb rate 4gbit ceil 8gbit prio 5
         qdisc add dev a0 parent 1:2 handle 2: pfifo limit 1000
         qdisc add dev a0 parent 1:fffe handle fffe: bfifo
         qdisc add dev b0 root handle 1: htb default 10
         class add dev b0 parent 1: classid 1:1 htb rate 800kbit
         class add dev b0 parent 1:1 classid 1:10 htb rate 800kbit
         qdisc add dev b0 parent 1:10 handle 10: pfifo limit 10",
    ),
];

#[test]
fn raw_tc_scripts_round_trip_with_zero_commands() {
    need_root!();
    for (i, (what, script)) in SCRIPTS.iter().enumerate() {
        let ns = Netns::with_veth(&format!("imp{i}"));
        tc_script(&ns, script);
        let (code, text, stderr, path) = import(&ns, &["a0", "b0"]);
        assert_eq!(code, 0, "{what}: import exit {code}\n{stderr}\n{text}");
        assert!(!text.contains("NOT IMPORTED"), "{what}:\n{text}");
        assert_in_sync(&ns, &path, &text);
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn imported_values_are_written_only_where_they_differ_from_the_defaults() {
    need_root!();
    let ns = Netns::with_veth("impdef");
    tc_script(&ns, SCRIPTS[0].1);
    let (_, text, _, path) = import(&ns, &["a0"]);
    let _ = std::fs::remove_file(path);
    let class = |name: &str| {
        let start = text
            .find(&format!(".classes.{name}]\n"))
            .unwrap_or_else(|| panic!("no {name}:\n{text}"));
        let rest = &text[start..];
        let end = rest[1..].find("\n[").map_or(rest.len(), |e| e + 1);
        rest[..end].to_string()
    };
    let c10 = class("c1_10");
    for want in [
        "id = 0x10",
        "rate = \"20mbit\"",
        "ceil = \"50mbit\"",
        "cburst = 3",
        "prio = 1",
        "quantum = 1514",
        "limit = 100",
    ] {
        assert!(c10.contains(want), "{want} missing:\n{c10}");
    }
    assert!(
        !c10.contains("\nburst"),
        "burst 1600 is the default:\n{c10}"
    );
    let c30 = class("c1_30");
    assert!(
        !c30.contains("ceil"),
        "ceil = parent's ceil is the default:\n{c30}"
    );
    assert!(
        !c30.contains("quantum"),
        "rate/10 is the default quantum:\n{c30}"
    );
    assert!(
        text.contains("[interfaces.a0]\nrate = \"100mbit\"\nburst = 15"),
        "{text}"
    );
    assert!(text.contains("default = \"c1_30\""), "{text}");
}

#[test]
fn wondershaper_style_script_imports_its_tree_and_names_the_rest() {
    need_root!();
    // wondershaper's layout (root class 1:1 with burst 6k, three prio classes, u32 rules by
    // TOS and port, ingress policing), on what this kernel has: pfifo for its sfq, and an
    // ingress u32 without the police action.
    let ns = Netns::with_veth("impws");
    tc_script(
        &ns,
        "qdisc add dev a0 root handle 1: htb default 20
         class add dev a0 parent 1: classid 1:1 htb rate 900kbit burst 6k
         class add dev a0 parent 1:1 classid 1:10 htb rate 400kbit ceil 900kbit burst 6k prio 1
         class add dev a0 parent 1:1 classid 1:20 htb rate 300kbit ceil 900kbit burst 6k prio 2
         class add dev a0 parent 1:1 classid 1:30 htb rate 200kbit ceil 720kbit burst 6k prio 2
         qdisc add dev a0 parent 1:10 handle 10: pfifo limit 100
         qdisc add dev a0 parent 1:20 handle 20: pfifo limit 100
         qdisc add dev a0 parent 1:30 handle 30: pfifo limit 100
         filter add dev a0 parent 1:0 protocol ip prio 10 u32 match ip tos 0x10 0xff flowid 1:10
         filter add dev a0 parent 1:0 protocol ip prio 11 u32 match ip protocol 1 0xff flowid 1:10
         filter add dev a0 parent 1:0 protocol ip prio 18 u32 match ip dport 22 0xffff flowid 1:10
         qdisc add dev a0 handle ffff: ingress
         filter add dev a0 parent ffff: protocol ip prio 50 u32 match ip src 0.0.0.0/0 flowid :1",
    );
    let (code, text, stderr, path) = import(&ns, &["a0"]);
    assert_eq!(code, 3, "partial import exits 3\n{stderr}\n{text}");
    for want in [
        "NOT IMPORTED: filter u32 parent 1: prio 10",
        "NOT IMPORTED: filter u32 parent 1: prio 18",
        "NOT IMPORTED: qdisc ingress ffff:",
        "NOT IMPORTED: filter u32 parent ffff: prio 50",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    assert!(stderr.contains("import: partial:"), "{stderr}");
    // The htb tree itself is exact: the plan only removes what the comments name.
    let p = path.to_str().unwrap();
    let dry = qosctl(&ns, &["apply", p, "--dry-run", "--json"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(v["summary"]["add"], 0, "{v}");
    assert_eq!(v["summary"]["change"], 0, "{v}");
    assert!(v["summary"]["remove"].as_u64().unwrap() >= 2, "{v}");
    for c in v["commands"].as_array().unwrap() {
        let c = c.as_str().unwrap();
        assert!(
            c.starts_with("filter del") || c.starts_with("qdisc del dev a0 ingress"),
            "only removals of what is commented out: {c}\n{v}"
        );
    }
    // Removing the foreign u32 filters and the ingress qdisc could not be undone if the
    // batch failed, so apply refuses before changing anything and names them (safety).
    let before = ns.dump(&["a0"]);
    // Without --force the foreign objects alone stop it (tests/foreign.rs); with it, the
    // order still does.
    let refused = qosctl(&ns, &["apply", p]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("did not create"), "{err}");
    assert_eq!(ns.dump(&["a0"]), before, "a refused apply changes nothing");
    let apply = qosctl(&ns, &["apply", "--force", p]);
    let err = String::from_utf8_lossy(&apply.stderr);
    assert_eq!(apply.status.code(), Some(1), "{err}");
    assert!(err.contains("refusing to apply"), "{err}");
    assert!(err.contains("qdisc del dev a0 ingress"), "{err}");
    assert_eq!(ns.dump(&["a0"]), before, "a refused apply changes nothing");
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_tree_made_by_fireqos_is_imported_with_its_rates_prios_and_quantums() {
    need_root!();
    assert!(
        Command::new("sh")
            .args(["-c", "command -v fireqos"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "fireqos is missing: tests/install-deps.sh must install it"
    );
    let ns = Netns::with_veth("impfq");
    let conf = std::env::temp_dir().join(format!("{}-fireqos.conf", ns.0));
    std::fs::write(
        &conf,
        "interface a0 lan output rate 10mbit balanced pfifo\n\
         \x20 class voice commit 1mbit ceil 5mbit pfifo\n\
         \x20 class web commit 3mbit\n\
         \x20 class bulk commit 2mbit ceil 8mbit\n",
    )
    .unwrap();
    // As bench/run.sh runs it: inside the namespace, with a private /run so FireQoS's
    // state files never touch the host's.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "unshare",
            "--mount",
            "--propagation",
            "private",
        ])
        .args([
            "sh",
            "-c",
            "mount -t tmpfs qx-import-fireqos /run && exec \"$@\"",
            "fireqos",
        ])
        .args(["fireqos", "-nc", "start"])
        .arg(&conf)
        .output()
        .expect("run fireqos");
    let _ = std::fs::remove_file(&conf);
    assert!(
        out.status.success(),
        "fireqos failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let before = classes(&ns);
    assert_eq!(before.len(), 5, "{before:?}");

    let (code, text, stderr, path) = import(&ns, &["a0"]);
    // FireQoS sets htb r2q 8 and numbers leaf qdiscs with its own counter (class 1:8000
    // has leaf 14:); a policy has r2q 10 and leaf N: on class 1:N. Both are named.
    assert_eq!(code, 3, "{stderr}\n{text}");
    assert!(text.contains("NOT IMPORTED: htb r2q 8"), "{text}");
    assert!(
        text.contains("NOT IMPORTED: leaf qdisc pfifo 14: of class 1:8000"),
        "{text}"
    );
    assert_eq!(
        stderr.matches("import: not imported:").count(),
        2,
        "{stderr}"
    );
    let p = path.to_str().unwrap();
    let apply = qosctl(&ns, &["apply", p]);
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    // Every class as FireQoS made it: same handles, rates, ceils, prios, quantums.
    assert_eq!(classes(&ns), before);
    assert_in_sync(&ns, &path, &text);
    let _ = std::fs::remove_file(path);
}

/// `handle rate ceil prio quantum` of every class, sorted: what must survive an import.
fn classes(ns: &Netns) -> Vec<String> {
    let out = Command::new("tc")
        .args(["-n", &ns.0, "-d", "class", "show", "dev", "a0"])
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let after = |k: &str| {
                w.iter()
                    .position(|x| *x == k)
                    .and_then(|i| w.get(i + 1))
                    .copied()
                    .unwrap_or("-")
            };
            format!(
                "{} rate {} ceil {} prio {} quantum {}",
                w[2],
                after("rate"),
                after("ceil"),
                after("prio"),
                after("quantum")
            )
        })
        .collect();
    v.sort();
    v
}

/// docs/cbq.md's worked example is a valid policy that says what the CBQ script said.
#[test]
fn the_cbq_worked_example_is_a_valid_policy() {
    let md = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/cbq.md"))
        .unwrap();
    let start = md.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let text = &md[start..start + md[start..].find("```").unwrap()];
    let checked = qosctl::policy::check_str("docs/cbq.md", text);
    assert!(!checked.has_errors(), "{}", checked.render());
    let d = checked.desired();
    let st = &d.devices[0].state;
    let class = |minor_of: &str| {
        st.classes
            .iter()
            .find(|c| c.name.as_deref() == Some(minor_of))
            .unwrap_or_else(|| panic!("no {minor_of}: {st:#?}"))
    };
    let i = class("eth0/interactive");
    assert_eq!(
        (i.rate.bits(), i.ceil.bits(), i.prio),
        (2_000_000, 2_000_000, Some(0))
    );
    let r = class("eth0/rest");
    assert_eq!(
        (r.rate.bits(), r.ceil.bits(), r.prio),
        (8_000_000, 100_000_000, Some(4))
    );
    assert!(st.filters.iter().any(|f| f.classid == Some(i.handle)
        && matches!(f.kind, qosctl::model::FilterKind::Fw { mark: 1, .. })));
}
