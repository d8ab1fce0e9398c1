//! The `qosctl show --json` format, version 1: what a router's state looks like on disk,
//! and what `apply --dry-run --state FILE` plans against. docs/json.md lists every field.
//!
//! These are data-transfer types of their own, converted from and to `model::DeviceState`
//! by hand: the model can be reshaped freely, and only these types decide what the file
//! says. Conventions: handles are the strings tc prints (`"1:"`, `"1:a"`, `"ffff:"`,
//! parents also `"root"` and `"ingress"`), rates in bits per second (`_bps`), sizes in
//! bytes (`_bytes`), times in microseconds (`_us`; a fraction where the kernel keeps
//! nanoseconds), probabilities as fractions 0–1. A reader of version 1 ignores fields it
//! does not know, so fields can be added without a new version; a change of meaning or a
//! removal bumps `version`.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::classify::action::Action;
use crate::classify::u32::Key;
use crate::kind::filter::u32::{Body as U32Obj, U32Handle};
use crate::model::{
    Cake, Class, DeviceState, Filter, FilterKind, FqCodel, Handle, Htb, Loss, Netem, Parent, Qdisc,
    QdiscKind, Sfq, Slot, Stats, Tbf,
};
use crate::units::{Prob, Rate, Size, Time};

/// The value of `format`: tells a state file from any other JSON.
pub const FORMAT: &str = "qosctl-state";
/// The newest version this qosctl reads and the one it writes.
pub const VERSION: u32 = 1;

/// The whole file: one object for all devices of one host (or network namespace).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateFile {
    pub format: String,
    pub version: u32,
    /// The qosctl that wrote the file (`CARGO_PKG_VERSION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qosctl: Option<String>,
    /// The kernel release (`uname -r`) the state was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// `--netns` of the `show` that wrote it; null for the host's own namespace.
    #[serde(default)]
    pub netns: Option<String>,
    pub devices: Vec<DeviceJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceJson {
    pub device: String,
    #[serde(default)]
    pub qdiscs: Vec<QdiscJson>,
    #[serde(default)]
    pub classes: Vec<ClassJson>,
    #[serde(default)]
    pub filters: Vec<FilterJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QdiscJson {
    pub handle: String,
    /// `"root"`, `"ingress"`, or the class handle it hangs on (`"1:10"`).
    pub parent: String,
    /// tc's kind word: htb, pfifo, bfifo, tbf, fq_codel, cake, sfq, netem, ingress, or any
    /// other kind tc printed (qosctl keeps only its name).
    pub kind: String,
    /// The options of `kind` (see docs/json.md); `{}` for kinds without options.
    #[serde(default)]
    pub options: Value,
    /// The policy path, when `show --policy` named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassJson {
    pub handle: String,
    /// The parent class, or the qdisc (`"1:"`) for a class directly under it.
    pub parent: String,
    pub kind: String,
    pub rate_bps: u64,
    pub ceil_bps: u64,
    pub burst_bytes: Option<u64>,
    pub cburst_bytes: Option<u64>,
    /// htb reports prio only for leaf classes.
    pub prio: Option<u32>,
    pub quantum_bytes: Option<u64>,
    /// True when tc printed this class as text (iproute2 ≤ 6.1), whose rates are rounded
    /// (`123456Kbit`): a plan compares through the same rounding.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rates_from_text: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsJson>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilterJson {
    /// The qdisc it hangs on (`"1:"`, `"ffff:"`).
    pub parent: String,
    pub prio: u16,
    pub protocol: String,
    pub kind: String,
    pub classid: Option<String>,
    /// fw: `{mark, mask}`; other kinds: `{handle, summary}`.
    #[serde(default)]
    pub options: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsJson>,
}

/// Counters as the kernel keeps them, and two rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsJson {
    pub bytes: u64,
    pub packets: u64,
    pub drops: u64,
    pub overlimits: u64,
    pub requeues: u64,
    pub backlog_bytes: u64,
    pub backlog_packets: u64,
    /// The kernel's rate estimator, bits/s; null when none runs (htb keeps none by default).
    #[serde(default)]
    pub rate_estimator_bps: Option<u64>,
    /// The rate qosctl measured from two counter samples, bits/s; null when it did not
    /// sample (plain `show --json`). Filled by the sampling `show`.
    #[serde(default)]
    pub rate_measured_bps: Option<u64>,
}

