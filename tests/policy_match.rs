//! `[[interfaces.X.classes.Y.match]]` and `set_dscp`: every validation rule with its exact
//! `line:col: message` (and hint where it matters), `check`'s lines, and the filters the
//! policy resolves to (stable under edits of other matches).

use qosctl::kind::filter;
use qosctl::model::{Filter, FilterKind};
use qosctl::policy::{self, diag::Source};

/// Every diagnostic of `src` as "line:col: message".
fn errors(src: &str) -> Vec<String> {
    let c = policy::check_str("p.toml", src);
    let s = Source::new("p.toml", src);
    c.diagnostics
        .iter()
        .map(|d| {
            let sp = d.span.as_ref().expect("a span");
            let (l, col) = s.line_col(sp.start);
            format!("{l}:{col}: {}", d.message)
        })
        .collect()
}

fn hints(src: &str) -> Vec<Option<String>> {
    policy::check_str("p.toml", src)
        .diagnostics
        .into_iter()
        .map(|d| d.hint)
        .collect()
}

/// Class `a` (the default) and class `b`, each followed by its lines; line 5 is `a`'s
/// first line after its rate.
fn two(a: &str, b: &str) -> String {
    format!(
        "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a\"\n[interfaces.wan.classes.a]\nrate = \"1mbit\"\n{a}\n[interfaces.wan.classes.b]\nrate = \"1mbit\"\n{b}\n"
    )
}

const M: &str = "[[interfaces.wan.classes.a.match]]";
const MB: &str = "[[interfaces.wan.classes.b.match]]";

#[test]
fn field_values() {
    assert_eq!(
        errors(&two(&format!("{M}\ndst = \"10.0.0.5/24\""), "")),
        ["7:7: \"10.0.0.5/24\" has host bits set below its /24 prefix"]
    );
    assert_eq!(
        hints(&two(&format!("{M}\ndst = \"10.0.0.5/24\""), "")),
        [Some("did you mean \"10.0.0.0/24\"?".to_string())]
    );
    assert_eq!(
        errors(&two(&format!("{M}\nsrc = \"10.0.0/8\""), "")),
        ["7:7: \"10.0.0/8\" is not an IPv4 or IPv6 address or CIDR"]
    );
    assert_eq!(
        errors(&two(&format!("{M}\ndst = \"2001:db8::/129\""), "")),
        ["7:7: prefix length /129 is too long for an IPv6 address (at most /128)"]
    );
    assert_eq!(
        errors(&two(&format!("{M}\nproto = \"tcpp\""), "")),
        ["7:9: unknown protocol \"tcpp\""]
    );
    assert_eq!(
        errors(&two(
            &format!("{M}\nproto = \"tcp\"\ndport = \"2000-1000\""),
            ""
        )),
        ["8:9: port range \"2000-1000\" runs backwards"]
    );
    assert_eq!(
        errors(&two(&format!("{M}\nproto = \"udp\"\nsport = 70000"), "")),
        ["8:9: \"70000\" is not a port (0-65535) or a range (\"1000-2000\")"]
    );
    assert_eq!(
        errors(&two(&format!("{M}\ndscp = \"AF44\""), "")),
        ["7:8: unknown DSCP \"AF44\""]
    );
    assert_eq!(
        errors(&two(&format!("{M}\ndst = 10"), "")),
        ["7:7: \"dst\" must be a string like \"10.0.0.5\" or \"10.0.0.0/24\", found an integer"]
    );
    assert_eq!(
        errors(&two(&format!("{M}\ndest = \"10.0.0.5\""), "")),
        ["7:1: unknown key \"dest\" in a match of class \"a\""]
    );
    assert_eq!(
        hints(&two(&format!("{M}\ndest = \"10.0.0.5\""), "")),
        [Some("did you mean \"dst\"?".to_string())]
    );
    assert_eq!(
        errors(&two("set_dscp = \"EX\"", "")),
        ["6:12: unknown DSCP \"EX\""]
    );
}

#[test]
fn combinations_point_at_the_field() {
    assert_eq!(
        errors(&two(
            &format!("{M}\nsrc = \"10.0.0.0/8\"\ndst = \"2001:db8::1\""),
            ""
        )),
        ["8:7: an IPv4 address next to an IPv6 one: a packet is one or the other"]
    );
    assert_eq!(
        errors(&two(&format!("{M}\ndport = 443"), "")),
        ["7:9: a port needs a protocol that has ports"]
    );
    assert_eq!(
        hints(&two(&format!("{M}\ndport = 443"), "")),
        [Some(
            "add proto = \"tcp\" (or udp, sctp) to this match".to_string()
        )]
    );
    assert_eq!(
        errors(&two(&format!("{M}\nproto = \"icmp\"\nsport = 1"), "")),
        ["8:9: protocol icmp has no ports"]
    );
    assert_eq!(
        errors(&two(
            &format!("{M}\ndst = \"2001:db8::1\"\nproto = \"icmp\""),
            ""
        )),
        ["8:9: protocol icmp is IPv4-only, but the address is IPv6"]
    );
    assert_eq!(
        errors(&two(&format!("{M}\nmark = 0x10\ndst = \"10.0.0.1\""), "")),
        ["7:8: mark cannot be combined with other fields in one match"]
    );
    // An empty entry points at its header.
    assert_eq!(
        errors(&two(&format!("{M}\n"), "")),
        ["6:1: an empty match would steer every packet"]
    );
}

