//! `qosctl watch` on the real kernel, in throw-away namespaces: a re-created veth is
//! shaped again (the figure is measured and printed), link flaps cause a bounded number of
//! applies, a policy change and SIGHUP re-apply, a failing apply backs off, and SIGINT /
//! SIGTERM stop it with exit 0.

#[macro_use]
mod common;
use common::{Netns, LAB_POLICY};

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const POLICY: &str = LAB_POLICY;

fn ip(ns: &Netns, args: &[&str]) {
    let o = Command::new("ip")
        .args(["-n", &ns.0])
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tc_show(ns: &Netns, what: &str) -> String {
    let o = Command::new("tc")
        .args(["-n", &ns.0, what, "show", "dev", "a0"])
        .output()
        .expect("run tc");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A running `qosctl watch`, its stdout lines arriving on a channel; killed on drop.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(ns: &Netns, policy: &std::path::Path, tc: Option<&std::path::Path>) -> Watch {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qosctl"));
        cmd.args(["--netns", &ns.0]);
        if let Some(tc) = tc {
            cmd.arg("--tc").arg(tc);
        }
        let mut child = cmd
            .arg("watch")
            .arg(policy)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start qosctl watch");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("  | {l}");
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The next line containing `needle`, within `limit`; panics with all seen lines.
    /// The first apply. Its reason is "start", or "start, a0 came up" when the veth's
    /// carrier came up (asynchronously, after `ip link set up`) within the debounce window.
    fn expect_start(&mut self) -> String {
        let l = self.expect("-> applied", Duration::from_secs(10));
        assert!(l.contains("watch: start"), "{l}");
        l
    }

    fn expect(&mut self, needle: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!("no line with {needle:?} in {limit:?}; saw {:#?}", self.seen),
            }
        }
    }

    /// Every line that arrives within `d`.
    fn collect(&mut self, d: Duration) -> Vec<String> {
        let end = Instant::now() + d;
        let mut v = Vec::new();
        while let Ok(l) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            self.seen.push(l.clone());
            v.push(l);
        }
        v
    }

    fn signal(&self, sig: &str) {
        let st = Command::new(common::require("kill"))
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Sends `sig`, checks the last line says so, and returns the exit code.
    fn stop(&mut self, sig: &str) -> Option<i32> {
        self.signal(sig);
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                let name = format!("stopping (SIG{})", &sig[1..]);
                let rest = self.collect(Duration::from_millis(200));
                assert!(rest.iter().any(|l| l.contains(&name)), "{rest:#?}");
                return st.code();
            }
            assert!(t.elapsed() < Duration::from_secs(5), "watch ignored {sig}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn policy_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let p = dir.path().join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_re_created_veth_is_shaped_again_within_2_s() {
    need_root!();
    let ns = Netns::with_veth("wre");
    let dir = tempfile::tempdir().unwrap();
    let p = policy_file(&dir, POLICY);
    let mut w = Watch::start(&ns, &p, None);
    w.expect_start();
    assert!(tc_show(&ns, "qdisc").contains("htb 1:"));

    let mut worst = Duration::ZERO;
    for round in 0..3 {
        ip(&ns, &["link", "del", "a0"]);
        w.expect("a0 deleted", Duration::from_secs(5));
        ip(
            &ns,
            &["link", "add", "a0", "type", "veth", "peer", "name", "b0"],
        );
        let created = Instant::now();
        ip(&ns, &["link", "set", "a0", "up"]);
        ip(&ns, &["link", "set", "b0", "up"]);
        while !tc_show(&ns, "qdisc").contains("htb 1:") {
            assert!(
                created.elapsed() < Duration::from_secs(2),
                "round {round}: a0 unshaped 2 s after it was re-created; saw {:#?}",
                w.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = created.elapsed();
        worst = worst.max(took);
        eprintln!("round {round}: shaped again {took:?} after re-creation");
        let l = w.expect("a0 re-created", Duration::from_secs(5));
        assert!(l.contains("-> applied 6 commands"), "{l}");
        assert_eq!(tc_show(&ns, "class").lines().count(), 3);
    }
    eprintln!("FIGURE: re-created veth shaped again within {worst:?} (worst of 3)");
    // The apply's own changes trigger nothing more.
    let after = w.collect(Duration::from_millis(1500));
    assert!(after.iter().all(|l| !l.contains(" -> ")), "{after:#?}");
    assert_eq!(w.stop("-INT"), Some(0));
}

#[test]
fn a_hundred_flaps_in_10_s_cause_a_bounded_number_of_applies() {
    need_root!();
    let ns = Netns::with_veth("wfl");
    let dir = tempfile::tempdir().unwrap();
    let p = policy_file(&dir, POLICY);
    let mut w = Watch::start(&ns, &p, None);
    w.expect_start();
    let t0 = Instant::now();
    for i in 0..100u32 {
        ip(&ns, &["link", "set", "a0", "down"]);
        ip(&ns, &["link", "set", "a0", "up"]);
        // One flap per 100 ms, on schedule.
        let next = t0 + Duration::from_millis(100 * (i as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let flapped = t0.elapsed();
    let lines = w.collect(Duration::from_millis(1500));
    let applies: Vec<_> = lines.iter().filter(|l| l.contains(" -> ")).collect();
    eprintln!(
        "FIGURE: 100 flaps in {flapped:?} caused {} applies",
        applies.len()
    );
    // One per second of flapping (the debounce cap) plus the one after the burst.
    let bound = flapped.as_secs() as usize + 2;
    assert!(
        !applies.is_empty() && applies.len() <= bound,
        "{} applies (bound {bound}): {applies:#?}",
        applies.len()
    );
    assert!(
        applies.iter().all(|l| l.contains("a0 came up")),
        "{applies:#?}"
    );
    // The qdisc survived the flaps: every apply found it in sync.
    assert!(
        applies.iter().all(|l| l.contains("in sync")),
        "{applies:#?}"
    );
    assert_eq!(w.stop("-TERM"), Some(0));
}

#[test]
fn a_changed_policy_file_and_sighup_re_apply() {
    need_root!();
    let ns = Netns::with_veth("wpo");
    let dir = tempfile::tempdir().unwrap();
    let p = policy_file(&dir, POLICY);
    let mut w = Watch::start(&ns, &p, None);
    w.expect_start();

    std::fs::write(&p, POLICY.replace("100mbit", "50mbit")).unwrap();
    let l = w.expect("policy changed", Duration::from_secs(3));
    assert!(l.contains("-> applied 3 commands"), "{l}");
    assert!(tc_show(&ns, "class").contains("rate 50Mbit"));

    // Drift made behind qosctl's back is repaired by a SIGHUP.
    let st = Command::new("tc")
        .args([
            "-n", &ns.0, "class", "change", "dev", "a0", "parent", "1:1", "classid", "1:10", "htb",
            "rate", "1mbit", "ceil", "50mbit", "prio", "0",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    w.signal("-HUP");
    let l = w.expect("SIGHUP", Duration::from_secs(3));
    assert!(l.contains("-> applied 1 command"), "{l}");
    assert!(tc_show(&ns, "class").contains("rate 5Mbit"));

    // An invalid edit is reported, and the interface keeps its shaping.
    std::fs::write(&p, POLICY.replace("\"100mbit\"", "100")).unwrap();
    let l = w.expect("policy changed", Duration::from_secs(3));
    assert!(
        l.contains("apply failed") && l.contains("has no unit"),
        "{l}"
    );
    assert!(tc_show(&ns, "class").contains("rate 5Mbit"));
    assert_eq!(w.stop("-TERM"), Some(0));
}

#[test]
fn a_failing_apply_backs_off_instead_of_spinning() {
    need_root!();
    let ns = Netns::with_veth("wbo");
    let dir = tempfile::tempdir().unwrap();
    let p = policy_file(&dir, POLICY);
    // Reads work; every change is refused, as by a kernel without the qdisc.
    let tc = dir.path().join("tc-refuses");
    let real = which::which("tc").expect("tc is missing: tests/install-deps.sh must install it");
    std::fs::write(
        &tc,
        format!(
            "#!/bin/sh\nfor a; do [ \"$a\" = -batch ] && {{ cat >/dev/null; echo 'Error: Specified qdisc kind is unknown.' >&2; echo 'Command failed -:1' >&2; exit 1; }}; done\nexec '{}' \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut w = Watch::start(&ns, &p, Some(&tc));
    let t0 = Instant::now();
    // Link events during the backoff must not make it spin.
    let flapper = {
        let name = ns.0.clone();
        std::thread::spawn(move || {
            for _ in 0..40 {
                for s in ["down", "up"] {
                    let _ = Command::new("ip")
                        .args(["-n", &name, "link", "set", "a0", s])
                        .status();
                }
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };
    let lines = w.collect(Duration::from_millis(8500));
    flapper.join().unwrap();
    let failed: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("apply failed"))
        .collect();
    eprintln!(
        "FIGURE: {} failed applies in {:?} (under link flaps)",
        failed.len(),
        t0.elapsed()
    );
    // At 0.2 s, then after 1, 2 and 4 s: four, maybe five with slow machines' skew.
    assert!((3..=5).contains(&failed.len()), "{failed:#?}");
    for (i, delay) in ["1s", "2s", "4s"].iter().enumerate() {
        assert!(
            failed[i].contains(&format!("({} in a row), retrying in {delay}", i + 1)),
            "{failed:#?}"
        );
    }
    assert!(
        failed[0].contains("Specified qdisc kind is unknown"),
        "{}",
        failed[0]
    );
    assert_eq!(w.stop("-INT"), Some(0));
}

/// Boot order: the watch starts before the device exists, says it waits, and shapes the
/// device when it appears.
#[test]
fn a_device_absent_at_the_start_is_shaped_when_it_appears() {
    need_root!();
    let ns = Netns::with_veth("wab");
    ip(&ns, &["link", "del", "a0"]);
    let dir = tempfile::tempdir().unwrap();
    let p = policy_file(&dir, POLICY);
    let mut w = Watch::start(&ns, &p, None);
    let l = w.expect("start ->", Duration::from_secs(10));
    assert!(
        l.contains("nothing to apply; waiting for a0 (absent)"),
        "{l}"
    );
    ip(
        &ns,
        &["link", "add", "a0", "type", "veth", "peer", "name", "b0"],
    );
    let l = w.expect("a0 appeared", Duration::from_secs(3));
    assert!(l.contains("-> applied 6 commands"), "{l}");
    assert!(tc_show(&ns, "qdisc").contains("htb 1:"));
    assert_eq!(w.stop("-TERM"), Some(0));
}

#[test]
fn a_missing_policy_file_is_an_error_at_once() {
    let o = Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .args(["watch", "/nonexistent/policy.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/policy.toml: no such file"));
}
