//! The policy language: units, every validation rule (exact message, line and column),
//! `qosctl check` on the examples, a corpus of broken files, and stable handles.

use assert_cmd::Command;
use qosctl::model::{FilterKind, Handle, Parent, QdiscKind};
use qosctl::policy::{self, diag::Source};
use qosctl::units::{Prob, Rate, Size, Time};
use std::collections::HashMap;
use std::path::Path;

fn qosctl() -> Command {
    Command::cargo_bin("qosctl").expect("binary builds")
}

/// Every error of `src` as "line:col: message".
fn errors(src: &str) -> Vec<String> {
    let c = policy::check_str("p.toml", src);
    let s = Source::new("p.toml", src);
    c.diagnostics
        .iter()
        .map(|d| match &d.span {
            Some(sp) => {
                let (l, col) = s.line_col(sp.start);
                format!("{l}:{col}: {}", d.message)
            }
            None => format!("-: {}", d.message),
        })
        .collect()
}

/// The errors with their hints, for the did-you-mean checks.
fn hints(src: &str) -> Vec<Option<String>> {
    policy::check_str("p.toml", src)
        .diagnostics
        .into_iter()
        .map(|d| d.hint)
        .collect()
}

/// A valid one-interface policy with the given extra lines for class `a` (line 5 onward).
fn with_class(extra: &str) -> String {
    format!(
        "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a\"\n[interfaces.wan.classes.a]\n{extra}\n"
    )
}

// ---------------------------------------------------------------------------------------
// Units

#[test]
fn rate_forms() {
    let cases: &[(&str, u64)] = &[
        ("20mbit", 20_000_000),
        ("1.5gbit", 1_500_000_000),
        ("800kbit", 800_000),
        ("8bit", 8),
        ("1tbit", 1_000_000_000_000),
        ("10Mbps", 10_000_000),
        ("10mbps", 10_000_000),
        ("64kbps", 64_000),
        ("1Gbps", 1_000_000_000),
        ("100bps", 100),
        ("2MBps", 16_000_000),
        ("1kBps", 8_000),
        ("100Bps", 800),
        ("1MB/s", 8_000_000),
        ("100mibit", 104_857_600),
        ("1kibit", 1024),
        ("1gibit", 1_073_741_824),
        ("2Mibit", 2_097_152),
        ("20 mbit", 20_000_000),
    ];
    for (text, bits) in cases {
        assert_eq!(
            text.parse::<Rate>().map(|r| r.bits()),
            Ok(*bits),
            "rate {text}"
        );
    }
}

#[test]
fn rate_errors() {
    let e = "5000".parse::<Rate>().unwrap_err();
    assert_eq!(e.message, "rate \"5000\" has no unit");
    assert_eq!(e.hint.as_deref(), Some("did you mean \"5000kbit\"?"));
    assert_eq!(
        "20mbits".parse::<Rate>().unwrap_err().message,
        "unknown rate unit \"mbits\" in \"20mbits\""
    );
    assert_eq!(
        "20xbit".parse::<Rate>().unwrap_err().message,
        "unknown rate prefix \"x\" in \"20xbit\""
    );
    assert_eq!(
        "-5mbit".parse::<Rate>().unwrap_err().message,
        "invalid rate \"-5mbit\""
    );
    assert_eq!(
        "4bit".parse::<Rate>().unwrap_err().message,
        "rate \"4bit\" is below 8bit, the smallest rate the kernel can keep"
    );
    let huge = format!("{}tbit", "9".repeat(400));
    assert_eq!(
        huge.parse::<Rate>().unwrap_err().message,
        format!("rate \"{huge}\" is too large")
    );
}

#[test]
fn size_forms() {
    let cases: &[(&str, u64)] = &[
        ("1514", 1514),
        ("1514B", 1514),
        ("15kB", 15_000),
        ("15KB", 15_000),
        ("2MB", 2_000_000),
        ("1GB", 1_000_000_000),
        ("16KiB", 16_384),
        ("1.5KiB", 1536),
        ("1MiB", 1_048_576),
        ("1GiB", 1_073_741_824),
        ("80bit", 10),
        ("8kbit", 1000),
        ("1mbit", 125_000),
    ];
    for (text, bytes) in cases {
        assert_eq!(
            text.parse::<Size>().map(|s| s.bytes()),
            Ok(*bytes),
            "size {text}"
        );
    }
    let e = "15k".parse::<Size>().unwrap_err();
    assert_eq!(e.message, "ambiguous size unit \"k\" in \"15k\"");
    assert_eq!(
        "1.1B".parse::<Size>().unwrap_err().message,
        "size \"1.1B\" is not a whole number of bytes"
    );
    assert_eq!(
        "5GiB".parse::<Size>().unwrap_err().message,
        "size \"5GiB\" is too large (at most 4GiB)"
    );
    // A bare integer in the policy is bytes.
    let src = with_class("rate = \"1mbit\"\nburst = 3000\ncburst = \"4KiB\"\nquantum = \"1514B\"");
    let c = policy::check_str("p.toml", &src);
    assert!(!c.has_errors(), "{}", c.render());
    let class = &c.desired().devices[0].state.classes[1];
    assert_eq!(class.burst, Some(Size(3000)));
    assert_eq!(class.cburst, Some(Size(4096)));
    assert_eq!(class.quantum, Some(Size(1514)));
}

#[test]
fn time_forms() {
    let cases: &[(&str, u64)] = &[
        ("10ms", 10_000_000),
        ("1.5s", 1_500_000_000),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("100ns", 100),
        ("2sec", 2_000_000_000),
        ("5msec", 5_000_000),
        ("7usec", 7_000),
        ("1000ms", 1_000_000_000),
    ];
    for (text, ns) in cases {
        assert_eq!(text.parse::<Time>().map(|t| t.ns()), Ok(*ns), "time {text}");
    }
    let e = "10".parse::<Time>().unwrap_err();
    assert_eq!(e.message, "time \"10\" has no unit");
    assert_eq!(e.hint.as_deref(), Some("did you mean \"10ms\"?"));
    assert_eq!(
        "3m".parse::<Time>().unwrap_err().message,
        "unknown time unit \"m\" in \"3m\""
    );
    assert_eq!(
        "5000s".parse::<Time>().unwrap_err().message,
        "time \"5000s\" is too large (at most 4294s)"
    );
}

#[test]
fn probability_forms() {
    let cases: &[(&str, f64)] = &[
        ("1%", 0.01),
        ("0.05%", 0.0005),
        ("100%", 1.0),
        ("0%", 0.0),
        ("50 %", 0.5),
    ];
    for (text, f) in cases {
        let p: Prob = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(
            (p.fraction() - f).abs() < 1e-12,
            "{text} → {}",
            p.fraction()
        );
    }
    let e = "5".parse::<Prob>().unwrap_err();
    assert_eq!(e.message, "probability \"5\" has no %");
    assert_eq!(e.hint.as_deref(), Some("did you mean \"5%\"?"));
    assert_eq!(
        "101%".parse::<Prob>().unwrap_err().message,
        "probability \"101%\" is outside 0%..100%"
    );
    assert_eq!(
        "1e-3%".parse::<Prob>().unwrap_err().message,
        "invalid probability \"1e-3%\""
    );
}

#[test]
fn bare_numbers_in_the_policy_show_the_fix() {
    let src = "[interfaces.tap0.netem]\ndelay = 1000\nloss = 50\nrate = 5000\n";
    assert_eq!(
        errors(src),
        [
            "2:9: time \"1000\" has no unit",
            "3:8: probability \"50\" has no %",
            "4:8: rate \"5000\" has no unit",
        ]
    );
    assert_eq!(
        hints(src),
        [
            Some("did you mean \"1000ms\"?".to_string()),
            Some("did you mean \"50%\"?".to_string()),
            Some("did you mean \"5000kbit\"?".to_string()),
        ]
    );
}

