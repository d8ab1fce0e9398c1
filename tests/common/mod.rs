//! Helpers shared by the integration test binaries (each `tests/*.rs` is its own crate).

pub mod traffic;

/// The iproute2 versions whose real outputs are in tests/fixtures/tc/iproute2-*/.
#[allow(dead_code)]
pub const VERSIONS: [&str; 7] = [
    "5.4.0", "5.5.0", "5.10.0", "5.15.0", "6.1.0", "6.8.0", "7.1.0",
];

/// A captured tc output below tests/fixtures/tc.
#[allow(dead_code)]
pub fn fixture(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tc")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// True when the effective uid is 0 (the second field of `Uid:`, what `id -u` prints):
/// tests that create network namespaces or boot the lab need it, and skip visibly without.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A private network namespace with a veth pair `a0` <-> `b0`, both up; deleted on drop,
/// also when the test panics. The name carries a tag and the process id, so test binaries
/// running in parallel never collide; a leftover of a killed earlier run is removed first.
#[allow(dead_code)] // not every test binary uses it
pub struct Netns(pub String);

#[allow(dead_code)]
impl Netns {
    pub fn with_veth(tag: &str) -> Netns {
        require("ip");
        let name = format!("qx-{tag}-{}", std::process::id());
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let ns = Netns(name);
        let n = ns.0.as_str();
        for args in [
            &["netns", "add", n][..],
            &[
                "-n", n, "link", "add", "a0", "type", "veth", "peer", "name", "b0",
            ],
            &["-n", n, "link", "set", "a0", "up"],
            &["-n", n, "link", "set", "b0", "up"],
        ] {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .expect("run ip");
            assert!(
                out.status.success(),
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

/// Two namespaces `a` and `b` joined by a veth pair `a0` (in a) ↔ `b0` (in b), with
/// 10.77.0.1/24 + fd77::1/64 on a0 and 10.77.0.2/24 + fd77::2/64 on b0, everything up;
/// both deleted on drop, also when the test panics. For traffic tests: what leaves a0 is
/// shaped by a0's root qdisc, what arrives at a0 passes its ingress hook.
#[allow(dead_code)]
pub struct NetnsPair {
    pub a: String,
    pub b: String,
}

#[allow(dead_code)]
impl NetnsPair {
    pub fn new(tag: &str) -> NetnsPair {
        let pair = NetnsPair {
            a: format!("qx-{tag}-a-{}", std::process::id()),
            b: format!("qx-{tag}-b-{}", std::process::id()),
        };
        for ns in [&pair.a, &pair.b] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
        let (a, b) = (pair.a.as_str(), pair.b.as_str());
        for args in [
            &["netns", "add", a][..],
            &["netns", "add", b],
            &[
                "-n", a, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", b,
            ],
            &["-n", a, "addr", "add", "10.77.0.1/24", "dev", "a0"],
            &["-n", b, "addr", "add", "10.77.0.2/24", "dev", "b0"],
            &["-n", a, "addr", "add", "fd77::1/64", "dev", "a0", "nodad"],
            &["-n", b, "addr", "add", "fd77::2/64", "dev", "b0", "nodad"],
            &["-n", a, "link", "set", "a0", "up"],
            &["-n", b, "link", "set", "b0", "up"],
            &["-n", a, "link", "set", "lo", "up"],
            &["-n", b, "link", "set", "lo", "up"],
        ] {
            run_ok("ip", args);
        }
        pair
    }

    /// `ip -n NS ARGS` must succeed; its stdout.
    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["-n", ns];
        v.extend_from_slice(args);
        run_ok("ip", &v)
    }

    /// `tc -n NS ARGS` must succeed; its stdout.
    pub fn tc(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["-n", ns];
        v.extend_from_slice(args);
        run_ok("tc", &v)
    }

    /// Feeds `lines` to `tc -n NS -batch -`; panics with tc's message on failure.
    pub fn tc_batch(&self, ns: &str, lines: &[String]) {
        use std::io::Write;
        let mut child = std::process::Command::new("tc")
            .args(["-n", ns, "-batch", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tc -batch");
        let mut input = lines.join("\n");
        input.push('\n');
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write batch");
        let out = child.wait_with_output().expect("tc -batch");
        assert!(
            out.status.success(),
            "tc -batch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A TCP flow from `from` to `addr` (an address in the other namespace) for `secs`
    /// seconds; iperf3's receiver goodput converted to the wire rate htb shapes
    /// (× (MSS + headers) / MSS: Ethernet 14 + IP 20/40 + TCP with timestamps 32).
    pub fn tcp_wire_rate(&self, from: &str, to: &str, addr: &str, port: u16, secs: u32) -> f64 {
        self.tcp_wire_rate_with(from, to, addr, port, secs, &[])
    }

    /// [`tcp_wire_rate`] with more iperf3 client options (`-B SRC`, `--dscp EF`).
    pub fn tcp_wire_rate_with(
        &self,
        from: &str,
        to: &str,
        addr: &str,
        port: u16,
        secs: u32,
        extra: &[&str],
    ) -> f64 {
        // `ip netns exec` starts even when iperf3 is absent, so without this the
        // first symptom would be an empty JSON reply, not the missing program.
        require("iperf3");
        let port_s = port.to_string();
        let server = std::process::Command::new("ip")
            .args(["netns", "exec", to, "iperf3", "-s", "-1", "-p", &port_s])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ip netns exec iperf3 -s");
        let _guard = KillOnDrop(server);
        for _ in 0..100 {
            let ss = std::process::Command::new("ip")
                .args(["netns", "exec", to, "ss", "-Hltn"])
                .output()
                .expect("ss");
            if String::from_utf8_lossy(&ss.stdout).contains(&format!(":{port} ")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = std::process::Command::new("ip")
            .args([
                "netns", "exec", from, "iperf3", "-J", "-c", addr, "-p", &port_s,
            ])
            .args(["-t", &secs.to_string(), "-O", "1"])
            .args(extra)
            .output()
            .expect("iperf3 client");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("iperf3 -J: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        let bps = v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or_else(|| panic!("no receiver rate in {v}"));
        let v6 = addr.contains(':');
        let mss =
            v["start"]["tcp_mss_default"]
                .as_f64()
                .unwrap_or(if v6 { 1428.0 } else { 1448.0 });
        let headers = if v6 { 86.0 } else { 66.0 };
        bps * (mss + headers) / mss
    }
}

impl NetnsPair {
    /// The ATC-style two lab devices on b0 (10.77.0.2 and .3, fd77::2 and ::3), shaped at
    /// 2 and 6 mbit on a0: both flows at once, over IPv4 and then IPv6, so each gets its
    /// own class's rate and not a share of one; each within ±5 %.
    #[allow(dead_code)]
    pub fn assert_two_lab_devices(&self) {
        let within = |got: f64, mbit: f64| (got / 1e6 - mbit).abs() <= mbit * 0.05;
        for (a2, a3) in [("10.77.0.2", "10.77.0.3"), ("fd77::2", "fd77::3")] {
            let (r2, r3) = std::thread::scope(|s| {
                let t2 = s.spawn(|| self.tcp_wire_rate(&self.a, &self.b, a2, 5201, 6));
                let t3 = s.spawn(|| self.tcp_wire_rate(&self.a, &self.b, a3, 5202, 6));
                (t2.join().expect("flow 2"), t3.join().expect("flow 3"))
            });
            eprintln!(
                "{a2}: {:.3} mbit (class 2 mbit), {a3}: {:.3} mbit (class 6 mbit)",
                r2 / 1e6,
                r3 / 1e6
            );
            assert!(within(r2, 2.0), "{a2}: {r2} bit/s, want 2 mbit ±5 %");
            assert!(within(r3, 6.0), "{a3}: {r3} bit/s, want 6 mbit ±5 %");
        }
    }

    /// Two TCP flows at once from b to a (a's download: what arrives at a0), one from
    /// 10.77.0.2 on `ports.0` and one from 10.77.0.3 (the caller adds it to b0) on `ports.1`;
    /// their wire rates in bit/s.
    #[allow(dead_code)]
    pub fn download_pair(&self, ports: (u16, u16), secs: u32) -> (f64, f64) {
        std::thread::scope(|s| {
            let flow = |port: u16, src: &'static str| {
                s.spawn(move || {
                    self.tcp_wire_rate_with(&self.b, &self.a, "10.77.0.1", port, secs, &["-B", src])
                })
            };
            let (a, b) = (flow(ports.0, "10.77.0.2"), flow(ports.1, "10.77.0.3"));
            (
                a.join().expect("flow from .2"),
                b.join().expect("flow from .3"),
            )
        })
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_ok(prog: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
    }
}

/// Skips (visibly) a test that needs root. Use with `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("SKIP: {} needs root (network namespaces)", module_path!());
            return;
        }
    };
}

impl Netns {
    /// Everything tc prints with `-d` for `devs` in this namespace (qdiscs, classes, and
    /// filters on the root, on `ffff:` and on clsact's two hooks), as a set: tc's dump order
    /// is not stable, and a restore or a refusal is judged by equality with an earlier dump.
    /// A device that does not exist contributes nothing.
    #[allow(dead_code)]
    pub fn dump(&self, devs: &[&str]) -> std::collections::BTreeSet<String> {
        let mut set = std::collections::BTreeSet::new();
        for &dev in devs {
            let shows: [&[&str]; 6] = [
                &["qdisc", "show", "dev", dev],
                &["class", "show", "dev", dev],
                &["filter", "show", "dev", dev],
                &["filter", "show", "dev", dev, "parent", "ffff:"],
                &["filter", "show", "dev", dev, "ingress"],
                &["filter", "show", "dev", dev, "egress"],
            ];
            for args in shows {
                let o = std::process::Command::new("tc")
                    .args(["-n", &self.0, "-d"])
                    .args(args)
                    .output()
                    .expect("run tc");
                for l in String::from_utf8_lossy(&o.stdout).lines() {
                    set.insert(format!("{dev} {}: {}", args.join(" "), l.trim_end()));
                }
            }
        }
        set
    }
}

/// A throw-away namespace with its veth pair and a scratch directory for policies, and
/// qosctl run with `--netns` there: what the real-kernel tests of apply's safety share.
#[allow(dead_code)]
pub struct Case {
    pub ns: Netns,
    pub dir: tempfile::TempDir,
}

#[allow(dead_code)]
impl Case {
    pub fn new(tag: &str) -> Case {
        Case {
            ns: Netns::with_veth(tag),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes a policy file into the scratch directory.
    pub fn policy(&self, name: &str, text: &str) -> std::path::PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write policy");
        p
    }

    pub fn qosctl(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
            .args(["--netns", &self.ns.0])
            .args(args)
            .output()
            .expect("run qosctl")
    }
}

/// A small htb tree on `a0` with kernel-default leaves (pfifo) that this machine's kernel
/// has; `bulk` is the last table, so a test can append keys to it.
#[allow(dead_code)]
pub const LAB_POLICY: &str = r#"
[interfaces.lab]
device = "a0"
rate = "100mbit"
default = "bulk"
leaf = "pfifo"

[interfaces.lab.classes.voice]
id = 0x10
rate = "10%"
prio = 0

[interfaces.lab.classes.bulk]
id = 0x30
rate = "20%"
ceil = "90%"
prio = 2
"#;
/// One device's state from a capture in tests/fixtures/tc/DIR, assembled as `read_device`
/// does: the device's entries of QDISCS (a `tc -j qdisc show` of all devices), then the
/// class dump and the filter dumps (file, parent) when given.
#[allow(dead_code)]
pub fn captured_state(
    dir: &str,
    qdiscs: &str,
    dev: &str,
    classes: Option<&str>,
    filters: &[(&str, &str)],
) -> qosctl::model::DeviceState {
    use qosctl::tc::read::{parse_classes, parse_filters, parse_qdiscs};
    let read = |file: &str| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tc")
            .join(dir)
            .join(file);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let all: serde_json::Value = serde_json::from_str(&read(qdiscs)).expect("qdiscs are JSON");
    let mine: Vec<_> = all
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter(|q| q["dev"] == dev)
        .cloned()
        .collect();
    let mut st = qosctl::model::DeviceState {
        device: dev.to_string(),
        qdiscs: parse_qdiscs(&serde_json::to_string(&mine).unwrap()).unwrap(),
        ..Default::default()
    };
    if let Some(c) = classes {
        st.classes = parse_classes(&read(c)).unwrap();
    }
    for (file, parent) in filters {
        let parent = qosctl::model::Handle::parse(parent).expect("a handle");
        st.filters
            .extend(parse_filters(&read(file), parent).unwrap());
    }
    st
}

/// The program a test is about to run, found on PATH (or an absolute path that must exist).
/// A missing one fails the test up front, naming it and the script that should have
/// installed it, instead of a later assertion about traffic that was never sent.
/// tests/deps.rs checks that every program named here has a `need` line in
/// tests/install-deps.sh.
#[allow(dead_code)]
pub fn require(program: &str) -> std::path::PathBuf {
    let found = if program.starts_with('/') {
        let p = std::path::PathBuf::from(program);
        p.is_file().then_some(p)
    } else {
        which::which(program).ok()
    };
    found.unwrap_or_else(|| panic!("{program} is missing: tests/install-deps.sh must install it"))
}

/// `require` for each of `programs`.
#[allow(dead_code)]
pub fn require_all(programs: &[&str]) {
    for p in programs {
        require(p);
    }
}

/// Runs `bench/run.sh ARGS --qosctl <this qosctl> --json FILE` and returns the results and
/// the script's output (for assertion messages); fails the test, with that output, when the
/// script fails. For the tests that run the benchmark (bench_smoke, match_throughput).
#[allow(dead_code)] // not every test binary uses it
pub fn bench_run(args: &[&str]) -> (serde_json::Value, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("results.json");
    let out = std::process::Command::new("bash")
        .arg(root.join("bench/run.sh"))
        .args(args)
        .arg("--qosctl")
        .arg(env!("CARGO_BIN_EXE_qosctl"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("bench/run.sh runs");
    let ctx = format!(
        "bench output:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "bench/run.sh {} failed ({}): {ctx}",
        args.join(" "),
        out.status
    );
    let text = std::fs::read_to_string(&json).expect("bench/run.sh --json wrote its results");
    (serde_json::from_str(&text).expect("results are JSON"), ctx)
}

/// A copy of the qosctl under test in `dir`, runnable by any user, for the tests that run
/// it as nobody: `CARGO_BIN_EXE_qosctl` itself is out of nobody's reach when the target
/// dir sits below a directory only its owner may enter, which is where a fresh clone made
/// as root lives (/root is 0700, and so is what `mktemp -d` makes). `dir` must be
/// reachable by nobody.
#[allow(dead_code)]
pub fn qosctl_for_anyone(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("qosctl");
    std::fs::copy(env!("CARGO_BIN_EXE_qosctl"), &p).expect("copy qosctl");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A run's stdout and stderr, for assertion messages.
#[allow(dead_code)]
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The output of a qosctl run that must succeed.
#[allow(dead_code)]
pub fn ok(o: std::process::Output) -> String {
    let t = text(&o);
    assert!(o.status.success(), "qosctl failed:\n{t}");
    t
}

/// `ip -n NS -j link show type ifb` → (name, alias).
#[allow(dead_code)]
pub fn ifbs(ns: &str) -> Vec<(String, String)> {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-j", "link", "show", "type", "ifb"])
        .output()
        .expect("ip is missing: tests/install-deps.sh must install it");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|l| {
                    (
                        l["ifname"].as_str().unwrap_or_default().to_string(),
                        l["ifalias"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
