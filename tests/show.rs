//! `qosctl show`, end to end: the real binary against a fake `tc` that replays captured
//! output (tests/fixtures/tc), and against a real kernel in a private namespace (root only).

mod common;
use common::{is_root, Netns};

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tc")
}

/// A `tc` that prints the capture matching its arguments, and logs every call.
struct FakeTc {
    dir: tempfile::TempDir,
}

impl FakeTc {
    fn new() -> FakeTc {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"#!/bin/sh
echo "$*" >> "$FAKE_TC_LOG"
F="$FAKE_TC_FIX"
case "$*" in
  *"-j -s -d qdisc show dev v0") cat "$F/qdisc-v0-s-d.json" ;;
  *"-j -s -d class show dev v0") cat "$F/class-v0-s-d.json" ;;
  *"-j -s filter show dev v0 parent 1:") cat "$F/filter-v0-s-d.json" ;;
  *"-s filter show dev v0 parent 1:") cat "$F/filter-v0.txt" ;;
  *"-j -s -d qdisc show dev vbad") cat "$F/qdisc-v0-s-d.json" ;;
  *"-j -s -d class show dev vbad") cat "$F/class-v0-s-d.json" ;;
  *"-j -s filter show dev vbad parent 1:") printf '[{"kind":"u32","options":{"fh":' ;;
  *"-s filter show dev vbad parent 1:") cat "$F/filter-v0.txt" ;;
  *"-j -s -d qdisc show dev v2") cat "$F/qdisc-v2-tbf-s-d.json" ;;
  *"-j -s filter show dev v2 parent 5:") echo "[]" ;;
  *"-j qdisc show") cat "$F/qdisc.json" ;;
  *"-j -s -d qdisc show dev nosuch") echo 'Cannot find device "nosuch"' >&2; exit 1 ;;
  *"-j -s -d qdisc show dev "*) echo "[]" ;;
  *) echo "fake tc: unexpected arguments: $*" >&2; exit 2 ;;
esac
"#;
        let path = dir.path().join("tc");
        std::fs::write(&path, script).unwrap();
        Std::new("chmod").arg("755").arg(&path).status().unwrap();
        FakeTc { dir }
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("tc")
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("calls.log")
    }
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
    fn qosctl(&self, fix: &str) -> Command {
        let mut c = Command::cargo_bin("qosctl").unwrap();
        c.env("FAKE_TC_FIX", fixtures().join(fix))
            .env("FAKE_TC_LOG", self.log())
            .arg("--tc")
            .arg(self.path());
        c
    }
}