#[test]
fn relative_rates_resolve_against_the_parent() {
    let src =
        with_class("rate = \"12.5%\"\nceil = { percent = 50, min = \"1mbit\", max = \"8mbit\" }");
    let c = policy::check_str("p.toml", &src);
    assert!(!c.has_errors(), "{}", c.render());
    let k = &c.resolved.interfaces[0].classes[0];
    assert_eq!(k.rate, Rate::from_bits(2_500_000));
    // 50% of 20mbit is 10mbit, clamped down to 8mbit.
    assert_eq!(k.ceil, Rate::from_bits(8_000_000));
}

// ---------------------------------------------------------------------------------------
// Validation rules: exact message, line and column.

#[test]
fn unknown_keys_with_did_you_mean() {
    let src =
        "interface = 1\n[interfaces.wan]\nrtae = \"1mbit\"\ndefualt = \"a\"\ndevice = \"eth0\"\n\
               [interfaces.wan.classes.a]\nrate = \"1mbit\"\nceiling = \"2mbit\"\nmark = [1]\n\
               leaf = { kind = \"fq_codel\", targte = \"5ms\" }\nnetem = { dealy = \"1ms\" }\n";
    assert_eq!(
        errors(src),
        [
            "1:1: unknown key \"interface\" in the policy",
            "2:13: interface \"wan\" has classes but no default class for unclassified traffic",
            "3:1: unknown key \"rtae\" in interface \"wan\"",
            "4:1: unknown key \"defualt\" in interface \"wan\"",
            "8:1: unknown key \"ceiling\" in class \"a\"",
            "9:1: unknown key \"mark\" in class \"a\"",
            "10:29: unknown key \"targte\" in leaf \"fq_codel\"",
            "11:9: class \"a\" sets both leaf (fq_codel) and netem: a class has one leaf qdisc",
            "11:11: unknown key \"dealy\" in netem",
        ]
    );
    let h = hints(src);
    assert_eq!(h[0].as_deref(), Some("did you mean \"interfaces\"?"));
    assert_eq!(h[2].as_deref(), Some("did you mean \"rate\"?"));
    assert_eq!(h[3].as_deref(), Some("did you mean \"default\"?"));
    assert_eq!(h[4].as_deref(), Some("did you mean \"ceil\"?"));
    assert_eq!(h[5].as_deref(), Some("did you mean \"marks\"?"));
    assert_eq!(h[6].as_deref(), Some("did you mean \"target\"?"));
    assert_eq!(h[8].as_deref(), Some("did you mean \"delay\"?"));
}

#[test]
fn interface_outside_interfaces() {
    let src = "[wan]\nrate = \"1mbit\"\n[interfaces.lan]\n";
    assert_eq!(errors(src), ["1:2: unknown key \"wan\" in the policy"]);
    assert_eq!(
        hints(src)[0].as_deref(),
        Some("interfaces are tables under interfaces: did you mean [interfaces.wan]?")
    );
}

#[test]
fn class_outside_classes() {
    let src = "[interfaces.wan]\nrate = \"1mbit\"\n[interfaces.wan.voice]\nrate = \"1mbit\"\n";
    assert_eq!(
        errors(src),
        [
            "2:8: interface \"wan\" has a rate but no classes to shape into",
            "3:17: unknown key \"voice\" in interface \"wan\"",
        ]
    );
    assert_eq!(
        hints(src)[1].as_deref(),
        Some("a class is a table under classes: did you mean [….classes.voice]?")
    );
}

#[test]
fn wrong_types() {
    let src =
        with_class("rate = \"1mbit\"\nprio = \"high\"\nmarks = 16\nid = \"0x30\"\nburst = true");
    assert_eq!(
        errors(&src),
        [
            "6:8: \"prio\" must be an integer, found a string",
            "7:9: \"marks\" must be an array of integers",
            "8:6: \"id\" must be an integer like 0x30, found a string",
            "9:9: \"burst\" must be a size like \"16KiB\" or a number of bytes, found a boolean",
        ]
    );
    assert_eq!(hints(&src)[1].as_deref(), Some("write marks = [0x10]"));
    assert_eq!(hints(&src)[2].as_deref(), Some("write 0x30 without quotes"));
    let src = with_class("rate = \"1mbit\"\nmarks = [\"0x10\"]");
    assert_eq!(
        errors(&src),
        ["6:10: a mark must be an integer like 0x10, found a string"]
    );
    assert_eq!(hints(&src)[0].as_deref(), Some("write 0x10 without quotes"));
}

#[test]
fn bad_units_point_at_the_value() {
    let src = with_class("rate = \"1mbits\"\nceil = \"2 parsecs\"");
    assert_eq!(
        errors(&src),
        [
            "5:8: unknown rate unit \"mbits\" in \"1mbits\"",
            "6:8: unknown rate unit \"parsecs\" in \"2 parsecs\"",
        ]
    );
}

#[test]
fn percent_outside_range() {
    let src = with_class("rate = \"0%\"\nceil = { percent = 150 }");
    assert_eq!(
        errors(&src),
        [
            "5:8: percentage 0% is outside (0%, 100%]",
            "6:20: percentage 150% is outside (0%, 100%]",
        ]
    );
    assert_eq!(
        errors(&with_class("rate = \"x%\"")),
        ["5:8: invalid percentage \"x%\""]
    );
    assert_eq!(
        errors(&with_class(
            "rate = { percent = 10, min = \"3mbit\", max = \"2mbit\" }"
        )),
        ["5:8: \"rate\": min 3mbit is above max 2mbit"]
    );
}

#[test]
fn children_rates_above_parent_rate() {
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"b\"\n\
               [interfaces.wan.classes.a]\nrate = \"60%\"\n\
               [interfaces.wan.classes.a.classes.x]\nrate = \"10mbit\"\n\
               [interfaces.wan.classes.a.classes.y]\nrate = \"5mbit\"\n\
               [interfaces.wan.classes.b]\nrate = \"9mbit\"\n";
    assert_eq!(
        errors(src),
        [
            "2:8: the classes under interface \"wan\" guarantee 21mbit in total, 1mbit more than its rate 20mbit",
            "5:8: the classes under class \"a\" guarantee 15mbit in total, 3mbit more than its rate 12mbit",
        ]
    );
}

#[test]
fn ceil_below_rate_or_above_parent_ceil() {
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a\"\n\
               [interfaces.wan.classes.a]\nrate = \"5mbit\"\nceil = \"4mbit\"\n\
               [interfaces.wan.classes.b]\nrate = \"5mbit\"\nceil = \"25mbit\"\n\
               [interfaces.wan.classes.c]\nrate = \"5mbit\"\nceil = \"10mbit\"\n\
               [interfaces.wan.classes.c.classes.d]\nrate = \"11mbit\"\n";
    assert_eq!(
        errors(src),
        [
            "6:8: ceil 4mbit is below the rate 5mbit of class \"a\"",
            "9:8: ceil 25mbit of class \"b\" is above the ceil 20mbit of its parent interface \"wan\"",
            "11:8: the classes under class \"c\" guarantee 11mbit in total, 6mbit more than its rate 5mbit",
            "14:8: rate 11mbit of class \"c/d\" is above the ceil 10mbit of its parent class \"c\"",
        ]
    );
}

