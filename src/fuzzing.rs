//! The entry points of the fuzz targets (`fuzz/fuzz_targets/*.rs`, run with cargo-fuzz) and
//! of the replay of their saved corpus in the normal test suite (`tests/fuzz_corpus.rs`):
//! both call exactly these functions, so what the fuzzer explored stays tested on stable.
//!
//! Each function takes arbitrary bytes and must never panic. Besides "no panic" they assert
//! properties that would otherwise make `apply` misbehave on such input:
//! - a valid policy's desired state diffed against itself is empty (else `apply` would never
//!   converge), and its plan from the kernel default renders to tc lines;
//! - every object the reader returns renders (a plan that removes it needs its tc line);
//! - the fast TOML reader, wherever it builds a tree, builds exactly toml's.
//!
//! docs/fuzzing.md has the commands.

use crate::apply::make_plan;
use crate::model::{DeviceState, Handle};
use crate::plan::{self, Plan};
use crate::policy;
use crate::tc::read;

/// Splits the planner's input: the policy, then the tc outputs of one device, separated by
/// NUL bytes (never valid in a policy or in tc's output, so the fuzzer keeps them apart).
pub const SEPARATOR: u8 = 0;

/// Policy parser, validator and resolver: bytes → policy text → `check`, the rendering of
/// its diagnostics and tree, and (when valid) its desired state and first plan.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The fast TOML reader, where it builds a tree, builds DeTable's (src/policy/events.rs).
    if let Some(fast) = policy::node::parse_fast(text) {
        let slow = policy::node::parse_by_detable(text)
            .expect("the fast TOML reader built a tree where toml reports an error");
        assert_eq!(
            format!("{fast:?}"),
            format!("{slow:?}"),
            "the fast TOML reader built another tree than toml's"
        );
    }
    let checked = policy::check_str("fuzz.toml", text);
    // Diagnostics point into the text: line, column and caret must be computable.
    let _ = checked.render();
    if checked.has_errors() {
        return;
    }
    let _ = crate::check::render_tree(&checked);
    let desired = checked.desired();
    let _ = serde_json::to_string(&desired).expect("the desired state serializes");
    for d in &desired.devices {
        let again = plan::diff_device(&d.state, &d.state);
        assert!(
            again.is_empty(),
            "{}: the desired state differs from itself: {again:?}",
            d.alias
        );
    }
    let fresh: Vec<DeviceState> = desired
        .devices
        .iter()
        .map(|d| DeviceState {
            device: d.state.device.clone(),
            ..DeviceState::default()
        })
        .collect();
    render(&make_plan(&desired, &fresh));
}

/// The tc-output reader: the same bytes as `tc -j qdisc show`, `class show` (JSON or the
/// text of iproute2 ≤ 6.1) and `filter show` (JSON or text, on the root and on ingress).
pub fn reader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let live = read_state("fuzz0", text, text, text, text);
    check_live(&live);
}

/// The planner: a policy and the live state of its first device (the tc outputs after the
/// policy, see `SEPARATOR`) → the plan, its tc lines and its human rendering.
pub fn planner(data: &[u8]) {
    let mut parts = data.split(|b| *b == SEPARATOR);
    let policy_bytes = parts.next().unwrap_or_default();
    let mut next = || {
        parts
            .next()
            .and_then(|p| std::str::from_utf8(p).ok())
            .unwrap_or("")
    };
    let (q, c, f, i) = (next(), next(), next(), next());
    let Ok(text) = std::str::from_utf8(policy_bytes) else {
        return;
    };
    let checked = policy::check_str("fuzz.toml", text);
    if checked.has_errors() {
        return;
    }
    let desired = checked.desired();
    let live: Vec<DeviceState> = desired
        .devices
        .iter()
        .enumerate()
        .map(|(n, d)| {
            if n == 0 {
                read_state(&d.state.device, q, c, f, i)
            } else {
                DeviceState {
                    device: d.state.device.clone(),
                    ..DeviceState::default()
                }
            }
        })
        .collect();
    live.iter().for_each(check_live);
    render(&make_plan(&desired, &live));
}

/// A device's state from its tc outputs; whatever the reader refuses stays empty (the real
/// reader's error is a message, not a plan, so it has nothing more to test here).
fn read_state(dev: &str, qdiscs: &str, classes: &str, root: &str, ingress: &str) -> DeviceState {
    let mut state = DeviceState {
        device: dev.to_string(),
        ..DeviceState::default()
    };
    state.qdiscs = read::parse_qdiscs(qdiscs).unwrap_or_default();
    state.classes = read::parse_classes(classes).unwrap_or_default();
    for (out, parent) in [(root, Handle::qdisc(1)), (ingress, Handle::INGRESS)] {
        state
            .filters
            .extend(read::parse_filters(out, parent).unwrap_or_default());
    }
    state
}

/// What must hold for any live state the reader returns. (Not that it diffs empty against
/// itself: a live state may hold what no policy can describe, such as a foreign u32
/// filter or a qdisc under a handle outside qosctl's scheme, and the differ rightly
/// replaces those; only desired states, which come from the resolver, have that property.)
fn check_live(live: &DeviceState) {
    let _ = plan::diff_device(live, live);
    // Removing all of it (a reset-like plan) renders every object it holds.
    let empty = DeviceState {
        device: live.device.clone(),
        ..DeviceState::default()
    };
    for op in plan::diff_device(&empty, live) {
        let _ = plan::command(&live.device, &op);
    }
    for q in &live.qdiscs {
        let _ = crate::kind::qdisc::summary(&q.kind, crate::kind::Style::Full);
    }
}

fn render(p: &Plan) {
    let _ = p.devices.iter().map(|d| d.commands().len()).sum::<usize>();
    let _ = plan::render_human(p);
    let _ = serde_json::to_string(p).expect("a plan serializes");
}