fn stdout_of(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The table row whose first cell (trimmed) is `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| {
            l.trim_matches(|c| c == '│' || c == ' ')
                .split('┆')
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first:?} in\n{table}"))
}

#[test]
fn tables_from_every_iproute2_version() {
    for v in ["5.4.0", "5.10.0", "6.1.0", "6.8.0", "7.1.0"] {
        let fake = FakeTc::new();
        let out = stdout_of(fake.qosctl(&format!("by-version/{v}")).args(["show", "v0"]));
        assert!(out.starts_with("v0\n"), "{v}: {out}");
        let htb = row(&out, "1:");
        assert_eq!(&htb[1..4], ["root", "htb", "default 0x10 r2q 10"], "{v}");
        assert_eq!(&htb[4..6], ["5240", "94"], "{v}: bytes, packets");
        // Classes are indented under their parent.
        let c10 = row(&out, "1:10");
        assert_eq!(&c10[1..5], ["1:1", "20mbit", "50mbit", "1"], "{v}");
        assert_eq!(&c10[5..7], ["3120", "54"], "{v}");
        let tbf = row(&out, "a0:");
        assert_eq!(tbf[3], "rate 6mbit burst 10240B latency 50ms", "{v}");
        assert!(
            out.contains("│   1:10 "),
            "{v}: 1:10 is not indented:\n{out}"
        );
        // Filters: the u32 rule steering to 1:ff.
        let line = out.lines().find(|l| l.contains("3:5:800")).unwrap();
        assert!(line.contains("1:ff") && line.contains(" 6 "), "{v}: {line}");

        // One tc process per dump, never -p (it crashes tc 6.1).
        let calls = fake.calls();
        assert_eq!(calls.len(), 3, "{v}: {calls:?}");
        assert!(calls.iter().all(|c| !c.split(' ').any(|a| a == "-p")));
    }
}

#[test]
fn json_is_the_versioned_state_format() {
    // docs/json.md; tests/state.rs checks the format field by field.
    let fake = FakeTc::new();
    let out = stdout_of(
        fake.qosctl("by-version/6.1.0")
            .args(["show", "--json", "v0", "v2"]),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "qosctl-state");
    assert_eq!(v["version"], 1);
    let devs = v["devices"].as_array().unwrap();
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[0]["device"], "v0");
    let c10 = devs[0]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["handle"] == "1:10")
        .expect("class 1:10");
    assert_eq!(c10["rate_bps"], 20_000_000);
    assert_eq!(c10["ceil_bps"], 50_000_000);
    assert_eq!(c10["prio"], 1);
    assert_eq!(c10["stats"]["packets"], 54);
    assert_eq!(devs[1]["qdiscs"][0]["kind"], "tbf");
    assert_eq!(devs[1]["qdiscs"][0]["parent"], "root");
    assert_eq!(devs[1]["qdiscs"][0]["options"]["rate_bps"], 2_000_000);
    assert_eq!(devs[1]["filters"].as_array().unwrap().len(), 0);
}

#[test]
fn unreadable_filter_json_falls_back_to_text() {
    let fake = FakeTc::new();
    let out = stdout_of(
        fake.qosctl("by-version/6.8.0")
            .args(["show", "--json", "vbad"]),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let filters = v["devices"][0]["filters"].as_array().unwrap();
    assert_eq!(filters.len(), 7, "{out}");
    assert_eq!(filters[0]["classid"], "1:10");
    assert_eq!(filters[0]["options"]["handle"], "800::800");
    let calls = fake.calls();
    assert_eq!(
        calls.len(),
        4,
        "qdisc, class, filter JSON, filter text: {calls:?}"
    );
    assert!(
        calls[3].ends_with("-s filter show dev vbad parent 1:"),
        "{calls:?}"
    );
}

#[test]
fn without_devices_lists_those_with_a_tree() {
    let fake = FakeTc::new();
    let out = stdout_of(
        fake.qosctl("kernel-lab-6.1.0-56-amd64")
            .args(["show", "--json"]),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"].as_str().unwrap())
        .collect();
    // lo has only the default noqueue: not listed.
    assert_eq!(names, ["ifb0", "ifb1", "dummy0", "veth0", "dummy1"]);
}

#[test]
fn missing_device_is_a_clear_error() {
    let fake = FakeTc::new();
    let out = fake
        .qosctl("by-version/6.1.0")
        .args(["show", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("device \"nosuch\" does not exist"),
        "stderr: {err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_tc_is_a_clear_error() {
    let out = Command::cargo_bin("qosctl")
        .unwrap()
        .args(["--tc", "/nonexistent/tc", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tc"));
}

#[test]
fn closed_stdout_is_not_an_error() {
    // Enough output to fill the pipe, so the write really fails with EPIPE.
    let fake = FakeTc::new();
    let bin = assert_cmd::cargo::cargo_bin("qosctl");
    let devs = vec!["v0"; 60].join(" ");
    let cmd = format!(
        "'{}' --tc '{}' show {devs} | head -1",
        bin.display(),
        fake.path().display()
    );
    // pipefail: the exit status is qosctl's, not head's.
    let out = Std::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {cmd}"))
        .env("FAKE_TC_FIX", fixtures().join("by-version/7.1.0"))
        .env("FAKE_TC_LOG", fake.log())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v0\n");
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{:?}", out.status);
}

// ---- with a policy -------------------------------------------------------------------------

fn write_policy(dir: &Path) -> PathBuf {
    let p = dir.join("policy.toml");
    std::fs::write(
        &p,
        r#"
[interfaces.lan]
device = "v0"
rate = "100mbit"
default = "bulk"

[interfaces.lan.classes.voice]
id = 0x10
rate = "20%"
ceil = "50%"
prio = 1

[interfaces.lan.classes.bulk]
id = 0x20
rate = "1mbit"
ceil = "100%"
"#,
    )
    .unwrap();
    p
}

#[test]
fn policy_names_and_rates_beside_live_ones() {
    let fake = FakeTc::new();
    let policy = write_policy(fake.dir.path());
    let out = fake
        .qosctl("by-version/7.1.0")
        .arg("show")
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.starts_with("v0 (policy: lan)\n"), "{out}");
    let c10 = row(&out, "1:10");
    assert!(c10[2].contains("voice"), "{c10:?}");
    // Live 20mbit/50mbit, policy 20% / 50% of 100mbit: in sync, no `*`.
    assert_eq!(
        &c10[3..7],
        ["20mbit", "50mbit", "20mbit", "50mbit"],
        "{c10:?}"
    );
    // The by-version state has 1:20 at 1000kbit/100mbit: matches too.
    let c20 = row(&out, "1:20");
    assert!(c20[2].contains("bulk"), "{c20:?}");
}

// ---- a real kernel --------------------------------------------------------------------------

fn sh(cmd: &str) {
    let out = Std::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn root_show_in_a_namespace() {
    if !is_root() {
        eprintln!("SKIP: root_show_in_a_namespace needs root");
        return;
    }
    let ns = Netns::with_veth("show");
    let n = ns.0.as_str();
    sh(&format!(
        "ip -n {n} addr add 10.77.0.1/24 dev a0 && ip -n {n} addr add 10.77.0.2/24 dev b0"
    ));
    sh(&format!(
        "tc -n {n} qdisc add dev a0 root handle 1: htb default 20 \
         && tc -n {n} class add dev a0 parent 1: classid 1:1 htb rate 100mbit \
         && tc -n {n} class add dev a0 parent 1:1 classid 1:10 htb rate 10mbit ceil 50mbit prio 1 \
         && tc -n {n} class add dev a0 parent 1:1 classid 1:20 htb rate 5mbit ceil 100mbit prio 2 \
         && tc -n {n} qdisc add dev a0 parent 1:10 handle 10: pfifo limit 100 \
         && tc -n {n} qdisc add dev a0 parent 1:20 handle 20: bfifo limit 30000 2>/dev/null"
    ));
    // Some traffic through the default class 1:20 (to the veth peer, inside the namespace).
    let _ = Std::new("ip")
        .args([
            "netns",
            "exec",
            n,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-q",
            "10.77.0.2",
        ])
        .output();

    let mut c = Command::cargo_bin("qosctl").unwrap();
    let out = stdout_of(c.args(["--netns", n, "show"]));
    assert!(out.starts_with("a0\n"), "only a0 has a tree:\n{out}");
    assert!(!out.contains("\nb0"), "{out}");
    let c20 = row(&out, "1:20");
    assert_eq!(&c20[1..5], ["1:1", "5mbit", "100mbit", "2"], "{c20:?}");
    let packets: u64 = c20[6].parse().unwrap();
    assert!(packets >= 3, "pings went through 1:20: {c20:?}");
    assert_eq!(row(&out, "20:")[3], "limit 30000B");

    let mut c = Command::cargo_bin("qosctl").unwrap();
    let out = stdout_of(c.args(["--netns", n, "show", "b0"]));
    assert!(out.contains("kernel default"), "{out}");
}
