//! The saved fuzz corpus, replayed on stable through the same entry functions the cargo-fuzz
//! targets call (`qosctl::fuzzing`), so what the fuzzer explored stays tested without
//! nightly: every input of `fuzz/corpus/<target>/` and of
//! `tests/fixtures/fuzz-regressions/<target>/` (the crashes fuzzing found, each fixed). An
//! input that panics fails the test and names its file. docs/fuzzing.md has the commands.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in [
        root.join("fuzz/corpus").join(target),
        root.join("tests/fixtures/fuzz-regressions").join(target),
    ] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            v.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    v.sort();
    v
}

fn replay(target: &str, f: fn(&[u8])) {
    let files = inputs(target);
    // The corpus is committed: an empty one means it was lost, not that all is well.
    assert!(
        files.len() >= 20,
        "fuzz/corpus/{target} has {} inputs; see docs/fuzzing.md",
        files.len()
    );
    for p in &files {
        let data = std::fs::read(p).unwrap();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{target}: {} panics", p.display());
    }
}

#[test]
fn policy_corpus() {
    replay("policy", qosctl::fuzzing::policy);
}

#[test]
fn reader_corpus() {
    replay("reader", qosctl::fuzzing::reader);
}

#[test]
fn planner_corpus() {
    replay("planner", qosctl::fuzzing::planner);
}