#[test]
fn default_class_rules() {
    let base = "[interfaces.wan]\nrate = \"20mbit\"\n";
    let classes = "[interfaces.wan.classes.bulk]\nrate = \"5mbit\"\n\
                   [interfaces.wan.classes.bulk.classes.backup]\nrate = \"1mbit\"\n\
                   [interfaces.wan.classes.web]\nrate = \"1mbit\"\n\
                   [interfaces.wan.classes.web.classes.backup]\nrate = \"1mbit\"\n";
    // Missing.
    let src = format!("{base}{classes}");
    assert_eq!(
        errors(&src),
        ["1:13: interface \"wan\" has classes but no default class for unclassified traffic"]
    );
    assert_eq!(
        hints(&src)[0].as_deref(),
        Some("add default = \"bulk/backup\"")
    );
    // Naming no class.
    let src = format!("{base}default = \"bulkk\"\n{classes}");
    assert_eq!(
        errors(&src),
        ["3:11: default \"bulkk\" names no class of interface \"wan\""]
    );
    assert_eq!(hints(&src)[0].as_deref(), Some("did you mean \"bulk\"?"));
    // Naming a class with children.
    let src = format!("{base}default = \"bulk\"\n{classes}");
    assert_eq!(
        errors(&src),
        ["3:11: default \"bulk\" has child classes; traffic can only wait in a leaf class"]
    );
    assert_eq!(
        hints(&src)[0].as_deref(),
        Some("name one of its leaves: bulk/backup")
    );
    // A name that is not unique must be a path.
    let src = format!("{base}default = \"backup\"\n{classes}");
    assert_eq!(
        errors(&src),
        ["3:11: default \"backup\" names more than one class"]
    );
    // A path works, and the htb default is that class's minor.
    let src = format!("{base}default = \"web/backup\"\n{classes}");
    let c = policy::check_str("p.toml", &src);
    assert!(!c.has_errors(), "{}", c.render());
    let st = &c.desired().devices[0].state;
    let want = c.resolved.interfaces[0]
        .classes
        .iter()
        .find(|k| k.path == "web/backup")
        .map(|k| k.handle.minor);
    match &st.root_qdisc().map(|q| &q.kind) {
        Some(QdiscKind::Htb(h)) => assert_eq!(Some(h.default), want),
        other => panic!("root qdisc is {other:?}"),
    }
}

#[test]
fn marks_used_twice() {
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a\"\n\
               [interfaces.wan.classes.a]\nrate = \"1mbit\"\nmarks = [0x10, 0x20, 0x10]\n\
               [interfaces.wan.classes.b]\nrate = \"1mbit\"\nmarks = [0x20]\n\
               [interfaces.lan]\nrate = \"20mbit\"\ndefault = \"a\"\n\
               [interfaces.lan.classes.a]\nrate = \"1mbit\"\nmarks = [0x10]\n";
    // The same mark on another interface is fine.
    assert_eq!(
        errors(src),
        [
            "6:22: mark 0x10 is already used by this class",
            "9:10: mark 0x20 is already used by class \"a\"",
        ]
    );
    assert_eq!(
        errors(&with_class(
            "rate = \"1mbit\"\nmarks = [0, 4294967296, \"x\"]"
        )),
        [
            "6:10: mark 0 means unmarked traffic and cannot be matched",
            "6:13: mark 4294967296 is out of range 1..=0xffffffff",
            "6:25: a mark must be an integer like 0x10, found a string",
        ]
    );
}

#[test]
fn ids_duplicate_or_out_of_range() {
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a\"\n\
               [interfaces.wan.classes.a]\nrate = \"1mbit\"\nid = 0x30\n\
               [interfaces.wan.classes.b]\nrate = \"1mbit\"\nid = 0x30\n\
               [interfaces.wan.classes.c]\nrate = \"1mbit\"\nid = 1\n\
               [interfaces.wan.classes.d]\nrate = \"1mbit\"\nid = 0\n\
               [interfaces.wan.classes.e]\nrate = \"1mbit\"\nid = 0xffff\n";
    assert_eq!(
        errors(src),
        [
            "9:6: id 0x30 is already used by class \"a\"",
            "12:6: id 0x1 is out of range 0x2..=0xfffe (minors 0 and 1 are reserved, 0xffff too)",
            "15:6: id 0x0 is out of range 0x2..=0xfffe (minors 0 and 1 are reserved, 0xffff too)",
            "18:6: id 0xffff is out of range 0x2..=0xfffe (minors 0 and 1 are reserved, 0xffff too)",
        ]
    );
    assert_eq!(
        errors(&with_class("rate = \"1mbit\"\nid = -5")),
        ["6:6: id -5 is out of range 0x2..=0xfffe (minors 0 and 1 are reserved, 0xffff too)"]
    );
}

#[test]
fn netem_only_on_leaf_classes() {
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a/b\"\n\
               [interfaces.wan.classes.a]\nrate = \"2mbit\"\nnetem = { delay = \"10ms\" }\n\
               [interfaces.wan.classes.a.classes.b]\nrate = \"1mbit\"\n";
    assert_eq!(
        errors(src),
        ["6:1: class \"a\" has children, so it cannot have netem"]
    );
    // Other leaf-only settings.
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a/b\"\n\
               [interfaces.wan.classes.a]\nrate = \"2mbit\"\nleaf = \"pfifo\"\nmarks = [1]\nprio = 1\n\
               [interfaces.wan.classes.a.classes.b]\nrate = \"1mbit\"\n";
    assert_eq!(
        errors(src),
        [
            "6:1: class \"a\" has children, so it has no leaf qdisc",
            "7:1: class \"a\" has children: marks must steer to a leaf class",
            "8:1: class \"a\" has children: htb uses prio only on leaf classes",
        ]
    );
}

#[test]
fn percentage_on_a_root_without_rate() {
    let src = "[interfaces.wan]\ndefault = \"a\"\n\
               [interfaces.wan.classes.a]\nrate = \"10%\"\n\
               [interfaces.wan.classes.b]\nrate = \"1mbit\"\nceil = \"50%\"\n";
    assert_eq!(
        errors(src),
        [
            "4:8: rate is a percentage, but interface \"wan\" has no rate to take it of",
            "7:8: ceil is a percentage, but interface \"wan\" has no rate to take it of",
        ]
    );
    // Absolute rates without an interface rate: the root class covers its children.
    let src = "[interfaces.wan]\ndefault = \"a\"\n\
               [interfaces.wan.classes.a]\nrate = \"3mbit\"\n\
               [interfaces.wan.classes.b]\nrate = \"1mbit\"\nceil = \"5mbit\"\n";
    let c = policy::check_str("p.toml", src);
    assert!(!c.has_errors(), "{}", c.render());
    let st = &c.desired().devices[0].state;
    assert_eq!(st.classes[0].rate, Rate::from_bits(5_000_000));
    // Without a parent ceil to borrow from, ceil defaults to the class's rate.
    assert_eq!(st.classes[1].ceil, Rate::from_bits(3_000_000));
    // A rate that does not parse is one error, not one more per class below it.
    assert_eq!(
        errors("[interfaces.wan]\nrate = 5000\ndefault = \"a\"\n[interfaces.wan.classes.a]\nrate = \"10%\"\n"),
        ["2:8: rate \"5000\" has no unit"]
    );
    // The interface rate itself must be absolute.
    assert_eq!(
        errors("[interfaces.wan]\nrate = \"50%\"\n"),
        ["2:8: \"rate\" must be an absolute rate, not a percentage"]
    );
}

#[test]
fn device_names() {
    let src =
        "[interfaces.a]\ndevice = \"eth0/1\"\n[interfaces.b]\ndevice = \"averyveryverylongname\"\n\
               [interfaces.c]\ndevice = \"eth 0\"\n[interfaces.d]\ndevice = \"\"\n\
               [interfaces.\"my uplink\"]\n[interfaces.e]\ndevice = \"eth0:1\"\n";
    assert_eq!(
        errors(src),
        [
            "2:10: device name \"eth0/1\" is not a valid Linux interface name: it contains '/'",
            "4:10: device name \"averyveryverylongname\" is not a valid Linux interface name: it is 21 bytes long, the limit is 15",
            "6:10: device name \"eth 0\" is not a valid Linux interface name: it contains ' '",
            "8:10: device name \"\" is not a valid Linux interface name: it is empty",
            "9:13: device name \"my uplink\" is not a valid Linux interface name: it contains ' '",
            "11:10: device name \"eth0:1\" is not a valid Linux interface name: it contains ':'",
        ]
    );
    assert_eq!(
        hints(src)[4].as_deref(),
        Some("the device defaults to the interface key; set device = \"eth0\" in [interfaces.\"my uplink\"]")
    );
    // 15 bytes is fine; one device described twice is not.
    let src = "[interfaces.a]\ndevice = \"abcdefghijklmno\"\n[interfaces.b]\ndevice = \"abcdefghijklmno\"\n";
    assert_eq!(
        errors(src),
        ["4:10: device \"abcdefghijklmno\" is already managed by interface \"a\""]
    );
}

