//! Download shaping on an ifb, on the real kernel: `link::Ip` creates and marks the ifb,
//! the ingress hook redirects what arrives at a0 to it, an htb tree on the ifb shapes it,
//! and iperf3 in the download direction measures the class rates. The ifb listing and
//! deletion never touch an ifb made by hand.

#[macro_use]
mod common;
use common::NetnsPair;

use qosctl::classify::layout::{layout, Steer};
use qosctl::classify::read::parse;
use qosctl::classify::Match;
use qosctl::link::{ingress_qdisc_args, IngressHook, Ip, LinkError};
use qosctl::model::Handle;

fn ip_in(ns: &str) -> Ip {
    Ip::locate(Some(ns.to_string())).expect("ip is missing: tests/install-deps.sh must install it")
}

#[test]
fn download_on_an_ifb_gets_the_class_rates() {
    need_root!();
    let lab = NetnsPair::new("ik-rate");
    lab.ip(&lab.b, &["addr", "add", "10.77.0.3/24", "dev", "b0"]);
    let ip = ip_in(&lab.a);
    let ifb = ip.ensure_ifb("a0").expect("create the ifb");
    assert_eq!(ifb, "ifb-a0");
    // Idempotent: a second run finds it and leaves it alone.
    assert_eq!(ip.ensure_ifb("a0").expect("again"), "ifb-a0");

    // The hook on a0, the 5 mbit tree on the ifb: 2 mbit from .2, 3 mbit from .3.
    let hook = IngressHook::redirect(&ifb);
    let mut lines = vec![ingress_qdisc_args("a0"), hook.tc_add("a0")];
    lines.extend(
        [
            "qdisc add dev ifb-a0 root handle 1: htb default 30",
            "class add dev ifb-a0 parent 1: classid 1:1 htb rate 5mbit ceil 5mbit burst 16k cburst 16k",
            "class add dev ifb-a0 parent 1:1 classid 1:10 htb rate 2mbit ceil 2mbit burst 16k cburst 16k",
            "class add dev ifb-a0 parent 1:1 classid 1:20 htb rate 3mbit ceil 3mbit burst 16k cburst 16k",
            "class add dev ifb-a0 parent 1:1 classid 1:30 htb rate 1mbit ceil 5mbit",
        ]
        .map(String::from),
    );
    let by_src = |a: &str, minor: u16| Steer {
        m: Match {
            src: Some(a.parse().expect("addr")),
            ..Match::default()
        },
        classid: Handle::new(1, minor),
        name: format!("c{minor:x}"),
    };
    let l = layout(
        Handle::qdisc(1),
        &[by_src("10.77.0.2", 0x10), by_src("10.77.0.3", 0x20)],
    )
    .expect("layout");
    lines.extend(l.filters.iter().map(|f| f.tc_add("ifb-a0")));
    lab.tc_batch(&lab.a, &lines);

    // The hook reads back as the same value, from JSON and from text.
    for args in [
        &["-j", "filter", "show", "dev", "a0", "parent", "ffff:"][..],
        &["-s", "filter", "show", "dev", "a0", "parent", "ffff:"],
    ] {
        let live = parse(&lab.tc(&lab.a, args)).expect("parse");
        let hooks: Vec<IngressHook> = live.iter().filter_map(IngressHook::from_live).collect();
        assert_eq!(hooks, vec![hook.clone()], "{args:?}");
    }
    // An in-place change of the hook (here: its target) is one `replace` of the live handle,
    // and leaves one hook; then back.
    let live = parse(&lab.tc(
        &lab.a,
        &["-j", "filter", "show", "dev", "a0", "parent", "ffff:"],
    ))
    .expect("parse");
    let at = live
        .iter()
        .find(|f| IngressHook::from_live(f).is_some())
        .expect("the hook");
    let other = IngressHook::redirect(&ip.ensure_ifb("z9").expect("second ifb"));
    for (to, want) in [(&other, "ifb-z9"), (&hook, "ifb-a0")] {
        lab.tc_batch(&lab.a, &[to.tc_replace("a0", at)]);
        let live = parse(&lab.tc(
            &lab.a,
            &["-j", "filter", "show", "dev", "a0", "parent", "ffff:"],
        ))
        .expect("parse");
        let hooks: Vec<IngressHook> = live.iter().filter_map(IngressHook::from_live).collect();
        assert_eq!(hooks, vec![IngressHook::redirect(want)]);
    }

    // Download: iperf3 servers in a, clients in b (sources .2 and .3 by binding).
    let (r2, r3) = lab.download_pair((5301, 5302), 6);
    eprintln!(
        "download from .2: {:.3} mbit (class 2), from .3: {:.3} mbit (class 3)",
        r2 / 1e6,
        r3 / 1e6
    );
    assert!(
        (r2 / 1e6 - 2.0).abs() <= 0.10,
        "from .2: {r2} bit/s, want 2 mbit ±5 %"
    );
    assert!(
        (r3 / 1e6 - 3.0).abs() <= 0.15,
        "from .3: {r3} bit/s, want 3 mbit ±5 %"
    );
}

