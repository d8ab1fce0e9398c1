//! `apply` reads the live state while it is still parsing the policy.
//!
//! A no-op re-apply of a large tree is mostly waiting: for 1 MB of TOML to parse (10,000
//! classes) and for tc's dumps. The two depend on each other only through the device
//! names, which a line scan of the file finds (`device = "eth0"`). So `apply` takes its lock,
//! starts the dumps of those devices, and parses the policy meanwhile. The reads are used
//! only if the parsed policy names exactly these devices in this order; otherwise they are
//! killed unread and the devices are read as usual. When anything is unusual (the policy is
//! not a plain file, a `device` line the scan cannot read, no CAP_NET_ADMIN, the lock held
//! by another qosctl), nothing is started and apply goes its usual way, with its usual
//! messages in the usual order.
//!
//! The listing of the namespace's ifbs (`ip -j link show type ifb`) starts with them: it
//! does not depend on the policy at all.
//!
//! The lock is taken before the reads start, as it always is: nothing changes the devices
//! between this read and the batch planned from it.

use std::path::Path;

use crate::cli::Global;
use crate::lock::Lock;
use crate::model::{Desired, DesiredDevice, DeviceState};
use crate::tc::read::{self, Pending};
use crate::tc::Tc;
use anyhow::Result;

/// The lock and the reads `apply` started before parsing the policy.
pub struct Prefetch {
    pub lock: Lock,
    pub reads: Reads,
    /// The namespace's ifbs, listed alongside (whatever devices the policy names).
    pub ifbs: crate::link::Listing,
}

/// Device reads started ahead, in the order of the scanned `device` lines.
pub struct Reads {
    devices: Vec<String>,
    pending: Vec<Pending>,
}

impl Prefetch {
    /// Takes the lock without waiting and starts reading the devices `policy` names;
    /// `None` whenever that is not plainly possible (see the module documentation).
    pub fn start(global: &Global, policy: &Path) -> Option<Prefetch> {
        let text = std::fs::read_to_string(policy).ok()?;
        let devices = scan_devices(&text)?;
        if devices
            .iter()
            .any(|d| crate::tc::check_device_name(d).is_err())
        {
            return None;
        }
        let tc = Tc::locate(global).ok()?;
        crate::apply::require_net_admin().ok()?;
        let lock = crate::lock::try_lock(global.netns.as_deref()).ok()??;
        let pending = devices.iter().map(|d| read::start_config(&tc, d)).collect();
        Some(Prefetch {
            lock,
            reads: Reads { devices, pending },
            ifbs: crate::link::Listing::start(global.netns.as_deref()),
        })
    }
}

impl Reads {
    /// The live state of the policy's devices, each finished by `finish`, if they are the
    /// ones read ahead; `None` (the early reads killed) otherwise: read them as usual.
    pub fn finish(
        self,
        desired: &Desired,
        finish: impl Fn(&DesiredDevice, Pending) -> Result<DeviceState>,
    ) -> Option<Result<Vec<DeviceState>>> {
        let same = self.devices.len() == desired.devices.len()
            && self
                .devices
                .iter()
                .zip(&desired.devices)
                .all(|(a, d)| *a == d.state.device);
        if !same {
            return None;
        }
        Some(
            desired
                .devices
                .iter()
                .zip(self.pending)
                .map(|(d, p)| finish(d, p))
                .collect(),
        )
    }
}

/// The values of `device = "…"` lines, in file order; `None` when there is none or one
/// the scan cannot read for sure (an escape, another quoting): then nothing starts prefetch.
fn scan_devices(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("device") else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let inner = rest.strip_prefix('"')?;
        let (name, after) = inner.split_once('"')?;
        let after = after.trim_start();
        if name.contains('\\') || !(after.is_empty() || after.starts_with('#')) {
            return None;
        }
        out.push(name.to_string());
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::scan_devices;

    #[test]
    fn device_lines_are_found_in_order_and_doubtful_ones_give_up() {
        let p = "[interfaces.a]\ndevice = \"eth0\"  # uplink\n[interfaces.b]\n  device=\"qb1\"\n";
        assert_eq!(scan_devices(p), Some(vec!["eth0".into(), "qb1".into()]));
        assert_eq!(scan_devices("device = 'eth0'\n"), None);
        assert_eq!(scan_devices("device = \"e\\u0074h0\"\n"), None);
        assert_eq!(scan_devices("device = \"eth0\", rate = 1\n"), None);
        assert_eq!(scan_devices("devices = 3\nrate = \"1mbit\"\n"), None);
    }
}
