//! `[[….match]]` policies applied with qosctl on the real kernel (two namespaces, one veth):
//! an ATC-style lab where each device is a class by its `dst` address gets its class rate
//! (IPv4 and IPv6), ports, protocol and DSCP steer within one device, a re-apply is 0
//! commands, and each edit costs only its own commands.

#[macro_use]
mod common;
use common::NetnsPair;

use std::process::Output;

/// Class ids are pinned so the test can read their counters by handle.
const ATC: &str = r#"
[interfaces.lab]
device = "a0"
rate = "100mbit"
default = "other"
leaf = "pfifo"

[interfaces.lab.classes.phone]
id = 0x10
rate = "2mbit"
ceil = "2mbit"
burst = "16KiB"
cburst = "16KiB"
[[interfaces.lab.classes.phone.match]]
dst = "10.77.0.2"
[[interfaces.lab.classes.phone.match]]
dst = "fd77::2"

[interfaces.lab.classes.tablet]
id = 0x20
rate = "6mbit"
ceil = "6mbit"
burst = "16KiB"
cburst = "16KiB"
[[interfaces.lab.classes.tablet.match]]
dst = "10.77.0.3"
[[interfaces.lab.classes.tablet.match]]
dst = "fd77::3"

[interfaces.lab.classes.other]
id = 0x30
rate = "50mbit"
"#;

/// Within the phone: a port range, a protocol and a DSCP steer elsewhere.
const WITHIN: &str = r#"
[interfaces.lab.classes.rpc]
id = 0x40
rate = "1mbit"
ceil = "1mbit"
[[interfaces.lab.classes.rpc.match]]
dst = "10.77.0.2"
proto = "tcp"
dport = "5990-5999"

[interfaces.lab.classes.voip]
id = 0x50
rate = "1mbit"
[[interfaces.lab.classes.voip.match]]
dst = "10.77.0.3"
proto = "udp"

[interfaces.lab.classes.voice]
id = 0x60
rate = "1mbit"
[[interfaces.lab.classes.voice.match]]
dst = "10.77.0.2"
dscp = "EF"
"#;