#[test]
fn class_without_rate_and_interface_shapes() {
    assert_eq!(
        errors(&with_class("ceil = \"1mbit\"")),
        ["4:25: class \"a\" has no rate"]
    );
    assert_eq!(
        errors("[interfaces.wan]\nrate = \"20mbit\"\n"),
        ["2:8: interface \"wan\" has a rate but no classes to shape into"]
    );
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a\"\nnetem = { delay = \"1ms\" }\n\
               [interfaces.wan.classes.a]\nrate = \"1mbit\"\n";
    assert_eq!(
        errors(src),
        ["4:9: interface \"wan\" has classes, so netem belongs on its leaf classes"]
    );
    assert_eq!(
        errors("[interfaces.wan]\nrate = \"20mbit\"\nnetem = { delay = \"1ms\" }\n"),
        ["2:8: interface \"wan\" has only netem: the rate would have no class to shape"]
    );
    assert_eq!(
        errors(&with_class(
            "rate = \"1mbit\"\nleaf = \"pfifo\"\nnetem = { delay = \"1ms\" }"
        )),
        ["7:9: class \"a\" sets both leaf (pfifo) and netem: a class has one leaf qdisc"]
    );
    // Only a device: managed, and its desired state is the kernel default.
    let c = policy::check_str("p.toml", "[interfaces.lan]\ndevice = \"eth1\"\n");
    assert!(!c.has_errors());
    assert!(c.desired().devices[0].state.is_default());
}

#[test]
fn htb_depth_limit() {
    let mut src = String::from("[interfaces.wan]\nrate = \"10mbit\"\ndefault = \"c0\"\n");
    let mut path = String::from("interfaces.wan");
    for i in 0..8 {
        path.push_str(&format!(".classes.c{i}"));
        src.push_str(&format!("[{path}]\nrate = \"1mbit\"\n"));
    }
    let e = errors(&src);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(
        e[0],
        "3:11: default \"c0\" has child classes; traffic can only wait in a leaf class"
    );
    assert_eq!(
        e[1],
        "18:102: classes are nested too deep: htb allows at most 7 levels of classes below an interface"
    );
}

#[test]
fn leaf_kinds_and_options() {
    let src = "[interfaces.wan]\nrate = \"100mbit\"\ndefault = \"a\"\n\
        [interfaces.wan.classes.a]\nrate = \"1mbit\"\nleaf = { kind = \"fq_codel\", target = \"5ms\", interval = \"100ms\", limit = 10240, flows = 1024, ecn = true, quantum = 1514, memory_limit = \"32MiB\" }\n\
        [interfaces.wan.classes.b]\nrate = \"1mbit\"\nleaf = { kind = \"cake\", bandwidth = \"50mbit\", diffserv = \"diffserv4\", flow_mode = \"triple-isolate\", rtt = \"100ms\", nat = true, wash = false, ack_filter = true, overhead = -4 }\n\
        [interfaces.wan.classes.c]\nrate = \"1mbit\"\nleaf = { kind = \"sfq\", perturb = \"10s\", limit = 127, quantum = \"1514B\" }\n\
        [interfaces.wan.classes.d]\nrate = \"1mbit\"\nleaf = { kind = \"pfifo\", limit = 1000 }\n\
        [interfaces.wan.classes.e]\nrate = \"1mbit\"\nleaf = { kind = \"bfifo\", limit = \"64KiB\" }\n\
        [interfaces.wan.classes.f]\nrate = \"1mbit\"\nceil = \"4mbit\"\nleaf = \"tbf\"\n\
        [interfaces.wan.classes.g]\nrate = \"1mbit\"\nleaf = { kind = \"tbf\", rate = \"800kbit\", burst = \"4KiB\", limit = \"16KiB\" }\n\
        [interfaces.wan.classes.h]\nrate = \"1mbit\"\nleaf = { kind = \"netem\", delay = \"5ms\" }\n\
        [interfaces.wan.classes.i]\nrate = \"1mbit\"\n";
    let c = policy::check_str("p.toml", src);
    assert!(!c.has_errors(), "{}", c.render());
    let leaves: Vec<String> = c.resolved.interfaces[0]
        .classes
        .iter()
        .map(|k| qosctl::check::leaf_summary(k.leaf.as_deref().expect("leaf")))
        .collect();
    assert_eq!(
        leaves,
        [
            "fq_codel limit 10240 flows 1024 target 5ms interval 100ms quantum 1514B memory_limit 32MiB ecn",
            "cake bandwidth 50mbit diffserv4 triple-isolate rtt 100ms overhead -4",
            "sfq perturb 10s limit 127 quantum 1514B",
            "pfifo limit 1000",
            "bfifo limit 64KiB",
            // tbf defaults: the class's ceil, 10ms of it as burst (but ≥ 1600B), latency 50ms.
            "tbf rate 4mbit burst 5000B latency 50ms",
            "tbf rate 800kbit burst 4KiB limit 16KiB",
            "netem delay 5ms",
            "fq_codel",
        ]
    );
    match c.resolved.interfaces[0].classes[1].leaf.as_deref() {
        Some(QdiscKind::Cake(k)) => {
            assert_eq!(k.nat, Some(true));
            assert_eq!(k.wash, Some(false));
            assert_eq!(k.ack_filter, Some(true));
        }
        other => panic!("{other:?}"),
    }
    let bad = with_class(
        "rate = \"1mbit\"\nleaf = \"fq-codel\"\n[interfaces.wan.classes.b]\nrate = \"1mbit\"\n\
         leaf = { kind = \"tbf\", limit = \"1KiB\", latency = \"1ms\" }\n[interfaces.wan.classes.c]\nrate = \"1mbit\"\n\
         leaf = { kind = \"cake\", diffserv = \"difserv4\" }\n[interfaces.wan.classes.d]\nrate = \"1mbit\"\nleaf = { limit = 5 }",
    );
    assert_eq!(
        errors(&bad),
        [
            "6:8: unknown leaf qdisc kind \"fq-codel\"",
            "9:8: tbf takes either limit or latency, not both",
            "12:36: unknown diffserv \"difserv4\"",
            "15:8: \"leaf\" table has no \"kind\"",
        ]
    );
    assert_eq!(
        hints(&bad)[0].as_deref(),
        Some("did you mean \"fq_codel\"?")
    );
    assert_eq!(
        hints(&bad)[2].as_deref(),
        Some("did you mean \"diffserv4\"?")
    );
}

