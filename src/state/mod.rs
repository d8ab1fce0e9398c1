//! Saved state: the versioned `show --json` format ([`json`]), and reading it back for
//! `apply --dry-run --state FILE`, which plans against a router's last saved state on a
//! machine that has none of its devices (a policy repository's CI).

pub mod json;

use anyhow::{Context, Result};
use std::path::Path;

use crate::model::{Desired, DeviceState};

/// What `--state` names: a file, or `empty` for the kernel default of every device.
pub enum Source<'a> {
    Empty,
    File(&'a Path),
}

impl<'a> Source<'a> {
    pub fn new(arg: &'a Path) -> Source<'a> {
        // A file really called `empty` can still be named as `./empty`.
        if arg.as_os_str() == "empty" {
            Source::Empty
        } else {
            Source::File(arg)
        }
    }
}

/// The state to plan against, one entry per device of the policy, in policy order, as
/// `apply::read_all` returns it from the kernel. A device that the file does not list is at
/// the kernel default: `show --json` lists only devices with a qdisc tree, so a device the
/// router has but never shaped is absent, and planning it as fresh is what the router would
/// do. A note on stderr names each such device, so a typo in a device name is visible.
pub fn for_plan(src: &Source, desired: &Desired) -> Result<Vec<DeviceState>> {
    let saved = match src {
        Source::Empty => Vec::new(),
        Source::File(path) => {
            let what = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the state file {what}"))?;
            json::StateFile::parse(&text, &what)?.to_states()?
        }
    };
    Ok(desired
        .devices
        .iter()
        .map(|d| {
            let dev = &d.state.device;
            match saved.iter().find(|s| &s.device == dev) {
                Some(s) => as_read_for_plan(s),
                None => {
                    if let Source::File(path) = src {
                        eprintln!(
                            "note: {} ({dev}) is not in {}: planned from the kernel default",
                            d.alias,
                            path.display()
                        );
                    }
                    DeviceState {
                        device: dev.clone(),
                        ..DeviceState::default()
                    }
                }
            }
        })
        .collect())
}

/// What `tc::read::read_config` would have returned: no counters, and no policy names
/// (a file saved with `show --policy` carries them; the kernel does not).
fn as_read_for_plan(s: &DeviceState) -> DeviceState {
    let mut s = s.clone();
    for q in &mut s.qdiscs {
        q.name = None;
        q.stats = None;
    }
    for c in &mut s.classes {
        c.name = None;
        c.stats = None;
    }
    for f in &mut s.filters {
        f.name = None;
        f.stats = None;
    }
    s
}