struct Lab {
    pair: NetnsPair,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        common::require_all(&["ip", "tc", "iperf3", "ss"]);
        let pair = NetnsPair::new(tag);
        // The second lab device: another address on the peer.
        pair.ip(&pair.b, &["addr", "add", "10.77.0.3/24", "dev", "b0"]);
        pair.ip(
            &pair.b,
            &["addr", "add", "fd77::3/64", "dev", "b0", "nodad"],
        );
        Lab {
            pair,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn qosctl(&self, policy: &str, args: &[&str]) -> Output {
        let p = self.dir.path().join("policy.toml");
        std::fs::write(&p, policy).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
            .args(["--netns", &self.pair.a])
            .args(args)
            .arg(&p)
            .output()
            .expect("run qosctl")
    }

    /// Applies `policy`; the number of tc commands it ran (0 when in sync).
    fn apply(&self, policy: &str) -> usize {
        let out = self.qosctl(policy, &["apply"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains("In sync: nothing to change.") {
            return 0;
        }
        let n = text
            .lines()
            .find_map(|l| l.strip_prefix("Applied "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no \"Applied N commands\" in {text}"));
        assert!(text.contains("read back: in sync"), "{text}");
        n
    }

    /// The tc lines the plan of `policy` would run.
    fn commands(&self, policy: &str) -> Vec<String> {
        let out = self.qosctl(policy, &["apply", "--dry-run", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        let mut cmds = Vec::new();
        collect_commands(&v, &mut cmds);
        cmds
    }

    /// `qosctl import a0`: the live tree as a policy, which must apply with 0 commands.
    fn import_round_trip(&self) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
            .args(["--netns", &self.pair.a, "import", "a0"])
            .output()
            .expect("run qosctl import");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(self.apply(&text), 0, "the imported policy:\n{text}");
        text
    }

    fn class_bytes(&self, classid: &str) -> u64 {
        let out = self.pair.tc(
            &self.pair.a,
            &["-s", "class", "show", "dev", "a0", "classid", classid],
        );
        let t: Vec<&str> = out.split_whitespace().collect();
        let i = t.iter().position(|w| *w == "Sent").expect("Sent");
        t[i + 1].parse().unwrap()
    }
}

/// Every string under a `commands` key of the JSON plan.
fn collect_commands(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("commands", serde_json::Value::Array(a)) => {
                        out.extend(a.iter().filter_map(|s| s.as_str().map(str::to_string)))
                    }
                    _ => collect_commands(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_commands(x, out)),
        _ => {}
    }
}

#[test]
fn atc_lab_devices_by_dst_get_their_class_rates_and_edits_cost_their_own_commands() {
    need_root!();
    let lab = Lab::new("ma-atc");
    let n = lab.apply(ATC);
    assert!(n > 0);
    assert_eq!(lab.apply(ATC), 0, "re-apply");
    let p = &lab.pair;
    p.assert_two_lab_devices();

    // One address changed: its filter only. u32 keeps a filter's keys on `replace`, so that
    // is the old filter's delete and the new one's add, nothing else.
    let moved = ATC.replace("dst = \"10.77.0.3\"", "dst = \"10.77.0.4\"");
    let cmds = lab.commands(&moved);
    assert_eq!(cmds.len(), 2, "{cmds:#?}");
    assert!(cmds[0].starts_with("filter del dev a0 parent 1: protocol ip prio "));
    assert!(
        cmds[1].starts_with("filter add dev a0 parent 1: protocol ip prio ")
            && cmds[1].contains("match u32 0x0a4d0004 0xffffffff at 16 classid 1:20"),
        "{cmds:#?}"
    );
    assert_eq!(lab.apply(&moved), 2);
    assert_eq!(lab.apply(&moved), 0);

    // A match moved to another class: one `replace` of its filter.
    let retarget = moved.replace(
        "[[interfaces.lab.classes.tablet.match]]\ndst = \"fd77::3\"\n",
        "",
    ) + "[[interfaces.lab.classes.phone.match]]\ndst = \"fd77::3\"\n";
    let cmds = lab.commands(&retarget);
    assert_eq!(cmds.len(), 1, "{cmds:#?}");
    assert!(
        cmds[0].starts_with("filter replace dev a0 parent 1: protocol ipv6 prio ")
            && cmds[0].ends_with("classid 1:10"),
        "{cmds:#?}"
    );
    assert_eq!(lab.apply(&retarget), 1);

    // A subscriber added: its class, its leaf, its filter.
    let added = retarget.clone()
        + "[interfaces.lab.classes.laptop]\nid = 0x70\nrate = \"3mbit\"\n\
           [[interfaces.lab.classes.laptop.match]]\ndst = \"10.77.0.9\"\n";
    let cmds = lab.commands(&added);
    assert_eq!(cmds.len(), 3, "{cmds:#?}");
    assert!(cmds[0].starts_with("class add dev a0 parent 1:1 classid 1:70 "));
    assert!(cmds[1].starts_with("qdisc add dev a0 parent 1:70 handle 70: pfifo"));
    assert!(cmds[2].contains("match u32 0x0a4d0009 0xffffffff at 16 classid 1:70"));
    assert_eq!(lab.apply(&added), 3);
    assert_eq!(lab.apply(&added), 0);

    // Back to the first policy: it converges, and is in sync again.
    assert!(lab.apply(ATC) > 0);
    assert_eq!(lab.apply(ATC), 0);
}

#[test]
fn ports_protocol_and_dscp_steer_within_one_device() {
    need_root!();
    let lab = Lab::new("ma-port");
    let policy = format!("{ATC}{WITHIN}");
    lab.apply(&policy);
    assert_eq!(lab.apply(&policy), 0, "re-apply");
    let p = &lab.pair;
    // TCP to 10.77.0.2:5995 → rpc 1:40 (its dst alone would say phone 1:10).
    let (b10, b40) = (lab.class_bytes("1:10"), lab.class_bytes("1:40"));
    let r = p.tcp_wire_rate(&p.a, &p.b, "10.77.0.2", 5995, 3);
    let (d10, d40) = (lab.class_bytes("1:10") - b10, lab.class_bytes("1:40") - b40);
    eprintln!("port 5995: {r} bit/s; 1:40 {d40} bytes, 1:10 {d10} bytes");
    assert!(d40 > 300_000 && d10 < d40 / 20, "1:40 {d40}, 1:10 {d10}");
    // UDP to 10.77.0.3 → voip 1:50 (its dst alone would say tablet 1:20).
    let (b20, b50) = (lab.class_bytes("1:20"), lab.class_bytes("1:50"));
    let send = "for i in $(seq 200); do echo payload > /dev/udp/10.77.0.3/7777; done";
    std::process::Command::new("ip")
        .args(["netns", "exec", &p.a, "bash", "-c", send])
        .status()
        .expect("bash");
    let (d20, d50) = (lab.class_bytes("1:20") - b20, lab.class_bytes("1:50") - b50);
    assert!(d50 >= 200 * 36 && d20 < d50 / 20, "1:50 {d50}, 1:20 {d20}");
    // DSCP EF to 10.77.0.2 → voice 1:60.
    let (b10, b60) = (lab.class_bytes("1:10"), lab.class_bytes("1:60"));
    let r = p.tcp_wire_rate_with(&p.a, &p.b, "10.77.0.2", 5203, 3, &["--dscp", "EF"]);
    let (d10, d60) = (lab.class_bytes("1:10") - b10, lab.class_bytes("1:60") - b60);
    eprintln!("EF flow: {r} bit/s; 1:60 {d60} bytes, 1:10 {d10} bytes");
    assert!(d60 > 300_000 && d10 < d60 / 20, "1:60 {d60}, 1:10 {d10}");

    // show prints the matches in the policy's words, the port blocks as one range.
    let show = std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .args(["--netns", &p.a, "show"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    for words in [
        "dst 10.77.0.2/32 proto tcp dport 5990-5999",
        "dst 10.77.0.3/32 proto udp",
        "dst 10.77.0.2/32 dscp EF",
        "dst fd77::3/128",
    ] {
        assert!(text.contains(words), "{words} not in\n{text}");
    }
    // import writes the matches back as `[[….match]]` entries (the port blocks as one range).
    let imported = lab.import_round_trip();
    assert!(
        imported.contains("proto = \"tcp\"\ndport = \"5990-5999\""),
        "{imported}"
    );
}

/// `n` subscribers, each a class by its address (hashed from 32 on, see docs/match.md).
fn subscribers(n: u32) -> String {
    let mut s = String::from(
        "[interfaces.isp]\ndevice = \"a0\"\nrate = \"1gbit\"\ndefault = \"rest\"\nleaf = \"pfifo\"\n\
         [interfaces.isp.classes.rest]\nrate = \"10mbit\"\n",
    );
    for i in 1..=n {
        s.push_str(&format!(
            "[interfaces.isp.classes.s{i}]\nrate = \"1mbit\"\n[[interfaces.isp.classes.s{i}.match]]\ndst = \"10.9.{}.{}\"\n",
            i / 200,
            i % 200 + 1
        ));
    }
    s
}

#[test]
fn a_tier_crossing_the_hash_threshold_is_rebuilt_once_and_converges() {
    need_root!();
    let lab = Lab::new("ma-hash");
    let tables = || {
        let out = lab.pair.tc(&lab.pair.a, &["filter", "show", "dev", "a0"]);
        out.lines().filter(|l| l.contains("ht divisor 256")).count()
    };
    assert!(lab.apply(&subscribers(40)) > 0);
    assert_eq!(tables(), 1, "40 hosts: one hash table");
    assert_eq!(lab.apply(&subscribers(40)), 0);
    let imported = lab.import_round_trip();
    assert_eq!(imported.matches("[[interfaces.a0.classes.").count(), 40);
    // Down to 31: the tier is deleted whole (its table cannot go in the batch that unlinks
    // it) and its 31 rules added back unhashed, in one batch: 9 classes (their leaves go
    // with them), the tier, 31 rules.
    let cmds = lab.commands(&subscribers(31));
    let whole: Vec<&String> = cmds
        .iter()
        .filter(|c| c.starts_with("filter del") && !c.contains("handle"))
        .collect();
    assert_eq!(whole.len(), 1, "{cmds:#?}");
    assert_eq!(cmds.len(), 9 + 1 + 31, "{cmds:#?}");
    lab.apply(&subscribers(31));
    assert_eq!(tables(), 0);
    assert_eq!(lab.apply(&subscribers(31)), 0);
    // Up to 33: hashed again, and one more subscriber costs its class, leaf and filter.
    lab.apply(&subscribers(33));
    assert_eq!(tables(), 1);
    assert_eq!(lab.apply(&subscribers(33)), 0);
    assert_eq!(lab.commands(&subscribers(34)).len(), 3);
}

/// A batch that fails at its very end (after every edit ran: an address changed, a tier
/// removed whole, a class with its match added) is undone exactly: the kernel's new numbers
/// for re-created u32 root tables are not configuration, everything else reads back equal.
#[test]
fn a_failed_apply_of_match_edits_is_restored_exactly() {
    need_root!();
    let lab = Lab::new("ma-undo");
    assert!(lab.apply(ATC) > 0);
    let edited = ATC
        .replace("dst = \"10.77.0.3\"", "dst = \"10.77.0.8\"")
        .replace(
            "[[interfaces.lab.classes.phone.match]]\ndst = \"fd77::2\"\n",
            "",
        )
        .replace(
            "[[interfaces.lab.classes.tablet.match]]\ndst = \"fd77::3\"\n",
            "",
        )
        + "[interfaces.lab.classes.laptop]\nid = 0x70\nrate = \"3mbit\"\n\
           [[interfaces.lab.classes.laptop.match]]\ndst = \"10.77.0.9\"\nproto = \"tcp\"\n";
    let tc = common::require("tc");
    let mark = lab.dir.path().join("faulted");
    let script = lab.dir.path().join("tc-fault");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\nfor a in \"$@\"; do\n  if [ \"$a\" = -batch ] && [ ! -e '{m}' ]; then\n    touch '{m}'\n    exec '{tc}' \"$@\" < <(cat; echo 'qdisc add dev qx-no-such-dev root pfifo')\n  fi\ndone\nexec '{tc}' \"$@\"\n",
            m = mark.display(),
            tc = tc.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status()
        .unwrap();
    let p = lab.dir.path().join("edited.toml");
    std::fs::write(&p, &edited).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .args([
            "--netns",
            &lab.pair.a,
            "--tc",
            script.to_str().unwrap(),
            "apply",
        ])
        .arg(&p)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(mark.exists(), "the faulting tc ran");
    assert!(
        err.contains("restored: every interface reads back exactly as before the apply"),
        "{err}"
    );
    assert_eq!(lab.apply(ATC), 0, "in sync with the policy of before");
}