#[test]
fn netem_full_set() {
    let src = "[interfaces.tap0.netem]\ndelay = \"100ms\"\njitter = \"10ms\"\ndelay_correlation = \"25%\"\n\
               distribution = \"pareto\"\nloss = \"1%\"\nloss_correlation = \"30%\"\nduplicate = \"0.5%\"\n\
               duplicate_correlation = \"5%\"\ncorrupt = \"0.1%\"\ncorrupt_correlation = \"2%\"\nreorder = \"25%\"\n\
               reorder_correlation = \"50%\"\ngap = 5\nrate = \"1mbit\"\nlimit = 5000\n\
               slot = { min_delay = \"1ms\", max_delay = \"5ms\", packets = 16, bytes = \"64KiB\" }\necn = true\n";
    let c = policy::check_str("p.toml", src);
    assert!(!c.has_errors(), "{}", c.render());
    let st = &c.desired().devices[0].state;
    assert_eq!(st.qdiscs.len(), 1);
    assert_eq!(st.qdiscs[0].handle, Handle::qdisc(1));
    assert_eq!(st.qdiscs[0].parent, Parent::Root);
    let QdiscKind::Netem(n) = &st.qdiscs[0].kind else {
        panic!("not netem")
    };
    assert_eq!(
        qosctl::check::netem_summary(n),
        "netem delay 100ms jitter 10ms delay_correlation 25% distribution pareto loss 1% \
         loss_correlation 30% duplicate 0.5% duplicate_correlation 5% corrupt 0.1% \
         corrupt_correlation 2% reorder 25% reorder_correlation 50% gap 5 rate 1mbit limit 5000 \
         slot 1ms 5ms packets 16 bytes 64KiB ecn"
    );
    // Gilbert-Elliott.
    let c = policy::check_str(
        "p.toml",
        "[interfaces.tap0.netem]\nloss = { gemodel = { p = \"1%\", r = \"10%\", h = \"70%\", k = \"0.1%\" } }\n",
    );
    assert!(!c.has_errors(), "{}", c.render());
    let n = c.resolved.interfaces[0].netem.as_ref().expect("netem");
    assert_eq!(
        qosctl::check::netem_summary(n),
        "netem loss gemodel p 1% r 10% h 70% k 0.1%"
    );
    // slot as a plain time.
    let c = policy::check_str("p.toml", "[interfaces.tap0.netem]\nslot = \"2ms\"\n");
    let n = c.resolved.interfaces[0].netem.as_ref().expect("netem");
    assert_eq!(n.slot.as_ref().map(|s| s.min_delay), Some(Time(2_000_000)));
}

#[test]
fn netem_dependencies() {
    let src =
        "[interfaces.tap0.netem]\njitter = \"1ms\"\ndelay_correlation = \"1%\"\nreorder = \"1%\"\n\
               gap = 3\nduplicate_correlation = \"1%\"\ncorrupt_correlation = \"1%\"\necn = true\n\
               loss_correlation = \"5%\"\ndistribution = \"normal\"\n";
    assert_eq!(
        errors(src),
        [
            "2:10: netem jitter needs a delay",
            "4:11: netem reorder needs a delay (reordered packets are the ones sent without it)",
            "6:25: netem duplicate_correlation needs duplicate",
            "7:23: netem corrupt_correlation needs corrupt",
            "8:7: netem ecn needs a loss",
            "9:20: loss_correlation without loss",
        ]
    );
    // delay_correlation and distribution need a jitter, which is set above: no error there.
    let src = "[interfaces.tap0.netem]\ndelay = \"1ms\"\ndelay_correlation = \"1%\"\ndistribution = \"normall\"\n\
               loss = { gemodel = { r = \"1%\" } }\nslot = { max_delay = \"1ms\" }\n";
    assert_eq!(
        errors(src),
        [
            "4:16: unknown distribution \"normall\"",
            "5:20: gemodel needs p (the good→bad probability)",
            "6:8: slot needs min_delay",
        ]
    );
    assert_eq!(
        errors("[interfaces.tap0.netem]\ndelay = \"1ms\"\ndelay_correlation = \"1%\"\n"),
        ["3:21: netem delay_correlation needs a jitter"]
    );
    assert_eq!(
        errors("[interfaces.tap0.netem]\nloss = { gemodel = { p = \"1%\" } }\nloss_correlation = \"1%\"\n"),
        ["3:20: loss_correlation does not apply to a gemodel loss"]
    );
}

#[test]
fn netem_presets_are_overridable() {
    let src = "[interfaces.a]\nnetem = \"3g\"\n[interfaces.b]\nnetem = { preset = \"3g\", loss = \"5%\", jitter = \"1ms\" }\n\
               [interfaces.c]\nnetem = \"4G\"\n";
    let c = policy::check_str("p.toml", src);
    assert_eq!(errors(src), ["6:9: unknown netem preset \"4G\""]);
    assert_eq!(hints(src)[0].as_deref(), Some("did you mean \"4g\"?"));
    let a = c.resolved.interfaces[0].netem.as_ref().expect("a");
    let b = c.resolved.interfaces[1].netem.as_ref().expect("b");
    assert_eq!(
        qosctl::check::netem_summary(a),
        "netem delay 100ms jitter 20ms loss 1% rate 1.5mbit"
    );
    assert_eq!(
        qosctl::check::netem_summary(b),
        "netem delay 100ms jitter 1ms loss 5% rate 1.5mbit"
    );
    for name in ["2g", "3g", "lte", "4g", "satellite", "lossy-wifi"] {
        let src = format!("[interfaces.x]\nnetem = \"{name}\"\n");
        assert_eq!(errors(&src), Vec::<String>::new(), "preset {name}");
    }
}

/// A duplicating netem next to other netems on one interface: current kernels refuse the
/// tree (measured on 6.1.192: "netem: cannot mix duplicating netems with other netems in
/// tree"), older ones accept it. `check` warns, with the place and the fix, and still passes.
#[test]
fn duplicating_netem_next_to_other_netems_is_a_warning() {
    let src = "[interfaces.wan]\nrate = \"20mbit\"\ndefault = \"a\"\n\
               [interfaces.wan.classes.a]\nrate = \"5mbit\"\nnetem = { delay = \"10ms\", duplicate = \"1%\" }\n\
               [interfaces.wan.classes.b]\nrate = \"5mbit\"\nnetem = { delay = \"20ms\" }\n\
               [interfaces.wan.classes.c]\nrate = \"5mbit\"\n";
    let c = policy::check_str("p.toml", src);
    assert!(!c.has_errors(), "{}", c.render());
    assert_eq!(errors(src), ["6:9: class \"a\" duplicates packets, and interface \"wan\" has 1 other netem: \
         current Linux kernels refuse that (\"netem: cannot mix duplicating netems with other netems in tree\")"]);
    assert_eq!(
        hints(src)[0].as_deref(),
        Some("put the duplicating netem on an interface of its own, or drop duplicate here")
    );
    // An interface-wide netem leaf counts as a netem on every leaf that sets no leaf itself.
    let wide = src
        .replace("netem = { delay = \"20ms\" }\n", "")
        .replace("default = \"a\"\n", "default = \"a\"\nleaf = \"netem\"\n");
    assert_eq!(errors(&wide).len(), 1, "{wide}");
    assert!(
        errors(&wide)[0].contains("has 2 other netems"),
        "{:?}",
        errors(&wide)
    );
    // Alone on its interface, or duplicate 0 %, or no other netem: nothing to say.
    for quiet in [
        src.replace("netem = { delay = \"20ms\" }\n", ""),
        src.replace("duplicate = \"1%\"", "duplicate = \"0%\""),
        "[interfaces.a]\nnetem = { delay = \"10ms\", duplicate = \"1%\" }\n\
         [interfaces.b]\nnetem = { delay = \"10ms\" }\n"
            .to_string(),
    ] {
        assert_eq!(errors(&quiet), Vec::<String>::new(), "{quiet}");
    }

    // Through the binary: the tree on stdout, the warning on stderr, exit 0; -q says nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("dup.toml");
    std::fs::write(&p, src).expect("write");
    let out = qosctl().arg("check").arg(&p).output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{}:6:9: warning: class \"a\" duplicates packets",
            p.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("put the duplicating netem on an interface of its own"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("wan"));
    let out = qosctl()
        .args(["check", "-q"])
        .arg(&p)
        .output()
        .expect("runs");
    assert_eq!((out.status.code(), out.stderr.len()), (Some(0), 0));
    // `load_with_warnings` (what apply uses) hands the same warning over.
    let (_, warnings) = policy::load_with_warnings(&p).expect("valid");
    assert!(
        warnings.contains("warning: class \"a\" duplicates packets"),
        "{warnings}"
    );
}

