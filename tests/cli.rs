//! The real binary's exit codes, stdout and stderr, without root: a fake `tc` replays the
//! real captures of the differ's golden cases (tests/fixtures/plan/CASE/live/a0/…).
//! Behaviour on a real kernel is tested in tests/kernel.rs; this covers the contract.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plan")
        .join(name)
}

/// A tc that answers `show` commands from a capture folder, and whose `-batch` fails at
/// line `fail_at` (0 = never) the way tc does, logging what it was given.
fn fake_tc(dir: &Path, live: &Path, fail_at: usize) -> PathBuf {
    let script = dir.join("tc");
    let log = dir.join("batch.log");
    let text = format!(
        r#"#!/bin/bash
live='{live}'
args="$*"
case "$args" in
  *-batch*)
    n=0
    while IFS= read -r line; do
      n=$((n+1)); echo "$line" >>'{log}'
      if [ "{fail_at}" -ne 0 ] && [ "$n" -eq "{fail_at}" ]; then
        echo "RTNETLINK answers: File exists" >&2; echo "Command failed -:$n" >&2; exit 1
      fi
    done; exit 0 ;;
  *"qdisc show dev a0"*) cat "$live/qdisc.json" ;;
  *"class show dev a0"*) cat "$live/class.txt" 2>/dev/null ;;
  *"filter show dev a0 parent 1:"*) cat "$live/filter-1.json" 2>/dev/null || echo '[]' ;;
  *"filter show dev a0 parent ffff:"*) cat "$live/filter-ffff.json" 2>/dev/null || echo '[]' ;;
  *"filter show dev a0"*) ;; # apply's pre-batch dump (root, ingress, egress): none here
  *"show dev "*) echo "Cannot find device \"${{args##* dev }}\"" >&2; exit 1 ;;
  *) echo "fake tc: unexpected: $args" >&2; exit 1 ;;
esac
"#,
        live = live.display(),
        log = log.display(),
    );
    std::fs::write(&script, text).unwrap();
    let mut p = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(&script, p).unwrap();
    script
}

fn qosctl() -> Command {
    Command::cargo_bin("qosctl").unwrap()
}

#[test]
fn dry_run_exit_codes_follow_detailed_exitcode() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("rate-change");
    let tc = fake_tc(dir.path(), &c.join("live/a0"), 0);
    let policy = c.join("policy.toml");
    // Changes pending: 2 with --detailed-exitcode, 0 without.
    qosctl()
        .arg("--tc")
        .arg(&tc)
        .args(["apply", "--dry-run", "--detailed-exitcode"])
        .arg(&policy)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("rate 30mbit -> 35mbit"))
        .stdout(predicate::str::ends_with(
            "Plan: 0 to add, 2 to change, 0 to remove.\n",
        ));
    qosctl()
        .arg("--tc")
        .arg(&tc)
        .args(["apply", "--dry-run"])
        .arg(&policy)
        .assert()
        .code(0);
    // In sync: 0 either way.
    let c = case("in-sync");
    let tc = fake_tc(dir.path(), &c.join("live/a0"), 0);
    qosctl()
        .arg("--tc")
        .arg(&tc)
        .args(["apply", "--dry-run", "--detailed-exitcode"])
        .arg(c.join("policy.toml"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("In sync"));
    assert!(
        !dir.path().join("batch.log").exists(),
        "a dry run ran tc -batch"
    );
}

#[test]
fn dry_run_json_lists_the_exact_tc_lines() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("full-kernel");
    // full-kernel's device is veth0: serve its capture under the name the fake knows.
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    for f in [
        "qdisc.json",
        "class.txt",
        "filter-1.json",
        "filter-ffff.json",
    ] {
        std::fs::copy(c.join("live/veth0").join(f), live.join(f)).unwrap();
    }
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        std::fs::read_to_string(c.join("policy.toml"))
            .unwrap()
            .replace("\"veth0\"", "\"a0\""),
    )
    .unwrap();
    let tc = fake_tc(dir.path(), &live, 0);
    let out = qosctl()
        .arg("--tc")
        .arg(&tc)
        .args(["apply", "--dry-run", "--json"])
        .arg(&policy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let want: Vec<String> = std::fs::read_to_string(c.join("commands.txt"))
        .unwrap()
        .lines()
        .map(|l| l.replace("veth0", "a0"))
        .collect();
    let got: Vec<String> = j["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(j["in_sync"], false);
    assert_eq!(j["summary"]["change"], 1);
    assert_eq!(j["devices"][0]["device"], "a0");
}

#[test]
fn tc_failure_shows_the_command_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("add-remove");
    let tc = fake_tc(dir.path(), &c.join("live/a0"), 2);
    // Not root: the capability check would stop us first. The fake tc is only for
    // error paths; as root, the failing batch is shown with its line.
    let is_root = common::is_root();
    let assert = qosctl()
        .arg("--tc")
        .arg(&tc)
        .arg("apply")
        .arg(c.join("policy.toml"))
        .assert()
        .code(1);
    if is_root {
        assert
            .stderr(predicate::str::contains(
                "tc failed at line 2 of 3 of the batch:",
            ))
            .stderr(predicate::str::contains(
                "  tc class add dev a0 parent 1:1 classid 1:92d9",
            ))
            .stderr(predicate::str::contains("RTNETLINK answers: File exists"));
    } else {
        assert.stderr(predicate::str::contains("CAP_NET_ADMIN"));
    }
}

#[test]
fn missing_device_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let tc = fake_tc(dir.path(), &case("in-sync").join("live/a0"), 0);
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "[interfaces.x]\ndevice = \"eth9\"\n[interfaces.x.netem]\ndelay = \"10ms\"\n",
    )
    .unwrap();
    qosctl()
        .arg("--tc")
        .arg(&tc)
        .args(["apply", "--dry-run"])
        .arg(&policy)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("device \"eth9\" does not exist"));
}

#[test]
fn missing_tc_is_a_clear_error() {
    qosctl()
        .args(["--tc", "/nonexistent/tc", "show"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--tc /nonexistent/tc: no such file",
        ));
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "[interfaces.x]\n[interfaces.x.netem]\ndelay = \"10ms\"\n",
    )
    .unwrap();
    qosctl()
        .env("PATH", dir.path())
        .args(["apply", "--dry-run"])
        .arg(&policy)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("tc not found on PATH"));
}

#[test]
fn invalid_policy_exits_1_before_running_tc() {
    let dir = tempfile::tempdir().unwrap();
    let tc = fake_tc(dir.path(), &case("in-sync").join("live/a0"), 0);
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[interfaces.x]\nrate = 5000\n").unwrap();
    qosctl()
        .arg("--tc")
        .arg(&tc)
        .args(["apply", "--dry-run"])
        .arg(&policy)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("5000kbit"));
}

#[test]
fn help_documents_the_exit_codes() {
    qosctl()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes: 0 success"))
        .stdout(predicate::str::contains("2 changes"));
}

#[test]
fn check_quiet_prints_only_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/home-router.toml");
    qosctl()
        .args(["check", "--quiet"])
        .arg(&good)
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[interfaces.x]\nrate = 5000\n").unwrap();
    qosctl()
        .args(["check", "-q"])
        .arg(&bad)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("did you mean \"5000kbit\"?"));
}
