//! The Ansible module in contrib/ansible, run by real ansible-core (from the venv that
//! tests/install-deps.sh makes) against localhost inside throw-away network namespaces
//! (root only): check mode, apply, idempotence, a broken policy, and the serial rollout
//! playbook stopping at the first failing host.

mod common;
use common::traffic::{POLICY, QOSCTL};
use common::{is_root, Netns};

use std::path::{Path, PathBuf};
use std::process::Command;

fn contrib() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contrib/ansible")
}

/// The venv's bin directory with ansible-playbook and ansible-doc.
fn ansible_bin() -> PathBuf {
    let venv = std::env::var_os("QOSCTL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/qosctl-tests/venv"));
    let bin = venv.join("bin");
    if bin.join("ansible-playbook").is_file() {
        return bin;
    }
    panic!(
        "ansible-playbook is missing ({}): tests/install-deps.sh must install it",
        bin.display()
    )
}

/// `ansible-playbook` with the json callback; returns (exit code, parsed output).
fn playbook(dir: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let bin = ansible_bin();
    let out = Command::new(bin.join("ansible-playbook"))
        .args(args)
        .current_dir(dir)
        .env("ANSIBLE_STDOUT_CALLBACK", "qx_json")
        .env(
            "ANSIBLE_CALLBACK_PLUGINS",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible/callback"),
        )
        .env("ANSIBLE_LIBRARY", contrib().join("library"))
        .env("ANSIBLE_ACTION_PLUGINS", contrib().join("action_plugins"))
        .env("ANSIBLE_HOME", dir.join(".ansible"))
        .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible/tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_PYTHON_INTERPRETER", bin.join("python"))
        .output()
        .expect("run ansible-playbook");
    let text = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "ansible-playbook printed no JSON ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// The result of the first task that ran on `host`.
fn task<'a>(out: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    out["results"]
        .as_array()
        .and_then(|r| r.iter().find(|t| t["host"] == host))
        .map(|t| &t["result"])
        .unwrap_or_else(|| panic!("no task ran on {host}: {out}"))
}

fn live(ns: &str) -> String {
    let out = Command::new("tc")
        .args(["-n", ns, "qdisc", "show", "dev", "a0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ONE_HOST: &str = r#"
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - qosctl:
        src: "{{ policy }}"
        dest: "{{ dest }}"
        netns: "{{ ns }}"
        qosctl_path: "{{ qosctl }}"
"#;

#[test]
fn module_check_apply_idempotent_and_failing() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    let ns = Netns::with_veth("ansible");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("play.yml"), ONE_HOST).unwrap();
    std::fs::write(d.join("good.toml"), POLICY).unwrap();
    std::fs::write(
        d.join("broken.toml"),
        POLICY.replace("rate = \"10mbit\"", "rate = 5000"),
    )
    .unwrap();
    let dest = d.join("etc/policy.toml");
    let vars = |policy: &str| {
        format!(
            "policy={} dest={} ns={} qosctl={QOSCTL}",
            d.join(policy).display(),
            dest.display(),
            ns.0
        )
    };
    let run = |policy: &str, extra: &[&str]| {
        let v = vars(policy);
        let mut args = vec!["-i", "localhost,", "play.yml", "-e", &v];
        args.extend_from_slice(extra);
        playbook(d, &args)
    };

    let (rc, out) = run("good.toml", &["--check", "--diff"]);
    let t = task(&out, "localhost");
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        t["changed"], true,
        "check mode reports the pending change: {t}"
    );
    let diff = t["diff"].to_string();
    assert!(
        diff.contains("+ qdisc 1: root"),
        "--diff shows the plan: {diff}"
    );
    assert!(!live(&ns.0).contains("htb"), "check mode changed tc");
    assert!(!dest.exists(), "check mode wrote {}", dest.display());

    let (rc, out) = run("good.toml", &[]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(task(&out, "localhost")["changed"], true, "{out}");
    assert!(live(&ns.0).contains("qdisc htb 1: root"), "{}", live(&ns.0));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), POLICY);

    let (rc, out) = run("good.toml", &[]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        task(&out, "localhost")["changed"],
        false,
        "second apply is ok: {out}"
    );

    let before = live(&ns.0);
    let (rc, out) = run("broken.toml", &[]);
    let t = task(&out, "localhost");
    assert_ne!(rc, 0, "{out}");
    assert_eq!(t["failed"], true, "{t}");
    let msg = t["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("policy.toml:") && msg.contains("has no unit"),
        "qosctl's message, pointing into the policy: {msg}"
    );
    assert_eq!(live(&ns.0), before, "a broken policy changed tc");
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        POLICY,
        "a broken policy replaced the good one on disk"
    );
}

#[test]
fn rollout_playbook_stops_at_the_first_failing_host() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    let first = Netns::with_veth("roll1");
    let third = Netns::with_veth("roll3");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The example playbook itself, with its policy beside it (found like copy's src).
    std::fs::copy(contrib().join("rollout.yml"), d.join("rollout.yml")).unwrap();
    std::fs::write(d.join("policy.toml"), POLICY).unwrap();
    let host = |name: &str, ns: &str| {
        format!(
            "{name} ansible_connection=local qosctl_netns={ns} qosctl_dest={}/{name}.toml\n",
            d.display()
        )
    };
    let inventory = format!(
        "[shapers]\n{}{}{}",
        host("box1", &first.0),
        // A namespace that does not exist: qosctl fails on this host.
        host("box2", "qx-roll-missing"),
        host("box3", &third.0)
    );
    std::fs::write(d.join("inventory"), inventory).unwrap();
    let v = format!("qosctl_path={QOSCTL} qosctl_become=false");
    let (rc, out) = playbook(d, &["-i", "inventory", "rollout.yml", "-e", &v]);
    assert_ne!(rc, 0, "{out}");
    let ran: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        ran,
        ["box1", "box2"],
        "serial: one host at a time, stop after box2"
    );
    assert!(live(&first.0).contains("htb"), "box1 was shaped");
    assert!(!live(&third.0).contains("htb"), "box3 was not touched");
    let failed = task(&out, "box2");
    assert_eq!(failed["failed"], true, "{failed}");
    assert!(
        failed["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("qx-roll-missing"),
        "{failed}"
    );
}

#[test]
fn ansible_doc_renders_the_module() {
    let bin = ansible_bin();
    let out = Command::new(bin.join("ansible-doc"))
        .args(["--json", "-M"])
        .arg(contrib().join("library"))
        .arg("qosctl")
        .env("ANSIBLE_HOME", std::env::temp_dir().join("qx-ansible-doc"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc = &v["qosctl"]["doc"];
    for opt in ["content", "src", "dest", "netns", "qosctl_path", "tc_path"] {
        assert!(
            doc["options"][opt].is_object(),
            "option {opt} documented: {doc}"
        );
    }
    assert!(v["qosctl"]["examples"]
        .as_str()
        .unwrap()
        .contains("qosctl:"));
    assert!(v["qosctl"]["return"]["plan"].is_object());
}
