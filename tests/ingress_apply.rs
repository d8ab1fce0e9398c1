//! `[interfaces.X.ingress]` through qosctl on this machine's kernel (ingress, ifb, mirred,
//! u32 and htb; no police, connmark or netem here: those are the kernel lab's), each test in
//! throw-away namespaces: the ifb's lifecycle (created once, its tree diffed in place,
//! deleted by reset and when the policy drops the ingress), foreign ifbs never touched,
//! errors before anything changes, and the download measured with iperf3.

#[macro_use]
mod common;
use common::{ifbs, ok, text, Case, NetnsPair};

use std::process::Output;

/// The output of a run that must fail.
fn fails(o: Output) -> String {
    let t = text(&o);
    assert!(!o.status.success(), "qosctl succeeded:\n{t}");
    t
}

/// The `commands` of `apply --dry-run --json`.
fn planned(c: &Case, policy: &std::path::Path) -> Vec<String> {
    let out = c.qosctl(&["apply", "--dry-run", "--json", policy.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json: {e}: {}", text(&out)));
    v["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// "Applied N commands" from apply's output.
fn applied(out: &str) -> usize {
    out.lines()
        .find_map(|l| l.strip_prefix("Applied "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"Applied N commands\" in:\n{out}"))
}

const TWO_CLASSES: &str = r#"
[interfaces.lab]
device = "a0"

[interfaces.lab.ingress]
rate = "5mbit"
default = "three"
leaf = "pfifo"

[interfaces.lab.ingress.classes.two]
rate = "2mbit"
ceil = "2mbit"

[interfaces.lab.ingress.classes.three]
rate = "3mbit"
ceil = "3mbit"
"#;

#[test]
fn an_ingress_tree_lives_on_its_ifb_and_is_diffed_in_place() {
    need_root!();
    let c = Case::new("iga");
    let p = c.policy("p.toml", TWO_CLASSES);
    let ps = p.to_str().unwrap();

    // The plan names the ifb it will create and the tree on it.
    let dry = ok(c.qosctl(&["apply", "--dry-run", ps]));
    assert!(dry.contains("+ ifb device ifb-a0"), "{dry}");
    let json = c.qosctl(&["apply", "--dry-run", "--json", ps]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json");
    let ifb = &v["devices"][1];
    assert_eq!(ifb["device"], "ifb-a0", "{v:#}");
    assert_eq!(
        ifb["link"],
        serde_json::json!({"action": "create", "ifb_for": "a0"})
    );
    assert!(ifbs(&c.ns.0).is_empty(), "a dry run created an ifb");

    let out = ok(c.qosctl(&["apply", ps]));
    assert!(out.contains("read back: in sync"), "{out}");
    assert_eq!(
        ifbs(&c.ns.0),
        vec![("ifb-a0".to_string(), "qosctl:ifb-for:a0".to_string())]
    );
    // With --netns the ifb lives in that namespace, not in this machine's own (read only).
    let host = std::process::Command::new("ip")
        .args(["link", "show", "dev", "ifb-a0"])
        .output()
        .expect("ip");
    assert!(!host.status.success(), "an ifb-a0 outside the namespace");
    // Read back: the hook on a0 redirects to the ifb, the tree is on the ifb's root.
    let dump = c.ns.dump(&["a0", "ifb-a0"]);
    let has = |s: &str| dump.iter().any(|l| l.contains(s));
    assert!(has("qdisc ingress ffff:"), "{dump:#?}");
    assert!(
        has("mirred (Egress Redirect to device ifb-a0)"),
        "{dump:#?}"
    );
    assert!(
        has("ifb-a0 qdisc show dev ifb-a0: qdisc htb 1: root"),
        "{dump:#?}"
    );
    assert!(has("rate 2Mbit ceil 2Mbit"), "{dump:#?}");

    // Re-applied: nothing to do.
    assert_eq!(planned(&c, &p), Vec::<String>::new());
    let again = ok(c.qosctl(&["apply", "--detailed-exitcode", ps]));
    assert!(again.contains("In sync"), "{again}");

    // qosctl's ifb set down by hand (it would drop the download): drift, set up again.
    let set = |state: &str| {
        let o = std::process::Command::new("ip")
            .args(["-n", &c.ns.0, "link", "set", "dev", "ifb-a0", state])
            .status()
            .expect("ip");
        assert!(o.success());
    };
    set("down");
    let dry = ok(c.qosctl(&["apply", "--dry-run", ps]));
    assert!(
        dry.contains("~ ifb device ifb-a0  for the ingress of a0: down -> up"),
        "{dry}"
    );
    ok(c.qosctl(&["apply", ps]));
    assert_eq!(planned(&c, &p), Vec::<String>::new());
    let dry = ok(c.qosctl(&["apply", "--dry-run", ps]));
    assert!(dry.contains("In sync"), "{dry}");

    // Edited in place: one class change on the ifb; the hook and the ifb stay.
    let edited = c.policy("p2.toml", &TWO_CLASSES.replace("\"2mbit\"", "\"1500kbit\""));
    let cmds = planned(&c, &edited);
    assert_eq!(cmds.len(), 1, "an in-place edit is one command: {cmds:#?}");
    assert!(cmds[0].starts_with("class change dev ifb-a0 "), "{cmds:#?}");
    let out = ok(c.qosctl(&["apply", edited.to_str().unwrap()]));
    assert_eq!(applied(&out), 1, "{out}");
    let dump = c.ns.dump(&["ifb-a0"]);
    assert!(
        dump.iter()
            .any(|l| l.contains("rate 1500Kbit ceil 1500Kbit")),
        "{dump:#?}"
    );

    // show prints the ingress tree under its interface.
    let show = ok(c.qosctl(&["show", "--policy", edited.to_str().unwrap()]));
    let at = show
        .find("a0 ingress tree, on ifb ifb-a0:")
        .unwrap_or_else(|| panic!("{show}"));
    assert!(show[at..].contains("lab/two"), "{show}");
    assert!(
        !show.contains("\nifb-a0 (policy"),
        "the ifb listed on its own:\n{show}"
    );

    // reset removes the hook, the tree and the ifb.
    let out = ok(c.qosctl(&["reset", edited.to_str().unwrap()]));
    assert!(out.contains("ifb-a0: deleted"), "{out}");
    assert!(ifbs(&c.ns.0).is_empty(), "{:?}", ifbs(&c.ns.0));
    assert!(c.ns.dump(&["a0"]).iter().all(|l| !l.contains("ingress")));
}

#[test]
fn dropping_the_ingress_from_the_policy_removes_hook_qdisc_and_ifb() {
    need_root!();
    let c = Case::new("igd");
    let p = c.policy("p.toml", TWO_CLASSES);
    ok(c.qosctl(&["apply", p.to_str().unwrap()]));
    let plain = c.policy(
        "plain.toml",
        "[interfaces.lab]\ndevice = \"a0\"\nrate = \"10mbit\"\ndefault = \"x\"\nleaf = \"pfifo\"\n\
         [interfaces.lab.classes.x]\nrate = \"100%\"\n",
    );
    let dry = ok(c.qosctl(&["apply", "--dry-run", plain.to_str().unwrap()]));
    assert!(dry.contains("- ifb device ifb-a0"), "{dry}");
    assert!(dry.contains("- qdisc ffff: ingress"), "{dry}");
    // qosctl's own hook is not foreign: no --force needed.
    let out = ok(c.qosctl(&["apply", plain.to_str().unwrap()]));
    assert!(!out.contains("Foreign"), "{out}");
    assert!(ifbs(&c.ns.0).is_empty(), "{:?}", ifbs(&c.ns.0));
    let dump = c.ns.dump(&["a0"]);
    assert!(dump.iter().all(|l| !l.contains("ingress")), "{dump:#?}");
    assert!(
        dump.iter().any(|l| l.contains("qdisc htb 1: root")),
        "{dump:#?}"
    );
    // And in sync afterwards.
    assert_eq!(planned(&c, &plain), Vec::<String>::new());
}

#[test]
fn an_ifb_qosctl_did_not_create_is_never_touched() {
    need_root!();
    let c = Case::new("igf");
    let ns = c.ns.0.clone();
    let ip = |args: &[&str]| {
        let mut v = vec!["-n", ns.as_str()];
        v.extend_from_slice(args);
        let o = std::process::Command::new("ip")
            .args(&v)
            .output()
            .expect("ip");
        assert!(o.status.success(), "ip {v:?}: {}", text(&o));
    };
    // A hand-made ifb with qosctl's name for a0, one of its own with a tree, and a second
    // namespace-local ifb carrying someone else's alias.
    ip(&["link", "add", "ifb-a0", "type", "ifb"]);
    ip(&["link", "add", "ifb9", "type", "ifb"]);
    ip(&["link", "set", "dev", "ifb9", "alias", "ops team", "up"]);
    let tc = std::process::Command::new("tc")
        .args([
            "-n", &ns, "qdisc", "add", "dev", "ifb9", "root", "handle", "5:", "htb",
        ])
        .status()
        .expect("tc");
    assert!(tc.success());
    let before = (ifbs(&ns), c.ns.dump(&["a0", "ifb-a0", "ifb9"]));

    let p = c.policy("p.toml", TWO_CLASSES);
    let t = fails(c.qosctl(&["apply", p.to_str().unwrap()]));
    assert!(
        t.contains("a device \"ifb-a0\" exists and qosctl did not create it for \"a0\""),
        "{t}"
    );
    assert_eq!((ifbs(&ns), c.ns.dump(&["a0", "ifb-a0", "ifb9"])), before);

    // reset of a0 deletes no ifb it did not make.
    ok(c.qosctl(&["reset", "--dev", "a0"]));
    assert_eq!(ifbs(&ns), before.0);
    // With the name free, qosctl makes its own; reset then deletes that one only.
    ip(&["link", "del", "ifb-a0"]);
    ok(c.qosctl(&["apply", p.to_str().unwrap()]));
    ok(c.qosctl(&["reset", p.to_str().unwrap()]));
    let left: Vec<String> = ifbs(&ns).into_iter().map(|(n, _)| n).collect();
    assert_eq!(left, vec!["ifb9".to_string()]);
    assert!(c
        .ns
        .dump(&["ifb9"])
        .iter()
        .any(|l| l.contains("qdisc htb 5: root")));
}

/// A directory with `tc` and a stand-in `ip` (or none), for PATH.
fn bin_dir(ip: Option<&str>) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let tc = common::require("tc");
    std::os::unix::fs::symlink(&tc, d.path().join("tc")).expect("link tc");
    if let Some(script) = ip {
        let p = d.path().join("ip");
        std::fs::write(&p, script).expect("write ip");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    d
}

fn qosctl_with_path(c: &Case, path: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .env("PATH", path)
        .args(["--netns", &c.ns.0])
        .args(args)
        .output()
        .expect("run qosctl")
}

#[test]
fn no_ip_or_no_ifb_support_stops_before_anything_changes() {
    need_root!();
    let c = Case::new("ige");
    let p = c.policy("p.toml", TWO_CLASSES);
    let before = c.ns.dump(&["a0"]);

    let none = bin_dir(None);
    let t = fails(qosctl_with_path(
        &c,
        none.path(),
        &["apply", p.to_str().unwrap()],
    ));
    assert!(t.contains("the `ip` program (iproute2) is missing"), "{t}");
    assert_eq!(c.ns.dump(&["a0"]), before);

    // An `ip` that answers as a kernel without ifb does, and passes everything else on.
    let real = common::require("ip");
    let fake = bin_dir(Some(&format!(
        "#!/bin/sh\ncase \"$*\" in *\"link add\"*\"type ifb\"*) \
         echo 'Error: Unknown device type.' >&2; exit 2;; esac\nexec {} \"$@\"\n",
        real.display()
    )));
    let t = fails(qosctl_with_path(
        &c,
        fake.path(),
        &["apply", p.to_str().unwrap()],
    ));
    assert!(t.contains("this kernel cannot create ifb devices"), "{t}");
    assert!(t.contains("nothing was changed"), "{t}");
    assert_eq!(c.ns.dump(&["a0"]), before);
    assert!(ifbs(&c.ns.0).is_empty());
}

/// A policer needs the kernel's police action, which this kernel lacks: the batch fails at
/// the hook, and the apply puts everything back, deleting the ifb it had created.
#[test]
fn a_failed_batch_deletes_the_ifb_it_created() {
    need_root!();
    let c = Case::new("igr");
    // police as a table of its own, after the classes: the same as the inline form.
    let policy = format!(
        "{TWO_CLASSES}\n[interfaces.lab.ingress.police]\nrate = \"20mbit\"\nburst = \"64KiB\"\n"
    );
    let p = c.policy("p.toml", &policy);
    let before = c.ns.dump(&["a0"]);
    let t = fails(c.qosctl(&["apply", p.to_str().unwrap()]));
    assert!(
        t.contains("restored: every interface reads back exactly"),
        "{t}"
    );
    assert!(
        t.contains("deleted the ifb device this apply had created: ifb-a0"),
        "{t}"
    );
    assert_eq!(c.ns.dump(&["a0"]), before);
    assert!(ifbs(&c.ns.0).is_empty(), "{:?}", ifbs(&c.ns.0));
}

/// The download of two flows at once, one per class, measured at the receiver in the
/// namespace that owns a0 (its ingress), within ±5 % of the class rates.
#[test]
fn download_shaped_on_the_ifb_gets_the_class_rates() {
    need_root!();
    common::require_all(&["iperf3", "ss"]);
    let lab = NetnsPair::new("igm");
    lab.ip(&lab.b, &["addr", "add", "10.77.0.3/24", "dev", "b0"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "{TWO_CLASSES}\n[[interfaces.lab.ingress.classes.two.match]]\nsrc = \"10.77.0.2/32\"\n"
        ),
    )
    .expect("write");
    let q = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
            .args(["--netns", &lab.a])
            .args(args)
            .output()
            .expect("qosctl")
    };
    ok(q(&["apply", p.to_str().unwrap()]));
    let (r2, r3) = lab.download_pair((5311, 5312), 6);
    eprintln!(
        "download through qosctl's ingress tree: from .2 {:.3} mbit (class two, 2 mbit), \
         from .3 {:.3} mbit (class three, 3 mbit)",
        r2 / 1e6,
        r3 / 1e6
    );
    assert!(
        (r2 / 1e6 - 2.0).abs() <= 0.10,
        "class two: {r2} bit/s, want 2 mbit ±5 %"
    );
    assert!(
        (r3 / 1e6 - 3.0).abs() <= 0.15,
        "class three: {r3} bit/s, want 3 mbit ±5 %"
    );
    ok(q(&["reset", p.to_str().unwrap()]));
}

/// A hook in qosctl's very shape (u32 match-all at `::1`, prio 1) that redirects to another
/// ifb is not qosctl's: refused before anything changes (no ifb created either), adopted with
/// --force, and the other ifb is left as it was.
#[test]
fn a_redirect_to_another_ifb_is_foreign() {
    need_root!();
    let c = Case::new("igx");
    let run = |prog: &str, args: &[&str]| {
        let o = std::process::Command::new(prog)
            .args(["-n", &c.ns.0])
            .args(args)
            .output()
            .expect("run");
        assert!(o.status.success(), "{prog} {args:?}: {}", text(&o));
    };
    run("ip", &["link", "add", "ifb9", "type", "ifb"]);
    run(
        "tc",
        &["qdisc", "add", "dev", "a0", "handle", "ffff:", "ingress"],
    );
    run(
        "tc",
        &[
            "filter", "add", "dev", "a0", "parent", "ffff:", "protocol", "all", "prio", "1",
            "handle", "::1", "u32", "match", "u32", "0", "0", "action", "mirred", "egress",
            "redirect", "dev", "ifb9",
        ],
    );
    let before = c.ns.dump(&["a0", "ifb9"]);
    let p = c.policy("p.toml", TWO_CLASSES);
    let t = fails(c.qosctl(&["apply", p.to_str().unwrap()]));
    assert!(t.contains("redirecting to ifb9"), "{t}");
    assert!(t.contains("refusing to apply"), "{t}");
    assert_eq!(c.ns.dump(&["a0", "ifb9"]), before);
    assert_eq!(
        ifbs(&c.ns.0).len(),
        1,
        "an ifb was created: {:?}",
        ifbs(&c.ns.0)
    );
    let out = ok(c.qosctl(&["apply", "--force", p.to_str().unwrap()]));
    assert!(out.contains("adopted with --force"), "{out}");
    let dump = c.ns.dump(&["a0"]);
    assert!(
        dump.iter()
            .any(|l| l.contains("(Egress Redirect to device ifb-a0)")),
        "{dump:#?}"
    );
    assert!(dump.iter().all(|l| !l.contains("device ifb9")), "{dump:#?}");
    assert!(ifbs(&c.ns.0).iter().any(|(n, _)| n == "ifb9"));
    assert_eq!(planned(&c, &p), Vec::<String>::new());
}

/// An unconfirmed `--confirm-within` apply of an ingress tree is rolled back: the hook and
/// the tree go, and so does the ifb that apply created.
#[test]
fn an_unconfirmed_ingress_apply_deletes_the_ifb_it_created() {
    need_root!();
    let c = Case::new("igc");
    let before = c.ns.dump(&["a0"]);
    let p = c.policy("p.toml", TWO_CLASSES);
    ok(c.qosctl(&["apply", p.to_str().unwrap(), "--confirm-within", "2s"]));
    assert_eq!(ifbs(&c.ns.0).len(), 1);
    let start = std::time::Instant::now();
    while !ifbs(&c.ns.0).is_empty() && start.elapsed() < std::time::Duration::from_secs(15) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(ifbs(&c.ns.0).is_empty(), "the ifb outlived the rollback");
    // The rollback deletes the ifb after restoring a0: give it the moment it needs.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(c.ns.dump(&["a0"]), before);
}
