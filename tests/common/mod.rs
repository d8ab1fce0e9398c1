//! Helpers shared by the integration test binaries (each `tests/*.rs` is its own crate).

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
        require("ip");
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

/// The program a test is about to run, found on PATH (or an absolute path that must exist).
/// A missing one fails the test up front, naming it and the script that should have
/// installed it, instead of a later assertion about traffic that was never sent.
/// tests/deps.rs checks that every program named here has a `need` line in
/// tests/install-deps.sh.
#[allow(dead_code)]
pub fn require(program: &str) -> std::path::PathBuf {
    let found = if program.starts_with('/') {
        let p = std::path::PathBuf::from(program);
        p.is_file().then_some(p)
    } else {
        which::which(program).ok()
    };
    found.unwrap_or_else(|| panic!("{program} is missing: tests/install-deps.sh must install it"))
}

/// `require` for each of `programs`.
#[allow(dead_code)]
pub fn require_all(programs: &[&str]) {
    for p in programs {
        require(p);
    }
}
