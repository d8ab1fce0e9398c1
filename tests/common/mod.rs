//! Helpers shared by the integration test binaries (each `tests/*.rs` is its own crate).

pub mod traffic;

/// True when the effective uid is 0 (the second field of `Uid:`, what `id -u` prints):
/// tests that create network namespaces or boot the lab need it, and skip visibly without.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A private network namespace with a veth pair `a0` <-> `b0`, both up; deleted on drop,
/// also when the test panics. The name carries a tag and the process id, so test binaries
/// running in parallel never collide; a leftover of a killed earlier run is removed first.
#[allow(dead_code)] // not every test binary uses it
pub struct Netns(pub String);

#[allow(dead_code)]
impl Netns {
    pub fn with_veth(tag: &str) -> Netns {
        let name = format!("qx-{tag}-{}", std::process::id());
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let ns = Netns(name);
        let n = ns.0.as_str();
        for args in [
            &["netns", "add", n][..],
            &[
                "-n", n, "link", "add", "a0", "type", "veth", "peer", "name", "b0",
            ],
            &["-n", n, "link", "set", "a0", "up"],
            &["-n", n, "link", "set", "b0", "up"],
        ] {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .expect("run ip");
            assert!(
                out.status.success(),
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

/// Skips (visibly) a test that needs root. Use with `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("SKIP: {} needs root (network namespaces)", module_path!());
            return;
        }
    };
}

/// A small htb tree on `a0` with kernel-default leaves (pfifo) that this machine's kernel
/// has; `bulk` is the last table, so a test can append keys to it.
#[allow(dead_code)]
pub const LAB_POLICY: &str = r#"
[interfaces.lab]
device = "a0"
rate = "100mbit"
default = "bulk"
leaf = "pfifo"

[interfaces.lab.classes.voice]
id = 0x10
rate = "10%"
prio = 0

[interfaces.lab.classes.bulk]
id = 0x30
rate = "20%"
ceil = "90%"
prio = 2
"#;
/// One device's state from a capture in tests/fixtures/tc/DIR, assembled as `read_device`
/// does: the device's entries of QDISCS (a `tc -j qdisc show` of all devices), then the
/// class dump and the filter dumps (file, parent) when given.
#[allow(dead_code)]
pub fn captured_state(
    dir: &str,
    qdiscs: &str,
    dev: &str,
    classes: Option<&str>,
    filters: &[(&str, &str)],
) -> qosctl::model::DeviceState {
    use qosctl::tc::read::{parse_classes, parse_filters, parse_qdiscs};
    let read = |file: &str| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tc")
            .join(dir)
            .join(file);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let all: serde_json::Value = serde_json::from_str(&read(qdiscs)).expect("qdiscs are JSON");
    let mine: Vec<_> = all
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter(|q| q["dev"] == dev)
        .cloned()
        .collect();
    let mut st = qosctl::model::DeviceState {
        device: dev.to_string(),
        qdiscs: parse_qdiscs(&serde_json::to_string(&mine).unwrap()).unwrap(),
        ..Default::default()
    };
    if let Some(c) = classes {
        st.classes = parse_classes(&read(c)).unwrap();
    }
    for (file, parent) in filters {
        let parent = qosctl::model::Handle::parse(parent).expect("a handle");
        st.filters
            .extend(parse_filters(&read(file), parent).unwrap());
    }
    st
}
