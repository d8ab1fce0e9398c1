//! The kernel limits `src/limits.rs` checks, proven on this machine's kernel and tc in a
//! throw-away namespace: raw `tc` values just inside and just outside each boundary, read
//! back with `tc -raw` (the ticks the kernel holds) and with qosctl's reader (what `apply`
//! compares), and the shipped examples checked for warnings.

mod common;
use common::{is_root, Netns};

use qosctl::limits;
use qosctl::model::{Class, Handle};
use qosctl::policy;
use qosctl::units::{Rate, Size};
use std::process::Command;

macro_rules! need_root {
    ($name:expr) => {
        if !is_root() {
            eprintln!("SKIP: {} needs root (network namespaces)", $name);
            return;
        }
        common::require_all(&["ip", "tc"]);
    };
}

fn tc(ns: &str, args: &str) -> String {
    let out = Command::new("tc")
        .args(["-n", ns])
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tc -n {ns} {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The hex after `key [` in `tc -raw` output: the ticks the kernel reports.
fn raw(out: &str, key: &str) -> u64 {
    let at = out
        .find(&format!("{key} ["))
        .unwrap_or_else(|| panic!("no {key} in {out}"));
    let hex = &out[at + key.len() + 2..];
    u64::from_str_radix(&hex[..hex.find(']').unwrap()], 16).unwrap()
}

/// Class 1:3's burst as qosctl's reader gets it from the kernel.
fn read_burst(ns: &str) -> Size {
    let t = qosctl::tc::Tc::new("tc", Some(ns.to_string()));
    let st = qosctl::tc::read::read_config(&t, "a0").unwrap();
    st.class(Handle::new(1, 3)).unwrap().burst.unwrap()
}

fn htb_lab(tag: &str) -> Netns {
    let ns = Netns::with_veth(tag);
    tc(&ns.0, "qdisc add dev a0 root handle 1: htb");
    ns
}

/// The tick model against this kernel: every (rate, burst), just inside and outside the
/// boundaries and a spread of others, gives exactly the ticks the model says.
#[test]
fn root_htb_burst_ticks_match_the_model() {
    need_root!("root_htb_burst_ticks_match_the_model");
    let ns = htb_lab("lim-htb");
    let mut cases: Vec<(u64, u64)> = vec![
        (8_000, 274_877),            // the longest burst at 8kbit
        (8_000, 274_878),            // one byte more wraps
        (8_000, 2_000_000),          // 2MB (qosctl: 10^6) at 8kbit
        (5_000_000_000, 16_384),     // 16KiB at 5gbit
        (5_000_000_000, 15_000),     // the nearest that holds
        (10_000_000_000, 1_251_600), // qosctl's burst at 10gbit
    ];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let rate = 1_000_000 * (1 + x % 40_000); // 1mbit .. 40gbit
        let size = 1500 + (x >> 20) % 10_000_000;
        cases.push((rate, size));
    }
    for (bits, size) in cases {
        tc(
            &ns.0,
            &format!("class replace dev a0 parent 1: classid 1:3 htb rate {bits}bit burst {size}b"),
        );
        let out = tc(&ns.0, "-raw -d class show dev a0 classid 1:3");
        let rate = bits / 8;
        assert_eq!(
            raw(&out, "buffer"),
            limits::tc_ticks_before_6_15(rate, size),
            "{bits}bit burst {size}: {out}"
        );
        // What qosctl reads back is what the model says tc prints.
        let want = limits::tc_bytes_before_6_15(rate, raw(&out, "buffer"));
        let got = read_burst(&ns.0).bytes();
        // Text output prints large sizes in Kb/Mb: within 1 KiB (sprint_size's rounding).
        assert!(
            got.abs_diff(want) <= 1024,
            "{bits}bit {size}: read {got}, model {want}"
        );
    }
}

/// The boundaries of `check`: what it refuses does not read back in sync, and the value it
/// proposes does. Without the check, apply would change such a class forever.
#[test]
fn root_refused_bursts_never_converge_and_the_proposed_ones_do() {
    need_root!("root_refused_bursts_never_converge_and_the_proposed_ones_do");
    let ns = htb_lab("lim-conv");
    for (bits, size) in [
        (5_000_000_000u64, 16_384u64),
        (8_000, 2_000_000),
        (8_000, 274_878),
    ] {
        let rate = bits / 8;
        assert!(!limits::holds(rate, size), "{bits} {size}");
        let near = limits::nearest(rate, size).expect("a nearest value");
        for (burst, in_sync) in [(size, false), (near, true)] {
            tc(
                &ns.0,
                &format!(
                    "class replace dev a0 parent 1: classid 1:3 htb rate {bits}bit burst {burst}b"
                ),
            );
            let live = read_burst(&ns.0);
            let want = Class {
                burst: Some(Size(burst)),
                ..Class::new(Handle::new(1, 3), None, Rate(bits), Rate(bits))
            };
            let mut live_class = want.clone();
            live_class.burst = Some(live);
            let same =
                qosctl::plan::diff_device(&state_with(want.clone()), &state_with(live_class))
                    .is_empty();
            assert_eq!(same, in_sync, "{bits}bit burst {burst}: read back {live}");
        }
    }
}

/// Root htb qdisc 1: and the class: the planner compares classes under their qdisc.
fn state_with(c: Class) -> qosctl::model::DeviceState {
    use qosctl::model::{Htb, Parent, Qdisc, QdiscKind};
    qosctl::model::DeviceState {
        device: "a0".into(),
        qdiscs: vec![Qdisc {
            handle: Handle::qdisc(1),
            parent: Parent::Root,
            kind: QdiscKind::Htb(Htb {
                default: 3,
                r2q: None,
            }),
            name: None,
            stats: None,
        }],
        classes: vec![c],
        ..Default::default()
    }
}

/// tc's default burst reads back as 0 from 6.4 gbit (1,600 bytes in under 2 µs): the
/// boundary measured on both sides, and the model's threshold between them.
#[test]
fn root_default_burst_reads_zero_from_6_4_gbit() {
    need_root!("root_default_burst_reads_zero_from_6_4_gbit");
    let ns = htb_lab("lim-dflt");
    for (bits, zero) in [
        (1_000_000_000u64, false),
        (6_400_000_000, false),
        (6_408_000_000, true),
        (10_000_000_000, true),
    ] {
        tc(
            &ns.0,
            &format!("class replace dev a0 parent 1: classid 1:3 htb rate {bits}bit"),
        );
        let out = tc(&ns.0, "-raw -d class show dev a0 classid 1:3");
        let printed = out.contains(" burst 0b/");
        assert_eq!(printed, zero, "{bits}bit: {out}");
        assert_eq!(limits::default_burst_is_broken(bits / 8), zero, "{bits}bit");
    }
}

/// A 10gbit class without burst gets qosctl's 1 ms + 1600 bytes: applied, it reads back as
/// that (not 0), and a second apply is in sync.
#[test]
fn root_apply_at_10gbit_sends_a_burst_that_reads_back() {
    need_root!("root_apply_at_10gbit_sends_a_burst_that_reads_back");
    let ns = Netns::with_veth("lim-10g");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        "[interfaces.core]\ndevice = \"a0\"\nrate = \"40gbit\"\ndefault = \"bulk\"\nleaf = \"pfifo\"\n\
         [interfaces.core.classes.bulk]\nid = 3\nrate = \"10gbit\"\nceil = \"40gbit\"\n",
    )
    .unwrap();
    let q = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qosctl"))
            .args(["--netns", &ns.0])
            .args(args)
            .arg(&p)
            .output()
            .unwrap()
    };
    let o = q(&["apply"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = tc(&ns.0, "-raw -d class show dev a0 classid 1:3");
    assert!(!out.contains(" burst 0b/"), "{out}");
    assert_eq!(
        raw(&out, "buffer"),
        limits::tc_ticks_before_6_15(1_250_000_000, 1_251_600)
    );
    assert_eq!(
        raw(&out, "cbuffer"),
        limits::tc_ticks_before_6_15(5_000_000_000, 5_001_600)
    );
    let o = q(&["apply", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "second apply not in sync:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// tbf keeps its burst in ticks too (computed by the kernel from the bytes tc sends).
#[test]
fn root_tbf_burst_boundary() {
    need_root!("root_tbf_burst_boundary");
    let ns = Netns::with_veth("lim-tbf");
    for (size, holds) in [(274_877u64, true), (274_878, false)] {
        tc(
            &ns.0,
            &format!(
                "qdisc replace dev a0 root handle 1: tbf rate 8kbit burst {size}b latency 50ms"
            ),
        );
        let out = tc(&ns.0, "-raw -d qdisc show dev a0");
        // `[000005ae]` right after "mpu 0b": the buffer ticks.
        let at = out.find("mpu 0b [").expect("raw buffer") + "mpu 0b".len();
        let ticks = u64::from_str_radix(&out[at + 2..at + 10], 16).unwrap();
        assert_eq!(ticks, limits::tc_ticks_before_6_15(1000, size), "{out}");
        let back = limits::tc_bytes_before_6_15(1000, ticks);
        assert_eq!(back.abs_diff(size) <= 16, holds, "{size}: {back}");
        assert_eq!(limits::holds(1000, size), holds);
    }
}

/// What `check` says, with file:line:col, caret and the fix.
#[test]
fn check_refuses_with_the_nearest_value() {
    let text = "[interfaces.wan]\ndevice = \"eth0\"\nrate = \"10gbit\"\ndefault = \"a\"\n\
                [interfaces.wan.classes.a]\nrate = \"5gbit\"\nceil = \"5gbit\"\ncburst = \"16KiB\"\n\
                [interfaces.wan.classes.b]\nrate = \"8kbit\"\nburst = \"2MB\"\n\
                leaf = { kind = \"tbf\", rate = \"8kbit\", burst = \"300kB\" }\n";
    let c = policy::check_str("p.toml", text);
    let r = c.render();
    assert_eq!(c.error_count(), 3, "{r}");
    assert!(
        r.contains(
            "p.toml:8:10: error: class \"wan/a\": cburst 16KiB at 5gbit reads back as 15625B"
        ),
        "{r}"
    );
    assert!(r.contains("cburst = \"15000B\""), "{r}");
    assert!(
        r.contains("p.toml:11:9: error: class \"wan/b\": burst 2000000B at 8kbit"),
        "{r}"
    );
    assert!(r.contains("reads back as 75854B"), "{r}");
    assert!(r.contains("burst = \"274877B\""), "{r}");
    assert!(
        r.contains("p.toml:12:48: error: tbf leaf of \"wan/b\""),
        "{r}"
    );
}

#[test]
fn long_netem_delay_warns_with_the_limit_it_needs() {
    let text = "[interfaces.lab]\ndevice = \"eth0\"\nrate = \"1gbit\"\ndefault = \"far\"\n\
                [interfaces.lab.classes.far]\nrate = \"100mbit\"\nceil = \"100mbit\"\n\
                netem = { delay = \"1s\" }\n\
                [interfaces.lab.classes.near]\nrate = \"100mbit\"\nceil = \"100mbit\"\n\
                netem = { delay = \"1s\", limit = 9000 }\n\
                [interfaces.lab.classes.slow]\nrate = \"1mbit\"\nceil = \"1mbit\"\n\
                netem = { delay = \"1s\" }\n";
    let c = policy::check_str("p.toml", text);
    assert!(!c.has_errors(), "{}", c.render());
    let w = c.render_warnings();
    // 100mbit for 1 s is 12.5 MB: 8257 frames of 1514 bytes.
    assert!(w.contains("p.toml:8:19: warning: netem holds each packet 1s: at 100mbit (the class's ceil) that is up to 8257 full-size packets"), "{w}");
    assert!(w.contains("set limit = 8257"), "{w}");
    assert_eq!(
        w.matches("warning:").count(),
        1,
        "only the one without a limit: {w}"
    );
}

/// The shipped examples check without errors or warnings: each applies on current kernels.
#[test]
fn examples_check_without_warnings() {
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let c = policy::check_file(&p).unwrap();
            assert!(c.diagnostics.is_empty(), "{}:\n{}", p.display(), c.render());
        }
    }
}
