//! qosctl against the real kernel, in throw-away network namespaces.
//!
//! Each test makes two namespaces joined by a veth pair (`a0` ↔ `b0`), applies policies to
//! `a0` with `qosctl --netns`, reads back with plain `tc`, and deletes both namespaces when
//! it ends, also when it fails (Drop). Needs root; without it every test says SKIP.
//! This machine's kernel has htb, pfifo, bfifo and tbf, so these tests use those leaves;
//! netem, fw, fq_codel, cake and sfq are proven by the kernel-lab tier.

mod common;
use common::is_root;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static SEQ: AtomicUsize = AtomicUsize::new(0);

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: {} needs root (network namespaces)", module_path!());
            return;
        }
        common::require_all(&["ip", "tc"]);
    };
}

/// Two namespaces and a veth pair between them; deleted on drop.
struct Lab {
    ns: String,
    peer: String,
    net: usize,
    dir: tempfile::TempDir,
}

fn sh(cmd: &[&str]) -> Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &[&str]) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Lab {
    fn new() -> Lab {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let lab = Lab {
            ns: format!("qxk-a-{id}"),
            peer: format!("qxk-b-{id}"),
            net: n % 250 + 1,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        ok(&["ip", "netns", "add", &lab.ns]);
        ok(&["ip", "netns", "add", &lab.peer]);
        ok(&[
            "ip", "-n", &lab.ns, "link", "add", "a0", "type", "veth", "peer", "name", "b0",
            "netns", &lab.peer,
        ]);
        let a = format!("10.231.{}.1/24", lab.net);
        let b = format!("10.231.{}.2/24", lab.net);
        ok(&["ip", "-n", &lab.ns, "addr", "add", &a, "dev", "a0"]);
        ok(&["ip", "-n", &lab.peer, "addr", "add", &b, "dev", "b0"]);
        for (ns, dev) in [
            (&lab.ns, "a0"),
            (&lab.peer, "b0"),
            (&lab.ns, "lo"),
            (&lab.peer, "lo"),
        ] {
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    fn peer_addr(&self) -> String {
        format!("10.231.{}.2", self.net)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write policy");
        p
    }

    /// `tc -n NS ARGS` → stdout.
    fn tc(&self, args: &[&str]) -> String {
        let mut v = vec!["tc", "-n", &self.ns];
        v.extend_from_slice(args);
        ok(&v)
    }

    /// A tc that logs every `-batch` input it is given to `batch.log`, then runs the real tc:
    /// how the tests know exactly which mutating commands qosctl issued.
    fn logging_tc(&self) -> PathBuf {
        let real = which::which("tc").expect("tc on PATH");
        let log = self.dir.path().join("batch.log");
        let script = self.dir.path().join("tc-logging");
        let text = format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = -batch ]; then\n    tee -a '{}' | '{}' \"$@\"\n    exit $?\n  fi\ndone\nexec '{}' \"$@\"\n",
            log.display(),
            real.display(),
            real.display()
        );
        std::fs::write(&script, text).expect("write wrapper");
        ok(&["chmod", "+x", script.to_str().expect("utf-8 path")]);
        script
    }

    /// Mutating lines sent to `tc -batch` since the last call. Read-only `show` lines
    /// (qosctl verifies small plans with a batch of them) go to `take_show_log`.
    fn take_batch_log(&self) -> Vec<String> {
        let log = self.dir.path().join("batch.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let (shows, changes): (Vec<String>, Vec<String>) = text
            .lines()
            .map(str::to_string)
            .partition(|l| l.split_whitespace().nth(1) == Some("show"));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("shows.log"))
            .expect("shows.log");
        for l in shows {
            std::io::Write::write_all(&mut f, format!("{l}\n").as_bytes()).expect("write");
        }
        changes
    }

    /// `show` lines qosctl sent through `tc -batch`, as split off by `take_batch_log`.
    fn take_show_log(&self) -> Vec<String> {
        let log = self.dir.path().join("shows.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect()
    }

    fn qosctl(&self, args: &[&str]) -> Output {
        let tc = self.logging_tc();
        Command::new(env!("CARGO_BIN_EXE_qosctl"))
            .arg("--netns")
            .arg(&self.ns)
            .arg("--tc")
            .arg(&tc)
            .args(args)
            .output()
            .expect("run qosctl")
    }

    /// `apply --dry-run --detailed-exitcode`: exit 0 in sync, 2 changes pending.
    fn dry_run(&self, policy: &Path) -> Output {
        self.qosctl(&[
            "apply",
            "--dry-run",
            "--detailed-exitcode",
            policy.to_str().expect("utf-8"),
        ])
    }

    fn apply(&self, policy: &Path) -> (Output, Vec<String>) {
        let o = self.qosctl(&["apply", policy.to_str().expect("utf-8")]);
        (o, self.take_batch_log())
    }

    /// Everything tc shows of a0 except counters: for before/after comparisons.
    fn dump(&self) -> String {
        let mut s = self.tc(&["-d", "qdisc", "show", "dev", "a0"]);
        s += &self.tc(&["-d", "class", "show", "dev", "a0"]);
        s += &self.tc(&["-d", "filter", "show", "dev", "a0"]);
        // Sort: the kernel's dump order is not part of the state.
        let mut blocks: Vec<&str> = s.split('\n').collect();
        blocks.sort();
        blocks.join("\n")
    }

    /// Sent bytes of class `handle` (from `tc -s class show`, text on iproute2 ≤ 6.1).
    fn class_bytes(&self, handle: &str) -> u64 {
        let out = self.tc(&["-s", "class", "show", "dev", "a0", "classid", handle]);
        out.split_whitespace()
            .skip_while(|w| *w != "Sent")
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no byte counter for {handle} in {out}"))
    }

    /// A UDP flow from a0 to b0 at `mbit` for `secs` (iperf3), in the background.
    fn udp_flow(&self, mbit: u32, secs: u32) -> Flow {
        common::require_all(&["iperf3", "ss"]);
        let port = (5200 + self.net).to_string();
        let server = Command::new("ip")
            .args([
                "netns", "exec", &self.peer, "iperf3", "-s", "-1", "-p", &port,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 server (apt-get install iperf3)");
        // Wait until the server listens (a fixed sleep is too short on a busy machine).
        for _ in 0..100 {
            let ss = sh(&["ip", "netns", "exec", &self.peer, "ss", "-Hltn"]);
            if String::from_utf8_lossy(&ss.stdout).contains(&format!(":{port} ")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let client = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "iperf3",
                "-u",
                "-c",
                &self.peer_addr(),
                "-p",
                &port,
                "-b",
                &format!("{mbit}M"),
                "-t",
                &secs.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 client");
        Flow {
            children: vec![client, server],
        }
    }
}

struct Flow {
    children: Vec<Child>,
}

impl Drop for Flow {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair and all its tc state.
        let _ = sh(&["ip", "netns", "del", &self.ns]);
        let _ = sh(&["ip", "netns", "del", &self.peer]);
        // qosctl's per-namespace lock file.
        for d in ["/run/lock", "/run", "/tmp"] {
            let _ = std::fs::remove_file(format!("{d}/qosctl.{}.lock", self.ns));
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const BASE: &str = r#"
[interfaces.lab]
device = "a0"
rate = "100mbit"
default = "bulk"
leaf = "pfifo"

[interfaces.lab.classes.voice]
id = 0x10
rate = "10%"
ceil = "50%"
prio = 0

[interfaces.lab.classes.web]
id = 0x20
rate = "30mbit"
ceil = "100%"
prio = 1
leaf = { kind = "bfifo", limit = "64KiB" }

[interfaces.lab.classes.bulk]
id = 0x30
rate = "20%"
ceil = "90%"
prio = 2
leaf = { kind = "tbf", rate = "15mbit", burst = "20KiB", latency = "50ms" }
"#;

#[test]
fn apply_matches_plain_tc_and_reapply_is_a_no_op() {
    need_root!();
    let lab = Lab::new();
    let p = lab.write("base.toml", BASE);

    let (o, batch) = lab.apply(&p);
    assert!(
        o.status.success(),
        "apply failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    // root qdisc + 4 classes (root class and three) + 3 leaves, in one batch.
    assert_eq!(batch.len(), 8, "batch: {batch:#?}");

    // Read back with plain tc, independently of qosctl's reader.
    let q: serde_json::Value =
        serde_json::from_str(&lab.tc(&["-j", "qdisc", "show", "dev", "a0"])).expect("json");
    let q = q.as_array().expect("array");
    let by_handle = |h: &str| {
        q.iter()
            .find(|x| x["handle"] == h)
            .unwrap_or_else(|| panic!("no qdisc {h}: {q:?}"))
    };
    assert_eq!(by_handle("1:")["kind"], "htb");
    assert_eq!(by_handle("1:")["options"]["default"], "0x30");
    assert_eq!(by_handle("10:")["kind"], "pfifo");
    assert_eq!(by_handle("20:")["kind"], "bfifo");
    assert_eq!(by_handle("20:")["options"]["limit"], 65536);
    assert_eq!(by_handle("30:")["kind"], "tbf");
    assert_eq!(by_handle("30:")["options"]["rate"], 15_000_000 / 8);

    let classes = lab.tc(&["class", "show", "dev", "a0"]);
    for want in [
        "class htb 1:1 root rate 100Mbit ceil 100Mbit",
        "class htb 1:10 parent 1:1 leaf 10: prio 0 rate 10Mbit ceil 50Mbit",
        "class htb 1:20 parent 1:1 leaf 20: prio 1 rate 30Mbit ceil 100Mbit",
        "class htb 1:30 parent 1:1 leaf 30: prio 2 rate 20Mbit ceil 90Mbit",
    ] {
        assert!(classes.contains(want), "missing `{want}` in:\n{classes}");
    }

    // Second apply: nothing to do, and tc -batch is not even run.
    let (o, batch) = lab.apply(&p);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(batch.is_empty(), "re-apply issued {batch:?}");
    assert!(stdout(&o).contains("In sync"), "{}", stdout(&o));

    // And the dry run agrees, with the documented exit code.
    let o = lab.dry_run(&p);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn one_rate_change_is_one_class_change_and_counters_survive_traffic() {
    need_root!();
    let lab = Lab::new();
    let p = lab.write("base.toml", BASE);
    let (o, _) = lab.apply(&p);
    assert!(o.status.success(), "{}", stderr(&o));

    // Traffic through the default class (bulk, 1:30) while its rate changes.
    // The flow outlasts the test (it is killed when `_flow` drops): on a busy machine the
    // steps below can take seconds, and a flow that ended early would read as a stall.
    let _flow = lab.udp_flow(4, 20);
    std::thread::sleep(Duration::from_millis(1500));
    let before = lab.class_bytes("1:30");
    assert!(before > 0, "no traffic reached class 1:30");

    let changed = BASE.replace("rate = \"20%\"", "rate = \"25%\"");
    let p2 = lab.write("changed.toml", &changed);
    let dry = lab.dry_run(&p2);
    assert_eq!(dry.status.code(), Some(2), "{}", stdout(&dry));
    assert!(
        stdout(&dry).contains("rate 20mbit -> 25mbit"),
        "{}",
        stdout(&dry)
    );

    let (o, batch) = lab.apply(&p2);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        batch,
        ["class change dev a0 parent 1:1 classid 1:30 htb rate 25000000bit ceil 90000000bit prio 2"]
    );
    // Verified by reading back only the changed class.
    assert_eq!(lab.take_show_log(), ["class show dev a0 classid 1:30"]);
    let at_change = lab.class_bytes("1:30");
    std::thread::sleep(Duration::from_millis(1000));
    let after = lab.class_bytes("1:30");
    assert!(
        at_change >= before,
        "counter reset by the change: {before} -> {at_change}"
    );
    assert!(
        after > at_change,
        "traffic stopped after the change: {at_change} -> {after}"
    );
    assert!(lab
        .tc(&["class", "show", "dev", "a0", "classid", "1:30"])
        .contains("rate 25Mbit"));
}

/// burst and cburst at interface level set the root class 1:1 (under virtualisation and at
/// high rates, htb's default one-MTU burst on the root can keep children below their ceil).
#[test]
fn interface_burst_sets_the_root_class_and_changes_in_place() {
    need_root!();
    let lab = Lab::new();
    let with = |b: &str| {
        BASE.replace(
            "rate = \"100mbit\"\n",
            &format!("rate = \"100mbit\"\nburst = \"{b}\"\ncburst = \"{b}\"\n"),
        )
    };
    let p = lab.write("burst.toml", &with("64KiB"));
    let (o, batch) = lab.apply(&p);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        batch.iter().any(
            |l| l.starts_with("class add dev a0 parent 1: classid 1:1 htb")
                && l.contains(" burst 65536 cburst 65536")
        ),
        "{batch:?}"
    );
    // The kernel keeps bursts as time ticks: 64 KiB reads back as 65512b here.
    let bursts = |text: &str| -> Vec<u64> {
        let w: Vec<&str> = text.split_whitespace().collect();
        w.windows(2)
            .filter(|p| p[0] == "burst" || p[0] == "cburst")
            .map(|p| {
                let v = p[1].trim_end_matches('b');
                let (n, mul) = match v.strip_suffix('K') {
                    Some(n) => (n, 1024),
                    None => v.strip_suffix('M').map_or((v, 1), |n| (n, 1024 * 1024)),
                };
                n.parse::<u64>().expect(p[1]) * mul
            })
            .collect()
    };
    let near =
        |v: &[u64], want: u64| v.len() == 2 && v.iter().all(|&b| b.abs_diff(want) <= want / 100);
    let root = lab.tc(&["class", "show", "dev", "a0", "classid", "1:1"]);
    assert!(near(&bursts(&root), 65536), "{root}");
    // Read back in ticks, the burst compares equal: nothing pending.
    let dry = lab.dry_run(&p);
    assert_eq!(dry.status.code(), Some(0), "{}", stdout(&dry));

    // A new burst is one class change of 1:1; the children are untouched.
    let p2 = lab.write("burst2.toml", &with("128KiB"));
    let (o, batch) = lab.apply(&p2);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batch.len(), 1, "{batch:?}");
    assert!(
        batch[0].starts_with("class change dev a0 parent 1: classid 1:1 htb")
            && batch[0].contains(" burst 131072 cburst 131072"),
        "{batch:?}"
    );
    let root = lab.tc(&["class", "show", "dev", "a0", "classid", "1:1"]);
    assert!(near(&bursts(&root), 131072), "{root}");
    let dry = lab.dry_run(&p2);
    assert_eq!(dry.status.code(), Some(0), "{}", stdout(&dry));
}

fn many_classes(n: usize) -> String {
    let mut s = String::from(
        "[interfaces.lab]\ndevice = \"a0\"\nrate = \"1gbit\"\ndefault = \"c0\"\nleaf = \"pfifo\"\n",
    );
    for i in 0..n {
        s += &format!("\n[interfaces.lab.classes.c{i}]\nrate = \"1mbit\"\nceil = \"100%\"\n");
    }
    s
}

#[test]
fn adding_one_class_to_200_touches_only_it_and_its_leaf() {
    need_root!();
    let lab = Lab::new();
    let p = lab.write("200.toml", &many_classes(200));
    let (o, batch) = lab.apply(&p);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batch.len(), 1 + 1 + 200 + 200);

    let p2 = lab.write("201.toml", &many_classes(201));
    let (o, batch) = lab.apply(&p2);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batch.len(), 2, "{batch:#?}");
    assert!(
        batch[0].starts_with("class add dev a0 parent 1:1 classid 1:"),
        "{batch:?}"
    );
    assert!(
        batch[1].starts_with("qdisc add dev a0 parent 1:"),
        "{batch:?}"
    );
    assert!(batch[1].ends_with("pfifo"), "{batch:?}");

    // …and removing it again is one class delete (its leaf goes with it).
    let (o, batch) = lab.apply(&p);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batch.len(), 1, "{batch:#?}");
    assert!(
        batch[0].starts_with("class del dev a0 classid 1:"),
        "{batch:?}"
    );
    let (_, batch) = lab.apply(&p);
    assert!(batch.is_empty());
}

#[test]
fn changing_the_default_class_rebuilds_and_converges() {
    need_root!();
    let lab = Lab::new();
    let p = lab.write("base.toml", BASE);
    assert!(lab.apply(&p).0.status.success());
    let p2 = lab.write(
        "default.toml",
        &BASE.replace("default = \"bulk\"", "default = \"web\""),
    );
    let dry = lab.qosctl(&["apply", "--dry-run", p2.to_str().unwrap()]);
    assert!(
        stdout(&dry).contains("htb default changes 30 -> 20"),
        "{}",
        stdout(&dry)
    );
    let (o, batch) = lab.apply(&p2);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batch[0], "qdisc del dev a0 root");
    let q = lab.tc(&["qdisc", "show", "dev", "a0"]);
    assert!(q.contains("default 0x20"), "{q}");
    assert!(lab.apply(&p2).1.is_empty());
}

#[test]
fn a_failing_fifth_command_leaves_the_interface_exactly_as_it_was() {
    need_root!();
    let lab = Lab::new();
    let p = lab.write("base.toml", BASE);
    assert!(lab.apply(&p).0.status.success());
    let before = lab.dump();

    // Four class changes/adds run first; the 5th line adds an fq_codel leaf, which this
    // kernel does not have ("Specified qdisc kind is unknown"): a real kernel failure.
    let broken = BASE.replace("rate = \"30mbit\"", "rate = \"31mbit\"")
        + r#"
[interfaces.lab.classes.extra1]
id = 0x41
rate = "1mbit"
leaf = "fq_codel"
[interfaces.lab.classes.extra2]
id = 0x42
rate = "1mbit"
[interfaces.lab.classes.extra3]
id = 0x43
rate = "1mbit"
"#;
    let p2 = lab.write("broken.toml", &broken);
    let (o, batch) = lab.apply(&p2);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(
        batch[4].contains("fq_codel"),
        "5th line is not the fq_codel leaf: {batch:#?}"
    );
    assert!(
        err.contains(&format!("tc {}", batch[4])),
        "error does not show the failing command: {err}"
    );
    assert!(err.contains("line 5 of 7 of the batch"), "{err}");
    assert!(
        !err.contains("quantum of class"),
        "harmless tc warnings in the error: {err}"
    );
    assert!(err.contains("restored"), "{err}");
    assert_eq!(lab.dump(), before, "interface not restored");
}

#[test]
fn missing_device_changes_nothing_anywhere() {
    need_root!();
    let lab = Lab::new();
    let two = format!(
        "{BASE}\n[interfaces.ghost]\ndevice = \"nosuchdev0\"\nrate = \"10mbit\"\ndefault = \"x\"\nleaf = \"pfifo\"\n[interfaces.ghost.classes.x]\nrate = \"1mbit\"\n"
    );
    let p = lab.write("two.toml", &two);
    let (o, batch) = lab.apply(&p);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nosuchdev0"), "{}", stderr(&o));
    assert!(batch.is_empty(), "{batch:?}");
    assert!(!lab.tc(&["qdisc", "show", "dev", "a0"]).contains("htb"));
}

#[test]
fn reset_returns_to_the_kernel_default_and_is_idempotent() {
    need_root!();
    let lab = Lab::new();
    let p = lab.write("base.toml", BASE);
    assert!(lab.apply(&p).0.status.success());
    lab.take_batch_log();
    let o = lab.qosctl(&["reset", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lab.take_batch_log(), ["qdisc del dev a0 root"]);
    let q = lab.tc(&["qdisc", "show", "dev", "a0"]);
    assert!(!q.contains("htb") && !q.contains("pfifo"), "{q}");
    let o = lab.qosctl(&["reset", "--dev", "a0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("already at the kernel default"),
        "{}",
        stdout(&o)
    );
    assert!(
        lab.take_batch_log().is_empty(),
        "reset of a default device ran tc"
    );
}

#[test]
fn apply_without_cap_net_admin_stops_before_changing_anything() {
    need_root!();
    common::require("setpriv");
    let lab = Lab::new();
    let p = lab.write("base.toml", BASE);
    let mut perms = std::fs::metadata(lab.dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(lab.dir.path(), perms).unwrap();
    let qosctl = common::qosctl_for_anyone(lab.dir.path());
    // Inside the lab namespace (entered as root), then as nobody with no capabilities:
    // qosctl sees only the lab's devices, so nothing else is ever at stake.
    let run = |args: &[&str]| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns,
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
            ])
            .args(["--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
            .arg(&qosctl)
            .args(args)
            .arg(&p)
            .output()
            .unwrap()
    };
    let dry = run(&["apply", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(
        dry.status.code(),
        Some(2),
        "{}{}",
        stdout(&dry),
        stderr(&dry)
    );
    assert!(stdout(&dry).contains("+ qdisc 1: root"), "{}", stdout(&dry));
    let o = run(&["apply"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("CAP_NET_ADMIN"), "{}", stderr(&o));
    let q = lab.tc(&["qdisc", "show", "dev", "a0"]);
    assert!(!q.contains("htb"), "a0 was changed: {q}");
}

/// The renderer and the reader agree: a model written with `tc -batch` reads back as the
/// same model (no diff), and a changed model diffs to exactly the change.
#[test]
fn rendered_model_reads_back_identical() {
    use qosctl::model::*;
    use qosctl::units::{Rate, Size, Time};
    need_root!();
    let lab = Lab::new();
    let class = |minor: u16, parent: Option<u16>, rate: u64, ceil: u64, prio: Option<u32>| {
        let h = |m| Handle::new(1, m);
        Class {
            prio,
            ..Class::new(h(minor), parent.map(h), Rate(rate), Rate(ceil))
        }
    };
    let leaf = |minor: u16, kind: QdiscKind| Qdisc {
        handle: Handle::qdisc(minor),
        parent: Parent::Class(Handle::new(1, minor)),
        kind,
        name: None,
        stats: None,
    };
    let mut want = DeviceState {
        device: "a0".into(),
        qdiscs: vec![
            Qdisc {
                handle: Handle::qdisc(1),
                parent: Parent::Root,
                kind: QdiscKind::Htb(Htb {
                    default: 0x12,
                    r2q: None,
                }),
                name: None,
                stats: None,
            },
            leaf(0x11, QdiscKind::Pfifo { limit: Some(300) }),
            leaf(
                0x12,
                QdiscKind::Bfifo {
                    limit: Some(Size(30_000)),
                },
            ),
            leaf(
                0xa0,
                QdiscKind::Tbf(Tbf {
                    rate: Rate(5_000_000),
                    burst: Size(10_240),
                    limit: None,
                    latency: Some(Time(50_000_000)),
                }),
            ),
        ],
        classes: vec![
            class(1, None, 123_456_789, 123_456_789, None),
            class(0x10, Some(1), 60_000_000, 100_000_000, None),
            class(0x11, Some(0x10), 33_333, 50_000_000, Some(3)),
            class(0x12, Some(0x10), 1_500_000, 60_000_000, Some(0)),
            class(0xa0, Some(1), 5_000_000, 5_000_000, Some(7)),
        ],
        filters: vec![],
    };
    want.classes[4].burst = Some(Size(15 * 1024));
    want.classes[4].quantum = Some(Size(1514));
    let tc = qosctl::tc::Tc::new(which::which("tc").unwrap(), Some(lab.ns.clone()));
    let live = qosctl::tc::read::read_device(&tc, "a0").expect("read default");
    assert!(live.is_default(), "fresh veth is not default: {live:?}");
    let ops = qosctl::plan::diff_device(&want, &live);
    let lines: Vec<String> = ops.iter().map(|o| qosctl::plan::command("a0", o)).collect();
    tc.batch(&lines).expect("apply rendered model");
    let back = qosctl::tc::read::read_device(&tc, "a0").expect("read back");
    let rest = qosctl::plan::diff_device(&want, &back);
    assert!(
        rest.is_empty(),
        "read back differs: {rest:#?}\nback: {back:#?}"
    );

    want.classes[2].rate = Rate(2_000_000);
    let rest = qosctl::plan::diff_device(&want, &back);
    assert_eq!(rest.len(), 1, "{rest:#?}");
}

#[test]
fn a_second_apply_waits_for_the_lock() {
    need_root!();
    let lab = Lab::new();
    let p = lab.write("base.toml", BASE);
    // The lock of the namespace's identity (src/lock.rs), in the directory qosctl made.
    let id = qosctl::lock::netns_identity(Some(&lab.ns)).unwrap();
    let dir = std::path::Path::new(qosctl::lock::DEFAULT_DIR);
    let _ =
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700).create(dir);
    let lock_path = qosctl::lock::lock_path(dir, id);
    let held = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.lock().unwrap();
    let tc = lab.logging_tc();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .args([
            "--netns",
            &lab.ns,
            "--tc",
            tc.to_str().unwrap(),
            "apply",
            p.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        child.try_wait().unwrap().is_none(),
        "apply did not wait for the lock"
    );
    assert!(
        lab.take_batch_log().is_empty(),
        "apply changed the kernel while locked out"
    );
    held.unlock().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for another qosctl"),
        "{}",
        stderr(&out)
    );
    assert_eq!(lab.take_batch_log().len(), 8);
    let _ = std::fs::remove_file(&lock_path);
}
