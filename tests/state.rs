//! The saved-state format (`show --json`, docs/json.md) and planning against it
//! (`apply --dry-run --state FILE`): the file says exactly what the kernel had, and the
//! offline plan is the live plan.

mod common;
use common::fixture;
use common::{is_root, Netns};

use std::path::PathBuf;
use std::process::{Command, Output};

use qosctl::model::{DeviceState, Handle};
use qosctl::state::json::StateFile;
use qosctl::tc::read::{parse_classes, parse_filters, parse_qdiscs};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn qosctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .args(args)
        .output()
        .expect("run qosctl")
}

/// Every state the reader makes from the captures (each iproute2 version, the kernel lab
/// with netem, fq_codel, cake, sfq, fw, flower and ingress), with counters.
fn captured_states() -> Vec<(String, DeviceState)> {
    let mut v = Vec::new();
    for ver in ["5.4.0", "5.10.0", "6.1.0", "6.8.0", "7.1.0"] {
        let d = format!("by-version/{ver}");
        v.push((
            d.clone(),
            DeviceState {
                device: "v0".into(),
                qdiscs: parse_qdiscs(&fixture(&format!("{d}/qdisc-v0-s-d.json"))).unwrap(),
                classes: parse_classes(&fixture(&format!("{d}/class-v0-s-d.json"))).unwrap(),
                filters: parse_filters(
                    &fixture(&format!("{d}/filter-v0-s-d.json")),
                    Handle::qdisc(1),
                )
                .unwrap(),
            },
        ));
    }
    for d in [
        "kernel-lab-6.1.0-56-amd64",
        "kernel-lab-6.12.95+deb12-amd64",
    ] {
        for dev in ["veth0", "ifb0", "ifb1", "dummy0"] {
            let (classes, filters): (_, &[(&str, &str)]) = if dev == "veth0" {
                (
                    Some("class-veth0.json"),
                    &[
                        ("filter-veth0-s.json", "1:"),
                        ("filter-veth0-ingress-s.json", "ffff:"),
                    ],
                )
            } else {
                (None, &[])
            };
            let st = common::captured_state(d, "qdisc-s-d.json", dev, classes, filters);
            v.push((format!("{d} {dev}"), st));
        }
    }
    v
}

#[test]
fn every_captured_state_survives_the_file_exactly() {
    let states = captured_states();
    let kinds: std::collections::BTreeSet<String> = states
        .iter()
        .flat_map(|(_, s)| s.qdiscs.iter().map(|q| q.kind.kind_name().to_string()))
        .collect();
    for k in [
        "htb", "netem", "fq_codel", "cake", "sfq", "tbf", "pfifo", "ingress", "prio",
    ] {
        assert!(kinds.contains(k), "no {k} in the captures: {kinds:?}");
    }
    for (what, st) in &states {
        let file = StateFile::from_states(std::slice::from_ref(st), None);
        let text = serde_json::to_string_pretty(&file).unwrap();
        let back = StateFile::parse(&text, what).unwrap().to_states().unwrap();
        assert_eq!(back.len(), 1);
        // rates_from_text is not part of PartialEq's view in tests below: compare it too.
        assert_eq!(&back[0], st, "{what}");
        for (a, b) in back[0].classes.iter().zip(&st.classes) {
            assert_eq!(a.rates_from_text, b.rates_from_text, "{what} {}", a.handle);
        }
    }
}

/// The member of a JSON array whose `key` is `value`.
fn item<'a>(arr: &'a serde_json::Value, key: &str, value: &str) -> &'a serde_json::Value {
    arr.as_array()
        .and_then(|a| a.iter().find(|x| x[key] == value))
        .unwrap_or_else(|| panic!("no {key} = {value} in {arr}"))
}