#[test]
fn only_qosctl_ifbs_are_listed_and_deleted() {
    need_root!();
    let lab = NetnsPair::new("ik-own");
    // Foreign ifbs made by hand: one with qosctl's name for b-less "x0", one plain.
    lab.ip(&lab.a, &["link", "add", "ifb-x0", "type", "ifb"]);
    lab.ip(&lab.a, &["link", "add", "ifb7", "type", "ifb"]);
    lab.ip(&lab.a, &["link", "set", "dev", "ifb7", "alias", "ops team"]);
    let ip = ip_in(&lab.a);
    ip.ensure_ifb("a0").expect("create");
    let owned: Vec<(String, Option<String>)> = ip
        .owned_ifbs()
        .expect("list")
        .into_iter()
        .map(|i| (i.name, i.owner))
        .collect();
    assert_eq!(owned, vec![("ifb-a0".to_string(), Some("a0".to_string()))]);
    assert_eq!(ip.ifbs().expect("all").len(), 3);

    // The name qosctl would use for x0 is taken by a foreign ifb: an error, nothing changed.
    let err = ip.ensure_ifb("x0").unwrap_err();
    let e = err.downcast_ref::<LinkError>().expect("a LinkError");
    assert!(matches!(e, LinkError::NameTaken { .. }), "{e}");
    assert!(
        e.to_string().contains("ifb-x0") && e.to_string().contains("no qosctl alias"),
        "{e}"
    );
    // A non-ifb with the name: also refused.
    lab.ip(
        &lab.a,
        &[
            "link", "add", "ifb-y0", "type", "veth", "peer", "name", "y0p",
        ],
    );
    let err = ip.ensure_ifb("y0").unwrap_err();
    assert!(err.to_string().contains("not an ifb"), "{err:#}");

    for foreign in ["ifb-x0", "ifb7", "ifb-y0"] {
        let err = ip.delete_ifb(foreign).unwrap_err();
        assert!(
            matches!(err.downcast_ref::<LinkError>(), Some(LinkError::NotOurs(_))),
            "{err:#}"
        );
    }
    ip.delete_ifb("ifb-a0").expect("delete ours");
    let left: Vec<String> = ip
        .ifbs()
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(left, ["ifb-x0", "ifb7"]);
    assert!(lab
        .ip(&lab.a, &["link", "show", "ifb-y0"])
        .contains("ifb-y0"));
}

/// A fake `ip` that knows no ifb (as a kernel without CONFIG_IFB answers): a clear error,
/// and no device was created. No root needed.
#[test]
fn a_kernel_without_ifb_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("ip");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$*\" in\n  *show*) echo '[]' ;;\n  *add*) echo 'Error: Unknown device type.' >&2; exit 2 ;;\nesac\n",
    )
    .expect("write");
    std::process::Command::new("chmod")
        .args(["+x", fake.to_str().expect("utf-8")])
        .status()
        .expect("chmod");
    let err = Ip::new(&fake, None).ensure_ifb("eth0").unwrap_err();
    let e = err.downcast_ref::<LinkError>().expect("a LinkError");
    assert_eq!(
        e,
        &LinkError::IfbUnsupported("Error: Unknown device type.".into())
    );
    assert_eq!(
        e.hint(),
        Some("load the ifb module (modprobe ifb) or use a kernel with CONFIG_IFB")
    );
    // And an `ip` that cannot be run at all names the command.
    let err = Ip::new(dir.path().join("nope"), None).ifbs().unwrap_err();
    assert!(format!("{err:#}").contains("could not run"), "{err:#}");
}
