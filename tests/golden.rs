//! Golden tests of the differ, from real tc captures: each folder of tests/fixtures/plan
//! holds a policy, the live state of its devices as tc printed it (`live/DEV/qdisc.json`,
//! `class.txt` or `class.json`, `filter-1.json`, `filter-ffff.json`; `capture.sh` made the
//! ones from this machine's kernel, others come from the kernel lab), and the expected plan
//! (`plan.txt`) and tc lines (`commands.txt`). `GOLDEN_REGEN=1` rewrites the expectations;
//! review the diff before committing it.

use std::path::{Path, PathBuf};

use qosctl::model::{DeviceState, Handle};
use qosctl::tc::read;

fn live_device(dir: &Path, dev: &str) -> DeviceState {
    let d = dir.join("live").join(dev);
    let read = |name: &str| std::fs::read_to_string(d.join(name)).ok();
    let mut state = DeviceState {
        device: dev.to_string(),
        ..Default::default()
    };
    if let Some(q) = read("qdisc.json") {
        state.qdiscs = read::parse_qdiscs(&q).unwrap_or_else(|e| panic!("{}: {e:#}", d.display()));
    }
    if let Some(c) = read("class.txt").or_else(|| read("class.json")) {
        state.classes =
            read::parse_classes(&c).unwrap_or_else(|e| panic!("{}: {e:#}", d.display()));
    }
    for (file, parent) in [
        ("filter-1.json", Handle::qdisc(1)),
        ("filter-ffff.json", Handle::INGRESS),
    ] {
        if let Some(f) = read(file) {
            state.filters.extend(
                read::parse_filters(&f, parent)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", d.display())),
            );
        }
    }
    state
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("policy.toml").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn differ_golden_cases() {
    let regen = std::env::var_os("GOLDEN_REGEN").is_some();
    let all = cases();
    assert!(all.len() >= 6, "golden cases missing: {all:?}");
    let mut failures = Vec::new();
    for case in all {
        let desired = qosctl::policy::load(&case.join("policy.toml"))
            .unwrap_or_else(|e| panic!("{}: {e:#}", case.display()));
        let live: Vec<DeviceState> = desired
            .devices
            .iter()
            .map(|d| live_device(&case, &d.state.device))
            .collect();
        let plan = qosctl::apply::make_plan(&desired, &live);
        let got_plan = qosctl::plan::render_human(&plan);
        let got_cmds: String = plan.commands().iter().map(|l| format!("{l}\n")).collect();
        for (file, got) in [("plan.txt", &got_plan), ("commands.txt", &got_cmds)] {
            let path = case.join(file);
            if regen {
                std::fs::write(&path, got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if &want != got {
                failures.push(format!(
                    "{}:\n--- want\n{want}--- got\n{got}",
                    path.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