#[test]
fn the_file_uses_tc_handles_bits_bytes_and_microseconds() {
    let states = captured_states();
    let (_, v0) = states
        .iter()
        .find(|(w, _)| w == "by-version/6.1.0")
        .unwrap();
    let (_, lab) = states
        .iter()
        .find(|(w, _)| w == "kernel-lab-6.1.0-56-amd64 veth0")
        .unwrap();
    let file = StateFile::from_states(&[v0.clone(), lab.clone()], Some("lab"));
    let j: serde_json::Value = serde_json::to_value(&file).unwrap();
    assert_eq!(j["format"], "qosctl-state");
    assert_eq!(j["version"], 1);
    assert_eq!(j["netns"], "lab");
    let d = &j["devices"][0];
    let htb = &d["qdiscs"][0];
    assert_eq!(htb["parent"], "root");
    assert_eq!(htb["handle"], "1:");
    assert_eq!(htb["options"]["default"], "1:10");
    let c10 = item(&d["classes"], "handle", "1:10");
    assert_eq!(c10["parent"], "1:1");
    assert_eq!(c10["rate_bps"], 20_000_000);
    assert_eq!(c10["ceil_bps"], 50_000_000);
    assert_eq!(c10["quantum_bytes"], 1514);
    assert_eq!(c10["rates_from_text"], true);
    assert_eq!(c10["stats"]["packets"], 54);
    assert!(c10["stats"]["rate_measured_bps"].is_null());
    let c1 = item(&d["classes"], "handle", "1:1");
    assert_eq!(c1["parent"], "1:");
    let leaf = item(&d["qdiscs"], "handle", "10:");
    assert_eq!(leaf["parent"], "1:10");
    assert_eq!(leaf["options"]["limit_packets"], 200);
    let netem = item(&j["devices"][1]["qdiscs"], "kind", "netem");
    assert!(
        netem["options"]["delay_us"].as_f64().unwrap() > 0.0,
        "{netem}"
    );
    let ingress = item(&j["devices"][1]["qdiscs"], "kind", "ingress");
    assert_eq!(ingress["handle"], "ffff:");
    assert_eq!(ingress["parent"], "ingress");
    let fw = item(&j["devices"][1]["filters"], "kind", "fw");
    assert_eq!(fw["options"]["mark"], "0xa");
    assert_eq!(fw["classid"], "1:10");
}

fn demo() -> String {
    root()
        .join("examples/namespace-demo.toml")
        .display()
        .to_string()
}

#[test]
fn state_files_that_are_not_version_1_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[]", "a bare list of devices is the unversioned output of an older qosctl"),
        ("{\"format\":\"x\",\"version\":1,\"devices\":[]}", "not a qosctl state file (\"format\" is \"x\""),
        ("{\"format\":\"qosctl-state\",\"version\":2,\"devices\":[]}", "version 2 was written by a newer qosctl"),
        ("{\"format\":\"qosctl-state\",\"version\":1,\"devices\":[{\"device\":\"veth0\",\"qdiscs\":[{\"handle\":\"x\",\"parent\":\"root\",\"kind\":\"htb\"}]}]}", "qdisc handle \"x\" is not a tc handle"),
        ("not json", "not valid JSON"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("s{i}.json"));
        std::fs::write(&f, text).unwrap();
        let out = qosctl(&[
            "apply",
            &demo(),
            "--dry-run",
            "--state",
            f.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(want), "{text}: {err}");
    }
    let out = qosctl(&[
        "apply",
        &demo(),
        "--dry-run",
        "--state",
        "/nonexistent/s.json",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read the state file /nonexistent/s.json"));
}

#[test]
fn state_without_dry_run_is_refused_before_anything_runs() {
    let out = qosctl(&[
        "--tc",
        "/nonexistent/tc",
        "apply",
        &demo(),
        "--state",
        "empty",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: --state plans against saved state and changes nothing: add --dry-run"
    );
}

#[test]
fn state_empty_plans_every_device_as_fresh_without_tc() {
    // --tc names a program that does not exist: locating it would fail, running it too.
    let out = qosctl(&[
        "--tc",
        "/nonexistent/tc",
        "apply",
        &demo(),
        "--dry-run",
        "--detailed-exitcode",
        "--state",
        "empty",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Plan: 13 to add, 0 to change, 0 to remove."),
        "{stdout}"
    );
    assert!(out.stderr.is_empty(), "no note for --state empty");
}

// ---- offline plan == live plan, on a real namespace ------------------------------------

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: {} needs root (network namespaces)", module_path!());
            return;
        }
    };
}

/// The demo policy on the namespace's a0/b0.
fn policy(edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(demo())
        .unwrap()
        .replace("device = \"veth0\"", "device = \"a0\"")
        .replace("device = \"veth1\"", "device = \"b0\"")
        // A rate tc 6.1 prints rounded ("2333Kbit"): the file must say it was rounded.
        .replace("rate = \"30%\"", "rate = \"2333333bit\"");
    edit(text)
}

