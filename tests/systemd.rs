//! contrib/systemd: the units pass `systemd-analyze verify`, their hardening scores what
//! the README says with `systemd-analyze security --offline`, and qosctl really works
//! with what they leave it: only CAP_NET_ADMIN (emulated with setpriv in a throw-away
//! namespace; there is no systemd manager to start the units under in this test).

mod common;
use common::{is_root, Netns, LAB_POLICY};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const UNITS: [&str; 2] = ["qosctl.service", "qosctl-watch.service"];

fn systemd_analyze() -> PathBuf {
    which::which("systemd-analyze")
        .expect("systemd-analyze is missing: tests/install-deps.sh must install it (systemd)")
}

/// The units with ExecStart pointing at the binary under test (`verify` checks that the
/// program exists), in a temporary directory.
fn units_under_test() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let files = UNITS
        .iter()
        .map(|u| {
            let text = std::fs::read_to_string(src.join(u)).expect("unit in contrib/systemd");
            let p = dir.path().join(u);
            std::fs::write(
                &p,
                text.replace("/usr/local/sbin/qosctl", env!("CARGO_BIN_EXE_qosctl")),
            )
            .unwrap();
            p
        })
        .collect();
    (dir, files)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run command")
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    let sa = systemd_analyze();
    let (_dir, files) = units_under_test();
    let o = run(Command::new(&sa).args(["verify", "--man=no"]).args(&files));
    let err = String::from_utf8_lossy(&o.stderr);
    // Complaints about other units of this machine are not ours to fix.
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("qosctl")).collect();
    assert!(o.status.success() && ours.is_empty(), "{err}");
}

#[test]
fn the_units_are_hardened() {
    let sa = systemd_analyze();
    let (_dir, files) = units_under_test();
    for f in &files {
        let o = run(Command::new(&sa)
            .args(["security", "--offline=true", "--no-pager"])
            .arg(f));
        let out = String::from_utf8_lossy(&o.stdout);
        let score: f64 = out
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no exposure level in: {out}{}",
                    String::from_utf8_lossy(&o.stderr)
                )
            });
        eprintln!("FIGURE: systemd-analyze security {}: {score}", f.display());
        // 10 is a unit without any hardening; systemd calls below 2 "OK".
        assert!(score <= 2.0, "{}: exposure {score}\n{out}", f.display());
        let text = std::fs::read_to_string(f).unwrap();
        for line in [
            "CapabilityBoundingSet=CAP_NET_ADMIN",
            "ProtectSystem=strict",
            "RestrictAddressFamilies=AF_NETLINK AF_UNIX",
            "NoNewPrivileges=yes",
            "ExecReload=",
        ] {
            assert!(text.contains(line), "{}: no {line}", f.display());
        }
    }
}

/// The capabilities the units leave: only CAP_NET_ADMIN, in bounding, inheritable and
/// ambient sets, as `setpriv` sets them (util-linux).
fn only_net_admin(ns: &Netns) -> Command {
    which::which("setpriv")
        .expect("setpriv is missing: tests/install-deps.sh must install it (util-linux)");
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.0, "setpriv"]).args([
        "--bounding-set=-all,+net_admin",
        "--inh-caps=-all,+net_admin",
        "--ambient-caps=-all,+net_admin",
        "--",
        env!("CARGO_BIN_EXE_qosctl"),
    ]);
    c
}

#[test]
fn apply_and_watch_need_nothing_but_cap_net_admin() {
    if !is_root() {
        eprintln!("SKIP: needs root (network namespaces)");
        return;
    }
    let ns = Netns::with_veth("sdc");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.toml");
    std::fs::write(&p, LAB_POLICY).unwrap();

    let o = run(only_net_admin(&ns).arg("apply").arg(&p));
    assert!(
        o.status.success(),
        "apply with only CAP_NET_ADMIN: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let qd = run(Command::new("tc").args(["-n", &ns.0, "qdisc", "show", "dev", "a0"]));
    assert!(String::from_utf8_lossy(&qd.stdout).contains("htb 1:"));

    // watch: ip monitor and the applies work with the same set.
    let mut w = only_net_admin(&ns)
        .arg("watch")
        .arg(&p)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = w.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let t = Instant::now();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("start -> in sync")) {
        let l = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                let _ = w.kill();
                panic!("watch said nothing useful: {seen:#?}")
            });
        seen.push(l);
        assert!(t.elapsed() < Duration::from_secs(10), "{seen:#?}");
    }
    let _ = Command::new(common::require("kill"))
        .arg(w.id().to_string())
        .status();
    assert_eq!(w.wait().unwrap().code(), Some(0));

    // And without it, a clear refusal before anything runs.
    let o = run(Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "setpriv",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_qosctl"))
        .arg("apply")
        .arg(&p));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs CAP_NET_ADMIN"));
}
