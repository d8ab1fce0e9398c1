//! `apply --confirm-within` and `qosctl confirm`, on the real kernel in throw-away
//! namespaces: an unconfirmed change is rolled back to byte-identical `tc -d` dumps, a
//! confirmed one stays, a second apply while one is pending is refused, and the rollback
//! happens even when the session that applied is killed. Windows are 2 s.

#[macro_use]
mod common;
use common::{Case, LAB_POLICY};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The lab tree with a burst set on `bulk` (the last table) and a bfifo leaf there.
fn policy_a() -> String {
    format!("{LAB_POLICY}burst = \"32KiB\"\nleaf = {{ kind = \"bfifo\", limit = \"64KiB\" }}\n")
}

/// A differs from B in rates, a leaf kind, an added and a removed class, and a burst
/// that B leaves to tc's default (the rollback must bring 32KiB back, not the default).
const B: &str = r#"
[interfaces.lab]
device = "a0"
rate = "50mbit"
default = "bulk"
leaf = "pfifo"

[interfaces.lab.classes.web]
id = 0x20
rate = "30%"
prio = 1

[interfaces.lab.classes.bulk]
id = 0x30
rate = "40%"
ceil = "80%"
prio = 2
leaf = { kind = "tbf", rate = "15mbit", burst = "20KiB", latency = "50ms" }
"#;