/// The same dry run twice, live and against `state`: stdout and exit code of each.
fn both(ns: &Netns, policy: &str, state: &str, extra: &[&str]) -> ((String, i32), (String, i32)) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, policy).unwrap();
    let p = p.to_str().unwrap();
    let run = |args: Vec<&str>| {
        let o = qosctl(&args);
        assert!(
            o.status.code().is_some_and(|c| c == 0 || c == 2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            o.status.code().unwrap(),
        )
    };
    let mut live = vec![
        "--netns",
        &ns.0,
        "apply",
        p,
        "--dry-run",
        "--detailed-exitcode",
    ];
    live.extend_from_slice(extra);
    let mut off = vec![
        "--tc",
        "/nonexistent/tc",
        "apply",
        p,
        "--dry-run",
        "--detailed-exitcode",
        "--state",
        state,
    ];
    off.extend_from_slice(extra);
    (run(live), run(off))
}

/// One edit of the policy, as a pull request would make it.
type Edit = Box<dyn Fn(String) -> String>;

#[test]
fn the_offline_plan_is_the_live_plan() {
    need_root!();
    let ns = Netns::with_veth("state");
    let dir = tempfile::tempdir().unwrap();
    let applied = dir.path().join("applied.toml");
    std::fs::write(&applied, policy(|t| t)).unwrap();
    let out = qosctl(&["--netns", &ns.0, "apply", applied.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = qosctl(&["--netns", &ns.0, "show", "--json"]);
    assert!(show.status.success());
    let state = dir.path().join("state.json");
    std::fs::write(&state, &show.stdout).unwrap();
    let state = state.to_str().unwrap();

    let edits: Vec<(&str, Edit)> = vec![
        ("unchanged", Box::new(|t| t)),
        (
            "a rate",
            Box::new(|t: String| t.replace("rate = \"60%\"", "rate = \"70%\"")),
        ),
        (
            "a leaf kind and limit",
            Box::new(|t: String| {
                t.replace(
                    "leaf = { kind = \"pfifo\", limit = 50 }",
                    "leaf = { kind = \"bfifo\", limit = \"32KiB\" }",
                )
            }),
        ),
        (
            "a class added and the default moved",
            Box::new(|t: String| {
                t.replace("default = \"backup\"", "default = \"extra\"")
                    + "\n[interfaces.uplink.classes.extra]\nrate = \"5%\"\nprio = 3\n"
            }),
        ),
        (
            "a burst set",
            Box::new(|t: String| {
                t.replace("rate = \"5mbit\"", "rate = \"5mbit\"\nburst = \"16KiB\"")
            }),
        ),
    ];
    for (what, edit) in &edits {
        let p = policy(edit);
        for extra in [&[][..], &["--json"][..]] {
            let (live, off) = both(&ns, &p, state, extra);
            assert_eq!(live, off, "{what} {extra:?}: live vs --state");
        }
        let (live, _) = both(&ns, &p, state, &[]);
        assert_eq!(
            live.1,
            if *what == "unchanged" { 0 } else { 2 },
            "{what}: {}",
            live.0
        );
    }

    // A device absent from the file is planned as fresh: reset b0 and save only a0.
    let out = qosctl(&["--netns", &ns.0, "reset", "--dev", "b0"]);
    assert!(out.status.success());
    let show = qosctl(&["--netns", &ns.0, "show", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["devices"].as_array().unwrap().len(), 1, "{v}");
    std::fs::write(state, &show.stdout).unwrap();
    let (live, off) = both(&ns, &policy(|t| t), state, &["--json"]);
    assert_eq!(live, off);
    let (live, off) = both(&ns, &policy(|t| t), state, &[]);
    assert_eq!(live, off);
    assert!(live.0.contains("+ qdisc 1: root"), "{}", live.0);
}

/// docs/json.md lists every field: each key that the file can hold (from every captured
/// state, netem and fw included) appears in the doc, in backquotes or quotes.
#[test]
fn docs_json_md_names_every_field() {
    let doc = std::fs::read_to_string(root().join("docs/json.md")).unwrap();
    let states: Vec<DeviceState> = captured_states().into_iter().map(|(_, s)| s).collect();
    let j = serde_json::to_value(StateFile::from_states(&states, Some("x"))).unwrap();
    let mut keys = std::collections::BTreeSet::new();
    fn walk(v: &serde_json::Value, keys: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    keys.insert(k.clone());
                    walk(v, keys);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, keys)),
            _ => {}
        }
    }
    walk(&j, &mut keys);
    assert!(keys.len() > 40, "{keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")) && !doc.contains(&format!("\"{k}\"")))
        .collect();
    assert!(missing.is_empty(), "docs/json.md does not name {missing:?}");
}