#[test]
fn rules_across_classes() {
    // The same match steering into two classes: at the second one.
    assert_eq!(
        errors(&two(
            &format!("{M}\ndst = \"10.0.0.5\""),
            &format!("{MB}\ndst = \"10.0.0.5/32\"")
        )),
        ["10:1: the match \"dst 10.0.0.5/32\" already steers into class \"a\""]
    );
    // Equally specific and overlapping: neither wins.
    assert_eq!(
        errors(&two(
            &format!("{M}\nproto = \"tcp\"\ndport = 443"),
            &format!("{MB}\ndst = \"10.9.0.0/24\"")
        )),
        ["11:1: the match \"dst 10.9.0.0/24\" overlaps \"proto tcp dport 443\" of class \"a\", and neither is more specific"]
    );
    // More specific wins by priority: no problem.
    assert!(errors(&two(
        &format!("{M}\ndst = \"10.9.0.0/24\""),
        &format!("{MB}\ndst = \"10.9.0.7\"")
    ))
    .is_empty());
    // A mark in a match is a mark: taken by `marks` of another class.
    assert_eq!(
        errors(&two("marks = [0x10]", &format!("{MB}\nmark = 16"))),
        ["10:8: mark 0x10 is already used by class \"a\""]
    );
    // Inner classes: matches and set_dscp belong on leaves.
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"c\"\n[interfaces.wan.classes.p]\nrate = \"1mbit\"\nset_dscp = \"EF\"\n\
               [[interfaces.wan.classes.p.match]]\ndst = \"10.0.0.1\"\n[interfaces.wan.classes.p.classes.c]\nrate = \"1mbit\"\n";
    assert_eq!(
        errors(src),
        [
            "6:1: class \"p\" has children: set_dscp marks the packets of a leaf class",
            "7:28: class \"p\" has children: a match must steer to a leaf class",
        ]
    );
    assert_eq!(
        errors(&two("set_dscp = \"EF\"\nmarks = [0x10]", "")),
        ["6:12: class \"a\" has set_dscp but no match entry to mark"]
    );
}

fn desired(src: &str) -> Vec<Filter> {
    let c = policy::check_str("p.toml", src);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    c.desired().devices[0].state.filters.clone()
}

fn described(fs: &[Filter]) -> Vec<String> {
    fs.iter()
        .map(|f| {
            let (handle, words) = filter::columns(&f.kind);
            format!(
                "prio {} {} {handle} {words} -> {}",
                f.prio,
                f.protocol,
                f.classid.map(|c| c.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn filters_of_a_policy_and_their_stability() {
    let base = two(
        &format!("{M}\ndst = \"10.0.0.5\"\nproto = \"tcp\"\ndport = 443\n{M}\nmark = 0x20"),
        &format!("set_dscp = \"EF\"\n{MB}\ndst = \"10.0.0.0/24\""),
    );
    let fs = desired(&base);
    let words = described(&fs);
    assert_eq!(
        words,
        [
            "prio 1 all 0x20 mark 0x20 -> 1:232e",
            "prio 748 ip ::667 dst 10.0.0.5/32 proto tcp dport 443 -> 1:232e",
            "prio 812 ip ::ba8 dst 10.0.0.0/24, set dscp EF, fix checksum -> 1:8d57",
        ],
        "{words:#?}"
    );
    assert!(matches!(fs[0].kind, FilterKind::Fw { mark: 0x20, .. }));
    // A class and a match added elsewhere leave every filter as it was.
    let more = base.clone()
        + "[interfaces.wan.classes.c]\nrate = \"1mbit\"\n[[interfaces.wan.classes.c.match]]\ndst = \"10.0.0.9\"\n";
    let fs2 = desired(&more);
    for f in &fs {
        assert!(fs2.contains(f), "{f:?} moved");
    }
    assert_eq!(fs2.len(), fs.len() + 1);
    // An IPv6 dscp match without an address: one filter per family.
    let fs = desired(&two(&format!("{M}\ndscp = \"AF41\""), ""));
    assert_eq!(
        described(&fs),
        [
            "prio 848 ip ::68 dscp AF41 -> 1:232e",
            "prio 849 ipv6 ::dbf dscp AF41 -> 1:232e",
        ]
    );
}

#[test]
fn check_prints_matches_under_their_class() {
    let dir = std::env::temp_dir().join(format!("qx-check-match-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("p.toml");
    std::fs::write(
        &p,
        two(
            &format!("{M}\ndst = \"10.0.0.5\"\nproto = \"tcp\"\ndport = \"1000-2000\""),
            &format!("set_dscp = 46\n{MB}\nsrc = \"2001:db8::/48\""),
        ),
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("qosctl")
        .unwrap()
        .args(["check", p.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let at = |s: &str| lines.iter().position(|l| l.trim_start().starts_with(s));
    let (a, ma, b, mb, d) = (
        at("a ").unwrap(),
        at("match dst 10.0.0.5/32 proto tcp dport 1000-2000").unwrap(),
        at("b ").unwrap(),
        at("match src 2001:db8::/48").unwrap(),
        at("set_dscp EF").unwrap(),
    );
    assert_eq!((ma, b, mb, d), (a + 1, a + 2, a + 3, a + 4), "{text}");
    assert!(lines[ma].starts_with("      match"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