// Case (namespace, scratch directory, qosctl there) is tests/common's; these are this
// file's own helpers on it.
impl Case {
    fn ok(&self, args: &[&str]) -> String {
        let o = self.qosctl(args);
        assert!(
            o.status.success(),
            "qosctl {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// `tc -d qdisc/class/filter show dev a0`, every line, as a set.
    fn dump(&self) -> BTreeSet<String> {
        self.ns.dump(&["a0"])
    }

    /// The record of the namespace, keyed by its identity as qosctl keys it.
    fn record(&self) -> PathBuf {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(format!("/run/netns/{}", self.ns.0)).expect("netns");
        Path::new("/run/qosctl/confirm").join(format!("net-{}-{}.json", m.dev(), m.ino()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.record().with_extension("log")).unwrap_or_default()
    }

    /// Waits until the pending record is gone (the rollback ran, or a confirm).
    fn wait_settled(&self, limit: Duration) -> Duration {
        let t = Instant::now();
        while self.record().exists() {
            assert!(
                t.elapsed() < limit,
                "still pending after {limit:?}; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        t.elapsed()
    }

    /// The rollback process named in the record.
    fn waiter_pid(&self) -> i32 {
        let text = std::fs::read_to_string(self.record()).expect("a pending record");
        let v: serde_json::Value = serde_json::from_str(&text).expect("record is JSON");
        v["pid"].as_i64().expect("pid in record") as i32
    }
}

impl Case {
    /// A case with policy A applied: the case, the paths of A and B, the dump of A.
    fn with_a_applied(tag: &str) -> (Case, PathBuf, PathBuf, BTreeSet<String>) {
        let c = Case::new(tag);
        let a = c.policy("a.toml", &policy_a());
        let b = c.policy("b.toml", B);
        c.ok(&["apply", a.to_str().unwrap()]);
        let before = c.dump();
        (c, a, b, before)
    }
}

impl Drop for Case {
    /// A failed test must not leave its rollback process waiting.
    fn drop(&mut self) {
        if self.record().exists() {
            let _ = self.qosctl(&["confirm"]);
        }
        let _ = std::fs::remove_file(self.record().with_extension("log"));
        let _ = std::fs::remove_file(self.record().with_extension("json.tmp"));
    }
}

#[test]
fn an_unconfirmed_change_is_rolled_back_byte_identical() {
    need_root!();
    let (c, _, b, before) = Case::with_a_applied("cfr");
    let err = c.ok(&["apply", b.to_str().unwrap(), "--confirm-within", "2s"]);
    assert!(err.contains("Rollback armed"), "{err}");
    let changed = c.dump();
    assert_ne!(before, changed, "B changed nothing");
    let mode = std::fs::metadata(c.record()).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let took = c.wait_settled(Duration::from_secs(10));
    eprintln!("rolled back {took:?} after the apply returned");
    assert_eq!(c.dump(), before, "log: {}", c.log());
    assert!(
        c.log()
            .contains(": rolled back to the state read before the apply")
            && c.log().contains("not confirmed by"),
        "{}",
        c.log()
    );
    // Nothing pending any more.
    let o = c.qosctl(&["confirm"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing awaits confirmation"));
}

#[test]
fn a_rollback_from_the_kernel_default_removes_everything_again() {
    need_root!();
    let c = Case::new("cfd");
    let b = c.policy("b.toml", B);
    let before = c.dump();
    c.ok(&["apply", b.to_str().unwrap(), "--confirm-within", "2s"]);
    assert_ne!(c.dump(), before);
    c.wait_settled(Duration::from_secs(10));
    assert_eq!(c.dump(), before, "log: {}", c.log());
}

#[test]
fn a_confirmed_change_stays_and_a_second_apply_waits_for_the_confirm() {
    need_root!();
    let c = Case::new("cfk");
    let a = c.policy("a.toml", &policy_a());
    let b = c.policy("b.toml", B);
    c.ok(&["apply", a.to_str().unwrap()]);
    c.ok(&["apply", b.to_str().unwrap(), "--confirm-within", "2s"]);
    let applied = c.dump();

    // A second apply (and a reset) while pending: refused, naming the way out, nothing run.
    let o = c.qosctl(&["apply", a.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("awaiting confirmation"), "{err}");
    assert!(
        err.contains(&format!("qosctl --netns {} confirm", c.ns.0)),
        "{err}"
    );
    assert!(err.contains("confirm --rollback"), "{err}");
    assert!(err.contains("b.toml"), "names the pending policy: {err}");
    // The same namespace spelled another way is the same namespace.
    let o = Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .args(["--netns", &format!("../netns/{}", c.ns.0), "apply"])
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("awaiting confirmation"));
    let o = c.qosctl(&["reset", "--dev", "a0"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(c.dump(), applied);
    // A dry run still works: it changes nothing.
    c.ok(&["apply", a.to_str().unwrap(), "--dry-run"]);

    let out = c.qosctl(&["confirm"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Confirmed"));
    assert!(!c.record().exists());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        c.dump(),
        applied,
        "confirmed, yet changed; log: {}",
        c.log()
    );
    assert!(
        c.log().contains("confirmed: the change stays"),
        "{}",
        c.log()
    );
    // Now the next apply runs; one that changes nothing arms nothing.
    c.ok(&["apply", a.to_str().unwrap()]);
    let err = c.ok(&["apply", a.to_str().unwrap(), "--confirm-within", "2s"]);
    assert!(err.contains("no rollback is armed"), "{err}");
    assert!(!c.record().exists());
}

#[test]
fn confirm_rollback_undoes_the_change_at_once() {
    need_root!();
    let (c, _, b, before) = Case::with_a_applied("cfn");
    c.ok(&["apply", b.to_str().unwrap(), "--confirm-within", "60s"]);
    let t = Instant::now();
    let o = c.qosctl(&["confirm", "--rollback"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(c.dump(), before);
}

/// The way an SSH session dies: qosctl runs in a session of its own (setsid), whose whole
/// process group gets SIGHUP and then SIGKILL once the apply returned.
#[test]
fn the_rollback_survives_the_death_of_the_session_that_applied() {
    need_root!();
    let (c, _, b, before) = Case::with_a_applied("cfs");
    let script = format!(
        "'{}' --netns {} apply '{}' --confirm-within 2s; sleep 60",
        env!("CARGO_BIN_EXE_qosctl"),
        c.ns.0,
        b.display()
    );
    let mut session = Command::new("setsid")
        .args(["sh", "-c", &script])
        .spawn()
        .expect("setsid is missing: tests/install-deps.sh must install it (util-linux)");
    let t = Instant::now();
    while !c.record().exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "apply never armed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(c.dump(), before);
    // The session leader's pid is the session's process group id.
    let pgid = session.id() as i32;
    let waiter = c.waiter_pid();
    let sid_of = |pid: i32| -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let tail = stat
            .rsplit_once(')')
            .map(|(_, t)| t.to_string())
            .unwrap_or_default();
        tail.split_whitespace().nth(3).unwrap_or("").to_string()
    };
    assert_ne!(
        sid_of(waiter),
        pgid.to_string(),
        "the waiter is in the dying session"
    );
    for sig in ["-HUP", "-KILL"] {
        let st = Command::new(common::require("kill"))
            .args([sig, "--", &format!("-{pgid}")])
            .status()
            .expect("kill");
        assert!(st.success());
    }
    let _ = session.wait();
    c.wait_settled(Duration::from_secs(10));
    assert_eq!(c.dump(), before, "log: {}", c.log());
    assert!(
        c.log()
            .contains(": rolled back to the state read before the apply")
            && c.log().contains("not confirmed by"),
        "{}",
        c.log()
    );
}

/// A shutdown (or logind ending the session's scope) sends SIGTERM: roll back at once.
/// A rollback process killed outright leaves a stale record, which the next apply removes.
#[test]
fn sigterm_rolls_back_at_once_and_a_killed_rollback_leaves_no_block() {
    need_root!();
    let (c, a, b, before) = Case::with_a_applied("cft");
    c.ok(&["apply", b.to_str().unwrap(), "--confirm-within", "60s"]);
    let kill = |sig: &str, pid: i32| {
        let st = Command::new(common::require("kill"))
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    };
    kill("-TERM", c.waiter_pid());
    c.wait_settled(Duration::from_secs(5));
    assert_eq!(c.dump(), before, "log: {}", c.log());

    c.ok(&["apply", b.to_str().unwrap(), "--confirm-within", "60s"]);
    let applied = c.dump();
    let pid = c.waiter_pid();
    kill("-KILL", pid);
    let t = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.dump(), applied, "SIGKILL cannot roll back");
    let err = c.ok(&["apply", a.to_str().unwrap()]);
    assert!(err.contains("removed a stale confirm record"), "{err}");
    assert_eq!(c.dump(), before);
}