#[test]
fn all_errors_of_a_file_in_one_run_through_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[interfaces.wan]\nrate = 5000\ndefault = \"bulk\"\n[interfaces.wan.classes.bulk]\nrtae = \"1mbit\"\n",
    )
    .expect("write");
    let out = qosctl().arg("check").arg(&p).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let f = p.display();
    let want = format!(
        "{f}:2:8: error: rate \"5000\" has no unit\n   2 | rate = 5000\n     |        ^^^^ did you mean \"5000kbit\"?\n\
         {f}:4:25: error: class \"bulk\" has no rate\n   4 | [interfaces.wan.classes.bulk]\n     |                         ^^^^ add e.g. rate = \"10%\" or rate = \"2mbit\"\n\
         {f}:5:1: error: unknown key \"rtae\" in class \"bulk\"\n   5 | rtae = \"1mbit\"\n     | ^^^^ did you mean \"rate\"?\n\
         {f}: 3 errors\n"
    );
    assert_eq!(stderr, want);
    // `load` (what apply uses) reports the same, in one error.
    let e = policy::load(&p).expect_err("invalid");
    let msg = format!("{e:#}");
    assert!(
        msg.starts_with(&format!("policy {f} has 3 errors:\n{f}:2:8: error:")),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------
// `check` on the examples: rates worked out by hand.

fn check_json(path: &str) -> serde_json::Value {
    let out = qosctl()
        .args(["check", "--json", path])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// path → (rate bits, ceil bits) of one interface in `check --json`.
fn rates(v: &serde_json::Value, iface: usize) -> HashMap<String, (u64, u64)> {
    v["interfaces"][iface]["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| {
            (
                c["path"].as_str().expect("path").to_string(),
                (
                    c["rate"].as_u64().expect("rate"),
                    c["ceil"].as_u64().expect("ceil"),
                ),
            )
        })
        .collect()
}

#[test]
fn every_example_checks() {
    let mut n = 0;
    for entry in std::fs::read_dir("examples").expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let out = qosctl().arg("check").arg(&path).output().expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
        policy::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        n += 1;
    }
    assert!(n >= 4, "{n} examples");
}

