//! One model for desired and live traffic-control state.
//!
//! The policy resolver (`resolve.rs`) produces it from a TOML file; the tc reader
//! (`tc/read/`) produces it from `tc -j … show`. The planner (`plan/`) is a pure
//! function of two of these. The per-kind options (`Htb`, `Netem`, …) are defined with
//! their kind in `crate::kind` and re-exported here. Keeping one type for both sides is what makes the diff
//! honest: a field that cannot be read back cannot be desired either.
//!
//! Every value is stored in the unit the kernel keeps, so comparisons are exact where
//! the kernel is exact (rates in bytes per second, see [`Rate::same_in_kernel`]) and
//! tolerant only where the kernel itself rounds (burst ticks, probabilities).

use serde::Serialize;
use std::fmt;

use crate::units::{Rate, Size};

// The kinds live in their homes (`crate::kind`); the model names them here, so every
// module (and the resolver) keeps reaching them as `model::…`.
pub use crate::kind::filter::FilterKind;
pub use crate::kind::qdisc::cake::Cake;
pub use crate::kind::qdisc::fq_codel::FqCodel;
pub use crate::kind::qdisc::htb::Htb;
pub use crate::kind::qdisc::netem::{Loss, Netem, Slot};
pub use crate::kind::qdisc::sfq::Sfq;
pub use crate::kind::qdisc::tbf::Tbf;
pub use crate::kind::qdisc::QdiscKind;

/// A tc handle `major:minor` (both 16 bit). Qdisc handles have minor 0 and print as `1:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle {
    pub major: u16,
    pub minor: u16,
}

impl Handle {
    pub const fn new(major: u16, minor: u16) -> Self {
        Handle { major, minor }
    }
    /// The qdisc handle `major:`.
    pub const fn qdisc(major: u16) -> Self {
        Handle { major, minor: 0 }
    }
    /// The ingress qdisc's handle `ffff:`.
    pub const INGRESS: Handle = Handle::qdisc(0xffff);
    /// The two filter hooks of a clsact qdisc (`tc filter … ingress` / `egress`).
    pub const CLSACT_INGRESS: Handle = Handle::new(0xffff, 0xfff2);
    pub const CLSACT_EGRESS: Handle = Handle::new(0xffff, 0xfff3);

    /// A filter parent of the ingress or clsact qdisc (`ffff:`, `ffff:fff2`, `ffff:fff3`).
    pub const fn is_ingress_side(&self) -> bool {
        self.major == 0xffff
    }

    /// Parses `1:`, `1:a`, `ffff:`, `:a` (major 0). Hex, as tc prints them.
    pub fn parse(s: &str) -> Option<Handle> {
        let (maj, min) = s.split_once(':')?;
        let major = if maj.is_empty() {
            0
        } else {
            u16::from_str_radix(maj, 16).ok()?
        };
        let minor = if min.is_empty() {
            0
        } else {
            u16::from_str_radix(min, 16).ok()?
        };
        Some(Handle { major, minor })
    }
}

/// In JSON a handle is the string tc prints (`"1:10"`), not `{"major":1,"minor":16}`.
impl Serialize for Handle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor == 0 {
            write!(f, "{:x}:", self.major)
        } else {
            write!(f, "{:x}:{:x}", self.major, self.minor)
        }
    }
}

/// Where a qdisc hangs: the device root, the ingress hook, or a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Parent {
    Root,
    Ingress,
    Class(Handle),
}

impl fmt::Display for Parent {
    /// The tc words for this parent: `root`, `ingress`, `parent 1:10`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parent::Root => f.write_str("root"),
            Parent::Ingress => f.write_str("ingress"),
            Parent::Class(h) => write!(f, "parent {h}"),
        }
    }
}

/// Counters as tc prints them with `-s`. Live state only; the desired side has none.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub bytes: u64,
    pub packets: u64,
    pub drops: u64,
    pub overlimits: u64,
    pub requeues: u64,
    pub backlog_bytes: u64,
    pub backlog_packets: u64,
    /// Rate estimator in bytes/s, when the kernel has one running (often 0).
    pub rate_bps: Option<u64>,
    /// The rate qosctl measured from two samples of the counters, bits/s (`crate::rates`);
    /// `None` unless `show --interval` sampled.
    pub rate_measured_bps: Option<u64>,
}

/// The complete tc configuration of one device that qosctl manages: its root and ingress
/// qdisc trees with their classes and filters.
///
/// An empty `DeviceState` is the kernel default (the reader maps `noqueue`, `pfifo_fast`,
/// `mq`, `fq_codel` with handle 0: and the like to "nothing").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceState {
    pub device: String,
    pub qdiscs: Vec<Qdisc>,
    pub classes: Vec<Class>,
    pub filters: Vec<Filter>,
}

impl DeviceState {
    pub fn is_default(&self) -> bool {
        self.qdiscs.is_empty() && self.classes.is_empty() && self.filters.is_empty()
    }
    pub fn root_qdisc(&self) -> Option<&Qdisc> {
        self.qdiscs.iter().find(|q| q.parent == Parent::Root)
    }
    pub fn qdisc(&self, handle: Handle) -> Option<&Qdisc> {
        self.qdiscs.iter().find(|q| q.handle == handle)
    }
    pub fn class(&self, handle: Handle) -> Option<&Class> {
        self.classes.iter().find(|c| c.handle == handle)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Qdisc {
    pub handle: Handle,
    pub parent: Parent,
    pub kind: QdiscKind,
    /// Policy path of the owner ("wan", "wan/bulk/backup"); desired side only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

/// An htb class (the only class kind qosctl writes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Class {
    pub handle: Handle,
    /// The parent class, or `None` for a class directly under the root qdisc (`1:1`).
    pub parent: Option<Handle>,
    pub rate: Rate,
    pub ceil: Rate,
    /// `None` on the desired side = not set by the policy: not compared.
    pub burst: Option<Size>,
    pub cburst: Option<Size>,
    /// The kernel reports prio only for leaf classes.
    pub prio: Option<u32>,
    pub quantum: Option<Size>,
    /// Live side: rates were read from tc's text output, which rounds them (iproute2
    /// ≤ 6.1 prints classes only as text). The planner then compares through the same
    /// rounding so that rounding never causes a diff that never goes away.
    #[serde(skip)]
    pub rates_from_text: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

impl Class {
    /// A class with its place and rates; every optional knob unset (not managed).
    pub fn new(handle: Handle, parent: Option<Handle>, rate: Rate, ceil: Rate) -> Class {
        Class {
            handle,
            parent,
            rate,
            ceil,
            burst: None,
            cburst: None,
            prio: None,
            quantum: None,
            rates_from_text: false,
            name: None,
            stats: None,
        }
    }
}

/// A classifier attached to a qdisc (`parent`), steering into `classid`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filter {
    /// The qdisc the filter hangs on (`1:` or `ffff:`).
    pub parent: Handle,
    /// tc `prio` (also called pref).
    pub prio: u16,
    /// `all`, `ip`, `ipv6`, `802.1q`, …
    pub protocol: String,
    pub kind: FilterKind,
    pub classid: Option<Handle>,
    /// Policy path of the class this filter steers to; desired side only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

/// The desired state of every device a policy names, in policy order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Desired {
    pub devices: Vec<DesiredDevice>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DesiredDevice {
    /// The policy key (`[interfaces.wan]` → "wan").
    pub alias: String,
    pub state: DeviceState,
    /// This device is the ifb qosctl creates for the ingress tree of the named device
    /// (`crate::link`): apply creates it when it is missing, and a missing one reads as
    /// the kernel default until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifb_for: Option<String>,
}