// ---- options of each qdisc kind -------------------------------------------------------

#[derive(Debug, Default, Serialize, Deserialize)]
struct HtbJson {
    /// The default class (`"1:20"`); null when unclassified traffic is not shaped (0).
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    r2q: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PfifoJson {
    #[serde(default)]
    limit_packets: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BfifoJson {
    #[serde(default)]
    limit_bytes: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TbfJson {
    rate_bps: u64,
    burst_bytes: u64,
    #[serde(default)]
    limit_bytes: Option<u64>,
    #[serde(default)]
    latency_us: Option<Micros>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FqCodelJson {
    #[serde(default)]
    limit_packets: Option<u32>,
    #[serde(default)]
    flows: Option<u32>,
    #[serde(default)]
    target_us: Option<Micros>,
    #[serde(default)]
    interval_us: Option<Micros>,
    #[serde(default)]
    quantum_bytes: Option<u64>,
    #[serde(default)]
    ecn: Option<bool>,
    #[serde(default)]
    memory_limit_bytes: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CakeJson {
    #[serde(default)]
    bandwidth_bps: Option<u64>,
    #[serde(default)]
    diffserv: Option<String>,
    #[serde(default)]
    flow_mode: Option<String>,
    #[serde(default)]
    rtt_us: Option<Micros>,
    #[serde(default)]
    nat: Option<bool>,
    #[serde(default)]
    wash: Option<bool>,
    #[serde(default)]
    ack_filter: Option<bool>,
    #[serde(default)]
    overhead_bytes: Option<i32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SfqJson {
    #[serde(default)]
    perturb_us: Option<Micros>,
    #[serde(default)]
    limit_packets: Option<u32>,
    #[serde(default)]
    quantum_bytes: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct NetemJson {
    #[serde(default)]
    delay_us: Option<Micros>,
    #[serde(default)]
    jitter_us: Option<Micros>,
    #[serde(default)]
    delay_correlation: Option<f64>,
    #[serde(default)]
    distribution: Option<String>,
    #[serde(default)]
    loss: Option<LossJson>,
    #[serde(default)]
    duplicate: Option<f64>,
    #[serde(default)]
    duplicate_correlation: Option<f64>,
    #[serde(default)]
    corrupt: Option<f64>,
    #[serde(default)]
    corrupt_correlation: Option<f64>,
    #[serde(default)]
    reorder: Option<f64>,
    #[serde(default)]
    reorder_correlation: Option<f64>,
    #[serde(default)]
    gap: Option<u32>,
    #[serde(default)]
    rate_bps: Option<u64>,
    #[serde(default)]
    limit_packets: Option<u32>,
    #[serde(default)]
    slot: Option<SlotJson>,
    #[serde(default)]
    ecn: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
enum LossJson {
    Random {
        p: f64,
        #[serde(default)]
        correlation: Option<f64>,
    },
    Gemodel {
        p: f64,
        #[serde(default)]
        r: Option<f64>,
        #[serde(default)]
        h: Option<f64>,
        #[serde(default)]
        k: Option<f64>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct SlotJson {
    min_delay_us: Micros,
    #[serde(default)]
    max_delay_us: Option<Micros>,
    #[serde(default)]
    packets: Option<u32>,
    #[serde(default)]
    bytes: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FwJson {
    /// Hex as tc and nft print it (`"0x10"`); a plain integer is read too.
    mark: HexU32,
    mask: HexU32,
}

/// A u32 object qosctl writes (see docs/json.md): its handle, what it is (`rule`, `table`,
/// `link`), the match in the policy's words and the keys it is made of, its actions as tc
/// words, and a one-line summary as `show` prints it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct U32Json {
    handle: String,
    object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    divisor: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash_off: Option<i32>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    m: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    actions: Vec<String>,
    #[serde(default)]
    summary: String,
}

/// A flower match filter: its handle, the match in the policy's words, its actions as tc
/// words (like u32's).
#[derive(Debug, Default, Serialize, Deserialize)]
struct FlowerJson {
    handle: u32,
    #[serde(rename = "match")]
    m: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    actions: Vec<String>,
    #[serde(default)]
    summary: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OtherFilterJson {
    #[serde(default)]
    handle: Option<String>,
    #[serde(default)]
    summary: String,
}

/// A time in microseconds: an integer when whole, else a fraction (the kernel keeps some
/// times in nanoseconds, and a plan from the file must see exactly what the kernel has).
#[derive(Debug, Clone, Copy)]
struct Micros(Time);

impl Serialize for Micros {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ns = self.0.ns();
        if ns.is_multiple_of(1000) {
            s.serialize_u64(ns / 1000)
        } else {
            s.serialize_f64(ns as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Micros {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Micros, D::Error> {
        let us = f64::deserialize(d)?;
        if !(us.is_finite() && us >= 0.0) {
            return Err(serde::de::Error::custom(format!(
                "a time in microseconds must be 0 or more, not {us}"
            )));
        }
        Ok(Micros(Time((us * 1000.0).round() as u64)))
    }
}

#[derive(Debug, Clone, Copy)]
struct HexU32(u32);

impl Serialize for HexU32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

impl<'de> Deserialize<'de> for HexU32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HexU32, D::Error> {
        let v = Value::deserialize(d)?;
        let parsed = match &v {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            },
            _ => None,
        };
        parsed
            .map(HexU32)
            .ok_or_else(|| serde::de::Error::custom(format!("not a 32-bit mark: {v}")))
    }
}

// ---- model → file ----------------------------------------------------------------------

impl StateFile {
    /// The file for these devices, as `show --json` prints it.
    pub fn from_states(states: &[DeviceState], netns: Option<&str>) -> StateFile {
        StateFile {
            format: FORMAT.to_string(),
            version: VERSION,
            qosctl: Some(env!("CARGO_PKG_VERSION").to_string()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
            netns: netns.map(str::to_string),
            devices: states.iter().map(DeviceJson::from_state).collect(),
        }
    }

    /// Reads and checks a file's text; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<StateFile> {
        let v: Value =
            serde_json::from_str(text).with_context(|| format!("{what}: not valid JSON"))?;
        if v.is_array() {
            bail!(
                "{what}: a bare list of devices is the unversioned output of an older qosctl: \
                 save the state again with `qosctl show --json > FILE`"
            );
        }
        match v.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            other => bail!(
                "{what}: not a qosctl state file (\"format\" is {}, expected \"{FORMAT}\"): \
                 write it with `qosctl show --json > FILE`",
                other.map_or("missing".to_string(), |f| format!("\"{f}\""))
            ),
        }
        match v.get("version").and_then(Value::as_u64) {
            Some(n) if n == u64::from(VERSION) => {}
            Some(n) if n > u64::from(VERSION) => bail!(
                "{what}: state format version {n} was written by a newer qosctl; this one reads \
                 version {VERSION}"
            ),
            other => bail!("{what}: unsupported state format version {other:?}"),
        }
        serde_json::from_value(v).with_context(|| format!("{what}: invalid state file"))
    }

    /// Back to the model, one `DeviceState` per device, in file order.
    pub fn to_states(&self) -> Result<Vec<DeviceState>> {
        self.devices
            .iter()
            .map(|d| d.to_state().with_context(|| format!("device {}", d.device)))
            .collect()
    }
}

impl DeviceJson {
    pub fn from_state(st: &DeviceState) -> DeviceJson {
        DeviceJson {
            device: st.device.clone(),
            qdiscs: st.qdiscs.iter().map(qdisc_to_json).collect(),
            classes: st.classes.iter().map(class_to_json).collect(),
            filters: st.filters.iter().map(filter_to_json).collect(),
        }
    }

    pub fn to_state(&self) -> Result<DeviceState> {
        Ok(DeviceState {
            device: self.device.clone(),
            qdiscs: self
                .qdiscs
                .iter()
                .map(qdisc_from_json)
                .collect::<Result<_>>()?,
            classes: self
                .classes
                .iter()
                .map(class_from_json)
                .collect::<Result<_>>()?,
            filters: self
                .filters
                .iter()
                .map(filter_from_json)
                .collect::<Result<_>>()?,
        })
    }
}

fn to_value<T: Serialize>(t: T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn parent_str(p: Parent) -> String {
    match p {
        Parent::Root => "root".to_string(),
        Parent::Ingress => "ingress".to_string(),
        Parent::Class(h) => h.to_string(),
    }
}

fn stats_to_json(s: &Stats) -> StatsJson {
    StatsJson {
        bytes: s.bytes,
        packets: s.packets,
        drops: s.drops,
        overlimits: s.overlimits,
        requeues: s.requeues,
        backlog_bytes: s.backlog_bytes,
        backlog_packets: s.backlog_packets,
        rate_estimator_bps: s.rate_bps.map(|b| b.saturating_mul(8)),
        rate_measured_bps: s.rate_measured_bps,
    }
}

fn stats_from_json(s: &StatsJson) -> Stats {
    Stats {
        bytes: s.bytes,
        packets: s.packets,
        drops: s.drops,
        overlimits: s.overlimits,
        requeues: s.requeues,
        backlog_bytes: s.backlog_bytes,
        backlog_packets: s.backlog_packets,
        rate_bps: s.rate_estimator_bps.map(|b| b / 8),
        rate_measured_bps: s.rate_measured_bps,
    }
}

fn qdisc_to_json(q: &Qdisc) -> QdiscJson {
    QdiscJson {
        handle: q.handle.to_string(),
        parent: parent_str(q.parent),
        kind: q.kind.kind_name().to_string(),
        options: qdisc_options(q),
        name: q.name.clone(),
        stats: q.stats.as_ref().map(stats_to_json),
    }
}

fn qdisc_options(q: &Qdisc) -> Value {
    let us = |t: Option<Time>| t.map(Micros);
    let bytes = |s: Option<Size>| s.map(Size::bytes);
    match &q.kind {
        QdiscKind::Htb(h) => to_value(HtbJson {
            default: (h.default != 0).then(|| Handle::new(q.handle.major, h.default).to_string()),
            r2q: h.r2q,
        }),
        QdiscKind::Pfifo { limit } => to_value(PfifoJson {
            limit_packets: *limit,
        }),
        QdiscKind::Bfifo { limit } => to_value(BfifoJson {
            limit_bytes: bytes(*limit),
        }),
        QdiscKind::Tbf(t) => to_value(TbfJson {
            rate_bps: t.rate.bits(),
            burst_bytes: t.burst.bytes(),
            limit_bytes: bytes(t.limit),
            latency_us: us(t.latency),
        }),
        QdiscKind::FqCodel(f) => to_value(FqCodelJson {
            limit_packets: f.limit,
            flows: f.flows,
            target_us: us(f.target),
            interval_us: us(f.interval),
            quantum_bytes: bytes(f.quantum),
            ecn: f.ecn,
            memory_limit_bytes: bytes(f.memory_limit),
        }),
        QdiscKind::Cake(c) => to_value(CakeJson {
            bandwidth_bps: c.bandwidth.map(Rate::bits),
            diffserv: c.diffserv.clone(),
            flow_mode: c.flow_mode.clone(),
            rtt_us: us(c.rtt),
            nat: c.nat,
            wash: c.wash,
            ack_filter: c.ack_filter,
            overhead_bytes: c.overhead,
        }),
        QdiscKind::Sfq(s) => to_value(SfqJson {
            perturb_us: us(s.perturb),
            limit_packets: s.limit,
            quantum_bytes: bytes(s.quantum),
        }),
        QdiscKind::Netem(n) => to_value(netem_to_json(n)),
        QdiscKind::Ingress | QdiscKind::Other { .. } => Value::Object(Default::default()),
    }
}

fn netem_to_json(n: &Netem) -> NetemJson {
    let p = |p: Option<Prob>| p.map(Prob::fraction);
    let us = |t: Option<Time>| t.map(Micros);
    NetemJson {
        delay_us: us(n.delay),
        jitter_us: us(n.jitter),
        delay_correlation: p(n.delay_correlation),
        distribution: n.distribution.clone(),
        loss: n.loss.as_ref().map(|l| match l {
            Loss::Random { p: lp, correlation } => LossJson::Random {
                p: lp.fraction(),
                correlation: p(*correlation),
            },
            Loss::Gemodel { p: gp, r, h, k } => LossJson::Gemodel {
                p: gp.fraction(),
                r: p(*r),
                h: p(*h),
                k: p(*k),
            },
        }),
        duplicate: p(n.duplicate),
        duplicate_correlation: p(n.duplicate_correlation),
        corrupt: p(n.corrupt),
        corrupt_correlation: p(n.corrupt_correlation),
        reorder: p(n.reorder),
        reorder_correlation: p(n.reorder_correlation),
        gap: n.gap,
        rate_bps: n.rate.map(Rate::bits),
        limit_packets: n.limit,
        slot: n.slot.as_ref().map(|s| SlotJson {
            min_delay_us: Micros(s.min_delay),
            max_delay_us: us(s.max_delay),
            packets: s.packets,
            bytes: s.bytes.map(Size::bytes),
        }),
        ecn: n.ecn,
    }
}

fn class_to_json(c: &Class) -> ClassJson {
    ClassJson {
        handle: c.handle.to_string(),
        parent: c
            .parent
            .unwrap_or(Handle::qdisc(c.handle.major))
            .to_string(),
        kind: "htb".to_string(),
        rate_bps: c.rate.bits(),
        ceil_bps: c.ceil.bits(),
        burst_bytes: c.burst.map(Size::bytes),
        cburst_bytes: c.cburst.map(Size::bytes),
        prio: c.prio,
        quantum_bytes: c.quantum.map(Size::bytes),
        rates_from_text: c.rates_from_text,
        name: c.name.clone(),
        stats: c.stats.as_ref().map(stats_to_json),
    }
}

fn filter_to_json(f: &Filter) -> FilterJson {
    let options = match &f.kind {
        FilterKind::Fw { mark, mask } => to_value(FwJson {
            mark: HexU32(*mark),
            mask: HexU32(*mask),
        }),
        FilterKind::U32 {
            handle,
            body,
            actions,
        } => to_value(u32_to_json(handle, body, actions, &f.kind)),
        FilterKind::Flower { handle, m, actions } => to_value(FlowerJson {
            handle: *handle,
            m: m.to_string(),
            actions: actions.iter().map(Action::tc_args).collect(),
            summary: crate::kind::filter::flower::summary(&f.kind),
        }),
        FilterKind::Other {
            handle, summary, ..
        } => to_value(OtherFilterJson {
            handle: handle.clone(),
            summary: summary.clone(),
        }),
    };
    FilterJson {
        parent: f.parent.to_string(),
        prio: f.prio,
        protocol: f.protocol.clone(),
        kind: f.kind.kind_name().to_string(),
        classid: f.classid.map(|h| h.to_string()),
        options,
        name: f.name.clone(),
        stats: f.stats.as_ref().map(stats_to_json),
    }
}

fn u32_to_json(handle: &U32Handle, body: &U32Obj, actions: &[Action], k: &FilterKind) -> U32Json {
    let mut j = U32Json {
        handle: handle.to_string(),
        actions: actions.iter().map(Action::tc_args).collect(),
        summary: crate::kind::filter::u32::summary(k),
        ..U32Json::default()
    };
    match body {
        U32Obj::Table { divisor } => {
            j.object = "table".into();
            j.divisor = Some(*divisor);
        }
        U32Obj::Link { table, hash_off } => {
            j.object = "link".into();
            j.link = Some(format!("{table:x}:"));
            j.hash_off = Some(*hash_off);
        }
        U32Obj::Rule { m, keys } => {
            j.object = "rule".into();
            j.m = m.as_ref().map(ToString::to_string);
            j.keys = keys
                .iter()
                .map(|k| format!("{:08x}/{:08x} at {}", k.value, k.mask, k.off))
                .collect();
        }
    }
    j
}

fn u32_from_json(o: &U32Json) -> Result<FilterKind> {
    let handle =
        U32Handle::parse(&o.handle).ok_or_else(|| anyhow!("invalid u32 handle {:?}", o.handle))?;
    let body = match o.object.as_str() {
        "table" => U32Obj::Table {
            divisor: o
                .divisor
                .ok_or_else(|| anyhow!("a u32 table without \"divisor\""))?,
        },
        "link" => U32Obj::Link {
            table: o
                .link
                .as_deref()
                .and_then(U32Handle::parse)
                .map(|h| h.ht)
                .ok_or_else(|| anyhow!("a u32 link without a valid \"link\""))?,
            hash_off: o.hash_off.unwrap_or(0),
        },
        "rule" => U32Obj::Rule {
            m: o.m
                .as_deref()
                .map(|m| {
                    m.parse()
                        .map_err(|e: crate::classify::matcher::FieldError| {
                            anyhow!("match {m:?}: {}", e.error)
                        })
                })
                .transpose()?,
            keys: o
                .keys
                .iter()
                .map(|k| parse_key(k).ok_or_else(|| anyhow!("invalid u32 key {k:?}")))
                .collect::<Result<_>>()?,
        },
        other => bail!("unknown u32 object {other:?} (rule, table or link)"),
    };
    Ok(FilterKind::U32 {
        handle,
        body,
        actions: crate::classify::action::from_tc_args(&o.actions.join(" ")),
    })
}

/// `0a000005/ffffffff at 16`.
fn parse_key(s: &str) -> Option<Key> {
    let (vm, off) = s.split_once(" at ")?;
    let (v, m) = vm.split_once('/')?;
    Some(Key {
        value: u32::from_str_radix(v, 16).ok()?,
        mask: u32::from_str_radix(m, 16).ok()?,
        off: off.trim().parse().ok()?,
    })
}

// ---- file → model ----------------------------------------------------------------------

fn handle(s: &str, what: &str) -> Result<Handle> {
    Handle::parse(s).ok_or_else(|| anyhow!("{what} \"{s}\" is not a tc handle such as \"1:10\""))
}

fn options<T: serde::de::DeserializeOwned + Default>(v: &Value, what: &str) -> Result<T> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(v.clone()).with_context(|| format!("options of {what}"))
}

fn qdisc_from_json(q: &QdiscJson) -> Result<Qdisc> {
    let h = handle(&q.handle, "qdisc handle")?;
    let what = format!("qdisc {} ({})", q.handle, q.kind);
    let parent = match q.parent.as_str() {
        "root" => Parent::Root,
        "ingress" => Parent::Ingress,
        p => Parent::Class(handle(p, "qdisc parent")?),
    };
    let time = |m: Option<Micros>| m.map(|m| m.0);
    let size = |b: Option<u64>| b.map(Size);
    let kind = match q.kind.as_str() {
        "htb" => {
            let o: HtbJson = options(&q.options, &what)?;
            let default = match &o.default {
                Some(d) => handle(d, "htb default")?.minor,
                None => 0,
            };
            QdiscKind::Htb(Htb {
                default,
                r2q: o.r2q,
            })
        }
        "pfifo" => QdiscKind::Pfifo {
            limit: options::<PfifoJson>(&q.options, &what)?.limit_packets,
        },
        "bfifo" => QdiscKind::Bfifo {
            limit: size(options::<BfifoJson>(&q.options, &what)?.limit_bytes),
        },
        "tbf" => {
            let o: TbfJson = serde_json::from_value(q.options.clone())
                .with_context(|| format!("options of {what}"))?;
            QdiscKind::Tbf(Tbf {
                rate: Rate::from_bits(o.rate_bps),
                burst: Size(o.burst_bytes),
                limit: size(o.limit_bytes),
                latency: time(o.latency_us),
            })
        }
        "fq_codel" => {
            let o: FqCodelJson = options(&q.options, &what)?;
            QdiscKind::FqCodel(FqCodel {
                limit: o.limit_packets,
                flows: o.flows,
                target: time(o.target_us),
                interval: time(o.interval_us),
                quantum: size(o.quantum_bytes),
                ecn: o.ecn,
                memory_limit: size(o.memory_limit_bytes),
            })
        }
        "cake" => {
            let o: CakeJson = options(&q.options, &what)?;
            QdiscKind::Cake(Cake {
                bandwidth: o.bandwidth_bps.map(Rate::from_bits),
                diffserv: o.diffserv,
                flow_mode: o.flow_mode,
                rtt: time(o.rtt_us),
                nat: o.nat,
                wash: o.wash,
                ack_filter: o.ack_filter,
                overhead: o.overhead_bytes,
            })
        }
        "sfq" => {
            let o: SfqJson = options(&q.options, &what)?;
            QdiscKind::Sfq(Sfq {
                perturb: time(o.perturb_us),
                limit: o.limit_packets,
                quantum: size(o.quantum_bytes),
            })
        }
        "netem" => QdiscKind::Netem(Box::new(netem_from_json(options(&q.options, &what)?))),
        "ingress" => QdiscKind::Ingress,
        other => QdiscKind::Other {
            kind: other.to_string(),
        },
    };
    Ok(Qdisc {
        handle: h,
        parent,
        kind,
        name: q.name.clone(),
        stats: q.stats.as_ref().map(stats_from_json),
    })
}

fn netem_from_json(o: NetemJson) -> Netem {
    let p = |v: Option<f64>| v.map(Prob);
    let time = |m: Option<Micros>| m.map(|m| m.0);
    Netem {
        delay: time(o.delay_us),
        jitter: time(o.jitter_us),
        delay_correlation: p(o.delay_correlation),
        distribution: o.distribution,
        loss: o.loss.map(|l| match l {
            LossJson::Random { p: lp, correlation } => Loss::Random {
                p: Prob(lp),
                correlation: p(correlation),
            },
            LossJson::Gemodel { p: gp, r, h, k } => Loss::Gemodel {
                p: Prob(gp),
                r: p(r),
                h: p(h),
                k: p(k),
            },
        }),
        duplicate: p(o.duplicate),
        duplicate_correlation: p(o.duplicate_correlation),
        corrupt: p(o.corrupt),
        corrupt_correlation: p(o.corrupt_correlation),
        reorder: p(o.reorder),
        reorder_correlation: p(o.reorder_correlation),
        gap: o.gap,
        rate: o.rate_bps.map(Rate::from_bits),
        limit: o.limit_packets,
        slot: o.slot.map(|s| Slot {
            min_delay: s.min_delay_us.0,
            max_delay: time(s.max_delay_us),
            packets: s.packets,
            bytes: s.bytes.map(Size),
        }),
        ecn: o.ecn,
    }
}

fn class_from_json(c: &ClassJson) -> Result<Class> {
    if c.kind != "htb" {
        bail!(
            "class {}: kind \"{}\" (qosctl reads htb classes only)",
            c.handle,
            c.kind
        );
    }
    let h = handle(&c.handle, "class handle")?;
    let p = handle(&c.parent, "class parent")?;
    let mut class = Class::new(
        h,
        (p.minor != 0).then_some(p),
        Rate::from_bits(c.rate_bps),
        Rate::from_bits(c.ceil_bps),
    );
    class.burst = c.burst_bytes.map(Size);
    class.cburst = c.cburst_bytes.map(Size);
    class.prio = c.prio;
    class.quantum = c.quantum_bytes.map(Size);
    class.rates_from_text = c.rates_from_text;
    class.name.clone_from(&c.name);
    class.stats = c.stats.as_ref().map(stats_from_json);
    Ok(class)
}

fn filter_from_json(f: &FilterJson) -> Result<Filter> {
    let what = format!("filter {} prio {} ({})", f.parent, f.prio, f.kind);
    let kind = match f.kind.as_str() {
        "fw" => {
            let o: FwJson = serde_json::from_value(f.options.clone())
                .with_context(|| format!("options of {what}"))?;
            FilterKind::Fw {
                mark: o.mark.0,
                mask: o.mask.0,
            }
        }
        "u32" if f.options.get("object").is_some() => {
            let o: U32Json = options(&f.options, &what)?;
            u32_from_json(&o).with_context(|| format!("options of {what}"))?
        }
        "flower" if f.options.get("match").is_some() => {
            let o: FlowerJson = options(&f.options, &what)?;
            let m =
                o.m.parse()
                    .map_err(|e: crate::classify::matcher::FieldError| {
                        anyhow!("options of {what}: match {:?}: {}", o.m, e.error)
                    })?;
            let actions = crate::classify::action::from_tc_args(&o.actions.join(" "));
            crate::kind::filter::flower::rule(o.handle, m, actions)
        }
        other => {
            let o: OtherFilterJson = options(&f.options, &what)?;
            FilterKind::Other {
                kind: other.to_string(),
                handle: o.handle,
                summary: o.summary,
            }
        }
    };
    Ok(Filter {
        parent: handle(&f.parent, "filter parent")?,
        prio: f.prio,
        protocol: f.protocol.clone(),
        kind,
        classid: f
            .classid
            .as_deref()
            .map(|c| handle(c, "filter classid"))
            .transpose()?,
        name: f.name.clone(),
        stats: f.stats.as_ref().map(stats_from_json),
    })
}