#[test]
fn example_home_router() {
    let v = check_json("examples/home-router.toml");
    let r = rates(&v, 0);
    assert_eq!(r["voice"], (1_900_000, 19_000_000)); // 10% of 19mbit, ceil 100%
    assert_eq!(r["web"], (7_600_000, 17_100_000)); // 40%, ceil 90%
    assert_eq!(r["bulk"], (2_000_000, 19_000_000)); // 5% = 0.95mbit, clamped to min 2mbit
    let dev = &v["devices"][0]["state"];
    assert_eq!(dev["device"], "eth0");
    assert_eq!(dev["qdiscs"][0]["kind"]["type"], "htb");
    assert_eq!(dev["classes"][0]["rate"], 19_000_000);
    let out = qosctl()
        .args(["check", "examples/home-router.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let web = text
        .lines()
        .find(|l| l.trim_start().starts_with("web "))
        .expect("web line");
    let cols: Vec<&str> = web.split_whitespace().collect();
    assert_eq!(cols[2..], ["7.6mbit", "17.1mbit", "1", "0x20", "fq_codel"]);
}

#[test]
fn example_test_range() {
    let v = check_json("examples/test-range.toml");
    let q = &v["devices"][0]["state"]["qdiscs"];
    assert_eq!(q.as_array().map(Vec::len), Some(1));
    assert_eq!(q[0]["handle"], "1:");
    assert_eq!(q[0]["parent"], "Root");
    assert_eq!(q[0]["kind"]["type"], "netem");
    assert_eq!(q[0]["kind"]["delay"], 1_000_000_000u64);
    assert_eq!(q[0]["kind"]["loss"]["p"], 0.5);
    assert_eq!(
        v["devices"][0]["state"]["classes"].as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn example_atc_lab() {
    let v = check_json("examples/atc-lab.toml");
    let r = rates(&v, 0);
    assert_eq!(r["phone"], (2_000_000, 2_000_000));
    assert_eq!(r["laptop"], (5_000_000, 5_000_000));
    assert_eq!(r["settop"], (20_000_000, 30_000_000));
    assert_eq!(r["other"], (10_000_000, 100_000_000)); // 5% = 5mbit, clamped up to 10mbit
    let st = &v["devices"][0]["state"];
    let filters = st["filters"].as_array().expect("filters");
    let fw: Vec<(u64, String)> = filters
        .iter()
        .map(|f| {
            (
                f["kind"]["mark"].as_u64().expect("mark"),
                f["classid"].as_str().expect("classid").to_string(),
            )
        })
        .collect();
    assert_eq!(
        fw,
        [
            (0x101, "1:101".to_string()),
            (0x102, "1:102".to_string()),
            (0x103, "1:103".to_string())
        ]
    );
    // Each device has its own netem leaf, on the class's minor.
    let netems: Vec<(&str, &str)> = st["qdiscs"]
        .as_array()
        .expect("qdiscs")
        .iter()
        .filter(|q| q["kind"]["type"] == "netem")
        .map(|q| {
            (
                q["handle"].as_str().expect("handle"),
                q["parent"]["Class"].as_str().expect("parent class"),
            )
        })
        .collect();
    assert_eq!(
        netems,
        [("101:", "1:101"), ("102:", "1:102"), ("103:", "1:103")]
    );
    // The phone's preset with its loss overridden.
    let phone = st["qdiscs"]
        .as_array()
        .expect("qdiscs")
        .iter()
        .find(|q| q["name"] == "lab/phone")
        .expect("phone leaf");
    assert_eq!(phone["kind"]["delay"], 100_000_000u64);
    assert_eq!(phone["kind"]["loss"]["p"], 0.03);
}

#[test]
fn example_namespace_demo_uses_only_kinds_this_kernel_has() {
    let v = check_json("examples/namespace-demo.toml");
    let r = rates(&v, 0);
    assert_eq!(r["interactive"], (3_000_000, 10_000_000));
    assert_eq!(r["bulk"], (6_000_000, 10_000_000));
    assert_eq!(r["bulk/backup"], (3_000_000, 10_000_000)); // 50% of 6mbit
    assert_eq!(r["bulk/sync"], (2_400_000, 5_000_000)); // 40% of 6mbit; 50% of bulk's 10mbit ceil
    for dev in v["devices"].as_array().expect("devices") {
        for q in dev["state"]["qdiscs"].as_array().expect("qdiscs") {
            let kind = q["kind"]["type"].as_str().expect("type");
            assert!(["htb", "pfifo", "bfifo", "tbf"].contains(&kind), "{kind}");
        }
    }
    // No fw filters: this kernel has no fw classifier.
    for dev in v["devices"].as_array().expect("devices") {
        assert_eq!(dev["state"]["filters"].as_array().map(Vec::len), Some(0));
    }
    assert_eq!(v["devices"][0]["state"]["device"], "veth0");
    assert_eq!(v["devices"][1]["state"]["device"], "veth1");
}

#[test]
fn three_level_percentage_chain_with_clamps() {
    let v = check_json("tests/fixtures/policy/chain.toml");
    let r = rates(&v, 0);
    assert_eq!(r["staff"], (80_000_000, 90_000_000)); // 80%, 90% of 100mbit
    assert_eq!(r["staff/laptops"], (40_000_000, 45_000_000)); // 50% of 80; 50% of 90
    assert_eq!(r["staff/laptops/video"], (10_000_000, 45_000_000)); // 25% of 40
    assert_eq!(r["staff/laptops/other"], (20_000_000, 45_000_000)); // 70% of 40 = 28 → max 20
    assert_eq!(r["guests"], (12_500_000, 15_000_000)); // 12.5%; 10% = 10 → min 15
    let out = qosctl()
        .args(["check", "tests/fixtures/policy/chain.toml"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("eth2 (office): htb rate 100mbit, default staff/laptops/other (1:"));
    let other = text
        .lines()
        .find(|l| l.trim_start().starts_with("other "))
        .expect("other line");
    assert_eq!(other.split_whitespace().nth(2), Some("20mbit"));
}

/// burst and cburst at interface level belong to the root class 1:1; an interface without
/// classes has no class to carry them.
#[test]
fn interface_burst_is_the_root_class_burst() {
    let src = "[interfaces.wan]\nrate = \"20mbit\"\nburst = \"32KiB\"\ncburst = \"16kB\"\ndefault = \"a\"\n\
               [interfaces.wan.classes.a]\nrate = \"5mbit\"\n";
    let c = policy::check_str("p.toml", src);
    assert!(!c.has_errors(), "{}", c.render());
    let root = &c.desired().devices[0].state.classes[0];
    assert_eq!(root.handle, Handle::new(1, 1));
    assert_eq!(
        (root.burst, root.cburst),
        (Some(Size(32_768)), Some(Size(16_000)))
    );
    // Without the keys, tc computes the root's burst as before.
    let plain = src.replace("burst = \"32KiB\"\ncburst = \"16kB\"\n", "");
    let c = policy::check_str("p.toml", &plain);
    let root = &c.desired().devices[0].state.classes[0];
    assert_eq!((root.burst, root.cburst), (None, None));

    let src = "[interfaces.t]\nburst = \"32KiB\"\nnetem = { delay = \"1ms\" }\n\
               [interfaces.u]\ncburst = \"8KiB\"\n[interfaces.v]\nburst = \"8 parsecs\"\n";
    assert_eq!(
        errors(src),
        [
            "2:9: interface \"t\" has no classes: burst belongs to the root class of an interface with classes",
            "5:10: interface \"u\" has no classes: cburst belongs to the root class of an interface with classes",
            "7:9: unknown size unit \"parsecs\" in \"8 parsecs\"",
        ]
    );
    assert_eq!(
        hints(src)[..2],
        [
            Some("remove it; netem's own rate has no burst".to_string()),
            Some("remove it, or add classes".to_string())
        ]
    );
}

#[test]
fn resolved_model_shape() {
    let c = policy::check_str(
        "p.toml",
        "[interfaces.wan]\ndevice = \"eth0\"\nrate = \"20mbit\"\ndefault = \"bulk/backup\"\n\
         [interfaces.wan.classes.bulk]\nrate = \"50%\"\nburst = \"15kB\"\n\
         [interfaces.wan.classes.bulk.classes.backup]\nid = 0x30\nrate = \"1mbit\"\nprio = 4\nmarks = [0x30, 0x31]\n",
    );
    assert!(!c.has_errors(), "{}", c.render());
    let d = c.desired();
    assert_eq!(d.devices[0].alias, "wan");
    let st = &d.devices[0].state;
    assert_eq!(st.device, "eth0");
    let bulk = qosctl::resolve::hashed_minor("bulk");
    // Root htb, root class 1:1 at the interface rate.
    match &st.qdiscs[0].kind {
        QdiscKind::Htb(h) => assert_eq!((h.default, h.r2q), (0x30, None)),
        k => panic!("{k:?}"),
    }
    assert_eq!(st.classes[0].handle, Handle::new(1, 1));
    assert_eq!(st.classes[0].parent, None);
    assert_eq!(
        (st.classes[0].rate, st.classes[0].ceil),
        (Rate::from_bits(20_000_000), Rate::from_bits(20_000_000))
    );
    assert_eq!(st.classes[0].name.as_deref(), Some("wan"));
    // bulk: parent 1:1, its hashed minor, burst kept, no leaf (it has a child).
    let b = &st.classes[1];
    assert_eq!(b.handle, Handle::new(1, bulk));
    assert_eq!(b.parent, Some(Handle::new(1, 1)));
    assert_eq!(b.burst, Some(Size(15_000)));
    assert_eq!((b.cburst, b.quantum, b.prio), (None, None, None));
    assert_eq!(b.name.as_deref(), Some("wan/bulk"));
    // backup: id, parent bulk, prio, ceil inherited from bulk (which inherited 20mbit).
    let k = &st.classes[2];
    assert_eq!(k.handle, Handle::new(1, 0x30));
    assert_eq!(k.parent, Some(Handle::new(1, bulk)));
    assert_eq!(k.prio, Some(4));
    assert_eq!(k.ceil, Rate::from_bits(20_000_000));
    assert_eq!(k.name.as_deref(), Some("wan/bulk/backup"));
    // One leaf qdisc 30: on 1:30, fq_codel by default.
    assert_eq!(st.qdiscs.len(), 2);
    assert_eq!(st.qdiscs[1].handle, Handle::qdisc(0x30));
    assert_eq!(st.qdiscs[1].parent, Parent::Class(Handle::new(1, 0x30)));
    assert!(matches!(st.qdiscs[1].kind, QdiscKind::FqCodel(_)));
    assert_eq!(st.qdiscs[1].name.as_deref(), Some("wan/bulk/backup"));
    // Two fw filters on 1:, one prio, protocol all.
    assert_eq!(st.filters.len(), 2);
    for (f, mark) in st.filters.iter().zip([0x30, 0x31]) {
        assert_eq!(f.parent, Handle::qdisc(1));
        assert_eq!(f.prio, qosctl::resolve::FW_FILTER_PRIO);
        assert_eq!(f.protocol, "all");
        assert_eq!(
            f.kind,
            FilterKind::Fw {
                mark,
                mask: 0xffff_ffff
            }
        );
        assert_eq!(f.classid, Some(Handle::new(1, 0x30)));
        assert_eq!(f.name.as_deref(), Some("wan/bulk/backup"));
    }
}

// ---------------------------------------------------------------------------------------
// Broken input: clear errors, never a panic.

#[test]
fn broken_corpus_gives_clear_errors() {
    let dir = Path::new("tests/fixtures/policy/broken");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("corpus") {
        let path = entry.expect("entry").path();
        let out = qosctl().arg("check").arg(&path).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!("{}:", path.display())) && first.contains(": error: "),
            "{}: {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn generated_garbage_gives_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deep_header = format!(
        "[interfaces.wan.{}]\nrate = \"1mbit\"\n",
        (0..10_000)
            .map(|i| format!("classes.c{i}"))
            .collect::<Vec<_>>()
            .join(".")
    );
    let deep_inline = format!(
        "[interfaces.wan]\nrate = \"1mbit\"\nx = {}1{}\n",
        "{a = ".repeat(10_000),
        "}".repeat(10_000)
    );
    let deep_array = format!("x = {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let mut binary = Vec::new();
    let mut s = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..4096 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        binary.push((s >> 24) as u8);
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "error: the policy names no interface"),
        ("deep-header", deep_header.into_bytes(), "recurs"),
        ("deep-inline", deep_inline.into_bytes(), "recurs"),
        ("deep-array", deep_array.into_bytes(), "recurs"),
        ("binary", binary, "error: the file is not UTF-8 text"),
        (
            "many-huge",
            "[interfaces.wan]\nrate = \"1e999mbit\"\n[interfaces.wan.classes.a]\nrate = { percent = 1e308 }\nburst = 9223372036854775807\n".into(),
            "error:",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = dir.path().join(format!("{name}.toml"));
        std::fs::write(&p, &bytes).expect("write");
        let out = qosctl().arg("check").arg(&p).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(want), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    // A missing file is an error naming it.
    let out = qosctl()
        .args(["check", "/nonexistent/p.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read policy file /nonexistent/p.toml"));
}

/// Every prefix of every example (a file cut anywhere) and random byte mutations: each
/// either checks or yields positioned errors; nothing panics.
#[test]
fn truncations_and_mutations_never_panic() {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let alphabet = b"[]{}=\"'.,%#\n 0x1-_abz\\\t\x00\xff";
    for ex in ["home-router", "test-range", "atc-lab", "namespace-demo"] {
        let text = std::fs::read_to_string(format!("examples/{ex}.toml")).expect("example");
        for cut in (0..text.len())
            .filter(|i| text.is_char_boundary(*i))
            .step_by(7)
        {
            let c = policy::check_str("t.toml", &text[..cut]);
            let _ = c.render();
        }
        let bytes = text.as_bytes();
        for _ in 0..400 {
            let mut m = bytes.to_vec();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % m.len().max(1);
                match next() % 3 {
                    0 => m[i] = alphabet[(next() as usize) % alphabet.len()],
                    1 => {
                        m.remove(i);
                    }
                    _ => m.insert(i, alphabet[(next() as usize) % alphabet.len()]),
                }
            }
            let s = String::from_utf8_lossy(&m);
            let c = policy::check_str("m.toml", &s);
            let rendered = c.render();
            if c.has_errors() {
                assert!(rendered.contains(": error: "), "{rendered}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Stable handles.

/// A policy with a default class, 10 groups, and the leaves `names` ("g3/c17") in that order.
fn generated(names: &[String]) -> String {
    let mut s = String::from(
        "[interfaces.wan]\nrate = \"20gbit\"\ndefault = \"dflt\"\n[interfaces.wan.classes.dflt]\nrate = \"1mbit\"\n",
    );
    for g in 0..10 {
        s.push_str(&format!(
            "[interfaces.wan.classes.g{g}]\nrate = \"1gbit\"\n"
        ));
    }
    for n in names {
        let (g, _) = n.split_once('/').expect("group/name");
        s.push_str(&format!(
            "[interfaces.wan.classes.{g}.classes.{}]\nrate = \"1mbit\"\n",
            &n[g.len() + 1..]
        ));
    }
    s
}

fn handles(src: &str) -> HashMap<String, (u16, qosctl::resolve::MinorSource)> {
    let c = policy::check_str("g.toml", src);
    assert!(!c.has_errors(), "{}", c.render());
    c.resolved.interfaces[0]
        .classes
        .iter()
        .map(|k| (k.path.clone(), (k.handle.minor, k.minor_source)))
        .collect()
}

#[test]
fn handles_are_stable_under_add_remove_reorder() {
    use qosctl::resolve::{hashed_minor, MinorSource};
    let names: Vec<String> = (0..989).map(|i| format!("g{}/c{i}", i % 10)).collect();
    let base = handles(&generated(&names));
    assert_eq!(base.len(), 1000);
    // Minors are unique and avoid 0, 1 and 0xffff.
    let mut seen = std::collections::HashSet::new();
    for (p, (m, _)) in &base {
        assert!((2..=0xfffe).contains(m), "{p}: {m:#x}");
        assert!(seen.insert(*m), "duplicate minor {m:#x}");
    }
    // With ~1000 classes in 65533 minors a few hashes collide; those classes probe.
    let probed = base
        .values()
        .filter(|(_, s)| *s == MinorSource::Probe)
        .count();
    assert!(probed < 40, "{probed} classes probed");

    // Reordering changes nothing at all.
    let mut rev = names.clone();
    rev.reverse();
    let mut rng = 12345u64;
    for i in (1..rev.len()).rev() {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rev.swap(i, (rng >> 33) as usize % (i + 1));
    }
    assert_eq!(handles(&generated(&rev)), base);

    // Adding a class: every class that holds its own hashed minor keeps it, unless the new
    // class hashes to exactly that minor.
    for j in 0..200 {
        let new = format!("g{}/new{j}", j % 10);
        let mut more = names.clone();
        more.insert((j * 37) % names.len(), new.clone());
        let after = handles(&generated(&more));
        let new_minor = hashed_minor(&new);
        for (p, (m, src)) in &base {
            if *src == MinorSource::Hash && *m != new_minor {
                assert_eq!(after[p].0, *m, "adding {new} moved {p}");
            }
        }
        assert!(after.contains_key(&new));
    }

    // Removing a class: every class holding its hashed minor keeps it.
    for j in (0..names.len()).step_by(10) {
        let mut fewer = names.clone();
        let gone = fewer.remove(j);
        let after = handles(&generated(&fewer));
        for (p, (m, src)) in &base {
            if *p != gone && *src == MinorSource::Hash {
                assert_eq!(after[p].0, *m, "removing {gone} moved {p}");
            }
        }
    }

    // Positions are irrelevant, paths are everything: the handle of a class is the same in
    // a policy that has only that class.
    for p in names.iter().take(50) {
        if base[p].1 == MinorSource::Hash {
            let alone = handles(&generated(std::slice::from_ref(p)));
            assert_eq!(alone[p].0, base[p].0);
        }
    }
}

#[test]
fn colliding_paths_resolve_deterministically() {
    use qosctl::resolve::{hashed_minor, MinorSource};
    // Find two paths that hash to the same minor.
    let mut by_minor: HashMap<u16, String> = HashMap::new();
    let (a, b) = (0..200_000)
        .find_map(|i| {
            let p = format!("c{i}");
            by_minor
                .insert(hashed_minor(&p), p.clone())
                .map(|prev| (prev, p))
        })
        .expect("a collision among 200k paths");
    let policy = |order: [&str; 2]| {
        format!(
            "[interfaces.wan]\nrate = \"10mbit\"\ndefault = \"{}\"\n[interfaces.wan.classes.{}]\nrate = \"1mbit\"\n[interfaces.wan.classes.{}]\nrate = \"1mbit\"\n",
            order[0], order[0], order[1]
        )
    };
    let h1 = handles(&policy([&a, &b]));
    let h2 = handles(&policy([&b, &a]));
    assert_eq!(h1, h2);
    let (winner, loser) = if a < b { (&a, &b) } else { (&b, &a) };
    assert_eq!(h1[winner], (hashed_minor(winner), MinorSource::Hash));
    assert_eq!(h1[loser].1, MinorSource::Probe);
    assert_ne!(h1[loser].0, h1[winner].0);
    // An explicit id on the hashed minor pushes the hashed class to probe.
    let src = format!(
        "[interfaces.wan]\nrate = \"10mbit\"\ndefault = \"x\"\n[interfaces.wan.classes.x]\nrate = \"1mbit\"\nid = {}\n[interfaces.wan.classes.{a}]\nrate = \"1mbit\"\n",
        hashed_minor(&a)
    );
    let h = handles(&src);
    assert_eq!(h["x"], (hashed_minor(&a), MinorSource::Id));
    assert_eq!(h[&a].1, MinorSource::Probe);
    // check warns about probed classes on stderr, and still succeeds.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.toml");
    std::fs::write(&p, policy([&a, &b])).expect("write");
    let out = qosctl().arg("check").arg(&p).output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("note: wan: 1 class got a probed handle"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("  {loser} = 1:{:x}", h1[loser].0)),
        "{stderr}"
    );
}

#[test]
fn ten_thousand_classes_resolve() {
    let names: Vec<String> = (0..9989).map(|i| format!("g{}/c{i}", i % 10)).collect();
    let src = generated(&names);
    let t = std::time::Instant::now();
    let c = policy::check_str("big.toml", &src);
    let took = t.elapsed();
    assert!(!c.has_errors(), "{}", c.render());
    assert_eq!(c.resolved.interfaces[0].classes.len(), 10_000);
    assert_eq!(c.desired().devices[0].state.qdiscs.len(), 1 + 9990);
    // Generous: debug builds are ~10x slower than release (where it is well under 50 ms).
    assert!(took.as_secs() < 5, "took {took:?}");
}
