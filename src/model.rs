//! One model for desired and live traffic-control state.
//!
//! The policy resolver (`resolve.rs`) produces it from a TOML file; the tc reader
//! (`tc/read.rs`) produces it from `tc -j … show`. The planner (`plan.rs`) is a pure
//! function of two of these. Keeping one type for both sides is what makes the diff
//! honest: a field that cannot be read back cannot be desired either.
//!
//! Every value is stored in the unit the kernel keeps, so comparisons are exact where
//! the kernel is exact (rates in bytes per second, see [`Rate::same_in_kernel`]) and
//! tolerant only where the kernel itself rounds (burst ticks, probabilities).

use serde::Serialize;
use std::fmt;

use crate::units::{Prob, Rate, Size, Time};

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

/// The qdisc kinds qosctl writes, with the options it manages. `Other` is whatever the
/// reader found that qosctl does not write (it is removed when on a managed device).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QdiscKind {
    Htb(Htb),
    Pfifo {
        limit: Option<u32>,
    },
    Bfifo {
        limit: Option<Size>,
    },
    Tbf(Tbf),
    FqCodel(FqCodel),
    Cake(Cake),
    Sfq(Sfq),
    /// Boxed: netem's ~400 bytes would make every qdisc that large, and a 10,000-class
    /// tree holds 10,000 leaf qdiscs.
    Netem(Box<Netem>),
    Ingress,
    Other {
        kind: String,
    },
}

impl QdiscKind {
    /// The tc kind word.
    pub fn kind_name(&self) -> &str {
        match self {
            QdiscKind::Htb(_) => "htb",
            QdiscKind::Pfifo { .. } => "pfifo",
            QdiscKind::Bfifo { .. } => "bfifo",
            QdiscKind::Tbf(_) => "tbf",
            QdiscKind::FqCodel(_) => "fq_codel",
            QdiscKind::Cake(_) => "cake",
            QdiscKind::Sfq(_) => "sfq",
            QdiscKind::Netem(_) => "netem",
            QdiscKind::Ingress => "ingress",
            QdiscKind::Other { kind } => kind,
        }
    }
}

/// `htb` root qdisc. `default` is the minor of the default class (0 = unclassified
/// traffic goes out unshaped, tc's own default).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Htb {
    pub default: u16,
    pub r2q: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tbf {
    pub rate: Rate,
    pub burst: Size,
    /// `limit` in bytes; tc needs exactly one of limit or latency. The reader reports the
    /// latency it prints (`lat`) as `latency`.
    pub limit: Option<Size>,
    pub latency: Option<Time>,
}

/// fq_codel options. `None` = not set by the policy: kernel default, not compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FqCodel {
    pub limit: Option<u32>,
    pub flows: Option<u32>,
    pub target: Option<Time>,
    pub interval: Option<Time>,
    pub quantum: Option<Size>,
    pub ecn: Option<bool>,
    pub memory_limit: Option<Size>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cake {
    /// `None` = unlimited.
    pub bandwidth: Option<Rate>,
    /// besteffort, diffserv3, diffserv4, diffserv8, precedence.
    pub diffserv: Option<String>,
    /// flowblind, srchost, dsthost, hosts, flows, dual-srchost, dual-dsthost, triple-isolate.
    pub flow_mode: Option<String>,
    pub rtt: Option<Time>,
    pub nat: Option<bool>,
    pub wash: Option<bool>,
    pub ack_filter: Option<bool>,
    /// Overhead in bytes added per packet (may be negative).
    pub overhead: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sfq {
    pub perturb: Option<Time>,
    pub limit: Option<u32>,
    pub quantum: Option<Size>,
}

/// netem. Probabilities are fractions 0..=1; correlations too.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Netem {
    pub delay: Option<Time>,
    pub jitter: Option<Time>,
    pub delay_correlation: Option<Prob>,
    /// normal, pareto, paretonormal, uniform (uniform = no table: tc's default).
    pub distribution: Option<String>,
    pub loss: Option<Loss>,
    pub duplicate: Option<Prob>,
    pub duplicate_correlation: Option<Prob>,
    pub corrupt: Option<Prob>,
    pub corrupt_correlation: Option<Prob>,
    pub reorder: Option<Prob>,
    pub reorder_correlation: Option<Prob>,
    pub gap: Option<u32>,
    pub rate: Option<Rate>,
    /// Queue limit in packets (kernel default 1000).
    pub limit: Option<u32>,
    pub slot: Option<Slot>,
    pub ecn: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Loss {
    Random {
        p: Prob,
        correlation: Option<Prob>,
    },
    /// Gilbert-Elliott: p = good→bad, r = bad→good, h = 1-loss in bad (tc's `1-h`),
    /// k = 1-loss in good (tc's `1-k`), as `tc … loss gemodel p r 1-h 1-k`.
    Gemodel {
        p: Prob,
        r: Option<Prob>,
        h: Option<Prob>,
        k: Option<Prob>,
    },
}

/// netem `slot MIN_DELAY [MAX_DELAY] [packets N] [bytes N]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slot {
    pub min_delay: Time,
    pub max_delay: Option<Time>,
    pub packets: Option<u32>,
    pub bytes: Option<Size>,
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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FilterKind {
    /// `fw`: firewall mark `handle` (with `mask`, default 0xffffffff).
    Fw { mark: u32, mask: u32 },
    /// Anything else the reader found (u32, flower, bpf, …): qosctl does not write these,
    /// it removes them from managed devices. `handle` is the filter handle as tc printed
    /// it (e.g. `800::800`), needed to delete exactly this filter; `summary` is for display.
    Other {
        kind: String,
        handle: Option<String>,
        summary: String,
    },
}

impl FilterKind {
    pub fn kind_name(&self) -> &str {
        match self {
            FilterKind::Fw { .. } => "fw",
            FilterKind::Other { kind, .. } => kind,
        }
    }
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
}
