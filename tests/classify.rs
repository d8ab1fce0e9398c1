//! Golden reader tests: the u32 filters of every iproute2 version in the fixtures, read back
//! into matches in the policy's words (and hash tables, links, redirects as structure).

mod common;
use common::fixture;

use qosctl::classify::read::{parse, U32Body, U32Filter};

/// `prio protocol handle: summary [-> class]` of every object, as `show` would word it.
fn summarize(fs: &[U32Filter]) -> Vec<String> {
    fs.iter()
        .map(|f| {
            let to = match &f.body {
                U32Body::Rule {
                    classid: Some(c), ..
                } => format!(" -> {c}"),
                _ => String::new(),
            };
            format!(
                "{} {} {} = {}{to}",
                f.prio,
                f.protocol,
                f.handle,
                f.summary()
            )
        })
        .collect()
}

/// The by-version state (see tests/fixtures/tc/README.md): the same filters whatever tc
/// printed them — JSON from 6.1, text inside JSON before, plain text always.
const BY_VERSION: &[&str] = &[
    "1 ip 800: = hash table 800: (1 buckets)",
    "1 ip 800::800 = dst 10.99.0.2/32 dport 5001 -> 1:10",
    "1 ip 800::801 = hash on dst last byte into table 3:",
    "2 ip 801: = hash table 801: (1 buckets)",
    "2 ip 801::800 = all -> 1:20",
    "3 ip 802: = hash table 802: (1 buckets)",
    "3 ip 802::10 = src 10.99.0.0/24 proto udp -> 1:a0",
    "5 ipv6 803: = hash table 803: (1 buckets)",
    "5 ipv6 803::800 = dst 2001:db8::/32 -> 1:20",
    "6 ip 3: = hash table 3: (256 buckets)",
    "6 ip 3:5:800 = dst 10.99.0.5/32 -> 1:ff",
    "6 ip 804: = hash table 804: (1 buckets)",
    "9 all 805: = hash table 805: (1 buckets)",
    "9 all 805::800 = all -> 1:1",
];

#[test]
fn every_iproute2_version_reads_the_same_matches() {
    for v in [
        "5.4.0", "5.5.0", "5.10.0", "5.15.0", "6.1.0", "6.8.0", "7.1.0",
    ] {
        for file in ["filter-v0-s-d.json", "filter-v0.txt"] {
            let got = summarize(&parse(&fixture(&format!("by-version/{v}/{file}"))).unwrap());
            // Text dumps print a hash table's handle as `800:` like JSON does.
            assert_eq!(got, BY_VERSION, "{v}/{file}");
        }
    }
}

#[test]
fn the_ingress_redirect_reads_back_in_every_version() {
    for v in [
        "5.4.0", "5.5.0", "5.10.0", "5.15.0", "6.1.0", "6.8.0", "7.1.0",
    ] {
        let got = summarize(
            &parse(&fixture(&format!(
                "by-version/{v}/filter-v1-ingress-s.json"
            )))
            .unwrap(),
        );
        assert_eq!(
            got,
            [
                "1 all 800: = hash table 800: (1 buckets)",
                "1 all 800::800 = all, redirect to ifb0"
            ],
            "{v}"
        );
    }
    for f in [
        "iproute2-6.1/03-ingress-filter-s-d.json",
        "iproute2-6.1/03-ingress-filter.txt",
    ] {
        let got = summarize(&parse(&fixture(f)).unwrap());
        assert_eq!(got[1], "1 all 800::800 = all, redirect to ifb0", "{f}");
    }
}

#[test]
fn debian_12_dumps_and_kernel_lab_u32() {
    for f in [
        "iproute2-6.1/02-u32-filter-s-d.json",
        "iproute2-6.1/02-u32-filter-s-d.txt",
    ] {
        let got = summarize(&parse(&fixture(f)).unwrap());
        assert!(
            got.contains(&"1 ip 800::800 = dst 10.99.0.2/32 dport 5001 -> 1:10".to_string()),
            "{f}: {got:#?}"
        );
        assert!(
            got.contains(&"6 ip 3:5:800 = dst 10.99.0.5/32 -> 1:ff".to_string()),
            "{f}: {got:#?}"
        );
    }
    // tc filter add … prio 20 u32 match ip dst 10.0.0.2/32 match ip protocol 17 0xff flowid 1:30
    for k in [
        "kernel-lab-6.1.0-56-amd64",
        "kernel-lab-6.1.0-56-amd64-iproute2-6.15.0",
        "kernel-lab-6.12.95+deb12-amd64",
    ] {
        for f in ["filter-veth0-s.json", "filter-veth0.txt"] {
            let got = summarize(&parse(&fixture(&format!("{k}/{f}"))).unwrap());
            let rule: Vec<_> = got.iter().filter(|s| s.starts_with("20 ")).collect();
            assert_eq!(rule.len(), 2, "{k}/{f}: {got:#?}");
            assert!(
                rule[1].ends_with(" = dst 10.0.0.2/32 proto udp -> 1:30"),
                "{k}/{f}: {rule:?}"
            );
        }
    }
}
