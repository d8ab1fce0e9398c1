//! Measured rates: qosctl's own rate estimate from two samples of the byte and packet
//! counters, since the kernel's estimator is off unless a qdisc or class was created with
//! `est` (htb's "rate now" then stays 0 under a live flow).
//!
//! A sample reads every device once (`tc -s`, the same reader `show` uses) and notes when
//! each device was read; a rate is the counter difference over the time between the two
//! reads of that device, so a slow read of one device does not skew another's rate.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::model::{DeviceState, Handle, QdiscKind, Stats};
use crate::tc::read::{parse_classes, parse_qdiscs, read_device};
use crate::tc::Tc;

/// Which counters an object has: qdisc and class handles can look alike (`1:` vs `1:1`
/// never collide, but a class `1:0` could in a foreign tree), so the kind is in the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Object {
    Qdisc(Handle),
    Class(Handle),
}

/// (device, object): what a measured rate belongs to.
pub type Key = (String, Object);

/// One read of every device, with the moment each dump was taken.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub devices: Vec<Timed>,
}

/// The qdiscs and classes of one device (no filters: they carry no rates), and when each
/// of the two dumps was read.
#[derive(Debug, Clone)]
pub struct Timed {
    pub state: DeviceState,
    pub qdiscs_at: Instant,
    pub classes_at: Instant,
}

/// Rates of one object between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub bits_per_s: f64,
    pub packets_per_s: f64,
    pub drops_per_s: f64,
    pub overlimits_per_s: f64,
}

