//! Smoke run of the ISP-scale benchmark (bench/run.sh, issue 5) at 200 subscriber classes,
//! with the real qosctl binary, so that the benchmark cannot rot. It asserts what must hold
//! whatever the machine: the mutation counts and the tree that ends up in the kernel, never
//! times.
//!
//! Needs root (bench/run.sh creates its own network namespace and veth pair, and removes
//! them on exit), python3 (the generator and the runner) and /usr/bin/time.

mod common;
use common::is_root;

use serde_json::Value;

fn count(size: &Value, key: &str) -> Option<i64> {
    size["counts"][key].as_i64()
}

#[test]
fn bench_smoke_200_classes_mutation_counts() {
    if !is_root() {
        eprintln!("SKIP: bench smoke run needs root (it creates a network namespace)");
        return;
    }
    // What bench/run.sh runs in the smoke variant (no FireQoS, no strace).
    common::require_all(&["bash", "python3", "ip", "tc", "/usr/bin/time"]);
    // Fast variant: no FireQoS, no one-process-per-command run (they test other tools).
    let (doc, ctx) = common::bench_run(&[
        "--sizes",
        "200",
        "--runs",
        "1",
        "--no-fireqos",
        "--percmd-max",
        "0",
    ]);
    let s = &doc["sizes"]["200"];

    assert!(
        s["qosctl_error"].is_null(),
        "qosctl apply did not run in the benchmark: {}\n{ctx}",
        s["qosctl_error"]
    );
    // The floor batch is qosctl's own plan, so both build the same tree.
    assert_eq!(
        s["floor_source"].as_str(),
        Some("qosctl apply --dry-run --json (same commands)"),
        "{ctx}"
    );
    assert!(
        s["errors"]["raw"].is_null(),
        "raw tc -batch of qosctl's plan failed: {ctx}"
    );

    // 2 sites x 10 APs x 10 subscribers: 223 htb classes (with the root class 1:1), the
    // root qdisc and 200 pfifo leaf qdiscs.
    let meta = &s["meta"];
    let classes = meta["classes_per_device"].as_i64().expect("meta");
    let leaves = meta["leaf_qdiscs_per_device"].as_i64().expect("meta");
    assert_eq!((classes, leaves), (223, 200), "{ctx}");
    for method in ["first", "raw"] {
        assert_eq!(
            s["objects"][method]["classes"].as_i64(),
            Some(classes),
            "classes built by {method}: {ctx}"
        );
        assert_eq!(
            s["objects"][method]["qdiscs"].as_i64(),
            Some(leaves + 1),
            "qdiscs built by {method}: {ctx}"
        );
    }

    // First apply on empty devices: one command at least per object it creates.
    let first = count(s, "first").expect("first-apply count");
    assert!(
        first > classes + leaves,
        "first apply planned {first} commands for {classes} classes and {} qdiscs: {ctx}",
        leaves + 1
    );
    assert_eq!(
        count(s, "noop"),
        Some(0),
        "re-apply must change nothing: {ctx}"
    );
    assert_eq!(
        count(s, "edit"),
        Some(1),
        "one rate edited = one class change: {ctx}"
    );
    assert_eq!(count(s, "edit_back"), Some(1), "and back: {ctx}");
    assert_eq!(
        count(s, "add"),
        Some(2),
        "one class added = that class and its leaf qdisc: {ctx}"
    );
    assert_eq!(count(s, "add_noop"), Some(0), "after adding: {ctx}");
    let remove = count(s, "remove").expect("remove count");
    assert!(
        (1..=2).contains(&remove),
        "removing the added class takes the class (and maybe its leaf qdisc), not {remove}: {ctx}"
    );
    assert!(
        s["apply_rss_kb"].as_i64().is_some_and(|kb| kb > 0),
        "peak memory measured: {ctx}"
    );
}
