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
