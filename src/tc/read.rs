//! Reading live state from tc output into the model (JSON, and the text forms older tc prints).

use anyhow::{bail, Result};

use crate::model::{Class, DeviceState, Filter, Handle, Qdisc};
use crate::tc::Tc;

/// Reads the complete state of `dev`: `tc -j -s -d qdisc show`, `class show` (text on
/// iproute2 ≤ 6.1), and filters on the root qdisc and on ingress.
pub fn read_device(_tc: &Tc, _dev: &str) -> Result<DeviceState> {
    bail!("reading live state is not implemented yet")
}

/// `tc -j qdisc show` output → qdiscs. Kernel defaults (handle 0:, noqueue, pfifo_fast,
/// mq and its children) are left out: they are "nothing" to qosctl.
pub fn parse_qdiscs(_out: &str) -> Result<Vec<Qdisc>> {
    bail!("not implemented yet")
}

/// `tc -j -s -d class show` output (JSON or text) → classes.
pub fn parse_classes(_out: &str) -> Result<Vec<Class>> {
    bail!("not implemented yet")
}

/// `tc -j -s filter show dev D parent P` output → filters on `parent`.
pub fn parse_filters(_out: &str, _parent: Handle) -> Result<Vec<Filter>> {
    bail!("not implemented yet")
}