/// Reads every device once: `tc -j -s -d qdisc show` and, where there is an htb, `class
/// show`, each timed on its own. The time is the middle of the tc run, the best guess of
/// when the kernel copied the counters out; on a loaded machine one tc run can take 50 ms,
/// which would be 5 % of a 1 s interval if the whole device read counted as one moment.
pub fn sample(tc: &Tc, devices: &[String]) -> Result<Sample> {
    let mut out = Vec::with_capacity(devices.len());
    for dev in devices {
        let (qdiscs_at, text) = timed(|| tc.run(&["-j", "-s", "-d", "qdisc", "show", "dev", dev]))?;
        let qdiscs = parse_qdiscs(&text).with_context(|| format!("reading the qdiscs of {dev}"))?;
        let (classes_at, classes) = if qdiscs.iter().any(|q| matches!(q.kind, QdiscKind::Htb(_))) {
            let (at, text) = timed(|| tc.run(&["-j", "-s", "-d", "class", "show", "dev", dev]))?;
            let classes =
                parse_classes(&text).with_context(|| format!("reading the classes of {dev}"))?;
            (at, classes)
        } else {
            (qdiscs_at, Vec::new())
        };
        out.push(Timed {
            state: DeviceState {
                device: dev.clone(),
                qdiscs,
                classes,
                ..DeviceState::default()
            },
            qdiscs_at,
            classes_at,
        });
    }
    Ok(Sample { devices: out })
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(Instant, T)> {
    let start = Instant::now();
    let v = f()?;
    Ok((start + start.elapsed() / 2, v))
}

/// Every (device, object) with its counters, in one sample.
fn counters(s: &Sample) -> BTreeMap<Key, (Instant, &Stats)> {
    let mut m = BTreeMap::new();
    for t in &s.devices {
        let st = &t.state;
        for q in &st.qdiscs {
            if let Some(stats) = &q.stats {
                m.insert(
                    (st.device.clone(), Object::Qdisc(q.handle)),
                    (t.qdiscs_at, stats),
                );
            }
        }
        for c in &st.classes {
            if let Some(stats) = &c.stats {
                m.insert(
                    (st.device.clone(), Object::Class(c.handle)),
                    (t.classes_at, stats),
                );
            }
        }
    }
    m
}

/// Rates of every object present in both samples. An object whose counters went backwards
/// was deleted and re-created between the samples (or the counter wrapped): it gets no rate
/// rather than a nonsense one.
pub fn measure(before: &Sample, after: &Sample) -> BTreeMap<Key, Measured> {
    let old = counters(before);
    let mut out = BTreeMap::new();
    for (key, (t1, s1)) in counters(after) {
        let Some((t0, s0)) = old.get(&key) else {
            continue;
        };
        let secs = t1.saturating_duration_since(*t0).as_secs_f64();
        if secs <= 0.0 {
            continue;
        }
        let d = |a: u64, b: u64| a.checked_sub(b).map(|v| v as f64 / secs);
        let (Some(bytes), Some(packets)) = (d(s1.bytes, s0.bytes), d(s1.packets, s0.packets))
        else {
            continue;
        };
        out.insert(
            key,
            Measured {
                bits_per_s: bytes * 8.0,
                packets_per_s: packets,
                drops_per_s: d(s1.drops, s0.drops).unwrap_or(0.0),
                overlimits_per_s: d(s1.overlimits, s0.overlimits).unwrap_or(0.0),
            },
        );
    }
    out
}

/// Writes measured rates into `Stats::rate_measured_bps` (bits per second), which the
/// table's "rate now" column prefers over the kernel's estimator and `--json` prints as
/// `rate_measured_bps`. Objects without a measurement (new since the first sample) keep
/// `None`.
pub fn overlay(states: &mut [DeviceState], rates: &BTreeMap<Key, Measured>) {
    for st in states {
        let dev = st.device.clone();
        let get = |o: Object| {
            rates
                .get(&(dev.clone(), o))
                .map(|m| m.bits_per_s.round() as u64)
        };
        for q in &mut st.qdiscs {
            if let Some(s) = &mut q.stats {
                s.rate_measured_bps = get(Object::Qdisc(q.handle));
            }
        }
        for c in &mut st.classes {
            if let Some(s) = &mut c.stats {
                s.rate_measured_bps = get(Object::Class(c.handle));
            }
        }
    }
}

/// `show --interval`: two samples `interval` apart, then the full state (filters too)
/// with the measured rates.
pub fn read_measured(tc: &Tc, devices: &[String], interval: Duration) -> Result<Vec<DeviceState>> {
    let first = sample(tc, devices)?;
    std::thread::sleep(interval);
    let second = sample(tc, devices)?;
    let rates = measure(&first, &second);
    let mut states = devices
        .iter()
        .map(|d| read_device(tc, d))
        .collect::<Result<Vec<_>>>()?;
    overlay(&mut states, &rates);
    Ok(states)
}

/// Parses an interval such as `1s`, `500ms` or `2.5s` (the policy's time units), at least
/// 10 ms: shorter than tc's own read of a large tree, the rate would be mostly noise.
pub fn parse_interval(s: &str) -> std::result::Result<Duration, String> {
    let t: crate::units::Time = s.parse().map_err(|e| format!("{e}"))?;
    let d = Duration::from_nanos(t.ns());
    if d < Duration::from_millis(10) {
        return Err(format!("interval \"{s}\" is too short: at least 10ms"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Class, Parent, Qdisc, QdiscKind};
    use crate::units::Rate;

    fn stats(bytes: u64, packets: u64, drops: u64) -> Stats {
        Stats {
            bytes,
            packets,
            drops,
            ..Stats::default()
        }
    }

    fn state(q_bytes: u64, c_bytes: u64, c_drops: u64) -> DeviceState {
        DeviceState {
            device: "a0".into(),
            qdiscs: vec![Qdisc {
                handle: Handle::qdisc(1),
                parent: Parent::Root,
                kind: QdiscKind::Pfifo { limit: None },
                name: None,
                stats: Some(stats(q_bytes, q_bytes / 1000, 0)),
            }],
            classes: vec![Class {
                stats: Some(stats(c_bytes, c_bytes / 1000, c_drops)),
                ..Class::new(Handle::new(1, 0x10), None, Rate(1), Rate(1))
            }],
            ..DeviceState::default()
        }
    }

    fn at(t: Instant, state: DeviceState) -> Sample {
        Sample {
            devices: vec![Timed {
                state,
                qdiscs_at: t,
                classes_at: t,
            }],
        }
    }

    #[test]
    fn rates_are_counter_differences_over_the_time_between_reads() {
        let t0 = Instant::now();
        let before = at(t0, state(1_000_000, 500_000, 3));
        let after = at(t0 + Duration::from_secs(2), state(3_500_000, 500_000, 13));
        let m = measure(&before, &after);
        let q = m[&("a0".to_string(), Object::Qdisc(Handle::qdisc(1)))];
        assert_eq!(q.bits_per_s, 10_000_000.0, "2.5 MB in 2 s = 10 Mbit/s");
        assert_eq!(q.packets_per_s, 1250.0);
        let c = m[&("a0".to_string(), Object::Class(Handle::new(1, 0x10)))];
        assert_eq!(c.bits_per_s, 0.0);
        assert_eq!(c.drops_per_s, 5.0);

        let mut states = vec![after.devices[0].state.clone()];
        overlay(&mut states, &m);
        let s = states[0].qdiscs[0].stats.as_ref().unwrap();
        assert_eq!(s.rate_measured_bps, Some(10_000_000));
        assert_eq!(s.rate_bps, None, "the kernel's estimator is left as read");
    }

    #[test]
    fn a_recreated_object_gets_no_rate() {
        let t0 = Instant::now();
        let before = at(t0, state(9_000_000, 10, 0));
        let after = at(t0 + Duration::from_secs(1), state(1_000, 20, 0));
        let m = measure(&before, &after);
        assert!(!m.contains_key(&("a0".to_string(), Object::Qdisc(Handle::qdisc(1)))));
        assert!(m.contains_key(&("a0".to_string(), Object::Class(Handle::new(1, 0x10)))));
    }

    #[test]
    fn intervals_use_the_policy_time_units() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_interval("1ms").unwrap_err().contains("too short"));
        assert!(parse_interval("soon").is_err());
    }
}
