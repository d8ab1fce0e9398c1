//! What an apply costs in processes, on the real kernel in throw-away namespaces: under
//! emulation (the kernel lab's qemu TCG) every tc or ip start costs tens of ms, and the
//! lab's `rate-change` case times a one-command apply against 1 s. These tests count the
//! tc and ip processes through logging wrappers (tc by `--tc`, ip on PATH), and check that
//! what is no longer run was not needed: the ingress-side filter dumps of the rollback
//! snapshot, and the ifb listing of a namespace without ifbs (while a left-over ifb of
//! qosctl's is still found and deleted).

#[macro_use]
mod common;
use common::{ok, text, Case};

use std::path::PathBuf;
use std::process::Output;

/// A directory with logging stand-ins for `tc` and `ip`: each appends its arguments to
/// `calls.log` (`tc ARGS` / `ip ARGS`), then runs the real program. With `FAULT` set, the
/// first `tc -batch` gets a failing line after its own (the kernel refuses a qdisc on a
/// device that does not exist).
struct Logged {
    dir: tempfile::TempDir,
}

impl Logged {
    fn new() -> Logged {
        let dir = tempfile::tempdir().expect("tempdir");
        for prog in ["tc", "ip"] {
            let real = common::require(prog);
            let p = dir.path().join(prog);
            let log = dir.path().join("calls.log");
            let mark = dir.path().join("faulted");
            let body = format!(
                "#!/bin/bash\nargs=\"$*\"\necho \"{prog} $args\" >> '{log}'\n\
                 if [ -n \"$FAULT\" ] && [ \"${{args: -8}}\" = '-batch -' ] && [ ! -e '{mark}' ]; then\n\
                 touch '{mark}'\n\
                 exec '{real}' \"$@\" < <(cat; echo 'qdisc add dev qx-no-such-dev root pfifo')\n\
                 fi\n\
                 exec '{real}' \"$@\"\n",
                log = log.display(),
                mark = mark.display(),
                real = real.display()
            );
            std::fs::write(&p, body).expect("write wrapper");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Logged { dir }
    }

    fn tc(&self) -> PathBuf {
        self.dir.path().join("tc")
    }

    /// `qosctl --netns NS --tc <logging tc> ARGS` with the logging ip first on PATH.
    fn qosctl(&self, c: &Case, args: &[&str]) -> Output {
        self.qosctl_env(c, args, &[])
    }

    fn qosctl_env(&self, c: &Case, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
            .env("PATH", path)
            .envs(env.iter().copied())
            .args(["--netns", &c.ns.0, "--tc"])
            .arg(self.tc())
            .args(args)
            .output()
            .expect("run qosctl")
    }

    /// The calls logged since the last take.
    fn take(&self) -> Vec<String> {
        let log = self.dir.path().join("calls.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect()
    }
}

/// One class whose rate the test changes, and a default class: the lab's rate-change
/// policy with what this machine's kernel has (pfifo leaves, a u32 match instead of marks).
fn policy(rate: &str) -> String {
    format!(
        r#"
[interfaces.lab]
device = "a0"
rate = "100mbit"
default = "other"
leaf = "pfifo"

[interfaces.lab.classes.flow]
id = 0x10
rate = "{rate}"
ceil = "{rate}"
burst = "16KiB"
cburst = "16KiB"
[[interfaces.lab.classes.flow.match]]
proto = "tcp"
dport = 5201

[interfaces.lab.classes.other]
id = 0x99
rate = "50mbit"
ceil = "100mbit"
"#
    )
}

fn count(calls: &[String], pred: impl Fn(&str) -> bool) -> usize {
    calls.iter().filter(|c| pred(c)).count()
}

/// The planning read (3 `tc -j` dumps: qdiscs, classes, filters of `1:`), the rollback
/// snapshot (3 text dumps, side by side: qdiscs, `-raw` classes, root filters; no
/// ingress-side dumps on a device without an ingress qdisc), the batch, which also reads
/// the changed class back; no ip at all in a namespace without ifbs of qosctl's. It was 11:
/// 6 snapshot dumps one after the other, and `ip -j link show type ifb`.
#[test]
fn a_one_command_apply_starts_seven_processes() {
    need_root!();
    let c = Case::new("cost");
    // As in the kernel lab, where loading the ifb module made ifb0: not qosctl's.
    let made = std::process::Command::new("ip")
        .args(["-n", &c.ns.0, "link", "add", "ifb0", "type", "ifb"])
        .status()
        .expect("ip is missing: tests/install-deps.sh must install it");
    assert!(made.success());
    let l = Logged::new();
    let p20 = c.policy("p20.toml", &policy("20mbit"));
    let p5 = c.policy("p5.toml", &policy("5mbit"));
    ok(l.qosctl(&c, &["apply", p20.to_str().unwrap()]));
    l.take();

    let out = ok(l.qosctl(&c, &["apply", p5.to_str().unwrap()]));
    assert!(out.contains("Applied 1 command in one tc -batch"), "{out}");
    let calls = l.take();
    let all = calls.join("\n");
    let ns = format!("tc -n {} ", c.ns.0);
    let planning = count(&calls, |c| c.starts_with(&format!("{ns}-j ")));
    let snapshot = count(&calls, |c| {
        c.starts_with(&format!("{ns}-d ")) && c.contains(" show dev a0")
    });
    let batch = count(&calls, |c| c.ends_with(" -batch -"));
    assert_eq!(snapshot, 3, "{all}");
    assert_eq!(batch, 1, "{all}");
    assert!(planning <= 3, "{all}");
    assert_eq!(count(&calls, |c| c.starts_with("ip ")), 0, "{all}");
    assert!(calls.len() <= 7, "{} processes:\n{all}", calls.len());
    // Nothing else ran (every call is one of the above).
    assert_eq!(planning + snapshot + batch, calls.len(), "{all}");
    assert!(!all.contains("ffff:") && !all.contains(" ingress"), "{all}");

    // The same apply, failing: restored and verified with the same three dumps again.
    let dump = c.ns.dump(&["a0"]);
    let o = l.qosctl_env(&c, &["apply", p20.to_str().unwrap()], &[("FAULT", "1")]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("restored: every interface reads back exactly as before the apply"),
        "{t}"
    );
    assert_eq!(c.ns.dump(&["a0"]), dump);
    let calls = l.take();
    let all = calls.join("\n");
    let snapshot = count(&calls, |c| {
        c.starts_with(&format!("{ns}-d ")) && c.contains(" show dev a0")
    });
    assert_eq!(
        snapshot, 6,
        "before the batch and after the restore:\n{all}"
    );
}

/// The snapshot skips the ingress-side filter dumps only where they are empty: told to
/// expect no ingress qdisc on a device that has one (with a filter), it still dumps them,
/// and the result is the one it takes when told to expect it. A device without one reads
/// the same either way, with nothing under ffff:.
#[test]
fn the_snapshot_skips_only_what_cannot_exist() {
    need_root!();
    let c = Case::new("csnap");
    let ns = c.ns.0.clone();
    let tc = |args: &[&str]| {
        let o = std::process::Command::new("tc")
            .args(["-n", &ns])
            .args(args)
            .output()
            .expect("tc is missing: tests/install-deps.sh must install it");
        assert!(o.status.success(), "tc {args:?}: {}", text(&o));
    };
    let t = qosctl::tc::Tc::new(common::require("tc"), Some(ns.clone()));
    let snap = |dev: &str, expect: bool| {
        qosctl::rollback::snapshot(&t, &[dev.to_string()], |_| expect).expect("snapshot")
    };
    tc(&["qdisc", "add", "dev", "b0", "root", "handle", "1:", "htb"]);
    assert_eq!(snap("b0", true), snap("b0", false));
    assert!(!snap("b0", true)[0].has_ingress_side());

    tc(&["qdisc", "add", "dev", "a0", "handle", "ffff:", "ingress"]);
    tc(&[
        "filter", "add", "dev", "a0", "parent", "ffff:", "protocol", "all", "prio", "7", "u32",
        "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "b0",
    ]);
    let unexpected = snap("a0", false);
    assert_eq!(unexpected, snap("a0", true));
    assert!(unexpected[0].has_ingress_side());
    let under_ffff: Vec<&String> = unexpected[0]
        .entries
        .iter()
        .filter(|e| e.starts_with("filter parent ffff:|") && e.contains("mirred"))
        .collect();
    assert!(!under_ffff.is_empty(), "{:#?}", unexpected[0].entries);
}

/// The kernel's answer to "any ifb of qosctl's here?" that spares apply the `ip` listing:
/// no for a namespace with only veths, and with a hand-made ifb (the kernel lab has `ifb0`
/// and `ifb1` of its own); yes with an ifb marked as qosctl's; an error (then apply lists
/// with ip) for a namespace that does not exist.
#[test]
fn the_namespace_is_asked_for_ifbs_of_ours_without_a_process() {
    need_root!();
    let c = Case::new("cnl");
    let ns = c.ns.0.as_str();
    let ask = || qosctl::netlink::has_own_ifb(Some(ns)).expect("ask the kernel");
    assert!(!ask());
    let ip = |args: &[&str]| {
        let o = std::process::Command::new("ip")
            .args(["-n", ns])
            .args(args)
            .output()
            .expect("ip is missing: tests/install-deps.sh must install it");
        assert!(o.status.success(), "ip {args:?}: {}", text(&o));
    };
    ip(&["link", "add", "handmade0", "type", "ifb"]);
    ip(&["link", "set", "dev", "handmade0", "alias", "ops team"]);
    assert!(!ask());
    // A veth with qosctl's alias is no ifb.
    ip(&["link", "set", "dev", "b0", "alias", "qosctl:ifb-for:a0"]);
    assert!(!ask());
    ip(&["link", "add", "ifb-a0", "type", "ifb"]);
    assert!(!ask());
    ip(&["link", "set", "dev", "ifb-a0", "alias", "qosctl:ifb-for:a0"]);
    assert!(ask());
    ip(&["link", "del", "ifb-a0"]);
    assert!(!ask());
    assert!(qosctl::netlink::has_own_ifb(Some("qx-no-such-namespace")).is_err());
}

const INGRESS: &str = r#"
[interfaces.lab]
device = "a0"

[interfaces.lab.ingress]
rate = "5mbit"
default = "all"
leaf = "pfifo"

[interfaces.lab.ingress.classes.all]
rate = "5mbit"
"#;

const PLAIN: &str = "[interfaces.lab]\ndevice = \"a0\"\nrate = \"10mbit\"\ndefault = \"x\"\n\
                     leaf = \"pfifo\"\n[interfaces.lab.classes.x]\nrate = \"100%\"\n";

fn ifb_names(ns: &str) -> Vec<String> {
    common::ifbs(ns).into_iter().map(|(n, _)| n).collect()
}

/// docs/ingress.md: an apply with `--confirm-within` that drops an ingress tree leaves its
/// ifb (a rollback would put back a hook redirecting to it); the next apply finds it,
/// lists the namespace's ifbs with ip for it, and deletes it.
#[test]
fn a_left_over_ifb_is_still_found_and_deleted() {
    need_root!();
    let c = Case::new("cleft");
    let l = Logged::new();
    let ingress = c.policy("ingress.toml", INGRESS);
    let plain = c.policy("plain.toml", PLAIN);
    ok(l.qosctl(&c, &["apply", ingress.to_str().unwrap()]));
    assert_eq!(ifb_names(&c.ns.0), vec!["ifb-a0".to_string()]);

    let dropped = ok(l.qosctl(
        &c,
        &["apply", plain.to_str().unwrap(), "--confirm-within", "60s"],
    ));
    assert!(dropped.contains("- ifb device ifb-a0"), "{dropped}");
    ok(l.qosctl(&c, &["confirm"]));
    assert_eq!(ifb_names(&c.ns.0), vec!["ifb-a0".to_string()], "left over");
    l.take();

    let next = ok(l.qosctl(&c, &["apply", plain.to_str().unwrap()]));
    assert!(next.contains("- ifb device ifb-a0"), "{next}");
    assert!(ifb_names(&c.ns.0).is_empty(), "not deleted:\n{next}");
    let calls = l.take();
    let all = calls.join("\n");
    assert!(
        calls.iter().any(|c| c.ends_with("-j link show type ifb")),
        "{all}"
    );
    // And once it is gone, no apply starts ip again.
    ok(l.qosctl(&c, &["apply", plain.to_str().unwrap()]));
    let calls = l.take();
    assert_eq!(count(&calls, |c| c.starts_with("ip ")), 0, "{calls:#?}");
}
