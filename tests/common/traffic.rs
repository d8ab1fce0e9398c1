//! Shaped traffic between two namespaces, for the tests that watch a shaper under load
//! (tests/observe.rs) and roll policies out (tests/ansible.rs).
#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const QOSCTL: &str = env!("CARGO_BIN_EXE_qosctl");

/// The policy under test: all traffic (the default class) through `up/bulk`, 10 Mbit/s.
pub const POLICY: &str = r#"
[interfaces.up]
device = "a0"
rate = "20mbit"
default = "bulk"
leaf = "pfifo"

[interfaces.up.classes.voice]
rate = "10%"

[interfaces.up.classes.bulk]
rate = "10mbit"
ceil = "10mbit"
"#;

pub fn need(prog: &str) -> PathBuf {
    which(prog)
        .unwrap_or_else(|| panic!("{prog} is missing: tests/install-deps.sh must install it"))
}

pub fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|f| f.is_file())
    })
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Two namespaces joined by a veth pair: `a0` (10.77.0.1) in `ns` is shaped, `b0`
/// (10.77.0.2) in `peer` runs the iperf3 server. MTU 9000, so the headers tc counts and
/// iperf3 does not are under 1 % of each packet. Both are deleted on drop.
pub struct Pair {
    pub ns: String,
    pub peer: String,
}

impl Pair {
    pub fn new(tag: &str) -> Pair {
        let ns = format!("qx-{tag}-{}", std::process::id());
        let pair = Pair {
            peer: format!("{ns}-p"),
            ns,
        };
        for n in [&pair.ns, &pair.peer] {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
            ip(&["netns", "add", n]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        let (a, b) = (pair.ns.as_str(), pair.peer.as_str());
        ip(&[
            "-n", a, "link", "add", "a0", "mtu", "9000", "type", "veth", "peer", "name", "b0",
            "mtu", "9000", "netns", b,
        ]);
        ip(&["-n", a, "addr", "add", "10.77.0.1/24", "dev", "a0"]);
        ip(&["-n", b, "addr", "add", "10.77.0.2/24", "dev", "b0"]);
        ip(&["-n", a, "link", "set", "a0", "up"]);
        ip(&["-n", b, "link", "set", "b0", "up"]);
        pair
    }

    pub fn qosctl(&self) -> Command {
        let mut c = Command::new(QOSCTL);
        c.args(["--netns", &self.ns]);
        c
    }

    /// An iperf3 flow a0 → b0 for `secs` seconds; its JSON report on the child's stdout.
    pub fn flow(&self, secs: u32) -> Child {
        need("iperf3");
        run(Command::new("ip").args([
            "netns", "exec", &self.peer, "iperf3", "-s", "-1", "-D", "-p", "5301",
        ]));
        let started = Instant::now();
        loop {
            let ok = Command::new("ip")
                .args([
                    "netns", "exec", &self.peer, "ss", "-Hltn", "sport", "= :5301",
                ])
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false);
            if ok || started.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "iperf3",
                "-c",
                "10.77.0.2",
                "-p",
                "5301",
            ])
            .args(["-J", "-t", &secs.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start iperf3")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for n in [&self.ns, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Applies [`POLICY`] in the pair's namespace; returns the policy file.
pub fn shaped(pair: &Pair, dir: &Path) -> PathBuf {
    let p = dir.join("policy.toml");
    std::fs::write(&p, POLICY).unwrap();
    run(pair.qosctl().arg("apply").arg(&p));
    p
}

/// A [`Pair`] with [`POLICY`] applied, the directory holding the policy, and its path;
/// `None` (the test skips, visibly) without root.
pub fn shaped_pair(tag: &str) -> Option<(Pair, tempfile::TempDir, PathBuf)> {
    if !super::is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return None;
    }
    let pair = Pair::new(tag);
    let dir = tempfile::tempdir().unwrap();
    let policy = shaped(&pair, dir.path());
    Some((pair, dir, policy))
}
